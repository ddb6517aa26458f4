"""``manage.py passkeys_sessions list|end USERNAME [--session ID]``: a user's sessions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_passkeys import sessions


class Command(BaseCommand):
    help = (
        "List a user's signed-in sessions, or end them (all, or one with --session). Session "
        "keys are never printed; sessions are named by their index id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "end"])
        parser.add_argument("username", help="The user's USERNAME_FIELD value.")
        parser.add_argument("--session", type=int, help="With end: only this session id.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            user = model._default_manager.get_by_natural_key(options["username"])
        except model.DoesNotExist as exc:
            raise CommandError(f"no user {options['username']!r}") from exc
        if options["action"] == "list":
            for row in sessions.live_sessions(user):
                how = f"passkey {row.credential}" if row.credential else "another method"
                self.stdout.write(
                    f"{row.pk}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.ip_address or '-'}\t"
                    f"{how}\t{row.user_agent[:60]}"
                )
            return
        ended = sessions.end_user_sessions(user, pk=options["session"])
        if options["session"] is not None and not ended:
            raise CommandError(f"no session {options['session']} for this user")
        self.stdout.write(f"ended {ended} sessions")
