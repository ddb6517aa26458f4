"""The one error type, the stable reason codes, and the one JSON error shape."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.http import JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Reason(StrEnum):
    """Stable reason codes. Never reuse one for a different meaning."""

    MALFORMED_REQUEST = "malformed_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CSRF_FAILED = "csrf_failed"
    CHALLENGE_INVALID = "challenge_invalid"
    CHALLENGE_EXPIRED = "challenge_expired"
    TYPE_MISMATCH = "type_mismatch"
    ORIGIN_MISMATCH = "origin_mismatch"
    CROSS_ORIGIN_REJECTED = "cross_origin_rejected"
    RP_ID_MISMATCH = "rp_id_mismatch"
    RP_NOT_CONFIGURED = "rp_not_configured"
    USER_PRESENCE_MISSING = "user_presence_missing"
    USER_VERIFICATION_MISSING = "user_verification_missing"
    SIGNATURE_INVALID = "signature_invalid"
    CREDENTIAL_UNKNOWN = "credential_unknown"
    CREDENTIAL_REVOKED = "credential_revoked"
    CREDENTIAL_EXISTS = "credential_exists"
    CREDENTIAL_NOT_ALLOWED = "credential_not_allowed"
    CREDENTIAL_ID_TOO_LONG = "credential_id_too_long"
    USER_HANDLE_MISMATCH = "user_handle_mismatch"
    SIGN_COUNT_REGRESSED = "sign_count_regressed"
    BACKUP_STATE_INVALID = "backup_state_invalid"
    BACKUP_ELIGIBILITY_CHANGED = "backup_eligibility_changed"
    ALGORITHM_UNSUPPORTED = "algorithm_unsupported"
    ATTESTATION_REJECTED = "attestation_rejected"
    USER_INACTIVE = "user_inactive"
    RATE_LIMITED = "rate_limited"
    NOT_AUTHENTICATED = "not_authenticated"
    REAUTHENTICATION_REQUIRED = "reauthentication_required"
    COOLDOWN_ACTIVE = "cooldown_active"
    RECOVERY_TOKEN_INVALID = "recovery_token_invalid"
    RECOVERY_TOKEN_EXPIRED = "recovery_token_expired"
    SECOND_FACTOR_INVALID = "second_factor_invalid"
    NOT_FOUND = "not_found"
    NAME_INVALID = "name_invalid"
    RECOVERY_CODES_CHANGED = "recovery_codes_changed"
    RECOVERY_DENIED = "recovery_denied"
    SERVICE_UNAVAILABLE = "service_unavailable"
    UPGRADE_NOT_OFFERED = "upgrade_not_offered"
    PASSWORD_SIGN_IN_DISABLED = "password_sign_in_disabled"
    PASSKEY_ONLY_NOT_READY = "passkey_only_not_ready"
    PASSKEY_ONLY_REQUIRED = "passkey_only_required"


#: HTTP status and human message for each reason code (the docs table is generated from this).
REASONS: dict[Reason, tuple[int, Promise]] = {
    Reason.MALFORMED_REQUEST: (400, _("The request could not be understood.")),
    Reason.PAYLOAD_TOO_LARGE: (413, _("The request is too large.")),
    Reason.METHOD_NOT_ALLOWED: (405, _("This method is not allowed here.")),
    Reason.CSRF_FAILED: (403, _("The security token is missing or wrong; reload the page.")),
    Reason.CHALLENGE_INVALID: (400, _("This request is no longer valid; please try again.")),
    Reason.CHALLENGE_EXPIRED: (400, _("This request has expired; please try again.")),
    Reason.TYPE_MISMATCH: (400, _("The passkey response was for a different operation.")),
    Reason.ORIGIN_MISMATCH: (400, _("The passkey response came from an unexpected site.")),
    Reason.CROSS_ORIGIN_REJECTED: (400, _("Passkeys cannot be used from an embedded frame here.")),
    Reason.RP_ID_MISMATCH: (400, _("The passkey belongs to a different site.")),
    # A multi-tenant site's settings give no valid Relying Party for the request's host.
    Reason.RP_NOT_CONFIGURED: (400, _("Passkeys are not available at this address.")),
    Reason.USER_PRESENCE_MISSING: (400, _("The authenticator did not confirm your presence.")),
    Reason.USER_VERIFICATION_MISSING: (
        400,
        _("Your device did not verify you (PIN, fingerprint or face)."),
    ),
    Reason.SIGNATURE_INVALID: (400, _("The passkey response could not be verified.")),
    Reason.CREDENTIAL_UNKNOWN: (400, _("This passkey is not registered here.")),
    Reason.CREDENTIAL_REVOKED: (400, _("This passkey has been removed from your account.")),
    Reason.CREDENTIAL_EXISTS: (400, _("This passkey is already registered.")),
    Reason.CREDENTIAL_NOT_ALLOWED: (400, _("This passkey cannot be used for this account.")),
    Reason.CREDENTIAL_ID_TOO_LONG: (400, _("The passkey's identifier is too long.")),
    Reason.USER_HANDLE_MISMATCH: (400, _("This passkey belongs to a different account.")),
    Reason.SIGN_COUNT_REGRESSED: (
        400,
        _("This passkey may have been cloned; it cannot be used to sign in."),
    ),
    Reason.BACKUP_STATE_INVALID: (400, _("The authenticator reported an impossible state.")),
    Reason.BACKUP_ELIGIBILITY_CHANGED: (
        400,
        _("The passkey's backup eligibility changed; it cannot be trusted."),
    ),
    Reason.ALGORITHM_UNSUPPORTED: (
        400,
        _("This passkey uses an algorithm this site does not accept."),
    ),
    Reason.ATTESTATION_REJECTED: (400, _("This authenticator is not accepted here.")),
    Reason.USER_INACTIVE: (400, _("This account cannot sign in.")),
    Reason.RATE_LIMITED: (429, _("Too many attempts; please wait and try again.")),
    Reason.NOT_AUTHENTICATED: (403, _("Please sign in first.")),
    Reason.REAUTHENTICATION_REQUIRED: (403, _("Please confirm it's you before continuing.")),
    Reason.COOLDOWN_ACTIVE: (
        403,
        _(
            "This change is blocked for a while after an account recovery, or after a change "
            "of password or e-mail address."
        ),
    ),
    Reason.RECOVERY_TOKEN_INVALID: (400, _("This recovery link is not valid.")),
    Reason.RECOVERY_TOKEN_EXPIRED: (400, _("This recovery link has expired.")),
    Reason.SECOND_FACTOR_INVALID: (400, _("The code or approval was not accepted.")),
    Reason.RECOVERY_DENIED: (
        400,
        _("This recovery was denied from a device where you are signed in."),
    ),
    # The database or the cache did not answer: nothing was done, and trying again works once
    # it is back (see SERVICE_ERRORS).
    Reason.SERVICE_UNAVAILABLE: (
        503,
        _("The service is briefly unavailable; please try again in a moment."),
    ),
    # Also for another user's passkey, so that nothing tells the two apart.
    Reason.NOT_FOUND: (404, _("This passkey was not found on your account.")),
    Reason.NAME_INVALID: (
        400,
        _("A passkey name is 1 to 128 characters of text, without control characters."),
    ),
    Reason.RECOVERY_CODES_CHANGED: (
        400,
        _(
            "Your recovery codes changed since this page was loaded, and codes are shown only "
            "once. Generate a new set if you did not save them."
        ),
    ),
    # The move off passwords (docs/rollout.rst).
    Reason.UPGRADE_NOT_OFFERED: (403, _("Passkeys are not offered to this account yet.")),
    Reason.PASSWORD_SIGN_IN_DISABLED: (
        403,
        _(
            "This account signs in with a passkey only. Use “Sign in with a passkey”, "
            "or “Recover account” if you no longer have your passkey."
        ),
    ),
    Reason.PASSKEY_ONLY_NOT_READY: (
        400,
        _(
            "Add a passkey and a way to recover your account (recovery codes or an "
            "authenticator app) before turning password sign-in off."
        ),
    ),
    Reason.PASSKEY_ONLY_REQUIRED: (
        403,
        _("This site requires passkey sign-in for your account: the password stays off."),
    ),
}


#: Reasons whose developer detail joins the message while ``DEBUG`` is on: the failures of a
#: misconfigured development setup (``http://127.0.0.1:8000`` against an RP ID ``localhost``).
#: Their detail holds origins and RP IDs only, which are public; no other detail is shown,
#: since some name what an attacker probes for.
DEBUG_DETAIL_REASONS = frozenset(
    {Reason.ORIGIN_MISMATCH, Reason.RP_ID_MISMATCH, Reason.RP_NOT_CONFIGURED}
)


class PasskeyError(Exception):
    """A failed request: a reason code, its HTTP status and a human message."""

    def __init__(
        self,
        code: Reason,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        until: datetime | None = None,
        message: Promise | str | None = None,
    ) -> None:
        default_status, default_message = REASONS[code]
        self.code = code
        self.status = status if status is not None else default_status
        #: The human message: the reason's own, or a more precise one (``cooldown_active``
        #: says until when).
        self.message = message if message is not None else default_message
        #: Developer-facing detail for logs; shown to the client only while ``DEBUG`` is on,
        #: and only for :data:`DEBUG_DETAIL_REASONS`.
        self.detail = detail
        #: Seconds for the ``Retry-After`` header (rate limits), or ``None``.
        self.retry_after = retry_after
        #: When a temporary refusal ends (``cooldown_active``), or ``None``; sent as ``until``.
        self.until = until
        #: Set once the failure is audited, so that no layer audits it twice.
        self.recorded = False
        super().__init__(f"{code}: {detail}" if detail else str(code))

    def to_response(self) -> JsonResponse:
        """The one JSON error shape: ``{"error": {"code", "message"}}`` (and ``until``, if set).

        While ``DEBUG`` is on, the message of a reason in :data:`DEBUG_DETAIL_REASONS` ends with
        the developer detail (what arrived, what is configured).
        """
        message = self.message
        if self.detail and self.code in DEBUG_DETAIL_REASONS and settings.DEBUG:
            message = f"{message} [DEBUG: {self.detail}]"
        response = error_response(self.code, status=self.status, message=message, until=self.until)
        if self.retry_after is not None:
            response["Retry-After"] = str(max(1, self.retry_after))
        return response


def error_response(
    code: Reason,
    *,
    status: int | None = None,
    message: Promise | str | None = None,
    until: datetime | None = None,
) -> JsonResponse:
    """Build the JSON error body for ``code``; ``until`` (ISO 8601) only when given."""
    default_status, default_message = REASONS[code]
    error: dict[str, str] = {
        "code": str(code),
        "message": str(message if message is not None else default_message),
    }
    if until is not None:
        error["until"] = until.isoformat()
    return JsonResponse(
        {"error": error},
        status=status if status is not None else default_status,
    )
