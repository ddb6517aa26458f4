"""The ``recover/`` pages: ask for a link, open it, prove a second factor, approve elsewhere.

Every POST runs the pipeline of :class:`~django_passkeys.views.base.Endpoint` (rate limits per
IP, size limit, CSRF) and calls one flow of :mod:`django_passkeys.flows.recovery`; every page
works without JavaScript (plain form posts), and ``passkeys.js`` only polls the waiting page.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache

from django_passkeys import flows, ratelimits
from django_passkeys.errors import PasskeyError
from django_passkeys.flows import recovery as recovery_flows
from django_passkeys.models import AuthEvent, Credential, RecoveryRequest
from django_passkeys.recovery import FINAL
from django_passkeys.redirects import support_url
from django_passkeys.user_agents import describe

from .base import Endpoint, signed_in_user
from .shim import page_config

State = RecoveryRequest.State


def _url(name: str) -> str:
    return reverse(f"django_passkeys:{name}")


# ---------------------------------------------------------------------------------------------
# recover/: ask for a link
# ---------------------------------------------------------------------------------------------


class RecoverView(Endpoint):
    """GET ``recover/``: the address form. POST ``{"email"}``: send a link, if it is an account.

    The answer is the same for every address (``{"sent": true}``, or the page again with the
    same message); the e-mails go out after the response.
    """

    template_name = "django_passkeys/recover.html"
    http_method_names = ["get", "post"]
    event_type = AuthEvent.Type.RECOVERY_REQUEST
    form_posts = True
    success_message = _(
        "If an account uses this address, we sent it a recovery link. It works once, for a "
        "short time, and only together with a second factor."
    )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return render(request, self.template_name, {"support_url": support_url()})

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        callbacks: list[Any] = []
        setattr(request, recovery_flows.AFTER_RESPONSE_ATTR, callbacks)
        response = super().post(request, *args, **kwargs)
        # HttpResponse.close() runs these after the server sent the last byte (WSGI and ASGI
        # handlers both call it): the mail server's speed cannot show in the answer's timing.
        response._resource_closers.extend(callbacks)  # type: ignore[attr-defined]
        return response

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        flows.request_recovery(request, data.get("email"))
        return {"sent": True}


# ---------------------------------------------------------------------------------------------
# recover/link/<token> and recover/open: the link, and claiming it for this browser
# ---------------------------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class RecoverLinkView(View):
    """GET ``recover/link/<token>``: keep the link in this session, go on to ``recover/verify``.

    Nothing is claimed yet (a mail scanner fetching the link must not spend it): the verify
    page asks this browser to continue. The token leaves the address bar with the redirect.
    """

    http_method_names = ["get"]

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            ratelimits.enforce(request, "recover-link")
        except PasskeyError as error:
            return self._refused(request, error)
        try:
            flows.check_link(request, token)
        except PasskeyError as error:
            return self._refused(request, error)
        response = HttpResponseRedirect(_url("recover-verify"), status=303)
        response["Referrer-Policy"] = "no-referrer"
        return response

    def _refused(self, request: HttpRequest, error: PasskeyError) -> HttpResponse:
        messages.error(request, str(error.message), fail_silently=True)
        response = render(
            request,
            RecoverView.template_name,
            {"support_url": support_url()},
            status=error.status,
        )
        response["Referrer-Policy"] = "no-referrer"
        # Django logs every 4xx with its path, which holds the token here (security rule 8:
        # never a token in the logs). The refusal is audited, with its reason code, instead.
        response._has_been_logged = True  # type: ignore[attr-defined]
        if error.retry_after is not None:
            response["Retry-After"] = str(max(1, error.retry_after))
        return response


class _PageEndpoint(Endpoint):
    """A POST of one of these pages, plain form posts included: they return to :attr:`page`.

    A fixed page rather than this URL: the POST-only URLs (``recover/open``,
    ``recover/approvals/<pk>/approve``) have no page of their own to come back to.
    """

    form_posts = True
    #: The URL name, in the app's namespace, of the page a form post returns to.
    page: ClassVar[str]

    def redirect_back(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(_url(self.page), status=303)


class RecoveryEndpoint(_PageEndpoint):
    """A step of the recovering browser: form posts come back to ``recover/verify``."""

    event_type = AuthEvent.Type.RECOVERY
    page = "recover-verify"


class RecoverOpenView(RecoveryEndpoint):
    """POST ``recover/open``: claim the link this browser opened (``requested`` → opened)."""

    event_type = AuthEvent.Type.RECOVERY_LINK

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        rr = flows.open_link(request)
        return {"state": rr.state}

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        return self.redirect_back(request)


# ---------------------------------------------------------------------------------------------
# recover/verify, recover/status, recover/continue: the second factor
# ---------------------------------------------------------------------------------------------


class RecoverVerifyView(RecoveryEndpoint):
    """GET ``recover/verify``: where this browser's recovery stands, and what it can do next.

    POST ``{"method": "totp" | "recovery_code", "code"}`` checks a code and signs the user in
    (``{"redirect"}``); ``{"method": "device"}`` asks a signed-in device to approve
    (``{"state": "approval_pending"}``).
    """

    template_name = "django_passkeys/recover_verify.html"
    http_method_names = ["get", "post"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        rr = flows.current_recovery(request)
        claim = flows.pending_link(request) and (rr is None or rr.state in FINAL)
        live = rr if rr is not None and not claim and rr.state not in FINAL else None
        context = {
            "recovery": rr,
            "claim": claim,
            "choosing": live is not None and live.state == State.LINK_OPENED,
            "waiting": live is not None and live.state != State.LINK_OPENED,
            "factors": flows.recovery_factors(live.user) if live is not None else None,
            "code": recovery_flows.approval_code(request) if live is not None else "",
            "browser": describe(request.META.get("HTTP_USER_AGENT", "")),
            "support_url": support_url(),
        }
        return render(request, self.template_name, context)

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        method = data.get("method")
        if method == RecoveryRequest.Factor.DEVICE:
            rr = flows.ask_approval(request)
            return {"state": rr.state}
        flows.verify_factor(request, method, data.get("code"))
        return {"redirect": _url("recover-done")}

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        if "redirect" in payload:
            return HttpResponseRedirect(payload["redirect"], status=303)
        return self.redirect_back(request)


@method_decorator(never_cache, name="dispatch")
class RecoverStatusView(View):
    """GET ``recover/status``: ``{"state", "ready"}`` of this browser's own recovery.

    What the waiting page polls; ``ready`` once a device (or staff) approved. Reads only.
    """

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            ratelimits.enforce(request, "recover-status")
        except PasskeyError as error:
            return error.to_response()
        return JsonResponse(flows.recovery_status(request))


class RecoverContinueView(RecoveryEndpoint):
    """POST ``recover/continue``: an approved recovery signs this browser in (``{"redirect"}``)."""

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        flows.continue_recovery(request)
        return {"redirect": _url("recover-done")}

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        return HttpResponseRedirect(payload["redirect"], status=303)


# ---------------------------------------------------------------------------------------------
# recover/done: back in; add a passkey, then review the security page
# ---------------------------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class RecoverDoneView(View):
    """GET ``recover/done``: after a recovery, add a new passkey, then go to the security page.

    Once a passkey was added since the recovery, the page sends the user on to
    ``django_passkeys:security``.
    """

    template_name = "django_passkeys/recover_done.html"
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        recovered_at = request.session.get(recovery_flows.RECOVERED_AT_KEY)
        if isinstance(recovered_at, int) and recovery_flows.passkey_added_since(user, recovered_at):
            messages.success(
                request,
                str(_("Your new passkey is ready. Now check everything else on your account.")),
                fail_silently=True,
            )
            return HttpResponseRedirect(_url("security"), status=303)
        context = {
            "recovered": isinstance(recovered_at, int),
            "has_passkeys": Credential.objects.active().filter(user_id=user.pk).exists(),
            "passkeys_config": page_config(request),
        }
        return render(request, self.template_name, context)


# ---------------------------------------------------------------------------------------------
# recover/approvals/: a signed-in device approves or denies
# ---------------------------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class ApprovalsView(View):
    """GET ``recover/approvals/``: the signed-in user's recoveries waiting for an approval."""

    template_name = "django_passkeys/recover_approvals.html"
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        # The approve forms confirm with a passkey first (passkeys.js, data-pk-reauth).
        context = {"passkeys_config": page_config(request, reauth=True)}
        return render(request, self.template_name, context)


class ApprovalEndpoint(_PageEndpoint):
    """A POST of the approvals page; form posts come back to it."""

    event_type = AuthEvent.Type.RECOVERY_APPROVAL
    page = "recover-approvals"


class ApproveView(ApprovalEndpoint):
    """POST ``recover/approvals/<pk>/approve`` ``{"code"}``: approve one's own pending recovery.

    Needs a fresh passkey assertion in this session (``reauthentication_required``) and the
    code the recovering browser shows.
    """

    success_message = _("Approved. The other device is signing in now.")

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        rr = flows.approve(request, user, self.kwargs["pk"], data.get("code"))
        return {"state": rr.state}


class DenyView(ApprovalEndpoint):
    """POST ``recover/approvals/<pk>/deny``: "this wasn't me": the recovery is denied."""

    success_message = _(
        "Denied. That recovery cannot go on. Consider changing your e-mail password: whoever "
        "started it could read your mail."
    )

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        user = signed_in_user(request)
        rr = flows.deny(request, user, self.kwargs["pk"])
        return {"state": rr.state}
