"""Authentication backend for verified passkey credentials.

Add ``"django_passkeys.backends.PasskeyBackend"`` to ``AUTHENTICATION_BACKENDS`` next to the
project's other backends (order does not matter: it only answers a ``credential=`` keyword).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from .models import Credential


class PasskeyBackend(BaseBackend):
    """Signs in the owner of a credential that :mod:`django_passkeys.ceremonies` verified.

    It never parses WebAuthn data: it only refuses revoked credentials and inactive users.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        credential: Credential | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if credential is None or not credential.is_active:
            return None
        user: AbstractBaseUser = credential.user
        if not getattr(user, "is_active", True):
            return None
        return user

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            user = model._default_manager.get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if getattr(user, "is_active", True) else None
