"""Django's password reset, aware of passkey-only accounts.

``PasswordResetView.as_view(form_class=PasskeyOnlyPasswordResetForm)``: a passkey-only account
(:mod:`django_passkeys.passkey_only`) gets an e-mail pointing to account recovery instead of a
reset link, since a new password would not sign it in. The page answers exactly as for any
other address, so it tells nobody which accounts are passkey-only (security rule 11). Other
accounts get Django's own e-mail, unchanged.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import PasswordResetForm

from django_passkeys.conf import conf
from django_passkeys.passkey_only import is_passkey_only
from django_passkeys.redirects import recovery_url

#: The e-mail a passkey-only account gets instead of the reset link.
SUBJECT_TEMPLATE = "django_passkeys/email/password_reset_passkey_only_subject.txt"
EMAIL_TEMPLATE = "django_passkeys/email/password_reset_passkey_only.txt"


class PasskeyOnlyPasswordResetForm(PasswordResetForm):
    """``PasswordResetForm`` sending passkey-only accounts to account recovery instead."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        user = context.get("user")
        if user is not None and is_passkey_only(user):
            # The recovery page, reversed now (it may be the project's own, or the app's), and
            # absolute from the configured base URL, never from the request (security rule 3).
            url = recovery_url()
            context = {
                **context,
                "recovery_url": url if "://" in url else conf.PASSKEYS_BASE_URL + url,
            }
            subject_template_name, email_template_name = SUBJECT_TEMPLATE, EMAIL_TEMPLATE
            html_email_template_name = None
        super().send_mail(
            subject_template_name,
            email_template_name,
            context,
            from_email,
            to_email,
            html_email_template_name,
        )
