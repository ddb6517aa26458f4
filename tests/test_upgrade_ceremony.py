"""The server side of the passkey upgrade: ``upgrade/options`` and ``upgrade/verify``.

A conditionally created credential (``mediation: "conditional"``) arrives with UP=0: WebAuthn L3
§7.1 step 14 checks UP only when mediation is not conditional. Only the upgrade purpose accepts
it; every other registration still requires user presence.
"""

from __future__ import annotations

import pytest
from webauthn.helpers import parse_authenticator_data

from django_passkeys import ceremonies
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Challenge, Credential

from .authenticator import SoftAuthenticator
from .support import REGISTER_OPTIONS, REGISTER_VERIFY, age_session, assert_rejected

pytestmark = pytest.mark.django_db

UPGRADE_OPTIONS = "/auth/passkey/upgrade/options"
UPGRADE_VERIFY = "/auth/passkey/upgrade/verify"
NO_PRESENCE = {"up": False}


@pytest.fixture
def signed_in(api, user):
    api.login(user)
    return user


def test_upgrade_options_issue_a_challenge_of_their_own_purpose(api, signed_in):
    response = api.post(UPGRADE_OPTIONS)
    assert response.status_code == 200, response.content
    assert response.json()["authenticatorSelection"]["residentKey"] == "required"
    challenge = Challenge.objects.get()
    assert (challenge.purpose, challenge.user_id) == (Challenge.Purpose.UPGRADE, signed_in.pk)


def test_a_conditionally_created_passkey_without_user_presence_is_accepted(api, signed_in):
    authenticator = SoftAuthenticator()
    options = api.post(UPGRADE_OPTIONS).json()
    response = api.post(UPGRADE_VERIFY, authenticator.create(options, flags=NO_PRESENCE))
    assert response.status_code == 201, response.content
    credential = Credential.objects.get()
    assert credential.user_id == signed_in.pk
    event = AuthEvent.objects.filter(credential=credential).get()
    assert (event.event_type, event.success) == (AuthEvent.Type.UPGRADE, True)


def test_an_upgrade_with_user_presence_is_accepted_too(api, signed_in):
    # The interstitial's "Create a passkey" button: a modal create, UP=1.
    options = api.post(UPGRADE_OPTIONS).json()
    response = api.post(UPGRADE_VERIFY, SoftAuthenticator().create(options))
    assert response.status_code == 201, response.content


def test_a_registration_without_user_presence_is_refused(api, signed_in, unchanged):
    options = api.post(REGISTER_OPTIONS).json()
    with unchanged():
        response = api.post(REGISTER_VERIFY, SoftAuthenticator().create(options, flags=NO_PRESENCE))
    assert_rejected(response, Reason.USER_PRESENCE_MISSING)
    assert not Credential.objects.exists()


def test_an_upgrade_challenge_cannot_register_through_register_verify(api, signed_in, unchanged):
    options = api.post(UPGRADE_OPTIONS).json()
    with unchanged():
        response = api.post(REGISTER_VERIFY, SoftAuthenticator().create(options, flags=NO_PRESENCE))
    assert_rejected(response, Reason.CHALLENGE_INVALID)


def test_a_register_challenge_cannot_skip_presence_through_upgrade_verify(
    api, signed_in, unchanged
):
    options = api.post(REGISTER_OPTIONS).json()
    with unchanged():
        response = api.post(UPGRADE_VERIFY, SoftAuthenticator().create(options, flags=NO_PRESENCE))
    assert_rejected(response, Reason.CHALLENGE_INVALID)
    assert not Credential.objects.exists()


@pytest.mark.parametrize(
    "purpose",
    [p for p in Challenge.Purpose if p != Challenge.Purpose.UPGRADE],
)
def test_no_other_purpose_accepts_missing_user_presence(api, signed_in, purpose):
    """The UP exception is keyed on the challenge's purpose, in the one place that checks UP."""
    auth_data = parse_authenticator_data(
        SoftAuthenticator().authenticator_data(SoftAuthenticator().flags(up=False), 0)
    )
    rp = ceremonies.RelyingParty.from_settings()
    with pytest.raises(PasskeyError) as raised:
        ceremonies._check_authenticator_data(auth_data, rp, purpose=purpose)
    assert raised.value.code == Reason.USER_PRESENCE_MISSING
    ceremonies._check_authenticator_data(auth_data, rp, purpose=Challenge.Purpose.UPGRADE)


def test_upgrade_without_user_verification_follows_the_site_policy(api, signed_in, settings):
    settings.PASSKEYS_USER_VERIFICATION = "required"
    options = api.post(UPGRADE_OPTIONS).json()
    response = api.post(
        UPGRADE_VERIFY, SoftAuthenticator().create(options, flags={"up": False, "uv": False})
    )
    assert_rejected(response, Reason.USER_VERIFICATION_MISSING)


def test_upgrade_needs_a_recent_sign_in(api, signed_in):
    age_session(api)
    assert_rejected(api.post(UPGRADE_OPTIONS), Reason.REAUTHENTICATION_REQUIRED)


def test_upgrade_needs_a_sign_in(api, db):
    assert_rejected(api.post(UPGRADE_OPTIONS), Reason.NOT_AUTHENTICATED)


def test_upgrade_is_refused_to_users_outside_the_rollout(api, signed_in, settings, unchanged):
    settings.PASSKEYS_ROLLOUT = "off"
    with unchanged():
        response = api.post(UPGRADE_OPTIONS)
    assert_rejected(response, Reason.UPGRADE_NOT_OFFERED)
    assert not Challenge.objects.exists()


def test_a_failed_upgrade_is_audited_as_an_upgrade(api, signed_in):
    options = api.post(UPGRADE_OPTIONS).json()
    response = api.post(UPGRADE_VERIFY, SoftAuthenticator().create(options, origin="https://evil"))
    assert_rejected(response, Reason.ORIGIN_MISMATCH)
    assert AuthEvent.objects.get(success=False).event_type == AuthEvent.Type.UPGRADE
