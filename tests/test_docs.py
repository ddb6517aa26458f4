"""The docs keep up with the code: every setting, reason code, system check, URL and module has
its row, and every screenshot the e2e suite saves is shown.

When one of these fails, run ``python docs/generate_tables.py`` (settings, reason codes), or add
the check to ``docs/checks.rst``, the URL to ``docs/http-api.rst``, the module to the module map
of ``docs/architecture.rst``, the screenshot to the page about it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from django_passkeys import checks
from django_passkeys.conf import Settings
from django_passkeys.errors import REASONS, Reason

DOCS = Path(__file__).resolve().parent.parent / "docs"
SETTING_ROW = re.compile(r"^\s*\* - ``(PASSKEYS_[A-Z0-9_]+)``\n\s*- (.*)$", re.MULTILINE)
REASON_ROW = re.compile(r"^\s*\* - ``([a-z_]+)``\n\s*- (\d{3})$", re.MULTILINE)


def _settings() -> list[str]:
    return [
        name
        for name, value in vars(Settings).items()
        if name.startswith("PASSKEYS_") and isinstance(value, property)
    ]


def _documented_settings() -> dict[str, str]:
    return dict(SETTING_ROW.findall((DOCS / "settings.rst").read_text()))


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert set(_documented_settings()) == set(_settings())


def test_documented_literal_defaults_are_the_real_defaults(settings: object) -> None:
    from django_passkeys.conf import conf

    for name in _settings():
        if hasattr(settings, name):
            delattr(settings, name)
    for name, default in _documented_settings().items():
        literal = re.fullmatch(r"``(.*)``", default)
        if literal is None:
            continue  # a default described in words (derived from another setting)
        try:
            value = ast.literal_eval(literal.group(1))
        except (ValueError, SyntaxError):
            continue
        assert getattr(conf, name) == value, name


def test_every_reason_code_is_documented_with_its_status() -> None:
    documented = {
        code: int(status)
        for code, status in REASON_ROW.findall((DOCS / "reason-codes.rst").read_text())
    }
    assert documented == {code.value: status for code, (status, _) in REASONS.items()}
    assert set(documented) == {code.value for code in Reason}


@pytest.mark.parametrize(
    "check_id", sorted(set(re.findall(r"passkeys\.[EW]\d{3}", Path(checks.__file__).read_text())))
)
def test_every_system_check_is_documented(check_id: str) -> None:
    assert f"``{check_id}``" in (DOCS / "checks.rst").read_text()


def _url_names() -> list[str]:
    from django_passkeys import urls, wellknown_urls

    return sorted(str(pattern.name) for pattern in [*urls.urlpatterns, *wellknown_urls.urlpatterns])


@pytest.mark.parametrize("name", _url_names())
def test_every_url_is_documented_in_the_http_api(name: str) -> None:
    """Each URL name (also the key of its ``PASSKEYS_RATE_LIMITS`` entry) has a row there."""
    assert f"``{name}``" in (DOCS / "http-api.rst").read_text()


def test_every_screenshot_is_shown_in_the_docs() -> None:
    """The e2e suite saves them (``PASSKEYS_SCREENSHOTS=1``); each belongs on the page about it."""
    pages = "\n".join(page.read_text() for page in DOCS.glob("*.rst"))
    shots = sorted((DOCS / "_static" / "screenshots").glob("*.png"))
    assert shots
    assert [s.name for s in shots if f"_static/screenshots/{s.name}" not in pages] == []


def _modules() -> list[str]:
    package = Path(checks.__file__).resolve().parent
    return sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "__init__.py" and "migrations" not in path.parts
    )


@pytest.mark.parametrize("module", _modules())
def test_every_module_is_on_the_architecture_page(module: str) -> None:
    """The module map of "How it fits together" names each module and what it owns."""
    stem = Path(module).stem
    text = (DOCS / "architecture.rst").read_text()
    assert f"``{stem}.py``" in text or f"``{stem}``" in text
