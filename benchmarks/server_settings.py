"""Settings of the example project as ``throughput.py`` serves it: PostgreSQL, Redis, gunicorn.

The example project's settings, with the database and the cache of the benchmark's own servers
(``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL``), ``DEBUG`` off, persistent database connections
checked before use (as a production site runs), and every server error logged with its
traceback to the error log, where the harness counts them. The load generator's clients bind
to 127.x.y.z source addresses, so ``REMOTE_ADDR`` is a different client address per sign-in.
"""

from __future__ import annotations

import os

import dj_database_url
from example.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
DATABASES = {
    "default": {
        **dj_database_url.parse(os.environ["BENCH_DATABASE_URL"]),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["BENCH_REDIS_URL"],
    }
}
SESSION_ENGINE = os.environ.get("BENCH_SESSION_ENGINE", "django.contrib.sessions.backends.db")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
        "django_passkeys": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
