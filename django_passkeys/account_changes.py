"""Password and e-mail address changes of any user model: a cooldown, an audit event, a notice.

Django's password change, password reset, the admin and ``changepassword`` all end in
``user.set_password()`` and ``user.save()``, and a project changes the e-mail address however it
likes; none of them calls this app. So the user model's own save signals watch both fields
(connected in :meth:`PasskeysConfig.ready() <django_passkeys.apps.PasskeysConfig.ready>` for
``AUTH_USER_MODEL``, whatever it is):

- ``pre_save`` notes what changes. The password: ``set_password()`` was called (Django's own
  test, the one that runs password validators' ``password_changed()``). The stored hash is not
  compared: ``check_password()`` rehashes with an upgraded hasher and saves it, which is no
  change of password and must not start anything. The e-mail address: the stored value read
  back, one query by primary key.
- ``post_save``, in the same transaction as the save:
  :func:`~django_passkeys.cooldown.start_cooldown` (``password_change`` /
  ``email_change``), the audit event (``password_changed`` /
  ``email_changed``), and :func:`~django_passkeys.notifications.notify`, whose e-mail (to the
  old address too) leaves after the commit. A save that rolls back leaves nothing.

Saves that cannot change either field cost nothing: a new user, ``raw`` fixture loading, and
``save(update_fields=...)`` naming neither, like the ``last_login`` update of every sign-in.
A model signal has no request: the notice of such a change does not say from which browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from django_passkeys import audit
from django_passkeys.cooldown import start_cooldown
from django_passkeys.models import AuthEvent
from django_passkeys.notifications import Event, notify

#: The password field of ``AbstractBaseUser``.
PASSWORD_FIELD = "password"
_CHANGES_ATTR = "_passkeys_account_changes"


@dataclass(frozen=True)
class AccountChanges:
    """What one save of a user changes."""

    password: bool
    #: The stored address before the save, when the address changes; otherwise ``None``.
    previous_email: str | None


def _email_field(model: type[models.Model]) -> str | None:
    get_name = getattr(model, "get_email_field_name", None)
    name = get_name() if callable(get_name) else None
    try:
        model._meta.get_field(str(name))
    except FieldDoesNotExist:
        return None
    return str(name)


def user_pre_save(
    sender: type[models.Model],
    instance: Any,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    """``pre_save`` of ``AUTH_USER_MODEL``: note a password set or an e-mail address change."""
    instance.__dict__.pop(_CHANGES_ATTR, None)
    if raw or instance._state.adding or instance.pk is None:
        return
    email_field = _email_field(sender)
    watched = {PASSWORD_FIELD, email_field} - {None}
    if update_fields is not None:
        watched &= set(update_fields)
    if not watched:
        return  # e.g. save(update_fields=["last_login"]) at every sign-in: no query
    # Django's own mark of set_password() (AbstractBaseUser._password): a hash upgrade in
    # check_password() clears it before saving.
    password = PASSWORD_FIELD in watched and getattr(instance, "_password", None) is not None
    previous_email = None
    if email_field is not None and email_field in watched:
        stored = list(
            sender._default_manager.filter(pk=instance.pk).values_list(email_field, flat=True)[:1]
        )
        # No row: an unsaved instance given an existing key; nothing to compare with.
        if stored and (stored[0] or "") != (getattr(instance, email_field) or ""):
            previous_email = stored[0] or ""
    if password or previous_email is not None:
        instance.__dict__[_CHANGES_ATTR] = AccountChanges(password, previous_email)


def user_post_save(
    sender: type[models.Model], instance: Any, created: bool = False, **kwargs: Any
) -> None:
    """``post_save`` of ``AUTH_USER_MODEL``: start the cooldown, audit and notify a change."""
    changes: AccountChanges | None = instance.__dict__.pop(_CHANGES_ATTR, None)
    if changes is None or created:
        return
    if changes.password:
        start_cooldown(instance, reason="password_change")
        audit.record(None, AuthEvent.Type.PASSWORD_CHANGED, success=True, user=instance)
        notify(Event.PASSWORD_CHANGED, instance)
    if changes.previous_email is not None:
        start_cooldown(instance, reason="email_change")
        audit.record(None, AuthEvent.Type.EMAIL_CHANGED, success=True, user=instance)
        notify(Event.EMAIL_CHANGED, instance, previous_email=changes.previous_email)
