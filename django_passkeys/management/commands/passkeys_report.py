"""``manage.py passkeys_report [--since 7d] [--recovery-threshold 5] [--json]``: daily figures
from the audit trail."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_passkeys.reporting import RECOVERY_THRESHOLD, build_report, format_text, parse_period


class Command(BaseCommand):
    help = (
        "Per day: sign-in success rate, failures by reason code, registrations, recoveries "
        "(requested, for unknown addresses, completed by factor, denied), rate-limit hits, "
        "sign-ins by passkey/password/recovery and upgrades accepted/declined; then the accounts "
        "with many recovery requests, and passkey adoption by rollout stage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", default="7d", help="How far back: 24h, 7d, 30d, 2w... (default 7d)."
        )
        parser.add_argument(
            "--recovery-threshold",
            type=int,
            default=RECOVERY_THRESHOLD,
            help="List the accounts with at least this many recovery requests in the period "
            f"(default {RECOVERY_THRESHOLD}).",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            period = parse_period(options["since"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        threshold = options["recovery_threshold"]
        if threshold < 1:
            raise CommandError("--recovery-threshold must be 1 or more")
        report = build_report(period, recovery_threshold=threshold)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(format_text(report))
