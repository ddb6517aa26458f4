"""The example project's own page: register a passkey, or sign in with one."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.views.generic import TemplateView

from django_passkeys.conf import conf
from django_passkeys.models import Credential


class HomeView(TemplateView):
    """Signed out: sign in with a passkey or a password. Signed in: the user's passkeys."""

    template_name = "example/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["passkeys"] = (
            list(Credential.objects.active().filter(user_id=user.pk).order_by("created_at"))
            if user.is_authenticated
            else []
        )
        context["rp_id"] = conf.PASSKEYS_RP_ID
        context["example_origin"] = getattr(settings, "EXAMPLE_ORIGIN", "")
        return context
