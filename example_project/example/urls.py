"""URLs of the example project: the app under ``auth/passkey/``, well-known at the root."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

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
    path("auth/passkey/", include("django_passkeys.urls")),
    path("admin/", admin.site.urls),
    path("", include("django_passkeys.wellknown_urls")),
]
