"""Public signals are sent with the documented keyword arguments."""

from __future__ import annotations

from typing import Any

import pytest
from django.dispatch import Signal

from django_passkeys import signals
from django_passkeys.models import Credential

from .authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db


@pytest.fixture
def received() -> Any:
    """Connect a recorder to a signal for the test; return the list of kwargs it got."""
    connected: list[tuple[Signal, Any]] = []

    def _received(signal: Signal) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            calls.append({"sender": sender, **kwargs})

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return calls

    yield _received
    for signal, receiver in connected:
        signal.disconnect(receiver)


def test_passkey_registered_on_a_new_passkey(api, user, authenticator, register, received):
    calls = received(signals.passkey_registered)
    assert register(user, authenticator).status_code == 201
    (call,) = calls
    assert set(call) == {"sender", "signal", "request", "user", "credential"}
    assert call["user"] == user
    assert call["credential"] == Credential.objects.get()
    assert call["request"].path == "/auth/passkey/register/verify"


def test_no_passkey_registered_on_failure(api, user, authenticator, register, received):
    calls = received(signals.passkey_registered)
    assert register(user, authenticator, origin="https://evil.example").status_code == 400
    assert calls == []


def test_login_succeeded_on_a_passkey_sign_in(api, user, authenticator, register, received):
    register(user, authenticator)
    api.client.logout()
    succeeded = received(signals.passkey_login_succeeded)
    failed = received(signals.passkey_login_failed)
    options = api.post("/auth/passkey/login/options").json()
    assert api.post("/auth/passkey/login/verify", authenticator.get(options)).status_code == 200
    (call,) = succeeded
    assert set(call) == {"sender", "signal", "request", "user", "credential"}
    assert call["user"] == user
    assert call["credential"] == Credential.objects.get()
    assert failed == []


def test_login_failed_carries_the_reason_code(api, user, authenticator, register, received):
    register(user, authenticator)
    api.client.logout()
    succeeded = received(signals.passkey_login_succeeded)
    failed = received(signals.passkey_login_failed)
    options = api.post("/auth/passkey/login/options").json()
    stranger = SoftAuthenticator()
    response = api.post("/auth/passkey/login/verify", stranger.get(options))
    assert response.status_code == 400
    (call,) = failed
    assert set(call) == {"sender", "signal", "request", "reason_code", "credential"}
    assert call["reason_code"] == "credential_unknown"
    assert call["credential"] is None
    assert call["request"].path == "/auth/passkey/login/verify"
    assert succeeded == []
