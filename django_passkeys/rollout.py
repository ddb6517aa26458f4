"""Who is *offered* passkeys: the enrolment prompt, the "Add a passkey" button, the upgrade
after a password sign-in. ``PASSKEYS_ROLLOUT`` moves a site through the stages:

``"off"``
    Nobody is offered passkeys.
cohort: ``{"users": [...], "groups": [...], "staff": True, "check": callable}``
    Listed users (usernames, or primary keys), members of the listed groups, staff users, and
    users for whom ``check(user)`` (a callable or its dotted path) is true. Any one suffices.
percentage: the same, plus ``"percentage": 10``
    The cohort and a stable share of everyone else. Each user's place is a keyed hash of the
    user id (HMAC-SHA256 keyed by ``SECRET_KEY``, with the optional ``"seed"``), a number in
    ``[0, 100)`` that never changes: raising 10 to 20 keeps the first 10 % and adds the next
    10 %; the same user gets the same answer on every device. Changing ``"seed"`` or
    ``SECRET_KEY`` deals the places anew.
``"all"`` (the default)
    Everyone.
``{"waffle_flag": "passkeys"}``
    A django-waffle flag decides instead (its own everyone / users / groups / staff / percent
    rules), changed in the admin with no deploy. Waffle's percentage is per browser (a cookie,
    with ``waffle.middleware.WaffleMiddleware``), not per user.

Whatever the stage, users who already have a passkey sign in with it, and autofill on the
sign-in page is never withheld: the rollout only decides whom the app *invites*.

Why django-waffle, and only as an option: it is the maintained feature-flag app of the Django
world (BSD, on PyPI since 2011, 5.0.0 released June 2025 for Django 4.2 to 5.2, stable API:
``waffle.flag_is_active(request, name)``), so a site that runs it keeps one place for its
flags and changes the stage at run time. The built-in stages need nothing: this module imports
``waffle`` only when ``PASSKEYS_ROLLOUT`` names a flag, and then only inside the function that
asks it; without it installed such a setting offers passkeys to nobody (fail closed) and the
system check ``passkeys.E018`` says why.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.module_loading import import_string

from django_passkeys.conf import conf

logger = logging.getLogger("django_passkeys")

Stage = Literal["off", "cohort", "percentage", "all", "waffle"]
#: The keys a dictionary ``PASSKEYS_ROLLOUT`` may hold.
ROLLOUT_KEYS = frozenset({"users", "groups", "staff", "check", "percentage", "seed", "waffle_flag"})
_BUCKET_SALT = "django_passkeys.rollout"


def rollout_errors(value: Any) -> list[str]:
    """What is wrong with a ``PASSKEYS_ROLLOUT`` value (empty when it is valid)."""
    if value in ("off", "all"):
        return []
    if not isinstance(value, Mapping):
        return [f"PASSKEYS_ROLLOUT is {value!r}: expected 'off', 'all' or a dict."]
    errors = [f"unknown key {key!r}" for key in value if key not in ROLLOUT_KEYS]
    if "waffle_flag" in value:
        if not isinstance(value["waffle_flag"], str) or not value["waffle_flag"]:
            errors.append("'waffle_flag' is a flag name")
        if set(value) - {"waffle_flag"}:
            errors.append("'waffle_flag' replaces the other keys: waffle decides alone")
    for key in ("users", "groups"):
        if key in value and (
            isinstance(value[key], str | bytes) or not isinstance(value[key], Iterable)
        ):
            errors.append(f"{key!r} is a list")
    percentage = value.get("percentage", 0)
    if isinstance(percentage, bool) or not isinstance(percentage, int | float):
        errors.append("'percentage' is a number")
    elif not 0 <= percentage <= 100:
        errors.append("'percentage' is between 0 and 100")
    check = value.get("check")
    if check is not None and not callable(check):
        try:
            import_string(str(check))
        except ImportError:
            errors.append(f"'check' {check!r} cannot be imported")
    return [f"PASSKEYS_ROLLOUT: {error}." for error in errors]


def _config() -> str | Mapping[str, Any]:
    value: str | Mapping[str, Any] = conf.PASSKEYS_ROLLOUT
    if rollout_errors(value):
        # Fail closed; the system check reports the mistake at start-up.
        return "off"
    return value


def stage() -> Stage:
    """The configured stage: ``off``, ``cohort``, ``percentage``, ``all`` or ``waffle``."""
    config = _config()
    if isinstance(config, str):
        return "all" if config == "all" else "off"
    if "waffle_flag" in config:
        return "waffle"
    return "percentage" if "percentage" in config else "cohort"


def waffle_available() -> bool:
    """Whether django-waffle can be imported (and is installed in the project)."""
    try:
        importlib.import_module("waffle")
    except ImportError:
        return False
    from django.apps import apps

    return apps.is_installed("waffle")


def _bucket_key(seed: str = "") -> bytes:
    # As django.utils.crypto.salted_hmac derives its key, computed once for many users.
    return hashlib.sha256(f"{_BUCKET_SALT}{seed}{settings.SECRET_KEY}".encode()).digest()


def _bucket(key: bytes, user_id: Any) -> float:
    digest = hmac.digest(key, str(user_id).encode(), "sha256")
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def rollout_bucket(user_id: Any, *, seed: str = "") -> float:
    """The user's place in the percentage rollout, in ``[0, 100)``, stable for the user id."""
    return _bucket(_bucket_key(seed), user_id)


def _check(config: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    check = config.get("check")
    if check is None:
        return None
    return check if callable(check) else import_string(str(check))  # type: ignore[no-any-return]


def in_cohort(user: Any, config: Mapping[str, Any]) -> bool:
    """Whether ``user`` is one of the cohort ``config`` describes (``users``, ``staff``,
    ``groups``, ``check``): no query but for groups."""
    listed = config.get("users") or ()
    if listed and (user.pk in listed or user.get_username() in listed):
        return True
    if config.get("staff") and getattr(user, "is_staff", False):
        return True
    groups = list(config.get("groups") or ())
    if groups and hasattr(user, "groups") and user.groups.filter(name__in=groups).exists():
        return True
    check = _check(config)
    return bool(check is not None and check(user))


def _waffle_offers(user: Any, flag_name: str, request: HttpRequest | None) -> bool:
    if not waffle_available():
        logger.warning("PASSKEYS_ROLLOUT names a waffle flag but django-waffle is not installed")
        return False
    import waffle

    if request is not None and getattr(request, "user", None) == user:
        # The request carries waffle's percentage cookie and the user.
        return bool(waffle.flag_is_active(request, flag_name))
    return bool(waffle.get_waffle_flag_model().get(flag_name).is_active_for_user(user))


def is_offered(user: Any, request: HttpRequest | None = None) -> bool:
    """Whether ``user`` is offered passkeys now. Anonymous users never are.

    Costs nothing for ``off``, ``all``, listed users, staff and percentages; one query for
    groups; what waffle costs for a flag. Pass ``request`` for waffle's percentage cookie.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    config = _config()
    if isinstance(config, str):
        return config == "all"
    if "waffle_flag" in config:
        return _waffle_offers(user, str(config["waffle_flag"]), request)
    percentage = float(config.get("percentage", 0))
    if percentage and rollout_bucket(user.pk, seed=str(config.get("seed", ""))) < percentage:
        return True
    return in_cohort(user, config)


def passkeys_offered(request: HttpRequest) -> bool:
    """Whether the request's user is offered passkeys (the template tag and pages use this).

    Memoised on the request: a page that asks twice costs one answer.
    """
    cached = getattr(request, "_passkeys_offered", None)
    if isinstance(cached, bool):
        return cached
    offered = is_offered(getattr(request, "user", None), request)
    request._passkeys_offered = offered  # type: ignore[attr-defined]
    return offered


def offered_user_ids(users: QuerySet[Any]) -> set[Any]:
    """The primary keys of those of ``users`` (a queryset of the user model) who are offered
    passkeys now, for reports: a few queries however many users, waffle aside (one answer per
    user, and its per-browser percentage is left out: only a request can decide it)."""
    config = _config()
    if isinstance(config, str):
        return set(users.values_list("pk", flat=True)) if config == "all" else set()
    if "waffle_flag" in config:
        flag = str(config["waffle_flag"])
        return {u.pk for u in users.iterator() if _waffle_offers(u, flag, None)}
    offered: set[Any] = set()
    percentage = float(config.get("percentage", 0))
    if percentage:
        key = _bucket_key(str(config.get("seed", "")))
        pks = users.values_list("pk", flat=True).iterator()
        offered = {pk for pk in pks if _bucket(key, pk) < percentage}
    return offered | cohort_user_ids(users, config, exclude=offered)


def cohort_user_ids(
    users: QuerySet[Any], config: Mapping[str, Any], *, exclude: set[Any] | None = None
) -> set[Any]:
    """The primary keys of those of ``users`` in the cohort ``config`` describes (a query, plus
    a call per user for ``check``); ``exclude``: already counted, so not checked again."""
    model = users.model
    listed = list(config.get("users") or ())
    cohort = Q(pk__in=[v for v in listed if not isinstance(v, str)]) | Q(
        **{f"{model.USERNAME_FIELD}__in": [v for v in listed if isinstance(v, str)]}
    )
    field_names = {f.name for f in model._meta.get_fields()}
    if config.get("staff") and "is_staff" in field_names:
        cohort |= Q(is_staff=True)
    if config.get("groups") and "groups" in field_names:
        cohort |= Q(groups__name__in=list(config["groups"]))
    found = set(users.filter(cohort).values_list("pk", flat=True).distinct())
    check = _check(config)
    if check is not None:
        skip = found | (exclude or set())
        found |= {u.pk for u in users.iterator() if u.pk not in skip and check(u)}
    return found
