"""``manage.py passkeys_cleanup [--dry-run]``: apply the retention settings (cron-safe)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_passkeys.cleanup import cleanup


class Command(BaseCommand):
    help = (
        "Delete spent challenges, audit events and recovery requests past "
        "PASSKEYS_EVENT_RETENTION_DAYS, and index rows of ended sessions. Idempotent; safe to "
        "run from cron."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = cleanup(dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(
            f"{verb}: {result.challenges} challenges, {result.events} events, "
            f"{result.sessions} session index rows, {result.recoveries} recovery requests"
        )
