"""The audit trail: one AuthEvent and one structured log record per ceremony outcome.

Records carry reason codes, hashed identifiers and timestamps; never clientDataJSON,
attestation objects, signatures, tokens or session keys (security rule 8).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.http import HttpRequest

from .clientip import client_ip
from .models import AuthEvent, Credential

logger = logging.getLogger("django_passkeys")

USER_AGENT_MAX = 200

__all__ = ["clean_text", "client_ip", "record"]


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def clean_text(value: str) -> str:
    """``value`` with every non-printable character (CR, LF, ...) replaced by ``?``."""
    # Log-injection safe: no CR/LF or other control characters reach a log line.
    return "".join(ch if ch.isprintable() else "?" for ch in value)


def user_agent(request: HttpRequest) -> str:
    """The request's User-Agent as stored: control characters replaced, truncated."""
    return clean_text(str(request.META.get("HTTP_USER_AGENT", "")))[:USER_AGENT_MAX]


def record(
    request: HttpRequest | None,
    event_type: AuthEvent.Type,
    *,
    success: bool,
    reason_code: str = "",
    user: Any = None,
    credential: Credential | None = None,
) -> AuthEvent:
    """Write the AuthEvent and the log record for one outcome (no ``request`` in commands)."""
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    # Without a request (a management command), there is no peer to record.
    agent = user_agent(request) if request is not None else ""
    ip_address = client_ip(request) if request is not None else None
    event = AuthEvent.objects.create(
        user=user,
        event_type=event_type,
        success=success,
        reason_code=reason_code,
        credential=credential,
        ip_address=ip_address,
        user_agent=agent,
    )
    logger.log(
        logging.INFO if success else logging.WARNING,
        "passkey %s %s",
        event_type.value,
        "ok" if success else clean_text(reason_code),
        extra={
            "passkeys_event": event_type.value,
            "passkeys_reason": reason_code,
            "passkeys_user": _fingerprint(user.pk) if user is not None else None,
            "passkeys_credential": credential.credential_id_sha256[:16] if credential else None,
            "passkeys_ip": _fingerprint(ip_address) if ip_address else None,
        },
    )
    return event
