"""Full sign-ins against a real server: throughput, the per-IP rate limit, faults under load.

What it starts, all on 127.0.0.1 and all stopped and removed at the end (``services.py``):
a PostgreSQL cluster of its own (``--pg-port``, 5433), a Redis of its own (``--redis-port``,
6380), and gunicorn with ``--workers`` (2) sync workers serving the example project on them
(``server_settings.py``: database sessions, Redis as the cache, so the rate-limit counters are
shared by the workers). The load generator is ``--clients`` processes (8) running full sign-ins:
``login/options``, the software authenticator of ``tests/authenticator.py`` signing, then
``login/verify``, each request on a new connection. Every sign-in comes from a client address of
its own: the clients bind their sockets to 127.x.y.z source addresses (all of 127.0.0.0/8 is
loopback), so the server sees real, distinct ``REMOTE_ADDR`` values and the per-IP limits are
never reached in the throughput phase.

Phases, each bounded in requests and time:

1. **throughput**: ``--signins`` (2 000) sign-ins; sign-ins per second, the p50/p95/p99 of a
   whole sign-in, and every answer that was not a success, by status and reason code.
2. **rate limit**: ``2 x`` the per-IP limit of ``login/options`` from one address at once, spread
   over every client process and so over both workers: exactly the limit succeeds, the rest get
   ``429 rate_limited``, and the window's counter on Redis equals the requests sent.
3. **faults** (unless ``--no-faults``): sign-ins run continuously while Redis is stopped for
   ``--outage`` seconds (5) and started again, then PostgreSQL likewise (stopped, restarted).
   Every answer during a gap must be a JSON error (``503 service_unavailable``), none a ``500``;
   sign-ins must succeed again by themselves once the service is back; afterwards the database
   must hold no consumed challenge without its sign-in and no signed-in session without its
   index entry, and the server's error log no traceback.

    .venv/bin/python benchmarks/throughput.py [--signins 2000] [--json out.json]

Needs gunicorn, ``initdb``/``pg_ctl`` and ``redis-server`` (``pip install -e ".[benchmarks]"``;
Debian's postgresql and redis-server). Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.services import Postgres, Redis, _wait_port  # noqa: E402

LOGIN_OPTIONS = "/auth/passkey/login/options"
LOGIN_VERIFY = "/auth/passkey/login/verify"
#: The one address of the rate-limit phase; the others are 127.<phase>.x.y.
RATE_LIMIT_ADDRESS = "127.0.0.77"


def client_address(phase: int, index: int) -> str:
    """A loopback source address of its own for sign-in ``index`` of a phase."""
    return f"127.{phase + index // 62500}.{(index // 250) % 250 + 1}.{index % 250 + 1}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


# -------------------------------------------------------------------------------------------------
# The load generator (client processes; no Django here)
# -------------------------------------------------------------------------------------------------


def _authenticator(key: dict[str, Any], origin: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    from tests.authenticator import SoftAuthenticator

    return SoftAuthenticator(
        rp_id="localhost",
        origin=origin,
        credential_id=key["credential_id"],
        user_handle=key["user_handle"],
        private_key=load_der_private_key(key["private_key"], None),
    )


def _post(
    port: int, path: str, body: bytes, headers: dict[str, str], address: str
) -> tuple[str, dict[str, Any] | None, SimpleCookie]:
    """POST on a new connection from ``address``; ``(outcome, JSON body, cookies)``."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(address, 0)
    )
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        raw = response.read()
        cookies: SimpleCookie = SimpleCookie()
        for header in response.msg.get_all("Set-Cookie") or []:
            cookies.load(header)
        status = response.status
        content_type = response.getheader("Content-Type", "")
    except OSError as exc:
        return f"connection error ({type(exc).__name__})", None, SimpleCookie()
    finally:
        connection.close()
    try:
        data = json.loads(raw) if content_type.startswith("application/json") else None
    except ValueError:
        data = None
    if status == 200 and data is not None:
        return "200", data, cookies
    if data is None:
        return f"{status} not JSON", None, cookies
    code = data.get("error", {}).get("code", "?") if isinstance(data, dict) else "?"
    return f"{status} {code}", data, cookies


def _headers(port: int, csrf: str, cookies: SimpleCookie | None = None) -> dict[str, str]:
    """A browser's headers; it sends back every cookie the server set (session, binding)."""
    jar = {"csrftoken": csrf, **{k: m.value for k, m in (cookies or {}).items() if m.value}}
    cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
    return {
        "Host": f"localhost:{port}",
        "Origin": f"http://localhost:{port}",
        "Content-Type": "application/json",
        "X-CSRFToken": csrf,
        "Cookie": cookie,
    }


def sign_in(port: int, authenticator: Any, address: str) -> dict[str, Any]:
    """One full sign-in; its start and end times and the outcome of each request."""
    record: dict[str, Any] = {"start": time.time(), "address": address}
    csrf = secrets.token_hex(16)
    outcome, options, cookies = _post(port, LOGIN_OPTIONS, b"{}", _headers(port, csrf), address)
    record["options"] = outcome
    if outcome == "200" and options is not None:
        body = json.dumps(authenticator.get(options)).encode()
        outcome, _, _ = _post(port, LOGIN_VERIFY, body, _headers(port, csrf, cookies), address)
        record["verify"] = outcome
    record["end"] = time.time()
    record["ok"] = record.get("verify") == "200"
    return record


def load_client(
    port: int,
    keys: list[dict[str, Any]],
    phase: int,
    indices: list[int] | None,
    first: int,
    step: int,
    stop_at: float,
    pace: float,
    results: Any,
) -> None:
    """Sign-ins ``indices`` (or ``first``, ``first + step``, … until ``stop_at``)."""
    sys.path.insert(0, str(ROOT))
    origin = f"http://localhost:{port}"
    authenticators = [_authenticator(key, origin) for key in keys]
    records = []
    numbers = indices if indices is not None else itertools.count(first, step)
    for index in numbers:
        if time.time() >= stop_at:
            break
        authenticator = authenticators[index % len(authenticators)]
        records.append(sign_in(port, authenticator, client_address(phase, index)))
        if pace:
            time.sleep(pace)
    results.put(records)


def burst_client(port: int, address: str, count: int, results: Any) -> None:
    """``count`` ``login/options`` requests from ``address``, as fast as they go."""
    outcomes = []
    for _ in range(count):
        csrf = secrets.token_hex(16)
        outcome, _, _ = _post(port, LOGIN_OPTIONS, b"{}", _headers(port, csrf), address)
        outcomes.append(outcome)
    results.put(outcomes)


def run_clients(target: Any, argument_sets: list[tuple[Any, ...]], timeout: float) -> list[Any]:
    """Run one client process per argument set; gather what each puts on the queue."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args, results), daemon=True) for args in argument_sets
    ]
    for process in processes:
        process.start()
    gathered = []
    deadline = time.monotonic() + timeout
    for _ in processes:
        gathered.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
    for process in processes:
        process.join(timeout=10)
    return gathered


# -------------------------------------------------------------------------------------------------
# The harness: servers, data, phases, checks
# -------------------------------------------------------------------------------------------------


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = args.port
        self.postgres = Postgres(args.pg_port)
        self.redis = Redis(args.redis_port)
        self.server: subprocess.Popen[bytes] | None = None
        self.error_log = self.postgres.dir / "gunicorn.log"
        self.keys: list[dict[str, Any]] = []
        self.client_successes = 0

    # -- services ----------------------------------------------------------------------------

    def start(self) -> None:
        self.postgres.create()
        self.redis.create()
        subprocess.run(
            [*self.postgres.as_user, str(self.postgres.bin / "createdb"), "-h", "127.0.0.1",
             "-p", str(self.postgres.port), "-U", "postgres", "bench"],
            check=True,
        )  # fmt: skip
        os.environ.update(self.server_env())
        sys.path.insert(0, str(ROOT / "example_project"))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self.keys = self.create_users(self.args.users)
        self.close_db()
        self.start_server()

    def server_env(self) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": "benchmarks.server_settings",
            "BENCH_DATABASE_URL": f"{self.postgres.url}/bench",
            "BENCH_REDIS_URL": self.redis.url,
            "EXAMPLE_ORIGIN": f"http://localhost:{self.port}",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'example_project'}",
        }

    def start_server(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.server = subprocess.Popen(
            [
                str(gunicorn), "example.wsgi:application",
                "--workers", str(self.args.workers),
                "--bind", f"127.0.0.1:{self.port}",
                "--error-logfile", str(self.error_log),
                "--log-level", "warning",
                "--timeout", "30", "--graceful-timeout", "5",
            ],
            cwd=ROOT / "example_project",
            env={**os.environ, **self.server_env()},
            # Django's own log lines (server errors with their tracebacks) go there too.
            stdout=self.error_log.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.port, up=True, timeout=60)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)  # our gunicorn, by its pid
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=10)
        self.close_db()
        for service in (self.redis, self.postgres):
            try:
                service.destroy()
            except Exception as exc:  # noqa: BLE001 - keep cleaning up
                print(f"cleanup of {type(service).__name__} failed: {exc}", file=sys.stderr)

    @staticmethod
    def close_db() -> None:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()

    # -- data --------------------------------------------------------------------------------

    def create_users(self, count: int) -> list[dict[str, Any]]:
        """Users with one passkey each, bulk-created through the ORM; their private keys."""
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )
        from django.contrib.auth import get_user_model

        from django_passkeys.models import Credential, UserHandle, credential_id_digest
        from tests.authenticator import SoftAuthenticator

        user_model = get_user_model()
        users = user_model.objects.bulk_create(
            [user_model(username=f"load{i}", email=f"load{i}@example.com") for i in range(count)]
        )
        keys, handles, credentials = [], [], []
        for user in users:
            authenticator = SoftAuthenticator(rp_id="localhost")
            handle = secrets.token_bytes(64)
            handles.append(UserHandle(user=user, handle=handle))
            credentials.append(
                Credential(
                    user=user,
                    credential_id=authenticator.credential_id,
                    credential_id_sha256=credential_id_digest(authenticator.credential_id),
                    public_key=authenticator.cose_public_key(),
                    user_handle=handle,
                    backup_eligible=True,
                    backup_state=True,
                    uv_initialized=True,
                    transports=["internal", "hybrid"],
                    name=f"load {user.username}",
                )
            )
            keys.append(
                {
                    "credential_id": authenticator.credential_id,
                    "user_handle": handle,
                    "private_key": authenticator.private_key.private_bytes(
                        Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
                    ),
                }
            )
        UserHandle.objects.bulk_create(handles)
        Credential.objects.bulk_create(credentials)
        return keys

    # -- phases ------------------------------------------------------------------------------

    def load(
        self, phase: int, signins: int | None, seconds: float, pace: float = 0.0
    ) -> list[dict[str, Any]]:
        clients = self.args.clients
        stop_at = time.time() + seconds
        sets = []
        for c in range(clients):
            indices = list(range(c, signins, clients)) if signins is not None else None
            sets.append((self.port, self.keys, phase, indices, c, clients, stop_at, pace))
        records = [r for batch in run_clients(load_client, sets, seconds + 60) for r in batch]
        self.client_successes += sum(1 for r in records if r["ok"])
        return records

    def throughput(self) -> dict[str, Any]:
        self.load(5, 4 * self.args.clients, 60)  # warm-up: imports, connections
        started = time.time()
        records = self.load(10, self.args.signins, self.args.max_seconds)
        elapsed = time.time() - started
        ok = [r["end"] - r["start"] for r in records if r["ok"]]
        failures = Counter(
            r.get("verify") or r["options"] for r in records if not r["ok"]
        ).most_common()
        return {
            "signins": len(records),
            "succeeded": len(ok),
            "seconds": round(elapsed, 2),
            "signins_per_second": round(len(ok) / elapsed, 1),
            "latency_ms": {
                "p50": round(percentile(ok, 0.50) * 1000, 1),
                "p95": round(percentile(ok, 0.95) * 1000, 1),
                "p99": round(percentile(ok, 0.99) * 1000, 1),
            }
            if ok
            else {},
            "errors": dict(failures),
            "rate_limited": sum(n for outcome, n in failures if outcome.startswith("429")),
        }

    def rate_limit(self) -> dict[str, Any]:
        from django.core.cache import cache
        from django_ratelimit import ALL
        from django_ratelimit.core import _get_window, _make_cache_key, _split_rate

        from django_passkeys.ratelimits import limits_for

        rate = str(limits_for("login-options")["ip"])
        limit, period = _split_rate(rate)
        # A burst must fall in one fixed window: wait for the next one if this one ends soon.
        left = _get_window(RATE_LIMIT_ADDRESS, period) - time.time()
        if left < 15:
            time.sleep(left + 1)
        window = _get_window(RATE_LIMIT_ADDRESS, period)
        sent = 2 * limit
        clients = self.args.clients
        shares = [sent // clients + (1 if c < sent % clients else 0) for c in range(clients)]
        sets = [(self.port, RATE_LIMIT_ADDRESS, share) for share in shares]
        outcomes = Counter(o for batch in run_clients(burst_client, sets, 120) for o in batch)
        # The key django-ratelimit counts this window in (``get_usage`` with our group and key).
        key = _make_cache_key("passkeys:login-options:ip", window, rate, RATE_LIMIT_ADDRESS, ALL)
        counter = cache.get(key)
        allowed = outcomes.get("200", 0)
        refused = outcomes.get("429 rate_limited", 0)
        return {
            "rate": rate,
            "workers": self.args.workers,
            "sent": sent,
            "allowed": allowed,
            "refused_429": refused,
            "other": {k: v for k, v in outcomes.items() if k not in ("200", "429 rate_limited")},
            "counter_on_redis": counter,
            "exact": allowed == limit and refused == sent - limit and counter == sent,
        }

    def faults(self) -> dict[str, Any]:
        outage = self.args.outage
        timeline: list[tuple[str, float]] = []
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        total = 6 + outage + 6 + outage + 10
        stop_at = time.time() + total
        processes = [
            context.Process(
                target=load_client,
                args=(self.port, self.keys, 50, None, c, self.args.clients, stop_at, 0.02, results),
                daemon=True,
            )
            for c in range(self.args.clients)
        ]
        for process in processes:
            process.start()
        time.sleep(5)
        timeline.append(("redis down", time.time()))
        self.redis.stop()
        time.sleep(outage)
        self.redis.start()
        timeline.append(("redis up", time.time()))
        time.sleep(6)
        timeline.append(("postgres down", time.time()))
        self.postgres.stop()
        time.sleep(outage)
        self.postgres.start()
        timeline.append(("postgres up", time.time()))
        records = [r for _ in processes for r in results.get(timeout=total + 60)]
        for process in processes:
            process.join(timeout=10)
        self.client_successes += sum(1 for r in records if r["ok"])
        marks = dict(timeline)
        windows = [
            ("before", 0.0, marks["redis down"]),
            ("Redis down", marks["redis down"], marks["redis up"]),
            ("between", marks["redis up"], marks["postgres down"]),
            ("PostgreSQL down", marks["postgres down"], marks["postgres up"]),
            ("after", marks["postgres up"], float("inf")),
        ]
        phases: dict[str, Any] = {}
        for name, begin, end in windows:
            # A request belongs to the window it was sent in.
            outcomes: Counter[str] = Counter()
            for record in records:
                for step in ("options", "verify"):
                    if step in record and begin <= record["start"] < end:
                        outcomes[f"{step} {record[step]}"] += 1
            phases[name] = dict(outcomes.most_common())
        after = sorted(
            (r for r in records if r["start"] >= marks["postgres up"]), key=lambda r: r["start"]
        )
        recovered_at = next((r["start"] for r in after if r["ok"]), None)
        last = after[-20:]
        bad = Counter(
            r[step]
            for r in records
            for step in ("options", "verify")
            if step in r and (r[step].startswith("5") and "service_unavailable" not in r[step]
                              or "not JSON" in r[step] or r[step].startswith("connection"))
        )  # fmt: skip
        return {
            "outage_seconds": outage,
            "requests": phases,
            "non_json_or_500": dict(bad),
            "first_success_after_postgres_up_s": round(recovered_at - marks["postgres up"], 2)
            if recovered_at
            else None,
            "last_20_signins_all_succeeded": bool(last) and all(r["ok"] for r in last),
            "signins_succeeded": sum(1 for r in records if r["ok"]),
        }

    def invariants(self) -> dict[str, Any]:
        """What the database holds after everything: nothing half-written."""
        from django.contrib.auth import SESSION_KEY
        from django.contrib.sessions.models import Session

        from django_passkeys.models import AuthEvent, Challenge, UserSession

        self.close_db()
        consumed = Challenge.objects.filter(
            purpose=Challenge.Purpose.LOGIN, consumed_at__isnull=False
        ).count()
        logins = AuthEvent.objects.filter(event_type=AuthEvent.Type.LOGIN, success=True).count()
        indexed = set(UserSession.objects.values_list("session_key", flat=True))
        signed_in = [s.session_key for s in Session.objects.all() if SESSION_KEY in s.get_decoded()]
        unindexed = [key for key in signed_in if key not in indexed]
        tracebacks = self.error_log.read_text(errors="replace").count("Traceback")
        return {
            "client_signins_succeeded": self.client_successes,
            "login_challenges_consumed": consumed,
            "login_audit_successes": logins,
            "signed_in_sessions": len(signed_in),
            "signed_in_sessions_without_index_entry": len(unindexed),
            "server_tracebacks": tracebacks,
            "consistent": consumed == logins == self.client_successes
            and not unindexed
            and tracebacks == 0,
        }


def report(results: dict[str, Any]) -> str:
    t = results["throughput"]
    lines = [
        f"gunicorn, {results['workers']} sync workers, example project on PostgreSQL "
        f"{results['postgres']} + Redis {results['redis']}, database sessions; "
        f"{results['clients']} client processes, one client address per sign-in.",
        f"Machine: {results['machine']} (shared: clients, server and databases on it).",
        "",
        f"Throughput: {t['succeeded']}/{t['signins']} sign-ins in {t['seconds']} s = "
        f"{t['signins_per_second']} sign-ins/s; sign-in latency p50 {t['latency_ms'].get('p50')} "
        f"ms, p95 {t['latency_ms'].get('p95')} ms, p99 {t['latency_ms'].get('p99')} ms; "
        f"errors {t['errors'] or 'none'} (rate limited: {t['rate_limited']}).",
    ]
    r = results["rate_limit"]
    lines.append(
        f"Per-IP rate limit ({r['rate']} on login/options), {r['sent']} requests from one "
        f"address over {r['workers']} workers: {r['allowed']} allowed, {r['refused_429']} "
        f"refused 429, other {r['other'] or 'none'}; counter on Redis {r['counter_on_redis']}: "
        f"{'exact' if r['exact'] else 'NOT EXACT'}."
    )
    if "faults" in results:
        f = results["faults"]
        lines.append(f"Faults ({f['outage_seconds']} s outages), requests by when they were sent:")
        for phase, outcomes in f["requests"].items():
            lines.append(f"  {phase:<16} {outcomes}")
        lines.append(
            f"  500s or non-JSON answers: {f['non_json_or_500'] or 'none'}; first sign-in after "
            f"PostgreSQL is back: +{f['first_success_after_postgres_up_s']} s; last 20 sign-ins "
            f"all succeeded: {f['last_20_signins_all_succeeded']}."
        )
    i = results["invariants"]
    lines.append(
        f"Database afterwards: {i['client_signins_succeeded']} sign-ins the clients saw succeed, "
        f"{i['login_challenges_consumed']} login challenges consumed, "
        f"{i['login_audit_successes']} successful login events; {i['signed_in_sessions']} "
        f"signed-in sessions, {i['signed_in_sessions_without_index_entry']} without an index "
        f"entry; {i['server_tracebacks']} tracebacks in the server log: "
        f"{'consistent' if i['consistent'] else 'INCONSISTENT'}."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signins", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=300, help="bound of the phase")
    parser.add_argument("--clients", type=int, default=8, help="load generator processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--users", type=int, default=200, help="users, one passkey each")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--redis-port", type=int, default=6380)
    parser.add_argument("--outage", type=float, default=5, help="seconds each service is down")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from benchmarks.ceremonies import machine

    harness = Harness(args)
    try:
        harness.start()
        from django.db import connection

        results: dict[str, Any] = {
            "workers": args.workers,
            "clients": args.clients,
            "machine": machine(),
            "postgres": "{}.{}".format(
                *divmod(connection.cursor().connection.info.server_version, 10000)
            ),
            "redis": subprocess.run(
                ["redis-server", "--version"], capture_output=True, text=True
            ).stdout.split()[2],
        }
        harness.close_db()
        results["throughput"] = harness.throughput()
        results["rate_limit"] = harness.rate_limit()
        if not args.no_faults:
            results["faults"] = harness.faults()
        results["invariants"] = harness.invariants()
    finally:
        harness.stop()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    faults = results.get("faults", {})
    passed = (
        results["rate_limit"]["exact"]
        and results["invariants"]["consistent"]
        and not faults.get("non_json_or_500")
        and faults.get("last_20_signins_all_succeeded", True)
        and not any(k.startswith(("5", "connection")) for k in results["throughput"]["errors"])
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
