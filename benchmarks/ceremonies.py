"""Sign-ins side by side: this app, the floor and django-otp-webauthn, through their endpoints.

Each app runs in a worker process of its own (``benchmarks/settings.py``), configured as its
documentation asks, with the test suite's database and cache: SQLite in memory and the
local-memory cache, or ``DATABASE_URL`` and ``REDIS_URL``. A sign-in is what a browser does:
request options, let the software authenticator of ``tests/authenticator.py`` sign them, send
the assertion; each request goes through Django's test client and the app's real URLs, once with
database sessions and once with cache sessions.

- **floor**: py_webauthn behind two bare views (``benchmarks/floor``): the least any passkey
  sign-in costs in Django.
- **passkeys**: this app.
- **otp_webauthn**: django-otp-webauthn, when installed (``pip install -e ".[benchmarks]"``).

Per endpoint it prints the SQL statements of one request (counted on separate sign-ins, so that
counting costs nothing in the timed ones), and the median and 95th percentile of the CPU time
(``time.process_time()`` of the serving process, which is single-threaded) and the wall time of
each request. The rounds are interleaved: every configuration runs once per round, in a rotated
order, so that whatever else the machine does falls on all of them alike. Compare CPU times and
ratios; wall times include waiting for a shared machine.

    .venv/bin/python benchmarks/ceremonies.py               # 300 sign-ins, 3 rounds
    .venv/bin/python benchmarks/ceremonies.py --quick       # CI: keeps the script working
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import importlib.util
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from http.cookies import SimpleCookie
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://testserver"

APPS = ("floor", "passkeys", "otp_webauthn")
ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cache": "django.contrib.sessions.backends.cache",
}
LABELS = {
    "floor": "floor: py_webauthn + 2 bare views",
    "passkeys": "django_passkeys",
    "otp_webauthn": "django-otp-webauthn",
}


def otp_webauthn_version() -> str | None:
    """The installed django-otp-webauthn's version, or ``None``."""
    if importlib.util.find_spec("django_otp_webauthn") is None:
        return None
    from importlib.metadata import version

    return version("django-otp-webauthn")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[index]


# -------------------------------------------------------------------------------------------------
# Worker side: one app, its own process and test database
# -------------------------------------------------------------------------------------------------


class JsonClient:
    """Django's test client speaking JSON over HTTPS with the CSRF header, as the JS shims do."""

    def __init__(self) -> None:
        from django.test import Client

        self.client = Client(enforce_csrf_checks=True, HTTP_ORIGIN=ORIGIN)
        self.token = ""
        #: The client's address (``REMOTE_ADDR``), new for each sign-in.
        self.address = "127.0.0.2"
        self.fresh()

    def fresh(self) -> None:
        """A new browser: no session cookie, a new CSRF cookie."""
        from django.middleware.csrf import _get_new_csrf_string

        self.client.cookies = SimpleCookie()
        self.token = _get_new_csrf_string()
        self.client.cookies["csrftoken"] = self.token

    def post(self, path: str, data: Any, address: str) -> Any:
        body = json.dumps(data).encode()
        return self.client.generic(
            "POST",
            path,
            body,
            content_type="application/json",
            secure=True,
            HTTP_X_CSRFTOKEN=self.token,
            REMOTE_ADDR=address,
        )


class Driver:
    """Drives one app's endpoints: setup (users and their passkeys), then sign-ins."""

    login_options = ""
    login_verify = ""

    def __init__(self, users: int) -> None:
        from tests.authenticator import SoftAuthenticator

        self.users = users
        self.authenticators = [SoftAuthenticator() for _ in range(users)]
        self.samples: dict[str, dict[str, list[float]]] = {}
        self._addresses = self._address_iter()

    @staticmethod
    def _address_iter() -> Iterator[str]:
        # One client address per sign-in: the apps' per-IP rate limits stay out of the way
        # and are still paid for, as a site with many visitors pays for them.
        n = 1 << 16
        while True:
            n += 1
            yield f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"

    def address(self) -> str:
        return next(self._addresses)

    def record(self, name: str, kind: str, value: float) -> None:
        self.samples.setdefault(name, {}).setdefault(kind, []).append(value)

    def request(
        self, api: JsonClient, name: str, path: str, data: Any, expect: int, *, count: bool
    ) -> Any:
        """One measured request: statements when ``count``, else CPU and wall time."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        address = self.address() if name.endswith("options") else api.address
        api.address = address
        if count:
            with CaptureQueriesContext(connection) as captured:
                response = api.post(path, data, address)
            self.record(name, "statements", len(captured))
        else:
            wall, cpu = time.perf_counter(), time.process_time()
            response = api.post(path, data, address)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            self.record(name, "cpu_ms", cpu * 1000)
            self.record(name, "wall_ms", wall * 1000)
        assert response.status_code == expect, (name, response.status_code, response.content)
        return response.json()

    def setup(self) -> None:
        """Create the users and register one passkey each."""
        raise NotImplementedError

    def sign_in(self, api: JsonClient, index: int, *, count: bool) -> None:
        """One sign-in: options, the authenticator's assertion, verify."""
        api.fresh()
        authenticator = self.authenticators[index % self.users]
        options = self.request(api, "login/options", self.login_options, {}, 200, count=count)
        assertion = authenticator.get(options)
        self.request(api, "login/verify", self.login_verify, assertion, 200, count=count)

    def warm_up(self) -> None:
        """One sign-in per user before anything is measured, recorded nowhere.

        Every configuration, in every round, then measures the same thing: the sign-in of a
        returning user. (A passkey's first use in the hour writes its row once more in
        django_passkeys: ``tests/test_query_budgets.py`` counts that case.)
        """
        kept, self.samples = self.samples, {}
        api = JsonClient()
        api.address = self.address()
        for i in range(self.users):
            self.sign_in(api, i, count=False)
        self.samples = kept

    def run(self, engine: str, signins: int, counted: int) -> dict[str, dict[str, list[float]]]:
        """``counted`` sign-ins counting statements (a warm-up, too), then ``signins`` timed."""
        from django.test.utils import override_settings

        self.samples = {}
        with override_settings(SESSION_ENGINE=ENGINES[engine]):
            api = JsonClient()
            api.address = self.address()
            for i in range(counted):
                self.sign_in(api, i, count=True)
            gc.collect()
            for i in range(signins):
                self.sign_in(api, i, count=False)
        return self.samples

    def create_users(self) -> list[Any]:
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        return [
            user_model.objects.create(username=f"bench{i}", email=f"bench{i}@example.com")
            for i in range(self.users)
        ]


class FloorDriver(Driver):
    login_options = "/floor/login/options"
    login_verify = "/floor/login/verify"

    def setup(self) -> None:
        from benchmarks.floor.models import FloorCredential

        for user, authenticator in zip(self.create_users(), self.authenticators, strict=True):
            FloorCredential.objects.create(
                user=user,
                credential_id=authenticator.credential_id,
                public_key=authenticator.cose_public_key(),
            )


class RegisteringDriver(Driver):
    """An app with registration endpoints: each user registers through them, measured."""

    register_options = ""
    register_verify = ""
    register_status = 201

    def setup(self) -> None:
        api = JsonClient()
        for i, (user, authenticator) in enumerate(
            zip(self.create_users(), self.authenticators, strict=True)
        ):
            api.fresh()
            self.sign_in_with_password(api, user)
            api.address = self.address()
            # The first registration counts statements, the others are timed.
            options = self.request(
                api, "register/options", self.register_options, {}, 200, count=i == 0
            )
            self.request(
                api,
                "register/verify",
                self.register_verify,
                authenticator.create(options),
                self.register_status,
                count=i == 0,
            )

    def sign_in_with_password(self, api: JsonClient, user: Any) -> None:
        api.client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        api.client.cookies["csrftoken"] = api.token


class PasskeysDriver(RegisteringDriver):
    login_options = "/auth/passkey/login/options"
    login_verify = "/auth/passkey/login/verify"
    register_options = "/auth/passkey/register/options"
    register_verify = "/auth/passkey/register/verify"

    def sign_in_with_password(self, api: JsonClient, user: Any) -> None:
        from django_passkeys.sessions import AUTH_TIME_KEY

        super().sign_in_with_password(api, user)
        # register/options asks for a recent sign-in, which login() stamps.
        session = api.client.session
        session[AUTH_TIME_KEY] = int(time.time())
        session.save()

    def peak_memory_kib(self) -> float:
        """Peak Python memory of one sign-in (options and verify), in KiB."""
        api = JsonClient()
        api.address = self.address()
        self.sign_in(api, 0, count=True)  # warm
        tracemalloc.start()
        try:
            self.sign_in(api, 0, count=True)
            return round(tracemalloc.get_traced_memory()[1] / 1024, 1)
        finally:
            tracemalloc.stop()


class OtpWebauthnDriver(RegisteringDriver):
    login_options = "/webauthn/authentication/begin/"
    login_verify = "/webauthn/authentication/complete/"
    register_options = "/webauthn/registration/begin/"
    register_verify = "/webauthn/registration/complete/"
    register_status = 200


DRIVERS: dict[str, type[Driver]] = {
    "floor": FloorDriver,
    "passkeys": PasskeysDriver,
    "otp_webauthn": OtpWebauthnDriver,
}


def worker(app: str, users: int, conn: Connection) -> None:
    """Serve one app: set it up, then run the batches the coordinator sends, until "stop"."""
    sys.path.insert(0, str(ROOT))
    os.environ["BENCH_APP"] = app
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.db import connection
    from django.test.runner import DiscoverRunner
    from django.test.utils import setup_test_environment

    setup_test_environment()
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old = None
    try:
        old = runner.setup_databases()
        driver = DRIVERS[app](users)
        driver.setup()
        setup: dict[str, Any] = {"samples": driver.samples, "vendor": connection.vendor}
        driver.warm_up()
        if isinstance(driver, PasskeysDriver):
            setup["peak_memory_kib_per_sign_in"] = driver.peak_memory_kib()
        conn.send(setup)
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            _, engine, signins, counted = message
            conn.send(driver.run(engine, signins, counted))
    except Exception:
        conn.send({"error": f"{app}: {traceback.format_exc()}"})
    finally:
        if old is not None:
            runner.teardown_databases(old)
        conn.close()


# -------------------------------------------------------------------------------------------------
# Coordinator: interleaved rounds, then the report
# -------------------------------------------------------------------------------------------------


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if samples.get("statements"):
        statements = samples["statements"]
        out["statements"] = int(statistics.median(statements))
        out["statements_max"] = int(max(statements))
    for kind in ("cpu_ms", "wall_ms"):
        values = samples.get(kind)
        if values:
            out[kind] = {
                "median": round(statistics.median(values), 2),
                "p95": round(percentile(values, 0.95), 2),
                "n": len(values),
            }
    return out


def receive(conn: Connection) -> Any:
    """The worker's answer; its traceback if it failed."""
    answer = conn.recv()
    if isinstance(answer, dict) and "error" in answer:
        raise SystemExit(f"benchmark worker failed:\n{answer['error']}")
    return answer


def run(apps: list[str], signins: int, rounds: int, users: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    workers: dict[str, tuple[Any, Connection]] = {}
    setups: dict[str, Any] = {}
    for app in apps:
        parent, child = context.Pipe()
        process = context.Process(target=worker, args=(app, users, child), daemon=True)
        process.start()
        child.close()
        workers[app] = (process, parent)
    try:
        for app, (_, conn) in workers.items():
            setups[app] = receive(conn)
        configs = [(app, engine) for engine in ENGINES for app in apps]
        per_round = max(1, signins // rounds)
        counted = 3 if signins < 100 else 5
        merged: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = {}
        for round_ in range(rounds):
            shift = round_ % len(configs)
            for app, engine in configs[shift:] + configs[:shift]:
                conn = workers[app][1]
                conn.send(("run", engine, per_round, counted))
                for endpoint, kinds in receive(conn).items():
                    target = merged.setdefault((app, engine), {}).setdefault(endpoint, {})
                    for kind, values in kinds.items():
                        target.setdefault(kind, []).extend(values)
    finally:
        for _process, conn in workers.values():
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for process, _ in workers.values():
            process.join(timeout=120)

    vendor = next(iter(setups.values()))["vendor"]
    results: dict[str, Any] = {
        "database": vendor,
        "cache": "redis" if os.environ.get("REDIS_URL") else "locmem",
        "signins_per_configuration": per_round * rounds,
        "rounds": rounds,
        "machine": machine(),
        "versions": versions(),
        "sign_in": {
            app: {
                engine: {
                    endpoint: summarize(kinds)
                    for endpoint, kinds in merged.get((app, engine), {}).items()
                }
                for engine in ENGINES
            }
            for app in apps
        },
        "registration_db_sessions": {
            app: {endpoint: summarize(kinds) for endpoint, kinds in setup["samples"].items()}
            for app, setup in setups.items()
            if setup["samples"]
        },
    }
    if "passkeys" in setups:
        results["peak_memory_kib_per_sign_in"] = setups["passkeys"]["peak_memory_kib_per_sign_in"]
    shim = ROOT / "django_passkeys" / "static" / "django_passkeys" / "passkeys.js"
    results["js_shim_gzip_bytes"] = len(gzip.compress(shim.read_bytes(), 9))
    results["ratios"] = ratios(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """login/verify of this app as multiples of the floor and of django-otp-webauthn."""
    out: dict[str, Any] = {}
    sign_in = results["sign_in"]
    ours = sign_in.get("passkeys")
    if not ours:
        return out
    for other in ("floor", "otp_webauthn"):
        if other not in sign_in:
            continue
        for engine in ENGINES:
            mine = ours[engine].get("login/verify", {})
            theirs = sign_in[other][engine].get("login/verify", {})
            if not mine.get("cpu_ms") or not theirs.get("cpu_ms"):
                continue
            out[f"login/verify vs {other}, {engine} sessions"] = {
                "cpu_median": round(mine["cpu_ms"]["median"] / theirs["cpu_ms"]["median"], 2),
                "statements": f"{mine['statements']} vs {theirs['statements']}",
            }
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for name in ("django", "webauthn", "django-otp-webauthn"):
        try:
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed
            continue
    return out


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Sign-ins through each app's endpoints: {results['signins_per_configuration']} per "
        f"configuration in {results['rounds']} interleaved rounds; database "
        f"{results['database']}, cache {results['cache']}.",
        f"Machine: {results['machine']}; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "CPU: time.process_time() of the serving process per request (single-threaded, so it",
        "excludes other processes); wall: elapsed time, shared with whatever else the machine",
        "runs. Compare CPU and ratios. Statements: SQL of one request (BEGIN/COMMIT counted);",
        "each user signed in once before, so every run measures a returning user's sign-in.",
        "",
    ]
    header = (
        f"{'endpoint':<18}{'app':<36}{'sessions':<9}{'stmts':>6}"
        f"{'CPU ms med':>12}{'p95':>8}{'wall ms med':>13}{'p95':>8}"
    )
    for endpoint in ("login/options", "login/verify"):
        lines.append(header)
        for engine in ENGINES:
            for app, engines in results["sign_in"].items():
                row = engines[engine].get(endpoint)
                if not row:
                    continue
                lines.append(
                    f"{endpoint:<18}{LABELS[app]:<36}{engine:<9}{row['statements']:>6}"
                    f"{row['cpu_ms']['median']:>12.2f}{row['cpu_ms']['p95']:>8.2f}"
                    f"{row['wall_ms']['median']:>13.2f}{row['wall_ms']['p95']:>8.2f}"
                )
        lines.append("")
    if results["registration_db_sessions"]:
        lines.append("Registration (database sessions, one passkey per user):")
        lines.append(header)
        for app, endpoints in results["registration_db_sessions"].items():
            for endpoint, row in endpoints.items():
                cpu, wall = row.get("cpu_ms"), row.get("wall_ms")
                if not cpu or not wall:
                    continue
                lines.append(
                    f"{endpoint:<18}{LABELS[app]:<36}{'db':<9}{row['statements']:>6}"
                    f"{cpu['median']:>12.2f}{cpu['p95']:>8.2f}"
                    f"{wall['median']:>13.2f}{wall['p95']:>8.2f}"
                )
        lines.append("")
    for name, ratio in results["ratios"].items():
        lines.append(
            f"django_passkeys {name}: CPU x{ratio['cpu_median']}, statements {ratio['statements']}"
        )
    if "peak_memory_kib_per_sign_in" in results:
        lines.append(
            f"Peak Python memory of one django_passkeys sign-in: "
            f"{results['peak_memory_kib_per_sign_in']} KiB; "
            f"JS shim gzipped: {results['js_shim_gzip_bytes']} bytes."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signins", type=int, default=300, help="per configuration (300)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--users", type=int, default=10, help="users, one passkey each (10)")
    parser.add_argument("--apps", nargs="+", choices=APPS, help="default: every installed one")
    parser.add_argument("--quick", action="store_true", help="30 sign-ins, 1 round (CI)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.signins, args.rounds, args.users = 30, 1, 3
    apps = args.apps or [app for app in APPS if app != "otp_webauthn" or otp_webauthn_version()]
    if "otp_webauthn" in apps and not otp_webauthn_version():
        parser.error('django-otp-webauthn is not installed: pip install -e ".[benchmarks]"')
    started = time.perf_counter()
    results = run(apps, args.signins, args.rounds, args.users)
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(report(results))
    if not otp_webauthn_version():
        print('(django-otp-webauthn not installed: pip install -e ".[benchmarks]" to compare)')
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"({results['seconds']} s)")


if __name__ == "__main__":
    main()
