"""Second factors in real Chromium: a user sets up an authenticator app by reading the secret off
the page, saves recovery codes, and finds both on the Sign-in and security page."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys.models import RecoveryCode
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOTP_PAGE = "/auth/passkey/totp/"
CODES_PAGE = "/auth/passkey/recovery-codes/"
SECURITY = "/auth/passkey/security/"
CODE_PATTERN = re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){5}$")


def current_code(secret_text: str) -> str:
    """What an authenticator app shows for the secret as the page prints it."""
    key = base64.b32decode(secret_text.replace(" ", "").upper())
    return f"{TOTP(key).token():06d}"


def section(page: Any, key: str) -> Any:
    return page.locator(f'[data-pk-section="{key}"]')


def test_user_sets_up_an_app_and_recovery_codes_and_sees_both(open_tab, check_accessibility):
    user = UserFactory()
    tab = open_tab(authenticator=False)
    tab.sign_in_as(user)
    page = tab.page

    # The security page says what to set up.
    page.goto(SECURITY)
    check_accessibility(page)
    assert "Not set up" in section(page, "totp").inner_text()
    assert "Set up recovery codes" in section(page, "recovery-codes").inner_text()

    # Authenticator app: the QR code is inline SVG; the secret is typed into the app.
    section(page, "totp").get_by_role("link").click()
    page.wait_for_url(f"**{TOTP_PAGE}")
    assert page.locator("svg[role=img]").count() == 1
    check_accessibility(page)
    tab.screenshot("totp")
    secret = page.locator("[data-pk-secret]").inner_text()
    page.get_by_role("textbox", name="Code from the app").fill(current_code(secret))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state("networkidle")
    assert TOTPDevice.objects.get(user=user).confirmed
    assert page.locator("[data-pk-secret]").count() == 0  # the secret is not shown again

    # Recovery codes: generated, shown once, stored as hashes only.
    page.goto(CODES_PAGE)
    check_accessibility(page)
    page.get_by_role("button", name="Generate recovery codes").click()
    page.wait_for_load_state("networkidle")
    codes = [c.strip() for c in page.locator("#pk-recovery-codes code").all_inner_texts()]
    assert len(codes) == 10
    assert all(CODE_PATTERN.match(code) for code in codes)
    download = page.get_by_role("link", name="Download as text")
    assert download.get_attribute("download")
    check_accessibility(page)
    tab.screenshot("recovery-codes-new")
    stored = list(RecoveryCode.objects.values_list("digest", flat=True))
    assert len(stored) == 10
    assert not any(code.replace("-", "") in str(stored) for code in codes)

    page.goto(CODES_PAGE)  # shown once: the page only counts them now
    assert codes[0] not in page.content()
    assert "10" in page.content()

    # Both on the security page.
    page.goto(SECURITY)
    assert "Set up" in section(page, "totp").inner_text()
    assert "Not set up" not in section(page, "totp").inner_text()
    assert "10 codes left" in section(page, "recovery-codes").inner_text()
    assert tab.real_errors() == []
