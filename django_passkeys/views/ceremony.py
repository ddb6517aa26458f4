"""The four ceremony endpoints of the HTTP contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from webauthn.helpers import bytes_to_base64url

from django_passkeys import audit, ceremonies, ratelimits, signal_api, signals
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Challenge, Credential
from django_passkeys.sessions import is_recently_authenticated, login_with_credential

from .base import JsonEndpoint
from .pages import safe_next_url


def require_recent_login(request: HttpRequest) -> None:
    """Signed in, and signed in within ``PASSKEYS_REAUTH_MAX_AGE``."""
    if not request.user.is_authenticated:
        raise PasskeyError(Reason.NOT_AUTHENTICATED)
    if not is_recently_authenticated(request):
        raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED)


def verify_assertion(
    request: HttpRequest,
    data: dict[str, Any],
    *,
    purpose: Challenge.Purpose,
    owner: Callable[[Credential], Any],
) -> tuple[Credential, Any]:
    """Verify an assertion and accept its owner, counting failures against the account.

    ``owner(credential)`` returns the user to act for or raises :class:`PasskeyError`. It runs in
    the transaction of the verification, so a refused owner rolls back the consumed challenge
    and the counter update: a failure writes nothing but its audit trail.
    """
    # NIST SP 800-63B-4 §3.2.2: an account held after failed attempts is not even verified.
    ratelimits.check_assertion_backoff(data)
    try:
        with transaction.atomic():
            credential = ceremonies.verify_authentication(request, data, purpose=purpose)
            user = owner(credential)
    except PasskeyError as error:
        # Outside the transaction, so the failure count and its audit event are kept.
        ratelimits.record_assertion_failure(request, data, error)
        raise
    ratelimits.reset_assertion_failures(credential.user_id)
    return credential, user


class RegistrationOptionsView(JsonEndpoint):
    """POST ``register/options``: creation options for the signed-in user."""

    event_type = AuthEvent.Type.REGISTER

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        require_recent_login(request)
        user = request.user
        assert user.is_authenticated
        return JsonResponse(ceremonies.registration_options(request, user))


class RegistrationVerifyView(JsonEndpoint):
    """POST ``register/verify``: verify the new credential and store it (201)."""

    event_type = AuthEvent.Type.REGISTER

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        require_recent_login(request)
        user = request.user
        assert user.is_authenticated
        name = data.pop("name", "") or ""
        # NUL is refused: PostgreSQL text cannot hold it.
        if not isinstance(name, str) or "\x00" in name:
            raise PasskeyError(Reason.MALFORMED_REQUEST, "name is not a string")
        credential = ceremonies.verify_registration(request, user, data, name=name)
        audit.record(request, self.event_type, success=True, user=user, credential=credential)
        signals.passkey_registered.send(
            sender=type(self), request=request, user=user, credential=credential
        )
        return JsonResponse(
            {
                "id": bytes_to_base64url(bytes(credential.credential_id)),
                "name": str(credential),
                "created_at": credential.created_at.isoformat(),
            },
            status=201,
        )


class LoginOptionsView(JsonEndpoint):
    """POST ``login/options``: request options, discoverable unless an e-mail hint is given."""

    event_type = AuthEvent.Type.LOGIN

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        hint = data.get("emailHint")
        # NUL is refused: PostgreSQL cannot compare text holding it.
        if hint is not None and (
            not isinstance(hint, str) or len(hint) > ceremonies.MAX_HINT_LENGTH or "\x00" in hint
        ):
            raise PasskeyError(Reason.MALFORMED_REQUEST, "emailHint")
        return JsonResponse(ceremonies.authentication_options(request, hint or None))


class LoginVerifyView(JsonEndpoint):
    """POST ``login/verify``: verify the assertion, sign the user in, answer the redirect."""

    event_type = AuthEvent.Type.LOGIN

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        next_url = data.pop("next", None) or request.GET.get("next")

        def active_owner(credential: Credential) -> Any:
            user = authenticate(request, credential=credential)
            if user is None:
                raise PasskeyError(Reason.USER_INACTIVE)
            return user

        credential, user = verify_assertion(
            request, data, purpose=Challenge.Purpose.LOGIN, owner=active_owner
        )
        # login() rotates the session key and the CSRF token (security rule 4).
        login_with_credential(request, user, credential.pk)
        audit.record(request, self.event_type, success=True, user=user, credential=credential)
        signals.passkey_login_succeeded.send(
            sender=type(self), request=request, user=user, credential=credential
        )
        return JsonResponse(
            {
                "redirect": safe_next_url(request, next_url, conf.PASSKEYS_LOGIN_REDIRECT_URL),
                # For PublicKeyCredential.signalAllAcceptedCredentials() on the page.
                "signal": signal_api.all_accepted_credentials(user),
            }
        )

    def on_failure(self, request: HttpRequest, error: PasskeyError) -> None:
        super().on_failure(request, error)
        signals.passkey_login_failed.send(
            sender=type(self), request=request, reason_code=error.code.value, credential=None
        )
