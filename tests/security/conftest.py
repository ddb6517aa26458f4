from __future__ import annotations

from typing import Any

import pytest

#: The endpoints' rate-limit entries (URL names) and the fallback entry.
_LIMITED = ("default", "register-options", "register-verify", "login-options", "login-verify")


@pytest.fixture(autouse=True)
def _without_rate_limits(settings: Any) -> None:
    """Switch rate limits and the failure backoff off for the attack tests.

    They send many requests from one address and fail on purpose against one account, and each
    must reach the check it attacks; the limits themselves are tested on their own.
    """
    settings.PASSKEYS_RATE_LIMITS = {name: {"ip": None, "account": None} for name in _LIMITED}
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 1_000_000}
