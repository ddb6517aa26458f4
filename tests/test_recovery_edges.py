"""Account recovery at its edges: links that are gone or garbled, requests that expired or were
moved by another request meanwhile, malformed approval codes, and the deferred work."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.test import RequestFactory
from django.test.utils import isolate_apps
from django.utils import timezone

from django_passkeys import flows
from django_passkeys import recovery as machine
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.flows import recovery as recovery_flows
from django_passkeys.models import AuthEvent, RecoveryRequest

from .factories import UserFactory
from .recovery_support import (
    APPROVALS,
    DONE,
    OPEN,
    STATUS,
    VERIFY,
    add_totp,
    approve_url,
    ask_link,
    displayed_code,
    start,
    totp_code,
)
from .support import assert_rejected, form_post

pytestmark = pytest.mark.django_db

State = RecoveryRequest.State


def _past(rr: RecoveryRequest) -> None:
    RecoveryRequest.objects.filter(pk=rr.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def _request() -> object:
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.1")
    request.session = SessionStore()
    return request


# ---------------------------------------------------------------------------------------------
# Deferred work (mails after the response)
# ---------------------------------------------------------------------------------------------


def test_deferred_work_outside_a_view_runs_after_commit(django_capture_on_commit_callbacks):
    ran: list[str] = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        recovery_flows.run_after_response(None, lambda: ran.append("sent"))
    assert ran == []  # nothing before the commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert ran == ["sent"]


def test_failing_deferred_work_is_logged_not_raised(django_capture_on_commit_callbacks, caplog):
    def broken() -> None:
        raise RuntimeError("mail server down")

    with (
        caplog.at_level(logging.ERROR, logger=recovery_flows.logger.name),
        django_capture_on_commit_callbacks(execute=True),
    ):
        recovery_flows.run_after_response(None, broken)
    assert "deferred work failed" in caplog.text
    assert "mail server down" in caplog.text


# ---------------------------------------------------------------------------------------------
# The link
# ---------------------------------------------------------------------------------------------


def test_an_overlong_link_token_is_refused_without_a_lookup(api):
    response = api.client.get(f"/auth/passkey/recover/link/{'a' * 129}", secure=True)
    assert response.status_code == 400
    event = AuthEvent.objects.get()
    assert (event.event_type, event.reason_code) == ("recovery_link", "recovery_token_invalid")


def test_a_link_whose_request_was_removed_cannot_be_claimed(api, user):
    link = ask_link(api, user.email)
    assert api.client.get(link, secure=True).status_code == 303
    RecoveryRequest.objects.all().delete()  # e.g. the cleanup command ran meanwhile
    assert_rejected(api.post(OPEN), Reason.RECOVERY_TOKEN_INVALID)
    assert not recovery_flows.pending_link(api.client)  # the page stops offering to claim it
    assert RecoveryRequest.objects.count() == 0


def test_a_claim_that_lost_a_race_is_refused_and_forgotten(api, user, monkeypatch):
    link = ask_link(api, user.email)
    assert api.client.get(link, secure=True).status_code == 303
    # Another request (a second tab) opens the request between our read and our update.
    real_transition = machine.transition

    def racing(rr, target, **fields):
        RecoveryRequest.objects.filter(pk=rr.pk).update(state=State.LINK_OPENED)
        return real_transition(rr, target, **fields)

    monkeypatch.setattr(machine, "transition", racing)
    assert_rejected(api.post(OPEN), Reason.RECOVERY_TOKEN_INVALID)
    assert recovery_flows.PENDING_KEY not in api.client.session
    rr = RecoveryRequest.objects.get()
    assert (rr.state, rr.session_binding) == (State.LINK_OPENED, "")


def test_a_recovery_removed_meanwhile_is_none_for_its_browser(api, user):
    start(api, user)
    RecoveryRequest.objects.all().delete()
    assert api.client.get(STATUS, secure=True).json() == {"state": "none", "ready": False}
    assert_rejected(api.post(VERIFY, {"method": "device"}), Reason.RECOVERY_TOKEN_INVALID)


def test_expiring_a_request_another_request_already_ended_keeps_that_end(user):
    rr = RecoveryRequest.objects.create(
        user=user,
        token_sha256=machine.token_digest("t"),
        state=State.REQUESTED,
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    RecoveryRequest.objects.filter(pk=rr.pk).update(state=State.SUPERSEDED)
    recovery_flows._expire(rr)  # our copy still says "requested"
    assert rr.state == State.SUPERSEDED
    assert RecoveryRequest.objects.get(pk=rr.pk).state == State.SUPERSEDED


def test_a_step_that_lost_a_race_is_refused_and_audited(api, user, monkeypatch):
    device = add_totp(user)
    rr = start(api, user)

    def lost(request, target, **fields):
        raise machine.InvalidTransition(request, target, "lost a race")

    monkeypatch.setattr(machine, "transition", lost)
    assert_rejected(
        api.post(VERIFY, {"method": "totp", "code": totp_code(device)}),
        Reason.RECOVERY_TOKEN_INVALID,
    )
    rr.refresh_from_db()
    assert rr.state == State.LINK_OPENED


# ---------------------------------------------------------------------------------------------
# Device approval
# ---------------------------------------------------------------------------------------------


def test_asking_again_for_a_device_approval_changes_nothing(recovering):
    code = displayed_code(recovering)
    before = RecoveryRequest.objects.values().get()
    response = recovering.post(VERIFY, {"method": "device"})
    assert response.status_code == 200
    assert response.json() == {"state": State.APPROVAL_PENDING}
    assert RecoveryRequest.objects.values().get() == before
    assert displayed_code(recovering) == code


def test_an_approval_code_that_is_not_text_is_malformed_and_not_counted(recovering, device):
    rr = RecoveryRequest.objects.get()
    assert_rejected(device.post(approve_url(rr.pk), {"code": 123456}), Reason.MALFORMED_REQUEST)
    rr.refresh_from_db()
    assert (rr.state, rr.factor_attempts) == (State.APPROVAL_PENDING, 0)


def test_an_approval_code_that_is_not_six_digits_is_a_wrong_code(recovering, device):
    rr = RecoveryRequest.objects.get()
    assert_rejected(
        device.post(approve_url(rr.pk), {"code": "12ab56"}), Reason.SECOND_FACTOR_INVALID
    )
    rr.refresh_from_db()
    assert (rr.state, rr.factor_attempts) == (State.APPROVAL_PENDING, 1)


def test_approving_an_expired_request_marks_it_expired(recovering, device):
    code = displayed_code(recovering)
    rr = RecoveryRequest.objects.get()
    _past(rr)
    assert_rejected(device.post(approve_url(rr.pk), {"code": code}), Reason.RECOVERY_TOKEN_EXPIRED)
    rr.refresh_from_db()
    assert (rr.state, rr.approved_by_id) == (State.EXPIRED, None)


def test_nobody_signed_out_has_pending_approvals(recovering):
    assert recovery_flows.pending_approvals(AnonymousUser()) == []


def test_the_approvals_page_sends_a_signed_out_visitor_to_sign_in(api):
    response = api.client.get(APPROVALS, secure=True)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={APPROVALS}"


def test_the_done_page_sends_a_signed_out_visitor_to_sign_in(api):
    response = api.client.get(DONE, secure=True)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={DONE}"


# ---------------------------------------------------------------------------------------------
# Assisted recovery (the flow, as any caller besides the admin would use it)
# ---------------------------------------------------------------------------------------------


def test_assisted_recovery_needs_an_active_staff_member(api, user):
    rr = start(api, user)
    for helper in (UserFactory(), UserFactory(is_staff=True, is_active=False)):
        with pytest.raises(PasskeyError) as caught:
            flows.start_assisted(_request(), helper, rr.pk)
        assert caught.value.code == Reason.NOT_AUTHENTICATED
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.LINK_OPENED, "")


def test_assisting_an_unknown_recovery_is_not_found():
    staff = UserFactory(is_staff=True)
    with pytest.raises(PasskeyError) as caught:
        flows.start_assisted(_request(), staff, 10**9)
    assert caught.value.code == Reason.NOT_FOUND
    event = AuthEvent.objects.get()
    assert (event.success, event.reason_code) == (False, "not_found")


def test_assisting_an_expired_recovery_marks_it_expired(api, user):
    rr = start(api, user)
    _past(rr)
    with pytest.raises(PasskeyError) as caught:
        flows.start_assisted(_request(), UserFactory(is_staff=True), rr.pk)
    assert caught.value.code == Reason.RECOVERY_TOKEN_EXPIRED
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.EXPIRED, "")


# ---------------------------------------------------------------------------------------------
# The account lookup
# ---------------------------------------------------------------------------------------------


def test_an_email_field_that_is_not_a_column_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="logentry is not a column"):
        recovery_flows._column(get_user_model(), "logentry")


@isolate_apps("tests.testapp")
def test_a_user_model_without_is_active_or_last_login_still_gets_its_request(monkeypatch):
    class BareUser(models.Model):
        """A user model with neither ``is_active`` nor ``last_login``, over the user table."""

        id = models.UUIDField(primary_key=True)
        email = models.EmailField()

        class Meta:
            app_label = "testapp"
            db_table = "testapp_user"
            managed = False

        @classmethod
        def get_email_field_name(cls) -> str:
            return "email"

    # Nothing to filter or order on: the account with the address is recovered whatever its
    # (unknown to the model) activity.
    user = UserFactory(email="bare@example.com", is_active=False, last_login=None)
    monkeypatch.setattr(recovery_flows, "get_user_model", lambda: BareUser)
    assert [u.pk for u in recovery_flows._matching_users("BARE@example.com")] == [user.pk]
    recovery_flows._insert_request("BARE@example.com", machine.token_digest("t"), "192.0.2.1")
    rr = RecoveryRequest.objects.get()
    assert (rr.user_id, rr.state, rr.token_sha256) == (
        user.pk,
        State.REQUESTED,
        machine.token_digest("t"),
    )
    recovery_flows._insert_request("nobody@example.com", machine.token_digest("u"), None)
    assert RecoveryRequest.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# The same steps as plain HTML forms (no JavaScript)
# ---------------------------------------------------------------------------------------------


def test_a_recovery_by_plain_forms_goes_from_step_to_step(api, user, device):
    link = ask_link(api, user.email)
    assert api.client.get(link, secure=True)["Location"] == VERIFY
    response = form_post(api, OPEN)
    assert (response.status_code, response["Location"]) == (303, VERIFY)
    rr = RecoveryRequest.objects.get()
    assert rr.state == State.LINK_OPENED
    response = form_post(api, VERIFY, {"method": "device"})
    assert (response.status_code, response["Location"]) == (303, VERIFY)
    rr.refresh_from_db()
    assert rr.state == State.APPROVAL_PENDING
    code = displayed_code(api)
    assert device.post(approve_url(rr.pk), {"code": code}).status_code == 200
    response = form_post(api, "/auth/passkey/recover/continue")
    assert (response.status_code, response["Location"]) == (303, DONE)
    rr.refresh_from_db()
    assert rr.state == State.COMPLETED
