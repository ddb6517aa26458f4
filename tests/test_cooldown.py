"""The cooldown after a recovery or a password or e-mail change: what it refuses, what it lets
through, when it ends, and how password and e-mail changes of the user model start it."""

from __future__ import annotations

import time
import types
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import update_last_login
from django.contrib.auth.tokens import default_token_generator
from django.contrib.messages import get_messages
from django.db import transaction
from django.test import override_settings
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys import cooldown, flows, signals
from django_passkeys.cooldown import (
    active_cooldown,
    check_cooldown,
    cooldown_until,
    format_until,
    start_cooldown,
)
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Cooldown, Credential, RecoveryCode, UserSession
from django_passkeys.sessions import ASSERTION_TIME_KEY, AUTH_TIME_KEY

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import enroll, form_post, passkey_login

pytestmark = pytest.mark.django_db

DAY = timedelta(hours=24)
FIXED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The cooldown module's clock, settable: ``clock.now``."""
    fake = types.SimpleNamespace(now=FIXED)
    monkeypatch.setattr(
        cooldown,
        "timezone",
        types.SimpleNamespace(now=lambda: fake.now, localtime=timezone.localtime),
    )
    return fake


def error_of(response) -> dict:
    return response.json()["error"]


def events(event_type) -> list[tuple[bool, str]]:
    return list(
        AuthEvent.objects.filter(event_type=event_type)
        .order_by("pk")
        .values_list("success", "reason_code")
    )


def stamp(api, key: str) -> None:
    session = api.client.session
    session[key] = int(time.time())
    session.save()


def assert_cooldown_refusal(response, user) -> None:
    """A 403 ``cooldown_active`` whose message and ``until`` say when the cooldown ends."""
    assert response.status_code == 403, response.content
    error = error_of(response)
    until = cooldown_until(user)
    assert until is not None
    assert error["code"] == "cooldown_active"
    assert datetime.fromisoformat(error["until"]) == until
    assert format_until(until) in error["message"]


@pytest.fixture
def passkey(api, user, authenticator, register):
    assert register(user, authenticator).status_code == 201
    return Credential.objects.get()


@pytest.fixture
def recovered(user):
    """``user`` has just completed a recovery."""
    start_cooldown(user, reason="recovery")
    return user


# ---------------------------------------------------------------------------------------------
# The cooldown itself
# ---------------------------------------------------------------------------------------------


def test_no_cooldown_for_a_user_who_never_recovered(user):
    assert cooldown_until(user) is None
    check_cooldown(user)  # does not raise


def test_a_recovery_starts_a_cooldown_of_the_configured_length(user, clock, settings):
    settings.PASSKEYS_RECOVERY_COOLDOWN = 3600
    start_cooldown(user, reason="recovery")
    assert cooldown_until(user) == FIXED + timedelta(hours=1)
    row = Cooldown.objects.get(user=user)
    assert (row.reason, row.started_at) == ("recovery", FIXED)


def test_the_cooldown_ends_after_its_period(user, clock):
    start_cooldown(user, reason="recovery")
    clock.now = FIXED + DAY - timedelta(seconds=1)
    with pytest.raises(PasskeyError) as caught:
        check_cooldown(user)
    assert caught.value.code == Reason.COOLDOWN_ACTIVE
    assert caught.value.until == FIXED + DAY
    clock.now = FIXED + DAY
    assert cooldown_until(user) is None
    check_cooldown(user)


def test_a_later_start_extends_the_cooldown_and_never_shortens_it(user, clock, settings):
    start_cooldown(user, reason="recovery")
    clock.now = FIXED + timedelta(hours=1)
    settings.PASSKEYS_RECOVERY_COOLDOWN = 600  # would end before the running one
    start_cooldown(user, reason="password_change")
    assert cooldown_until(user) == FIXED + DAY
    assert Cooldown.objects.get(user=user).reason == "recovery"
    settings.PASSKEYS_RECOVERY_COOLDOWN = 24 * 3600
    start_cooldown(user, reason="password_change")
    assert cooldown_until(user) == FIXED + timedelta(hours=1) + DAY
    assert Cooldown.objects.get(user=user).reason == "password_change"
    assert Cooldown.objects.count() == 1


def test_a_cooldown_after_an_old_one_ended_starts_afresh(user, clock):
    start_cooldown(user, reason="recovery")
    clock.now = FIXED + 3 * DAY
    assert cooldown_until(user) is None
    start_cooldown(user, reason="email_change")
    assert cooldown_until(user) == FIXED + 4 * DAY


def test_a_zero_period_turns_cooldowns_off(user, settings):
    settings.PASSKEYS_RECOVERY_COOLDOWN = 0
    start_cooldown(user, reason="recovery")
    assert not Cooldown.objects.exists()
    assert cooldown_until(user) is None


def test_reading_the_cooldown_is_one_query(user, recovered, django_assert_num_queries):
    other = UserFactory()
    for someone in (user, other):
        with django_assert_num_queries(1) as captured:
            cooldown_until(someone)
    assert "passkeys_cooldown" in captured.captured_queries[0]["sql"]


def test_the_message_says_until_when_in_the_active_language(user, clock, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    start_cooldown(user, reason="recovery")
    with (
        translation.override("de"),
        timezone.override("Europe/Berlin"),
        pytest.raises(PasskeyError) as caught,
    ):
        check_cooldown(user)
    # Berlin is an hour ahead of UTC in March, and German writes the day first.
    assert "3. März 2026 10:30" in str(caught.value.message)
    body = caught.value.to_response()
    assert b'"until": "2026-03-03T09:30:00+00:00"' in body.content


# ---------------------------------------------------------------------------------------------
# High-risk changes of the app refused
# ---------------------------------------------------------------------------------------------


def test_removing_a_passkey_is_refused_during_the_cooldown(api, user, passkey, recovered):
    response = api.post(f"/auth/passkey/manage/{passkey.pk}/remove")
    assert_cooldown_refusal(response, user)
    passkey.refresh_from_db()
    assert passkey.revoked_at is None
    assert events(AuthEvent.Type.REVOKE) == [(False, "cooldown_active")]


def test_a_refused_form_post_goes_back_with_the_message(api, user, passkey, recovered):
    response = form_post(api, f"/auth/passkey/manage/{passkey.pk}/remove")
    assert response.status_code == 303
    assert response["Location"] == "/auth/passkey/manage/"
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1 and format_until(cooldown_until(user)) in messages[0]
    assert Credential.objects.active().count() == 1


def test_ending_other_sessions_is_refused_during_the_cooldown(user):
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    me, other = passkey_login(authenticator), passkey_login(authenticator)
    start_cooldown(user, reason="recovery")
    response = me.post("/auth/passkey/sessions/", {"end": "all"})
    assert_cooldown_refusal(response, user)
    assert UserSession.objects.filter(user=user).count() == 2
    assert other.client.get("/auth/passkey/manage/", secure=True).status_code == 200
    assert events(AuthEvent.Type.SESSIONS) == [(False, "cooldown_active")]


def test_removing_the_authenticator_app_is_refused_during_the_cooldown(api, user):
    device = TOTPDevice.objects.create(user=user, confirmed=True)
    api.login(user)
    stamp(api, ASSERTION_TIME_KEY)
    start_cooldown(user, reason="recovery")
    response = api.post("/auth/passkey/totp/remove")
    assert_cooldown_refusal(response, user)
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
    assert events(AuthEvent.Type.TOTP_REMOVED) == [(False, "cooldown_active")]


def test_replacing_the_authenticator_app_is_refused_during_the_cooldown(api, user):
    old = TOTPDevice.objects.create(user=user, confirmed=True)
    api.login(user)
    stamp(api, ASSERTION_TIME_KEY)
    assert api.client.get("/auth/passkey/totp/?replace", secure=True).status_code == 200
    new = TOTPDevice.objects.get(confirmed=False)
    start_cooldown(user, reason="recovery")
    from django_otp.oath import TOTP

    code = TOTP(new.bin_key, new.step, new.t0, new.digits, new.drift).token()
    response = api.post("/auth/passkey/totp/", {"code": f"{code:06d}"})
    assert_cooldown_refusal(response, user)
    assert list(TOTPDevice.objects.filter(user=user, confirmed=True)) == [old]


def test_regenerating_recovery_codes_is_refused_during_the_cooldown(api, user, passkey):
    stamp(api, ASSERTION_TIME_KEY)
    first = api.post("/auth/passkey/recovery-codes/", {"replaces": 0})
    assert first.status_code == 200, first.content
    before = sorted(RecoveryCode.objects.values_list("pk", "digest", "used_at"))
    start_cooldown(user, reason="recovery")
    response = api.post("/auth/passkey/recovery-codes/", {"replaces": 1})
    assert_cooldown_refusal(response, user)
    assert sorted(RecoveryCode.objects.values_list("pk", "digest", "used_at")) == before
    assert events(AuthEvent.Type.RECOVERY_CODES)[-1] == (False, "cooldown_active")


# ---------------------------------------------------------------------------------------------
# What stays allowed
# ---------------------------------------------------------------------------------------------


def test_adding_a_passkey_stays_allowed_during_the_cooldown(api, user, recovered):
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    response = api.post("/auth/passkey/register/verify", SoftAuthenticator().create(options))
    assert response.status_code == 201
    assert Credential.objects.active().filter(user=user).count() == 1


def test_a_first_set_of_recovery_codes_stays_allowed_during_the_cooldown(api, user, recovered):
    api.login(user)
    response = api.post("/auth/passkey/recovery-codes/", {"replaces": 0})
    assert response.status_code == 200, response.content
    assert RecoveryCode.objects.count() == 10


def test_renaming_and_signing_in_stay_allowed(api, user, passkey, authenticator, recovered):
    response = api.post(f"/auth/passkey/manage/{passkey.pk}/rename", {"name": "Laptop"})
    assert response.status_code == 200
    passkey_login(authenticator)


def test_an_administrator_still_revokes_during_the_cooldown(user, passkey, recovered):
    admin = UserFactory(is_staff=True, is_superuser=True)
    assert flows.revoke(passkey, by=admin, reason="lost") is True
    passkey.refresh_from_db()
    assert passkey.revoked_at is not None


def test_removal_works_again_once_the_cooldown_ended(api, user, passkey, clock):
    start_cooldown(user, reason="recovery")
    assert api.post(f"/auth/passkey/manage/{passkey.pk}/remove").status_code == 403
    clock.now = FIXED + DAY
    assert api.post(f"/auth/passkey/manage/{passkey.pk}/remove").status_code == 200
    assert Credential.objects.active().count() == 0


# ---------------------------------------------------------------------------------------------
# Project views: @high_risk and HighRiskMixin
# ---------------------------------------------------------------------------------------------


@pytest.mark.urls("tests.cooldown_urls")
def test_a_high_risk_view_runs_when_no_cooldown_runs(api, user):
    api.login(user)
    response = api.client.get("/account/email/", secure=True)
    assert response.content == b"the e-mail form"


@pytest.mark.urls("tests.cooldown_urls")
def test_a_high_risk_view_shows_the_cooldown_page_with_the_local_end(api, user, recovered):
    api.login(user)
    with translation.override("de"):
        response = api.client.get("/account/email/", secure=True)
        local_end = format_until(cooldown_until(user))
    assert response.status_code == 403
    assert [t.name for t in response.templates][:3] == [
        "django_passkeys/cooldown.html",
        "django_passkeys/page.html",
        "django_passkeys/base.html",
    ]
    html = response.content.decode()
    assert "Ihr Konto wurde kürzlich wiederhergestellt." in html  # the page follows the language
    assert f'<time datetime="{cooldown_until(user).isoformat()}">' in html
    assert local_end in html and "p.m." not in local_end  # German: a 24-hour clock
    response = form_post(api, "/account/email/", {"email": "new@example.com"})
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.email != "new@example.com"
    assert events(AuthEvent.Type.HIGH_RISK) == [(False, "cooldown_active")] * 2


@pytest.mark.urls("tests.cooldown_urls")
def test_a_high_risk_view_answers_json_to_json(api, user, recovered):
    api.login(user)
    assert_cooldown_refusal(api.post("/account/delete/"), user)
    response = api.client.get("/account/async/", secure=True, HTTP_ACCEPT="application/json")
    assert_cooldown_refusal(response, user)


@pytest.mark.urls("tests.cooldown_urls")
def test_an_async_high_risk_view_runs_without_a_cooldown(api, user):
    api.login(user)
    assert api.client.get("/account/async/", secure=True).json() == {"ran": True}


@pytest.mark.urls("tests.cooldown_urls")
def test_anonymous_requests_pass_to_the_view(api, recovered):
    response = api.client.get("/account/email/", secure=True)
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.urls("tests.cooldown_urls")
def test_the_mixin_refuses_the_password_change_form_during_the_cooldown(api, user, recovered):
    api.login(user)
    assert api.client.get("/account/password/", secure=True).status_code == 403
    response = form_post(
        api,
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "n3w pa55word",
            "new_password2": "n3w pa55word",
        },
    )
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_cooldown_page_says_whether_changes_are_paused(api, user, settings):
    settings.PASSKEYS_SUPPORT_URL = "https://help.example.com/"
    api.login(user)
    html = api.client.get("/auth/passkey/cooldown/", secure=True).content.decode()
    assert "No changes paused" in html and "help.example.com" not in html
    start_cooldown(user, reason="password_change")
    response = api.client.get("/auth/passkey/cooldown/", secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your password was changed recently." in html
    assert format_until(cooldown_until(user)) in html
    assert 'href="https://help.example.com/"' in html


# ---------------------------------------------------------------------------------------------
# Password and e-mail changes start the cooldown and notify
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def received():
    """The ``password_changed`` and ``email_changed`` signals sent."""
    sent: list[tuple[str, dict]] = []

    def on_password(sender, **kwargs):
        sent.append(("password_changed", kwargs))

    def on_email(sender, **kwargs):
        sent.append(("email_changed", kwargs))

    signals.password_changed.connect(on_password)
    signals.email_changed.connect(on_email)
    yield sent
    signals.password_changed.disconnect(on_password)
    signals.email_changed.disconnect(on_email)


@pytest.mark.urls("tests.cooldown_urls")
def test_a_password_change_starts_the_cooldown_and_notifies(
    api, user, mailoutbox, received, django_capture_on_commit_callbacks
):
    api.login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = form_post(
            api,
            "/account/password/",
            {
                "old_password": PASSWORD,
                "new_password1": "n3w pa55word",
                "new_password2": "n3w pa55word",
            },
        )
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.check_password("n3w pa55word")
    assert cooldown_until(user) is not None
    assert Cooldown.objects.get(user=user).reason == "password_change"
    assert events(AuthEvent.Type.PASSWORD_CHANGED) == [(True, "")]
    assert [m.to for m in mailoutbox] == [[user.email]]
    assert [(name, kw["user"].pk) for name, kw in received] == [("password_changed", user.pk)]
    # A second change waits for the cooldown (password reset does not: see the next test).
    assert api.client.get("/account/password/", secure=True).status_code == 403


@pytest.mark.urls("tests.cooldown_urls")
def test_a_password_reset_starts_the_cooldown_and_notifies(
    api, user, mailoutbox, received, django_capture_on_commit_callbacks
):
    start_cooldown(user, reason="recovery")  # a reset is never refused: the mailbox decides
    Cooldown.objects.update(until=timezone.now() + timedelta(minutes=5))
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    response = api.client.get(f"/account/reset/{uid}/{token}/", secure=True)
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = form_post(
            api,
            response["Location"],
            {"new_password1": "r3set pa55word", "new_password2": "r3set pa55word"},
        )
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.check_password("r3set pa55word")
    assert cooldown_until(user) > timezone.now() + DAY - timedelta(minutes=1)
    assert events(AuthEvent.Type.PASSWORD_CHANGED) == [(True, "")]
    assert len(mailoutbox) == 1 and [name for name, _ in received] == ["password_changed"]


@pytest.mark.urls("tests.cooldown_urls")
def test_an_email_change_notifies_both_addresses_and_starts_the_cooldown(
    api, user, mailoutbox, received, django_capture_on_commit_callbacks
):
    old = user.email
    api.login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = form_post(api, "/account/email/", {"email": "new@example.com"})
    assert response.content == b"e-mail changed"
    assert sorted(address for m in mailoutbox for address in m.to) == sorted(
        ["new@example.com", old]
    )
    assert [(name, kw["previous_email"]) for name, kw in received] == [("email_changed", old)]
    assert Cooldown.objects.get(user=user).reason == "email_change"
    assert events(AuthEvent.Type.EMAIL_CHANGED) == [(True, "")]
    # And the next change of address waits.
    assert api.client.get("/account/email/", secure=True).status_code == 403


def test_a_sign_in_updates_last_login_without_another_query(user, django_assert_num_queries):
    with django_assert_num_queries(1):
        update_last_login(None, user)
    assert not Cooldown.objects.exists() and not AuthEvent.objects.exists()


def test_a_passkey_sign_in_starts_nothing(user, authenticator, mailoutbox):
    enroll(user, authenticator)
    passkey_login(authenticator)
    assert not Cooldown.objects.exists()
    assert not events(AuthEvent.Type.PASSWORD_CHANGED)


def test_a_password_hash_upgrade_is_no_password_change(user, settings, received):
    # The hash was made with another hasher: check_password() rehashes it and saves.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    stored = user.password
    assert stored.startswith("md5$")
    assert user.check_password(PASSWORD)
    user.refresh_from_db()
    assert user.password != stored and user.password.startswith("pbkdf2_")
    assert not Cooldown.objects.exists() and received == []


def test_saving_other_fields_starts_nothing(user, received, django_assert_num_queries):
    user.first_name = "Ada"
    with django_assert_num_queries(1):
        user.save(update_fields=["first_name"])
    user.last_name = "Lovelace"
    user.save()  # the stored address is read back, and it did not change
    assert not Cooldown.objects.exists() and received == []


def test_a_new_user_starts_nothing(received, mailoutbox):
    UserFactory()
    assert not Cooldown.objects.exists() and received == [] and not AuthEvent.objects.exists()


def test_a_change_rolled_back_leaves_no_cooldown_and_no_mail(
    user, mailoutbox, received, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        user.set_password("another one")
        user.email = "elsewhere@example.com"
        user.save()
        raise RuntimeError("the view failed after saving")
    assert not Cooldown.objects.exists() and not AuthEvent.objects.exists()
    assert mailoutbox == [] and received == []


@override_settings(PASSKEYS_RECOVERY_COOLDOWN=0)
def test_with_cooldowns_off_a_password_change_still_notifies(
    user, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        user.set_password("another one")
        user.save()
    assert not Cooldown.objects.exists()
    assert len(mailoutbox) == 1


def test_the_cooldown_reader_ignores_a_user_without_a_key():
    assert active_cooldown(types.SimpleNamespace(pk=None)) is None


def test_the_auth_time_key_is_not_the_cooldown(api, user, recovered):
    # A fresh sign-in does not lift the cooldown: it belongs to the account, not the session.
    api.login(user)
    stamp(api, AUTH_TIME_KEY)
    stamp(api, ASSERTION_TIME_KEY)
    with pytest.raises(PasskeyError):
        check_cooldown(user)


def test_the_support_link_is_a_url_or_a_url_name(settings):
    settings.PASSKEYS_SUPPORT_URL = "django_passkeys:security"
    assert cooldown.support_url() == "/auth/passkey/security/"
    settings.PASSKEYS_SUPPORT_URL = "no-such-route"
    assert cooldown.support_url() is None


def test_a_model_without_an_email_field_watches_the_password_only():
    from django_passkeys import account_changes

    assert account_changes._email_field(Credential) is None
    assert account_changes._email_field(type(UserFactory.build())) == "email"
