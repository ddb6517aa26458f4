"""Hostile input to the four JSON endpoints: bad JSON, bad types, bad encodings, bad CBOR,
oversized bodies, missing CSRF tokens and wrong methods. Every one is a 4xx with a reason code,
never a 500 and never a write."""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest

from django_passkeys.errors import Reason
from tests.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.support import (
    ENDPOINTS,
    LOGIN_OPTIONS,
    LOGIN_VERIFY,
    REGISTER_OPTIONS,
    REGISTER_VERIFY,
    assert_rejected,
    login_options,
    registration_options,
)


@pytest.fixture
def assertion(api, enrolled, authenticator) -> dict[str, Any]:
    """A valid assertion for ``login/verify``, about to be broken by the test."""
    return authenticator.get(login_options(api))


@pytest.fixture
def attestation(api, user) -> dict[str, Any]:
    """A valid registration response for ``register/verify``, about to be broken."""
    return SoftAuthenticator().create(registration_options(api, user))


def _post_rejected(api, unchanged, path: str, body: Any, reason: Reason, **extra: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with unchanged():
        response = api.post(path, raw=raw, **extra)
    assert_rejected(response, reason)


def _attestation_object(attestation: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = cbor2.loads(
        b64url_decode(attestation["response"]["attestationObject"])
    )
    return decoded


# -- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("raw", [b"{", b'{"a": }', b"\x00", b"{'single': 'quotes'}"])
def test_malformed_json_is_rejected(api, db, unchanged, path, raw):
    _post_rejected(api, unchanged, path, raw, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"1", b"null", b"true"])
def test_json_that_is_not_an_object_is_rejected(api, db, unchanged, path, raw):
    _post_rejected(api, unchanged, path, raw, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_invalid_utf8_body_is_rejected(api, db, unchanged, path):
    _post_rejected(api, unchanged, path, b'{"emailHint": "\xff\xfe"}', Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b'{"emailHint": "a\\ud800b@example.com"}', b'{"name": "\\udfff"}', b'{"\\ud800": 1}'],
    ids=["hint", "name", "key"],
)
def test_lone_surrogate_in_json_is_rejected(api, user, unchanged, path, raw):
    # Valid JSON syntax, but not text: no database can store or compare it.
    api.login(user)
    _post_rejected(api, unchanged, path, raw, Reason.MALFORMED_REQUEST)


def test_escaped_surrogate_pair_is_text(api, db):
    # A correctly paired escape is an ordinary character (here U+1F600).
    response = api.post(LOGIN_OPTIONS, raw=b'{"emailHint": "\\ud83d\\ude00@example.com"}')
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("path", ENDPOINTS)
def test_deeply_nested_json_is_rejected(api, db, settings, unchanged, path):
    # 100000 levels is 200 kB: raise the size limit so that the parser really sees it.
    settings.PASSKEYS_MAX_BODY_BYTES = 1_000_000
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _post_rejected(api, unchanged, path, raw, Reason.MALFORMED_REQUEST)


# -- wrong types and missing fields -------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.update(response=[a["response"]]),
        lambda a: a.update(response="response"),
        lambda a: a.update(id=12345),
        lambda a: a.update(rawId=None),
        lambda a: a.update(type="password"),
        lambda a: a["response"].update(clientDataJSON=7),
        lambda a: a["response"].update(authenticatorData=["AAAA"]),
        lambda a: a["response"].update(signature={"r": 1}),
        lambda a: a["response"].update(userHandle=5),
        lambda a: a.update(authenticatorAttachment="wristwatch"),
        lambda a: a.update(id=b64url(b"another credential")),  # id and rawId differ
        lambda a: a.update(id="", rawId=""),  # empty credential id
    ],
    ids=[
        "response-list",
        "response-string",
        "id-number",
        "rawId-null",
        "type-other",
        "clientDataJSON-number",
        "authenticatorData-list",
        "signature-object",
        "userHandle-number",
        "attachment-unknown",
        "id-differs-from-rawId",
        "id-empty",
    ],
)
def test_assertion_with_wrong_types_is_rejected(api, unchanged, assertion, mutate):
    mutate(assertion)
    _post_rejected(api, unchanged, LOGIN_VERIFY, assertion, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.update(response=[]),
        lambda a: a.update(rawId=3.5),
        lambda a: a["response"].update(attestationObject=True),
    ],
    ids=["response-list", "rawId-float", "attestationObject-bool"],
)
def test_registration_with_wrong_types_is_rejected(api, unchanged, attestation, mutate):
    mutate(attestation)
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize(
    "name", [["my key"], "key\x00name", "two\nlines", "x" * 129], ids=["list", "nul", "lf", "long"]
)
def test_registration_with_a_bad_name_is_rejected(api, unchanged, attestation, name):
    attestation["name"] = name
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.NAME_INVALID)


@pytest.mark.parametrize(
    "hint",
    [123, ["a@example.com"], {"email": "a@example.com"}, "a" * 255 + "@example.com", "a\x00b"],
    ids=["number", "list", "object", "too-long", "nul"],
)
def test_bad_email_hint_is_rejected(api, db, unchanged, hint):
    _post_rejected(api, unchanged, LOGIN_OPTIONS, {"emailHint": hint}, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize(
    "path",
    [
        ("id",),
        ("rawId",),
        ("type",),
        ("response",),
        ("response", "clientDataJSON"),
        ("response", "authenticatorData"),
        ("response", "signature"),
    ],
    ids=lambda p: ".".join(p),
)
def test_assertion_with_missing_field_is_rejected(api, unchanged, assertion, path):
    container = assertion if len(path) == 1 else assertion[path[0]]
    del container[path[-1]]
    _post_rejected(api, unchanged, LOGIN_VERIFY, assertion, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize(
    "path",
    [("id",), ("rawId",), ("type",), ("response",), ("response", "clientDataJSON")]
    + [("response", "attestationObject")],
    ids=lambda p: ".".join(p),
)
def test_registration_with_missing_field_is_rejected(api, unchanged, attestation, path):
    container = attestation if len(path) == 1 else attestation[path[0]]
    del container[path[-1]]
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("bad", ["!!!", "a b", "A", "AAAA=AAA", "é"])
@pytest.mark.parametrize(
    "path",
    [
        ("id",),
        ("rawId",),
        ("response", "clientDataJSON"),
        ("response", "authenticatorData"),
        ("response", "signature"),
        ("response", "userHandle"),
    ],
    ids=lambda p: ".".join(p),
)
def test_assertion_with_bad_base64url_is_rejected(api, unchanged, assertion, path, bad):
    container = assertion if len(path) == 1 else assertion[path[0]]
    container[path[-1]] = bad
    _post_rejected(api, unchanged, LOGIN_VERIFY, assertion, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("field", ["clientDataJSON", "attestationObject"])
def test_registration_with_bad_base64url_is_rejected(api, unchanged, attestation, field):
    attestation["response"][field] = "!!!"
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


# -- clientDataJSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client_data",
    [
        b'{"type":"webauthn.get","challenge":"\xff\xfe","origin":"https://testserver"}',
        b"not json",
        b"[]",
        b'{"type":"webauthn.get","origin":"https://testserver"}',
        b'{"type":"webauthn.get","challenge":7,"origin":"https://testserver"}',
        b'{"type":"webauthn.get","challenge":"AAAA","origin":["https://testserver"]}',
        b'{"type":1,"challenge":"AAAA","origin":"https://testserver"}',
        b"[" * 5000,
    ],
    ids=[
        "invalid-utf8",
        "not-json",
        "not-object",
        "no-challenge",
        "challenge-number",
        "origin-list",
        "type-number",
        "deeply-nested",
    ],
)
def test_malformed_client_data_is_rejected(api, unchanged, assertion, client_data):
    assertion["response"]["clientDataJSON"] = b64url(client_data)
    _post_rejected(api, unchanged, LOGIN_VERIFY, assertion, Reason.MALFORMED_REQUEST)


# -- authenticatorData and CBOR -----------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 20, 36])
def test_truncated_authenticator_data_is_rejected(api, unchanged, assertion, length):
    data = assertion["response"]
    data["authenticatorData"] = b64url(b64url_decode(data["authenticatorData"])[:length])
    _post_rejected(api, unchanged, LOGIN_VERIFY, assertion, Reason.MALFORMED_REQUEST)


def test_trailing_bytes_after_authenticator_data_are_rejected(api, unchanged, assertion):
    data = assertion["response"]
    data["authenticatorData"] = b64url(b64url_decode(data["authenticatorData"]) + b"\x00")
    _post_rejected(api, unchanged, LOGIN_VERIFY, assertion, Reason.MALFORMED_REQUEST)


def test_truncated_attested_authenticator_data_is_rejected(api, unchanged, attestation):
    decoded = _attestation_object(attestation)
    decoded["authData"] = decoded["authData"][:-10]
    attestation["response"]["attestationObject"] = b64url(cbor2.dumps(decoded))
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


def test_trailing_bytes_after_attested_authenticator_data_are_rejected(api, unchanged, attestation):
    decoded = _attestation_object(attestation)
    decoded["authData"] += b"\x00"
    attestation["response"]["attestationObject"] = b64url(cbor2.dumps(decoded))
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


def test_trailing_bytes_after_attestation_object_are_rejected(api, unchanged, attestation):
    raw = b64url_decode(attestation["response"]["attestationObject"])
    attestation["response"]["attestationObject"] = b64url(raw + b"\x00")
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x81" * 30_000 + b"\x00",  # arrays nested 30000 deep
        b"\xa1\x00" * 15_000 + b"\x00",  # maps nested 15000 deep
        b"\xff\x00garbage",  # a break code where no item may start
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # a byte string claiming 2**64-1 bytes
        b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # a map claiming 2**64-1 pairs
        cbor2.dumps(["fmt", "none"]),  # not a map
        cbor2.dumps({"fmt": "none", "attStmt": {}}),  # no authData
        cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": "text"}),
        b"",
    ],
    ids=[
        "deep-arrays",
        "deep-maps",
        "break-code",
        "huge-bytes",
        "huge-map",
        "not-map",
        "no-authData",
        "authData-text",
        "empty",
    ],
)
def test_broken_attestation_cbor_is_rejected(api, unchanged, attestation, raw):
    attestation["response"]["attestationObject"] = b64url(raw)
    _post_rejected(api, unchanged, REGISTER_VERIFY, attestation, Reason.MALFORMED_REQUEST)


@pytest.mark.parametrize("statement", ["sig", ["sig"], 7, None])
def test_attestation_statement_of_wrong_type_is_rejected(api, unchanged, attestation, statement):
    decoded = _attestation_object(attestation)
    decoded["attStmt"] = statement
    attestation["response"]["attestationObject"] = b64url(cbor2.dumps(decoded))
    with unchanged():
        response = api.post(REGISTER_VERIFY, attestation)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {
        Reason.MALFORMED_REQUEST,
        Reason.ATTESTATION_REJECTED,
    }


# -- size, CSRF, method, content type -----------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_ten_megabyte_body_is_refused_before_parsing(api, db, unchanged, path):
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the body was parsed")

    body = b'{"x": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    with unchanged(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("django_passkeys.views.base.parse_json", must_not_run)
        patch.setattr("django_passkeys.views.base.check_csrf", must_not_run)
        patch.setattr(json, "loads", must_not_run)
        response = api.post(path, raw=body)
    assert_rejected(response, Reason.PAYLOAD_TOO_LARGE)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_without_csrf_token_is_rejected(api, user, unchanged, path):
    api.login(user)
    with unchanged():
        response = api.post(path, {}, csrf=False)
    assert_rejected(response, Reason.CSRF_FAILED)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_post_with_wrong_csrf_token_is_rejected(api, user, unchanged, path):
    api.login(user)
    api.csrf_token()
    with unchanged():
        response = api.post(path, {}, csrf=False, HTTP_X_CSRFTOKEN="x" * 32)
    assert_rejected(response, Reason.CSRF_FAILED)


def test_post_from_another_origin_is_rejected(api, db, unchanged):
    # Django's CSRF check compares the Origin header with the host.
    with unchanged():
        response = api.post(LOGIN_OPTIONS, {}, HTTP_ORIGIN="https://evil.example")
    assert_rejected(response, Reason.CSRF_FAILED)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("method", ["get", "put", "delete", "head"])
def test_other_methods_are_not_allowed(api, db, unchanged, path, method):
    with unchanged():
        response = getattr(api.client, method)(path, secure=True)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    if method != "head":
        assert_rejected(response, Reason.METHOD_NOT_ALLOWED, audited=False)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ],
)
def test_form_encoded_body_is_rejected(api, user, unchanged, path, content_type):
    api.login(user)
    body = b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n'
    with unchanged():
        response = api.client.generic(
            "POST",
            path,
            body,
            content_type=content_type,
            secure=True,
            HTTP_X_CSRFTOKEN=api.csrf_token(),
        )
    assert_rejected(response, Reason.MALFORMED_REQUEST)


def test_bad_content_length_is_rejected(api, db, unchanged):
    with unchanged():
        response = api.post(LOGIN_OPTIONS, {}, CONTENT_LENGTH="many")
    assert_rejected(response, Reason.MALFORMED_REQUEST)


def test_register_options_body_is_ignored(api, user):
    # register/options takes {} but tolerates members it does not know.
    registration_options(api, user)
    assert api.post(REGISTER_OPTIONS, {"anything": [1, 2]}).status_code == 200
