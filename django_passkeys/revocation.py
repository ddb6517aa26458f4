"""Ending sessions: the session index, and what happens to sessions when a passkey is revoked.

Every login (password logins too) writes a :class:`~django_passkeys.models.UserSession` row with
the session key and, for a passkey login, the credential used. Revoking a credential
(``Credential.revoke()``, the admin action, the manage page: all save ``revoked_at``) or deleting
it ends the sessions it established by deleting them from the configured session engine's store,
which works for the db, cache and cached_db engines alike. The optional
:class:`~django_passkeys.middleware.RevokedCredentialMiddleware` catches what the index cannot
(a session whose key rotated after login, a revocation written with ``QuerySet.update()``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from django_passkeys.audit import user_agent
from django_passkeys.clientip import client_ip
from django_passkeys.models import Credential, UserSession
from django_passkeys.sessions import logging_in_with

logger = logging.getLogger("django_passkeys")


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


def forget_session(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: a signed-out session leaves the index."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        UserSession.objects.filter(session_key=session.session_key).delete()


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


def live_sessions(user: Any) -> list[UserSession]:
    """The user's indexed sessions that still exist, newest first; forgets the ones that don't."""
    rows = list(UserSession.objects.filter(user_id=user.pk).select_related("credential"))
    gone = [row.pk for row in rows if not session_store().exists(row.session_key)]
    if gone:
        UserSession.objects.filter(pk__in=gone).delete()
    return [row for row in rows if row.pk not in gone]


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
