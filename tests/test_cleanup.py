"""``passkeys_cleanup``: retention of challenges, audit events, the session index and ended
recovery requests."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_passkeys import recovery as machine
from django_passkeys.cleanup import cleanup
from django_passkeys.models import AuthEvent, Challenge, RecoveryRequest, UserSession

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import enroll, passkey_login

pytestmark = pytest.mark.django_db


def challenge(name, *, expires_in, consumed_ago=None):
    now = timezone.now()
    return Challenge.objects.create(
        challenge_sha256=name.ljust(64, "0"),
        purpose=Challenge.Purpose.LOGIN,
        session_binding="s",
        expires_at=now + expires_in,
        consumed_at=now - consumed_ago if consumed_ago is not None else None,
    )


def events(days_ago):
    record = AuthEvent.objects.create(event_type=AuthEvent.Type.LOGIN, success=True)
    AuthEvent.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    return record


@pytest.fixture
def data(settings):
    settings.PASSKEYS_CHALLENGE_RETENTION = 3600
    settings.PASSKEYS_EVENT_RETENTION_DAYS = 30
    kept = [
        challenge("live", expires_in=timedelta(minutes=5)),
        challenge("recently-expired", expires_in=-timedelta(minutes=30)),
        challenge(
            "recently-used", expires_in=timedelta(minutes=4), consumed_ago=timedelta(minutes=1)
        ),
        events(days_ago=29),
    ]
    gone = [
        challenge("long-expired", expires_in=-timedelta(hours=2)),
        challenge(
            "long-used", expires_in=-timedelta(hours=1, minutes=55), consumed_ago=timedelta(hours=2)
        ),
        events(days_ago=31),
    ]
    return kept, gone


def test_cleanup_deletes_only_what_is_past_retention(data):
    kept, gone = data
    result = cleanup()
    assert (result.challenges, result.events, result.sessions) == (2, 1, 0)
    for obj in kept:
        assert type(obj).objects.filter(pk=obj.pk).exists()
    for obj in gone:
        assert not type(obj).objects.filter(pk=obj.pk).exists()


def test_dry_run_counts_and_deletes_nothing(data):
    result = cleanup(dry_run=True)
    assert (result.challenges, result.events, result.sessions) == (2, 1, 0)
    assert Challenge.objects.count() == 5 and AuthEvent.objects.count() == 2


def test_cleanup_is_idempotent(data):
    first = cleanup()
    assert (first.challenges, first.events) == (2, 1)
    second = cleanup()
    assert (second.challenges, second.events, second.sessions) == (0, 0, 0)


@pytest.mark.parametrize(
    "engine",
    ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cache"],
)
def test_index_rows_of_ended_sessions_are_removed(settings, engine):
    settings.SESSION_ENGINE = engine
    user = UserFactory()
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    live = passkey_login(authenticator)
    UserSession.objects.create(user=user, session_key="ended".ljust(32, "x"))
    assert cleanup().sessions == 1
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [
        live.client.session.session_key
    ]


def test_command_prints_counts(data):
    out = io.StringIO()
    call_command("passkeys_cleanup", "--dry-run", stdout=out)
    assert out.getvalue() == (
        "would delete: 2 challenges, 1 events, 0 session index rows, 0 recovery requests\n"
    )
    call_command("passkeys_cleanup", stdout=out)
    call_command("passkeys_cleanup", stdout=out)
    assert out.getvalue().splitlines()[1:] == [
        "deleted: 2 challenges, 1 events, 0 session index rows, 0 recovery requests",
        "deleted: 0 challenges, 0 events, 0 session index rows, 0 recovery requests",
    ]


State = RecoveryRequest.State


def recovery(user, state, *, days_ago, ended_days_ago=None):
    """A request created ``days_ago``; a final one ended ``ended_days_ago`` (default: then too)."""
    now = timezone.now()
    created = now - timedelta(days=days_ago)
    ended = now - timedelta(days=days_ago if ended_days_ago is None else ended_days_ago)
    return RecoveryRequest.objects.create(
        user=user,
        token_sha256=machine.token_digest(machine.new_token()),
        state=state,
        created_at=created,
        expires_at=created + timedelta(minutes=15),
        used_at=ended if state in machine.FINAL else None,
        factor=RecoveryRequest.Factor.RECOVERY_CODE if state == State.COMPLETED else "",
    )


@pytest.fixture
def recoveries(settings):
    settings.PASSKEYS_EVENT_RETENTION_DAYS = 30
    user = UserFactory()
    kept = [
        # Ended within the retention: passkeys_report still counts completions by factor.
        recovery(user, State.COMPLETED, days_ago=10),
        recovery(user, State.DENIED, days_ago=29),
        # Requested long ago, but completed (used_at) within the retention.
        recovery(user, State.COMPLETED, days_ago=40, ended_days_ago=20),
        # Still in progress.
        recovery(user, State.APPROVAL_PENDING, days_ago=0),
        # Past its deadline but not past the retention: the user may still come back to it.
        recovery(user, State.REQUESTED, days_ago=3),
    ]
    gone = [
        recovery(user, state, days_ago=31)
        for state in (State.COMPLETED, State.DENIED, State.FAILED, State.EXPIRED, State.SUPERSEDED)
    ]
    # A link nobody opened, its deadline long past: never marked expired, over all the same.
    gone.append(recovery(user, State.REQUESTED, days_ago=60))
    return kept, gone


def test_recovery_requests_ended_before_the_retention_are_deleted(recoveries):
    kept, gone = recoveries
    assert cleanup(dry_run=True).recoveries == len(gone)
    assert RecoveryRequest.objects.count() == len(kept) + len(gone)
    assert cleanup().recoveries == len(gone)
    assert set(RecoveryRequest.objects.values_list("pk", flat=True)) == {r.pk for r in kept}
    assert cleanup().recoveries == 0


def test_recovery_requests_are_kept_as_long_as_the_audit_events(recoveries, settings):
    settings.PASSKEYS_EVENT_RETENTION_DAYS = 90
    assert cleanup().recoveries == 0
    assert RecoveryRequest.objects.count() == 11
