"""Where a page sends the user next: safe ``next`` URLs and the project's other pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from django_passkeys.conf import conf


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


def passkey_login_url(next_url: str = "") -> str:
    """The passkey sign-in page, coming back to ``next_url``."""
    return with_next(reverse("django_passkeys:login"), next_url)


def other_login_url(request: HttpRequest, next_url: str = "") -> str | None:
    """The project's other sign-in page, or ``None`` when that is the passkey page itself."""
    url = resolve_url(conf.PASSKEYS_OTHER_LOGIN_URL)
    if url.split("?")[0] == reverse("django_passkeys:login").split("?")[0]:
        return None
    return with_next(url, next_url)


def recovery_url() -> str:
    """The "Recover account" page: ``PASSKEYS_RECOVERY_URL`` resolved, by default the app's own.

    The app's ``recover/`` page asks for a mailbox link and a second factor. There is
    deliberately no fallback to Django's ``password_reset``: a reset by e-mail alone would let
    whoever reads the mailbox sign in and remove every passkey (DESIGN rule 7).
    """
    configured = conf.PASSKEYS_RECOVERY_URL
    return resolve_url(configured) if configured else reverse("django_passkeys:recover")


def support_url() -> str | None:
    """``PASSKEYS_SUPPORT_URL`` resolved (a URL or a URL name), or ``None``."""
    value = conf.PASSKEYS_SUPPORT_URL
    if not value:
        return None
    try:
        return str(resolve_url(value))
    except NoReverseMatch:
        return None
