"""Query budgets of the four ceremony endpoints.

Each budget is the count measured when it was set; a change that adds a query fails here and
must either be justified (raise the budget, say why) or avoided. The counts include Django's
own session and ``last_login`` writes, and they are measured as production runs them: in
autocommit (``transaction=True``), where each ``transaction.atomic`` block costs a BEGIN and a
COMMIT that a test transaction would hide as savepoints.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .authenticator import SoftAuthenticator
from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

#: Session and user loads, existing credentials, challenge insert, user handle; the first call
#: also creates the user handle (get_or_create) and saves the session's challenge binding.
REGISTER_OPTIONS_FIRST = 11
REGISTER_OPTIONS = 5
#: Session, user, challenge, duplicate check, consume + insert in a savepoint, AuthEvent.
REGISTER_VERIFY = 9
#: Challenge insert, and the new anonymous session (existence check, insert in a savepoint).
LOGIN_OPTIONS = 5
#: Plus the credentials matching the hint, whether or not the account exists.
LOGIN_OPTIONS_HINT = 6
#: Session, then in one transaction (BEGIN, COMMIT): challenge, credential with owner and user
#: handle (one join), consume, counter update; then login(): session key rotation (4),
#: last_login, the UserSession row, the AuthEvent, the credential list for the Signal API, the
#: session save (3).
LOGIN_VERIFY = 22


@pytest.fixture
def registered(api: Any) -> tuple[Any, SoftAuthenticator]:
    user = UserFactory()
    authenticator = SoftAuthenticator()
    api.login(user)
    options = api.post("/auth/passkey/register/options").json()
    assert (
        api.post("/auth/passkey/register/verify", authenticator.create(options)).status_code == 201
    )
    api.client.logout()
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


def test_login_options_budget(api, django_assert_max_num_queries):
    with django_assert_max_num_queries(LOGIN_OPTIONS):
        assert api.post("/auth/passkey/login/options").status_code == 200


def test_login_options_with_hint_budget_is_the_same_for_unknown_accounts(
    api, registered, django_assert_max_num_queries
):
    user, _ = registered
    CredentialFactory.create_batch(3, user=user)
    counts = []
    for hint in (user.email, "nobody@example.com"):
        api.client.cookies.pop("sessionid", None)
        with (
            django_assert_max_num_queries(LOGIN_OPTIONS_HINT),
            CaptureQueriesContext(connection) as queries,
        ):
            assert api.post("/auth/passkey/login/options", {"emailHint": hint}).status_code == 200
        counts.append(len(queries))
    # No user enumeration through the database work done (security rule 5).
    assert counts[0] == counts[1]


@pytest.mark.parametrize("hinted", [False, True])
def test_login_verify_budget(api, registered, hinted, django_assert_max_num_queries):
    user, authenticator = registered
    data = {"emailHint": user.email} if hinted else {}
    options = api.post("/auth/passkey/login/options", data).json()
    body = authenticator.get(options)
    with django_assert_max_num_queries(LOGIN_VERIFY):
        assert api.post("/auth/passkey/login/verify", body).status_code == 200
