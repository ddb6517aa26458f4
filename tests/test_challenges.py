"""Challenges: issued server-side, stored as a digest, one-time, bound to session and purpose."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_passkeys import challenges
from django_passkeys.challenges import CHALLENGE_BYTES, consume, issue, lookup, session_binding
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import Challenge

pytestmark = pytest.mark.django_db

LOGIN = Challenge.Purpose.LOGIN
REGISTER = Challenge.Purpose.REGISTER
REAUTH = Challenge.Purpose.REAUTH


def session_request() -> Any:
    """A request of a client that has a session already (signed in, or anonymous with data)."""
    request = RequestFactory().post("/")
    request.session = SessionStore()
    request.session.create()
    request.session.modified = False
    return request


def sessionless_request(**cookies: str) -> Any:
    """A request of a client without a session yet: a visitor arriving at the sign-in page."""
    request = RequestFactory().post("/", secure=True)
    request.COOKIES.update(cookies)
    request.session = SessionStore()
    return request


def test_issue_stores_only_the_digest_of_a_fresh_random_challenge():
    request = session_request()
    value = issue(request, LOGIN)
    assert len(value) == CHALLENGE_BYTES
    row = Challenge.objects.get()
    assert row.challenge_sha256 == hashlib.sha256(value).hexdigest()
    stored = [
        str(v)
        for v in Challenge.objects.values_list(*[f.attname for f in Challenge._meta.fields]).get()
    ]
    assert not any(value.hex() in s or repr(value) in s for s in stored)
    assert issue(request, LOGIN) != value


def test_issue_records_purpose_user_allowed_credentials_and_ttl(settings, user):
    settings.PASSKEYS_CHALLENGE_TTL = 120
    request = session_request()
    issue(request, REGISTER, user_id=user.pk, allowed_credentials=("a" * 64, "b" * 64))
    row = Challenge.objects.get()
    assert row.purpose == REGISTER
    assert row.user_id == user.pk
    assert row.allowed_credentials == ["a" * 64, "b" * 64]
    assert row.consumed_at is None
    assert row.expires_at - row.created_at == timedelta(seconds=120)


def test_issue_binds_the_challenge_to_a_secret_kept_in_the_session():
    request = session_request()
    issue(request, LOGIN)
    binding = session_binding(request, create=False)
    assert binding is not None
    assert Challenge.objects.get().session_binding == binding
    # The binding is a digest of the secret, never the secret or the session key.
    secret = request.session[challenges._SESSION_KEY]
    assert binding == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in binding


def test_session_binding_is_stable_for_a_session_and_differs_between_sessions():
    request = session_request()
    assert session_binding(request) == session_binding(request)
    assert session_binding(request) != session_binding(session_request())


def test_session_binding_without_create_writes_nothing():
    request = session_request()
    assert session_binding(request, create=False) is None
    assert not request.session.modified
    assert challenges._SESSION_KEY not in request.session


def test_lookup_finds_the_challenge_of_this_session_and_purpose():
    request = session_request()
    value = issue(request, LOGIN)
    assert lookup(request, LOGIN, value) == Challenge.objects.get()


def take_without_returning(request: Any, purpose: Challenge.Purpose, value: bytes) -> Challenge:
    """:func:`challenges.take` as it runs on a database without ``UPDATE ... RETURNING``."""
    with patch.object(challenges, "_updates_return_rows", return_value=False):
        return challenges.take(request, purpose, value)


#: Every way of finding a challenge checks it alike: lookup(), take() in its one statement, and
#: take() where the database needs two.
FINDERS = [lookup, challenges.take, take_without_returning]


def assert_rejected(request: Any, purpose: Challenge.Purpose, value: bytes, code: Reason) -> None:
    before = list(Challenge.objects.values_list("pk", "consumed_at"))
    for find in FINDERS:
        with pytest.raises(PasskeyError) as caught, transaction.atomic():
            find(request, purpose, value)
        assert caught.value.code == code, find
        # A refused challenge is left as it was: take()'s consumption rolled back with the error.
        assert list(Challenge.objects.values_list("pk", "consumed_at")) == before


def test_unknown_challenge_is_invalid():
    assert_rejected(session_request(), LOGIN, b"x" * 32, Reason.CHALLENGE_INVALID)


def test_consumed_challenge_is_invalid():
    request = session_request()
    value = issue(request, LOGIN)
    consume(Challenge.objects.get())
    assert_rejected(request, LOGIN, value, Reason.CHALLENGE_INVALID)


def test_challenge_of_another_purpose_is_invalid():
    request = session_request()
    value = issue(request, REGISTER)
    assert_rejected(request, LOGIN, value, Reason.CHALLENGE_INVALID)


def test_challenge_of_another_session_is_invalid():
    value = issue(session_request(), LOGIN)
    other = session_request()
    session_binding(other)
    assert_rejected(other, LOGIN, value, Reason.CHALLENGE_INVALID)


def test_challenge_checked_from_a_session_without_binding_is_invalid():
    value = issue(session_request(), LOGIN)
    fresh = session_request()
    assert_rejected(fresh, LOGIN, value, Reason.CHALLENGE_INVALID)
    assert challenges._SESSION_KEY not in fresh.session


def test_expired_challenge_is_expired():
    request = session_request()
    value = issue(request, LOGIN)
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_rejected(request, LOGIN, value, Reason.CHALLENGE_EXPIRED)


def test_consume_marks_the_challenge_used_once():
    request = session_request()
    issue(request, LOGIN)
    row = Challenge.objects.get()
    consume(row)
    assert Challenge.objects.get().consumed_at is not None
    with pytest.raises(PasskeyError) as caught:
        consume(row)
    assert caught.value.code == Reason.CHALLENGE_INVALID


def test_consume_refuses_a_challenge_that_expired_after_lookup():
    request = session_request()
    value = issue(request, LOGIN)
    row = lookup(request, LOGIN, value)
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PasskeyError) as caught:
        consume(row)
    assert caught.value.code == Reason.CHALLENGE_INVALID
    assert Challenge.objects.get().consumed_at is None


@pytest.mark.parametrize("take", [challenges.take, take_without_returning])
def test_take_finds_and_consumes_the_challenge(take):
    request = session_request()
    value = issue(request, LOGIN)
    with transaction.atomic():
        row = take(request, LOGIN, value)
    assert row == Challenge.objects.get()
    assert row.purpose == LOGIN and row.allowed_credentials == []
    assert Challenge.objects.get().consumed_at is not None
    with pytest.raises(PasskeyError) as caught, transaction.atomic():
        take(request, LOGIN, value)
    assert caught.value.code == Reason.CHALLENGE_INVALID


@pytest.mark.skipif(
    not connection.features.can_return_columns_from_insert, reason="no UPDATE ... RETURNING"
)
def test_take_is_one_statement_where_the_database_returns_updated_rows(user):
    request = session_request()
    value = issue(request, REAUTH, user_id=user.pk, allowed_credentials=["a" * 64])
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        row = challenges.take(request, REAUTH, value)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(statements) == 1 and "RETURNING" in statements[0]
    # The row comes back with every field converted as the ORM would.
    stored = Challenge.objects.get()
    assert (row.pk, row.user_id, row.allowed_credentials) == (stored.pk, user.pk, ["a" * 64])
    assert row.expires_at == stored.expires_at and row.consumed_at == stored.consumed_at


def test_take_outside_a_transaction_is_a_programming_error():
    # Without the caller's transaction a later failure could not undo the consumption.
    request = session_request()
    value = issue(request, LOGIN)
    with patch.object(challenges.transaction, "get_connection") as get_connection:
        get_connection.return_value.in_atomic_block = False
        with pytest.raises(RuntimeError, match="in a transaction"):
            challenges.take(request, LOGIN, value)
    assert Challenge.objects.get().consumed_at is None


# -- Clients without a session: the binding secret in a cookie ------------------------------------


def issued_cookie(request: Any) -> Any:
    response = HttpResponse()
    challenges.set_binding_cookie(request, response)
    return response.cookies[challenges.BINDING_COOKIE]


def test_a_client_without_a_session_gets_its_binding_in_a_cookie_not_a_new_session(settings):
    settings.PASSKEYS_CHALLENGE_TTL = 120
    request = sessionless_request()
    value = issue(request, LOGIN)
    # No anonymous session is created for the challenge: nothing to save, no row to delete later.
    assert not request.session.modified
    assert request.session.session_key is None
    cookie = issued_cookie(request)
    assert (
        Challenge.objects.get().session_binding == hashlib.sha256(cookie.value.encode()).hexdigest()
    )
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == settings.SESSION_COOKIE_SAMESITE
    assert cookie["max-age"] == 120
    # The browser sends it back with login/verify: the challenge is this client's.
    assert lookup(sessionless_request(passkeys_binding=cookie.value), LOGIN, value)


def test_challenge_of_a_sessionless_client_is_invalid_for_another_client():
    value = issue(sessionless_request(), LOGIN)
    for other in (sessionless_request(), sessionless_request(passkeys_binding="x" * 43)):
        assert_rejected(other, LOGIN, value, Reason.CHALLENGE_INVALID)
    # A client with a session is another client too.
    assert_rejected(session_request(), LOGIN, value, Reason.CHALLENGE_INVALID)


def test_a_sessionless_client_keeps_its_binding_cookie_across_challenges():
    # Two tabs: the second login/options must not orphan the first one's challenge.
    first = sessionless_request()
    value = issue(first, LOGIN)
    secret = issued_cookie(first).value
    second = sessionless_request(passkeys_binding=secret)
    issue(second, LOGIN)
    assert issued_cookie(second).value == secret
    assert lookup(sessionless_request(passkeys_binding=secret), LOGIN, value)


def test_a_malformed_binding_cookie_is_replaced():
    request = sessionless_request(passkeys_binding="not a secret;")
    issue(request, LOGIN)
    cookie = issued_cookie(request)
    assert cookie.value != "not a secret;" and len(cookie.value) >= 43


def test_a_client_with_a_session_gets_no_binding_cookie():
    request = session_request()
    issue(request, LOGIN)
    assert challenges._SESSION_KEY in request.session
    response = HttpResponse()
    challenges.set_binding_cookie(request, response)
    assert challenges.BINDING_COOKIE not in response.cookies
