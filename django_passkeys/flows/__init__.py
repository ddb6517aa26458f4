"""Use cases: every change a ceremony, a page, the admin or a command makes.

Each function owns one use case from end to end: the verification (through
:mod:`django_passkeys.ceremonies`), the failed-assertion backoff, the session stamp, the audit
event and the public signal. Views parse a request, call one function here and respond; the
admin action and the management commands call the same functions, so a passkey revoked anywhere
is audited and signalled alike (DESIGN security rule 9).

Failures are raised as :class:`~django_passkeys.errors.PasskeyError`. A flow records the
failures it detects itself (:func:`record_failure`), so that the audit trail and the signals
are the same whoever called it; a failure recorded once is never recorded again.

One module per feature: :mod:`.passkeys` here; second factors and :mod:`.recovery` beside it.
"""

from __future__ import annotations

from django_passkeys.totp import totp_state

from .adoption import (
    decline_upgrade,
    turn_off_passkey_only,
    turn_on_passkey_only,
    upgrade,
    upgrade_options,
)
from .failures import record_failure
from .passkeys import (
    SignIn,
    end_sessions,
    owned_credential,
    reauthenticate,
    reauthentication_options,
    register,
    registration_options,
    remove,
    rename,
    revoke,
    sign_in,
    sign_in_options,
)
from .recovery import (
    RecoveryFactors,
    approve,
    approve_assisted,
    ask_approval,
    check_link,
    continue_recovery,
    current_recovery,
    deny,
    open_link,
    pending_approvals,
    pending_link,
    recovery_factors,
    recovery_status,
    request_recovery,
    start_assisted,
    verify_factor,
)
from .recovery_codes import (
    GeneratedRecoveryCodes,
    RecoveryCodesState,
    generate_recovery_codes,
    recovery_codes_confirmation,
    recovery_codes_state,
    use_recovery_code,
)
from .totp import (
    begin_totp_enrolment,
    confirm_totp,
    may_enrol_totp,
    remove_totp,
    verify_totp,
)

__all__ = [
    # The move off passwords: the upgrade after a password sign-in, passkey-only
    "decline_upgrade",
    "turn_off_passkey_only",
    "turn_on_passkey_only",
    "upgrade",
    "upgrade_options",
    "SignIn",
    "end_sessions",
    "owned_credential",
    "reauthenticate",
    "reauthentication_options",
    "record_failure",
    "register",
    "registration_options",
    "remove",
    "rename",
    "revoke",
    "sign_in",
    "sign_in_options",
    # Authenticator app (TOTP)
    "begin_totp_enrolment",
    "confirm_totp",
    "may_enrol_totp",
    "remove_totp",
    "totp_state",
    "verify_totp",
    # Account recovery
    "RecoveryFactors",
    "approve",
    "approve_assisted",
    "ask_approval",
    "check_link",
    "continue_recovery",
    "current_recovery",
    "deny",
    "open_link",
    "pending_approvals",
    "pending_link",
    "recovery_factors",
    "recovery_status",
    "request_recovery",
    "start_assisted",
    "verify_factor",
    # Recovery codes
    "GeneratedRecoveryCodes",
    "RecoveryCodesState",
    "generate_recovery_codes",
    "recovery_codes_confirmation",
    "recovery_codes_state",
    "use_recovery_code",
]
