"""URLs of the example project: the app under ``auth/passkey/``, well-known at the root."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from django_passkeys.forms import PasskeyOnlyPasswordResetForm

from . import views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    # "The other method": the project's existing password sign-in stays available.
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="example/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The password reset belongs to the password sign-in ("the other method"), which it only
    # lets set a new password (a cooldown follows). "Recover account" on the passkey login page
    # is the app's own recovery, auth/passkey/recover/: a mailbox link plus a second factor.
    # The e-mails are printed on the console.
    # Passkey-only accounts get a pointer to account recovery instead of a reset link.
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=PasskeyOnlyPasswordResetForm),
        name="password_reset",
    ),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("auth/passkey/", include("django_passkeys.urls")),
    path("admin/", admin.site.urls),
    path("", include("django_passkeys.wellknown_urls")),
]
