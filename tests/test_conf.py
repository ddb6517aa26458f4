"""Settings: each ``PASSKEYS_*`` default, and overrides read on every access."""

from __future__ import annotations

import pytest

from django_passkeys.conf import conf

DEFAULTS = {
    "PASSKEYS_RELATED_ORIGINS": [],
    "PASSKEYS_CHALLENGE_TTL": 300,
    "PASSKEYS_CHALLENGE_STORE": "auto",
    "PASSKEYS_USER_VERIFICATION": "preferred",
    "PASSKEYS_RESIDENT_KEY": "required",
    "PASSKEYS_ATTESTATION": "none",
    "PASSKEYS_ATTESTATION_ROOT_CERTS": {},
    "PASSKEYS_REQUIRE_ATTESTATION": False,
    "PASSKEYS_ALGORITHMS": [-8, -7, -257],
    "PASSKEYS_HINTS": [],
    "PASSKEYS_SIGN_COUNT_POLICY": "reject",
    "PASSKEYS_REAUTH_MAX_AGE": 300,
    "PASSKEYS_MAX_BODY_BYTES": 64 * 1024,
    "PASSKEYS_USER_DISPLAY_NAME": None,
}

OVERRIDES = {
    "PASSKEYS_RELATED_ORIGINS": ["https://example.org"],
    "PASSKEYS_CHALLENGE_TTL": 60,
    "PASSKEYS_CHALLENGE_STORE": "cache",
    "PASSKEYS_USER_VERIFICATION": "required",
    "PASSKEYS_RESIDENT_KEY": "preferred",
    "PASSKEYS_ATTESTATION": "direct",
    "PASSKEYS_ATTESTATION_ROOT_CERTS": {"packed": [b"-----BEGIN CERTIFICATE-----"]},
    "PASSKEYS_REQUIRE_ATTESTATION": True,
    "PASSKEYS_ALGORITHMS": [-7],
    "PASSKEYS_HINTS": ["security-key"],
    "PASSKEYS_SIGN_COUNT_POLICY": "flag",
    "PASSKEYS_REAUTH_MAX_AGE": 600,
    "PASSKEYS_MAX_BODY_BYTES": 1024,
    "PASSKEYS_USER_DISPLAY_NAME": str,
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default(settings, name):
    if hasattr(settings, name):
        delattr(settings, name)
    assert getattr(conf, name) == DEFAULTS[name]


@pytest.mark.parametrize("name", sorted(OVERRIDES))
def test_override_is_read_on_access(settings, name):
    setattr(settings, name, OVERRIDES[name])
    assert getattr(conf, name) == OVERRIDES[name]


def test_rp_name_defaults_to_the_rp_id(settings):
    del settings.PASSKEYS_RP_NAME
    settings.PASSKEYS_RP_ID = "example.com"
    assert conf.PASSKEYS_RP_NAME == "example.com"
    settings.PASSKEYS_RP_NAME = "Example"
    assert conf.PASSKEYS_RP_NAME == "Example"


def test_rp_id_defaults_to_empty(settings):
    del settings.PASSKEYS_RP_ID
    assert conf.PASSKEYS_RP_ID == ""


def test_allowed_origins_default_to_https_on_the_rp_id(settings):
    del settings.PASSKEYS_ALLOWED_ORIGINS
    settings.PASSKEYS_RP_ID = "example.com"
    assert conf.PASSKEYS_ALLOWED_ORIGINS == ["https://example.com"]
    settings.PASSKEYS_RP_ID = ""
    assert conf.PASSKEYS_ALLOWED_ORIGINS == []
    settings.PASSKEYS_ALLOWED_ORIGINS = ("https://a.example.com", "android:apk-key-hash:x")
    assert conf.PASSKEYS_ALLOWED_ORIGINS == ["https://a.example.com", "android:apk-key-hash:x"]


def test_login_redirect_falls_back_to_login_redirect_url(settings):
    settings.LOGIN_REDIRECT_URL = "/home/"
    assert conf.PASSKEYS_LOGIN_REDIRECT_URL == "/home/"
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/dashboard/"
    assert conf.PASSKEYS_LOGIN_REDIRECT_URL == "/dashboard/"


def test_numeric_settings_are_coerced(settings):
    settings.PASSKEYS_CHALLENGE_TTL = "90"
    settings.PASSKEYS_ALGORITHMS = ["-7", -8]
    assert conf.PASSKEYS_CHALLENGE_TTL == 90
    assert conf.PASSKEYS_ALGORITHMS == [-7, -8]


def test_conf_never_writes_to_django_settings(settings):
    from django.conf import settings as django_settings

    del settings.PASSKEYS_CHALLENGE_TTL
    conf.PASSKEYS_CHALLENGE_TTL  # noqa: B018 - read for its (absent) side effect
    assert not hasattr(django_settings, "PASSKEYS_CHALLENGE_TTL")


def test_a_login_redirect_that_is_neither_a_url_name_nor_a_path_is_kept_as_given(settings):
    # Not a 500 at sign-in: passkeys.W007's kind of mistake, redirected to as written.
    settings.LOGIN_REDIRECT_URL = "dashboard"
    assert conf.PASSKEYS_LOGIN_REDIRECT_URL == "dashboard"
