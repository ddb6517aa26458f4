"""Property-based fuzzing of the four JSON endpoints: whatever the body, the answer is a success
or a 4xx whose code is a documented reason code with its documented status; never a 500.

The test client re-raises server exceptions (``raise_request_exception``), so a 500 fails the
example loudly with its traceback.
"""

from __future__ import annotations

import json
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_passkeys.errors import REASONS, Reason
from tests.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.security.support import (
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    REGISTER_OPTIONS,
    REGISTER_VERIFY,
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
def test_login_verify_answers_any_json_with_a_documented_code(api, enrolled, body, data):
    assert api.client.raise_request_exception
    options = login_options(api)
    if data.draw(st.booleans()):
        assertion = enrolled.authenticator.get(options, sign_count=0)
        body = mutate(data, assertion)
    assert_documented(api.post(LOGIN_VERIFY, body))
