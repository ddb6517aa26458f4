"""A site adopts the app (issue 10): its pages live inside the site's layout, with the account's
links and a sign-out; the site's own login page embeds passkey sign-in with a tag; the first run
lands on pages that exist; and setup mistakes explain themselves during development.
"""

from __future__ import annotations

import copy
import hashlib
import re
import sys
from pathlib import Path

import pytest
from django.contrib.auth.forms import AuthenticationForm
from django.core.management import call_command
from django.template import Context, RequestContext, Template
from django.test import RequestFactory

from django_passkeys.checks import check_development_server, check_login_page, check_relying_party
from django_passkeys.conf import conf
from django_passkeys.errors import REASONS, Reason
from tests.authenticator import SoftAuthenticator
from tests.support import LOGIN_VERIFY, assert_rejected, enroll, login_options

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
LOGIN = "/auth/passkey/login/"
SECURITY = "/auth/passkey/security/"
MANAGE = "/auth/passkey/manage/"
SESSIONS = "/auth/passkey/sessions/"
SIGN_OUT = "/auth/passkey/sign-out/"


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def template_dirs(settings, *folders: Path) -> None:
    """Search ``folders`` first, as a project's ``TEMPLATES["DIRS"]``."""
    engine = copy.deepcopy(settings.TEMPLATES[0])
    engine["DIRS"] = [str(folder) for folder in folders]
    settings.TEMPLATES = [engine]


def sign_in_with_a_passkey(api, user) -> str:
    """Enrol ``user`` over HTTP, sign in with the passkey; return the redirect it answers."""
    authenticator = SoftAuthenticator()
    enroll(user, authenticator, api=api)
    response = api.post(LOGIN_VERIFY, authenticator.get(login_options(api)))
    assert response.status_code == 200, response.content
    return str(response.json()["redirect"])


# -- 1. Pages that live inside the site ----------------------------------------------------------


def test_pages_extend_the_base_template_the_site_names(api, user, settings, tmp_path):
    (tmp_path / "site.html").write_text(
        "<!doctype html><html lang='en'><head><title>{% block title %}{% endblock %} · Shop"
        "</title></head><body><header>Shop header</header><main>{% block content %}"
        "{% endblock %}</main></body></html>"
    )
    template_dirs(settings, tmp_path)
    settings.PASSKEYS_BASE_TEMPLATE = "site.html"
    api.login(user)
    for path in (SECURITY, MANAGE, SESSIONS):
        response = api.client.get(path, secure=True)
        html = response.content.decode()
        assert "<header>Shop header</header>" in html, path
        assert re.search(r"<title>[^<]+ · Shop</title>", html), path
        assert '<script src="/static/django_passkeys/passkeys.js" defer></script>' in html
        assert '<link rel="stylesheet" href="/static/django_passkeys/passkeys.css">' in html
        assert 'id="pk-title"' in html
        used = [t.name for t in response.templates]
        assert "site.html" in used and "django_passkeys/base.html" not in used
    api.client.logout()
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert "<header>Shop header</header>" in html and "data-pk-login" in html


def test_pages_use_the_apps_own_base_by_default(api, user):
    assert conf.PASSKEYS_BASE_TEMPLATE == "django_passkeys/base.html"
    api.login(user)
    response = api.client.get(SECURITY, secure=True)
    used = [t.name for t in response.templates]
    assert used[:3] == [
        "django_passkeys/security.html",
        "django_passkeys/page.html",
        "django_passkeys/base.html",
    ]
    html = response.content.decode()
    assert html.count("<main") == 1 and html.count("<h1 ") == 1


def test_signed_in_pages_show_the_account_links_the_user_and_a_sign_out(api, user):
    api.login(user)
    html = api.client.get(SECURITY, secure=True).content.decode()
    nav = re.search(r'<nav class="pk-account".*?</nav>', html, flags=re.S)
    assert nav, html
    links = dict(re.findall(r'<a class="pk-link" href="([^"]+)"([^>]*)>', nav.group(0)))
    assert set(links) == {SECURITY, MANAGE, SESSIONS}
    assert 'aria-current="page"' in links[SECURITY] and not links[MANAGE].strip()
    assert f"Signed in as <strong>{user.get_username()}</strong>" in nav.group(0)
    sign_out = re.search(
        r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', nav.group(0), flags=re.S
    )
    assert sign_out and sign_out.group(1) == SIGN_OUT
    assert 'name="csrfmiddlewaretoken"' in sign_out.group(2)


def test_a_signed_out_page_shows_no_account_links(api):
    html = api.client.get(LOGIN, secure=True).content.decode()
    assert 'class="pk-account"' not in html and SIGN_OUT not in html


def test_the_sign_out_form_posts_to_a_configured_logout_url(api, user, settings):
    settings.PASSKEYS_LOGOUT_URL = "admin:logout"
    api.login(user)
    html = api.client.get(SECURITY, secure=True).content.decode()
    assert '<form method="post" action="/admin/logout/"' in html


def test_sign_out_signs_the_user_out_and_shows_the_sign_in_page(api, user):
    api.login(user)
    response = api.client.post(SIGN_OUT, {"csrfmiddlewaretoken": api.csrf_token()}, secure=True)
    assert response.status_code == 303
    assert response["Location"] == LOGIN
    assert "_auth_user_id" not in api.client.session
    assert api.client.get(SECURITY, secure=True).status_code == 302  # signed out for good


def test_sign_out_follows_logout_redirect_url(api, user, settings):
    settings.LOGOUT_REDIRECT_URL = "django_passkeys:login"
    api.login(user)
    response = api.post(SIGN_OUT)
    assert response.status_code == 200
    assert response.json() == {"redirect": LOGIN}
    assert "_auth_user_id" not in api.client.session


def test_sign_out_without_the_csrf_token_keeps_the_user_signed_in(api, user):
    api.login(user)
    response = api.client.post(SIGN_OUT, {}, secure=True)
    assert response.status_code == 303
    assert api.client.session["_auth_user_id"] == str(user.pk)
    assert_rejected(api.post(SIGN_OUT, csrf=False), Reason.CSRF_FAILED)
    assert api.client.session["_auth_user_id"] == str(user.pk)


def test_sign_out_is_a_post(api, user):
    api.login(user)
    response = api.client.get(SIGN_OUT, secure=True)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert api.client.session["_auth_user_id"] == str(user.pk)


def test_a_signed_in_visitor_of_the_login_page_is_told_and_offered_to_go_on(api, user):
    api.login(user)
    response = api.client.get(f"{LOGIN}?next={MANAGE}", secure=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "You're signed in" in html
    assert f'<a class="pk-button pk-primary" href="{MANAGE}">' in html
    assert "data-pk-login" not in html  # no second sign-in over the first


def test_the_signed_in_login_page_goes_on_to_the_login_redirect_url_without_next(
    api, user, settings
):
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "django_passkeys:sessions"
    api.login(user)
    html = api.client.get(f"{LOGIN}?next=https://evil.example/", secure=True).content.decode()
    assert f'<a class="pk-button pk-primary" href="{SESSIONS}">' in html


def test_a_site_recolours_the_pages_with_css_custom_properties():
    css = (
        Path(__file__).resolve().parent.parent
        / "django_passkeys/static/django_passkeys/passkeys.css"
    ).read_text()
    docs = (Path(__file__).resolve().parent.parent / "docs" / "templates.rst").read_text()
    declared = set(re.findall(r"(--pk-[a-z-]+):", css))
    assert declared >= {"--pk-accent", "--pk-text", "--pk-bg", "--pk-surface"}
    for prop in declared:
        assert f"``{prop}``" in docs, f"{prop} is not documented"


# -- 2. Passkey sign-in embedded in the site's own login page -------------------------------------


def test_the_passkey_login_tag_renders_the_button_status_config_and_script(rf: RequestFactory):
    request = rf.get("/accounts/login/", {"next": "/orders/"})
    html = Template("{% load passkeys %}{% passkey_login %}").render(RequestContext(request))
    assert re.search(r"<form [^>]*data-pk-login[^>]*data-pk-supported hidden", html)
    assert "Use passkey" in html
    assert 'role="status" aria-live="polite" data-pk-status' in html
    config = re.search(r'<script id="passkeys-config" type="application/json">(.*?)</script>', html)
    assert config and '"next": "/orders/"' in config.group(1)
    assert '"loginVerify": "/auth/passkey/login/verify"' in config.group(1)
    assert '<script src="/static/django_passkeys/passkeys.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/django_passkeys/passkeys.css">' in html


def test_the_passkey_login_tag_drops_an_offsite_next_and_can_leave_the_stylesheet_out(rf):
    request = rf.get("/accounts/login/", {"next": "https://evil.example/"})
    html = Template("{% load passkeys %}{% passkey_login stylesheet=False %}").render(
        RequestContext(request)
    )
    assert "evil.example" not in html
    assert "passkeys.css" not in html


def test_the_passkey_login_tag_carries_the_csp_nonce(rf):
    request = rf.get("/accounts/login/")
    request.csp_nonce = "n0nce"
    html = Template("{% load passkeys %}{% passkey_login %}").render(RequestContext(request))
    assert '<script src="/static/django_passkeys/passkeys.js" defer nonce="n0nce">' in html


def test_the_autofill_filter_adds_webauthn_to_a_forms_username_field():
    html = Template("{% load passkeys %}{{ form.username|passkey_autofill }}").render(
        Context({"form": AuthenticationForm()})
    )
    assert 'autocomplete="username webauthn"' in html
    assert 'name="username"' in html and 'id="id_username"' in html


def test_the_autofill_attributes_tag_for_a_hand_written_field():
    html = Template("{% load passkeys %}<input name=login{% passkey_autofill_attrs %}>").render(
        Context()
    )
    assert html == '<input name=login autocomplete="username webauthn">'


def test_a_login_view_page_embeds_passkey_sign_in_next_to_the_password(api, user, settings):
    settings.ROOT_URLCONF = "tests.first_run_urls"
    template_dirs(settings, EXAMPLES / "login-view")
    html = api.client.get(f"/accounts/login/?next={MANAGE}", secure=True).content.decode()
    assert re.search(r'<input [^>]*name="username"[^>]*autocomplete="username webauthn"', html) or (
        re.search(r'<input [^>]*autocomplete="username webauthn"[^>]*name="username"', html)
    )
    assert 'name="password"' in html and "data-pk-login" in html
    assert f'"next": "{MANAGE}"' in html


# -- 3. A first run lands on pages that exist ----------------------------------------------------


def test_a_first_passkey_sign_in_lands_on_the_security_page_not_a_404(api, user, settings):
    # Django's default LOGIN_REDIRECT_URL, a page no new project has.
    settings.LOGIN_REDIRECT_URL = "/accounts/profile/"
    assert sign_in_with_a_passkey(api, user) == SECURITY


def test_a_project_profile_page_at_the_default_url_is_kept(api, user, settings):
    settings.ROOT_URLCONF = "tests.first_run_profile_urls"
    settings.LOGIN_REDIRECT_URL = "/accounts/profile/"
    assert sign_in_with_a_passkey(api, user) == "/accounts/profile/"


def test_login_redirect_url_may_name_a_url(api, user, settings):
    settings.LOGIN_REDIRECT_URL = "django_passkeys:manage"
    assert sign_in_with_a_passkey(api, user) == MANAGE


def test_a_login_url_that_leads_nowhere_is_a_warning(settings):
    settings.LOGIN_URL = "/accounts/login/"  # tests.urls has no such page
    messages = check_login_page()
    assert ids(messages) == ["passkeys.W007"]
    assert "/accounts/login/" in messages[0].msg
    assert "passkey_login" in messages[0].hint
    settings.LOGIN_URL = "no-such-name"
    assert ids(check_login_page()) == ["passkeys.W007"]


@pytest.mark.parametrize(
    "login_url", ["django_passkeys:login", "/auth/passkey/login/", "https://sso.example/login"]
)
def test_a_login_url_that_leads_to_a_page_passes(settings, login_url):
    settings.LOGIN_URL = login_url
    assert check_login_page() == []


def test_a_login_page_without_its_template_is_a_warning(settings):
    settings.ROOT_URLCONF = "tests.first_run_urls"  # django.contrib.auth.urls, no template
    settings.LOGIN_URL = "login"
    messages = check_login_page()
    assert ids(messages) == ["passkeys.W008"]
    assert "registration/login.html" in messages[0].msg
    template_dirs(settings, EXAMPLES / "login-view")
    assert check_login_page() == []


def test_manage_py_check_reports_a_login_url_that_leads_nowhere(settings, capsys):
    settings.LOGIN_URL = "/accounts/login/"
    call_command("check")
    assert "passkeys.W007" in capsys.readouterr().err


# -- 4. Errors that explain themselves during development -----------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["manage.py", "runserver"], ["passkeys.W009"]),  # 127.0.0.1:8000
        (["manage.py", "runserver", "127.0.0.1:8000"], ["passkeys.W009"]),
        (["manage.py", "runserver", "8000"], ["passkeys.W009"]),
        (["manage.py", "runserver", "--noreload", "localhost:8000"], []),
        (["manage.py", "runserver", "localhost:8001"], ["passkeys.W009"]),
        (["manage.py", "runserver", "0.0.0.0:8000"], []),
        (["manage.py", "runserver", "0.0.0.0:9000"], ["passkeys.W009"]),
        (["manage.py", "migrate"], []),
    ],
)
def test_runserver_on_an_address_passkeys_cannot_use_is_a_warning(
    settings, monkeypatch, argv, expected
):
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["http://localhost:8000"]
    monkeypatch.setattr(sys, "argv", argv)
    messages = check_development_server()
    assert ids(messages) == expected
    if expected:
        assert "localhost" in messages[0].hint


def test_runserver_on_127_0_0_1_tells_to_open_localhost(settings, monkeypatch):
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["http://localhost:8000"]
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
    (message,) = check_development_server()
    assert "127.0.0.1" in message.msg
    assert "manage.py runserver localhost:8000" in message.hint


@pytest.mark.parametrize("rp_id", ["127.0.0.1", "::1", "10.0.0.7"])
def test_an_ip_address_is_no_rp_id(settings, rp_id):
    settings.PASSKEYS_RP_ID = rp_id
    settings.PASSKEYS_ALLOWED_ORIGINS = ["http://localhost:8000"]
    messages = check_relying_party()
    assert ids(messages) == ["passkeys.E001"]
    assert "localhost" in (messages[0].hint or "")


@pytest.fixture
def sign_in_from(api, enrolled, authenticator, unchanged):
    """Sign in with ``hostile`` knobs on the enrolled passkey's assertion; it writes nothing."""

    def _sign_in_from(**hostile):
        options = login_options(api)
        with unchanged():
            return api.post(LOGIN_VERIFY, authenticator.get(options, **hostile))

    return _sign_in_from


def test_with_debug_an_origin_mismatch_names_the_origin_and_the_allowed_ones(
    sign_in_from, settings
):
    settings.DEBUG = True
    response = sign_in_from(origin="http://127.0.0.1:8000")
    assert_rejected(response, Reason.ORIGIN_MISMATCH)
    message = response.json()["error"]["message"]
    assert message.startswith(str(REASONS[Reason.ORIGIN_MISMATCH][1]))
    assert "'http://127.0.0.1:8000'" in message and "'https://testserver'" in message


def test_without_debug_an_origin_mismatch_says_only_the_message(sign_in_from):
    response = sign_in_from(origin="http://127.0.0.1:8000")
    assert_rejected(response, Reason.ORIGIN_MISMATCH)
    assert response.json()["error"]["message"] == str(REASONS[Reason.ORIGIN_MISMATCH][1])


def test_with_debug_an_rp_id_mismatch_names_the_rp_id_and_the_configured_one(
    sign_in_from, settings
):
    settings.DEBUG = True
    response = sign_in_from(rp_id="localhost")
    assert_rejected(response, Reason.RP_ID_MISMATCH)
    message = response.json()["error"]["message"]
    assert "'localhost'" in message and "'testserver'" in message
    # An RP ID nothing configured names: its hash, so the developer can still compare.
    response = sign_in_from(rp_id="elsewhere.example")
    assert (
        hashlib.sha256(b"elsewhere.example").hexdigest()[:16]
        in (response.json()["error"]["message"])
    )


def test_without_debug_an_rp_id_mismatch_says_only_the_message(sign_in_from):
    response = sign_in_from(rp_id="localhost")
    assert_rejected(response, Reason.RP_ID_MISMATCH)
    assert response.json()["error"]["message"] == str(REASONS[Reason.RP_ID_MISMATCH][1])


def test_with_debug_other_failures_keep_their_detail_private(sign_in_from, settings):
    settings.DEBUG = True
    response = sign_in_from(type_="webauthn.create")
    assert_rejected(response, Reason.TYPE_MISMATCH)
    assert response.json()["error"]["message"] == str(REASONS[Reason.TYPE_MISMATCH][1])
