"""The one request pipeline of every POST the app serves, and the preconditions views share.

Every POST, JSON or a plain form post from a page without JavaScript, runs the same steps in
the same order (:class:`Endpoint`):

rate limit → size limit → CSRF → parse (JSON or form) → handle (one flow) → respond

A JSON request gets JSON back (the one error shape of :mod:`django_passkeys.errors`); a form post
gets a ``303`` redirect back to its page with a message. Failures are audited once. A backing
service that does not answer (:data:`SERVICE_ERRORS`: the database, a Redis cache) is a ``503``
``service_unavailable``, never a ``500``: see :func:`service_unavailable`.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import re
from typing import Any, ClassVar

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import Resolver404, resolve
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from webauthn.helpers import bytes_to_base64url

from django_passkeys import flows, ratelimits
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason, error_response
from django_passkeys.models import AuthEvent, Credential
from django_passkeys.sessions import is_recently_authenticated

logger = logging.getLogger("django_passkeys")

#: Content types of a page's plain HTML form posts.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

#: A database id as it may appear in a URL or a form: ASCII digits only (``"²".isdigit()`` is
#: true, ``int("²")`` fails), and short enough for a 64-bit column.
_ID = re.compile(r"[0-9]{1,18}")


def parse_id(value: object) -> int:
    """``value`` as a database id, or ``malformed_request``."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "not an id")
    return int(value)


class IdConverter:
    """Path converter ``<passkeys_id:pk>``: :func:`parse_id`'s pattern, so no id overflows."""

    regex = _ID.pattern

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def registered_credential(credential: Credential) -> dict[str, Any]:
    """The JSON answer to a verified registration (``register/verify``, ``upgrade/verify``)."""
    return {
        "id": bytes_to_base64url(bytes(credential.credential_id)),
        "name": str(credential),
        "created_at": credential.created_at.isoformat(),
    }


def signed_in_user(request: HttpRequest, *, recent: bool = False) -> AbstractBaseUser:
    """The signed-in user; with ``recent``, one who signed in within ``PASSKEYS_REAUTH_MAX_AGE``.

    Raises ``not_authenticated`` or ``reauthentication_required``.
    """
    user = request.user
    if not user.is_authenticated:
        raise PasskeyError(Reason.NOT_AUTHENTICATED)
    if recent and not is_recently_authenticated(request):
        raise PasskeyError(Reason.REAUTHENTICATION_REQUIRED)
    return user


# ---------------------------------------------------------------------------------------------
# A backing service down
# ---------------------------------------------------------------------------------------------


def _service_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [OperationalError, InterfaceError]
    try:
        redis_errors = importlib.import_module("redis.exceptions")
    except ImportError:  # pragma: no cover - only Django's Redis cache raises these
        return tuple(errors)
    # BusyLoadingError (a restarted Redis still loading) is a ConnectionError.
    return (*errors, redis_errors.ConnectionError, redis_errors.TimeoutError)


#: What a backing service that does not answer raises, as opposed to a bad request: the
#: database (Django wraps every driver's connection failures in these two) and Django's Redis
#: cache (the rate limits, the failed-assertion backoff, cache sessions). django-ratelimit's
#: ``RATELIMIT_FAIL_OPEN`` does not apply: it only covers a cache that answers nothing without
#: raising (memcached); Django's Redis cache raises, and the app then refuses (fails closed).
SERVICE_ERRORS: tuple[type[Exception], ...] = _service_errors()

#: Seconds a client is told to wait (``Retry-After``) when a backing service is down.
SERVICE_RETRY_AFTER = 5


def service_unavailable(
    request: HttpRequest, event_type: AuthEvent.Type, exc: Exception
) -> PasskeyError:
    """The ``service_unavailable`` answer to ``exc`` (one of :data:`SERVICE_ERRORS`).

    The request is dropped whole: what it changed in its session is not saved (saving it would
    fail the same way, and as a ``500`` outside the view), and every flow writes in transactions
    that the failure rolled back. The failure is audited when the database still answers.
    """
    error = PasskeyError(
        Reason.SERVICE_UNAVAILABLE,
        f"{type(exc).__name__}: {exc}",
        retry_after=SERVICE_RETRY_AFTER,
    )
    logger.warning(
        "passkey request failed: a backing service is unavailable (%s)",
        type(exc).__name__,
        extra={"passkeys_event": "service_unavailable", "passkeys_reason": error.code.value},
    )
    session = getattr(request, "session", None)
    if session is not None:
        session.modified = False
    try:
        flows.record_failure(request, event_type, error)
    except SERVICE_ERRORS:
        error.recorded = True  # the database is what failed: nothing can be audited
    return error


def app_event_type(request: HttpRequest) -> AuthEvent.Type | None:
    """The audit event type of the app's view ``request`` is for, or ``None`` if it is not one.

    Resolved from the path, since a middleware may need it before Django resolves the URL.
    """
    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    if "django_passkeys" not in match.app_names:
        return None
    view_class = getattr(match.func, "view_class", None)
    event_type: AuthEvent.Type = getattr(view_class, "event_type", AuthEvent.Type.LOGIN)
    return event_type


# ---------------------------------------------------------------------------------------------
# Pipeline steps
# ---------------------------------------------------------------------------------------------


class _JsonCsrfCheck(CsrfViewMiddleware):
    """Django's own CSRF check, answering failures in the app's JSON error shape."""

    def _reject(self, request: HttpRequest, reason: str) -> HttpResponse:
        raise PasskeyError(Reason.CSRF_FAILED, reason)


def _protected_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError("only used as the CSRF check's callback")


def check_csrf(request: HttpRequest) -> None:
    """Run Django's CSRF validation; raise ``csrf_failed`` (403) when it fails."""
    # A checker per request: the middleware caches CSRF_TRUSTED_ORIGINS on its instance, and a
    # module-level one would keep them across settings changes.
    csrf = _JsonCsrfCheck(_protected_view)
    csrf.process_request(request)
    try:
        csrf.process_view(request, _protected_view, (), {})
    except MultiPartParserError as exc:
        # The check reads a form token from request.POST first; a broken multipart body
        # fails there, before any token is compared.
        raise PasskeyError(Reason.MALFORMED_REQUEST, "unparseable form body") from exc


def read_body(request: HttpRequest) -> bytes:
    """The body, at most ``PASSKEYS_MAX_BODY_BYTES`` of it, or ``payload_too_large``.

    A declared ``Content-Length`` over the limit is refused unread. A body without one (chunked,
    under ASGI) is counted on the bytes actually read: at most one byte past the limit is read.
    """
    limit = conf.PASSKEYS_MAX_BODY_BYTES
    declared_header = request.META.get("CONTENT_LENGTH") or "0"
    if not re.fullmatch(r"[0-9]{1,18}", str(declared_header).strip()):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "bad Content-Length")
    if int(declared_header) > limit:
        raise PasskeyError(Reason.PAYLOAD_TOO_LARGE, f"{declared_header} bytes declared")
    raw: bytes
    if hasattr(request, "_body"):  # read already, by a middleware
        raw = request.body
    else:
        raw = request.read(limit + 1)
        # Leave the request as Django leaves it after reading ``request.body``, so that the
        # form parser and the CSRF check read these bytes and never the stream again.
        request._body = raw
        request._stream = io.BytesIO(raw)
    if len(raw) > limit:
        raise PasskeyError(Reason.PAYLOAD_TOO_LARGE, f"over {limit} bytes read")
    return raw


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``), or ``malformed_request``."""
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


def parse_form(request: HttpRequest) -> dict[str, Any]:
    """A form post's fields (the last value of each), or ``malformed_request``."""
    try:
        data = request.POST.dict()
    except MultiPartParserError as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "unparseable form body") from exc
    data.pop("csrfmiddlewaretoken", None)
    return data


# ---------------------------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------------------------


@method_decorator(never_cache, name="dispatch")
class Endpoint(View):
    """A view whose POSTs run the pipeline; subclasses implement :meth:`handle`.

    ``handle`` calls one flow and returns the JSON payload of a success. A JSON-only endpoint
    answers anything but POST with ``method_not_allowed``; a page adds ``get`` as usual.
    """

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Marked on the view itself rather than on dispatch(): as_view() copies the attributes
        # of the first dispatch() in the MRO, which is a mixin's when one is listed before
        # Endpoint (LoginRequiredMixin), and Django's CSRF middleware would then check (and
        # parse the body) before the pipeline's rate and size limits.
        view = super().as_view(**initkwargs)
        view = transaction.non_atomic_requests(view)
        return csrf_exempt(view)  # checked in the pipeline, after the size limit

    #: The audit event type of failures this endpoint detects before its flow runs.
    event_type: ClassVar[AuthEvent.Type]
    #: Whether the page's plain HTML forms post here (answered with a redirect and a message).
    form_posts: ClassVar[bool] = False
    #: The message a successful form post shows.
    success_message: ClassVar[Any] = _("Done.")
    #: The status of a successful JSON answer.
    success_status: ClassVar[int] = 200
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.form_posts and request.content_type in FORM_TYPES
        try:
            return self.run_pipeline(request, form=form)
        except SERVICE_ERRORS as exc:
            error = service_unavailable(request, self.event_type, exc)
            return self.failed(request, error, form=form)

    def run_pipeline(self, request: HttpRequest, *, form: bool) -> HttpResponse:
        """The pipeline's steps; a failure of a backing service propagates to :meth:`post`."""
        try:
            # Before the body is read; cache only. Refusals are audited by ratelimits itself.
            ratelimits.enforce(request, self.rate_limit_name(request))
        except PasskeyError as error:
            error.recorded = True
            return self.failed(request, error, form=form)
        try:
            raw = read_body(request)
            if not form and request.content_type == "multipart/form-data":
                raise PasskeyError(Reason.MALFORMED_REQUEST, "multipart body")
            check_csrf(request)
            data = parse_form(request) if form else parse_json(raw)
            payload = self.handle(request, data)
        except PasskeyError as error:
            flows.record_failure(request, self.event_type, error)
            return self.failed(request, error, form=form)
        if form:
            return self.form_success(request, payload)
        return JsonResponse(payload, status=self.success_status)

    def handle(self, request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
        """Call one flow with the parsed ``data``; return the JSON payload of the success."""
        raise NotImplementedError

    def rate_limit_name(self, request: HttpRequest) -> str:
        """The ``PASSKEYS_RATE_LIMITS`` entry of this endpoint: its URL name by default."""
        match = request.resolver_match
        return (match.url_name if match is not None else None) or "default"

    def form_success(self, request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        """The answer to a successful form post: back to the page, with :meth:`form_message`.

        Override to render a page instead (e.g. something shown only once).
        """
        messages.success(request, str(self.form_message(payload)), fail_silently=True)
        return self.redirect_back(request)

    def form_message(self, payload: dict[str, Any]) -> Any:
        """The message a successful form post shows (:attr:`success_message` by default)."""
        return self.success_message

    def redirect_back(self, request: HttpRequest) -> HttpResponse:
        """Where a form post returns: the page it came from (this URL by default)."""
        return HttpResponseRedirect(request.get_full_path(), status=303)

    def failed(self, request: HttpRequest, error: PasskeyError, *, form: bool) -> HttpResponse:
        """The answer to a failure: the JSON error, or the page again with the message."""
        if form:
            messages.error(request, str(error.message), fail_silently=True)
            return self.redirect_back(request)
        return error.to_response()

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = error_response(Reason.METHOD_NOT_ALLOWED)
        response["Allow"] = ", ".join(m.upper() for m in self.http_method_names if hasattr(self, m))
        return response
