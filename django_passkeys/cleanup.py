"""Retention: delete spent challenges, old audit events, index rows of ended sessions and
recovery requests that ended long ago.

Safe to run from cron as often as you like: each run deletes what is past its retention at
that moment and nothing else, so running it twice deletes nothing the second time.

- challenges: expired, or consumed, more than ``PASSKEYS_CHALLENGE_RETENTION`` seconds ago;
- audit events: older than ``PASSKEYS_EVENT_RETENTION_DAYS`` days;
- session index rows whose session no longer exists (Django's ``clearsessions`` deletes expired
  sessions themselves; run it first);
- recovery requests over for more than ``PASSKEYS_EVENT_RETENTION_DAYS`` days: ended (a final
  state entered before then) or past their deadline before then. They go with the audit events,
  not before: ``passkeys_report`` counts completed recoveries by factor from these rows, beside
  the events of the same days. A request still in progress is never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from django_passkeys.conf import conf
from django_passkeys.models import AuthEvent, Challenge, RecoveryRequest, UserSession
from django_passkeys.recovery import FINAL, LIVE
from django_passkeys.sessions import session_store


@dataclass(frozen=True)
class CleanupResult:
    """How many rows were deleted (or, in a dry run, would be)."""

    challenges: int
    events: int
    sessions: int
    recoveries: int


def spent_challenges(now: datetime) -> QuerySet[Challenge]:
    """Challenges expired or consumed more than ``PASSKEYS_CHALLENGE_RETENTION`` ago."""
    cutoff = now - timedelta(seconds=conf.PASSKEYS_CHALLENGE_RETENTION)
    return Challenge.objects.filter(Q(expires_at__lt=cutoff) | Q(consumed_at__lt=cutoff))


def old_events(now: datetime) -> QuerySet[AuthEvent]:
    """Audit events older than ``PASSKEYS_EVENT_RETENTION_DAYS``."""
    return AuthEvent.objects.filter(
        created_at__lt=now - timedelta(days=conf.PASSKEYS_EVENT_RETENTION_DAYS)
    )


def ended_recoveries(now: datetime) -> QuerySet[RecoveryRequest]:
    """Recovery requests over for more than ``PASSKEYS_EVENT_RETENTION_DAYS``.

    Final ones by when they ended (``used_at``; a completion counts in ``passkeys_report`` by
    that date), live ones by their deadline: a link nobody opened stays ``requested`` for ever,
    since only a later use marks a request expired.
    """
    cutoff = now - timedelta(days=conf.PASSKEYS_EVENT_RETENTION_DAYS)
    ended = Q(used_at__lt=cutoff) | Q(used_at__isnull=True, created_at__lt=cutoff)
    return RecoveryRequest.objects.filter(
        (Q(state__in=FINAL) & ended) | Q(state__in=LIVE, expires_at__lt=cutoff)
    )


def ended_session_rows(now: datetime) -> list[int]:
    """Ids of session index rows whose session has ended (expired or deleted)."""
    store = session_store()
    get_model_class = getattr(store, "get_model_class", None)
    if get_model_class is not None:
        # db and cached_db engines: the session table is authoritative; one query.
        live = get_model_class()._default_manager.filter(
            session_key=OuterRef("session_key"), expire_date__gt=now
        )
        return list(
            UserSession.objects.filter(~Exists(live)).values_list("pk", flat=True).order_by()
        )
    rows = UserSession.objects.values_list("pk", "session_key").order_by()
    return [pk for pk, key in rows.iterator() if not store.exists(key)]


def cleanup(*, now: datetime | None = None, dry_run: bool = False) -> CleanupResult:
    """Delete (or with ``dry_run`` only count) what is past its retention."""
    now = now or timezone.now()
    challenges = spent_challenges(now)
    events = old_events(now)
    sessions = UserSession.objects.filter(pk__in=ended_session_rows(now))
    recoveries = ended_recoveries(now)
    if dry_run:
        return CleanupResult(
            challenges.count(), events.count(), sessions.count(), recoveries.count()
        )
    return CleanupResult(
        challenges=challenges.delete()[0],
        events=events.delete()[0],
        sessions=sessions.delete()[0],
        recoveries=recoveries.delete()[0],
    )
