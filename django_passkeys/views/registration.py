"""Adding a passkey: the ``register/options`` and ``register/verify`` endpoints."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from django_passkeys import flows
from django_passkeys.models import AuthEvent

from .base import Endpoint, registered_credential, signed_in_user


class RegistrationOptionsView(Endpoint):
    """POST ``register/options``: creation options for the signed-in user."""

    event_type = AuthEvent.Type.REGISTER

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        return flows.registration_options(request, signed_in_user(request, recent=True))


class RegistrationVerifyView(Endpoint):
    """POST ``register/verify``: verify the new credential and store it (201)."""

    event_type = AuthEvent.Type.REGISTER
    success_status = 201

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request, recent=True)
        name = data.pop("name", None)
        credential = flows.register(request, user, data, name=name)
        return registered_credential(credential)
