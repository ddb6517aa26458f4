"""Signing in: the sign-in page and the ``login/options`` and ``login/verify`` endpoints."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys import challenges, flows, signal_api
from django_passkeys.ceremonies import MAX_HINT_LENGTH
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent
from django_passkeys.redirects import other_login_url, recovery_url, safe_next_url

from .base import Endpoint
from .shim import page_config


@method_decorator(never_cache, name="dispatch")
class LoginPageView(TemplateView):
    """GET ``login/``: passkey sign-in through autofill or the "Use passkey" button.

    A visitor who is signed in already is told so, with a link onward (``next``, or
    ``PASSKEYS_LOGIN_REDIRECT_URL``), rather than redirected: a page that sends signed-in users
    without a permission here would otherwise loop.
    """

    template_name = "django_passkeys/login.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        next_url = safe_next_url(self.request, self.request.GET.get("next"))
        user = self.request.user
        context.update(
            passkeys_config=page_config(self.request, next_url=next_url),
            other_login_url=other_login_url(self.request, next_url),
            recovery_url=recovery_url(),
            signed_in_as=user if user.is_authenticated else None,
            continue_url=next_url or conf.PASSKEYS_LOGIN_REDIRECT_URL,
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

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        # A visitor without a session holds the challenge's binding in a cookie (challenges).
        challenges.set_binding_cookie(request, response)
        return response


class LoginVerifyView(Endpoint):
    """POST ``login/verify``: verify the assertion, sign the user in, answer the redirect."""

    event_type = AuthEvent.Type.LOGIN

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        next_url = data.pop("next", None) or request.GET.get("next")
        signed_in = flows.sign_in(request, data)
        return {
            "redirect": safe_next_url(request, next_url, conf.PASSKEYS_LOGIN_REDIRECT_URL),
            # For PublicKeyCredential.signalAllAcceptedCredentials() on the page, from the
            # owner's passkeys that the sign-in read with the one used (no query of its own).
            "signal": signal_api.all_accepted_credentials(
                signed_in.user, signed_in.credential.owner_credentials, request=request
            ),
        }
