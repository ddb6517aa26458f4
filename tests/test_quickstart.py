"""docs/quickstart.rst, followed as written on a brand-new project (issue 10).

The steps are read from the page's code blocks, so the docs cannot drift from what works: a
``shell`` block's commands are run, a block captioned ``<file> (add at the end)`` is appended to
that file, one captioned ``<file> (new file)`` creates it (from ``literalinclude`` too). The
package is the wheel built from this checkout, installed with ``pip install --target`` (its
dependencies come from the test environment). Three liberties, each noted where taken: a free
port instead of 8000, ``createsuperuser`` without prompts, and ``check`` failing on warnings
too. Then, over HTTP with the software authenticator: password sign-in, a passkey registered,
sign-out, and sign-in with the passkey. Takes about half a minute.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .test_example_project import _free_port, _load_smoke

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "docs" / "quickstart.rst"
DIRECTIVE = re.compile(r"^\.\. (code-block|literalinclude):: *(\S*)\n((?:   :\w+:.*\n)*)\n?", re.M)
USERNAME, PASSWORD = "alice", "a-quickstart-password-2026"


@dataclass
class Step:
    """One code block of the page: shell commands, or a file to create or append to."""

    caption: str
    text: str

    @property
    def commands(self) -> list[list[str]]:
        return [shlex.split(line) for line in self.text.splitlines() if line.strip()]


def quickstart_steps() -> list[Step]:
    """Every code block of docs/quickstart.rst that has a caption, in order."""
    source = QUICKSTART.read_text()
    steps = []
    for match in DIRECTIVE.finditer(source):
        kind, argument, options = match.groups()
        caption = re.search(r":caption: (.*)", options)
        if caption is None:
            continue
        if kind == "literalinclude":
            text = (QUICKSTART.parent / argument).read_text()
        else:  # the indented body that follows the options
            body = re.match(r"((?:   .*\n|\n)+)", source[match.end() :])
            assert body, f"empty code block: {caption.group(1)}"
            text = "\n".join(line[3:] for line in body.group(1).splitlines()).strip() + "\n"
        steps.append(Step(caption.group(1).strip(), text))
    return steps


def test_the_quickstart_has_the_steps_the_test_follows():
    captions = [step.caption for step in quickstart_steps()]
    assert captions == [
        "shell",
        "mysite/settings.py (add at the end)",
        "mysite/urls.py (add at the end)",
        "templates/registration/login.html (new file)",
        "shell",
    ]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{shlex.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def build_and_install_wheel(tmp_path: Path) -> Path:
    """The package as users get it: a wheel of this checkout, installed into a folder.

    Built from a copy, so that the build leaves nothing in the checkout.
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "django_passkeys",
        source / "django_passkeys",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], tmp_path, dict(os.environ))
    (wheel,) = wheels.glob("dj_passkeys-*.whl")
    _run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        tmp_path,
        dict(os.environ),
    )
    return target


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"runserver exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"runserver did not answer in time:\n{log.read_text()}")


@pytest.fixture
def quickstart_site(tmp_path: Path) -> Iterator[str]:
    """A project made by following docs/quickstart.rst, served by ``runserver``; its origin."""
    port = str(_free_port())
    # Liberty 1: a free port, wherever the page says 8000.
    localize = lambda text: text.replace("localhost:8000", f"localhost:{port}")  # noqa: E731
    site_packages = build_and_install_wheel(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(site_packages),
        "PYTHONWARNINGS": "ignore",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    cwd = tmp_path / "work"
    cwd.mkdir()
    server = None
    log_path = tmp_path / "runserver.log"
    log = log_path.open("wb")
    try:
        for step in quickstart_steps():
            if step.caption != "shell":
                path, action = re.fullmatch(
                    r"(\S+) \((add at the end|new file)\)", step.caption
                ).groups()
                target = cwd / path
                if action == "new file":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    assert not target.exists(), f"{path} exists already"
                    target.write_text(localize(step.text))
                else:
                    assert target.exists(), f"{path} does not exist to add to"
                    target.write_text(target.read_text() + "\n\n" + localize(step.text))
                continue
            for command in step.commands:
                command = [localize(arg) for arg in command]
                if command == ["python", "-m", "pip", "install", "dj-passkeys"]:
                    # The wheel of this checkout, installed above.
                    where = _run(
                        [
                            sys.executable,
                            "-c",
                            "import django_passkeys; print(django_passkeys.__file__)",
                        ],
                        cwd,
                        env,
                    ).stdout
                    assert where.startswith(str(site_packages)), where
                elif command[0] == "cd":
                    cwd = cwd / command[1]
                elif command[:2] == ["django-admin", "startproject"]:
                    _run([sys.executable, "-m", "django", *command[1:]], cwd, env)
                elif command[:2] == ["python", "manage.py"] and command[2] == "runserver":
                    server = subprocess.Popen(
                        [sys.executable, "manage.py", *command[2:], "--noreload"],
                        cwd=cwd,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                    _wait_until_up(f"http://localhost:{port}/accounts/login/", server, log_path)
                elif command[:2] == ["python", "manage.py"]:
                    extra = {
                        # Liberty 2: no prompts.
                        "createsuperuser": [
                            "--noinput",
                            "--username",
                            USERNAME,
                            "--email",
                            "alice@example.com",
                        ],
                        # Liberty 3: warnings fail too.
                        "check": ["--fail-level", "WARNING"],
                    }.get(command[2], [])
                    _run([sys.executable, *command[1:], *extra], cwd, env)
                else:
                    pytest.fail(f"the test does not know how to follow {shlex.join(command)!r}")
        assert server is not None, "the quickstart never starts the server"
        yield f"http://localhost:{port}"
        log.flush()
        assert "Traceback" not in log_path.read_text(), log_path.read_text()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - only if runserver hangs
                server.kill()
                server.wait()
        log.close()


def _form_action(html: str, button: str) -> str:
    """The ``action`` of the POST form whose submit button says ``button``."""
    for form in re.findall(r"<form method=\"post\" action=\"([^\"]+)\">(.*?)</form>", html, re.S):
        if button in form[1]:
            return form[0]
    raise AssertionError(f"no form with a {button!r} button")


def test_the_quickstart_signs_in_with_a_passkey(quickstart_site: str) -> None:
    from tests.authenticator import SoftAuthenticator

    smoke = _load_smoke()
    browser = smoke.Browser(quickstart_site)
    authenticator = SoftAuthenticator(rp_id="localhost", origin=quickstart_site)
    manage = "/auth/passkey/manage/"

    # Signed out, the management page sends the visitor to a sign-in page that exists.
    response = browser.get(manage)
    assert response.status == 302
    login = response.headers["Location"]
    assert login == f"/accounts/login/?next={manage}"
    page = smoke.expect(browser.get(login), 200, "sign-in page").body.decode()
    assert 'autocomplete="username webauthn"' in page and "data-pk-login" in page
    assert '"next": "/auth/passkey/manage/"' in page
    smoke.expect(browser.get("/static/django_passkeys/passkeys.js"), 200, "passkeys.js")

    signed_in = browser.post_form(
        login,
        {
            "username": USERNAME,
            "password": PASSWORD,
            "next": manage,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
    )
    assert (signed_in.status, signed_in.headers["Location"]) == (302, manage)
    page = smoke.expect(browser.get(manage), 200, "management page").body.decode()
    assert f"Signed in as <strong>{USERNAME}</strong>" in page

    options = smoke.expect(browser.post_json("/auth/passkey/register/options", {}), 200, "options")
    created = browser.post_json(
        "/auth/passkey/register/verify", authenticator.create(options.json())
    )
    smoke.expect(created, 201, "register/verify")

    signed_out = browser.post_form(
        _form_action(page, "Sign out"), {"csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    )
    assert (signed_out.status, signed_out.headers["Location"]) == (303, "/accounts/login/")
    assert "sessionid" not in browser.cookies

    visitor = smoke.Browser(quickstart_site)
    smoke.expect(visitor.get("/accounts/login/"), 200, "sign-in page, signed out")
    options = smoke.expect(visitor.post_json("/auth/passkey/login/options", {}), 200, "options")
    verified = visitor.post_json("/auth/passkey/login/verify", authenticator.get(options.json()))
    redirect = smoke.expect(verified, 200, "login/verify").json()["redirect"]
    assert redirect == "/auth/passkey/security/"
    landing = smoke.expect(visitor.get(redirect), 200, "landing page").body.decode()
    assert f"Signed in as <strong>{USERNAME}</strong>" in landing
