"""The authenticator-app factor (TOTP, RFC 6238) on django-otp's ``TOTPDevice``.

One authenticator app per user. Its state is read from the user's devices:

- **none**: no device;
- **pending**: an unconfirmed device, created when the enrolment page is shown, waiting for a
  first correct code (it never verifies anything until then);
- **confirmed**: the device the user proved they hold by entering a code from it.

A pending device belongs to the session that showed its secret (:data:`PENDING_KEY`): another
session never sees that secret nor confirms that device, it gets a new one.

django-otp does the RFC 6238 work: ``verify_token`` accepts the current code and one step either
side (``tolerance``), remembers the step of the last accepted code (``last_t``) so that a code is
never accepted twice, and its throttling mixin (``OTP_TOTP_THROTTLE_FACTOR``, on by default)
makes every failure double the wait before the next guess is even checked.

This module holds no use case: :mod:`django_passkeys.flows.totp` audits, signals and checks who
may change what.
"""

from __future__ import annotations

import re
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import segno
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason

__all__ = [
    "DEVICE_NAME",
    "PENDING_KEY",
    "TotpState",
    "clean_code",
    "config_uri",
    "confirmed_device",
    "new_pending_device",
    "pending_device",
    "qr_svg",
    "secret_text",
    "totp_state",
]

#: Session key: the id of the pending device whose secret this session was shown.
PENDING_KEY = "_passkeys_totp_pending"
#: The ``name`` of the devices this app creates.
DEVICE_NAME = "Authenticator app"

#: A code once spaces are dropped: ASCII digits only. ``int()``, which django-otp applies to a
#: token, also reads "١٢٣٤٥٦" (Arabic-Indic digits), "1_234" and " 12 ", so the shape is checked
#: here first; the length is the device's ``digits``.
_DIGITS = re.compile(r"[0-9]+")
#: Authenticator apps show "123 456"; people type it that way.
_SPACES = re.compile(r"[ \t]+")
#: Longest input looked at: a code with generous spacing. Anything longer is not a code.
_MAX_INPUT = 32


def clean_code(value: object, digits: int = 6) -> str:
    """``value`` as a code of ``digits`` ASCII digits, or :class:`PasskeyError`.

    Not text at all (a JSON number, a list, nothing): ``malformed_request``. Text that is not
    such a code: ``second_factor_invalid``, like a wrong code.
    """
    if not isinstance(value, str):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "code is not a string")
    if len(value) > _MAX_INPUT:
        raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "not a code: too long")
    code = _SPACES.sub("", value)
    if len(code) != digits or not _DIGITS.fullmatch(code):
        raise PasskeyError(Reason.SECOND_FACTOR_INVALID, "not a code")
    return code


# ---------------------------------------------------------------------------------------------
# The user's devices
# ---------------------------------------------------------------------------------------------


def confirmed_device(user: AbstractBaseUser, *, lock: bool = False) -> TOTPDevice | None:
    """``user``'s authenticator app, or ``None``; ``lock`` takes the row (in a transaction)."""
    queryset = TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).order_by("pk")
    return (queryset.select_for_update() if lock else queryset).first()


def pending_device(user: AbstractBaseUser, pk: object, *, lock: bool = False) -> TOTPDevice | None:
    """``user``'s unconfirmed device ``pk`` (the id a session holds), or ``None``."""
    if not isinstance(pk, int):
        return None
    queryset = TOTPDevice.objects.filter(pk=pk, user_id=user.pk, confirmed=False)
    return (queryset.select_for_update() if lock else queryset).first()


def new_pending_device(user: AbstractBaseUser) -> TOTPDevice:
    """A new unconfirmed device with a fresh random secret; any other pending one is dropped.

    One enrolment at a time: a secret shown in another session can no longer be confirmed.
    """
    TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
    device: TOTPDevice = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


# ---------------------------------------------------------------------------------------------
# What the enrolment page shows
# ---------------------------------------------------------------------------------------------


def _base32(device: TOTPDevice) -> str:
    return b32encode(device.bin_key).decode("ascii").rstrip("=")


def secret_text(device: TOTPDevice) -> str:
    """The secret as people type it into an app: base32, in groups of four."""
    secret = _base32(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def config_uri(device: TOTPDevice) -> str:
    """The ``otpauth://totp/...`` URI (Key URI Format) the QR code carries.

    The same URI as django-otp's ``TOTPDevice.config_url``, with ``PASSKEYS_RP_NAME`` as the
    issuer (``config_url`` reads ``OTP_TOTP_ISSUER``, which this app does not make a project set).
    """
    issuer = conf.PASSKEYS_RP_NAME.replace(":", "")
    username = str(device.user.get_username())
    label = f"{issuer}:{username}" if issuer else username
    params = urlencode(
        {
            "secret": _base32(device),
            "algorithm": "SHA1",
            "digits": device.digits,
            "period": device.step,
        }
    )
    if issuer:
        params += f"&issuer={quote(issuer)}"
    return f"otpauth://totp/{quote(label)}?{params}"


def qr_svg(device: TOTPDevice) -> SafeString:
    """The device's :func:`config_uri` as an inline SVG QR code, safe to put in a page.

    segno writes only numbers, fixed attribute names and the escaped title; the secret is in
    the drawn modules, never in the markup. No ``style`` attribute, so a strict
    Content-Security-Policy applies; a white quiet zone, so it scans on a dark page too.
    """
    label = _("QR code for your authenticator app")
    svg = segno.make(config_uri(device), error="m").svg_inline(
        scale=4, title=label, svgclass="pk-qr", lineclass=None, light="#fff", dark="#000"
    )
    # Named for assistive technology: role="img" makes the <title> (or this label) its name.
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    return mark_safe(svg)  # segno's own markup: see the docstring


# ---------------------------------------------------------------------------------------------
# State, for the enrolment page and the "Sign-in and security" page
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpState:
    """Where a user stands with the authenticator app, for a page or a card."""

    #: ``"none"``, ``"pending"`` (set up but not confirmed yet) or ``"confirmed"``.
    status: Literal["none", "pending", "confirmed"]
    #: When the confirmed app was added (``None`` unless confirmed).
    created_at: datetime | None
    #: When a code from it was last accepted (``None`` if never, or unless confirmed).
    last_used_at: datetime | None
    #: What the user can do next, translated.
    next_step: str

    @property
    def enabled(self) -> bool:
        """Whether codes from an authenticator app are accepted for this user."""
        return self.status == "confirmed"


def totp_state(user: AbstractBaseUser) -> TotpState:
    """``user``'s :class:`TotpState` (one query)."""
    devices: list[Any] = list(
        TOTPDevice.objects.filter(user_id=user.pk)
        .order_by("-confirmed", "pk")
        .values("confirmed", "created_at", "last_used_at")[:1]
    )
    if not devices:
        return TotpState(
            "none", None, None, _("Add an authenticator app as another way to prove it's you.")
        )
    device = devices[0]
    if not device["confirmed"]:
        return TotpState(
            "pending", None, None, _("Finish setting up your authenticator app: enter a code.")
        )
    return TotpState(
        "confirmed",
        device["created_at"],
        device["last_used_at"],
        _("Your authenticator app is set up. You can replace or remove it."),
    )
