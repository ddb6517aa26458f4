from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from django_passkeys.models import AuthEvent, Credential, RecoveryRequest

from . import support
from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .recovery_support import VERIFY, signed_in_device, start
from .skip_policy import pytest_runtest_logreport, pytest_sessionfinish  # noqa: F401
from .support import ApiClient, db_snapshot


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
    """Register ``authenticator`` for ``user`` through the HTTP endpoints; return the response.

    The ``api`` client stays signed in as ``user``.
    """

    def _register(user: Any, authenticator: SoftAuthenticator, **create_kwargs: Any) -> Any:
        return support.register(api, user, authenticator, **create_kwargs)

    return _register


@pytest.fixture
def enrolled(api: ApiClient, user: Any, authenticator: SoftAuthenticator) -> Credential:
    """``user``'s credential: ``authenticator`` registered over HTTP; the client is signed out."""
    return support.enroll(user, authenticator, api=api)


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


# -- Recovery by device approval (tests/test_recovery_approval.py, tests/test_recovery_edges.py) --


@pytest.fixture
def device(user: Any) -> ApiClient:
    """A browser where ``user`` is signed in with a passkey, just now."""
    browser, _ = signed_in_device(user)
    return browser


@pytest.fixture
def recovering(user: Any, device: ApiClient) -> ApiClient:
    """A second browser that claimed a recovery of ``user`` and asked for a device approval."""
    api = ApiClient()
    start(api, user)
    response = api.post(VERIFY, {"method": "device"})
    assert response.status_code == 200, response.content
    assert response.json() == {"state": RecoveryRequest.State.APPROVAL_PENDING}
    return api
