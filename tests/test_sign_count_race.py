"""The stored signature counter never goes backwards, even under concurrent assertions.

Two assertions of one credential can both pass the counter check against the value read at
lookup (WebAuthn L3 §7.2 step 23). The counter update is conditional, so the one that comes
second with a counter not above the stored one is a regression like any other: refused
(``reject``) with nothing written, or flagged (``flag``) with the counter left where it was.

The single-thread tests move the stored counter between the check and the update; the
PostgreSQL test races two real requests on their own connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from django_passkeys import ceremonies
from django_passkeys.models import Challenge, Credential

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import (
    BARRIER_TIMEOUT,
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    ApiClient,
    enroll,
    error_code,
    needs_postgres,
    run_in_threads,
)


def advance_counter_after_signature(
    monkeypatch: pytest.MonkeyPatch, credential: Credential, to: int
) -> None:
    """Another login stores ``to`` once this one has read the record and checked the signature."""
    original = ceremonies.verify_authentication_response

    def verify_then_advance(**kwargs: Any) -> Any:
        result = original(**kwargs)
        Credential.objects.filter(pk=credential.pk).update(sign_count=to)
        return result

    monkeypatch.setattr(ceremonies, "verify_authentication_response", verify_then_advance)


@pytest.mark.django_db
@pytest.mark.parametrize(("stored", "sent", "concurrent"), [(10, 11, 11), (10, 11, 12), (0, 0, 5)])
def test_counter_advanced_between_check_and_update_is_refused(
    api, monkeypatch, stored, sent, concurrent
):
    authenticator = SoftAuthenticator(sign_count=stored)
    credential = enroll(UserFactory(), authenticator)
    assert credential.sign_count == stored
    assertion = authenticator.get(api.post(LOGIN_OPTIONS).json(), sign_count=sent)
    advance_counter_after_signature(monkeypatch, credential, concurrent)

    response = api.post(LOGIN_VERIFY, assertion)

    assert response.status_code == 400
    assert error_code(response) == "sign_count_regressed"
    # Nothing written: the refusal rolls back the request's transaction, the simulated rival
    # update included (it ran on the same connection), so the record is as it was enrolled.
    stored_after = Credential.objects.get(pk=credential.pk)
    assert stored_after.sign_count == stored
    assert (stored_after.last_used_at, stored_after.clone_warning_at) == (None, None)
    assert Challenge.objects.get(purpose=Challenge.Purpose.LOGIN).consumed_at is None
    assert "_auth_user_id" not in api.client.session


@pytest.mark.django_db
def test_counter_advanced_between_check_and_update_is_flagged_under_flag_policy(
    api, monkeypatch, settings
):
    settings.PASSKEYS_SIGN_COUNT_POLICY = "flag"
    authenticator = SoftAuthenticator(sign_count=10)
    credential = enroll(UserFactory(), authenticator)
    assertion = authenticator.get(api.post(LOGIN_OPTIONS).json(), sign_count=11)
    advance_counter_after_signature(monkeypatch, credential, 12)

    response = api.post(LOGIN_VERIFY, assertion)

    assert response.status_code == 200, response.content
    stored_after = Credential.objects.get(pk=credential.pk)
    assert stored_after.sign_count == 12
    assert stored_after.clone_warning_at is not None
    assert stored_after.last_used_at is not None


@pytest.mark.django_db
def test_counter_not_advanced_meanwhile_is_stored(api):
    authenticator = SoftAuthenticator(sign_count=10)
    credential = enroll(UserFactory(), authenticator)
    response = api.post(LOGIN_VERIFY, authenticator.get(api.post(LOGIN_OPTIONS).json()))
    assert response.status_code == 200, response.content
    assert Credential.objects.get(pk=credential.pk).sign_count == 11


# -- PostgreSQL: two requests, two connections ----------------------------------------------------


def race(monkeypatch: pytest.MonkeyPatch, requests: list[Callable[[], Any]]) -> list[Any]:
    """Run ``requests`` in threads, held together once each has verified its signature.

    By then each has read the credential record, so both pass the counter check against the
    same stored value; what follows is decided by the conditional UPDATE alone.
    """
    after_signature = threading.Barrier(len(requests), timeout=BARRIER_TIMEOUT)
    original = ceremonies.verify_authentication_response

    def verify_together(**kwargs: Any) -> Any:
        result = original(**kwargs)
        after_signature.wait()
        return result

    monkeypatch.setattr(ceremonies, "verify_authentication_response", verify_together)
    return run_in_threads(requests)


def outcome(response: Any) -> tuple[int, str | None]:
    return response.status_code, error_code(response) if response.status_code >= 400 else None


def two_logins(authenticator: SoftAuthenticator, counts: tuple[int, int]) -> list[Any]:
    """Two browsers, each with its own login challenge and an assertion with its counter."""
    prepared = []
    for count in counts:
        client = ApiClient()
        assertion = authenticator.get(client.post(LOGIN_OPTIONS).json(), sign_count=count)
        prepared.append((client, assertion))
    return [lambda c=c, a=a: c.post(LOGIN_VERIFY, a) for c, a in prepared]


@needs_postgres()
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_assertions_with_one_counter_at_once_sign_in_once(monkeypatch):
    # A cloned authenticator: both copies answer with the same counter at the same time.
    authenticator = SoftAuthenticator(sign_count=10)
    credential = enroll(UserFactory(), authenticator)

    responses = race(monkeypatch, two_logins(authenticator, (11, 11)))

    assert sorted(outcome(r) for r in responses) == [(200, None), (400, "sign_count_regressed")]
    assert Credential.objects.get(pk=credential.pk).sign_count == 11
    login = Challenge.objects.filter(purpose=Challenge.Purpose.LOGIN)
    assert login.filter(consumed_at__isnull=False).count() == 1


@needs_postgres()
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_assertions_never_lower_the_stored_counter(monkeypatch):
    authenticator = SoftAuthenticator(sign_count=10)
    credential = enroll(UserFactory(), authenticator)

    lower, higher = race(monkeypatch, two_logins(authenticator, (11, 12)))

    # The higher counter always wins; the lower one is accepted only if it was stored first.
    assert outcome(higher) == (200, None)
    assert outcome(lower) in {(200, None), (400, "sign_count_regressed")}
    assert Credential.objects.get(pk=credential.pk).sign_count == 12
