from __future__ import annotations

from django_passkeys.models import AuthEvent, Credential


def test_register_then_login_over_http(api, user, authenticator, register):
    response = register(user, authenticator)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "created_at"}
    credential = Credential.objects.get()
    assert credential.user == user
    assert bytes(credential.credential_id) == authenticator.credential_id

    api.client.logout()
    options = api.post("/auth/passkey/login/options").json()
    assert options["allowCredentials"] == []
    response = api.post("/auth/passkey/login/verify", authenticator.get(options))
    assert response.status_code == 200, response.content
    # Django's default LOGIN_REDIRECT_URL is no page of the test project: the security page.
    assert response.json()["redirect"] == "/auth/passkey/security/"
    assert api.client.session["_auth_user_id"] == str(user.pk)
    assert AuthEvent.objects.filter(success=True).count() == 2
