"""A recovery link claimed by two browsers at the same moment: the database lets one win.

PostgreSQL only (SQLite serialises writers, so it proves nothing). Both requests are held just
before their state change until each has passed every check, so the conditional ``UPDATE`` of
``django_passkeys.recovery.transition`` alone decides.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest

from django_passkeys import recovery as machine
from django_passkeys.models import RecoveryRequest

from .factories import UserFactory
from .recovery_support import OPEN, ask_link
from .support import BARRIER_TIMEOUT, ApiClient, needs_postgres, run_in_threads

pytestmark = [needs_postgres(), pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_browsers_claiming_one_link_at_once_get_one_claim(monkeypatch, settings):
    # No rate-limit counting in the threads: a thread's cache connection would outlive it.
    settings.PASSKEYS_RATE_LIMITS = {"recover-open": {"ip": None, "account": None}}
    user = UserFactory()
    link = ask_link(ApiClient(), user.email)
    browsers = [ApiClient(), ApiClient()]
    for browser in browsers:
        assert browser.client.get(link, secure=True).status_code == 303

    together = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    original = machine.transition

    def transition_together(rr: RecoveryRequest, target: str, **fields: Any) -> Any:
        if target == RecoveryRequest.State.LINK_OPENED:
            together.wait()  # both read "requested" and passed every check
        return original(rr, target, **fields)

    monkeypatch.setattr(machine, "transition", transition_together)
    responses = run_in_threads([partial(browser.post, OPEN) for browser in browsers])
    outcomes = sorted((r.status_code, r.json().get("error", {}).get("code")) for r in responses)
    assert outcomes == [(200, None), (400, "recovery_token_invalid")]
    rr = RecoveryRequest.objects.get()
    assert rr.state == RecoveryRequest.State.LINK_OPENED
