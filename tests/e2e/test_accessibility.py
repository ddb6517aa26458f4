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
NO_WEBAUTHN = "delete window.PublicKeyCredential;"


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
