"""Scale: login/verify with 1 000 and with 1 000 000 credentials, and a user with 50 passkeys.

Two worker processes, each with a test database of its own on a PostgreSQL cluster that this
script starts for itself (``services.py``, port ``--pg-port``, 5433) and removes at the end.
Each registers ``--users`` (10) users through the endpoints, then bulk-loads credentials through
the ORM up to its total (1 000, and ``--large``, 1 000 000: ten per filler user) and runs
``ANALYZE``. The sign-ins then alternate between the two databases in ``--rounds`` (4) rounds
of ``--signins`` (100), as in ``ceremonies.py``. The figure is the ratio of the medians of
login/verify's wall time (the database's work is not in the app's CPU time); the target is
≤ 1.1. The large database also holds a user with 50 passkeys, whose ``register/options``
(``excludeCredentials`` lists them all) is measured against a user with one.

    .venv/bin/python benchmarks/scale.py [--large 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ceremonies import machine, percentile, receive  # noqa: E402
from benchmarks.services import Postgres  # noqa: E402

BATCH = 5000


def bulk_load(total: int) -> float:
    """Bulk-create credentials (ten per new user) until the table holds ``total``; seconds."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from django_passkeys.models import Credential, credential_id_digest

    started = time.perf_counter()
    user_model = get_user_model()
    missing = total - Credential.objects.count()
    handle = secrets.token_bytes(64)
    made = 0
    while made < missing:
        count = min(BATCH, missing - made)
        users = user_model.objects.bulk_create(
            [
                user_model(username=f"filler{made + i}", email=f"filler{made + i}@example.com")
                for i in range(0, count, 10)
            ]
        )
        credentials = []
        for i in range(count):
            credential_id = secrets.token_bytes(32)
            credentials.append(
                Credential(
                    user_id=users[i // 10].pk,
                    credential_id=credential_id,
                    credential_id_sha256=credential_id_digest(credential_id),
                    public_key=b"\xa5\x01\x02\x03\x26",
                    user_handle=handle,
                    backup_eligible=True,
                    backup_state=True,
                )
            )
        Credential.objects.bulk_create(credentials)
        made += count
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return round(time.perf_counter() - started, 1)


def many_passkeys_user(count: int) -> Any:
    """A user with ``count`` passkeys (bulk-created)."""
    from django.contrib.auth import get_user_model

    from django_passkeys.models import Credential, credential_id_digest

    user = get_user_model().objects.create(username=f"many{count}", email="many@example.com")
    ids = [secrets.token_bytes(32) for _ in range(count)]
    Credential.objects.bulk_create(
        Credential(
            user=user,
            credential_id=i,
            credential_id_sha256=credential_id_digest(i),
            public_key=b"\xa5",
            user_handle=b"",
            transports=["internal", "hybrid"],
        )
        for i in ids
    )
    return user


def register_options(driver: Any, user: Any, times: int) -> dict[str, Any]:
    """``register/options`` for ``user``: statements, CPU and wall medians."""
    from django.test.utils import override_settings

    from benchmarks.ceremonies import JsonClient

    driver.samples = {}
    api = JsonClient()
    driver.sign_in_with_password(api, user)
    # One account asks again and again: its per-account window would refuse the 11th.
    with override_settings(PASSKEYS_RATE_LIMITS={"register-options": {"account": None}}):
        # The first call also creates the user handle: the figures are of the calls after it.
        api.post(driver.register_options, {}, driver.address())
        for i in range(times + 1):
            api.address = driver.address()
            options = driver.request(
                api, "register/options", driver.register_options, {}, 200, count=i == 0
            )
    samples = driver.samples["register/options"]
    return {
        "exclude_credentials": len(options["excludeCredentials"]),
        "statements": samples["statements"][0],
        "cpu_ms_median": round(statistics.median(samples["cpu_ms"]), 2),
        "wall_ms_median": round(statistics.median(samples["wall_ms"]), 2),
    }


def worker(total: int, users: int, conn: Connection) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["BENCH_APP"] = "passkeys"
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.test.runner import DiscoverRunner
    from django.test.utils import setup_test_environment

    from benchmarks.ceremonies import PasskeysDriver
    from django_passkeys.models import Credential

    setup_test_environment()
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        driver = PasskeysDriver(users)
        driver.setup()
        seconds = bulk_load(total)
        ready: dict[str, Any] = {"credentials": Credential.objects.count(), "load_s": seconds}
        if total > 1000:
            one = many_passkeys_user(1)
            many = many_passkeys_user(50)
            ready["register_options_1"] = register_options(driver, one, 30)
            ready["register_options_50"] = register_options(driver, many, 30)
        conn.send(ready)
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            _, signins = message
            conn.send(driver.run("db", signins, 2))
    except Exception:
        import traceback

        conn.send({"error": f"{total}: {traceback.format_exc()}"})
    finally:
        runner.teardown_databases(old)
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--signins", type=int, default=100, help="per round and database")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    postgres = Postgres(args.pg_port)
    context = multiprocessing.get_context("spawn")
    workers: dict[int, tuple[Any, Connection]] = {}
    started = time.perf_counter()
    try:
        postgres.create()
        os.environ["DATABASE_URL"] = f"{postgres.url}/postgres"
        os.environ.pop("REDIS_URL", None)  # the local-memory cache: only the database scales
        for total in (args.small, args.large):
            parent, child = context.Pipe()
            process = context.Process(target=worker, args=(total, args.users, child), daemon=True)
            process.start()
            child.close()
            workers[total] = (process, parent)
        ready = {total: receive(conn) for total, (_, conn) in workers.items()}
        samples: dict[int, dict[str, list[float]]] = {total: {} for total in workers}
        for round_ in range(args.rounds):
            order = list(workers) if round_ % 2 == 0 else list(reversed(workers))
            for total in order:
                conn = workers[total][1]
                conn.send(("run", args.signins))
                verify = receive(conn)["login/verify"]
                for kind, values in verify.items():
                    samples[total].setdefault(kind, []).extend(values)
    finally:
        for _process, conn in workers.values():
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for process, _ in workers.values():
            process.join(timeout=300)
        postgres.destroy()

    figures: dict[str, Any] = {"machine": machine(), "login_verify": {}}
    for total, kinds in samples.items():
        figures["login_verify"][str(ready[total]["credentials"])] = {
            "statements": int(statistics.median(kinds["statements"])),
            "wall_ms_median": round(statistics.median(kinds["wall_ms"]), 2),
            "wall_ms_p95": round(percentile(kinds["wall_ms"], 0.95), 2),
            "cpu_ms_median": round(statistics.median(kinds["cpu_ms"]), 2),
            "signins": len(kinds["wall_ms"]),
            "bulk_load_s": ready[total]["load_s"],
        }
    small, large = (figures["login_verify"][str(ready[t]["credentials"])] for t in workers)
    figures["ratio_wall_median"] = round(large["wall_ms_median"] / small["wall_ms_median"], 3)
    figures["ratio_cpu_median"] = round(large["cpu_ms_median"] / small["cpu_ms_median"], 3)
    big = ready[args.large]
    figures["register_options"] = {
        "1 passkey": big["register_options_1"],
        "50 passkeys": big["register_options_50"],
    }
    figures["seconds"] = round(time.perf_counter() - started, 1)

    lines = [f"PostgreSQL {args.pg_port}, {figures['machine']}", "login/verify:"]
    for count, row in figures["login_verify"].items():
        lines.append(
            f"  {int(count):>9,} credentials: {row['statements']} statements, wall median "
            f"{row['wall_ms_median']} ms (p95 {row['wall_ms_p95']}), CPU median "
            f"{row['cpu_ms_median']} ms over {row['signins']} sign-ins "
            f"(bulk load {row['bulk_load_s']} s)"
        )
    lines.append(
        f"  ratio large/small: wall median {figures['ratio_wall_median']} "
        f"({'≤ 1.1' if figures['ratio_wall_median'] <= 1.1 else 'OVER 1.1'}), "
        f"CPU median {figures['ratio_cpu_median']}"
    )
    lines.append("register/options:")
    for name, row in figures["register_options"].items():
        lines.append(
            f"  user with {name}: {row['exclude_credentials']} excludeCredentials, "
            f"{row['statements']} statements, CPU median {row['cpu_ms_median']} ms, wall median "
            f"{row['wall_ms_median']} ms"
        )
    lines.append(f"({figures['seconds']} s)")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
