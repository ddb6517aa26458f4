"""The models and the migrations agree (no change left without a migration)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "django_passkeys", "--check", "--dry-run", stdout=out)
    except SystemExit:  # pragma: no cover - only when a migration is missing
        pytest.fail(f"Missing migrations:\n{out.getvalue()}")
