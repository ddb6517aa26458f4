"""The ``recovery-codes/`` page: how many codes are left, and a new set, shown once."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from django_passkeys import flows
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent
from django_passkeys.redirects import other_login_url, passkey_login_url

from .base import Endpoint, parse_id, signed_in_user
from .shim import page_config

#: The name the "Download as text" link gives the file.
DOWNLOAD_NAME = "recovery-codes.txt"


def parse_generation(value: object) -> int | None:
    """The ``replaces`` field: absent, or the generation of the set the page showed."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # JSON clients may send a number; the same rule as a form's text
    if isinstance(value, str):
        return parse_id(value)
    raise PasskeyError(Reason.MALFORMED_REQUEST, "replaces is not a generation")


def download_url(user: Any, codes: tuple[str, ...]) -> str:
    """A ``data:text/plain`` URL of the codes, for a link with the ``download`` attribute.

    A download needs neither script nor a request: it works without JavaScript and under a
    Content-Security-Policy, which does not govern downloads, and the codes never travel again.
    """
    lines = [
        _("Recovery codes for %(username)s") % {"username": user.get_username()},
        _("Generated %(date)s") % {"date": date_format(timezone.localtime(), "DATETIME_FORMAT")},
        "",
        _("Each code works once. Keep them somewhere safe, away from your devices."),
        "",
        *codes,
        "",
    ]
    return "data:text/plain;charset=utf-8," + quote("\r\n".join(lines), safe="")


class RecoveryCodesView(Endpoint):
    """GET shows the signed-in user's recovery codes state; POST generates a new set.

    POST ``{"replaces": <generation>}`` (optional) answers JSON ``{"codes": [...]}``; a form
    post renders the codes on a page of their own, once: nothing keeps them, and sending the
    form again changes nothing (``recovery_codes_changed``).
    """

    template_name = "django_passkeys/recovery_codes.html"
    #: The page that shows a new set, once.
    new_codes_template_name = "django_passkeys/recovery_codes_new.html"
    http_method_names = ["get", "post"]
    event_type = AuthEvent.Type.RECOVERY_CODES
    form_posts = True

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Not LoginRequiredMixin: it would answer an anonymous POST with a redirect too, and
        # replace the pipeline's dispatch (and its CSRF exemption) with its own.
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        state = flows.recovery_codes_state(user)
        confirmation = flows.recovery_codes_confirmation(request, user, replacing=state.enabled)
        here = request.get_full_path()
        context = {
            "state": state,
            "generation": state.generation,
            # passkeys.js confirms with a passkey, then sends the form.
            "confirm_with_passkey": confirmation == "passkey",
            "needs_fresh_login": confirmation == "sign_in",
            "fresh_login_url": (
                passkey_login_url(here)
                if confirmation == "passkey"
                else other_login_url(request, here)
            ),
            "passkeys_config": page_config(request, reauth=confirmation == "passkey"),
        }
        return render(request, self.template_name, context)

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        replaces = parse_generation(data.get("replaces"))
        generated = flows.generate_recovery_codes(request, user, replaces=replaces)
        return {"codes": list(generated.codes)}

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        codes = tuple(payload["codes"])
        context = {
            "codes": codes,
            "page_url": request.path,
            "download_url": download_url(request.user, codes),
            "download_name": DOWNLOAD_NAME,
        }
        # Rendered as the POST's answer (never_cache, like every answer of the pipeline), not
        # redirected to: a redirect would need the codes kept somewhere until the next request.
        return render(request, self.new_codes_template_name, context)
