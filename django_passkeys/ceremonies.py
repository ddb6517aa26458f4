"""WebAuthn ceremonies: options, and verification of every Relying Party step.

py_webauthn does the parsing and the cryptography. This module is the one place where each
Relying Party step of WebAuthn Level 3 §7.1 (registration) and §7.2 (authentication) lives:
the steps py_webauthn leaves to the application are implemented here, and the steps it does
perform are checked here first as well, so that every failure carries its own reason code.
Each check cites the step it implements.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import cbor2
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AttestationObject,
    AuthenticationCredential,
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    ClientDataType,
    CollectedClientData,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialHint,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from . import challenges
from .conf import conf
from .errors import PasskeyError, Reason
from .models import Challenge, Credential, UserHandle

#: WebAuthn L3 §5.1: credential ids longer than this are rejected (§7.1 step 25).
MAX_CREDENTIAL_ID_BYTES = 1023
#: Upper bound on the e-mail hint a client may send to ``login/options``.
MAX_HINT_LENGTH = 254

#: base64url as ``toJSON()`` sends it; the standard alphabet (``+``, ``/``) is accepted too, as
#: py_webauthn decodes it, because hand-written client encoders send it (real TPM responses).
_B64URL = re.compile(r"^[A-Za-z0-9_+/-]*={0,2}$")
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


@dataclass(frozen=True)
class RelyingParty:
    """What the server expects of every ceremony; built from settings, never from the request."""

    id: str
    name: str
    origins: tuple[str, ...]
    algorithms: tuple[int, ...]
    user_verification: str = "preferred"
    resident_key: str = "required"
    attestation: str = "none"
    require_attestation: bool = False
    hints: tuple[str, ...] = ()
    root_certs: Mapping[str, list[bytes]] = field(default_factory=dict)
    sign_count_policy: str = "reject"
    timeout_ms: int = 300_000

    @classmethod
    def from_settings(cls) -> RelyingParty:
        """The Relying Party as configured by the ``PASSKEYS_*`` settings (security rule 3)."""
        return cls(
            id=conf.PASSKEYS_RP_ID,
            name=conf.PASSKEYS_RP_NAME,
            origins=tuple(conf.PASSKEYS_ALLOWED_ORIGINS),
            algorithms=tuple(conf.PASSKEYS_ALGORITHMS),
            user_verification=conf.PASSKEYS_USER_VERIFICATION,
            resident_key=conf.PASSKEYS_RESIDENT_KEY,
            attestation=conf.PASSKEYS_ATTESTATION,
            require_attestation=conf.PASSKEYS_REQUIRE_ATTESTATION,
            hints=tuple(conf.PASSKEYS_HINTS),
            root_certs=conf.PASSKEYS_ATTESTATION_ROOT_CERTS,
            sign_count_policy=conf.PASSKEYS_SIGN_COUNT_POLICY,
            timeout_ms=conf.PASSKEYS_CHALLENGE_TTL * 1000,
        )

    @property
    def uv_required(self) -> bool:
        """Whether the server demands the UV flag (§7.1 step 15, §7.2 step 17)."""
        return self.user_verification == "required"


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


def user_handle_for(user: AbstractBaseUser) -> bytes:
    """The user's WebAuthn user handle, created on first use (64 random bytes)."""
    row, _ = UserHandle.objects.get_or_create(user_id=user.pk)
    return bytes(row.handle)


def display_name(user: AbstractBaseUser) -> str:
    """``user.displayName``: ``PASSKEYS_USER_DISPLAY_NAME(user)``, else full name or username."""
    custom = conf.PASSKEYS_USER_DISPLAY_NAME
    if callable(custom):
        return str(custom(user))
    full_name = getattr(user, "get_full_name", None)
    name = full_name() if callable(full_name) else ""
    return str(name or user.get_username())


def _descriptor(credential: Credential) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in credential.transports if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=bytes(credential.credential_id), transports=transports)


def registration_options(
    request: HttpRequest, user: AbstractBaseUser, rp: RelyingParty | None = None
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptionsJSON`` for ``user`` (§7.1 step 1), challenge stored."""
    rp = rp or RelyingParty.from_settings()
    existing = list(
        Credential.objects.active().filter(user_id=user.pk).only("credential_id", "transports")
    )
    challenge = challenges.issue(request, Challenge.Purpose.REGISTER, user_id=user.pk)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle_for(user),
        user_name=user.get_username(),
        user_display_name=display_name(user),
        challenge=challenge,
        timeout=rp.timeout_ms,
        attestation=AttestationConveyancePreference(rp.attestation),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement(rp.resident_key),
            require_resident_key=rp.resident_key == "required",
            user_verification=UserVerificationRequirement(rp.user_verification),
        ),
        # WebAuthn L3 §5.4 excludeCredentials: the authenticator refuses to create a second
        # credential for this account; transports let the browser find it.
        exclude_credentials=[_descriptor(c) for c in existing],
        supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in rp.algorithms],
        hints=[PublicKeyCredentialHint(h) for h in rp.hints] or None,
    )
    data = options_to_json_dict(options)
    # WebAuthn L3 §10.1.3: ask the client whether the credential is discoverable.
    data["extensions"] = {"credProps": True}
    return data


def _fake_descriptors(hint: str) -> list[dict[str, Any]]:
    """Deterministic, plausible ``allowCredentials`` for an account without passkeys.

    Derived from an HMAC of the hint keyed by ``SECRET_KEY``, so repeated requests for the same
    unknown address get the same answer and nothing reveals whether the account exists.
    """
    seed = salted_hmac("django_passkeys.fake-credentials", hint, algorithm="sha256").digest()
    count = 1 + seed[0] % 2
    return [
        {
            "id": bytes_to_base64url(
                salted_hmac(f"django_passkeys.fake-id.{i}", hint, algorithm="sha256").digest()
            ),
            "type": "public-key",
            "transports": ["hybrid", "internal"],
        }
        for i in range(count)
    ]


def authentication_options(
    request: HttpRequest,
    email_hint: str | None = None,
    *,
    purpose: Challenge.Purpose = Challenge.Purpose.LOGIN,
    user: AbstractBaseUser | None = None,
    rp: RelyingParty | None = None,
) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptionsJSON`` (§7.2 step 1), challenge stored.

    Without a hint or user: discoverable (empty ``allowCredentials``), for conditional UI.
    With ``user`` (reauthentication) or an e-mail hint matching an account that has passkeys:
    that account's credentials. Any other hint gets fake credentials of the same shape.
    """
    rp = rp or RelyingParty.from_settings()
    credentials: list[Credential] = []
    identified_user_id: Any = None
    if user is not None:
        credentials = list(Credential.objects.active().filter(user_id=user.pk))
        identified_user_id = user.pk
    elif email_hint:
        email_field = get_user_model().get_email_field_name()
        credentials = list(
            Credential.objects.active().filter(
                **{f"user__{email_field}__iexact": email_hint, "user__is_active": True}
            )
        )
        owners = {c.user_id for c in credentials}
        identified_user_id = owners.pop() if len(owners) == 1 else None

    challenge = challenges.issue(
        request,
        purpose,
        user_id=identified_user_id,
        allowed_credentials=[c.credential_id_sha256 for c in credentials],
    )
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=rp.timeout_ms,
        allow_credentials=[_descriptor(c) for c in credentials],
        user_verification=UserVerificationRequirement(rp.user_verification),
    )
    data = options_to_json_dict(options)
    if email_hint and not credentials:
        data["allowCredentials"] = _fake_descriptors(email_hint.lower())
    return data


# ---------------------------------------------------------------------------------------------
# Parsing: shape and encoding of the browser's JSON, before any WebAuthn step
# ---------------------------------------------------------------------------------------------


def _require_b64url(container: Mapping[str, Any], *keys: str, optional: Sequence[str] = ()) -> None:
    for key in (*keys, *optional):
        value = container.get(key)
        if value is None and key in optional:
            continue
        if not isinstance(value, str) or not _B64URL.match(value):
            raise PasskeyError(Reason.MALFORMED_REQUEST, f"{key} is not base64url")


def _parse_response(data: Any, kind: str) -> RegistrationCredential | AuthenticationCredential:
    if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "credential is not an object")
    if data.get("type") != "public-key":
        raise PasskeyError(Reason.MALFORMED_REQUEST, "type is not public-key")
    _require_b64url(data, "id", "rawId")
    if kind == "registration":
        _require_b64url(data["response"], "clientDataJSON", "attestationObject")
    else:
        _require_b64url(
            data["response"],
            "clientDataJSON",
            "authenticatorData",
            "signature",
            optional=("userHandle",),
        )
    try:
        if kind == "registration":
            parsed: RegistrationCredential | AuthenticationCredential = (
                parse_registration_credential_json(data)
            )
        else:
            parsed = parse_authentication_credential_json(data)
    except (WebAuthnException, ValueError, TypeError) as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, f"unparseable credential: {exc}") from exc
    # FIDO conformance: ``id`` is the base64url form of ``rawId``.
    if bytes_to_base64url(parsed.raw_id) != data["id"].rstrip("="):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "id and rawId differ")
    if not parsed.raw_id:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "empty credential id")
    return parsed


def _parse_client_data(raw: bytes) -> tuple[CollectedClientData, dict[str, Any]]:
    # §7.1 step 5 / §7.2 step 9: clientDataJSON is UTF-8 JSON.
    try:
        document = json.loads(raw.decode("utf-8"))
        client_data = parse_client_data_json(raw)
    except (UnicodeDecodeError, ValueError, RecursionError, WebAuthnException) as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, f"clientDataJSON: {exc}") from exc
    if not isinstance(client_data.origin, str) or not isinstance(document.get("type"), str):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "clientDataJSON fields have wrong types")
    return client_data, document


def _parse_attestation_object(raw: bytes) -> AttestationObject:
    # §7.1 step 12: attestationObject is exactly one CBOR data item (§6.5.4). cbor2 ignores
    # bytes after the first item, so they are refused here: what py_webauthn verifies is then
    # all that was sent.
    stream = io.BytesIO(raw)
    try:
        cbor2.CBORDecoder(stream, read_size=1).decode()
        if stream.tell() != len(raw):
            raise ValueError("bytes after the CBOR item")
        return parse_attestation_object(raw)
    except (WebAuthnException, cbor2.CBORError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, f"attestationObject: {exc}") from exc


def _parse_authenticator_data(raw: bytes) -> AuthenticatorData:
    try:
        return parse_authenticator_data(raw)
    except (WebAuthnException, ValueError, TypeError, IndexError, KeyError) as exc:
        raise PasskeyError(Reason.MALFORMED_REQUEST, f"authenticatorData: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Steps shared by both ceremonies
# ---------------------------------------------------------------------------------------------


def _check_client_data(
    client_data: CollectedClientData,
    document: Mapping[str, Any],
    expected_type: ClientDataType,
    rp: RelyingParty,
) -> None:
    # §7.1 step 7 / §7.2 step 11: C.type.
    if document["type"] != expected_type.value:
        raise PasskeyError(Reason.TYPE_MISMATCH, f"type {document['type']!r}")
    # §7.1 step 9 / §7.2 step 13: C.origin is an origin this RP expects.
    if client_data.origin not in rp.origins:
        raise PasskeyError(Reason.ORIGIN_MISMATCH, f"origin {client_data.origin!r}")
    # §7.1 step 10 / §7.2 step 14: this RP is never embedded cross-origin, so a true
    # crossOrigin or any topOrigin is rejected.
    if document.get("crossOrigin") is True or "topOrigin" in document:
        raise PasskeyError(Reason.CROSS_ORIGIN_REJECTED)


def _check_authenticator_data(
    auth_data: AuthenticatorData, rp: RelyingParty, stored_backup_eligible: bool | None = None
) -> None:
    # §7.1 step 13 / §7.2 step 15: rpIdHash is SHA-256 of the RP ID.
    if auth_data.rp_id_hash != hashlib.sha256(rp.id.encode()).digest():
        raise PasskeyError(Reason.RP_ID_MISMATCH)
    # §7.1 step 14 / §7.2 step 16: UP set.
    if not auth_data.flags.up:
        raise PasskeyError(Reason.USER_PRESENCE_MISSING)
    # §7.1 step 15 / §7.2 step 17: UV set when the RP requires user verification.
    if rp.uv_required and not auth_data.flags.uv:
        raise PasskeyError(Reason.USER_VERIFICATION_MISSING)
    # §7.1 step 16 / §7.2 step 18: BS may only be set when BE is set.
    if auth_data.flags.bs and not auth_data.flags.be:
        raise PasskeyError(Reason.BACKUP_STATE_INVALID)
    # §7.2 step 18 (and §6.1.3): backup eligibility is fixed at creation and never changes.
    if stored_backup_eligible is not None and auth_data.flags.be != stored_backup_eligible:
        raise PasskeyError(Reason.BACKUP_ELIGIBILITY_CHANGED)


# ---------------------------------------------------------------------------------------------
# Registration: WebAuthn L3 §7.1
# ---------------------------------------------------------------------------------------------


def verify_registration(
    request: HttpRequest,
    user: AbstractBaseUser,
    data: Any,
    *,
    name: str = "",
    rp: RelyingParty | None = None,
) -> Credential:
    """Verify a ``RegistrationResponseJSON`` and store the new credential.

    Raises :class:`PasskeyError` with the reason code of the first failing step; on failure
    nothing is written.
    """
    rp = rp or RelyingParty.from_settings()
    credential = cast(RegistrationCredential, _parse_response(data, "registration"))
    response = credential.response
    client_data, document = _parse_client_data(response.client_data_json)

    # §7.1 step 8: C.challenge is the challenge issued for this session, purpose and user.
    challenge = challenges.lookup(request, Challenge.Purpose.REGISTER, client_data.challenge)
    if challenge.user_id != user.pk:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge issued to another user")
    _check_client_data(client_data, document, ClientDataType.WEBAUTHN_CREATE, rp)

    # §7.1 step 12: CBOR-decode the attestation object (py_webauthn).
    attestation = _parse_attestation_object(response.attestation_object)
    auth_data = attestation.auth_data
    _check_authenticator_data(auth_data, rp)
    attested = auth_data.attested_credential_data
    if attested is None or not auth_data.flags.at:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "no attested credential data")

    # §7.1 step 19: the credential's algorithm is one offered in pubKeyCredParams.
    try:
        algorithm = decode_credential_public_key(attested.credential_public_key).alg
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyError(Reason.ALGORITHM_UNSUPPORTED, f"public key: {exc}") from exc
    if algorithm not in rp.algorithms:
        raise PasskeyError(Reason.ALGORITHM_UNSUPPORTED, f"alg {algorithm}")

    # §7.1 step 25: credentialId is at most 1023 bytes.
    if len(attested.credential_id) > MAX_CREDENTIAL_ID_BYTES:
        raise PasskeyError(Reason.CREDENTIAL_ID_TOO_LONG)
    if attested.credential_id != credential.raw_id:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "rawId differs from attested credential id")
    # §7.1 step 26: a credential id registered to anyone is never registered again.
    if Credential.objects.by_credential_id(attested.credential_id).exists():
        raise PasskeyError(Reason.CREDENTIAL_EXISTS)

    # §7.1 steps 5-23 again, in py_webauthn, with steps 21-23 (attestation statement format,
    # verification and trust anchors) done only there.
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=client_data.challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=rp.uv_required,
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in rp.algorithms],
            pem_root_certs_bytes_by_fmt={
                AttestationFormat(fmt): certs for fmt, certs in rp.root_certs.items()
            }
            or None,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, IndexError) as exc:
        raise PasskeyError(Reason.ATTESTATION_REJECTED, str(exc)) from exc
    # §7.1 step 24: with attestation required, self and none attestation are not trustworthy.
    if rp.require_attestation and verified.fmt == AttestationFormat.NONE:
        raise PasskeyError(Reason.ATTESTATION_REJECTED, "attestation required")

    # §7.1 step 27: store the credential record, in the transaction that consumes the challenge.
    record = Credential(
        user_id=user.pk,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=sorted({t.value for t in (response.transports or [])}),
        aaguid=str(uuid.UUID(bytes=attested.aaguid)),
        backup_eligible=auth_data.flags.be,
        backup_state=auth_data.flags.bs,
        uv_initialized=auth_data.flags.uv,
        attestation_format=str(getattr(verified.fmt, "value", verified.fmt)),
        name=name.strip()[:128],
    )
    try:
        with transaction.atomic():
            challenges.consume(challenge)
            record.save(force_insert=True)
    except IntegrityError as exc:
        # A concurrent registration of the same credential id won the race (step 26).
        raise PasskeyError(Reason.CREDENTIAL_EXISTS) from exc
    return record


# ---------------------------------------------------------------------------------------------
# Authentication: WebAuthn L3 §7.2
# ---------------------------------------------------------------------------------------------


def verify_authentication(
    request: HttpRequest,
    data: Any,
    *,
    purpose: Challenge.Purpose = Challenge.Purpose.LOGIN,
    rp: RelyingParty | None = None,
) -> Credential:
    """Verify an ``AuthenticationResponseJSON``; return the credential used, updated.

    Raises :class:`PasskeyError` with the reason code of the first failing step. On success the
    challenge is consumed and the credential's counter, backup state and last use are saved in
    one transaction; on failure nothing is written.
    """
    rp = rp or RelyingParty.from_settings()
    credential = cast(AuthenticationCredential, _parse_response(data, "authentication"))
    response = credential.response
    client_data, document = _parse_client_data(response.client_data_json)
    challenge = challenges.lookup(request, purpose, client_data.challenge)

    # §7.2 step 7: look up the credential record by id; revoked records never authenticate.
    # The owner and the owner's user handle come in the same query (one fewer per login).
    record = (
        Credential.objects.select_related("user", "user__passkey_handle")
        .by_credential_id(credential.raw_id)
        .first()
    )
    if record is None:
        raise PasskeyError(Reason.CREDENTIAL_UNKNOWN)
    if not record.is_active:
        raise PasskeyError(Reason.CREDENTIAL_REVOKED)
    # §7.2 step 5: with a non-empty allowCredentials, the credential is one of them.
    if challenge.allowed_credentials and record.credential_id_sha256 not in set(
        challenge.allowed_credentials
    ):
        raise PasskeyError(Reason.CREDENTIAL_NOT_ALLOWED)
    # §7.2 step 6: the credential belongs to the identified user, and userHandle, when present
    # (always, for a discoverable login), is that user's handle.
    if challenge.user_id is not None and record.user_id != challenge.user_id:
        raise PasskeyError(Reason.CREDENTIAL_NOT_ALLOWED, "credential of another user")
    # A missing reverse one-to-one raises an AttributeError subclass, so getattr's default applies.
    handle_row: UserHandle | None = getattr(record.user, "passkey_handle", None)
    stored_handle = bytes(handle_row.handle) if handle_row is not None else None
    if response.user_handle is not None:
        if stored_handle is None or bytes(response.user_handle) != stored_handle:
            raise PasskeyError(Reason.USER_HANDLE_MISMATCH)
    elif challenge.user_id is None:
        raise PasskeyError(Reason.USER_HANDLE_MISMATCH, "userHandle missing in discoverable login")

    _check_client_data(client_data, document, ClientDataType.WEBAUTHN_GET, rp)
    auth_data = _parse_authenticator_data(response.authenticator_data)
    _check_authenticator_data(auth_data, rp, stored_backup_eligible=record.backup_eligible)

    # §7.2 steps 21-22: hash clientDataJSON and verify the signature (py_webauthn). The stored
    # counter is passed as 0 so that step 23 is decided below, by the configured policy.
    try:
        verify_authentication_response(
            credential=credential,
            expected_challenge=client_data.challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=bytes(record.public_key),
            credential_current_sign_count=0,
            require_user_verification=rp.uv_required,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError, IndexError) as exc:
        raise PasskeyError(Reason.SIGNATURE_INVALID, str(exc)) from exc

    # §7.2 step 23: a counter that does not increase (unless both are 0) signals a clone.
    now = timezone.now()
    clone_warning_at = record.clone_warning_at
    if (auth_data.sign_count or record.sign_count) and auth_data.sign_count <= record.sign_count:
        if rp.sign_count_policy == "reject":
            raise PasskeyError(
                Reason.SIGN_COUNT_REGRESSED, f"{record.sign_count} -> {auth_data.sign_count}"
            )
        clone_warning_at = now

    # §7.2 steps 19 and 25: update the stored counter, backup state and last use in the
    # transaction that consumes the challenge. Nothing here catches an error, so inside a
    # caller's transaction no savepoint is needed (two queries fewer per login).
    with transaction.atomic(savepoint=False):
        challenges.consume(challenge)
        Credential.objects.filter(pk=record.pk).update(
            sign_count=max(auth_data.sign_count, record.sign_count),
            backup_state=auth_data.flags.bs,
            last_used_at=now,
            clone_warning_at=clone_warning_at,
        )
    record.sign_count = max(auth_data.sign_count, record.sign_count)
    record.backup_state = auth_data.flags.bs
    record.last_used_at = now
    record.clone_warning_at = clone_warning_at
    return record
