"""Races the database must settle: one challenge, one credential id, two requests at once.

PostgreSQL only: SQLite serialises writers for the whole database, so it proves nothing here.
Each request runs in its own thread with its own connection. A barrier placed just before the
challenge is consumed holds both requests there (a registration after every check, an assertion
at step 12, where ``challenges.take()`` finds and consumes it in one statement), so the outcome
is decided by the atomic conditional UPDATE, its row lock and the unique index alone (security
rule 1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import pytest

from django_passkeys import challenges
from django_passkeys.models import Challenge, Credential

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import BARRIER_TIMEOUT, ApiClient, needs_postgres, run_in_threads

pytestmark = [needs_postgres(), pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def sharing_session(api: ApiClient) -> ApiClient:
    """A second client holding the same session and CSRF cookies: the same browser, twice."""
    twin = ApiClient()
    twin.client.cookies = SimpleCookie()
    twin.client.cookies.load({k: v.value for k, v in api.client.cookies.items()})
    return twin


def race(
    monkeypatch: pytest.MonkeyPatch, requests: list[Callable[[], Any]], *, at: str = "consume"
) -> list[Any]:
    """Run ``requests`` in threads, all held just before they consume their challenge.

    ``at`` is the function of :mod:`django_passkeys.challenges` that consumes it: ``consume``
    (a registration, after every check) or ``take`` (an assertion, which consumes it when it
    finds it, at step 12, in the transaction of the whole verification).
    """
    held = threading.Barrier(len(requests), timeout=BARRIER_TIMEOUT)
    original = getattr(challenges, at)

    def together(*args: Any) -> Any:
        held.wait()
        return original(*args)

    monkeypatch.setattr(challenges, at, together)
    return run_in_threads(requests)


def outcome(responses: list[Any]) -> list[tuple[int, str | None]]:
    """``(status, reason code)`` of each response, sorted."""
    return sorted(
        (r.status_code, r.json().get("error", {}).get("code") if r.status_code >= 400 else None)
        for r in responses
    )


def test_one_login_challenge_verified_twice_at_once_signs_in_once(api, register, monkeypatch):
    user = UserFactory()
    authenticator = SoftAuthenticator()
    assert register(user, authenticator).status_code == 201
    api.client.logout()
    options = api.post("/auth/passkey/login/options").json()
    assertion = authenticator.get(options)
    twin = sharing_session(api)

    responses = race(
        monkeypatch,
        [
            lambda: api.post("/auth/passkey/login/verify", assertion),
            lambda: twin.post("/auth/passkey/login/verify", assertion),
        ],
        at="take",
    )

    assert outcome(responses) == [(200, None), (400, "challenge_invalid")]
    login_challenges = Challenge.objects.filter(purpose=Challenge.Purpose.LOGIN)
    assert login_challenges.filter(consumed_at__isnull=False).count() == 1
    assert Credential.objects.get().last_used_at is not None


def test_one_registration_challenge_verified_twice_at_once_stores_once(api, monkeypatch):
    user = UserFactory()
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    response = SoftAuthenticator().create(options)
    twin = sharing_session(api)

    responses = race(
        monkeypatch,
        [
            lambda: api.post("/auth/passkey/register/verify", response),
            lambda: twin.post("/auth/passkey/register/verify", response),
        ],
    )

    assert outcome(responses) == [(201, None), (400, "challenge_invalid")]
    assert Credential.objects.count() == 1


def test_one_credential_id_registered_twice_at_once_is_stored_once(monkeypatch):
    # Two sessions of one account, each with its own challenge, racing to store the same
    # credential id: both pass the "already registered?" check, the unique index decides.
    user = UserFactory()
    authenticator = SoftAuthenticator()
    bodies = []
    clients = []
    for _ in range(2):
        client = ApiClient()
        client.login(user)
        options = client.post("/auth/passkey/register/options").json()
        bodies.append(authenticator.create(options))
        clients.append(client)

    responses = race(
        monkeypatch,
        [
            lambda: clients[0].post("/auth/passkey/register/verify", bodies[0]),
            lambda: clients[1].post("/auth/passkey/register/verify", bodies[1]),
        ],
    )

    assert outcome(responses) == [(201, None), (400, "credential_exists")]
    assert Credential.objects.count() == 1
    # The loser's transaction rolled back: its challenge is still unconsumed.
    register_challenges = Challenge.objects.filter(purpose=Challenge.Purpose.REGISTER)
    assert register_challenges.filter(consumed_at__isnull=True).count() == 1
