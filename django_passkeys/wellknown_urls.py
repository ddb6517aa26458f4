"""Include at the site root: ``path("", include("django_passkeys.wellknown_urls"))``."""

from __future__ import annotations

from django.urls import path

from .views.wellknown import well_known_webauthn

urlpatterns = [
    path(".well-known/webauthn", well_known_webauthn, name="passkeys-well-known-webauthn"),
]
