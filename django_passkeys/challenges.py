"""Issue and consume challenges: server-side, with a TTL, one-time, bound to session and purpose.

WebAuthn L3 §13.4.3: challenges are random, at least 16 bytes (we use 32), generated on the
server and checked against server-side state. Only a SHA-256 digest is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from .conf import conf
from .errors import PasskeyError, Reason
from .models import Challenge

CHALLENGE_BYTES = 32
_SESSION_KEY = "_passkeys_binding"


def _digest(value: bytes | str) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def session_binding(request: HttpRequest, *, create: bool = True) -> str | None:
    """The digest of a random per-session secret that challenges are bound to.

    A random value kept in the session (not the session key, which anonymous sessions may not
    have yet and which rotates at login) survives until the session ends or is flushed.
    With ``create=False`` a session without one gets ``None`` and nothing is written.
    """
    secret = request.session.get(_SESSION_KEY)
    if not isinstance(secret, str):
        if not create:
            return None
        secret = secrets.token_urlsafe(32)
        request.session[_SESSION_KEY] = secret
    return _digest(secret)


def issue(
    request: HttpRequest,
    purpose: Challenge.Purpose,
    *,
    user_id: Any = None,
    allowed_credentials: Iterable[str] = (),
) -> bytes:
    """Create and store a fresh challenge; return its raw bytes for the options."""
    value = secrets.token_bytes(CHALLENGE_BYTES)
    now = timezone.now()
    Challenge.objects.create(
        challenge_sha256=_digest(value),
        purpose=purpose,
        session_binding=session_binding(request) or "",
        user_id=user_id,
        allowed_credentials=list(allowed_credentials),
        created_at=now,
        expires_at=now + timedelta(seconds=conf.PASSKEYS_CHALLENGE_TTL),
    )
    return value


def lookup(request: HttpRequest, purpose: Challenge.Purpose, value: bytes) -> Challenge:
    """Find the challenge the client signed, or fail with the reason.

    A challenge of another purpose, another session, or one already consumed is
    ``challenge_invalid``; one past its expiry is ``challenge_expired``.
    """
    row = Challenge.objects.filter(challenge_sha256=_digest(value)).first()
    if row is None or row.consumed_at is not None:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "unknown or consumed challenge")
    if row.purpose != purpose:
        raise PasskeyError(Reason.CHALLENGE_INVALID, f"challenge issued for {row.purpose}")
    binding = session_binding(request, create=False)
    if binding is None or not secrets.compare_digest(row.session_binding, binding):
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge bound to another session")
    if row.expires_at <= timezone.now():
        raise PasskeyError(Reason.CHALLENGE_EXPIRED)
    return row


def consume(row: Challenge) -> None:
    """Mark ``row`` used with one conditional UPDATE; lose the race and it fails.

    Call inside the transaction that stores the ceremony's outcome: of two concurrent
    verifications of one challenge, the second UPDATE waits on the row lock, then matches no
    row, so exactly one can succeed.
    """
    now = timezone.now()
    won = Challenge.objects.filter(pk=row.pk, consumed_at__isnull=True, expires_at__gt=now).update(
        consumed_at=now
    )
    if won != 1:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge consumed concurrently")
