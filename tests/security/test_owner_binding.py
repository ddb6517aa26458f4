"""No edit can move a passkey between accounts (security rule 10).

The attack: staff with only the "change passkey" permission move their own passkey to a
superuser, ask ``login/options`` with the superuser's e-mail and sign the challenge without a
userHandle. The admin no longer edits the owner, and the ceremony refuses a credential whose
stored owner binding (the registering account's user handle) is not its owner's handle.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from django_passkeys import ceremonies
from django_passkeys.admin import CredentialAdmin
from django_passkeys.errors import Reason
from django_passkeys.models import Credential, UserHandle
from tests.authenticator import SoftAuthenticator
from tests.factories import UserFactory
from tests.support import LOGIN_VERIFY, assert_rejected, enroll, login_options
from tests.test_ceremonies import session_request

VICTIM_EMAIL = "root@example.com"


@pytest.fixture
def superuser(db: Any) -> Any:
    return UserFactory(email=VICTIM_EMAIL, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_passkey(api: Any, db: Any, authenticator: SoftAuthenticator) -> Credential:
    """A staff member's passkey (``authenticator``); they may change passkeys, nothing else."""
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_credential"))
    return enroll(user, authenticator, api=api)


def staff_client(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


# -- the admin ------------------------------------------------------------------------------------


def test_admin_change_form_cannot_move_a_passkey_to_another_account(staff_passkey, superuser):
    client = staff_client(staff_passkey.user)
    url = reverse("admin:django_passkeys_credential_change", args=[staff_passkey.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="user"' not in page.content
    assert b'name="name"' in page.content

    response = client.post(url, {"user": superuser.pk, "name": "Renamed", "_save": "Save"})

    assert response.status_code == 302, response.content
    stored = Credential.objects.get(pk=staff_passkey.pk)
    assert stored.user_id == staff_passkey.user.pk
    assert stored.name == "Renamed"  # the one field the admin edits


def test_admin_edits_only_the_name(rf, admin_user, superuser):
    # Whatever fields the model grows, the admin form holds the name and nothing else.
    credential = Credential.objects.create(user=superuser, credential_id=b"x", public_key=b"k")
    request = rf.get("/")
    request.user = admin_user
    model_admin = CredentialAdmin(Credential, admin.site)
    form = model_admin.get_form(request, credential)
    assert set(form.base_fields) == {"name"}
    readonly = set(model_admin.get_readonly_fields(request, credential))
    for field in ("user", "sign_count", "aaguid", "backup_eligible", "attestation_format"):
        assert field in readonly


# -- the ceremony -------------------------------------------------------------------------------


@pytest.fixture
def moved(
    staff_passkey: Credential, authenticator: SoftAuthenticator, superuser: Any
) -> SoftAuthenticator:
    """The staff member's passkey, moved to the superuser as a database edit (or the old admin)
    could move it."""
    Credential.objects.filter(pk=staff_passkey.pk).update(user=superuser)
    return authenticator


@pytest.mark.parametrize("send_handle", ["omitted", "new_owner"])
def test_moved_passkey_cannot_sign_in_as_its_new_owner(
    api, moved, superuser, unchanged, send_handle
):
    UserHandle.objects.create(user=superuser)  # the victim has passkeys elsewhere, or had
    options = login_options(api, VICTIM_EMAIL)
    listed = [entry["id"] for entry in options["allowCredentials"]]
    assert len(listed) == 1  # the moved passkey is offered for the victim's account
    handle = (
        None if send_handle == "omitted" else bytes(UserHandle.objects.get(user=superuser).handle)
    )
    assertion = moved.get(options, user_handle=handle)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_HANDLE_MISMATCH)
    assert "_auth_user_id" not in api.client.session


def test_moved_passkey_cannot_sign_in_discoverably(api, moved, superuser, unchanged):
    victim_handle = bytes(UserHandle.objects.create(user=superuser).handle)
    assertion = moved.get(login_options(api), user_handle=victim_handle)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_HANDLE_MISMATCH)
    assert "_auth_user_id" not in api.client.session


def test_moved_passkey_to_an_account_without_a_handle_is_refused(api, moved, unchanged):
    assertion = moved.get(login_options(api, VICTIM_EMAIL), user_handle=None)
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_HANDLE_MISMATCH)


def test_registration_binds_the_credential_to_its_owners_handle(api, staff_passkey, authenticator):
    stored = Credential.objects.get(pk=staff_passkey.pk)
    assert bytes(stored.user_handle) == bytes(
        UserHandle.objects.get(user=staff_passkey.user).handle
    )
    # The binding is still accepted: the owner signs in, with and without a userHandle.
    for handle in (True, None):
        api.client.logout()
        options = login_options(api, staff_passkey.user.email)
        response = api.post(LOGIN_VERIFY, authenticator.get(options, user_handle=handle))
        assert response.status_code == 200, response.content


def test_credential_without_a_binding_never_authenticates(
    api, staff_passkey, authenticator, unchanged
):
    Credential.objects.filter(pk=staff_passkey.pk).update(user_handle=b"")
    assertion = authenticator.get(login_options(api))
    with unchanged():
        response = api.post(LOGIN_VERIFY, assertion)
    assert_rejected(response, Reason.USER_HANDLE_MISMATCH)


def test_registered_record_holds_the_binding_as_bytes(db):
    # The INSERT reads the handle itself; the returned record reads it back, not an expression.
    user = UserFactory()
    request = session_request()
    options = ceremonies.registration_options(request, user)
    record = ceremonies.verify_registration(request, user, SoftAuthenticator().create(options))
    assert bytes(record.user_handle) == bytes(UserHandle.objects.get(user=user).handle)
