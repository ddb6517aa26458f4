"""The e2e URLconf: the app under a strict Content-Security-Policy, and a stand-in password page.

The live server's middleware is fixed when it starts, so the CSP header is added by wrapping the
app's views here rather than by a middleware.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import logout
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

import django_passkeys.urls
from django_passkeys.upgrade import UpgradeMiddleware

CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"


def with_csp(view: Any) -> Any:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CSP
        return response

    return wrapped


def password_login(request: HttpRequest) -> HttpResponse:
    # An empty page icon: without one Chromium asks for /favicon.ico, and a 404 is a console error.
    return HttpResponse(
        '<!doctype html><title>Password</title><link rel="icon" href="data:,">'
        "<h1>Password sign-in</h1>"
    )


@csrf_exempt
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("django_passkeys:login")


app_patterns = [
    URLPattern(p.pattern, with_csp(p.callback), p.default_args, p.name)
    for p in django_passkeys.urls.urlpatterns
    if isinstance(p, URLPattern)
]


#: A real password sign-in (Django's LoginView) whose answer goes through the passkey upgrade:
#: the middleware wraps the view here, since the live server's middleware is fixed at start.
password_sign_in = UpgradeMiddleware(with_csp(LoginView.as_view(template_name="tests/login.html")))

urlpatterns = [
    path("auth/passkey/", include((app_patterns, django_passkeys.urls.app_name))),
    path("accounts/login/", password_login, name="password-login"),
    path("accounts/password/", password_sign_in, name="password-sign-in"),
    path("sign-out/", sign_out, name="sign-out"),
]
