"""Attacks on ``login/verify``: replays, stolen or stale challenges, foreign credentials,
cloned authenticators and tampered assertions (WebAuthn L3 §7.2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_passkeys.errors import Reason
from django_passkeys.models import Challenge, Credential
from tests.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.factories import UserFactory
from tests.support import (
    LOGIN_VERIFY,
    ApiClient,
    assert_rejected,
    enroll,
    login_options,
    registration_options,
)


def _flip(value: str, index: int, mask: int = 0x01) -> str:
    """``value`` (base64url) with one bit of byte ``index`` flipped."""
    raw = bytearray(b64url_decode(value))
    raw[index] ^= mask
    return b64url(bytes(raw))


# -- challenges ---------------------------------------------------------------------------------


def test_replayed_assertion_is_rejected(api, enrolled, authenticator, unchanged):
    assertion = authenticator.get(login_options(api))
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.CHALLENGE_INVALID)


def test_replayed_assertion_from_another_client_is_rejected(
    api, enrolled, authenticator, unchanged
):
    assertion = authenticator.get(login_options(api))
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200
    attacker = ApiClient()
    login_options(attacker)
    with unchanged():
        response = attacker.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.CHALLENGE_INVALID)


def test_expired_login_challenge_is_rejected(api, enrolled, authenticator, unchanged):
    options = login_options(api)
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with unchanged():
        response = api.post(LOGIN_VERIFY, authenticator.get(options))
    assert_rejected(response, Reason.CHALLENGE_EXPIRED)


def test_registration_challenge_cannot_be_used_for_login(api, enrolled, authenticator, unchanged):
    # One session, so that only the purpose differs.
    options = registration_options(api, enrolled.user)
    with unchanged():
        response = api.post(LOGIN_VERIFY, authenticator.get(options))
    assert_rejected(response, Reason.CHALLENGE_INVALID)


@pytest.mark.parametrize("attacker_has_session", [True, False])
def test_challenge_from_another_session_is_rejected(
    api, enrolled, authenticator, unchanged, attacker_has_session
):
    # The victim's browser signs the victim's challenge; the attacker submits that assertion.
    assertion = authenticator.get(login_options(api))
    attacker = ApiClient()
    if attacker_has_session:
        login_options(attacker)
    with unchanged():
        response = attacker.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.CHALLENGE_INVALID)
    # The victim's own submission still works: the failed attempt consumed nothing.
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200


def test_challenge_the_server_never_issued_is_rejected(api, enrolled, authenticator, unchanged):
    login_options(api)
    forged = {"challenge": b64url(b"\x00" * 32)}
    with unchanged():
        response = api.post(LOGIN_VERIFY, authenticator.get(forged))
    assert_rejected(response, Reason.CHALLENGE_INVALID)


# -- credentials and users ----------------------------------------------------------------------


def test_unknown_credential_is_rejected(api, enrolled, authenticator, unchanged):
    stranger = SoftAuthenticator(user_handle=authenticator.user_handle)
    assertion = stranger.get(login_options(api))
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.CREDENTIAL_UNKNOWN)


def test_revoked_credential_is_rejected(api, enrolled, authenticator, unchanged):
    enrolled.revoke(reason="lost")
    assertion = authenticator.get(login_options(api))
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.CREDENTIAL_REVOKED)


def test_discoverable_login_without_user_handle_is_rejected(
    api, enrolled, authenticator, unchanged
):
    # WebAuthn L3 §7.2 step 6: with an empty allowCredentials the user is identified by the
    # userHandle, so it must be present.
    assertion = authenticator.get(login_options(api), user_handle=None)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_HANDLE_MISMATCH)


def test_identified_login_without_user_handle_is_accepted(api, enrolled, authenticator):
    # With allowCredentials (an e-mail hint identified the user) userHandle is optional.
    options = login_options(api, enrolled.user.email)
    assertion = authenticator.get(options, user_handle=None)
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200


def test_another_users_user_handle_is_rejected(api, enrolled, authenticator, unchanged):
    other = SoftAuthenticator()
    enroll(UserFactory(), other, api=api)
    assertion = authenticator.get(login_options(api), user_handle=other.user_handle)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_HANDLE_MISMATCH)


def test_credential_outside_allow_credentials_is_rejected(api, enrolled, authenticator, unchanged):
    other = SoftAuthenticator()
    enroll(UserFactory(), other, api=api)
    options = login_options(api, enrolled.user.email)
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(authenticator.credential_id)]
    with unchanged():
        response = api.post(LOGIN_VERIFY, other.get(options))
    assert_rejected(response, Reason.CREDENTIAL_NOT_ALLOWED)


def test_inactive_user_cannot_sign_in(api, enrolled, authenticator, unchanged):
    type(enrolled.user).objects.filter(pk=enrolled.user.pk).update(is_active=False)
    assertion = authenticator.get(login_options(api))
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_INACTIVE)
    assert "_auth_user_id" not in api.client.session


@pytest.mark.parametrize("stored", [True, False])
def test_changed_backup_eligibility_is_rejected(api, user, unchanged, stored):
    # §7.2 step 18: BE is fixed when the credential is created; a change means another
    # authenticator (or a tampered one) answers for this credential id.
    authenticator = SoftAuthenticator(backup_eligible=stored, backup_state=False)
    assert enroll(user, authenticator, api=api).backup_eligible is stored
    assertion = authenticator.get(login_options(api), flags={"be": not stored, "bs": False})
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.BACKUP_ELIGIBILITY_CHANGED)


def test_backup_state_change_is_recorded(api, user):
    # BS may change (a passkey gets synced): accepted, and stored.
    authenticator = SoftAuthenticator(backup_eligible=True, backup_state=False)
    credential = enroll(user, authenticator, api=api)
    assertion = authenticator.get(login_options(api), flags={"bs": True})
    assert api.post(LOGIN_VERIFY, assertion).status_code == 200
    assert Credential.objects.get(pk=credential.pk).backup_state is True


# -- signature counter (§7.2 step 22) -----------------------------------------------------------


@pytest.fixture
def counting(api, user):
    """An authenticator whose credential's stored signature counter is 10."""
    authenticator = SoftAuthenticator(sign_count=10)
    assert enroll(user, authenticator, api=api).sign_count == 10
    return authenticator


@pytest.mark.parametrize("sent", [10, 5, 0])
def test_sign_count_regression_is_rejected(api, counting, unchanged, sent):
    assertion = counting.get(login_options(api), sign_count=sent)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.SIGN_COUNT_REGRESSED)


@pytest.mark.parametrize("sent", [10, 5, 0])
def test_sign_count_regression_is_flagged_under_flag_policy(api, counting, settings, sent):
    settings.PASSKEYS_SIGN_COUNT_POLICY = "flag"
    response = api.post(LOGIN_VERIFY, counting.get(login_options(api), sign_count=sent))
    assert response.status_code == 200, response.content
    credential = Credential.objects.by_credential_id(counting.credential_id).get()
    assert credential.clone_warning_at is not None
    assert credential.sign_count == 10  # never lowered


def test_increasing_sign_count_is_accepted(api, counting):
    response = api.post(LOGIN_VERIFY, counting.get(login_options(api), sign_count=11))
    assert response.status_code == 200, response.content
    credential = Credential.objects.by_credential_id(counting.credential_id).get()
    assert (credential.sign_count, credential.clone_warning_at) == (11, None)


def test_zero_sign_counts_are_accepted(api, enrolled, authenticator):
    # Authenticators without a counter send 0 every time (§6.1.1): not a clone signal.
    for _ in range(2):
        api.client.logout()
        assertion = authenticator.get(login_options(api), sign_count=0)
        assert api.post(LOGIN_VERIFY, assertion).status_code == 200
    credential = Credential.objects.get(pk=enrolled.pk)
    assert (credential.sign_count, credential.clone_warning_at) == (0, None)


# -- tampering ----------------------------------------------------------------------------------
# WebAuthn L3 §7.2 checks clientDataJSON (steps 11-14) and authenticatorData (steps 15-18) before
# the signature (step 21), so a tampered byte that those earlier steps read fails with their
# code; one they do not read fails the signature.


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (0, Reason.RP_ID_MISMATCH),  # rpIdHash: step 15 precedes the signature
        (32, Reason.USER_PRESENCE_MISSING),  # flags: bit 0 (UP) cleared, step 16
        (36, Reason.SIGNATURE_INVALID),  # signCount: read only after step 21
    ],
)
def test_tampered_authenticator_data_is_rejected(
    api, enrolled, authenticator, unchanged, index, reason
):
    assertion = authenticator.get(login_options(api))
    data = assertion["response"]
    data["authenticatorData"] = _flip(data["authenticatorData"], index)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, reason)


@pytest.mark.parametrize(
    ("needle", "reason"),
    [
        # A member no step reads (browsers add such members): only the hash, step 20-21.
        (b"template", Reason.SIGNATURE_INVALID),
        (b"testserver", Reason.ORIGIN_MISMATCH),  # step 13
        (b'"challenge":"', Reason.CHALLENGE_INVALID),  # step 12: another challenge
    ],
)
def test_tampered_client_data_is_rejected(api, enrolled, authenticator, unchanged, needle, reason):
    assertion = authenticator.get(
        login_options(api),
        client_extra={"other_keys_can_be_added_here": "do not compare against a template"},
    )
    data = assertion["response"]
    raw = bytearray(b64url_decode(data["clientDataJSON"]))
    # The byte right after the needle's start: a character of the member's value.
    index = raw.index(needle) + len(needle) - (0 if needle.endswith(b'"') else 1)
    raw[index] = ord("A") if raw[index] != ord("A") else ord("B")
    data["clientDataJSON"] = b64url(bytes(raw))
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, reason)


@pytest.mark.parametrize("index", [8, -1])
def test_tampered_signature_is_rejected(api, enrolled, authenticator, unchanged, index):
    assertion = authenticator.get(login_options(api))
    signature = assertion["response"]["signature"]
    assertion["response"]["signature"] = _flip(signature, index % len(b64url_decode(signature)))
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.SIGNATURE_INVALID)
