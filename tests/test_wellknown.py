"""``/.well-known/webauthn``: published only when related origins are configured."""

from __future__ import annotations

import pytest

URL = "/.well-known/webauthn"


def test_not_found_without_related_origins(client):
    assert client.get(URL).status_code == 404


def test_publishes_related_origins_as_json(client, settings):
    settings.PASSKEYS_RELATED_ORIGINS = ["https://example.org", "https://example.net"]
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"origins": ["https://example.org", "https://example.net"]}
    assert response["Cache-Control"] == "public, max-age=3600"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_only_get_is_allowed(client, settings, method):
    settings.PASSKEYS_RELATED_ORIGINS = ["https://example.org"]
    assert getattr(client, method)(URL).status_code == 405
