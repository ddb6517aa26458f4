"""Latency, query counts, memory and JS weight of the ceremony endpoints."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

setup_test_environment()
from django.test.runner import DiscoverRunner  # noqa: E402

from tests.authenticator import SoftAuthenticator  # noqa: E402
from tests.conftest import ApiClient  # noqa: E402
from tests.factories import UserFactory  # noqa: E402


def run(rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    queries: dict[str, int] = {}

    def record(api: ApiClient, name: str, path: str, expect: int, data: Any = None) -> Any:
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = api.post(path, data)
            elapsed = time.perf_counter() - start
        assert response.status_code == expect, (name, response.content)
        samples.setdefault(name, []).append(elapsed * 1000)
        queries[name] = max(queries.get(name, 0), len(captured))
        return response.json()

    peak = 0
    prefix = "/auth/passkey/"
    for i in range(rounds):
        user = UserFactory(username=f"bench{i}", email=f"bench{i}@example.com")
        api = ApiClient()
        authenticator = SoftAuthenticator()
        api.login(user)
        tracemalloc.start()
        options = record(api, "register/options", prefix + "register/options", 200)
        data = authenticator.create(options)
        record(api, "register/verify", prefix + "register/verify", 201, data)
        api.client.logout()
        options = record(api, "login/options", prefix + "login/options", 200)
        assertion = authenticator.get(options)
        record(api, "login/verify", prefix + "login/verify", 200, assertion)
        api.client.logout()
        hint = {"emailHint": user.email}
        record(api, "login/options (emailHint)", prefix + "login/options", 200, hint)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()

    shim = ROOT / "django_passkeys" / "static" / "django_passkeys" / "passkeys.js"
    return {
        "database": connection.vendor,
        "rounds": rounds,
        "endpoints": {
            name: {
                "queries": queries[name],
                "median_ms": round(statistics.median(values), 2),
                "p95_ms": round(sorted(values)[int(len(values) * 0.95) - 1], 2),
            }
            for name, values in samples.items()
        },
        "peak_memory_kib_per_round": round(peak / 1024, 1),
        "js_shim_gzip_bytes": len(gzip.compress(shim.read_bytes(), 9)) if shim.exists() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        print(json.dumps(run(args.rounds), indent=2))
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
