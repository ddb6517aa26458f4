# The two commands of the README: `make demo` and `make test`.
# Both create .venv on first use and reinstall only when pyproject.toml changes.

# python3.11 when it runs (a pyenv shim may exist without the version), else python3.
PYTHON ?= $(shell python3.11 -c '' >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV ?= .venv
# An extra requirement for the dev install, e.g. DJANGO="django>=6.1,<6.2" (CI's matrix legs).
DJANGO ?=
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test docs install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(if $(DJANGO),"$(DJANGO)")
	touch $@

# axe-core, for the e2e accessibility checks (when npm is there; without it those tests skip).
NPM := $(shell command -v npm 2>/dev/null)
node_modules/.package-lock.json: package-lock.json
	$(if $(NPM),npm ci --no-audit --no-fund --silent,@echo "npm not found: e2e accessibility checks will skip")

## demo: the example project on http://localhost:8000 (demo / demo-passkeys-2026)
demo: $(VENV)/.installed-base
	cd example_project && ../$(BIN)/python manage.py migrate --noinput \
		&& ../$(BIN)/python manage.py create_demo_user \
		&& ../$(BIN)/python manage.py runserver localhost:8000

## install-dev: the virtualenv with the test, docs and lint tools (used by CI)
install-dev: $(VENV)/.installed-dev

## test: the test suite with branch coverage gated at 95% (extra arguments: PYTEST_ARGS=...)
test: $(VENV)/.installed-dev node_modules/.package-lock.json
	$(BIN)/pytest --cov=django_passkeys --cov-branch --cov-report=term-missing:skip-covered \
		--cov-fail-under=95 $(PYTEST_ARGS)

## docs: the Sphinx documentation, warnings as errors
docs: $(VENV)/.installed-dev
	$(BIN)/sphinx-build -W -b html docs docs/_build/html
