"""Models: credential lookup digest, revocation, user handles, readable names."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from django_passkeys.models import (
    USER_HANDLE_BYTES,
    AdoptionState,
    AuthEvent,
    Challenge,
    Cooldown,
    Credential,
    RecoveryCode,
    UserHandle,
    UserSession,
    credential_id_digest,
)

from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_saving_a_credential_stores_the_digest_of_its_id():
    credential = CredentialFactory(credential_id=b"\x01\x02\x03")
    assert credential.credential_id_sha256 == hashlib.sha256(b"\x01\x02\x03").hexdigest()
    assert credential.credential_id_sha256 == credential_id_digest(b"\x01\x02\x03")
    credential.credential_id = b"\x04"
    credential.save()
    assert Credential.objects.get().credential_id_sha256 == credential_id_digest(b"\x04")


def test_by_credential_id_matches_on_the_raw_id():
    credential = CredentialFactory(credential_id=b"abc")
    CredentialFactory(credential_id=b"abd")
    assert list(Credential.objects.by_credential_id(b"abc")) == [credential]
    assert not Credential.objects.by_credential_id(b"ab").exists()


def test_revoke_records_who_when_and_why_and_leaves_the_active_set():
    admin = UserFactory()
    credential = CredentialFactory()
    assert credential.is_active
    credential.revoke(by=admin, reason="x" * 300)
    credential.refresh_from_db()
    assert not credential.is_active
    assert credential.revoked_at is not None
    assert credential.revoked_by == admin
    assert credential.revoke_reason == "x" * 200
    assert not Credential.objects.active().exists()


def test_active_excludes_only_revoked_credentials():
    kept = CredentialFactory()
    CredentialFactory().revoke()
    assert list(Credential.objects.active()) == [kept]


def test_credential_str_is_its_name_or_a_digest_prefix():
    named = CredentialFactory(name="Laptop")
    unnamed = CredentialFactory(name="", credential_id=b"id")
    assert str(named) == "Laptop"
    assert str(unnamed) == f"passkey {credential_id_digest(b'id')[:8]}"


def test_user_handle_is_64_random_bytes_distinct_per_user():
    first = UserHandle.objects.create(user=UserFactory())
    second = UserHandle.objects.create(user=UserFactory())
    first.refresh_from_db()
    assert len(bytes(first.handle)) == USER_HANDLE_BYTES == 64
    assert bytes(first.handle) != bytes(second.handle)
    # Never derived from the account: not the primary key, not the e-mail.
    assert first.user.pk.bytes not in bytes(first.handle)
    assert first.user.email.encode() not in bytes(first.handle)
    assert str(first) == f"user handle of {first.user_id}"


def test_challenge_and_event_strings_name_no_secret():
    challenge = Challenge(purpose="login", challenge_sha256="0123456789abcdef" * 4)
    assert str(challenge) == "login challenge 01234567"
    ok = AuthEvent.objects.create(event_type=AuthEvent.Type.LOGIN, success=True)
    failed = AuthEvent.objects.create(
        event_type=AuthEvent.Type.LOGIN, success=False, reason_code="signature_invalid"
    )
    assert str(ok).startswith("login ok at ")
    assert str(failed).startswith("login signature_invalid at ")


def test_session_cooldown_code_and_adoption_strings_name_no_secret():
    user = UserFactory()
    when = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    session = UserSession(user=user, session_key="k" * 40, created_at=when)
    assert str(session) == f"session of {user.pk} since 2026-03-01 09:30"
    assert "k" * 8 not in str(session)  # the session key is a bearer secret
    assert str(Cooldown(user=user, until=when, reason="recovery")) == (
        f"cooldown of {user.pk} until 2026-03-01 09:30"
    )
    code = RecoveryCode(pk=7, device_id=3, digest="f" * 64)
    assert str(code) == "recovery code 7 of 3"
    assert str(AdoptionState(user=user)) == f"password allowed for {user.pk}"
    assert str(AdoptionState(user=user, passkey_only_since=when)) == f"passkey only for {user.pk}"
