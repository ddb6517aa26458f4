"""Daily figures from the audit trail: sign-in success, failures by reason, registrations,
recoveries and rate-limit hits. ``manage.py passkeys_report`` prints them.

Everything is counted from :class:`~django_passkeys.models.AuthEvent` in one grouped query:

- sign-ins: ``login`` events, successful or not (the success rate is successes / all);
- failures by reason: failed ``login`` events by reason code;
- registrations: successful ``register`` events;
- recoveries requested: ``recovery`` events with reason code :data:`RECOVERY_REQUESTED`;
  completed: successful ``recovery`` events with another reason code (blank);
- rate-limit hits: ``rate_limit`` events (one per tripped window, or per hold after failures).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from django_passkeys.models import AuthEvent

#: Reason code of the ``recovery`` event written when someone asks for account recovery.
RECOVERY_REQUESTED = "recovery_requested"

_PERIOD = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_period(text: str) -> timedelta:
    """``"24h"``, ``"7d"``, ``"30d"``, ``"2w"`` as a timedelta; ``ValueError`` otherwise."""
    match = _PERIOD.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a period like 24h, 7d or 30d")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


@dataclass
class DayFigures:
    """What happened on one day (in the current time zone)."""

    day: date
    sign_ins: int = 0
    sign_in_successes: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    registrations: int = 0
    recoveries_requested: int = 0
    recoveries_completed: int = 0
    rate_limit_hits: int = 0

    @property
    def success_rate(self) -> float | None:
        """Successful sign-ins / all sign-in attempts, or ``None`` when there were none."""
        return self.sign_in_successes / self.sign_ins if self.sign_ins else None

    def add(self, event_type: str, success: bool, reason: str, count: int) -> None:
        """Fold one grouped row of events into the day's figures."""
        if event_type == AuthEvent.Type.LOGIN:
            self.sign_ins += count
            if success:
                self.sign_in_successes += count
            else:
                key = reason or "unknown"
                self.failures_by_reason[key] = self.failures_by_reason.get(key, 0) + count
        elif event_type == AuthEvent.Type.REGISTER and success:
            self.registrations += count
        elif event_type == AuthEvent.Type.RECOVERY:
            if reason == RECOVERY_REQUESTED:
                self.recoveries_requested += count
            elif success:
                self.recoveries_completed += count
        elif event_type == AuthEvent.Type.RATE_LIMIT:
            self.rate_limit_hits += count

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["failures_by_reason"] = dict(sorted(self.failures_by_reason.items()))
        data["success_rate"] = self.success_rate
        return data


@dataclass
class Report:
    """The figures of each day in ``[start, end]``, oldest first, and their totals."""

    start: datetime
    end: datetime
    days: list[DayFigures]

    @property
    def totals(self) -> DayFigures:
        """All days added up (``day`` is the last day)."""
        total = DayFigures(day=self.days[-1].day)
        for figures in self.days:
            total.sign_ins += figures.sign_ins
            total.sign_in_successes += figures.sign_in_successes
            for reason, count in figures.failures_by_reason.items():
                total.failures_by_reason[reason] = total.failures_by_reason.get(reason, 0) + count
            total.registrations += figures.registrations
            total.recoveries_requested += figures.recoveries_requested
            total.recoveries_completed += figures.recoveries_completed
            total.rate_limit_hits += figures.rate_limit_hits
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
        }


def build_report(period: timedelta, *, now: datetime | None = None) -> Report:
    """Figures for the ``period`` up to ``now``, per day, from one grouped query."""
    end = now or timezone.now()
    start = end - period
    first, last = timezone.localdate(start), timezone.localdate(end)
    days = {
        first + timedelta(days=offset): DayFigures(day=first + timedelta(days=offset))
        for offset in range((last - first).days + 1)
    }
    rows = (
        AuthEvent.objects.filter(created_at__gte=start, created_at__lte=end)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "event_type", "success", "reason_code")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        days[row["day"]].add(row["event_type"], row["success"], row["reason_code"], row["count"])
    return Report(start=start, end=end, days=list(days.values()))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _line(label: str, figures: DayFigures) -> list[str]:
    recoveries = f"{figures.recoveries_requested}/{figures.recoveries_completed}"
    lines = [
        f"{label:<10}  {figures.sign_ins:>8}  {_rate(figures.success_rate):>7}  "
        f"{figures.registrations:>10}  {recoveries:>19}  {figures.rate_limit_hits:>12}"
    ]
    if figures.failures_by_reason:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(figures.failures_by_reason.items()))
        lines.append(f"{'':<10}  failures: {reasons}")
    return lines


def format_text(report: Report) -> str:
    """A plain-text table: one line per day (failure reasons below it), then the totals."""
    lines = [
        f"Passkey activity {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M}",
        f"{'day':<10}  {'sign-ins':>8}  {'success':>7}  {'registered':>10}  "
        f"{'recovery asked/done':>19}  {'rate limited':>12}",
    ]
    for figures in report.days:
        lines.extend(_line(figures.day.isoformat(), figures))
    lines.extend(_line("total", report.totals))
    return "\n".join(lines)
