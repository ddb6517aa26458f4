"""The audit trail: one AuthEvent and one log record per outcome, never raw WebAuthn data."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import RequestFactory

from django_passkeys import audit
from django_passkeys.models import AuthEvent

from .authenticator import b64url
from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db


def request_with(**meta: Any) -> Any:
    return RequestFactory().post("/", **meta)


def passkeys_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django_passkeys"]


def test_success_writes_an_event_with_user_credential_ip_and_agent(caplog):
    credential = CredentialFactory()
    request = request_with(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Firefox/140")
    with caplog.at_level(logging.INFO, logger="django_passkeys"):
        event = audit.record(
            request, AuthEvent.Type.LOGIN, success=True, user=credential.user, credential=credential
        )
    event.refresh_from_db()
    assert event.event_type == "login"
    assert event.success is True
    assert event.reason_code == ""
    assert event.user == credential.user
    assert event.credential == credential
    assert event.ip_address == "203.0.113.9"
    assert event.user_agent == "Firefox/140"
    (log,) = passkeys_records(caplog)
    assert log.levelno == logging.INFO
    assert log.getMessage() == "passkey login ok"
    assert log.passkeys_event == "login"
    assert log.passkeys_credential == credential.credential_id_sha256[:16]
    # The user is a hashed identifier, not the primary key.
    assert log.passkeys_user and str(credential.user.pk) not in log.passkeys_user


def test_failure_is_a_warning_with_its_reason_code(caplog):
    request = request_with(REMOTE_ADDR="")
    event = audit.record(
        request, AuthEvent.Type.REGISTER, success=False, reason_code="origin_mismatch"
    )
    assert event.success is False
    assert event.reason_code == "origin_mismatch"
    assert event.ip_address is None
    assert event.user is None and event.credential is None
    (log,) = passkeys_records(caplog)
    assert log.levelno == logging.WARNING
    assert log.getMessage() == "passkey register origin_mismatch"
    assert log.passkeys_reason == "origin_mismatch"
    assert log.passkeys_user is None and log.passkeys_credential is None


def test_anonymous_user_is_recorded_as_no_user():
    from django.contrib.auth.models import AnonymousUser

    event = audit.record(request_with(), AuthEvent.Type.LOGIN, success=False, user=AnonymousUser())
    assert event.user is None


def test_user_agent_is_truncated_and_stripped_of_control_characters():
    agent = "Evil\r\nX-Injected: 1\t" + "A" * 500
    event = audit.record(request_with(HTTP_USER_AGENT=agent), AuthEvent.Type.LOGIN, success=True)
    assert len(event.user_agent) == audit.USER_AGENT_MAX == 200
    assert "\r" not in event.user_agent and "\n" not in event.user_agent
    assert event.user_agent.startswith("Evil??X-Injected: 1?")


def test_cr_lf_in_a_reason_code_cannot_forge_a_log_line(caplog):
    audit.record(
        request_with(),
        AuthEvent.Type.LOGIN,
        success=False,
        reason_code="bad\r\nINFO passkey login ok",
    )
    (log,) = passkeys_records(caplog)
    message = log.getMessage()
    assert "\n" not in message and "\r" not in message
    assert message == "passkey login bad??INFO passkey login ok"


def test_a_failed_login_logs_no_raw_credential_data(api, caplog):
    UserFactory()
    options = api.post("/auth/passkey/login/options").json()
    marker = "RAW-CLIENT-DATA-MARKER"
    client_data = json.dumps(
        {"type": "webauthn.get", "challenge": options["challenge"], "origin": marker}
    ).encode()
    body = {
        "id": b64url(b"cred"),
        "rawId": b64url(b"cred"),
        "type": "public-key",
        "response": {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(b"A" * 37),
            "signature": b64url(b"SIGNATURE-MARKER"),
            "userHandle": b64url(b"HANDLE-MARKER"),
        },
    }
    with caplog.at_level(logging.DEBUG):
        response = api.post("/auth/passkey/login/verify", body)
    assert response.status_code == 400
    event = AuthEvent.objects.latest("created_at")
    assert not event.success
    records = passkeys_records(caplog)
    assert records
    secrets = [
        marker,
        body["response"]["clientDataJSON"],
        body["response"]["signature"],
        body["response"]["userHandle"],
        body["response"]["authenticatorData"],
        options["challenge"],
        # What ties the challenge to this client: without a session, its binding cookie.
        api.client.cookies["passkeys_binding"].value,
    ]
    for record in caplog.records:
        dumped = record.getMessage() + repr(vars(record))
        for secret in secrets:
            assert secret not in dumped
    stored = repr(list(AuthEvent.objects.values()))
    for secret in secrets:
        assert secret not in stored
