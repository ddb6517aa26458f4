"""``manage.py passkeys_revoke USERNAME [--passkey ID] [--reason TEXT]``: revoke passkeys."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_passkeys import flows
from django_passkeys.models import Credential


class Command(BaseCommand):
    help = (
        "Revoke a user's passkeys: all of them, or one with --passkey (its id in the admin). "
        "Revocation ends the sessions each passkey established, is audited and sends "
        "passkey_revoked, as in the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The user's USERNAME_FIELD value.")
        parser.add_argument("--passkey", type=int, help="Only this passkey (its database id).")
        parser.add_argument(
            "--reason", default="revoked by command", help="Kept with the revocation."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            user = model._default_manager.get_by_natural_key(options["username"])
        except model.DoesNotExist as exc:
            raise CommandError(f"no user {options['username']!r}") from exc
        credentials = Credential.objects.active().filter(user_id=user.pk)
        if options["passkey"] is not None:
            credentials = credentials.filter(pk=options["passkey"])
            if not credentials.exists():
                raise CommandError(f"no active passkey {options['passkey']} for this user")
        revoked = sum(flows.revoke(c, reason=options["reason"]) for c in credentials)
        self.stdout.write(f"revoked {revoked} passkeys")
