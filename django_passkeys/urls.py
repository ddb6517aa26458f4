"""URLs of the app; include them under a prefix such as ``auth/passkey/``."""

from __future__ import annotations

from django.urls import path

from .views.ceremony import (
    LoginOptionsView,
    LoginVerifyView,
    RegistrationOptionsView,
    RegistrationVerifyView,
)

app_name = "django_passkeys"

urlpatterns = [
    path("register/options", RegistrationOptionsView.as_view(), name="register-options"),
    path("register/verify", RegistrationVerifyView.as_view(), name="register-verify"),
    path("login/options", LoginOptionsView.as_view(), name="login-options"),
    path("login/verify", LoginVerifyView.as_view(), name="login-verify"),
]
