"""The request pipeline every POST runs: rate limit, size, CSRF, parse, flow, respond.

Regression tests for the security review's findings on it: ids parsed strictly (defect 6),
one name rule (defect 7), form posts rate-limited like JSON posts (defect 8), the size limit on
the bytes actually read (defect 9), and no "Recover account" link to an e-mail-only reset.
"""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.messages import get_messages
from django.core.handlers.asgi import ASGIRequest
from django.urls import resolve

from django_passkeys.errors import REASONS, Reason
from django_passkeys.models import AuthEvent, Challenge, Credential

from .factories import CredentialFactory
from .support import form_post

pytestmark = pytest.mark.django_db

SESSIONS = "/auth/passkey/sessions/"


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


# -- defect 6: ids are ASCII digits of bounded length -------------------------------------------


@pytest.mark.parametrize("value", ["²", "١٢", "1.0", "-1", " 1", "1" * 19, ""])
def test_session_id_that_is_not_ascii_digits_is_malformed(api, user, value):
    api.login(user)
    response = api.post(SESSIONS, {"end": value})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == Reason.MALFORMED_REQUEST


def test_superscript_digit_in_a_session_form_post_is_refused_with_a_message(api, user):
    api.login(user)
    response = form_post(api, SESSIONS, {"end": "²"})
    assert response.status_code == 303
    assert messages_of(response) == [str(REASONS[Reason.MALFORMED_REQUEST][1])]
    assert AuthEvent.objects.filter(reason_code="malformed_request").exists()


@pytest.mark.parametrize("pk", ["99999999999999999999999", "1" * 19])
def test_passkey_id_too_long_for_the_database_is_not_found(api, user, pk):
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{pk}/rename", {"name": "x"})
    assert response.status_code == 404


# -- defect 7: one name rule for registration and rename ----------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a\x00b", "line\nbreak", "tab\there", "bell\x07", "\u2028", "x" * 129, "   ", 5, None, ["x"]],
)
def test_rename_refuses_a_bad_name_and_keeps_the_old_one(api, user, name):
    credential = CredentialFactory(user=user, name="old")
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": name})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == Reason.NAME_INVALID
    credential.refresh_from_db()
    assert credential.name == "old"


def test_rename_trims_the_name(api, user):
    credential = CredentialFactory(user=user)
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": "  Laptop  "})
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.name == "Laptop"


def test_a_128_character_name_is_kept_whole(api, user):
    credential = CredentialFactory(user=user)
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": "é" * 128})
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.name == "é" * 128


@pytest.mark.parametrize("name", ["x" * 129, "a\x00b", "new\nline", 7])
def test_registration_refuses_a_bad_name_before_using_the_challenge(api, user, authenticator, name):
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    body = {**authenticator.create(options), "name": name}
    response = api.post("/auth/passkey/register/verify", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == Reason.NAME_INVALID
    assert not Credential.objects.exists()
    assert Challenge.objects.get().consumed_at is None


def test_registration_trims_the_name(api, user, authenticator):
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    body = {**authenticator.create(options), "name": "  Phone "}
    assert api.post("/auth/passkey/register/verify", body).status_code == 201
    assert Credential.objects.get().name == "Phone"


# -- defect 8: form posts go through the rate limits ----------------------------------------------


def test_form_posts_to_rename_are_rate_limited(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {
        "default": {"ip": None, "account": None},
        "rename": {"ip": "2/h", "account": None},
    }
    credential = CredentialFactory(user=user, name="old")
    api.login(user)
    url = f"/auth/passkey/manage/{credential.pk}/rename"
    assert form_post(api, url, {"name": "one"}).status_code == 303
    assert form_post(api, url, {"name": "two"}).status_code == 303
    refused = form_post(api, url, {"name": "three"})
    assert refused.status_code == 303
    credential.refresh_from_db()
    assert credential.name == "two"
    assert AuthEvent.objects.filter(event_type="rate_limit").count() == 1


def test_form_posts_to_remove_are_rate_limited(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {
        "default": {"ip": None, "account": None},
        "remove": {"ip": None, "account": "1/h"},
    }
    first, second = CredentialFactory.create_batch(2, user=user)
    api.login(user)
    assert form_post(api, f"/auth/passkey/manage/{first.pk}/remove").status_code == 303
    assert form_post(api, f"/auth/passkey/manage/{second.pk}/remove").status_code == 303
    second.refresh_from_db()
    assert second.revoked_at is None
    first.refresh_from_db()
    assert first.revoked_at is not None


def test_session_form_posts_are_rate_limited(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {
        "default": {"ip": None, "account": None},
        "sessions": {"ip": "1/h", "account": None},
    }
    api.login(user)
    assert form_post(api, SESSIONS, {"end": "all"}).status_code == 303
    assert form_post(api, SESSIONS, {"end": "all"}).status_code == 303
    assert AuthEvent.objects.filter(event_type="rate_limit").count() == 1


# -- defect 9: the size limit counts the bytes read ---------------------------------------------


def _asgi_request(path, body, *, headers=()):
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "scheme": "https",
        "server": ("testserver", 443),
        "client": ("127.0.0.1", 5000),
    }
    request = ASGIRequest(scope, io.BytesIO(body))
    request.resolver_match = resolve(path)
    return request


@pytest.mark.parametrize("path", ["/auth/passkey/login/options", "/auth/passkey/login/verify"])
def test_chunked_asgi_body_over_the_limit_is_refused_unparsed(settings, monkeypatch, path):
    settings.PASSKEYS_MAX_BODY_BYTES = 1000
    body = json.dumps({"emailHint": "a" * 5000}).encode()

    def must_not_run(*args, **kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr("django_passkeys.views.base.parse_json", must_not_run)
    request = _asgi_request(path, body)  # no Content-Length: a chunked body
    assert "CONTENT_LENGTH" not in request.META
    response = request.resolver_match.func(request)
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == Reason.PAYLOAD_TOO_LARGE


def test_chunked_asgi_body_under_the_limit_is_read(settings):
    from django.contrib.sessions.backends.db import SessionStore

    settings.PASSKEYS_MAX_BODY_BYTES = 1000
    request = _asgi_request("/auth/passkey/login/options", b'{"emailHint": null}')
    request.session = SessionStore()
    request.COOKIES["csrftoken"] = token = "a" * 32
    request.META["HTTP_X_CSRFTOKEN"] = token
    request.META["HTTP_ORIGIN"] = "https://testserver"
    response = request.resolver_match.func(request)
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["challenge"]


def test_non_numeric_content_length_is_malformed(api):
    response = api.post("/auth/passkey/login/options", CONTENT_LENGTH="12a")
    assert response.status_code == 400


# -- parsing: empty bodies, bodies read already, broken form bodies -----------------------------


def test_an_empty_body_is_an_empty_object(api):
    response = api.post("/auth/passkey/login/options", raw=b"")
    assert response.status_code == 200, response.content
    assert response.json()["challenge"]
    assert Challenge.objects.count() == 1


class BodyReadingMiddleware:
    """A project middleware that reads the body before the view (as a logging one may)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.body  # noqa: B018 - reading it is the point
        return self.get_response(request)


def test_a_body_a_middleware_read_already_is_the_one_parsed(api, user, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.BodyReadingMiddleware"]
    credential = CredentialFactory(user=user, name="old")
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": "Laptop"})
    assert response.status_code == 200, response.content
    credential.refresh_from_db()
    assert credential.name == "Laptop"


def test_a_body_a_middleware_read_already_is_still_size_limited(settings, monkeypatch):
    settings.PASSKEYS_MAX_BODY_BYTES = 1000
    monkeypatch.setattr(
        "django_passkeys.views.base.parse_json", pytest.fail, raising=True
    )  # never parsed
    request = _asgi_request("/auth/passkey/login/options", b'{"emailHint": "' + b"a" * 5000 + b'"}')
    request.body  # noqa: B018 - as a middleware would, before the view
    response = request.resolver_match.func(request)
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == Reason.PAYLOAD_TOO_LARGE


def _broken_multipart_post(client, path, **extra):
    # No boundary: Django's multipart parser refuses the body.
    return client.post(
        path, b"--x\r\n\r\n", content_type="multipart/form-data", secure=True, **extra
    )


def test_a_broken_multipart_form_post_is_malformed(api, user):
    credential = CredentialFactory(user=user)
    api.login(user)
    response = _broken_multipart_post(api.client, SESSIONS, HTTP_X_CSRFTOKEN=api.csrf_token())
    assert response.status_code == 303
    assert messages_of(response) == [str(REASONS[Reason.MALFORMED_REQUEST][1])]
    assert AuthEvent.objects.filter(reason_code="malformed_request").exists()
    assert Credential.objects.get() == credential


def test_a_form_post_without_csrf_token_to_a_login_required_page_runs_the_pipeline(api, user):
    # SessionsView lists LoginRequiredMixin before Endpoint: the CSRF check is still the
    # pipeline's (after the rate and size limits), answered with a message, not Django's page.
    api.login(user)
    response = form_post(api, SESSIONS, {"end": "all"}, csrf=False)
    assert response.status_code == 303
    assert messages_of(response) == [str(REASONS[Reason.CSRF_FAILED][1])]
    assert AuthEvent.objects.filter(reason_code="csrf_failed").exists()


def test_a_broken_multipart_form_post_is_malformed_without_csrf_enforcement(user):
    # Django's test client (and any project that turns the check off) skips the CSRF token, so
    # the form is first parsed by the pipeline itself.
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = _broken_multipart_post(client, SESSIONS)
    assert response.status_code == 303
    assert messages_of(response) == [str(REASONS[Reason.MALFORMED_REQUEST][1])]
    assert AuthEvent.objects.filter(reason_code="malformed_request").exists()


def test_a_request_without_a_session_still_gets_service_unavailable(settings):
    # An ASGI request built without SessionMiddleware; the rate-limit cache does not answer.
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    settings.RATELIMIT_USE_CACHE = "down"
    settings.PASSKEYS_RATE_LIMITS = {"login-options": {"ip": "60/m"}}
    request = _asgi_request("/auth/passkey/login/options", b"{}")
    assert not hasattr(request, "session")
    response = request.resolver_match.func(request)
    assert response.status_code == 503
    assert json.loads(response.content)["error"]["code"] == Reason.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "5"
    assert not Challenge.objects.exists()
