"""``passkeys_report``'s adoption figures: sign-ins by passkey, password and recovery, upgrades
accepted and declined, the share of accounts with a passkey, passkey-only accounts, by rollout
stage."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_passkeys.models import AdoptionState, AuthEvent
from django_passkeys.reporting import Share, adoption_figures, build_report

from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db

T = AuthEvent.Type


def event(event_type, *, user=None, success=True, reason="", days_ago=0):
    record = AuthEvent.objects.create(
        event_type=event_type, success=success, reason_code=reason, user=user
    )
    AuthEvent.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )


@pytest.fixture
def accounts():
    """A: passkey, signed in by passkey; B: no passkey, signed in by password; C: passkey-only,
    quiet; D: inactive, with a passkey (not counted)."""
    a, b, c = UserFactory(username="a"), UserFactory(username="b"), UserFactory(username="c")
    d = UserFactory(username="d", is_active=False)
    for user in (a, c, d):
        CredentialFactory(user=user)
    AdoptionState.objects.create(user=c, passkey_only_since=timezone.now())
    event(T.LOGIN, user=a)
    event(T.PASSWORD_LOGIN, user=b)
    event(T.PASSWORD_LOGIN, user=c, days_ago=40)  # before the period
    return a, b, c, d


def test_sign_ins_by_method_and_upgrades_per_day():
    event(T.LOGIN)
    event(T.LOGIN)
    event(T.PASSWORD_LOGIN)
    event(T.PASSWORD_LOGIN, success=False, reason="password_sign_in_disabled")
    event(T.RECOVERY)
    event(T.UPGRADE)
    event(T.UPGRADE, success=False, reason="user_presence_missing")
    event(T.UPGRADE_DECLINED)
    event(T.UPGRADE_DECLINED, reason="snoozed", days_ago=1)
    event(T.REGISTER)
    report = build_report(timedelta(days=2), adoption=False)
    today = report.days[-1]
    assert (today.sign_in_successes, today.password_sign_ins, today.recoveries_completed) == (
        2,
        1,
        1,
    )
    assert (today.upgrades_accepted, today.upgrades_declined) == (1, 1)
    assert today.registrations == 2  # the upgrade's passkey is a registration too
    assert report.totals.upgrades_declined == 2


def test_adoption_by_rollout_stage(accounts, settings):
    a, b, c, _ = accounts
    settings.PASSKEYS_ROLLOUT = {"users": ["a", "b"]}
    now = timezone.now()
    adoption = adoption_figures(now - timedelta(days=30), now)
    assert adoption.rollout_stage == "cohort"
    assert adoption.accounts == Share(3, 2)
    assert adoption.active_users == Share(2, 1)
    assert adoption.active_users.rate == 0.5
    assert adoption.passkey_only_users == 1
    assert (adoption.offered, adoption.not_offered) == (Share(2, 1), Share(1, 1))


@pytest.mark.parametrize(("stage", "offered"), [("all", Share(3, 2)), ("off", Share(0, 0))])
def test_adoption_when_everyone_or_nobody_is_offered(accounts, settings, stage, offered):
    settings.PASSKEYS_ROLLOUT = stage
    now = timezone.now()
    adoption = adoption_figures(now - timedelta(days=30), now)
    assert adoption.offered == offered
    assert adoption.offered.users + adoption.not_offered.users == 3


def test_passkey_only_required_by_the_site_is_counted(accounts, settings):
    settings.PASSKEYS_PASSKEY_ONLY = "all"
    now = timezone.now()
    assert adoption_figures(now - timedelta(days=1), now).passkey_only_users == 2  # A and C
    settings.PASSKEYS_PASSKEY_ONLY = {"users": ["a"]}
    assert adoption_figures(now - timedelta(days=1), now).passkey_only_users == 2  # A, C chose


def test_the_adoption_snapshot_costs_a_fixed_number_of_queries(
    accounts, settings, django_assert_num_queries
):
    settings.PASSKEYS_ROLLOUT = "all"
    now = timezone.now()
    with django_assert_num_queries(2):
        adoption_figures(now - timedelta(days=1), now)
    UserFactory.create_batch(5)
    with django_assert_num_queries(2):
        adoption_figures(now - timedelta(days=1), now)


def test_the_command_prints_the_adoption_figures(accounts, settings):
    settings.PASSKEYS_ROLLOUT = {"percentage": 100}
    event(T.UPGRADE_DECLINED)
    out = io.StringIO()
    call_command("passkeys_report", "--since", "7d", stdout=out)
    text = out.getvalue()
    assert "Passkey adoption now (rollout stage: percentage)" in text
    assert "accounts with a passkey:          2/3 (66.7%)" in text
    assert "active in the period, with one:   1/2 (50.0%)" in text
    assert "passkey-only accounts:            1" in text
    assert "sign-ins by passkey=1, password=1, recovery=0" in text
    assert "upgrade: accepted=0, declined=1" in text
    out = io.StringIO()
    call_command("passkeys_report", "--since", "7d", "--json", stdout=out)
    adoption = json.loads(out.getvalue())["adoption"]
    assert adoption["accounts"] == {"users": 3, "with_passkey": 2, "rate": 2 / 3}
    assert adoption["offered"]["users"] == 3
