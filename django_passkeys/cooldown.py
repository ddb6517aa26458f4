"""The cooldown: high-risk changes wait a while after an account recovery (security rule 7).

Whoever completes a recovery may be an attacker holding the mailbox and one second factor. For
``PASSKEYS_RECOVERY_COOLDOWN`` seconds (24 hours by default) the account then refuses the
changes that would lock its owner out for good, so that the owner, who is told on every
channel (:mod:`django_passkeys.notifications`), has time to react (NIST SP 800-63B-4 §4.2,
OWASP ASVS 5.0 V6.4):

- removing one's own passkeys (``flows.remove``), removing or replacing the authenticator app,
  replacing the recovery codes, signing out the other sessions (``flows.end_sessions``);
- any project view marked :func:`high_risk` or :class:`HighRiskMixin`: changing the password
  or the e-mail address (Django's views save the user directly, so the project marks them).

What stays allowed: signing in, adding a passkey or a first second factor (the owner's way back
in as much as anyone's), renaming, and anything an administrator does (``flows.revoke`` from
the admin or a command): an administrator acting is not the attacker.

A cooldown starts when a recovery completes (``start_cooldown(user, reason="recovery")``), and
when the password or the e-mail address changes (:mod:`django_passkeys.account_changes`): those
are what a takeover changes first. A later start only ever extends the cooldown.

A refused change answers ``403 cooldown_active`` with the end of the cooldown: ``until`` (ISO
8601) in the JSON error, the localized date and time in the message, a page
(``django_passkeys/cooldown.html``) for project views.

Cost: :func:`cooldown_until` is one query on the unique user index. Only high-risk changes and
the cooldown page ask; sign-in and every other request never read it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from django_passkeys import audit
from django_passkeys.conf import conf
from django_passkeys.decorators import guarded, wants_json
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Cooldown
from django_passkeys.redirects import support_url

__all__ = [
    "HighRiskMixin",
    "active_cooldown",
    "check_cooldown",
    "cooldown_error",
    "cooldown_refusal",
    "cooldown_until",
    "format_until",
    "high_risk",
    "start_cooldown",
]

#: The page a refused project view renders (status 403).
TEMPLATE = "django_passkeys/cooldown.html"

ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def start_cooldown(user: Any, *, reason: str) -> None:
    """Refuse ``user``'s high-risk changes for ``PASSKEYS_RECOVERY_COOLDOWN`` seconds from now.

    ``reason`` says what started it (``"recovery"``, ``"password_change"``,
    ``"email_change"``). A cooldown already running longer is kept as it is: a start never
    shortens one. ``PASSKEYS_RECOVERY_COOLDOWN = 0`` turns cooldowns off.
    """
    seconds = conf.PASSKEYS_RECOVERY_COOLDOWN
    if seconds <= 0:
        return
    now = timezone.now()
    until = now + timedelta(seconds=seconds)
    with transaction.atomic():
        # Locked, so that two starts at once keep the later end whichever commits last.
        row, created = Cooldown.objects.select_for_update().get_or_create(
            user_id=user.pk, defaults={"until": until, "reason": reason[:32], "started_at": now}
        )
        if not created and row.until < until:
            row.until, row.reason, row.started_at = until, reason[:32], now
            row.save(update_fields=["until", "reason", "started_at"])


def active_cooldown(user: Any) -> Cooldown | None:
    """``user``'s running cooldown, or ``None``: one query on the unique user index."""
    if getattr(user, "pk", None) is None:
        return None
    return Cooldown.objects.filter(user_id=user.pk, until__gt=timezone.now()).first()


def cooldown_until(user: Any) -> datetime | None:
    """When ``user``'s cooldown ends, or ``None`` when none is running (one indexed query)."""
    row = active_cooldown(user)
    return row.until if row is not None else None


def format_until(until: datetime) -> str:
    """``until`` in the current time zone, formatted for the active language."""
    return formats.date_format(timezone.localtime(until), "DATETIME_FORMAT")


def check_cooldown(user: Any) -> None:
    """Raise ``cooldown_active`` (403) while ``user``'s cooldown runs; the error carries ``until``.

    Call it first in a high-risk flow, before anything is written.
    """
    until = cooldown_until(user)
    if until is not None:
        raise cooldown_error(until)


def cooldown_error(until: datetime) -> PasskeyError:
    """The ``cooldown_active`` error of a cooldown ending at ``until``; its message says when."""
    message = _(
        "This change is blocked until %(until)s, after a recent account recovery or a change "
        "of password or e-mail address."
    ) % {"until": format_until(until)}
    return PasskeyError(
        Reason.COOLDOWN_ACTIVE, f"until {until.isoformat()}", until=until, message=message
    )


# ---------------------------------------------------------------------------------------------
# Project views: @high_risk and HighRiskMixin
# ---------------------------------------------------------------------------------------------


def cooldown_refusal(request: HttpRequest) -> HttpResponse | None:
    """The 403 answer to a high-risk request during the signed-in user's cooldown, or ``None``.

    JSON requests get the one error shape (with ``until``); others the cooldown page. The
    refusal is audited (``high_risk``, ``cooldown_active``). Anonymous requests pass: the view
    decides what they may do.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    row = active_cooldown(user)
    if row is None:
        return None
    error = cooldown_error(row.until)
    audit.record(
        request, AuthEvent.Type.HIGH_RISK, success=False, reason_code=error.code, user=user
    )
    if wants_json(request):
        return error.to_response()
    return render(request, TEMPLATE, page_context(row), status=error.status)


def page_context(row: Cooldown | None) -> dict[str, Any]:
    """The cooldown page's context: ``cooldown`` (the running one, or ``None``), ``until``,
    ``until_display`` (localized), ``reason`` and ``support_url``."""
    return {
        "cooldown": row,
        "until": row.until if row is not None else None,
        "until_display": format_until(row.until) if row is not None else "",
        "reason": row.reason if row is not None else "",
        "support_url": support_url(),
    }


def high_risk(view: ViewT) -> ViewT:
    """Decorate a project view that must wait out the cooldown (changing the e-mail address).

    During the signed-in user's cooldown every request to the view answers 403
    ``cooldown_active`` (the page, or JSON); otherwise the view runs as usual. Put it outside
    ``login_required``, or inside: anonymous requests pass through. Works on async views.
    """
    return guarded(view, cooldown_refusal)


class HighRiskMixin:
    """:func:`high_risk` for class-based views: put it first among the bases.

    ``class PasswordChange(HighRiskMixin, PasswordChangeView)``: during the cooldown the form
    is neither shown nor accepted.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = cooldown_refusal(request)
        if refusal is not None:
            return refusal
        response: HttpResponse = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response
