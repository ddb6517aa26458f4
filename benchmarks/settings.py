"""Settings of ``ceremonies.py``'s worker processes: one app per process (``BENCH_APP``).

Each app is measured in a process of its own, configured as its documentation asks, so that
nothing of one (signal receivers, middleware) runs in another's requests: ``passkeys`` is this
app with the test suite's settings; ``floor`` is py_webauthn behind two bare Django views
(:mod:`benchmarks.floor`); ``otp_webauthn`` is django-otp-webauthn. The database and the cache
are the test suite's: SQLite and the local-memory cache, or ``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import os
import uuid

from tests.settings import *  # noqa: F403
from tests.settings import CACHES, DATABASES, INSTALLED_APPS, MIDDLEWARE

BENCH_APP = os.environ.get("BENCH_APP", "passkeys")
ROOT_URLCONF = "benchmarks.urls"

_CONTRIB = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tests.testapp",  # the same user model (UUID primary key) for every app
]
#: Django's default middleware: all the floor needs.
_DJANGO_MIDDLEWARE = [
    entry for entry in MIDDLEWARE if not entry.startswith(("django_passkeys.", "django_otp."))
]

if BENCH_APP == "floor":
    INSTALLED_APPS = [*_CONTRIB, "benchmarks.floor"]
    MIDDLEWARE = _DJANGO_MIDDLEWARE
    AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
elif BENCH_APP == "otp_webauthn":
    INSTALLED_APPS = [*_CONTRIB, "django_otp", "django_otp_webauthn"]
    _auth = _DJANGO_MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    # django-otp-webauthn's documentation: OTPMiddleware right after AuthenticationMiddleware.
    MIDDLEWARE = [
        *_DJANGO_MIDDLEWARE[: _auth + 1],
        "django_otp.middleware.OTPMiddleware",
        *_DJANGO_MIDDLEWARE[_auth + 1 :],
    ]
    AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "django_otp_webauthn.backends.WebAuthnBackend",
    ]
    OTP_WEBAUTHN_RP_ID = "testserver"
    OTP_WEBAUTHN_RP_NAME = "Test site"
    OTP_WEBAUTHN_ALLOWED_ORIGINS = ["https://testserver"]
elif BENCH_APP != "passkeys":
    raise ValueError(f"unknown BENCH_APP {BENCH_APP!r}")

# A run leaves nothing behind in a shared Redis: its own key prefix, and short-lived sessions.
_RUN = uuid.uuid4().hex[:12]
CACHES = {name: {**cache, "KEY_PREFIX": f"bench-{_RUN}"} for name, cache in CACHES.items()}
RATELIMIT_CACHE_PREFIX = f"rl:bench-{_RUN}:"
SESSION_COOKIE_AGE = 600
# On PostgreSQL each worker creates, and drops at the end, a test database of its own. SQLite
# keeps the test suite's in-memory database: a test NAME would make it a file on disk, whose
# commits would measure the disk.
if "sqlite" not in DATABASES["default"]["ENGINE"]:
    DATABASES = {
        "default": {
            **DATABASES["default"],
            "TEST": {"NAME": f"test_bench_{BENCH_APP}_{os.getpid()}"},
        }
    }
