"""A project that moves its users off passwords: Django's password sign-in (``LoginView``) and
password reset (with the passkey-only aware form), next to the app."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.urls import path

from django_passkeys.forms import PasskeyOnlyPasswordResetForm

from .urls import urlpatterns as base_urlpatterns


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


urlpatterns = [
    *base_urlpatterns,
    path("home/", home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="tests/login.html"),
        name="login",
    ),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(
            form_class=PasskeyOnlyPasswordResetForm,
            template_name="tests/password_reset.html",
            email_template_name="tests/password_reset_email.txt",
            success_url="/accounts/password_reset/done/",
        ),
        name="password_reset",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
]
