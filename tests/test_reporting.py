"""``passkeys_report``: daily figures from the audit trail, as a table or JSON."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_passkeys.models import AuthEvent, RecoveryRequest
from django_passkeys.reporting import build_report, format_text, parse_period

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import LOGIN_VERIFY, enroll, passkey_login

pytestmark = pytest.mark.django_db

T = AuthEvent.Type


def event(event_type, *, success=True, reason="", days_ago=0, user=None):
    record = AuthEvent.objects.create(
        event_type=event_type, success=success, reason_code=reason, user=user
    )
    AuthEvent.objects.filter(pk=record.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("30D", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_periods_parse(text, expected):
    assert parse_period(text) == expected


@pytest.mark.parametrize("text", ["", "7", "0d", "-1d", "7y", "seven days"])
def test_bad_periods_are_refused(text):
    with pytest.raises(ValueError):
        parse_period(text)


def test_figures_per_day():
    for _ in range(3):
        event(T.LOGIN)
    event(T.LOGIN, success=False, reason="signature_invalid")
    event(T.LOGIN, success=False, reason="challenge_expired")
    event(T.LOGIN, success=False, reason="signature_invalid", days_ago=1)
    event(T.LOGIN, success=False, days_ago=1)
    event(T.REGISTER)
    event(T.REGISTER, success=False, reason="credential_exists")
    event(T.RECOVERY_REQUEST, user=UserFactory())
    event(T.RECOVERY_REQUEST)  # an address that matches no account
    event(T.RECOVERY)
    event(T.RECOVERY, success=False, reason="recovery_token_invalid")
    event(T.RATE_LIMIT, success=False, reason="rate_limited")
    event(T.LOGIN, days_ago=9)  # outside the period
    report = build_report(timedelta(days=7))
    assert len(report.days) == 8  # the partial first day through today
    yesterday, today = report.days[-2], report.days[-1]
    assert (today.sign_ins, today.sign_in_successes, today.success_rate) == (5, 3, 0.6)
    assert today.failures_by_reason == {"signature_invalid": 1, "challenge_expired": 1}
    assert (today.registrations, today.recoveries_requested, today.recoveries_completed) == (
        1,
        2,
        1,
    )
    assert today.rate_limit_hits == 1
    assert yesterday.failures_by_reason == {"signature_invalid": 1, "unknown": 1}
    assert yesterday.success_rate == 0.0
    assert report.days[0].success_rate is None
    totals = report.totals
    assert (totals.sign_ins, totals.failures_by_reason["signature_invalid"]) == (7, 2)


def test_the_report_counts_what_the_endpoints_audited(api, user):
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    passkey_login(authenticator)
    api.post(LOGIN_VERIFY, {"id": "x"})
    today = build_report(timedelta(hours=24)).days[-1]
    assert (today.registrations, today.sign_ins, today.sign_in_successes) == (1, 2, 1)
    assert today.failures_by_reason == {"malformed_request": 1}


def test_command_prints_a_table():
    event(T.LOGIN)
    event(T.LOGIN, success=False, reason="signature_invalid")
    out = io.StringIO()
    call_command("passkeys_report", "--since", "24h", stdout=out)
    text = out.getvalue()
    assert "sign-ins" in text and "50.0%" in text and "failures: signature_invalid=1" in text
    assert text.splitlines()[-3].startswith("total")
    assert text.splitlines()[-1] == "Accounts with 5 or more recovery requests: none"


def test_command_prints_json():
    event(T.LOGIN, success=False, reason="signature_invalid")
    out = io.StringIO()
    call_command("passkeys_report", "--since", "30d", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {
        "start",
        "end",
        "days",
        "totals",
        "recovery_threshold",
        "recovery_abuse",
        "adoption",
    }
    assert (data["recovery_threshold"], data["recovery_abuse"]) == (5, [])
    assert len(data["days"]) == 31
    assert data["days"][-1]["failures_by_reason"] == {"signature_invalid": 1}
    assert data["days"][-1]["success_rate"] == 0.0
    assert data["totals"]["sign_ins"] == 1 and "day" not in data["totals"]


def test_command_refuses_a_bad_period():
    with pytest.raises(CommandError, match="not a period"):
        call_command("passkeys_report", "--since", "forever")


# ---------------------------------------------------------------------------------------------
# Recovery figures
# ---------------------------------------------------------------------------------------------


def completed_recovery(user, factor, *, days_ago=0):
    used = timezone.now() - timedelta(days=days_ago)
    return RecoveryRequest.objects.create(
        user=user,
        token_sha256=f"{factor}-{days_ago}-{RecoveryRequest.objects.count()}",
        state=RecoveryRequest.State.COMPLETED,
        factor=factor,
        expires_at=used,
        used_at=used,
    )


def test_recovery_figures_per_day():
    alice, bob = UserFactory(), UserFactory()
    for who in (alice, alice, bob):
        event(T.RECOVERY_REQUEST, user=who)
    event(T.RECOVERY_REQUEST)  # unknown addresses: no user
    event(T.RECOVERY_REQUEST)
    event(T.RECOVERY_REQUEST, user=bob, days_ago=1)
    event(T.RECOVERY, user=alice)
    event(T.RECOVERY, user=bob)
    event(T.RECOVERY, success=False, reason="second_factor_invalid", user=bob)
    event(T.RECOVERY_APPROVAL, success=False, reason="recovery_denied", user=alice)
    event(T.RECOVERY_APPROVAL, success=True, user=alice)  # an approval, not a denial
    completed_recovery(alice, RecoveryRequest.Factor.TOTP)
    completed_recovery(bob, RecoveryRequest.Factor.DEVICE)
    completed_recovery(bob, RecoveryRequest.Factor.RECOVERY_CODE, days_ago=1)
    completed_recovery(bob, RecoveryRequest.Factor.STAFF, days_ago=30)  # outside the period
    RecoveryRequest.objects.create(  # denied: not a completion
        user=alice,
        token_sha256="denied",
        state=RecoveryRequest.State.DENIED,
        expires_at=timezone.now(),
        used_at=timezone.now(),
    )
    report = build_report(timedelta(days=7))
    yesterday, today = report.days[-2], report.days[-1]
    assert (today.recoveries_requested, today.recovery_requests_unknown) == (5, 2)
    assert (today.recoveries_completed, today.recoveries_denied) == (2, 1)
    assert today.recoveries_by_factor == {"device": 1, "totp": 1}
    assert (yesterday.recoveries_requested, yesterday.recovery_requests_unknown) == (1, 0)
    assert yesterday.recoveries_by_factor == {"recovery_code": 1}
    totals = report.totals
    assert (totals.recoveries_requested, totals.recovery_requests_unknown) == (6, 2)
    assert totals.recoveries_by_factor == {"device": 1, "recovery_code": 1, "totp": 1}
    assert today.failures_by_reason == {}  # recovery failures are not sign-in failures
    text = format_text(report)
    assert "recovery: unknown address=2, denied=1, completed by device=1, totp=1" in text


def test_accounts_with_many_recovery_requests_are_listed(settings):
    target, other, quiet = UserFactory(), UserFactory(), UserFactory()
    for _ in range(6):
        event(T.RECOVERY_REQUEST, user=target)
    for _ in range(4):
        event(T.RECOVERY_REQUEST, user=other)
    event(T.RECOVERY_REQUEST, user=quiet)
    for _ in range(9):
        event(T.RECOVERY_REQUEST)  # unknown addresses belong to no account
    event(T.LOGIN, user=quiet)
    for _ in range(5):
        event(T.RECOVERY_REQUEST, user=quiet, days_ago=10)  # before the period
    report = build_report(timedelta(days=7))
    assert [(a.user_id, a.requests) for a in report.recovery_abuse] == [(str(target.pk), 6)]

    out = io.StringIO()
    call_command("passkeys_report", "--recovery-threshold", "4", stdout=out)
    assert out.getvalue().splitlines()[-1] == (
        f"Accounts with 4 or more recovery requests: {target.pk} (6), {other.pk} (4)"
    )
    out = io.StringIO()
    call_command("passkeys_report", "--recovery-threshold", "4", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["recovery_threshold"] == 4
    assert data["recovery_abuse"] == [
        {"user": str(target.pk), "requests": 6},
        {"user": str(other.pk), "requests": 4},
    ]


@pytest.mark.parametrize("threshold", ["0", "-1", "many"])
def test_command_refuses_a_bad_recovery_threshold(threshold):
    with pytest.raises(CommandError):
        call_command("passkeys_report", "--recovery-threshold", threshold)


def test_the_report_is_three_queries_whatever_the_activity(django_assert_num_queries):
    for who in (UserFactory(), UserFactory()):
        event(T.RECOVERY_REQUEST, user=who)
        event(T.LOGIN, user=who)
    with django_assert_num_queries(3):
        build_report(timedelta(days=30), adoption=False)


def test_a_report_without_the_adoption_snapshot_prints_none_of_it():
    text = format_text(build_report(timedelta(days=7), adoption=False))
    assert "Passkey adoption now" not in text
    assert text.splitlines()[0].startswith("Passkey activity ")
    assert "total" in text
