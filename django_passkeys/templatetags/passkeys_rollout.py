"""``{% load passkeys_rollout %}``: whether to offer passkeys to the page's user.

``{% passkeys_offered as offered %}{% if offered %}…{% endif %}`` on any page rendered with a
request (``django.template.context_processors.request``): the enrolment prompt, an "Add a
passkey" link. ``PASSKEYS_ROLLOUT`` decides (see :mod:`django_passkeys.rollout`).
"""

from __future__ import annotations

from django import template

from django_passkeys import rollout

register = template.Library()


@register.simple_tag(takes_context=True)
def passkeys_offered(context: template.Context) -> bool:
    """Whether the request's user is offered passkeys now (``False`` without a request)."""
    request = context.get("request")
    return rollout.passkeys_offered(request) if request is not None else False
