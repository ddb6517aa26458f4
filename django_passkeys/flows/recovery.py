"""Account recovery use cases: a mailbox link, then one second factor, then a new passkey.

The only writer of :class:`~django_passkeys.models.RecoveryRequest` (the states and their moves
are :mod:`django_passkeys.recovery`). In the order a user meets them:

1. :func:`request_recovery`: the user types an e-mail address. The answer, the database
   statements and the e-mail rendering are the same whether or not an account has that address
   (security rules 5 and 11); only an account gets the link, and the sending happens after the
   response has gone out, so that a slow mail server tells nothing either.
2. :func:`check_link` (GET of the link) keeps the token's digest in the session and sends the
   browser to the verify page, so the token leaves the address bar; :func:`open_link` (a button
   there) claims the request for this browser session. A link opened by a mail scanner is never
   claimed, and a request claimed by one session is refused to every other.
3. One second factor the account has: :func:`verify_factor` (authenticator-app code or recovery
   code), or an approval: :func:`ask_approval` shows a code, which the user types on a device
   where they are signed in (:func:`approve`, after a fresh passkey assertion), or which staff
   type in the admin (:func:`start_assisted`, :func:`approve_assisted`) for a user with no second
   factor at all. :func:`deny` ends the request from a signed-in device. The waiting browser
   polls :func:`recovery_status` and continues with :func:`continue_recovery`.
4. Completion signs the user in (``login()`` rotates the session key), marks the session
   recovered (:data:`RECOVERED_AT_KEY`), starts the cooldown and notifies every channel. The link
   alone never signs anyone in.

Every step is audited (``recovery_request``, ``recovery_link``, ``recovery``,
``recovery_approval``) and notified through :func:`django_passkeys.notifications.notify`, which
also sends the ``recovery_*`` signals.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Subquery
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_ratelimit.core import get_usage

from django_passkeys import audit, challenges, cooldown, ratelimits
from django_passkeys import recovery as machine
from django_passkeys.ceremonies import base_url
from django_passkeys.clientip import client_ip
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Credential, RecoveryRequest
from django_passkeys.notifications import Event, notify
from django_passkeys.recovery_codes import recovery_codes_state
from django_passkeys.sessions import has_recent_passkey_assertion, live_sessions
from django_passkeys.totp import totp_state

from .failures import record_failure
from .recovery_codes import use_recovery_code
from .totp import verify_totp

logger = logging.getLogger("django_passkeys")

__all__ = [
    "AFTER_RESPONSE_ATTR",
    "RECOVERED_AT_KEY",
    "RecoveryFactors",
    "approval_code",
    "approve",
    "approve_assisted",
    "ask_approval",
    "check_link",
    "continue_recovery",
    "current_recovery",
    "deny",
    "open_link",
    "passkey_added_since",
    "pending_approvals",
    "pending_link",
    "recovery_factors",
    "recovery_link",
    "recovery_status",
    "request_recovery",
    "run_after_response",
    "start_assisted",
    "verify_factor",
]

State = RecoveryRequest.State
Factor = RecoveryRequest.Factor

#: Session key: the digest of a link opened in this browser and not claimed yet.
PENDING_KEY = "_passkeys_recovery_link"
#: Session key: ``{"id": <request pk>, "code": <approval code>}`` of the request this browser
#: claimed. The code is shown by this browser only; the database keeps its HMAC.
SESSION_KEY = "_passkeys_recovery"
#: Session key set when a recovery signs the session in: the time, in seconds since the epoch.
RECOVERED_AT_KEY = "_passkeys_recovered_at"
#: The backend recorded for a recovered session: it loads any active user by id.
BACKEND = "django_passkeys.backends.PasskeyBackend"
#: Request attribute: what the view runs once the response has been sent.
AFTER_RESPONSE_ATTR = "_passkeys_after_response"

#: Longest e-mail address accepted (RFC 5321 path limit).
MAX_EMAIL_LENGTH = 254
_CODE_SPACES = re.compile(r"[ \t-]+")
_DIGITS = re.compile(r"[0-9]+")


# ---------------------------------------------------------------------------------------------
# Work after the response: mail that must not tell, by its duration, that an account exists
# ---------------------------------------------------------------------------------------------


def run_after_response(request: HttpRequest | None, callback: Callable[[], None]) -> None:
    """Run ``callback`` once ``request``'s response has been sent, or now outside a view.

    The recovery views collect these (:data:`AFTER_RESPONSE_ATTR`) and attach them to the
    response's ``close()``, which the server calls after the last byte: the client has its
    answer before any mail server is contacted. Failures are logged, never raised.
    """

    def guarded() -> None:
        try:
            callback()
        except Exception:
            logger.exception("passkey recovery: deferred work failed")

    pending = getattr(request, AFTER_RESPONSE_ATTR, None) if request is not None else None
    if isinstance(pending, list):
        pending.append(guarded)
    else:
        transaction.on_commit(guarded)


# ---------------------------------------------------------------------------------------------
# Rate windows on the account a request is about (the pipeline only knows signed-in users)
# ---------------------------------------------------------------------------------------------


def _window(request: HttpRequest, endpoint: str, subject: str) -> int | None:
    """Count one use of ``endpoint``'s account window for ``subject``; seconds left when over.

    ``subject`` is hashed: the cache never holds an address or a user id in clear.
    """
    rate = ratelimits.limits_for(endpoint).get("account")
    if not rate:
        return None
    key = hashlib.sha256(f"recovery:{endpoint}:{subject}".encode()).hexdigest()[:32]
    usage = get_usage(
        request,
        group=f"passkeys:{endpoint}:recovery-account",
        key=lambda _group, _request: key,
        rate=rate,
        increment=True,
    )
    if usage is None or not usage["should_limit"]:
        return None
    return int(usage["time_left"])


# ---------------------------------------------------------------------------------------------
# 1. Requesting a link
# ---------------------------------------------------------------------------------------------


def _clean_email(value: object) -> str:
    if not isinstance(value, str):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "email is not text")
    email = value.strip()
    # NUL: PostgreSQL text cannot hold it; control characters: never part of an address.
    if not email or len(email) > MAX_EMAIL_LENGTH or any(ord(ch) < 32 for ch in email):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "email")
    return email


def _column(model: Any, name: str) -> str:
    """The quoted column of ``model``'s field ``name``."""
    column = getattr(model._meta.get_field(name), "column", None)
    if not isinstance(column, str):
        raise ImproperlyConfigured(f"{model.__name__}.{name} is not a column")
    quoted: str = connection.ops.quote_name(column)
    return quoted


def _insert_request(address: str, digest: str, ip_address: str | None) -> None:
    """One ``INSERT ... SELECT``: a request for the active account with ``address``, if any.

    The same statement runs whether or not the address belongs to an account; it inserts one
    row or none. When several active accounts share the address, the one signed in most
    recently is recovered.
    """
    user_model = get_user_model()
    meta = user_model._meta
    ops = connection.ops
    field_names = {f.name for f in meta.concrete_fields}
    email = _column(user_model, user_model.get_email_field_name())
    conditions = [f"UPPER({email}) = UPPER(%s)"]
    if "is_active" in field_names:
        conditions.append(f"{_column(user_model, 'is_active')} = %s")
    order = ""
    if "last_login" in field_names:
        last_login = _column(user_model, "last_login")
        order = f" ORDER BY ({last_login} IS NULL), {last_login} DESC"
    now = timezone.now()
    row = {
        "token_sha256": digest,
        "state": State.REQUESTED.value,
        "created_at": ops.adapt_datetimefield_value(now),
        "expires_at": ops.adapt_datetimefield_value(machine.deadline(now)),
        "session_binding": "",
        "factor": "",
        "factor_attempts": 0,
        "approval_code_sha256": "",
        "requesting_ip": ops.adapt_ipaddressfield_value(ip_address),
        "opening_user_agent": "",
    }
    params: list[Any] = [*row.values(), address]
    if "is_active" in field_names:
        params.append(True)
    columns = ", ".join(_column(RecoveryRequest, name) for name in ["user", *row])
    pk = _column(user_model, meta.pk.name if meta.pk is not None else "id")
    sql = (
        f"INSERT INTO {ops.quote_name(RecoveryRequest._meta.db_table)} ({columns}) "
        f"SELECT {pk}, {', '.join(['%s'] * len(row))} "
        f"FROM {ops.quote_name(meta.db_table)} WHERE {' AND '.join(conditions)}{order} LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _matching_users(address: str) -> Any:
    user_model = get_user_model()
    lookup = {f"{user_model.get_email_field_name()}__iexact": address}
    users = user_model._default_manager.filter(**lookup)
    if any(f.name == "is_active" for f in user_model._meta.concrete_fields):
        users = users.filter(is_active=True)
    return users


def recovery_link(token: str, request: HttpRequest | None = None) -> str:
    """The link for ``token``: ``PASSKEYS_BASE_URL`` and the route, never the ``Host`` header.

    On a multi-tenant site, the base URL of ``request``'s Relying Party (``ceremonies.base_url``).
    """
    return base_url(request) + reverse("django_passkeys:recover-link", args=[token])


def _link_message(user: Any, address: str, token: str, request: HttpRequest) -> Any:
    """The link e-mail (subject, text and HTML rendered), addressed to ``address``."""
    context = {
        "user": user,
        "link": recovery_link(token, request),
        "minutes": max(1, conf.PASSKEYS_RECOVERY_LINK_TTL // 60),
        "site_name": conf.PASSKEYS_RP_NAME,
        "when": timezone.now(),
        "ip_address": client_ip(request),
    }
    subject: str = render_to_string("django_passkeys/email/recovery_link_subject.txt", context)
    # One header line, whatever the template's line breaks.
    subject = " ".join(subject.split())
    text = render_to_string("django_passkeys/email/recovery_link.txt", context)
    html = render_to_string("django_passkeys/email/recovery_link.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [address])
    message.attach_alternative(html, "text/html")
    return message


def request_recovery(request: HttpRequest, email: object) -> None:
    """Send a recovery link to the account with address ``email``, if there is one.

    Whatever the address, the caller gets nothing back and the same statements run: the
    older live requests of the matching account are superseded, one ``INSERT ... SELECT``
    creates the new request (or nothing), the new request is read back, the attempt is audited,
    and the link e-mail is rendered. Only an account's request is mailed (the link to the
    account's own address; the ``recovery_requested`` notice to every channel), after the
    response. Past the per-address window of ``PASSKEYS_RATE_LIMITS["recover"]["account"]`` the
    same happens with an address that matches nobody: silently, so that the window does not
    tell either.
    """
    address = _clean_email(email)
    token = machine.new_token()
    digest = machine.token_digest(token)
    if _window(request, "recover", address.casefold()) is not None:
        # Random, under a reserved domain (RFC 2606): matches no account, same statements.
        address = f"{secrets.token_hex(16)}@recovery.invalid"
    with transaction.atomic():
        machine.supersede_live(Subquery(_matching_users(address).values("pk")))
        _insert_request(address, digest, client_ip(request))
        rr = RecoveryRequest.objects.select_related("user").filter(token_sha256=digest).first()
        user = rr.user if rr is not None else None
        audit.record(request, AuthEvent.Type.RECOVERY_REQUEST, success=True, user=user)
    # Rendered either way (a stand-in user for an unknown address), so the work is the same.
    stand_in = user if user is not None else get_user_model()(**_stand_in_fields(address))
    message = _link_message(stand_in, address, token, request)
    if rr is None or user is None:
        return
    account_address = getattr(user, user.get_email_field_name(), "") or address
    message.to = [account_address]
    run_after_response(request, message.send)
    run_after_response(
        request,
        lambda: notify(Event.RECOVERY_REQUESTED, user, request=request, recovery_request=rr),
    )


def _stand_in_fields(address: str) -> dict[str, Any]:
    user_model = get_user_model()
    return {user_model.USERNAME_FIELD: address, user_model.get_email_field_name(): address}


# ---------------------------------------------------------------------------------------------
# 2. Opening the link
# ---------------------------------------------------------------------------------------------


def _bound_to(request: HttpRequest, rr: RecoveryRequest) -> bool:
    binding = challenges.session_binding(request, create=False)
    return bool(
        binding and rr.session_binding and secrets.compare_digest(rr.session_binding, binding)
    )


def _expire(rr: RecoveryRequest) -> None:
    """Record that ``rr`` passed its deadline (a move like any other; a race changes nothing)."""
    try:
        machine.transition(rr, State.EXPIRED)
    except machine.InvalidTransition:
        rr.refresh_from_db(fields=["state", "used_at"])


def _refusal(rr: RecoveryRequest) -> PasskeyError:
    """The error for a request that cannot go on: expired, denied, or otherwise over."""
    if rr.state == State.EXPIRED:
        return PasskeyError(Reason.RECOVERY_TOKEN_EXPIRED)
    if rr.state == State.DENIED:
        return PasskeyError(Reason.RECOVERY_DENIED)
    return PasskeyError(Reason.RECOVERY_TOKEN_INVALID, f"request is {rr.state}")


def _by_token(request: HttpRequest, token: object) -> RecoveryRequest:
    """The request of a link token that may still be claimed here, or the reason why not."""
    if not isinstance(token, str) or not token or len(token) > 128:
        raise PasskeyError(Reason.RECOVERY_TOKEN_INVALID, "no token")
    rr = (
        RecoveryRequest.objects.select_related("user")
        .filter(token_sha256=machine.token_digest(token))
        .first()
    )
    if rr is None:
        raise PasskeyError(Reason.RECOVERY_TOKEN_INVALID, "unknown token")
    if machine.is_expired(rr):
        _expire(rr)
    if rr.state == State.REQUESTED:
        return rr
    if rr.state in machine.LIVE and _bound_to(request, rr):
        return rr  # opened here before: the user clicked the link again
    raise _refusal(rr)


def check_link(request: HttpRequest, token: object) -> RecoveryRequest:
    """GET of the link: remember it in this session, unclaimed; raise if it is over.

    Writes nothing to the database (but an expiry), so that a mail scanner fetching the link
    changes nothing. Failures are audited (``recovery_link``).
    """
    try:
        rr = _by_token(request, token)
    except PasskeyError as error:
        record_failure(request, AuthEvent.Type.RECOVERY_LINK, error)
        raise
    if rr.state == State.REQUESTED:
        request.session[PENDING_KEY] = rr.token_sha256
    return rr


def open_link(request: HttpRequest) -> RecoveryRequest:
    """Claim the link this session opened: ``requested`` → ``link_opened``, bound to it.

    The approval code is drawn now and kept in this session (its HMAC in the database). A link
    claimed by another session, used, superseded or expired is refused; audited either way.
    """
    digest = request.session.get(PENDING_KEY)
    try:
        if not isinstance(digest, str):
            raise PasskeyError(Reason.RECOVERY_TOKEN_INVALID, "no link opened in this session")
        rr = RecoveryRequest.objects.select_related("user").filter(token_sha256=digest).first()
        if rr is None:
            raise PasskeyError(Reason.RECOVERY_TOKEN_INVALID, "unknown token")
        if machine.is_expired(rr):
            _expire(rr)
        if rr.state != State.REQUESTED:
            raise _refusal(rr)
        code = machine.new_approval_code()
        now = timezone.now()
        try:
            machine.transition(
                rr,
                State.LINK_OPENED,
                opened_at=now,
                expires_at=machine.deadline(now),
                session_binding=challenges.session_binding(request) or "",
                approval_code_sha256=machine.approval_code_digest(rr, code),
                opening_ip=client_ip(request),
                opening_user_agent=audit.user_agent(request),
            )
        except machine.InvalidTransition as exc:
            raise PasskeyError(Reason.RECOVERY_TOKEN_INVALID, str(exc)) from exc
    except PasskeyError as error:
        # The link cannot be claimed any more: the page stops offering to.
        request.session.pop(PENDING_KEY, None)
        record_failure(request, AuthEvent.Type.RECOVERY_LINK, error)
        raise
    request.session.pop(PENDING_KEY, None)
    request.session[SESSION_KEY] = {"id": rr.pk, "code": code}
    audit.record(request, AuthEvent.Type.RECOVERY_LINK, success=True, user=rr.user)
    return rr


def pending_link(request: HttpRequest) -> bool:
    """Whether this session opened a link it has not claimed yet."""
    return isinstance(request.session.get(PENDING_KEY), str)


def current_recovery(request: HttpRequest, *, lock: bool = False) -> RecoveryRequest | None:
    """The request this browser session claimed, in whatever state it is now, or ``None``.

    A request past its deadline is marked expired here. ``lock`` takes the row (call inside a
    transaction).
    """
    held = request.session.get(SESSION_KEY)
    pk = held.get("id") if isinstance(held, dict) else None
    if not isinstance(pk, int):
        return None
    queryset = RecoveryRequest.objects.select_related("user").filter(pk=pk)
    rr = (queryset.select_for_update(of=("self",)) if lock else queryset).first()
    if rr is None or not _bound_to(request, rr):
        return None
    if machine.is_expired(rr):
        _expire(rr)
    return rr


def approval_code(request: HttpRequest) -> str:
    """The approval code this session shows for its request ("" without one)."""
    held = request.session.get(SESSION_KEY)
    code = held.get("code") if isinstance(held, dict) else None
    return code if isinstance(code, str) else ""


# ---------------------------------------------------------------------------------------------
# 3. The second factor
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecoveryFactors:
    """The second factors a user can recover with; only these are offered."""

    totp: bool
    recovery_code: bool
    #: Another device where the user is signed in, and a passkey to confirm the approval with.
    device: bool

    @property
    def any(self) -> bool:
        """Whether the user can recover on their own (otherwise: support, assisted recovery)."""
        return self.totp or self.recovery_code or self.device


def recovery_factors(user: Any) -> RecoveryFactors:
    """What ``user`` has: a confirmed authenticator app, unused recovery codes, a device."""
    device = Credential.objects.active().filter(user_id=user.pk).exists() and bool(
        live_sessions(user)
    )
    codes = recovery_codes_state(user)
    return RecoveryFactors(
        totp=totp_state(user).enabled,
        recovery_code=codes.enabled and codes.remaining > 0,
        device=device,
    )


def _live_or_refuse(rr: RecoveryRequest | None, *states: str) -> RecoveryRequest:
    if rr is None:
        raise PasskeyError(Reason.RECOVERY_TOKEN_INVALID, "no recovery in this session")
    if rr.state not in states:
        raise _refusal(rr)
    return rr


def _attempt(
    request: HttpRequest,
    event_type: AuthEvent.Type,
    work: Callable[[], RecoveryRequest],
    *,
    user: Any = None,
) -> RecoveryRequest:
    """Run one step in a transaction; a refusal commits what it counted, then is audited.

    A :class:`PasskeyError` does not roll back: what the step wrote before refusing is a
    complete fact (an expiry, a wrong factor counted, the factor's own audit event and
    throttling). Anything else rolls the step back whole.
    """
    error: PasskeyError | None = None
    with transaction.atomic():
        try:
            return work()
        except PasskeyError as exc:
            error = exc
        except machine.InvalidTransition as exc:
            # Another request moved it first (two tabs, a double click).
            error = PasskeyError(Reason.RECOVERY_TOKEN_INVALID, str(exc))
    record_failure(request, event_type, error, user=user)
    raise error


def _count_failure(request: HttpRequest, rr: RecoveryRequest) -> None:
    """One more wrong factor on ``rr`` (locked); the last one allowed fails the request.

    A failed request is notified (``recovery_failed``) once the transaction commits.
    """
    rr.factor_attempts += 1
    if rr.factor_attempts < conf.PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS:
        RecoveryRequest.objects.filter(pk=rr.pk).update(factor_attempts=rr.factor_attempts)
        return
    machine.transition(rr, State.FAILED, factor_attempts=rr.factor_attempts)
    notify(Event.RECOVERY_FAILED, rr.user, request=request, recovery_request=rr)


def _check_account_window(request: HttpRequest, rr: RecoveryRequest) -> None:
    left = _window(request, "recover-verify", str(rr.user_id))
    if left is not None:
        raise PasskeyError(
            Reason.RATE_LIMITED, "recovery factor window of the account", retry_after=left
        )


def _check_active(rr: RecoveryRequest) -> None:
    if not getattr(rr.user, "is_active", True):
        raise PasskeyError(Reason.USER_INACTIVE, "the account is inactive")


def _complete(request: HttpRequest, rr: RecoveryRequest, factor: str) -> RecoveryRequest:
    """``rr`` → ``completed``: sign the user in, mark the session recovered, start the cooldown.

    Call inside the transaction that holds the row; the notice goes out once it commits.
    """
    _check_active(rr)
    user = rr.user
    machine.transition(rr, State.COMPLETED, factor=factor)
    cooldown.start_cooldown(user, reason="recovery")
    # login() rotates the session key and CSRF token (security rule 4). An anonymous session
    # keeps its data through it, so the recovery's own keys are dropped here.
    login(request, user, backend=BACKEND)
    request.session.pop(SESSION_KEY, None)
    request.session[RECOVERED_AT_KEY] = int(time.time())
    audit.record(request, AuthEvent.Type.RECOVERY, success=True, user=user)
    notify(Event.RECOVERY_COMPLETED, user, request=request, recovery_request=rr)
    return rr


def verify_factor(request: HttpRequest, method: object, code: object) -> RecoveryRequest:
    """Check an authenticator-app code (``method="totp"``) or a recovery code, then complete.

    A wrong, replayed or throttled code is ``second_factor_invalid`` (audited by the factor's
    flow) and counts against the request; the ``PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS``-th fails
    it. Per account, ``PASSKEYS_RATE_LIMITS["recover-verify"]["account"]`` bounds the attempts
    across requests. A code that is not text is refused unchecked and uncounted.
    """

    def work() -> RecoveryRequest:
        if method not in (Factor.TOTP, Factor.RECOVERY_CODE):
            raise PasskeyError(Reason.MALFORMED_REQUEST, "method")
        rr = _live_or_refuse(
            current_recovery(request, lock=True), State.LINK_OPENED, State.APPROVAL_PENDING
        )
        _check_account_window(request, rr)
        # Before the factor is spent: a code used up for an account that cannot sign in would be
        # lost for nothing.
        _check_active(rr)
        try:
            if method == Factor.TOTP:
                verify_totp(request, rr.user, code, event_type=AuthEvent.Type.RECOVERY)
            else:
                use_recovery_code(request, rr.user, code)
        except PasskeyError as error:
            if error.code == Reason.SECOND_FACTOR_INVALID:
                _count_failure(request, rr)
            raise
        return _complete(request, rr, str(method))

    return _attempt(request, AuthEvent.Type.RECOVERY, work)


def ask_approval(request: HttpRequest) -> RecoveryRequest:
    """Ask the user's signed-in devices to approve: ``link_opened`` → ``approval_pending``.

    Only when :func:`recovery_factors` finds a device. Asking again while pending changes
    nothing.
    """

    def work() -> RecoveryRequest:
        rr = _live_or_refuse(
            current_recovery(request, lock=True), State.LINK_OPENED, State.APPROVAL_PENDING
        )
        if rr.state == State.APPROVAL_PENDING and rr.factor == Factor.DEVICE:
            return rr
        if rr.state != State.LINK_OPENED or not recovery_factors(rr.user).device:
            raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "no device can approve")
        machine.transition(
            rr, State.APPROVAL_PENDING, factor=Factor.DEVICE, expires_at=machine.deadline()
        )
        audit.record(request, AuthEvent.Type.RECOVERY_APPROVAL, success=True, user=rr.user)
        return rr

    return _attempt(request, AuthEvent.Type.RECOVERY_APPROVAL, work)


def passkey_added_since(user: Any, timestamp: int) -> bool:
    """Whether ``user`` registered a passkey that is still live at or after ``timestamp``."""
    since = datetime.fromtimestamp(timestamp, tz=UTC)
    return Credential.objects.active().filter(user_id=user.pk, created_at__gte=since).exists()


def recovery_status(request: HttpRequest) -> dict[str, Any]:
    """What the waiting page polls: ``{"state", "ready"}``; ``ready`` once approved.

    Reads only this session's own request (``"state": "none"`` without one).
    """
    rr = current_recovery(request)
    state = rr.state if rr is not None else "none"
    return {"state": state, "ready": state == State.APPROVED}


def continue_recovery(request: HttpRequest) -> RecoveryRequest:
    """Complete an approved request in the browser that asked: ``approved`` → ``completed``."""

    def work() -> RecoveryRequest:
        rr = _live_or_refuse(current_recovery(request, lock=True), *machine.LIVE)
        if rr.state != State.APPROVED:
            raise PasskeyError(Reason.SECOND_FACTOR_INVALID, f"not approved yet: {rr.state}")
        return _complete(request, rr, rr.factor)

    return _attempt(request, AuthEvent.Type.RECOVERY, work)


# ---------------------------------------------------------------------------------------------
# Approving from a signed-in device, and denying
# ---------------------------------------------------------------------------------------------


def pending_approvals(user: Any) -> list[RecoveryRequest]:
    """``user``'s requests waiting for an approval and still in time, newest first."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        RecoveryRequest.objects.filter(
            user_id=user.pk, state=State.APPROVAL_PENDING, expires_at__gt=timezone.now()
        ).order_by("-opened_at")
    )


def _clean_approval_code(value: object) -> str:
    if not isinstance(value, str):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "code is not text")
    code = _CODE_SPACES.sub("", value[:32])
    if len(code) != machine.APPROVAL_CODE_DIGITS or not _DIGITS.fullmatch(code):
        raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "not an approval code")
    return code


def _locked_pending(pk: int, **filters: Any) -> RecoveryRequest:
    rr = (
        RecoveryRequest.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(pk=pk, state=State.APPROVAL_PENDING, **filters)
        .first()
    )
    if rr is None:
        # Another account's request, or none at all: the same answer, so nothing leaks.
        raise PasskeyError(Reason.NOT_FOUND, "no such pending recovery")
    if machine.is_expired(rr):
        _expire(rr)
        raise _refusal(rr)
    return rr


def _approve(
    request: HttpRequest, rr: RecoveryRequest, approver: Any, code: object
) -> RecoveryRequest:
    """Check ``code`` against ``rr`` (locked) and approve it; a wrong code counts."""
    try:
        clean = _clean_approval_code(code)
        if not machine.approval_code_matches(rr, clean):
            raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "approval code does not match")
    except PasskeyError as error:
        if error.code == Reason.SECOND_FACTOR_INVALID:
            _count_failure(request, rr)
        raise
    now = timezone.now()
    machine.transition(
        rr, State.APPROVED, approved_by=approver, approved_at=now, expires_at=machine.deadline(now)
    )
    audit.record(request, AuthEvent.Type.RECOVERY_APPROVAL, success=True, user=rr.user)
    return rr


def approve(
    request: HttpRequest, approver: AbstractBaseUser, pk: int, code: object
) -> RecoveryRequest:
    """Approve ``approver``'s own pending request ``pk`` from this signed-in device.

    Needs a passkey assertion in this session within ``PASSKEYS_REAUTH_MAX_AGE``
    (``reauthentication_required``) and the code the recovering browser shows; a wrong code
    counts against the request. Another account's request is ``not_found``.
    """

    def work() -> RecoveryRequest:
        if not has_recent_passkey_assertion(request):
            raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED, "approval needs a passkey")
        rr = _locked_pending(pk, user_id=approver.pk, factor=Factor.DEVICE)
        return _approve(request, rr, approver, code)

    return _attempt(request, AuthEvent.Type.RECOVERY_APPROVAL, work, user=approver)


def deny(request: HttpRequest, user: AbstractBaseUser, pk: int) -> RecoveryRequest:
    """End ``user``'s own pending request ``pk`` ("this wasn't me": ``denied``), and notify."""

    def work() -> RecoveryRequest:
        rr = _locked_pending(pk, user_id=user.pk)
        machine.transition(rr, State.DENIED)
        audit.record(
            request,
            AuthEvent.Type.RECOVERY_APPROVAL,
            success=False,
            reason_code=Reason.RECOVERY_DENIED.value,
            user=user,
        )
        notify(Event.RECOVERY_DENIED, user, request=request, recovery_request=rr)
        return rr

    return _attempt(request, AuthEvent.Type.RECOVERY_APPROVAL, work, user=user)


# ---------------------------------------------------------------------------------------------
# Assisted recovery: staff approve, for a user with no second factor
# ---------------------------------------------------------------------------------------------


def _check_staff(staff: Any, rr: RecoveryRequest) -> None:
    if not getattr(staff, "is_staff", False) or not getattr(staff, "is_active", False):
        raise PasskeyError(Reason.NOT_AUTHENTICATED, "assisted recovery needs staff")
    if staff.pk == rr.user_id:
        # Nobody approves their own recovery: that would be the link alone.
        raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "staff cannot assist themselves")


def start_assisted(request: HttpRequest, staff: Any, pk: int) -> RecoveryRequest:
    """Staff take over request ``pk``, whose link was opened: → ``approval_pending`` (staff).

    The user's browser then shows its approval code and waits; staff confirm the person's
    identity their own way and approve with that code (:func:`approve_assisted`).
    """

    def work() -> RecoveryRequest:
        rr = (
            RecoveryRequest.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=pk)
            .first()
        )
        if rr is None:
            raise PasskeyError(Reason.NOT_FOUND, "no such recovery")
        _check_staff(staff, rr)
        if machine.is_expired(rr):
            _expire(rr)
        if rr.state != State.LINK_OPENED:
            raise _refusal(rr)
        machine.transition(
            rr, State.APPROVAL_PENDING, factor=Factor.STAFF, expires_at=machine.deadline()
        )
        audit.record(request, AuthEvent.Type.RECOVERY_APPROVAL, success=True, user=rr.user)
        return rr

    return _attempt(request, AuthEvent.Type.RECOVERY_APPROVAL, work)


def approve_assisted(request: HttpRequest, staff: Any, pk: int, code: object) -> RecoveryRequest:
    """Staff approve assisted request ``pk`` with the code the user reads from their browser.

    Staff approval counts as the second factor; ``approved_by`` records who approved (and the
    admin's log the action). A wrong code counts against the request.
    """

    def work() -> RecoveryRequest:
        rr = _locked_pending(pk, factor=Factor.STAFF)
        _check_staff(staff, rr)
        return _approve(request, rr, staff, code)

    return _attempt(request, AuthEvent.Type.RECOVERY_APPROVAL, work)
