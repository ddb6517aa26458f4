"""The sign-in page, and what every page hands to the JS shim."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys.conf import conf

#: URL names of the ceremony endpoints, by the key the JS shim looks them up with.
ENDPOINTS = {
    "loginOptions": "login-options",
    "loginVerify": "login-verify",
    "registerOptions": "register-options",
    "registerVerify": "register-verify",
    "reauthOptions": "reauth-options",
    "reauthVerify": "reauth-verify",
}


def client_messages() -> dict[str, str]:
    """Status texts, and messages for failures the browser reports (DOMException names).

    Failures from the server carry their own translated message; a key here named after a
    reason code overrides it on the page.
    """
    return {
        "working": _("Waiting for your passkey…"),
        "reauth": _("Confirm it's you with one of your passkeys."),
        "signedIn": _("Signed in. Taking you onward…"),
        "added": _("Passkey added."),
        "renamed": _("Passkey renamed."),
        "removed": _("Passkey removed."),
        "error": _("Something went wrong. Please try again."),
        "NotAllowedError": _(
            "The passkey request was cancelled, timed out, or your device did not verify you."
        ),
        "InvalidStateError": _("This device already has a passkey for your account."),
        "SecurityError": _("Passkeys cannot be used on this address."),
        "NotSupportedError": _("This device cannot create a passkey this site accepts."),
        "credential_unknown": _(
            "This passkey is not registered here; it may have been removed. "
            "Try another passkey or another method."
        ),
    }


def page_config(
    request: HttpRequest, *, next_url: str = "", reauth: bool = False
) -> dict[str, Any]:
    """The JSON the JS shim reads from ``#passkeys-config``: endpoints, CSRF token, texts.

    ``reauth`` offers step-up reauthentication when an action answers
    ``reauthentication_required``.
    """
    namespace = request.resolver_match.namespace if request.resolver_match else None
    urls = {
        key: reverse(f"django_passkeys:{name}", current_app=namespace)
        for key, name in ENDPOINTS.items()
        if reauth or not key.startswith("reauth")
    }
    return {
        "csrf": get_token(request),
        "next": next_url,
        "urls": urls,
        "messages": client_messages(),
    }


def safe_next_url(request: HttpRequest, candidate: Any, default: str = "") -> str:
    """``candidate`` when it is a URL on this site (a safe ``next``), else ``default``."""
    if (
        isinstance(candidate, str)
        and candidate
        and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return candidate
    return default


def with_next(url: str, next_url: str) -> str:
    """``url`` with ``next`` appended to its query string when there is one."""
    if not next_url:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'next': next_url})}"


def other_login_url(request: HttpRequest, next_url: str = "") -> str | None:
    """The project's other sign-in page, or ``None`` when that is the passkey page itself."""
    url = resolve_url(conf.PASSKEYS_OTHER_LOGIN_URL)
    if url.split("?")[0] == reverse("django_passkeys:login").split("?")[0]:
        return None
    return with_next(url, next_url)


def recovery_url() -> str | None:
    """``PASSKEYS_RECOVERY_URL``, else the project's ``password_reset`` page, else ``None``."""
    configured = conf.PASSKEYS_RECOVERY_URL
    if configured:
        return resolve_url(configured)
    try:
        return reverse("password_reset")
    except NoReverseMatch:
        return None


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
