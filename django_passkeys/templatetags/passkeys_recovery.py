"""``{% load passkeys_recovery %}``: pending recovery approvals, for any page of a signed-in user.

The security page includes ``partials/_pending_approvals.html``, which asks for the approvals
itself, so that no view has to pass them.
"""

from __future__ import annotations

from typing import Any

from django import template

from django_passkeys import flows
from django_passkeys.models import RecoveryRequest
from django_passkeys.user_agents import describe

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_recovery_approvals(context: template.Context) -> list[RecoveryRequest]:
    """``{% pending_recovery_approvals as approvals %}``: the signed-in user's pending ones."""
    request = context.get("request")
    user: Any = getattr(request, "user", None)
    return flows.pending_approvals(user) if user is not None else []


@register.filter
def browser_description(user_agent: Any) -> str:
    """``{{ user_agent|browser_description }}``: "Firefox on Windows", for a person to read."""
    return describe(str(user_agent or ""))
