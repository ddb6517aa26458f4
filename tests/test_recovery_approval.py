"""Recovery approved elsewhere: from a device where the user is signed in (fresh passkey and the
code the recovering browser shows), or by staff in the admin (assisted recovery)."""

from __future__ import annotations

import time

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.core import mail

from django_passkeys.errors import Reason
from django_passkeys.models import AuthEvent, RecoveryRequest
from django_passkeys.sessions import ASSERTION_TIME_KEY

from .factories import UserFactory
from .recovery_support import (
    APPROVALS,
    CONTINUE,
    DONE,
    STATUS,
    VERIFY,
    approve_url,
    deny_url,
    displayed_code,
    notices,
    signed_in_device,
    signed_in_user_id,
    start,
)
from .support import ApiClient, assert_rejected

pytestmark = pytest.mark.django_db

State = RecoveryRequest.State
ADMIN_CHANGELIST = "/admin/django_passkeys/recoveryrequest/"


def pending() -> RecoveryRequest:
    return RecoveryRequest.objects.get(state=State.APPROVAL_PENDING)


def test_the_recovering_browser_shows_a_code_and_waits(api, user, device):
    start(api, user)
    html = api.client.get(VERIFY, secure=True).content.decode()
    assert 'value="device"' in html  # offered: the user is signed in elsewhere, with a passkey
    api.post(VERIFY, {"method": "device"})
    html = api.client.get(VERIFY, secure=True).content.decode()
    code = displayed_code(api)
    assert len(code) == 6
    assert 'data-pk-poll="/auth/passkey/recover/status"' in html
    assert 'data-pk-state="approval_pending"' in html
    rr = pending()
    assert rr.approval_code_sha256 and code not in rr.approval_code_sha256
    assert api.client.get(STATUS, secure=True).json() == {
        "state": "approval_pending",
        "ready": False,
    }


def test_device_approval_is_not_offered_without_another_signed_in_device(api, user):
    from .factories import CredentialFactory

    CredentialFactory(user=user)  # a passkey, but no session anywhere
    start(api, user)
    assert_rejected(api.post(VERIFY, {"method": "device"}), Reason.SECOND_FACTOR_INVALID)
    assert RecoveryRequest.objects.get().state == State.LINK_OPENED


def test_the_security_page_and_the_approvals_page_list_the_pending_approval(recovering, device):
    security = device.client.get("/auth/passkey/security/", secure=True).content.decode()
    assert "Someone is recovering your account" in security
    assert 'href="/auth/passkey/recover/approvals/"' in security
    page = device.client.get(APPROVALS, secure=True).content.decode()
    rr = pending()
    assert f'action="/auth/passkey/recover/approvals/{rr.pk}/approve" data-pk-reauth' in page
    assert f'action="/auth/passkey/recover/approvals/{rr.pk}/deny"' in page
    assert '"reauthOptions": "/auth/passkey/reauth/options"' in page


def test_approving_with_the_code_lets_the_waiting_browser_sign_in(
    recovering, device, user, django_capture_on_commit_callbacks
):
    code = displayed_code(recovering)
    rr = pending()
    response = device.post(approve_url(rr.pk), {"code": code[:3] + " " + code[3:]})
    assert response.status_code == 200, response.content
    rr.refresh_from_db()
    assert (rr.state, rr.approved_by_id) == (State.APPROVED, user.pk)
    assert signed_in_user_id(recovering) is None  # not yet: the waiting browser continues
    assert recovering.client.get(STATUS, secure=True).json() == {"state": "approved", "ready": True}
    with django_capture_on_commit_callbacks(execute=True):
        response = recovering.post(CONTINUE)
    assert response.json() == {"redirect": DONE}
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.COMPLETED, "device")
    assert str(signed_in_user_id(recovering)) == str(user.pk)
    assert notices() == ["[Test site] Your account was recovered"]


def test_approval_needs_a_fresh_passkey_assertion(recovering, device):
    session = device.client.session
    session[ASSERTION_TIME_KEY] = int(time.time()) - 3600
    session.save()
    code = displayed_code(recovering)
    assert_rejected(
        device.post(approve_url(pending().pk), {"code": code}), Reason.REAUTHENTICATION_REQUIRED
    )
    assert pending().factor_attempts == 0


def test_a_password_session_cannot_approve(recovering, user):
    password_session = ApiClient()
    password_session.login(user)  # recent sign-in, but no passkey assertion
    code = displayed_code(recovering)
    assert_rejected(
        password_session.post(approve_url(pending().pk), {"code": code}),
        Reason.REAUTHENTICATION_REQUIRED,
    )
    assert pending().state == State.APPROVAL_PENDING


def test_another_account_cannot_approve(recovering):
    stranger, _ = signed_in_device(UserFactory())
    code = displayed_code(recovering)
    assert_rejected(stranger.post(approve_url(pending().pk), {"code": code}), Reason.NOT_FOUND)
    assert pending().factor_attempts == 0
    assert (
        "Someone is recovering"
        not in stranger.client.get("/auth/passkey/security/", secure=True).content.decode()
    )


def test_a_wrong_code_is_refused_and_counted(recovering, device, settings):
    settings.PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS = 2
    code = displayed_code(recovering)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    rr = pending()
    assert_rejected(device.post(approve_url(rr.pk), {"code": wrong}), Reason.SECOND_FACTOR_INVALID)
    assert pending().factor_attempts == 1
    assert_rejected(device.post(approve_url(rr.pk), {"code": wrong}), Reason.SECOND_FACTOR_INVALID)
    rr.refresh_from_db()
    assert rr.state == State.FAILED
    assert_rejected(device.post(approve_url(rr.pk), {"code": code}), Reason.NOT_FOUND)
    assert_rejected(recovering.post(CONTINUE), Reason.RECOVERY_TOKEN_INVALID)


def test_denying_ends_the_recovery_and_notifies(
    recovering, device, user, django_capture_on_commit_callbacks
):
    rr = pending()
    with django_capture_on_commit_callbacks(execute=True):
        response = device.post(deny_url(rr.pk))
    assert response.json() == {"state": State.DENIED}
    rr.refresh_from_db()
    assert rr.state == State.DENIED
    assert notices() == ["[Test site] A recovery of your account was denied"]
    event = AuthEvent.objects.order_by("-pk").first()
    assert (event.event_type, event.reason_code) == ("recovery_approval", "recovery_denied")
    assert recovering.client.get(STATUS, secure=True).json() == {"state": "denied", "ready": False}
    assert_rejected(recovering.post(CONTINUE), Reason.RECOVERY_DENIED)
    assert "denied from a device" in recovering.client.get(VERIFY, secure=True).content.decode()
    assert signed_in_user_id(recovering) is None


def test_another_account_cannot_deny(recovering):
    stranger, _ = signed_in_device(UserFactory())
    assert_rejected(stranger.post(deny_url(pending().pk)), Reason.NOT_FOUND)
    assert pending().state == State.APPROVAL_PENDING


def test_approving_needs_a_signed_in_user(recovering):
    assert_rejected(
        ApiClient().post(approve_url(pending().pk), {"code": "123456"}), Reason.NOT_AUTHENTICATED
    )


def test_approving_by_form_post_comes_back_to_the_approvals_page(recovering, device):
    code = displayed_code(recovering)
    response = device.client.post(
        approve_url(pending().pk),
        {"code": code, "csrfmiddlewaretoken": device.csrf_token()},
        secure=True,
    )
    assert response.status_code == 303 and response["Location"] == APPROVALS
    assert RecoveryRequest.objects.get().state == State.APPROVED


def test_the_status_of_a_browser_without_a_recovery_is_none(api):
    assert api.client.get(STATUS, secure=True).json() == {"state": "none", "ready": False}


def test_the_status_is_rate_limited(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"recover-status": {"ip": "1/m"}}
    assert api.client.get(STATUS, secure=True).status_code == 200
    assert api.client.get(STATUS, secure=True).status_code == 429


def test_an_approval_does_not_carry_over_to_another_browser(recovering, device):
    code = displayed_code(recovering)
    device.post(approve_url(pending().pk), {"code": code})
    thief = ApiClient()
    assert thief.client.get(STATUS, secure=True).json()["state"] == "none"
    assert_rejected(thief.post(CONTINUE), Reason.RECOVERY_TOKEN_INVALID)


# ---------------------------------------------------------------------------------------------
# Assisted recovery: staff approve in the admin
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def admin(staff):
    client = ApiClient()
    client.client.force_login(staff)
    return client


def admin_action(admin, action: str, rr: RecoveryRequest, **extra: str):
    return admin.client.post(
        ADMIN_CHANGELIST,
        {
            "action": action,
            ACTION_CHECKBOX_NAME: [str(rr.pk)],
            "csrfmiddlewaretoken": admin.csrf_token(),
            **extra,
        },
        secure=True,
    )


def test_assisted_recovery_by_staff(api, user, staff, admin, settings):
    settings.PASSKEYS_SUPPORT_URL = "https://help.example.com/"
    rr = start(api, user)  # no second factor at all
    code = displayed_code(api)  # "give them this code"
    response = admin_action(admin, "start_assisted_recovery", rr)
    assert response.status_code == 302
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.APPROVAL_PENDING, "staff")
    assert "Support is checking who you are" in api.client.get(VERIFY, secure=True).content.decode()
    # The action asks for the code first.
    page = admin_action(admin, "approve_assisted_recovery", rr)
    assert page.status_code == 200
    assert 'name="approval_code"' in page.content.decode()
    response = admin_action(admin, "approve_assisted_recovery", rr, approval_code=code)
    assert response.status_code == 302
    rr.refresh_from_db()
    assert (rr.state, rr.approved_by_id) == (State.APPROVED, staff.pk)
    assert api.post(CONTINUE).status_code == 200
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.COMPLETED, "staff")
    assert str(signed_in_user_id(api)) == str(user.pk)
    logged = list(
        LogEntry.objects.filter(user=staff).order_by("pk").values_list("change_message", flat=True)
    )
    assert logged == ["Started an assisted recovery", "Approved an assisted recovery"]


def test_staff_approval_needs_the_users_code(api, user, admin):
    rr = start(api, user)
    admin_action(admin, "start_assisted_recovery", rr)
    code = displayed_code(api)
    admin_action(
        admin, "approve_assisted_recovery", rr, approval_code=f"{(int(code) + 1) % 10**6:06d}"
    )
    rr.refresh_from_db()
    assert (rr.state, rr.factor_attempts) == (State.APPROVAL_PENDING, 1)
    assert_rejected(api.post(CONTINUE), Reason.SECOND_FACTOR_INVALID)


def test_staff_cannot_assist_their_own_recovery(api, staff, admin):
    rr = start(api, staff)
    admin_action(admin, "start_assisted_recovery", rr)
    rr.refresh_from_db()
    assert rr.state == State.LINK_OPENED


def test_an_assisted_recovery_needs_the_link_opened(api, user, admin):
    from .recovery_support import ask_link

    ask_link(api, user.email)
    rr = RecoveryRequest.objects.get()
    admin_action(admin, "start_assisted_recovery", rr)
    rr.refresh_from_db()
    assert rr.state == State.REQUESTED


def test_the_admin_never_shows_the_digests(api, user, admin):
    rr = start(api, user)
    html = admin.client.get(f"{ADMIN_CHANGELIST}{rr.pk}/change/", secure=True).content.decode()
    assert rr.token_sha256 not in html
    assert rr.approval_code_sha256 not in html
    assert rr.session_binding not in html
    assert admin.client.get(f"{ADMIN_CHANGELIST}add/", secure=True).status_code == 403


def test_no_mail_carries_the_approval_code(recovering):
    code = displayed_code(recovering)
    assert all(code not in m.body for m in mail.outbox)
