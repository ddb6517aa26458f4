"""URLs of the app; include them under a prefix such as ``auth/passkey/``."""

from __future__ import annotations

from django.urls import path

from .views.ceremony import (
    LoginOptionsView,
    LoginVerifyView,
    RegistrationOptionsView,
    RegistrationVerifyView,
)
from .views.manage import ManagePageView, RemoveView, RenameView, provider_icon
from .views.pages import LoginPageView
from .views.reauth import ReauthOptionsView, ReauthVerifyView
from .views.sessions import SessionsView

app_name = "django_passkeys"

urlpatterns = [
    path("register/options", RegistrationOptionsView.as_view(), name="register-options"),
    path("register/verify", RegistrationVerifyView.as_view(), name="register-verify"),
    path("login/options", LoginOptionsView.as_view(), name="login-options"),
    path("login/verify", LoginVerifyView.as_view(), name="login-verify"),
    path("reauth/options", ReauthOptionsView.as_view(), name="reauth-options"),
    path("reauth/verify", ReauthVerifyView.as_view(), name="reauth-verify"),
    path("login/", LoginPageView.as_view(), name="login"),
    path("manage/", ManagePageView.as_view(), name="manage"),
    path("manage/<int:pk>/rename", RenameView.as_view(), name="rename"),
    path("manage/<int:pk>/remove", RemoveView.as_view(), name="remove"),
    path("providers/<uuid:aaguid>/<slug:variant>", provider_icon, name="provider-icon"),
    path("sessions/", SessionsView.as_view(), name="sessions"),
]
