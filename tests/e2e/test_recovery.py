"""Account recovery in real Chromium (issue 9): the only passkey is lost, the mailbox link and a
recovery code get the user back in, a new passkey is added and the cooldown keeps the old one;
and a recovery approved from a second browser context where the user is still signed in."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.core import mail

from django_passkeys.models import AuthEvent, Credential, RecoveryRequest
from tests.factories import UserFactory

from .test_browser import add_passkey, signed_in_user_id, status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

State = RecoveryRequest.State

LOGIN = "/auth/passkey/login/"
MANAGE = "/auth/passkey/manage/"
SECURITY = "/auth/passkey/security/"
CODES_PAGE = "/auth/passkey/recovery-codes/"
RECOVER = "/auth/passkey/recover/"
VERIFY = "/auth/passkey/recover/verify"
DONE = "/auth/passkey/recover/done"
APPROVALS = "/auth/passkey/recover/approvals/"
CONTINUE = "/auth/passkey/recover/continue"
SITE = "[Test site]"
LINK_SUBJECT = f"{SITE} Your account recovery link"
SENT = "If an account uses this address, we sent it a recovery link."


def mails_since(start: int) -> list[tuple[str, list[str]]]:
    """Subject and recipients of every e-mail sent since ``start`` messages were in the outbox."""
    return [(m.subject, list(m.to)) for m in mail.outbox[start:]]


def wait_for_mail(subject: str, start: int, timeout: float = 10) -> Any:
    """The first e-mail with ``subject`` sent since ``start``; the recovery views send theirs
    after the response has gone out, so it may arrive a moment after the page."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in mail.outbox[start:] if m.subject == subject]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no e-mail {subject!r}: {mails_since(start)}"
        time.sleep(0.05)


def link_in(message: Any, base_url: str) -> str:
    """The recovery link of an e-mail, which must point at the site (PASSKEYS_BASE_URL)."""
    match = re.search(r"https?://\S+/auth/passkey/recover/link/[A-Za-z0-9_-]+", message.body)
    assert match, message.body
    assert match.group(0).startswith(base_url + "/"), match.group(0)
    return match.group(0)


def ask_for_a_link(tab: Any, email: str, check_accessibility: Any) -> None:
    """From the sign-in page: "Recover account", type the address, send."""
    page = tab.page
    page.goto(LOGIN)
    page.get_by_role("link", name="Recover account").click()
    page.wait_for_url(f"**{RECOVER}")
    check_accessibility(page)
    tab.screenshot("recover")
    page.get_by_label("Your account's e-mail address").fill(email)
    page.get_by_role("button", name="Send a recovery link").click()
    status(tab).get_by_text(SENT).wait_for()
    assert page.url.endswith(RECOVER)
    check_accessibility(page)  # "check your mail"
    tab.screenshot("recover-sent")


def open_the_link(tab: Any, link: str, check_accessibility: Any) -> None:
    """Open the link from the e-mail and claim it for this browser ("Continue")."""
    page = tab.page
    page.goto(link)
    page.wait_for_url(f"**{VERIFY}")  # the token left the address bar
    assert "/link/" not in page.url
    check_accessibility(page)
    tab.screenshot("recover-continue")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("Your e-mail address is confirmed.").wait_for()
    check_accessibility(page)
    tab.screenshot("recover-factors")


def card_of(page: Any, credential: Credential) -> Any:
    return page.locator(
        "[data-pk-card]", has=page.locator(f'form[action$="/{credential.pk}/remove"]')
    )


def test_user_who_lost_their_only_passkey_recovers_with_a_recovery_code(
    open_tab, live_server, check_accessibility
):
    user = UserFactory()
    tab = open_tab()
    page = tab.page
    tab.sign_in_as(user)
    old = add_passkey(tab)
    page.goto(CODES_PAGE)
    page.get_by_role("button", name="Generate recovery codes").click()
    page.locator("#pk-recovery-codes code").first.wait_for()
    code = page.locator("#pk-recovery-codes code").first.inner_text().strip()

    # The phone with the only passkey is lost; the browser is signed out.
    tab.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": tab.authenticator_id})
    tab.authenticator_id = None
    tab.sign_out()
    assert signed_in_user_id(tab) is None
    start = len(mail.outbox)

    ask_for_a_link(tab, user.email, check_accessibility)
    message = wait_for_mail(LINK_SUBJECT, start)
    assert message.to == [user.email]
    assert signed_in_user_id(tab) is None
    open_the_link(tab, link_in(message, live_server.url), check_accessibility)
    assert signed_in_user_id(tab) is None  # the mailbox alone signs nobody in

    page.get_by_label("One of your recovery codes").fill(code)
    page.get_by_role("button", name="Use recovery code").click()
    page.wait_for_url(f"**{DONE}")
    assert page.get_by_role("heading", name="You're back in").is_visible()
    assert signed_in_user_id(tab) == str(user.pk)
    check_accessibility(page)
    tab.screenshot("recover-done")

    # A new passkey, on a new phone, from the page the recovery ends on.
    tab.add_authenticator()
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(f"**{SECURITY}")
    assert status(tab).get_by_text("Your new passkey is ready.").is_visible()
    new = Credential.objects.active().filter(user=user).exclude(pk=old.pk).get()
    assert len(tab.credentials()) == 1

    # The old passkey cannot be removed during the cooldown, and stays.
    page.goto(MANAGE)
    card = card_of(page, old)
    card.get_by_text("Remove", exact=True).click()
    card.get_by_role("button", name="Remove passkey").click()
    refusal = status(tab).locator(".pk-error")
    refusal.wait_for()
    assert refusal.inner_text().startswith("This change is blocked until ")
    assert "after a recent account recovery" in refusal.inner_text()
    assert card.is_visible()
    old.refresh_from_db()
    assert old.is_active and new.is_active

    rr = RecoveryRequest.objects.get(user=user)
    assert (rr.state, rr.factor) == (State.COMPLETED, RecoveryRequest.Factor.RECOVERY_CODE)
    to = [user.email]
    assert sorted(mails_since(start)) == sorted(
        [
            (LINK_SUBJECT, to),
            (f"{SITE} Recovery of your account was requested", to),
            (f"{SITE} A recovery code was used", to),
            (f"{SITE} Your account was recovered", to),
            (f"{SITE} A passkey was added to your account", to),
        ]
    )
    assert tab.real_errors() == []


def test_recovery_approved_from_a_device_where_the_user_is_signed_in(
    open_tab, live_server, check_accessibility
):
    user = UserFactory()
    # Browser A: signed in with a passkey, as on the user's laptop.
    laptop = open_tab()
    laptop.sign_in_as(user)
    add_passkey(laptop)
    laptop.sign_out()
    laptop.page.goto(LOGIN)  # autofill: the virtual authenticator answers at once
    laptop.page.wait_for_url(f"**{MANAGE}")
    assert signed_in_user_id(laptop) == str(user.pk)

    # Browser B: a new device, no passkey.
    phone = open_tab(authenticator=False)
    posts: list[str] = []
    phone.page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    start = len(mail.outbox)
    ask_for_a_link(phone, user.email, check_accessibility)
    open_the_link(
        phone, link_in(wait_for_mail(LINK_SUBJECT, start), live_server.url), check_accessibility
    )
    phone.page.get_by_role("button", name="Approve from another device").click()
    shown = phone.page.locator("[data-pk-approval-code]")
    shown.wait_for()
    code = shown.inner_text().strip()
    assert re.fullmatch(r"\d{6}", code)
    check_accessibility(phone.page)
    phone.screenshot("recover-waiting")

    # A sees the pending recovery on its security page and reviews it.
    laptop.page.goto(SECURITY)
    laptop.page.get_by_role("heading", name="Someone is recovering your account").wait_for()
    check_accessibility(laptop.page)
    laptop.screenshot("security-recovery-pending")
    # The link names what it reviews, as the security page's other links do.
    laptop.page.get_by_role("link", name=re.compile(r"^Review ?: .+ on .+$")).click()
    laptop.page.wait_for_url(f"**{APPROVALS}")
    check_accessibility(laptop.page)
    laptop.screenshot("recover-approvals")

    # A wrong code (after the passkey confirmation) approves nothing.
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    laptop.page.get_by_label("Code shown by that browser").fill(wrong)
    laptop.page.get_by_role("button", name="Approve").click()
    status(laptop).locator(".pk-error").get_by_text(
        "The code or approval was not accepted."
    ).wait_for()
    rr = RecoveryRequest.objects.get(user=user)
    assert (rr.state, rr.factor_attempts) == (State.APPROVAL_PENDING, 1)
    assert signed_in_user_id(phone) is None
    assert AuthEvent.objects.filter(event_type="reauth", success=True).count() == 1

    # The right code: B, still waiting, continues by itself (no reload, no click).
    laptop.page.get_by_label("Code shown by that browser").fill(code)
    laptop.page.get_by_role("button", name="Approve").click()
    status(laptop).get_by_text("Approved. The other device is signing in now.").wait_for()
    phone.page.wait_for_url(f"**{DONE}", timeout=15_000)
    assert any(url.endswith(CONTINUE) for url in posts)
    assert phone.page.get_by_role("heading", name="You're back in").is_visible()
    assert signed_in_user_id(phone) == str(user.pk)
    rr.refresh_from_db()
    assert (rr.state, rr.factor, rr.approved_by_id) == (
        State.COMPLETED,
        RecoveryRequest.Factor.DEVICE,
        user.pk,
    )
    assert phone.real_errors() == []
    assert laptop.real_errors() == []


def test_a_recovery_denied_from_a_signed_in_device_ends_on_the_waiting_page(open_tab, live_server):
    user = UserFactory()
    laptop = open_tab()
    laptop.sign_in_as(user)
    add_passkey(laptop)
    laptop.sign_out()
    laptop.page.goto(LOGIN)
    laptop.page.wait_for_url(f"**{MANAGE}")

    stranger = open_tab(authenticator=False)
    start = len(mail.outbox)
    stranger.page.goto(RECOVER)
    stranger.page.get_by_label("Your account's e-mail address").fill(user.email)
    stranger.page.get_by_role("button", name="Send a recovery link").click()
    stranger.page.goto(link_in(wait_for_mail(LINK_SUBJECT, start), live_server.url))
    stranger.page.get_by_role("button", name="Continue").click()
    stranger.page.get_by_role("button", name="Approve from another device").click()
    stranger.page.locator("[data-pk-approval-code]").wait_for()

    # "This wasn't me": no passkey needed to refuse.
    laptop.page.goto(APPROVALS)
    laptop.page.get_by_role("button", name="This wasn't me: deny").click()
    status(laptop).get_by_text("Denied.").wait_for()
    # The waiting page notices the new state by itself and shows it.
    stranger.page.get_by_text(
        "This recovery was denied from a device where you are signed in."
    ).wait_for(timeout=15_000)
    assert stranger.page.locator("[data-pk-approval-code]").count() == 0
    assert signed_in_user_id(stranger) is None
    assert RecoveryRequest.objects.get(user=user).state == State.DENIED
    assert (f"{SITE} A recovery of your account was denied", [user.email]) in mails_since(start)
    assert stranger.real_errors() == []
