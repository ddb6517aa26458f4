"""The passkey management page and its rename and remove endpoints, plus provider icons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView
from webauthn.helpers import bytes_to_base64url

from django_passkeys import aaguids, flows, signal_api
from django_passkeys.aaguids import Provider
from django_passkeys.models import AuthEvent, Credential
from django_passkeys.redirects import other_login_url
from django_passkeys.rollout import passkeys_offered
from django_passkeys.sessions import CREDENTIAL_KEY, is_recently_authenticated

from .base import Endpoint, signed_in_user
from .shim import page_config


@dataclass(frozen=True)
class PasskeyCard:
    """What a card on the management page shows about one credential."""

    credential: Credential
    provider: Provider | None
    title: str
    is_current: bool

    @property
    def synced(self) -> bool:
        """Backed up to a provider (backup state), as opposed to bound to one device."""
        return self.credential.backup_state


def passkey_cards(request: HttpRequest, user: AbstractBaseUser) -> list[PasskeyCard]:
    """Cards for ``user``'s live passkeys, newest first."""
    current = request.session.get(CREDENTIAL_KEY)
    cards = []
    for credential in Credential.objects.active().filter(user_id=user.pk):
        provider = aaguids.provider_for(credential.aaguid)
        title = credential.name or (provider.name if provider else "") or str(credential)
        cards.append(PasskeyCard(credential, provider, title, credential.pk == current))
    return cards


@method_decorator(never_cache, name="dispatch")
class ManagePageView(LoginRequiredMixin, TemplateView):
    """GET ``manage/``: the signed-in user's passkeys; add, rename and remove them."""

    template_name = "django_passkeys/manage.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        assert user.is_authenticated  # LoginRequiredMixin
        cards = passkey_cards(self.request, user)
        recent = is_recently_authenticated(self.request)
        context.update(
            cards=cards,
            recently_authenticated=recent,
            # Without a passkey, only signing in again can renew an old session.
            needs_fresh_login=not recent and not cards,
            fresh_login_url=other_login_url(self.request, self.request.get_full_path()),
            passkeys_config=page_config(self.request, reauth=bool(cards)),
            # PASSKEYS_ROLLOUT: the "Add a passkey" button is for users offered passkeys (and
            # those who already have one).
            passkeys_offered=passkeys_offered(self.request),
        )
        return context


class ManageEndpoint(Endpoint):
    """An endpoint of the management page: JSON from the shim, plain form posts without it."""

    form_posts = True

    def redirect_back(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("django_passkeys:manage"), status=303)


class RenameView(ManageEndpoint):
    """POST ``manage/<pk>/rename`` ``{"name"}``: rename one of the user's passkeys."""

    event_type = AuthEvent.Type.RENAME
    success_message = _("Passkey renamed.")

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        credential = flows.rename(request, user, self.kwargs["pk"], data.get("name"))
        return {
            "id": bytes_to_base64url(bytes(credential.credential_id)),
            "name": credential.name,
            "signal": signal_api.current_user_details(user, request=request),
        }


class RemoveView(ManageEndpoint):
    """POST ``manage/<pk>/remove``: revoke one of the user's passkeys (recent sign-in needed)."""

    event_type = AuthEvent.Type.REVOKE
    success_message = _("Passkey removed.")

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        credential = flows.remove(request, user, self.kwargs["pk"])
        return {
            "removed": bytes_to_base64url(bytes(credential.credential_id)),
            "signal": signal_api.all_accepted_credentials(user, request=request),
        }


@require_GET
def provider_icon(request: HttpRequest, aaguid: Any, variant: str) -> HttpResponse:
    """GET ``providers/<aaguid>/<light|dark>``: a provider's icon, served from the AAGUID list.

    Served from this site rather than inlined as ``data:`` URIs so that pages work under
    ``img-src 'self'``.
    """
    provider = aaguids.provider_for(aaguid)
    if provider is None or variant not in ("light", "dark") or not provider.has_icon:
        raise Http404("no icon")
    content_type, body = aaguids.decode_icon(
        provider.icon("dark" if variant == "dark" else "light")
    )
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    # An SVG opened on its own must not run scripts.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response
