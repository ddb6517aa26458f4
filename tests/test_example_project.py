"""The example project runs, and a passkey can be registered and used on it over real HTTP."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "example_project"


def _load_smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_smoke", EXAMPLE_DIR / "smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules.
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _manage(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        **kwargs,  # type: ignore[call-overload]
    )


def _wait_until_up(url: str, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"runserver exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    pytest.fail("runserver did not answer in time")


@pytest.fixture
def example_server(tmp_path: Path) -> Iterator[str]:
    """The example project under ``runserver`` on a free port with a throw-away database."""
    port = _free_port()
    origin = f"http://localhost:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "EXAMPLE_DB_PATH": str(tmp_path / "example.sqlite3"),
        "EXAMPLE_CACHE_DIR": str(tmp_path / "cache"),
        "EXAMPLE_ORIGIN": origin,
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("DATABASE_URL", None)
    _manage(env, "migrate", "--noinput")
    _manage(env, "create_demo_user")
    check = _manage(env, "check", "--fail-level", "WARNING")
    assert "no issues" in check.stdout
    log = (tmp_path / "runserver.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=EXAMPLE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(
            f"http://127.0.0.1:{port}/static/example/demo.css", server, time.monotonic() + 15
        )
        yield origin
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if runserver hangs
            server.kill()
            server.wait()
        log.close()


def test_demo_registers_and_signs_in_with_a_passkey(example_server: str) -> None:
    steps: list[str] = []
    _load_smoke().run(example_server, log=steps.append)
    assert steps[-1] == "replayed assertion refused: 400 challenge_invalid"
    assert any(step.startswith("registered passkey") for step in steps)


def test_demo_recovers_an_account_with_the_link_printed_on_the_console(
    example_server: str, tmp_path: Path
) -> None:
    """Issue 9: the demo shows recovery end to end; the console e-mail backend prints the link."""
    smoke = _load_smoke()
    prefix = "/auth/passkey/"
    owner = smoke.Browser(example_server)
    owner.get("/accounts/login/")
    signed_in = owner.post_form(
        "/accounts/login/",
        {
            "username": smoke.DEMO_USERNAME,
            "password": smoke.DEMO_PASSWORD,
            "csrfmiddlewaretoken": owner.cookies["csrftoken"],
            "next": "/",
        },
    )
    assert signed_in.status == 302
    generated = owner.post_json(prefix + "recovery-codes/", {})
    assert generated.status == 200, generated.body
    code = generated.json()["codes"][0]

    # Another browser, without passkeys or a session: "Recover account".
    visitor = smoke.Browser(example_server)
    assert visitor.get(prefix + "recover/").status == 200
    sent = visitor.post_json(prefix + "recover/", {"email": smoke.DEMO_EMAIL})
    assert (sent.status, sent.json()) == (200, {"sent": True})
    log = tmp_path / "runserver.log"
    pattern = re.compile(re.escape(example_server) + r"(/auth/passkey/recover/link/[\w-]+)")
    deadline = time.monotonic() + 10
    # Django 6 sends the text part quoted-printable, which folds the long link with a soft line
    # break ("=" at the end of the line); a mail client joins it again, and so does this test.
    while not (match := pattern.search(log.read_text(errors="replace").replace("=\n", ""))):
        assert time.monotonic() < deadline, "no recovery link printed on the console"
        time.sleep(0.1)

    opened = visitor.get(match.group(1))
    assert (opened.status, opened.headers["Location"]) == (303, prefix + "recover/verify")
    assert visitor.post_json(prefix + "recover/open", {}).json() == {"state": "link_opened"}
    verified = visitor.post_json(
        prefix + "recover/verify", {"method": "recovery_code", "code": code}
    )
    assert verified.json() == {"redirect": prefix + "recover/done"}, verified.body
    done = visitor.get(prefix + "recover/done")
    assert done.status == 200 and b"You're back in" in done.body
