"""Recovery codes: generated on the ``recovery-codes/`` page, shown once, hashed at rest, each
usable once (django_passkeys/recovery_codes.py, flows/recovery_codes.py, views/recovery_codes.py).
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import threading
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import get_messages
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import RequestFactory
from django_otp import devices_for_user, match_token

from django_passkeys import flows, recovery_codes, signals
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, RecoveryCode, RecoveryCodeDevice
from django_passkeys.sessions import ASSERTION_TIME_KEY, AUTH_TIME_KEY

from .factories import CredentialFactory, UserFactory
from .support import BARRIER_TIMEOUT, error_code, needs_postgres, run_in_threads

pytestmark = pytest.mark.django_db

PAGE = "/auth/passkey/recovery-codes/"
CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){5}\b")
FIXED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The factor module's clock stops at ``FIXED`` (timestamps of sets and of used codes)."""
    monkeypatch.setattr(recovery_codes, "timezone", types.SimpleNamespace(now=lambda: FIXED))


@pytest.fixture
def received():
    """Every recovery-code signal sent during the test, as ``(name, kwargs)``."""
    log: list[tuple[str, dict[str, Any]]] = []
    names = ("second_factor_added", "recovery_codes_generated", "recovery_code_used")
    receivers = {}
    for name in names:

        def receiver(sender, name=name, **kwargs):
            log.append((name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield log
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def stamp(api, **stamps: int) -> None:
    """Set session time stamps (``AUTH_TIME_KEY``, ``ASSERTION_TIME_KEY``) to now minus each."""
    session = api.client.session
    for key, age in stamps.items():
        session[key] = int(time.time()) - age
    session.save()


def fresh_passkey(api) -> None:
    stamp(api, **{ASSERTION_TIME_KEY: 0, AUTH_TIME_KEY: 0})


def form_post(api, data: dict[str, Any] | None = None, **extra: Any):
    """Send the page's form (the CSRF token as the page's form carries it)."""
    return api.client.post(
        PAGE, data or {}, secure=True, HTTP_X_CSRFTOKEN=api.csrf_token(), **extra
    )


def generate(api, replaces: int | None = None) -> list[str]:
    """Generate a set over JSON; return the codes."""
    response = api.post(PAGE, {} if replaces is None else {"replaces": replaces})
    assert response.status_code == 200, response.content
    codes: list[str] = response.json()["codes"]
    return codes


def codes_in(response) -> list[str]:
    return CODE.findall(response.content.decode())


def a_request(user: Any = None):
    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.9")
    request.session = SessionStore()
    request.user = user or AnonymousUser()
    return request


def digests(user) -> list[tuple[int, str, Any]]:
    return sorted(
        RecoveryCode.objects.filter(device__user=user).values_list("pk", "digest", "used_at")
    )


def snapshot(user) -> tuple[Any, ...]:
    device = RecoveryCodeDevice.objects.filter(user=user).values_list(
        "generation", "generated_at", "salt", "last_used_at"
    )
    return ([(g, at, bytes(salt), used) for g, at, salt, used in device], digests(user))


def events(event_type: AuthEvent.Type) -> list[tuple[bool, str]]:
    return list(
        AuthEvent.objects.filter(event_type=event_type)
        .order_by("pk")
        .values_list("success", "reason_code")
    )


@pytest.fixture
def signed_in(api, user):
    api.login(user)
    return api


# ---------------------------------------------------------------------------------------------
# The codes themselves
# ---------------------------------------------------------------------------------------------


def test_a_code_is_24_crockford_characters_of_120_bits_grouped_by_four():
    codes = {recovery_codes.new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert CODE.fullmatch(code), code
    assert recovery_codes.CODE_LENGTH * math.log2(len(set(recovery_codes.ALPHABET))) == 120


def test_codes_come_from_the_secrets_module(monkeypatch):
    calls = []

    def choice(seq):
        calls.append(seq)
        return seq[0]

    monkeypatch.setattr(recovery_codes.secrets, "choice", choice)
    assert recovery_codes.new_code() == "0000-0000-0000-0000-0000-0000"
    assert len(calls) == 24


@pytest.mark.parametrize(
    "typed",
    [
        "V3PC-8D5N-7K2M-9QXR-4TZW-0H1A",
        "v3pc-8d5n-7k2m-9qxr-4tzw-0h1a",
        "V3PC8D5N7K2M9QXR4TZW0H1A",
        " v3pc 8d5n 7k2m 9qxr 4tzw 0h1a ",
        "V3PC-8D5N-7K2M-9QXR-4TZW-OH1A",  # O for 0
        "V3PC-8D5N-7K2M-9QXR-4TZW-0HIA",  # I for 1
        "V3PC-8D5N-7K2M-9QXR-4TZW-0hlA",  # l for 1
        "V3PC8D5N7K2M\t9QXR\n4TZW-0H1A",
    ],
)
def test_typed_codes_are_read_case_and_separator_insensitively_with_confusables(typed):
    assert recovery_codes.normalize(typed) == "V3PC8D5N7K2M9QXR4TZW0H1A"


@pytest.mark.parametrize(
    "typed",
    [
        None,
        7_000_000_000_000_000,
        ["V3PC-8D5N-7K2M-9QXR-4TZW-0H1A"],
        "",
        "V3PC-8D5N-7K2M-9QXR-4TZW-0H1",  # short
        "V3PC-8D5N-7K2M-9QXR-4TZW-0H1AA",  # long
        "V3PC-8D5N-7K2M-9QXR-4TZW-0HUA",  # U is not Crockford
        "V3PC-8D5N-7K2M-9QXR-4TZW-0H1\x00",
        "V3PC-8D5N-7K2M-9QXR-4TZW-0H1²",
        "١٢٣٤٥٦٧٨٩١٢٣٤٥٦٧",  # Arabic-Indic digits
        "V3PC-8D5N-7K2M-9QXR-4TZW-0HıA",  # dotless ı upper-cases to I: refused as non-ASCII first
        "V3PC-8D5N-7K2M-9QXR-4TZW-0H1A" + " " * 100,
        "9" * 10_000,
    ],
)
def test_anything_else_is_not_a_code(typed):
    assert recovery_codes.normalize(typed) is None


def test_digests_are_keyed_by_the_device_salt():
    one = recovery_codes.digest(b"a" * 32, "V3PC8D5N7K2M9QXR4TZW0H1A")
    two = recovery_codes.digest(b"b" * 32, "V3PC8D5N7K2M9QXR4TZW0H1A")
    assert one != two and len(one) == 64


# ---------------------------------------------------------------------------------------------
# Generating, and showing once
# ---------------------------------------------------------------------------------------------


def test_generating_shows_ten_codes_once_on_a_page_of_their_own(signed_in, user, clock):
    page = signed_in.client.get(PAGE, secure=True)
    assert page.status_code == 200
    assert 'name="replaces" value="0"' in page.content.decode()

    response = form_post(signed_in, {"replaces": "0"})
    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "django_passkeys/recovery_codes_new.html"
    codes = codes_in(response)
    assert len(codes) == 10 == len(set(codes))
    assert "no-store" in response["Cache-Control"]
    device = RecoveryCodeDevice.objects.get(user=user)
    assert (device.generation, device.generated_at, device.confirmed) == (1, FIXED, True)
    assert RecoveryCode.objects.filter(device=device, used_at__isnull=True).count() == 10

    # Back on the page: how many there are, never the codes.
    again = signed_in.client.get(PAGE, secure=True)
    assert codes_in(again) == []
    assert "You have 10 unused recovery codes." in again.content.decode()


def test_sending_the_form_again_shows_nothing_and_keeps_the_set(signed_in, user):
    first = form_post(signed_in, {"replaces": "0"})
    assert len(codes_in(first)) == 10
    before = snapshot(user)

    # A reload of the answer sends the same form again.
    reload = form_post(signed_in, {"replaces": "0"})
    assert reload.status_code == 303 and reload["Location"] == PAGE
    assert codes_in(reload) == []
    assert snapshot(user) == before
    messages = [str(m) for m in get_messages(reload.wsgi_request)]
    assert messages and "shown only once" in messages[0]
    assert events(AuthEvent.Type.RECOVERY_CODES) == [(True, ""), (False, "recovery_codes_changed")]


def test_json_clients_get_the_codes_in_the_answer(signed_in, user):
    codes = generate(signed_in)
    assert len(codes) == 10 and all(CODE.fullmatch(c) for c in codes)
    stale = signed_in.post(PAGE, {"replaces": 0})
    assert (stale.status_code, error_code(stale)) == (400, "recovery_codes_changed")
    assert len(generate(signed_in, replaces=1)) == 10


def test_the_set_size_is_a_setting(signed_in, settings):
    settings.PASSKEYS_RECOVERY_CODE_COUNT = 4
    assert len(generate(signed_in)) == 4


def test_the_download_link_holds_the_codes_as_a_text_file(signed_in, user):
    response = form_post(signed_in)
    codes = codes_in(response)
    page = response.content.decode()
    link = re.search(r'<a class="[^"]*" href="(data:[^"]+)" download="([^"]+)">', page)
    assert link is not None
    url, name = html.unescape(link.group(1)), link.group(2)
    assert name == "recovery-codes.txt"
    assert url.startswith("data:text/plain;charset=utf-8,")
    text = unquote(url.split(",", 1)[1])
    assert [line for line in text.splitlines() if CODE.fullmatch(line)] == codes
    assert user.get_username() in text


def test_the_copy_button_names_the_list_and_waits_for_javascript(signed_in):
    page = form_post(signed_in).content.decode()
    assert '<ol class="pk-codes" id="pk-recovery-codes"' in page
    button = re.search(r"<button [^>]*data-pk-copy=\"pk-recovery-codes\"[^>]*>", page)
    assert button is not None and " hidden" in button.group(0)
    assert "data-pk-copied=" in button.group(0)


def test_codes_are_stored_nowhere_in_clear(signed_in, user, caplog):
    caplog.set_level(logging.DEBUG)
    codes = generate(signed_in)
    recovery = flows.use_recovery_code(a_request(), user, codes[0])
    assert recovery.remaining == 9
    forms = {c for code in codes for c in (code, code.replace("-", ""), code.lower())}

    # Every row of every table, the sessions and the audit trail included.
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dump.extend(repr(row) for row in cursor.fetchall())
    everything = "\n".join(dump)
    assert RecoveryCode.objects.count() == 10 and "recovery_codes" in everything
    for form in forms:
        assert form not in everything
        assert form.encode().hex() not in everything
    session = dict(signed_in.client.session.items())
    assert not any(form in json.dumps(session, default=str) for form in forms)
    assert not any(form in caplog.text for form in forms)


def test_each_new_set_replaces_the_whole_previous_one(signed_in, user, received):
    old = generate(signed_in)
    flows.use_recovery_code(a_request(), user, old[0])
    new = generate(signed_in, replaces=1)
    assert not set(old) & set(new)
    assert RecoveryCode.objects.filter(device__user=user).count() == 10
    for code in old[1:3]:
        with pytest.raises(PasskeyError) as caught:
            flows.use_recovery_code(a_request(), user, code)
        assert caught.value.code == Reason.SECOND_FACTOR_INVALID
    assert flows.use_recovery_code(a_request(), user, new[0]).remaining == 9
    assert RecoveryCodeDevice.objects.get(user=user).generation == 2
    generated = [kw for name, kw in received if name == "recovery_codes_generated"]
    added = [kw for name, kw in received if name == "second_factor_added"]
    assert [kw["count"] for kw in generated] == [10, 10]
    assert [(kw["kind"], kw["user"], kw["device"].user_id) for kw in added] == [
        ("recovery_codes", user, user.pk)
    ]


def test_a_failed_replacement_keeps_the_previous_set(signed_in, user, monkeypatch):
    old = generate(signed_in)
    before = snapshot(user)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(RecoveryCode.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        flows.generate_recovery_codes(signed_in_request(signed_in, user), user)
    assert snapshot(user) == before
    monkeypatch.undo()
    assert flows.use_recovery_code(a_request(), user, old[0]).remaining == 9


def signed_in_request(api, user):
    """A request carrying ``api``'s session, for calling a flow directly."""
    request = a_request(user)
    request.session = SessionStore(session_key=api.client.session.session_key)
    return request


# ---------------------------------------------------------------------------------------------
# Who may generate
# ---------------------------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in_or_refused(api, user):
    page = api.client.get(PAGE, secure=True)
    assert page.status_code == 302 and "/login/" in page["Location"]
    response = api.post(PAGE, {})
    assert (response.status_code, error_code(response)) == (403, "not_authenticated")
    assert RecoveryCodeDevice.objects.count() == 0


def test_generating_needs_a_recent_sign_in(signed_in, user):
    stamp(signed_in, **{AUTH_TIME_KEY: 3600})
    page = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "sign in again before generating" in page
    assert re.search(r'<button class="pk-button pk-primary" type="submit" disabled>', page)
    response = signed_in.post(PAGE, {})
    assert (response.status_code, error_code(response)) == (403, "reauthentication_required")
    assert RecoveryCodeDevice.objects.count() == 0 and RecoveryCode.objects.count() == 0
    assert events(AuthEvent.Type.RECOVERY_CODES) == [(False, "reauthentication_required")]


def test_a_first_set_needs_only_a_recent_sign_in_even_with_passkeys(signed_in, user, received):
    CredentialFactory(user=user)  # a password sign-in just now, no passkey assertion
    assert len(generate(signed_in)) == 10
    assert [name for name, _ in received] == ["second_factor_added", "recovery_codes_generated"]


def test_replacing_a_set_needs_a_fresh_passkey_assertion_when_the_user_has_passkeys(
    signed_in, user, received
):
    CredentialFactory(user=user)
    old = generate(signed_in)
    before = snapshot(user)

    page = signed_in.client.get(PAGE, secure=True).content.decode()
    assert '<form class="pk-form" method="post" data-pk-reauth>' in page
    config = json.loads(re.search(r'id="passkeys-config"[^>]*>(.*?)</script>', page).group(1))
    assert {"reauthOptions", "reauthVerify"} <= set(config["urls"])

    # A recent password sign-in is not enough: it could be the attacker's.
    refused = signed_in.post(PAGE, {"replaces": 1})
    assert (refused.status_code, error_code(refused)) == (403, "reauthentication_required")
    refused_form = form_post(signed_in, {"replaces": "1"})
    assert refused_form.status_code == 303
    assert snapshot(user) == before

    fresh_passkey(signed_in)
    assert set(generate(signed_in, replaces=1)).isdisjoint(old)
    assert [name for name, _ in received] == [
        "second_factor_added",
        "recovery_codes_generated",
        "recovery_codes_generated",
    ]


def test_an_old_assertion_does_not_count(signed_in, user):
    CredentialFactory(user=user)
    generate(signed_in)
    stamp(signed_in, **{ASSERTION_TIME_KEY: 3600, AUTH_TIME_KEY: 0})
    response = signed_in.post(PAGE, {"replaces": 1})
    assert error_code(response) == "reauthentication_required"


def test_without_passkeys_a_recent_sign_in_replaces_a_set(signed_in, user):
    generate(signed_in)
    page = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "data-pk-reauth" not in page and "disabled" not in page
    assert len(generate(signed_in, replaces=1)) == 10


def test_a_revoked_passkey_does_not_demand_an_assertion(signed_in, user):
    CredentialFactory(user=user, revoked_at=FIXED)
    generate(signed_in)
    assert len(generate(signed_in, replaces=1)) == 10


def test_an_old_sign_in_with_passkeys_is_renewed_by_step_up_on_the_page(signed_in, user):
    CredentialFactory(user=user)
    stamp(signed_in, **{AUTH_TIME_KEY: 3600})
    page = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "data-pk-reauth" in page and "disabled" not in page
    assert "Or sign in again with a passkey" in page


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def test_the_page_counts_what_is_left_and_warns_at_two(signed_in, user, clock):
    first = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "Generate recovery codes" in first and "You have no" not in first
    codes = generate(signed_in)
    for code in codes[:7]:
        flows.use_recovery_code(a_request(), user, code)
    three = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "You have 3 unused recovery codes." in three
    assert "pk-msg pk-error" not in three
    assert "Generate new codes" in three
    flows.use_recovery_code(a_request(), user, codes[7])
    two = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "You have 2 unused recovery codes." in two
    assert '<p class="pk-msg pk-error">Only 2 recovery codes are left.' in two
    for code in codes[8:]:
        flows.use_recovery_code(a_request(), user, code)
    none = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "You have 0 unused recovery codes." in none
    assert "You have used all your recovery codes." in none


def test_the_state_for_the_security_page(signed_in, user, clock):
    state = flows.recovery_codes_state(user)
    assert (state.enabled, state.remaining, state.created_at, state.low) == (
        False,
        0,
        None,
        False,
    )
    assert "Set up recovery codes" in state.next_step
    codes = generate(signed_in)
    state = recovery_codes.recovery_codes_state(user)
    assert (state.enabled, state.remaining, state.created_at, state.generation) == (
        True,
        10,
        FIXED,
        1,
    )
    assert not state.low and "somewhere safe" in state.next_step
    for code in codes[:9]:
        state = flows.use_recovery_code(a_request(), user, code)
    assert (state.remaining, state.low) == (1, True)
    assert state.next_step == "Only 1 recovery code is left. Generate a new set."
    assert recovery_codes.recovery_codes_state(user) == state


def test_the_state_is_one_query(signed_in, user, django_assert_num_queries):
    generate(signed_in)
    with django_assert_num_queries(1):
        recovery_codes.recovery_codes_state(user)


# ---------------------------------------------------------------------------------------------
# Using a code
# ---------------------------------------------------------------------------------------------


def test_a_code_works_once_and_is_audited_and_signalled(signed_in, user, received, clock):
    codes = generate(signed_in)
    received.clear()
    state = flows.use_recovery_code(a_request(), user, codes[3])
    assert state.remaining == 9
    [(name, kwargs)] = received
    assert (name, kwargs["user"], kwargs["remaining"]) == ("recovery_code_used", user, 9)
    assert kwargs["request"] is not None
    used = RecoveryCode.objects.get(used_at__isnull=False)
    assert used.used_at == FIXED
    assert RecoveryCodeDevice.objects.get(user=user).last_used_at == FIXED

    before = snapshot(user)
    with pytest.raises(PasskeyError) as caught:
        flows.use_recovery_code(a_request(), user, codes[3])
    assert caught.value.code == Reason.SECOND_FACTOR_INVALID
    assert snapshot(user) == before
    assert len(received) == 1
    assert events(AuthEvent.Type.RECOVERY_CODE_USED) == [
        (True, ""),
        (False, "second_factor_invalid"),
    ]
    assert set(AuthEvent.objects.values_list("user", flat=True)) == {user.pk}


def test_a_code_is_accepted_as_typed(signed_in, user):
    code = generate(signed_in)[0]
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert flows.use_recovery_code(a_request(), user, typed).remaining == 9


def test_another_users_code_is_not_accepted(signed_in, user):
    code = generate(signed_in)[0]
    other = UserFactory()
    with pytest.raises(PasskeyError) as caught:
        flows.use_recovery_code(a_request(), other, code)
    assert caught.value.code == Reason.SECOND_FACTOR_INVALID
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 0


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        (None, Reason.MALFORMED_REQUEST),
        (123456, Reason.MALFORMED_REQUEST),
        (["AAAA-AAAA-AAAA-AAAA"], Reason.MALFORMED_REQUEST),
        ({"code": "x"}, Reason.MALFORMED_REQUEST),
        ("", Reason.SECOND_FACTOR_INVALID),
        ("²" * 16, Reason.SECOND_FACTOR_INVALID),
        ("١٢٣٤٥٦", Reason.SECOND_FACTOR_INVALID),
        ("\x00" * 16, Reason.SECOND_FACTOR_INVALID),
        ("9" * 100_000, Reason.SECOND_FACTOR_INVALID),
        ("0000-0000-0000-0000", Reason.SECOND_FACTOR_INVALID),
    ],
)
def test_hostile_codes_are_refused_with_a_reason_and_change_nothing(signed_in, user, typed, reason):
    generate(signed_in)
    before = snapshot(user)
    with pytest.raises(PasskeyError) as caught:
        flows.use_recovery_code(a_request(), user, typed)
    assert caught.value.code == reason and caught.value.status == 400
    assert snapshot(user) == before
    assert events(AuthEvent.Type.RECOVERY_CODE_USED) == [(False, reason.value)]


def test_a_user_without_codes_gets_the_same_refusal(user):
    with pytest.raises(PasskeyError) as caught:
        flows.use_recovery_code(a_request(), user, "V3PC-8D5N-7K2M-9QXR-4TZW-0H1A")
    assert caught.value.code == Reason.SECOND_FACTOR_INVALID


def test_a_code_is_compared_with_every_unused_digest(signed_in, user, monkeypatch):
    codes = generate(signed_in)
    compared = []
    original = recovery_codes.hmac.compare_digest

    def counting(a, b):
        compared.append(a)
        return original(a, b)

    monkeypatch.setattr(recovery_codes.hmac, "compare_digest", counting)
    # Whichever code matches, first row or last, every unused digest is compared.
    flows.use_recovery_code(a_request(), user, codes[0])
    assert len(compared) == 10
    compared.clear()
    flows.use_recovery_code(a_request(), user, codes[-1])
    assert len(compared) == 9


def test_django_otp_sees_the_device_and_spends_codes_once(signed_in, user):
    codes = generate(signed_in)
    device = RecoveryCodeDevice.objects.get(user=user)
    assert device in list(devices_for_user(user))
    assert device.verify_token(codes[0]) is True
    assert device.verify_token(codes[0]) is False
    assert device.verify_token(None) is False
    assert match_token(user, codes[1]) == device
    assert flows.recovery_codes_state(user).remaining == 8


# ---------------------------------------------------------------------------------------------
# Hostile requests to the page
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "replaces",
    [True, -1, 1.5, "²", "١", "1" * 40, 10**30, "\x00", "", " 1", [1], {"a": 1}],
)
def test_a_bad_replaces_is_malformed_and_writes_nothing(signed_in, user, replaces):
    response = signed_in.post(PAGE, {"replaces": replaces})
    assert (response.status_code, error_code(response)) == (400, "malformed_request")
    assert RecoveryCodeDevice.objects.count() == 0
    assert events(AuthEvent.Type.RECOVERY_CODES) == [(False, "malformed_request")]


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        (b"[]", 400, "malformed_request"),
        (b"{", 400, "malformed_request"),
        (b'{"replaces": "\\ud800"}', 400, "malformed_request"),
        (b'{"replaces": "' + b"1" * 70_000 + b'"}', 413, "payload_too_large"),
    ],
)
def test_broken_bodies_get_a_reason_code(signed_in, raw, status, reason):
    response = signed_in.post(PAGE, raw=raw)
    assert (response.status_code, error_code(response)) == (status, reason)
    assert RecoveryCodeDevice.objects.count() == 0


def test_a_post_without_the_csrf_token_is_refused(signed_in):
    response = signed_in.post(PAGE, {}, csrf=False)
    assert (response.status_code, error_code(response)) == (403, "csrf_failed")
    assert RecoveryCodeDevice.objects.count() == 0


def test_other_methods_are_not_allowed(signed_in):
    response = signed_in.client.put(PAGE, secure=True)
    assert (response.status_code, error_code(response)) == (405, "method_not_allowed")


def test_generating_is_rate_limited_per_account(signed_in, settings):
    settings.PASSKEYS_RATE_LIMITS = {"recovery-codes": {"ip": None, "account": "2/h"}}
    generate(signed_in)
    generate(signed_in, replaces=1)
    limited = signed_in.post(PAGE, {"replaces": 2})
    assert (limited.status_code, error_code(limited)) == (429, "rate_limited")
    assert int(limited["Retry-After"]) > 0
    assert RecoveryCodeDevice.objects.get().generation == 2


def test_the_default_rate_limits_name_this_endpoint():
    from django_passkeys.conf import DEFAULT_RATE_LIMITS

    assert DEFAULT_RATE_LIMITS["recovery-codes"] == {"ip": "20/m", "account": "10/h"}


# ---------------------------------------------------------------------------------------------
# Races (PostgreSQL: SQLite serialises every writer, so it proves nothing)
# ---------------------------------------------------------------------------------------------


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` at once, each in its own thread: what each returned, or its refusal."""

    def outcome(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except PasskeyError as refusal:  # the outcome to compare
            return refusal

    return run_in_threads([partial(outcome, call) for call in calls])


def reasons(results: list[Any]) -> list[str]:
    return sorted(
        r.code.value if isinstance(r, PasskeyError) else type(r).__name__ for r in results
    )


@needs_postgres()
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_code_spent_by_two_requests_at_once_succeeds_once(monkeypatch):
    user = UserFactory()
    device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, name="Recovery codes")
    code = recovery_codes.replace_codes(device, 3)[0]
    # Both requests have found the code unused before either marks it used.
    both_matched = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    original = recovery_codes.spend

    def spend_together(code_pk: int) -> bool:
        both_matched.wait()
        return original(code_pk)

    monkeypatch.setattr(recovery_codes, "spend", spend_together)
    results = race([lambda: flows.use_recovery_code(a_request(), user, code)] * 2)
    assert reasons(results) == ["RecoveryCodesState", "second_factor_invalid"]
    assert RecoveryCode.objects.filter(used_at__isnull=False).count() == 1
    assert sorted(events(AuthEvent.Type.RECOVERY_CODE_USED)) == [
        (False, "second_factor_invalid"),
        (True, ""),
    ]


@needs_postgres()
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("existing", [False, True])
def test_one_form_sent_twice_at_once_generates_one_set(monkeypatch, existing):
    user = UserFactory()
    generation = 0
    if existing:
        device, _ = RecoveryCodeDevice.objects.get_or_create(user=user, name="Recovery codes")
        recovery_codes.replace_codes(device, 3)
        generation = 1
    both_started = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    original = recovery_codes.locked_device

    def lock_together(who: Any) -> Any:
        both_started.wait()
        return original(who)

    monkeypatch.setattr(recovery_codes, "locked_device", lock_together)

    def send() -> Any:
        request = a_request(user)
        request.session[AUTH_TIME_KEY] = int(time.time())
        return flows.generate_recovery_codes(request, user, replaces=generation)

    results = race([send, send])
    assert reasons(results) == ["GeneratedRecoveryCodes", "recovery_codes_changed"]
    device = RecoveryCodeDevice.objects.get(user=user)
    assert device.generation == generation + 1
    assert RecoveryCode.objects.filter(device=device).count() == 10


def test_a_set_never_repeats_a_code(monkeypatch):
    drawn = iter(["AAAA-AAAA-AAAA-AAAA", "AAAA-AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB-BBBB"])
    monkeypatch.setattr(recovery_codes, "new_code", lambda: next(drawn))
    device, _ = RecoveryCodeDevice.objects.get_or_create(user=UserFactory(), name="Recovery codes")
    assert recovery_codes.replace_codes(device, 2) == ["AAAA-AAAA-AAAA-AAAA", "BBBB-BBBB-BBBB-BBBB"]


def test_without_passkeys_an_old_sign_in_must_sign_in_again_to_replace(signed_in, user):
    generate(signed_in)
    stamp(signed_in, **{AUTH_TIME_KEY: 3600})
    page = signed_in.client.get(PAGE, secure=True).content.decode()
    assert "sign in again before generating" in page and "data-pk-reauth" not in page
    response = signed_in.post(PAGE, {"replaces": 1})
    assert error_code(response) == "reauthentication_required"
    assert RecoveryCodeDevice.objects.get().generation == 1


def test_a_reload_says_the_codes_are_shown_once_even_when_replacing_needs_a_passkey(
    signed_in, user
):
    CredentialFactory(user=user)  # a first set needs no passkey; a replacement would
    form_post(signed_in, {"replaces": "0"})
    before = snapshot(user)
    reload = form_post(signed_in, {"replaces": "0"})
    assert reload.status_code == 303
    assert [str(m) for m in get_messages(reload.wsgi_request)][0].startswith(
        "Your recovery codes changed since this page was loaded"
    )
    assert snapshot(user) == before
