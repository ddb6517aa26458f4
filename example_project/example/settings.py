"""Settings of the example project: a local demo on http://localhost:8000, never production.

Environment variables let the test suite run it on another port with throw-away state:
``EXAMPLE_ORIGIN`` (default ``http://localhost:8000``), ``EXAMPLE_DB_PATH`` (default
``example_project/db.sqlite3``) and ``EXAMPLE_CACHE_DIR`` (default ``example_project/.cache``).
"""

from __future__ import annotations

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-project-not-secret"  # a local demo; never deploy these settings
DEBUG = True
# localhost only: browsers offer WebAuthn over plain http on localhost and nowhere else.
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_passkeys",
    "example",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Right after a password sign-in, the passkey upgrade (docs/rollout.rst).
    "django_passkeys.upgrade.UpgradeMiddleware",
    # Revoking a passkey signs out its sessions whatever happened to them (passkeys.E017).
    "django_passkeys.middleware.RevokedCredentialMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The password backend stays: passkeys are added next to the existing sign-in, not instead.
# Its guarded form refuses the password of accounts that turned password sign-in off.
AUTHENTICATION_BACKENDS = [
    "django_passkeys.backends.PasskeyOnlyModelBackend",
    "django_passkeys.backends.PasskeyBackend",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB_PATH") or BASE_DIR / "db.sqlite3",
    }
}

# Rate-limit counters must be shared by every process serving the site; a file cache is, on
# one machine (the local-memory cache is not).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.environ.get("EXAMPLE_CACHE_DIR") or BASE_DIR / ".cache",
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# Password-reset and notification e-mails are printed where runserver runs. Django 6.1 names
# its mailers in MAILERS and deprecates EMAIL_BACKEND (setting both is an error there).
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
LOGOUT_REDIRECT_URL = "/"

# The WebAuthn Relying Party. The RP ID is "localhost", so the page must be opened as
# http://localhost:8000 (http://127.0.0.1:8000 is another origin; passkeys.E003 would say so).
EXAMPLE_ORIGIN = os.environ.get("EXAMPLE_ORIGIN", "http://localhost:8000")
PASSKEYS_RP_ID = "localhost"
PASSKEYS_RP_NAME = "django_passkeys example"
PASSKEYS_ALLOWED_ORIGINS = [EXAMPLE_ORIGIN]
# Links in e-mails (account recovery, notices) are built from this, never from the Host header;
# with the console e-mail backend above, the recovery link is printed where runserver runs.
PASSKEYS_BASE_URL = EXAMPLE_ORIGIN

# The move off passwords (docs/rollout.rst). Who is offered passkeys: "off", a cohort such as
# {"users": ["demo"]} or {"staff": True, "percentage": 10}, or everyone. Users may turn their
# password sign-in off once they have a passkey and recovery codes or an authenticator app.
PASSKEYS_ROLLOUT = "all"
PASSKEYS_PASSKEY_ONLY = "optional"
