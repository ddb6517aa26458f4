"""Real-Chromium end-to-end fixtures: browser, live server settings, CDP virtual authenticator,
and the axe-core accessibility check.

The tests skip, with the reason, when Playwright, ``/usr/bin/chromium`` or axe-core (``npm ci``)
is missing; CI sets ``PASSKEYS_FORBID_SKIPS=1`` (tests/skip_policy.py), which turns those skips
into failures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache

from django_passkeys.sessions import AUTH_TIME_KEY

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

CHROMIUM = os.environ.get("PASSKEYS_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Set to a directory (or "1" for docs/_static/screenshots) to save page screenshots.
SCREENSHOTS = os.environ.get("PASSKEYS_SCREENSHOTS", "")
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "_static" / "screenshots"
#: axe-core, installed by ``npm ci`` from the repository's package.json (a test-only tool).
AXE_JS = Path(
    os.environ.get(
        "PASSKEYS_E2E_AXE",
        Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js",
    )
)
#: The quality bar: WCAG 2.1 level A and AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: Chromium's virtual authenticator reports this AAGUID; the test list names it.
VIRTUAL_AAGUID = "01020304-0506-0708-0102-030405060708"

#: Records every Signal API call in sessionStorage, which survives the sign-in navigation.
RECORD_SIGNALS = """
(() => {
  const P = window.PublicKeyCredential;
  if (!P) return;
  for (const name of ["signalUnknownCredential", "signalAllAcceptedCredentials",
                      "signalCurrentUserDetails"]) {
    const original = P[name];
    P[name] = function (options) {
      const calls = JSON.parse(sessionStorage.getItem("pk-signals") || "[]");
      calls.push([name, options]);
      sessionStorage.setItem("pk-signals", JSON.stringify(calls));
      return original ? original.call(P, options) : Promise.resolve();
    };
  }
})();
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if sync_playwright is None:
        pytest.skip("Playwright is not installed: pip install 'dj-passkeys[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself are still synchronous, so its async-safety guard is lifted for these tests.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def site(live_server: Any, settings: Any, tmp_path: Path) -> str:
    """The live server, configured as the Relying Party ``localhost``."""
    settings.ROOT_URLCONF = "tests.e2e.urls"
    settings.PASSKEYS_RP_ID = "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = [live_server.url]
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/auth/passkey/manage/"
    settings.LOGIN_URL = "/accounts/login/"
    aaguids = tmp_path / "aaguids.json"
    aaguids.write_text(json.dumps({VIRTUAL_AAGUID: {"name": "Chromium virtual authenticator"}}))
    settings.PASSKEYS_AAGUID_FILE = str(aaguids)
    cache.clear()  # rate-limit counters are per IP, and every test comes from 127.0.0.1
    return str(live_server.url)


class Tab:
    """One page in a fresh browser context, with a virtual authenticator and an error log."""

    def __init__(self, browser: Any, base_url: str, init_scripts: list[str]) -> None:
        self.base_url = base_url
        self.context = browser.new_context(base_url=base_url)
        for script in [RECORD_SIGNALS, *init_scripts]:
            self.context.add_init_script(script)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.cdp = self.context.new_cdp_session(self.page)
        self.authenticator_id: str | None = None

    def add_authenticator(self) -> None:
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.authenticator_id = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )["authenticatorId"]

    def credentials(self) -> list[dict[str, Any]]:
        result = self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id}
        )
        return list(result["credentials"])

    def set_user_verified(self, verified: bool) -> None:
        self.cdp.send(
            "WebAuthn.setUserVerified",
            {"authenticatorId": self.authenticator_id, "isUserVerified": verified},
        )

    def sign_in_as(self, user: Any, *, age: int = 0) -> None:
        """Give the browser a session for ``user``, signed in ``age`` seconds ago."""
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session[AUTH_TIME_KEY] = int(time.time()) - age
        session.create()
        self.context.add_cookies(
            [{"name": "sessionid", "value": session.session_key, "url": self.base_url}]
        )

    def sign_out(self) -> None:
        response = self.page.request.post(f"{self.base_url}/sign-out/", max_redirects=0)
        assert response.status == 302

    def signals(self) -> list[list[Any]]:
        return list(self.page.evaluate("JSON.parse(sessionStorage.getItem('pk-signals') || '[]')"))

    def real_errors(self) -> list[str]:
        """Console errors, without the browser's notes about 4xx answers the test expects."""
        return [e for e in self.errors if "Failed to load resource" not in e]

    def screenshot(self, name: str) -> None:
        if not SCREENSHOTS:
            return
        folder = DOCS_SCREENSHOTS if SCREENSHOTS == "1" else Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def close(self) -> None:
        if self.authenticator_id:
            self.cdp.send(
                "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.authenticator_id}
            )
        self.context.close()


@pytest.fixture
def open_tab(browser: Any, site: str) -> Iterator[Any]:
    """``open_tab(*init_scripts, authenticator=True)`` -> :class:`Tab`."""
    tabs: list[Tab] = []

    def _open(*init_scripts: str, authenticator: bool = True) -> Tab:
        tab = Tab(browser, site, list(init_scripts))
        if authenticator:
            tab.add_authenticator()
        tabs.append(tab)
        return tab

    yield _open
    for tab in tabs:
        tab.close()


def axe_report(violations: list[dict[str, Any]]) -> str:
    """axe-core's violations as text: rule, impact, help link, and each failing element."""
    lines = [f"{len(violations)} axe-core violation(s):"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact') or 'n/a'}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        for node in violation["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n      ")
            if summary:
                lines.append(f"      {summary}")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core not found at {AXE_JS}: run `npm ci` in the repository root")
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture
def check_accessibility(axe_source: str) -> Any:
    """``check_accessibility(page)``: fail with axe-core's report unless WCAG 2.1 AA is met."""

    def _check(page: Any) -> None:
        # page.evaluate runs over the DevTools protocol, outside the page's CSP: a <script> tag
        # (page.add_script_tag) would be refused by script-src 'self', and the CSP stays on.
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(axe_source)
        results = page.evaluate(
            "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
        )
        if results["violations"]:
            pytest.fail(axe_report(results["violations"]), pytrace=False)

    return _check
