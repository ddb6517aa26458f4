"""A project's own account views marked high-risk: the password change, an e-mail change."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.generic import View

from django_passkeys.cooldown import HighRiskMixin, high_risk

from .urls import urlpatterns as base_urlpatterns


class PasswordChange(HighRiskMixin, auth_views.PasswordChangeView):
    success_url = "/account/password/done/"


@high_risk
@login_required
def change_email(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        request.user.email = request.POST["email"]
        request.user.save()
        return HttpResponse("e-mail changed")
    return HttpResponse("the e-mail form")


@high_risk
async def async_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ran": True})


class DeleteAccount(HighRiskMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("deleted")


urlpatterns = [
    *base_urlpatterns,
    path("account/password/", PasswordChange.as_view(), name="password_change"),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "account/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url="/account/reset/done/"),
        name="password_reset_confirm",
    ),
    path("account/email/", change_email),
    path("account/async/", async_view),
    path("account/delete/", DeleteAccount.as_view()),
]
