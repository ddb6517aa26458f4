"""Translations: the German and French catalogues are complete, compiled and current, and the
pages, the JS texts and the JSON errors come out in the visitor's language."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone, translation

import django_passkeys

from .support import ApiClient
from .test_pages import config_of

PACKAGE = Path(django_passkeys.__file__).parent
LOCALES = ("de", "fr")
PLURAL_FORMS = {
    "de": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
}

#: What a contributor runs after adding or changing a string (docs/translations.rst).
COMMANDS = """\
  apt-get install gettext   # or your system's package: xgettext, msgmerge, msgfmt
  cd django_passkeys
  PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings ../.venv/bin/django-admin makemessages \\
      -l de -l fr --add-location=file --no-obsolete
  # translate every new or changed entry in locale/{de,fr}/LC_MESSAGES/django.po:
  # fill msgstr (and every msgstr[n]), delete "#, fuzzy" flags, keep %(name)s and HTML tags
  PYTHONPATH=.. DJANGO_SETTINGS_MODULE=tests.settings ../.venv/bin/django-admin compilemessages
  cd .. && .venv/bin/pytest -q -p no:randomly tests/test_translations.py
See docs/translations.rst."""


# -- A small reader for .po files (no polib dependency) --------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.msgctxt, self.msgid, self.msgid_plural)

    def __str__(self) -> str:
        context = f" (context {self.msgctxt!r})" if self.msgctxt else ""
        return f"{self.msgid!r}{context}"


def read_po(path: Path) -> tuple[Entry, list[Entry]]:
    """The header entry and the live (non-obsolete) entries of ``path``."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        entry, target, obsolete = Entry(), "", False
        for line in block.splitlines():
            if line.startswith("#~"):
                obsolete = True
            elif line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#") or not line.strip():
                continue
            elif match := re.fullmatch(
                r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (\".*\")", line
            ):
                keyword, index, text = match.groups()
                target = f"msgstr{index or 0}" if keyword.startswith("msgstr") else keyword
                _append(entry, target, ast.literal_eval(text))
            elif line.startswith('"'):
                _append(entry, target, ast.literal_eval(line))
        if not obsolete:
            entries.append(entry)
    assert entries and entries[0].msgid == "", f"{path}: no header entry"
    return entries[0], entries[1:]


def _append(entry: Entry, target: str, text: str) -> None:
    if target.startswith("msgstr"):
        index = int(target[len("msgstr") :])
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    else:
        setattr(entry, target, (getattr(entry, target) or "") + text)


def catalogue(locale: str) -> Path:
    return PACKAGE / "locale" / locale / "LC_MESSAGES" / "django.po"


#: What must survive translation unchanged: placeholders and HTML tags.
KEPT = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}|<[^>]+>")


def kept(text: str) -> list[str]:
    return sorted(KEPT.findall(text))


# -- The catalogues --------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_every_catalogue_entry_is_translated(locale):
    path = catalogue(locale)
    assert path.exists(), f"no {locale} catalogue. Create it with:\n{COMMANDS}"
    header, entries = read_po(path)
    problems = []
    if "fuzzy" in header.flags:
        problems.append('the header is marked "fuzzy" (msgfmt would drop it, plural forms too)')
    if f"Language: {locale}\n" not in header.msgstr[0]:
        problems.append(f'the header lacks "Language: {locale}"')
    if f"Plural-Forms: {PLURAL_FORMS[locale]}\n" not in header.msgstr[0]:
        problems.append(f'the header lacks "Plural-Forms: {PLURAL_FORMS[locale]}"')
    for entry in entries:
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy (check it, then delete the flag): {entry}")
        forms = range(2) if entry.msgid_plural is not None else range(1)
        if sorted(entry.msgstr) != list(forms) or not all(entry.msgstr.values()):
            problems.append(f"not translated: {entry}")
            continue
        for index, text in entry.msgstr.items():
            source = entry.msgid_plural if index and entry.msgid_plural else entry.msgid
            if kept(text) != kept(source):
                problems.append(f"placeholders or tags changed in msgstr[{index}] of {entry}")
            # One French typography throughout: a no-break space before : ; ? ! and
            # typographic apostrophes (an ASCII ' would also come out as &#x27; in HTML).
            if locale == "fr" and (re.search(r"[ \w][:;?!](\s|$)", text) or "'" in text):
                problems.append(f"French typography (\\u00a0 before : ; ? !, and ’): {entry}")
    assert not problems, "\n".join(
        [f"{path.relative_to(PACKAGE.parent)}:", *problems, "", "To fix:", COMMANDS]
    )


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs gettext (xgettext, msgmerge)")
def test_catalogues_hold_every_translatable_string(tmp_path, monkeypatch):
    # makemessages on a copy of the package: the .pot it keeps lists every string in the code
    # and templates today, which the committed catalogues must all hold.
    copy = tmp_path / "django_passkeys"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "locale"))
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["de"], keep_pot=True, verbosity=0)
    _, source = read_po(copy / "locale" / "django.pot")
    assert len(source) > 100  # the extraction worked
    for locale in LOCALES:
        _, entries = read_po(catalogue(locale))
        held = {entry.key for entry in entries}
        missing = [str(entry) for entry in source if entry.key not in held]
        assert not missing, (
            f"strings missing from the {locale} catalogue:\n  "
            + "\n  ".join(missing)
            + f"\n\nTo fix:\n{COMMANDS}"
        )


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalogues_match_their_sources(locale):
    compiled = catalogue(locale).with_suffix(".mo")
    assert compiled.exists(), f"{compiled} is missing. To fix:\n{COMMANDS}"
    with compiled.open("rb") as stream:
        mo: dict[Any, str] = dict(gettext.GNUTranslations(stream)._catalog)  # type: ignore[attr-defined]
    expected: dict[Any, str] = {}
    _, entries = read_po(catalogue(locale))
    for entry in entries:
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural is None:
            expected[msgid] = entry.msgstr[0]
        else:
            expected.update({(msgid, i): text for i, text in entry.msgstr.items()})
    mo.pop("", None)
    assert mo == expected, f"{compiled} is older than its .po: compile it again.\n{COMMANDS}"


# -- What a visitor sees ---------------------------------------------------------------------------


@pytest.fixture
def api(settings):
    """The JSON client of a site with Django's LocaleMiddleware (set before its first request)."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
        "django.middleware.locale.LocaleMiddleware",
    )
    settings.MIDDLEWARE = middleware
    # LocaleMiddleware leaves the request's language active in this thread: restore it after.
    with translation.override(translation.get_language()):
        yield ApiClient()


PAGES = {
    "de": {
        "login": [
            "Anmelden",
            "Passkey verwenden",
            "Andere Methode verwenden",
            "Konto wiederherstellen",
        ],
        "manage": ["Ihre Passkeys", "Passkey hinzufügen", "Sie haben noch keine Passkeys."],
        "security": ["Anmeldung und Sicherheit", "Wiederherstellungscodes", "Authenticator-App"],
        "working": "Warten auf Ihren Passkey…",
        "error": "Die Anfrage konnte nicht verstanden werden.",
    },
    "fr": {
        "login": [
            "Se connecter",
            "Utiliser une clé d’accès",
            "Utiliser une autre méthode",
            "Récupérer le compte",
        ],
        "manage": [
            "Vos clés d’accès",
            "Ajouter une clé d’accès",
            "Vous n’avez pas encore de clé d’accès.",
        ],
        "security": [
            "Connexion et sécurité",
            "Codes de récupération",
            "Application d’authentification",
        ],
        "working": "En attente de votre clé d’accès…",
        "error": "La requête n’a pas pu être comprise.",
    },
}


@pytest.mark.django_db
@pytest.mark.parametrize("locale", LOCALES)
def test_login_page_renders_in_the_visitors_language(api, locale):
    response = api.client.get("/auth/passkey/login/", secure=True, HTTP_ACCEPT_LANGUAGE=locale)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{locale}">' in html
    for text in PAGES[locale]["login"]:
        assert text in html
    assert "Use passkey" not in html
    # The JS shim's texts come from the page, in the same language.
    assert config_of(response)["messages"]["working"] == PAGES[locale]["working"]


@pytest.mark.django_db
@pytest.mark.parametrize("locale", LOCALES)
def test_manage_page_renders_in_the_visitors_language(api, user, locale):
    api.login(user)
    response = api.client.get("/auth/passkey/manage/", secure=True, HTTP_ACCEPT_LANGUAGE=locale)
    assert response.status_code == 200
    html = response.content.decode()
    for text in PAGES[locale]["manage"]:
        assert text in html
    assert "Your passkeys" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("locale", LOCALES)
def test_security_page_renders_in_the_visitors_language(api, user, locale):
    api.login(user)
    response = api.client.get("/auth/passkey/security/", secure=True, HTTP_ACCEPT_LANGUAGE=locale)
    assert response.status_code == 200
    html = response.content.decode()
    for text in PAGES[locale]["security"]:
        assert text in html
    assert "Sign-in and security" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("locale", LOCALES)
def test_json_errors_are_in_the_visitors_language(api, locale):
    response = api.post("/auth/passkey/login/verify", raw=b"{not json", HTTP_ACCEPT_LANGUAGE=locale)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "malformed_request",
        "message": PAGES[locale]["error"],
    }


# -- Strings that could not be translated well -----------------------------------------------------


def test_ended_sessions_message_agrees_with_the_count():
    from django_passkeys.views.session_list import SessionsView

    view = SessionsView()
    with translation.override("en"):
        assert view.form_message({"ended": 1}) == "Signed out of 1 other session."
        assert view.form_message({"ended": 3}) == "Signed out of 3 other sessions."
    with translation.override("fr"):
        assert view.form_message({"ended": 1}) == "1 autre session a été déconnectée."
        assert view.form_message({"ended": 3}) == "3 autres sessions ont été déconnectées."


@pytest.mark.parametrize(
    ("locale", "days_ago", "just_now"),
    [
        ("en", "2\xa0days ago", "just now"),
        ("de", "vor 2\xa0Tagen", "gerade eben"),
        ("fr", "il y a 2\xa0jours", "à l’instant"),
    ],
)
def test_time_ago_reads_naturally(locale, days_ago, just_now):
    from django_passkeys.templatetags.passkeys import ago

    with translation.override(locale):
        assert ago(timezone.now() - timedelta(days=2, seconds=5)) == days_ago
        assert ago(timezone.now() - timedelta(seconds=5)) == just_now


@pytest.mark.django_db
def test_a_second_factors_state_and_its_action_are_told_apart(api, user):
    # "Set up" is both a state ("set up": eingerichtet) and an action ("set up": einrichten).
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def totp_section():
        response = api.client.get("/auth/passkey/security/", secure=True, HTTP_ACCEPT_LANGUAGE="de")
        section = next(s for s in response.context["sections"] if s.key == "totp")
        return section.state, section.action

    api.login(user)
    assert totp_section() == ("Nicht eingerichtet", "Einrichten")
    TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    assert totp_section() == ("Eingerichtet", "Verwalten")


@pytest.mark.django_db
def test_admin_counts_unused_recovery_codes_with_plural_forms(user):
    from django_passkeys import recovery_codes
    from django_passkeys.admin import PasskeyUserAdminMixin

    device, _ = recovery_codes.locked_device(user)
    codes = recovery_codes.replace_codes(device, 3)
    with translation.override("fr"):
        html = str(PasskeyUserAdminMixin().passkeys_second_factors(user))
        assert "3 codes non utilisés" in html
        recovery_codes.consume(device, codes[0])
        recovery_codes.consume(device, codes[1])
        html = str(PasskeyUserAdminMixin().passkeys_second_factors(user))
        assert "1 code non utilisé," in html
