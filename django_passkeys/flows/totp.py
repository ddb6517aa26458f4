"""Authenticator-app (TOTP) use cases: enrol, confirm, remove, and verify a code.

Who may change what (the factor itself is :mod:`django_passkeys.totp`):

- a first authenticator app needs a recent sign-in (``PASSKEYS_REAUTH_MAX_AGE``);
- replacing or removing a confirmed one needs a fresh *passkey* assertion
  (:func:`~django_passkeys.sessions.has_recent_passkey_assertion`): a second factor is what
  recovers an account whose passkeys are gone, so a stolen password session must not swap it.

Every change is audited (``totp_added`` / ``totp_removed``, failures with their reason code) and
signalled (``second_factor_added`` / ``second_factor_removed`` with ``kind="totp"``).
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys import audit, signals
from django_passkeys.cooldown import check_cooldown
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent
from django_passkeys.notifications import Event, notify
from django_passkeys.sessions import has_recent_passkey_assertion, is_recently_authenticated
from django_passkeys.totp import (
    PENDING_KEY,
    clean_code,
    confirmed_device,
    new_pending_device,
    pending_device,
)

from .failures import record_failure

__all__ = [
    "begin_totp_enrolment",
    "confirm_totp",
    "may_enrol_totp",
    "remove_totp",
    "verify_totp",
]

KIND = "totp"


def may_enrol_totp(request: HttpRequest, *, replacing: bool) -> bool:
    """Whether this session may be shown a new secret, and confirm it.

    A first app: a recent sign-in. Replacing a confirmed app: a fresh passkey assertion.
    """
    if replacing:
        return has_recent_passkey_assertion(request)
    return is_recently_authenticated(request)


def _check_may_enrol(request: HttpRequest, *, replacing: bool) -> None:
    if not may_enrol_totp(request, replacing=replacing):
        raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED, "totp enrolment")


def _verify(device: TOTPDevice, code: str) -> str:
    """Check ``code`` against ``device`` (locked); ``""`` when accepted, else why not.

    django-otp saves the outcome either way: ``last_t`` and ``last_used_at`` on success, the
    throttling count on failure. The caller raises only after its transaction, so a failure's
    count is kept.
    """
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return "throttled"
    if device.verify_token(code):
        return ""
    return "wrong or replayed code"


def begin_totp_enrolment(request: HttpRequest, user: AbstractBaseUser) -> TOTPDevice:
    """The pending device whose secret this session shows: its own, or a new one.

    Raises ``reauthentication_required`` when the session may not enrol (see
    :func:`may_enrol_totp`); nothing is written then.
    """
    _check_may_enrol(request, replacing=confirmed_device(user) is not None)
    device = pending_device(user, request.session.get(PENDING_KEY))
    if device is None:
        with transaction.atomic():
            device = new_pending_device(user)
        request.session[PENDING_KEY] = device.pk
    return device


def confirm_totp(request: HttpRequest, user: AbstractBaseUser, code: object) -> TOTPDevice:
    """Confirm this session's pending device with a first ``code`` from the app.

    Only a correct code confirms it; it then replaces any confirmed app (which needs a fresh
    passkey assertion). A wrong, replayed or throttled code is ``second_factor_invalid`` and the
    device stays pending. Sends ``second_factor_removed`` for a replaced app, then
    ``second_factor_added``.
    """
    try:
        with transaction.atomic():
            old = confirmed_device(user, lock=True)
            if old is not None:  # replacing removes the app in place: not during a cooldown
                check_cooldown(user)
            _check_may_enrol(request, replacing=old is not None)
            device = pending_device(user, request.session.get(PENDING_KEY), lock=True)
            if device is None:
                raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "no pending device here")
            failure = _verify(device, clean_code(code, device.digits))
            if not failure:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                if old is not None:
                    old.delete()
        if failure:
            raise PasskeyError(Reason.SECOND_FACTOR_INVALID, failure)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.TOTP_ADDED, error, user=user)
        raise
    request.session.pop(PENDING_KEY, None)
    if old is not None:
        _removed(request, user, old)
    audit.record(request, AuthEvent.Type.TOTP_ADDED, success=True, user=user)
    signals.second_factor_added.send(
        sender=TOTPDevice, request=request, user=user, device=device, kind=KIND
    )
    # One e-mail for a replacement, saying so; the removal's signal above has none of its own.
    notify(
        Event.SECOND_FACTOR_ADDED,
        user,
        request=request,
        factor=KIND,
        device=device,
        replaced=old is not None,
    )
    return device


def remove_totp(request: HttpRequest, user: AbstractBaseUser) -> bool:
    """Remove ``user``'s authenticator app (and any pending one); needs a fresh passkey assertion.

    Returns ``False``, and sends nothing, when there was no confirmed app.
    """
    try:
        check_cooldown(user)
        if not has_recent_passkey_assertion(request):
            raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED, "totp removal")
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.TOTP_REMOVED, error, user=user)
        raise
    with transaction.atomic():
        device = confirmed_device(user, lock=True)
        TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
        if device is not None:
            device.delete()
    request.session.pop(PENDING_KEY, None)
    if device is None:
        return False
    _removed(request, user, device)
    notify(Event.SECOND_FACTOR_REMOVED, user, request=request, factor=KIND, device=device)
    return True


def _removed(request: HttpRequest, user: AbstractBaseUser, device: TOTPDevice) -> None:
    audit.record(request, AuthEvent.Type.TOTP_REMOVED, success=True, user=user)
    signals.second_factor_removed.send(
        sender=TOTPDevice, request=request, user=user, device=device, kind=KIND
    )


def verify_totp(
    request: HttpRequest,
    user: AbstractBaseUser,
    token: object,
    *,
    event_type: AuthEvent.Type = AuthEvent.Type.RECOVERY,
) -> TOTPDevice:
    """Accept a code from ``user``'s confirmed authenticator app, once.

    A wrong, replayed (its time step was already used) or throttled code, or no confirmed app,
    is ``second_factor_invalid``; text that is not a code is ``second_factor_invalid`` too, and
    anything but text ``malformed_request``. Failures are audited as ``event_type`` (the use
    case asking: recovery by default); the caller audits its own success.
    """
    try:
        with transaction.atomic():
            device = confirmed_device(user, lock=True)
            if device is None:
                raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "no authenticator app")
            failure = _verify(device, clean_code(token, device.digits))
        if failure:
            raise PasskeyError(Reason.SECOND_FACTOR_INVALID, failure)
    except PasskeyError as error:
        record_failure(request, event_type, error, user=user)
        raise
    return device
