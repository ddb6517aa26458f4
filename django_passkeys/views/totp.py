"""The ``totp/`` page: set up, replace or remove an authenticator app (TOTP).

GET shows the state and, when this session may enrol, a QR code and the secret of its pending
device; POST ``{"code"}`` confirms that device; POST ``totp/remove`` removes the app. All of it
works without JavaScript (plain form posts).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from django_passkeys import flows
from django_passkeys.models import AuthEvent
from django_passkeys.redirects import other_login_url, passkey_login_url
from django_passkeys.sessions import has_recent_passkey_assertion
from django_passkeys.totp import qr_svg, secret_text, totp_state

from .base import Endpoint, signed_in_user


class TotpView(Endpoint, TemplateView):
    """GET ``totp/``: the authenticator-app page; POST ``{"code"}`` confirms the app being added.

    ``?replace`` on a page with a confirmed app starts setting up a new one instead. Signed
    out, the page sends to ``LOGIN_URL``; a POST answers ``not_authenticated`` like every
    endpoint.
    """

    template_name = "django_passkeys/totp.html"
    http_method_names = ["get", "post"]
    event_type = AuthEvent.Type.TOTP_ADDED
    form_posts = True
    success_message = _("Authenticator app added.")

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        request = self.request
        user = request.user
        assert user.is_authenticated  # see get()
        state = totp_state(user)
        replacing = state.enabled
        enrolling = not replacing or "replace" in request.GET
        may_enrol = flows.may_enrol_totp(request, replacing=replacing)
        passkey_confirmed = has_recent_passkey_assertion(request)
        here = request.get_full_path()
        device = flows.begin_totp_enrolment(request, user) if enrolling and may_enrol else None
        context.update(
            state=state,
            device=device,
            qr_svg=qr_svg(device) if device else "",
            secret=secret_text(device) if device else "",
            can_change=passkey_confirmed,
            # Why nothing can be done yet, and where to go: any recent sign-in can add a first
            # app; only a passkey can confirm replacing or removing one that is set up.
            needs_fresh_login=not replacing and not may_enrol,
            needs_passkey=replacing and not passkey_confirmed,
            fresh_login_url=other_login_url(request, here) or passkey_login_url(here),
            passkey_login_url=passkey_login_url(here),
        )
        return context

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        device = flows.confirm_totp(request, user, data.get("code"))
        return {"enabled": True, "created_at": device.created_at.isoformat()}


class TotpRemoveView(Endpoint):
    """POST ``totp/remove``: remove the authenticator app (needs a fresh passkey assertion)."""

    event_type = AuthEvent.Type.TOTP_REMOVED
    form_posts = True

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        return {"removed": flows.remove_totp(request, user)}

    def form_message(self, payload: dict[str, Any]) -> Any:
        if payload["removed"]:
            return _("Authenticator app removed.")
        return _("No authenticator app was set up.")

    def redirect_back(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("django_passkeys:totp"), status=303)
