"""A backing service down (the cache, the database): a 503 JSON error, never a 500.

``benchmarks/throughput.py`` stops Redis and PostgreSQL under load; these are the same faults,
one request at a time. A refused connection to Redis is a real one (nothing listens on port 1);
the database outage is every statement failing with the ``OperationalError`` a lost server
raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection

from django_passkeys.errors import Reason
from django_passkeys.models import AuthEvent, Challenge, UserSession
from tests.support import (
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    ApiClient,
    assert_rejected,
    db_snapshot,
    login_options,
)

#: A Redis cache nobody serves: every command fails with a refused connection.
DOWN_CACHE = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
}


@pytest.fixture
def cache_down(settings: Any) -> None:
    """The rate-limit cache (and so the failure backoff) is unreachable."""
    settings.CACHES = {**settings.CACHES, "down": DOWN_CACHE}
    settings.RATELIMIT_USE_CACHE = "down"
    settings.PASSKEYS_RATE_LIMITS = {
        "login-options": {"ip": "60/m"},
        "login-verify": {"ip": "30/m"},
    }


@contextlib.contextmanager
def database_down() -> Iterator[None]:
    """Every SQL statement fails as it does when the server went away."""

    def fail(*args: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    # Tests using it run in autocommit (``transactional_db``), as production does: inside a
    # test's transaction the failed savepoint rollback would poison the rest of the test.
    with connection.execute_wrapper(fail):
        yield


def test_login_options_with_the_cache_down_is_service_unavailable(api, db, cache_down):
    response = api.post(LOGIN_OPTIONS)
    # The database is reachable, so the failure is audited.
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE)
    assert not Challenge.objects.exists()


def test_login_verify_with_the_cache_down_is_service_unavailable(
    api, enrolled, authenticator, settings
):
    assertion = authenticator.get(login_options(api))
    settings.CACHES = {**settings.CACHES, "down": DOWN_CACHE}
    settings.RATELIMIT_USE_CACHE = "down"
    before = db_snapshot()
    response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE)
    assert db_snapshot() == before
    assert not UserSession.objects.exists()


def test_login_verify_with_the_database_down_is_service_unavailable(
    api, transactional_db, enrolled, authenticator
):
    assertion = authenticator.get(login_options(api))
    before, events = db_snapshot(), AuthEvent.objects.count()
    with database_down():
        response = api.post(LOGIN_VERIFY, assertion)
    # Nothing could be audited: the database is what failed.
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE, audited=False)
    assert (db_snapshot(), AuthEvent.objects.count()) == (before, events)
    assert not UserSession.objects.exists()
    # Back up: the same sign-in succeeds by itself (its challenge was never consumed).
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200


def test_login_options_with_the_database_down_is_service_unavailable(api, transactional_db):
    with database_down():
        response = api.post(LOGIN_OPTIONS)
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE, audited=False)
    assert not Challenge.objects.exists()
    assert api.post(LOGIN_OPTIONS).status_code == 200


def test_a_database_outage_on_a_project_page_is_left_to_the_project(client, db):
    # Only the app's own URLs answer in its JSON shape; a project page fails as it always did.
    client.cookies["sessionid"] = "a" * 32  # loading the session needs the database
    with database_down(), pytest.raises(OperationalError):
        client.get("/admin/", secure=True)


def test_a_cache_failure_after_the_signature_verified_leaves_no_half_sign_in(
    api, enrolled, authenticator, monkeypatch
):
    # The cache dies between the verification and the reset of the account's failure count:
    # the sign-in is refused whole, its challenge still unused, no session, no login event.
    from redis.exceptions import ConnectionError as RedisConnectionError

    from django_passkeys import ratelimits

    def cache_down(user_pk: Any) -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    assertion = authenticator.get(login_options(api))
    monkeypatch.setattr(ratelimits, "reset_assertion_failures", cache_down)
    before = db_snapshot()
    response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE)
    assert db_snapshot() == before
    assert not UserSession.objects.exists()
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.LOGIN, success=True).exists()
    monkeypatch.undo()
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200


# -- the revocation middleware (django_passkeys.middleware) ----------------------------------------


def test_a_database_outage_before_an_app_view_is_service_unavailable(transactional_db):
    # The middleware loads the session (from the database) before the view: for the app's own
    # URLs the JSON error, never a 500.
    api = ApiClient()
    api.client.cookies["sessionid"] = "a" * 32
    with database_down():
        response = api.post(LOGIN_OPTIONS)
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE, audited=False)
    assert response["Retry-After"] == "5"
    assert not Challenge.objects.exists()


def test_a_database_outage_on_a_page_no_url_matches_is_left_to_the_project(client, db):
    client.cookies["sessionid"] = "a" * 32
    with database_down(), pytest.raises(OperationalError):
        client.get("/no-such-page/", secure=True)


def test_an_outage_while_following_a_rotated_session_key_is_service_unavailable(
    api, user, monkeypatch
):
    # After the view, the index follows a session key that changed; the database stopped
    # answering in between.
    from django_passkeys import middleware

    def database_gone(request: Any, key: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(middleware, "follow_key_rotation", database_gone)
    response = api.post(LOGIN_OPTIONS)
    assert_rejected(response, Reason.SERVICE_UNAVAILABLE)
    # A project page fails as the project's own pages would.
    with pytest.raises(OperationalError):
        api.client.get("/admin/", secure=True)
