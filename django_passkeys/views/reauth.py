"""Step-up reauthentication: a passkey assertion that renews the session's sign-in time."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from django_passkeys import flows
from django_passkeys.models import AuthEvent

from .base import Endpoint, signed_in_user


class ReauthOptionsView(Endpoint):
    """POST ``reauth/options``: request options listing the signed-in user's passkeys."""

    event_type = AuthEvent.Type.REAUTH

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        return flows.reauthentication_options(request, signed_in_user(request))


class ReauthVerifyView(Endpoint):
    """POST ``reauth/verify``: verify the assertion and stamp the session as recently signed in."""

    event_type = AuthEvent.Type.REAUTH

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        flows.reauthenticate(request, signed_in_user(request), data)
        return {"reauthenticated": True}
