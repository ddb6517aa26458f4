"""Every page, in each state a user meets it, has zero axe-core violations (WCAG 2.1 AA).

A new page or state is one line in ``PAGES``: its URL, the setup that puts the database and the
browser in that state, and what to do on the page before the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from django_passkeys.cooldown import start_cooldown
from django_passkeys.models import Credential, UserSession
from tests.factories import CredentialFactory, UserFactory

from .conftest import VIRTUAL_AAGUID

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOGIN = "/auth/passkey/login/"
MANAGE = "/auth/passkey/manage/"
SESSIONS = "/auth/passkey/sessions/"
SECURITY = "/auth/passkey/security/"
TOTP = "/auth/passkey/totp/"
RECOVERY_CODES = "/auth/passkey/recovery-codes/"
COOLDOWN = "/auth/passkey/cooldown/"
NO_WEBAUTHN = "delete window.PublicKeyCredential;"
REAUTH = "/auth/passkey/reauth/?next=/auth/passkey/security/"
UPGRADE = "/auth/passkey/upgrade/?next=/auth/passkey/security/"
PASSKEY_ONLY = "/auth/passkey/passkey-only/"
#: A browser that cannot create a passkey by itself: the upgrade shows its offer at once.
NO_CONDITIONAL_CREATE = "PublicKeyCredential.getClientCapabilities = async () => ({});"


def signed_out(tab: Any) -> None:
    pass


def signed_in(tab: Any) -> None:
    tab.sign_in_as(UserFactory())


def signed_in_an_hour_ago(tab: Any) -> None:
    """A sign-in too old for changes: the pages ask to sign in again."""
    tab.sign_in_as(UserFactory(), age=3600)


def passkeys(user: Any) -> list[Credential]:
    """A synced passkey from a known provider, used just now, and an unnamed security key."""
    now = timezone.now()
    return [
        CredentialFactory(
            user=user,
            name="Work laptop",
            aaguid=VIRTUAL_AAGUID,
            backup_eligible=True,
            backup_state=True,
            last_used_at=now,
        ),
        CredentialFactory(user=user, name="Security key"),
    ]


def signed_in_with_passkeys(tab: Any) -> None:
    user = UserFactory()
    tab.sign_in_as(user)
    passkeys(user)


def signed_in_elsewhere_too(tab: Any, *, age: int = 0) -> None:
    """This browser's session, signed in with a passkey, and one more on another device."""
    user = UserFactory()
    tab.sign_in_as(user, age=age)
    laptop, _ = passkeys(user)
    current = next(c["value"] for c in tab.context.cookies() if c["name"] == "sessionid")
    UserSession.objects.create(
        user=user,
        session_key=current,
        credential=laptop,
        ip_address="127.0.0.1",
        user_agent="Chromium on this computer",
    )
    other = SessionStore()
    other.create()
    UserSession.objects.create(
        user=user,
        session_key=other.session_key,
        ip_address="198.51.100.7",
        user_agent="Firefox on a phone",
    )


def signed_in_elsewhere_too_an_hour_ago(tab: Any) -> None:
    signed_in_elsewhere_too(tab, age=3600)


def signed_in_after_a_recovery(tab: Any) -> None:
    """High-risk changes paused: the cooldown page says why and until when."""
    user = UserFactory()
    tab.sign_in_as(user)
    start_cooldown(user, reason="recovery")


def just_signed_in_with_a_password(tab: Any) -> None:
    """A user without a passkey, right after a password sign-in: the upgrade is due."""
    import time

    from django_passkeys.upgrade import PASSWORD_SIGN_IN_KEY

    tab.sign_in_as(UserFactory())
    key = next(c["value"] for c in tab.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[PASSWORD_SIGN_IN_KEY] = int(time.time())
    session.save()


def signed_in_with_passkeys_and_recovery_codes(tab: Any, *, passkey_only: bool = False) -> None:
    """Ready to turn password sign-in off (or, with ``passkey_only``, turned off already)."""
    from django.db import transaction

    from django_passkeys.models import AdoptionState
    from django_passkeys.recovery_codes import locked_device, replace_codes

    user = UserFactory()
    tab.sign_in_as(user)
    passkeys(user)
    with transaction.atomic():
        replace_codes(locked_device(user)[0], 10)
    if passkey_only:
        AdoptionState.objects.create(user=user, passkey_only_since=timezone.now())


def signed_in_passkey_only(tab: Any) -> None:
    signed_in_with_passkeys_and_recovery_codes(tab, passkey_only=True)


# Account recovery (docs/recovery.rst).
RECOVER = "/auth/passkey/recover/"
RECOVER_VERIFY = "/auth/passkey/recover/verify"
RECOVER_DONE = "/auth/passkey/recover/done"
RECOVER_APPROVALS = "/auth/passkey/recover/approvals/"
#: The browser a pending approval names ("Chrome on Android").
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def recovery_claimed(user: Any, *, ask_device: bool = False) -> Any:
    """A browser session (not the tab's) that opened a recovery link of ``user`` and pressed
    "Continue"; with ``ask_device``, it asked a signed-in device to approve. Returns the session.
    """
    from django.test import RequestFactory

    from django_passkeys import flows
    from django_passkeys import recovery as machine
    from django_passkeys.models import RecoveryRequest

    request = RequestFactory().get("/", HTTP_USER_AGENT=PHONE)
    request.session = SessionStore()
    token = machine.new_token()
    RecoveryRequest.objects.create(
        user=user, token_sha256=machine.token_digest(token), expires_at=machine.deadline()
    )
    flows.check_link(request, token)
    flows.open_link(request)
    if ask_device:
        flows.ask_approval(request)
    request.session.save()
    return request.session


def use_session(tab: Any, session: Any) -> None:
    tab.context.add_cookies(
        [{"name": "sessionid", "value": session.session_key, "url": tab.base_url}]
    )


def with_a_device(user: Any) -> None:
    """``user`` has a passkey and is signed in somewhere: a device can approve a recovery."""
    other = SessionStore()
    other.create()
    UserSession.objects.create(
        user=user, session_key=other.session_key, credential=passkeys(user)[0]
    )


def recovering_with_every_factor(tab: Any) -> None:
    """The link claimed here; the account has an app, recovery codes and a signed-in device."""
    from django.db import transaction
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from django_passkeys.recovery_codes import locked_device, replace_codes

    user = UserFactory()
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    with transaction.atomic():
        replace_codes(locked_device(user)[0], 10)
    with_a_device(user)
    use_session(tab, recovery_claimed(user))


def recovering_without_a_factor(tab: Any) -> None:
    """The link claimed here, for an account with no second factor: support, and a code."""
    use_session(tab, recovery_claimed(UserFactory()))


def recovering_waiting_for_a_device(tab: Any) -> None:
    """This browser shows its approval code and polls."""
    user = UserFactory()
    with_a_device(user)
    use_session(tab, recovery_claimed(user, ask_device=True))


def recovering_link_opened(tab: Any) -> None:
    """The link was opened in this browser, which has not pressed "Continue" yet."""
    from django_passkeys import recovery as machine
    from django_passkeys.flows.recovery import PENDING_KEY
    from django_passkeys.models import RecoveryRequest

    token = machine.new_token()
    RecoveryRequest.objects.create(
        user=UserFactory(), token_sha256=machine.token_digest(token), expires_at=machine.deadline()
    )
    session = SessionStore()
    session[PENDING_KEY] = machine.token_digest(token)
    session.create()
    use_session(tab, session)


def recovered(tab: Any) -> None:
    """Signed in by a recovery just now: the page offers to add a passkey."""
    import time

    from django_passkeys.flows.recovery import RECOVERED_AT_KEY

    user = UserFactory()
    tab.sign_in_as(user)
    start_cooldown(user, reason="recovery")
    key = next(c["value"] for c in tab.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[RECOVERED_AT_KEY] = int(time.time())
    session.save()


def signed_in_with_a_recovery_to_approve(tab: Any) -> None:
    """Signed in here with passkeys; another browser waits for this device's approval."""
    user = UserFactory()
    tab.sign_in_as(user)
    with_a_device(user)
    recovery_claimed(user, ask_device=True)


def open_every_disclosure(page: Any) -> None:
    """Open the Rename and Remove forms: closed, their labels and buttons are not checked."""
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")


class PageState(NamedTuple):
    url: str
    setup: Callable[[Any], None]
    init_script: str = ""
    then: Callable[[Any], None] | None = None


PAGES = {
    "login": PageState(LOGIN, signed_out),
    "login-without-webauthn": PageState(LOGIN, signed_out, NO_WEBAUTHN),
    "manage-empty": PageState(MANAGE, signed_in),
    "manage-empty-needs-fresh-sign-in": PageState(MANAGE, signed_in_an_hour_ago),
    "manage-with-passkeys": PageState(MANAGE, signed_in_with_passkeys, then=open_every_disclosure),
    "manage-without-webauthn": PageState(MANAGE, signed_in_with_passkeys, NO_WEBAUTHN),
    "sessions": PageState(SESSIONS, signed_in_elsewhere_too),
    "sessions-needs-fresh-sign-in": PageState(SESSIONS, signed_in_elsewhere_too_an_hour_ago),
    "security": PageState(SECURITY, signed_in_with_passkeys),
    "totp-enrol": PageState(TOTP, signed_in),
    "totp-needs-fresh-sign-in": PageState(TOTP, signed_in_an_hour_ago),
    "recovery-codes": PageState(RECOVERY_CODES, signed_in),
    "cooldown": PageState(COOLDOWN, signed_in_after_a_recovery),
    "cooldown-none": PageState(COOLDOWN, signed_in),
    # The move off passwords (docs/rollout.rst).
    "reauth": PageState(REAUTH, signed_in_with_passkeys),
    "reauth-without-passkeys": PageState(REAUTH, signed_in),
    "upgrade": PageState(UPGRADE, just_signed_in_with_a_password, NO_CONDITIONAL_CREATE),
    "upgrade-without-webauthn": PageState(UPGRADE, just_signed_in_with_a_password, NO_WEBAUTHN),
    "passkey-only-not-ready": PageState(PASSKEY_ONLY, signed_in),
    "passkey-only-ready": PageState(PASSKEY_ONLY, signed_in_with_passkeys_and_recovery_codes),
    "passkey-only-on": PageState(PASSKEY_ONLY, signed_in_passkey_only),
    # Account recovery, in the recovering browser and on a signed-in device.
    "recover": PageState(RECOVER, signed_out),
    "recover-continue": PageState(RECOVER_VERIFY, recovering_link_opened),
    "recover-factors": PageState(RECOVER_VERIFY, recovering_with_every_factor),
    "recover-support": PageState(RECOVER_VERIFY, recovering_without_a_factor),
    "recover-waiting": PageState(RECOVER_VERIFY, recovering_waiting_for_a_device),
    "recover-ended": PageState(RECOVER_VERIFY, signed_out),
    "recover-done": PageState(RECOVER_DONE, recovered),
    "recover-approvals": PageState(RECOVER_APPROVALS, signed_in_with_a_recovery_to_approve),
    "recover-approvals-none": PageState(RECOVER_APPROVALS, signed_in),
    "security-recovery-pending": PageState(SECURITY, signed_in_with_a_recovery_to_approve),
}


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("state", PAGES.values(), ids=PAGES.keys())
def test_page_has_no_accessibility_violations(open_tab, check_accessibility, state, color_scheme):
    tab = open_tab(*filter(None, [state.init_script]), authenticator=False)
    tab.page.emulate_media(color_scheme=color_scheme)
    state.setup(tab)
    response = tab.page.goto(state.url)
    assert response.status == 200, f"{state.url} answered {response.status}"
    tab.page.wait_for_load_state("networkidle")  # passkeys.js has shown or hidden its controls
    if state.then:
        state.then(tab.page)
    check_accessibility(tab.page)
