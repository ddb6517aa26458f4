"""Stored state: credentials, per-user handles, challenges and the audit trail."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, TimestampMixin

#: WebAuthn L3 §5.4.3: a user handle is at most 64 bytes; we always use the full 64 random bytes.
USER_HANDLE_BYTES = 64


def credential_id_digest(credential_id: bytes) -> str:
    """SHA-256 hex of a credential id: the indexed, unique lookup key."""
    return hashlib.sha256(credential_id).hexdigest()


def new_user_handle() -> bytes:
    """64 random bytes: never the primary key, never an e-mail (WebAuthn L3 §14.6.1)."""
    return secrets.token_bytes(USER_HANDLE_BYTES)


#: Longest passkey name a user may give (the ``Credential.name`` column).
MAX_NAME_LENGTH = 128


def clean_passkey_name(value: object, *, required: bool) -> str:
    """A passkey name as given at registration or rename, trimmed; or ``ValueError``.

    One rule for both: text without control characters (NUL included, which PostgreSQL text
    cannot hold, and CR/LF, which would break log lines), at most :data:`MAX_NAME_LENGTH`
    characters after trimming. Too long is refused, never cut silently. An empty name is allowed
    at registration (the page then shows the provider's name) but not in a rename.
    """
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError("a passkey name is text")
    # Cc: C0/C1 controls; Cs: lone surrogates; Zl/Zp: line and paragraph separators.
    if any(unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} for ch in value):
        raise ValueError("a passkey name cannot hold control characters")
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a passkey name is at most {MAX_NAME_LENGTH} characters")
    if required and not name:
        raise ValueError("a passkey name cannot be empty")
    return name


class UserHandle(models.Model):
    """The WebAuthn ``user.id`` of one account, stable for the account's lifetime."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkey_handle"
    )
    handle = models.BinaryField(max_length=USER_HANDLE_BYTES, unique=True, default=new_user_handle)

    class Meta:
        verbose_name = _("user handle")
        verbose_name_plural = _("user handles")

    def __str__(self) -> str:
        return f"user handle of {self.user_id}"


class CredentialQuerySet(models.QuerySet["Credential"]):
    """Query helpers for credentials."""

    def active(self) -> CredentialQuerySet:
        """Credentials that may still authenticate."""
        return self.filter(revoked_at__isnull=True)

    def by_credential_id(self, credential_id: bytes) -> CredentialQuerySet:
        """Match on the indexed digest of the raw credential id."""
        return self.filter(credential_id_sha256=credential_id_digest(credential_id))

    def devices_for_user(self, user: Any, confirmed: bool | None = None) -> CredentialQuerySet:
        """django-otp's ``DeviceManager`` API: a "confirmed" passkey is one not revoked."""
        devices = self.filter(user=user)
        if confirmed is not None:
            devices = devices.filter(revoked_at__isnull=bool(confirmed))
        return devices


class Credential(Device):  # type: ignore[misc]
    """A registered public key credential (a passkey or a security key).

    Also a django-otp :class:`~django_otp.models.Device`: a passkey sign-in or step-up marks the
    session verified with the credential itself (``django_otp.login``), so ``otp_required``
    views and django-otp's ``OTPAdminSite`` accept passkey sessions. A revoked credential is an
    unconfirmed device, which ``OTPMiddleware`` no longer accepts on the next request.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys"
    )
    credential_id = models.BinaryField(max_length=1023)
    credential_id_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    public_key = models.BinaryField()
    #: The owner's WebAuthn user handle, written at registration (security rule 10). The
    #: ceremony refuses the credential when its owner's handle is no longer this one, so moving
    #: a row to another account (an edit of ``user``) cannot sign anyone in as that account.
    #: Empty only for rows stored outside registration: those never authenticate.
    user_handle = models.BinaryField(max_length=USER_HANDLE_BYTES)
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True, default="")
    backup_eligible = models.BooleanField(default=False)
    backup_state = models.BooleanField(default=False)
    uv_initialized = models.BooleanField(default=False)
    attestation_format = models.CharField(max_length=32, blank=True, default="none")
    name = models.CharField(_("name"), max_length=MAX_NAME_LENGTH, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    clone_warning_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set when the signature counter went backwards under the 'flag' policy."),
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoke_reason = models.CharField(max_length=200, blank=True, default="")

    objects = CredentialQuerySet.as_manager()

    #: Not a column: the owner's active credentials, this one included, when a sign-in read
    #: them together with it (:func:`django_passkeys.ceremonies.verify_authentication`), for the
    #: Signal API list of its answer; ``None`` on any other instance.
    owner_credentials: list[Credential] | None = None

    class Meta:
        verbose_name = _("passkey")
        verbose_name_plural = _("passkeys")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="passkeys_cred_user_active")]
        # Revoking is not changing: staff may rename passkeys without being able to lock
        # people out (the admin's revoke action and page need this one).
        permissions = [("revoke_credential", _("Can revoke passkeys"))]

    def __str__(self) -> str:
        return self.name or f"passkey {self.credential_id_sha256[:8]}"

    # Replaces django-otp's ``confirmed`` column (a property here, so Django adds no field):
    # the revocation time is the one source of truth.
    @property
    def confirmed(self) -> bool:
        """django-otp's ``Device.confirmed``: whether the passkey may still authenticate."""
        return self.revoked_at is None

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.credential_id_sha256 = credential_id_digest(bytes(self.credential_id))
        super().save(*args, **kwargs)
        if hasattr(self.user_handle, "resolve_expression"):
            # The database computed the binding in the INSERT (see registration in ceremonies):
            # left deferred, so that it is read from the row if it is ever used, never the
            # expression.
            del self.__dict__["user_handle"]

    @property
    def is_active(self) -> bool:
        """Whether the credential can still authenticate."""
        return self.revoked_at is None

    def revoke(self, *, by: Any = None, reason: str = "") -> None:
        """Revoke: the credential never authenticates again."""
        self.revoked_at = timezone.now()
        self.revoked_by = by
        self.revoke_reason = reason[:200]
        self.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])


class Challenge(models.Model):
    """A server-side, one-time, session- and purpose-bound WebAuthn challenge."""

    class Purpose(models.TextChoices):
        REGISTER = "register", _("registration")
        LOGIN = "login", _("login")
        REAUTH = "reauth", _("reauthentication")
        RECOVERY_APPROVAL = "recovery-approval", _("recovery approval")
        #: A passkey created right after a password sign-in (django_passkeys.rollout): the one
        #: purpose whose registration may arrive without user presence (conditional create).
        UPGRADE = "upgrade", _("passkey upgrade")

    challenge_sha256 = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    session_binding = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    #: SHA-256 digests of the ``allowCredentials`` ids sent with the options (empty: discoverable).
    allowed_credentials = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")
        indexes = [models.Index(fields=["expires_at"], name="passkeys_chal_expires")]

    def __str__(self) -> str:
        return f"{self.purpose} challenge {self.challenge_sha256[:8]}"


class AuthEvent(models.Model):
    """One ceremony or recovery outcome. Never holds raw WebAuthn data, tokens or session keys."""

    class Type(models.TextChoices):
        REGISTER = "register", _("registration")
        LOGIN = "login", _("login")
        REAUTH = "reauth", _("reauthentication")
        REVOKE = "revoke", _("revocation")
        RENAME = "rename", _("rename")
        RECOVERY = "recovery", _("recovery")
        RATE_LIMIT = "rate_limit", _("rate limit")
        SESSIONS = "sessions", _("sessions ended")
        TOTP_ADDED = "totp_added", _("authenticator app added")
        TOTP_REMOVED = "totp_removed", _("authenticator app removed")
        RECOVERY_CODES = "recovery_codes", _("recovery codes generated")
        RECOVERY_CODE_USED = "recovery_code_used", _("recovery code used")
        RECOVERY_REQUEST = "recovery_request", _("recovery link requested")
        RECOVERY_LINK = "recovery_link", _("recovery link opened")
        RECOVERY_APPROVAL = "recovery_approval", _("recovery approval")
        # Cooldown (django_passkeys.cooldown): changes that start it, refusals of project views.
        PASSWORD_CHANGED = "password_changed", _("password changed")
        EMAIL_CHANGED = "email_changed", _("e-mail address changed")
        HIGH_RISK = "high_risk", _("high-risk change")
        # The move off passwords (docs/rollout.rst): sign-ins by password, passkeys created
        # through the upgrade after one (or its failures), the upgrade declined, passkey-only.
        PASSWORD_LOGIN = "password_login", _("password sign-in")
        UPGRADE = "upgrade", _("passkey upgrade")
        UPGRADE_DECLINED = "upgrade_declined", _("passkey upgrade declined")
        PASSKEY_ONLY_ON = "passkey_only_on", _("password sign-in turned off")
        PASSKEY_ONLY_OFF = "passkey_only_off", _("password sign-in turned on")

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="passkey_events",
    )
    event_type = models.CharField(max_length=20, choices=Type.choices)
    success = models.BooleanField()
    reason_code = models.CharField(max_length=64, blank=True, default="")
    credential = models.ForeignKey(
        Credential, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("authentication event")
        verbose_name_plural = _("authentication events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        outcome = "ok" if self.success else self.reason_code
        return f"{self.event_type} {outcome} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class UserSession(models.Model):
    """A signed-in session, indexed so that it can be listed and ended server-side.

    Written at every login (password logins too); ``credential`` is the passkey that
    established it, if any. ``session_key`` is the key of the session engine's store, needed to
    delete the session in the db and cache engines alike; it is never logged, audited or shown.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkey_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    credential = models.ForeignKey(
        Credential, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("signed-in session")
        verbose_name_plural = _("signed-in sessions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"session of {self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------
# Second factors: recovery codes (see django_passkeys.recovery_codes for the why)
# ---------------------------------------------------------------------------------------------

#: Bytes of the per-device HMAC key that recovery codes are hashed with.
RECOVERY_SALT_BYTES = 32


def new_recovery_salt() -> bytes:
    """A fresh random HMAC key for a set of recovery codes."""
    return secrets.token_bytes(RECOVERY_SALT_BYTES)


class RecoveryCodeDevice(TimestampMixin, Device):  # type: ignore[misc]  # django-otp is untyped
    """A user's set of single-use recovery codes, as a django-otp device (one per user).

    The codes themselves are never stored: each :class:`RecoveryCode` holds an HMAC-SHA256 of
    one code, keyed with this device's :attr:`salt`. ``generation`` counts the sets generated,
    so that a form showing one set cannot replace the next one by being sent again.
    """

    salt = models.BinaryField(
        max_length=RECOVERY_SALT_BYTES, default=new_recovery_salt, editable=False
    )
    generation = models.PositiveIntegerField(default=0, editable=False)
    generated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("recovery code set")
        verbose_name_plural = _("recovery code sets")
        constraints = [
            models.UniqueConstraint(fields=["user"], name="passkeys_recovery_device_user"),
        ]

    def verify_token(self, token: object) -> bool:
        """django-otp's device API: accept ``token`` if it is one of the unused codes, once.

        This is how django-otp's own forms (``match_token``) use the codes; the audited path,
        with the ``recovery_code_used`` signal, is :func:`django_passkeys.flows.use_recovery_code`.
        """
        # Imported here: the factor logic sits above the models it stores its state in.
        from django_passkeys import recovery_codes

        return recovery_codes.consume(self, token) is not None


class RecoveryCode(models.Model):
    """One recovery code of a set: its digest (never the code) and when it was used."""

    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, editable=False)
    used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")

    def __str__(self) -> str:
        return f"recovery code {self.pk} of {self.device_id}"


# ---------------------------------------------------------------------------------------------
# Account recovery (the state machine is django_passkeys.recovery; flows.recovery writes it)
# ---------------------------------------------------------------------------------------------


class RecoveryRequest(models.Model):
    """One attempt to recover an account: a mailbox link, then a second factor.

    Holds the SHA-256 of the link's token, never the token; the approval code a device or a
    staff member confirms is stored the same way. ``state`` moves only through
    :func:`django_passkeys.recovery.transition` (the table of allowed moves is in
    :mod:`django_passkeys.recovery`).
    """

    class State(models.TextChoices):
        REQUESTED = "requested", _("link sent")
        LINK_OPENED = "link_opened", _("link opened")
        APPROVAL_PENDING = "approval_pending", _("waiting for approval")
        APPROVED = "approved", _("approved")
        COMPLETED = "completed", _("completed")
        DENIED = "denied", _("denied")
        EXPIRED = "expired", _("expired")
        FAILED = "failed", _("failed")
        SUPERSEDED = "superseded", _("superseded")

    class Factor(models.TextChoices):
        TOTP = "totp", _("authenticator app")
        RECOVERY_CODE = "recovery_code", _("recovery code")
        DEVICE = "device", _("approval from a signed-in device")
        STAFF = "staff", _("approval by staff (assisted recovery)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkey_recoveries"
    )
    token_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.REQUESTED, editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    #: Deadline of the current step: opening the link, then proving the second factor.
    expires_at = models.DateTimeField(editable=False)
    opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: When the request completed (signed the user in) or ended otherwise.
    used_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Digest of the binding secret of the browser session that opened the link.
    session_binding = models.CharField(max_length=64, blank=True, default="", editable=False)
    #: The second factor used, or awaited while an approval is pending.
    factor = models.CharField(
        max_length=20, choices=Factor.choices, blank=True, default="", editable=False
    )
    factor_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    approval_code_sha256 = models.CharField(max_length=64, blank=True, default="", editable=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    requesting_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    #: The browser that opened the link (what an approving device is shown), truncated.
    opening_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    opening_user_agent = models.CharField(max_length=200, blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("recovery request")
        verbose_name_plural = _("recovery requests")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "state"], name="passkeys_recovery_user_state")]

    def __str__(self) -> str:
        return f"recovery of {self.user_id} ({self.state}) at {self.created_at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------
# Cooldown after a recovery or a password change (see django_passkeys.cooldown for the why)
# ---------------------------------------------------------------------------------------------


class Cooldown(models.Model):
    """Until when ``user``'s high-risk changes are refused; at most one row per user.

    Written when a recovery completes or the password or e-mail address changes; a later start
    only ever extends ``until``. A row whose ``until`` has passed means nothing.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkey_cooldown"
    )
    until = models.DateTimeField()
    #: What started the cooldown that ends at ``until``: ``recovery``, ``password_change``...
    reason = models.CharField(max_length=32)
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("cooldown")
        verbose_name_plural = _("cooldowns")

    def __str__(self) -> str:
        return f"cooldown of {self.user_id} until {self.until:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------
# The move off passwords (django_passkeys.passkey_only, django_passkeys.rollout)
# ---------------------------------------------------------------------------------------------


class AdoptionState(models.Model):
    """One user's place in the move off passwords; at most one row per user, created on need.

    ``passkey_only_since`` is the user's own choice; a site policy (``PASSKEYS_PASSKEY_ONLY``)
    may require passkey-only without a row. Either way it takes effect only while the user holds
    an active passkey (see :mod:`django_passkeys.passkey_only`).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkey_adoption"
    )
    #: Since when the user has turned password sign-in off; ``None``: the password works.
    passkey_only_since = models.DateTimeField(null=True, blank=True)
    #: Until when the upgrade after a password sign-in stays quiet ("Don't ask again").
    upgrade_snoozed_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("passkey adoption state")
        verbose_name_plural = _("passkey adoption states")

    def __str__(self) -> str:
        mode = "passkey only" if self.passkey_only_since else "password allowed"
        return f"{mode} for {self.user_id}"
