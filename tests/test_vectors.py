"""Responses captured from real authenticators go through the ceremony layer.

The vectors in ``tests/data/webauthn-vectors/`` (see its README) come from the public test
suites of py_webauthn and SimpleWebAuthn. Each is replayed through
:func:`django_passkeys.ceremonies.verify_registration` / ``verify_authentication`` with a
Challenge row for the vector's challenge bound to the request's session, and the Relying Party
configured to the vector's RP ID and origin.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone
from OpenSSL.crypto import X509Store

from django_passkeys import ceremonies
from django_passkeys.challenges import session_binding
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import Challenge, Credential, UserHandle

from .authenticator import FLAG_BE, FLAG_BS, b64url, b64url_decode
from .factories import UserFactory
from .support import db_snapshot

VECTORS = Path(__file__).parent / "data" / "webauthn-vectors"
#: Every algorithm the vectors use: ES256, EdDSA, ES512, PS256, RS256 and ML-DSA-44.
ALGORITHMS = [-7, -8, -36, -37, -257, -48]


@dataclass
class Vector:
    """One ceremony of a vector file, in a single layout whatever the file's own layout."""

    file: str
    kind: str
    credential: dict[str, Any]
    challenge: bytes
    origin: str
    rp_id: str
    expected: dict[str, Any]
    require_uv: bool = False
    validation_time: str | None = None
    public_key: bytes = b""
    sign_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _vector(file: str, doc: dict[str, Any], kind: str) -> Vector:
    expected = dict(doc.get("expected_result") or doc.get("expect") or {})
    # Files 14 and 15 spell these keys with a _b64url suffix.
    for key in ("credential_id", "credential_public_key"):
        if f"{key}_b64url" in expected:
            expected[key] = expected.pop(f"{key}_b64url")
    stored_key = doc.get("credential_public_key_b64url") or doc.get(
        "stored_credential_public_key_b64url"
    )
    return Vector(
        file=file,
        kind=kind,
        credential=doc["credential"],
        challenge=b64url_decode(doc["expected_challenge_b64url"]),
        origin=doc["expected_origin"],
        rp_id=doc["expected_rp_id"],
        expected=expected,
        require_uv=bool(doc.get("require_user_verification", False)),
        validation_time=doc.get("x509_validation_time"),
        public_key=b64url_decode(stored_key) if stored_key else b"",
        sign_count=int(
            doc.get("credential_current_sign_count", doc.get("stored_sign_count", 0)) or 0
        ),
    )


def load(file: str) -> list[Vector]:
    """The ceremonies of one vector file, registration first."""
    doc = json.loads((VECTORS / file).read_text())
    if "kind" in doc:
        return [_vector(file, doc, doc["kind"])]
    return [
        _vector(file, doc[kind], kind) for kind in ("registration", "authentication") if kind in doc
    ]


def files(prefix_kind: str) -> list[str]:
    return sorted(
        p.name for p in VECTORS.glob("*.json") if any(v.kind == prefix_kind for v in load(p.name))
    )


@pytest.fixture
def configure(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the Relying Party at one vector; pin certificate time when the vector says so."""

    def _configure(vector: Vector) -> None:
        settings.PASSKEYS_RP_ID = vector.rp_id
        settings.PASSKEYS_ALLOWED_ORIGINS = [vector.origin]
        settings.PASSKEYS_ALGORITHMS = ALGORITHMS
        settings.PASSKEYS_USER_VERIFICATION = "required" if vector.require_uv else "preferred"
        if vector.validation_time:
            when = datetime.fromisoformat(vector.validation_time)

            def pinned_store() -> X509Store:
                # As py_webauthn's own tests do: validate the chain as of when it was captured.
                store = X509Store()
                store.set_time(when)
                return store

            # ``webauthn.helpers.validate_certificate_chain`` is also the name of the function the
            # package re-exports, so the module is taken from sys.modules.
            module = sys.modules["webauthn.helpers.validate_certificate_chain"]
            monkeypatch.setattr(module, "_generate_new_cert_store", pinned_store)

    return _configure


def session_request() -> Any:
    request = RequestFactory().post("/", secure=True)
    request.session = SessionStore()
    return request


def store_challenge(
    request: Any, vector: Vector, purpose: Challenge.Purpose, user: Any = None
) -> Challenge:
    now = timezone.now()
    return Challenge.objects.create(
        challenge_sha256=hashlib.sha256(vector.challenge).hexdigest(),
        purpose=purpose,
        session_binding=session_binding(request),
        user=user,
        created_at=now,
        expires_at=now + timedelta(minutes=5),
    )


def register(vector: Vector, user: Any) -> Credential:
    request = session_request()
    challenge = store_challenge(request, vector, Challenge.Purpose.REGISTER, user)
    credential = ceremonies.verify_registration(request, user, vector.credential)
    challenge.refresh_from_db()
    assert challenge.consumed_at is not None
    return credential


def stored_credential(vector: Vector, user: Any) -> Credential:
    """The credential record a vector's assertion is checked against."""
    auth_data = b64url_decode(vector.credential["response"]["authenticatorData"])
    flags = auth_data[32]
    return Credential.objects.create(
        user=user,
        credential_id=b64url_decode(vector.credential["rawId"]),
        public_key=vector.public_key,
        sign_count=vector.sign_count,
        # BE is fixed at creation; the stored record has the flag the authenticator reports.
        backup_eligible=bool(flags & FLAG_BE),
        backup_state=bool(flags & FLAG_BS),
    )


def prepare_login(vector: Vector, record: Credential) -> Any:
    """A request whose session holds the vector's login challenge, as login/options leaves it."""
    request = session_request()
    handle = vector.credential["response"].get("userHandle")
    if handle:
        UserHandle.objects.update_or_create(
            user=record.user, defaults={"handle": b64url_decode(handle.rstrip("="))}
        )
    # The owner binding registration stores (security rule 10), to the handle set just above.
    Credential.objects.filter(pk=record.pk).update(
        user_handle=ceremonies.user_handle_for(record.user)
    )
    # Without a userHandle the login is not discoverable: the options named the account.
    store_challenge(request, vector, Challenge.Purpose.LOGIN, user=None if handle else record.user)
    return request


REGISTRATIONS = files("registration")
AUTHENTICATIONS = [f for f in files("authentication") if not f.startswith("13_")]


def test_every_vector_file_is_exercised():
    names = {p.name for p in VECTORS.glob("*.json")}
    assert len(names) == 15
    assert names == set(REGISTRATIONS) | set(AUTHENTICATIONS) | {
        "13_auth_android_app_devicepubkey_ext_swa.json"
    }


@pytest.mark.django_db
@pytest.mark.parametrize("file", REGISTRATIONS)
def test_real_registration_is_accepted_and_stored_as_expected(file, configure):
    vector = load(file)[0]
    configure(vector)
    user = UserFactory()

    credential = register(vector, user)

    stored = Credential.objects.get()
    assert stored.pk == credential.pk
    assert stored.user == user
    expected = vector.expected
    assert stored.attestation_format == expected["fmt"]
    if "credential_id" in expected:
        assert b64url(bytes(stored.credential_id)) == expected["credential_id"]
    else:
        assert b64url(bytes(stored.credential_id)) == vector.credential["rawId"].rstrip("=")
    if "credential_public_key" in expected:
        assert b64url(bytes(stored.public_key)) == expected["credential_public_key"]
    if "sign_count" in expected:
        assert stored.sign_count == expected["sign_count"]
    if "aaguid" in expected:
        assert stored.aaguid == expected["aaguid"]
    if "credential_backed_up" in expected:
        assert stored.backup_state is expected["credential_backed_up"]
    if "user_verified" in expected:
        assert stored.uv_initialized is expected["user_verified"]


@pytest.mark.django_db
@pytest.mark.parametrize("file", AUTHENTICATIONS)
def test_real_assertion_is_accepted_and_counter_updated(file, configure):
    vectors = load(file)
    user = UserFactory()
    if vectors[0].kind == "registration":
        # A pair (14): the assertion is checked against the credential the registration stored.
        configure(vectors[0])
        record = register(vectors[0], user)
        record.sign_count = vectors[1].sign_count
        record.save(update_fields=["sign_count"])
        vector = vectors[1]
    else:
        vector = vectors[0]
        record = stored_credential(vector, user)
    configure(vector)

    credential = ceremonies.verify_authentication(prepare_login(vector, record), vector.credential)

    new_count = vector.expected["new_sign_count"]
    assert credential.pk == record.pk
    assert credential.sign_count == new_count
    record.refresh_from_db()
    assert record.sign_count == new_count
    assert record.last_used_at is not None
    assert record.clone_warning_at is None
    assert Challenge.objects.filter(purpose="login", consumed_at__isnull=False).count() == 1


@pytest.mark.django_db
def test_android_app_assertion_with_bad_signature_is_rejected(configure):
    (vector,) = load("13_auth_android_app_devicepubkey_ext_swa.json")
    assert vector.origin.startswith("android:apk-key-hash:")
    configure(vector)
    record = stored_credential(vector, UserFactory())
    request = prepare_login(vector, record)
    before = db_snapshot()

    # In a transaction of its own, as the flows run it: the failure rolls back the challenge.
    with pytest.raises(PasskeyError) as caught, transaction.atomic():
        ceremonies.verify_authentication(request, vector.credential)

    assert caught.value.code == Reason.SIGNATURE_INVALID
    assert db_snapshot() == before


# -- PASSKEYS_REQUIRE_ATTESTATION: real attestation is trusted only through a root ---------------

#: The root of vectors 01 (packed) and 02 (fido-u2f), from Yubico's published list.
YUBICO_ROOT = (
    Path(__file__).parent / "data" / "attestation-roots" / "yubico-u2f-root-ca-serial-457200631.pem"
).read_bytes()
PACKED = "01_reg_packed_yubikey_firefox.json"
FIDO_U2F = "02_reg_fido_u2f_yubikey_firefox.json"
TPM = "03_reg_tpm_surface_pro_4.json"
APPLE = "04_reg_apple_passkey.json"
ANDROID_KEY = "05_reg_android_key_pixel8a.json"
NONE = "09_reg_none_firefox_android_swa.json"
TPM_HELLO = "10_reg_tpm_windows_hello_netpassport_swa.json"


@pytest.fixture
def require_attestation(settings: Any) -> Any:
    settings.PASSKEYS_REQUIRE_ATTESTATION = True
    settings.PASSKEYS_ATTESTATION = "direct"
    return settings


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("file", "roots"),
    [
        (PACKED, {"packed": [YUBICO_ROOT]}),
        (FIDO_U2F, {"fido-u2f": [YUBICO_ROOT]}),
        # py_webauthn always checks these chains against the Apple and Google roots it bundles.
        (APPLE, {}),
        (ANDROID_KEY, {}),
    ],
    ids=["packed", "fido-u2f", "apple", "android-key"],
)
def test_required_attestation_accepts_a_chain_to_a_trusted_root(
    file, roots, configure, require_attestation
):
    require_attestation.PASSKEYS_ATTESTATION_ROOT_CERTS = roots
    vector = load(file)[0]
    configure(vector)

    credential = register(vector, UserFactory())

    assert Credential.objects.get().pk == credential.pk
    assert credential.attestation_format == vector.expected["fmt"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("file", "roots"),
    [
        (PACKED, {}),
        (PACKED, {"fido-u2f": [YUBICO_ROOT]}),
        (FIDO_U2F, {}),
        (FIDO_U2F, {"packed": [YUBICO_ROOT]}),
        (TPM, {}),
        (TPM_HELLO, {"packed": [YUBICO_ROOT]}),
        (NONE, {"packed": [YUBICO_ROOT]}),
    ],
    ids=[
        "packed-no-roots",
        "packed-roots-for-fido-u2f-only",
        "fido-u2f-no-roots",
        "fido-u2f-roots-for-packed-only",
        "tpm-no-roots",
        "tpm-hello-roots-for-packed-only",
        "none",
    ],
)
def test_required_attestation_refuses_a_format_without_trusted_roots(
    file, roots, configure, require_attestation
):
    require_attestation.PASSKEYS_ATTESTATION_ROOT_CERTS = roots
    vector = load(file)[0]
    configure(vector)
    request = session_request()
    store_challenge(request, vector, Challenge.Purpose.REGISTER, user := UserFactory())
    before = db_snapshot()

    with pytest.raises(PasskeyError) as caught:
        ceremonies.verify_registration(request, user, vector.credential)

    assert caught.value.code == Reason.ATTESTATION_REJECTED
    assert db_snapshot() == before
    assert not Credential.objects.exists()


@pytest.mark.django_db
def test_packed_attestation_that_does_not_chain_to_the_configured_root_is_refused(
    configure, require_attestation
):
    from webauthn.helpers.known_root_certs import apple_webauthn_root_ca

    require_attestation.PASSKEYS_ATTESTATION_ROOT_CERTS = {"packed": [apple_webauthn_root_ca]}
    vector = load(PACKED)[0]
    configure(vector)
    request = session_request()
    store_challenge(request, vector, Challenge.Purpose.REGISTER, user := UserFactory())
    before = db_snapshot()

    with pytest.raises(PasskeyError) as caught:
        ceremonies.verify_registration(request, user, vector.credential)

    assert caught.value.code == Reason.ATTESTATION_REJECTED
    assert db_snapshot() == before
