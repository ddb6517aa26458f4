"""App configuration: checks and signal receivers are connected here, never at import."""

from __future__ import annotations

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save, pre_delete
from django.utils.translation import gettext_lazy as _


class PasskeysConfig(AppConfig):
    """``django_passkeys``."""

    name = "django_passkeys"
    verbose_name = _("Passkeys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            revocation,
        )
        from .models import Credential
        from .sessions import record_login_time

        user_logged_in.connect(record_login_time, dispatch_uid="django_passkeys.login_time")
        # Session index and revocation: a revoked or deleted passkey's sessions end.
        user_logged_in.connect(revocation.index_session, dispatch_uid="django_passkeys.index")
        user_logged_out.connect(revocation.forget_session, dispatch_uid="django_passkeys.forget")
        post_save.connect(
            revocation.credential_saved, sender=Credential, dispatch_uid="django_passkeys.revoked"
        )
        pre_delete.connect(
            revocation.credential_deleted, sender=Credential, dispatch_uid="django_passkeys.deleted"
        )
