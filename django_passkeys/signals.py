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
