"""WebAuthn ceremonies: options, and verification of every Relying Party step.

py_webauthn does the parsing and the cryptography. This module is the one place where each
Relying Party step of WebAuthn Level 3 §7.1 (registration) and §7.2 (authentication) lives:
the steps py_webauthn leaves to the application are implemented here, and the steps it does
perform are checked here first as well, so that every failure carries its own reason code.
Each check cites the step it implements.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import ipaddress
import json
import logging
import operator
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import cbor2
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import (
    BinaryField,
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.http.request import split_domain_port
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
from .conf import PerRequest, conf
from .errors import PasskeyError, Reason
from .models import Challenge, Credential, UserHandle, credential_id_digest

#: WebAuthn L3 §5.1: credential ids longer than this are rejected (§7.1 step 25).
MAX_CREDENTIAL_ID_BYTES = 1023
#: Upper bound on the e-mail hint a client may send to ``login/options``.
MAX_HINT_LENGTH = 254

#: base64url as ``toJSON()`` sends it; the standard alphabet (``+``, ``/``) is accepted too, as
#: py_webauthn decodes it, because hand-written client encoders send it (real TPM responses).
_B64URL = re.compile(r"^[A-Za-z0-9_+/-]*={0,2}$")
_TRANSPORTS = {t.value for t in AuthenticatorTransport}

logger = logging.getLogger("django_passkeys")


@dataclass(frozen=True)
class RelyingParty:
    """What the server expects of every ceremony; built from settings, never from the request.

    On a multi-tenant site, where ``PASSKEYS_RP_ID`` or ``PASSKEYS_ALLOWED_ORIGINS`` is a
    callable of the request, from what the callable answers, accepted only when it is valid for
    the request's host (:meth:`for_request`).
    """

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
        """The Relying Party as configured by the ``PASSKEYS_*`` settings (security rule 3).

        Every ceremony needs it, so it is built once and kept until a setting changes
        (:func:`forget_relying_party`, on Django's ``setting_changed``). Raises
        ``ImproperlyConfigured`` when the RP ID or the origins are decided per request: use
        :meth:`for_request` then.
        """
        configured = cls._configured()
        if configured.per_request:
            raise ImproperlyConfigured(
                "PASSKEYS_RP_ID or PASSKEYS_ALLOWED_ORIGINS is a callable of the request: "
                "use RelyingParty.for_request(request)."
            )
        return configured.rp

    @classmethod
    def for_request(cls, request: HttpRequest) -> RelyingParty:
        """The Relying Party of a ceremony ``request`` runs: the one every ceremony uses.

        With the RP ID and the origins in the settings, :meth:`from_settings`'s instance: no
        work per request. With callables (multi-tenant sites), built from what they answer for
        ``request``, once per request, and only when the answer is valid for the request's
        host, else ``rp_not_configured`` (fails closed):

        - the host is ``request.get_host()``, which Django has checked against
          ``ALLOWED_HOSTS``; the callable chooses among the site's tenants, the host alone
          never makes an RP ID;
        - the RP ID is that host or a registrable domain suffix of it (WebAuthn L3 §5.1.4.1
          step 8, §13.4.9), or the host is one of ``PASSKEYS_RELATED_ORIGINS``;
        - every origin is https on a host under the RP ID (``http://localhost`` too while
          ``DEBUG`` is on), one of ``PASSKEYS_RELATED_ORIGINS``, or an Android
          ``android:apk-key-hash:`` origin. A static origin list shared by every tenant is cut
          down to the origins of the request's RP ID.
        """
        configured = cls._configured()
        if not configured.per_request:
            return configured.rp
        known = getattr(request, _REQUEST_RP, None)
        if type(known) is cls:
            return known
        rp = configured.resolve(request)
        setattr(request, _REQUEST_RP, rp)
        return rp

    @classmethod
    def decided_per_request(cls) -> bool:
        """Whether ``PASSKEYS_RP_ID`` or ``PASSKEYS_ALLOWED_ORIGINS`` is a callable of the
        request (a multi-tenant site): then only :meth:`for_request` gives the Relying Party."""
        return cls._configured().per_request

    @classmethod
    def _configured(cls) -> _Configuration:
        configured = _configured_rp.get(cls)
        if configured is None:
            rp_id, origins = conf.PASSKEYS_RP_ID, conf.PASSKEYS_ALLOWED_ORIGINS
            configured = _configured_rp[cls] = _Configuration(
                rp=cls._build(),
                rp_id=None if isinstance(rp_id, str) else rp_id,
                origins=origins if callable(origins) else None,
            )
        return configured

    @classmethod
    def _build(cls) -> RelyingParty:
        rp_id, origins = conf.PASSKEYS_RP_ID, conf.PASSKEYS_ALLOWED_ORIGINS
        return cls(
            # Empty when decided per request (_Configuration.resolve fills them in).
            id=rp_id if isinstance(rp_id, str) else "",
            name=conf.PASSKEYS_RP_NAME,
            origins=() if callable(origins) else tuple(origins),
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


#: The request attribute holding the request's Relying Party, once resolved per request.
_REQUEST_RP = "_passkeys_relying_party"
#: Hosts where browsers offer WebAuthn over plain http (potentially trustworthy origins).
_LOCALHOST = re.compile(r"^(?:.+\.)?localhost$")
#: A domain as browsers serialize it: lowercase ASCII labels (IDNs in their ``xn--`` form).
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_rp_id_of(rp_id: str, host: str) -> bool:
    """WebAuthn L3 §5.1.4.1 step 8: the RP ID is the host or a registrable domain suffix of it.

    An IP address is never an RP ID, nor a single label other than ``localhost`` a registrable
    domain (browsers also refuse public suffixes such as ``co.uk``, which needs a public suffix
    list; a browser never signs for one, so nothing verifies there).
    """
    if not _DOMAIN.match(rp_id) or is_ip_address(rp_id):
        return False
    if host == rp_id:
        return True
    return host.endswith("." + rp_id) and ("." in rp_id or rp_id == "localhost")


def _is_origin_of(origin: str, rp_id: str, related: frozenset[str]) -> bool:
    """Whether ``origin`` may run ceremonies for ``rp_id`` (WebAuthn L3 §7.1 step 9)."""
    if origin.startswith("android:apk-key-hash:"):
        return True
    if origin in related:
        return True  # WebAuthn L3 §5.11 Related Origin Requests
    try:
        parts = urlsplit(origin)
        host, _ = parts.hostname or "", parts.port  # a bad port raises ValueError
    except ValueError:
        return False
    # Exactly scheme://host[:port], as browsers serialize an origin.
    if f"{parts.scheme}://{parts.netloc}" != origin.lower() or "@" in parts.netloc:
        return False
    if not is_rp_id_of(rp_id, host):
        return False
    # WebAuthn needs a secure context: https, or http on localhost while developing.
    return parts.scheme == "https" or (
        parts.scheme == "http" and bool(settings.DEBUG) and bool(_LOCALHOST.match(host))
    )


@dataclass(frozen=True)
class _Configuration:
    """The Relying Party settings, read once: complete, or with callables of the request."""

    rp: RelyingParty
    rp_id: PerRequest | None = None
    origins: PerRequest | None = None

    @property
    def per_request(self) -> bool:
        return self.rp_id is not None or self.origins is not None

    def resolve(self, request: HttpRequest) -> RelyingParty:
        """The Relying Party the callables answer for ``request``, checked against its host."""
        related = frozenset(conf.PASSKEYS_RELATED_ORIGINS)
        try:
            host = split_domain_port(request.get_host())[0].lower()
        except DisallowedHost as exc:
            raise _not_configured("?", "the host is not in ALLOWED_HOSTS") from exc
        answer = self.rp_id(request) if self.rp_id is not None else self.rp.id
        # A page on a related origin (WebAuthn L3 §5.11) asks for an RP ID its host is not under.
        under = answer if host in {urlsplit(o).hostname for o in related} else host
        if not isinstance(answer, str) or not is_rp_id_of(answer, under):
            raise _not_configured(
                host,
                f"PASSKEYS_RP_ID is {answer!r}: neither the host nor a registrable domain "
                "suffix of it (WebAuthn L3 §5.1.4.1)",
            )
        rp_id = answer
        if self.origins is not None:
            answered = self.origins(request)
            if isinstance(answered, str) or not isinstance(answered, Sequence) or not answered:
                raise _not_configured(host, f"PASSKEYS_ALLOWED_ORIGINS is {answered!r}")
            bad = [
                o for o in answered if not (isinstance(o, str) and _is_origin_of(o, rp_id, related))
            ]
            if bad:
                raise _not_configured(
                    host, f"PASSKEYS_ALLOWED_ORIGINS has {bad!r}, not origins of RP ID {rp_id!r}"
                )
            origins = tuple(answered)
        elif self.rp.origins:
            # One list for every tenant: the origins of this request's RP ID.
            origins = tuple(o for o in self.rp.origins if _is_origin_of(o, rp_id, related))
            if not origins:
                raise _not_configured(
                    host, f"PASSKEYS_ALLOWED_ORIGINS has no origin of RP ID {rp_id!r}"
                )
        else:
            origins = (f"https://{rp_id}",)
        return replace(self.rp, id=rp_id, name=self.rp.name or rp_id, origins=origins)


def _not_configured(host: str, detail: str) -> PasskeyError:
    # A tenant the settings do not serve is the site's mistake, not the visitor's: say so in
    # the log, where the people who can fix it look.
    logger.warning("passkeys: no Relying Party for host %r: %s", host, detail)
    return PasskeyError(Reason.RP_NOT_CONFIGURED, f"host {host!r}: {detail}")


#: The Relying Party settings, read per class (see ``RelyingParty.from_settings``).
_configured_rp: dict[type[RelyingParty], _Configuration] = {}


def base_url(request: HttpRequest | None = None) -> str:
    """The site's base URL for links in e-mails: ``PASSKEYS_BASE_URL``.

    With origins decided per request and no ``PASSKEYS_BASE_URL``, the first web origin of
    ``request``'s Relying Party: an origin the site's settings gave for the request's host,
    never the ``Host`` header itself (security rule 3). Never raises: without a Relying Party
    for the request (logged), the configured value, possibly empty (relative links).
    """
    configured = conf.PASSKEYS_BASE_URL
    if configured or request is None or not RelyingParty.decided_per_request():
        return configured
    try:
        origins = RelyingParty.for_request(request).origins
    except PasskeyError:
        return configured
    web = [o for o in origins if o.startswith(("https://", "http://"))]
    return web[0].rstrip("/") if web else configured


def forget_relying_party(sender: Any = None, setting: str = "", **kwargs: Any) -> None:
    """``setting_changed`` receiver: the next ceremony builds its Relying Party again."""
    if setting.startswith("PASSKEYS_") or not setting:
        _configured_rp.clear()


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
    request: HttpRequest,
    user: AbstractBaseUser,
    rp: RelyingParty | None = None,
    *,
    purpose: Challenge.Purpose = Challenge.Purpose.REGISTER,
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptionsJSON`` for ``user`` (§7.1 step 1), challenge stored.

    ``purpose`` is ``REGISTER``, or ``UPGRADE`` for the passkey created right after a password
    sign-in (possibly by a conditional create): the same options, a challenge of its own.
    """
    rp = rp or RelyingParty.for_request(request)
    existing = list(
        Credential.objects.active().filter(user_id=user.pk).only("credential_id", "transports")
    )
    challenge = challenges.issue(request, purpose, user_id=user.pk)
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


#: Reads the ``hinted`` annotation of :func:`authentication_options`' single query.
_HINTED = operator.attrgetter("hinted")
#: Sorts credentials newest first, as their default ordering does.
_CREATED_AT = operator.attrgetter("created_at")
#: The shape of the fake ``allowCredentials`` while no account has a passkey to lend its shape:
#: one synced platform passkey, as browsers report its transports.
_FALLBACK_SHAPE: tuple[tuple[int, tuple[str, ...]], ...] = ((32, ("hybrid", "internal")),)


def _hint_digest(purpose: str, hint: str, index: int = 0) -> bytes:
    """64 bytes keyed by ``SECRET_KEY``: unpredictable, yet stable for one address."""
    return salted_hmac(
        f"django_passkeys.{purpose}.{index}", hint.lower(), algorithm="sha512"
    ).digest()


def _donor_user_id(hint: str) -> Coalesce:
    """The account whose passkeys lend their shape to the fake answer for ``hint``.

    The first account, in user-handle order, at or after a point derived from the hint, wrapping
    around to the first one; only active accounts with active passkeys, which are those that get
    a real answer. Handles are random, so the donor is a random such account, yet the same one
    for the same address while the set of accounts does not change. Both halves walk the unique
    index on the handle, so the lookup costs about as much as the hinted account's own.
    """
    candidates = (
        UserHandle.objects.filter(
            Exists(Credential.objects.active().filter(user_id=OuterRef("user_id"))),
            user__is_active=True,
        )
        .order_by("handle")
        .values("user_id")
    )
    at_or_after = candidates.filter(handle__gte=_hint_digest("fake-donor", hint))
    return Coalesce(Subquery(at_or_after[:1]), Subquery(candidates[:1]))


def _fake_id(hint: str, index: int, length: int) -> bytes:
    stream = b""
    block = 0
    while len(stream) < length:
        stream += _hint_digest(f"fake-id.{index}", hint, block)
        block += 1
    return stream[:length]


def _fake_descriptors(
    hint: str, donor: Sequence[Credential]
) -> list[PublicKeyCredentialDescriptor]:
    """``allowCredentials`` for an address without passkeys, shaped like a real account's.

    The donor account's passkeys (see :func:`_donor_user_id`) give the count, the id lengths and
    the transports, so fake answers follow the distribution of real ones (security rule 11);
    the ids are derived from an HMAC of the address keyed by ``SECRET_KEY``, so the same address
    gets the same answer. They go through py_webauthn's JSON encoding like real descriptors, so
    no key is present in one and absent in the other.
    """
    shapes = [(len(bytes(c.credential_id)), tuple(c.transports)) for c in donor] or list(
        _FALLBACK_SHAPE
    )
    return [
        PublicKeyCredentialDescriptor(
            id=_fake_id(hint, index, length),
            transports=[AuthenticatorTransport(t) for t in transports if t in _TRANSPORTS],
        )
        for index, (length, transports) in enumerate(shapes)
    ]


def _bound_user_handle(user: AbstractBaseUser) -> Coalesce:
    """The owner binding a new credential stores (security rule 10): ``user``'s handle.

    Read from the UserHandle table by the INSERT itself, so registration spends no statement on
    it; ``registration_options`` created the handle. Without one the binding is empty, and an
    unbound credential never authenticates.
    """
    handle = UserHandle.objects.filter(user_id=user.pk).values("handle")[:1]
    return Coalesce(Subquery(handle), Value(b""), output_field=BinaryField())


def _for_purpose(rp: RelyingParty, purpose: Challenge.Purpose) -> RelyingParty:
    """The policy of one ceremony: step-up reauthentication always requires user verification.

    Reauthentication guards sensitive actions, so possession of the authenticator alone (UV=0)
    never renews a session, whatever ``PASSKEYS_USER_VERIFICATION`` asks of a sign-in.
    """
    if purpose == Challenge.Purpose.REAUTH and not rp.uv_required:
        return replace(rp, user_verification=UserVerificationRequirement.REQUIRED.value)
    return rp


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
    that account's credentials. Any other hint gets fake credentials shaped like a real
    account's, and the challenge allows exactly those, so that what ``login/verify`` later
    answers is the same whether the account exists or not (security rule 11).
    Reauthentication asks for ``userVerification: "required"``.
    """
    rp = _for_purpose(rp or RelyingParty.for_request(request), purpose)
    descriptors: list[PublicKeyCredentialDescriptor] = []
    identified_user_id: Any = None
    if user is not None:
        credentials = list(Credential.objects.active().filter(user_id=user.pk))
        descriptors = [_descriptor(c) for c in credentials]
        identified_user_id = user.pk
    elif email_hint:
        # One query for the hinted account's passkeys and the donor's, whether or not the
        # account exists, so that neither the statements nor their timing tell them apart.
        email_field = get_user_model().get_email_field_name()
        hinted = Q(**{f"user__{email_field}__iexact": email_hint, "user__is_active": True})
        rows = list(
            Credential.objects.active()
            .filter(hinted | Q(user_id=_donor_user_id(email_hint)))
            .annotate(hinted=ExpressionWrapper(hinted, output_field=BooleanField()))
            .only("credential_id", "credential_id_sha256", "transports", "user_id")
        )
        credentials = [c for c in rows if _HINTED(c)]
        if credentials:
            descriptors = [_descriptor(c) for c in credentials]
            owners = {c.user_id for c in credentials}
            identified_user_id = owners.pop() if len(owners) == 1 else None
        else:
            descriptors = _fake_descriptors(email_hint, [c for c in rows if not _HINTED(c)])

    challenge = challenges.issue(
        request,
        purpose,
        user_id=identified_user_id,
        allowed_credentials=[credential_id_digest(d.id) for d in descriptors],
    )
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=rp.timeout_ms,
        allow_credentials=descriptors,
        user_verification=UserVerificationRequirement(rp.user_verification),
    )
    return options_to_json_dict(options)


# ---------------------------------------------------------------------------------------------
# Parsing: shape and encoding of the browser's JSON, before any WebAuthn step
# ---------------------------------------------------------------------------------------------


@contextmanager
def _rejected_as(reason: Reason, what: str) -> Iterator[None]:
    """Turn any exception raised inside the block into ``PasskeyError(reason)``.

    Broad on purpose, and only around calls into py_webauthn and cbor2: they index, convert and
    decode structures the client chose, and then raise whatever Python raises (``IndexError``
    for a COSE key that is an array, ``AttributeError`` for a SafetyNet response that is not
    bytes, ``OverflowError``/``MemoryError`` for a huge integer), not only
    ``WebAuthnException``. With only our own checks and pure computation inside, every such
    exception is a verdict on the input, never a fault of the server, and the view audits it
    like any other failure. Our own ``PasskeyError`` passes through unchanged; exceptions that
    are not ``Exception`` (``KeyboardInterrupt``, ``SystemExit``) are never caught.
    """
    try:
        yield
    except PasskeyError:
        raise
    except Exception as exc:
        raise PasskeyError(reason, f"{what}: {type(exc).__name__}: {exc}"[:500]) from exc


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
    parsed: RegistrationCredential | AuthenticationCredential
    with _rejected_as(Reason.MALFORMED_REQUEST, "unparseable credential"):
        if kind == "registration":
            parsed = parse_registration_credential_json(data)
        else:
            parsed = parse_authentication_credential_json(data)
    # FIDO conformance: ``id`` is the base64url form of ``rawId``.
    if bytes_to_base64url(parsed.raw_id) != data["id"].rstrip("="):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "id and rawId differ")
    if not parsed.raw_id:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "empty credential id")
    return parsed


def _parse_client_data(raw: bytes) -> tuple[CollectedClientData, dict[str, Any]]:
    # §7.1 step 5 / §7.2 step 9: clientDataJSON is UTF-8 JSON (a dictionary, §5.8.1).
    with _rejected_as(Reason.MALFORMED_REQUEST, "clientDataJSON"):
        document = json.loads(raw.decode("utf-8"))
        client_data = parse_client_data_json(raw)
    if not isinstance(document, dict):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "clientDataJSON is not an object")
    if not isinstance(client_data.origin, str) or not isinstance(document.get("type"), str):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "clientDataJSON fields have wrong types")
    return client_data, document


def _parse_attestation_object(raw: bytes) -> AttestationObject:
    # §7.1 step 12: attestationObject is exactly one CBOR data item (§6.5.4). cbor2 ignores
    # bytes after the first item, so they are refused here: what py_webauthn verifies is then
    # all that was sent.
    stream = io.BytesIO(raw)
    with _rejected_as(Reason.MALFORMED_REQUEST, "attestationObject"):
        decoded = cbor2.CBORDecoder(stream, read_size=1).decode()
    if stream.tell() != len(raw):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "attestationObject: bytes after the item")
    # §6.5.4: a map whose fmt is text, attStmt a map and authData bytes. Checked before
    # py_webauthn sees it, which calls bytes() on authData: for an integer that allocates as
    # many bytes as the integer says, gigabytes before anything fails.
    if (
        not isinstance(decoded, dict)
        or not isinstance(decoded.get("fmt"), str)
        or not isinstance(decoded.get("authData"), bytes)
        or not isinstance(decoded.get("attStmt", {}), dict)
    ):
        raise PasskeyError(Reason.MALFORMED_REQUEST, "attestationObject: members of wrong types")
    with _rejected_as(Reason.MALFORMED_REQUEST, "attestationObject"):
        attestation = parse_attestation_object(raw)
        attested = attestation.auth_data.attested_credential_data
        # §6.5.1: credentialPublicKey is a COSE_Key, which is a CBOR map (RFC 9052 §7).
        key_is_map = attested is None or isinstance(
            cbor2.loads(attested.credential_public_key), dict
        )
    if not key_is_map:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "credentialPublicKey is not a COSE_Key map")
    return attestation


def _parse_authenticator_data(raw: bytes) -> AuthenticatorData:
    with _rejected_as(Reason.MALFORMED_REQUEST, "authenticatorData"):
        auth_data = parse_authenticator_data(raw)
    return auth_data


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
        raise PasskeyError(
            Reason.ORIGIN_MISMATCH,
            f"origin {client_data.origin[:200]!r} arrived; "
            f"PASSKEYS_ALLOWED_ORIGINS is {list(rp.origins)!r}",
        )
    # §7.1 step 10 / §7.2 step 14: this RP is never embedded cross-origin, so a true
    # crossOrigin or any topOrigin is rejected.
    if document.get("crossOrigin") is True or "topOrigin" in document:
        raise PasskeyError(Reason.CROSS_ORIGIN_REJECTED)


def _rp_id_detail(rp_id_hash: bytes, rp: RelyingParty) -> str:
    """What a developer needs to fix an RP ID mismatch: the RP ID the authenticator used.

    Only its SHA-256 arrives; it is named when it is one of the likely ones (the hosts of the
    allowed origins, their parent domains, ``localhost``), else shown as a hash prefix.
    """
    candidates = {"localhost"}
    for origin in rp.origins:
        labels = (urlsplit(origin).hostname or "").split(".")
        candidates.update(".".join(labels[i:]) for i in range(len(labels)) if labels[i])
    arrived = next(
        (repr(c) for c in sorted(candidates) if hashlib.sha256(c.encode()).digest() == rp_id_hash),
        f"with SHA-256 {rp_id_hash.hex()[:16]}…",
    )
    return f"the authenticator used RP ID {arrived}; PASSKEYS_RP_ID is {rp.id!r}"


#: Registration purposes whose credential may be created with ``mediation: "conditional"``.
_CONDITIONAL_CREATE_PURPOSES = frozenset({Challenge.Purpose.UPGRADE})


def _user_presence_required(purpose: str) -> bool:
    """§7.1 step 14: "If options.mediation is not set to conditional, verify that the UP bit of
    the flags in authData is set." Only the upgrade after a password sign-in asks the browser
    for a conditional create, so only its challenges may come back without UP; every other
    ceremony is refused without it.
    """
    return purpose not in _CONDITIONAL_CREATE_PURPOSES


def _check_authenticator_data(
    auth_data: AuthenticatorData,
    rp: RelyingParty,
    *,
    purpose: str = Challenge.Purpose.LOGIN,
) -> None:
    # §7.1 step 13 / §7.2 step 15: rpIdHash is SHA-256 of the RP ID.
    if auth_data.rp_id_hash != hashlib.sha256(rp.id.encode()).digest():
        raise PasskeyError(Reason.RP_ID_MISMATCH, _rp_id_detail(auth_data.rp_id_hash, rp))
    # §7.1 step 14 / §7.2 step 16: UP set, unless the challenge's purpose is a conditional
    # create (§7.1 step 14: UP is checked only when mediation is not conditional).
    if not auth_data.flags.up and _user_presence_required(purpose):
        raise PasskeyError(Reason.USER_PRESENCE_MISSING)
    # §7.1 step 15 / §7.2 step 17: UV set when the RP requires user verification.
    if rp.uv_required and not auth_data.flags.uv:
        raise PasskeyError(Reason.USER_VERIFICATION_MISSING)
    # §7.1 step 16 / §7.2 step 18: BS may only be set when BE is set.
    if auth_data.flags.bs and not auth_data.flags.be:
        raise PasskeyError(Reason.BACKUP_STATE_INVALID)
    # Backup eligibility against the stored credential (§7.2 step 19) is checked in
    # verify_authentication, once the signature has verified.


# ---------------------------------------------------------------------------------------------
# Registration: WebAuthn L3 §7.1
# ---------------------------------------------------------------------------------------------

#: Formats whose certificate chain py_webauthn always validates against roots it bundles, the
#: Apple WebAuthn Root CA and Google's hardware attestation roots, which issue attestation
#: certificates for nothing else: with required attestation these need no configured roots.
#: ``android-safetynet`` is not among them: its bundled root is GlobalSign's general web PKI
#: root, and Google has shut the SafetyNet service down.
BUNDLED_ROOT_FORMATS = frozenset(
    {AttestationFormat.APPLE.value, AttestationFormat.ANDROID_KEY.value}
)


def _check_attestation_trust(attestation: AttestationObject, rp: RelyingParty) -> None:
    """§7.1 step 24 under ``PASSKEYS_REQUIRE_ATTESTATION``: only attestation with trust anchors.

    Decided from the format and the statement's shape before py_webauthn verifies anything, so
    that an attestation that could never be trusted costs no certificate or signature checks.
    """
    fmt = str(getattr(attestation.fmt, "value", attestation.fmt))
    # §8.7: "none" carries no attestation at all.
    if fmt == AttestationFormat.NONE.value:
        raise PasskeyError(Reason.ATTESTATION_REJECTED, "attestation required, got none")
    # §8.2: packed without x5c is self attestation, signed by the new credential's own key: it
    # proves only that the client holds that key, nothing about the authenticator.
    if fmt == AttestationFormat.PACKED.value and not attestation.att_stmt.x5c:
        raise PasskeyError(Reason.ATTESTATION_REJECTED, "self attestation")
    # §7.1 steps 23-24: a chain is only as good as the root it ends in. With no roots for
    # the format py_webauthn skips chain validation, so a certificate the client made and signed
    # itself would pass: such a format is refused, whatever its statement says.
    if fmt not in BUNDLED_ROOT_FORMATS and not rp.root_certs.get(fmt):
        raise PasskeyError(Reason.ATTESTATION_REJECTED, f"no trust anchors for {fmt!r}")


def verify_registration(
    request: HttpRequest,
    user: AbstractBaseUser,
    data: Any,
    *,
    name: str | Callable[[Credential], str] = "",
    rp: RelyingParty | None = None,
    purpose: Challenge.Purpose = Challenge.Purpose.REGISTER,
) -> Credential:
    """Verify a ``RegistrationResponseJSON`` and store the new credential.

    ``purpose`` is the challenge's: ``REGISTER``, or ``UPGRADE``, the one purpose that accepts
    a credential without user presence (a conditional create, §7.1 step 14).

    ``name`` is the credential's name, or a function that gives one from the verified credential
    before it is stored (a default name from its AAGUID, in the same INSERT).

    Raises :class:`PasskeyError` with the reason code of the first failing step; on failure
    nothing is written.
    """
    rp = rp or RelyingParty.for_request(request)
    credential = cast(RegistrationCredential, _parse_response(data, "registration"))
    response = credential.response
    client_data, document = _parse_client_data(response.client_data_json)

    # §7.1 step 8: C.challenge is the challenge issued for this session, purpose and user.
    challenge = challenges.lookup(request, purpose, client_data.challenge)
    if challenge.user_id != user.pk:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge issued to another user")
    _check_client_data(client_data, document, ClientDataType.WEBAUTHN_CREATE, rp)

    # §7.1 step 12: CBOR-decode the attestation object (py_webauthn).
    attestation = _parse_attestation_object(response.attestation_object)
    auth_data = attestation.auth_data
    _check_authenticator_data(auth_data, rp, purpose=challenge.purpose)
    attested = auth_data.attested_credential_data
    if attested is None or not auth_data.flags.at:
        raise PasskeyError(Reason.MALFORMED_REQUEST, "no attested credential data")

    # §7.1 step 19: the credential's algorithm is one offered in pubKeyCredParams.
    with _rejected_as(Reason.ALGORITHM_UNSUPPORTED, "public key"):
        algorithm = decode_credential_public_key(attested.credential_public_key).alg
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

    if rp.require_attestation:
        _check_attestation_trust(attestation, rp)

    # §7.1 steps 5-23 again, in py_webauthn, with steps 21-23 (attestation statement format,
    # verification and trust anchors) done only there.
    with _rejected_as(Reason.ATTESTATION_REJECTED, "attestation"):
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=client_data.challenge,
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=rp.uv_required,
            require_user_presence=_user_presence_required(challenge.purpose),
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in rp.algorithms],
            pem_root_certs_bytes_by_fmt={
                AttestationFormat(fmt): certs for fmt, certs in rp.root_certs.items()
            }
            or None,
        )

    # §7.1 step 27: store the credential record, in the transaction that consumes the challenge.
    record = Credential(
        user_id=user.pk,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        user_handle=_bound_user_handle(user),
        sign_count=verified.sign_count,
        transports=sorted({t.value for t in (response.transports or [])}),
        aaguid=str(uuid.UUID(bytes=attested.aaguid)),
        backup_eligible=auth_data.flags.be,
        backup_state=auth_data.flags.bs,
        uv_initialized=auth_data.flags.uv,
        attestation_format=str(getattr(verified.fmt, "value", verified.fmt)),
    )
    record.name = (name(record) if callable(name) else name).strip()[:128]
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

    Call it inside a transaction (``challenges.take()`` insists): the challenge is consumed
    when it is found, and the credential's counter, backup state and last use are saved at the
    end, so a failure anywhere rolls back everything it wrote. Raises :class:`PasskeyError` with
    the reason code of the first failing step. The credential returned carries
    ``owner_credentials``: its owner's active credentials, read in the same query.

    Every step of WebAuthn L3 §7.2 runs whatever the order; the order decides only which failure
    is reported, and it is chosen so that nobody without the credential's private key learns
    anything about stored accounts (security rule 11), in particular whether the account named
    by a hinted ``login/options`` exists:

    1. What needs no stored credential: the session's challenge (step 12), client data
       (steps 11, 13, 14), authenticator data (steps 15-18), and the allowCredentials
       membership (step 5) against the ids the challenge recorded, fake ones included.
       Anyone's own passkey, outside the list, is ``credential_not_allowed`` for an existing
       and an unknown hinted account alike.
    2. The credential record (step 7). An id in the challenge's list with no record is one of
       the fake ids: it answers ``signature_invalid``, as a forged assertion for a listed real
       id does. ``credential_unknown`` is left for ids no list named (discoverable logins).
    3. The signature (steps 21-22, py_webauthn), with the record's public key.
    4. Only then the checks against stored owner data: the credential's owner is the identified
       user, and userHandle, when sent, is the owner's handle (step 6); the credential is still
       bound to its owner's handle (security rule 10: a row moved to another account never
       authenticates); backup eligibility is unchanged (step 19); the signature counter
       (step 23), stored with a conditional update so that it never goes backwards.
    """
    rp = _for_purpose(rp or RelyingParty.for_request(request), purpose)
    credential = cast(AuthenticationCredential, _parse_response(data, "authentication"))
    response = credential.response
    client_data, document = _parse_client_data(response.client_data_json)
    # §7.2 step 12: C.challenge is the challenge issued to this session for this purpose. It is
    # consumed here, in the caller's transaction: any failure below rolls the consumption back.
    challenge = challenges.take(request, purpose, client_data.challenge)
    _check_client_data(client_data, document, ClientDataType.WEBAUTHN_GET, rp)
    auth_data = _parse_authenticator_data(response.authenticator_data)
    _check_authenticator_data(auth_data, rp)

    # §7.2 step 5: with a non-empty allowCredentials, the credential is one of them.
    digest = credential_id_digest(credential.raw_id)
    listed = frozenset(challenge.allowed_credentials)
    if listed and digest not in listed:
        raise PasskeyError(Reason.CREDENTIAL_NOT_ALLOWED)

    # §7.2 step 7: look up the credential record by id; revoked records never authenticate.
    # The same query brings the owner and the owner's user handle, and the owner's other
    # credentials, whose active ones are the Signal API list a sign-in answers with. It walks
    # the unique index on the id's digest, then the owner's passkeys by user: the table's size
    # does not matter. No ORDER BY: sorting a handful of rows is no work for the database.
    rows = list(
        Credential.objects.select_related("user", "user__passkey_handle")
        .filter(user__passkeys__credential_id_sha256=digest)
        .order_by()
    )
    record = next((row for row in rows if row.credential_id_sha256 == digest), None)
    if record is None:
        if listed:
            # A fake id of a hinted login/options: answered like a forged signature (rule 11).
            raise PasskeyError(Reason.SIGNATURE_INVALID, "listed credential id without a record")
        raise PasskeyError(Reason.CREDENTIAL_UNKNOWN)
    if not record.is_active:
        raise PasskeyError(Reason.CREDENTIAL_REVOKED)

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

    _check_owner(record, challenge, response.user_handle, discoverable=not listed)
    # §7.2 step 19 (and §6.1.3): backup eligibility is fixed at creation and never changes.
    if auth_data.flags.be != record.backup_eligible:
        raise PasskeyError(Reason.BACKUP_ELIGIBILITY_CHANGED)
    _store_use(record, auth_data, rp)
    # The record and the owner's other active credentials, newest first as everywhere else.
    record.owner_credentials = sorted(
        (row for row in rows if row.is_active), key=_CREATED_AT, reverse=True
    )
    return record


def _check_owner(
    record: Credential, challenge: Challenge, user_handle: bytes | None, *, discoverable: bool
) -> None:
    """§7.2 step 6 and security rule 10, after the signature (see :func:`verify_authentication`)."""
    # §7.2 step 6: the credential belongs to the user identified before the ceremony.
    if challenge.user_id is not None and record.user_id != challenge.user_id:
        raise PasskeyError(Reason.CREDENTIAL_NOT_ALLOWED, "credential of another user")
    # A missing reverse one-to-one raises an AttributeError subclass, so getattr's default applies.
    handle_row: UserHandle | None = getattr(record.user, "passkey_handle", None)
    owner_handle = bytes(handle_row.handle) if handle_row is not None else b""
    # Security rule 10: the credential was registered to the account that holds it now. An edit
    # of ``user`` (the admin, the database) leaves the registering account's handle here, so the
    # moved credential signs in nobody, with or without a userHandle in the response.
    bound = bytes(record.user_handle)
    if not owner_handle or not bound or not hmac.compare_digest(bound, owner_handle):
        raise PasskeyError(Reason.USER_HANDLE_MISMATCH, "credential not bound to its owner")
    # §7.2 step 6: userHandle, when present, is the owner's handle; a discoverable login (no
    # allowCredentials, no identified user) has only userHandle to name the user, so it is
    # required there.
    if user_handle is not None:
        if not hmac.compare_digest(bytes(user_handle), owner_handle):
            raise PasskeyError(Reason.USER_HANDLE_MISMATCH)
    elif discoverable and challenge.user_id is None:
        raise PasskeyError(Reason.USER_HANDLE_MISMATCH, "userHandle missing in discoverable login")


def _store_use(record: Credential, auth_data: AuthenticatorData, rp: RelyingParty) -> None:
    """§7.2 steps 23 and 25: counter policy, then the record update.

    The stored counter never goes backwards. Two concurrent assertions both pass the check
    against the counter read at lookup, so the update itself is conditional: it matches only
    while the stored counter is still below the new one (or both are still 0). The loser of
    such a race is a regression like any other: refused under ``reject``, its transaction
    (the consumed challenge included) rolled back, or flagged under ``flag`` with the counter
    left as the winner stored it.

    A record with nothing to store is not written: no counter (both 0, as every synced passkey
    reports), the same backup state, and a last use within ``PASSKEYS_LAST_USED_RESOLUTION``.
    """
    now = timezone.now()
    new_count = auth_data.sign_count
    # §7.2 step 23: a counter that does not increase (unless both are 0) signals a clone.
    regressed = bool(new_count or record.sign_count) and new_count <= record.sign_count
    if regressed and rp.sign_count_policy == "reject":
        raise PasskeyError(Reason.SIGN_COUNT_REGRESSED, f"{record.sign_count} -> {new_count}")
    if _nothing_to_store(record, auth_data, now):
        return
    still_behind = Q(sign_count__lt=new_count) if new_count else Q(sign_count=0)
    # §7.2 steps 19 and 25: update the stored counter, backup state and last use in the
    # transaction that consumed the challenge (``challenges.take()``, at step 12). Nothing here
    # catches an error, so no savepoint is needed: an error rolls back the caller's
    # transaction as a whole.
    advanced = not regressed and bool(
        Credential.objects.filter(still_behind, pk=record.pk).update(
            sign_count=new_count, backup_state=auth_data.flags.bs, last_used_at=now
        )
    )
    if not advanced:
        if rp.sign_count_policy == "reject":
            raise PasskeyError(
                Reason.SIGN_COUNT_REGRESSED, f"stored counter reached {new_count} meanwhile"
            )
        Credential.objects.filter(pk=record.pk).update(
            backup_state=auth_data.flags.bs, last_used_at=now, clone_warning_at=now
        )
        record.clone_warning_at = now
    if advanced:
        record.sign_count = new_count
    record.backup_state = auth_data.flags.bs
    record.last_used_at = now


def _nothing_to_store(record: Credential, auth_data: AuthenticatorData, now: datetime) -> bool:
    """Whether an assertion leaves ``record`` as it is (see :func:`_store_use`).

    Only without a counter: a counter that moves is stored every time, by the conditional
    update that keeps it from going backwards.
    """
    if auth_data.sign_count or record.sign_count or auth_data.flags.bs != record.backup_state:
        return False
    resolution = timedelta(seconds=conf.PASSKEYS_LAST_USED_RESOLUTION)
    return record.last_used_at is not None and now - record.last_used_at < resolution
