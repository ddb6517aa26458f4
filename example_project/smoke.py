"""Drive the running example project over HTTP: password sign-in, passkey registration,
sign-out, passkey sign-in.

Usage: ``python example_project/smoke.py [http://localhost:8000]`` (the server must be running,
with the demo account created). Exits non-zero on the first failure.

The passkey is made by the test suite's software authenticator, so the requests are exactly
what a browser's ``credential.toJSON()`` would send, with the session and CSRF cookies a
browser keeps.
"""

from __future__ import annotations

import http.client
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.authenticator import SoftAuthenticator  # noqa: E402

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-passkeys-2026"
DEMO_EMAIL = "demo@example.com"


class SmokeFailure(AssertionError):
    """A step of the flow did not answer as the HTTP contract says."""


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Browser:
    """Just enough of a browser: one origin, a cookie jar, the Origin header on POSTs."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(
            parts.hostname or "localhost", parts.port or 80, timeout=self.timeout
        )
        all_headers = {"Host": parts.netloc, "User-Agent": "django_passkeys smoke test"}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            all_headers["Origin"] = self.origin
        all_headers.update(headers or {})
        try:
            connection.request(method, path, body=body, headers=all_headers)
            raw = connection.getresponse()
            response = Response(raw.status, raw.headers, raw.read())
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or not value or value == '""':
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return response

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_form(self, path: str, fields: dict[str, str]) -> Response:
        return self.request(
            "POST",
            path,
            urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )

    def post_json(self, path: str, data: Any) -> Response:
        return self.request(
            "POST",
            path,
            json.dumps(data).encode(),
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-CSRFToken": self.cookies.get("csrftoken", ""),
            },
        )


def expect(response: Response, status: int, step: str) -> Response:
    if response.status != status:
        raise SmokeFailure(
            f"{step}: expected HTTP {status}, got {response.status}: {response.body[:300]!r}"
        )
    return response


def run(base_url: str, *, log: Any = print) -> None:
    """The whole flow against ``base_url``; raises :class:`SmokeFailure` on the first failure."""
    prefix = "/auth/passkey/"
    browser = Browser(base_url.rstrip("/"))
    authenticator = SoftAuthenticator(rp_id="localhost", origin=browser.origin)

    home = expect(browser.get("/"), 200, "home page")
    if b'id="passkeys-demo"' not in home.body or b"example/demo.js" not in home.body:
        raise SmokeFailure("home page: the demo markup or its script is missing")
    expect(browser.get("/static/example/demo.js"), 200, "demo script")
    log("home page and demo.js: 200")

    expect(browser.get("/accounts/login/"), 200, "password sign-in page")
    signed_in = browser.post_form(
        "/accounts/login/",
        {
            "username": DEMO_USERNAME,
            "password": DEMO_PASSWORD,
            "csrfmiddlewaretoken": browser.cookies.get("csrftoken", ""),
            "next": "/",
        },
    )
    expect(signed_in, 302, "password sign-in (run create_demo_user first)")
    log("password sign-in as demo: 302")

    options = expect(
        browser.post_json(prefix + "register/options", {}), 200, "register/options"
    ).json()
    if options["rp"]["id"] != "localhost" or not options["challenge"]:
        raise SmokeFailure(f"register/options: unexpected options {options!r}")
    created = expect(
        browser.post_json(
            prefix + "register/verify", {**authenticator.create(options), "name": "Smoke test"}
        ),
        201,
        "register/verify",
    ).json()
    if set(created) != {"id", "name", "created_at"}:
        raise SmokeFailure(f"register/verify: unexpected body {created!r}")
    log(f"registered passkey {created['name']!r}: 201")

    expect(
        browser.post_form(
            "/accounts/logout/", {"csrfmiddlewaretoken": browser.cookies.get("csrftoken", "")}
        ),
        302,
        "sign out",
    )
    if "sessionid" in browser.cookies:
        raise SmokeFailure("sign out: the session cookie is still set")
    log("signed out: 302")

    # A fresh visitor: only the cookies the page itself sets.
    visitor = Browser(browser.base_url)
    expect(visitor.get("/"), 200, "home page, signed out")
    options = expect(visitor.post_json(prefix + "login/options", {}), 200, "login/options").json()
    if options.get("allowCredentials") != [] or options.get("rpId") != "localhost":
        raise SmokeFailure(f"login/options: unexpected options {options!r}")
    verified = expect(
        visitor.post_json(prefix + "login/verify", authenticator.get(options)),
        200,
        "login/verify",
    ).json()
    redirect = verified.get("redirect")
    if not isinstance(redirect, str) or "sessionid" not in visitor.cookies:
        raise SmokeFailure(f"login/verify: no redirect or no session cookie: {verified!r}")
    log(f"passkey sign-in: 200, redirect {redirect!r}")

    landing = expect(visitor.get(urlsplit(urljoin(visitor.origin, redirect)).path), 200, "landing")
    if f"Signed in as <strong>{DEMO_USERNAME}</strong>".encode() not in landing.body:
        raise SmokeFailure("landing page does not show the demo user signed in")
    log("landing page shows the demo user signed in")

    # The same assertion again is a replay: the consumed challenge must refuse it.
    replay = visitor.post_json(prefix + "login/verify", authenticator.get(options))
    expect(replay, 400, "replayed login/verify")
    code = replay.json()["error"]["code"]
    if code != "challenge_invalid":
        raise SmokeFailure(f"replay: expected challenge_invalid, got {code}")
    log("replayed assertion refused: 400 challenge_invalid")


def main(argv: list[str]) -> int:
    base_url = argv[1] if len(argv) > 1 else "http://localhost:8000"
    try:
        run(base_url)
    except (SmokeFailure, OSError, KeyError, ValueError) as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    print(f"OK {base_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
