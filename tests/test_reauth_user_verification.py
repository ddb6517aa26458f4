"""Step-up reauthentication requires user verification, whatever the sign-in policy asks.

Reauthentication guards sensitive actions: holding the authenticator (UV=0) is not enough to
renew a session, even where ``PASSKEYS_USER_VERIFICATION`` lets a plain sign-in through
without UV.
"""

from __future__ import annotations

from unittest import mock

import pytest

from django_passkeys.models import AuthEvent, Challenge
from django_passkeys.sessions import is_recently_authenticated

from .support import LOGIN_OPTIONS, LOGIN_VERIFY, age_session, error_code
from .test_reauth import OPTIONS, VERIFY

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["preferred", "discouraged"])
def lenient(request, settings):
    """A site whose sign-in does not require user verification."""
    settings.PASSKEYS_USER_VERIFICATION = request.param
    return request.param


@pytest.fixture
def signed_in(api, user, authenticator, register, lenient):
    assert register(user, authenticator).status_code == 201
    age_session(api)
    return user


def test_reauth_options_require_user_verification(api, signed_in, lenient):
    assert api.post(OPTIONS).json()["userVerification"] == "required"
    # A sign-in keeps the site's policy.
    assert api.post(LOGIN_OPTIONS).json()["userVerification"] == lenient


def test_reauthentication_without_user_verification_is_refused(
    api, signed_in, authenticator, unchanged
):
    options = api.post(OPTIONS).json()
    assertion = authenticator.get(options, flags={"uv": False})
    with unchanged():
        response = api.post(VERIFY, assertion)
    assert response.status_code == 400
    assert error_code(response) == "user_verification_missing"
    assert not is_recently_authenticated(mock.Mock(session=api.client.session))
    assert Challenge.objects.get(purpose=Challenge.Purpose.REAUTH).consumed_at is None
    event = AuthEvent.objects.filter(event_type=AuthEvent.Type.REAUTH).get()
    assert not event.success and event.reason_code == "user_verification_missing"


def test_reauthentication_with_user_verification_is_accepted(api, signed_in, authenticator):
    options = api.post(OPTIONS).json()
    response = api.post(VERIFY, authenticator.get(options, flags={"uv": True}))
    assert response.status_code == 200, response.content
    assert is_recently_authenticated(mock.Mock(session=api.client.session))


def test_sign_in_without_user_verification_still_follows_the_site_policy(
    api, signed_in, authenticator
):
    api.client.logout()
    options = api.post(LOGIN_OPTIONS).json()
    response = api.post(LOGIN_VERIFY, authenticator.get(options, flags={"uv": False}))
    assert response.status_code == 200, response.content
