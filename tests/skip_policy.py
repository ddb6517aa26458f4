"""Make CI fail when tests that must run were skipped.

``PASSKEYS_FORBID_SKIPS=1`` turns every skip into a failure of the session, except skips whose
reason matches the regular expression in ``PASSKEYS_ALLOWED_SKIPS`` (for the SQLite leg:
the PostgreSQL- and Redis-only tests).
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

_skipped: list[tuple[str, str]] = []


def _reason(report: pytest.TestReport) -> str:
    longrepr: Any = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append((report.nodeid, _reason(report)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("PASSKEYS_FORBID_SKIPS") != "1":
        return
    allowed = os.environ.get("PASSKEYS_ALLOWED_SKIPS", "")
    forbidden = [
        (nodeid, reason)
        for nodeid, reason in _skipped
        if not (allowed and re.search(allowed, reason))
    ]
    if forbidden:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"{len(forbidden)} test(s) skipped that must run here:"]
        lines += [f"  {nodeid}: {reason}" for nodeid, reason in forbidden]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
