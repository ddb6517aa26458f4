"""The "Sign-in and security" page: every way into the account, its state and its next step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys.models import Credential, UserSession
from django_passkeys.passkey_only import passkey_only_state
from django_passkeys.recovery_codes import recovery_codes_state
from django_passkeys.totp import totp_state


@dataclass(frozen=True)
class SecuritySection:
    """One way into the account as the page shows it: a title, its state, what to do next."""

    key: str
    title: str
    state: str
    next_step: str
    url: str
    action: str
    #: Whether the section needs the user's attention (nothing set up, or running low).
    attention: bool


def security_sections(user: Any) -> list[SecuritySection]:
    """The page's sections for ``user``: passkeys, authenticator app, recovery codes, sessions."""
    passkeys = Credential.objects.active().filter(user_id=user.pk).count()
    totp = totp_state(user)
    codes = recovery_codes_state(user)
    sessions = UserSession.objects.filter(user_id=user.pk).count()
    password = passkey_only_state(user)
    return [
        SecuritySection(
            key="passkeys",
            title=_("Passkeys"),
            state=ngettext("%(count)d passkey", "%(count)d passkeys", passkeys)
            % {"count": passkeys}
            if passkeys
            else _("No passkey yet"),
            next_step=""
            if passkeys
            else _("Add a passkey to sign in with your fingerprint, face or screen lock."),
            url=reverse("django_passkeys:manage"),
            action=_("Manage passkeys") if passkeys else _("Add a passkey"),
            attention=not passkeys,
        ),
        SecuritySection(
            key="totp",
            title=_("Authenticator app"),
            # A state here, the same English as the action below: German and French tell
            # them apart ("eingerichtet" / "einrichten").
            state=pgettext("state", "Set up") if totp.status == "confirmed" else _("Not set up"),
            next_step=totp.next_step,
            url=reverse("django_passkeys:totp"),
            action=_("Manage") if totp.status == "confirmed" else _("Set up"),
            attention=totp.status != "confirmed" and not codes.enabled,
        ),
        SecuritySection(
            key="recovery-codes",
            title=_("Recovery codes"),
            state=ngettext("%(count)d code left", "%(count)d codes left", codes.remaining)
            % {"count": codes.remaining}
            if codes.enabled
            else _("Not set up"),
            next_step=codes.next_step,
            url=reverse("django_passkeys:recovery-codes"),
            action=_("Manage") if codes.enabled else _("Set up"),
            attention=not codes.enabled or codes.remaining <= 2,
        ),
        SecuritySection(
            key="passkey-only",
            title=_("Password sign-in"),
            state=password.label,
            next_step=password.next_step,
            url=reverse("django_passkeys:passkey-only"),
            action=_("Manage"),
            attention=False,
        ),
        SecuritySection(
            key="sessions",
            title=_("Where you're signed in"),
            state=ngettext("%(count)d session", "%(count)d sessions", sessions)
            % {"count": sessions},
            next_step="",
            url=reverse("django_passkeys:sessions"),
            action=_("Review sessions"),
            attention=False,
        ),
    ]


@method_decorator(never_cache, name="dispatch")
class SecurityPageView(LoginRequiredMixin, TemplateView):
    """GET ``security/``: passkeys, authenticator app, recovery codes and sessions at a glance."""

    template_name = "django_passkeys/security.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sections"] = security_sections(self.request.user)
        return context
