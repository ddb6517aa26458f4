"""The move off passwords in real Chromium: a password user signs in, gets a passkey through the
upgrade, turns password sign-in off; a later password sign-in is refused, the passkey works."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import transaction

from django_passkeys.models import AuthEvent, Credential
from django_passkeys.passkey_only import is_passkey_only
from django_passkeys.recovery_codes import locked_device, replace_codes
from tests.factories import UserFactory

from .test_browser import signed_in_user_id

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
SIGN_IN = "/accounts/password/"
SECURITY = "/auth/passkey/security/"
PASSKEY_ONLY = "/auth/passkey/passkey-only/"
#: Logs every navigator.credentials.create() (its mediation, and aborts) in sessionStorage.
RECORD_CREATES = """
(() => {
  const log = (entry) => {
    const list = JSON.parse(sessionStorage.getItem("pk-creates") || "[]");
    list.push(entry);
    sessionStorage.setItem("pk-creates", JSON.stringify(list));
  };
  const create = navigator.credentials.create.bind(navigator.credentials);
  navigator.credentials.create = (options) => {
    const mediation = options.mediation || "modal";
    log(mediation);
    options.signal?.addEventListener("abort", () => log(mediation + " aborted"));
    return create(options);
  };
})();
"""
#: A browser without conditional create (getClientCapabilities() says nothing of it).
NO_CONDITIONAL_CREATE = (
    "PublicKeyCredential.getClientCapabilities = async () => ({ conditionalGet: true });"
)


@pytest.fixture
def guarded(settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        "django_passkeys.backends.PasskeyOnlyModelBackend",
        "django_passkeys.backends.PasskeyBackend",
    ]
    settings.PASSKEYS_UPGRADE_WAIT = 1.5


def creates(tab: Any) -> list[str]:
    return list(tab.page.evaluate("JSON.parse(sessionStorage.getItem('pk-creates') || '[]')"))


def wait_until(tab: Any, expression: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not tab.page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        tab.page.wait_for_timeout(50)


def at(tab: Any, path: str) -> None:
    """Wait until the page is ``path`` (a glob would match it in another page's ``next``)."""
    tab.page.wait_for_url(lambda url: urlsplit(url).path == path)


def password_sign_in(tab: Any, user: Any, next_url: str = SECURITY) -> None:
    tab.page.goto(f"{SIGN_IN}?next={next_url}")
    tab.page.get_by_label("Username").fill(user.get_username())
    tab.page.get_by_label("Password").fill(PASSWORD)
    tab.page.get_by_role("button", name="Sign in").click()


def test_from_password_to_passkey_only(open_tab, guarded, check_accessibility):
    user = UserFactory()
    with transaction.atomic():  # a recovery factor, which passkey-only needs
        replace_codes(locked_device(user)[0], 10)
    tab = open_tab(RECORD_CREATES)

    # A password sign-in lands on the upgrade, which first asks for a conditional create.
    # Chromium reports conditionalCreate, yet leaves the request pending: after
    # PASSKEYS_UPGRADE_WAIT the page gives up on it and offers the choices instead.
    with tab.page.expect_request("**/auth/passkey/upgrade/options") as options_request:
        password_sign_in(tab, user)
    assert options_request.value.method == "POST"
    tab.page.wait_for_url("**/auth/passkey/upgrade/?next=*")
    assert tab.page.evaluate("PublicKeyCredential.getClientCapabilities()")["conditionalCreate"]
    wait_until(tab, "document.querySelector('[data-pk-upgrade]').dataset.pkUpgrade === 'offer'")
    assert creates(tab) == ["conditional", "conditional aborted"]
    heading = tab.page.get_by_role("heading", name="Sign in faster with a passkey")
    assert heading.is_visible()
    tab.screenshot("upgrade")
    check_accessibility(tab.page)

    # "Create a passkey": a modal create, then on to next.
    tab.page.get_by_role("button", name="Create a passkey").click()
    at(tab, SECURITY)
    assert creates(tab)[-1] == "modal"
    credential = Credential.objects.get(user=user)
    assert AuthEvent.objects.get(event_type="upgrade", success=True).credential == credential
    assert len(tab.credentials()) == 1

    # Password sign-in off, from the security page.
    tab.page.goto(PASSKEY_ONLY)
    check_accessibility(tab.page)
    tab.page.get_by_role("button", name="Turn password sign-in off").click()
    tab.page.get_by_text("Password sign-in is off: you sign in with your passkeys.").wait_for()
    tab.screenshot("passkey-only")
    check_accessibility(tab.page)
    assert is_passkey_only(user)

    # A later password sign-in is refused, with the way out.
    tab.sign_out()
    password_sign_in(tab, user)
    tab.page.get_by_text("This account signs in with a passkey only.").wait_for()
    assert signed_in_user_id(tab) is None

    # The passkey works: autofill answers at once with the one passkey.
    tab.page.goto("/auth/passkey/login/")
    at(tab, "/auth/passkey/manage/")
    assert signed_in_user_id(tab) == str(user.pk)
    assert tab.real_errors() == []


def test_without_conditional_create_the_offer_shows_at_once(open_tab, guarded):
    user = UserFactory()
    tab = open_tab(RECORD_CREATES, NO_CONDITIONAL_CREATE)
    password_sign_in(tab, user)
    tab.page.wait_for_url("**/auth/passkey/upgrade/?next=*")
    wait_until(tab, "document.querySelector('[data-pk-upgrade]').dataset.pkUpgrade === 'offer'")
    assert creates(tab) == []  # no conditional request was made
    # "Don't ask again": on to next, and the next password sign-in goes straight there.
    tab.page.get_by_role("button", name="Don't ask again for 30 days").click()
    at(tab, SECURITY)
    tab.sign_out()
    password_sign_in(tab, user)
    at(tab, SECURITY)
    assert not Credential.objects.filter(user=user).exists()
    assert tab.real_errors() == []


def test_a_step_up_page_asks_for_the_passkey_and_comes_back(open_tab, settings):
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/auth/passkey/manage/"
    user = UserFactory()
    tab = open_tab()
    tab.sign_in_as(user)
    tab.page.goto("/auth/passkey/manage/")
    tab.page.get_by_role("button", name="Add a passkey").click()
    tab.page.locator("[data-pk-card]").wait_for()
    tab.page.goto(f"/auth/passkey/reauth/?next={SECURITY}")
    tab.page.get_by_role("button", name="Confirm with a passkey").click()
    at(tab, SECURITY)
    assert AuthEvent.objects.filter(event_type="reauth", success=True).exists()
    assert tab.real_errors() == []
