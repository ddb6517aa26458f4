"""The move off passwords: the passkey upgrade after a password sign-in, and passkey-only.

See :mod:`django_passkeys.upgrade` and :mod:`django_passkeys.passkey_only` for the why.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from django_passkeys import audit
from django_passkeys.conf import conf
from django_passkeys.cooldown import check_cooldown
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AdoptionState, AuthEvent, Challenge, Credential
from django_passkeys.passkey_only import passkey_only_state, required_for
from django_passkeys.rollout import passkeys_offered
from django_passkeys.sessions import has_recent_passkey_assertion, is_recently_authenticated
from django_passkeys.upgrade import finish_upgrade, snooze_upgrade

from .failures import record_failure
from .passkeys import register, registration_options

__all__ = [
    "decline_upgrade",
    "turn_off_passkey_only",
    "turn_on_passkey_only",
    "upgrade",
    "upgrade_options",
]


# ---------------------------------------------------------------------------------------------
# The upgrade after a password sign-in
# ---------------------------------------------------------------------------------------------


def upgrade_options(request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
    """Creation options for the upgrade: only for a user the rollout offers passkeys to."""
    if not passkeys_offered(request):
        error = PasskeyError(Reason.UPGRADE_NOT_OFFERED)
        record_failure(request, AuthEvent.Type.UPGRADE, error, user=user)
        raise error
    return registration_options(request, user, purpose=Challenge.Purpose.UPGRADE)


def upgrade(
    request: HttpRequest, user: AbstractBaseUser, data: dict[str, Any], *, name: object = None
) -> Credential:
    """Verify and store the upgrade's passkey (a conditional create may lack user presence);
    audited as an accepted ``upgrade``, signalled and notified like any new passkey."""
    credential = register(request, user, data, name=name, purpose=Challenge.Purpose.UPGRADE)
    finish_upgrade(request)
    return credential


def decline_upgrade(request: HttpRequest, user: AbstractBaseUser, *, snooze: bool) -> None:
    """ "Not now" (``snooze=False``: asked again at the next password sign-in) or "Don't ask
    again" (quiet for ``PASSKEYS_UPGRADE_SNOOZE_DAYS``)."""
    if snooze:
        snooze_upgrade(user, conf.PASSKEYS_UPGRADE_SNOOZE_DAYS)
    finish_upgrade(request)
    audit.record(
        request,
        AuthEvent.Type.UPGRADE_DECLINED,
        success=True,
        reason_code="snoozed" if snooze else "",
        user=user,
    )


# ---------------------------------------------------------------------------------------------
# Passkey-only
# ---------------------------------------------------------------------------------------------


def turn_on_passkey_only(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Turn ``user``'s password sign-in off: needs a recent sign-in, an active passkey and a
    recovery factor. Doing it twice is harmless."""
    try:
        if not is_recently_authenticated(request):
            raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED)
        state = passkey_only_state(user)
        if state.enabled and state.chosen:
            return
        if not (state.available or state.required) or not state.ready:
            raise PasskeyError(Reason.PASSKEY_ONLY_NOT_READY)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.PASSKEY_ONLY_ON, error, user=user)
        raise
    AdoptionState.objects.update_or_create(
        user_id=user.pk, defaults={"passkey_only_since": timezone.now()}
    )
    audit.record(request, AuthEvent.Type.PASSKEY_ONLY_ON, success=True, user=user)


def turn_off_passkey_only(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Give ``user`` their password sign-in back: a high-risk change (refused during a
    cooldown) that needs a fresh passkey assertion, and that a site policy may forbid."""
    try:
        check_cooldown(user)
        if required_for(user):
            raise PasskeyError(Reason.PASSKEY_ONLY_REQUIRED)
        if not has_recent_passkey_assertion(request):
            raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.PASSKEY_ONLY_OFF, error, user=user)
        raise
    changed = AdoptionState.objects.filter(
        user_id=user.pk, passkey_only_since__isnull=False
    ).update(passkey_only_since=None)
    if changed:
        audit.record(request, AuthEvent.Type.PASSKEY_ONLY_OFF, success=True, user=user)
