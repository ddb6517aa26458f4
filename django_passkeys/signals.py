"""Public signals. Receivers must accept ``**kwargs``.

- ``passkey_registered``: ``request``, ``user``, ``credential`` — a new passkey was stored.
- ``passkey_login_succeeded``: ``request``, ``user``, ``credential`` — a passkey sign-in.
- ``passkey_login_failed``: ``request``, ``reason_code``, ``credential`` (or ``None``).
- ``passkey_revoked``: ``request`` (or ``None``), ``user``, ``credential``, ``revoked_by``.
"""

from __future__ import annotations

from django.dispatch import Signal

passkey_registered = Signal()
passkey_login_succeeded = Signal()
passkey_login_failed = Signal()
passkey_revoked = Signal()
