"""Passkey pages in real Chromium, with the CDP virtual authenticator."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from django.contrib.sessions.models import Session

from django_passkeys.models import AuthEvent, Credential, UserHandle
from django_passkeys.sessions import AUTH_TIME_KEY
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOGIN = "/auth/passkey/login/"
MANAGE = "/auth/passkey/manage/"
NO_WEBAUTHN = "delete window.PublicKeyCredential;"
#: Logs every navigator.credentials.get() (its mediation, and aborts) in sessionStorage.
RECORD_GETS = """
(() => {
  const log = (entry) => {
    const list = JSON.parse(sessionStorage.getItem("pk-gets") || "[]");
    list.push(entry);
    sessionStorage.setItem("pk-gets", JSON.stringify(list));
  };
  const get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = (options) => {
    const mediation = options.mediation || "modal";
    log(mediation);
    options.signal?.addEventListener("abort", () => log(mediation + " aborted"));
    if (window.HOLD_AUTOFILL && mediation === "conditional") {
      // An autofill request that the user has not answered yet: pending until aborted.
      return new Promise((_, reject) =>
        options.signal.addEventListener("abort", () =>
          reject(new DOMException("aborted", "AbortError"))));
    }
    return get(options);
  };
})();
"""
#: RECORD_GETS, with autofill requests left pending (as when the user has not picked yet).
HOLD_AUTOFILL = "window.HOLD_AUTOFILL = true;" + RECORD_GETS
NO_JSON_HELPERS = """
delete PublicKeyCredential.parseCreationOptionsFromJSON;
delete PublicKeyCredential.parseRequestOptionsFromJSON;
delete PublicKeyCredential.prototype.toJSON;
"""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def status(tab: Any) -> Any:
    return tab.page.locator("[data-pk-status]")


def add_passkey(tab: Any) -> Credential:
    """From the management page: "Add a passkey", and wait for the new card."""
    tab.page.goto(MANAGE)
    cards = tab.page.locator("[data-pk-card]").count()
    tab.page.get_by_role("button", name="Add a passkey").click()
    tab.page.locator("[data-pk-card]").nth(cards).wait_for()
    return Credential.objects.latest("created_at")


def gets(tab: Any) -> list[str]:
    return list(tab.page.evaluate("JSON.parse(sessionStorage.getItem('pk-gets') || '[]')"))


def wait_until(tab: Any, expression: str, timeout: float = 10) -> None:
    """Poll ``expression`` in the page (page.wait_for_function would need 'unsafe-eval')."""
    deadline = time.monotonic() + timeout
    while not tab.page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        tab.page.wait_for_timeout(50)


def signed_in_user_id(tab: Any) -> str | None:
    cookie = {c["name"]: c["value"] for c in tab.context.cookies()}.get("sessionid")
    session = Session.objects.filter(session_key=cookie).first() if cookie else None
    return session.get_decoded().get("_auth_user_id") if session else None


def test_add_rename_and_remove_a_passkey(open_tab, check_accessibility):
    user = UserFactory()
    tab = open_tab()
    tab.sign_in_as(user)
    tab.page.goto(MANAGE)
    tab.screenshot("manage-empty")
    assert tab.page.get_by_text("You have no passkeys yet.").is_visible()

    credential = add_passkey(tab)
    card = tab.page.locator("[data-pk-card]")
    assert card.get_by_text("Chromium virtual authenticator").first.is_visible()
    [stored] = tab.credentials()
    assert stored["isResidentCredential"]
    assert base64.b64decode(stored["credentialId"]) == bytes(credential.credential_id)
    assert credential.user == user

    # Rename.
    card.get_by_text("Rename", exact=True).click()
    card.get_by_label("New name").fill("Work laptop")
    card.get_by_role("button", name="Save").click()
    status(tab).get_by_text("Passkey renamed.").wait_for()
    check_accessibility(tab.page)  # with a success message in the status area
    assert card.get_by_role("heading").inner_text() == "Work laptop"
    credential.refresh_from_db()
    assert credential.name == "Work laptop"
    handle = b64url(bytes(UserHandle.objects.get(user=user).handle))
    assert tab.signals()[-1] == [
        "signalCurrentUserDetails",
        {
            "rpId": "localhost",
            "userId": handle,
            "name": user.username,
            "displayName": user.username,
        },
    ]
    tab.screenshot("manage")

    # Remove, after a confirmation naming the passkey.
    card.get_by_text("Remove", exact=True).click()
    assert (
        card.locator("form[data-pk-action=remove]").inner_text().startswith("Remove “Work laptop”?")
    )
    card.get_by_role("button", name="Remove passkey").click()
    status(tab).get_by_text("Passkey removed.").wait_for()
    assert tab.page.locator("[data-pk-card]").count() == 0
    assert tab.page.get_by_text("You have no passkeys yet.").is_visible()
    credential.refresh_from_db()
    assert not credential.is_active
    assert tab.signals()[-1] == [
        "signalAllAcceptedCredentials",
        {"rpId": "localhost", "userId": handle, "allAcceptedCredentialIds": []},
    ]
    # Chromium's virtual authenticator honours the signal: the passkey is gone from it too.
    assert tab.credentials() == []
    assert tab.real_errors() == []


def test_sign_in_with_the_use_passkey_button(open_tab):
    user = UserFactory()
    tab = open_tab(HOLD_AUTOFILL)
    tab.sign_in_as(user)
    credential = add_passkey(tab)
    tab.sign_out()
    assert signed_in_user_id(tab) is None

    tab.page.goto(LOGIN)
    tab.screenshot("login")
    wait_until(tab, "sessionStorage.getItem('pk-gets')")
    tab.page.get_by_role("button", name="Use passkey").click()
    tab.page.wait_for_url(f"**{MANAGE}")
    assert signed_in_user_id(tab) == str(user.pk)
    # One request at a time: the pending autofill request is aborted before the modal one.
    assert gets(tab) == ["conditional", "conditional aborted", "modal"]
    assert tab.signals()[-1] == [
        "signalAllAcceptedCredentials",
        {
            "rpId": "localhost",
            "userId": b64url(bytes(UserHandle.objects.get(user=user).handle)),
            "allAcceptedCredentialIds": [b64url(bytes(credential.credential_id))],
        },
    ]
    assert tab.real_errors() == []


def test_sign_in_through_autofill(open_tab):
    user = UserFactory()
    tab = open_tab(RECORD_GETS)
    tab.sign_in_as(user)
    add_passkey(tab)
    tab.sign_out()
    tab.page.goto(LOGIN)
    # The virtual authenticator answers the autofill request at once with its one passkey, as
    # a user picking it from the username field's suggestions would.
    tab.page.wait_for_url(f"**{MANAGE}")
    assert signed_in_user_id(tab) == str(user.pk)
    assert gets(tab) == ["conditional"]
    assert AuthEvent.objects.filter(event_type="login", success=True).count() == 1
    assert tab.real_errors() == []


def test_failed_user_verification_shows_why_and_stays_signed_out(
    open_tab, settings, check_accessibility
):
    settings.PASSKEYS_USER_VERIFICATION = "required"
    user = UserFactory()
    tab = open_tab(HOLD_AUTOFILL)
    tab.sign_in_as(user)
    add_passkey(tab)
    tab.sign_out()
    tab.set_user_verified(False)
    tab.page.goto(LOGIN)
    wait_until(tab, "sessionStorage.getItem('pk-gets')")
    tab.page.get_by_role("button", name="Use passkey").click()
    message = status(tab).locator(".pk-error")
    message.wait_for()
    assert re.search("did not verify you", message.inner_text())
    tab.screenshot("login-error")
    check_accessibility(tab.page)  # with an error in the status area
    # Autofill is re-armed with fresh options after the failure.
    wait_until(tab, "JSON.parse(sessionStorage.getItem('pk-gets')).length >= 4")
    assert gets(tab) == ["conditional", "conditional aborted", "modal", "conditional"]
    assert tab.page.url.endswith(LOGIN)
    assert signed_in_user_id(tab) is None
    assert not AuthEvent.objects.filter(event_type="login", success=True).exists()
    assert tab.real_errors() == []


def test_without_webauthn_the_other_method_is_offered(open_tab):
    tab = open_tab(NO_WEBAUTHN, authenticator=False)
    tab.page.goto(LOGIN)
    assert tab.page.get_by_text("Passkeys are not available in this browser.").is_visible()
    assert not tab.page.get_by_role("button", name="Use passkey").is_visible()
    assert not tab.page.get_by_label("Email or username").is_visible()
    tab.screenshot("login-unsupported")
    tab.page.get_by_role("link", name="Use another method").click()
    tab.page.wait_for_url("**/accounts/login/")
    assert tab.page.get_by_role("heading", name="Password sign-in").is_visible()
    assert tab.errors == []


def test_pages_work_under_a_strict_content_security_policy(open_tab):
    user = UserFactory()
    tab = open_tab(HOLD_AUTOFILL)
    response = tab.page.goto(LOGIN)  # signed out: a signed-in visitor gets no sign-in form
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_until(tab, "sessionStorage.getItem('pk-gets')")  # the shim ran and armed autofill
    tab.sign_in_as(user)
    add_passkey(tab)
    response = tab.page.goto(MANAGE)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    tab.page.get_by_role("button", name="Add a passkey").wait_for()
    # Late requests too (the page icon): a 404 or a blocked resource is a console error.
    tab.page.wait_for_load_state("networkidle")
    assert tab.errors == []


def test_removal_on_an_old_session_asks_for_the_passkey_first(open_tab):
    user = UserFactory()
    tab = open_tab(RECORD_GETS)
    tab.sign_in_as(user)
    credential = add_passkey(tab)
    session = Session.objects.get()
    data = session.get_decoded()
    data[AUTH_TIME_KEY] = int(time.time()) - 3600
    session.session_data = Session.objects.encode(data)
    session.save()

    tab.page.reload()
    card = tab.page.locator("[data-pk-card]")
    card.get_by_text("Remove", exact=True).click()
    card.get_by_role("button", name="Remove passkey").click()
    status(tab).get_by_text("Passkey removed.").wait_for()
    assert gets(tab) == ["modal"]  # the step-up reauthentication
    credential.refresh_from_db()
    assert not credential.is_active
    assert AuthEvent.objects.filter(event_type="reauth", success=True).count() == 1
    assert tab.real_errors() == []


def test_browsers_without_the_json_helpers_use_the_fallback(open_tab):
    user = UserFactory()
    tab = open_tab(NO_JSON_HELPERS, HOLD_AUTOFILL)
    tab.sign_in_as(user)
    credential = add_passkey(tab)
    assert credential.transports == ["internal"]
    tab.sign_out()
    tab.page.goto(LOGIN)
    wait_until(tab, "sessionStorage.getItem('pk-gets')")
    tab.page.get_by_role("button", name="Use passkey").click()
    tab.page.wait_for_url(f"**{MANAGE}")
    assert signed_in_user_id(tab) == str(user.pk)
    assert tab.real_errors() == []


def test_an_unknown_passkey_is_signalled_to_the_provider(open_tab):
    user = UserFactory()
    tab = open_tab(HOLD_AUTOFILL)
    tab.sign_in_as(user)
    credential = add_passkey(tab)
    credential_id = b64url(bytes(credential.credential_id))
    credential.delete()  # as if the account's passkey had been deleted on the server
    tab.sign_out()
    tab.page.goto(LOGIN)
    wait_until(tab, "sessionStorage.getItem('pk-gets')")
    tab.page.get_by_role("button", name="Use passkey").click()
    status(tab).locator(".pk-error").get_by_text("not registered here").wait_for()
    assert tab.signals()[-1] == [
        "signalUnknownCredential",
        {"rpId": "localhost", "credentialId": credential_id},
    ]
    assert signed_in_user_id(tab) is None
