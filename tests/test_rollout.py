"""``PASSKEYS_ROLLOUT``: who is offered passkeys, stage by stage, and django-waffle as an
optional flag source."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.template import Context, Template
from django.test import RequestFactory

from django_passkeys import rollout
from django_passkeys.rollout import (
    _bucket,
    _bucket_key,
    is_offered,
    offered_user_ids,
    rollout_bucket,
    rollout_errors,
    stage,
)

from .factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
IDS = range(1, 100_001)


def staff_only(user):
    return user.get_username().startswith("pilot")


# -- Stages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("off", "off"),
        ("all", "all"),
        ({"users": ["a"]}, "cohort"),
        ({"groups": ["g"], "staff": True}, "cohort"),
        ({"percentage": 10}, "percentage"),
        ({"staff": True, "percentage": 5.5}, "percentage"),
        ({"waffle_flag": "passkeys"}, "waffle"),
        ("everyone", "off"),  # invalid: fails closed
    ],
)
def test_the_stage_is_read_from_the_setting(settings, value, expected):
    settings.PASSKEYS_ROLLOUT = value
    assert stage() == expected


def test_the_default_offers_everyone(settings, user):
    del settings.PASSKEYS_ROLLOUT
    assert stage() == "all" and is_offered(user)


def test_off_offers_nobody(settings, user):
    settings.PASSKEYS_ROLLOUT = "off"
    assert not is_offered(user)


def test_anonymous_visitors_are_never_offered(settings):
    settings.PASSKEYS_ROLLOUT = "all"
    assert not is_offered(AnonymousUser()) and not is_offered(None)


def test_a_cohort_of_users_groups_staff_and_a_callable(settings):
    alice = UserFactory(username="alice")
    by_pk = UserFactory()
    settings.PASSKEYS_ROLLOUT = {
        "users": ["alice", by_pk.pk],  # usernames, or primary keys
        "groups": ["pilots"],
        "staff": True,
        "check": "tests.test_rollout.staff_only",
    }
    grouped = UserFactory()
    grouped.groups.add(Group.objects.create(name="pilots"))
    staff = UserFactory(is_staff=True)
    checked = UserFactory(username="pilot-bob")
    outsider = UserFactory()
    users = [alice, by_pk, grouped, staff, checked, outsider]
    assert [is_offered(u) for u in users] == [True, True, True, True, True, False]
    assert offered_user_ids(type(alice).objects.all()) == {u.pk for u in users[:5]}


def test_a_callable_check_object(settings):
    settings.PASSKEYS_ROLLOUT = {"check": lambda user: user.email.endswith("@corp.example")}
    assert is_offered(UserFactory(email="a@corp.example"))
    assert not is_offered(UserFactory(email="a@home.example"))


# -- Percentage -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def places():
    """The places of 100 000 user ids, computed once for the percentage tests."""
    key = _bucket_key()
    return {i: _bucket(key, i) for i in IDS}


def test_raising_the_percentage_keeps_everyone_already_in(places):
    ten = {i for i, place in places.items() if place < 10}
    twenty = {i for i, place in places.items() if place < 20}
    assert ten < twenty
    assert all(is_in for is_in in (rollout_bucket(i) < 10 for i in list(ten)[:100]))


def test_places_are_uniform_within_two_percent(places):
    deciles = [0] * 10
    for place in places.values():
        deciles[int(place // 10)] += 1
    for low, count in enumerate(deciles):
        assert abs(count / len(places) - 0.10) <= 0.02, (low * 10, count)
    for percentage in (1, 10, 20, 50):
        offered = sum(place < percentage for place in places.values()) / len(places)
        assert abs(offered - percentage / 100) <= 0.02, (percentage, offered)


def test_a_users_place_is_stable_and_the_seed_deals_again(settings):
    assert rollout_bucket(7) == rollout_bucket(7)
    assert rollout_bucket(7) != rollout_bucket(7, seed="second wave")
    assert rollout_bucket(7) != rollout_bucket(8)


def test_a_percentage_stage_offers_its_share_and_the_cohort(settings):
    users = UserFactory.create_batch(40)
    staff = UserFactory(is_staff=True)
    settings.PASSKEYS_ROLLOUT = {"percentage": 50, "staff": True}
    offered = {u.pk for u in users if is_offered(u)}
    assert offered == {u.pk for u in users if rollout_bucket(u.pk) < 50}
    assert is_offered(staff)
    assert offered_user_ids(type(staff).objects.all()) == offered | {staff.pk}
    settings.PASSKEYS_ROLLOUT = {"percentage": 0}
    assert not any(is_offered(u) for u in users)
    settings.PASSKEYS_ROLLOUT = {"percentage": 100}
    assert all(is_offered(u) for u in users)


def test_users_with_a_passkey_still_sign_in_whatever_the_stage(settings, api):
    """The rollout only decides whom the app invites: sign-in and autofill are never withheld."""
    from .authenticator import SoftAuthenticator
    from .support import enroll, passkey_login

    user = UserFactory()
    authenticator = SoftAuthenticator()
    enroll(user, authenticator)
    settings.PASSKEYS_ROLLOUT = "off"
    page = api.client.get("/auth/passkey/login/", secure=True).content.decode()
    assert 'autocomplete="username webauthn"' in page
    passkey_login(authenticator)


# -- django-waffle -----------------------------------------------------------------------------


@pytest.fixture
def flag_name(settings):
    """A waffle flag name of this test's own: waffle caches flags by name in the shared cache."""
    import uuid

    from waffle.models import Flag

    name = f"passkeys-{uuid.uuid4().hex}"
    settings.PASSKEYS_ROLLOUT = {"waffle_flag": name}
    yield name
    Flag(name=name).flush()


def test_a_waffle_flag_decides(flag_name):
    from waffle.models import Flag

    pilot, other = UserFactory(), UserFactory()
    flag = Flag.objects.create(name=flag_name)
    flag.users.add(pilot)
    assert is_offered(pilot) and not is_offered(other)
    assert offered_user_ids(type(pilot).objects.all()) == {pilot.pk}
    # Changed at run time, no deploy: everyone.
    Flag.objects.filter(pk=flag.pk).update(everyone=True)
    flag.flush()
    assert is_offered(other)


def test_a_waffle_flag_is_read_with_the_request(flag_name):
    from waffle.models import Flag

    Flag.objects.create(name=flag_name, percent=1)
    user = UserFactory()
    request = RequestFactory().get("/")
    request.COOKIES[f"dwf_{flag_name}"] = "True"  # this browser drew the 1 %
    request.user = user
    assert rollout.passkeys_offered(request)  # waffle's percentage needs the request
    assert not is_offered(user)  # without one, only its user rules apply


def test_without_waffle_a_flag_offers_nobody_and_the_check_says_why(settings, monkeypatch):
    settings.PASSKEYS_ROLLOUT = {"waffle_flag": "passkeys"}
    monkeypatch.setitem(sys.modules, "waffle", None)  # as if django-waffle were not installed
    assert not rollout.waffle_available()
    assert not is_offered(UserFactory())
    with pytest.raises(SystemCheckError, match="passkeys.E018"):
        call_command("check")


def test_the_built_in_stages_never_import_waffle(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "waffle", None)
    user = UserFactory(is_staff=True)
    for value in ("off", "all", {"staff": True}, {"percentage": 30, "groups": ["g"]}):
        settings.PASSKEYS_ROLLOUT = value
        is_offered(user)
        offered_user_ids(type(user).objects.all())
    assert sys.modules["waffle"] is None


def test_the_package_imports_and_runs_without_waffle(tmp_path):
    """A project without django-waffle: the app loads, checks pass, the stages work."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["waffle"] = None  # not installed
        import django
        from django.conf import settings
        settings.configure(
            SECRET_KEY="x",
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                            "django.contrib.sessions", "django_otp",
                            "django_otp.plugins.otp_totp", "django_passkeys"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            PASSKEYS_RP_ID="localhost", PASSKEYS_ROLLOUT={"percentage": 10},
        )
        django.setup()
        import django_passkeys.urls, django_passkeys.rollout, django_passkeys.upgrade
        import django_passkeys.templatetags.passkeys_rollout
        from django_passkeys.checks import check_rollout
        assert check_rollout() == [], check_rollout()
        from django_passkeys.rollout import rollout_bucket, stage
        assert stage() == "percentage" and 0 <= rollout_bucket(1) < 100
        assert sys.modules["waffle"] is None
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


# -- Settings checks and the template tag ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "some",
        ["alice"],
        {"user": ["alice"]},
        {"users": "alice"},
        {"percentage": 120},
        {"percentage": "10"},
        {"check": "no.such.function"},
        {"waffle_flag": ""},
        {"waffle_flag": "passkeys", "staff": True},
    ],
)
def test_a_broken_rollout_fails_the_check(settings, value):
    settings.PASSKEYS_ROLLOUT = value
    assert rollout_errors(value)
    with pytest.raises(SystemCheckError, match="passkeys.E018"):
        call_command("check")


def test_a_broken_passkey_only_policy_fails_the_check(settings):
    settings.PASSKEYS_PASSKEY_ONLY = {"percentage": 10}
    with pytest.raises(SystemCheckError, match="passkeys.E019"):
        call_command("check")


@pytest.mark.parametrize("value", ["required", True, 1, ["all"]])
def test_a_passkey_only_policy_that_is_neither_a_word_nor_a_dict_fails_the_check(settings, value):
    settings.PASSKEYS_PASSKEY_ONLY = value
    with pytest.raises(SystemCheckError, match="expected 'optional', 'off', 'all' or a dict"):
        call_command("check")


@pytest.mark.parametrize(("value", "offered"), [("all", "yes"), ("off", "no")])
def test_the_template_tag_says_whether_to_offer_passkeys(settings, user, value, offered):
    settings.PASSKEYS_ROLLOUT = value
    request = RequestFactory().get("/")
    request.user = user
    template = Template(
        "{% load passkeys_rollout %}{% passkeys_offered as offered %}"
        "{% if offered %}yes{% else %}no{% endif %}"
    )
    assert template.render(Context({"request": request})) == offered
    assert Template("{% load passkeys_rollout %}{% passkeys_offered %}").render(Context()) == (
        "False"
    )


def test_the_add_button_is_for_users_offered_passkeys_or_holding_one(api, user, settings):
    settings.PASSKEYS_ROLLOUT = "off"
    api.login(user)
    assert b"data-pk-add" not in api.client.get("/auth/passkey/manage/", secure=True).content
    CredentialFactory(user=user)
    assert b"data-pk-add" in api.client.get("/auth/passkey/manage/", secure=True).content
    settings.PASSKEYS_ROLLOUT = "all"
    other = UserFactory()
    api.login(other)
    assert b"data-pk-add" in api.client.get("/auth/passkey/manage/", secure=True).content
