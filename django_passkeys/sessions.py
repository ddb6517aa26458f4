"""What the app keeps in the session: when the user signed in, and with which passkey."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import login
from django.http import HttpRequest

from .conf import conf

AUTH_TIME_KEY = "_passkeys_auth_time"
CREDENTIAL_KEY = "_passkeys_credential"
_LOGIN_CREDENTIAL_ATTR = "_passkeys_login_credential"


def record_login_time(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: every login, password logins included, stamps the session."""
    if request is not None and hasattr(request, "session"):
        mark_reauthenticated(request)


def record_credential(request: HttpRequest, credential_pk: int) -> None:
    """Remember which credential established this session, so revoking it can end the session."""
    request.session[CREDENTIAL_KEY] = credential_pk


def login_with_credential(request: HttpRequest, user: Any, credential_pk: int) -> None:
    """``login()`` with a verified passkey: rotate the session key and CSRF token, then record it.

    The credential travels to the ``user_logged_in`` receivers on the request (read with
    :func:`logging_in_with`), so the session index is written with it in one insert.
    """
    setattr(request, _LOGIN_CREDENTIAL_ATTR, credential_pk)
    try:
        login(request, user)
    finally:
        delattr(request, _LOGIN_CREDENTIAL_ATTR)
    record_credential(request, credential_pk)


def logging_in_with(request: HttpRequest) -> int | None:
    """The credential of the passkey login in progress on ``request``, if any."""
    value = getattr(request, _LOGIN_CREDENTIAL_ATTR, None)
    return value if isinstance(value, int) else None


def mark_reauthenticated(request: HttpRequest) -> None:
    """Stamp the session's sign-in time: at every login and after a step-up reauthentication."""
    request.session[AUTH_TIME_KEY] = int(time.time())


def is_recently_authenticated(request: HttpRequest) -> bool:
    """Whether the session's sign-in is younger than ``PASSKEYS_REAUTH_MAX_AGE``."""
    stamp = request.session.get(AUTH_TIME_KEY)
    if not isinstance(stamp, int):
        return False
    return 0 <= time.time() - stamp <= conf.PASSKEYS_REAUTH_MAX_AGE
