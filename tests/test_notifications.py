"""Notifications (django_passkeys/notifications.py): every security change e-mails every
address of the account after the commit, says when and from where, links to the security page
only, and sends its one signal once.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import django
import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.core.mail.backends import locmem
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.dispatch import Signal
from django.template.loader import get_template
from django.test import RequestFactory
from django_otp.oath import TOTP

from django_passkeys import flows, signals
from django_passkeys.models import Credential
from django_passkeys.notifications import (
    SENT_BY_NOTIFY,
    SIGNALS,
    Event,
    Origin,
    notify,
    recipients,
    render,
)
from django_passkeys.sessions import ASSERTION_TIME_KEY, AUTH_TIME_KEY

from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db

SECURITY_URL = "https://testserver/auth/passkey/security/"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HOSTILE = '<img src=x onerror="alert(1)"> & Co'
DOCS = Path(__file__).resolve().parent.parent / "docs" / "notifications.rst"


def details_for(event: Event, user: Any) -> dict[str, Any]:
    """Plausible details for ``event``, as its flow passes them."""
    credential = CredentialFactory.build(user=user, name="Work laptop")
    return {
        Event.PASSKEY_ADDED: {"credential": credential},
        Event.PASSKEY_RENAMED: {"credential": credential, "previous_name": "Old laptop"},
        Event.PASSKEY_REMOVED: {"credential": credential},
        Event.PASSKEY_REVOKED: {"credential": credential},
        Event.SECOND_FACTOR_ADDED: {"factor": "totp", "device": None, "replaced": False},
        Event.SECOND_FACTOR_REMOVED: {"factor": "totp", "device": None},
        Event.RECOVERY_CODES_GENERATED: {"count": 10, "first": True},
        Event.RECOVERY_CODE_USED: {"remaining": 9},
        Event.EMAIL_CHANGED: {"previous_email": "old@example.com"},
    }.get(event, {"recovery_request": None} if event.startswith("recovery_") else {})


def urls_in(text: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"'<>]+", text))


def only_mail() -> Any:
    (message,) = mail.outbox
    return message


def html_of(message: Any) -> str:
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    return str(html)


def flow_request(user: Any, *, passkey: bool = False) -> Any:
    """A request of ``user``, signed in just now (and just confirmed with a passkey)."""
    request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT=BROWSER)
    request.session = SessionStore()
    request.session[AUTH_TIME_KEY] = int(time.time())
    if passkey:
        request.session[ASSERTION_TIME_KEY] = int(time.time())
    request.user = user
    return request


@pytest.fixture
def received():
    """``received(signal)``: the kwargs of each time ``signal`` is sent during the test."""
    connected: list[tuple[Signal, Any]] = []

    def _received(signal: Signal) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            calls.append(kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return calls

    yield _received
    for signal, receiver in connected:
        signal.disconnect(receiver)


class BrokenBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("smtp down")


class RefusingBackend(locmem.EmailBackend):
    """A mail server that refuses ``refused@example.net``; each instance is one connection."""

    instances: ClassVar[list[RefusingBackend]] = []

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instances.append(self)

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if "refused@example.net" in message.to:
                raise smtplib.SMTPRecipientsRefused({"refused@example.net": (550, b"5.1.1")})
        return int(super().send_messages(messages))


def use_mail_backend(settings: Any, backend: str) -> None:
    """Make ``backend`` the default mailer: ``MAILERS`` from Django 6.1, ``EMAIL_BACKEND`` before
    (6.1 deprecates ``EMAIL_BACKEND`` and refuses it beside ``MAILERS``)."""
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": backend}}
    else:
        settings.EMAIL_BACKEND = backend


def hook_recipients(user: Any, event: Event) -> list[str]:
    """A recipients hook: the account's address and a second one the site keeps."""
    return [user.email, f"backup+{event.value}@example.net"]


# ---------------------------------------------------------------------------------------------
# Each flow e-mails its event
# ---------------------------------------------------------------------------------------------


def test_a_new_passkey_emails_the_account_with_time_browser_address_and_security_link(
    api, user, authenticator, register, django_capture_on_commit_callbacks, settings
):
    settings.TIME_ZONE = "Europe/Paris"
    with django_capture_on_commit_callbacks(execute=True):
        api.client.defaults["HTTP_USER_AGENT"] = BROWSER
        assert register(user, authenticator).status_code == 201
    message = only_mail()
    assert message.to == [user.email]
    assert message.subject == "[Test site] A passkey was added to your account"
    credential = Credential.objects.get()
    html = html_of(message)
    for body in (message.body, html):
        assert f"“{credential}”" in body
        assert "Firefox on Linux" in body
        assert "127.0.0.1" in body
        assert re.search(r"\d{2}:\d{2} CES?T", body)  # the time, in the site's time zone
        assert urls_in(body) == {SECURITY_URL}
    assert f'<a href="{SECURITY_URL}"' in html


def test_renaming_a_passkey_emails_the_old_and_new_names(
    api, user, django_capture_on_commit_callbacks, received
):
    credential = CredentialFactory(user=user, name="Old laptop")
    api.login(user)
    calls = received(signals.passkey_renamed)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": "Laptop"})
    assert response.status_code == 200
    message = only_mail()
    assert message.subject == "[Test site] A passkey of your account was renamed"
    assert "“Old laptop” was renamed “Laptop”" in message.body
    (call,) = calls
    assert set(call) == {"signal", "request", "user", "credential", "previous_name"}
    assert (call["user"], call["credential"], call["previous_name"]) == (
        user,
        credential,
        "Old laptop",
    )


def test_a_hostile_passkey_name_is_escaped_in_the_html_mail(
    api, user, django_capture_on_commit_callbacks
):
    credential = CredentialFactory(user=user, name="Old laptop")
    api.login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": HOSTILE})
    assert response.status_code == 200
    message = only_mail()
    html = html_of(message)
    assert "<img" not in html and 'onerror="' not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; Co" in html
    assert HOSTILE in message.body  # the text part is text: nothing to escape, nothing lost


def test_an_unknown_browser_is_shown_as_its_escaped_truncated_user_agent(
    user, django_capture_on_commit_callbacks
):
    request = flow_request(user)
    request.META["HTTP_USER_AGENT"] = "<b>bot</b> " + "x" * 300
    with django_capture_on_commit_callbacks(execute=True):
        notify(Event.PASSWORD_CHANGED, user, request=request)
    message = only_mail()
    assert "<b>bot</b> xxx" in message.body and "x" * 120 not in message.body
    assert "&lt;b&gt;bot&lt;/b&gt; xxx" in html_of(message)


def test_a_failed_rename_emails_nothing(api, user, django_capture_on_commit_callbacks):
    credential = CredentialFactory(user=user, name="Old laptop")
    api.login(user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": " "})
    assert response.status_code == 400
    assert callbacks == [] and mail.outbox == []
    credential.refresh_from_db()
    assert credential.name == "Old laptop"


def test_removing_a_passkey_emails_the_owner(api, user, django_capture_on_commit_callbacks):
    credential = CredentialFactory(user=user, name="Phone")
    api.login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/auth/passkey/manage/{credential.pk}/remove")
    assert response.status_code == 200
    message = only_mail()
    assert message.to == [user.email]
    assert message.subject == "[Test site] A passkey was removed from your account"
    assert "“Phone” was removed" in message.body
    assert "127.0.0.1" in message.body


def test_an_administrators_revocation_emails_the_owner_without_the_admins_address(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    credential = CredentialFactory(name="Phone")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/django_passkeys/credential/",
            # The confirmation page's answer: the reason for the revocation.
            {"action": "revoke_selected", "_selected_action": [credential.pk], "reason": "lost"},
        )
    assert response.status_code == 302
    message = only_mail()
    assert message.to == [credential.user.email]
    assert message.subject == "[Test site] A passkey of your account was revoked"
    assert "“Phone”" in message.body
    # Whoever made the change is someone else: their browser and address are theirs to keep.
    assert "127.0.0.1" not in message.body and "IP address" not in message.body


def test_a_revocation_by_command_emails_the_owner(django_capture_on_commit_callbacks):
    credential = CredentialFactory(name="Phone")
    with django_capture_on_commit_callbacks(execute=True):
        assert flows.revoke(credential, reason="lost")
    message = only_mail()
    assert message.to == [credential.user.email]
    assert "Browser:" not in message.body
    assert urls_in(message.body) == {SECURITY_URL}


def test_an_authenticator_app_added_then_removed_emails_each_change(
    user, django_capture_on_commit_callbacks
):
    request = flow_request(user, passkey=True)
    device = flows.begin_totp_enrolment(request, user)
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, 0).token()
    with django_capture_on_commit_callbacks(execute=True):
        flows.confirm_totp(request, user, f"{code:0{device.digits}d}")
    message = only_mail()
    assert message.subject == "[Test site] A second factor was added to your account"
    assert "An authenticator app was added" in message.body
    assert "203.0.113.9" in message.body
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert flows.remove_totp(request, user)
    message = only_mail()
    assert message.subject == "[Test site] A second factor was removed from your account"
    assert "The authenticator app was removed" in message.body


def test_recovery_codes_generated_then_one_used_emails_each_change(
    user, django_capture_on_commit_callbacks
):
    request = flow_request(user)
    with django_capture_on_commit_callbacks(execute=True):
        generated = flows.generate_recovery_codes(request, user)
    # A first set is one change, one e-mail (its second_factor_added signal has no e-mail).
    message = only_mail()
    assert message.subject == "[Test site] New recovery codes for your account"
    assert "A set of 10 recovery codes was created" in message.body
    assert not any(code in message.body for code in generated.codes)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        flows.use_recovery_code(flow_request(AnonymousUser()), user, generated.codes[0])
    message = only_mail()
    assert message.subject == "[Test site] A recovery code was used"
    assert "9 unused codes are left" in message.body
    assert generated.codes[0] not in message.body


# ---------------------------------------------------------------------------------------------
# notify(): after the commit, to every address, never breaking the request
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", list(Event))
def test_every_event_mails_text_and_html_with_only_the_security_link(
    event, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notify(event, user, request=flow_request(user), **details_for(event, user))
    (message,) = [message for message in mail.outbox if message.to == [user.email]]
    assert message.subject.startswith("[Test site] ") and "\n" not in message.subject
    html = html_of(message)
    for body in (message.body, html):
        # Never a link that signs in, never a token: the security page is the one link.
        assert urls_in(body) == {SECURITY_URL}
        assert "203.0.113.9" in body
        assert "{{" not in body and "{%" not in body
    assert html.startswith("<!doctype html>")


def test_nothing_is_sent_when_the_transaction_rolls_back(
    user, django_capture_on_commit_callbacks, received
):
    calls = received(signals.password_changed)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        contextlib.suppress(RuntimeError),
        transaction.atomic(),
    ):
        notify(Event.PASSWORD_CHANGED, user)
        raise RuntimeError("the change failed")
    assert callbacks == [] and mail.outbox == [] and calls == []


def test_nothing_is_sent_before_the_commit(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify(Event.PASSWORD_CHANGED, user)
    assert len(callbacks) == 1 and mail.outbox == []


def test_notify_makes_no_query_before_the_commit(
    user, django_capture_on_commit_callbacks, django_assert_num_queries
):
    credential = CredentialFactory(user=user)
    request = flow_request(user)
    with django_assert_num_queries(0), django_capture_on_commit_callbacks(execute=True):
        notify(Event.PASSKEY_ADDED, user, request=request, credential=credential)
    assert len(mail.outbox) == 1


def test_the_previous_address_hears_of_an_email_change_in_its_own_message(
    user, django_capture_on_commit_callbacks
):
    previous = user.email
    user.email = "new@example.org"
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        notify(Event.EMAIL_CHANGED, user, request=flow_request(user), previous_email=previous)
    assert sorted(message.to[0] for message in mail.outbox) == sorted([previous, user.email])
    assert all(len(message.to) == 1 for message in mail.outbox)
    assert f"changed from {previous} to new@example.org" in mail.outbox[0].body


@pytest.mark.parametrize("hook", [hook_recipients, "tests.test_notifications.hook_recipients"])
def test_the_recipients_hook_names_every_channel(
    hook, user, settings, django_capture_on_commit_callbacks
):
    settings.PASSKEYS_NOTIFICATION_RECIPIENTS = hook
    with django_capture_on_commit_callbacks(execute=True):
        notify(Event.PASSWORD_CHANGED, user)
    assert [message.to for message in mail.outbox] == [
        [user.email],
        ["backup+password_changed@example.net"],
    ]


def test_the_previous_address_is_added_to_the_hooks_list(user, settings):
    settings.PASSKEYS_NOTIFICATION_RECIPIENTS = hook_recipients
    assert recipients(user, Event.EMAIL_CHANGED, previous_email="old@example.com") == [
        user.email,
        "backup+email_changed@example.net",
        "old@example.com",
    ]


def test_recipients_are_deduplicated_and_empty_ones_dropped(user, settings):
    settings.PASSKEYS_NOTIFICATION_RECIPIENTS = lambda user, event: [
        "a@example.com",
        "",
        None,
        " A@Example.com ",
        "b@example.com",
    ]
    assert recipients(user, Event.EMAIL_CHANGED, previous_email="b@example.com") == [
        "a@example.com",
        "b@example.com",
    ]


def test_an_account_without_an_address_gets_no_mail(django_capture_on_commit_callbacks):
    user = UserFactory(email="")
    with django_capture_on_commit_callbacks(execute=True):
        notify(Event.PASSWORD_CHANGED, user)
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_mail_server_down_does_not_break_the_request(api, settings, caplog):
    # In autocommit the callback runs inside the request, as in production.
    use_mail_backend(settings, "tests.test_notifications.BrokenBackend")
    user = UserFactory()
    credential = CredentialFactory(user=user, name="Old laptop")
    api.login(user)
    response = api.post(f"/auth/passkey/manage/{credential.pk}/rename", {"name": "Laptop"})
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.name == "Laptop"
    assert "passkey notification passkey_renamed not sent" in caplog.text
    assert user.email not in caplog.text  # logs carry no address


def test_one_mailer_sends_every_address_and_a_refused_address_stops_no_other(
    user, settings, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    use_mail_backend(settings, "tests.test_notifications.RefusingBackend")
    monkeypatch.setattr(RefusingBackend, "instances", [])
    settings.PASSKEYS_NOTIFICATION_RECIPIENTS = lambda user, event: [
        "refused@example.net",
        user.email,
        "backup@example.net",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        notify(Event.PASSWORD_CHANGED, user)
    assert len(RefusingBackend.instances) == 1  # one connection for the whole notice
    assert [message.to for message in mail.outbox] == [[user.email], ["backup@example.net"]]
    assert (
        "passkey notification password_changed not sent to one address: SMTPRecipientsRefused"
        in caplog.text
    )
    # The refusal names the address; the log does not (security rule 8).
    assert "refused@example.net" not in caplog.text


def test_a_notice_is_sent_without_deprecation_warnings(user, django_capture_on_commit_callbacks):
    # Django 6.1 deprecates get_connection() and a message's connection argument for MAILERS.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with django_capture_on_commit_callbacks(execute=True):
            notify(Event.PASSWORD_CHANGED, user)
    assert [str(warning.message) for warning in caught] == []
    assert len(mail.outbox) == 1


def test_a_failing_signal_receiver_does_not_stop_the_mail(
    user, django_capture_on_commit_callbacks, caplog
):
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("sms gateway down")

    signals.password_changed.connect(broken, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            notify(Event.PASSWORD_CHANGED, user)
    finally:
        signals.password_changed.disconnect(broken)
    assert len(mail.outbox) == 1
    assert "receiver" in caplog.text


def test_the_link_is_built_from_the_base_url_not_the_host(user, settings):
    settings.PASSKEYS_BASE_URL = "https://accounts.example.com/"
    settings.PASSKEYS_SUPPORT_URL = "/help/"
    _, text, html = render(Event.PASSWORD_CHANGED, user, origin=Origin("Firefox", "192.0.2.1"))
    for body in (text, html):
        assert urls_in(body) == {
            "https://accounts.example.com/auth/passkey/security/",
            "https://accounts.example.com/help/",
        }


def test_a_broken_recipients_hook_is_logged_and_the_signal_still_sent(
    user, settings, received, django_capture_on_commit_callbacks, caplog
):
    def broken_hook(user: Any, event: Event) -> list[str]:
        raise RuntimeError("directory service down")

    settings.PASSKEYS_NOTIFICATION_RECIPIENTS = broken_hook
    sent = received(signals.password_changed)
    with django_capture_on_commit_callbacks(execute=True):
        notify(Event.PASSWORD_CHANGED, user)  # the caller's change is committed: no raise
    assert mail.outbox == []
    assert "passkey notification password_changed not sent" in caplog.text
    assert user.email not in caplog.text
    assert len(sent) == 1  # the other channels still hear of it


@pytest.mark.urls("django.contrib.auth.urls")
def test_without_a_routed_security_page_the_mail_has_no_link(user, settings):
    settings.PASSKEYS_BASE_URL = "https://accounts.example.com/"
    settings.PASSKEYS_SUPPORT_URL = None
    _, text, html = render(Event.PASSWORD_CHANGED, user, origin=Origin("Firefox", "192.0.2.1"))
    for body in (text, html):
        assert urls_in(body) == set()
        assert "Check your passkeys, second factors and signed-in sessions now" in body


# ---------------------------------------------------------------------------------------------
# One signal per event, sent once; the docs table says which
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", sorted(SENT_BY_NOTIFY))
def test_notify_sends_the_signal_of_events_without_a_flow_signal(
    event, user, django_capture_on_commit_callbacks, received
):
    calls = received(SIGNALS[event])
    details = details_for(event, user)
    request = flow_request(user)
    with django_capture_on_commit_callbacks(execute=True):
        notify(event, user, request=request, **details)
    (call,) = calls
    assert call == {"signal": SIGNALS[event], "request": request, "user": user, **details}


def test_a_flow_signal_is_not_sent_again_by_notify(
    api, user, authenticator, register, django_capture_on_commit_callbacks, received
):
    calls = received(signals.passkey_registered)
    with django_capture_on_commit_callbacks(execute=True):
        assert register(user, authenticator).status_code == 201
    assert len(calls) == 1 and len(mail.outbox) == 1


def test_every_event_has_its_signal_templates_and_docs_row():
    docs = DOCS.read_text()
    for event in Event:
        signal_name = next(
            name for name in dir(signals) if getattr(signals, name) is SIGNALS[event]
        )
        get_template(f"django_passkeys/email/{event.value}_subject.txt")
        get_template(f"django_passkeys/email/{event.value}_message.txt")
        row = (
            rf"\* - ``{event.name}``\n\s+- ``{signal_name}``"
            rf"( \(sent by ``notify\(\)``\))?\n\s+- ``{event.value}_message.txt``"
        )
        match = re.search(row, docs)
        assert match, event
        assert bool(match.group(1)) == (event in SENT_BY_NOTIFY), event
