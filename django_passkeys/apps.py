"""App configuration: checks and signal receivers are connected here, never at import."""

from __future__ import annotations

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.utils.translation import gettext_lazy as _


class PasskeysConfig(AppConfig):
    """``django_passkeys``."""

    name = "django_passkeys"
    verbose_name = _("Passkeys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .sessions import record_login_time

        user_logged_in.connect(record_login_time, dispatch_uid="django_passkeys.login_time")
