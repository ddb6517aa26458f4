"""What the account recovery tests share: the URLs, reading the link, factors, a recovering
browser and a signed-in device."""

from __future__ import annotations

import re
import time
from typing import Any

from django.core import mail
from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys import recovery_codes
from django_passkeys.models import RecoveryRequest

from .authenticator import SoftAuthenticator
from .support import ApiClient, enroll, passkey_login

RECOVER = "/auth/passkey/recover/"
OPEN = "/auth/passkey/recover/open"
VERIFY = "/auth/passkey/recover/verify"
STATUS = "/auth/passkey/recover/status"
CONTINUE = "/auth/passkey/recover/continue"
DONE = "/auth/passkey/recover/done"
APPROVALS = "/auth/passkey/recover/approvals/"
LINK_SUBJECT = "[Test site] Your account recovery link"
_LINK = re.compile(r"https://testserver(/auth/passkey/recover/link/[A-Za-z0-9_-]+)")


def approve_url(pk: int) -> str:
    return f"/auth/passkey/recover/approvals/{pk}/approve"


def deny_url(pk: int) -> str:
    return f"/auth/passkey/recover/approvals/{pk}/deny"


def link_mails() -> list[Any]:
    return [m for m in mail.outbox if m.subject == LINK_SUBJECT]


def last_link() -> str:
    """The path of the link in the last recovery-link e-mail."""
    messages = link_mails()
    assert messages, "no recovery link was sent"
    match = _LINK.search(messages[-1].body)
    assert match, messages[-1].body
    return match.group(1)


def ask_link(api: ApiClient, email: str) -> str:
    """Request a link for ``email`` over HTTP; return its path (the account must exist)."""
    response = api.post(RECOVER, {"email": email})
    assert response.status_code == 200, response.content
    return last_link()


def claim(api: ApiClient, link: str) -> Any:
    """Open ``link`` in ``api``'s browser and press "Continue": the request is this session's."""
    response = api.client.get(link, secure=True)
    assert response.status_code == 303, response.content
    assert response["Location"] == VERIFY
    return api.post(OPEN)


def start(api: ApiClient, user: Any) -> RecoveryRequest:
    """A recovery of ``user`` claimed in ``api``'s browser (link requested and opened)."""
    response = claim(api, ask_link(api, user.email))
    assert response.status_code == 200, response.content
    return RecoveryRequest.objects.get(user=user, state=RecoveryRequest.State.LINK_OPENED)


def add_totp(user: Any) -> TOTPDevice:
    device: TOTPDevice = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    return device


def totp_code(device: TOTPDevice, when: float | None = None) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = time.time() if when is None else when
    return f"{totp.token():0{device.digits}d}"


def add_recovery_codes(user: Any, count: int = 3) -> list[str]:
    with transaction.atomic():
        device, _ = recovery_codes.locked_device(user)
        return recovery_codes.replace_codes(device, count)


def signed_in_device(user: Any) -> tuple[ApiClient, SoftAuthenticator]:
    """A browser where ``user`` signed in with a passkey just now (a fresh assertion)."""
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    return passkey_login(authenticator), authenticator


def displayed_code(api: ApiClient) -> str:
    """The approval code the recovering browser shows on its verify page."""
    html = api.client.get(VERIFY, secure=True).content.decode()
    match = re.search(r"data-pk-approval-code>(\d{6})<", html)
    assert match, html
    return match.group(1)


def signed_in_user_id(api: ApiClient) -> Any:
    from django.contrib.auth import SESSION_KEY

    return api.client.session.get(SESSION_KEY)


def notices() -> list[str]:
    """Subjects of the notices sent (every e-mail but the recovery links)."""
    return [m.subject for m in mail.outbox if m.subject != LINK_SUBJECT]
