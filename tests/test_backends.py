"""PasskeyBackend: signs in the owner of a verified credential, nothing else."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import authenticate

from django_passkeys.backends import PasskeyBackend

from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_active_credential_of_an_active_user_authenticates():
    credential = CredentialFactory()
    assert PasskeyBackend().authenticate(None, credential=credential) == credential.user


def test_django_authenticate_reaches_the_backend_with_a_credential(rf):
    credential = CredentialFactory()
    user = authenticate(rf.post("/"), credential=credential)
    assert user == credential.user
    assert user.backend == "django_passkeys.backends.PasskeyBackend"


def test_without_a_credential_the_backend_does_not_answer():
    assert PasskeyBackend().authenticate(None) is None
    assert PasskeyBackend().authenticate(None, username="user0", password="x") is None


def test_revoked_credential_is_refused():
    credential = CredentialFactory()
    credential.revoke(reason="lost")
    assert PasskeyBackend().authenticate(None, credential=credential) is None


def test_inactive_user_is_refused():
    credential = CredentialFactory(user=UserFactory(is_active=False))
    assert PasskeyBackend().authenticate(None, credential=credential) is None


def test_get_user_returns_active_users_only():
    active, inactive = UserFactory(), UserFactory(is_active=False)
    backend = PasskeyBackend()
    assert backend.get_user(active.pk) == active
    assert backend.get_user(inactive.pk) is None
    assert backend.get_user(uuid.uuid4()) is None
