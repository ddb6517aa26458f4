"""App configuration: checks and signal receivers are connected here, never at import."""

from __future__ import annotations

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save, pre_delete, pre_save
from django.utils.translation import gettext_lazy as _


class PasskeysConfig(AppConfig):
    """``django_passkeys``."""

    name = "django_passkeys"
    verbose_name = _("Passkeys")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            sessions,
        )
        from .models import Credential

        # The sign-in stamp, the session index, and revocation ending sessions (sessions.py).
        user_logged_in.connect(
            sessions.record_login_time, dispatch_uid="django_passkeys.login_time"
        )
        user_logged_in.connect(sessions.index_session, dispatch_uid="django_passkeys.index")
        user_logged_out.connect(sessions.forget_session, dispatch_uid="django_passkeys.forget")
        # The Relying Party is built from the settings once (ceremonies.RelyingParty).
        from django.core.signals import setting_changed

        from . import ceremonies

        setting_changed.connect(
            ceremonies.forget_relying_party, dispatch_uid="django_passkeys.relying_party"
        )
        # A password sign-in: counted, and the passkey upgrade may follow (upgrade.py).
        from . import upgrade

        user_logged_in.connect(
            upgrade.note_password_sign_in, dispatch_uid="django_passkeys.password_sign_in"
        )
        post_save.connect(
            sessions.credential_saved, sender=Credential, dispatch_uid="django_passkeys.revoked"
        )
        pre_delete.connect(
            sessions.credential_deleted, sender=Credential, dispatch_uid="django_passkeys.deleted"
        )

        # A password set or an e-mail address changed, on any user model: the cooldown starts
        # and every address hears of it (account_changes.py).
        from django.conf import settings

        from . import account_changes

        pre_save.connect(
            account_changes.user_pre_save,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="django_passkeys.account_pre_save",
        )
        post_save.connect(
            account_changes.user_post_save,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="django_passkeys.account_post_save",
        )
