"""A new passkey without a name is named after its provider and the browser that registered it."""

from __future__ import annotations

import json

import pytest

from django_passkeys.flows.passkeys import default_name
from django_passkeys.models import MAX_NAME_LENGTH, Credential

from .authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db

CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
)
SAFARI_ON_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
GOOGLE = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
CHROME_PROFILE = "adce0002-35bc-c60a-648b-0b25f1f05503"  # "Chrome on Mac"
UNKNOWN = "11111111-2222-3333-4444-555555555555"


def register(api, user, **meta):
    api.login(user)
    options = api.post("/auth/passkey/register/options", **meta).json()
    body = SoftAuthenticator().create(options)  # the Google Password Manager AAGUID
    return api.post("/auth/passkey/register/verify", body, **meta)


def test_an_unnamed_passkey_is_named_after_its_provider_and_browser(api, user):
    response = register(api, user, HTTP_USER_AGENT=CHROME_ON_LINUX)
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "Google Password Manager (Chrome on Linux)"
    assert Credential.objects.get().name == "Google Password Manager (Chrome on Linux)"


def test_without_a_browser_the_provider_alone_names_it(api, user):
    assert register(api, user).json()["name"] == "Google Password Manager"


def test_a_name_given_at_registration_is_kept(api, user):
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    body = {**SoftAuthenticator().create(options), "name": "Work phone"}
    response = api.post("/auth/passkey/register/verify", body, HTTP_USER_AGENT=CHROME_ON_LINUX)
    assert response.json()["name"] == "Work phone"
    assert Credential.objects.get().name == "Work phone"


@pytest.mark.parametrize(
    ("aaguid", "transports", "backup_eligible", "agent", "expected"),
    [
        (
            GOOGLE,
            ["hybrid", "internal"],
            True,
            SAFARI_ON_IOS,
            "Google Password Manager (Safari on iOS)",
        ),
        (UNKNOWN, ["internal"], True, CHROME_ON_LINUX, "Chrome on Linux"),
        (UNKNOWN, ["usb", "nfc"], False, FIREFOX_ON_WINDOWS, "Security key (Firefox on Windows)"),
        (UNKNOWN, ["usb"], False, "", "Security key"),
        ("", [], False, "curl/8.5.0", "Passkey"),
        # The provider already names the browser: said once.
        (CHROME_PROFILE, ["internal"], False, CHROME_ON_LINUX, "Chrome on Mac"),
    ],
)
def test_default_names(aaguid, transports, backup_eligible, agent, expected):
    credential = Credential(aaguid=aaguid, transports=transports, backup_eligible=backup_eligible)
    assert default_name(credential, user_agent=agent) == expected


def test_a_default_name_follows_the_rules_of_names_given_by_hand(tmp_path, settings):
    path = tmp_path / "aaguids.json"
    path.write_text(json.dumps({UNKNOWN: {"name": "Keys\x07 " + "k" * 120}}))
    settings.PASSKEYS_AAGUID_FILE = str(path)
    credential = Credential(aaguid=UNKNOWN, transports=["usb"])
    samsung = "Mozilla/5.0 (Linux; Android 14) SamsungBrowser/26.0 Chrome/122.0 Mobile Safari"
    name = default_name(credential, user_agent=samsung)
    assert "\x07" not in name
    assert name.startswith("Keys kkk") and name.endswith("(Samsung Internet on Android")
    assert len(name) == MAX_NAME_LENGTH
