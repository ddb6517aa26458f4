"""``/.well-known/webauthn``: WebAuthn L3 §5.11 Related Origin Requests."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from django_passkeys.ceremonies import RelyingParty
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError


@require_GET
def well_known_webauthn(request: HttpRequest) -> HttpResponse:
    """Publish ``PASSKEYS_RELATED_ORIGINS``; 404 when none are configured.

    On a multi-tenant site, at each host only the related origins its own Relying Party allows:
    a tenant's RP ID is never lent to the origins of another.
    """
    origins = conf.PASSKEYS_RELATED_ORIGINS
    if origins and RelyingParty.decided_per_request():
        try:
            allowed = RelyingParty.for_request(request).origins
        except PasskeyError:
            allowed = ()
        origins = [o for o in origins if o in allowed]
    if not origins:
        raise Http404("no related origins configured")
    response = JsonResponse({"origins": origins})
    response["Cache-Control"] = "public, max-age=3600"
    return response
