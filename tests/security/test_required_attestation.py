"""``PASSKEYS_REQUIRE_ATTESTATION`` accepts only attestation that chains to a trust anchor.

The forged statements here are valid as far as py_webauthn is concerned (each is accepted once
its own certificate is configured as the root, or when attestation is not required), so each
refusal is about trust, not about a broken signature.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from django_passkeys.errors import Reason
from django_passkeys.models import Credential
from tests.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.support import REGISTER_VERIFY, assert_rejected, registration_options

YUBICO_ROOT = (
    Path(__file__).parent.parent
    / "data"
    / "attestation-roots"
    / "yubico-u2f-root-ca-serial-457200631.pem"
).read_bytes()


def _self_signed_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Totally a YubiKey")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def _with_statement(body: dict[str, Any], fmt: str, statement: dict[str, Any]) -> dict[str, Any]:
    response = body["response"]
    decoded = cbor2.loads(b64url_decode(response["attestationObject"]))
    response["attestationObject"] = b64url(
        cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": decoded["authData"]})
    )
    return body


def _signed_data(body: dict[str, Any]) -> bytes:
    # WebAuthn L3 §8.2: packed signs authenticatorData || SHA-256(clientDataJSON).
    response = body["response"]
    auth_data = cbor2.loads(b64url_decode(response["attestationObject"]))["authData"]
    return bytes(auth_data + hashlib.sha256(b64url_decode(response["clientDataJSON"])).digest())


def self_attestation(authenticator: SoftAuthenticator, body: dict[str, Any]) -> dict[str, Any]:
    """Packed self attestation: signed by the new credential's own key, no x5c."""
    sig = authenticator.private_key.sign(_signed_data(body), ec.ECDSA(hashes.SHA256()))
    return _with_statement(body, "packed", {"alg": -7, "sig": sig})


def self_signed_x5c(body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Packed attestation by a certificate the client made itself; returns it as PEM too."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed_certificate(key)
    sig = key.sign(_signed_data(body), ec.ECDSA(hashes.SHA256()))
    der = certificate.public_bytes(serialization.Encoding.DER)
    statement = {"alg": -7, "sig": sig, "x5c": [der]}
    return (
        _with_statement(body, "packed", statement),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


@pytest.fixture
def required(settings: Any) -> Any:
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    settings.PASSKEYS_ATTESTATION = "direct"
    return settings


@pytest.fixture
def new_body(api: Any, user: Any) -> Any:
    def _new_body() -> tuple[SoftAuthenticator, dict[str, Any]]:
        authenticator = SoftAuthenticator()
        return authenticator, authenticator.create(registration_options(api, user))

    return _new_body


# -- the forged statements are valid: accepted when attestation is not required -------------------


def test_self_attestation_is_accepted_when_attestation_is_not_required(api, new_body):
    authenticator, body = new_body()
    response = api.post(REGISTER_VERIFY, self_attestation(authenticator, body))
    assert response.status_code == 201, response.content
    assert Credential.objects.get().attestation_format == "packed"


def test_self_signed_x5c_is_accepted_when_its_certificate_is_the_configured_root(
    api, new_body, required
):
    _, body = new_body()
    body, pem = self_signed_x5c(body)
    required.PASSKEYS_ATTESTATION_ROOT_CERTS = {"packed": [pem]}
    response = api.post(REGISTER_VERIFY, body)
    assert response.status_code == 201, response.content


# -- required attestation refuses what no trust anchor vouches for ------------------------------


def test_none_attestation_is_refused_even_with_roots_configured(api, new_body, required, unchanged):
    required.PASSKEYS_ATTESTATION_ROOT_CERTS = {"packed": [YUBICO_ROOT]}
    _, body = new_body()
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)
    assert not Credential.objects.exists()


@pytest.mark.parametrize("roots", [{}, {"packed": [YUBICO_ROOT]}], ids=["no-roots", "roots"])
def test_packed_self_attestation_is_refused_when_attestation_is_required(
    api, new_body, required, unchanged, roots
):
    required.PASSKEYS_ATTESTATION_ROOT_CERTS = roots
    authenticator, body = new_body()
    with unchanged():
        response = api.post(REGISTER_VERIFY, self_attestation(authenticator, body))
    assert_rejected(response, Reason.ATTESTATION_REJECTED)
    assert not Credential.objects.exists()


def test_self_signed_x5c_is_refused_when_no_roots_are_configured(
    api, new_body, required, unchanged
):
    _, body = new_body()
    body, _ = self_signed_x5c(body)
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)
    assert not Credential.objects.exists()


def test_self_signed_x5c_is_refused_when_roots_are_configured_for_another_format(
    api, new_body, required, unchanged
):
    _, body = new_body()
    body, pem = self_signed_x5c(body)
    required.PASSKEYS_ATTESTATION_ROOT_CERTS = {"fido-u2f": [pem], "tpm": [YUBICO_ROOT]}
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)


def test_self_signed_x5c_is_refused_when_it_does_not_chain_to_the_configured_root(
    api, new_body, required, unchanged
):
    _, body = new_body()
    body, _ = self_signed_x5c(body)
    required.PASSKEYS_ATTESTATION_ROOT_CERTS = {"packed": [YUBICO_ROOT]}
    with unchanged():
        response = api.post(REGISTER_VERIFY, body)
    assert_rejected(response, Reason.ATTESTATION_REJECTED)
