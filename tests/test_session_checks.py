"""Session and cookie hardening: the checks that guard the settings, and key rotation at login."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_passkeys.checks import (
    check_cookie_samesite,
    check_cookie_transport,
    check_rate_limits,
)

from .authenticator import SoftAuthenticator
from .support import LOGIN_OPTIONS, LOGIN_VERIFY, enroll

REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}
}


def ids(messages) -> list[str]:
    return [m.id for m in messages]


@pytest.mark.parametrize(
    ("backend", "debug", "expected"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", False, ["passkeys.W001"]),
        ("django.core.cache.backends.dummy.DummyCache", False, ["passkeys.W001"]),
        ("django.core.cache.backends.locmem.LocMemCache", True, []),
        ("django.core.cache.backends.redis.RedisCache", False, []),
        ("django.core.cache.backends.memcached.PyMemcacheCache", False, []),
    ],
)
def test_rate_limit_cache_must_be_shared_across_processes(settings, backend, debug, expected):
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "x"}}
    settings.DEBUG = debug
    assert ids(check_rate_limits()) == expected


def test_rate_limit_cache_alias_must_exist(settings):
    settings.CACHES = REDIS
    settings.PASSKEYS_RATELIMIT_CACHE = settings.RATELIMIT_USE_CACHE = "limits"
    assert ids(check_rate_limits()) == ["passkeys.E011"]


def test_rate_limit_cache_must_be_django_ratelimits_cache(settings):
    settings.CACHES = {**REDIS, "limits": REDIS["default"]}
    settings.PASSKEYS_RATELIMIT_CACHE = "limits"
    assert ids(check_rate_limits()) == ["passkeys.E012"]
    settings.RATELIMIT_USE_CACHE = "limits"
    assert check_rate_limits() == []


@pytest.mark.parametrize(
    "limits",
    [
        {"login-options": {"ip": "lots"}},
        {"login-options": {"ip": "10 per minute"}},
        {"login-options": {"email": "10/m"}},
    ],
)
def test_rate_limits_must_be_rates(settings, limits):
    settings.CACHES = REDIS
    settings.PASSKEYS_RATE_LIMITS = limits
    assert ids(check_rate_limits()) == ["passkeys.E013"]


@pytest.mark.parametrize("cap", [0, 101, 1000])
def test_failed_attempt_cap_stays_within_nist_limit(settings, cap):
    settings.CACHES = REDIS
    settings.PASSKEYS_MAX_FAILED_ATTEMPTS = cap
    assert ids(check_rate_limits()) == ["passkeys.E014"]


def test_trusted_proxies_must_be_addresses_or_networks(settings):
    settings.CACHES = REDIS
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::1", "proxy.internal"]
    assert ids(check_rate_limits()) == ["passkeys.E015"]


def test_cookie_flags_are_checked(settings):
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SESSION_COOKIE_HTTPONLY = False
    assert ids(check_cookie_transport()) == ["passkeys.W002", "passkeys.W003", "passkeys.W004"]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SESSION_COOKIE_HTTPONLY = True
    assert check_cookie_transport() == []


@pytest.mark.parametrize(
    ("samesite", "expected"), [(None, ["passkeys.W005"]), ("Lax", []), ("Strict", [])]
)
def test_session_cookie_keeps_samesite(settings, samesite, expected):
    settings.SESSION_COOKIE_SAMESITE = samesite
    assert ids(check_cookie_samesite()) == expected


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_cookie_transport_checks_run_with_deploy_only(settings):
    settings.SESSION_COOKIE_SECURE = False
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "passkeys.W002" not in out.getvalue()
    with pytest.raises(SystemCheckError, match="passkeys.W002"):
        call_command("check", "--deploy", "--fail-level", "WARNING", stdout=out, stderr=out)


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_manage_py_check_fails_on_an_unknown_rate_limit_cache(settings):
    settings.PASSKEYS_RATELIMIT_CACHE = settings.RATELIMIT_USE_CACHE = "missing"
    with pytest.raises(SystemCheckError, match="passkeys.E011"):
        call_command("check")


@pytest.mark.django_db
def test_passkey_login_rotates_the_session_key_and_csrf_token(api, user):
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    # A visitor who already has an anonymous session (or one an attacker planted: fixation).
    anonymous = api.client.session
    anonymous["seen"] = True
    anonymous.save()
    options = api.post(LOGIN_OPTIONS).json()  # the challenge binding goes into that session
    key_before = api.client.cookies["sessionid"].value
    assert key_before == anonymous.session_key
    csrf_before = api.csrf_token()
    response = api.post(LOGIN_VERIFY, authenticator.get(options))
    assert response.status_code == 200
    assert response.cookies["sessionid"].value not in ("", key_before)
    assert response.cookies["csrftoken"].value not in ("", csrf_before)
    # The anonymous session is gone from the store: it cannot be replayed (session fixation).
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=key_before).exists()


@pytest.mark.django_db
def test_a_visitor_without_a_session_signs_in_to_a_new_one(api, user):
    # login/options creates no anonymous session for a visitor without one (its challenge
    # binding is in a cookie); login() then creates the only session, with a fresh key.
    from django.contrib.sessions.models import Session

    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    options = api.post(LOGIN_OPTIONS).json()
    assert "sessionid" not in api.client.cookies
    assert not Session.objects.exists()
    csrf_before = api.csrf_token()
    response = api.post(LOGIN_VERIFY, authenticator.get(options))
    assert response.status_code == 200
    assert response.cookies["csrftoken"].value not in ("", csrf_before)
    (session,) = Session.objects.all()
    assert response.cookies["sessionid"].value == session.session_key
    assert session.get_decoded()[SESSION_KEY] == str(user.pk)
