"""Public signals. Receivers must accept ``**kwargs``.

- ``passkey_registered``: ``request``, ``user``, ``credential`` — a new passkey was stored.
- ``passkey_login_succeeded``: ``request``, ``user``, ``credential`` — a passkey sign-in.
- ``passkey_login_failed``: ``request``, ``reason_code``, ``credential`` (or ``None``).
- ``passkey_revoked``: ``request`` (or ``None``), ``user``, ``credential``, ``revoked_by``.
- ``second_factor_added``: ``request``, ``user``, ``device`` (a django-otp device), ``kind``
  (``"totp"`` or ``"recovery_codes"``) — an authenticator app was confirmed, or the first set
  of recovery codes was generated.
- ``second_factor_removed``: ``request``, ``user``, ``device``, ``kind`` — a second factor was
  removed (the device is already deleted; its fields are still readable).
- ``recovery_codes_generated``: ``request``, ``user``, ``count`` — a new set of recovery codes
  replaced any previous one.
- ``recovery_code_used``: ``request``, ``user``, ``remaining`` — a recovery code was accepted
  (and can never be used again).

Sent by :func:`django_passkeys.notifications.notify` once the transaction commits (``sender`` is
the user model; ``request`` is ``None`` outside a request), so that a site adds SMS or push next
to the e-mail without sending twice:

- ``passkey_renamed``: ``request``, ``user``, ``credential``, ``previous_name``.
- ``recovery_requested``, ``recovery_completed``, ``recovery_denied``, ``recovery_failed``:
  ``request``, ``user``, ``recovery_request`` — a recovery was asked for, completed, denied from a
  signed-in device, or stopped after too many wrong second factors.
- ``password_changed``: ``request``, ``user`` — the account's password was changed.
- ``email_changed``: ``request``, ``user``, ``previous_email`` — the account's e-mail address
  was changed.
"""

from __future__ import annotations

from django.dispatch import Signal

passkey_registered = Signal()
passkey_login_succeeded = Signal()
passkey_login_failed = Signal()
passkey_revoked = Signal()
second_factor_added = Signal()
second_factor_removed = Signal()
recovery_codes_generated = Signal()
recovery_code_used = Signal()
passkey_renamed = Signal()
recovery_requested = Signal()
recovery_completed = Signal()
recovery_denied = Signal()
recovery_failed = Signal()
password_changed = Signal()
email_changed = Signal()
