"""Daily figures from the audit trail: sign-in success, failures by reason, registrations,
recoveries and rate-limit hits. ``manage.py passkeys_report`` prints them.

Counted from :class:`~django_passkeys.models.AuthEvent` in one grouped query:

- sign-ins: ``login`` events, successful or not (the success rate is successes / all);
- failures by reason: failed ``login`` events by reason code;
- registrations: successful ``register`` and ``upgrade`` events;
- sign-ins by method: by passkey (successful ``login``), by password (successful
  ``password_login``: any non-passkey backend, recorded by :mod:`django_passkeys.upgrade`), by
  recovery (successful ``recovery``);
- the upgrade after a password sign-in: accepted (successful ``upgrade`` events), declined
  (``upgrade_declined``);
- recoveries requested: ``recovery_request`` events, one per address typed; those that matched
  no account (no user: an unknown address, or an account past its per-address window) are also
  counted apart, as ``unknown``;
- recoveries completed: successful ``recovery`` events;
- recoveries denied: events with reason code ``recovery_denied`` ("this wasn't me" from a
  signed-in device);
- rate-limit hits: ``rate_limit`` events (one per tripped window, or per hold after failures).

Two more queries: completed recoveries by second factor, from the
:class:`~django_passkeys.models.RecoveryRequest` rows (``used_at`` in the period; rows deleted
by retention are no longer counted), and the abuse signal: accounts with at least
``recovery_threshold`` recovery requests in the whole period (someone trying to get a link, or
flooding a user's mailbox).

Then the adoption snapshot, as things stand now (:func:`adoption_figures`): the share of active
accounts with a passkey, of those that signed in during the period, passkey-only accounts, and
the same share among the accounts the rollout (``PASSKEYS_ROLLOUT``) offers passkeys to and the
others.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_passkeys import rollout
from django_passkeys.errors import Reason
from django_passkeys.models import AuthEvent, Credential, RecoveryRequest
from django_passkeys.passkey_only import passkey_only_user_ids

#: Default of ``--recovery-threshold``: recovery requests per account in the period.
RECOVERY_THRESHOLD = 5

_PERIOD = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_period(text: str) -> timedelta:
    """``"24h"``, ``"7d"``, ``"30d"``, ``"2w"`` as a timedelta; ``ValueError`` otherwise."""
    match = _PERIOD.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a period like 24h, 7d or 30d")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def _bump(counts: dict[str, int], key: str, count: int) -> None:
    counts[key] = counts.get(key, 0) + count


@dataclass
class DayFigures:
    """What happened on one day (in the current time zone)."""

    day: date
    sign_ins: int = 0
    sign_in_successes: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    registrations: int = 0
    recoveries_requested: int = 0
    #: Requests for an address that matched no account (included in ``recoveries_requested``).
    recovery_requests_unknown: int = 0
    recoveries_completed: int = 0
    #: Completed recoveries by second factor: ``totp``, ``recovery_code``, ``device``, ``staff``.
    recoveries_by_factor: dict[str, int] = field(default_factory=dict)
    recoveries_denied: int = 0
    rate_limit_hits: int = 0
    #: Sign-ins by password (any non-passkey backend: ``password_login`` events). Sign-ins by
    #: passkey are ``sign_in_successes``, by recovery ``recoveries_completed``.
    password_sign_ins: int = 0
    #: Passkeys created by the upgrade after a password sign-in (counted in registrations too).
    upgrades_accepted: int = 0
    #: "Not now" and "Don't ask again" answers to the upgrade.
    upgrades_declined: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successful sign-ins / all sign-in attempts, or ``None`` when there were none."""
        return self.sign_in_successes / self.sign_ins if self.sign_ins else None

    def add(
        self, event_type: str, success: bool, reason: str, count: int, *, no_user: bool = False
    ) -> None:
        """Fold one grouped row of events into the day's figures."""
        if reason == Reason.RECOVERY_DENIED:
            self.recoveries_denied += count
        elif event_type == AuthEvent.Type.LOGIN:
            self.sign_ins += count
            if success:
                self.sign_in_successes += count
            else:
                _bump(self.failures_by_reason, reason or "unknown", count)
        elif event_type == AuthEvent.Type.REGISTER and success:
            self.registrations += count
        elif event_type == AuthEvent.Type.UPGRADE and success:
            self.registrations += count
            self.upgrades_accepted += count
        elif event_type == AuthEvent.Type.UPGRADE_DECLINED:
            self.upgrades_declined += count
        elif event_type == AuthEvent.Type.PASSWORD_LOGIN and success:
            self.password_sign_ins += count
        elif event_type == AuthEvent.Type.RECOVERY_REQUEST:
            self.recoveries_requested += count
            if no_user:
                self.recovery_requests_unknown += count
        elif event_type == AuthEvent.Type.RECOVERY and success:
            self.recoveries_completed += count
        elif event_type == AuthEvent.Type.RATE_LIMIT:
            self.rate_limit_hits += count

    def merge(self, other: DayFigures) -> None:
        """Add ``other``'s figures to these."""
        for name in (
            "sign_ins",
            "sign_in_successes",
            "registrations",
            "recoveries_requested",
            "recovery_requests_unknown",
            "recoveries_completed",
            "recoveries_denied",
            "rate_limit_hits",
            "password_sign_ins",
            "upgrades_accepted",
            "upgrades_declined",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, count in other.failures_by_reason.items():
            _bump(self.failures_by_reason, reason, count)
        for factor, count in other.recoveries_by_factor.items():
            _bump(self.recoveries_by_factor, factor, count)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["failures_by_reason"] = dict(sorted(self.failures_by_reason.items()))
        data["recoveries_by_factor"] = dict(sorted(self.recoveries_by_factor.items()))
        data["success_rate"] = self.success_rate
        return data


@dataclass(frozen=True)
class RecoveryAbuse:
    """An account that was sent recovery requests at least ``threshold`` times in the period."""

    user_id: str
    requests: int


@dataclass
class Report:
    """The figures of each day in ``[start, end]``, oldest first, and their totals."""

    start: datetime
    end: datetime
    days: list[DayFigures]
    recovery_threshold: int = RECOVERY_THRESHOLD
    #: Accounts at or over ``recovery_threshold`` requests, most requested first.
    recovery_abuse: list[RecoveryAbuse] = field(default_factory=list)
    #: Where the move off passwords stands now (see :func:`adoption_figures`).
    adoption: Adoption | None = None

    @property
    def totals(self) -> DayFigures:
        """All days added up (``day`` is the last day)."""
        total = DayFigures(day=self.days[-1].day)
        for figures in self.days:
            total.merge(figures)
        return total

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        totals = self.totals.as_dict()
        del totals["day"]
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": [d.as_dict() for d in self.days],
            "totals": totals,
            "recovery_threshold": self.recovery_threshold,
            "recovery_abuse": [
                {"user": a.user_id, "requests": a.requests} for a in self.recovery_abuse
            ],
            "adoption": self.adoption.as_dict() if self.adoption is not None else None,
        }


def build_report(
    period: timedelta,
    *,
    now: datetime | None = None,
    recovery_threshold: int = RECOVERY_THRESHOLD,
    adoption: bool = True,
) -> Report:
    """Figures for the ``period`` up to ``now``, per day (three grouped queries), and with
    ``adoption`` the adoption snapshot (:func:`adoption_figures`)."""
    end = now or timezone.now()
    start = end - period
    first, last = timezone.localdate(start), timezone.localdate(end)
    days = {
        first + timedelta(days=offset): DayFigures(day=first + timedelta(days=offset))
        for offset in range((last - first).days + 1)
    }
    tz = timezone.get_current_timezone()
    events = AuthEvent.objects.filter(created_at__gte=start, created_at__lte=end)
    rows = (
        events.annotate(
            day=TruncDate("created_at", tzinfo=tz),
            no_user=ExpressionWrapper(Q(user__isnull=True), output_field=BooleanField()),
        )
        .values("day", "event_type", "success", "reason_code", "no_user")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        days[row["day"]].add(
            row["event_type"],
            row["success"],
            row["reason_code"],
            row["count"],
            no_user=bool(row["no_user"]),
        )
    completed = (
        RecoveryRequest.objects.filter(
            state=RecoveryRequest.State.COMPLETED, used_at__gte=start, used_at__lte=end
        )
        .annotate(day=TruncDate("used_at", tzinfo=tz))
        .values("day", "factor")
        .annotate(count=Count("id"))
        .order_by()
    )
    for done in completed:
        _bump(days[done["day"]].recoveries_by_factor, done["factor"] or "unknown", done["count"])
    abuse = (
        events.filter(event_type=AuthEvent.Type.RECOVERY_REQUEST, user__isnull=False)
        .values("user_id")
        .annotate(count=Count("id"))
        .filter(count__gte=recovery_threshold)
        .order_by("-count", "user_id")
    )
    return Report(
        start=start,
        end=end,
        days=list(days.values()),
        recovery_threshold=recovery_threshold,
        recovery_abuse=[RecoveryAbuse(str(row["user_id"]), row["count"]) for row in abuse],
        adoption=adoption_figures(start, end) if adoption else None,
    )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))


def _line(label: str, figures: DayFigures) -> list[str]:
    recoveries = f"{figures.recoveries_requested}/{figures.recoveries_completed}"
    lines = [
        f"{label:<10}  {figures.sign_ins:>8}  {_rate(figures.success_rate):>7}  "
        f"{figures.registrations:>10}  {recoveries:>19}  {figures.rate_limit_hits:>12}"
    ]
    if figures.failures_by_reason:
        lines.append(f"{'':<10}  failures: {_pairs(figures.failures_by_reason)}")
    if figures.password_sign_ins:
        # The sign-ins column counts passkeys; the other ways in, beside them.
        lines.append(
            f"{'':<10}  sign-ins by passkey={figures.sign_in_successes}, "
            f"password={figures.password_sign_ins}, recovery={figures.recoveries_completed}"
        )
    if figures.upgrades_accepted or figures.upgrades_declined:
        lines.append(
            f"{'':<10}  upgrade: accepted={figures.upgrades_accepted}, "
            f"declined={figures.upgrades_declined}"
        )
    if figures.recoveries_requested or figures.recoveries_completed or figures.recoveries_denied:
        by_factor = _pairs(figures.recoveries_by_factor)
        lines.append(
            f"{'':<10}  recovery: unknown address={figures.recovery_requests_unknown}, "
            f"denied={figures.recoveries_denied}"
            + (f", completed by {by_factor}" if by_factor else "")
        )
    return lines


def format_text(report: Report) -> str:
    """A plain-text table: one line per day (details below it), the totals, the abuse signal."""
    lines = [
        f"Passkey activity {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M}",
        f"{'day':<10}  {'sign-ins':>8}  {'success':>7}  {'registered':>10}  "
        f"{'recovery asked/done':>19}  {'rate limited':>12}",
    ]
    for figures in report.days:
        lines.extend(_line(figures.day.isoformat(), figures))
    if report.adoption is not None:
        lines[1:1] = _adoption_lines(report.adoption)
    lines.extend(_line("total", report.totals))
    flagged = ", ".join(f"{a.user_id} ({a.requests})" for a in report.recovery_abuse)
    lines.append(
        f"Accounts with {report.recovery_threshold} or more recovery requests: "
        + (flagged or "none")
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Adoption: where the move off passwords stands (docs/rollout.rst)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """How many of a group of users hold an active passkey."""

    users: int
    with_passkey: int

    @property
    def rate(self) -> float | None:
        """``with_passkey / users``, or ``None`` for an empty group."""
        return self.with_passkey / self.users if self.users else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {"users": self.users, "with_passkey": self.with_passkey, "rate": self.rate}


@dataclass(frozen=True)
class Adoption:
    """Now, over active accounts (``is_active``): who holds a passkey, who signed in during the
    period, who is passkey-only, split by whether the rollout offers them passkeys."""

    #: ``PASSKEYS_ROLLOUT``'s stage: ``off``, ``cohort``, ``percentage``, ``all``, ``waffle``.
    rollout_stage: str
    accounts: Share
    #: Accounts that signed in during the period, by any method (passkey, password, recovery).
    active_users: Share
    passkey_only_users: int
    #: By rollout stage: the accounts the rollout offers passkeys to now, and the others.
    offered: Share
    not_offered: Share

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "rollout_stage": self.rollout_stage,
            "accounts": self.accounts.as_dict(),
            "active_users": self.active_users.as_dict(),
            "passkey_only_users": self.passkey_only_users,
            "offered": self.offered.as_dict(),
            "not_offered": self.not_offered.as_dict(),
        }


#: The events that are a sign-in: by passkey, by password (or another backend), by recovery.
SIGN_IN_EVENTS = (AuthEvent.Type.LOGIN, AuthEvent.Type.PASSWORD_LOGIN, AuthEvent.Type.RECOVERY)


def adoption_figures(start: datetime, end: datetime) -> Adoption:
    """The adoption snapshot: one aggregate query over active accounts, then the rollout's split
    (none for ``off`` and ``all``) and the passkey-only count (a few queries)."""
    model = get_user_model()
    accounts = model._default_manager.all()
    if any(f.name == "is_active" for f in model._meta.get_fields()):
        accounts = accounts.filter(is_active=True)
    signed_in = AuthEvent.objects.filter(
        user_id=OuterRef("pk"),
        success=True,
        event_type__in=SIGN_IN_EVENTS,
        created_at__gte=start,
        created_at__lte=end,
    )
    with_passkey = Q(has_passkey=True)
    counts = accounts.annotate(
        has_passkey=Exists(Credential.objects.active().filter(user_id=OuterRef("pk"))),
        signed_in=Exists(signed_in),
    ).aggregate(
        users=Count("pk"),
        with_passkey=Count("pk", filter=with_passkey),
        active=Count("pk", filter=Q(signed_in=True)),
        active_with_passkey=Count("pk", filter=Q(signed_in=True) & with_passkey),
    )
    everyone = Share(counts["users"], counts["with_passkey"])
    current = rollout.stage()
    if current in ("off", "all"):
        nobody = Share(0, 0)
        offered, not_offered = (everyone, nobody) if current == "all" else (nobody, everyone)
    else:
        offered_ids = rollout.offered_user_ids(accounts)
        holders = set(
            accounts.filter(pk__in=Credential.objects.active().values("user_id")).values_list(
                "pk", flat=True
            )
        )
        offered = Share(len(offered_ids), len(offered_ids & holders))
        not_offered = Share(everyone.users - offered.users, len(holders) - offered.with_passkey)
    return Adoption(
        rollout_stage=current,
        accounts=everyone,
        active_users=Share(counts["active"], counts["active_with_passkey"]),
        passkey_only_users=len(passkey_only_user_ids(accounts)),
        offered=offered,
        not_offered=not_offered,
    )


def _share(share: Share) -> str:
    return f"{share.with_passkey}/{share.users} ({_rate(share.rate)})"


def _adoption_lines(adoption: Adoption) -> list[str]:
    return [
        f"Passkey adoption now (rollout stage: {adoption.rollout_stage})",
        f"  accounts with a passkey:          {_share(adoption.accounts)}",
        f"  active in the period, with one:   {_share(adoption.active_users)}",
        f"  offered passkeys, with one:       {_share(adoption.offered)}",
        f"  not offered yet, with one:        {_share(adoption.not_offered)}",
        f"  passkey-only accounts:            {adoption.passkey_only_users}",
        "",
    ]
