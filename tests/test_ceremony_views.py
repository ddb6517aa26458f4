"""``login/verify`` answers a redirect: the requested ``next`` when same-site, else the default."""

from __future__ import annotations

import pytest

from .support import enroll


@pytest.fixture
def sign_in(api, user, authenticator):
    enroll(user, authenticator, api=api)

    def _sign_in(next_in_body=None, query=""):
        options = api.post("/auth/passkey/login/options").json()
        body = authenticator.get(options)
        if next_in_body is not None:
            body["next"] = next_in_body
        response = api.post(f"/auth/passkey/login/verify{query}", body)
        assert response.status_code == 200, response.content
        api.client.logout()
        return response.json()["redirect"]

    return _sign_in


def test_same_site_next_is_followed(sign_in):
    assert sign_in("/account/?tab=keys") == "/account/?tab=keys"
    assert sign_in(query="?next=/orders/") == "/orders/"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "http://testserver/plain-http", 42]
)
def test_other_sites_and_odd_values_get_the_configured_redirect(sign_in, settings, target):
    settings.PASSKEYS_LOGIN_REDIRECT_URL = "/welcome/"
    assert sign_in(target) == "/welcome/"
