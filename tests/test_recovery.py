"""Account recovery over HTTP: the link, its single use and session binding, the second factor,
and the answers that must not tell whether an account exists."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_passkeys import recovery as machine
from django_passkeys.conf import conf
from django_passkeys.errors import Reason
from django_passkeys.flows.recovery import RECOVERED_AT_KEY
from django_passkeys.models import AuthEvent, Cooldown, RecoveryRequest
from django_passkeys.recovery_codes import recovery_codes_state
from django_passkeys.views.recovery import RecoverView

from .factories import UserFactory
from .recovery_support import (
    CONTINUE,
    DONE,
    OPEN,
    RECOVER,
    VERIFY,
    add_recovery_codes,
    add_totp,
    ask_link,
    claim,
    last_link,
    link_mails,
    notices,
    signed_in_user_id,
    start,
    totp_code,
)
from .support import ApiClient, assert_rejected, error_code

pytestmark = pytest.mark.django_db

State = RecoveryRequest.State


def states() -> list[tuple[int, str]]:
    return list(RecoveryRequest.objects.order_by("pk").values_list("pk", "state"))


# ---------------------------------------------------------------------------------------------
# Requesting a link: the same answer for every address
# ---------------------------------------------------------------------------------------------


def test_the_recover_page_asks_for_an_address(api):
    response = api.client.get(RECOVER, secure=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="email"' in html and 'autocomplete="email"' in html
    assert "no-cache" in response["Cache-Control"]


def test_a_link_goes_to_the_accounts_address_built_from_the_base_url(api, user, settings):
    settings.PASSKEYS_BASE_URL = "https://accounts.example.org/"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "evil.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://testserver"]
    response = api.post(RECOVER, {"email": user.email.upper()}, HTTP_HOST="evil.example")
    assert response.status_code == 200
    assert response.json() == {"sent": True}
    [message] = link_mails()
    assert message.to == [user.email]
    # Never the Host header (security rule 3): the configured base URL, and the app's route.
    match = re.search(
        r"https://accounts\.example\.org/auth/passkey/recover/link/(\S+)", message.body
    )
    assert match, message.body
    token = match.group(1)
    assert len(token) >= 43  # 256 bits, base64url
    assert "evil.example" not in message.body
    assert "text/html" in message.alternatives[0][1]
    # Only the digest is stored.
    rr = RecoveryRequest.objects.get(user=user)
    assert rr.state == State.REQUESTED
    assert rr.token_sha256 == machine.token_digest(token) != token
    assert rr.requesting_ip == "127.0.0.1"
    assert rr.expires_at - rr.created_at == timedelta(seconds=conf.PASSKEYS_RECOVERY_LINK_TTL)


def test_unknown_and_known_addresses_get_the_same_answer_and_the_same_statements(api, user):
    def attempt(email: str):
        client = ApiClient()
        with CaptureQueriesContext(connection) as queries:
            response = client.post(RECOVER, {"email": email})
        # Values are left out; so are casts, and a None written as NULL: the audit event's user
        # is the one difference.
        shape = [
            re.sub(r"'[^']*'|\d+|NULL", "?", re.sub(r"::\w+", "", q["sql"]))
            for q in queries.captured_queries
        ]
        return response, shape

    known, known_sql = attempt(user.email)
    unknown, unknown_sql = attempt("nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert sorted(known.headers) == sorted(unknown.headers)
    assert known_sql == unknown_sql  # statement for statement, whether or not a row is written
    assert len(link_mails()) == 1  # the unknown address got nothing
    assert RecoveryRequest.objects.count() == 1


def test_a_form_post_answers_the_same_message_for_any_address(api, user):
    pages = []
    for email in (user.email, "nobody@example.com"):
        client = ApiClient()
        token = client.csrf_token()
        response = client.client.post(
            RECOVER, {"email": email, "csrfmiddlewaretoken": token}, secure=True, follow=True
        )
        assert response.status_code == 200
        pages.append(re.sub(r'value="[^"]+"', "", response.content.decode()))
    assert pages[0] == pages[1]
    assert "we sent it a recovery link" in pages[0]


def test_the_link_is_sent_only_after_the_response_went_out(user, rf):
    request = rf.post(RECOVER, {"email": user.email}, content_type="application/json", secure=True)
    request._dont_enforce_csrf_checks = True
    SessionMiddleware(lambda r: None).process_request(request)
    request.user = AnonymousUser()
    response = RecoverView.as_view()(request)
    assert response.status_code == 200
    assert not mail.outbox  # the answer is complete, nothing was sent yet
    response.close()  # what the server does after the last byte
    assert len(link_mails()) == 1


def test_a_new_request_supersedes_the_older_link(api, user):
    older = ask_link(api, user.email)
    newer = ask_link(ApiClient(), user.email)
    assert [s for _, s in states()] == [State.SUPERSEDED, State.REQUESTED]
    response = api.client.get(older, secure=True)
    assert response.status_code == 400
    assert "This recovery link is not valid." in response.content.decode()
    assert claim(ApiClient(), newer).status_code == 200


def test_requests_for_one_address_are_silently_capped(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {"recover": {"ip": None, "account": "2/h"}}
    answers = {api.post(RECOVER, {"email": user.email}).content for _ in range(4)}
    assert answers == {b'{"sent": true}'}  # over the window: the same answer, no 429
    assert len(link_mails()) == 2
    assert RecoveryRequest.objects.filter(user=user).count() == 2


def test_requests_are_rate_limited_per_ip(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {"recover": {"ip": "2/m", "account": None}}
    for _ in range(2):
        assert api.post(RECOVER, {"email": "x@example.com"}).status_code == 200
    assert_rejected(api.post(RECOVER, {"email": user.email}), Reason.RATE_LIMITED)
    assert not link_mails()


@pytest.mark.parametrize("body", [{}, {"email": 7}, {"email": ""}, {"email": "a\x00@b"}])
def test_a_missing_or_malformed_address_is_refused(api, body):
    assert_rejected(api.post(RECOVER, body), Reason.MALFORMED_REQUEST)
    assert not RecoveryRequest.objects.exists()


def test_an_inactive_account_gets_no_link(api, user):
    user.is_active = False
    user.save()
    assert api.post(RECOVER, {"email": user.email}).json() == {"sent": True}
    assert not link_mails()


def test_the_login_page_offers_the_apps_recovery(api):
    html = api.client.get("/auth/passkey/login/", secure=True).content.decode()
    assert '<a class="pk-link" href="/auth/passkey/recover/">Recover account</a>' in html


# ---------------------------------------------------------------------------------------------
# The link: single use, bound to the browser that claimed it, short-lived
# ---------------------------------------------------------------------------------------------


def test_the_link_alone_signs_nobody_in(api, user):
    add_totp(user)
    link = ask_link(api, user.email)
    response = api.client.get(link, secure=True)
    assert response.status_code == 303
    assert response["Location"] == VERIFY  # the token leaves the address bar
    assert response["Referrer-Policy"] == "no-referrer"
    assert RecoveryRequest.objects.get().state == State.REQUESTED  # a mail scanner claims nothing
    assert api.post(OPEN).json() == {"state": State.LINK_OPENED}
    assert signed_in_user_id(api) is None
    page = api.client.get(VERIFY, secure=True)
    assert "Code from your authenticator app" in page.content.decode()
    assert signed_in_user_id(api) is None
    assert api.client.get("/auth/passkey/manage/", secure=True).status_code == 302


def test_the_verify_page_asks_to_continue_before_claiming(api, user):
    api.client.get(ask_link(api, user.email), secure=True)
    html = api.client.get(VERIFY, secure=True).content.decode()
    assert 'action="/auth/passkey/recover/open"' in html
    assert RecoveryRequest.objects.get().state == State.REQUESTED


def test_a_link_claimed_in_one_browser_fails_in_another(api, user):
    add_totp(user)
    link = ask_link(api, user.email)
    assert claim(api, link).status_code == 200
    other = ApiClient()
    response = other.client.get(link, secure=True)
    assert response.status_code == 400
    assert "This recovery link is not valid." in response.content.decode()
    assert_rejected(other.post(OPEN), Reason.RECOVERY_TOKEN_INVALID)
    assert_rejected(
        other.post(VERIFY, {"method": "totp", "code": "123456"}), Reason.RECOVERY_TOKEN_INVALID
    )
    assert RecoveryRequest.objects.get().factor_attempts == 0


def test_a_link_seen_by_two_browsers_is_claimed_by_the_first_to_continue(api, user):
    link = ask_link(api, user.email)
    other = ApiClient()
    assert api.client.get(link, secure=True).status_code == 303
    assert other.client.get(link, secure=True).status_code == 303
    assert other.post(OPEN).status_code == 200
    assert_rejected(api.post(OPEN), Reason.RECOVERY_TOKEN_INVALID)
    assert RecoveryRequest.objects.get().session_binding  # other's
    # The loser's page stops offering to continue, and says why not.
    html = api.client.get(VERIFY, secure=True).content.decode()
    assert 'action="/auth/passkey/recover/open"' not in html
    assert "Request a new recovery link" in html


def test_opening_the_link_again_in_the_same_browser_goes_on(api, user):
    link = ask_link(api, user.email)
    claim(api, link)
    response = api.client.get(link, secure=True)
    assert response.status_code == 303 and response["Location"] == VERIFY


def test_an_expired_link_is_refused(api, user, settings):
    link = ask_link(api, user.email)
    RecoveryRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.client.get(link, secure=True)
    assert response.status_code == 400
    assert "This recovery link has expired." in response.content.decode()
    assert RecoveryRequest.objects.get().state == State.EXPIRED
    event = AuthEvent.objects.order_by("-pk").first()
    assert (event.event_type, event.reason_code) == ("recovery_link", "recovery_token_expired")


def test_a_refused_link_never_logs_its_token(api, user, settings, caplog):
    settings.PASSKEYS_RATE_LIMITS = {"recover-link": {"ip": "1/m"}}
    link = ask_link(api, user.email)
    token = link.rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    assert api.client.get(link, secure=True).status_code == 303
    assert api.client.get(link, secure=True).status_code == 429  # a valid token, refused
    assert ApiClient().client.get(link[:-1] + "x", secure=True).status_code in (400, 429)
    assert caplog.records
    assert all(token[:-1] not in record.getMessage() for record in caplog.records)


def test_a_link_that_expired_after_the_browser_saw_it_cannot_be_claimed(api, user):
    api.client.get(ask_link(api, user.email), secure=True)
    RecoveryRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_rejected(api.post(OPEN), Reason.RECOVERY_TOKEN_EXPIRED)


def test_an_unknown_token_is_refused(api):
    response = api.client.get("/auth/passkey/recover/link/" + "A" * 43, secure=True)
    assert response.status_code == 400
    assert "This recovery link is not valid." in response.content.decode()


def test_a_used_link_is_refused(api, user):
    device = add_totp(user)
    link = ask_link(api, user.email)
    claim(api, link)
    assert api.post(VERIFY, {"method": "totp", "code": totp_code(device)}).status_code == 200
    response = ApiClient().client.get(link, secure=True)
    assert response.status_code == 400
    assert RecoveryRequest.objects.get().state == State.COMPLETED


def test_opening_links_is_rate_limited_per_ip(api, settings):
    settings.PASSKEYS_RATE_LIMITS = {"recover-link": {"ip": "2/m"}}
    for _ in range(2):
        assert api.client.get("/auth/passkey/recover/link/xyz", secure=True).status_code == 400
    response = api.client.get("/auth/passkey/recover/link/xyz", secure=True)
    assert response.status_code == 429
    assert "Retry-After" in response


def test_claiming_without_a_link_is_refused(api):
    assert_rejected(api.post(OPEN), Reason.RECOVERY_TOKEN_INVALID)


# ---------------------------------------------------------------------------------------------
# The second factor
# ---------------------------------------------------------------------------------------------


def test_an_authenticator_app_code_signs_in_and_leads_to_a_new_passkey(
    api, user, django_capture_on_commit_callbacks
):
    device = add_totp(user)
    rr = start(api, user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(VERIFY, {"method": "totp", "code": totp_code(device)})
    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": DONE}
    rr.refresh_from_db()
    assert (rr.state, rr.factor) == (State.COMPLETED, "totp")
    assert str(signed_in_user_id(api)) == str(user.pk)
    session = api.client.session
    assert isinstance(session[RECOVERED_AT_KEY], int)
    assert "_passkeys_recovery" not in session
    # The cooldown started, and every channel heard about it.
    assert Cooldown.objects.get(user=user).reason == "recovery"
    assert notices() == ["[Test site] Your account was recovered"]
    done = api.client.get(DONE, secure=True)
    assert done.status_code == 200
    assert "data-pk-add" in done.content.decode()


def test_the_done_page_sends_on_to_the_security_page_once_a_passkey_was_added(api, user):
    from .factories import CredentialFactory

    device = add_totp(user)
    start(api, user)
    api.post(VERIFY, {"method": "totp", "code": totp_code(device)})
    CredentialFactory(user=user)
    response = api.client.get(DONE, secure=True)
    assert response.status_code == 303
    assert response["Location"] == "/auth/passkey/security/"


def test_a_form_post_of_a_right_code_goes_to_the_done_page(api, user):
    device = add_totp(user)
    start(api, user)
    response = api.client.post(
        VERIFY,
        {"method": "totp", "code": totp_code(device), "csrfmiddlewaretoken": api.csrf_token()},
        secure=True,
    )
    assert response.status_code == 303 and response["Location"] == DONE


def test_a_wrong_authenticator_code_is_refused_and_counted(api, user):
    device = add_totp(user)
    rr = start(api, user)
    wrong = f"{(int(totp_code(device)) + 1) % 10**6:06d}"
    assert_rejected(
        api.post(VERIFY, {"method": "totp", "code": wrong}), Reason.SECOND_FACTOR_INVALID
    )
    rr.refresh_from_db()
    assert (rr.state, rr.factor_attempts) == (State.LINK_OPENED, 1)
    assert signed_in_user_id(api) is None


def test_a_reused_authenticator_code_is_refused(api, user):
    device = add_totp(user)
    code = totp_code(device)
    start(api, user)
    assert api.post(VERIFY, {"method": "totp", "code": code}).status_code == 200
    api.client.logout()
    second = ApiClient()
    rr = start(second, user)
    assert_rejected(
        second.post(VERIFY, {"method": "totp", "code": code}), Reason.SECOND_FACTOR_INVALID
    )
    rr.refresh_from_db()
    assert rr.state == State.LINK_OPENED
    assert signed_in_user_id(second) is None


def test_a_recovery_code_signs_in_once(api, user):
    codes = add_recovery_codes(user)
    start(api, user)
    assert (
        api.post(VERIFY, {"method": "recovery_code", "code": codes[0].lower()}).status_code == 200
    )
    assert RecoveryRequest.objects.get().factor == "recovery_code"
    second = ApiClient()
    start(second, user)
    assert_rejected(
        second.post(VERIFY, {"method": "recovery_code", "code": codes[0]}),
        Reason.SECOND_FACTOR_INVALID,
    )
    assert signed_in_user_id(second) is None


def test_too_many_wrong_factors_fail_the_request(
    api, user, settings, django_capture_on_commit_callbacks
):
    settings.PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS = 3
    codes = add_recovery_codes(user)
    rr = start(api, user)
    for _ in range(2):
        assert_rejected(
            api.post(VERIFY, {"method": "recovery_code", "code": "0000-0000-0000-0000"}),
            Reason.SECOND_FACTOR_INVALID,
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert_rejected(
            api.post(VERIFY, {"method": "recovery_code", "code": "0000-0000-0000-0000"}),
            Reason.SECOND_FACTOR_INVALID,
        )
    rr.refresh_from_db()
    assert (rr.state, rr.factor_attempts) == (State.FAILED, 3)
    assert notices() == ["[Test site] A recovery of your account failed"]
    # Even the right code no longer helps.
    assert_rejected(
        api.post(VERIFY, {"method": "recovery_code", "code": codes[0]}),
        Reason.RECOVERY_TOKEN_INVALID,
    )
    assert signed_in_user_id(api) is None
    assert "Too many wrong codes" in api.client.get(VERIFY, secure=True).content.decode()


def test_factor_attempts_are_limited_per_account_across_requests(api, user, settings):
    settings.PASSKEYS_RATE_LIMITS = {"recover-verify": {"ip": None, "account": "2/h"}}
    codes = add_recovery_codes(user)
    for _ in range(2):
        client = ApiClient()
        start(client, user)
        client.post(VERIFY, {"method": "recovery_code", "code": "0000-0000-0000-0000"})
    client = ApiClient()
    start(client, user)
    response = client.post(VERIFY, {"method": "recovery_code", "code": codes[0]})
    assert_rejected(response, Reason.RATE_LIMITED)
    assert "Retry-After" in response
    assert signed_in_user_id(client) is None


def test_a_factor_the_account_does_not_have_is_refused(api, user):
    add_totp(user)
    rr = start(api, user)
    assert_rejected(
        api.post(VERIFY, {"method": "recovery_code", "code": "0000-0000-0000-0000"}),
        Reason.SECOND_FACTOR_INVALID,
    )
    rr.refresh_from_db()
    assert rr.factor_attempts == 1


@pytest.mark.parametrize(
    "body",
    [{"method": "password", "code": "x"}, {"code": "123456"}, {"method": "totp", "code": 123456}],
)
def test_a_malformed_factor_is_refused_uncounted(api, user, body):
    add_totp(user)
    rr = start(api, user)
    assert_rejected(api.post(VERIFY, body), Reason.MALFORMED_REQUEST)
    rr.refresh_from_db()
    assert rr.factor_attempts == 0


def test_the_page_offers_only_the_factors_the_account_has(api, user):
    add_recovery_codes(user)
    start(api, user)
    html = api.client.get(VERIFY, secure=True).content.decode()
    assert 'value="recovery_code"' in html
    assert 'value="totp"' not in html
    assert 'value="device"' not in html


def test_an_account_without_a_second_factor_is_sent_to_support(api, user, settings):
    settings.PASSKEYS_SUPPORT_URL = "https://help.example.com/"
    rr = start(api, user)
    html = api.client.get(VERIFY, secure=True).content.decode()
    assert "cannot be recovered from here" in html
    assert 'href="https://help.example.com/"' in html
    assert 'value="totp"' not in html and 'value="recovery_code"' not in html
    assert_rejected(api.post(VERIFY, {"method": "device"}), Reason.SECOND_FACTOR_INVALID)
    rr.refresh_from_db()
    assert rr.state == State.LINK_OPENED
    assert signed_in_user_id(api) is None


def test_continuing_before_any_approval_is_refused(api, user):
    start(api, user)
    assert_rejected(api.post(CONTINUE), Reason.SECOND_FACTOR_INVALID)
    assert signed_in_user_id(api) is None


def test_a_recovery_that_expired_after_the_link_was_opened_is_refused(api, user):
    device = add_totp(user)
    rr = start(api, user)
    RecoveryRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_rejected(
        api.post(VERIFY, {"method": "totp", "code": totp_code(device)}),
        Reason.RECOVERY_TOKEN_EXPIRED,
    )
    rr.refresh_from_db()
    assert rr.state == State.EXPIRED
    assert signed_in_user_id(api) is None


def test_an_inactive_account_cannot_complete_and_keeps_its_code(api, user):
    codes = add_recovery_codes(user)
    rr = start(api, user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert_rejected(
        api.post(VERIFY, {"method": "recovery_code", "code": codes[0]}), Reason.USER_INACTIVE
    )
    rr.refresh_from_db()
    assert (rr.state, rr.factor_attempts) == (State.LINK_OPENED, 0)
    assert signed_in_user_id(api) is None
    assert recovery_codes_state(user).remaining == len(codes)  # not spent for nothing


def test_every_step_is_audited(api, user):
    device = add_totp(user)
    start(api, user)
    api.post(VERIFY, {"method": "totp", "code": totp_code(device)})
    events = list(
        AuthEvent.objects.filter(user=user)
        .order_by("pk")
        .values_list("event_type", "success", "reason_code")
    )
    assert events[:2] == [("recovery_request", True, ""), ("recovery_link", True, "")]
    assert ("recovery", True, "") in events


def test_the_user_of_another_address_is_untouched(api, user):
    other = UserFactory()
    add_totp(other)
    ask_link(api, user.email)
    assert not RecoveryRequest.objects.filter(user=other).exists()
    assert last_link()


# ---------------------------------------------------------------------------------------------
# Any body: a documented 4xx, never a 500
# ---------------------------------------------------------------------------------------------

FUZZ = hypothesis_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=40)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.dictionaries(
    st.sampled_from(["email", "method", "code"]) | st.text(max_size=8), values, max_size=4
) | st.fixed_dictionaries(
    {"method": st.sampled_from(["totp", "recovery_code", "device"]) | scalars, "code": values}
)


def assert_documented(response) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert error_code(response) in {reason.value for reason in Reason}


@pytest.fixture
def unlimited(settings):
    names = ["recover", "recover-verify", "recover-continue", "recover-approve", "recover-deny"]
    settings.PASSKEYS_RATE_LIMITS = {name: {"ip": None, "account": None} for name in names}
    settings.PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS = 10_000


@FUZZ
@given(body=bodies)
def test_any_body_sent_to_the_recovery_endpoints_gets_a_documented_answer(
    api, user, unlimited, body
):
    add_totp(user)
    add_recovery_codes(user)
    if not RecoveryRequest.objects.filter(state=State.LINK_OPENED).exists():
        start(api, user)
    for path in (RECOVER, VERIFY, CONTINUE, "/auth/passkey/recover/approvals/1/approve"):
        assert_documented(api.post(path, body))
    assert (
        signed_in_user_id(api) is None
        or RecoveryRequest.objects.filter(state=State.COMPLETED).exists()
    )
