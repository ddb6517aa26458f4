"""System checks: each id fires on the setting it guards, and ``manage.py check`` fails."""

from __future__ import annotations

import copy
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_passkeys.checks import (
    BACKEND,
    check_challenge_store,
    check_choices,
    check_development_server,
    check_integration,
    check_login_page,
    check_relying_party,
    check_required_attestation,
    check_revocation_middleware,
)
from django_passkeys.middleware import RevokedCredentialMiddleware


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_the_test_settings_pass_every_check():
    assert check_relying_party() == []
    assert check_choices() == []
    assert check_integration() == []
    assert check_required_attestation() == []
    assert check_challenge_store() == []


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_manage_py_check_passes_with_a_clean_configuration():
    call_command("check")


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_manage_py_check_fails_on_a_bad_relying_party(settings):
    settings.PASSKEYS_RP_ID = ""
    with pytest.raises(SystemCheckError, match="passkeys.E001"):
        call_command("check")


@pytest.mark.parametrize("rp_id", ["", "https://example.com", "example.com:8000", "example.com/"])
def test_rp_id_must_be_a_bare_domain(settings, rp_id):
    settings.PASSKEYS_RP_ID = rp_id
    assert ids(check_relying_party()) == ["passkeys.E001"]


@pytest.mark.parametrize(
    "origin", ["ftp://testserver", "https://testserver/login", "testserver", "https://"]
)
def test_allowed_origins_must_be_origins(settings, origin):
    settings.PASSKEYS_ALLOWED_ORIGINS = [origin]
    assert ids(check_relying_party()) == ["passkeys.E002"]


def test_origin_outside_the_rp_id_is_an_error(settings):
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://evil.example"]
    assert ids(check_relying_party()) == ["passkeys.E003"]


def test_origin_on_a_subdomain_or_listed_as_related_is_accepted(settings):
    settings.PASSKEYS_RP_ID = "example.com"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://login.example.com", "https://example.org"]
    assert ids(check_relying_party()) == ["passkeys.E003"]
    settings.PASSKEYS_RELATED_ORIGINS = ["https://example.org"]
    assert check_relying_party() == []


def test_a_lookalike_domain_is_not_a_subdomain(settings):
    settings.PASSKEYS_RP_ID = "example.com"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://badexample.com"]
    assert ids(check_relying_party()) == ["passkeys.E003"]


def test_android_app_origins_are_accepted(settings):
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://testserver", "android:apk-key-hash:abc"]
    assert check_relying_party() == []


def test_plain_http_origin_is_an_error_outside_debug(settings):
    settings.PASSKEYS_ALLOWED_ORIGINS = ["http://testserver"]
    assert ids(check_relying_party()) == ["passkeys.E004"]
    settings.DEBUG = True
    assert check_relying_party() == []


def test_plain_http_is_fine_on_localhost(settings):
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["http://localhost:8000"]
    assert check_relying_party() == []


@pytest.mark.parametrize(
    "setting",
    [
        "PASSKEYS_USER_VERIFICATION",
        "PASSKEYS_RESIDENT_KEY",
        "PASSKEYS_ATTESTATION",
        "PASSKEYS_SIGN_COUNT_POLICY",
    ],
)
def test_enumerated_settings_must_hold_a_known_value(settings, setting):
    setattr(settings, setting, "sometimes")
    messages = check_choices()
    assert ids(messages) == ["passkeys.E005"]
    assert setting in messages[0].msg


@pytest.mark.parametrize("algorithms", [[], [-7, 12345]])
def test_algorithms_must_be_known_cose_identifiers(settings, algorithms):
    settings.PASSKEYS_ALGORITHMS = algorithms
    assert ids(check_choices()) == ["passkeys.E006"]


def test_hints_must_be_webauthn_hints(settings):
    settings.PASSKEYS_HINTS = ["security-key", "telepathy"]
    assert ids(check_choices()) == ["passkeys.E007"]


def test_signed_cookie_sessions_are_refused(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert ids(check_integration()) == ["passkeys.E008"]


def test_required_middleware_must_be_installed(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "django.middleware.csrf.CsrfViewMiddleware"
    ]
    messages = check_integration()
    assert ids(messages) == ["passkeys.E009"]
    assert "CsrfViewMiddleware" in messages[0].msg


def test_the_backend_must_be_installed(settings):
    settings.AUTHENTICATION_BACKENDS = [b for b in settings.AUTHENTICATION_BACKENDS if b != BACKEND]
    assert ids(check_integration()) == ["passkeys.E010"]


# -- where challenges are kept (PASSKEYS_CHALLENGE_STORE) -----------------------------------------

CACHE_SESSIONS = "django.contrib.sessions.backends.cache"
DUMMY = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}


def test_an_unknown_challenge_store_is_an_error(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "redis"
    messages = check_challenge_store()
    assert ids(messages) == ["passkeys.E021"]
    assert "'redis'" in messages[0].msg


@pytest.mark.parametrize(
    ("store", "engine"),
    [("cache", "django.contrib.sessions.backends.db"), ("auto", CACHE_SESSIONS)],
    ids=["explicit", "auto"],
)
def test_challenges_in_a_dummy_cache_are_an_error(settings, store, engine):
    settings.PASSKEYS_CHALLENGE_STORE = store
    settings.SESSION_ENGINE = engine
    settings.SESSION_CACHE_ALIAS = "sessions"
    settings.CACHES = {**settings.CACHES, "sessions": DUMMY}
    messages = check_challenge_store()
    assert ids(messages) == ["passkeys.E021"]
    assert "DummyCache" in messages[0].msg and "'sessions'" in messages[0].msg


@pytest.mark.parametrize(
    ("store", "engine"),
    [
        ("database", CACHE_SESSIONS),
        ("auto", "django.contrib.sessions.backends.db"),
        ("auto", "django.contrib.sessions.backends.cached_db"),
    ],
)
def test_a_dummy_cache_is_fine_where_challenges_are_rows(settings, store, engine):
    settings.PASSKEYS_CHALLENGE_STORE = store
    settings.SESSION_ENGINE = engine
    settings.CACHES = {**settings.CACHES, "default": DUMMY}
    assert check_challenge_store() == []


def test_challenges_in_a_cache_that_is_not_configured_are_an_error(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    settings.SESSION_CACHE_ALIAS = "nowhere"
    messages = check_challenge_store()
    assert ids(messages) == ["passkeys.E021"]
    assert "'nowhere'" in messages[0].msg


REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://h:6379"}
LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def test_challenges_in_a_shared_cache_pass(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "cache"
    settings.CACHES = {**settings.CACHES, "default": REDIS}
    assert check_challenge_store() == []


@pytest.mark.parametrize(("debug", "expected"), [(False, ["passkeys.W011"]), (True, [])])
def test_challenges_in_a_process_local_cache_are_a_warning_outside_debug(settings, debug, expected):
    settings.PASSKEYS_CHALLENGE_STORE = "auto"
    settings.SESSION_ENGINE = CACHE_SESSIONS
    settings.CACHES = {**settings.CACHES, "default": LOCMEM}
    settings.DEBUG = debug
    messages = check_challenge_store()
    assert ids(messages) == expected
    if expected:
        assert "LocMemCache" in messages[0].msg and "'auto' with cache sessions" in messages[0].msg


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_manage_py_check_fails_on_an_unknown_challenge_store(settings):
    settings.PASSKEYS_CHALLENGE_STORE = "memory"
    with pytest.raises(SystemCheckError, match="passkeys.E021"):
        call_command("check")


# -- revocation middleware (security rule 9) ------------------------------------------------------

GUARD = "django_passkeys.middleware.RevokedCredentialMiddleware"
AUTHENTICATION = "django.contrib.auth.middleware.AuthenticationMiddleware"


class ProjectRevocationMiddleware(RevokedCredentialMiddleware):
    """A project's own subclass counts as the middleware."""


def test_the_test_settings_install_the_revocation_middleware():
    assert check_revocation_middleware() == []


def test_a_missing_revocation_middleware_is_an_error(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != GUARD]
    messages = check_revocation_middleware()
    assert ids(messages) == ["passkeys.E017"]
    assert "missing" in messages[0].msg


def test_the_revocation_middleware_must_come_after_authentication(settings):
    others = [m for m in settings.MIDDLEWARE if m != GUARD]
    settings.MIDDLEWARE = [GUARD, *others]
    messages = check_revocation_middleware()
    assert ids(messages) == ["passkeys.E017"]
    assert "before AuthenticationMiddleware" in messages[0].msg


def test_a_subclass_of_the_revocation_middleware_is_accepted(settings):
    subclass = f"{__name__}.ProjectRevocationMiddleware"
    settings.MIDDLEWARE = [
        subclass if m == GUARD else m for m in [*settings.MIDDLEWARE, "no.such.Middleware"]
    ]
    assert check_revocation_middleware() == []


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_manage_py_check_fails_without_the_revocation_middleware(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != GUARD]
    with pytest.raises(SystemCheckError, match="passkeys.E017"):
        call_command("check")


ROOT = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"


def test_required_attestation_without_any_root_is_an_error(settings):
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    settings.PASSKEYS_ATTESTATION = "direct"
    for roots in ({}, {"packed": []}):
        settings.PASSKEYS_ATTESTATION_ROOT_CERTS = roots
        messages = check_required_attestation()
        assert ids(messages) == ["passkeys.E016"]
        assert "PASSKEYS_ATTESTATION_ROOT_CERTS" in messages[0].msg


def test_required_attestation_without_asking_for_attestation_is_an_error(settings):
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    settings.PASSKEYS_ATTESTATION_ROOT_CERTS = {"packed": [ROOT]}
    messages = check_required_attestation()
    assert ids(messages) == ["passkeys.E016"]
    assert "PASSKEYS_ATTESTATION" in messages[0].msg


def test_required_attestation_with_roots_and_direct_attestation_passes(settings):
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    settings.PASSKEYS_ATTESTATION = "direct"
    settings.PASSKEYS_ATTESTATION_ROOT_CERTS = {"packed": [ROOT]}
    assert check_required_attestation() == []


def test_roots_are_not_needed_when_attestation_is_not_required(settings):
    settings.PASSKEYS_ATTESTATION = "direct"
    assert check_required_attestation() == []


# Django 6.1's check command runs the database checks too.
@pytest.mark.django_db
def test_manage_py_check_fails_on_required_attestation_without_roots(settings):
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    settings.PASSKEYS_ATTESTATION = "direct"
    with pytest.raises(SystemCheckError, match="passkeys.E016"):
        call_command("check")


def test_an_unimportable_middleware_before_the_revocation_middleware_is_skipped(settings):
    # Django's own checks report the entry that cannot be imported; E017 is about order only.
    settings.MIDDLEWARE = ["no.such.Middleware", *settings.MIDDLEWARE]
    assert check_revocation_middleware() == []
    settings.MIDDLEWARE = ["no.such.Middleware", GUARD, AUTHENTICATION]
    messages = check_revocation_middleware()
    assert ids(messages) == ["passkeys.E017"]
    assert "before AuthenticationMiddleware" in messages[0].msg


# -- the sign-in page (passkeys.W007 / W008): what the check leaves to Django ---------------------


def test_a_login_url_in_a_urlconf_that_does_not_import_is_left_to_django(settings):
    # Django's own URL checks report the broken URLconf; a W007 on top would blame LOGIN_URL.
    settings.ROOT_URLCONF = "tests.no_such_urlconf"
    settings.LOGIN_URL = "/accounts/login/"
    assert check_login_page() == []


def test_a_login_view_that_names_no_template_is_not_second_guessed(settings):
    settings.LOGIN_URL = "/auth/passkey/login/options"  # a view, but no template_name
    assert check_login_page() == []


def test_a_login_template_that_does_not_compile_is_left_to_the_page(settings, tmp_path):
    (tmp_path / "registration").mkdir()
    (tmp_path / "registration" / "login.html").write_text("{% if %}broken{% endif %}")
    engine = copy.deepcopy(settings.TEMPLATES[0])
    engine["DIRS"] = [str(tmp_path)]
    settings.TEMPLATES = [engine]
    settings.ROOT_URLCONF = "tests.first_run_urls"  # LoginView: registration/login.html
    settings.LOGIN_URL = "login"
    # The template exists (no W008); the page itself shows the syntax error.
    assert check_login_page() == []


# -- the development server's address (passkeys.W009) -------------------------------------------


def _localhost_only(settings):
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["http://localhost:8000"]


@pytest.mark.parametrize("option", ["--settings", "--pythonpath", "--verbosity", "-v"])
def test_runserver_options_with_a_value_are_not_taken_for_the_address(
    settings, monkeypatch, option
):
    _localhost_only(settings)
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver", option, "x.y", "127.0.0.1:8000"])
    (message,) = check_development_server()
    assert message.id == "passkeys.W009"
    assert "http://127.0.0.1:8000/" in message.msg


def test_runserver_with_an_address_it_refuses_says_nothing(settings, monkeypatch):
    _localhost_only(settings)
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver", "not an address"])
    assert check_development_server() == []  # runserver itself exits with the error


def test_runserver_with_origins_that_do_not_import_leaves_it_to_e020(settings, monkeypatch):
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = f"{__name__}.no_such_function"
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
    assert check_development_server() == []
    assert "passkeys.E020" in ids(check_relying_party())


def _origins_of_the_host(request):
    return [f"http://{request.get_host()}"]


def test_runserver_with_origins_decided_per_request_says_nothing(settings, monkeypatch):
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = _origins_of_the_host
    monkeypatch.setattr(sys, "argv", ["manage.py", "runserver"])
    assert check_development_server() == []
