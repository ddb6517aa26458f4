from __future__ import annotations

import json
import re

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import include, path

from django_passkeys.redirects import with_next
from django_passkeys.views.shim import page_config

pytestmark = pytest.mark.django_db

LOGIN = "/auth/passkey/login/"


def _password_reset(request):  # pragma: no cover - only reversed
    return HttpResponse()


# A project that has a password reset page (used with @pytest.mark.urls(__name__)).
urlpatterns = [
    path("auth/passkey/", include("django_passkeys.urls")),
    path("reset/", _password_reset, name="password_reset"),
    path("signin/", _password_reset, name="signin"),
]


def config_of(response) -> dict:
    match = re.search(
        r'<script id="passkeys-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.S,
    )
    assert match, "no #passkeys-config"
    return json.loads(match.group(1))


def test_login_page_offers_autofill_button_and_other_method(api):
    response = api.client.get(LOGIN, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'autocomplete="username webauthn"' in html
    assert "Use passkey" in html
    assert 'href="/accounts/login/"' in html  # LOGIN_URL by default
    # The app's own recovery: a mailbox link plus a second factor.
    assert '<a class="pk-link" href="/auth/passkey/recover/">Recover account</a>' in html
    assert "no-cache" in response["Cache-Control"]


def test_login_page_has_no_inline_script(api):
    html = api.client.get(LOGIN, secure=True).content.decode()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts
    for attributes in scripts:
        assert "src=" in attributes or 'type="application/json"' in attributes
    assert re.search(r'<script src="/static/django_passkeys/passkeys.js" defer>', html)
    assert "/static/django_passkeys/passkeys.css" in html


def test_login_page_config_names_login_endpoints_only(api):
    config = config_of(api.client.get(LOGIN, secure=True))
    assert config["urls"] == {
        "loginOptions": "/auth/passkey/login/options",
        "loginVerify": "/auth/passkey/login/verify",
        "registerOptions": "/auth/passkey/register/options",
        "registerVerify": "/auth/passkey/register/verify",
    }
    assert config["csrf"]
    assert config["next"] == ""
    assert config["messages"]["NotAllowedError"]
    assert config["messages"]["credential_unknown"]


def test_login_page_keeps_a_safe_next_and_passes_it_to_the_other_method(api):
    response = api.client.get(LOGIN, {"next": "/account/?tab=1"}, secure=True)
    assert config_of(response)["next"] == "/account/?tab=1"
    assert 'href="/accounts/login/?next=%2Faccount%2F%3Ftab%3D1"' in response.content.decode()


def test_login_page_drops_an_offsite_next(api):
    response = api.client.get(LOGIN, {"next": "https://evil.example/"}, secure=True)
    assert config_of(response)["next"] == ""
    assert "evil.example" not in response.content.decode()


def test_other_method_link_is_hidden_when_it_is_the_passkey_page(api, settings):
    settings.LOGIN_URL = "django_passkeys:login"
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert "Use another method" not in html
    assert "/accounts/login/" not in html


@pytest.mark.urls(__name__)
def test_other_login_url_setting_takes_a_url_name(api, settings):
    settings.PASSKEYS_OTHER_LOGIN_URL = "signin"
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert 'href="/signin/"' in html


@pytest.mark.urls(__name__)
def test_recover_account_never_falls_back_to_an_email_only_password_reset(api, settings):
    # The project has a password_reset page: a reset by e-mail alone must not be offered as
    # the way back in, or whoever reads the mailbox could remove every passkey.
    settings.PASSKEYS_RECOVERY_URL = None
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert 'href="/reset/"' not in html
    assert '<a class="pk-link" href="/auth/passkey/recover/">Recover account</a>' in html


def test_recovery_url_setting_wins(api, settings):
    settings.PASSKEYS_RECOVERY_URL = "/help/recover/"
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert '<a class="pk-link" href="/help/recover/">Recover account</a>' in html


def test_unsupported_message_is_in_the_page_but_hidden(api):
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert re.search(r"data-pk-unsupported hidden>Passkeys are not available", html)
    assert re.search(r"<form [^>]*data-pk-supported hidden", html)


def test_with_next_appends_to_an_existing_query():
    assert with_next("/in/?a=1", "/x/") == "/in/?a=1&next=%2Fx%2F"
    assert with_next("/in/", "") == "/in/"


def test_page_config_without_resolver_match_uses_default_namespace(rf: RequestFactory):
    request = rf.get("/")
    request.COOKIES = {}
    config = page_config(request, reauth=True)
    assert config["urls"]["reauthVerify"] == "/auth/passkey/reauth/verify"
