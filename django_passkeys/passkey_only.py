"""Passkey-only accounts: password sign-in turned off, by the user or by the site.

**Who.** A user turns it on once they hold an active passkey and a recovery factor (recovery
codes or a confirmed authenticator app): without the second, losing the passkeys would leave
nothing but support. A site requires it with ``PASSKEYS_PASSKEY_ONLY``: ``"optional"`` (the
default: each user chooses), ``"off"`` (nobody may), a cohort (``users``, ``groups``,
``staff``, ``check``, as in ``PASSKEYS_ROLLOUT``) or ``"all"`` (the end state).

Either way it takes effect only while the user holds an active passkey. A user whose every
passkey was revoked (by an administrator, say) gets the password back instead of being locked
out; a required policy then applies again from their next passkey on.

**What it changes.**

- A password sign-in through a guarded backend (:class:`~django_passkeys.backends.PasskeyOnlyGuard`
  around ``ModelBackend`` or a custom backend) is refused *after* the password verified, so the
  refusal tells nothing to whoever does not know the password (security rule 11). The refusal
  is a ``ValidationError`` (code ``password_sign_in_disabled``) whose message points to passkey
  sign-in and account recovery: Django's ``AuthenticationForm`` and other form-based sign-ins
  show it as the form's error.
- Django's password reset (with :class:`~django_passkeys.forms.PasskeyOnlyPasswordResetForm`)
  sends such a user a pointer to account recovery instead of a reset link, and answers the page
  exactly as for anyone else.
- Turning it off again needs a fresh passkey assertion and waits out a cooldown
  (:func:`~django_passkeys.cooldown.check_cooldown`): giving the password back is what an
  attacker holding only the password would want.

Cost: :func:`is_passkey_only` is two indexed queries, run only by a password sign-in that
verified and by the pages that show the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from django_passkeys.conf import conf
from django_passkeys.models import AdoptionState, Credential
from django_passkeys.recovery_codes import recovery_codes_state
from django_passkeys.rollout import ROLLOUT_KEYS, cohort_user_ids, in_cohort, rollout_errors
from django_passkeys.totp import totp_state

__all__ = [
    "PasskeyOnlyState",
    "is_passkey_only",
    "passkey_only_user_ids",
    "passkey_only_state",
    "policy_errors",
    "required_for",
]

_COHORT_KEYS = ROLLOUT_KEYS - {"percentage", "seed", "waffle_flag"}


def policy_errors(value: Any) -> list[str]:
    """What is wrong with a ``PASSKEYS_PASSKEY_ONLY`` value (empty when it is valid)."""
    if value in ("optional", "off", "all"):
        return []
    if not isinstance(value, Mapping):
        return [f"PASSKEYS_PASSKEY_ONLY is {value!r}: expected 'optional', 'off', 'all' or a dict."]
    errors = [
        f"PASSKEYS_PASSKEY_ONLY: unknown key {key!r}." for key in value if key not in _COHORT_KEYS
    ]
    errors.extend(
        error.replace("PASSKEYS_ROLLOUT", "PASSKEYS_PASSKEY_ONLY")
        for error in rollout_errors({k: v for k, v in value.items() if k in _COHORT_KEYS})
    )
    return errors


def _policy() -> Any:
    value = conf.PASSKEYS_PASSKEY_ONLY
    # A broken policy requires nothing (the system check passkeys.E019 reports it): refusing
    # passwords by mistake would lock people out.
    return "optional" if policy_errors(value) else value


def required_for(user: Any) -> bool:
    """Whether the site requires passkey-only sign-in of ``user`` (once they hold a passkey)."""
    policy = _policy()
    if isinstance(policy, str):
        return policy == "all"
    return in_cohort(user, policy)


def _chosen(user: Any) -> bool:
    return AdoptionState.objects.filter(user_id=user.pk, passkey_only_since__isnull=False).exists()


def _has_passkey(user: Any) -> bool:
    return Credential.objects.active().filter(user_id=user.pk).exists()


def is_passkey_only(user: Any) -> bool:
    """Whether password sign-in is refused for ``user`` now: a choice or a requirement, and an
    active passkey to sign in with."""
    if getattr(user, "pk", None) is None:
        return False
    if not (required_for(user) or _chosen(user)):
        return False
    return _has_passkey(user)


def passkey_only_user_ids(users: QuerySet[Any]) -> set[Any]:
    """The primary keys of those of ``users`` whose password sign-in is refused now (reports)."""
    with_passkey = users.filter(pk__in=Credential.objects.active().values("user_id"))
    policy = _policy()
    if policy == "all":
        return set(with_passkey.values_list("pk", flat=True))
    chosen = set(
        with_passkey.filter(
            pk__in=AdoptionState.objects.filter(passkey_only_since__isnull=False).values("user_id")
        ).values_list("pk", flat=True)
    )
    if isinstance(policy, str):
        return chosen
    return chosen | cohort_user_ids(with_passkey, policy)


@dataclass(frozen=True)
class PasskeyOnlyState:
    """What the passkey-only page and the security page show, and what the user may do."""

    #: Password sign-in is refused now.
    enabled: bool
    #: The user turned it on (``AdoptionState.passkey_only_since``).
    chosen: bool
    #: The site requires it of this user.
    required: bool
    #: Whether users may choose at all (``PASSKEYS_PASSKEY_ONLY`` is not ``"off"``).
    available: bool
    has_passkey: bool
    has_recovery_factor: bool

    @property
    def can_turn_on(self) -> bool:
        """The user may turn password sign-in off now."""
        return self.available and not self.enabled and self.ready

    @property
    def can_turn_off(self) -> bool:
        """The user may turn password sign-in back on (given a fresh passkey and no cooldown)."""
        return self.chosen and not self.required

    @property
    def ready(self) -> bool:
        """A passkey and a recovery factor: what turning password sign-in off needs."""
        return self.has_passkey and self.has_recovery_factor

    @property
    def label(self) -> str:
        """One line for the security page."""
        if self.enabled:
            return _("Off: you sign in with a passkey only")
        return _("On")

    @property
    def next_step(self) -> str:
        """What the user could do next, or an empty string."""
        if self.enabled or not self.available:
            return ""
        if self.required and not self.has_passkey:
            return _("Add a passkey: this site is moving to passkey-only sign-in.")
        if not self.has_passkey:
            return _("Add a passkey to be able to turn password sign-in off.")
        if not self.has_recovery_factor:
            return _(
                "Set up recovery codes or an authenticator app to be able to turn password "
                "sign-in off."
            )
        return _("You can turn password sign-in off and use only your passkeys.")


def passkey_only_state(user: Any) -> PasskeyOnlyState:
    """``user``'s passkey-only state (a few queries: for pages, not for every request)."""
    required = required_for(user)
    chosen = _chosen(user)
    has_passkey = _has_passkey(user)
    has_factor = recovery_codes_state(user).enabled or totp_state(user).status == "confirmed"
    return PasskeyOnlyState(
        enabled=(required or chosen) and has_passkey,
        chosen=chosen,
        required=required,
        available=_policy() != "off",
        has_passkey=has_passkey,
        has_recovery_factor=has_factor,
    )
