"""The passkey upgrade after a password sign-in: the middleware, the page, "Not now" and
"Don't ask again", and what does not trigger it."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.utils import timezone

from django_passkeys import rollout, upgrade
from django_passkeys.models import AdoptionState, AuthEvent, Credential
from django_passkeys.upgrade import PASSWORD_SIGN_IN_KEY

from .authenticator import SoftAuthenticator
from .support import ApiClient, enroll, passkey_login

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.adoption_urls")]

PASSWORD = "correct horse battery staple"
UPGRADE = "/auth/passkey/upgrade/"
UPGRADE_OPTIONS = "/auth/passkey/upgrade/options"
UPGRADE_VERIFY = "/auth/passkey/upgrade/verify"
DECLINE = "/auth/passkey/upgrade/decline"


@pytest.fixture
def site(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django_passkeys.upgrade.UpgradeMiddleware"]
    settings.LOGIN_REDIRECT_URL = "/home/"
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/home/"
    return settings


@pytest.fixture
def client(site):
    return ApiClient()  # built after the settings: its handler loads this middleware


def password_sign_in(client, user, next_url=None, password=PASSWORD):
    url = "/accounts/login/" + (f"?next={quote(next_url)}" if next_url else "")
    return client.client.post(
        url,
        {"username": user.get_username(), "password": password},
        secure=True,
        HTTP_X_CSRFTOKEN=client.csrf_token(),
    )


def upgrade_url(next_url):
    return f"{UPGRADE}?next={quote(next_url, safe='')}"


def test_a_password_sign_in_goes_through_the_upgrade(client, user):
    response = password_sign_in(client, user)
    assert response.status_code == 302
    assert response["Location"] == upgrade_url("/home/")
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.PASSWORD_LOGIN)
    assert (event.success, event.user_id) == (True, user.pk)
    page = client.client.get(response["Location"], secure=True)
    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "django_passkeys/upgrade.html"
    config = page.context["passkeys_config"]
    assert config["next"] == "/home/"
    assert config["urls"]["upgradeOptions"] == UPGRADE_OPTIONS
    assert config["upgradeWait"] == 4000
    html = page.content.decode()
    assert "data-pk-upgrade-create" in html and "ask again for 30 days" in html


def test_the_upgrade_keeps_the_next_of_the_sign_in(client, user):
    response = password_sign_in(client, user, next_url="/orders/?page=2")
    assert response["Location"] == upgrade_url("/orders/?page=2")


def test_a_conditionally_created_passkey_finishes_the_upgrade(client, user):
    password_sign_in(client, user)
    options = client.post(UPGRADE_OPTIONS).json()
    assertion = SoftAuthenticator().create(options, flags={"up": False})
    response = client.post(UPGRADE_VERIFY, {**assertion, "next": "/home/"})
    assert response.status_code == 201, response.content
    assert response.json()["redirect"] == "/home/"
    assert Credential.objects.filter(user=user).count() == 1
    assert PASSWORD_SIGN_IN_KEY not in client.client.session
    # Nothing more to offer: the page goes straight on.
    page = client.client.get(upgrade_url("/home/"), secure=True)
    assert (page.status_code, page["Location"]) == (302, "/home/")


def test_not_now_goes_on_and_asks_again_at_the_next_password_sign_in(client, user):
    password_sign_in(client, user)
    response = client.client.post(
        DECLINE, {"next": "/home/"}, secure=True, HTTP_X_CSRFTOKEN=client.csrf_token()
    )
    assert (response.status_code, response["Location"]) == (303, "/home/")
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.UPGRADE_DECLINED)
    assert (event.reason_code, event.user_id) == ("", user.pk)
    assert not AdoptionState.objects.exists()
    assert client.client.get(upgrade_url("/home/"), secure=True)["Location"] == "/home/"
    client.client.logout()
    assert password_sign_in(client, user)["Location"] == upgrade_url("/home/")


def test_dont_ask_again_snoozes_the_upgrade(client, user, settings):
    settings.PASSKEYS_UPGRADE_SNOOZE_DAYS = 14
    password_sign_in(client, user)
    response = client.client.post(
        DECLINE,
        {"next": "/home/", "snooze": "1"},
        secure=True,
        HTTP_X_CSRFTOKEN=client.csrf_token(),
    )
    assert (response.status_code, response["Location"]) == (303, "/home/")
    state = AdoptionState.objects.get(user=user)
    assert timedelta(days=13) < state.upgrade_snoozed_until - timezone.now() <= timedelta(days=14)
    assert AuthEvent.objects.get(event_type=AuthEvent.Type.UPGRADE_DECLINED).reason_code == (
        "snoozed"
    )
    client.client.logout()
    assert password_sign_in(client, user)["Location"] == "/home/"
    # Once the snooze is over, the upgrade is offered again.
    AdoptionState.objects.update(upgrade_snoozed_until=timezone.now() - timedelta(seconds=1))
    client.client.logout()
    assert password_sign_in(client, user)["Location"] == upgrade_url("/home/")


def test_decline_as_json(client, user):
    password_sign_in(client, user)
    response = client.post(DECLINE, {"snooze": True, "next": "/orders/"})
    assert response.status_code == 200
    assert response.json() == {"redirect": "/orders/"}
    assert AdoptionState.objects.get(user=user).upgrade_snoozed_until is not None


def test_users_outside_the_rollout_are_not_asked(client, user, settings):
    settings.PASSKEYS_ROLLOUT = {"users": ["somebody-else"]}
    assert password_sign_in(client, user)["Location"] == "/home/"
    assert client.client.get(upgrade_url("/home/"), secure=True)["Location"] == "/home/"


def test_users_with_a_passkey_are_not_asked(client, user):
    enroll(user, SoftAuthenticator())
    assert password_sign_in(client, user)["Location"] == "/home/"


def test_the_page_goes_on_when_no_password_sign_in_happened(client, user):
    client.login(user)  # force_login: not a sign-in anybody made
    page = client.client.get(upgrade_url("/home/"), secure=True)
    assert (page.status_code, page["Location"]) == (302, "/home/")
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.PASSWORD_LOGIN).exists()


@pytest.mark.parametrize(("max_age", "ago"), [(3600, 11 * 60), (300, 6 * 60)])
def test_the_upgrade_window_closes(client, user, settings, max_age, ago):
    """Ten minutes, and never past PASSKEYS_REAUTH_MAX_AGE: creating needs a recent sign-in."""
    settings.PASSKEYS_REAUTH_MAX_AGE = max_age
    password_sign_in(client, user)
    session = client.client.session
    session[PASSWORD_SIGN_IN_KEY] -= ago
    session.save()
    assert client.client.get(upgrade_url("/home/"), secure=True)["Location"] == "/home/"


def test_the_page_never_sends_back_to_itself(settings, user):
    settings.LOGIN_REDIRECT_URL = "django_passkeys:upgrade"
    client = ApiClient()
    client.login(user)  # no password sign-in: nothing to offer
    response = client.client.get(UPGRADE, secure=True)
    assert (response.status_code, response["Location"]) == (302, "/")
    response = client.client.get(upgrade_url(UPGRADE + "?next=/x/"), secure=True)
    assert response["Location"] == "/"


def test_a_next_on_another_site_is_replaced(client, user):
    password_sign_in(client, user)
    page = client.client.get(upgrade_url("https://evil.example/"), secure=True)
    assert page.context["passkeys_config"]["next"] == "/home/"


def test_a_failed_password_sign_in_is_left_alone(client, user):
    response = password_sign_in(client, user, password="wrong")
    assert response.status_code == 200
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.PASSWORD_LOGIN).exists()


def test_a_passkey_sign_in_is_not_a_password_sign_in(client, user):
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    password_sign_in(client, user)  # stamped, but the user has a passkey: not asked
    passkey_login(authenticator, client)
    assert PASSWORD_SIGN_IN_KEY not in client.client.session
    assert AuthEvent.objects.filter(event_type=AuthEvent.Type.PASSWORD_LOGIN).count() == 1


def test_without_the_middleware_login_redirect_url_leads_to_the_page(settings, user):
    settings.LOGIN_REDIRECT_URL = "django_passkeys:upgrade"
    client = ApiClient()
    response = password_sign_in(client, user)
    assert response["Location"] == UPGRADE
    page = client.client.get(UPGRADE, secure=True)
    assert page.status_code == 200
    assert page.context["passkeys_config"]["next"] == "/"  # PASSKEYS_LOGIN_REDIRECT_URL


def test_the_upgrade_page_needs_a_sign_in(client):
    response = client.client.get(UPGRADE, secure=True)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_refused_decline_form_still_goes_on(client):
    # Signed out (the session ended meanwhile): the form post is refused, the user goes on.
    response = client.client.post(
        DECLINE, {"next": "/orders/"}, secure=True, HTTP_X_CSRFTOKEN=client.csrf_token()
    )
    assert (response.status_code, response["Location"]) == (303, "/orders/")
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.UPGRADE_DECLINED)
    assert (event.success, event.reason_code) == (False, "not_authenticated")
    assert not AdoptionState.objects.exists()


def test_a_backend_that_no_longer_imports_is_not_a_passkey_backend():
    assert upgrade._names_passkey_backend("django_passkeys.backends.PasskeyBackend")
    assert not upgrade._names_passkey_backend("removed_app.backends.PasskeyBackend")


def test_a_sign_in_outside_a_request_is_not_stamped(user):
    upgrade.note_password_sign_in(sender=None, request=None, user=user)
    without_session = RequestFactory().post("/accounts/login/")
    upgrade.note_password_sign_in(sender=None, request=without_session, user=user)
    assert not AuthEvent.objects.exists()


def test_an_anonymous_visitor_is_never_due_an_upgrade(settings):
    settings.PASSKEYS_ROLLOUT = "all"
    request = RequestFactory().get("/")
    request.session = {upgrade.PASSWORD_SIGN_IN_KEY: int(time.time())}
    request.user = AnonymousUser()
    assert not upgrade.upgrade_due(request)
    del request.user
    assert not upgrade.upgrade_due(request)


def test_whether_passkeys_are_offered_is_asked_once_per_request(user, monkeypatch):
    calls = []

    def counting(user, request=None):
        calls.append(user)
        return True

    monkeypatch.setattr(rollout, "is_offered", counting)
    request = RequestFactory().get("/")
    request.user = user
    assert rollout.passkeys_offered(request) is True
    assert rollout.passkeys_offered(request) is True
    assert calls == [user]
