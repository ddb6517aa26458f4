"""The ``sessions/`` page: list where you are signed in and sign out the other sessions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.messages import get_messages
from django.template import Context, Template
from django.utils import timezone

from django_passkeys.models import AuthEvent, UserSession
from django_passkeys.sessions import AUTH_TIME_KEY

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import enroll, passkey_login

pytestmark = pytest.mark.django_db

PAGE = "/auth/passkey/sessions/"


@pytest.fixture
def sessions(user):
    """``user`` signed in three times with one passkey: the browser under test, and two more."""
    authenticator = SoftAuthenticator()
    credential = enroll(user, authenticator)
    me = passkey_login(authenticator, HTTP_USER_AGENT="Firefox on this laptop")
    others = [
        passkey_login(authenticator, HTTP_USER_AGENT=f"Phone {n}", REMOTE_ADDR=f"198.51.100.{n}")
        for n in (1, 2)
    ]
    return me, others, credential


def make_stale(api) -> None:
    session = api.client.session
    session[AUTH_TIME_KEY] = int(time.time()) - 3600
    session.save()


def end(api, data, follow=False):
    """Submit the page's form, with the CSRF token the page's form carries."""
    return api.client.post(
        PAGE, data, secure=True, follow=follow, HTTP_X_CSRFTOKEN=api.csrf_token()
    )


def row_of(api) -> UserSession:
    return UserSession.objects.get(session_key=api.client.session.session_key)


def test_the_page_lists_this_and_the_other_sessions(sessions):
    me, others, credential = sessions
    response = me.client.get(PAGE, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "This session" in html
    assert "Phone 1" in html and "Phone 2" in html and "198.51.100.2" in html
    assert str(credential) in html
    assert response.context["current_session"] == row_of(me)
    assert {r.pk for r in response.context["other_sessions"]} == {row_of(o).pk for o in others}
    for api in (me, *others):  # session keys never reach the page
        assert api.client.session.session_key not in html
    assert response["Cache-Control"].startswith("max-age=0")


def test_signing_out_one_other_session(sessions):
    me, (first, second), _ = sessions
    response = end(me, {"end": row_of(first).pk}, follow=True)
    assert response.status_code == 200
    assert "Signed out of 1 other session." in response.content.decode()
    assert SESSION_KEY not in first.client.session
    assert SESSION_KEY in second.client.session and SESSION_KEY in me.client.session


def test_signing_out_all_other_sessions_keeps_this_one(sessions):
    me, others, _ = sessions
    response = end(me, {"end": "all"})
    assert (response.status_code, response["Location"]) == (303, PAGE)
    assert all(SESSION_KEY not in o.client.session for o in others)
    assert SESSION_KEY in me.client.session
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [
        me.client.session.session_key
    ]


def test_this_session_cannot_be_ended_from_the_list(sessions):
    me, _, _ = sessions
    end(me, {"end": row_of(me).pk})
    assert SESSION_KEY in me.client.session


def test_another_users_session_cannot_be_ended(sessions):
    me, _, _ = sessions
    stranger = UserFactory()
    authenticator = SoftAuthenticator()
    enroll(stranger, authenticator)
    theirs = passkey_login(authenticator)
    end(me, {"end": row_of(theirs).pk})
    assert SESSION_KEY in theirs.client.session


def test_nonsense_targets_end_nothing(sessions):
    me, others, _ = sessions
    for target in ("", "-1", "everything"):
        end(me, {"end": target})
    assert all(SESSION_KEY in o.client.session for o in others)


def test_ending_sessions_needs_a_recent_sign_in(sessions):
    me, others, _ = sessions
    make_stale(me)
    page = me.client.get(PAGE, secure=True)
    assert page.context["can_end"] is False
    assert "Sign in again" in page.content.decode()
    assert "/auth/passkey/login/?next=%2Fauth%2Fpasskey%2Fsessions%2F" in page.content.decode()
    response = end(me, {"end": "all"})
    assert response.status_code == 303
    (message,) = get_messages(response.wsgi_request)
    assert str(message) == "Please confirm it's you before continuing."
    assert all(SESSION_KEY in o.client.session for o in others)


def test_the_page_requires_sign_in(client):
    response = client.get(PAGE, secure=True)
    assert response.status_code == 302
    assert "next=" in response["Location"]


def test_the_page_needs_a_csrf_token(sessions):
    me, others, _ = sessions
    response = me.client.post(PAGE, {"end": "all"}, secure=True)
    # The pipeline's CSRF check: back to the page with its message, as every form post.
    assert response.status_code == 303
    assert UserSession.objects.filter(user=me.client.session[SESSION_KEY]).exists()
    assert AuthEvent.objects.filter(reason_code="csrf_failed").exists()
    assert all(SESSION_KEY in o.client.session for o in others)


def test_with_no_other_session_the_page_says_so(user):
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    me = passkey_login(authenticator)
    assert "not signed in anywhere else" in me.client.get(PAGE, secure=True).content.decode()


CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def test_sessions_are_named_by_browser_and_system_not_by_their_header(sessions):
    me, _, credential = sessions
    passkey_login_with(credential.user, HTTP_USER_AGENT=CHROME_ON_LINUX)
    html = me.client.get(PAGE, secure=True).content.decode()
    assert "Chrome on Linux" in html
    assert "AppleWebKit" not in html
    # A header no family matches is still shown, so a script or a bot is recognisable.
    assert "Phone 1" in html


def test_a_session_signed_in_under_a_minute_ago_reads_just_now(sessions):
    me, (first, _), _ = sessions
    UserSession.objects.filter(pk=row_of(first).pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    html = me.client.get(PAGE, secure=True).content.decode()
    assert "Signed in just now" in html
    assert "Signed in 5\xa0minutes ago" in html
    assert "0\xa0minutes" not in html


def passkey_login_with(user, **meta):
    """One more sign-in of ``user`` with a new passkey, from the browser ``meta`` describes."""
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    return passkey_login(authenticator, **meta)


def test_times_read_just_now_then_as_a_duration():
    template = Template("{% load passkeys %}{{ when|ago }}")
    now = timezone.now()
    assert template.render(Context({"when": now})) == "just now"
    # A clock a little ahead on another server is still "just now", not "0 minutes ago".
    assert template.render(Context({"when": now + timedelta(seconds=5)})) == "just now"
    assert template.render(Context({"when": now - timedelta(hours=2)})) == "2\xa0hours ago"
    assert template.render(Context({"when": None})) == ""
