"""Authentication backends: verified passkey credentials, and the guard of passkey-only accounts.

Add ``"django_passkeys.backends.PasskeyBackend"`` to ``AUTHENTICATION_BACKENDS`` next to the
project's other backends (order does not matter: it only answers a ``credential=`` keyword).
To let users turn password sign-in off (:mod:`django_passkeys.passkey_only`), replace the
password backend by its guarded form: :class:`PasskeyOnlyModelBackend` for ``ModelBackend``,
or :class:`PasskeyOnlyGuard` mixed into a custom one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend, ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from . import audit
from .errors import REASONS, Reason
from .models import AuthEvent, Credential
from .passkey_only import is_passkey_only


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


class PasskeyOnlyGuard:
    """Mixin for a password backend: refuse passkey-only accounts, after the password verified.

    ``class GuardedBackend(PasskeyOnlyGuard, MyBackend)`` for a custom backend;
    :class:`PasskeyOnlyModelBackend` is Django's ``ModelBackend`` with it. List the guarded
    class in ``AUTHENTICATION_BACKENDS`` *instead of* the unguarded one: a backend left
    unguarded would still let the password in.

    The refusal raises :class:`PasswordSignInDisabled`, a ``ValidationError``: Django's
    ``AuthenticationForm`` (``LoginView``, the admin) and other form-based sign-ins show its
    message, which points to passkey sign-in and account recovery. It is raised only when the
    inner backend accepted the password, so nobody who lacks it learns anything about the
    account (security rule 11). Each refusal is audited as a failed ``password_login`` event.
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> Any:
        user = super().authenticate(request, **credentials)  # type: ignore[misc]
        if user is not None and is_passkey_only(user):
            audit.record(
                request,
                AuthEvent.Type.PASSWORD_LOGIN,
                success=False,
                reason_code=Reason.PASSWORD_SIGN_IN_DISABLED,
                user=user,
            )
            raise PasswordSignInDisabled()
        return user


class PasskeyOnlyModelBackend(PasskeyOnlyGuard, ModelBackend):  # type: ignore[misc]
    """Django's ``ModelBackend``, refusing passkey-only accounts (see :class:`PasskeyOnlyGuard`).

    ``AUTHENTICATION_BACKENDS = ["django_passkeys.backends.PasskeyOnlyModelBackend",
    "django_passkeys.backends.PasskeyBackend"]``.
    """


class PasswordSignInDisabled(ValidationError):
    """A password sign-in refused because the account signs in with passkeys only.

    A ``ValidationError`` so that sign-in forms show it; its ``code`` is the reason code
    ``password_sign_in_disabled``.
    """

    def __init__(self) -> None:
        _, message = REASONS[Reason.PASSWORD_SIGN_IN_DISABLED]
        # Translated now, in the language of the request being refused.
        super().__init__(str(message), code=Reason.PASSWORD_SIGN_IN_DISABLED.value)
