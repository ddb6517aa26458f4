"""A project that protects views with django-otp: ``otp_required`` and an ``OTPAdminSite``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django_otp.admin import OTPAdminSite
from django_otp.decorators import otp_required

from .urls import urlpatterns as base_urlpatterns

otp_admin = OTPAdminSite(name="otpadmin")


@otp_required
def protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"verified with {request.user.otp_device.persistent_id}")


urlpatterns = [
    *base_urlpatterns,
    path("protected/", protected),
    path("otp-admin/", otp_admin.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]
