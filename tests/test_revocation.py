"""Revoking a passkey ends the sessions it established; the session index; ``passkeys_sessions``."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory
from django.utils import timezone

from django_passkeys import sessions
from django_passkeys.admin import CredentialAdmin
from django_passkeys.middleware import RevokedCredentialMiddleware
from django_passkeys.models import Credential, UserSession

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import ApiClient, enroll, passkey_login

pytestmark = pytest.mark.django_db


def signed_in(api: ApiClient) -> bool:
    return SESSION_KEY in api.client.session


@pytest.fixture
def enrolled(user):
    authenticator = SoftAuthenticator()
    return enroll(user, authenticator), authenticator


def test_a_passkey_login_indexes_its_session_with_the_credential(enrolled):
    credential, authenticator = enrolled
    api = passkey_login(authenticator, HTTP_USER_AGENT="Browser\r\nInjected")
    row = UserSession.objects.get()
    assert row.session_key == api.client.session.session_key
    assert (row.user, row.credential) == (credential.user, credential)
    assert row.ip_address == "127.0.0.1"
    assert row.user_agent == "Browser??Injected"
    assert api.client.session[sessions.CREDENTIAL_KEY] == credential.pk


def test_a_password_login_is_indexed_without_a_credential(user):
    client = Client()
    client.login(username=user.username, password="correct horse battery staple")
    row = UserSession.objects.get()
    assert (row.user, row.credential, row.session_key) == (user, None, client.session.session_key)


def test_signing_in_again_in_the_same_session_updates_its_row(enrolled):
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    key = api.client.session.session_key
    passkey_login(authenticator, api)  # same user: Django keeps the key
    assert api.client.session.session_key == key
    assert UserSession.objects.get().credential == credential


def test_revoking_a_passkey_ends_the_sessions_it_established(enrolled, user):
    credential, authenticator = enrolled
    first, second = passkey_login(authenticator), passkey_login(authenticator)
    other = Client()
    other.login(username=user.username, password="correct horse battery staple")
    credential.revoke(reason="lost phone")
    assert not signed_in(first) and not signed_in(second)
    assert SESSION_KEY in other.session  # the password session was not established by it
    assert list(UserSession.objects.values_list("credential", flat=True)) == [None]


def test_admin_revocation_ends_sessions_on_the_next_request(enrolled, rf):
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    request = rf.post("/admin/", {"reason": "reported stolen"})  # the confirmation page's answer
    request.user = admin_user
    request._messages = type("Messages", (), {"add": lambda *a, **k: None})()
    CredentialAdmin(Credential, site).revoke_selected(request, Credential.objects.all())
    assert not signed_in(api)
    response = api.post("/auth/passkey/register/options")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_removing_a_passkey_on_the_manage_page_ends_its_sessions(enrolled, user):
    credential, authenticator = enrolled
    victim_session = passkey_login(authenticator)
    owner = passkey_login(authenticator)
    other = SoftAuthenticator()
    enroll(user, other)
    owner_with_other = passkey_login(other)
    response = owner_with_other.post(f"/auth/passkey/manage/{credential.pk}/remove")
    assert response.status_code == 200, response.content
    assert not signed_in(victim_session) and not signed_in(owner)
    assert signed_in(owner_with_other)


def test_deleting_a_passkey_ends_its_sessions(enrolled):
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    credential.delete()
    assert not signed_in(api)
    assert not UserSession.objects.exists()


def test_saving_a_revoked_credential_for_another_field_ends_nothing_new(enrolled):
    credential, _ = enrolled
    credential.revoke()
    # Only saves that write revoked_at end sessions; a later rename of the record does not.
    row = UserSession.objects.create(
        user=credential.user, session_key="k" * 32, credential=credential
    )
    credential.name = "renamed"
    credential.save(update_fields=["name"])
    assert UserSession.objects.filter(pk=row.pk).exists()


def test_revocation_ends_sessions_in_the_cache_engine(enrolled, settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    assert signed_in(api)
    assert sessions.end_credential_sessions(credential.pk) == 1
    assert not signed_in(api)


def test_middleware_signs_out_a_session_whose_passkey_was_revoked_behind_its_back(enrolled):
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    # QuerySet.update() sends no signal, so the index cannot act: the middleware does.
    Credential.objects.filter(pk=credential.pk).update(revoked_at=credential.created_at)
    response = api.post("/auth/passkey/register/options")
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not signed_in(api)


def test_middleware_leaves_other_sessions_alone(enrolled, user):
    credential, authenticator = enrolled
    calls = []
    middleware = RevokedCredentialMiddleware(lambda request: calls.append(request) or "response")
    api = passkey_login(authenticator)
    request = RequestFactory().get("/")
    request.session = api.client.session
    assert middleware(request) == "response"
    assert SESSION_KEY in request.session
    request = RequestFactory().get("/")  # no session at all
    assert middleware(request) == "response"


def test_live_sessions_forgets_sessions_that_ended(enrolled):
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    UserSession.objects.create(user=credential.user, session_key="gone" * 8)
    assert [row.session_key for row in sessions.live_sessions(credential.user)] == [
        api.client.session.session_key
    ]
    assert UserSession.objects.count() == 1


def test_sessions_command_lists_and_ends_a_users_sessions(enrolled, user):
    credential, authenticator = enrolled
    first, second = passkey_login(authenticator), passkey_login(authenticator)
    out = io.StringIO()
    call_command("passkeys_sessions", "list", user.username, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(f"passkey {credential}" in line for line in lines)
    assert first.client.session.session_key not in out.getvalue()  # keys are never printed
    one = UserSession.objects.get(session_key=first.client.session.session_key)
    call_command("passkeys_sessions", "end", user.username, "--session", str(one.pk), stdout=out)
    assert not signed_in(first) and signed_in(second)
    call_command("passkeys_sessions", "end", user.username, stdout=out)
    assert not signed_in(second)
    assert out.getvalue().endswith("ended 1 sessions\n")


def test_sessions_command_refuses_unknown_users_and_sessions(user):
    with pytest.raises(CommandError, match="no user"):
        call_command("passkeys_sessions", "list", "nobody")
    with pytest.raises(CommandError, match="no session 999"):
        call_command("passkeys_sessions", "end", user.username, "--session", "999")


def test_logins_and_logouts_without_a_server_side_session_are_not_indexed(user):
    sessions.index_session(sender=None, request=None, user=user)
    sessions.index_session(sender=None, request=RequestFactory().get("/"), user=user)
    sessions.forget_session(sender=None, request=None, user=user)
    assert not UserSession.objects.exists()


# -- the guarantee, whatever the session engine ---------------------------------------------------

ENGINES = [
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cache",
    "django.contrib.sessions.backends.cached_db",
]
NEW_PASSWORD = "another horse battery staple"


def change_password(api: ApiClient, user) -> None:
    """Change the password in the admin: ``update_session_auth_hash`` cycles the session key."""
    key = api.client.session.session_key
    response = api.client.post(
        "/admin/password_change/",
        {
            "old_password": "correct horse battery staple",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
            "csrfmiddlewaretoken": api.csrf_token(),
        },
        secure=True,
    )
    assert response.status_code == 302, response.content
    assert signed_in(api) and api.client.session.session_key != key


def revoke_by_save(credential: Credential) -> None:
    credential.revoke(reason="lost phone")


def revoke_by_update(credential: Credential) -> None:
    # No post_save signal: only the request-time check can notice this one.
    Credential.objects.filter(pk=credential.pk).update(revoked_at=timezone.now())


@pytest.mark.parametrize("revoke", [revoke_by_save, revoke_by_update])
@pytest.mark.parametrize("rotated", [False, True], ids=["same-key", "key-rotated"])
@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.rsplit(".", 1)[1])
def test_revocation_signs_the_session_out_whatever_the_engine(
    user, settings, engine, rotated, revoke
):
    settings.SESSION_ENGINE = engine
    user.is_staff = True  # the admin's password change page rotates the key over HTTP
    user.save(update_fields=["is_staff"])
    authenticator = SoftAuthenticator()
    credential = enroll(user, authenticator)
    api = passkey_login(authenticator)
    other = SoftAuthenticator()
    enroll(UserFactory(), other)
    bystander = passkey_login(other)
    if rotated:
        change_password(api, user)
    revoke(credential)
    response = api.post("/auth/passkey/register/options")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not signed_in(api)
    assert bystander.post("/auth/passkey/register/options").status_code == 200


def test_the_index_follows_a_key_rotated_by_a_password_change(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    authenticator = SoftAuthenticator()
    credential = enroll(user, authenticator)
    api = passkey_login(authenticator)
    change_password(api, user)
    new_key = api.client.session.session_key
    assert UserSession.objects.get().session_key == new_key
    assert [row.session_key for row in sessions.live_sessions(user)] == [new_key]
    # Revocation now reaches the session through the index at once, without waiting for a request.
    credential.revoke()
    assert not sessions.session_store().exists(new_key)


def test_a_password_sign_in_takes_a_passkey_session_over(enrolled, user):
    # Django keeps the session of a user signing in again; the passkey that first established it
    # no longer did, so revoking that passkey leaves the session alone (index and session agree).
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    credential, authenticator = enrolled
    api = passkey_login(authenticator)
    response = api.client.post(
        "/admin/login/",
        {
            "username": user.username,
            "password": "correct horse battery staple",
            "csrfmiddlewaretoken": api.csrf_token(),
        },
        secure=True,
    )
    assert response.status_code == 302, response.content
    assert sessions.CREDENTIAL_KEY not in api.client.session
    credential.revoke()
    assert api.post("/auth/passkey/register/options").status_code == 200
    assert signed_in(api)


def test_a_login_signal_sent_without_a_request_stamps_nothing(user):
    # Project code may send user_logged_in itself (an API token login) with no request.
    from django.contrib.auth.signals import user_logged_in

    responses = user_logged_in.send(sender=type(user), request=None, user=user)
    assert responses  # the receivers ran, and none failed
    assert not UserSession.objects.exists()
