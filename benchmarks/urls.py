"""URLs of the benchmark workers: the measured app's own URLs, mounted as its docs say."""

from __future__ import annotations

from django.conf import settings
from django.urls import include, path

if settings.BENCH_APP == "floor":
    from benchmarks.floor import views

    urlpatterns = [
        path("floor/login/options", views.login_options),
        path("floor/login/verify", views.login_verify),
    ]
elif settings.BENCH_APP == "otp_webauthn":
    urlpatterns = [path("webauthn/", include("django_otp_webauthn.urls"))]
else:
    urlpatterns = [path("auth/passkey/", include("django_passkeys.urls"))]
