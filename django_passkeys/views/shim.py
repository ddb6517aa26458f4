"""What every page hands to the JS shim (``passkeys.js``): endpoints, CSRF token, texts."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.translation import gettext as _

#: URL names of the ceremony endpoints, by the key the JS shim looks them up with.
ENDPOINTS = {
    "loginOptions": "login-options",
    "loginVerify": "login-verify",
    "registerOptions": "register-options",
    "registerVerify": "register-verify",
    "reauthOptions": "reauth-options",
    "reauthVerify": "reauth-verify",
}


def client_messages() -> dict[str, str]:
    """Status texts, and messages for failures the browser reports (DOMException names).

    Failures from the server carry their own translated message; a key here named after a
    reason code overrides it on the page.
    """
    return {
        "working": _("Waiting for your passkey…"),
        "reauth": _("Confirm it's you with one of your passkeys."),
        "signedIn": _("Signed in. Taking you onward…"),
        "confirmed": _("Confirmed. Taking you onward…"),
        "added": _("Passkey added."),
        "renamed": _("Passkey renamed."),
        "removed": _("Passkey removed."),
        "error": _("Something went wrong. Please try again."),
        "NotAllowedError": _(
            "The passkey request was cancelled, timed out, or your device did not verify you."
        ),
        "InvalidStateError": _("This device already has a passkey for your account."),
        "SecurityError": _("Passkeys cannot be used on this address."),
        "NotSupportedError": _("This device cannot create a passkey this site accepts."),
        "credential_unknown": _(
            "This passkey is not registered here; it may have been removed. "
            "Try another passkey or another method."
        ),
    }


def page_config(
    request: HttpRequest, *, next_url: str = "", reauth: bool = False
) -> dict[str, Any]:
    """The JSON the JS shim reads from ``#passkeys-config``: endpoints, CSRF token, texts.

    ``reauth`` offers step-up reauthentication when an action answers
    ``reauthentication_required``.
    """
    namespace = request.resolver_match.namespace if request.resolver_match else None
    urls = {
        key: reverse(f"django_passkeys:{name}", current_app=namespace)
        for key, name in ENDPOINTS.items()
        if reauth or not key.startswith("reauth")
    }
    return {
        "csrf": get_token(request),
        "next": next_url,
        "urls": urls,
        "messages": client_messages(),
    }
