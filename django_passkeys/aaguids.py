"""Authenticator providers by AAGUID, from the community ``passkey-authenticator-aaguids`` list.

The list maps an AAGUID to ``{"name", "icon_light", "icon_dark"}``, the icons being ``data:``
URIs or empty. It lives in ``PASSKEYS_AAGUID_FILE`` (by default the copy shipped in
``django_passkeys/data/``); ``manage.py passkeys_update_aaguids --from FILE`` installs a newer
one. A missing, empty or unreadable list only means that providers show as unknown.
"""

from __future__ import annotations

import base64
import binascii
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
    """A passkey provider (password manager, platform or security key family)."""

    aaguid: str
    name: str
    icon_light: str = ""
    icon_dark: str = ""

    @property
    def has_icon(self) -> bool:
        """Whether the list carries an icon for this provider."""
        return bool(self.icon_light or self.icon_dark)

    def icon(self, variant: Variant) -> str:
        """The ``data:`` URI for ``variant``, falling back to the other variant."""
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
    return Provider(aaguid=aaguid, name=name.strip()[:100], **icons)


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


def providers(path: str | None = None) -> Mapping[str, Provider]:
    """Providers from ``path`` (default ``PASSKEYS_AAGUID_FILE``), re-read when the file changes."""
    path = path or conf.PASSKEYS_AAGUID_FILE
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


def provider_for(aaguid: Any) -> Provider | None:
    """The provider of the authenticator with ``aaguid``, or ``None`` when unknown."""
    try:
        key = str(uuid.UUID(str(aaguid)))
    except ValueError:
        return None
    if key == ZERO_AAGUID:
        return None
    return providers().get(key)


def install(
    source: str | os.PathLike[str], destination: str | os.PathLike[str] | None = None
) -> int:
    """Validate the list in ``source`` and atomically replace ``destination`` with it.

    Returns the number of providers installed; raises :class:`InvalidAaguidList` or ``OSError``.
    """
    target = Path(destination or conf.PASSKEYS_AAGUID_FILE)
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
