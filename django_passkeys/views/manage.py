"""The passkey management page and its rename and remove endpoints, plus provider icons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView
from webauthn.helpers import bytes_to_base64url

from django_passkeys import aaguids, audit, signal_api, signals
from django_passkeys.aaguids import Provider
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Credential
from django_passkeys.sessions import CREDENTIAL_KEY, is_recently_authenticated

from .base import JsonEndpoint, check_csrf, enforce_body_limit
from .pages import other_login_url, page_config
from .reauth import signed_in_user

#: Longest passkey name (the model field's length).
MAX_NAME_LENGTH = 128
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


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
        )
        return context


def owned_credential(user: AbstractBaseUser, pk: int, *, lock: bool = False) -> Credential:
    """``user``'s live credential ``pk``; anyone else's is ``not_found`` too, so none leaks."""
    queryset = Credential.objects.active().filter(pk=pk, user_id=user.pk)
    credential = (queryset.select_for_update() if lock else queryset).first()
    if credential is None:
        raise PasskeyError(Reason.NOT_FOUND)
    return credential


@method_decorator(csrf_exempt, name="dispatch")  # checked in dispatch, as in JsonEndpoint
@method_decorator(never_cache, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class ManageEndpoint(JsonEndpoint):
    """A JSON endpoint that also takes the management page's plain form posts.

    Without JavaScript the page's forms post here; they get a redirect back to the page and a
    message instead of JSON, through the same checks and the same :meth:`post_json`.
    """

    done_message: ClassVar[Promise]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and request.content_type in _FORM_TYPES:
            return self.post_form(request)
        return super().dispatch(request, *args, **kwargs)

    def post_form(self, request: HttpRequest) -> HttpResponse:
        try:
            enforce_body_limit(request)
            check_csrf(request)
            self.post_json(request, request.POST.dict())
        except PasskeyError as error:
            self.on_failure(request, error)
            messages.error(request, str(error.message), fail_silently=True)
        else:
            messages.success(request, str(self.done_message), fail_silently=True)
        response = HttpResponseRedirect(reverse("django_passkeys:manage"))
        response.status_code = 303
        return response


class RenameView(ManageEndpoint):
    """POST ``manage/<pk>/rename`` ``{"name"}``: rename one of the user's passkeys."""

    event_type = AuthEvent.Type.RENAME
    done_message = _("Passkey renamed.")

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        user = signed_in_user(request)
        credential = owned_credential(user, self.kwargs["pk"])
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
            raise PasskeyError(Reason.MALFORMED_REQUEST, "name must be 1-128 characters")
        credential.name = name.strip()
        credential.save(update_fields=["name"])
        audit.record(request, self.event_type, success=True, user=user, credential=credential)
        return JsonResponse(
            {
                "id": bytes_to_base64url(bytes(credential.credential_id)),
                "name": credential.name,
                "signal": signal_api.current_user_details(user),
            }
        )


class RemoveView(ManageEndpoint):
    """POST ``manage/<pk>/remove``: revoke one of the user's passkeys (recent sign-in needed)."""

    event_type = AuthEvent.Type.REVOKE
    done_message = _("Passkey removed.")

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        user = signed_in_user(request)
        with transaction.atomic():
            credential = owned_credential(user, self.kwargs["pk"], lock=True)
            if not is_recently_authenticated(request):
                raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED)
            credential.revoke(by=user, reason="removed by user")
        audit.record(request, self.event_type, success=True, user=user, credential=credential)
        signals.passkey_revoked.send(
            sender=type(self), request=request, user=user, credential=credential, revoked_by=user
        )
        return JsonResponse(
            {
                "removed": bytes_to_base64url(bytes(credential.credential_id)),
                "signal": signal_api.all_accepted_credentials(user),
            }
        )


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
