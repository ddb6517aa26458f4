"""System checks for inconsistent settings (ids ``passkeys.E0xx`` / ``passkeys.W0xx``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .ceremonies import is_ip_address, is_rp_id_of
from .challenges import store as challenge_store
from .conf import (
    ATTESTATION_PREFERENCES,
    CHALLENGE_STORES,
    HINTS,
    REQUIREMENTS,
    SIGN_COUNT_POLICIES,
    conf,
)

BACKEND = "django_passkeys.backends.PasskeyBackend"
REQUIRED_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


#: Django's cache backends that keep nothing (dummy) or keep it per process (local memory).
_DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"
_LOCMEM_CACHE = "django.core.cache.backends.locmem.LocMemCache"


@register(Tags.security)
def check_relying_party(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """RP ID present; each origin valid for it, https outside DEBUG and localhost.

    A callable RP ID or origin list (multi-tenant sites) is checked per request instead
    (``RelyingParty.for_request``); here only what does not depend on the request.
    """
    messages: list[CheckMessage] = []
    rp_id = conf.PASSKEYS_RP_ID
    try:
        origins = conf.PASSKEYS_ALLOWED_ORIGINS
    except ImproperlyConfigured as exc:
        messages.append(Error(str(exc), id="passkeys.E020"))
        origins = []
    if callable(rp_id) or callable(origins):
        messages += _per_request_relying_party(rp_id, origins)
    if callable(rp_id):
        rp_id = ""  # no static RP ID: E003 cannot apply to the listed origins
    elif _looks_like_a_dotted_path(rp_id):
        return [
            *messages,
            Error(
                f"PASSKEYS_RP_ID {rp_id!r} is neither a domain (a host name has no '_' or capital "
                "letters) nor the dotted path of a callable of the request.",
                hint="Check the dotted path: it must import and name a callable.",
                id="passkeys.E020",
            ),
        ]
    elif is_ip_address(rp_id):
        # WebAuthn L3 §5.1.4.1 step 8: an RP ID is a valid domain; browsers refuse IP addresses.
        return [
            *messages,
            Error(
                f"PASSKEYS_RP_ID {rp_id!r} is an IP address, which browsers never accept as an "
                "RP ID.",
                hint="In development use PASSKEYS_RP_ID = 'localhost' and open the site as "
                "http://localhost:8000 (listed in PASSKEYS_ALLOWED_ORIGINS).",
                id="passkeys.E001",
            ),
        ]
    elif not rp_id or "/" in rp_id or ":" in rp_id:
        return [
            *messages,
            Error(
                "PASSKEYS_RP_ID must be set to a bare domain such as 'example.com'.",
                id="passkeys.E001",
            ),
        ]
    related = {urlsplit(o).hostname for o in conf.PASSKEYS_RELATED_ORIGINS}
    for origin in origins if not callable(origins) else []:
        if origin.startswith("android:apk-key-hash:"):
            continue
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
            messages.append(
                Error(
                    f"{origin!r} in PASSKEYS_ALLOWED_ORIGINS is not an origin.", id="passkeys.E002"
                )
            )
            continue
        if rp_id and not is_rp_id_of(rp_id, host) and host not in related:
            messages.append(
                Error(
                    f"Origin {origin!r} is neither PASSKEYS_RP_ID {rp_id!r}, a subdomain of it, "
                    "nor listed in PASSKEYS_RELATED_ORIGINS.",
                    id="passkeys.E003",
                )
            )
        if parts.scheme == "http" and host not in _LOCAL_HOSTS and not settings.DEBUG:
            messages.append(
                Error(
                    f"Origin {origin!r} is not https; browsers allow WebAuthn over http only on "
                    "localhost.",
                    id="passkeys.E004",
                )
            )
    return messages


def _looks_like_a_dotted_path(value: str) -> bool:
    """A string conf could not import as a callable, yet no host name: ``myproject.rp_id``."""
    parts = value.split(".")
    return (
        len(parts) > 1
        and all(part.isidentifier() for part in parts)
        and ("_" in value or value != value.lower())
    )


def _per_request_relying_party(rp_id: object, origins: object) -> list[CheckMessage]:
    """Say that the callables are checked per request, and where that check is weakest."""
    which = " and ".join(
        name
        for name, value in (("PASSKEYS_RP_ID", rp_id), ("PASSKEYS_ALLOWED_ORIGINS", origins))
        if callable(value)
    )
    messages: list[CheckMessage] = [
        Info(
            f"{which} decided per request: each answer is checked against the request's host "
            "when a ceremony runs (an RP ID that is not the host or a registrable domain suffix "
            "of it, or an origin outside it, fails with rp_not_configured), not here.",
            id="passkeys.I001",
        )
    ]
    if "*" in settings.ALLOWED_HOSTS:
        messages.append(
            Warning(
                f"{which} decided per request while ALLOWED_HOSTS accepts any host ('*'): the "
                "request's host, which the Relying Party is checked against, is then whatever "
                "the client sends.",
                hint="List the tenants' hosts in ALLOWED_HOSTS, and let the callable answer "
                "only for hosts it knows.",
                id="passkeys.W010",
            )
        )
    return messages


@register(Tags.security)
def check_choices(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Enumerated settings hold known values."""
    from webauthn.helpers.cose import COSEAlgorithmIdentifier

    messages: list[CheckMessage] = []
    choices: list[tuple[str, object, Sequence[object]]] = [
        ("PASSKEYS_USER_VERIFICATION", conf.PASSKEYS_USER_VERIFICATION, REQUIREMENTS),
        ("PASSKEYS_RESIDENT_KEY", conf.PASSKEYS_RESIDENT_KEY, REQUIREMENTS),
        ("PASSKEYS_ATTESTATION", conf.PASSKEYS_ATTESTATION, ATTESTATION_PREFERENCES),
        ("PASSKEYS_SIGN_COUNT_POLICY", conf.PASSKEYS_SIGN_COUNT_POLICY, SIGN_COUNT_POLICIES),
    ]
    for name, value, allowed in choices:
        if value not in allowed:
            messages.append(
                Error(f"{name} is {value!r}; expected one of {list(allowed)}.", id="passkeys.E005")
            )
    known = {a.value for a in COSEAlgorithmIdentifier}
    algorithms = conf.PASSKEYS_ALGORITHMS
    if not algorithms or any(a not in known for a in algorithms):
        messages.append(
            Error(
                f"PASSKEYS_ALGORITHMS {algorithms!r} must list COSE algorithms py_webauthn knows.",
                id="passkeys.E006",
            )
        )
    if any(h not in HINTS for h in conf.PASSKEYS_HINTS):
        messages.append(Error(f"PASSKEYS_HINTS may only hold {list(HINTS)}.", id="passkeys.E007"))
    return messages


@register(Tags.security)
def check_required_attestation(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """With ``PASSKEYS_REQUIRE_ATTESTATION``, trust anchors exist and attestation is requested."""
    if not conf.PASSKEYS_REQUIRE_ATTESTATION:
        return []
    messages: list[CheckMessage] = []
    # An attestation is only as good as the root it chains to: without roots, py_webauthn skips
    # chain validation, so required attestation refuses every format that has none configured.
    if not any(conf.PASSKEYS_ATTESTATION_ROOT_CERTS.values()):
        messages.append(
            Error(
                "PASSKEYS_REQUIRE_ATTESTATION is True but PASSKEYS_ATTESTATION_ROOT_CERTS lists "
                "no root certificate: only apple and android-key attestation (whose roots "
                "py_webauthn bundles) could register; every security key would be refused.",
                hint="Add the PEM roots of the authenticators you accept, per attestation format.",
                id="passkeys.E016",
            )
        )
    if conf.PASSKEYS_ATTESTATION == "none":
        messages.append(
            Error(
                "PASSKEYS_REQUIRE_ATTESTATION is True but PASSKEYS_ATTESTATION is 'none': "
                "browsers then replace every attestation with 'none', which is refused.",
                hint="Set PASSKEYS_ATTESTATION to 'direct' or 'enterprise'.",
                id="passkeys.E016",
            )
        )
    return messages


@register(Tags.security)
def check_integration(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Session engine, middleware and authentication backend the app relies on."""
    messages: list[CheckMessage] = []
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        messages.append(
            Error(
                "The signed_cookies session engine cannot end sessions server-side, so revoking "
                "a passkey could not sign out the sessions it created.",
                hint="Use the db, cache or cached_db session engine.",
                id="passkeys.E008",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    for name in REQUIRED_MIDDLEWARE:
        if name not in middleware:
            messages.append(Error(f"{name} is missing from MIDDLEWARE.", id="passkeys.E009"))
    if BACKEND not in settings.AUTHENTICATION_BACKENDS:
        messages.append(
            Error(f"{BACKEND!r} is missing from AUTHENTICATION_BACKENDS.", id="passkeys.E010")
        )
    return messages


# -- Where challenges are kept --------------------------------------------------------------------


@register(Tags.security, Tags.caches)
def check_challenge_store(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``PASSKEYS_CHALLENGE_STORE`` is known; a cache store has a cache that keeps what it holds,
    shared by every process (outside ``DEBUG``).

    A challenge kept where nothing is kept (``DummyCache``) is never found again: every
    verification would answer ``challenge_invalid`` and nobody could sign in.
    """
    value = conf.PASSKEYS_CHALLENGE_STORE
    if value not in CHALLENGE_STORES:
        return [
            Error(
                f"PASSKEYS_CHALLENGE_STORE is {value!r}; expected one of {list(CHALLENGE_STORES)}.",
                id="passkeys.E021",
            )
        ]
    if challenge_store() != "cache":
        return []
    alias = settings.SESSION_CACHE_ALIAS
    why = "set to 'cache'" if value == "cache" else "'auto' with cache sessions"
    caches_setting: dict[str, dict[str, Any]] = getattr(settings, "CACHES", {})
    if alias not in caches_setting:
        return [
            Error(
                f"PASSKEYS_CHALLENGE_STORE ({why}) keeps challenges in the cache "
                f"SESSION_CACHE_ALIAS names, {alias!r}, which is not in CACHES.",
                id="passkeys.E021",
            )
        ]
    if caches_setting[alias].get("BACKEND") == _DUMMY_CACHE:
        return [
            Error(
                f"PASSKEYS_CHALLENGE_STORE ({why}) keeps challenges in the cache {alias!r} "
                "(SESSION_CACHE_ALIAS), a DummyCache, which keeps nothing: every verification "
                "would answer challenge_invalid and nobody could sign in with a passkey.",
                hint="Point SESSION_CACHE_ALIAS at a real cache (Redis, Memcached), or set "
                "PASSKEYS_CHALLENGE_STORE = 'database'.",
                id="passkeys.E021",
            )
        ]
    if caches_setting[alias].get("BACKEND") == _LOCMEM_CACHE and not settings.DEBUG:
        return [
            Warning(
                f"PASSKEYS_CHALLENGE_STORE ({why}) keeps challenges in the cache {alias!r} "
                "(SESSION_CACHE_ALIAS), a LocMemCache, which each process keeps for itself: "
                "with several worker processes, a sign-in whose verify reaches another process "
                "than its options answers challenge_invalid.",
                hint="Point SESSION_CACHE_ALIAS at a shared cache (Redis, Memcached), or set "
                "PASSKEYS_CHALLENGE_STORE = 'database'. A single process may ignore this.",
                id="passkeys.W011",
            )
        ]
    return []


# -- A first run that works: the sign-in page, the development server ---------------------------

_QUICKSTART_HINT = (
    'Include django.contrib.auth.urls (path("accounts/", include("django.contrib.auth.urls"))) '
    "and give it a registration/login.html where {% load passkeys %}{% passkey_login %} adds "
    "passkey sign-in next to the password; see the quickstart in the docs."
)


def _view_template(view: Any) -> str | None:
    """The template a class-based view renders, as ``as_view()`` configured it, if it names one."""
    view_class = getattr(view, "view_class", None)
    initkwargs = getattr(view, "view_initkwargs", None) or {}
    name = initkwargs.get("template_name") or getattr(view_class, "template_name", None)
    return name if isinstance(name, str) else None


@register(Tags.urls)
def check_login_page(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``LOGIN_URL`` leads to a page of this project, and that page's template exists.

    The app's pages send signed-out visitors there: to a 404 (Django's default
    ``/accounts/login/`` in a new project) nobody can sign in to add a first passkey.
    """
    from django.shortcuts import resolve_url
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template
    from django.urls import NoReverseMatch, Resolver404, resolve

    login_url = str(settings.LOGIN_URL)
    if urlsplit(login_url).scheme or urlsplit(login_url).netloc:
        return []  # another site's page (single sign-on): nothing here to check
    nowhere = Warning(
        f"LOGIN_URL {login_url!r} leads to no page of this project: the passkey pages send "
        "signed-out visitors there, to a 404, and nobody can sign in to add a first passkey.",
        hint=_QUICKSTART_HINT,
        id="passkeys.W007",
    )
    try:
        match = resolve(urlsplit(resolve_url(login_url)).path)
    except (NoReverseMatch, Resolver404):
        return [nowhere]
    except Exception:  # a URLconf that does not import: Django's own URL checks report it
        return []
    template = _view_template(match.func)
    if template is None:
        return []
    try:
        get_template(template)
    except TemplateDoesNotExist:
        return [
            Warning(
                f"LOGIN_URL {login_url!r} renders the template {template!r}, which no template "
                "directory holds: signing in there is a server error.",
                hint=_QUICKSTART_HINT,
                id="passkeys.W008",
            )
        ]
    except Exception:  # a template that does not compile: the page itself says what is wrong
        return []
    return []


def _runserver_address(argv: Sequence[str]) -> tuple[str, str] | None:
    """The host and port ``runserver`` listens on when this process is ``runserver``."""
    from django.core.management.commands.runserver import Command, naiveip_re

    if "runserver" not in argv:
        return None
    args = list(argv[list(argv).index("runserver") + 1 :])
    addrport = ""
    while args:
        arg = args.pop(0)
        if arg in ("--settings", "--pythonpath", "--verbosity", "-v"):
            args = args[1:]  # the option's value
        elif not arg.startswith("-"):
            addrport = arg
            break
    match = naiveip_re.match(addrport) if addrport else None
    if addrport and match is None:
        return None  # runserver itself refuses it
    host = (match["addr"] if match else None) or Command.default_addr
    port = (match["port"] if match else None) or Command.default_port
    return ("0.0.0.0" if host == "0" else host.strip("[]")), port


@register
def check_development_server(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``runserver`` serves an origin passkeys can work on (only when running ``runserver``).

    ``runserver`` prints ``http://127.0.0.1:8000/`` by default, an address that can be no RP ID:
    a developer who opens it meets ``origin_mismatch`` on every ceremony.
    """
    import sys

    address = _runserver_address(sys.argv)
    if address is None:
        return []
    host, port = address
    try:
        origins = conf.PASSKEYS_ALLOWED_ORIGINS
    except ImproperlyConfigured:
        return []  # passkeys.E020
    if callable(origins) or callable(conf.PASSKEYS_RP_ID):
        return []  # decided per request (passkeys.I001)
    localhost = f"http://localhost:{port}"
    hint = (
        f"Run `manage.py runserver localhost:{port}` and open {localhost}/, with "
        f"PASSKEYS_RP_ID = 'localhost' and PASSKEYS_ALLOWED_ORIGINS = [{localhost!r}]."
    )
    if is_ip_address(host) and ipaddress.ip_address(host).is_loopback:
        return [
            Warning(
                f"runserver serves http://{host}:{port}/, where browsers refuse passkeys: an IP "
                "address cannot be an RP ID.",
                hint=hint,
                id="passkeys.W009",
            )
        ]
    if is_ip_address(host) and ipaddress.ip_address(host).is_unspecified:
        # Every address of the machine: fine when some allowed origin is served on this port.
        served = any(
            urlsplit(o).scheme == "http" and str(urlsplit(o).port) == port for o in origins
        )
    else:
        served = f"http://{host}:{port}" in origins
    if served:
        return []
    return [
        Warning(
            f"runserver serves http://{host}:{port}/, which is not in PASSKEYS_ALLOWED_ORIGINS "
            f"{origins!r}: every passkey ceremony there fails with origin_mismatch.",
            hint=hint,
            id="passkeys.W009",
        )
    ]


# -- Hardening: rate-limit cache, limits, proxies, cookies ---------------------------------------

#: Cache backends whose counters are not shared between worker processes.
_UNSHARED_CACHES = (_LOCMEM_CACHE, _DUMMY_CACHE)
_RATE = re.compile(r"^\d+/\d*[smhd]$")


@register(Tags.security, Tags.caches)
def check_rate_limits(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Rate-limit cache shared across processes; rates, proxies and the failure cap valid."""
    messages: list[CheckMessage] = []
    alias = conf.PASSKEYS_RATELIMIT_CACHE
    caches_setting: dict[str, dict[str, Any]] = getattr(settings, "CACHES", {})
    if alias not in caches_setting:
        messages.append(
            Error(f"PASSKEYS_RATELIMIT_CACHE {alias!r} is not in CACHES.", id="passkeys.E011")
        )
    elif caches_setting[alias].get("BACKEND") in _UNSHARED_CACHES and not settings.DEBUG:
        messages.append(
            Warning(
                f"The rate-limit cache {alias!r} is not shared across processes, so each worker "
                "counts on its own and the limits multiply by the number of workers (DummyCache "
                "counts nothing).",
                hint="Use Redis or Memcached (RATELIMIT_USE_CACHE / PASSKEYS_RATELIMIT_CACHE).",
                id="passkeys.W001",
            )
        )
    if alias != getattr(settings, "RATELIMIT_USE_CACHE", "default"):
        messages.append(
            Error(
                "PASSKEYS_RATELIMIT_CACHE and django-ratelimit's RATELIMIT_USE_CACHE differ; the "
                "windows are counted in the latter.",
                hint="Set both to the same cache alias.",
                id="passkeys.E012",
            )
        )
    for endpoint, limits in conf.PASSKEYS_RATE_LIMITS.items():
        for scope, rate in limits.items():
            if scope not in ("ip", "account") or (rate is not None and not _RATE.match(rate)):
                messages.append(
                    Error(
                        f"PASSKEYS_RATE_LIMITS[{endpoint!r}][{scope!r}] = {rate!r}: expected "
                        "'ip' or 'account' mapped to a rate like '10/m' or None.",
                        id="passkeys.E013",
                    )
                )
    if not 1 <= conf.PASSKEYS_MAX_FAILED_ATTEMPTS <= 100:
        messages.append(
            Error(
                "PASSKEYS_MAX_FAILED_ATTEMPTS must be between 1 and 100 "
                "(NIST SP 800-63B-4 §3.2.2).",
                id="passkeys.E014",
            )
        )
    for proxy in conf.PASSKEYS_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            messages.append(
                Error(
                    f"{proxy!r} in PASSKEYS_TRUSTED_PROXIES is not an address or network.",
                    id="passkeys.E015",
                )
            )
    return messages


@register(Tags.security, deploy=True)
def check_cookie_transport(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Session and CSRF cookies only over https, session cookie out of JavaScript's reach."""
    messages: list[CheckMessage] = []
    if not settings.SESSION_COOKIE_SECURE:
        messages.append(
            Warning(
                "SESSION_COOKIE_SECURE is False: a passkey sign-in's session cookie can leak "
                "over plain http.",
                id="passkeys.W002",
            )
        )
    if not settings.CSRF_COOKIE_SECURE:
        messages.append(
            Warning(
                "CSRF_COOKIE_SECURE is False: the CSRF cookie guarding the ceremony endpoints "
                "can leak over plain http.",
                id="passkeys.W003",
            )
        )
    if not settings.SESSION_COOKIE_HTTPONLY:
        messages.append(
            Warning(
                "SESSION_COOKIE_HTTPONLY is False: script injected into any page can read the "
                "session cookie of a passkey sign-in.",
                id="passkeys.W004",
            )
        )
    return messages


@register(Tags.security)
def check_cookie_samesite(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The session cookie keeps a SameSite attribute (cross-site requests do not carry it)."""
    if settings.SESSION_COOKIE_SAMESITE in (None, False, "None"):
        return [
            Warning(
                "SESSION_COOKIE_SAMESITE is None: the session cookie rides on cross-site requests.",
                hint="Use 'Lax' (Django's default) or 'Strict'.",
                id="passkeys.W005",
            )
        ]
    return []


# -- Revocation reaches every session; clients without an address --------------------------------

REVOCATION_MIDDLEWARE = "django_passkeys.middleware.RevokedCredentialMiddleware"
AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _middleware_position(middleware: Sequence[str], path: str) -> int | None:
    """Index of the first entry that is ``path`` or a subclass of it (as Django's admin checks)."""
    target = import_string(path)
    for index, entry in enumerate(middleware):
        if entry == path:
            return index
        try:
            candidate = import_string(entry)
        except ImportError:
            continue  # Django reports a middleware that cannot be imported itself
        if isinstance(candidate, type) and issubclass(candidate, target):
            return index
    return None


@register(Tags.security)
def check_revocation_middleware(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``RevokedCredentialMiddleware`` is installed after ``AuthenticationMiddleware``."""
    middleware = list(getattr(settings, "MIDDLEWARE", []) or [])
    position = _middleware_position(middleware, REVOCATION_MIDDLEWARE)
    if position is None:
        return [
            Error(
                f"{REVOCATION_MIDDLEWARE} is missing from MIDDLEWARE: a passkey revoked with "
                "QuerySet.update(), or whose session key rotated after sign-in (a password "
                "change), would not end the sessions it established.",
                hint="Add it to MIDDLEWARE right after AuthenticationMiddleware.",
                id="passkeys.E017",
            )
        ]
    authentication = _middleware_position(middleware, AUTHENTICATION_MIDDLEWARE)
    if authentication is not None and position < authentication:
        return [
            Error(
                f"{REVOCATION_MIDDLEWARE} comes before AuthenticationMiddleware in MIDDLEWARE: "
                "the session it signs out would still reach the view with its user.",
                hint="Move it after AuthenticationMiddleware.",
                id="passkeys.E017",
            )
        ]
    return []


def missing_address_key() -> str:
    """Key, in the rate-limit cache, of the time a request last arrived without an address.

    Written by :mod:`django_passkeys.ratelimits` (at most once an hour per process) and read by
    :func:`check_client_addresses`: whether ``REMOTE_ADDR`` is empty is only known at run time.
    """
    return f"{getattr(settings, 'RATELIMIT_CACHE_PREFIX', 'rl:')}passkeys:missing-client-address"


@register(Tags.security, deploy=True)
def check_client_addresses(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """No request reached the rate limits without a client address in the last week."""
    from django.core.cache import caches

    try:
        seen = caches[conf.PASSKEYS_RATELIMIT_CACHE].get(missing_address_key())
    except Exception:  # an unknown alias is E011; an unreachable cache tells nothing either way
        return []
    if not isinstance(seen, int):
        return []
    when = datetime.fromtimestamp(seen, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        Warning(
            f"Requests without a client address (REMOTE_ADDR empty or invalid) reached the passkey "
            f"endpoints, last at {when}: their per-IP rate limits fall back to one window per "
            "session, which a client escapes by starting a new session.",
            hint=(
                "Give Django the client's address: let the proxy reach Django over TCP and list it "
                "in PASSKEYS_TRUSTED_PROXIES (it appends X-Forwarded-For), or have the application "
                "server set REMOTE_ADDR from the proxy's header."
            ),
            id="passkeys.W006",
        )
    ]


@register(Tags.security)
def check_rollout(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """``PASSKEYS_ROLLOUT`` and ``PASSKEYS_PASSKEY_ONLY`` are well-formed; a waffle flag needs
    django-waffle. A broken value offers passkeys to nobody (and requires nothing) until fixed."""
    from .passkey_only import policy_errors
    from .rollout import rollout_errors, waffle_available

    messages: list[CheckMessage] = []
    value = conf.PASSKEYS_ROLLOUT
    errors = rollout_errors(value)
    if not errors and isinstance(value, dict) and "waffle_flag" in value and not waffle_available():
        errors.append(
            "PASSKEYS_ROLLOUT names a waffle flag, but django-waffle is not installed "
            "(pip install django-waffle, and add 'waffle' to INSTALLED_APPS)."
        )
    messages.extend(Error(error, id="passkeys.E018") for error in errors)
    messages.extend(
        Error(error, id="passkeys.E019") for error in policy_errors(conf.PASSKEYS_PASSKEY_ONLY)
    )
    return messages
