"""Passkey use cases: sign in, reauthenticate, register, rename, remove, revoke, end sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp import login as otp_login

from django_passkeys import aaguids, audit, ceremonies, ratelimits, signals, user_agents
from django_passkeys.cooldown import check_cooldown
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import (
    MAX_NAME_LENGTH,
    AuthEvent,
    Challenge,
    Credential,
    clean_passkey_name,
)
from django_passkeys.notifications import Event, notify
from django_passkeys.sessions import (
    end_user_sessions,
    is_recently_authenticated,
    login_with_credential,
    mark_passkey_assertion,
    mark_reauthenticated,
    mark_user_verified_assertion,
)

from .failures import record_failure

__all__ = [
    "SignIn",
    "default_name",
    "end_sessions",
    "reauthenticate",
    "reauthentication_options",
    "register",
    "registration_options",
    "remove",
    "rename",
    "revoke",
    "sign_in",
    "sign_in_options",
]


@dataclass(frozen=True)
class SignIn:
    """A completed passkey sign-in: who signed in, with which passkey."""

    user: AbstractBaseUser
    credential: Credential


def _name_or_error(value: object, *, required: bool) -> str:
    try:
        return clean_passkey_name(value, required=required)
    except ValueError as exc:
        raise PasskeyError(Reason.NAME_INVALID, str(exc)) from exc


# ---------------------------------------------------------------------------------------------
# Options: each issues a server-side challenge for the ceremony that follows
# ---------------------------------------------------------------------------------------------


def registration_options(
    request: HttpRequest,
    user: AbstractBaseUser,
    *,
    purpose: Challenge.Purpose = Challenge.Purpose.REGISTER,
) -> dict[str, Any]:
    """Creation options for ``user``'s next passkey (``UPGRADE``: right after a password
    sign-in, see :mod:`django_passkeys.upgrade`)."""
    return ceremonies.registration_options(request, user, purpose=purpose)


def sign_in_options(request: HttpRequest, email_hint: str | None = None) -> dict[str, Any]:
    """Request options for a sign-in: discoverable, or for the account an e-mail names."""
    return ceremonies.authentication_options(request, email_hint)


def reauthentication_options(request: HttpRequest, user: AbstractBaseUser) -> dict[str, Any]:
    """Request options listing ``user``'s passkeys, for a step-up reauthentication."""
    return ceremonies.authentication_options(request, user=user, purpose=Challenge.Purpose.REAUTH)


# ---------------------------------------------------------------------------------------------
# Assertions: sign-in and reauthentication
# ---------------------------------------------------------------------------------------------


def _verify_assertion(
    request: HttpRequest,
    data: dict[str, Any],
    *,
    purpose: Challenge.Purpose,
    owner: Callable[[Credential], Any],
) -> tuple[Credential, Any]:
    """Verify an assertion and accept its owner, counting failures against the account.

    ``owner(credential)`` returns the user to act for or raises :class:`PasskeyError`. It runs
    in the transaction of the verification, so a refused owner rolls back the consumed
    challenge and the counter update: a failure writes nothing but its audit trail. It may also
    write what the success leaves (a sign-in does), which then commits or rolls back with the
    ceremony's own writes.
    """
    # NIST SP 800-63B-4 §3.2.2: an account held after failed attempts is not even verified.
    ratelimits.check_assertion_backoff(data)
    try:
        with transaction.atomic():
            credential = ceremonies.verify_authentication(request, data, purpose=purpose)
            user = owner(credential)
            # Before the commit: with the cache down this fails the whole sign-in (a 503),
            # rather than after it, which would keep a sign-in the client never received.
            ratelimits.reset_assertion_failures(credential.user_id)
    except PasskeyError as error:
        # Outside the transaction, so the failure count and its audit event are kept.
        ratelimits.record_assertion_failure(request, data, error)
        raise
    return credential, user


def _verified_with(request: HttpRequest, credential: Credential) -> None:
    """Stamp the passkey assertion, and mark the session verified for django-otp.

    ``django_otp.login`` only writes the device's id to the session: sites without
    ``OTPMiddleware`` are unaffected, and with it ``request.user.is_verified()`` is true.
    """
    mark_passkey_assertion(request)
    otp_login(request, credential)


def sign_in(request: HttpRequest, data: dict[str, Any]) -> SignIn:
    """Verify a sign-in assertion and sign its owner in (``login()`` rotates the session key).

    Audited either way; sends ``passkey_login_succeeded`` or ``passkey_login_failed``. Every
    write of a success is in one transaction: the consumed challenge and the counter, the new
    session (database sessions), ``last_login``, the session index and the audit event. Should
    any of them fail, none is kept, and the session is not saved either (Django's
    ``SessionMiddleware`` saves no session for a ``5xx`` answer).
    """

    def signed_in_owner(credential: Credential) -> Any:
        user = authenticate(request, credential=credential)
        if user is None:
            raise PasskeyError(Reason.USER_INACTIVE)
        # Security rule 4: login() rotates the session key and CSRF token, and the session
        # index records the credential so that revoking it ends this session.
        login_with_credential(request, user, credential.pk)
        _verified_with(request, credential)
        audit.record(request, AuthEvent.Type.LOGIN, success=True, user=user, credential=credential)
        return user

    try:
        credential, user = _verify_assertion(
            request, data, purpose=Challenge.Purpose.LOGIN, owner=signed_in_owner
        )
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.LOGIN, error)
        raise
    signals.passkey_login_succeeded.send(
        sender=Credential, request=request, user=user, credential=credential
    )
    return SignIn(user=user, credential=credential)


def reauthenticate(
    request: HttpRequest, user: AbstractBaseUser, data: dict[str, Any]
) -> Credential:
    """Verify a step-up assertion by ``user``'s own passkey and renew the session's sign-in."""

    def session_owner(credential: Credential) -> AbstractBaseUser:
        # The challenge already names this user (§7.2 step 6); this guards the session too.
        if credential.user_id != user.pk:
            raise PasskeyError(Reason.CREDENTIAL_NOT_ALLOWED, "credential of another user")
        return user

    try:
        credential, _ = _verify_assertion(
            request, data, purpose=Challenge.Purpose.REAUTH, owner=session_owner
        )
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.REAUTH, error, user=user)
        raise
    mark_reauthenticated(request)
    _verified_with(request, credential)
    # The REAUTH ceremony always requires UV (ceremonies._for_purpose): @passkey_required's stamp.
    mark_user_verified_assertion(request)
    audit.record(request, AuthEvent.Type.REAUTH, success=True, user=user, credential=credential)
    return credential


# ---------------------------------------------------------------------------------------------
# Credential changes: register, rename, remove and revoke
# ---------------------------------------------------------------------------------------------


def register(
    request: HttpRequest,
    user: AbstractBaseUser,
    data: dict[str, Any],
    *,
    name: object = None,
    purpose: Challenge.Purpose = Challenge.Purpose.REGISTER,
) -> Credential:
    """Verify a new credential of ``user`` and store it; sends ``passkey_registered``.

    With ``purpose=UPGRADE`` (the passkey created right after a password sign-in) the challenge
    is the upgrade's, a conditional create without user presence is accepted, and the audit
    event is an ``upgrade``.

    The name is checked before the ceremony, so a bad name leaves the challenge unused. Without
    one, the passkey is named after its provider and the browser (:func:`default_name`).
    """
    upgrade = purpose == Challenge.Purpose.UPGRADE
    event_type = AuthEvent.Type.UPGRADE if upgrade else AuthEvent.Type.REGISTER
    try:
        clean_name = _name_or_error(name, required=False)
        credential = ceremonies.verify_registration(
            request,
            user,
            data,
            name=clean_name or partial(default_name, user_agent=audit.user_agent(request)),
            purpose=purpose,
        )
    except PasskeyError as error:
        record_failure(request, event_type, error, user=user)
        raise
    audit.record(request, event_type, success=True, user=user, credential=credential)
    signals.passkey_registered.send(
        sender=Credential, request=request, user=user, credential=credential
    )
    notify(Event.PASSKEY_ADDED, user, request=request, credential=credential)
    return credential


#: Transports of a roaming authenticator: without a known provider, a "security key".
_ROAMING_TRANSPORTS = frozenset({"usb", "nfc", "ble", "smart-card"})


def default_name(credential: Credential, *, user_agent: str) -> str:
    """The name of a new passkey whose owner gave none, so that a list tells them apart.

    The provider from the AAGUID list and the browser that registered it: "Google Password
    Manager (Chrome on Android)", "Apple Passwords (Safari on iOS)"; the browser alone when the
    provider is unknown ("Chrome on Linux"), "Security key (Firefox on Windows)" for an unknown
    USB, NFC or Bluetooth key; "Passkey" when nothing is known.
    """
    provider = aaguids.provider_for(credential.aaguid)
    browser = user_agents.parse(user_agent)
    where = str(browser) if browser.browser or browser.system else ""
    if provider is not None:
        what = provider.name
        # "Chrome on Mac (Chrome on macOS)" says it twice.
        if browser.browser and browser.browser in what:
            where = ""
    elif set(credential.transports or ()) & _ROAMING_TRANSPORTS and not credential.backup_eligible:
        what = _("Security key")
    else:
        what = ""
    if what and where:
        named = _("%(provider)s (%(browser)s)") % {"provider": what, "browser": where}
    else:
        named = what or where or _("Passkey")
    # The rule of names given by hand (clean_passkey_name): no control characters.
    return "".join(ch for ch in named if ch.isprintable()).strip()[:MAX_NAME_LENGTH]


def owned_credential(user: AbstractBaseUser, pk: int, *, lock: bool = False) -> Credential:
    """``user``'s live credential ``pk``; anyone else's is ``not_found`` too, so none leaks."""
    queryset = Credential.objects.active().filter(pk=pk, user_id=user.pk)
    credential = (queryset.select_for_update() if lock else queryset).first()
    if credential is None:
        raise PasskeyError(Reason.NOT_FOUND)
    return credential


def rename(request: HttpRequest, user: AbstractBaseUser, pk: int, name: object) -> Credential:
    """Rename one of ``user``'s passkeys."""
    try:
        clean_name = _name_or_error(name, required=True)
        credential = owned_credential(user, pk)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.RENAME, error, user=user)
        raise
    previous_name, credential.name = credential.name, clean_name
    credential.save(update_fields=["name"])
    audit.record(request, AuthEvent.Type.RENAME, success=True, user=user, credential=credential)
    # notify() sends passkey_renamed too (a rename has no signal of its own in this flow).
    notify(
        Event.PASSKEY_RENAMED,
        user,
        request=request,
        credential=credential,
        previous_name=previous_name,
    )
    return credential


def remove(request: HttpRequest, user: AbstractBaseUser, pk: int) -> Credential:
    """``user`` removes one of their own passkeys; needs a recent sign-in and no cooldown."""
    try:
        check_cooldown(user)
        with transaction.atomic():
            credential = owned_credential(user, pk, lock=True)
            if not is_recently_authenticated(request):
                raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED)
            _revoke_locked(credential, by=user, reason="removed by user")
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.REVOKE, error, user=user)
        raise
    _revoked(request, credential, by=user)
    notify(Event.PASSKEY_REMOVED, user, request=request, credential=credential)
    return credential


def revoke(
    credential: Credential,
    *,
    by: Any = None,
    reason: str = "",
    request: HttpRequest | None = None,
) -> bool:
    """Revoke ``credential`` (an administrator's or a command's decision).

    Returns ``False``, and does nothing, when it was already revoked. Otherwise the credential
    never authenticates again, the sessions it established end, an audit event is written and
    ``passkey_revoked`` is sent (``request`` is ``None`` from a command).
    """
    with transaction.atomic():
        locked = Credential.objects.active().select_for_update().filter(pk=credential.pk).first()
        if locked is None:
            return False
        _revoke_locked(locked, by=by, reason=reason)
    credential.revoked_at = locked.revoked_at
    credential.revoked_by = locked.revoked_by
    credential.revoke_reason = locked.revoke_reason
    _revoked(request, locked, by=by)
    notify(Event.PASSKEY_REVOKED, locked.user, request=request, credential=locked)
    return True


def _revoke_locked(credential: Credential, *, by: Any, reason: str) -> None:
    # Credential.revoke() saves revoked_at, and that save ends the sessions the credential
    # established (see django_passkeys.sessions).
    revoked_by = by if getattr(by, "is_authenticated", False) else None
    credential.revoke(by=revoked_by, reason=reason)


def _revoked(request: HttpRequest | None, credential: Credential, *, by: Any) -> None:
    owner = credential.user
    audit.record(request, AuthEvent.Type.REVOKE, success=True, user=owner, credential=credential)
    signals.passkey_revoked.send(
        sender=Credential,
        request=request,
        user=owner,
        credential=credential,
        revoked_by=by if getattr(by, "is_authenticated", False) else None,
    )


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------


def end_sessions(request: HttpRequest, user: AbstractBaseUser, *, pk: int | None = None) -> int:
    """End ``user``'s other signed-in sessions (all, or the indexed one ``pk``); return how many.

    The session of ``request`` itself is never ended here: signing out does that. Refused
    during a cooldown: after a takeover, it would sign the owner out.
    """
    try:
        check_cooldown(user)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.SESSIONS, error, user=user)
        raise
    ended = end_user_sessions(user, keep=request.session.session_key, pk=pk)
    audit.record(request, AuthEvent.Type.SESSIONS, success=True, user=user)
    return ended
