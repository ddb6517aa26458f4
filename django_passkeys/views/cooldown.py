"""The ``cooldown/`` page: whether high-risk changes are paused, why, and until when."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys.cooldown import TEMPLATE, active_cooldown, page_context


@method_decorator(never_cache, name="dispatch")
class CooldownPageView(LoginRequiredMixin, TemplateView):
    """GET ``cooldown/``: the signed-in user's cooldown, or that none is running.

    The same template answers, with status 403, a project view marked ``@high_risk`` during
    the cooldown.
    """

    template_name = TEMPLATE

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(page_context(active_cooldown(self.request.user)))
        return context
