"""``passkeys_cleanup``: retention of challenges, audit events and the session index."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_passkeys.cleanup import cleanup
from django_passkeys.models import AuthEvent, Challenge, UserSession

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .hardening_support import enroll, passkey_login

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
    assert out.getvalue() == "would delete: 2 challenges, 1 events, 0 session index rows\n"
    call_command("passkeys_cleanup", stdout=out)
    call_command("passkeys_cleanup", stdout=out)
    assert out.getvalue().splitlines()[1:] == [
        "deleted: 2 challenges, 1 events, 0 session index rows",
        "deleted: 0 challenges, 0 events, 0 session index rows",
    ]
