"""Recovery codes: single-use second factors a user keeps for the day every passkey is gone.

How they are stored, and why:

- One :class:`~django_passkeys.models.RecoveryCodeDevice` per user (a django-otp device, so
  django-otp's ``devices_for_user`` and forms see it) and one
  :class:`~django_passkeys.models.RecoveryCode` row per code. A row per code lets a code be spent
  with one conditional ``UPDATE ... WHERE used_at IS NULL``: the database serialises two
  requests spending the same code, and exactly one of them updates the row. Digests kept in a
  list on the device would need the device row locked on every use instead. Used rows stay (with
  ``used_at``) until the next set replaces them all, so the page can count what is left.
- A code is 24 Crockford base32 characters from :mod:`secrets`: 120 bits, shown as
  ``XXXX-XXXX-XXXX-XXXX-XXXX-XXXX``: above the 112 bits ASVS 5.0 V6.5.2 asks of a lookup
  secret stored without a password hash. Input is accepted in either case, with or without
  dashes and spaces, and the usual confusables are read as Crockford reads them (O as 0, I and
  L as 1).
- Only an HMAC-SHA256 of each code is stored, keyed with a random 32-byte salt per device, and
  the code itself is kept nowhere: not in the database, the session, the logs or the audit trail.
  With 120 bits of entropy no hash speed makes guessing feasible, so a slow KDF (PBKDF2, Argon2)
  would only cost CPU on every attempt. ``SECRET_KEY`` is deliberately not mixed in: rotating it
  would silently invalidate every user's codes.
- Checking a code compares its digest with every unused digest of the device with
  :func:`hmac.compare_digest`, without stopping at a match, so the time taken does not depend on
  which code matched or how much of a digest did.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import RecoveryCode, RecoveryCodeDevice, new_recovery_salt

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "LOW_REMAINING",
    "RecoveryCodesState",
    "consume",
    "digest",
    "locked_device",
    "new_code",
    "normalize",
    "recovery_codes_state",
    "replace_codes",
    "spend",
    "state_of",
]

#: Crockford's base32: digits and letters without I, L, O and U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Characters of a code: 24 x 5 bits = 120 bits of entropy (ASVS 5.0 V6.5.2: at least 112).
CODE_LENGTH = 24
#: Characters between two dashes when a code is shown.
GROUP = 4
#: At this many unused codes or fewer, the page warns and suggests a new set.
LOW_REMAINING = 2
#: Longest input looked at: a code with a separator after every character, and some spaces.
MAX_INPUT_LENGTH = 64

_CODE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
_SEPARATORS = re.compile(r"[-\s]")
#: Crockford base32 decoding: the letters people mistake for digits are those digits.
_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A new random code, grouped for reading: ``XXXX-XXXX-XXXX-XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def normalize(value: object) -> str | None:
    """``value`` as the 24 characters a code is hashed from, or ``None`` if it cannot be one.

    Case, dashes and whitespace do not matter; O reads as 0, I and L as 1. Anything but ASCII is
    refused before case folding, so that no other script's digits or letters (``"١"``, ``"ı"``)
    can stand for a code's characters.
    """
    if not isinstance(value, str) or len(value) > MAX_INPUT_LENGTH or not value.isascii():
        return None
    compact = _SEPARATORS.sub("", value).upper().translate(_CONFUSABLES)
    return compact if _CODE.fullmatch(compact) else None


def digest(salt: bytes, normalized: str) -> str:
    """The stored form of a normalised code: HMAC-SHA256 keyed with the device's salt, in hex."""
    return hmac.new(salt, normalized.encode("ascii"), hashlib.sha256).hexdigest()


def locked_device(user: Any) -> tuple[RecoveryCodeDevice, bool]:
    """``user``'s device, locked until the transaction ends; created (without codes) if new.

    Call inside ``transaction.atomic()``. Returns the device and whether it was created; two
    requests creating one at once end with one device (the unique constraint on ``user``).
    """
    device: RecoveryCodeDevice
    created: bool
    device, created = RecoveryCodeDevice.objects.select_for_update().get_or_create(
        user=user, defaults={"name": "Recovery codes"}
    )
    return device, created


def replace_codes(device: RecoveryCodeDevice, count: int) -> list[str]:
    """Give ``device`` ``count`` new codes, and return them: the only time they exist in clear.

    Every previous code of the device, used or not, is deleted, and the salt is new. Call with
    the device locked (:func:`locked_device`), in the transaction that locked it.
    """
    codes: list[str] = []
    while len(codes) < count:
        code = new_code()
        if code not in codes:  # 80 bits never collide in practice; a set still must not repeat
            codes.append(code)
    device.salt = new_recovery_salt()
    device.generation += 1
    device.generated_at = timezone.now()
    device.confirmed = True
    device.save(update_fields=["salt", "generation", "generated_at", "confirmed"])
    device.codes.all().delete()
    salt = bytes(device.salt)
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, digest=digest(salt, str(normalize(code)))) for code in codes
    )
    return codes


def consume(device: RecoveryCodeDevice, token: object) -> int | None:
    """Spend ``token`` if it is one of ``device``'s unused codes: how many remain, else ``None``.

    Race-free: of two requests spending the same code at once, one gets ``None``.
    """
    code = normalize(token)
    if code is None:
        return None
    candidate = digest(bytes(device.salt), code)
    match = None
    for pk, stored in device.codes.filter(used_at__isnull=True).values_list("pk", "digest"):
        # No break: every unused digest is compared, whichever matches.
        if hmac.compare_digest(stored, candidate):
            match = pk
    if match is None or not spend(match):
        return None
    now = timezone.now()
    RecoveryCodeDevice.objects.filter(pk=device.pk).update(last_used_at=now)
    device.last_used_at = now
    remaining: int = device.codes.filter(used_at__isnull=True).count()
    return remaining


def spend(code_pk: int) -> bool:
    """Mark the code ``code_pk`` used, unless it already is; whether this call marked it.

    The single-use guarantee: one conditional UPDATE. Of two requests spending one code at
    once, the database lets one update the row; the other finds ``used_at`` set and changes
    nothing.
    """
    updated = RecoveryCode.objects.filter(pk=code_pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    return updated == 1


@dataclass(frozen=True)
class RecoveryCodesState:
    """What a page or a security summary shows about a user's recovery codes."""

    #: Whether the user has generated a set (even one whose codes are all used).
    enabled: bool
    #: Unused codes.
    remaining: int
    #: When the current set was generated, or ``None``.
    created_at: datetime | None
    #: What the user should do next, in a sentence.
    next_step: str
    #: Sets generated so far (0: none); a form names the set it showed with it.
    generation: int = 0

    @property
    def low(self) -> bool:
        """A set with :data:`LOW_REMAINING` unused codes or fewer: time for a new one."""
        return self.enabled and self.remaining <= LOW_REMAINING


def state_of(device: RecoveryCodeDevice | None, remaining: int) -> RecoveryCodesState:
    """The state of ``device`` (``None``: no codes yet) with ``remaining`` unused codes."""
    if device is None or device.generation == 0:
        return RecoveryCodesState(
            enabled=False,
            remaining=0,
            created_at=None,
            next_step=_("Set up recovery codes so you can get back in if you lose your devices."),
        )
    if remaining == 0:
        next_step = _("You have used all your recovery codes. Generate a new set.")
    elif remaining <= LOW_REMAINING:
        next_step = ngettext(
            "Only %(count)d recovery code is left. Generate a new set.",
            "Only %(count)d recovery codes are left. Generate a new set.",
            remaining,
        ) % {"count": remaining}
    else:
        next_step = _("Keep your recovery codes somewhere safe, away from your devices.")
    return RecoveryCodesState(
        enabled=True,
        remaining=remaining,
        created_at=device.generated_at,
        next_step=next_step,
        generation=device.generation,
    )


def recovery_codes_state(user: Any) -> RecoveryCodesState:
    """``user``'s recovery codes: set or not, how many remain, since when, what to do next.

    One query.
    """
    device = (
        RecoveryCodeDevice.objects.filter(user_id=user.pk)
        .annotate(unused=Count("codes", filter=Q(codes__used_at__isnull=True)))
        .first()
    )
    return state_of(device, device.unused if device is not None else 0)
