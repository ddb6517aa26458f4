"""The recovery state machine (django_passkeys.recovery) and the browser descriptions an
approving device is shown (django_passkeys.user_agents)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from django_passkeys import recovery as machine
from django_passkeys.models import RecoveryRequest
from django_passkeys.user_agents import describe, parse

from .factories import UserFactory

State = RecoveryRequest.State


def make(user, state: str = State.REQUESTED, **fields) -> RecoveryRequest:
    return RecoveryRequest.objects.create(
        user=user,
        token_sha256=machine.token_digest(machine.new_token()),
        state=state,
        expires_at=machine.deadline(),
        **fields,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("source", list(State))
@pytest.mark.parametrize("target", list(State))
def test_only_the_moves_of_the_table_are_allowed(user, source, target):
    rr = make(user, source)
    allowed = target in machine.TRANSITIONS[source]
    if allowed:
        machine.transition(rr, target)
        rr.refresh_from_db()
        assert rr.state == target
        assert (rr.used_at is not None) == (target in machine.FINAL)
    else:
        with pytest.raises(machine.InvalidTransition):
            machine.transition(rr, target)
        rr.refresh_from_db()
        assert rr.state == source


def test_final_states_go_nowhere_and_every_live_state_can_expire_or_be_superseded():
    assert {
        State.COMPLETED,
        State.DENIED,
        State.EXPIRED,
        State.FAILED,
        State.SUPERSEDED,
    } == machine.FINAL
    for state in machine.LIVE:
        assert {State.EXPIRED, State.SUPERSEDED} <= machine.TRANSITIONS[state]
    # Nothing completes without a second factor having been checked in between.
    assert State.COMPLETED not in machine.TRANSITIONS[State.REQUESTED]


@pytest.mark.django_db
def test_a_move_that_lost_a_race_raises_and_writes_nothing(user):
    rr = make(user, State.LINK_OPENED)
    stale = RecoveryRequest.objects.get(pk=rr.pk)
    machine.transition(rr, State.COMPLETED, factor="totp")
    with pytest.raises(machine.InvalidTransition, match="lost a race"):
        machine.transition(stale, State.FAILED)
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.COMPLETED, "totp")


@pytest.mark.django_db
def test_supersede_ends_the_live_requests_of_the_user_only(user):
    other = UserFactory()
    live = [make(user, s) for s in machine.LIVE]
    done = make(user, State.COMPLETED)
    others = make(other)
    assert machine.supersede_live([user.pk]) == len(live)
    assert set(RecoveryRequest.objects.filter(user=user).values_list("state", flat=True)) == {
        State.SUPERSEDED,
        State.COMPLETED,
    }
    done.refresh_from_db()
    others.refresh_from_db()
    assert (done.state, others.state) == (State.COMPLETED, State.REQUESTED)


@pytest.mark.django_db
def test_expiry_is_the_deadline_of_a_live_request(user):
    rr = make(user)
    assert not machine.is_expired(rr)
    rr.expires_at = timezone.now() - timedelta(seconds=1)
    assert machine.is_expired(rr)
    rr.state = State.COMPLETED
    assert not machine.is_expired(rr)


def test_tokens_are_256_random_bits_stored_only_as_a_digest():
    tokens = {machine.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert re.fullmatch(r"[0-9a-f]{64}", machine.token_digest(token))


@pytest.mark.django_db
def test_an_approval_code_matches_its_own_request_only(user):
    first, second = make(user), make(user)
    code = machine.new_approval_code()
    assert re.fullmatch(r"[0-9]{6}", code)
    first.approval_code_sha256 = machine.approval_code_digest(first, code)
    second.approval_code_sha256 = machine.approval_code_digest(second, code)
    assert first.approval_code_sha256 != second.approval_code_sha256
    assert machine.approval_code_matches(first, code)
    assert not machine.approval_code_matches(first, f"{(int(code) + 1) % 10**6:06d}")
    first.approval_code_sha256 = ""
    assert not machine.approval_code_matches(first, code)


CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (CHROME_MAC, "Chrome on macOS"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "Chrome on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
            "Opera on Linux",
        ),
        ("curl/8.5.0", "Unknown browser on unknown system"),
        ("", "Unknown browser on unknown system"),
    ],
)
def test_browsers_are_described_by_family_and_system(user_agent, expected):
    assert describe(user_agent) == expected


def test_a_huge_user_agent_is_read_only_in_part():
    assert parse("x" * 100_000 + CHROME_MAC).browser == ""
