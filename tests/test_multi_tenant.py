"""A Relying Party per request: one site, one RP ID per domain (multi-tenant).

``PASSKEYS_RP_ID`` and ``PASSKEYS_ALLOWED_ORIGINS`` may be callables of the request (or their
dotted paths). Two tenants here, ``a.example`` and ``b.example``, both in ``ALLOWED_HOSTS``;
what the callables answer is checked against the request's host, and fails closed with
``rp_not_configured`` when it does not fit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, RequestFactory

from django_passkeys import ceremonies
from django_passkeys.checks import check_development_server, check_relying_party
from django_passkeys.errors import Reason
from django_passkeys.models import Challenge, Credential

from .authenticator import SoftAuthenticator
from .factories import UserFactory
from .support import (
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    REGISTER_OPTIONS,
    REGISTER_VERIFY,
    ApiClient,
    assert_rejected,
    db_snapshot,
)

pytestmark = pytest.mark.django_db

A, B = "a.example", "b.example"
#: The site's tenants: host -> RP ID. Any other host has no Relying Party.
TENANTS = {A: A, B: B}
THIS_MODULE = "tests.test_multi_tenant"


def rp_id_for(request: Any) -> str | None:
    """``PASSKEYS_RP_ID``: the tenant of the request's (already validated) host."""
    return TENANTS.get(request.get_host().split(":")[0])


def origins_for(request: Any) -> list[str]:
    """``PASSKEYS_ALLOWED_ORIGINS``: the tenant's own origin."""
    return [f"https://{rp_id_for(request)}"]


class TenantClient(ApiClient):
    """The JSON client, on one tenant's host and origin."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.client = Client(
            enforce_csrf_checks=True, HTTP_ORIGIN=f"https://{host}", HTTP_HOST=host
        )


@pytest.fixture
def tenants(settings: Any) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, A, B, "c.example"]
    settings.PASSKEYS_RP_ID = rp_id_for
    settings.PASSKEYS_ALLOWED_ORIGINS = origins_for


def authenticator_of(tenant: str) -> SoftAuthenticator:
    return SoftAuthenticator(rp_id=tenant, origin=f"https://{tenant}")


def enroll_on(tenant: str, user: Any, authenticator: SoftAuthenticator) -> TenantClient:
    api = TenantClient(tenant)
    api.login(user)
    options = api.post(REGISTER_OPTIONS).json()
    assert options["rp"]["id"] == tenant
    response = api.post(REGISTER_VERIFY, authenticator.create(options))
    assert response.status_code == 201, response.content
    api.client.logout()
    return api


def test_options_carry_the_rp_id_of_the_requests_tenant(tenants):
    assert TenantClient(A).post(LOGIN_OPTIONS).json()["rpId"] == A
    assert TenantClient(B).post(LOGIN_OPTIONS).json()["rpId"] == B
    user = UserFactory()
    for tenant in (A, B):
        api = TenantClient(tenant)
        api.login(user)
        assert api.post(REGISTER_OPTIONS).json()["rp"]["id"] == tenant


def test_a_passkey_registered_on_a_tenant_signs_in_there(tenants):
    user = UserFactory()
    authenticator = authenticator_of(A)
    api = enroll_on(A, user, authenticator)
    response = api.post(LOGIN_VERIFY, authenticator.get(api.post(LOGIN_OPTIONS).json()))
    assert response.status_code == 200, response.content
    # The Signal API payload names the same Relying Party.
    assert response.json()["signal"]["rpId"] == A
    assert Credential.objects.get(user=user).sign_count == authenticator.sign_count


def test_an_assertion_made_for_one_tenant_is_refused_on_another(tenants):
    user = UserFactory()
    authenticator = authenticator_of(A)
    enroll_on(A, user, authenticator)
    on_b = TenantClient(B)
    options = on_b.post(LOGIN_OPTIONS).json()
    assert options["rpId"] == B
    # As signed on A: A's origin in clientDataJSON and A's RP ID hash.
    as_on_a = authenticator.get(options)
    before = db_snapshot()
    assert_rejected(on_b.post(LOGIN_VERIFY, as_on_a), Reason.ORIGIN_MISMATCH)
    assert db_snapshot() == before
    # B's origin, as a page on B would send, but still A's credential and RP ID hash.
    forged = authenticator.get(on_b.post(LOGIN_OPTIONS).json(), origin=f"https://{B}")
    before = db_snapshot()
    assert_rejected(on_b.post(LOGIN_VERIFY, forged), Reason.RP_ID_MISMATCH)
    assert db_snapshot() == before


@pytest.mark.parametrize(
    "answer",
    [
        "evil.example",  # another domain
        "example",  # a suffix, but a single label: no registrable domain
        "xa.example",  # a lookalike, not a suffix
        "sub.a.example",  # under the host, not above it
        "A.EXAMPLE",  # not as browsers serialize it
        "127.0.0.1",
        "",
        None,  # the host is no tenant
        ["a.example"],
    ],
)
def test_an_rp_id_that_is_not_the_host_or_a_suffix_of_it_fails_closed(tenants, settings, answer):
    settings.PASSKEYS_RP_ID = lambda request: answer
    api = TenantClient(A)
    before = db_snapshot()
    assert_rejected(api.post(LOGIN_OPTIONS), Reason.RP_NOT_CONFIGURED, audited=False)
    api.login(UserFactory())
    assert_rejected(api.post(REGISTER_OPTIONS), Reason.RP_NOT_CONFIGURED)
    assert db_snapshot() == before
    assert not Challenge.objects.exists()


def test_a_host_that_is_no_tenant_gets_no_relying_party(tenants):
    assert_rejected(
        TenantClient("c.example").post(LOGIN_OPTIONS), Reason.RP_NOT_CONFIGURED, audited=False
    )
    assert not Challenge.objects.exists()


def test_a_registrable_parent_domain_is_a_valid_rp_id(tenants, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "login.a.example"]
    settings.PASSKEYS_RP_ID = lambda request: A
    settings.PASSKEYS_ALLOWED_ORIGINS = lambda request: [f"https://{request.get_host()}"]
    assert TenantClient("login.a.example").post(LOGIN_OPTIONS).json()["rpId"] == A


@pytest.mark.parametrize(
    "origins",
    [
        ["https://evil.example"],
        ["https://a.example", "https://evil.example"],  # one bad origin spoils the answer
        ["http://a.example"],  # plain http outside DEBUG
        ["https://a.example/path"],
        ["https://user@a.example"],
        ["https://a.example:99999"],  # a port no URL can have
        [],
        "https://a.example",  # a string, not a list
        None,
    ],
)
def test_origins_outside_the_tenants_rp_id_fail_closed(tenants, settings, origins):
    settings.PASSKEYS_ALLOWED_ORIGINS = lambda request: origins
    assert_rejected(TenantClient(A).post(LOGIN_OPTIONS), Reason.RP_NOT_CONFIGURED, audited=False)
    assert not Challenge.objects.exists()


def test_http_localhost_is_an_origin_only_while_debugging(settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    settings.PASSKEYS_RP_ID = lambda request: "localhost"
    settings.PASSKEYS_ALLOWED_ORIGINS = lambda request: ["http://localhost:8000"]
    request = RequestFactory().post("/", HTTP_HOST="localhost:8000")
    with pytest.raises(ceremonies.PasskeyError) as refused:
        ceremonies.RelyingParty.for_request(request)
    assert refused.value.code == Reason.RP_NOT_CONFIGURED
    settings.DEBUG = True
    request = RequestFactory().post("/", HTTP_HOST="localhost:8000")
    rp = ceremonies.RelyingParty.for_request(request)
    assert (rp.id, rp.origins) == ("localhost", ("http://localhost:8000",))


def test_related_origins_are_accepted_for_a_tenant(tenants, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "a-shop.example"]
    settings.PASSKEYS_RELATED_ORIGINS = ["https://a-shop.example"]
    settings.PASSKEYS_RP_ID = lambda request: A
    settings.PASSKEYS_ALLOWED_ORIGINS = lambda request: [f"https://{A}", "https://a-shop.example"]
    # A page on the related origin asks for A's RP ID (WebAuthn L3 §5.11).
    assert TenantClient("a-shop.example").post(LOGIN_OPTIONS).json()["rpId"] == A


def test_a_static_origin_list_is_cut_to_the_tenants_origins(tenants, settings):
    settings.PASSKEYS_ALLOWED_ORIGINS = [f"https://{A}", f"https://{B}"]
    user = UserFactory()
    authenticator = authenticator_of(A)
    enroll_on(A, user, authenticator)
    request = RequestFactory().post("/", HTTP_HOST=B)
    assert ceremonies.RelyingParty.for_request(request).origins == (f"https://{B}",)
    # B's origin list does not hold A's origin, though the setting lists both.
    on_b = TenantClient(B)
    assert_rejected(
        on_b.post(LOGIN_VERIFY, authenticator.get(on_b.post(LOGIN_OPTIONS).json())),
        Reason.ORIGIN_MISMATCH,
    )


def test_android_app_origins_are_accepted_for_a_tenant(tenants, settings):
    app = "android:apk-key-hash:" + "A" * 43
    settings.PASSKEYS_ALLOWED_ORIGINS = lambda request: [f"https://{A}", app]
    rp = ceremonies.RelyingParty.for_request(RequestFactory().post("/", HTTP_HOST=A))
    assert rp.origins == (f"https://{A}", app)


def test_a_static_origin_list_without_the_tenants_origin_fails_closed(tenants, settings, caplog):
    settings.PASSKEYS_ALLOWED_ORIGINS = [f"https://{A}"]
    with pytest.raises(ceremonies.PasskeyError) as refused:
        ceremonies.RelyingParty.for_request(RequestFactory().post("/", HTTP_HOST=B))
    assert refused.value.code == Reason.RP_NOT_CONFIGURED
    assert "no origin of RP ID 'b.example'" in caplog.text
    assert_rejected(TenantClient(B).post(LOGIN_OPTIONS), Reason.RP_NOT_CONFIGURED, audited=False)
    assert not Challenge.objects.exists()


def test_a_host_outside_allowed_hosts_gets_no_relying_party(tenants, caplog):
    # Django's middleware refuses such a request first; anything else that asks (a link built
    # for a request, a ceremony called from project code) fails closed the same way.
    request = RequestFactory().post("/", HTTP_HOST="evil.example")
    with pytest.raises(ceremonies.PasskeyError) as refused:
        ceremonies.RelyingParty.for_request(request)
    assert refused.value.code == Reason.RP_NOT_CONFIGURED
    assert "not in ALLOWED_HOSTS" in caplog.text


@pytest.mark.parametrize("host", ["c.example", "evil.example"])
def test_links_for_a_host_without_a_relying_party_stay_relative(tenants, host):
    # Never the Host header (security rule 3): the configured base URL, here none.
    request = RequestFactory().post("/", HTTP_HOST=host)
    assert ceremonies.base_url(request) == ""


def test_without_allowed_origins_each_tenant_gets_https_on_its_rp_id(tenants, settings):
    del settings.PASSKEYS_ALLOWED_ORIGINS
    rp = ceremonies.RelyingParty.for_request(RequestFactory().post("/", HTTP_HOST=B))
    assert (rp.id, rp.origins, rp.name) == (B, (f"https://{B}",), "Test site")


def test_dotted_paths_name_the_callables(tenants, settings):
    settings.PASSKEYS_RP_ID = f"{THIS_MODULE}.rp_id_for"
    settings.PASSKEYS_ALLOWED_ORIGINS = f"{THIS_MODULE}.origins_for"
    user = UserFactory()
    authenticator = authenticator_of(B)
    api = enroll_on(B, user, authenticator)
    assert api.post(LOGIN_OPTIONS).json()["rpId"] == B
    response = api.post(LOGIN_VERIFY, authenticator.get(api.post(LOGIN_OPTIONS).json()))
    assert response.status_code == 200, response.content


def test_the_callables_are_asked_once_per_request(tenants, settings):
    calls: list[str] = []

    def counted(request: Any) -> str | None:
        calls.append(request.get_host())
        return rp_id_for(request)

    settings.PASSKEYS_RP_ID = counted
    user = UserFactory()
    authenticator = authenticator_of(A)
    api = enroll_on(A, user, authenticator)
    options = api.post(LOGIN_OPTIONS).json()
    calls.clear()
    # login/verify: the ceremony and the Signal API payload share one resolution.
    assert api.post(LOGIN_VERIFY, authenticator.get(options)).status_code == 200
    assert calls == [A]


def test_static_settings_keep_the_one_cached_relying_party():
    request = RequestFactory().post("/")
    rp = ceremonies.RelyingParty.for_request(request)
    assert rp is ceremonies.RelyingParty.from_settings()
    assert ceremonies.RelyingParty.for_request(RequestFactory().post("/")) is rp
    assert not ceremonies.RelyingParty.decided_per_request()


def test_from_settings_refuses_a_relying_party_decided_per_request(tenants):
    assert ceremonies.RelyingParty.decided_per_request()
    with pytest.raises(ImproperlyConfigured, match="for_request"):
        ceremonies.RelyingParty.from_settings()


def test_a_domain_rp_id_is_never_taken_for_a_dotted_path(settings):
    # "tests.testapp" is an importable package; an RP ID is still a domain unless it names a
    # callable.
    settings.PASSKEYS_RP_ID = "tests.example"
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://tests.example"]
    assert ceremonies.RelyingParty.from_settings().id == "tests.example"


# -- Links in e-mails and the well-known document ----------------------------------------------


def test_notification_links_point_at_the_requests_tenant(
    tenants, django_capture_on_commit_callbacks
):
    user = UserFactory(email="owner@a.example")
    with django_capture_on_commit_callbacks(execute=True):
        enroll_on(B, user, authenticator_of(B))
    [message] = mail.outbox
    assert "https://b.example/auth/passkey/security/" in message.body
    assert "a.example/auth" not in message.body


def test_a_configured_base_url_still_wins(tenants, settings, django_capture_on_commit_callbacks):
    settings.PASSKEYS_BASE_URL = "https://accounts.example"
    with django_capture_on_commit_callbacks(execute=True):
        enroll_on(B, UserFactory(email="owner@b.example"), authenticator_of(B))
    assert "https://accounts.example/auth/passkey/security/" in mail.outbox[0].body


def test_the_recovery_link_points_at_the_requests_tenant(tenants):
    from django_passkeys.flows.recovery import recovery_link

    request = RequestFactory().post("/", HTTP_HOST=A)
    assert recovery_link("token", request).startswith("https://a.example/auth/passkey/recover/")


def test_each_tenant_publishes_only_its_own_related_origins(tenants, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "a-shop.example", "b-shop.example"]
    settings.PASSKEYS_RELATED_ORIGINS = ["https://a-shop.example", "https://b-shop.example"]
    settings.PASSKEYS_ALLOWED_ORIGINS = lambda request: [
        origins_for(request)[0],
        f"https://{rp_id_for(request)[0]}-shop.example",
    ]
    for tenant in (A, B):
        response = Client(HTTP_HOST=tenant).get("/.well-known/webauthn")
        assert response.json() == {"origins": [f"https://{tenant[0]}-shop.example"]}
    assert Client(HTTP_HOST="c.example").get("/.well-known/webauthn").status_code == 404


# -- System checks -------------------------------------------------------------------------------


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_checks_say_the_callables_are_checked_per_request(tenants):
    messages = check_relying_party()
    assert ids(messages) == ["passkeys.I001"]
    assert "per request" in messages[0].msg
    # Nothing to say about runserver's address: the origins depend on the host.
    assert check_development_server() == []


def test_a_static_rp_id_with_per_request_origins_is_still_checked(settings):
    settings.PASSKEYS_RP_ID = "https://example.com"
    settings.PASSKEYS_ALLOWED_ORIGINS = origins_for
    assert ids(check_relying_party()) == ["passkeys.I001", "passkeys.E001"]


def test_static_origins_with_a_per_request_rp_id_are_still_checked(settings):
    settings.PASSKEYS_RP_ID = rp_id_for
    settings.PASSKEYS_ALLOWED_ORIGINS = ["https://a.example", "http://b.example", "b.example"]
    assert ids(check_relying_party()) == ["passkeys.I001", "passkeys.E004", "passkeys.E002"]


def test_any_host_with_a_per_request_relying_party_is_a_warning(tenants, settings):
    settings.ALLOWED_HOSTS = ["*"]
    assert ids(check_relying_party()) == ["passkeys.I001", "passkeys.W010"]


def test_a_dotted_path_that_does_not_import_is_an_error(settings):
    settings.PASSKEYS_RP_ID = f"{THIS_MODULE}.no_such_function"
    assert ids(check_relying_party()) == ["passkeys.E020"]
    settings.PASSKEYS_RP_ID = "example.com"
    settings.PASSKEYS_ALLOWED_ORIGINS = f"{THIS_MODULE}.no_such_function"
    assert ids(check_relying_party()) == ["passkeys.E020"]
    assert check_development_server() == []


def test_manage_py_check_passes_with_per_request_callables(tenants, capsys):
    call_command("check")
    output = capsys.readouterr()
    assert "passkeys.I001" in output.err + output.out


def test_the_error_names_the_host_and_the_answer_while_debugging(tenants, settings):
    settings.DEBUG = True
    settings.PASSKEYS_RP_ID = lambda request: "evil.example"
    body = TenantClient(A).post(LOGIN_OPTIONS).json()
    assert body["error"]["code"] == "rp_not_configured"
    assert "evil.example" in body["error"]["message"]
    assert "'a.example'" in body["error"]["message"]
    json.dumps(body)  # plain JSON
