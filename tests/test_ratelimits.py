"""Rate limits: client IP, per-IP and per-account windows, and the failed-assertion backoff."""

from __future__ import annotations

import io
import logging
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import RequestFactory

from django_passkeys import ratelimits
from django_passkeys.checks import check_client_addresses
from django_passkeys.clientip import client_ip, ratelimit_ip_key
from django_passkeys.conf import DEFAULT_RATE_LIMITS, conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Challenge

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import (
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    ApiClient,
    cloned_assertion,
    enroll,
    forged_assertion,
    needs_redis,
    passkey_login,
)

pytestmark = pytest.mark.django_db


def request_from(remote: str | None, forwarded: str | None = None) -> Any:
    meta: dict[str, Any] = {"REMOTE_ADDR": remote} if remote is not None else {}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **meta)
    if remote is None:
        del request.META["REMOTE_ADDR"]
    return request


def assert_rate_limited(response: Any) -> int:
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == Reason.RATE_LIMITED.value
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    return retry_after


# -- client IP --------------------------------------------------------------------------------


def test_remote_addr_is_the_client_when_no_proxy_is_trusted():
    assert client_ip(request_from("198.51.100.7", "203.0.113.1")) == "198.51.100.7"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("198.51.100.7", "203.0.113.1")) == "198.51.100.7"


def test_trusted_proxies_are_skipped_right_to_left(settings):
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    # The client prepended a spoofed hop; the proxies appended the real one.
    request = request_from("10.0.0.1", "6.6.6.6, 203.0.113.9, 192.0.2.1, 10.1.2.3")
    assert client_ip(request) == "203.0.113.9"


def test_only_trusted_hops_gives_the_leftmost(settings):
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("10.0.0.1", "10.0.0.3, 10.0.0.2")) == "10.0.0.3"
    assert client_ip(request_from("10.0.0.1", "")) == "10.0.0.1"


def test_a_garbage_hop_stops_at_the_last_vouched_address(settings):
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request_from("10.0.0.1", "nonsense, 203.0.113.9")) == "203.0.113.9"
    assert client_ip(request_from("10.0.0.1", "203.0.113.9, 10.0.0.2, nonsense")) == "10.0.0.1"


def test_ipv4_mapped_ipv6_is_the_ipv4_client():
    assert client_ip(request_from("::ffff:198.51.100.7")) == "198.51.100.7"


def test_missing_or_invalid_remote_addr_has_no_ip():
    assert client_ip(request_from(None)) is None
    assert client_ip(request_from("not an ip")) is None
    assert ratelimit_ip_key(request_from(None)) is None  # never one bucket shared by all


def test_ipv6_clients_are_keyed_by_their_64():
    same = {ratelimit_ip_key(request_from(a)) for a in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9")}
    assert same == {"2001:db8:1:2::/64"}
    assert ratelimit_ip_key(request_from("2001:db8:1:3::1")) == "2001:db8:1:3::/64"
    assert ratelimit_ip_key(request_from("198.51.100.7")) == "198.51.100.7"


def test_the_audit_trail_records_the_forwarded_client(api, settings):
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.1"]
    api.post(LOGIN_VERIFY, {}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert AuthEvent.objects.get().ip_address == "203.0.113.9"


# -- windows per IP and per account --------------------------------------------------------------


def test_limits_merge_over_the_defaults(settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "5/m"}, "recover": {"ip": "2/h"}}
    assert ratelimits.limits_for("login-options") == {"ip": "5/m", "account": None}
    assert ratelimits.limits_for("recover") == {
        "ip": "2/h",
        "account": DEFAULT_RATE_LIMITS["recover"]["account"],
    }
    assert ratelimits.limits_for("anything-else") == DEFAULT_RATE_LIMITS["default"]


def test_ip_limit_answers_429_with_retry_after(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "3/h"}}
    statuses = [api.post(LOGIN_OPTIONS).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    first = assert_rate_limited(api.post(LOGIN_OPTIONS))
    second = assert_rate_limited(api.post(LOGIN_OPTIONS))
    assert 1 <= second <= first <= 3600
    assert Challenge.objects.count() == 3  # refused requests never reached the ceremony
    # One audit event per tripped window, however many requests it refuses.
    events = AuthEvent.objects.filter(event_type=AuthEvent.Type.RATE_LIMIT)
    assert [(e.success, e.reason_code) for e in events] == [(False, "rate_limited")]


def test_a_refused_request_costs_no_database_query(api, settings, django_assert_num_queries):
    settings.PASSKEYS_RATE_LIMITS = {"login-verify": {"ip": "1/h"}}
    api.post(LOGIN_VERIFY, {})
    assert_rate_limited(api.post(LOGIN_VERIFY, {}))  # the first refusal is audited
    with django_assert_num_queries(0):
        assert_rate_limited(api.post(LOGIN_VERIFY, {}))


def test_limits_apply_before_the_csrf_and_size_checks(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-verify": {"ip": "1/h"}}
    assert api.post(LOGIN_VERIFY, {}, csrf=False).status_code == 403
    assert_rate_limited(api.post(LOGIN_VERIFY, {}, csrf=False))


def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "2/h"}}
    for n in range(2):
        assert api.post(LOGIN_OPTIONS, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 200
    assert_rate_limited(api.post(LOGIN_OPTIONS, HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_a_trusted_proxy_gives_each_client_its_own_bucket(api, settings):
    settings.PASSKEYS_TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "2/h"}}
    via_proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for client in ("203.0.113.1", "203.0.113.2"):
        for _ in range(2):
            response = api.post(LOGIN_OPTIONS, HTTP_X_FORWARDED_FOR=client, **via_proxy)
            assert response.status_code == 200
    assert_rate_limited(api.post(LOGIN_OPTIONS, HTTP_X_FORWARDED_FOR="203.0.113.1", **via_proxy))


def test_ipv6_clients_in_one_64_share_a_bucket(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "2/h"}}
    assert api.post(LOGIN_OPTIONS, REMOTE_ADDR="2001:db8:7:7::1").status_code == 200
    assert api.post(LOGIN_OPTIONS, REMOTE_ADDR="2001:db8:7:7::2").status_code == 200
    assert_rate_limited(api.post(LOGIN_OPTIONS, REMOTE_ADDR="2001:db8:7:7:abcd::3"))
    assert api.post(LOGIN_OPTIONS, REMOTE_ADDR="2001:db8:7:8::1").status_code == 200


def test_account_limit_follows_the_signed_in_user_across_addresses(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {"register-options": {"ip": None, "account": "2/h"}}
    api.login(user)
    for n in range(2):
        response = api.post("/auth/passkey/register/options", REMOTE_ADDR=f"198.51.100.{n}")
        assert response.status_code == 200
    assert_rate_limited(api.post("/auth/passkey/register/options", REMOTE_ADDR="198.51.100.9"))
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.RATE_LIMIT)
    assert event.user == user
    # Another account on the same address is not affected.
    other = ApiClient()
    other.login(UserFactory())
    assert (
        other.post("/auth/passkey/register/options", REMOTE_ADDR="198.51.100.9").status_code == 200
    )


def test_naming_an_account_does_not_spend_its_allowance(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "3/h"}}
    for _ in range(3):
        api.post(LOGIN_OPTIONS, {"emailHint": user.email}, REMOTE_ADDR="203.0.113.66")
    assert_rate_limited(
        api.post(LOGIN_OPTIONS, {"emailHint": user.email}, REMOTE_ADDR="203.0.113.66")
    )
    victim = ApiClient()
    response = victim.post(LOGIN_OPTIONS, {"emailHint": user.email}, REMOTE_ADDR="198.51.100.5")
    assert response.status_code == 200


def test_clients_without_an_address_do_not_share_one_bucket(user, settings):
    # Defect 11: behind a Unix-socket proxy REMOTE_ADDR is empty for everyone; one client using
    # up its login/verify window must not lock every other client out.
    settings.PASSKEYS_RATE_LIMITS = {"login-verify": {"ip": "2/h"}}
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    attacker, victim = ApiClient(), ApiClient()
    attacker.post(LOGIN_OPTIONS, REMOTE_ADDR="")
    for _ in range(2):
        assert attacker.post(LOGIN_VERIFY, {}, REMOTE_ADDR="").status_code == 400
    assert_rate_limited(attacker.post(LOGIN_VERIFY, {}, REMOTE_ADDR=""))
    options = victim.post(LOGIN_OPTIONS, REMOTE_ADDR="").json()
    response = victim.post(LOGIN_VERIFY, authenticator.get(options), REMOTE_ADDR="")
    assert response.status_code == 200, response.content


def test_without_an_address_the_ip_window_counts_per_session(settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "1/h"}}
    # A first request has no session yet: it is counted in no IP window at all, rather than in
    # one that every client without an address would share.
    for _ in range(3):
        assert ApiClient().post(LOGIN_OPTIONS, REMOTE_ADDR="").status_code == 200
    api = ApiClient()
    assert [api.post(LOGIN_OPTIONS, REMOTE_ADDR="").status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(api.post(LOGIN_OPTIONS, REMOTE_ADDR=""))


def test_without_an_address_signed_in_sessions_get_a_window_each(user, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "1/h"}}
    first, second = ApiClient(), ApiClient()
    first.login(user)
    second.login(user)
    assert first.post(LOGIN_OPTIONS, REMOTE_ADDR="").status_code == 200
    assert_rate_limited(first.post(LOGIN_OPTIONS, REMOTE_ADDR=""))
    # The other session (the same account, no address either) has its own window.
    assert second.post(LOGIN_OPTIONS, REMOTE_ADDR="").status_code == 200


def test_a_missing_address_is_logged_once_and_reported_by_check_deploy(
    api, settings, caplog, monkeypatch
):
    monkeypatch.setattr(ratelimits, "_missing_address_warned_at", 0.0)
    assert check_client_addresses() == []
    with caplog.at_level(logging.WARNING, logger="django_passkeys"):
        for _ in range(3):
            api.post(LOGIN_OPTIONS, REMOTE_ADDR="")
    warned = [
        r for r in caplog.records if getattr(r, "passkeys_event", "") == "missing_client_address"
    ]
    assert len(warned) == 1  # not one line per request: a client could flood the log
    messages = check_client_addresses()
    assert [m.id for m in messages] == ["passkeys.W006"]
    assert "PASSKEYS_TRUSTED_PROXIES" in messages[0].hint
    out = io.StringIO()
    with pytest.raises(SystemCheckError, match="passkeys.W006"):
        call_command("check", "--deploy", "--fail-level", "WARNING", stdout=out, stderr=out)


def test_the_missing_address_check_is_silent_without_a_usable_cache(settings):
    settings.PASSKEYS_RATELIMIT_CACHE = settings.RATELIMIT_USE_CACHE = "missing"
    assert check_client_addresses() == []  # E011 reports the alias


def test_ratelimit_enable_false_switches_the_windows_off(api, settings):
    settings.RATELIMIT_ENABLE = False
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "1/h"}}
    assert [api.post(LOGIN_OPTIONS).status_code for _ in range(3)] == [200, 200, 200]


# -- failed-assertion backoff -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimits, "time", fake)
    return fake


def test_hold_delay_grows_from_the_free_failures_to_the_cap():
    delays = [ratelimits.hold_delay(n) for n in range(1, 14)]
    assert delays == [0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert ratelimits.hold_delay(99) == 3600
    assert ratelimits.hold_delay(100) == conf.PASSKEYS_FAILURE_BACKOFF["forget_after"]


def test_failed_assertions_hold_the_account_and_a_success_resets(api, user, settings, clock):
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 2, "base": 30}
    authenticator = SoftAuthenticator(sign_count=10)
    enroll(user, authenticator)
    for _ in range(2):
        response = api.post(LOGIN_VERIFY, cloned_assertion(api, authenticator))
        assert response.json()["error"]["code"] == "sign_count_regressed"
    assert AuthEvent.objects.filter(event_type=AuthEvent.Type.RATE_LIMIT, user=user).count() == 1
    # Held: even the owner's genuine assertion is refused unverified, for 30 s.
    genuine = authenticator.get(api.post(LOGIN_OPTIONS).json())
    assert 29 <= assert_rate_limited(api.post(LOGIN_VERIFY, genuine)) <= 30
    clock.now += 31
    assert api.post(LOGIN_VERIFY, genuine).status_code == 200
    # The success reset the count: the next failure is the first again, not a hold.
    api.client.logout()
    response = api.post(LOGIN_VERIFY, cloned_assertion(api, authenticator))
    assert response.json()["error"]["code"] == "sign_count_regressed"


def test_a_hold_covers_every_passkey_of_the_account(api, user, settings, clock):
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 1, "base": 60}
    first, second = SoftAuthenticator(sign_count=10), SoftAuthenticator()
    enroll(user, first)
    enroll(user, second)
    api.post(LOGIN_VERIFY, cloned_assertion(api, first))
    genuine = second.get(api.post(LOGIN_OPTIONS).json())
    assert_rate_limited(api.post(LOGIN_VERIFY, genuine))


def test_failures_naming_unknown_or_revoked_credentials_count_against_nobody(api, user, settings):
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 1}
    revoked, unknown = SoftAuthenticator(), SoftAuthenticator()
    enroll(user, revoked).revoke(reason="test")
    for authenticator, reason in ((revoked, "credential_revoked"), (unknown, "credential_unknown")):
        response = api.post(LOGIN_VERIFY, authenticator.get(api.post(LOGIN_OPTIONS).json()))
        assert response.json()["error"]["code"] == reason
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.RATE_LIMIT).exists()


def test_only_failures_in_the_credential_verification_count(rf, user, settings):
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 1}
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    named = {"rawId": authenticator.get({"challenge": "AAAA", "rpId": "testserver"})["rawId"]}
    request = rf.post("/")
    assert (
        ratelimits.record_assertion_failure(request, named, PasskeyError(Reason.CHALLENGE_INVALID))
        == 0
    )
    for data in ({}, {"rawId": 7}, {"rawId": "a"}, []):
        error = PasskeyError(Reason.SIGNATURE_INVALID)
        assert ratelimits.record_assertion_failure(request, data, error) == 0
    assert (
        ratelimits.record_assertion_failure(
            request, named, PasskeyError(Reason.SIGN_COUNT_REGRESSED)
        )
        == 1
    )
    ratelimits.check_assertion_backoff({"rawId": "a"})  # unparseable: nothing to check


def test_forged_signatures_never_hold_the_account(api, user, settings):
    # Anyone can name a victim's credential (login/options lists it for the victim's e-mail);
    # failures without a verified signature must not let them hold the victim's passkeys.
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 1, "base": 60}
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    for _ in range(5):
        response = api.post(LOGIN_VERIFY, forged_assertion(api, authenticator))
        assert response.json()["error"]["code"] == "signature_invalid"
    assert passkey_login(authenticator)
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.RATE_LIMIT).exists()


def test_reaching_the_cap_holds_until_the_count_is_forgotten(api, user, settings, clock):
    settings.PASSKEYS_MAX_FAILED_ATTEMPTS = 2
    settings.PASSKEYS_FAILURE_BACKOFF = {"forget_after": 600}
    authenticator = SoftAuthenticator(sign_count=10)
    enroll(user, authenticator)
    for _ in range(2):
        api.post(LOGIN_VERIFY, cloned_assertion(api, authenticator))
    genuine = authenticator.get(api.post(LOGIN_OPTIONS).json())
    assert 599 <= assert_rate_limited(api.post(LOGIN_VERIFY, genuine)) <= 600
    clock.now += 601  # never permanent: the hold ends with the forgotten count
    assert api.post(LOGIN_VERIFY, genuine).status_code == 200


def test_a_count_evicted_between_add_and_incr_restarts_at_one(rf, user, settings, monkeypatch):
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    named = {"rawId": authenticator.get({"challenge": "AAAA", "rpId": "testserver"})["rawId"]}
    cache = ratelimits._cache()

    def evicted(*args: Any, **kwargs: Any) -> int:
        raise ValueError("key evicted")

    monkeypatch.setattr(type(cache), "incr", evicted)
    error = PasskeyError(Reason.SIGN_COUNT_REGRESSED)
    assert ratelimits.record_assertion_failure(rf.post("/"), named, error) == 1


# -- burst against a shared Redis cache ---------------------------------------------------------


def _seconds_left_in_window(value: str, period: int) -> float:
    # django-ratelimit's fixed windows end at a per-key offset (crc32 of the key) in the period.
    now = time.time()
    end = int(now) - int(now) % period + zlib.crc32(value.encode()) % period
    return (end if end >= now else end + period) - now


def _address_mid_window(prefix: str) -> str:
    """A fresh client address whose hourly window has at least a minute left, so that a burst
    cannot straddle two windows (each key's window has its own offset)."""
    while True:
        address = f"{prefix}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
        if _seconds_left_in_window(address, 3600) >= 60:
            return address


@needs_redis()
def test_burst_from_one_ip_against_redis(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "10/h"}}
    address = _address_mid_window("198.18")
    responses = [api.post(LOGIN_OPTIONS, REMOTE_ADDR=address) for _ in range(25)]
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 10 + [429] * 15
    retry_afters = {int(r["Retry-After"]) for r in responses if r.status_code == 429}
    assert all(60 <= value <= 3600 for value in retry_afters)


@needs_redis()
def test_concurrent_burst_against_redis_lets_exactly_the_limit_through(settings, monkeypatch):
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "20/h"}}
    monkeypatch.setattr(ratelimits, "_on_limited", lambda *args, **kwargs: None)  # no DB here
    address = _address_mid_window("198.19")

    def attempt(_: int) -> bool:
        request = RequestFactory().post("/", REMOTE_ADDR=address)
        try:
            ratelimits.enforce(request, "login-options")
        except PasskeyError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        allowed = list(pool.map(attempt, range(100)))
    assert allowed.count(True) == 20


def test_a_failure_naming_an_unregistered_credential_counts_against_nobody(rf):
    named = {"rawId": "AAAA"}
    error = PasskeyError(Reason.SIGN_COUNT_REGRESSED)
    assert ratelimits.record_assertion_failure(rf.post("/"), named, error) == 0
