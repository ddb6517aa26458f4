"""Every ``PASSKEYS_*`` setting, with its default, read from ``django.conf.settings`` on access.

Nothing here is cached and nothing is written back onto ``settings``, so
``override_settings`` in tests and per-request changes behave as expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

SignCountPolicy = Literal["reject", "flag"]
Requirement = Literal["required", "preferred", "discouraged"]
AttestationPreference = Literal["none", "indirect", "direct", "enterprise"]


class Settings:
    """Typed accessors for the app's settings; use the module-level ``conf`` instance."""

    @property
    def PASSKEYS_RP_ID(self) -> str:
        """The Relying Party ID: a registrable domain such as ``example.com`` (required)."""
        return str(getattr(settings, "PASSKEYS_RP_ID", ""))

    @property
    def PASSKEYS_RP_NAME(self) -> str:
        """Human-readable Relying Party name shown by authenticators."""
        return str(getattr(settings, "PASSKEYS_RP_NAME", "") or self.PASSKEYS_RP_ID)

    @property
    def PASSKEYS_ALLOWED_ORIGINS(self) -> list[str]:
        """Origins accepted in ``clientDataJSON.origin``.

        Defaults to ``https://<RP ID>``. May list several web origins and Android
        ``android:apk-key-hash:`` origins.
        """
        origins: Sequence[str] | None = getattr(settings, "PASSKEYS_ALLOWED_ORIGINS", None)
        if not origins:
            return [f"https://{self.PASSKEYS_RP_ID}"] if self.PASSKEYS_RP_ID else []
        return [str(o) for o in origins]

    @property
    def PASSKEYS_RELATED_ORIGINS(self) -> list[str]:
        """Origins published at ``/.well-known/webauthn`` (WebAuthn L3 Related Origin Requests)."""
        return [str(o) for o in getattr(settings, "PASSKEYS_RELATED_ORIGINS", [])]

    @property
    def PASSKEYS_CHALLENGE_TTL(self) -> int:
        """Seconds a challenge stays valid; also the ``timeout`` sent to the browser."""
        return int(getattr(settings, "PASSKEYS_CHALLENGE_TTL", 300))

    @property
    def PASSKEYS_USER_VERIFICATION(self) -> Requirement:
        """``userVerification`` for every ceremony; ``required`` also makes the server demand UV."""
        value: Requirement = getattr(settings, "PASSKEYS_USER_VERIFICATION", "preferred")
        return value

    @property
    def PASSKEYS_RESIDENT_KEY(self) -> Requirement:
        """``residentKey`` requested at registration (discoverable credentials by default)."""
        value: Requirement = getattr(settings, "PASSKEYS_RESIDENT_KEY", "required")
        return value

    @property
    def PASSKEYS_ATTESTATION(self) -> AttestationPreference:
        """Attestation conveyance preference sent at registration."""
        value: AttestationPreference = getattr(settings, "PASSKEYS_ATTESTATION", "none")
        return value

    @property
    def PASSKEYS_ATTESTATION_ROOT_CERTS(self) -> Mapping[str, list[bytes]]:
        """Extra trust anchors per attestation format (``{"packed": [pem_bytes, ...]}``)."""
        value: Mapping[str, list[bytes]] = getattr(settings, "PASSKEYS_ATTESTATION_ROOT_CERTS", {})
        return value

    @property
    def PASSKEYS_REQUIRE_ATTESTATION(self) -> bool:
        """Reject registrations whose attestation format is ``none`` (with ``direct``)."""
        return bool(getattr(settings, "PASSKEYS_REQUIRE_ATTESTATION", False))

    @property
    def PASSKEYS_ALGORITHMS(self) -> list[int]:
        """COSE algorithm identifiers offered and accepted, in order of preference."""
        return [int(a) for a in getattr(settings, "PASSKEYS_ALGORITHMS", [-8, -7, -257])]

    @property
    def PASSKEYS_HINTS(self) -> list[str]:
        """WebAuthn L3 registration ``hints``: ``security-key``, ``client-device``, ``hybrid``."""
        return [str(h) for h in getattr(settings, "PASSKEYS_HINTS", [])]

    @property
    def PASSKEYS_SIGN_COUNT_POLICY(self) -> SignCountPolicy:
        """A counter that does not increase: ``reject`` the login, or ``flag`` the credential."""
        value: SignCountPolicy = getattr(settings, "PASSKEYS_SIGN_COUNT_POLICY", "reject")
        return value

    @property
    def PASSKEYS_REAUTH_MAX_AGE(self) -> int:
        """Seconds since the last sign-in after which sensitive actions need reauthentication."""
        return int(getattr(settings, "PASSKEYS_REAUTH_MAX_AGE", 300))

    @property
    def PASSKEYS_MAX_BODY_BYTES(self) -> int:
        """Largest JSON body a ceremony endpoint reads; larger ones get 413 before parsing."""
        return int(getattr(settings, "PASSKEYS_MAX_BODY_BYTES", 64 * 1024))

    @property
    def PASSKEYS_LOGIN_REDIRECT_URL(self) -> str:
        """Where ``login/verify`` sends the user when no safe ``next`` is given."""
        return str(
            getattr(settings, "PASSKEYS_LOGIN_REDIRECT_URL", None)
            or getattr(settings, "LOGIN_REDIRECT_URL", "/")
        )

    @property
    def PASSKEYS_OTHER_LOGIN_URL(self) -> str:
        """The project's other sign-in page ("Use another method"): a URL or URL name.

        Defaults to ``settings.LOGIN_URL``. The link is hidden when it points at the passkey
        login page itself.
        """
        return str(
            getattr(settings, "PASSKEYS_OTHER_LOGIN_URL", None)
            or getattr(settings, "LOGIN_URL", "/accounts/login/")
        )

    @property
    def PASSKEYS_RECOVERY_URL(self) -> str | None:
        """The account recovery page ("Recover account"): a URL or URL name.

        With the default ``None``, the URL named ``password_reset`` is used when the project has
        one; otherwise the link is hidden.
        """
        value = getattr(settings, "PASSKEYS_RECOVERY_URL", None)
        return str(value) if value else None

    @property
    def PASSKEYS_AAGUID_FILE(self) -> str:
        """JSON file of authenticator providers by AAGUID (passkey-authenticator-aaguids format).

        Defaults to the list shipped in ``django_passkeys/data/aaguids.json``;
        ``manage.py passkeys_update_aaguids --from FILE`` validates and installs a newer copy here.
        """
        value = getattr(settings, "PASSKEYS_AAGUID_FILE", None)
        return (
            str(value) if value else str(Path(__file__).resolve().parent / "data" / "aaguids.json")
        )

    @property
    def PASSKEYS_USER_DISPLAY_NAME(self) -> Any:
        """Callable ``(user) -> str`` for ``user.displayName``; default: full name or username."""
        return getattr(settings, "PASSKEYS_USER_DISPLAY_NAME", None)


conf = Settings()

#: Values the system checks accept for the enumerated settings.
REQUIREMENTS = ("required", "preferred", "discouraged")
ATTESTATION_PREFERENCES = ("none", "indirect", "direct", "enterprise")
SIGN_COUNT_POLICIES = ("reject", "flag")
HINTS = ("security-key", "client-device", "hybrid")
