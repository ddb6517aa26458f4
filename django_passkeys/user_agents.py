"""A browser and its operating system, in a few words, from a User-Agent header.

Used wherever a person must recognise a browser, with one parser for all of them: the sessions
page ("Chrome on Linux" rather than the header), the default name of a new passkey, the
e-mails about account changes, and a signed-in device asked to approve an account recovery
(so that its owner can tell their own new phone from someone else's laptop).

Why a small built-in table and not the ``ua-parser`` package. ``ua-parser`` (1.x, its regexes
in ``ua-parser-builtins``, released monthly) is kept, widely used and names thousands of
browsers and devices. Measured here (1.0.2 with builtins 202610, Python 3.11): importing it
takes ~0.1 s; the first parse in a process ~0.9 s, compiling about a thousand regexes; then
~0.7 ms per new string. Its optional native matcher (``ua-parser[regex]``, a 3.2 MB binary
wheel per platform) brings that to ~0.2 s and ~35 µs. Its families still need translating for
a person ("Mobile Safari", "Chrome Mobile iOS", "Mac OS X", "Ubuntu"), so a table of names
stays either way. And what it would add is precision this text cannot use: since Chrome's
User-Agent reduction, versions and device models are frozen or absent, and what is left to
read reliably is the browser family and the system family, which this table gives in ~20 µs
with no dependency and no data release to follow. The text is a hint for a human, never a
security decision (a User-Agent is whatever the client sends). So: an ordered table of the
WebAuthn-capable families, and "Unknown browser" / "unknown system" for anything else. Review
it when a browser changes its token (Edge's ``Edg/``, Opera's ``OPR/``); a test holds real
headers of each family.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

__all__ = ["BrowserDescription", "describe", "label", "parse"]

#: An ordered table of one kind of name: the first row whose pattern is found gives the name.
_Table = tuple[tuple[str, re.Pattern[str]], ...]


def _table(*rows: tuple[str, str]) -> _Table:
    """``rows`` of (name, regular expression), compiled once, at import."""
    return tuple((name, re.compile(pattern)) for name, pattern in rows)


#: Browsers, first match wins: tokens that hide behind others (Edge and Opera send "Chrome",
#: Chrome sends "Safari") come before the ones they imitate.
_BROWSERS = _table(
    ("Edge", r"\b(?:Edg|EdgA|EdgiOS)/"),
    ("Opera", r"\b(?:OPR|OPiOS)/"),
    ("Samsung Internet", r"\bSamsungBrowser/"),
    ("Vivaldi", r"\bVivaldi/"),
    ("Yandex Browser", r"\bYaBrowser/"),
    ("DuckDuckGo", r"\b(?:DuckDuckGo|Ddg)/"),
    ("Firefox", r"\b(?:Firefox|FxiOS)/"),
    ("Chrome", r"\b(?:Chrome|CriOS)/"),
    ("Safari", r"\bVersion/[\d.]+.*\bSafari/"),
)
#: Operating systems, first match wins: Android and ChromeOS say "Linux", iPadOS may say "Mac".
_SYSTEMS = _table(
    ("iOS", r"\b(?:iPhone|iPad|iPod)\b"),
    ("Android", r"\bAndroid\b"),
    ("ChromeOS", r"\bCrOS\b"),
    ("Windows", r"\bWindows\b"),
    ("macOS", r"\bMac OS X\b|\bMacintosh\b"),
    ("Linux", r"\bLinux\b"),
)
#: Longest header looked at: real ones are a few hundred characters.
_MAX_LENGTH = 512


@dataclass(frozen=True)
class BrowserDescription:
    """A browser family and an operating system; empty strings when not recognised."""

    browser: str
    system: str

    def __str__(self) -> str:
        browser = self.browser or _("Unknown browser")
        system = self.system or _("unknown system")
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}


def parse(user_agent: str) -> BrowserDescription:
    """The browser family and system named by ``user_agent``."""
    text = user_agent[:_MAX_LENGTH]
    return BrowserDescription(
        browser=_first_match(_BROWSERS, text), system=_first_match(_SYSTEMS, text)
    )


def _first_match(table: _Table, text: str) -> str:
    """The name of the first row of ``table`` found in ``text``; "" when none is."""
    return next((name for name, pattern in table if pattern.search(text)), "")


def describe(user_agent: str) -> str:
    """``user_agent`` as a person reads it: "Chrome on Android", "Unknown browser on Linux"."""
    return str(parse(user_agent))


def label(user_agent: str, max_length: int = 80) -> str:
    """What a list shows for a browser: :func:`describe` when the browser or the system is
    recognised, else the header itself, cut to ``max_length`` (a command-line client or a bot
    says more about itself that way than "Unknown browser"); "" for no header."""
    parsed = parse(user_agent)
    if parsed.browser or parsed.system:
        return str(parsed)
    text = user_agent.strip()
    return text if len(text) <= max_length else text[: max_length - 1] + "…"
