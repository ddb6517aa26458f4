"""The ``sessions/`` page: see where you are signed in, and sign out the other sessions.

ASVS 5.0 V7.4.3 / V7.5.2: a user can list their active sessions and, after authenticating
again, end any or all of the others.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from django_passkeys import revocation
from django_passkeys.sessions import is_recently_authenticated

from .pages import with_next

logger = logging.getLogger("django_passkeys")


def fresh_login_url(request: HttpRequest) -> str:
    """The passkey sign-in page, coming back here: signing in again makes the login recent."""
    return with_next(reverse("django_passkeys:login"), request.get_full_path())


@method_decorator(never_cache, name="dispatch")
class SessionsView(LoginRequiredMixin, TemplateView):
    """GET lists the signed-in user's sessions; POST ``end`` (a session id, or ``all``) ends them.

    The current session is never ended here (the user has a sign-out link for it); ending
    needs a recent sign-in (``PASSKEYS_REAUTH_MAX_AGE``).
    """

    template_name = "django_passkeys/sessions.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        current = self.request.session.session_key
        rows = revocation.live_sessions(self.request.user)
        context.update(
            current_session=next((r for r in rows if r.session_key == current), None),
            other_sessions=[r for r in rows if r.session_key != current],
            can_end=is_recently_authenticated(self.request),
            fresh_login_url=fresh_login_url(self.request),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_recently_authenticated(request):
            messages.error(
                request, _("For your security, sign in again first."), fail_silently=True
            )
            return self.render_to_response(self.get_context_data(), status=403)
        target = request.POST.get("end", "")
        keep = request.session.session_key
        if target == "all":
            ended = revocation.end_user_sessions(request.user, keep=keep)
        elif target.isdigit():
            ended = revocation.end_user_sessions(request.user, keep=keep, pk=int(target))
        else:
            ended = 0
        logger.info(
            "passkey sessions ended by user: %d",
            ended,
            extra={"passkeys_event": "sessions_ended", "passkeys_sessions_ended": ended},
        )
        if ended:
            messages.success(
                request,
                _("Signed out of %(count)d other session(s).") % {"count": ended},
                fail_silently=True,
            )
        return HttpResponseRedirect(request.get_full_path(), status=303)
