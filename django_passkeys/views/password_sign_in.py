"""The ``passkey-only/`` page: turn password sign-in off, or back on.

GET shows the state and what is missing; POST ``{"enabled": true|false}`` (JSON, or the page's
plain form) turns it on (needs a recent sign-in) or off (needs a fresh passkey assertion: the
page's form asks for one first, and a JSON client gets ``reauthentication_required``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from django_passkeys import flows
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent
from django_passkeys.passkey_only import passkey_only_state
from django_passkeys.redirects import recovery_url
from django_passkeys.sessions import is_recently_authenticated

from .base import Endpoint, signed_in_user
from .shim import page_config

TEMPLATE = "django_passkeys/passkey_only.html"


class PasskeyOnlyView(Endpoint):
    """GET ``passkey-only/``: the state; POST ``{"enabled": bool}``: change it."""

    event_type = AuthEvent.Type.PASSKEY_ONLY_ON
    form_posts = True
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        state = passkey_only_state(request.user)
        context = {
            "state": state,
            "recent": is_recently_authenticated(request),
            "manage_url": reverse("django_passkeys:manage"),
            "recovery_codes_url": reverse("django_passkeys:recovery-codes"),
            "totp_url": reverse("django_passkeys:totp"),
            "recovery_url": recovery_url(),
            "passkeys_config": page_config(request, reauth=state.has_passkey),
        }
        return render(request, TEMPLATE, context)

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        enabled = data.get("enabled")
        if enabled in ("1", "true", "on"):
            enabled = True
        elif enabled in ("0", "false", "off"):
            enabled = False
        if not isinstance(enabled, bool):
            raise PasskeyError(Reason.MALFORMED_REQUEST, "enabled is true or false")
        if enabled:
            flows.turn_on_passkey_only(request, user)
        else:
            flows.turn_off_passkey_only(request, user)
        return {"passkey_only": passkey_only_state(user).enabled}

    def form_message(self, payload: dict[str, Any]) -> Any:
        if payload["passkey_only"]:
            return _("Password sign-in is off: you sign in with your passkeys.")
        return _("Password sign-in is on again.")
