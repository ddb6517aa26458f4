"""Browsers as a person reads them: real User-Agent headers of each family the table names."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from django_passkeys import user_agents

#: Real headers, one or more per family, with what a person should read.
HEADERS = [
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome on Linux",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15",
        "Safari on macOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Safari on iOS",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/131.0 Mobile/15E148 Safari/604.1",
        "Chrome on iOS",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Edge on Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0",
        "Opera on Windows",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "Samsung Internet on Android",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox on Linux",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
        "Firefox on iOS",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Chrome on ChromeOS",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/130.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
        "Vivaldi on Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/128.0.0.0 YaBrowser/24.10.0.0 Safari/537.36",
        "Yandex Browser on Windows",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
        "Chrome/131.0.6778.39 Mobile DuckDuckGo/5 Safari/537.36",
        "DuckDuckGo on Android",
    ),
    # The other token of a row: mobile Edge, Opera on iOS, DuckDuckGo's Mac app, an iPod.
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
        "Edge on Android",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15",
        "Edge on iOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.0 OPiOS/5.0.0 Mobile/15E148 Safari/604.1",
        "Opera on iOS",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.1 Safari/605.1.15 Ddg/18.1",
        "DuckDuckGo on macOS",
    ),
    (
        "Mozilla/5.0 (iPod touch; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/15.6 Mobile/15E148 Safari/604.1",
        "Safari on iOS",
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        "Firefox on Android",
    ),
]


@pytest.mark.parametrize(("header", "expected"), HEADERS)
def test_real_headers_read_as_browser_on_system(header, expected):
    assert user_agents.describe(header) == expected
    assert user_agents.label(header) == expected


def test_every_row_of_the_tables_is_read_from_a_real_header():
    # A row added to a table without a real header here would go untested.
    read = [user_agents.parse(header) for header, _ in HEADERS]
    assert {name for name, _ in user_agents._BROWSERS} == {parsed.browser for parsed in read}
    assert {name for name, _ in user_agents._SYSTEMS} == {parsed.system for parsed in read}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", "Unknown browser on unknown system"),
        ("curl/8.5.0", "Unknown browser on unknown system"),
        ("Mozilla/5.0 (X11; Linux x86_64) SomethingNew/1.0", "Unknown browser on Linux"),
    ],
)
def test_what_is_not_recognised_says_so(header, expected):
    assert user_agents.describe(header) == expected


def test_a_list_shows_an_unrecognised_header_itself_cut_short():
    assert user_agents.label("curl/8.5.0") == "curl/8.5.0"
    assert user_agents.label("") == ""
    long = "x" * 300
    assert user_agents.label(long) == "x" * 79 + "…"
    assert len(user_agents.label(long, max_length=20)) == 20


def test_only_the_start_of_a_huge_header_is_read():
    # Real headers are a few hundred characters: the parser never scans megabytes.
    assert user_agents.parse("x" * 1_000_000 + " Firefox/1.0 Windows").browser == ""


def test_the_template_filter_labels_a_browser():
    template = Template("{% load passkeys %}{{ ua|browser_label }}|{{ none|browser_label }}")
    rendered = template.render(Context({"ua": HEADERS[0][0], "none": None}))
    assert rendered == "Chrome on Linux|"
