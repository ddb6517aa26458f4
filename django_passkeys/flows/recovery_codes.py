"""Recovery code use cases: generate a set (shown once), and spend one code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from django_passkeys import audit, recovery_codes, signals
from django_passkeys.conf import conf
from django_passkeys.cooldown import check_cooldown
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Credential, RecoveryCodeDevice
from django_passkeys.notifications import Event, notify
from django_passkeys.recovery_codes import RecoveryCodesState, recovery_codes_state
from django_passkeys.sessions import has_recent_passkey_assertion, is_recently_authenticated

from .failures import record_failure

__all__ = [
    "GeneratedRecoveryCodes",
    "RecoveryCodesState",
    "generate_recovery_codes",
    "recovery_codes_confirmation",
    "recovery_codes_state",
    "use_recovery_code",
]

#: What generating needs first: nothing, a passkey assertion (step-up reauthentication or a
#: passkey sign-in, which also renews the sign-in), or a new sign-in (a user without passkeys).
Confirmation = Literal["passkey", "sign_in"] | None


@dataclass(frozen=True)
class GeneratedRecoveryCodes:
    """A new set of recovery codes, in clear: show it once, store it nowhere."""

    codes: tuple[str, ...]
    device: RecoveryCodeDevice
    #: The user's first set (``second_factor_added`` was sent).
    first: bool


def recovery_codes_confirmation(
    request: HttpRequest, user: AbstractBaseUser, *, replacing: bool
) -> Confirmation:
    """What ``user`` must do before generating codes in this session (``None``: nothing).

    Any generation needs a recent sign-in. Replacing an existing set also locks out whoever
    holds the old codes, so it needs a recent passkey assertion when the user has passkeys: a
    stolen password, or a session left open, must not be enough to take the codes over.
    """
    has_passkeys: bool | None = None
    if replacing and not has_recent_passkey_assertion(request):
        has_passkeys = Credential.objects.active().filter(user_id=user.pk).exists()
        if has_passkeys:
            return "passkey"
    if is_recently_authenticated(request):
        return None
    if has_passkeys is None:
        has_passkeys = Credential.objects.active().filter(user_id=user.pk).exists()
    # With a passkey, step-up reauthentication renews the sign-in without leaving the page.
    return "passkey" if has_passkeys else "sign_in"


def generate_recovery_codes(
    request: HttpRequest, user: AbstractBaseUser, *, replaces: int | None = None
) -> GeneratedRecoveryCodes:
    """A new set of ``PASSKEYS_RECOVERY_CODE_COUNT`` codes for ``user``, replacing any other.

    The whole previous set stops working in the same transaction. ``replaces``, when given, is
    the ``generation`` of the set the caller showed (0 for none): a form sent again after a
    newer set was generated gets ``recovery_codes_changed`` and changes nothing, so a reload
    never replaces the codes it just showed. Needs what :func:`recovery_codes_confirmation`
    says (``reauthentication_required`` otherwise). Sends ``second_factor_added`` for a first
    set and ``recovery_codes_generated`` for every set.
    """
    try:
        with transaction.atomic():
            # Locked, so that two requests generating at once replace one set after the other
            # and the second sees the first's generation.
            device, _created = recovery_codes.locked_device(user)
            first = device.generation == 0
            if not first:  # replacing locks out whoever holds the old codes
                check_cooldown(user)
            # First: a form sent again (a reload of the page showing the codes) is answered as
            # such, not with whatever a replacement would need.
            if replaces is not None and replaces != device.generation:
                raise PasskeyError(
                    Reason.RECOVERY_CODES_CHANGED,
                    f"replaces {replaces}, current {device.generation}",
                )
            needed = recovery_codes_confirmation(request, user, replacing=not first)
            if needed is not None:
                raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED, f"needs {needed}")
            codes = recovery_codes.replace_codes(device, conf.PASSKEYS_RECOVERY_CODE_COUNT)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.RECOVERY_CODES, error, user=user)
        raise
    audit.record(request, AuthEvent.Type.RECOVERY_CODES, success=True, user=user)
    if first:
        signals.second_factor_added.send(
            sender=RecoveryCodeDevice,
            request=request,
            user=user,
            device=device,
            kind="recovery_codes",
        )
    signals.recovery_codes_generated.send(
        sender=RecoveryCodeDevice, request=request, user=user, count=len(codes)
    )
    # One e-mail for a first set too: it says so, rather than a second_factor_added one.
    notify(Event.RECOVERY_CODES_GENERATED, user, request=request, count=len(codes), first=first)
    return GeneratedRecoveryCodes(codes=tuple(codes), device=device, first=first)


def use_recovery_code(request: HttpRequest, user: Any, code: object) -> RecoveryCodesState:
    """Accept one of ``user``'s unused recovery codes, once; return the codes' state after it.

    For the recovery flow, which decides what the code unlocks. A code that is not text is
    ``malformed_request``; a wrong, used or replaced code, or a user without codes, is
    ``second_factor_invalid`` (audited as a failed ``recovery_code_used``). Success is audited
    and sends ``recovery_code_used`` with ``remaining``.
    """
    try:
        if not isinstance(code, str):
            raise PasskeyError(Reason.MALFORMED_REQUEST, "recovery code is not text")
        with transaction.atomic():
            device = RecoveryCodeDevice.objects.filter(user_id=user.pk).first()
            remaining = recovery_codes.consume(device, code) if device is not None else None
            if device is None or remaining is None:
                raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "recovery code not accepted")
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.RECOVERY_CODE_USED, error, user=user)
        raise
    audit.record(request, AuthEvent.Type.RECOVERY_CODE_USED, success=True, user=user)
    signals.recovery_code_used.send(
        sender=RecoveryCodeDevice, request=request, user=user, remaining=remaining
    )
    notify(Event.RECOVERY_CODE_USED, user, request=request, remaining=remaining)
    return recovery_codes.state_of(device, remaining)
