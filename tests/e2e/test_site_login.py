"""Passkey sign-in embedded in a site's own login page (``{% passkey_login %}`` in a plain
``LoginView`` template), in real Chromium: password first, a passkey added, sign-out from the
page's own button, then sign-in with the passkey on the same page."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tests.factories import UserFactory

from .test_browser import HOLD_AUTOFILL, MANAGE, add_passkey, gets, signed_in_user_id, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SITE_LOGIN = "/accounts/site-login/"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "login-view"


@pytest.fixture
def site_login(site, settings):
    """The live server with the site's ``LoginView`` page as ``LOGIN_URL``."""
    settings.ROOT_URLCONF = "tests.e2e.site_urls"
    engine = copy.deepcopy(settings.TEMPLATES[0])
    engine["DIRS"] = [str(EXAMPLE)]
    settings.TEMPLATES = [engine]
    settings.LOGIN_URL = SITE_LOGIN
    settings.LOGOUT_REDIRECT_URL = SITE_LOGIN
    return site


def test_sign_in_with_a_passkey_on_the_sites_own_login_page(
    site_login, open_tab, check_accessibility
):
    user = UserFactory()  # password: "correct horse battery staple"
    tab = open_tab(HOLD_AUTOFILL)

    # Signed out, the management page sends the visitor to the site's login page.
    tab.page.goto(MANAGE)
    tab.page.wait_for_url(re.compile(rf"{re.escape(SITE_LOGIN)}\?next=/auth/passkey/manage/$"))
    username = tab.page.get_by_label("Username")
    assert username.get_attribute("autocomplete") == "username webauthn"
    tab.page.get_by_role("button", name="Use passkey").wait_for()  # shown: WebAuthn works
    check_accessibility(tab.page)
    tab.screenshot("site-login")

    username.fill(user.username)
    tab.page.get_by_label("Password").fill("correct horse battery staple")
    tab.page.get_by_role("button", name="Sign in", exact=True).click()
    tab.page.wait_for_url(f"**{MANAGE}")
    credential = add_passkey(tab)

    # The page's own "Sign out": a POST with the CSRF token, back to the site's login page.
    tab.page.get_by_role("navigation", name="Your account").get_by_role(
        "button", name="Sign out"
    ).click()
    tab.page.wait_for_url(f"**{SITE_LOGIN}")
    assert signed_in_user_id(tab) is None

    wait_until(tab, "sessionStorage.getItem('pk-gets')")  # autofill armed, left pending
    tab.page.get_by_role("button", name="Use passkey").click()
    tab.page.wait_for_url(f"**{MANAGE}")
    assert signed_in_user_id(tab) == str(user.pk)
    assert gets(tab)[-2:] == ["conditional aborted", "modal"]
    assert tab.page.get_by_text(f"Signed in as {user.username}").is_visible()
    credential.refresh_from_db()
    assert credential.last_used_at is not None
    assert tab.real_errors() == []
