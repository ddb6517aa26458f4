"""URLs of the app; include them under a prefix such as ``auth/passkey/``."""

from __future__ import annotations

from django.urls import path, register_converter

from .views.base import IdConverter
from .views.cooldown import CooldownPageView
from .views.login import LoginOptionsView, LoginPageView, LoginVerifyView
from .views.manage import ManagePageView, RemoveView, RenameView, provider_icon
from .views.reauth import ReauthOptionsView, ReauthVerifyView
from .views.recovery_codes import RecoveryCodesView
from .views.registration import RegistrationOptionsView, RegistrationVerifyView
from .views.security import SecurityPageView
from .views.session_list import SessionsView
from .views.totp import TotpRemoveView, TotpView

app_name = "django_passkeys"

# Ids in URLs are ASCII digits short enough for a 64-bit column: a longer one is a 404, never
# an overflow in the database driver.
register_converter(IdConverter, "passkeys_id")

urlpatterns = [
    path("register/options", RegistrationOptionsView.as_view(), name="register-options"),
    path("register/verify", RegistrationVerifyView.as_view(), name="register-verify"),
    path("login/options", LoginOptionsView.as_view(), name="login-options"),
    path("login/verify", LoginVerifyView.as_view(), name="login-verify"),
    path("reauth/options", ReauthOptionsView.as_view(), name="reauth-options"),
    path("reauth/verify", ReauthVerifyView.as_view(), name="reauth-verify"),
    path("login/", LoginPageView.as_view(), name="login"),
    path("manage/", ManagePageView.as_view(), name="manage"),
    path("manage/<passkeys_id:pk>/rename", RenameView.as_view(), name="rename"),
    path("manage/<passkeys_id:pk>/remove", RemoveView.as_view(), name="remove"),
    path("providers/<uuid:aaguid>/<slug:variant>", provider_icon, name="provider-icon"),
    path("sessions/", SessionsView.as_view(), name="sessions"),
    path("cooldown/", CooldownPageView.as_view(), name="cooldown"),
    path("security/", SecurityPageView.as_view(), name="security"),
    path("recovery-codes/", RecoveryCodesView.as_view(), name="recovery-codes"),
    path("totp/", TotpView.as_view(), name="totp"),
    path("totp/remove", TotpRemoveView.as_view(), name="totp-remove"),
]
