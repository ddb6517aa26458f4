"""Passkey-only accounts: turning password sign-in off and on, the refusal of a password
sign-in, Django's password reset sending to recovery, and the site's policies."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core import mail
from django.db import transaction

from django_passkeys.cooldown import start_cooldown
from django_passkeys.errors import Reason
from django_passkeys.models import AdoptionState, AuthEvent
from django_passkeys.passkey_only import is_passkey_only, passkey_only_state
from django_passkeys.recovery_codes import locked_device, replace_codes

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import ApiClient, age_session, assert_rejected, db_snapshot, enroll, passkey_login
from .test_decorators import reauthenticate

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.adoption_urls")]

PASSWORD = "correct horse battery staple"
PAGE = "/auth/passkey/passkey-only/"
GUARDED = [
    "django_passkeys.backends.PasskeyOnlyModelBackend",
    "django_passkeys.backends.PasskeyBackend",
    # Only for the sessions ApiClient.login() makes (force_login names ModelBackend): the guard
    # comes first, and its refusal ends authenticate() before any later backend is asked.
    "django.contrib.auth.backends.ModelBackend",
]


@pytest.fixture(autouse=True)
def guarded(settings):
    settings.AUTHENTICATION_BACKENDS = GUARDED
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/home/"
    settings.LOGIN_REDIRECT_URL = "/home/"


def give_recovery_codes(user):
    with transaction.atomic():
        device, _ = locked_device(user)
        replace_codes(device, 10)


@pytest.fixture
def ready(user):
    """A user with a passkey and recovery codes."""
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    give_recovery_codes(user)
    user.authenticator = authenticator
    return user


@pytest.fixture
def passkey_only(ready):
    AdoptionState.objects.create(user=ready, passkey_only_since="2026-01-01T00:00Z")
    return ready


def password_sign_in(client, user, password=PASSWORD):
    return client.client.post(
        "/accounts/login/",
        {"username": user.get_username(), "password": password},
        secure=True,
        HTTP_X_CSRFTOKEN=client.csrf_token(),
    )


def signed_in(user):
    client = ApiClient()
    client.login(user)
    return client


# -- Turning password sign-in off ------------------------------------------------------------


def test_turning_password_sign_in_off(ready):
    client = signed_in(ready)
    response = client.post(PAGE, {"enabled": True})
    assert response.status_code == 200, response.content
    assert response.json() == {"passkey_only": True}
    assert AdoptionState.objects.get(user=ready).passkey_only_since is not None
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.PASSKEY_ONLY_ON)
    assert (event.success, event.user_id) == (True, ready.pk)
    assert is_passkey_only(ready)


@pytest.mark.parametrize("missing", ["passkey", "recovery factor"])
def test_turning_it_off_needs_a_passkey_and_a_recovery_factor(user, missing):
    if missing == "passkey":
        give_recovery_codes(user)
    else:
        enroll(user, SoftAuthenticator())
    client = signed_in(user)
    before = db_snapshot()
    response = client.post(PAGE, {"enabled": True})
    assert_rejected(response, Reason.PASSKEY_ONLY_NOT_READY)
    assert db_snapshot() == before and not AdoptionState.objects.exists()


def test_an_authenticator_app_is_a_recovery_factor(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    enroll(user, SoftAuthenticator())
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    assert passkey_only_state(user).ready
    assert signed_in(user).post(PAGE, {"enabled": True}).status_code == 200


def test_turning_it_off_needs_a_recent_sign_in(ready):
    client = signed_in(ready)
    age_session(client)
    assert_rejected(client.post(PAGE, {"enabled": True}), Reason.REAUTHENTICATION_REQUIRED)
    assert not AdoptionState.objects.exists()


def test_where_the_site_says_off_nobody_can(ready, settings):
    settings.PASSKEYS_PASSKEY_ONLY = "off"
    assert_rejected(signed_in(ready).post(PAGE, {"enabled": True}), Reason.PASSKEY_ONLY_NOT_READY)


@pytest.mark.parametrize("value", [None, "yes", 1, [True]])
def test_a_malformed_choice_is_refused(ready, value):
    assert_rejected(signed_in(ready).post(PAGE, {"enabled": value}), Reason.MALFORMED_REQUEST)


def test_the_page_form_turns_it_off_without_javascript(ready):
    client = signed_in(ready)
    page = client.client.get(PAGE, secure=True)
    assert page.status_code == 200
    assert "Turn password sign-in off" in page.content.decode()
    response = client.client.post(
        PAGE, {"enabled": "true"}, secure=True, HTTP_X_CSRFTOKEN=client.csrf_token()
    )
    assert (response.status_code, response["Location"]) == (303, PAGE)
    page = client.client.get(PAGE, secure=True)
    html = page.content.decode()
    assert "Password sign-in is off: you sign in with your passkeys." in html
    assert "Turn password sign-in back on" in html and "data-pk-reauth" in html


def test_the_page_lists_what_is_missing(user):
    page = signed_in(user).client.get(PAGE, secure=True).content.decode()
    assert "Add a passkey" in page and "Recovery codes" in page
    assert "Turn password sign-in off" not in page


def test_the_page_needs_a_sign_in(db):
    response = ApiClient().client.get(PAGE, secure=True)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# -- What passkey-only changes ---------------------------------------------------------------


def test_a_password_sign_in_is_refused_with_a_clear_message(passkey_only):
    client = ApiClient()
    response = password_sign_in(client, passkey_only)
    assert response.status_code == 200  # the form again, with the error
    html = response.content.decode()
    assert "This account signs in with a passkey only." in html
    assert "Recover account" in html
    assert response.context["form"].has_error("__all__", code="password_sign_in_disabled")
    assert "_auth_user_id" not in client.client.session
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.PASSWORD_LOGIN)
    assert (event.success, event.reason_code, event.user_id) == (
        False,
        "password_sign_in_disabled",
        passkey_only.pk,
    )


def test_a_wrong_password_tells_nothing_about_passkey_only(passkey_only):
    other = UserFactory()
    answers = [
        re.sub(
            r'name="csrfmiddlewaretoken" value="\w+"',
            "TOKEN",
            password_sign_in(ApiClient(), user, password="wrong").content.decode(),
        ).replace(user.get_username(), "NAME")
        for user in (passkey_only, other)
    ]
    assert answers[0] == answers[1]
    assert "passkey only" not in answers[0]
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.PASSWORD_LOGIN).exists()


def test_the_passkey_still_signs_in(passkey_only):
    client = passkey_login(passkey_only.authenticator)
    assert client.client.session["_auth_user_id"] == str(passkey_only.pk)


def test_other_users_sign_in_with_their_password(passkey_only):
    response = password_sign_in(ApiClient(), UserFactory())
    assert (response.status_code, response["Location"]) == (302, "/home/")


def test_with_every_passkey_revoked_the_password_works_again(passkey_only):
    passkey_only.passkeys.get().revoke(reason="lost")
    assert not is_passkey_only(passkey_only)
    response = password_sign_in(ApiClient(), passkey_only)
    assert (response.status_code, response["Location"]) == (302, "/home/")


def test_a_custom_backend_is_guarded_with_the_mixin(passkey_only, settings):
    settings.AUTHENTICATION_BACKENDS = ["tests.test_passkey_only.GuardedEmailBackend"]
    from django.contrib.auth import authenticate
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        authenticate(None, email=passkey_only.email, password=PASSWORD)
    assert raised.value.code == "password_sign_in_disabled"
    assert authenticate(None, email=passkey_only.email, password="wrong") is None


# -- Turning password sign-in back on --------------------------------------------------------


def test_turning_it_back_on_needs_a_fresh_passkey_assertion(passkey_only):
    client = signed_in(passkey_only)  # a password session: not a passkey assertion
    response = client.post(PAGE, {"enabled": False})
    assert_rejected(response, Reason.REAUTHENTICATION_REQUIRED)
    assert is_passkey_only(passkey_only)
    reauthenticate(client, passkey_only.authenticator)
    response = client.post(PAGE, {"enabled": False})
    assert response.json() == {"passkey_only": False}
    assert not is_passkey_only(passkey_only)
    assert AuthEvent.objects.filter(
        event_type=AuthEvent.Type.PASSKEY_ONLY_OFF, success=True
    ).exists()
    assert password_sign_in(ApiClient(), passkey_only).status_code == 302


def test_turning_it_back_on_waits_out_the_cooldown(passkey_only):
    client = signed_in(passkey_only)
    reauthenticate(client, passkey_only.authenticator)
    start_cooldown(passkey_only, reason="recovery")
    assert_rejected(client.post(PAGE, {"enabled": False}), Reason.COOLDOWN_ACTIVE)
    assert is_passkey_only(passkey_only)


# -- The site's policy ------------------------------------------------------------------------


def test_required_for_everyone_who_holds_a_passkey(ready, settings):
    settings.PASSKEYS_PASSKEY_ONLY = "all"
    assert is_passkey_only(ready)
    response = password_sign_in(ApiClient(), ready)
    assert "passkey only" in response.content.decode()
    # Users without a passkey keep their password until they add one.
    assert password_sign_in(ApiClient(), UserFactory()).status_code == 302
    # Nobody can turn the password back on.
    client = signed_in(ready)
    reauthenticate(client, ready.authenticator)
    assert_rejected(client.post(PAGE, {"enabled": False}), Reason.PASSKEY_ONLY_REQUIRED)
    page = client.client.get(PAGE, secure=True).content.decode()
    assert "This site requires passkey sign-in for your account." in page


def test_required_for_a_cohort(settings):
    settings.PASSKEYS_PASSKEY_ONLY = {"groups": ["staff-pilot"], "users": ["alice"]}
    pilot, alice, other = UserFactory(), UserFactory(username="alice"), UserFactory()
    pilot.groups.add(Group.objects.create(name="staff-pilot"))
    for user in (pilot, alice, other):
        enroll(user, SoftAuthenticator())
    assert [is_passkey_only(u) for u in (pilot, alice, other)] == [True, True, False]


def test_a_broken_policy_requires_nothing(ready, settings):
    settings.PASSKEYS_PASSKEY_ONLY = {"group": ["typo"]}
    assert not is_passkey_only(ready)


# -- Password reset ---------------------------------------------------------------------------


def reset(email):
    client = ApiClient()
    return client.client.post(
        "/accounts/password_reset/",
        {"email": email},
        secure=True,
        HTTP_X_CSRFTOKEN=client.csrf_token(),
    )


def test_password_reset_sends_passkey_only_accounts_to_recovery(passkey_only, settings):
    settings.PASSKEYS_BASE_URL = "https://site.example"
    other = UserFactory()
    answers = [reset(passkey_only.email), reset(other.email), reset("nobody@example.com")]
    assert {(r.status_code, r["Location"]) for r in answers} == {
        (302, "/accounts/password_reset/done/")
    }
    to_passkey_only, to_other = mail.outbox
    assert to_passkey_only.to == [passkey_only.email]
    assert "https://site.example/auth/passkey/recover/" in to_passkey_only.body
    assert "/accounts/reset/" not in to_passkey_only.body
    assert to_other.to == [other.email]
    assert "/accounts/reset/" in to_other.body


def test_the_security_page_shows_password_sign_in(ready):
    client = signed_in(ready)
    page = client.client.get("/auth/passkey/security/", secure=True)
    sections = {s.key: s for s in page.context["sections"]}
    assert sections["passkey-only"].url == PAGE
    assert sections["passkey-only"].state == "On"


class GuardedEmailBackend:
    """A custom backend (by e-mail) with the guard mixed in."""


def _guarded_email_backend():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.backends import BaseBackend

    from django_passkeys.backends import PasskeyOnlyGuard

    class EmailBackend(BaseBackend):
        def authenticate(self, request, email=None, password=None, **kwargs):
            user = get_user_model().objects.filter(email=email).first()
            if user is not None and user.check_password(password):
                return user
            return None

    class Guarded(PasskeyOnlyGuard, EmailBackend):
        pass

    return Guarded


GuardedEmailBackend = _guarded_email_backend()  # noqa: F811


# -- Edges of the choice and of the state ------------------------------------------------------


def test_turning_it_off_twice_keeps_the_first_time(passkey_only):
    client = signed_in(passkey_only)
    since = AdoptionState.objects.get(user=passkey_only).passkey_only_since
    response = client.post(PAGE, {"enabled": True})
    assert response.json() == {"passkey_only": True}
    assert AdoptionState.objects.get(user=passkey_only).passkey_only_since == since
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.PASSKEY_ONLY_ON).exists()


def test_turning_it_back_on_when_it_was_never_off_records_no_change(ready):
    client = signed_in(ready)
    reauthenticate(client, ready.authenticator)
    response = client.post(PAGE, {"enabled": False})
    assert response.json() == {"passkey_only": False}
    assert not AdoptionState.objects.exists()
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.PASSKEY_ONLY_OFF).exists()


def test_the_page_form_turns_it_back_on_without_javascript(passkey_only):
    client = signed_in(passkey_only)
    reauthenticate(client, passkey_only.authenticator)
    response = client.client.post(
        PAGE, {"enabled": "false"}, secure=True, HTTP_X_CSRFTOKEN=client.csrf_token()
    )
    assert (response.status_code, response["Location"]) == (303, PAGE)
    assert not is_passkey_only(passkey_only)
    html = client.client.get(PAGE, secure=True).content.decode()
    assert "Password sign-in is on again." in html


def test_nobody_signed_out_is_passkey_only(settings):
    settings.PASSKEYS_PASSKEY_ONLY = "all"
    assert not is_passkey_only(AnonymousUser())


def security_section(client):
    page = client.client.get("/auth/passkey/security/", secure=True)
    return {s.key: s for s in page.context["sections"]}["passkey-only"]


def test_the_security_page_says_when_password_sign_in_is_off(passkey_only):
    section = security_section(signed_in(passkey_only))
    assert (section.state, section.next_step) == ("Off: you sign in with a passkey only", "")


def test_the_security_page_asks_for_a_passkey_where_the_site_requires_one(user, settings):
    settings.PASSKEYS_PASSKEY_ONLY = "all"
    section = security_section(signed_in(user))
    assert section.state == "On"
    assert section.next_step == "Add a passkey: this site is moving to passkey-only sign-in."


def test_the_security_page_suggests_nothing_where_the_site_says_off(ready, settings):
    settings.PASSKEYS_PASSKEY_ONLY = "off"
    section = security_section(signed_in(ready))
    assert (section.state, section.next_step) == ("On", "")
