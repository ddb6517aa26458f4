"""Admin: passkeys and the audit trail are listed; passkeys are revoked with an action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_passkeys.models import AuthEvent

from .factories import CredentialFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_passkeys_credential_changelist"


def test_credential_changelist_renders(admin_client):
    CredentialFactory(name="Work laptop")
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert b"Work laptop" in response.content


def test_credential_change_page_hides_key_material(admin_client):
    credential = CredentialFactory(name="Phone")
    url = reverse("admin:django_passkeys_credential_change", args=[credential.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert b'name="public_key"' not in response.content
    assert b'name="credential_id"' not in response.content


def test_passkeys_cannot_be_added_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:django_passkeys_credential_add"))
    assert response.status_code == 403


def test_auth_event_changelist_renders_and_is_read_only(admin_client):
    event = AuthEvent.objects.create(
        event_type=AuthEvent.Type.LOGIN, success=False, reason_code="signature_invalid"
    )
    response = admin_client.get(reverse("admin:django_passkeys_authevent_changelist"))
    assert response.status_code == 200
    assert b"signature_invalid" in response.content
    assert admin_client.get(reverse("admin:django_passkeys_authevent_add")).status_code == 403
    change = admin_client.get(reverse("admin:django_passkeys_authevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="reason_code"' not in change.content  # shown, not editable


def test_revoke_action_revokes_the_selected_active_passkeys(admin_client, admin_user):
    selected = CredentialFactory()
    already = CredentialFactory()
    already.revoke(reason="earlier")
    untouched = CredentialFactory()

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "revoke_selected", "_selected_action": [selected.pk, already.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 passkeys revoked." in [str(m) for m in response.context["messages"]]
    selected.refresh_from_db()
    assert not selected.is_active
    assert selected.revoked_by == admin_user
    assert selected.revoke_reason == "revoked in admin"
    already.refresh_from_db()
    assert already.revoke_reason == "earlier"
    untouched.refresh_from_db()
    assert untouched.is_active
