"""What the security tests share: endpoint paths, enrolment and the one rejection assertion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_passkeys.errors import REASONS, Reason
from django_passkeys.models import AuthEvent, Credential
from tests.authenticator import SoftAuthenticator

REGISTER_OPTIONS = "/auth/passkey/register/options"
REGISTER_VERIFY = "/auth/passkey/register/verify"
LOGIN_OPTIONS = "/auth/passkey/login/options"
LOGIN_VERIFY = "/auth/passkey/login/verify"
#: The four ceremony endpoints of the HTTP contract.
ENDPOINTS = (REGISTER_OPTIONS, REGISTER_VERIFY, LOGIN_OPTIONS, LOGIN_VERIFY)


@dataclass
class Enrolled:
    """A user with one passkey registered through the HTTP endpoints, signed out again."""

    user: Any
    authenticator: SoftAuthenticator
    credential: Credential


def enroll(api: Any, user: Any, authenticator: SoftAuthenticator, **create: Any) -> Enrolled:
    """Register ``authenticator`` for ``user`` over HTTP, then sign the client out."""
    api.login(user)
    options = api.post(REGISTER_OPTIONS).json()
    response = api.post(REGISTER_VERIFY, authenticator.create(options, **create))
    assert response.status_code == 201, response.content
    api.client.logout()
    credential = Credential.objects.by_credential_id(authenticator.credential_id).get()
    return Enrolled(user=user, authenticator=authenticator, credential=credential)


def login_options(api: Any, email_hint: str | None = None) -> dict[str, Any]:
    """Request options from ``login/options`` (discoverable without a hint)."""
    response = api.post(LOGIN_OPTIONS, {"emailHint": email_hint} if email_hint else {})
    assert response.status_code == 200, response.content
    options: dict[str, Any] = response.json()
    return options


def registration_options(api: Any, user: Any) -> dict[str, Any]:
    """Sign ``user`` in (recently) and request creation options."""
    api.login(user)
    response = api.post(REGISTER_OPTIONS)
    assert response.status_code == 200, response.content
    options: dict[str, Any] = response.json()
    return options


def assert_rejected(response: Any, reason: Reason, *, audited: bool = True) -> None:
    """The response is ``reason``'s error, and (when ``audited``) an AuthEvent records it."""
    status, _ = REASONS[reason]
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == reason.value, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if audited:
        event = AuthEvent.objects.order_by("-pk").first()
        assert event is not None
        assert (event.success, event.reason_code) == (False, reason.value)
