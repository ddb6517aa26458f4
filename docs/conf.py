"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build/html``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Autodoc imports the models, so Django is set up with the test settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

project = "django_passkeys"
author = "django_passkeys contributors"
copyright = "2026, django_passkeys contributors"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build", "generate_tables.py"]
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = "django_passkeys"
html_static_path = ["_static"]
