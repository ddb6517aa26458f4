"""Issue and consume challenges: server-side, with a TTL, one-time, bound to client and purpose.

WebAuthn L3 §13.4.3: challenges are random, at least 16 bytes (we use 32), generated on the
server and checked against server-side state. Only a SHA-256 digest is stored.

**Binding.** Each challenge records the digest of a random secret that only the client it was
issued to holds, and verifies only for a client that presents that secret (security rule 1). The
secret is kept in the client's session. A client that has no session yet, the visitor the sign-in
page asks for options, gets it in a cookie instead (:data:`BINDING_COOKIE`: HttpOnly, the session
cookie's ``Secure``, ``SameSite``, domain and path, alive as long as a challenge): creating a
session only to hold it would cost a session row per visitor, written at ``login/options`` and
deleted again at sign-in, when ``login()`` gives the signed-in user a new session anyway.

**Store.** A challenge is a :class:`~django_passkeys.models.Challenge` row, or, where sessions
live in the cache, an entry of that cache (``PASSKEYS_CHALLENGE_STORE``, :func:`store`): a site
that trusts the cache with its sessions trusts it with their challenges, and a sign-in then
spends no database statement on its challenge. Both are found, checked and consumed behind the
same functions, with the same reasons; they differ in one thing. A row consumed by an assertion
is restored when the verification fails later (bad signature, revoked credential...): the
transaction rolls back. A cache entry is deleted when it is taken, for good: one attempt per
challenge, which is all the JavaScript makes (it asks for new options for every attempt).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .conf import CHALLENGE_STORES, conf
from .errors import PasskeyError, Reason
from .models import Challenge

CHALLENGE_BYTES = 32
_SESSION_KEY = "_passkeys_binding"
#: The cookie holding the binding secret of a client without a session.
BINDING_COOKIE = "passkeys_binding"
#: Set on a request whose challenge was bound to a cookie secret: the response must carry it.
_ISSUED_ATTR = "_passkeys_binding_cookie"
#: What :func:`secrets.token_urlsafe` (32 bytes) gives; any other cookie value is replaced.
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")

#: Where challenges are kept once ``"auto"`` is decided (:func:`store`).
Store = Literal["database", "cache"]
#: The session engine whose sessions live in the cache alone (``cached_db`` ones are durable in
#: the database): with it, ``PASSKEYS_CHALLENGE_STORE = "auto"`` keeps challenges there too.
CACHE_SESSIONS = "django.contrib.sessions.backends.cache"
#: Cache keys of challenges: this prefix, then the challenge's SHA-256 (never the challenge).
#: The cache may be the site's own: the prefix keeps its keys and ours apart.
CACHE_KEY_PREFIX = "passkeys:challenge:"
#: Seconds a cache challenge is kept past its expiry, so that one just expired still answers
#: ``challenge_expired``, as a row does, rather than ``challenge_invalid``.
CACHE_GRACE = 60


def _digest(value: bytes | str) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def session_binding(request: HttpRequest, *, create: bool = True) -> str | None:
    """The digest of a random per-session secret that challenges are bound to.

    A random value kept in the session (not the session key, which anonymous sessions may not
    have yet and which rotates at login) survives until the session ends or is flushed.
    With ``create=False`` a session without one gets ``None`` and nothing is written.
    """
    secret = request.session.get(_SESSION_KEY)
    if not isinstance(secret, str):
        if not create:
            return None
        secret = secrets.token_urlsafe(32)
        request.session[_SESSION_KEY] = secret
    return _digest(secret)


def binding_cookie(request: HttpRequest) -> str | None:
    """The binding secret in the client's cookie, if it sent a well-formed one."""
    value = request.COOKIES.get(BINDING_COOKIE)
    return value if isinstance(value, str) and _SECRET.fullmatch(value) else None


def client_binding(request: HttpRequest) -> str:
    """The binding of a challenge issued now to this client: see the module docstring.

    The session's secret when the client has a session (the one :func:`session_binding` keeps);
    without a session, the secret of the client's binding cookie, created when it has none and
    (re)sent with the response by :func:`set_binding_cookie`. A cookie the client already has
    is kept, so that a second tab's options do not orphan the first tab's challenge.
    """
    binding = session_binding(request, create=False)  # loads the session, if any
    if binding is not None:
        return binding
    if request.session.session_key:
        return str(session_binding(request))
    secret = getattr(request, _ISSUED_ATTR, None) or binding_cookie(request)
    if secret is None:
        secret = secrets.token_urlsafe(32)
    setattr(request, _ISSUED_ATTR, secret)
    return _digest(secret)


def _presented_bindings(request: HttpRequest) -> Iterator[str]:
    """The bindings this client holds: its session's, its cookie's, one issued on this request."""
    binding = session_binding(request, create=False)
    if binding is not None:
        yield binding
    for secret in (binding_cookie(request), getattr(request, _ISSUED_ATTR, None)):
        if secret is not None:
            yield _digest(secret)


def set_binding_cookie(request: HttpRequest, response: HttpResponse) -> None:
    """Send the binding cookie of a challenge just bound to one (nothing otherwise).

    Its lifetime is a challenge's, counted again from each challenge bound to it.
    """
    secret = getattr(request, _ISSUED_ATTR, None)
    if secret is None:
        return
    response.set_cookie(
        BINDING_COOKIE,
        secret,
        max_age=conf.PASSKEYS_CHALLENGE_TTL,
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=settings.SESSION_COOKIE_SECURE or request.is_secure(),
        httponly=True,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def store() -> Store:
    """Where challenges are kept: ``PASSKEYS_CHALLENGE_STORE``, with ``"auto"`` decided.

    ``"auto"`` is the cache exactly when sessions live there alone (:data:`CACHE_SESSIONS`),
    else the database. Read on each call, like every setting. An unknown value fails closed
    (``passkeys.E021`` reports it before any request).
    """
    value = conf.PASSKEYS_CHALLENGE_STORE
    if value == "auto":
        return "cache" if settings.SESSION_ENGINE == CACHE_SESSIONS else "database"
    if value == "database" or value == "cache":
        return value
    raise ImproperlyConfigured(
        f"PASSKEYS_CHALLENGE_STORE is {value!r}; expected one of {list(CHALLENGE_STORES)}."
    )


def _cache() -> BaseCache:
    """The cache of the ``cache`` store: where cache sessions live (``SESSION_CACHE_ALIAS``)."""
    return caches[settings.SESSION_CACHE_ALIAS]


def _cache_key(digest: str) -> str:
    return CACHE_KEY_PREFIX + digest


def issue(
    request: HttpRequest,
    purpose: Challenge.Purpose,
    *,
    user_id: Any = None,
    allowed_credentials: Iterable[str] = (),
) -> bytes:
    """Create and store a fresh challenge; return its raw bytes for the options."""
    value = secrets.token_bytes(CHALLENGE_BYTES)
    now = timezone.now()
    challenge = Challenge(
        challenge_sha256=_digest(value),
        purpose=purpose,
        session_binding=client_binding(request),
        user_id=user_id,
        allowed_credentials=list(allowed_credentials),
        created_at=now,
        expires_at=now + timedelta(seconds=conf.PASSKEYS_CHALLENGE_TTL),
    )
    if store() == "cache":
        _cache().set(
            _cache_key(challenge.challenge_sha256),
            _cache_value(challenge),
            timeout=conf.PASSKEYS_CHALLENGE_TTL + CACHE_GRACE,
        )
    else:
        challenge.save(force_insert=True)
    return value


def _cache_value(challenge: Challenge) -> dict[str, Any]:
    """What the cache keeps of a challenge: its row's fields, as text.

    Plain strings and lists, so that any cache serializer takes them (pickle, or the JSON some
    Redis clients are configured with). Not the challenge: only the key's digest names it.
    """
    return {
        "purpose": str(challenge.purpose),
        "session_binding": challenge.session_binding,
        "user_id": None if challenge.user_id is None else str(challenge.user_id),
        "allowed_credentials": list(challenge.allowed_credentials),
        "created_at": challenge.created_at.isoformat(),
        "expires_at": challenge.expires_at.isoformat(),
    }


def _cached(digest: str) -> Challenge | None:
    """The cache challenge of this digest, as an unsaved ``Challenge``; ``None`` if there is none.

    Unsaved (no primary key) is how :func:`consume` tells it from a row. The user id is
    converted back to the user model's primary key type, as the ORM would give it.
    """
    value = _cache().get(_cache_key(digest))
    if not isinstance(value, dict):
        return None
    user_id = value["user_id"]
    return Challenge(
        challenge_sha256=digest,
        purpose=value["purpose"],
        session_binding=value["session_binding"],
        user_id=None if user_id is None else Challenge._meta.get_field("user").to_python(user_id),
        allowed_credentials=list(value["allowed_credentials"]),
        created_at=datetime.fromisoformat(value["created_at"]),
        expires_at=datetime.fromisoformat(value["expires_at"]),
    )


def lookup(request: HttpRequest, purpose: Challenge.Purpose, value: bytes) -> Challenge:
    """Find the challenge the client signed, or fail with the reason.

    A challenge of another purpose, another client (a binding it does not hold), or one
    already consumed is ``challenge_invalid``; one past its expiry is ``challenge_expired``.
    Consume it later, in the transaction that stores the outcome, with :func:`consume`.
    From the cache store, the challenge is an unsaved ``Challenge`` with the same fields.
    """
    if store() == "cache":
        return _find_cached(request, purpose, value)
    # At most one row (the digest is unique): no ORDER BY for the database to honour.
    row = next(iter(Challenge.objects.filter(challenge_sha256=_digest(value))[:1]), None)
    if row is None or row.consumed_at is not None:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "unknown or consumed challenge")
    _check(request, purpose, row)
    return row


def take(request: HttpRequest, purpose: Challenge.Purpose, value: bytes) -> Challenge:
    """Find the challenge the client signed and consume it; fail as :func:`lookup` does.

    For a ceremony whose whole verification runs in one transaction (an assertion): call it
    inside that transaction, which any later failure rolls back, the consumption with it. Where
    the database has ``UPDATE ... RETURNING`` (PostgreSQL, SQLite 3.35+) the lookup and the
    consumption are one statement, whose row lock makes a concurrent verification of the same
    challenge wait until this transaction ends and then find it consumed; elsewhere it is
    :func:`lookup`, then :func:`consume`'s conditional UPDATE. The checks of :func:`lookup` run
    on the row either way, so the reasons are the same.

    From the cache store it is :func:`lookup`, then the deletion of the entry (:func:`consume`):
    no statement at all. A failing check consumes nothing; a failure after this returns does not
    give the challenge back (one attempt per challenge). The transaction is required all the
    same: the caller's other writes rely on it, whichever store is configured.
    """
    alias = router.db_for_write(Challenge)
    if not transaction.get_connection(alias).in_atomic_block:
        raise RuntimeError("challenges.take() consumes the challenge: call it in a transaction")
    if store() == "cache":
        found = _find_cached(request, purpose, value)
        _consume_cached(found)
        return found
    if not _updates_return_rows(alias):
        found = lookup(request, purpose, value)
        consume(found)
        return found
    connection = connections[alias]
    consumed_at = Challenge._meta.get_field("consumed_at").get_db_prep_value(
        timezone.now(), connection, prepared=False
    )
    params = [consumed_at, _digest(value)]
    row = next(iter(Challenge.objects.raw(_take_sql(alias), params, using=alias)), None)
    if row is None:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "unknown or consumed challenge")
    # A failed check rolls the consumption back with the caller's transaction.
    _check(request, purpose, row)
    return row


def _find_cached(request: HttpRequest, purpose: Challenge.Purpose, value: bytes) -> Challenge:
    """:func:`lookup` in the cache store: the entry, then the same checks in the same order."""
    found = _cached(_digest(value))
    if found is None:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "unknown or consumed challenge")
    _check(request, purpose, found)
    return found


def _check(request: HttpRequest, purpose: Challenge.Purpose, row: Challenge) -> None:
    """The checks of a challenge row found unconsumed, in the order :func:`lookup` documents."""
    if row.purpose != purpose:
        raise PasskeyError(Reason.CHALLENGE_INVALID, f"challenge issued for {row.purpose}")
    # Every binding the client presents is compared, none is created: a client without one fails.
    if not any(
        secrets.compare_digest(row.session_binding, binding)
        for binding in _presented_bindings(request)
    ):
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge bound to another client")
    if row.expires_at <= timezone.now():
        raise PasskeyError(Reason.CHALLENGE_EXPIRED)


def _updates_return_rows(alias: str) -> bool:
    """Whether the database runs ``UPDATE ... RETURNING`` (MySQL and MariaDB do not)."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return True
    # SQLite has RETURNING since 3.35, the version from which Django returns inserted columns.
    return connection.vendor == "sqlite" and bool(
        connection.features.can_return_columns_from_insert
    )


@functools.cache
def _take_sql(alias: str) -> str:
    """The one statement of :func:`take`, built once from the model's table and column names."""
    quote = connections[alias].ops.quote_name
    meta = Challenge._meta
    column = {field.name: quote(str(field.column)) for field in meta.concrete_fields}
    return (
        f"UPDATE {quote(meta.db_table)} SET {column['consumed_at']} = %s "
        f"WHERE {column['challenge_sha256']} = %s AND {column['consumed_at']} IS NULL "
        f"RETURNING {', '.join(column.values())}"
    )


def consume(row: Challenge) -> None:
    """Mark ``row`` used with one conditional UPDATE; lose the race and it fails.

    Call inside the transaction that stores the ceremony's outcome: of two concurrent
    verifications of one challenge, the second UPDATE waits on the row lock, then matches no
    row, so exactly one can succeed.

    A challenge of the cache store (unsaved: :func:`lookup` built it from the entry) is
    consumed by deleting its entry instead. Whether a key was deleted is decided atomically by
    Redis, memcached and the local-memory cache alike, so again exactly one caller wins; the
    deletion is not undone if the transaction later rolls back.
    """
    if _is_cached(row):
        _consume_cached(row)
        return
    now = timezone.now()
    won = Challenge.objects.filter(pk=row.pk, consumed_at__isnull=True, expires_at__gt=now).update(
        consumed_at=now
    )
    if won != 1:
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge consumed concurrently")


def _is_cached(row: Challenge) -> bool:
    """Whether ``row`` came from the cache store: the one kind of challenge never saved."""
    return row.pk is None


def _consume_cached(row: Challenge) -> None:
    """:func:`consume` in the cache store: delete the entry; ``False`` means another won."""
    # As the conditional UPDATE does: a challenge that expired since it was found is refused,
    # and left in place (it answers challenge_expired until the cache drops it).
    if row.expires_at <= timezone.now() or not _cache().delete(_cache_key(row.challenge_sha256)):
        raise PasskeyError(Reason.CHALLENGE_INVALID, "challenge consumed concurrently")
