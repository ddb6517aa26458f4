"""A new project as its first user builds it: Django's own auth URLs (``LoginView`` renders
``registration/login.html``, which a new project lacks) and the app."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("auth/passkey/", include("django_passkeys.urls")),
]
