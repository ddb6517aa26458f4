"""``RevokedCredentialMiddleware``: revocation reaches every session, whatever happened to it.

Revoking a passkey deletes the sessions it established through the session index (see
:mod:`django_passkeys.sessions`). This middleware, required after ``AuthenticationMiddleware``
(check ``passkeys.E017``), covers what the index alone cannot:

- before the view, a session established by a passkey that is no longer active (revoked with
  ``QuerySet.update()``, or whose key rotated before the index could follow) is signed out:
  one indexed query per request of a passkey-established session, none for other sessions;
- after the view, a session key rotated without a login (``update_session_auth_hash()`` after a
  password change) is followed in the index: no query unless the key changed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from django_passkeys.sessions import follow_key_rotation, sign_out_if_revoked


class RevokedCredentialMiddleware:
    """Signs out sessions of revoked or deleted passkeys; keeps the session index on rotation."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sign_out_if_revoked(request)
        session = getattr(request, "session", None)
        key = session.session_key if session is not None else None
        response = self.get_response(request)
        follow_key_rotation(request, key)
        return response
