"""Daily figures from the audit trail: sign-in success, failures by reason, registrations,
recoveries and rate-limit hits. ``manage.py passkeys_report`` prints them.

Counted from :class:`~django_passkeys.models.AuthEvent` in one grouped query:

- sign-ins: ``login`` events, successful or not (the success rate is successes / all);
- failures by reason: failed ``login`` events by reason code;
- registrations: successful ``register`` events;
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
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_passkeys.errors import Reason
from django_passkeys.models import AuthEvent, RecoveryRequest

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
        }


def build_report(
    period: timedelta,
    *,
    now: datetime | None = None,
    recovery_threshold: int = RECOVERY_THRESHOLD,
) -> Report:
    """Figures for the ``period`` up to ``now``, per day (three grouped queries)."""
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
    lines.extend(_line("total", report.totals))
    flagged = ", ".join(f"{a.user_id} ({a.requests})" for a in report.recovery_abuse)
    lines.append(
        f"Accounts with {report.recovery_threshold} or more recovery requests: "
        + (flagged or "none")
    )
    return "\n".join(lines)
