"""Step-up reauthentication: a passkey assertion that renews the session's sign-in time, and the
``reauth/`` page that asks for one."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys import flows
from django_passkeys.conf import conf
from django_passkeys.models import AuthEvent, Credential
from django_passkeys.redirects import safe_next_url

from .base import Endpoint, signed_in_user
from .shim import page_config


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


@method_decorator(never_cache, name="dispatch")
class ReauthPageView(LoginRequiredMixin, TemplateView):
    """GET ``reauth/?next=``: confirm with a passkey (``reauth/options`` + ``reauth/verify``),
    then go on to ``next``. Where ``@passkey_required`` sends a request that lacks a fresh
    passkey assertion."""

    template_name = "django_passkeys/reauth.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        request = self.request
        next_url = safe_next_url(request, request.GET.get("next"), conf.PASSKEYS_LOGIN_REDIRECT_URL)
        has_passkeys = Credential.objects.active().filter(user_id=request.user.pk).exists()
        context.update(
            next_url=next_url,
            has_passkeys=has_passkeys,
            manage_url=reverse("django_passkeys:manage"),
            passkeys_config=page_config(request, next_url=next_url, reauth=True),
        )
        return context
