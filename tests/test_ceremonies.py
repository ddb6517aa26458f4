"""Ceremonies at the function level: options shape, and the steps the HTTP suites don't reach.

Attacks through the HTTP endpoints live in ``tests/security/``; real authenticators in
``test_vectors.py``. These tests call :mod:`django_passkeys.ceremonies` directly.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2
import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import RequestFactory

from django_passkeys import ceremonies, challenges
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import Challenge, Credential, UserHandle

from .authenticator import AAGUID, SoftAuthenticator, b64url, b64url_decode
from .factories import CredentialFactory, UserFactory
from .support import db_snapshot

pytestmark = pytest.mark.django_db


def session_request() -> Any:
    request = RequestFactory().post("/", secure=True)
    request.session = SessionStore()
    return request


def rejected(code: Reason, call: Any, *args: Any, **kwargs: Any) -> PasskeyError:
    """``call`` fails with ``code`` and leaves the database as it was.

    It runs in a transaction of its own, as the flows run a ceremony: an assertion's challenge
    is consumed when it is found, and the failure rolls that back.
    """
    before = db_snapshot()
    with pytest.raises(PasskeyError) as caught, transaction.atomic():
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value
    assert db_snapshot() == before
    return caught.value


# -- options -------------------------------------------------------------------------------------


def test_registration_options_are_creation_options_json(settings):
    settings.PASSKEYS_HINTS = ["security-key"]
    user = UserFactory(first_name="Ada", last_name="Lovelace")
    existing = CredentialFactory(user=user, transports=["usb", "bogus"])
    CredentialFactory(user=user).revoke()
    request = session_request()

    options = ceremonies.registration_options(request, user)

    assert options["rp"] == {"id": "testserver", "name": "Test site"}
    assert options["user"]["name"] == user.username
    assert options["user"]["displayName"] == "Ada Lovelace"
    handle = b64url_decode(options["user"]["id"])
    assert handle == bytes(UserHandle.objects.get(user=user).handle)
    assert len(handle) == 64
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert options["excludeCredentials"] == [
        {"id": b64url(bytes(existing.credential_id)), "type": "public-key", "transports": ["usb"]}
    ]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["hints"] == ["security-key"]
    assert options["extensions"] == {"credProps": True}
    assert options["timeout"] == 300_000
    challenge = Challenge.objects.get()
    assert challenge.purpose == Challenge.Purpose.REGISTER
    assert challenge.user_id == user.pk


def test_display_name_falls_back_to_username_and_may_be_customised(settings):
    user = UserFactory(first_name="", last_name="")
    options = ceremonies.registration_options(session_request(), user)
    assert options["user"]["displayName"] == user.username
    settings.PASSKEYS_USER_DISPLAY_NAME = lambda u: f"<{u.email}>"
    options = ceremonies.registration_options(session_request(), user)
    assert options["user"]["displayName"] == f"<{user.email}>"


def test_user_handle_is_created_once_and_reused():
    user = UserFactory()
    first = ceremonies.registration_options(session_request(), user)["user"]["id"]
    second = ceremonies.registration_options(session_request(), user)["user"]["id"]
    assert first == second
    assert UserHandle.objects.count() == 1


def test_discoverable_login_options_allow_any_credential():
    options = ceremonies.authentication_options(session_request())
    assert options["allowCredentials"] == []
    assert options["rpId"] == "testserver"
    assert options["userVerification"] == "preferred"
    challenge = Challenge.objects.get()
    assert challenge.user_id is None and challenge.allowed_credentials == []


def test_email_hint_of_an_account_lists_its_active_passkeys():
    user = UserFactory(email="ada@example.com")
    active = CredentialFactory(user=user)
    CredentialFactory(user=user).revoke()
    options = ceremonies.authentication_options(session_request(), "ADA@example.com")
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(bytes(active.credential_id))]
    challenge = Challenge.objects.get()
    assert challenge.user_id == user.pk
    assert challenge.allowed_credentials == [active.credential_id_sha256]


def test_email_shared_by_two_accounts_identifies_neither():
    first, second = UserFactory(email="shared@example.com"), UserFactory(email="shared@example.com")
    CredentialFactory(user=first)
    CredentialFactory(user=second)
    options = ceremonies.authentication_options(session_request(), "shared@example.com")
    assert len(options["allowCredentials"]) == 2
    assert Challenge.objects.get().user_id is None


@pytest.mark.parametrize("account", ["none", "no-passkeys", "inactive"])
def test_unknown_hint_gets_stable_fake_credentials_of_the_same_shape(account):
    email = "someone@example.com"
    if account != "none":
        user = UserFactory(email=email, is_active=account != "inactive")
        if account == "inactive":
            CredentialFactory(user=user)
    first = ceremonies.authentication_options(session_request(), email)
    again = ceremonies.authentication_options(session_request(), email.upper())
    assert 1 <= len(first["allowCredentials"]) <= 2
    assert first["allowCredentials"] == again["allowCredentials"]
    for descriptor in first["allowCredentials"]:
        assert set(descriptor) == {"id", "type", "transports"}
        assert len(b64url_decode(descriptor["id"])) == 32
    assert first["challenge"] != again["challenge"]
    other = ceremonies.authentication_options(session_request(), "other@example.com")
    assert other["allowCredentials"] != first["allowCredentials"]
    assert not Challenge.objects.exclude(user=None).exists()


def test_reauthentication_options_name_the_signed_in_user():
    user = UserFactory()
    credential = CredentialFactory(user=user)
    CredentialFactory()
    options = ceremonies.authentication_options(
        session_request(), user=user, purpose=Challenge.Purpose.REAUTH
    )
    assert [c["id"] for c in options["allowCredentials"]] == [
        b64url(bytes(credential.credential_id))
    ]
    challenge = Challenge.objects.get()
    assert challenge.purpose == Challenge.Purpose.REAUTH
    assert challenge.user_id == user.pk


# -- registration ------------------------------------------------------------------------------


@pytest.fixture
def enrolment() -> tuple[Any, Any, dict[str, Any], SoftAuthenticator]:
    user = UserFactory()
    request = session_request()
    options = ceremonies.registration_options(request, user)
    return user, request, options, SoftAuthenticator()


def test_registration_is_stored_with_what_the_authenticator_reported(enrolment):
    user, request, options, authenticator = enrolment
    body = authenticator.create(options, transports=["usb", "internal", "usb", "smoke-signal"])
    credential = ceremonies.verify_registration(request, user, body, name="  My key  ")
    stored = Credential.objects.get()
    assert stored == credential
    assert bytes(stored.credential_id) == authenticator.credential_id
    assert bytes(stored.public_key) == authenticator.cose_public_key()
    assert stored.transports == ["internal", "usb"]  # sorted, deduplicated, known ones only
    assert stored.aaguid == "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
    assert stored.backup_eligible and stored.backup_state and stored.uv_initialized
    assert stored.attestation_format == "none"
    assert stored.name == "My key"


def test_registration_challenge_of_another_user_is_invalid(enrolment):
    _, request, options, authenticator = enrolment
    rejected(
        Reason.CHALLENGE_INVALID,
        ceremonies.verify_registration,
        request,
        UserFactory(),
        authenticator.create(options),
    )


def _attestation(authenticator: SoftAuthenticator, options: dict[str, Any], auth_data: bytes):
    body = authenticator.create(options)
    body["response"]["attestationObject"] = b64url(
        cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
    )
    return body


def test_registration_without_attested_credential_data_is_malformed(enrolment):
    user, request, options, authenticator = enrolment
    auth_data = authenticator.authenticator_data(authenticator.flags(), 0)
    body = _attestation(authenticator, options, auth_data)
    rejected(Reason.MALFORMED_REQUEST, ceremonies.verify_registration, request, user, body)


def test_registration_with_an_undecodable_public_key_is_refused(enrolment):
    user, request, options, authenticator = enrolment
    cred_id = authenticator.credential_id
    attested = AAGUID + struct.pack(">H", len(cred_id)) + cred_id + cbor2.dumps({1: 99, 3: -7})
    auth_data = authenticator.authenticator_data(authenticator.flags(at=True), 0, attested=attested)
    body = _attestation(authenticator, options, auth_data)
    rejected(Reason.ALGORITHM_UNSUPPORTED, ceremonies.verify_registration, request, user, body)


def test_raw_id_that_differs_from_the_attested_credential_id_is_malformed(enrolment):
    user, request, options, authenticator = enrolment
    body = authenticator.create(options)
    body["id"] = body["rawId"] = b64url(b"another-id")
    rejected(Reason.MALFORMED_REQUEST, ceremonies.verify_registration, request, user, body)


def test_credential_stored_concurrently_after_the_check_is_credential_exists(
    enrolment, monkeypatch
):
    # The unique index is the last word: a row that appears between the "already registered?"
    # check and the insert makes the registration fail, and its challenge stays unconsumed.
    user, request, options, authenticator = enrolment
    original = challenges.consume

    def consume_after_a_rival(row: Challenge) -> None:
        CredentialFactory(credential_id=authenticator.credential_id)
        original(row)

    monkeypatch.setattr(challenges, "consume", consume_after_a_rival)
    with pytest.raises(PasskeyError) as caught:
        ceremonies.verify_registration(request, user, authenticator.create(options))
    assert caught.value.code == Reason.CREDENTIAL_EXISTS
    assert Credential.objects.filter(user=user).count() == 0
    assert Challenge.objects.get().consumed_at is None


# -- authentication ----------------------------------------------------------------------------


def test_identified_login_with_another_users_credential_is_not_allowed():
    # A reauthentication for a user without passkeys: allowCredentials is empty, so the
    # credential-to-user check is what refuses someone else's passkey (§7.2 step 6).
    owner, other = UserFactory(), UserFactory()
    request = session_request()
    authenticator = SoftAuthenticator()
    enrol_request = session_request()
    options = ceremonies.registration_options(enrol_request, owner)
    ceremonies.verify_registration(enrol_request, owner, authenticator.create(options))

    options = ceremonies.authentication_options(
        request, user=other, purpose=Challenge.Purpose.REAUTH
    )
    assert options["allowCredentials"] == []
    error = rejected(
        Reason.CREDENTIAL_NOT_ALLOWED,
        ceremonies.verify_authentication,
        request,
        authenticator.get(options),
        purpose=Challenge.Purpose.REAUTH,
    )
    assert "another user" in error.detail


def test_user_handle_sent_for_an_owner_without_one_is_a_mismatch():
    authenticator = SoftAuthenticator()
    credential = CredentialFactory(
        credential_id=authenticator.credential_id,
        public_key=authenticator.cose_public_key(),
        backup_eligible=True,
    )
    assert not UserHandle.objects.filter(user=credential.user).exists()
    request = session_request()
    options = ceremonies.authentication_options(request)
    body = authenticator.get(options, user_handle=b"\x01" * 64)
    rejected(Reason.USER_HANDLE_MISMATCH, ceremonies.verify_authentication, request, body)


def test_the_relying_party_is_built_once_and_again_after_a_setting_changes(settings):
    # Every ceremony needs it: built from the settings once, not per request, yet a changed
    # setting (override_settings, the settings fixture) reaches the next ceremony.
    first = ceremonies.RelyingParty.from_settings()
    assert ceremonies.RelyingParty.from_settings() is first
    settings.PASSKEYS_RP_ID = "example.org"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://example.org"]
    changed = ceremonies.RelyingParty.from_settings()
    assert (changed.id, changed.origins) == ("example.org", ("https://example.org",))
    options = ceremonies.authentication_options(session_request())
    assert options["rpId"] == "example.org"


def test_a_verdict_inside_a_parsing_step_keeps_its_own_reason():
    # _rejected_as turns a library's exception into the step's reason; a PasskeyError raised
    # inside is already a verdict and passes through unchanged.
    step = ceremonies._rejected_as
    with pytest.raises(PasskeyError) as caught, step(Reason.MALFORMED_REQUEST, "step"):
        raise PasskeyError(Reason.SIGNATURE_INVALID, "inner")
    assert caught.value.code == Reason.SIGNATURE_INVALID
    with pytest.raises(PasskeyError) as caught, step(Reason.MALFORMED_REQUEST, "step"):
        raise ValueError("library")
    assert caught.value.code == Reason.MALFORMED_REQUEST
    with pytest.raises(KeyboardInterrupt), step(Reason.MALFORMED_REQUEST, "step"):
        raise KeyboardInterrupt
