"""Recording a failed use case once: the audit event, and the signal of a failed sign-in."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from django_passkeys import audit, signals
from django_passkeys.errors import PasskeyError
from django_passkeys.models import AuthEvent, Credential


def record_failure(
    request: HttpRequest | None,
    event_type: AuthEvent.Type,
    error: PasskeyError,
    *,
    user: Any = None,
) -> None:
    """Audit a failed request once, and tell ``passkey_login_failed`` receivers of sign-ins.

    ``user`` defaults to the request's signed-in user (anonymous counts as nobody).
    """
    if error.recorded:
        return
    error.recorded = True
    if user is None and request is not None:
        user = getattr(request, "user", None)
    audit.record(request, event_type, success=False, reason_code=error.code.value, user=user)
    if event_type == AuthEvent.Type.LOGIN:
        signals.passkey_login_failed.send(
            sender=Credential, request=request, reason_code=error.code.value, credential=None
        )
