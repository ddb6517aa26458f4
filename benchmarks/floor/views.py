"""Two bare views around py_webauthn: the least a correct passkey sign-in can do in Django.

The challenge lives in the session; verify looks the credential up by its id (with its user, one
query), lets py_webauthn check the assertion, stores the counter when it moved (WebAuthn L3
§7.2 step 22) and calls ``login()``. No rate limits, audit trail, session index or sign-in
policies: the figures of the real apps are read as multiples of these.
"""

from __future__ import annotations

import json

from django.contrib.auth import login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    options_to_json,
    verify_authentication_response,
)
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.structs import UserVerificationRequirement

from .models import FloorCredential

RP_ID = "testserver"
ORIGIN = "https://testserver"
CHALLENGE_KEY = "floor_challenge"


@require_POST
def login_options(request: HttpRequest) -> JsonResponse:
    options = generate_authentication_options(
        rp_id=RP_ID, user_verification=UserVerificationRequirement.PREFERRED
    )
    request.session[CHALLENGE_KEY] = bytes_to_base64url(options.challenge)
    return JsonResponse(json.loads(options_to_json(options)))


@require_POST
def login_verify(request: HttpRequest) -> JsonResponse:
    challenge = request.session.pop(CHALLENGE_KEY, None)
    if challenge is None:
        return JsonResponse({"error": "no challenge"}, status=400)
    try:
        credential = parse_authentication_credential_json(json.loads(request.body))
        row = FloorCredential.objects.select_related("user").get(credential_id=credential.raw_id)
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=bytes(row.public_key),
            credential_current_sign_count=row.sign_count,
        )
    except Exception as exc:  # noqa: BLE001 - the floor answers any failure alike
        return JsonResponse({"error": f"{type(exc).__name__}: {exc}"}, status=400)
    if verified.new_sign_count != row.sign_count:
        FloorCredential.objects.filter(pk=row.pk).update(sign_count=verified.new_sign_count)
    login(request, row.user, backend="django.contrib.auth.backends.ModelBackend")
    return JsonResponse({"redirect": "/"})
