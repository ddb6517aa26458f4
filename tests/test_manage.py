from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from django_passkeys import signals
from django_passkeys.models import AuthEvent, Credential
from django_passkeys.sessions import CREDENTIAL_KEY

from .authenticator import b64url
from .factories import CredentialFactory, UserFactory
from .support import age_session, error_code, form_post

pytestmark = pytest.mark.django_db

MANAGE = "/auth/passkey/manage/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"/>'


def rename_url(pk):
    return f"/auth/passkey/manage/{pk}/rename"


def remove_url(pk):
    return f"/auth/passkey/manage/{pk}/remove"


@pytest.fixture
def passkey(api, user, authenticator, register):
    assert register(user, authenticator).status_code == 201
    return Credential.objects.get()


@pytest.fixture
def aaguid_file(tmp_path, settings):
    path = tmp_path / "aaguids.json"
    path.write_text(
        json.dumps(
            {
                "11111111-2222-3333-4444-555555555555": {
                    "name": "Icon Keys",
                    "icon_light": "data:image/png;base64," + base64.b64encode(PNG).decode(),
                    "icon_dark": "data:image/svg+xml;base64," + base64.b64encode(SVG).decode(),
                },
                "22222222-2222-3333-4444-555555555555": {"name": "Plain Keys"},
            }
        )
    )
    settings.PASSKEYS_AAGUID_FILE = str(path)
    return path


# -- the page ----------------------------------------------------------------------------------


def test_manage_page_sends_anonymous_visitors_to_sign_in(api):
    response = api.client.get(MANAGE, secure=True)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/auth/passkey/manage/"


def test_manage_page_shows_each_passkey_as_a_card(api, user, passkey):
    CredentialFactory(user=user, name="Old key", revoked_at=timezone.now())
    CredentialFactory(name="Someone else's key")
    Credential.objects.filter(pk=passkey.pk).update(
        name="Work laptop", last_used_at=timezone.now() - timedelta(days=2)
    )
    response = api.client.get(MANAGE, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Work laptop" in html
    assert "Google Password Manager" in html  # the software authenticator's AAGUID
    assert "Synced" in html
    assert "Last used" in html and "Never" not in html
    assert "Old key" not in html and "Someone else" not in html
    assert f'action="{rename_url(passkey.pk)}"' in html
    assert "Remove “<strong data-pk-name>Work laptop</strong>”?" in html
    [card] = response.context["cards"]
    assert card.credential == passkey and card.synced and not card.is_current


def test_card_title_falls_back_to_provider_then_generic_name(api, user):
    api.login(user)
    known = CredentialFactory(user=user, name="", aaguid="ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")
    unknown = CredentialFactory(user=user, name="", aaguid="", backup_state=False)
    cards = {c.credential.pk: c for c in api.client.get(MANAGE, secure=True).context["cards"]}
    assert cards[known.pk].title == "Google Password Manager"
    assert cards[unknown.pk].title == str(unknown)
    assert not cards[unknown.pk].synced and cards[unknown.pk].provider is None
    html = api.client.get(MANAGE, secure=True).content.decode()
    assert "Unknown provider" in html and "This device only" in html and "Never" in html


def test_card_marks_the_passkey_used_for_this_sign_in(api, passkey):
    session = api.client.session
    session[CREDENTIAL_KEY] = passkey.pk
    session.save()
    response = api.client.get(MANAGE, secure=True)
    assert response.context["cards"][0].is_current
    assert "Used for this sign-in" in response.content.decode()


def test_manage_page_offers_reauthentication_when_the_user_has_passkeys(api, passkey):
    age_session(api)
    response = api.client.get(MANAGE, secure=True)
    assert not response.context["needs_fresh_login"]
    config = response.context["passkeys_config"]
    assert config["urls"]["reauthOptions"] == "/auth/passkey/reauth/options"


def test_old_session_without_passkeys_is_asked_to_sign_in_again(api, user):
    api.login(user)
    age_session(api)
    response = api.client.get(MANAGE, secure=True)
    assert response.context["needs_fresh_login"]
    assert "reauthOptions" not in response.context["passkeys_config"]["urls"]
    html = response.content.decode()
    assert 'href="/accounts/login/?next=%2Fauth%2Fpasskey%2Fmanage%2F"' in html
    assert "You have no passkeys yet." in html


def test_provider_icons_are_served_from_this_site(api, user, aaguid_file):
    api.login(user)
    CredentialFactory(user=user, aaguid="11111111-2222-3333-4444-555555555555")
    CredentialFactory(user=user, aaguid="22222222-2222-3333-4444-555555555555")
    html = api.client.get(MANAGE, secure=True).content.decode()
    base = "/auth/passkey/providers/11111111-2222-3333-4444-555555555555"
    assert f'<img src="{base}/light"' in html
    assert f'srcset="{base}/dark" media="(prefers-color-scheme: dark)"' in html
    # Plain Keys has no icon: the one generic card icon.
    assert html.count('<img src="/static/django_passkeys/passkey.svg"') == 1

    light = api.client.get(f"{base}/light", secure=True)
    assert light.status_code == 200
    assert light["Content-Type"] == "image/png" and light.content == PNG
    assert light["X-Content-Type-Options"] == "nosniff"
    assert "max-age" in light["Cache-Control"]
    dark = api.client.get(f"{base}/dark", secure=True)
    assert dark["Content-Type"] == "image/svg+xml" and dark.content == SVG
    assert "sandbox" in dark["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    [
        "11111111-2222-3333-4444-555555555555/sepia",
        "22222222-2222-3333-4444-555555555555/light",
        "33333333-2222-3333-4444-555555555555/light",
    ],
)
def test_missing_provider_icons_are_404(api, aaguid_file, path):
    assert api.client.get(f"/auth/passkey/providers/{path}", secure=True).status_code == 404


# -- rename ------------------------------------------------------------------------------------


def test_rename_changes_the_name_and_is_audited(api, user, passkey):
    response = api.post(rename_url(passkey.pk), {"name": "  Phone  "})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Phone"
    assert body["id"] == b64url(bytes(passkey.credential_id))
    assert body["signal"]["name"] == user.get_username()
    assert body["signal"]["rpId"] == "testserver"
    assert body["signal"]["displayName"]
    assert base64.urlsafe_b64decode(body["signal"]["userId"] + "==") == bytes(
        user.passkey_handle.handle
    )
    passkey.refresh_from_db()
    assert passkey.name == "Phone"
    event = AuthEvent.objects.filter(event_type=AuthEvent.Type.RENAME).get()
    assert event.success and event.credential == passkey and event.user == user


def test_rename_does_not_need_a_recent_sign_in(api, passkey):
    age_session(api)
    assert api.post(rename_url(passkey.pk), {"name": "Tablet"}).status_code == 200


@pytest.mark.parametrize("body", [{}, {"name": 5}, {"name": "   "}, {"name": "x" * 129}])
def test_rename_rejects_a_bad_name(api, passkey, unchanged, body):
    with unchanged():
        response = api.post(rename_url(passkey.pk), body)
    assert response.status_code == 400
    assert error_code(response) == "name_invalid"
    passkey.refresh_from_db()
    assert passkey.name == "Google Password Manager"  # its default name, unchanged


def test_another_users_passkey_is_not_found(api, passkey, unchanged):
    foreign = CredentialFactory(name="Theirs")
    revoked = CredentialFactory(user=passkey.user, revoked_at=timezone.now())
    for pk in (foreign.pk, revoked.pk, 999_999):
        with unchanged():
            renamed = api.post(rename_url(pk), {"name": "Mine now"})
            removed = api.post(remove_url(pk))
        for response in (renamed, removed):
            assert response.status_code == 404
            assert error_code(response) == "not_found"
    foreign.refresh_from_db()
    assert foreign.name == "Theirs" and foreign.is_active


def test_rename_and_remove_need_a_signed_in_user(api, unchanged):
    credential = CredentialFactory()
    with unchanged():
        for url in (rename_url(credential.pk), remove_url(credential.pk)):
            response = api.post(url, {"name": "x"})
            assert response.status_code == 403
            assert error_code(response) == "not_authenticated"


def test_rename_needs_the_csrf_token(api, passkey, unchanged):
    with unchanged():
        response = api.post(rename_url(passkey.pk), {"name": "x"}, csrf=False)
    assert response.status_code == 403
    assert error_code(response) == "csrf_failed"


def test_rename_by_plain_form_redirects_back_with_a_message(api, passkey):
    response = form_post(api, rename_url(passkey.pk), {"name": "Desk key"})
    assert response.status_code == 303
    assert response["Location"] == MANAGE
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Passkey renamed."]
    passkey.refresh_from_db()
    assert passkey.name == "Desk key"


def test_plain_form_failure_redirects_back_with_the_error(api, passkey, unchanged):
    with unchanged():
        response = form_post(api, rename_url(passkey.pk), {"name": ""})
    assert response.status_code == 303
    messages = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    text = "A passkey name is 1 to 128 characters of text, without control characters."
    assert messages == [("error", text)]
    page = api.client.get(MANAGE, secure=True).content.decode()
    assert f'<p class="pk-msg pk-error">{text}</p>' in page


def test_plain_form_without_csrf_token_is_refused(api, passkey, unchanged):
    with unchanged():
        response = form_post(api, rename_url(passkey.pk), {"name": "x"}, csrf=False)
    assert response.status_code == 303
    passkey.refresh_from_db()
    assert passkey.name == "Google Password Manager"  # its default name, unchanged
    event = AuthEvent.objects.filter(event_type=AuthEvent.Type.RENAME).get()
    assert event.reason_code == "csrf_failed"


def test_form_messages_show_in_the_status_region(api, passkey):
    response = api.client.post(
        rename_url(passkey.pk),
        {"name": "Shown", "csrfmiddlewaretoken": api.csrf_token()},
        secure=True,
        follow=True,
    )
    assert '<p class="pk-msg pk-success">Passkey renamed.</p>' in response.content.decode()


def test_manage_endpoints_are_post_only(api, passkey):
    response = api.client.get(rename_url(passkey.pk), secure=True)
    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"


# -- remove ------------------------------------------------------------------------------------


def test_remove_revokes_audits_signals_and_returns_the_remaining_ids(api, user, passkey):
    other = CredentialFactory(user=user)
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    signals.passkey_revoked.connect(receiver)
    try:
        response = api.post(remove_url(passkey.pk))
    finally:
        signals.passkey_revoked.disconnect(receiver)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["removed"] == b64url(bytes(passkey.credential_id))
    assert body["signal"]["allAcceptedCredentialIds"] == [b64url(bytes(other.credential_id))]
    assert body["signal"]["rpId"] == "testserver"
    passkey.refresh_from_db()
    assert not passkey.is_active
    assert passkey.revoked_by == user and passkey.revoke_reason == "removed by user"
    event = AuthEvent.objects.filter(event_type=AuthEvent.Type.REVOKE).get()
    assert event.success and event.credential == passkey
    [kwargs] = received
    assert kwargs["user"] == user and kwargs["revoked_by"] == user
    assert kwargs["credential"] == passkey and kwargs["request"] is not None


def test_removing_the_last_passkey_signals_an_empty_list(api, user, passkey):
    body = api.post(remove_url(passkey.pk)).json()
    assert body["signal"]["allAcceptedCredentialIds"] == []
    assert base64.urlsafe_b64decode(body["signal"]["userId"] + "==") == bytes(
        user.passkey_handle.handle
    )


def test_remove_on_an_old_session_needs_reauthentication(api, passkey, unchanged):
    age_session(api)
    with unchanged():
        response = api.post(remove_url(passkey.pk))
    assert response.status_code == 403
    assert error_code(response) == "reauthentication_required"
    passkey.refresh_from_db()
    assert passkey.is_active


def test_remove_after_reauthentication_succeeds(api, passkey, authenticator):
    age_session(api)
    options = api.post("/auth/passkey/reauth/options").json()
    assert api.post("/auth/passkey/reauth/verify", authenticator.get(options)).status_code == 200
    assert api.post(remove_url(passkey.pk)).status_code == 200


def test_remove_by_plain_form(api, passkey):
    response = form_post(api, remove_url(passkey.pk))
    assert response.status_code == 303
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Passkey removed."]
    passkey.refresh_from_db()
    assert not passkey.is_active


def test_removed_passkey_cannot_sign_in(api, passkey, authenticator):
    api.post(remove_url(passkey.pk))
    api.client.logout()
    options = api.post("/auth/passkey/login/options").json()
    response = api.post("/auth/passkey/login/verify", authenticator.get(options))
    assert response.status_code == 400
    assert error_code(response) == "credential_revoked"


def test_oversized_form_post_is_refused(api, passkey, settings, unchanged):
    settings.PASSKEYS_MAX_BODY_BYTES = 10
    with unchanged():
        response = form_post(api, rename_url(passkey.pk), {"name": "a long enough name"})
    assert response.status_code == 303
    passkey.refresh_from_db()
    assert passkey.name == "Google Password Manager"  # its default name, unchanged


def test_login_verify_carries_the_accepted_credentials(api, user, passkey, authenticator):
    other_user_key = CredentialFactory(user=UserFactory())
    api.client.logout()
    options = api.post("/auth/passkey/login/options").json()
    body = api.post("/auth/passkey/login/verify", authenticator.get(options)).json()
    assert body["signal"]["allAcceptedCredentialIds"] == [b64url(authenticator.credential_id)]
    assert b64url(bytes(other_user_key.credential_id)) not in json.dumps(body)
