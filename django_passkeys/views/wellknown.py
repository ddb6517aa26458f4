"""``/.well-known/webauthn``: WebAuthn L3 §5.11 Related Origin Requests."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from django_passkeys.conf import conf


@require_GET
def well_known_webauthn(request: HttpRequest) -> HttpResponse:
    """Publish ``PASSKEYS_RELATED_ORIGINS``; 404 when none are configured."""
    origins = conf.PASSKEYS_RELATED_ORIGINS
    if not origins:
        raise Http404("no related origins configured")
    response = JsonResponse({"origins": origins})
    response["Cache-Control"] = "public, max-age=3600"
    return response
