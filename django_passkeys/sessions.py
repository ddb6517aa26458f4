"""Sessions: what a sign-in leaves in the session, the session index, and ending sessions.

The whole picture, in the order things happen (security rules 4 and 9 of the design):

**Sign-in.** Every login (password logins too) goes through Django's ``login()``, which rotates
the session key and the CSRF token. Two ``user_logged_in`` receivers then write what this module
keeps:

- in the session: the sign-in time (:data:`AUTH_TIME_KEY`, read by
  :func:`is_recently_authenticated` for step-up) and, for a passkey sign-in, the credential used
  (:data:`CREDENTIAL_KEY`, written by :func:`login_with_credential`);
- in the session index: one :class:`~django_passkeys.models.UserSession` row (session key, user,
  the passkey used if any, address, browser), so that sessions can be listed and ended
  server-side in the db, cache and cached_db engines alike (``signed_cookies`` cannot end a
  session: check ``passkeys.E008``).

**Revocation.** Revoking a credential (any save that writes ``revoked_at``: ``revoke()``, the
admin action, the manage page) or deleting it ends at once every indexed session it
established, by deleting it from the session engine's store. Two things escape the index:
a revocation written with ``QuerySet.update()`` (no signal), and a session whose key changed
after sign-in without a login (``update_session_auth_hash()`` after a password change,
``cycle_key()``). Both are caught by
:class:`~django_passkeys.middleware.RevokedCredentialMiddleware`, which the app requires
(check ``passkeys.E017``): before each request of a passkey-established session it checks, with
one indexed query, that the credential in :data:`CREDENTIAL_KEY` is still active, and signs the
session out otherwise; after the request it moves the index row to the new key when the key
rotated, so the index keeps finding the session.

**Sign-out.** A signed-out session leaves the index; rows of sessions that ended some other way
(expiry, ``clearsessions``) are forgotten by :func:`live_sessions` and ``passkeys_cleanup``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, login, logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from django_passkeys.audit import user_agent
from django_passkeys.clientip import client_ip
from django_passkeys.conf import conf
from django_passkeys.models import Credential, UserSession

logger = logging.getLogger("django_passkeys")

AUTH_TIME_KEY = "_passkeys_auth_time"
CREDENTIAL_KEY = "_passkeys_credential"
ASSERTION_TIME_KEY = "_passkeys_assertion_time"
VERIFIED_ASSERTION_TIME_KEY = "_passkeys_verified_assertion_time"
_LOGIN_CREDENTIAL_ATTR = "_passkeys_login_credential"
#: Set on a request whose login or logout already wrote the index for the session's new key.
_INDEXED_ATTR = "_passkeys_session_indexed"


# -- What a sign-in leaves in the session ---------------------------------------------------------


def record_login_time(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: every login, password logins included, stamps the session.

    A login that is not a passkey login also drops a passkey recorded earlier in the same
    session (Django keeps the session of a user signing in again), so that revoking that passkey
    does not end a session it no longer established: the index row says the same.
    """
    if request is not None and hasattr(request, "session"):
        mark_reauthenticated(request)
        if logging_in_with(request) is None:
            request.session.pop(CREDENTIAL_KEY, None)


def record_credential(request: HttpRequest, credential_pk: int) -> None:
    """Remember which credential established this session, so revoking it can end the session."""
    request.session[CREDENTIAL_KEY] = credential_pk


def login_with_credential(request: HttpRequest, user: Any, credential_pk: int) -> None:
    """``login()`` with a verified passkey: rotate the session key and CSRF token, then record it.

    The credential travels to the ``user_logged_in`` receivers on the request (read with
    :func:`logging_in_with`), so the session index is written with it in one insert.
    """
    setattr(request, _LOGIN_CREDENTIAL_ATTR, credential_pk)
    try:
        login(request, user)
    finally:
        delattr(request, _LOGIN_CREDENTIAL_ATTR)
    record_credential(request, credential_pk)


def logging_in_with(request: HttpRequest) -> int | None:
    """The credential of the passkey login in progress on ``request``, if any."""
    value = getattr(request, _LOGIN_CREDENTIAL_ATTR, None)
    return value if isinstance(value, int) else None


def mark_reauthenticated(request: HttpRequest) -> None:
    """Stamp the session's sign-in time: at every login and after a step-up reauthentication."""
    request.session[AUTH_TIME_KEY] = int(time.time())


def is_recently_authenticated(request: HttpRequest) -> bool:
    """Whether the session's sign-in is younger than ``PASSKEYS_REAUTH_MAX_AGE``."""
    stamp = request.session.get(AUTH_TIME_KEY)
    if not isinstance(stamp, int):
        return False
    return 0 <= time.time() - stamp <= conf.PASSKEYS_REAUTH_MAX_AGE


def mark_passkey_assertion(request: HttpRequest) -> None:
    """Stamp the time of the session's last verified passkey assertion (sign-in or step-up)."""
    request.session[ASSERTION_TIME_KEY] = int(time.time())


def mark_user_verified_assertion(request: HttpRequest) -> None:
    """Stamp a passkey assertion that carried user verification (UV): a step-up, which always
    requires it. Read by :func:`has_recent_passkey_assertion` with ``user_verified=True``."""
    request.session[VERIFIED_ASSERTION_TIME_KEY] = int(time.time())


def has_recent_passkey_assertion(
    request: HttpRequest, max_age: int | None = None, *, user_verified: bool = False
) -> bool:
    """Whether a passkey assertion verified in this session within ``max_age`` seconds
    (default ``PASSKEYS_REAUTH_MAX_AGE``).

    Stricter than :func:`is_recently_authenticated`, which a password sign-in also satisfies:
    changes to second factors ask for the passkey itself. With ``user_verified``, only an
    assertion with user verification counts (``@passkey_required``): a step-up, or any passkey
    assertion where ``PASSKEYS_USER_VERIFICATION`` is ``"required"``, since every ceremony then
    refuses one without UV.
    """
    key = ASSERTION_TIME_KEY
    if user_verified and conf.PASSKEYS_USER_VERIFICATION != "required":
        key = VERIFIED_ASSERTION_TIME_KEY
    stamp = request.session.get(key)
    if not isinstance(stamp, int):
        return False
    limit = conf.PASSKEYS_REAUTH_MAX_AGE if max_age is None else max_age
    return 0 <= time.time() - stamp <= limit


# -- The session index ----------------------------------------------------------------------------


def session_store(session_key: str | None = None) -> SessionBase:
    """A store of the configured ``SESSION_ENGINE`` for ``session_key``."""
    engine = import_module(settings.SESSION_ENGINE)
    store: SessionBase = engine.SessionStore(session_key=session_key)
    return store


def index_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: index the new session (one insert, or update on re-login)."""
    session = getattr(request, "session", None)
    if request is None or session is None or not session.session_key:
        return  # force_login() without a request, or an engine without server-side keys
    row = UserSession(
        user=user,
        session_key=session.session_key,
        credential_id=logging_in_with(request),
        ip_address=client_ip(request),
        user_agent=user_agent(request),
    )
    # Signing in again in a session of the same user keeps its key (Django only rotates it for
    # a new user), so the row may exist: one upsert either way.
    UserSession.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["session_key"],
        update_fields=["user", "credential", "created_at", "ip_address", "user_agent"],
    )
    setattr(request, _INDEXED_ATTR, True)


def forget_session(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: a signed-out session leaves the index."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        UserSession.objects.filter(session_key=session.session_key).delete()
    if request is not None:
        setattr(request, _INDEXED_ATTR, True)


def follow_key_rotation(request: HttpRequest, previous_key: str | None) -> None:
    """Move the index row to the session's new key when the request rotated it without a login.

    Django sends no signal for ``cycle_key()`` (``update_session_auth_hash()`` calls it after a
    password change), so without this the row would keep a key that no longer exists and
    revoking the passkey could not reach the session from the index. Costs nothing unless the
    key changed; one UPDATE when it did.
    """
    session = getattr(request, "session", None)
    if session is None or not previous_key or getattr(request, _INDEXED_ATTR, False):
        return
    current = session.session_key
    if not current or current == previous_key or SESSION_KEY not in session:
        return
    UserSession.objects.filter(session_key=previous_key).update(session_key=current)


def live_sessions(user: Any) -> list[UserSession]:
    """The user's indexed sessions that still exist, newest first; forgets the ones that don't."""
    rows = list(UserSession.objects.filter(user_id=user.pk).select_related("credential"))
    gone = [row.pk for row in rows if not session_store().exists(row.session_key)]
    if gone:
        UserSession.objects.filter(pk__in=gone).delete()
    return [row for row in rows if row.pk not in gone]


# -- Ending sessions ------------------------------------------------------------------------------


def end_sessions(rows: Iterable[UserSession]) -> int:
    """Delete each row's session from the session store, then the rows; return how many."""
    ended: list[int] = []
    for row in rows:
        session_store(row.session_key).delete()
        ended.append(row.pk)
    if ended:
        UserSession.objects.filter(pk__in=ended).delete()
    return len(ended)


def end_credential_sessions(credential_pk: int) -> int:
    """End every indexed session that the credential established."""
    count = end_sessions(UserSession.objects.filter(credential_id=credential_pk))
    if count:
        logger.info(
            "passkey revoked: %d sessions ended",
            count,
            extra={"passkeys_event": "sessions_ended", "passkeys_sessions_ended": count},
        )
    return count


def end_user_sessions(user: Any, *, keep: str | None = None, pk: int | None = None) -> int:
    """End the user's indexed sessions: all but the one with key ``keep``, or only row ``pk``."""
    rows = UserSession.objects.filter(user_id=user.pk)
    if keep:
        rows = rows.exclude(session_key=keep)
    if pk is not None:
        rows = rows.filter(pk=pk)
    return end_sessions(rows)


def credential_saved(sender: Any, instance: Credential, **kwargs: Any) -> None:
    """``post_save`` receiver: a save that revokes a credential ends the sessions it created."""
    update_fields = kwargs.get("update_fields")
    if instance.revoked_at is None:
        return
    if update_fields is not None and "revoked_at" not in update_fields:
        return
    end_credential_sessions(instance.pk)


def credential_deleted(sender: Any, instance: Credential, **kwargs: Any) -> None:
    """``pre_delete`` receiver: deleting a credential ends its sessions too."""
    end_credential_sessions(instance.pk)


def sign_out_if_revoked(request: HttpRequest) -> bool:
    """Sign the request's session out if the passkey that established it is no longer active.

    The request-time half of revocation, run by the middleware before the view: it catches
    what the index cannot (see the module docstring). One indexed query, and only for a session
    a passkey established; returns whether the session was signed out.
    """
    session = getattr(request, "session", None)
    credential_pk = session.get(CREDENTIAL_KEY) if session is not None else None
    if credential_pk is None:
        return False
    if Credential.objects.active().filter(pk=credential_pk).exists():
        return False
    logout(request)
    logger.info(
        "session of a revoked passkey signed out",
        extra={"passkeys_event": "sessions_ended", "passkeys_sessions_ended": 1},
    )
    return True
