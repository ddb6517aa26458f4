"""Passkeys satisfy django-otp: a site with ``OTPMiddleware`` and ``otp_required`` views accepts
passkey sign-ins without a line of its own code."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from django_passkeys import flows
from django_passkeys.models import Credential

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import ApiClient, enroll, passkey_login

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.otp_urls")]


@pytest.fixture(autouse=True)
def _otp_middleware(settings):
    middleware = list(settings.MIDDLEWARE)
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    middleware.insert(auth + 1, "django_otp.middleware.OTPMiddleware")
    settings.MIDDLEWARE = middleware


def test_otp_required_view_accepts_a_passkey_sign_in():
    user = UserFactory()
    authenticator = SoftAuthenticator()
    credential = enroll(user, authenticator)
    api = passkey_login(authenticator)
    response = api.client.get("/protected/", secure=True)
    assert response.status_code == 200
    assert response.content.decode() == f"verified with {credential.persistent_id}"


def test_otp_required_view_refuses_a_password_only_sign_in():
    user = UserFactory()
    user.set_password("pw-for-the-test")
    user.save()
    api = ApiClient()
    assert api.client.login(username=user.get_username(), password="pw-for-the-test")
    response = api.client.get("/protected/", secure=True)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_step_up_reauthentication_verifies_a_password_session():
    user = UserFactory()
    user.set_password("pw-for-the-test")
    user.save()
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    api = ApiClient()
    assert api.client.login(username=user.get_username(), password="pw-for-the-test")
    assert api.client.get("/protected/", secure=True).status_code == 302
    options = api.post("/auth/passkey/reauth/options").json()
    assert api.post("/auth/passkey/reauth/verify", authenticator.get(options)).status_code == 200
    assert api.client.get("/protected/", secure=True).status_code == 200


def test_a_revoked_passkey_loses_the_verification():
    user = UserFactory()
    authenticator = SoftAuthenticator()
    credential = enroll(user, authenticator)
    api = passkey_login(authenticator)
    assert api.client.get("/protected/", secure=True).status_code == 200
    flows.revoke(Credential.objects.get(pk=credential.pk))
    assert api.client.get("/protected/", secure=True).status_code == 302


def test_a_revoked_passkey_is_an_unconfirmed_device():
    credential = enroll(UserFactory(), SoftAuthenticator())
    assert credential.confirmed is True
    assert list(Credential.objects.devices_for_user(credential.user, confirmed=True)) == [
        credential
    ]
    flows.revoke(credential)
    credential.refresh_from_db()
    assert credential.confirmed is False
    assert not Credential.objects.devices_for_user(credential.user, confirmed=True).exists()
    assert Credential.objects.devices_for_user(credential.user, confirmed=False).get() == credential
    assert Credential.objects.devices_for_user(credential.user).count() == 1


def test_otp_admin_site_accepts_a_passkey_staff_session():
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_credential"))
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    api = passkey_login(authenticator)
    assert api.client.get("/otp-admin/", secure=True).status_code == 200


def test_otp_admin_site_refuses_a_password_only_staff_session():
    user = UserFactory(is_staff=True)
    user.set_password("pw-for-the-test")
    user.save()
    api = ApiClient()
    assert api.client.login(username=user.get_username(), password="pw-for-the-test")
    response = api.client.get("/otp-admin/", secure=True)
    assert response.status_code == 302


def test_sign_in_without_otp_middleware_still_works(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "django_otp" not in m]
    user = UserFactory()
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    api = passkey_login(authenticator)
    assert api.client.get("/auth/passkey/manage/", secure=True).status_code == 200
