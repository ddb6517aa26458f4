"""Query budgets of the four ceremony endpoints.

Each budget is the count measured when it was set; a change that adds a query fails here and
must either be justified (raise the budget, say why) or avoided. The counts include Django's
own session and ``last_login`` writes, and they are measured as production runs them: in
autocommit (``transaction=True``), where each ``transaction.atomic`` block costs a BEGIN and a
COMMIT that a test transaction would hide as savepoints.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_passkeys.models import Credential

from .authenticator import SoftAuthenticator
from .factories import CredentialFactory, UserFactory
from .support import enroll

pytestmark = pytest.mark.django_db(transaction=True)

#: Session and user loads, existing credentials, challenge insert, user handle; the first call
#: also creates the user handle (get_or_create) and saves the session's challenge binding.
REGISTER_OPTIONS_FIRST = 11
REGISTER_OPTIONS = 5
#: Session, user, challenge, duplicate check, consume + insert in a savepoint, AuthEvent.
REGISTER_VERIFY = 9
#: The challenge insert, nothing else: a visitor without a session gets its challenge binding in
#: a cookie, so no anonymous session is created (and later deleted) for it.
LOGIN_OPTIONS = 1
#: Plus the credentials matching the hint (one query), whether or not the account exists.
LOGIN_OPTIONS_HINT = 2
#: One transaction (BEGIN, COMMIT) holding every write: the challenge found and consumed in one
#: statement (UPDATE ... RETURNING), the credential used with its owner, the owner's user handle
#: and the owner's other passkeys for the Signal API (one query); login(): the new session
#: (existence check, insert in a savepoint), last_login; the UserSession row, the AuthEvent.
#: Then the session save (3) by the middleware. Django's own share is 8 of these (session 7,
#: last_login). A passkey without a counter (every synced one) used again within
#: PASSKEYS_LAST_USED_RESOLUTION has nothing to store: its row is not written.
LOGIN_VERIFY = 14
#: The first use in that window (or a counter that moved) also updates the credential row:
#: counter, backup state and last use, conditionally (rule 2).
LOGIN_VERIFY_FIRST_USE = 15
#: With cache sessions the challenge lives in the cache too (PASSKEYS_CHALLENGE_STORE "auto"):
#: login/options writes nothing to the database, and with a hint reads only the credentials
#: matching it.
LOGIN_OPTIONS_CACHE_SESSIONS = 0
LOGIN_OPTIONS_HINT_CACHE_SESSIONS = 1
#: login/verify: LOGIN_VERIFY without the session's 7 statements and without the challenge's
#: (taken from the cache): BEGIN, the credential with its owner, handle and other passkeys,
#: last_login, the UserSession row, the AuthEvent, COMMIT; and the credential update on a first
#: use.
LOGIN_VERIFY_CACHE_SESSIONS = 6
LOGIN_VERIFY_FIRST_USE_CACHE_SESSIONS = 7


@pytest.fixture(params=["db", "cache"])
def session_engine(request, settings):
    """Each login budget holds for database sessions and for cache sessions."""
    if request.param == "cache":
        settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    return request.param


@pytest.fixture
def registered(api: Any) -> tuple[Any, SoftAuthenticator]:
    user = UserFactory()
    authenticator = SoftAuthenticator()
    enroll(user, authenticator, api=api)
    return user, authenticator


def test_register_options_budget(api, django_assert_max_num_queries):
    user = UserFactory()
    api.login(user)
    with django_assert_max_num_queries(REGISTER_OPTIONS_FIRST):
        assert api.post("/auth/passkey/register/options").status_code == 200
    with django_assert_max_num_queries(REGISTER_OPTIONS):
        assert api.post("/auth/passkey/register/options").status_code == 200


def test_register_options_queries_do_not_grow_with_credentials(api, django_assert_max_num_queries):
    user = UserFactory()
    CredentialFactory.create_batch(5, user=user, transports=["usb", "nfc"])
    api.login(user)
    api.post("/auth/passkey/register/options")
    with django_assert_max_num_queries(REGISTER_OPTIONS):
        options = api.post("/auth/passkey/register/options").json()
    assert len(options["excludeCredentials"]) == 5


def test_register_verify_budget(api, django_assert_max_num_queries):
    api.login(UserFactory())
    options = api.post("/auth/passkey/register/options").json()
    body = SoftAuthenticator().create(options)
    with django_assert_max_num_queries(REGISTER_VERIFY):
        assert api.post("/auth/passkey/register/verify", body).status_code == 201


def test_login_options_budget(session_engine, api, django_assert_num_queries):
    budget = LOGIN_OPTIONS if session_engine == "db" else LOGIN_OPTIONS_CACHE_SESSIONS
    with django_assert_num_queries(budget):
        assert api.post("/auth/passkey/login/options").status_code == 200


def test_login_options_with_hint_budget_is_the_same_for_unknown_accounts(
    session_engine, api, registered, django_assert_num_queries
):
    user, _ = registered
    CredentialFactory.create_batch(3, user=user)
    budget = LOGIN_OPTIONS_HINT if session_engine == "db" else LOGIN_OPTIONS_HINT_CACHE_SESSIONS
    counts = []
    for hint in (user.email, "nobody@example.com"):
        api.client.cookies.pop("sessionid", None)
        with (
            django_assert_num_queries(budget),
            CaptureQueriesContext(connection) as queries,
        ):
            assert api.post("/auth/passkey/login/options", {"emailHint": hint}).status_code == 200
        counts.append(len(queries))
    # No user enumeration through the database work done (security rule 5).
    assert counts[0] == counts[1]


@pytest.mark.parametrize("hinted", [False, True])
def test_login_verify_budget(session_engine, api, registered, hinted, django_assert_num_queries):
    user, authenticator = registered
    data = {"emailHint": user.email} if hinted else {}
    first, again = (
        (LOGIN_VERIFY_FIRST_USE, LOGIN_VERIFY)
        if session_engine == "db"
        else (LOGIN_VERIFY_FIRST_USE_CACHE_SESSIONS, LOGIN_VERIFY_CACHE_SESSIONS)
    )
    # The first sign-in with the new passkey stores its first use; the next one, within the
    # hour, has nothing to store in the credential row.
    for budget in (first, again):
        api.client.logout()
        options = api.post("/auth/passkey/login/options", data).json()
        body = authenticator.get(options)
        with django_assert_num_queries(budget):
            assert api.post("/auth/passkey/login/verify", body).status_code == 200


@pytest.mark.parametrize("counter", [False, True])
def test_login_verify_writes_the_credential_only_with_something_to_store(
    api, registered, settings, counter
):
    # A first use, a last use older than the resolution, a counter that moves: written. A
    # passkey without a counter used again within the resolution: left alone.
    user, authenticator = registered
    counts = itertools.count(1)

    def sign_in() -> Credential:
        api.client.logout()
        options = api.post("/auth/passkey/login/options").json()
        body = authenticator.get(options, sign_count=next(counts) if counter else 0)
        assert api.post("/auth/passkey/login/verify", body).status_code == 200
        return Credential.objects.get(user=user)

    first = sign_in().last_used_at
    assert first is not None
    again = sign_in()
    assert (again.last_used_at == first) is not counter
    assert again.sign_count == (2 if counter else 0)
    Credential.objects.update(last_used_at=first - timedelta(seconds=3601))
    assert sign_in().last_used_at > first
    settings.PASSKEYS_LAST_USED_RESOLUTION = 0
    latest = Credential.objects.get(user=user).last_used_at
    assert sign_in().last_used_at > latest


def test_login_verify_stores_a_new_backup_state_within_the_resolution(
    api, registered, django_assert_num_queries
):
    # A passkey without a counter, used again within the hour, whose backup state changed
    # (a synced passkey whose backup completed or was lost): its row is written.
    user, authenticator = registered
    for bs, budget in (
        (True, LOGIN_VERIFY_FIRST_USE),
        (True, LOGIN_VERIFY),
        (False, LOGIN_VERIFY_FIRST_USE),
    ):
        api.client.logout()
        options = api.post("/auth/passkey/login/options").json()
        body = authenticator.get(options, sign_count=0, flags={"bs": bs})
        with django_assert_num_queries(budget):
            assert api.post("/auth/passkey/login/verify", body).status_code == 200
        assert Credential.objects.get(user=user).backup_state is bs


def test_login_verify_queries_do_not_grow_with_the_owners_passkeys(
    api, registered, django_assert_num_queries
):
    user, authenticator = registered
    CredentialFactory.create_batch(5, user=user)
    CredentialFactory.create_batch(5)  # other accounts' passkeys
    options = api.post("/auth/passkey/login/options").json()
    with django_assert_num_queries(LOGIN_VERIFY_FIRST_USE):
        response = api.post("/auth/passkey/login/verify", authenticator.get(options))
    assert len(response.json()["signal"]["allAcceptedCredentialIds"]) == 6


def test_login_verify_writes_in_one_transaction(api, registered):
    user, authenticator = registered
    options = api.post("/auth/passkey/login/options").json()
    body = authenticator.get(options)
    with CaptureQueriesContext(connection) as queries:
        assert api.post("/auth/passkey/login/verify", body).status_code == 200
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries]
    writes = [
        i
        for i, (word, query) in enumerate(zip(statements, queries, strict=True))
        if word in ("INSERT", "UPDATE", "DELETE") and "django_session" not in query["sql"]
    ]
    # Every write of the app and of login() (the session engine's own save comes after the
    # view, from the middleware) lies between one BEGIN and its COMMIT.
    begin = statements.index("BEGIN")
    commit = statements.index("COMMIT")
    assert begin < writes[0] and writes[-1] < commit
    assert "BEGIN" not in statements[begin + 1 : commit]
