"""Challenges: issued server-side, stored as a digest, one-time, bound to session and purpose.

Every behaviour holds for both stores (``PASSKEYS_CHALLENGE_STORE``): the ``store`` fixture runs
a test with each, and fails a cache-store test that wrote a ``Challenge`` row.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_passkeys import challenges
from django_passkeys.challenges import CHALLENGE_BYTES, consume, issue, lookup, session_binding
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import Challenge

from . import support
from .authenticator import SoftAuthenticator, b64url, b64url_decode
from .support import (
    BARRIER_TIMEOUT,
    LOGIN_VERIFY,
    ApiClient,
    enroll,
    login_options,
    needs_redis,
    run_in_threads,
)

pytestmark = pytest.mark.django_db

LOGIN = Challenge.Purpose.LOGIN
REGISTER = Challenge.Purpose.REGISTER
REAUTH = Challenge.Purpose.REAUTH
CACHE_SESSIONS = "django.contrib.sessions.backends.cache"


@pytest.fixture(params=["database", "cache"])
def store(request: Any, settings: Any) -> Iterator[str]:
    """Run the test with each challenge store; the cache store never writes a row."""
    settings.PASSKEYS_CHALLENGE_STORE = request.param
    yield request.param
    if request.param == "cache":
        assert not Challenge.objects.exists()


def cache() -> Any:
    """Where the cache store keeps challenges: the cache of cache sessions."""
    return caches[django_settings.SESSION_CACHE_ALIAS]


def cache_key(value: bytes) -> str:
    return "passkeys:challenge:" + hashlib.sha256(value).hexdigest()


def stored(value: bytes) -> Challenge:
    """The challenge ``value`` as its store holds it: its row, or its cache entry read back."""
    digest = hashlib.sha256(value).hexdigest()
    if challenges.store() == "cache":
        found = challenges._cached(digest)
        assert found is not None
        return found
    return Challenge.objects.get(challenge_sha256=digest)


def state(value: bytes) -> Any:
    """What the store holds: every row and its consumption, or the challenge's cache entry."""
    if challenges.store() == "cache":
        return cache().get(cache_key(value))
    return list(Challenge.objects.values_list("pk", "consumed_at"))


def is_consumed(value: bytes) -> bool:
    if challenges.store() == "cache":
        return cache().get(cache_key(value)) is None
    return stored(value).consumed_at is not None


def fields(row: Challenge) -> tuple[Any, ...]:
    """What a challenge holds, whichever store it came from (a cache one has no primary key)."""
    return (
        row.challenge_sha256,
        row.purpose,
        row.session_binding,
        row.user_id,
        row.allowed_credentials,
        row.created_at,
        row.expires_at,
    )


@contextmanager
def later(seconds: float) -> Iterator[None]:
    """The challenges' clock ``seconds`` ahead: a challenge ages without the test waiting.

    The cache's own clock is not moved: an entry stays until its real timeout.
    """
    now = timezone.now() + timedelta(seconds=seconds)
    with patch.object(challenges.timezone, "now", return_value=now):
        yield


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


def test_issue_stores_only_the_digest_of_a_fresh_random_challenge(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "database"
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


def test_issue_records_purpose_user_allowed_credentials_and_ttl(store, settings, user):
    settings.PASSKEYS_CHALLENGE_TTL = 120
    request = session_request()
    value = issue(request, REGISTER, user_id=user.pk, allowed_credentials=("a" * 64, "b" * 64))
    row = stored(value)
    assert row.challenge_sha256 == hashlib.sha256(value).hexdigest()
    assert row.purpose == REGISTER
    # The user id comes back as the primary key's type, whatever the cache serialised.
    assert row.user_id == user.pk and type(row.user_id) is type(user.pk)
    assert row.allowed_credentials == ["a" * 64, "b" * 64]
    assert row.consumed_at is None
    assert row.expires_at - row.created_at == timedelta(seconds=120)
    assert row.created_at.tzinfo is not None


def test_issue_binds_the_challenge_to_a_secret_kept_in_the_session(store):
    request = session_request()
    value = issue(request, LOGIN)
    binding = session_binding(request, create=False)
    assert binding is not None
    assert stored(value).session_binding == binding
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


def test_lookup_finds_the_challenge_of_this_session_and_purpose(store):
    request = session_request()
    value = issue(request, LOGIN)
    assert fields(lookup(request, LOGIN, value)) == fields(stored(value))
    assert not is_consumed(value)


def take_without_returning(request: Any, purpose: Challenge.Purpose, value: bytes) -> Challenge:
    """:func:`challenges.take` as it runs on a database without ``UPDATE ... RETURNING``."""
    with patch.object(challenges, "_updates_return_rows", return_value=False):
        return challenges.take(request, purpose, value)


#: Every way of finding a challenge checks it alike: lookup(), take() in its one statement, and
#: take() where the database needs two.
FINDERS = [lookup, challenges.take, take_without_returning]


def assert_rejected(request: Any, purpose: Challenge.Purpose, value: bytes, code: Reason) -> None:
    before = state(value)
    for find in FINDERS:
        with pytest.raises(PasskeyError) as caught, transaction.atomic():
            find(request, purpose, value)
        assert caught.value.code == code, find
        # A refused challenge is left as it was: take()'s consumption rolled back with the error,
        # or, from the cache, never happened (the checks come before the deletion).
        assert state(value) == before


def test_unknown_challenge_is_invalid(store):
    assert_rejected(session_request(), LOGIN, b"x" * 32, Reason.CHALLENGE_INVALID)


def test_consumed_challenge_is_invalid(store):
    request = session_request()
    value = issue(request, LOGIN)
    consume(lookup(request, LOGIN, value))
    assert_rejected(request, LOGIN, value, Reason.CHALLENGE_INVALID)


def test_challenge_of_another_purpose_is_invalid(store):
    request = session_request()
    value = issue(request, REGISTER)
    assert_rejected(request, LOGIN, value, Reason.CHALLENGE_INVALID)


def test_challenge_of_another_session_is_invalid(store):
    value = issue(session_request(), LOGIN)
    other = session_request()
    session_binding(other)
    assert_rejected(other, LOGIN, value, Reason.CHALLENGE_INVALID)


def test_challenge_checked_from_a_session_without_binding_is_invalid(store):
    value = issue(session_request(), LOGIN)
    fresh = session_request()
    assert_rejected(fresh, LOGIN, value, Reason.CHALLENGE_INVALID)
    assert challenges._SESSION_KEY not in fresh.session


def test_expired_challenge_is_expired(store):
    request = session_request()
    value = issue(request, LOGIN)
    with later(conf.PASSKEYS_CHALLENGE_TTL + 1):
        assert_rejected(request, LOGIN, value, Reason.CHALLENGE_EXPIRED)


def test_consume_marks_the_challenge_used_once(store):
    request = session_request()
    value = issue(request, LOGIN)
    row = lookup(request, LOGIN, value)
    consume(row)
    assert is_consumed(value)
    with pytest.raises(PasskeyError) as caught:
        consume(row)
    assert caught.value.code == Reason.CHALLENGE_INVALID


def test_consume_refuses_a_challenge_that_expired_after_lookup(store):
    request = session_request()
    value = issue(request, LOGIN)
    row = lookup(request, LOGIN, value)
    with later(conf.PASSKEYS_CHALLENGE_TTL + 1), pytest.raises(PasskeyError) as caught:
        consume(row)
    assert caught.value.code == Reason.CHALLENGE_INVALID
    assert not is_consumed(value)


@pytest.mark.parametrize("take", [challenges.take, take_without_returning])
def test_take_finds_and_consumes_the_challenge(store, take):
    request = session_request()
    value = issue(request, LOGIN)
    before = fields(stored(value))
    with transaction.atomic():
        row = take(request, LOGIN, value)
    assert fields(row) == before
    assert row.purpose == LOGIN and row.allowed_credentials == []
    assert is_consumed(value)
    with pytest.raises(PasskeyError) as caught, transaction.atomic():
        take(request, LOGIN, value)
    assert caught.value.code == Reason.CHALLENGE_INVALID


@pytest.mark.skipif(
    not connection.features.can_return_columns_from_insert, reason="no UPDATE ... RETURNING"
)
def test_take_is_one_statement_where_the_database_returns_updated_rows(settings, user):
    settings.PASSKEYS_CHALLENGE_STORE = "database"
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


def test_take_outside_a_transaction_is_a_programming_error(store):
    # Without the caller's transaction a later failure could not undo the consumption; the
    # cache store insists too, so that a caller works with either store.
    request = session_request()
    value = issue(request, LOGIN)
    with patch.object(challenges.transaction, "get_connection") as get_connection:
        get_connection.return_value.in_atomic_block = False
        with pytest.raises(RuntimeError, match="in a transaction"):
            challenges.take(request, LOGIN, value)
    assert not is_consumed(value)


# -- Clients without a session: the binding secret in a cookie ------------------------------------


def issued_cookie(request: Any) -> Any:
    response = HttpResponse()
    challenges.set_binding_cookie(request, response)
    return response.cookies[challenges.BINDING_COOKIE]


def test_a_client_without_a_session_gets_its_binding_in_a_cookie_not_a_new_session(store, settings):
    settings.PASSKEYS_CHALLENGE_TTL = 120
    request = sessionless_request()
    value = issue(request, LOGIN)
    # No anonymous session is created for the challenge: nothing to save, no row to delete later.
    assert not request.session.modified
    assert request.session.session_key is None
    cookie = issued_cookie(request)
    assert stored(value).session_binding == hashlib.sha256(cookie.value.encode()).hexdigest()
    assert cookie["httponly"] and cookie["secure"]
    assert cookie["samesite"] == settings.SESSION_COOKIE_SAMESITE
    assert cookie["max-age"] == 120
    # The browser sends it back with login/verify: the challenge is this client's.
    assert lookup(sessionless_request(passkeys_binding=cookie.value), LOGIN, value)


def test_challenge_of_a_sessionless_client_is_invalid_for_another_client(store):
    value = issue(sessionless_request(), LOGIN)
    for other in (sessionless_request(), sessionless_request(passkeys_binding="x" * 43)):
        assert_rejected(other, LOGIN, value, Reason.CHALLENGE_INVALID)
    # A client with a session is another client too.
    assert_rejected(session_request(), LOGIN, value, Reason.CHALLENGE_INVALID)


def test_a_sessionless_client_keeps_its_binding_cookie_across_challenges(store):
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


# -- Where challenges are kept: PASSKEYS_CHALLENGE_STORE -----------------------------------------


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("django.contrib.sessions.backends.db", "database"),
        (CACHE_SESSIONS, "cache"),
        # Durable in the database: so are their challenges.
        ("django.contrib.sessions.backends.cached_db", "database"),
        ("django.contrib.sessions.backends.file", "database"),
    ],
)
def test_the_auto_store_is_the_cache_exactly_with_cache_sessions(settings, engine, expected):
    if hasattr(settings, "PASSKEYS_CHALLENGE_STORE"):
        del settings.PASSKEYS_CHALLENGE_STORE
    settings.SESSION_ENGINE = engine
    assert challenges.store() == expected
    settings.PASSKEYS_CHALLENGE_STORE = "auto"
    assert challenges.store() == expected


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.db", CACHE_SESSIONS])
def test_an_explicit_store_wins_over_the_session_engine(settings, engine):
    settings.SESSION_ENGINE = engine
    for chosen in ("database", "cache"):
        settings.PASSKEYS_CHALLENGE_STORE = chosen
        assert challenges.store() == chosen


def test_an_unknown_store_fails_closed(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "redis"
    with pytest.raises(ImproperlyConfigured, match="PASSKEYS_CHALLENGE_STORE"):
        issue(session_request(), LOGIN)
    assert not Challenge.objects.exists()


def test_the_cache_store_writes_no_row_and_keeps_no_raw_challenge(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    request = session_request()
    with CaptureQueriesContext(connection) as queries:
        value = issue(request, LOGIN, allowed_credentials=["a" * 64])
    assert len(queries) == 0
    assert not Challenge.objects.exists()
    # Keyed by the digest under the app's prefix; the entry holds the row's fields as text.
    entry = cache().get("passkeys:challenge:" + hashlib.sha256(value).hexdigest())
    assert set(entry) == {
        "purpose",
        "session_binding",
        "user_id",
        "allowed_credentials",
        "created_at",
        "expires_at",
    }
    assert json.loads(json.dumps(entry)) == entry  # plain values: any cache serializer takes them
    text = json.dumps(entry)
    encodings = [
        value.hex(),
        repr(value),
        b64url(value),
        base64.b64encode(value).decode(),
    ]
    assert not any(encoded in text for encoded in encodings)


def test_a_cache_challenge_outlives_its_expiry_by_the_grace(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    settings.PASSKEYS_CHALLENGE_TTL = 120
    request = session_request()
    with patch.object(cache(), "set", wraps=cache().set) as put:
        value = issue(request, LOGIN)
    assert put.call_args.kwargs["timeout"] == 120 + challenges.CACHE_GRACE
    # Just past its expiry, within the grace, it is still found: expired, not unknown.
    with later(120 + challenges.CACHE_GRACE - 1):
        assert_rejected(request, LOGIN, value, Reason.CHALLENGE_EXPIRED)


def test_a_challenge_past_a_zero_ttl_is_expired_not_unknown(settings):
    # With no grace the cache would keep nothing (a timeout of 0 stores nothing): the entry is
    # there, and answers challenge_expired, as a row does.
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    settings.PASSKEYS_CHALLENGE_TTL = 0
    request = session_request()
    value = issue(request, LOGIN)
    assert cache().get(cache_key(value)) is not None
    assert_rejected(request, LOGIN, value, Reason.CHALLENGE_EXPIRED)


def test_a_cache_challenge_is_found_and_consumed_without_a_statement(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    request = session_request()
    value = issue(request, LOGIN)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        challenges.take(request, LOGIN, value)
    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert statements == []
    assert is_consumed(value)


def test_a_taken_cache_challenge_is_not_given_back_by_a_failure_after_it(settings):
    # The one difference between the stores: a row's consumption rolls back with the failed
    # verification, a deleted cache entry stays deleted. One attempt per challenge.
    request = session_request()
    for chosen, given_back in (("database", True), ("cache", False)):
        settings.PASSKEYS_CHALLENGE_STORE = chosen
        value = issue(request, LOGIN)
        with pytest.raises(PasskeyError), transaction.atomic():
            challenges.take(request, LOGIN, value)
            raise PasskeyError(Reason.SIGNATURE_INVALID)
        assert is_consumed(value) is not given_back, chosen
        if given_back:
            continue
        for find in FINDERS:
            with pytest.raises(PasskeyError) as caught, transaction.atomic():
                find(request, LOGIN, value)
            assert caught.value.code == Reason.CHALLENGE_INVALID


@needs_redis()
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_one_cache_challenge_taken_by_many_at_once_is_taken_once(settings, monkeypatch):
    # Every thread finds the entry and passes the checks, then all delete it at once (a barrier
    # holds them just before): Redis's DEL tells exactly one that it deleted the key.
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    threads = 8
    issuing = sessionless_request()
    value = issue(issuing, LOGIN)
    secret = issued_cookie(issuing).value
    held = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)
    original = challenges._consume_cached

    def together(row: Challenge) -> None:
        held.wait()
        original(row)

    monkeypatch.setattr(challenges, "_consume_cached", together)

    def attempt() -> str:
        request = sessionless_request(passkeys_binding=secret)
        try:
            with transaction.atomic():
                challenges.take(request, LOGIN, value)
        except PasskeyError as error:
            return error.code.value
        return "taken"

    outcomes = run_in_threads([attempt] * threads)
    assert sorted(outcomes) == ["challenge_invalid"] * (threads - 1) + ["taken"]
    assert is_consumed(value)


# -- Over HTTP, with cache sessions ---------------------------------------------------------------


def test_a_sign_in_with_cache_sessions_keeps_its_challenges_in_the_cache(settings, user):
    settings.SESSION_ENGINE = CACHE_SESSIONS  # PASSKEYS_CHALLENGE_STORE "auto": the cache
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)  # registration: lookup() and consume() from the cache
    api = ApiClient()
    assertion = authenticator.get(login_options(api))
    response = api.post(LOGIN_VERIFY, assertion)
    assert response.status_code == 200, response.content
    assert not Challenge.objects.exists()
    # The same assertion again, from the same client: its challenge is gone.
    support.assert_rejected(api.post(LOGIN_VERIFY, assertion), Reason.CHALLENGE_INVALID)


def test_with_cache_sessions_a_failed_assertion_spends_its_challenge(settings, user):
    settings.SESSION_ENGINE = CACHE_SESSIONS
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    api = ApiClient()
    assertion = authenticator.get(login_options(api))
    forged = json.loads(json.dumps(assertion))
    signature = bytearray(b64url_decode(forged["response"]["signature"]))
    signature[-1] ^= 0x01
    forged["response"]["signature"] = b64url(bytes(signature))
    support.assert_rejected(api.post(LOGIN_VERIFY, forged), Reason.SIGNATURE_INVALID)
    # With database challenges this assertion would now sign in (the failure rolled the
    # consumption back); from the cache the challenge went with the failed attempt.
    support.assert_rejected(api.post(LOGIN_VERIFY, assertion), Reason.CHALLENGE_INVALID)
    assert not Challenge.objects.exists()
