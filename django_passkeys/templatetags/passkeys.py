"""``{% load passkeys %}``: the JS shim and stylesheet tags (CSP-nonce aware), provider lookup."""

from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_passkeys import aaguids
from django_passkeys.aaguids import Provider

register = template.Library()


def csp_nonce(context: template.Context) -> str:
    """The page's CSP nonce: Django's ``csp_nonce`` context variable or ``request.csp_nonce``."""
    nonce = context.get("csp_nonce")
    if not nonce:
        nonce = getattr(context.get("request"), "csp_nonce", None)
    return str(nonce) if nonce else ""


def _nonce_attribute(context: template.Context) -> SafeString:
    nonce = csp_nonce(context)
    return format_html(' nonce="{}"', nonce) if nonce else SafeString("")


@register.simple_tag(takes_context=True)
def passkeys_js(context: template.Context) -> SafeString:
    """``<script defer>`` for ``passkeys.js``; it reads its settings from ``#passkeys-config``."""
    return format_html(
        '<script src="{}" defer{}></script>',
        static("django_passkeys/passkeys.js"),
        _nonce_attribute(context),
    )


@register.simple_tag(takes_context=True)
def passkeys_css(context: template.Context) -> SafeString:
    """``<link rel="stylesheet">`` for the default look, ``passkeys.css``."""
    return format_html(
        '<link rel="stylesheet" href="{}"{}>',
        static("django_passkeys/passkeys.css"),
        _nonce_attribute(context),
    )


@register.filter
def passkey_provider(aaguid: Any) -> Provider | None:
    """``{{ credential.aaguid|passkey_provider }}``: the provider from the AAGUID list, or None."""
    return aaguids.provider_for(aaguid)
