"""A software authenticator: produces what a browser's ``credential.toJSON()`` produces.

ES256 keys via ``cryptography``, CBOR via ``cbor2``. Flags (UP, UV, BE, BS), the sign counter,
the user handle, the origin and the RP ID are configurable per call, so tests can build any
valid or hostile response and send it through the real HTTP endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40
FLAG_ED = 0x80

AAGUID = bytes.fromhex("ea9b8d664d011d213ce4b6b48cb575d4")  # Google Password Manager


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class SoftAuthenticator:
    """One ES256 credential on a software authenticator."""

    rp_id: str = "testserver"
    origin: str = "https://testserver"
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    backup_eligible: bool = True
    backup_state: bool = True
    user_verified: bool = True
    user_handle: bytes | None = None
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    # -- building blocks ---------------------------------------------------------------------

    def cose_public_key(self, alg: int = -7) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: alg,
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def flags(
        self,
        *,
        up: bool = True,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        at: bool = False,
    ) -> int:
        value = FLAG_UP if up else 0
        if self.user_verified if uv is None else uv:
            value |= FLAG_UV
        if self.backup_eligible if be is None else be:
            value |= FLAG_BE
        if self.backup_state if bs is None else bs:
            value |= FLAG_BS
        if at:
            value |= FLAG_AT
        return value

    def authenticator_data(
        self,
        flags: int,
        sign_count: int,
        *,
        attested: bytes = b"",
        rp_id: str | None = None,
    ) -> bytes:
        rp_id_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", sign_count) + attested

    def client_data(
        self, type_: str, challenge: str, *, origin: str | None = None, **extra: Any
    ) -> bytes:
        document: dict[str, Any] = {
            "type": type_,
            "challenge": challenge,
            "origin": origin or self.origin,
            "crossOrigin": False,
        }
        document.update(extra)
        return json.dumps(document, separators=(",", ":")).encode()

    # -- ceremonies ----------------------------------------------------------------------------

    def create(
        self,
        options: dict[str, Any],
        *,
        alg: int = -7,
        fmt: str = "none",
        origin: str | None = None,
        type_: str = "webauthn.create",
        rp_id: str | None = None,
        flags: dict[str, bool] | None = None,
        client_extra: dict[str, Any] | None = None,
        transports: list[str] | None = None,
    ) -> dict[str, Any]:
        """``RegistrationResponseJSON`` for creation ``options`` (as the server sent them)."""
        self.user_handle = b64url_decode(options["user"]["id"])
        attested = (
            AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self.cose_public_key(alg)
        )
        auth_data = self.authenticator_data(
            self.flags(at=True, **(flags or {})), self.sign_count, attested=attested, rp_id=rp_id
        )
        client_data = self.client_data(
            type_, options["challenge"], origin=origin, **(client_extra or {})
        )
        attestation = cbor2.dumps({"fmt": fmt, "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {"credProps": {"rk": True}},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": transports if transports is not None else ["hybrid", "internal"],
                "publicKeyAlgorithm": alg,
                "authenticatorData": b64url(auth_data),
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        type_: str = "webauthn.get",
        rp_id: str | None = None,
        flags: dict[str, bool] | None = None,
        sign_count: int | None = None,
        user_handle: bytes | None | bool = True,
        client_extra: dict[str, Any] | None = None,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """``AuthenticationResponseJSON`` for request ``options``; bumps the counter.

        ``user_handle=True`` sends the stored handle, ``None``/``False`` omits it, bytes send
        those bytes.
        """
        if sign_count is None:
            if self.sign_count:
                self.sign_count += 1
            sign_count = self.sign_count
        auth_data = self.authenticator_data(self.flags(**(flags or {})), sign_count, rp_id=rp_id)
        client_data = self.client_data(
            type_, options["challenge"], origin=origin, **(client_extra or {})
        )
        signature = self.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        handle = self.user_handle if user_handle is True else (user_handle or None)
        cred_id = credential_id or self.credential_id
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if handle:
            response["userHandle"] = b64url(handle)
        return {
            "id": b64url(cred_id),
            "rawId": b64url(cred_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }
