"""Hostile attestation objects that used to escape py_webauthn as unexpected exceptions.

Each one reaches ``register/verify`` with a valid challenge, origin and credential id, so only
the CBOR inside ``attestationObject`` is hostile. The answer is a 4xx with a reason code, an
AuthEvent records it, and nothing else is written.
"""

from __future__ import annotations

import struct
import tracemalloc
from typing import Any

import cbor2
import pytest

from django_passkeys.errors import Reason
from tests.authenticator import AAGUID, SoftAuthenticator, b64url, b64url_decode
from tests.support import REGISTER_VERIFY, assert_rejected, registration_options


@pytest.fixture
def attestation(api, user) -> dict[str, Any]:
    """A valid registration response for ``register/verify``, about to be broken."""
    return SoftAuthenticator().create(registration_options(api, user))


def _decoded(attestation: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = cbor2.loads(
        b64url_decode(attestation["response"]["attestationObject"])
    )
    return decoded


def _post(api, unchanged, attestation: dict[str, Any], decoded: dict[str, Any]) -> Any:
    attestation["response"]["attestationObject"] = b64url(cbor2.dumps(decoded))
    with unchanged():
        return api.post(REGISTER_VERIFY, attestation)


@pytest.mark.parametrize(
    "value",
    # bytes(n) of a 64-bit count overflows (OverflowError); of 2**50 it cannot be allocated
    # (MemoryError), and smaller counts would allocate gigabytes before anything failed.
    [2**64, 2**50, 2**30, -(2**64)],
    ids=["overflow", "petabyte", "gigabyte", "negative"],
)
def test_authenticator_data_that_is_a_huge_integer_is_malformed(api, unchanged, attestation, value):
    decoded = _decoded(attestation)
    decoded["authData"] = value
    tracemalloc.start()
    try:
        response = _post(api, unchanged, attestation, decoded)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_rejected(response, Reason.MALFORMED_REQUEST)
    # Refused before anything sized by the integer is allocated.
    assert peak < 64 * 1024 * 1024, peak


@pytest.mark.parametrize("key", [[1], [], [2, -7, 1, b"x" * 32, b"y" * 32], "text", 7], ids=str)
def test_credential_public_key_that_is_not_a_cbor_map_is_malformed(
    api, unchanged, attestation, key
):
    authenticator = SoftAuthenticator()
    cred_id = b64url_decode(attestation["rawId"])
    attested = AAGUID + struct.pack(">H", len(cred_id)) + cred_id + cbor2.dumps(key)
    decoded = _decoded(attestation)
    decoded["authData"] = authenticator.authenticator_data(
        authenticator.flags(at=True), 0, attested=attested
    )
    response = _post(api, unchanged, attestation, decoded)
    assert_rejected(response, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("value", [5, ["a"], {"a": 1}, True, 2**70, "header.payload.sig"])
def test_safetynet_statement_with_a_response_that_is_not_bytes_is_rejected(
    api, unchanged, attestation, value
):
    decoded = _decoded(attestation)
    decoded["fmt"] = "android-safetynet"
    decoded["attStmt"] = {"ver": "1", "response": value}
    response = _post(api, unchanged, attestation, decoded)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)


@pytest.mark.parametrize(
    "statement",
    [
        {"alg": -7, "sig": 5},
        {"alg": -7, "sig": b"x", "x5c": 5},
        {"alg": -7, "sig": b"x", "x5c": [5]},
        {"alg": "ES256", "sig": b"x"},
        {"alg": 2**70, "sig": b"x"},
    ],
    ids=["sig-int", "x5c-int", "x5c-item-int", "alg-text", "alg-huge"],
)
def test_packed_statement_with_wrong_types_is_rejected(api, unchanged, attestation, statement):
    decoded = _decoded(attestation)
    decoded["fmt"] = "packed"
    decoded["attStmt"] = statement
    response = _post(api, unchanged, attestation, decoded)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)
