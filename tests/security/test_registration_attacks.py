"""Attacks on ``register/options`` and ``register/verify`` (WebAuthn L3 §7.1): who may register,
stale or foreign challenges, duplicate and oversized credential ids, unoffered algorithms and
rejected attestation."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from django_passkeys.errors import Reason
from django_passkeys.models import Challenge, Credential
from django_passkeys.sessions import AUTH_TIME_KEY
from tests.authenticator import SoftAuthenticator
from tests.factories import UserFactory
from tests.support import (
    REGISTER_OPTIONS,
    REGISTER_VERIFY,
    ApiClient,
    assert_rejected,
    login_options,
    registration_options,
)

PASSWORD = "correct horse battery staple"


# -- who may register ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", [REGISTER_OPTIONS, REGISTER_VERIFY])
def test_registration_requires_a_signed_in_user(api, db, unchanged, path):
    with unchanged():
        response = api.post(path, {})
    assert_rejected(response, Reason.NOT_AUTHENTICATED)


@pytest.mark.parametrize("path", [REGISTER_OPTIONS, REGISTER_VERIFY])
def test_registration_requires_a_recent_sign_in(api, user, settings, unchanged, path):
    settings.PASSKEYS_REAUTH_MAX_AGE = 300
    api.login(user)
    session = api.client.session
    session[AUTH_TIME_KEY] = int(time.time()) - 301
    session.save()
    with unchanged():
        response = api.post(path, {})
    assert_rejected(response, Reason.REAUTHENTICATION_REQUIRED)


def test_session_without_sign_in_time_must_reauthenticate(api, user, unchanged):
    # A session from before the app was installed (or from a login path that bypassed
    # django.contrib.auth.login) carries no sign-in time: it is treated as stale.
    api.login(user)
    session = api.client.session
    del session[AUTH_TIME_KEY]
    session.save()
    with unchanged():
        response = api.post(REGISTER_OPTIONS)
    assert_rejected(response, Reason.REAUTHENTICATION_REQUIRED)


def test_fresh_password_login_may_register(api, user):
    # django.contrib.auth.login() (here through the test client) stamps the sign-in time.
    assert api.client.login(username=user.username, password=PASSWORD)
    options = api.post(REGISTER_OPTIONS)
    assert options.status_code == 200, options.content
    response = api.post(REGISTER_VERIFY, SoftAuthenticator().create(options.json()))
    assert response.status_code == 201, response.content


# -- challenges ---------------------------------------------------------------------------------


def test_expired_registration_challenge_is_rejected(api, user, unchanged):
    options = registration_options(api, user)
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with unchanged():
        response = api.post(REGISTER_VERIFY, SoftAuthenticator().create(options))
    assert_rejected(response, Reason.CHALLENGE_EXPIRED)


def test_expired_challenge_is_rejected_after_the_ttl(api, user, settings, unchanged):
    settings.PASSKEYS_CHALLENGE_TTL = 60
    options = registration_options(api, user)
    later = timezone.now() + timedelta(seconds=61)
    response_body = SoftAuthenticator().create(options)
    with unchanged(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.utils.timezone.now", lambda: later)
        response = api.post(REGISTER_VERIFY, response_body)
    assert_rejected(response, Reason.CHALLENGE_EXPIRED)


def test_login_challenge_cannot_be_used_for_registration(api, user, unchanged):
    api.login(user)
    options = login_options(api)
    with unchanged():
        response = api.post(REGISTER_VERIFY, SoftAuthenticator().create(_with_user(options)))
    assert_rejected(response, Reason.CHALLENGE_INVALID)


def test_registration_challenge_from_another_session_is_rejected(api, user, unchanged):
    options = registration_options(api, user)
    body = SoftAuthenticator().create(options)
    attacker = ApiClient()
    attacker.login(user)  # the same account, signed in elsewhere: still another session
    with unchanged():
        response = attacker.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.CHALLENGE_INVALID)


def test_replayed_registration_is_rejected(api, user, unchanged):
    options = registration_options(api, user)
    body = SoftAuthenticator().create(options)
    assert api.post(REGISTER_VERIFY, body).status_code == 201
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.CHALLENGE_INVALID)


# -- credential ids -----------------------------------------------------------------------------


def test_credential_id_of_another_user_is_not_registered(api, user, unchanged):
    victim = UserFactory()
    victims_key = SoftAuthenticator()
    victim_options = registration_options(api, victim)
    assert api.post(REGISTER_VERIFY, victims_key.create(victim_options)).status_code == 201

    # The attacker claims the victim's credential id with a key of their own.
    options = registration_options(api, user)
    body = SoftAuthenticator(credential_id=victims_key.credential_id).create(options)
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.CREDENTIAL_EXISTS)
    stored = Credential.objects.get()
    assert (stored.user_id, bytes(stored.public_key)) == (
        victim.pk,
        victims_key.cose_public_key(),
    )


def test_same_credential_is_not_registered_twice(api, user, authenticator, unchanged):
    first = registration_options(api, user)
    assert api.post(REGISTER_VERIFY, authenticator.create(first)).status_code == 201
    options = registration_options(api, user)
    body = authenticator.create(options)
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.CREDENTIAL_EXISTS)


def test_credential_id_over_1023_bytes_is_rejected(api, user, unchanged):
    options = registration_options(api, user)
    body = SoftAuthenticator(credential_id=os.urandom(1024)).create(options)
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.CREDENTIAL_ID_TOO_LONG)


def test_credential_id_of_1023_bytes_is_accepted(api, user):
    options = registration_options(api, user)
    body = SoftAuthenticator(credential_id=os.urandom(1023)).create(options)
    assert api.post(REGISTER_VERIFY, body).status_code == 201


# -- algorithms and attestation -----------------------------------------------------------------


def test_algorithm_never_offered_is_rejected(api, user, unchanged):
    options = registration_options(api, user)
    assert -36 not in [p["alg"] for p in options["pubKeyCredParams"]]
    body = SoftAuthenticator().create(options, alg=-36)  # ES512
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ALGORITHM_UNSUPPORTED)


def test_algorithm_outside_configured_list_is_rejected(api, user, settings, unchanged):
    settings.PASSKEYS_ALGORITHMS = [-257]
    options = registration_options(api, user)
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-257]
    body = SoftAuthenticator().create(options, alg=-7)
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ALGORITHM_UNSUPPORTED)


def test_attestation_statement_that_does_not_verify_is_rejected(api, user, unchanged):
    options = registration_options(api, user)
    body = SoftAuthenticator().create(options, fmt="packed")  # packed with no signature
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)


def test_none_attestation_is_rejected_when_attestation_is_required(api, user, settings, unchanged):
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    options = registration_options(api, user)
    body = SoftAuthenticator().create(options)
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)


def _with_user(options: dict[str, object]) -> dict[str, object]:
    """Request options dressed as creation options, so the authenticator will sign them."""
    return {**options, "user": {"id": "AAAA"}}
