"""``manage.py create_demo_user``: the demo account, created once and reset on every run."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "demo"
PASSWORD = "demo-passkeys-2026"
EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = "Create the demo account (demo / demo-passkeys-2026); safe to run again."

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        user, created = model._default_manager.get_or_create(
            **{model.USERNAME_FIELD: USERNAME}, defaults={"email": EMAIL}
        )
        # Reset what differs from the documented credentials, so that they always work. A password
        # that already matches is left alone: setting it counts as a password change, which
        # starts the post-recovery cooldown and sends a notification.
        user.email = EMAIL
        user.is_active = True
        if not user.check_password(PASSWORD):
            user.set_password(PASSWORD)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(f"{verb} demo account: {USERNAME} / {PASSWORD} ({EMAIL})")
