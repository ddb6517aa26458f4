"""Fuzzing of the four JSON endpoints: whatever the body, the answer is a success or a 4xx whose
code is a documented reason code with its documented status; never a 500.

Property-based (hypothesis) for all four endpoints; structure-aware for both verify endpoints,
ten thousand mutated bodies each by default (``PASSKEYS_FUZZ_BODIES``, seed
``PASSKEYS_FUZZ_SEED``). The test client re-raises server exceptions
(``raise_request_exception``), and so does a view called directly, so a 500 fails the test
loudly with its traceback.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import random
from collections import Counter
from importlib import import_module
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings as django_settings
from django.contrib.auth import get_user
from django.db import transaction
from django.test import RequestFactory
from django.urls import resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_passkeys.errors import REASONS, Reason
from tests.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.security import structured_fuzz
from tests.support import (
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    ORIGIN,
    REGISTER_OPTIONS,
    REGISTER_VERIFY,
    enroll,
    login_options,
    registration_options,
)

FUZZ = settings(
    max_examples=75,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Keys the endpoints read, so that random bodies reach past the first checks.
KNOWN_KEYS = (
    "emailHint",
    "name",
    "next",
    "id",
    "rawId",
    "type",
    "response",
    "clientDataJSON",
    "authenticatorData",
    "attestationObject",
    "signature",
    "userHandle",
    "transports",
    "authenticatorAttachment",
    "clientExtensionResults",
    "challenge",
    "origin",
    "crossOrigin",
    "topOrigin",
    "fmt",
    "attStmt",
    "authData",
)

keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    # Every code point, lone surrogates and NUL included.
    | st.text(st.characters(exclude_categories=()), max_size=40)
    | st.binary(max_size=48).map(b64url)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=16,
)
bodies = (
    st.dictionaries(keys, json_values, max_size=8)
    | json_values
    | st.fixed_dictionaries({"emailHint": scalars, "name": scalars, "next": scalars})
)


def assert_documented(response: Any) -> None:
    """A success, or a documented reason code with its documented status."""
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        code = response.json()["error"]["code"]
        assert code in {reason.value for reason in Reason}, code
        assert REASONS[Reason(code)][0] == response.status_code, code


# -- mutations of valid responses ---------------------------------------------------------------

#: A value to put in place of a field: random JSON, random bytes as base64url, or nothing.
replacements = (
    json_values
    | st.binary(max_size=80).map(b64url)
    | st.just("!!!")
    | st.just(None)
    | st.just(b64url(b"\xff\xfe"))
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    return found


def _mutate_json(data: st.DataObject, document: Any) -> Any:
    """Drop, replace or add one member somewhere in ``document``."""
    paths = _paths(document)
    if not paths or not isinstance(document, dict):
        return data.draw(json_values)
    path = data.draw(st.sampled_from(paths))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    action = data.draw(st.sampled_from(["drop", "replace", "add"]))
    if action == "drop":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = data.draw(replacements)
    else:
        parent[data.draw(keys)] = data.draw(replacements)
    return document


def _mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    """Flip, cut, extend or replace the bytes of a binary field."""
    # Lengths differ between runs (fresh challenges, DER signatures), so every draw is
    # independent of them: hypothesis replays the same draws when it shrinks.
    action = data.draw(st.sampled_from(["flip", "truncate", "append", "random"]))
    position = data.draw(st.integers(0, 2**16))
    if action == "flip":
        buffer = bytearray(raw or b"\x00")
        buffer[position % len(buffer)] ^= data.draw(st.integers(1, 255))
        return bytes(buffer)
    if action == "truncate":
        return raw[: position % max(len(raw), 1)]
    if action == "append":
        return raw + data.draw(st.binary(min_size=1, max_size=16))
    return data.draw(st.binary(max_size=96))


def _mutate_cbor(data: st.DataObject, raw: bytes) -> bytes:
    """Change one member of the attestation object, keeping it valid CBOR."""
    decoded = cbor2.loads(raw)
    key = data.draw(st.sampled_from([*decoded, "extra"]))
    choice = data.draw(st.sampled_from(["drop", "json", "bytes"]))
    if choice == "drop":
        decoded.pop(key, None)
    elif choice == "json":
        decoded[key] = data.draw(json_values)
    else:
        decoded[key] = data.draw(st.binary(max_size=64))
    return cbor2.dumps(decoded)


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def _is_cbor_map(raw: bytes) -> bool:
    try:
        return isinstance(cbor2.loads(raw), dict)
    except (cbor2.CBORError, ValueError, TypeError):
        return False


def mutate(data: st.DataObject, body: dict[str, Any]) -> dict[str, Any]:
    """One or more random mutations of a valid ``*ResponseJSON``."""
    for _ in range(data.draw(st.integers(1, 3))):
        response = body.get("response")
        binary = (
            [k for k, v in response.items() if isinstance(v, str)]
            if isinstance(response, dict)
            else []
        )
        target = data.draw(st.sampled_from(["json", *(["field"] * bool(binary))]))
        if target == "json":
            body = _mutate_json(data, body)
            if not isinstance(body, dict):
                return {"fuzz": body}
            continue
        assert isinstance(response, dict)
        name = data.draw(st.sampled_from(binary))
        try:
            raw = b64url_decode(response[name])
        except ValueError:
            continue
        structured = data.draw(st.booleans())
        if structured and name == "clientDataJSON" and _is_json_object(raw):
            raw = json.dumps(_mutate_json(data, json.loads(raw))).encode()
        elif structured and name == "attestationObject" and _is_cbor_map(raw):
            raw = _mutate_cbor(data, raw)
        else:
            raw = _mutate_bytes(data, raw)
        response[name] = b64url(raw)
    return body


# -- the properties -----------------------------------------------------------------------------


@FUZZ
@given(body=bodies)
def test_register_options_answers_any_json_with_a_documented_code(api, user, body):
    assert api.client.raise_request_exception
    api.login(user)
    assert_documented(api.post(REGISTER_OPTIONS, body))


@FUZZ
@given(body=bodies)
def test_login_options_answers_any_json_with_a_documented_code(api, db, body):
    assert api.client.raise_request_exception
    assert_documented(api.post(LOGIN_OPTIONS, body))


@FUZZ
@given(body=bodies, data=st.data())
def test_register_verify_answers_any_json_with_a_documented_code(api, user, body, data):
    assert api.client.raise_request_exception
    options = registration_options(api, user)
    if data.draw(st.booleans()):
        body = mutate(data, SoftAuthenticator().create(options))
    assert_documented(api.post(REGISTER_VERIFY, body))


@FUZZ
@given(body=bodies, data=st.data())
def test_login_verify_answers_any_json_with_a_documented_code(
    api, enrolled, authenticator, body, data
):
    assert api.client.raise_request_exception
    options = login_options(api)
    if data.draw(st.booleans()):
        assertion = authenticator.get(options, sign_count=0)
        body = mutate(data, assertion)
    assert_documented(api.post(LOGIN_VERIFY, body))


# -- structure-aware fuzzing of both verify endpoints -------------------------------------------
#
# Valid bodies are decoded down to every layer (JSON, CBOR, authenticator data fields, COSE key),
# mutated at any depth and encoded back up (tests/security/structured_fuzz.py), then posted to
# the endpoint's real view in one signed-in session (ViewPoster). The database is rolled back
# after each body, so every body meets the same state: the challenge unused, the credential as
# enrolled.

#: Bodies per endpoint. CI may bound the run lower; a long local run may raise it.
FUZZ_BODIES = int(os.environ.get("PASSKEYS_FUZZ_BODIES", "10000"))
#: The seed of every random choice; a failure names it with the body's index and mutations.
FUZZ_SEED = int(os.environ.get("PASSKEYS_FUZZ_SEED", "20250114"))
DOCUMENTED = {reason.value: status for reason, (status, _) in REASONS.items()}
#: Answers ten thousand bodies reach: the mutations get past parsing to every layer's checks.
REGISTRATION_REACHES = {
    "success",
    "malformed_request",
    "challenge_invalid",
    "type_mismatch",
    "origin_mismatch",
    "cross_origin_rejected",
    "rp_id_mismatch",
    "user_presence_missing",
    "backup_state_invalid",
    "algorithm_unsupported",
    "credential_id_too_long",
    "attestation_rejected",
}
LOGIN_REACHES = {
    "success",
    "malformed_request",
    "challenge_invalid",
    "type_mismatch",
    "origin_mismatch",
    "cross_origin_rejected",
    "rp_id_mismatch",
    "user_presence_missing",
    "backup_state_invalid",
    "signature_invalid",
    "user_handle_mismatch",
}


def _deterministic_authenticator(rng: random.Random) -> SoftAuthenticator:
    key = ec.derive_private_key(rng.getrandbits(128) + 1, ec.SECP256R1())
    return SoftAuthenticator(credential_id=rng.randbytes(32), private_key=key)


def _self_signed_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


class ViewPoster:
    """Posts bodies to an endpoint's real view as the signed-in session of ``api``'s client.

    The view is found through the URL conf and called with what the middleware would have put
    on the request: a copy of the session (so a sign-in that rotates it leaves the next body the
    same session), the user, the CSRF cookie and header, and the resolver match. That spares
    each body the session and user queries and the middleware, about a third of the time of a
    body the view refuses early; the view's own CSRF, size and JSON checks still run.
    """

    def __init__(self, api: Any, path: str) -> None:
        self.path = path
        self.match = resolve(path)
        self.factory = RequestFactory()
        self.token = api.csrf_token()
        self.session = dict(api.client.session.items())
        # The challenge binding of a client without a session is a cookie (challenges).
        self.cookies = {name: morsel.value for name, morsel in api.client.cookies.items()}
        probe = self.factory.get("/")
        probe.session = api.client.session
        self.user = get_user(probe)

    def post(self, raw: bytes) -> Any:
        request = self.factory.generic(
            "POST",
            self.path,
            raw,
            content_type="application/json",
            secure=True,
            HTTP_ORIGIN=ORIGIN,
            HTTP_X_CSRFTOKEN=self.token,
        )
        request.COOKIES.update(self.cookies)
        request.COOKIES[django_settings.CSRF_COOKIE_NAME] = self.token
        request.session = import_module(django_settings.SESSION_ENGINE).SessionStore()
        request.session.update(copy.deepcopy(self.session))
        request.user = self.user
        request.resolver_match = self.match
        return self.match.func(request, *self.match.args, **self.match.kwargs)


def _post_each(api: Any, path: str, bodies: Any, success: int) -> Counter[str]:
    """Post each body; every answer is ``success`` or a documented code with its status.

    The database is rolled back after each body, so every body meets the same state (the
    challenge unused, the credential as enrolled). Logging is off meanwhile: each refusal logs
    twice, a tenth of the run's time.
    """
    poster = ViewPoster(api, path)
    seen: Counter[str] = Counter()
    logging.disable(logging.CRITICAL)
    try:
        for index, mutations, raw in bodies:
            where = (
                f"body {index} (PASSKEYS_FUZZ_SEED={FUZZ_SEED} PASSKEYS_FUZZ_BODIES={index + 1}),"
                f" mutations {mutations}, body {raw[:3000]!r}"
            )
            try:
                with transaction.atomic():
                    response = poster.post(raw)
                    transaction.set_rollback(True)
            except Exception as exc:  # what the view raised: a 500 in production
                raise AssertionError(f"{type(exc).__name__}: {exc}; {where}") from exc
            if response.status_code == success:
                seen["success"] += 1
                continue
            try:
                code = json.loads(response.content)["error"]["code"]
            except (ValueError, KeyError, TypeError) as exc:
                raise AssertionError(
                    f"{response.status_code} {response.content[:200]!r}; {where}"
                ) from exc
            assert DOCUMENTED.get(code) == response.status_code, f"{code}; {where}"
            seen[code] += 1
    finally:
        logging.disable(logging.NOTSET)
    assert sum(seen.values()) == FUZZ_BODIES
    return seen


def test_register_verify_answers_every_mutated_registration_with_a_documented_code(
    api, user, settings
):
    settings.PASSKEYS_CHALLENGE_TTL = settings.PASSKEYS_REAUTH_MAX_AGE = 3600
    rng = random.Random(FUZZ_SEED)
    authenticator = _deterministic_authenticator(rng)
    options = registration_options(api, user)
    none = structured_fuzz.registration_tree(authenticator.create(options))
    packed = structured_fuzz.registration_tree(authenticator.create(options))
    # Packed self attestation; the fuzzer signs it after each mutation (most of the time).
    attestation = packed["response"]["attestationObject"].inner.value
    attestation["fmt"], attestation["attStmt"] = "packed", {"alg": -7, "sig": b""}

    def base() -> tuple[dict[str, Any], SoftAuthenticator]:
        return copy.deepcopy(packed if rng.random() < 0.3 else none), authenticator

    bodies = structured_fuzz.bodies(
        rng, FUZZ_BODIES, base, structured_fuzz.resign_registration, cert=_self_signed_der()
    )
    seen = _post_each(api, REGISTER_VERIFY, bodies, success=201)
    if FUZZ_BODIES >= 10_000:
        assert REGISTRATION_REACHES.issubset(seen), seen


def test_login_verify_answers_every_mutated_assertion_with_a_documented_code(api, user, settings):
    settings.PASSKEYS_CHALLENGE_TTL = 3600
    rng = random.Random(FUZZ_SEED + 1)
    authenticator = _deterministic_authenticator(rng)
    enroll(user, authenticator, api=api)
    tree = structured_fuzz.authentication_tree(authenticator.get(login_options(api), sign_count=0))

    def base() -> tuple[dict[str, Any], SoftAuthenticator]:
        return copy.deepcopy(tree), authenticator

    bodies = structured_fuzz.bodies(rng, FUZZ_BODIES, base, structured_fuzz.resign_authentication)
    seen = _post_each(api, LOGIN_VERIFY, bodies, success=200)
    if FUZZ_BODIES >= 10_000:
        assert LOGIN_REACHES.issubset(seen), seen
