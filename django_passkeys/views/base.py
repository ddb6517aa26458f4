"""The base of every JSON endpoint: method, size, CSRF and JSON checks, one error shape."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from django_passkeys import audit, ratelimits
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason, error_response
from django_passkeys.models import AuthEvent


class _JsonCsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering failures in the app's JSON error shape."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise PasskeyError(Reason.CSRF_FAILED, reason)


def _protected_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError("only used as the CSRF check's callback")


_csrf = _JsonCsrfCheck(_protected_view)


def check_csrf(request: HttpRequest) -> None:
    """Run Django's CSRF validation; raise ``csrf_failed`` (403) when it fails."""
    _csrf.process_request(request)
    try:
        _csrf.process_view(request, _protected_view, (), {})
    except MultiPartParserError as exc:
        # The check reads a form token from request.POST first; a broken multipart body
        # fails there, before any token is compared.
        raise PasskeyError(Reason.MALFORMED_REQUEST, "unparseable form body") from exc


def enforce_body_limit(request: HttpRequest) -> None:
    """Refuse a body over ``PASSKEYS_MAX_BODY_BYTES`` from its Content-Length, unread."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "bad Content-Length") from exc
    if declared > conf.PASSKEYS_MAX_BODY_BYTES:
        raise PasskeyError(Reason.PAYLOAD_TOO_LARGE, f"{declared} bytes")


def read_json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object (call :func:`enforce_body_limit` first)."""
    raw = request.body
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
        # RFC 8259 §8.2: a "\ud800" escape parses to a lone surrogate, which no database
        # driver can encode; such a body is not text, so it is refused here, once for all fields.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "body is not JSON") from exc
    if not isinstance(data, dict):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "body is not a JSON object")
    return data


@method_decorator(csrf_exempt, name="dispatch")  # checked in dispatch, after the size limit
@method_decorator(never_cache, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class JsonEndpoint(View):
    """A POST-only JSON endpoint whose failures are audited and answered as JSON errors.

    Subclasses implement :meth:`post_json`; raising :class:`PasskeyError` anywhere gives the
    error response and an AuthEvent of :attr:`event_type`.
    """

    event_type: ClassVar[AuthEvent.Type]
    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            response = error_response(Reason.METHOD_NOT_ALLOWED)
            response["Allow"] = "POST"
            return response
        try:
            # Before the body is read; cache only. Refusals are audited by ratelimits itself.
            ratelimits.enforce(request, self.rate_limit_name(request))
        except PasskeyError as error:
            return error.to_response()
        try:
            enforce_body_limit(request)
            if request.content_type == "multipart/form-data":
                # The body is JSON. The CSRF check would parse a multipart body as a form,
                # consuming the stream that read_json_body needs.
                raise PasskeyError(Reason.MALFORMED_REQUEST, "multipart body")
            check_csrf(request)
            data = read_json_body(request)
            return self.post_json(request, data)
        except PasskeyError as error:
            self.on_failure(request, error)
            return error.to_response()

    def rate_limit_name(self, request: HttpRequest) -> str:
        """The ``PASSKEYS_RATE_LIMITS`` entry of this endpoint: its URL name by default."""
        match = request.resolver_match
        return (match.url_name if match is not None else None) or "default"

    def post_json(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        raise NotImplementedError

    def on_failure(self, request: HttpRequest, error: PasskeyError) -> None:
        """Audit the failure; subclasses may add signals."""
        audit.record(
            request,
            self.event_type,
            success=False,
            reason_code=error.code.value,
            user=getattr(request, "user", None),
        )
