"""``tests.first_run_urls`` plus a project page at Django's default ``/accounts/profile/``."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path

from .first_run_urls import urlpatterns as base_patterns

urlpatterns = [
    path("accounts/profile/", lambda request: HttpResponse("profile"), name="profile"),
    *base_patterns,
]
