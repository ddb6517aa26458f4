"""Signing in: the sign-in page and the ``login/options`` and ``login/verify`` endpoints."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys import flows, signal_api
from django_passkeys.ceremonies import MAX_HINT_LENGTH
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent
from django_passkeys.redirects import other_login_url, recovery_url, safe_next_url

from .base import Endpoint
from .shim import page_config


@method_decorator(never_cache, name="dispatch")
class LoginPageView(TemplateView):
    """GET ``login/``: passkey sign-in through autofill or the "Use passkey" button."""

    template_name = "django_passkeys/login.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        next_url = safe_next_url(self.request, self.request.GET.get("next"))
        context.update(
            passkeys_config=page_config(self.request, next_url=next_url),
            other_login_url=other_login_url(self.request, next_url),
            recovery_url=recovery_url(),
        )
        return context


class LoginOptionsView(Endpoint):
    """POST ``login/options``: request options, discoverable unless an e-mail hint is given."""

    event_type = AuthEvent.Type.LOGIN

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        hint = data.get("emailHint")
        # NUL is refused: PostgreSQL cannot compare text holding it.
        if hint is not None and (
            not isinstance(hint, str) or len(hint) > MAX_HINT_LENGTH or "\x00" in hint
        ):
            raise PasskeyError(Reason.MALFORMED_REQUEST, "emailHint")
        return flows.sign_in_options(request, hint or None)


class LoginVerifyView(Endpoint):
    """POST ``login/verify``: verify the assertion, sign the user in, answer the redirect."""

    event_type = AuthEvent.Type.LOGIN

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        next_url = data.pop("next", None) or request.GET.get("next")
        signed_in = flows.sign_in(request, data)
        return {
            "redirect": safe_next_url(request, next_url, conf.PASSKEYS_LOGIN_REDIRECT_URL),
            # For PublicKeyCredential.signalAllAcceptedCredentials() on the page.
            "signal": signal_api.all_accepted_credentials(signed_in.user),
        }
