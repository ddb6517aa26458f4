"""The authenticator app (TOTP): enrolment page, confirmation, replay, drift, throttling,
removal, hostile codes, and the flow API the recovery and security pages use.

Time is fixed: django-otp reads ``time.time()`` through its model module, which the ``clock``
fixture replaces there only (the session stamps keep the real clock).
"""

from __future__ import annotations

import json
import time
import types
from base64 import b32encode
from datetime import timedelta
from unittest import mock
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import segno
from django.contrib.messages import get_messages
from django.test import override_settings
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys import flows, signals
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.flows import totp as totp_flows
from django_passkeys.models import AuthEvent
from django_passkeys.sessions import ASSERTION_TIME_KEY, AUTH_TIME_KEY
from django_passkeys.totp import (
    PENDING_KEY,
    clean_code,
    config_uri,
    qr_svg,
    secret_text,
    totp_state,
)

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import ApiClient, error_code, needs_postgres, run_in_threads

pytestmark = pytest.mark.django_db

PAGE = "/auth/passkey/totp/"
REMOVE = "/auth/passkey/totp/remove"
#: A fixed instant in the middle of a 30-second step.
NOW = 1_760_000_015


@pytest.fixture
def clock(monkeypatch):
    """The time django-otp sees: ``clock.now``, settable."""
    fake = types.SimpleNamespace(now=NOW)
    monkeypatch.setattr(
        "django_otp.plugins.otp_totp.models.time", types.SimpleNamespace(time=lambda: fake.now)
    )
    return fake


def code_at(device: TOTPDevice, when: float) -> str:
    """The code ``device``'s app shows at ``when``."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = when
    return f"{totp.token():0{device.digits}d}"


def stamp(api: ApiClient, key: str, age: int = 0) -> None:
    session = api.client.session
    session[key] = int(time.time()) - age
    session.save()


def fresh_passkey(api: ApiClient) -> None:
    """As after a passkey sign-in or a step-up reauthentication."""
    stamp(api, ASSERTION_TIME_KEY)


def pending(api: ApiClient, user) -> TOTPDevice:
    """Show the enrolment page in ``api`` and return the device whose secret it shows."""
    response = api.client.get(PAGE, secure=True)
    assert response.status_code == 200
    return TOTPDevice.objects.get(pk=api.client.session[PENDING_KEY], user=user)


def confirmed(api: ApiClient, user, clock) -> TOTPDevice:
    """Set up an authenticator app for ``user`` through the page and the endpoint."""
    device = pending(api, user)
    response = api.post(PAGE, {"code": code_at(device, clock.now)})
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert device.confirmed
    return device


def unthrottle(device: TOTPDevice) -> None:
    """As if the wait the last failure imposed were over."""
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(days=1)
    )


def state_of(device: TOTPDevice) -> tuple:
    device.refresh_from_db()
    return (device.confirmed, device.last_t, device.throttling_failure_count, device.key)


@pytest.fixture
def signed_in(api, user):
    api.login(user)
    return user


@pytest.fixture
def received():
    """Every ``second_factor_added`` / ``second_factor_removed`` sent during the test."""
    sent: list[tuple[str, dict]] = []

    def on_added(sender, **kwargs):
        sent.append(("added", kwargs))

    def on_removed(sender, **kwargs):
        sent.append(("removed", kwargs))

    signals.second_factor_added.connect(on_added)
    signals.second_factor_removed.connect(on_removed)
    yield sent
    signals.second_factor_added.disconnect(on_added)
    signals.second_factor_removed.disconnect(on_removed)


def events(event_type):
    return list(
        AuthEvent.objects.filter(event_type=event_type)
        .order_by("pk")
        .values_list("success", "reason_code")
    )


# ---------------------------------------------------------------------------------------------
# The enrolment page
# ---------------------------------------------------------------------------------------------


def test_page_shows_the_pending_devices_secret_as_an_inline_svg_qr_code_and_as_text(api, signed_in):
    response = api.client.get(PAGE, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    device = TOTPDevice.objects.get(user=signed_in)
    assert not device.confirmed
    assert api.client.session[PENDING_KEY] == device.pk
    # The QR code: segno's SVG of the otpauth URI, inline, named, and without inline style.
    svg = str(qr_svg(device))
    assert svg in html
    assert svg.startswith('<svg role="img" aria-label="QR code for your authenticator app" ')
    assert "<title>QR code for your authenticator app</title>" in svg
    assert "style" not in svg and "<script" not in svg
    expected = segno.make(config_uri(device), error="m").svg_inline(
        scale=4,
        title="QR code for your authenticator app",
        svgclass="pk-qr",
        lineclass=None,
        light="#fff",
        dark="#000",
    )
    assert svg.replace('role="img" aria-label="QR code for your authenticator app" ', "") == (
        expected
    )
    # The secret as text: the device's key in base32, grouped in fours.
    secret = b32encode(device.bin_key).decode().rstrip("=")
    shown = html.split("<code data-pk-secret>")[1].split("</code>")[0]
    assert shown.replace(" ", "") == secret
    assert all(len(group) == 4 for group in shown.split(" "))
    # The form: a labelled field for the code.
    assert '<label class="pk-label" for="pk-code">' in html
    assert 'autocomplete="one-time-code"' in html


def test_the_qr_code_carries_the_same_uri_as_django_otps_config_url(api, signed_in):
    device = pending(api, signed_in)
    uri = config_uri(device)
    with override_settings(OTP_TOTP_ISSUER="Test site"):
        assert uri == device.config_url
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == f"/Test site:{signed_in.get_username()}"
    query = parse_qs(parts.query)
    assert query["secret"] == [b32encode(device.bin_key).decode()]
    assert query["issuer"] == ["Test site"]
    assert (query["digits"], query["period"], query["algorithm"]) == (["6"], ["30"], ["SHA1"])


def test_the_issuer_is_the_rp_name_without_colons(api, signed_in, settings):
    settings.PASSKEYS_RP_NAME = "Shop: EU"
    device = pending(api, signed_in)
    assert config_uri(device).startswith("otpauth://totp/Shop%20EU%3A")
    assert "&issuer=Shop%20EU" in config_uri(device)


def test_without_an_issuer_the_label_is_the_username(signed_in, settings):
    settings.PASSKEYS_RP_NAME = settings.PASSKEYS_RP_ID = ""
    device = TOTPDevice.objects.create(user=signed_in, confirmed=False)
    uri = config_uri(device)
    assert uri.startswith(f"otpauth://totp/{signed_in.get_username()}?")
    assert "issuer" not in uri
    assert uri == device.config_url


def test_an_rp_name_with_markup_is_escaped_and_never_marked_safe(signed_in, settings):
    settings.PASSKEYS_RP_NAME = '<script>alert("x")</script>'
    device = TOTPDevice.objects.create(user=signed_in, confirmed=False)
    assert "<script" not in str(qr_svg(device))


def test_reloading_the_page_keeps_the_same_secret(api, signed_in):
    first = pending(api, signed_in)
    second = pending(api, signed_in)
    assert first == second
    assert TOTPDevice.objects.filter(user=signed_in).count() == 1


def test_another_session_gets_its_own_secret_and_the_first_can_no_longer_confirm(
    api, signed_in, clock
):
    first = pending(api, signed_in)
    other = ApiClient()
    other.login(signed_in)
    second = pending(other, signed_in)
    assert second != first and second.key != first.key
    assert not TOTPDevice.objects.filter(pk=first.pk).exists()
    response = api.post(PAGE, {"code": code_at(first, clock.now)})
    assert response.status_code == 400
    assert error_code(response) == "second_factor_invalid"
    assert state_of(second)[0] is False


def test_first_enrolment_needs_a_recent_sign_in(api, signed_in):
    stamp(api, AUTH_TIME_KEY, age=3600)
    response = api.client.get(PAGE, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" not in html and "data-pk-secret" not in html
    assert "sign in again before adding an authenticator app" in html
    assert not TOTPDevice.objects.exists()
    response = api.post(PAGE, {"code": "123456"})
    assert response.status_code == 403
    assert error_code(response) == "reauthentication_required"
    assert events(AuthEvent.Type.TOTP_ADDED) == [(False, "reauthentication_required")]


def test_a_pending_secret_shown_to_a_recent_session_cannot_be_confirmed_once_it_is_stale(
    api, signed_in, clock
):
    device = pending(api, signed_in)
    stamp(api, AUTH_TIME_KEY, age=3600)
    response = api.post(PAGE, {"code": code_at(device, clock.now)})
    assert response.status_code == 403
    assert error_code(response) == "reauthentication_required"
    assert state_of(device)[0] is False


def test_page_needs_a_signed_in_user(api):
    response = api.client.get(PAGE, secure=True)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    response = api.post(PAGE, {"code": "123456"})
    assert response.status_code == 403
    assert error_code(response) == "not_authenticated"
    assert not TOTPDevice.objects.exists()


# ---------------------------------------------------------------------------------------------
# Confirmation, replay, drift, throttling
# ---------------------------------------------------------------------------------------------


def test_a_correct_code_confirms_the_device(api, signed_in, clock, received):
    device = pending(api, signed_in)
    response = api.post(PAGE, {"code": code_at(device, clock.now)})
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert response.json() == {"enabled": True, "created_at": device.created_at.isoformat()}
    assert device.confirmed and device.last_used_at is not None
    assert PENDING_KEY not in api.client.session
    assert events(AuthEvent.Type.TOTP_ADDED) == [(True, "")]
    assert [(name, kw["kind"], kw["device"], kw["user"]) for name, kw in received] == [
        ("added", "totp", device, signed_in)
    ]
    assert totp_state(signed_in).enabled


def test_a_code_typed_with_spaces_is_accepted(api, signed_in, clock):
    device = pending(api, signed_in)
    code = code_at(device, clock.now)
    response = api.post(PAGE, {"code": f" {code[:3]} {code[3:]} "})
    assert response.status_code == 200, response.content


def test_confirming_by_form_post_comes_back_to_the_page_with_a_message(api, signed_in, clock):
    device = pending(api, signed_in)
    response = api.client.post(
        PAGE,
        {"code": code_at(device, clock.now), "csrfmiddlewaretoken": api.csrf_token()},
        secure=True,
    )
    assert response.status_code == 303
    assert response["Location"] == PAGE
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Authenticator app added."]
    html = api.client.get(PAGE, secure=True).content.decode()
    assert "Your authenticator app is set up" in html
    assert "<svg" not in html


def test_a_wrong_code_leaves_the_device_pending(api, signed_in, clock, received):
    device = pending(api, signed_in)
    right = code_at(device, clock.now)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = api.post(PAGE, {"code": wrong})
    assert response.status_code == 400
    assert error_code(response) == "second_factor_invalid"
    confirmed_, last_t, failures, _ = state_of(device)
    assert (confirmed_, last_t, failures) == (False, -1, 1)
    assert events(AuthEvent.Type.TOTP_ADDED) == [(False, "second_factor_invalid")]
    assert received == []


def test_a_wrong_code_by_form_post_comes_back_with_the_error(api, signed_in, clock):
    device = pending(api, signed_in)
    response = api.client.post(
        PAGE, {"code": "000000", "csrfmiddlewaretoken": api.csrf_token()}, secure=True
    )
    assert response.status_code == 303
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "The code or approval was not accepted."
    ]
    # The page shows the same secret again.
    assert pending(api, signed_in) == device


@pytest.mark.parametrize(
    ("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)]
)
def test_codes_one_step_either_side_are_accepted_and_two_are_not(
    api, signed_in, clock, steps, accepted
):
    device = pending(api, signed_in)
    response = api.post(PAGE, {"code": code_at(device, clock.now + 30 * steps)})
    assert (response.status_code == 200) is accepted, response.content
    assert state_of(device)[0] is accepted


def test_a_replayed_code_is_refused(api, signed_in, clock):
    device = confirmed(api, signed_in, clock)
    code = code_at(device, clock.now)
    request = mock.Mock(session={}, user=signed_in, META={"REMOTE_ADDR": "192.0.2.1"})
    with pytest.raises(PasskeyError) as caught:
        flows.verify_totp(request, signed_in, code)
    assert (caught.value.code, caught.value.detail) == (
        Reason.SECOND_FACTOR_INVALID,
        "wrong or replayed code",
    )
    # Still inside its tolerance window a step later, yet its step was used: refused too.
    unthrottle(device)
    clock.now += 30
    with pytest.raises(PasskeyError) as caught:
        flows.verify_totp(request, signed_in, code)
    assert caught.value.detail == "wrong or replayed code"
    # The next step's code is accepted once.
    unthrottle(device)
    assert flows.verify_totp(request, signed_in, code_at(device, clock.now)) == device
    assert events(AuthEvent.Type.RECOVERY) == [
        (False, "second_factor_invalid"),
        (False, "second_factor_invalid"),
    ]


def test_repeated_failures_are_throttled_even_for_the_right_code(api, signed_in, clock):
    device = pending(api, signed_in)
    assert api.post(PAGE, {"code": "000000"}).status_code == 400
    response = api.post(PAGE, {"code": code_at(device, clock.now)})
    assert response.status_code == 400
    assert error_code(response) == "second_factor_invalid"
    # A throttled attempt is not checked, so it does not count (1 s wait after 1 failure).
    assert state_of(device)[:3] == (False, -1, 1)
    assert events(AuthEvent.Type.TOTP_ADDED) == [(False, "second_factor_invalid")] * 2
    # Once the wait is over, the right code goes through.
    unthrottle(device)
    assert api.post(PAGE, {"code": code_at(device, clock.now)}).status_code == 200


def test_throttling_doubles_the_wait_after_each_failure(signed_in, clock):
    device = TOTPDevice.objects.create(user=signed_in, confirmed=True)
    request = mock.Mock(session={}, user=signed_in, META={"REMOTE_ADDR": "192.0.2.1"})
    for failures in range(1, 5):
        # Just past the wait the last failure imposed (1, 2, 4 s): checked, and wrong again.
        TOTPDevice.objects.filter(pk=device.pk).update(
            throttling_failure_timestamp=timezone.now() - timedelta(seconds=2 ** (failures - 1))
        )
        with pytest.raises(PasskeyError):
            flows.verify_totp(request, signed_in, "000000")
        assert state_of(device)[2] == failures
    # Inside the 8 s wait, even the right code is refused.
    with pytest.raises(PasskeyError) as caught:
        flows.verify_totp(request, signed_in, code_at(device, clock.now))
    assert caught.value.detail == "throttled"


# ---------------------------------------------------------------------------------------------
# Hostile input
# ---------------------------------------------------------------------------------------------

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def test_django_otp_alone_would_accept_a_code_in_arabic_indic_digits(signed_in, clock):
    # Why clean_code exists: int() reads non-ASCII digits, and django-otp calls int(token).
    device = TOTPDevice.objects.create(user=signed_in, confirmed=False)
    assert device.verify_token(code_at(device, clock.now).translate(ARABIC_INDIC))


def test_the_right_code_in_arabic_indic_digits_is_refused(api, signed_in, clock):
    device = pending(api, signed_in)
    response = api.post(PAGE, {"code": code_at(device, clock.now).translate(ARABIC_INDIC)})
    assert response.status_code == 400
    assert error_code(response) == "second_factor_invalid"
    assert state_of(device)[:3] == (False, -1, 0)


@pytest.mark.parametrize(
    "code",
    [
        "١٢٣٤٥٦",
        "12345²",
        "１２３４５６",  # fullwidth
        "12345\x00",
        "\x00" * 6,
        "9" * 5000,
        "1" * 33,
        "1_2345",
        "+12345",
        "-12345",
        "12345",
        "1234567",
        "",
        "      ",
        "12 34\n56",
        "12 34\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t56",
    ],
)
def test_text_that_is_not_a_code_is_refused_unchecked(api, signed_in, clock, code):
    device = pending(api, signed_in)
    before = state_of(device)
    response = api.post(PAGE, {"code": code})
    assert response.status_code == 400, response.content
    assert error_code(response) == "second_factor_invalid"
    assert state_of(device) == before


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": 123456}',
        b'{"code": 1e999}',
        b'{"code": ' + b"9" * 4000 + b"}",
        b'{"code": null}',
        b'{"code": ["123456"]}',
        b'{"code": {"x": 1}}',
        b'{"code": true}',
        b"{}",
    ],
)
def test_a_code_that_is_not_text_is_malformed(api, signed_in, body):
    device = pending(api, signed_in)
    before = state_of(device)
    response = api.post(PAGE, raw=body)
    assert response.status_code == 400, response.content
    assert error_code(response) == "malformed_request"
    assert state_of(device) == before


@pytest.mark.parametrize(
    "body",
    [b'{"code": "\\ud800"}', b"[1, 2]", b"\xff\xfe", b'{"code": "1', b"\x00"],
)
def test_a_body_that_is_not_a_json_object_is_malformed(api, signed_in, body):
    device = pending(api, signed_in)
    before = state_of(device)
    response = api.post(PAGE, raw=body)
    assert response.status_code == 400
    assert error_code(response) == "malformed_request"
    assert state_of(device) == before


def test_an_oversized_body_is_refused_unread(api, signed_in):
    device = pending(api, signed_in)
    before = state_of(device)
    body = json.dumps({"code": "1" * conf.PASSKEYS_MAX_BODY_BYTES}).encode()
    response = api.post(PAGE, raw=body)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert state_of(device) == before


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "12345²", "12345\x00", "9" * 5000])
def test_a_form_post_of_a_non_code_comes_back_with_the_error(api, signed_in, code):
    device = pending(api, signed_in)
    before = state_of(device)
    response = api.client.post(
        PAGE, {"code": code, "csrfmiddlewaretoken": api.csrf_token()}, secure=True
    )
    assert response.status_code == 303
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "The code or approval was not accepted."
    ]
    assert state_of(device) == before


def test_without_csrf_token_nothing_is_confirmed(api, signed_in, clock):
    device = pending(api, signed_in)
    response = api.post(PAGE, {"code": code_at(device, clock.now)}, csrf=False)
    assert response.status_code == 403
    assert error_code(response) == "csrf_failed"
    assert state_of(device)[0] is False


def test_confirmation_is_rate_limited_per_account(api, signed_in, settings):
    settings.PASSKEYS_RATE_LIMITS = {"totp": {"ip": None, "account": "2/m"}}
    pending(api, signed_in)
    for _ in range(2):
        assert api.post(PAGE, {"code": "000000"}).status_code == 400
    response = api.post(PAGE, {"code": "000000"})
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert "Retry-After" in response


def test_removal_answers_only_post(api, signed_in):
    response = api.client.get(REMOVE, secure=True)
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


@pytest.mark.parametrize("value", [123456, None, ["1"], 1.5])
def test_clean_code_refuses_anything_but_text(value):
    with pytest.raises(PasskeyError) as caught:
        clean_code(value)
    assert caught.value.code == Reason.MALFORMED_REQUEST


def test_clean_code_takes_the_devices_number_of_digits():
    assert clean_code("1234 5678", digits=8) == "12345678"
    with pytest.raises(PasskeyError):
        clean_code("123456", digits=8)


# ---------------------------------------------------------------------------------------------
# Replacing and removing: a fresh passkey assertion
# ---------------------------------------------------------------------------------------------


def test_a_set_up_app_without_a_fresh_passkey_assertion_offers_only_a_passkey_sign_in(
    api, signed_in, clock
):
    confirmed(api, signed_in, clock)
    for path in (PAGE, PAGE + "?replace"):
        html = api.client.get(path, secure=True).content.decode()
        assert "Your authenticator app is set up" in html
        assert "confirm it's you with a passkey" in html
        assert 'href="/auth/passkey/login/?next=' in html
        assert "<svg" not in html and "totp/remove" not in html
    assert TOTPDevice.objects.filter(user=signed_in).count() == 1


def test_replacing_the_app_needs_a_fresh_passkey_assertion(api, signed_in, clock):
    old = confirmed(api, signed_in, clock)
    # The new app's secret was shown while the passkey assertion was fresh; by the time the
    # code is sent, it no longer is.
    fresh_passkey(api)
    api.client.get(PAGE + "?replace", secure=True)
    new = TOTPDevice.objects.get(pk=api.client.session[PENDING_KEY])
    stamp(api, ASSERTION_TIME_KEY, age=3600)
    clock.now += 30
    response = api.post(PAGE, {"code": code_at(new, clock.now)})
    assert response.status_code == 403
    assert error_code(response) == "reauthentication_required"
    assert state_of(old)[0] is True and state_of(new)[0] is False


def test_replacing_the_app_with_a_fresh_passkey_assertion(api, signed_in, clock, received):
    old = confirmed(api, signed_in, clock)
    received.clear()
    fresh_passkey(api)
    html = api.client.get(PAGE, secure=True).content.decode()
    assert (
        'href="/auth/passkey/totp/?replace"' in html
        and 'action="/auth/passkey/totp/remove"' in html
    )
    html = api.client.get(PAGE + "?replace", secure=True).content.decode()
    assert "Set up a new authenticator app" in html and "<svg" in html
    new = TOTPDevice.objects.get(pk=api.client.session[PENDING_KEY])
    assert new != old and not new.confirmed
    # Until the new one is confirmed, the old one still works.
    assert state_of(old)[0] is True
    clock.now += 30
    response = api.post(PAGE, {"code": code_at(new, clock.now)})
    assert response.status_code == 200, response.content
    assert list(TOTPDevice.objects.filter(user=signed_in)) == [new]
    assert [(name, kw["device"].pk) for name, kw in received] == [
        ("removed", None),
        ("added", new.pk),
    ]
    assert received[0][1]["device"].key == old.key  # the deleted device's fields are readable
    assert events(AuthEvent.Type.TOTP_REMOVED) == [(True, "")]
    assert events(AuthEvent.Type.TOTP_ADDED) == [(True, ""), (True, "")]


def test_removal_needs_a_fresh_passkey_assertion(api, signed_in, clock, received):
    device = confirmed(api, signed_in, clock)
    received.clear()
    # A recent (password) sign-in does not do.
    response = api.post(REMOVE)
    assert response.status_code == 403
    assert error_code(response) == "reauthentication_required"
    assert state_of(device)[0] is True
    assert events(AuthEvent.Type.TOTP_REMOVED) == [(False, "reauthentication_required")]
    assert received == []
    # Nor an old passkey assertion.
    stamp(api, ASSERTION_TIME_KEY, age=3600)
    assert api.post(REMOVE).status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_removal_with_a_fresh_passkey_assertion(api, signed_in, clock, received):
    device = confirmed(api, signed_in, clock)
    received.clear()
    fresh_passkey(api)
    api.client.get(PAGE + "?replace", secure=True)  # a new app being set up goes too
    response = api.post(REMOVE)
    assert response.status_code == 200
    assert response.json() == {"removed": True}
    assert not TOTPDevice.objects.filter(user=signed_in).exists()  # the pending one too
    assert PENDING_KEY not in api.client.session
    assert [(name, kw["kind"], kw["device"].key) for name, kw in received] == [
        ("removed", "totp", device.key)
    ]
    assert events(AuthEvent.Type.TOTP_REMOVED) == [(True, "")]
    assert totp_state(signed_in).status == "none"
    # Nothing left: the same answer, nothing sent.
    assert api.post(REMOVE).json() == {"removed": False}
    assert len(received) == 1


def test_removal_by_form_post_after_a_real_passkey_reauthentication(api, user, register, clock):
    authenticator = SoftAuthenticator()
    assert register(user, authenticator).status_code == 201
    confirmed(api, user, clock)
    options = api.post("/auth/passkey/reauth/options").json()
    assert api.post("/auth/passkey/reauth/verify", authenticator.get(options)).status_code == 200
    response = api.client.post(REMOVE, {"csrfmiddlewaretoken": api.csrf_token()}, secure=True)
    assert response.status_code == 303
    assert response["Location"] == PAGE
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Authenticator app removed."]
    assert not TOTPDevice.objects.exists()
    api.client.get(PAGE, secure=True)  # shows the message
    response = api.client.post(REMOVE, {"csrfmiddlewaretoken": api.csrf_token()}, secure=True)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "No authenticator app was set up."
    ]


# ---------------------------------------------------------------------------------------------
# The flow API: verify_totp (recovery) and totp_state (the security page)
# ---------------------------------------------------------------------------------------------


def test_verify_totp_accepts_the_current_code_once(signed_in, clock):
    device = TOTPDevice.objects.create(user=signed_in, confirmed=True)
    request = mock.Mock(session={}, user=signed_in, META={"REMOTE_ADDR": "192.0.2.1"})
    assert flows.verify_totp(request, signed_in, code_at(device, clock.now)) == device
    device.refresh_from_db()
    assert device.last_used_at is not None and device.last_t == (NOW // 30)
    assert not AuthEvent.objects.exists()  # the caller audits its own success


def test_verify_totp_refuses_a_pending_device_or_none(signed_in, clock):
    device = TOTPDevice.objects.create(user=signed_in, confirmed=False)
    request = mock.Mock(session={}, user=signed_in, META={"REMOTE_ADDR": "192.0.2.1"})
    with pytest.raises(PasskeyError) as caught:
        flows.verify_totp(
            request, signed_in, code_at(device, clock.now), event_type=AuthEvent.Type.LOGIN
        )
    assert caught.value.code == Reason.SECOND_FACTOR_INVALID
    assert caught.value.recorded
    assert state_of(device)[:3] == (False, -1, 0)
    assert events(AuthEvent.Type.LOGIN) == [(False, "second_factor_invalid")]


@pytest.mark.parametrize("token", ["١٢٣٤٥٦", "12345²", "\x00", "9" * 100, 123456])
def test_verify_totp_refuses_hostile_tokens_unchecked(signed_in, token):
    device = TOTPDevice.objects.create(user=signed_in, confirmed=True)
    request = mock.Mock(session={}, user=signed_in, META={"REMOTE_ADDR": "192.0.2.1"})
    with pytest.raises(PasskeyError) as caught:
        flows.verify_totp(request, signed_in, token)
    assert caught.value.status == 400
    assert state_of(device)[2] == 0


def test_totp_state_follows_the_device(api, signed_in, clock):
    assert totp_state(signed_in).status == "none"
    assert not totp_state(signed_in).enabled
    assert "Add an authenticator app" in totp_state(signed_in).next_step
    device = pending(api, signed_in)
    state = totp_state(signed_in)
    assert (state.status, state.enabled, state.created_at) == ("pending", False, None)
    api.post(PAGE, {"code": code_at(device, clock.now)})
    device.refresh_from_db()
    state = totp_state(signed_in)
    assert (state.status, state.enabled) == ("confirmed", True)
    assert (state.created_at, state.last_used_at) == (device.created_at, device.last_used_at)
    assert flows.totp_state is totp_state


def test_secret_text_groups_the_base32_secret(signed_in):
    device = TOTPDevice.objects.create(user=signed_in, key="00" * 20)
    assert secret_text(device) == " ".join(["AAAA"] * 8)


# ---------------------------------------------------------------------------------------------
# One code, two requests at once (PostgreSQL: SQLite serialises every writer anyway)
# ---------------------------------------------------------------------------------------------


@needs_postgres()
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_code_sent_twice_at_once_is_accepted_once(monkeypatch, clock):
    user = UserFactory()
    device = TOTPDevice.objects.create(user=user, confirmed=True)
    code = code_at(device, clock.now)
    original = totp_flows._verify

    def slow_verify(locked: TOTPDevice, token: str) -> str:
        # Both requests are past the start; without the row lock both would read last_t = -1
        # here and both accept the code.
        time.sleep(0.3)
        return original(locked, token)

    monkeypatch.setattr(totp_flows, "_verify", slow_verify)

    def attempt() -> str:
        request = mock.Mock(session={}, user=user, META={"REMOTE_ADDR": "192.0.2.1"})
        try:
            flows.verify_totp(request, user, code)
        except PasskeyError as error:
            return error.code
        return "accepted"

    results = run_in_threads([attempt, attempt])
    assert sorted(results) == ["accepted", Reason.SECOND_FACTOR_INVALID]
