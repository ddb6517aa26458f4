"""Step-up reauthentication: a passkey assertion that renews the session's sign-in time."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse

from django_passkeys import audit, ceremonies
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Challenge, Credential
from django_passkeys.sessions import mark_reauthenticated

from .base import JsonEndpoint
from .ceremony import verify_assertion


def signed_in_user(request: HttpRequest) -> AbstractBaseUser:
    """The signed-in user, or ``not_authenticated``."""
    user = request.user
    if not user.is_authenticated:
        raise PasskeyError(Reason.NOT_AUTHENTICATED)
    return user


class ReauthOptionsView(JsonEndpoint):
    """POST ``reauth/options``: request options listing the signed-in user's passkeys."""

    event_type = AuthEvent.Type.REAUTH

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        user = signed_in_user(request)
        return JsonResponse(
            ceremonies.authentication_options(request, user=user, purpose=Challenge.Purpose.REAUTH)
        )


class ReauthVerifyView(JsonEndpoint):
    """POST ``reauth/verify``: verify the assertion and stamp the session as recently signed in."""

    event_type = AuthEvent.Type.REAUTH

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        user = signed_in_user(request)

        def session_owner(credential: Credential) -> AbstractBaseUser:
            # The challenge already names this user (§7.2 step 6); this guards the session too.
            if credential.user_id != user.pk:
                raise PasskeyError(Reason.CREDENTIAL_NOT_ALLOWED, "credential of another user")
            return user

        credential, _ = verify_assertion(
            request, data, purpose=Challenge.Purpose.REAUTH, owner=session_owner
        )
        mark_reauthenticated(request)
        audit.record(request, self.event_type, success=True, user=user, credential=credential)
        return JsonResponse({"reauthenticated": True})
