"""``RevokedCredentialMiddleware``: revocation reaches every session, whatever happened to it.

Revoking a passkey deletes the sessions it established through the session index (see
:mod:`django_passkeys.sessions`). This middleware, required after ``AuthenticationMiddleware``
(check ``passkeys.E017``), covers what the index alone cannot:

- before the view, a session established by a passkey that is no longer active (revoked with
  ``QuerySet.update()``, or whose key rotated before the index could follow) is signed out:
  one indexed query per request of a passkey-established session, none for other sessions;
- after the view, a session key rotated without a login (``update_session_auth_hash()`` after a
  password change) is followed in the index: no query unless the key changed.

Both steps read the session and the database: when either does not answer, a request for one of
the app's URLs gets the ``503`` ``service_unavailable`` JSON error rather than a ``500`` (other
requests fail as the project's own pages would).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from django_passkeys.sessions import follow_key_rotation, sign_out_if_revoked
from django_passkeys.views.base import SERVICE_ERRORS, app_event_type, service_unavailable


class RevokedCredentialMiddleware:
    """Signs out sessions of revoked or deleted passkeys; keeps the session index on rotation."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            sign_out_if_revoked(request)
        except SERVICE_ERRORS as exc:
            return self._unavailable(request, exc)
        session = getattr(request, "session", None)
        key = session.session_key if session is not None else None
        response = self.get_response(request)
        try:
            follow_key_rotation(request, key)
        except SERVICE_ERRORS as exc:
            return self._unavailable(request, exc)
        return response

    def _unavailable(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        event_type = app_event_type(request)
        if event_type is None:
            raise exc
        return service_unavailable(request, event_type, exc).to_response()
