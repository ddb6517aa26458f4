"""Admin: passkeys listed, searched and filtered at a fixed query cost; revoked with a reason on a
confirmation page, with their own permission; the audit trail read-only; the user's page; passkey
sign-in on the admin's login page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.urls import path, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from django_passkeys.models import AuthEvent

from .authenticator import SoftAuthenticator
from .factories import CredentialFactory, UserFactory
from .support import enroll
from .testapp.admin import UserAdmin
from .testapp.models import User

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_passkeys_credential_changelist"


def test_credential_changelist_renders(admin_client):
    CredentialFactory(name="Work laptop")
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert b"Work laptop" in response.content


def test_credential_change_page_hides_key_material(admin_client):
    credential = CredentialFactory(name="Phone")
    url = reverse("admin:django_passkeys_credential_change", args=[credential.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert b'name="public_key"' not in response.content
    assert b'name="credential_id"' not in response.content


def test_passkeys_cannot_be_added_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:django_passkeys_credential_add"))
    assert response.status_code == 403


def test_auth_event_changelist_renders_and_is_read_only(admin_client):
    event = AuthEvent.objects.create(
        event_type=AuthEvent.Type.LOGIN, success=False, reason_code="signature_invalid"
    )
    response = admin_client.get(reverse("admin:django_passkeys_authevent_changelist"))
    assert response.status_code == 200
    assert b"signature_invalid" in response.content
    assert admin_client.get(reverse("admin:django_passkeys_authevent_add")).status_code == 403
    change = admin_client.get(reverse("admin:django_passkeys_authevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="reason_code"' not in change.content  # shown, not editable


# -- the passkey list: search, filters, and a query count that does not grow ---------------------

#: Session and user, the two counts (filtered and all), the page of passkeys with their owners
#: (one join), and the distinct AAGUIDs and attestation formats the filters offer. The same for
#: 1 passkey as for 200, filtered and searched or not.
CREDENTIAL_LIST_QUERIES = 7
#: Session and user, the two counts, the page of events with their users and passkeys (one
#: join), the date hierarchy's range and days, and the reason codes the filter offers.
EVENT_LIST_QUERIES = 8
GOOGLE = "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"
ONE_PASSWORD = "bada5566-a7aa-401f-bd96-45619a55120d"


@pytest.mark.parametrize("count", [1, 200])
def test_credential_list_costs_the_same_queries_for_1_or_200_passkeys(
    admin_client, count, django_assert_num_queries
):
    CredentialFactory.create_batch(count, aaguid=GOOGLE)
    with django_assert_num_queries(CREDENTIAL_LIST_QUERIES):
        response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.content.decode().count("Google Password Manager") >= min(count, 100)


@pytest.mark.parametrize("count", [1, 200])
def test_credential_list_filtered_and_searched_costs_the_same_queries(
    admin_client, count, django_assert_num_queries
):
    CredentialFactory.create_batch(count, aaguid=GOOGLE)
    query = {
        "q": "example.com",
        "status": "active",
        "provider": "Google Password Manager",
        "backup": "device",
        "used": "never",
    }
    with django_assert_num_queries(CREDENTIAL_LIST_QUERIES):
        response = admin_client.get(reverse(CHANGELIST), query)
    assert response.status_code == 200
    assert response.context["cl"].result_count == count


def test_credential_list_is_searchable_by_username_and_email(admin_client):
    alice = UserFactory(username="alice", email="alice@wonder.example")
    CredentialFactory(user=alice, name="Alice's phone")
    CredentialFactory(name="Someone else's key")
    for term in ("alice", "wonder.example"):
        results = admin_client.get(reverse(CHANGELIST), {"q": term}).context["cl"].result_list
        assert [c.name for c in results] == ["Alice's phone"]


def test_credential_list_filters_status_provider_backup_and_last_use(admin_client):
    now = timezone.now()
    synced = CredentialFactory(aaguid=GOOGLE, backup_eligible=True, backup_state=True)
    pending = CredentialFactory(aaguid=ONE_PASSWORD, backup_eligible=True, backup_state=False)
    key = CredentialFactory(aaguid="", backup_eligible=False, last_used_at=now)
    stale = CredentialFactory(aaguid="", last_used_at=now - timedelta(days=91))
    revoked = CredentialFactory(aaguid=GOOGLE, backup_eligible=True, backup_state=True)
    revoked.revoke(reason="lost")

    def listed(**query):
        response = admin_client.get(reverse(CHANGELIST), query)
        return {c.pk for c in response.context["cl"].result_list}

    assert listed(status="active") == {synced.pk, pending.pk, key.pk, stale.pk}
    assert listed(status="revoked") == {revoked.pk}
    assert listed(provider="Google Password Manager") == {synced.pk, revoked.pk}
    assert listed(provider="1Password") == {pending.pk}
    assert listed(provider="-") == {key.pk, stale.pk}
    assert listed(backup="synced") == {synced.pk, revoked.pk}
    assert listed(backup="eligible") == {pending.pk}
    assert listed(backup="device") == {key.pk, stale.pk}
    assert listed(used="never") == {synced.pk, pending.pk, revoked.pk}
    assert listed(used="recent") == {key.pk}
    assert listed(used="stale") == {stale.pk}
    # The provider filter offers the providers in use, by name, and "Unknown provider".
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "?provider=1Password" in html and "Unknown provider" in html
    assert "Apple Passwords" not in html


# -- revoking: a confirmation page with a reason, through flows.revoke, its own permission ------


def select(credentials, **extra):
    return {
        "action": "revoke_selected",
        ACTION_CHECKBOX_NAME: [c.pk for c in credentials],
        **extra,
    }


def test_revoke_action_asks_for_a_reason_before_revoking_anything(admin_client):
    selected = CredentialFactory(name="Work laptop")
    response = admin_client.post(reverse(CHANGELIST), select([selected]))
    assert response.status_code == 200
    assert response.template_name == "admin/django_passkeys/credential/revoke.html"
    html = response.content.decode()
    assert "Work laptop" in html and 'name="reason"' in html
    selected.refresh_from_db()
    assert selected.is_active
    assert not AuthEvent.objects.filter(event_type=AuthEvent.Type.REVOKE).exists()


def test_revoke_action_without_a_reason_revokes_nothing(admin_client):
    selected = CredentialFactory()
    response = admin_client.post(reverse(CHANGELIST), select([selected], reason="  "))
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    selected.refresh_from_db()
    assert selected.is_active


def test_revoke_action_refuses_a_reason_with_control_characters(admin_client):
    selected = CredentialFactory()
    response = admin_client.post(reverse(CHANGELIST), select([selected], reason="lost\r\nx"))
    assert response.context["form"].errors["reason"]
    selected.refresh_from_db()
    assert selected.is_active


def test_revoke_action_revokes_the_selected_active_passkeys_with_the_reason(
    admin_client, admin_user, mailoutbox, django_capture_on_commit_callbacks
):
    selected = CredentialFactory()
    already = CredentialFactory()
    already.revoke(reason="earlier")
    untouched = CredentialFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            select([selected, already], reason="Laptop stolen, ticket 42"),
            follow=True,
        )

    assert response.status_code == 200
    assert "1 passkey revoked." in [str(m) for m in response.context["messages"]]
    selected.refresh_from_db()
    assert not selected.is_active
    assert selected.revoked_by == admin_user
    assert selected.revoke_reason == "Laptop stolen, ticket 42"
    # Through the flow: audited and the owner told; and in the admin's own history.
    event = AuthEvent.objects.get(event_type=AuthEvent.Type.REVOKE)
    assert event.credential == selected and event.user == selected.user
    assert [m.to for m in mailoutbox] == [[selected.user.email]]
    entry = LogEntry.objects.get(object_id=str(selected.pk))
    assert entry.user == admin_user and "Laptop stolen" in entry.get_change_message()
    already.refresh_from_db()
    assert already.revoke_reason == "earlier"
    untouched.refresh_from_db()
    assert untouched.is_active


def test_revoke_action_on_revoked_passkeys_only_says_so(admin_client):
    already = CredentialFactory()
    already.revoke(reason="earlier")
    response = admin_client.post(reverse(CHANGELIST), select([already]), follow=True)
    assert "None of the selected passkeys is active." in [
        str(m) for m in response.context["messages"]
    ]


def test_revoke_page_revokes_one_passkey_with_a_reason(admin_client, admin_user):
    credential = CredentialFactory(name="Phone")
    change = reverse("admin:django_passkeys_credential_change", args=[credential.pk])
    url = reverse("admin:django_passkeys_credential_revoke", args=[credential.pk])
    assert f'href="{url}"' in admin_client.get(change).content.decode()

    page = admin_client.get(url)
    assert page.status_code == 200 and 'name="reason"' in page.content.decode()
    credential.refresh_from_db()
    assert credential.is_active

    response = admin_client.post(url, {"reason": "Reported lost"})
    assert (response.status_code, response["Location"]) == (302, change)
    credential.refresh_from_db()
    assert not credential.is_active
    assert (credential.revoked_by, credential.revoke_reason) == (admin_user, "Reported lost")
    # A revoked passkey's page offers no revoke link, and its revoke page sends back.
    assert f'href="{url}"' not in admin_client.get(change).content.decode()
    assert admin_client.get(url)["Location"] == change


def test_revoke_page_of_an_unknown_passkey_is_404(admin_client):
    url = reverse("admin:django_passkeys_credential_revoke", args=[999999])
    assert admin_client.get(url).status_code == 404


@pytest.fixture
def staff_client(client):
    """Staff who may view and rename passkeys, but not revoke them (yet)."""
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="django_passkeys",
            codename__in=["view_credential", "change_credential"],
        )
    )
    client.force_login(staff)
    client.staff = staff
    return client


def test_revoking_needs_its_own_permission(staff_client):
    credential = CredentialFactory()
    changelist = staff_client.get(reverse(CHANGELIST))
    assert changelist.status_code == 200
    assert "revoke_selected" not in changelist.content.decode()
    url = reverse("admin:django_passkeys_credential_revoke", args=[credential.pk])
    change = reverse("admin:django_passkeys_credential_change", args=[credential.pk])
    assert f'href="{url}"' not in staff_client.get(change).content.decode()
    assert staff_client.get(url).status_code == 403
    assert staff_client.post(url, {"reason": "x"}).status_code == 403
    staff_client.post(reverse(CHANGELIST), select([credential], reason="x"))
    credential.refresh_from_db()
    assert credential.is_active

    permission = Permission.objects.get(codename="revoke_credential")
    assert permission.name == "Can revoke passkeys"
    staff_client.staff.user_permissions.add(permission)
    staff_client.post(url, {"reason": "now allowed"})
    credential.refresh_from_db()
    assert not credential.is_active


# -- the audit trail --------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 200])
def test_auth_event_list_costs_the_same_queries_for_1_or_200_events(
    admin_client, count, django_assert_num_queries
):
    credential = CredentialFactory()
    AuthEvent.objects.bulk_create(
        AuthEvent(
            event_type=AuthEvent.Type.LOGIN,
            success=True,
            user=credential.user,
            credential=credential,
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
        )
        for _ in range(count)
    )
    with django_assert_num_queries(EVENT_LIST_QUERIES):
        response = admin_client.get(reverse("admin:django_passkeys_authevent_changelist"))
    assert response.status_code == 200
    assert "Chrome on Linux" in response.content.decode()


def test_auth_events_cannot_be_deleted_in_the_admin(admin_client):
    event = AuthEvent.objects.create(event_type=AuthEvent.Type.LOGIN, success=True)
    url = reverse("admin:django_passkeys_authevent_delete", args=[event.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse("admin:django_passkeys_authevent_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    assert AuthEvent.objects.filter(pk=event.pk).exists()


def test_auth_events_are_searchable_by_user_and_filtered_by_user(admin_client):
    alice = UserFactory(username="alice", email="alice@wonder.example")
    AuthEvent.objects.create(event_type=AuthEvent.Type.LOGIN, success=True, user=alice)
    AuthEvent.objects.create(event_type=AuthEvent.Type.LOGIN, success=True)
    url = reverse("admin:django_passkeys_authevent_changelist")
    for query in ({"q": "wonder.example"}, {"user": str(alice.pk)}):
        results = admin_client.get(url, query).context["cl"].result_list
        assert [e.user for e in results] == [alice]


# -- the user's page: passkeys, second factors, latest events ----------------------------------


def test_user_page_shows_passkeys_second_factors_and_latest_events(admin_client):
    user = UserFactory()
    credential = CredentialFactory(user=user, name="Kitchen tablet", aaguid=GOOGLE)
    CredentialFactory(name="Not theirs")
    TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    AuthEvent.objects.create(
        event_type=AuthEvent.Type.LOGIN,
        success=False,
        reason_code="signature_invalid",
        user=user,
        credential=credential,
        ip_address="198.51.100.7",
    )
    url = reverse("admin:testapp_user_change", args=[user.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Kitchen tablet" in html and "Google Password Manager" in html
    assert "Not theirs" not in html
    credential_url = reverse("admin:django_passkeys_credential_change", args=[credential.pk])
    assert f'href="{credential_url}"' in html  # where it is revoked
    assert "Authenticator app</strong>: set up on" in html
    assert "Recovery codes</strong>: none" in html
    assert "signature_invalid" in html and "198.51.100.7" in html
    events = reverse("admin:django_passkeys_authevent_changelist")
    assert f'href="{events}?user={user.pk}"' in html
    # Nothing of it is a form field: the page saves the user as before.
    assert 'name="passkeys-0-name"' not in html


def test_user_page_of_a_user_without_passkeys_or_events(admin_client):
    user = UserFactory()
    html = admin_client.get(reverse("admin:testapp_user_change", args=[user.pk])).content
    assert b"None yet." in html
    assert b"Authenticator app</strong>: none" in html


def test_user_add_page_is_unchanged(admin_client):
    response = admin_client.get(reverse("admin:testapp_user_add"))
    assert response.status_code == 200
    assert b"Second factors" not in response.content


# -- passkey sign-in on the admin's login page (PASSKEYS_ADMIN_LOGIN) ---------------------------


def test_admin_login_offers_no_passkey_by_default(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Use passkey" not in html and "passkeys-config" not in html
    assert 'autocomplete="username"' in html


def test_admin_login_offers_a_passkey_when_enabled(client, settings):
    settings.PASSKEYS_ADMIN_LOGIN = True
    response = client.get(reverse("admin:login"), {"next": "/admin/django_passkeys/"})
    html = response.content.decode()
    assert "Use passkey" in html and "data-pk-login" in html
    assert 'autocomplete="username webauthn"' in html  # autofill
    assert "django_passkeys/passkeys.js" in html
    config = response.context["passkeys_config"]
    assert config["next"] == "/admin/django_passkeys/"
    assert config["urls"]["loginVerify"] == "/auth/passkey/login/verify"
    # The password form is still there, as it was.
    assert 'id="login-form"' in html and 'name="password"' in html


def test_a_passkey_sign_in_from_the_admin_login_page_lands_in_the_admin(api, settings):
    settings.PASSKEYS_ADMIN_LOGIN = True
    staff = UserFactory(is_staff=True, is_superuser=True)
    authenticator = SoftAuthenticator()
    enroll(staff, authenticator)
    page = api.client.get(reverse("admin:login"), {"next": "/admin/"}, secure=True)
    config = page.context["passkeys_config"]
    options = api.post(config["urls"]["loginOptions"]).json()
    body = {**authenticator.get(options), "next": config["next"]}
    response = api.post(config["urls"]["loginVerify"], body)
    assert response.status_code == 200, response.content
    assert response.json()["redirect"] == "/admin/"
    assert api.client.get("/admin/", secure=True).status_code == 200


# -- what the coverage review found untested --------------------------------------------------


def test_a_passkey_revoked_by_someone_else_meanwhile_is_not_counted_or_logged(
    admin_client, monkeypatch
):
    from django_passkeys import admin as passkeys_admin
    from django_passkeys import flows

    first, second = CredentialFactory(), CredentialFactory()
    real_revoke = flows.revoke

    def another_admin_revokes_the_other_one_meanwhile(credential, **kwargs):
        for other in (first, second):
            if (
                other.pk != credential.pk
                and not passkeys_admin.Credential.objects.filter(
                    pk=other.pk, revoke_reason="revoked elsewhere"
                ).exists()
            ):
                real_revoke(other, by=None, reason="revoked elsewhere")
        return real_revoke(credential, **kwargs)

    monkeypatch.setattr(
        passkeys_admin.flows, "revoke", another_admin_revokes_the_other_one_meanwhile
    )
    response = admin_client.post(
        reverse(CHANGELIST), select([first, second], reason="Lost"), follow=True
    )
    assert "1 passkey revoked." in [str(m) for m in response.context["messages"]]
    # One was revoked by this admin, the other meanwhile; its reason is not overwritten.
    revoked = {c.pk: c.revoke_reason for c in passkeys_admin.Credential.objects.all()}
    assert sorted(revoked.values()) == ["Lost", "revoked elsewhere"]
    (mine,) = [pk for pk, reason in revoked.items() if reason == "Lost"]
    assert list(LogEntry.objects.values_list("object_id", flat=True)) == [str(mine)]


def test_user_page_shows_an_authenticator_app_never_confirmed(admin_client):
    user = UserFactory()
    TOTPDevice.objects.create(user=user, name="app", confirmed=False)
    html = admin_client.get(reverse("admin:testapp_user_change", args=[user.pk])).content
    assert b"Authenticator app</strong>: set up started, never confirmed with a code" in html


#: A support site that shows users but not the audit trail, the only admin of its URLconf.
support_site = AdminSite(name="admin")
support_site.register(User, UserAdmin)
urlpatterns = [path("support/", support_site.urls)]


def test_user_page_on_a_site_without_the_event_admin_links_to_no_event_list(settings):
    user = UserFactory()
    AuthEvent.objects.create(event_type=AuthEvent.Type.LOGIN, success=True, user=user)
    # On the test project's site, the table links to the user's events.
    assert "?user=" in admin.site._registry[User].passkeys_recent_events(user)
    settings.ROOT_URLCONF = __name__
    html = support_site._registry[User].passkeys_recent_events(user)
    assert "<table" in html
    assert "<a " not in html


def test_a_login_page_a_site_set_itself_is_kept(settings):
    from django.contrib.admin.forms import AdminAuthenticationForm

    from django_passkeys.admin import ADMIN_LOGIN_TEMPLATE, use_passkey_admin_login

    site = AdminSite(name="own")
    site.login_template = "own/login.html"
    site.login_form = AdminAuthenticationForm
    use_passkey_admin_login(site)
    assert (site.login_template, site.login_form) == ("own/login.html", AdminAuthenticationForm)
    bare = AdminSite(name="bare")
    use_passkey_admin_login(bare)
    assert bare.login_template == ADMIN_LOGIN_TEMPLATE


def test_approving_an_assisted_recovery_needs_exactly_one_selected(admin_client):
    from django_passkeys.models import RecoveryRequest

    user = UserFactory()
    recoveries = [
        RecoveryRequest.objects.create(
            user=user, token_sha256=f"{i}" * 64, expires_at=timezone.now() + timedelta(minutes=10)
        )
        for i in range(2)
    ]
    response = admin_client.post(
        reverse("admin:django_passkeys_recoveryrequest_changelist"),
        {"action": "approve_assisted_recovery", ACTION_CHECKBOX_NAME: [r.pk for r in recoveries]},
        follow=True,
    )
    assert "Select exactly one recovery." in [str(m) for m in response.context["messages"]]
    assert {r.state for r in RecoveryRequest.objects.all()} == {RecoveryRequest.State.REQUESTED}
    assert not LogEntry.objects.exists()


def test_a_user_model_without_an_email_field_is_searched_by_username(admin_client, monkeypatch):
    # EMAIL_FIELD naming a field the model lacks (AbstractBaseUser's default "email" on a model
    # without one): the search leaves it out rather than failing with FieldError.
    monkeypatch.setattr(User, "EMAIL_FIELD", "contact_address")
    CredentialFactory(name="Found", user=UserFactory(username="findme"))
    CredentialFactory(name="Other", user=UserFactory(username="someone"))
    response = admin_client.get(reverse(CHANGELIST), {"q": "findme"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Found" in html and "Other" not in html
