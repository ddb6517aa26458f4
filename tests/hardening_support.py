"""What the hardening tests share: enrol a passkey, sign in with it over HTTP, bad assertions."""

from __future__ import annotations

import base64
from typing import Any

from django_passkeys.models import Credential

from .authenticator import SoftAuthenticator
from .conftest import ApiClient

LOGIN_OPTIONS = "/auth/passkey/login/options"
LOGIN_VERIFY = "/auth/passkey/login/verify"


def enroll(user: Any, authenticator: SoftAuthenticator) -> Credential:
    """Register ``authenticator`` for ``user`` through the endpoints (in a throwaway client)."""
    api = ApiClient()
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    response = api.post("/auth/passkey/register/verify", authenticator.create(options))
    assert response.status_code == 201, response.content
    api.client.logout()
    return Credential.objects.by_credential_id(authenticator.credential_id).get()


def passkey_login(
    authenticator: SoftAuthenticator, api: ApiClient | None = None, **meta: Any
) -> ApiClient:
    """Sign in with ``authenticator`` over HTTP in ``api`` (a new client by default)."""
    api = api or ApiClient()
    options = api.post(LOGIN_OPTIONS, **meta).json()
    response = api.post(LOGIN_VERIFY, authenticator.get(options), **meta)
    assert response.status_code == 200, response.content
    return api


def forged_assertion(api: ApiClient, authenticator: SoftAuthenticator) -> dict[str, Any]:
    """An assertion naming ``authenticator``'s credential whose signature does not verify."""
    assertion = authenticator.get(api.post(LOGIN_OPTIONS).json())
    signature = bytearray(base64.urlsafe_b64decode(assertion["response"]["signature"] + "=="))
    signature[-1] ^= 0x01
    assertion["response"]["signature"] = (
        base64.urlsafe_b64encode(bytes(signature)).decode().rstrip("=")
    )
    return assertion


def cloned_assertion(api: ApiClient, authenticator: SoftAuthenticator) -> dict[str, Any]:
    """A correctly signed assertion whose counter went back to 0, as a cloned key sends.

    ``authenticator`` must have been enrolled with a counter above 0.
    """
    assert authenticator.sign_count > 0
    return authenticator.get(api.post(LOGIN_OPTIONS).json(), sign_count=0)
