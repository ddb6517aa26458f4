"""``{% load passkeys %}``: the JS shim and stylesheet tags (CSP-nonce aware), provider lookup,
browsers and times as a person reads them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.forms import BoundField
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.template.base import Parser, Token
from django.template.loader_tags import BLOCK_CONTEXT_KEY, ExtendsNode
from django.templatetags.static import static
from django.urls import Resolver404, get_script_prefix, resolve, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, npgettext_lazy

from django_passkeys import aaguids, user_agents
from django_passkeys.aaguids import Provider
from django_passkeys.conf import conf
from django_passkeys.redirects import safe_next_url
from django_passkeys.views.shim import page_config

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


@register.filter
def browser_label(user_agent: Any) -> str:
    """``{{ session.user_agent|browser_label }}``: "Chrome on Linux", or the header if unknown."""
    return user_agents.label(str(user_agent or ""))


#: Younger than this reads "just now": "0 minutes ago" reads like a bug.
JUST_NOW = timedelta(minutes=1)

#: timesince's units inside "… ago", with their own context: there German needs the dative
#: ("vor 2 Tagen", where Django's own units give "2 Tage"). Lazy, as timesince's own are.
AGO_UNITS: dict[str, Any] = {
    "year": npgettext_lazy("time ago", "%(num)d year", "%(num)d years", "num"),
    "month": npgettext_lazy("time ago", "%(num)d month", "%(num)d months", "num"),
    "week": npgettext_lazy("time ago", "%(num)d week", "%(num)d weeks", "num"),
    "day": npgettext_lazy("time ago", "%(num)d day", "%(num)d days", "num"),
    "hour": npgettext_lazy("time ago", "%(num)d hour", "%(num)d hours", "num"),
    "minute": npgettext_lazy("time ago", "%(num)d minute", "%(num)d minutes", "num"),
}


@register.filter
def ago(value: datetime | None) -> str:
    """``{{ session.created_at|ago }}``: "just now" under a minute, else "5 minutes ago"."""
    if value is None:
        return ""
    if timezone.now() - value < JUST_NOW:
        return _("just now")
    return _("%(delta)s ago") % {"delta": timesince(value, time_strings=AGO_UNITS)}


# -- Pages inside the site: the base template, the account links ---------------------------------


class BaseTemplateNode(ExtendsNode):
    """``{% extends %}`` whose parent is ``PASSKEYS_BASE_TEMPLATE``, read when the page renders.

    It follows ``{% load passkeys %}``, so it cannot be a template's first tag as ``{% extends %}``
    is; a template extending this one therefore takes it for a root template and registers its
    blocks already. They are taken out again here, so that ``{% extends %}`` registers them once,
    in their place between the page's blocks and the base template's.
    """

    must_be_first = False

    def get_parent(self, context: template.Context) -> template.Template:
        parent: template.Template = self.find_template(conf.PASSKEYS_BASE_TEMPLATE, context)
        return parent

    def render(self, context: template.Context) -> SafeString:
        block_context = context.render_context.get(BLOCK_CONTEXT_KEY)
        if block_context is not None:
            for name, block in self.blocks.items():
                queue = block_context.blocks[name]
                if block in queue:
                    queue.remove(block)
        return SafeString(super().render(context))


@register.tag("passkeys_extends_base")
def passkeys_extends_base(parser: Parser, token: Token) -> BaseTemplateNode:
    """``{% passkeys_extends_base %}``: the rest of the template extends ``PASSKEYS_BASE_TEMPLATE``
    (used by ``django_passkeys/page.html``, which every page extends)."""
    if len(token.split_contents()) != 1:
        raise template.TemplateSyntaxError("passkeys_extends_base takes no arguments")
    nodelist = parser.parse()
    if nodelist.get_nodes_by_type(ExtendsNode):
        raise template.TemplateSyntaxError("passkeys_extends_base cannot be used with extends")
    # The name only shows in the node's repr; get_parent reads the setting.
    return BaseTemplateNode(nodelist, parser.compile_filter('"PASSKEYS_BASE_TEMPLATE"'))


def _request(context: template.Context) -> HttpRequest | None:
    request = getattr(context, "request", None) or context.get("request")
    return request if isinstance(request, HttpRequest) else None


@dataclass(frozen=True)
class AccountLink:
    """A link of the account navigation: one of the app's signed-in pages."""

    url: str
    label: str
    current: bool


@dataclass(frozen=True)
class Account:
    """What the account navigation of a page shows: who is signed in, the links, the sign-out."""

    user: Any
    links: list[AccountLink]
    sign_out_url: str


#: The signed-in pages the account navigation links, by URL name.
ACCOUNT_PAGES = (
    ("security", gettext_lazy("Sign-in and security")),
    ("manage", gettext_lazy("Passkeys")),
    ("sessions", gettext_lazy("Where you're signed in")),
)


def sign_out_url() -> str:
    """Where "Sign out" posts: ``PASSKEYS_LOGOUT_URL`` resolved, else the app's ``sign-out/``."""
    configured = conf.PASSKEYS_LOGOUT_URL
    return str(resolve_url(configured)) if configured else reverse("django_passkeys:sign-out")


@register.simple_tag(takes_context=True)
def passkeys_account(context: template.Context) -> Account | None:
    """``{% passkeys_account as account %}``: the signed-in user, the links between the app's
    pages (the current one marked) and the sign-out URL; ``None`` when nobody is signed in."""
    request = _request(context)
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return None
    match = request.resolver_match
    here = match.url_name if match is not None and "django_passkeys" in match.app_names else None
    links = [
        AccountLink(reverse(f"django_passkeys:{name}"), str(label), name == here)
        for name, label in ACCOUNT_PAGES
    ]
    return Account(user=user, links=links, sign_out_url=sign_out_url())


@register.simple_tag
def passkeys_home() -> dict[str, str]:
    """``{% passkeys_home as home %}``: the site's name (``PASSKEYS_RP_NAME``) and its home page,
    ``/`` when the project has one, else the app's ``security/`` page."""
    try:
        resolve("/")
        url = get_script_prefix()
    except Resolver404:
        url = reverse("django_passkeys:security")
    return {"name": conf.PASSKEYS_RP_NAME, "url": url}


# -- Passkey sign-in on the site's own login page -------------------------------------------------


@register.inclusion_tag("django_passkeys/partials/_passkey_login.html", takes_context=True)
def passkey_login(context: template.Context, stylesheet: bool = True) -> dict[str, Any]:
    """``{% passkey_login %}``: passkey sign-in on a page of your own (your login page).

    Renders the "Use passkey" button, the status region, the ``passkeys-config`` JSON and the
    script; ``stylesheet=False`` leaves ``passkeys.css`` out. Place it outside your ``<form>``.
    Autofill needs the username field's ``autocomplete="username webauthn"``: see
    :func:`passkey_autofill`. A safe ``next`` in the query string is where sign-in goes.
    """
    request = _request(context)
    if request is None:
        raise ImproperlyConfigured(
            "{% passkey_login %} needs the request: render the page with a request "
            "(render(request, ...), a class-based view, or TemplateResponse)."
        )
    next_url = safe_next_url(request, request.GET.get("next") or context.get("next"))
    return {
        "passkeys_config": page_config(request, next_url=next_url),
        "stylesheet": stylesheet,
        "request": request,
        "csp_nonce": csp_nonce(context),
    }


#: The ``autocomplete`` tokens of a username field that offers passkeys in its autofill.
AUTOFILL = "username webauthn"


@register.filter
def passkey_autofill(field: BoundField) -> SafeString:
    """``{{ form.username|passkey_autofill }}``: the field with ``autocomplete="username
    webauthn"``, so the browser offers passkeys in its autofill (conditional mediation)."""
    return field.as_widget(attrs={"autocomplete": AUTOFILL})


@register.simple_tag
def passkey_autofill_attrs() -> SafeString:
    """``<input name="username"{% passkey_autofill_attrs %}>``: the same for a hand-written
    field."""
    return format_html(' autocomplete="{}"', AUTOFILL)


@register.simple_tag
def passkeys_admin_login() -> bool:
    """``{% passkeys_admin_login as enabled %}``: whether ``PASSKEYS_ADMIN_LOGIN`` is on, for the
    admin's sign-in page (``admin/django_passkeys/login.html``)."""
    return conf.PASSKEYS_ADMIN_LOGIN
