"""A browser and its operating system, in a few words, from a User-Agent header.

Used where a person must recognise a browser: a signed-in device asked to approve an account
recovery shows "Firefox on Windows" (and the address and the time), so that its owner can tell
their own new phone from someone else's laptop.

Why a tiny built-in parser and not the ``ua-parser`` package: ``ua-parser`` (1.x, with its
regexes in ``ua-parser-builtins``, updated monthly) is kept, maintained and widely used, and it
names thousands of browsers and devices exactly. Here that precision buys nothing: the text
is a hint for a human, never a security decision (a User-Agent is whatever the client sends),
and the browsers that can recover an account at all are the few WebAuthn-capable families
listed below. ``ua-parser``'s pure-Python matcher runs hundreds of regexes per string unless
one more native accelerator is installed, and it would be a third-party dependency, with its
data release cycle, for one line of text. So: an ordered table of the common families, and
"Unknown browser" / "unknown system" for anything else. Review the table when a major browser
changes its token (Edge's ``Edg/``, Opera's ``OPR/``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

__all__ = ["BrowserDescription", "describe", "parse"]

#: Browsers, first match wins: tokens that hide behind others (Edge and Opera send "Chrome",
#: Chrome sends "Safari") come before the ones they imitate.
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\b(?:Edg|EdgA|EdgiOS)/")),
    ("Opera", re.compile(r"\b(?:OPR|OPiOS)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
)
#: Operating systems, first match wins: Android and ChromeOS say "Linux", iPadOS may say "Mac".
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
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
    browser = next((name for name, pattern in _BROWSERS if pattern.search(text)), "")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(text)), "")
    return BrowserDescription(browser=browser, system=system)


def describe(user_agent: str) -> str:
    """``user_agent`` as a person reads it: "Chrome on Android", "Unknown browser on Linux"."""
    return str(parse(user_agent))
