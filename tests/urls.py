from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/passkey/", include("django_passkeys.urls")),
    path("", include("django_passkeys.wellknown_urls")),
]
