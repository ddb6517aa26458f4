from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from django_passkeys.models import AuthEvent, Challenge, Credential, UserHandle

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .skip_policy import pytest_runtest_logreport, pytest_sessionfinish  # noqa: F401

ORIGIN = "https://testserver"


class ApiClient:
    """A CSRF-enforcing test client that speaks the JSON contract over HTTPS."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True, HTTP_ORIGIN=ORIGIN)
        self.client.get("/auth/passkey/login/options")  # any request; sets nothing yet

    def csrf_token(self) -> str:
        from django.middleware.csrf import _get_new_csrf_string

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
        import json

        body = raw if raw is not None else json.dumps({} if data is None else data).encode()
        return self.client.generic(
            "POST", path, body, content_type="application/json", secure=True, **headers, **extra
        )

    def login(self, user: Any) -> None:
        self.client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        # force_login sends user_logged_in without a request; stamp the session like a login.
        import time

        from django_passkeys.sessions import AUTH_TIME_KEY

        session = self.client.session
        session[AUTH_TIME_KEY] = int(time.time())
        session.save()


@pytest.fixture(autouse=True)
def _own_rate_limit_counters(settings: Any) -> None:
    """Each test counts rate limits in its own cache namespace (no flush of a shared Redis)."""
    import uuid

    settings.RATELIMIT_CACHE_PREFIX = f"rl:test-{uuid.uuid4().hex}:"


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


@pytest.fixture
def user(db: Any) -> Any:
    return UserFactory()


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def register(api: ApiClient) -> Callable[..., Any]:
    """Register ``authenticator`` for ``user`` through the HTTP endpoints; return the response."""

    def _register(user: Any, authenticator: SoftAuthenticator, **create_kwargs: Any) -> Any:
        api.login(user)
        options = api.post("/auth/passkey/register/options").json()
        return api.post(
            "/auth/passkey/register/verify", authenticator.create(options, **create_kwargs)
        )

    return _register


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


@pytest.fixture
def unchanged(db: Any) -> Callable[[], Any]:
    """Use as ``with unchanged(): ...`` to assert a block wrote nothing but AuthEvents."""
    import contextlib

    @contextlib.contextmanager
    def _unchanged() -> Any:
        before = db_snapshot()
        events = AuthEvent.objects.count()
        yield
        assert db_snapshot() == before
        assert AuthEvent.objects.count() >= events

    return _unchanged


def needs_postgres() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs PostgreSQL: set DATABASE_URL=postgres://...",
    )


def needs_redis() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL=redis://..."
    )
