from __future__ import annotations

from unittest import mock

import pytest

from django_passkeys.models import AuthEvent, Challenge, Credential
from django_passkeys.sessions import is_recently_authenticated

from .authenticator import SoftAuthenticator, b64url
from .factories import CredentialFactory, UserFactory
from .support import age_session, error_code

pytestmark = pytest.mark.django_db

OPTIONS = "/auth/passkey/reauth/options"
VERIFY = "/auth/passkey/reauth/verify"


@pytest.fixture
def signed_in(api, user, authenticator, register):
    assert register(user, authenticator).status_code == 201
    age_session(api)
    return user


def test_reauth_options_list_the_users_passkeys(api, signed_in, authenticator):
    options = api.post(OPTIONS).json()
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(authenticator.credential_id)]
    challenge = Challenge.objects.latest("created_at")
    assert challenge.purpose == Challenge.Purpose.REAUTH
    assert challenge.user_id == signed_in.pk


def test_reauthentication_renews_the_session(api, signed_in, authenticator):
    request = mock.Mock(session=api.client.session)
    assert not is_recently_authenticated(request)
    options = api.post(OPTIONS).json()
    response = api.post(VERIFY, authenticator.get(options))
    assert response.status_code == 200, response.content
    assert response.json() == {"reauthenticated": True}
    assert is_recently_authenticated(mock.Mock(session=api.client.session))
    event = AuthEvent.objects.filter(event_type=AuthEvent.Type.REAUTH).get()
    assert event.success and event.user == signed_in
    assert event.credential == Credential.objects.get()


def test_reauth_needs_a_signed_in_user(api, unchanged):
    with unchanged():
        response = api.post(OPTIONS)
        assert response.status_code == 403
        assert error_code(response) == "not_authenticated"
        response = api.post(VERIFY, {})
        assert response.status_code == 403
        assert error_code(response) == "not_authenticated"
    assert not Challenge.objects.exists()


def test_a_login_challenge_cannot_reauthenticate(api, signed_in, authenticator, unchanged):
    options = api.post("/auth/passkey/login/options").json()
    with unchanged():
        response = api.post(VERIFY, authenticator.get(options))
    assert response.status_code == 400
    assert error_code(response) == "challenge_invalid"
    assert not is_recently_authenticated(mock.Mock(session=api.client.session))


def test_another_users_passkey_cannot_reauthenticate(api, user, register, unchanged):
    other, other_key = UserFactory(), SoftAuthenticator()
    assert register(other, other_key).status_code == 201
    assert register(user, SoftAuthenticator()).status_code == 201
    age_session(api)
    options = api.post(OPTIONS).json()
    with unchanged():
        response = api.post(VERIFY, other_key.get(options))
    assert response.status_code == 400
    assert error_code(response) == "credential_not_allowed"
    failure = AuthEvent.objects.filter(event_type=AuthEvent.Type.REAUTH).get()
    assert not failure.success and failure.reason_code == "credential_not_allowed"


def test_reauth_verify_refuses_a_credential_of_another_account(api, signed_in):
    foreign = CredentialFactory()
    with mock.patch("django_passkeys.ceremonies.verify_authentication", return_value=foreign):
        response = api.post(VERIFY, {})
    assert response.status_code == 400
    assert error_code(response) == "credential_not_allowed"
    assert not is_recently_authenticated(mock.Mock(session=api.client.session))


def test_reauth_endpoints_are_post_only(api):
    response = api.client.get(OPTIONS, secure=True)
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


def test_switching_accounts_invalidates_a_pending_reauth_challenge(
    api, signed_in, authenticator, unchanged
):
    # login() as another user flushes the session, and with it the challenge binding.
    options = api.post(OPTIONS).json()
    api.login(UserFactory())
    age_session(api)
    with unchanged():
        response = api.post(VERIFY, authenticator.get(options))
    assert response.status_code == 400
    assert error_code(response) == "challenge_invalid"
    assert Challenge.objects.get(purpose=Challenge.Purpose.REAUTH).consumed_at is None


def test_failed_reauthentications_count_towards_the_account_backoff(
    api, signed_in, authenticator, settings
):
    settings.PASSKEYS_FAILURE_BACKOFF = {"free": 1, "base": 60}
    Credential.objects.update(sign_count=10)
    cloned = authenticator.get(api.post(OPTIONS).json(), sign_count=5)
    assert error_code(api.post(VERIFY, cloned)) == "sign_count_regressed"
    genuine = authenticator.get(api.post(OPTIONS).json(), sign_count=11)
    response = api.post(VERIFY, genuine)
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert not is_recently_authenticated(mock.Mock(session=api.client.session))
