"""Signing out: ``sign-out/``, where the pages' "Sign out" button posts by default."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse

from django_passkeys.models import AuthEvent

from .base import Endpoint


def after_sign_out_url() -> str:
    """``LOGOUT_REDIRECT_URL`` (a URL or URL name), else the passkey sign-in page."""
    configured = getattr(settings, "LOGOUT_REDIRECT_URL", None)
    return str(resolve_url(configured)) if configured else reverse("django_passkeys:login")


class SignOutView(Endpoint):
    """POST ``sign-out/``: Django's ``logout()`` (its ``user_logged_out`` signal included).

    A POST through the pipeline, so a CSRF token is needed: a link or an image on another site
    cannot sign anyone out. A plain form post is answered with a redirect, a JSON one with
    ``{"redirect": url}``; signing out while signed out is not an error.
    """

    event_type = AuthEvent.Type.SESSIONS
    form_posts = True

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        logout(request)
        return {"redirect": after_sign_out_url()}

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        return HttpResponseRedirect(payload["redirect"], status=303)

    def redirect_back(self, request: HttpRequest) -> HttpResponse:
        # A refused form post (no CSRF token) returns to a page that shows its message.
        return HttpResponseRedirect(reverse("django_passkeys:security"), status=303)
