"""``passkeys_report``: daily figures from the audit trail, as a table or JSON."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_passkeys.models import AuthEvent
from django_passkeys.reporting import RECOVERY_REQUESTED, build_report, parse_period

from .authenticator import SoftAuthenticator
from .hardening_support import LOGIN_VERIFY, enroll, passkey_login

pytestmark = pytest.mark.django_db

T = AuthEvent.Type


def event(event_type, *, success=True, reason="", days_ago=0):
    record = AuthEvent.objects.create(event_type=event_type, success=success, reason_code=reason)
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
    event(T.RECOVERY, reason=RECOVERY_REQUESTED, success=True)
    event(T.RECOVERY, reason=RECOVERY_REQUESTED, success=False)
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
    assert text.splitlines()[-2].startswith("total")


def test_command_prints_json():
    event(T.LOGIN, success=False, reason="signature_invalid")
    out = io.StringIO()
    call_command("passkeys_report", "--since", "30d", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) == {"start", "end", "days", "totals"}
    assert len(data["days"]) == 31
    assert data["days"][-1]["failures_by_reason"] == {"signature_invalid": 1}
    assert data["days"][-1]["success_rate"] == 0.0
    assert data["totals"]["sign_ins"] == 1 and "day" not in data["totals"]


def test_command_refuses_a_bad_period():
    with pytest.raises(CommandError, match="not a period"):
        call_command("passkeys_report", "--since", "forever")
