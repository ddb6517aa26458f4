"""The e2e URLconf plus a site's own sign-in page: Django's ``LoginView`` at
``accounts/site-login/``, rendering the docs' ``registration/login.html`` (the one the quickstart
creates), under the same strict Content-Security-Policy as the app's pages."""

from __future__ import annotations

from django.contrib.auth.views import LoginView
from django.urls import path

from .urls import urlpatterns as e2e_patterns
from .urls import with_csp

urlpatterns = [
    path("accounts/site-login/", with_csp(LoginView.as_view()), name="login"),
    *e2e_patterns,
]
