"""Step-up for the site's own views: ``@passkey_required(max_age=...)`` and
:class:`PasskeyRequiredMixin`.

A decorated view runs only when this session verified a passkey assertion *with user
verification* (UV: the device checked a PIN, fingerprint or face) within ``max_age`` seconds
(default ``PASSKEYS_REAUTH_MAX_AGE``). A password sign-in never counts, and neither does a
passkey sign-in without UV: the stamp is written by the step-up ceremony (``reauth/verify``,
which always requires UV), or by any passkey ceremony where ``PASSKEYS_USER_VERIFICATION`` is
``"required"`` (see :func:`django_passkeys.sessions.has_recent_passkey_assertion`).

Otherwise the view does not run, and the answer depends on the request:

- signed out: the site's sign-in page (``LOGIN_URL``, with ``next``), or ``403
  not_authenticated`` for JSON;
- ``GET``/``HEAD``: a redirect to the app's ``reauth/?next=<this URL>`` page, which asks for a
  passkey and comes back: the same ``GET`` is issued again;
- a JSON request (``Content-Type: application/json`` or ``Accept`` preferring JSON), whatever
  the method: ``403`` with reason ``reauthentication_required``. The page's script confirms with
  ``reauth/options`` + ``reauth/verify`` and sends the request again (``passkeys.js`` does this
  for the app's own forms);
- any other request, such as a plain HTML form ``POST``: ``303`` to ``reauth/?next=<this URL>``
  with a message. A redirect cannot carry a body, so **the form is not submitted**: after the
  passkey the user lands on the form's URL (a ``GET``) and submits it again. Nothing of the
  refused request was acted on.

Users without a passkey cannot pass: the reauthentication page tells them to add one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.redirects import with_next
from django_passkeys.sessions import has_recent_passkey_assertion

__all__ = ["PasskeyRequiredMixin", "guarded", "passkey_required", "step_up_refusal", "wants_json"]

ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def wants_json(request: HttpRequest) -> bool:
    """Whether ``request`` asks for JSON (a JSON body, or ``Accept`` preferring it) over a page."""
    if request.content_type == "application/json":
        return True
    accept = request.headers.get("Accept", "")
    return bool(accept) and request.get_preferred_type(["text/html", "application/json"]) == (
        "application/json"
    )


def reauth_page_url(next_url: str) -> str:
    """The app's reauthentication page, coming back to ``next_url``."""
    return with_next(reverse("django_passkeys:reauth"), next_url)


def step_up_refusal(request: HttpRequest, max_age: int | None = None) -> HttpResponse | None:
    """The answer to ``request`` when it lacks a fresh passkey assertion with UV, or ``None``.

    ``max_age`` defaults to ``PASSKEYS_REAUTH_MAX_AGE`` (seconds). See the module docstring
    for the answer each kind of request gets.
    """
    user = getattr(request, "user", None)
    json_wanted = wants_json(request)
    if user is None or not user.is_authenticated:
        if json_wanted:
            return PasskeyError(Reason.NOT_AUTHENTICATED).to_response()
        return redirect_to_login(request.get_full_path())
    if has_recent_passkey_assertion(request, max_age, user_verified=True):
        return None
    if json_wanted:
        return PasskeyError(Reason.REAUTHENTICATION_REQUIRED).to_response()
    here = request.get_full_path()
    if request.method in ("GET", "HEAD"):
        return HttpResponseRedirect(reauth_page_url(here))
    # A redirect drops the body: the user confirms, comes back to the form and sends it again.
    messages.info(
        request,
        _("Confirm it's you with a passkey, then submit the form again."),
        fail_silently=True,
    )
    return HttpResponseRedirect(reauth_page_url(here), status=303)


@overload
def passkey_required(view: ViewT, *, max_age: int | None = None) -> ViewT: ...


@overload
def passkey_required(
    view: None = None, *, max_age: int | None = None
) -> Callable[[ViewT], ViewT]: ...


def passkey_required(
    view: ViewT | None = None, *, max_age: int | None = None
) -> ViewT | Callable[[ViewT], ViewT]:
    """Run the view only after a fresh passkey assertion with user verification.

    ``@passkey_required`` or ``@passkey_required(max_age=120)``: ``max_age`` in seconds,
    default ``PASSKEYS_REAUTH_MAX_AGE``. Works on async views. It implies sign-in: anonymous
    requests go to ``LOGIN_URL``.
    """

    def decorate(view: ViewT) -> ViewT:
        return guarded(view, functools.partial(step_up_refusal, max_age=max_age))

    return decorate(view) if view is not None else decorate


def guarded(view: ViewT, refusal: Callable[[HttpRequest], HttpResponse | None]) -> ViewT:
    """``view``, answered instead by ``refusal(request)`` whenever that is not ``None``.

    The one wrapper of the app's view decorators (``passkey_required``, ``high_risk``); an async
    view stays async, with the (database-reading) refusal run in a thread.
    """
    if iscoroutinefunction(view):

        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            answer = await sync_to_async(refusal)(request)
            if answer is not None:
                return answer
            return await view(request, *args, **kwargs)

        wrapped = functools.wraps(view)(async_wrapper)
        markcoroutinefunction(wrapped)
        return cast(ViewT, wrapped)

    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        answer = refusal(request)
        if answer is not None:
            return answer
        return view(request, *args, **kwargs)

    return cast(ViewT, functools.wraps(view)(wrapper))


class PasskeyRequiredMixin:
    """:func:`passkey_required` for class-based views: put it first among the bases.

    ``passkey_max_age`` (seconds) overrides ``PASSKEYS_REAUTH_MAX_AGE`` for the view.
    """

    passkey_max_age: int | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = step_up_refusal(request, self.passkey_max_age)
        if refusal is not None:
            return refusal
        response: HttpResponse = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response
