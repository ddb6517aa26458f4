"""The account recovery state machine: states, allowed transitions, tokens and approval codes.

A user who lost every passkey gets back in with a mailbox link **and** one second factor, never
with the link alone (DESIGN security rule 7; NIST SP 800-63B-4 §4.2; OWASP ASVS 5.0 V6.4). One
:class:`~django_passkeys.models.RecoveryRequest` is one attempt; it moves only through
:func:`transition`, whose single conditional ``UPDATE`` makes two concurrent moves of one
request impossible: the second finds the state changed and raises :class:`InvalidTransition`.

====================  ====================  ==================================================
From                  To                    When
====================  ====================  ==================================================
``requested``         ``link_opened``       a browser session claims the link (a button press,
                                            so that mail scanners opening links claim nothing)
``link_opened``       ``approval_pending``  the browser asks a signed-in device to approve, or
                                            staff start an assisted recovery
``link_opened``       ``completed``         a TOTP code or a recovery code verified
``approval_pending``  ``approved``          the code matched on a signed-in device (after a
                                            fresh passkey assertion) or in the admin
``approval_pending``  ``completed``         a TOTP code or a recovery code verified meanwhile
``approval_pending``  ``denied``            a signed-in device answered "this wasn't me"
``approved``          ``completed``         the waiting browser continues: it is signed in
``link_opened``       ``failed``            ``PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS`` wrong
                                            codes (from ``approval_pending`` too)
any live state        ``expired``           its deadline passed (noticed on the next use)
any live state        ``superseded``        the user asked for a new link
====================  ====================  ==================================================

``completed``, ``denied``, ``expired``, ``failed`` and ``superseded`` are final. Every state but
those has a deadline (``expires_at``): ``PASSKEYS_RECOVERY_LINK_TTL`` to open the link, and the
same again from each step that waits for the user (opening the link, asking for an approval).

Secrets: the link's token is 256 bits from :mod:`secrets` and only its SHA-256 is stored; the
approval code (6 digits, shown by the recovering browser and typed on the approving device) is
stored as an HMAC keyed with the request's token digest, so a code means nothing for another
request. A 6-digit code is not a secret against an offline search of a database copy; it only
proves that the person approving sees the browser being approved, and it is tried at most
``PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS`` times.

This module knows nothing of HTTP, e-mail or sessions: :mod:`django_passkeys.flows.recovery`
is the one writer of recovery requests and owns audit, notifications and sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .conf import conf
from .models import RecoveryRequest

__all__ = [
    "APPROVAL_CODE_DIGITS",
    "FINAL",
    "LIVE",
    "TOKEN_BYTES",
    "TRANSITIONS",
    "InvalidTransition",
    "State",
    "approval_code_digest",
    "approval_code_matches",
    "deadline",
    "is_expired",
    "new_approval_code",
    "new_token",
    "supersede_live",
    "token_digest",
    "transition",
]

State = RecoveryRequest.State

#: Bytes of randomness in a link's token (NIST SP 800-63B-4 asks ≥ 64 bits; 256 here).
TOKEN_BYTES = 32
#: Digits of the approval code a recovering browser shows.
APPROVAL_CODE_DIGITS = 6

#: Every allowed move; anything else raises :class:`InvalidTransition`.
TRANSITIONS: dict[str, frozenset[str]] = {
    State.REQUESTED: frozenset({State.LINK_OPENED, State.EXPIRED, State.SUPERSEDED}),
    State.LINK_OPENED: frozenset(
        {
            State.APPROVAL_PENDING,
            State.COMPLETED,
            State.FAILED,
            State.EXPIRED,
            State.SUPERSEDED,
        }
    ),
    State.APPROVAL_PENDING: frozenset(
        {
            State.APPROVED,
            State.COMPLETED,
            State.DENIED,
            State.FAILED,
            State.EXPIRED,
            State.SUPERSEDED,
        }
    ),
    State.APPROVED: frozenset({State.COMPLETED, State.EXPIRED, State.SUPERSEDED}),
    State.COMPLETED: frozenset(),
    State.DENIED: frozenset(),
    State.EXPIRED: frozenset(),
    State.FAILED: frozenset(),
    State.SUPERSEDED: frozenset(),
}

#: States a request never leaves.
FINAL = frozenset(state for state, targets in TRANSITIONS.items() if not targets)
#: States of a request still in progress (a new request of the user supersedes these).
LIVE = frozenset(TRANSITIONS) - FINAL


class InvalidTransition(Exception):
    """A move the table does not allow, or one that lost a race with another move."""

    def __init__(self, request: RecoveryRequest, target: str, why: str = "") -> None:
        self.current = request.state
        self.target = target
        super().__init__(f"recovery {request.pk}: {request.state} -> {target} {why}".strip())


def new_token() -> str:
    """A fresh link token: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What is stored of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_approval_code() -> str:
    """A random 6-digit code, zero-padded."""
    return f"{secrets.randbelow(10**APPROVAL_CODE_DIGITS):0{APPROVAL_CODE_DIGITS}d}"


def approval_code_digest(request: RecoveryRequest, code: str) -> str:
    """What is stored of an approval code: an HMAC keyed with the request's token digest."""
    return hmac.new(request.token_sha256.encode(), code.encode(), hashlib.sha256).hexdigest()


def approval_code_matches(request: RecoveryRequest, code: str) -> bool:
    """Whether ``code`` is the approval code of ``request`` (constant-time comparison)."""
    if not request.approval_code_sha256:
        return False
    return hmac.compare_digest(request.approval_code_sha256, approval_code_digest(request, code))


def deadline(now: datetime | None = None) -> datetime:
    """The end of a step starting ``now``: ``PASSKEYS_RECOVERY_LINK_TTL`` seconds later."""
    return (now or timezone.now()) + timedelta(seconds=conf.PASSKEYS_RECOVERY_LINK_TTL)


def is_expired(request: RecoveryRequest, now: datetime | None = None) -> bool:
    """Whether a request still in progress is past its deadline (a final one never is)."""
    return request.state in LIVE and request.expires_at <= (now or timezone.now())


def transition(request: RecoveryRequest, target: str, **fields: Any) -> RecoveryRequest:
    """Move ``request`` to ``target``, writing ``fields`` with it; return it updated.

    One conditional ``UPDATE ... WHERE state = <the state read>``: a move the table does not
    allow, or one another request made first, raises :class:`InvalidTransition` and writes
    nothing. Entering a final state stamps ``used_at``.
    """
    if target not in TRANSITIONS.get(request.state, frozenset()):
        raise InvalidTransition(request, target, "not allowed")
    now = timezone.now()
    values: dict[str, Any] = {"state": target, **fields}
    if target in FINAL:
        values.setdefault("used_at", now)
    updated = RecoveryRequest.objects.filter(pk=request.pk, state=request.state).update(**values)
    if updated != 1:
        raise InvalidTransition(request, target, "lost a race")
    for name, value in values.items():
        setattr(request, name, value)
    return request


def supersede_live(users: Any) -> int:
    """Supersede every live request of ``users`` (a queryset or subquery of user ids).

    The bulk form of :func:`transition` to ``superseded``, which the table allows from every
    live state: one ``UPDATE`` that runs the same whether or not ``users`` matches anyone (the
    recovery request flow depends on that). Returns how many requests it ended.
    """
    updated: int = RecoveryRequest.objects.filter(user_id__in=users, state__in=LIVE).update(
        state=State.SUPERSEDED, used_at=timezone.now()
    )
    return updated
