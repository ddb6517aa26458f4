"""``@passkey_required`` and ``PasskeyRequiredMixin``: a project view runs only after a fresh
passkey assertion with user verification; GET comes back after the reauthentication page,
JSON gets ``reauthentication_required``, a form post is sent to the page and must be re-sent."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from django_passkeys.sessions import ASSERTION_TIME_KEY, VERIFIED_ASSERTION_TIME_KEY

from . import step_up_urls
from .authenticator import SoftAuthenticator

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.step_up_urls")]

REAUTH_OPTIONS = "/auth/passkey/reauth/options"
REAUTH_VERIFY = "/auth/passkey/reauth/verify"
REAUTH_PAGE = "/auth/passkey/reauth/"


@pytest.fixture(autouse=True)
def _nothing_done():
    step_up_urls.DONE.clear()
    yield
    step_up_urls.DONE.clear()


@pytest.fixture
def signed_in(api, user, authenticator, register):
    """A user with a passkey, signed in with the password (no passkey assertion yet)."""
    assert register(user, authenticator).status_code == 201
    return user


def reauthenticate(api, authenticator: SoftAuthenticator) -> None:
    options = api.post(REAUTH_OPTIONS).json()
    response = api.post(REAUTH_VERIFY, authenticator.get(options))
    assert response.status_code == 200, response.content


def age_stamp(api, key: str, seconds: int) -> None:
    session = api.client.session
    session[key] = int(time.time()) - seconds
    session.save()


def get(api, path, **extra):
    return api.client.get(path, secure=True, **extra)


def test_get_without_a_passkey_assertion_goes_to_the_reauth_page_and_back(
    api, signed_in, authenticator
):
    response = get(api, "/payout/?amount=5")
    assert response.status_code == 302
    assert response["Location"] == f"{REAUTH_PAGE}?next={quote('/payout/?amount=5', safe='')}"
    page = get(api, response["Location"])
    assert page.status_code == 200
    assert b"data-pk-reauth-page" in page.content
    assert page.context["passkeys_config"]["next"] == "/payout/?amount=5"
    reauthenticate(api, authenticator)
    response = get(api, "/payout/?amount=5")
    assert response.status_code == 200
    assert response.content == b"the payout form"


def test_a_password_sign_in_does_not_count(api, signed_in):
    # The session was stamped as just signed in (a password login): not a passkey.
    assert get(api, "/payout/").status_code == 302


def test_json_post_without_a_passkey_assertion_is_refused_and_nothing_runs(api, signed_in):
    response = api.post("/payout/", {"amount": 100})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "reauthentication_required"
    assert step_up_urls.DONE == []


def test_json_post_runs_after_reauthentication(api, signed_in, authenticator):
    reauthenticate(api, authenticator)
    response = api.post("/payout/", {"amount": 100})
    assert response.status_code == 200
    assert step_up_urls.DONE == ['payout {"amount": 100}']


def test_form_post_is_sent_to_the_reauth_page_and_not_acted_on(api, signed_in, authenticator):
    response = api.client.post(
        "/payout/", {"amount": "7"}, secure=True, HTTP_X_CSRFTOKEN=api.csrf_token()
    )
    assert response.status_code == 303
    assert response["Location"] == f"{REAUTH_PAGE}?next={quote('/payout/', safe='')}"
    assert step_up_urls.DONE == []
    # The page says to send the form again; after the passkey, the form's URL is a GET.
    page = get(api, response["Location"])
    assert "submit the form again" in page.content.decode()
    reauthenticate(api, authenticator)
    assert get(api, "/payout/").content == b"the payout form"
    response = api.client.post(
        "/payout/", {"amount": "7"}, secure=True, HTTP_X_CSRFTOKEN=api.csrf_token()
    )
    assert response.status_code == 200
    assert step_up_urls.DONE == ["payout 7"]


def test_a_passkey_sign_in_without_user_verification_does_not_count(
    api, user, authenticator, register, settings
):
    settings.PASSKEYS_USER_VERIFICATION = "preferred"
    assert register(user, authenticator).status_code == 201
    api.client.logout()
    options = api.post("/auth/passkey/login/options").json()
    response = api.post(
        "/auth/passkey/login/verify", authenticator.get(options, flags={"uv": False})
    )
    assert response.status_code == 200, response.content
    assert get(api, "/payout/").status_code == 302


def test_where_every_ceremony_requires_uv_a_passkey_sign_in_counts(
    api, user, authenticator, register, settings
):
    settings.PASSKEYS_USER_VERIFICATION = "required"
    assert register(user, authenticator).status_code == 201
    api.client.logout()
    options = api.post("/auth/passkey/login/options").json()
    assert api.post("/auth/passkey/login/verify", authenticator.get(options)).status_code == 200
    assert get(api, "/payout/").status_code == 200


def test_reauthentication_without_user_verification_does_not_open_the_view(
    api, signed_in, authenticator
):
    options = api.post(REAUTH_OPTIONS).json()
    response = api.post(REAUTH_VERIFY, authenticator.get(options, flags={"uv": False}))
    assert response.json()["error"]["code"] == "user_verification_missing"
    assert get(api, "/payout/").status_code == 302


def test_max_age_is_per_view(api, signed_in, authenticator):
    reauthenticate(api, authenticator)
    age_stamp(api, VERIFIED_ASSERTION_TIME_KEY, 90)
    assert get(api, "/strict/").status_code == 302  # max_age=60
    assert get(api, "/payout/").status_code == 200  # PASSKEYS_REAUTH_MAX_AGE (300)
    age_stamp(api, VERIFIED_ASSERTION_TIME_KEY, 400)
    assert get(api, "/payout/").status_code == 302


def test_the_plain_assertion_stamp_alone_does_not_count(api, signed_in):
    age_stamp(api, ASSERTION_TIME_KEY, 0)
    assert get(api, "/payout/").status_code == 302


def test_signed_out_visitors_go_to_the_sign_in_page(api, db, settings):
    settings.LOGIN_URL = "/accounts/login/"
    response = get(api, "/payout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/payout/"
    response = api.post("/payout/", {})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_authenticated"


def test_async_views_are_guarded(api, signed_in, authenticator):
    response = get(api, "/async/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "reauthentication_required"
    reauthenticate(api, authenticator)
    assert get(api, "/async/").json() == {"ran": True}


def test_the_mixin_guards_class_based_views(api, signed_in, authenticator):
    response = api.client.post("/close/", {}, secure=True, HTTP_X_CSRFTOKEN=api.csrf_token())
    assert response.status_code == 303
    assert step_up_urls.DONE == []
    reauthenticate(api, authenticator)
    age_stamp(api, VERIFIED_ASSERTION_TIME_KEY, 150)  # passkey_max_age = 120
    assert get(api, "/close/").status_code == 302
    reauthenticate(api, authenticator)
    assert (
        api.client.post("/close/", {}, secure=True, HTTP_X_CSRFTOKEN=api.csrf_token()).content
        == b"closed"
    )


def test_reauth_page_without_passkeys_points_to_adding_one(api, user):
    api.login(user)
    page = get(api, f"{REAUTH_PAGE}?next=/payout/")
    assert page.status_code == 200
    assert b"data-pk-reauth-page" not in page.content
    assert b"/auth/passkey/manage/" in page.content


def test_reauth_page_ignores_a_next_on_another_site(api, signed_in, settings):
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/home/"
    page = get(api, f"{REAUTH_PAGE}?next=https://evil.example/")
    assert page.context["passkeys_config"]["next"] == "/home/"


def test_reauth_page_needs_a_sign_in(api, db):
    response = get(api, REAUTH_PAGE)
    assert response.status_code == 302
