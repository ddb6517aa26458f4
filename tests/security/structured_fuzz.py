"""Structure-aware mutation of valid WebAuthn responses, for fuzzing both verify endpoints.

A valid ``RegistrationResponseJSON`` or ``AuthenticationResponseJSON`` is decoded down to its
leaves into one tree: the body's JSON; ``clientDataJSON``'s JSON; ``attestationObject``'s CBOR;
the fields of ``authenticatorData`` (WebAuthn L3 §6.1); the CBOR of the COSE key and of the
extensions inside it. Each layer that travels as bytes is a node that says how it is encoded
(:class:`B64`, :class:`Json`, :class:`Cbor`, :class:`AuthData`).

A mutation picks any place in the tree, at any depth, and drops it, gives it a value of another
type (integers small, negative and huge, bytes, text, arrays, maps, booleans, null, floats, CBOR
tags and simple values), adds an item next to it, or cuts, flips, extends or overruns its bytes
(length headers claiming far more than follows). The tree is then encoded back up with ``json``
and ``cbor2``, so the layers around the mutated one stay well-formed and the body reaches the
checks behind them. Signatures are recomputed over the mutated data most of the time, so the
checks after signature verification are reached too.

Every random choice comes from one ``random.Random``: a seed and a body's index name the body.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.authenticator import AAGUID, SoftAuthenticator, b64url, b64url_decode

# -- the tree -----------------------------------------------------------------------------------


@dataclass
class B64:
    """A JSON string: base64url of the bytes of ``inner`` (bytes or another node)."""

    inner: Any


@dataclass
class Json:
    """Bytes: ``value`` as JSON text, ASCII-escaped or as raw UTF-8."""

    value: Any
    ascii: bool = True


@dataclass
class Cbor:
    """Bytes: ``value`` as one CBOR item."""

    value: Any


@dataclass
class AuthData:
    """Bytes: authenticator data, field by field (WebAuthn L3 §6.1)."""

    rp_id_hash: bytes
    flags: int
    sign_count: int
    aaguid: bytes | None = None  # None: no attested credential data
    credential_id: bytes = b""
    credential_id_length: int | None = None  # None: the real length
    public_key: Any = None  # a Cbor node or bytes
    extensions: Any = None  # a Cbor node, bytes or None
    trailing: bytes = b""


def to_bytes(node: Any) -> bytes:
    """The wire bytes of a node."""
    if isinstance(node, (bytes, bytearray)):
        return bytes(node)
    if isinstance(node, Json):
        text = json.dumps(to_json(node.value), ensure_ascii=node.ascii)
        # Lone surrogates come out as themselves (invalid UTF-8) when not escaped.
        return text.encode("utf-8", "surrogatepass")
    if isinstance(node, Cbor):
        return cbor2.dumps(to_cbor(node.value))
    if isinstance(node, AuthData):
        out = (
            node.rp_id_hash + bytes([node.flags % 256]) + struct.pack(">I", node.sign_count % 2**32)
        )
        if node.aaguid is not None:
            length = len(node.credential_id)
            if node.credential_id_length is not None:
                length = node.credential_id_length
            out += node.aaguid + struct.pack(">H", length % 2**16) + node.credential_id
            out += to_bytes(node.public_key) if node.public_key is not None else b""
        if node.extensions is not None:
            out += to_bytes(node.extensions)
        return out + node.trailing
    raise TypeError(f"no bytes for {type(node).__name__}")


def to_json(value: Any) -> Any:
    """A JSON document: every :class:`B64` node becomes its base64url text."""
    if isinstance(value, B64):
        return b64url(to_bytes(value.inner))
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


def to_cbor(value: Any) -> Any:
    """A CBOR data item: every nested node becomes its bytes."""
    if isinstance(value, (Json, Cbor, AuthData)):
        return to_bytes(value)
    if isinstance(value, dict):
        return {key: to_cbor(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_cbor(item) for item in value]
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, to_cbor(value.value))
    return value


# -- decoding a valid response into the tree ----------------------------------------------------


def _auth_data(raw: bytes) -> AuthData:
    """Split SoftAuthenticator's authenticator data (no extensions) into its fields."""
    node = AuthData(
        rp_id_hash=raw[:32], flags=raw[32], sign_count=struct.unpack(">I", raw[33:37])[0]
    )
    if len(raw) > 37:
        (length,) = struct.unpack(">H", raw[53:55])
        node.aaguid = raw[37:53]
        node.credential_id = raw[55 : 55 + length]
        node.public_key = Cbor(cbor2.loads(raw[55 + length :]))
    return node


def registration_tree(body: dict[str, Any]) -> dict[str, Any]:
    """A ``RegistrationResponseJSON`` as a tree."""
    tree = copy.deepcopy(body)
    response = tree["response"]
    response["clientDataJSON"] = B64(Json(json.loads(b64url_decode(response["clientDataJSON"]))))
    attestation = cbor2.loads(b64url_decode(response["attestationObject"]))
    attestation["authData"] = _auth_data(attestation["authData"])
    response["attestationObject"] = B64(Cbor(attestation))
    # A copy of authData for the client's convenience, which the server does not read: left
    # whole, so that mutations go where they are read.
    response["authenticatorData"] = B64(b64url_decode(response["authenticatorData"]))
    return tree


def authentication_tree(body: dict[str, Any]) -> dict[str, Any]:
    """An ``AuthenticationResponseJSON`` as a tree."""
    tree = copy.deepcopy(body)
    response = tree["response"]
    response["clientDataJSON"] = B64(Json(json.loads(b64url_decode(response["clientDataJSON"]))))
    response["authenticatorData"] = B64(_auth_data(b64url_decode(response["authenticatorData"])))
    for name in ("signature", "userHandle"):
        if name in response:
            response[name] = B64(b64url_decode(response[name]))
    return tree


# -- random values of every type ----------------------------------------------------------------

KNOWN_TEXT = [
    "",
    "public-key",
    "webauthn.create",
    "webauthn.get",
    "https://testserver",
    "https://evil.example",
    "none",
    "packed",
    "tpm",
    "android-key",
    "android-safetynet",
    "fido-u2f",
    "apple",
    "2.0",
    "\x00",
    "\ud800",
    "\u202e\ufeff",
    "é" * 40,
    "A" * 2000,
    "!!!",
    "=",
]
KNOWN_KEYS_JSON = [
    "id",
    "rawId",
    "type",
    "response",
    "clientDataJSON",
    "attestationObject",
    "authenticatorData",
    "signature",
    "userHandle",
    "transports",
    "challenge",
    "origin",
    "crossOrigin",
    "topOrigin",
    "tokenBinding",
    "clientExtensionResults",
    "authenticatorAttachment",
    "publicKeyAlgorithm",
    "x",
]
KNOWN_KEYS_CBOR: list[Any] = [
    "fmt",
    "attStmt",
    "authData",
    "alg",
    "sig",
    "x5c",
    "ver",
    "certInfo",
    "pubArea",
    "response",
    "ecdaaKeyId",
    1,
    2,
    3,
    -1,
    -2,
    -3,
    -4,
    0,
    b"k",
]
TAGS = [0, 1, 2, 3, 4, 5, 21, 24, 25, 28, 29, 30, 35, 36, 37, 256, 258, 260, 261, 55799, 99999]
HUGE = [2**31, 2**32, 2**53 + 1, 2**63, 2**64, 2**64 + 1, 2**128, 2**2048, 10**100]


@dataclass
class Mutator:
    """Random mutations drawn from ``rng``; ``cert`` is a real DER certificate to plant."""

    rng: random.Random
    cert: bytes = b""
    log: list[str] = field(default_factory=list)

    # -- values --------------------------------------------------------------------------------

    def integer(self) -> int:
        r = self.rng
        kind = r.randrange(5)
        if kind == 0:
            return r.choice([0, 1, -1, 2, -7, -8, -257, 255, 256, 65535, 65536])
        if kind == 1:
            return r.randint(-1000, 1000)
        if kind == 2:
            return r.choice(HUGE)
        if kind == 3:
            return -r.choice(HUGE) - 1
        return r.getrandbits(r.randint(1, 80))

    def random_bytes(self, small: bool = True) -> bytes:
        r = self.rng
        size = r.randint(0, 80) if small or r.random() < 0.7 else r.randint(1024, 4096)
        return r.randbytes(size)

    def text(self, json_text: bool) -> str:
        r = self.rng
        if r.random() < 0.6:
            value = r.choice(KNOWN_TEXT)
        else:
            value = "".join(
                chr(r.choice([r.randint(32, 126), r.randint(0, 0x2FFF)]))
                for _ in range(r.randint(0, 24))
            )
        if not json_text:
            # CBOR text is UTF-8: cbor2 cannot encode a lone surrogate.
            value = (
                value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value
            )
        return value

    def json_value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.randrange(10 if depth < 2 else 8)
        if kind == 0:
            return None
        if kind == 1:
            return r.random() < 0.5
        if kind == 2:
            value = self.integer()
            return value if abs(value) < 10**300 else 10**300
        if kind == 3:
            return r.choice([0.5, -0.0, 1e308, float("nan"), float("inf"), -float("inf")])
        if kind == 4:
            return self.text(json_text=True)
        if kind in (5, 6):
            return b64url(self.random_bytes())
        if kind == 7:
            return self.rng.choice(KNOWN_TEXT[:13])
        if kind == 8:
            return [self.json_value(depth + 1) for _ in range(r.randint(0, 3))]
        return {
            r.choice(KNOWN_KEYS_JSON): self.json_value(depth + 1) for _ in range(r.randint(0, 3))
        }

    def cbor_value(self, depth: int = 0) -> Any:
        r = self.rng
        kind = r.randrange(13 if depth < 2 else 10)
        if kind == 0:
            return None
        if kind == 1:
            return r.random() < 0.5
        if kind in (2, 3):
            return self.integer()
        if kind in (4, 5):
            return self.random_bytes(small=depth > 0)
        if kind == 6:
            return self.text(json_text=False)
        if kind == 7:
            return r.choice([0.5, -0.0, 1e308, float("nan"), float("inf")])
        if kind == 8:
            return r.choice(
                [cbor2.undefined, cbor2.CBORSimpleValue(r.choice([0, 16, 19, 32, 255]))]
            )
        if kind == 9:
            return self.cert if self.cert and r.random() < 0.5 else [self.cert, self.random_bytes()]
        if kind == 10:
            return cbor2.CBORTag(r.choice(TAGS), self.cbor_value(depth + 1))
        if kind == 11:
            return [self.cbor_value(depth + 1) for _ in range(r.randint(0, 3))]
        return {
            r.choice(KNOWN_KEYS_CBOR): self.cbor_value(depth + 1) for _ in range(r.randint(0, 3))
        }

    # -- bytes ---------------------------------------------------------------------------------

    def mutate_bytes(self, raw: bytes) -> bytes:
        r = self.rng
        action = r.choice(
            [
                "flip",
                "flip",
                "truncate",
                "truncate",
                "extend",
                "header",
                "replace",
                "empty",
                "double",
            ]
        )
        self.log.append(f"bytes:{action}")
        if action == "flip":
            buffer = bytearray(raw or b"\x00")
            for _ in range(r.randint(1, 3)):
                buffer[r.randrange(len(buffer))] ^= 1 << r.randrange(8)
            return bytes(buffer)
        if action == "truncate":
            return raw[: r.randrange(max(len(raw), 1))]
        if action == "extend":
            return raw + self.random_bytes()
        if action == "header":
            # A CBOR head claiming far more than follows, an unclosed indefinite item, a break
            # code out of place, or deep nesting; in front of, behind or instead of the data.
            head = r.choice(
                [
                    b"\x5b" + r.randbytes(8),
                    b"\x7b\x7f\xff\xff\xff\xff\xff\xff\xff",
                    b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",
                    b"\xbb" + r.randbytes(8),
                    b"\x5a\x00\x01\x00\x00",
                    b"\x5f",
                    b"\x9f",
                    b"\xff",
                    b"\x81" * r.randint(100, 3000),
                    b"\xc2\x5a\x00\x00\x10\x00" + r.randbytes(4096),
                    b"\xd8\x1c\x81\xd8\x1d\x00",
                ]
            )
            where = r.randrange(3)
            return head + raw if where == 0 else raw + head if where == 1 else head
        if action == "replace":
            return self.random_bytes(small=False)
        if action == "empty":
            return b""
        return raw + raw

    # -- the tree ------------------------------------------------------------------------------

    def mutate(self, tree: dict[str, Any]) -> set[str]:
        """One to three mutations of ``tree``, in place; the paths they touched."""
        touched: set[str] = set()
        for _ in range(self.rng.choice([1, 1, 1, 2, 2, 3])):
            sites = _sites(tree)
            if not sites:  # every member dropped: nothing left to mutate
                break
            site = self.rng.choice(sites)
            self.log.append(site.path)
            touched.add(site.path)
            self._mutate_site(site)
        return touched

    def _mutate_site(self, site: Site) -> None:
        value = site.get()
        if site.context.startswith("field:"):
            self._mutate_field(site, value)
        elif site.context == "bytes":
            # Below the structure: the encoded bytes themselves, or how JSON text is written.
            if isinstance(value, Json) and self.rng.random() < 0.2:
                value.ascii = not value.ascii
                self.log.append("json:ascii")
            else:
                site.set(self.mutate_bytes(to_bytes(value)))
        elif isinstance(value, (bytes, AuthData)) and self.rng.random() < 0.5:
            site.set(self.mutate_bytes(to_bytes(value)))
        else:
            self._mutate_value(site, value)

    def _mutate_value(self, site: Site, value: Any) -> None:
        r = self.rng
        json_context = site.context == "json"
        new = self.json_value if json_context else self.cbor_value
        keys = KNOWN_KEYS_JSON if json_context else KNOWN_KEYS_CBOR
        container = isinstance(value, (dict, list))
        action = r.choice(
            ["retype", "retype", "drop", "add", *(["inner-drop", "inner-add"] if container else [])]
        )
        self.log.append(f"value:{action}")
        if action == "drop" and site.droppable:
            site.delete()
        elif action == "add" and isinstance(site.holder, dict):
            site.holder[r.choice(keys)] = new()
        elif action == "add" and isinstance(site.holder, list):
            site.holder.insert(r.randint(0, len(site.holder)), new())
        elif action == "inner-drop" and value:
            if isinstance(value, dict):
                del value[r.choice(list(value))]
            else:
                del value[r.randrange(len(value))]
        elif action == "inner-add":
            if isinstance(value, dict):
                value[r.choice(keys)] = new()
            else:
                value.append(new())
        elif isinstance(value, str) and r.random() < 0.3:
            cut = r.randint(0, len(value))
            site.set(value[:cut] + r.choice(["", "=", "\x00", "x", "é", "/", "+"]))
        else:
            site.set(new())

    def _mutate_field(self, site: Site, value: Any) -> None:
        r = self.rng
        name = site.context.removeprefix("field:")
        self.log.append(f"field:{name}")
        if name == "flags":
            site.set(value ^ (1 << r.randrange(8)) if r.random() < 0.7 else r.randrange(256))
        elif name == "sign_count":
            site.set(r.choice([0, 1, value + 1, 2**32 - 1, r.getrandbits(32)]))
        elif name == "credential_id_length":
            site.set(r.choice([0, 1, 16, 1023, 1024, 65535, r.randrange(65536)]))
        elif name == "aaguid" and r.random() < 0.3:
            site.set(None if value is not None else AAGUID)
        elif name == "extensions" and (value is None or r.random() < 0.3):
            site.set(Cbor(self.cbor_value()) if r.random() < 0.7 else self.random_bytes())
        elif name == "public_key" and (value is None or r.random() < 0.3):
            site.set(Cbor(self.cbor_value()))
        elif value is None:
            site.set(AAGUID if name == "aaguid" else self.random_bytes())
        elif name == "credential_id" and r.random() < 0.3:
            site.set(r.randbytes(r.choice([0, 1, 1023, 1024, 2000])))
        else:
            site.set(self.mutate_bytes(value if isinstance(value, bytes) else to_bytes(value)))


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@dataclass
class Site:
    """A place in the tree: ``holder[key]`` (a dict or list) or ``holder.key`` (a node)."""

    holder: Any
    key: Any
    context: str  # "json", "cbor", "bytes" or "field:<name>"
    path: str

    @property
    def droppable(self) -> bool:
        return isinstance(self.holder, (dict, list))

    def get(self) -> Any:
        if isinstance(self.holder, (dict, list)):
            return self.holder[self.key]
        return getattr(self.holder, self.key)

    def set(self, value: Any) -> None:
        if isinstance(self.holder, (dict, list)):
            self.holder[self.key] = value
        else:
            setattr(self.holder, self.key, value)

    def delete(self) -> None:
        del self.holder[self.key]


def _sites(value: Any, context: str = "json", path: str = "$") -> list[Site]:
    """Every place of the tree below ``value``, in document order."""
    found: list[Site] = []
    if isinstance(value, (dict, list)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in list(items):
            here = f"{path}.{key}"
            found.append(Site(value, key, context, here))
            found += _sites(item, context, here)
    elif isinstance(value, B64):
        found.append(Site(value, "inner", "bytes", f"{path}~b64"))
        found += _sites(value.inner, "bytes", f"{path}~b64")
    elif isinstance(value, (Json, Cbor)):
        # The embedded document's root too: it can become another type, or lose or gain items.
        here, inner = (
            (f"{path}~json", "json") if isinstance(value, Json) else (f"{path}~cbor", "cbor")
        )
        found.append(Site(value, "value", inner, here))
        found += _sites(value.value, inner, here)
    elif isinstance(value, AuthData):
        for name in (
            "rp_id_hash",
            "flags",
            "sign_count",
            "aaguid",
            "credential_id",
            "credential_id_length",
            "public_key",
            "extensions",
            "trailing",
        ):
            found.append(Site(value, name, f"field:{name}", f"{path}~authData.{name}"))
            if name in ("public_key", "extensions"):
                found += _sites(getattr(value, name), "cbor", f"{path}~authData.{name}")
    return found


# -- after the mutations: signatures over whatever the data now is ------------------------------


def _sign(key: ec.EllipticCurvePrivateKey, auth_data: bytes, client_data: bytes) -> bytes:
    # WebAuthn L3 §6.3.3 / §8.2: the signature covers authenticatorData || SHA-256(clientData).
    return key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))


def resign_registration(
    rng: random.Random, tree: Any, authenticator: SoftAuthenticator, touched: set[str]
) -> None:
    """Keep ``id``/``rawId`` and a packed self attestation in step with the mutated data."""
    response = tree.get("response") if isinstance(tree, dict) else None
    if not isinstance(response, dict) or not isinstance(response.get("attestationObject"), B64):
        return
    client, attestation = response.get("clientDataJSON"), response["attestationObject"]
    document = attestation.inner.value if isinstance(attestation.inner, Cbor) else None
    auth_data = document.get("authData") if isinstance(document, dict) else None
    if isinstance(auth_data, AuthData) and rng.random() < 0.5:
        for name in ("id", "rawId"):
            if name in tree and not any(p.startswith(f"$.{name}") for p in touched):
                tree[name] = b64url(auth_data.credential_id)
    statement = document.get("attStmt") if isinstance(document, dict) else None
    if (
        isinstance(statement, dict)
        and "sig" in statement
        and isinstance(client, B64)
        and isinstance(auth_data, (AuthData, bytes))
        and not any(".attStmt.sig" in p for p in touched)
        and rng.random() < 0.8
    ):
        statement["sig"] = _sign(
            authenticator.private_key, to_bytes(auth_data), to_bytes(client.inner)
        )


def resign_authentication(
    rng: random.Random, tree: Any, authenticator: SoftAuthenticator, touched: set[str]
) -> None:
    """Sign the mutated authenticatorData and clientDataJSON again, most of the time."""
    response = tree.get("response") if isinstance(tree, dict) else None
    if not isinstance(response, dict) or not isinstance(response.get("signature"), B64):
        return
    if any(".signature" in p for p in touched) or rng.random() < 0.3:
        return
    client, auth_data = response.get("clientDataJSON"), response.get("authenticatorData")
    if isinstance(client, B64) and isinstance(auth_data, B64):
        response["signature"] = B64(
            _sign(authenticator.private_key, to_bytes(auth_data.inner), to_bytes(client.inner))
        )


def bodies(
    rng: random.Random,
    count: int,
    base: Callable[[], tuple[dict[str, Any], SoftAuthenticator]],
    resign: Callable[[random.Random, Any, SoftAuthenticator, set[str]], None],
    cert: bytes = b"",
) -> Any:
    """``count`` mutated bodies as ``(index, mutations, JSON bytes)``."""
    for index in range(count):
        tree, authenticator = base()
        mutator = Mutator(rng, cert=cert)
        touched = mutator.mutate(tree)
        resign(rng, tree, authenticator, touched)
        try:
            raw = json.dumps(to_json(tree)).encode()
        except (TypeError, ValueError) as exc:  # a value json cannot write: a bug in the fuzzer
            raise AssertionError(f"body {index}: {mutator.log}: {exc}") from exc
        yield index, mutator.log, raw
