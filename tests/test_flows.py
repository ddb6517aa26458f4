"""The flows: every entry point of a use case audits and signals alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from django_passkeys import flows, signals
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Credential

from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def revoked_signals():
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    signals.passkey_revoked.connect(receiver, weak=False)
    yield calls
    signals.passkey_revoked.disconnect(receiver)


def assert_revoked_once(credential, calls, *, revoked_by, request_path):
    credential.refresh_from_db()
    assert credential.revoked_at is not None
    (call,) = calls
    assert set(call) == {"signal", "request", "user", "credential", "revoked_by"}
    assert call["credential"].pk == credential.pk
    assert call["user"] == credential.user
    assert call["revoked_by"] == revoked_by
    if request_path is None:
        assert call["request"] is None
    else:
        assert call["request"].path == request_path
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.REVOKE, success=True)
    assert event.credential_id == credential.pk
    assert event.user == credential.user


def test_admin_revoke_action_signals_and_audits(admin_client, admin_user, revoked_signals):
    credential = CredentialFactory()
    response = admin_client.post(
        "/admin/django_passkeys/credential/",
        {"action": "revoke_selected", "_selected_action": [credential.pk], "reason": "lost"},
    )
    assert response.status_code == 302
    assert_revoked_once(
        credential,
        revoked_signals,
        revoked_by=admin_user,
        request_path="/admin/django_passkeys/credential/",
    )


def test_manage_page_remove_signals_and_audits(api, user, revoked_signals):
    credential = CredentialFactory(user=user)
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{credential.pk}/remove")
    assert response.status_code == 200
    assert_revoked_once(
        credential,
        revoked_signals,
        revoked_by=user,
        request_path=f"/auth/passkey/manage/{credential.pk}/remove",
    )


def test_revoke_flow_signals_and_audits_without_a_request(revoked_signals):
    credential = CredentialFactory()
    assert flows.revoke(credential, reason="lost laptop") is True
    assert_revoked_once(credential, revoked_signals, revoked_by=None, request_path=None)
    credential.refresh_from_db()
    assert credential.revoke_reason == "lost laptop"


def test_revoke_command_signals_and_audits(revoked_signals):
    credential = CredentialFactory()
    call_command("passkeys_revoke", credential.user.get_username(), "--passkey", credential.pk)
    assert_revoked_once(credential, revoked_signals, revoked_by=None, request_path=None)


def test_revoking_twice_signals_once(revoked_signals):
    credential = CredentialFactory()
    assert flows.revoke(credential) is True
    assert flows.revoke(credential) is False
    assert len(revoked_signals) == 1
    assert AuthEvent.objects.filter(event_type=AuthEvent.Type.REVOKE).count() == 1


def test_revoke_command_revokes_all_of_a_users_passkeys():
    user = UserFactory()
    CredentialFactory.create_batch(3, user=user)
    other = CredentialFactory()
    call_command("passkeys_revoke", user.get_username())
    assert not Credential.objects.active().filter(user=user).exists()
    other.refresh_from_db()
    assert other.revoked_at is None


def test_revoke_command_refuses_an_unknown_user_or_passkey():
    from django.core.management.base import CommandError

    credential = CredentialFactory()
    with pytest.raises(CommandError):
        call_command("passkeys_revoke", "nobody-here")
    with pytest.raises(CommandError):
        call_command("passkeys_revoke", credential.user.get_username(), "--passkey", 0)


def test_a_failure_is_recorded_once_whoever_catches_it(rf, user):
    request = rf.post("/")
    request.user = user
    error = PasskeyError(Reason.NOT_FOUND)
    flows.record_failure(request, AuthEvent.Type.RENAME, error)
    flows.record_failure(request, AuthEvent.Type.RENAME, error)
    assert AuthEvent.objects.filter(reason_code="not_found").count() == 1


def test_rename_of_another_users_passkey_is_not_found_and_audited(rf, user):
    request = rf.post("/")
    request.user = user
    credential = CredentialFactory(name="theirs")
    with pytest.raises(PasskeyError) as caught:
        flows.rename(request, user, credential.pk, "mine")
    assert caught.value.code == Reason.NOT_FOUND
    credential.refresh_from_db()
    assert credential.name == "theirs"
    assert AuthEvent.objects.get().reason_code == "not_found"


@pytest.mark.django_db(transaction=True)
def test_a_sign_in_that_fails_after_login_writes_nothing(api, user, monkeypatch):
    # One transaction holds every write of a sign-in: when the last one fails (here the audit
    # event, as a database error would), the challenge is still unused, the counter, last use,
    # last_login and the session index are as they were.
    from django.db import DatabaseError

    from django_passkeys import audit
    from django_passkeys.models import Challenge, UserSession

    from .authenticator import SoftAuthenticator
    from .support import enroll, login_options

    authenticator = SoftAuthenticator(sign_count=5)
    credential = enroll(user, authenticator, api=api)
    options = login_options(api)
    body = authenticator.get(options)
    user.refresh_from_db()
    before = (user.last_login, credential.sign_count, credential.last_used_at)
    real_record = audit.record

    def failing_record(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("success"):
            raise DatabaseError("the audit insert failed")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(DatabaseError):
        api.post("/auth/passkey/login/verify", body)
    user.refresh_from_db()
    credential.refresh_from_db()
    assert (user.last_login, credential.sign_count, credential.last_used_at) == before
    login_challenges = Challenge.objects.filter(purpose=Challenge.Purpose.LOGIN)
    assert login_challenges.get().consumed_at is None
    assert not UserSession.objects.exists()
    # Nothing was half-done, so the same assertion still signs in once the database is back.
    monkeypatch.setattr(audit, "record", real_record)
    assert api.post("/auth/passkey/login/verify", body).status_code == 200
