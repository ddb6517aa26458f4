"""A project's own views behind a fresh passkey: ``@passkey_required`` and the mixin."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.generic import View

from django_passkeys.decorators import PasskeyRequiredMixin, passkey_required

from .urls import urlpatterns as base_urlpatterns

#: What the views did, so tests can tell that a refused request changed nothing.
DONE: list[str] = []


@passkey_required
def payout(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        DONE.append(f"payout {request.POST.get('amount') or request.body.decode()}")
        return JsonResponse({"paid": True})
    return HttpResponse("the payout form")


@passkey_required(max_age=60)
def strict(request: HttpRequest) -> HttpResponse:
    return HttpResponse("strict page")


@passkey_required
async def async_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ran": True})


class CloseAccount(PasskeyRequiredMixin, View):
    passkey_max_age = 120

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("close your account?")

    def post(self, request: HttpRequest) -> HttpResponse:
        DONE.append("closed")
        return HttpResponse("closed")


urlpatterns = [
    *base_urlpatterns,
    path("payout/", payout),
    path("strict/", strict),
    path("async/", async_view),
    path("close/", CloseAccount.as_view()),
]
