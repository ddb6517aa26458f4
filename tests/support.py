"""What the tests share: a client that speaks the JSON contract, the endpoint paths, enrolling a
passkey and signing in with it over HTTP, bad assertions, the checks on an error answer, and
running calls at once in threads for the races PostgreSQL must settle.

Fixtures stay in the ``conftest.py`` files and call in here; test modules import from here,
never from a ``conftest.py``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest
from django.db import connection
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from django_passkeys.errors import REASONS, Reason
from django_passkeys.models import AuthEvent, Challenge, Credential, UserHandle
from django_passkeys.sessions import AUTH_TIME_KEY

from .authenticator import SoftAuthenticator

T = TypeVar("T")

ORIGIN = "https://testserver"
REGISTER_OPTIONS = "/auth/passkey/register/options"
REGISTER_VERIFY = "/auth/passkey/register/verify"
LOGIN_OPTIONS = "/auth/passkey/login/options"
LOGIN_VERIFY = "/auth/passkey/login/verify"
#: The four ceremony endpoints of the HTTP contract.
ENDPOINTS = (REGISTER_OPTIONS, REGISTER_VERIFY, LOGIN_OPTIONS, LOGIN_VERIFY)


class ApiClient:
    """A CSRF-enforcing test client that speaks the JSON contract over HTTPS."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True, HTTP_ORIGIN=ORIGIN)
        self.client.get(LOGIN_OPTIONS)  # any request; sets nothing yet

    def csrf_token(self) -> str:
        cookie = self.client.cookies.get("csrftoken")
        if cookie is None or not cookie.value:
            token = _get_new_csrf_string()
            self.client.cookies["csrftoken"] = token
            return token
        return str(cookie.value)

    def post(
        self,
        path: str,
        data: Any = None,
        *,
        csrf: bool = True,
        raw: bytes | None = None,
        **extra: Any,
    ) -> Any:
        headers = {"HTTP_X_CSRFTOKEN": self.csrf_token()} if csrf else {}
        body = raw if raw is not None else json.dumps({} if data is None else data).encode()
        return self.client.generic(
            "POST", path, body, content_type="application/json", secure=True, **headers, **extra
        )

    def login(self, user: Any) -> None:
        self.client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        # force_login sends user_logged_in without a request; stamp the session like a login.
        session = self.client.session
        session[AUTH_TIME_KEY] = int(time.time())
        session.save()


def form_post(api: ApiClient, url: str, data: Any = None, *, csrf: bool = True) -> Any:
    """A plain HTML form post, as the page sends without JavaScript."""
    payload = dict(data or {})
    if csrf:
        payload["csrfmiddlewaretoken"] = api.csrf_token()
    return api.client.post(url, payload, secure=True)


def age_session(api: ApiClient, seconds: int = 10_000) -> None:
    """Date the session's last authentication ``seconds`` back: it is no longer recent."""
    session = api.client.session
    session[AUTH_TIME_KEY] = int(time.time()) - seconds
    session.save()


# -- Ceremonies over HTTP ------------------------------------------------------------------------


def register(api: ApiClient, user: Any, authenticator: SoftAuthenticator, **create: Any) -> Any:
    """Sign ``user`` in on ``api`` and register ``authenticator``; return the verify response.

    ``create`` goes to ``authenticator.create``. The client stays signed in.
    """
    api.login(user)
    options = api.post(REGISTER_OPTIONS).json()
    return api.post(REGISTER_VERIFY, authenticator.create(options, **create))


def enroll(
    user: Any, authenticator: SoftAuthenticator, *, api: ApiClient | None = None, **create: Any
) -> Credential:
    """Register ``authenticator`` for ``user`` through the endpoints, then sign the client out.

    In ``api`` when given (its session ends), else in a throwaway client.
    """
    api = api or ApiClient()
    response = register(api, user, authenticator, **create)
    assert response.status_code == 201, response.content
    api.client.logout()
    return Credential.objects.by_credential_id(authenticator.credential_id).get()


def login_options(api: ApiClient, email_hint: str | None = None, **meta: Any) -> dict[str, Any]:
    """Request options from ``login/options`` (discoverable without a hint)."""
    response = api.post(LOGIN_OPTIONS, {"emailHint": email_hint} if email_hint else {}, **meta)
    assert response.status_code == 200, response.content
    options: dict[str, Any] = response.json()
    return options


def registration_options(api: ApiClient, user: Any) -> dict[str, Any]:
    """Sign ``user`` in (recently) and request creation options."""
    api.login(user)
    response = api.post(REGISTER_OPTIONS)
    assert response.status_code == 200, response.content
    options: dict[str, Any] = response.json()
    return options


def passkey_login(
    authenticator: SoftAuthenticator, api: ApiClient | None = None, **meta: Any
) -> ApiClient:
    """Sign in with ``authenticator`` over HTTP in ``api`` (a new client by default)."""
    api = api or ApiClient()
    response = api.post(LOGIN_VERIFY, authenticator.get(login_options(api, **meta)), **meta)
    assert response.status_code == 200, response.content
    return api


def forged_assertion(api: ApiClient, authenticator: SoftAuthenticator) -> dict[str, Any]:
    """An assertion naming ``authenticator``'s credential whose signature does not verify."""
    assertion = authenticator.get(login_options(api))
    signature = bytearray(base64.urlsafe_b64decode(assertion["response"]["signature"] + "=="))
    signature[-1] ^= 0x01
    assertion["response"]["signature"] = (
        base64.urlsafe_b64encode(bytes(signature)).decode().rstrip("=")
    )
    return assertion


def cloned_assertion(api: ApiClient, authenticator: SoftAuthenticator) -> dict[str, Any]:
    """A correctly signed assertion whose counter went back to 0, as a cloned key sends.

    ``authenticator`` must have been enrolled with a counter above 0.
    """
    assert authenticator.sign_count > 0
    return authenticator.get(login_options(api), sign_count=0)


# -- Checks on the answers and the database ------------------------------------------------------


def error_code(response: Any) -> str:
    """The reason code of an error answer."""
    return str(response.json()["error"]["code"])


def assert_rejected(response: Any, reason: Reason, *, audited: bool = True) -> None:
    """The response is ``reason``'s error, and (when ``audited``) an AuthEvent records it."""
    status, _ = REASONS[reason]
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == reason.value, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if audited:
        event = AuthEvent.objects.order_by("-pk").first()
        assert event is not None
        assert (event.success, event.reason_code) == (False, reason.value)


def db_snapshot() -> dict[str, Any]:
    """What the database holds, except the audit trail: compare before and after a failure."""
    return {
        "credentials": sorted(
            Credential.objects.values_list(
                "pk", "sign_count", "backup_state", "last_used_at", "revoked_at", "clone_warning_at"
            ),
            key=str,
        ),
        "challenges": sorted(Challenge.objects.values_list("pk", "consumed_at"), key=str),
        "handles": UserHandle.objects.count(),
    }


def needs_postgres() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs PostgreSQL: set DATABASE_URL=postgres://...",
    )


def needs_redis() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL=redis://..."
    )


# -- Races: calls at once, each on its own connection (PostgreSQL) ------------------------------

#: How long a racing thread waits at a barrier for the others before the race is called off. A
#: test that holds its calls at a point of its own (a monkeypatched hook) gives that barrier this.
BARRIER_TIMEOUT = 20.0


def run_in_threads(
    calls: Sequence[Callable[[], T]], *, timeout: float = 2 * BARRIER_TIMEOUT
) -> list[T]:
    """Run each call in its own thread, all released together; return their results in order.

    Django gives each thread its own database connection, so the calls race as separate
    requests would; each thread closes its connection when done, since one left open keeps the
    test database in use. A start barrier releases every call at once. A test that must hold
    the calls at a given point keeps that barrier itself (with ``BARRIER_TIMEOUT``): this only
    runs the threads.

    An exception raised in a thread is raised here with its traceback (several at once in a
    group): a call whose refusal is the outcome under test catches it and returns it. A thread
    still running ``timeout`` seconds after the start fails the test. The default outlasts a
    barrier's wait, so a barrier broken by a thread that failed shows as that failure, not as a
    hang.
    """
    start = threading.Barrier(len(calls), timeout=BARRIER_TIMEOUT)
    results: dict[int, T] = {}
    errors: dict[int, BaseException] = {}

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            start.wait()
            results[index] = call()
        except BaseException as exc:  # raised again in the calling thread
            errors[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, call), name=f"race-{i}", daemon=True)
        for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    running = [thread.name for thread in threads if thread.is_alive()]
    if running:
        pytest.fail(f"still running after {timeout}s: {running}; raised so far: {errors}")
    if len(errors) == 1:
        raise next(iter(errors.values()))
    if errors:
        raise BaseExceptionGroup(
            f"{len(errors)} of {len(calls)} threads raised", [errors[i] for i in sorted(errors)]
        )
    return [results[i] for i in range(len(calls))]
