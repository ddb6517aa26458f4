"""The "Sign-in and security" page: each way into the account with its state and next step."""

from __future__ import annotations

import pytest

from .factories import CredentialFactory

pytestmark = pytest.mark.django_db

PAGE = "/auth/passkey/security/"


def sections(response):
    return {s.key: s for s in response.context["sections"]}


def test_the_page_requires_sign_in(client):
    response = client.get(PAGE, secure=True)
    assert response.status_code == 302
    assert "next=" in response["Location"]


def test_a_new_account_is_told_what_to_set_up(api, user):
    api.login(user)
    response = api.client.get(PAGE, secure=True)
    assert response.status_code == 200
    found = sections(response)
    assert list(found) == ["passkeys", "totp", "recovery-codes", "passkey-only", "sessions"]
    assert found["passkeys"].state == "No passkey yet"
    assert found["passkeys"].attention
    assert found["recovery-codes"].attention
    assert found["recovery-codes"].next_step
    html = response.content.decode()
    for section in found.values():
        assert f'href="{section.url}"' in html
    assert "Set up recovery codes" in html


def test_passkeys_are_counted_and_revoked_ones_are_not(api, user):
    CredentialFactory.create_batch(2, user=user)
    CredentialFactory(user=user, revoked_at="2026-01-01T00:00:00Z")
    CredentialFactory()  # someone else's
    api.login(user)
    found = sections(api.client.get(PAGE, secure=True))
    assert found["passkeys"].state == "2 passkeys"
    assert not found["passkeys"].attention
    assert found["passkeys"].action == "Manage passkeys"


def test_recovery_codes_running_low_need_attention(api, user):
    from django_passkeys import recovery_codes

    device, _ = recovery_codes.locked_device(user)
    codes = recovery_codes.replace_codes(device, 3)
    recovery_codes.consume(device, codes[0])
    api.login(user)
    found = sections(api.client.get(PAGE, secure=True))
    assert found["recovery-codes"].state == "2 codes left"
    assert found["recovery-codes"].attention
