"""The ``sessions/`` page: see where you are signed in, and sign out the other sessions.

ASVS 5.0 V7.4.3 / V7.5.2: a user can list their active sessions and, after authenticating
again, end any or all of the others.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.generic import TemplateView

from django_passkeys import flows
from django_passkeys.models import AuthEvent
from django_passkeys.redirects import passkey_login_url
from django_passkeys.sessions import is_recently_authenticated, live_sessions

from .base import Endpoint, parse_id, signed_in_user


class SessionsView(LoginRequiredMixin, Endpoint, TemplateView):
    """GET lists the signed-in user's sessions; POST ``end`` (a session id, or ``all``) ends them.

    The current session is never ended here (the user has a sign-out link for it); ending
    needs a recent sign-in (``PASSKEYS_REAUTH_MAX_AGE``).
    """

    template_name = "django_passkeys/sessions.html"
    http_method_names = ["get", "post"]
    event_type = AuthEvent.Type.SESSIONS
    form_posts = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        current = self.request.session.session_key
        rows = live_sessions(self.request.user)
        context.update(
            current_session=next((r for r in rows if r.session_key == current), None),
            other_sessions=[r for r in rows if r.session_key != current],
            can_end=is_recently_authenticated(self.request),
            # Signing in again makes the sign-in recent, and comes back here.
            fresh_login_url=passkey_login_url(self.request.get_full_path()),
        )
        return context

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request, recent=True)
        target = data.get("end")
        pk = None if target == "all" else parse_id(target)
        return {"ended": flows.end_sessions(request, user, pk=pk)}

    def form_message(self, payload: dict[str, Any]) -> Any:
        if not payload["ended"]:
            return _("No other session was signed in.")
        return ngettext(
            "Signed out of %(count)d other session.",
            "Signed out of %(count)d other sessions.",
            payload["ended"],
        ) % {"count": payload["ended"]}
