"""``RevokedCredentialMiddleware``: sign out a session whose passkey has been revoked.

Revocation already deletes the sessions the credential established (see
:mod:`django_passkeys.revocation`). This middleware is the request-time backstop for what that
index cannot reach: a session whose key rotated after login, or a credential revoked with
``QuerySet.update()``. It costs one indexed query per request of a passkey-established session.
Put it after ``AuthenticationMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from django_passkeys.models import Credential
from django_passkeys.sessions import CREDENTIAL_KEY


class RevokedCredentialMiddleware:
    """Logs out, before the view runs, a session established by a revoked or deleted passkey."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        credential_pk = session.get(CREDENTIAL_KEY) if session is not None else None
        if credential_pk is not None and not (
            Credential.objects.active().filter(pk=credential_pk).exists()
        ):
            logout(request)
        return self.get_response(request)
