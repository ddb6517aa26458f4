"""Rate limits: per IP and per account windows, and a growing delay after failed assertions.

Two controls, both kept in the shared cache (``PASSKEYS_RATELIMIT_CACHE``) so that checking them
costs no database query:

**Windows** (:func:`enforce`, called by every JSON endpoint before it reads the body): fixed
windows from django-ratelimit's :func:`~django_ratelimit.core.get_usage`, one per client IP (an
IPv6 client by its /64) and one per signed-in account, with the rates of ``PASSKEYS_RATE_LIMITS``
for the endpoint's URL name. The account is only ever the signed-in user of the session: never
a name or e-mail the client typed, so nobody can use up a victim's allowance by naming them.
A request without a usable client address (an empty ``REMOTE_ADDR``: a proxy on a Unix socket)
is never counted in one bucket shared by all such clients, which one of them could use up for
everyone: its IP window becomes a window of its session (for a visitor without one, of the cookie
its sign-in challenge is bound to; none for a request with neither), a warning is logged at most
once an hour per process, and ``check --deploy`` reports it (``passkeys.W006``) until the
deployment gives Django the client's address.

**Failed-assertion backoff** (:func:`check_assertion_backoff`, :func:`record_assertion_failure`,
:func:`reset_assertion_failures`): NIST SP 800-63B-4 §3.2.2 asks that consecutive failed
attempts on one account be capped (≤ 100) and suggests growing waits as the cap nears. A
failure counts against an account only when the credential was actually verified: the
assertion named one of the account's *active* credentials and its signature verified, yet the
ceremony failed (the signature counter went backwards: a cloned authenticator).

Failures without a verified signature count against nobody. Credential ids are not secret
(``login/options`` lists them for anyone who types the account's e-mail), so such a failure
says nothing about who sent it: counting it would let anyone hold a victim's passkeys by
naming them. They are bounded by the per-IP windows instead, and a signature cannot be guessed.

A verified failure is different: only the holder of the private key can produce it. From the
``free``-th consecutive one the account's passkeys are *held* for a delay that doubles up to
``max`` seconds; attempts during a hold are refused unverified and do not count. Reaching
``PASSKEYS_MAX_FAILED_ATTEMPTS`` holds the account until the count is forgotten
(``forget_after`` seconds after the last failure): never for good. A success resets the count.
The owner can still sign in any other way the project offers (password, recovery).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import BaseCache, caches
from django.db.models import Subquery
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from django_passkeys import audit
from django_passkeys.challenges import binding_cookie
from django_passkeys.checks import missing_address_key
from django_passkeys.clientip import ratelimit_ip_key
from django_passkeys.conf import conf
from django_passkeys.errors import PasskeyError, Reason
from django_passkeys.models import AuthEvent, Credential, credential_id_digest

logger = logging.getLogger("django_passkeys")

#: Failures of a credential whose signature verified: only these count against its account
#: (see the module docstring for why unverified failures must not).
COUNTED_FAILURES = frozenset({Reason.SIGN_COUNT_REGRESSED})


def limits_for(endpoint: str) -> dict[str, str | None]:
    """The ``{"ip": rate, "account": rate}`` of ``endpoint`` (its URL name)."""
    limits = conf.PASSKEYS_RATE_LIMITS
    return limits.get(endpoint, limits["default"])


def _session_user_id(request: HttpRequest) -> str | None:
    # The session already holds the signed-in user's id: reading it costs no user query.
    session = getattr(request, "session", None)
    value = session.get(SESSION_KEY) if session is not None else None
    return str(value) if value is not None else None


def enforce(request: HttpRequest, endpoint: str) -> None:
    """Count this request in the IP and account windows; raise ``rate_limited`` when over.

    Each window's first refused request writes a ``rate_limit`` AuthEvent; the rest are only
    logged, so a flood cannot turn into a flood of database writes.
    """
    limits = limits_for(endpoint)
    scopes: list[tuple[str, str, str]] = []
    ip_bucket = _ip_bucket(request) if limits.get("ip") else None
    if ip_bucket is not None:
        scopes.append(("ip", ip_bucket, str(limits["ip"])))
    account = _session_user_id(request)
    if limits.get("account") and account is not None:
        scopes.append(("account", account, str(limits["account"])))
    for scope, value, rate in scopes:
        usage = get_usage(
            request,
            group=f"passkeys:{endpoint}:{scope}",
            key=lambda _group, _request, value=value: value,
            rate=rate,
            increment=True,
        )
        if usage is None or not usage["should_limit"]:
            continue
        _on_limited(request, endpoint, scope, first=usage["count"] == usage["limit"] + 1)
        raise PasskeyError(
            Reason.RATE_LIMITED,
            f"{scope} limit {rate} on {endpoint}",
            retry_after=usage["time_left"],
        )


#: Seconds between two warnings about requests without a client address, per process.
MISSING_ADDRESS_WARNING_INTERVAL = 3600
#: Seconds the rate-limit cache remembers such a request for ``passkeys.W006``.
MISSING_ADDRESS_MEMORY = 7 * 24 * 3600
_missing_address_warned_at = 0.0


def _ip_bucket(request: HttpRequest) -> str | None:
    """The IP window's bucket: the client's address, or without one its session (or the
    challenge binding cookie of a client without a session), or none."""
    address_key = ratelimit_ip_key(request)
    if address_key is not None:
        return address_key
    _warn_missing_address()
    # No address to tell clients apart: a window per session rather than one for everybody.
    # A client can start a new session to get a new window, but cannot use up anyone else's;
    # the account windows and the failed-assertion backoff still apply. A visitor signing in
    # has no session, only the cookie its login/options challenge is bound to: the same kind
    # of window, under its own prefix.
    session = getattr(request, "session", None)
    session_key = session.session_key if session is not None else None
    if session_key:
        return "session:" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
    binding = binding_cookie(request)
    if binding is None:
        return None
    return "binding:" + hashlib.sha256(binding.encode()).hexdigest()[:32]


def _warn_missing_address() -> None:
    global _missing_address_warned_at
    now = time.time()
    # Per process and unlocked: at worst two threads both warn, which is harmless; a log line
    # (and a cache write) per request would let one client flood both.
    if now - _missing_address_warned_at < MISSING_ADDRESS_WARNING_INTERVAL:
        return
    _missing_address_warned_at = now
    logger.warning(
        "passkey rate limits: a request had no client address (REMOTE_ADDR empty or invalid); "
        "counting per session instead. Give Django the client's address: see passkeys.W006.",
        extra={"passkeys_event": "missing_client_address"},
    )
    _cache().set(missing_address_key(), int(now), MISSING_ADDRESS_MEMORY)


def _on_limited(request: HttpRequest, endpoint: str, scope: str, *, first: bool) -> None:
    if first:
        audit.record(
            request,
            AuthEvent.Type.RATE_LIMIT,
            success=False,
            reason_code=Reason.RATE_LIMITED.value,
            user=getattr(request, "user", None),
        )
    else:
        logger.info(
            "passkey rate limit %s %s",
            endpoint,
            scope,
            extra={"passkeys_event": "rate_limit", "passkeys_reason": "rate_limited"},
        )


# ---------------------------------------------------------------------------------------------
# Failed-assertion backoff
# ---------------------------------------------------------------------------------------------


def _cache() -> BaseCache:
    return caches[conf.PASSKEYS_RATELIMIT_CACHE]


def _prefix() -> str:
    return f"{getattr(settings, 'RATELIMIT_CACHE_PREFIX', 'rl:')}passkeys:"


def _owner_token(user_pk: Any) -> str:
    return hashlib.sha256(f"owner:{user_pk}".encode()).hexdigest()[:32]


def _owner_key(digest: str) -> str:
    return f"{_prefix()}owner:{digest}"


def _count_key(owner: str) -> str:
    return f"{_prefix()}failures:{owner}"


def _hold_key(owner: str) -> str:
    return f"{_prefix()}held:{owner}"


def _named_digest(data: Any) -> str | None:
    """The SHA-256 digest of the credential id an assertion names, if it names one."""
    raw = data.get("rawId") if isinstance(data, dict) else None
    if not isinstance(raw, str) or not raw or len(raw) > 2048:
        return None
    try:
        credential_id = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return None
    return credential_id_digest(credential_id)


def hold_delay(failures: int) -> int:
    """Seconds an account is held after its ``failures``-th consecutive failure (0: no hold)."""
    backoff = conf.PASSKEYS_FAILURE_BACKOFF
    if failures >= conf.PASSKEYS_MAX_FAILED_ATTEMPTS:
        return backoff["forget_after"]
    if failures < backoff["free"]:
        return 0
    doublings = min(failures - backoff["free"], 32)  # 2**32 s is past any sane maximum
    return min(backoff["base"] << doublings, backoff["max"])


def check_assertion_backoff(data: Any) -> None:
    """Refuse, unverified, an assertion naming a credential whose owner is held (cache only)."""
    digest = _named_digest(data)
    if digest is None:
        return
    cache = _cache()
    owner = cache.get(_owner_key(digest))
    if owner is None:
        return
    until = cache.get(_hold_key(str(owner)))
    remaining = (until or 0) - time.time()
    if remaining > 0:
        raise PasskeyError(
            Reason.RATE_LIMITED,
            "account held after failed attempts",
            retry_after=math.ceil(remaining),
        )


def record_assertion_failure(request: HttpRequest, data: Any, error: PasskeyError) -> int:
    """Count a failed assertion against the owner of the active credential it named.

    Returns the owner's consecutive failures (0 when nothing was counted). Costs one query, on
    the failure path only: the named credential's owner and all that owner's active credentials,
    so that a hold covers every passkey of the account.
    """
    digest = _named_digest(data)
    if error.code not in COUNTED_FAILURES or digest is None:
        return 0
    owner_of_named = Credential.objects.active().filter(credential_id_sha256=digest)
    credentials = list(
        Credential.objects.active()
        .filter(user_id=Subquery(owner_of_named.values("user_id")[:1]))
        .select_related("user")
    )
    if not credentials:
        return 0
    user = credentials[0].user
    owner = _owner_token(user.pk)
    backoff = conf.PASSKEYS_FAILURE_BACKOFF
    cache = _cache()
    count_key = _count_key(owner)
    cache.add(count_key, 0, backoff["forget_after"])
    try:
        failures = cache.incr(count_key)
    except ValueError:  # evicted between add and incr
        cache.set(count_key, 1, backoff["forget_after"])
        failures = 1
    cache.touch(count_key, backoff["forget_after"])
    cache.set_many(
        {_owner_key(c.credential_id_sha256): owner for c in credentials}, backoff["forget_after"]
    )
    delay = hold_delay(failures)
    if delay:
        cache.set(_hold_key(owner), time.time() + delay, delay + 5)
        audit.record(
            request,
            AuthEvent.Type.RATE_LIMIT,
            success=False,
            reason_code=Reason.RATE_LIMITED.value,
            user=user,
        )
    return failures


def reset_assertion_failures(user_pk: Any) -> None:
    """Forget an account's failures and hold after a successful assertion (cache only)."""
    owner = _owner_token(user_pk)
    _cache().delete_many([_count_key(owner), _hold_key(owner)])
