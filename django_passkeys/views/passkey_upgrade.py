"""The passkey upgrade after a password sign-in: the ``upgrade/`` page and its endpoints.

``upgrade/options`` and ``upgrade/verify`` are ``register/options`` and ``register/verify`` with
the upgrade's own challenge purpose, the only one that accepts a conditionally created passkey
(no user presence). ``upgrade/decline`` is "Not now" and "Don't ask again".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache

from django_passkeys import flows
from django_passkeys.conf import conf
from django_passkeys.models import AuthEvent
from django_passkeys.redirects import safe_next_url
from django_passkeys.upgrade import upgrade_due

from .base import Endpoint, registered_credential, signed_in_user
from .shim import page_config

TEMPLATE = "django_passkeys/upgrade.html"


def _next_url(request: HttpRequest, data: dict[str, Any] | None = None) -> str:
    """Where the user goes after the upgrade: a safe ``next``, else the sign-in landing page,
    never this page itself (``LOGIN_REDIRECT_URL`` may point here: see docs/rollout.rst)."""
    here = reverse("django_passkeys:upgrade")
    default = resolve_url(conf.PASSKEYS_LOGIN_REDIRECT_URL)
    if urlsplit(default).path == here:
        default = "/"
    candidate = (data or {}).get("next") or request.GET.get("next")
    next_url = safe_next_url(request, candidate, default)
    return default if urlsplit(next_url).path == here else next_url


@method_decorator(never_cache, name="dispatch")
class UpgradePageView(LoginRequiredMixin, View):
    """GET ``upgrade/?next=``: the upgrade, when due; otherwise straight on to ``next``."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest) -> HttpResponse:
        next_url = _next_url(request)
        if not upgrade_due(request):
            return HttpResponseRedirect(next_url)
        config = page_config(request, next_url=next_url)
        config["urls"].update(
            upgradeOptions=reverse("django_passkeys:upgrade-options"),
            upgradeVerify=reverse("django_passkeys:upgrade-verify"),
        )
        # How long the page waits for a conditional create before it asks (milliseconds).
        config["upgradeWait"] = int(conf.PASSKEYS_UPGRADE_WAIT * 1000)
        context = {
            "next_url": next_url,
            "snooze_days": conf.PASSKEYS_UPGRADE_SNOOZE_DAYS,
            "passkeys_config": config,
        }
        return render(request, TEMPLATE, context)


class UpgradeOptionsView(Endpoint):
    """POST ``upgrade/options``: creation options with the upgrade's challenge purpose."""

    event_type = AuthEvent.Type.UPGRADE

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        return flows.upgrade_options(request, signed_in_user(request, recent=True))


class UpgradeVerifyView(Endpoint):
    """POST ``upgrade/verify``: store the upgrade's passkey (201), and where to go next."""

    event_type = AuthEvent.Type.UPGRADE
    success_status = 201

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request, recent=True)
        next_url = _next_url(request, {"next": data.pop("next", None)})
        credential = flows.upgrade(request, user, data, name=data.pop("name", None))
        return {**registered_credential(credential), "redirect": next_url}


class UpgradeDeclineView(Endpoint):
    """POST ``upgrade/decline`` ``{"snooze": bool, "next"}``: "Not now" or "Don't ask again";
    a form post goes on to ``next``."""

    event_type = AuthEvent.Type.UPGRADE_DECLINED
    form_posts = True

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        snooze = data.get("snooze") in (True, "1", "true", "on")
        flows.decline_upgrade(request, user, snooze=snooze)
        return {"redirect": _next_url(request, data)}

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        messages.info(request, str(self.form_message(payload)), fail_silently=True)
        return HttpResponseRedirect(payload["redirect"], status=303)

    def redirect_back(self, request: HttpRequest) -> HttpResponse:
        # A refused form post (signed out, rate limited) goes on too: never blocks the user.
        return HttpResponseRedirect(_next_url(request, request.POST.dict()), status=303)

    def form_message(self, payload: dict[str, Any]) -> Any:
        return _("You can add a passkey any time from your security page.")
