# Caboose — the two commands a newcomer needs:
#   make up     install what the platform needs into the repo (.venv, node_modules) and start it
#   make test   install what the tests need and run them all (lint, types, dashboard, SQLite,
#               PostgreSQL, end to end in a real browser)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
UV          := $(VENV)/bin/uv
UV_VERSION  := 0.13.9
PYTHON      ?= python3

.PHONY: help install install-dev up api migrate dashboard openapi client test test-fast lint format typecheck lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The dashboard's packages (Next.js, and the test tools: Vitest, playwright-core).
frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(UV) node_modules/.installed frontend/node_modules/.installed ## Install the platform (Python into .venv, PM2 and the dashboard into node_modules)
	$(UV) sync --frozen --no-dev --inexact --quiet

install-dev: $(UV) node_modules/.installed frontend/node_modules/.installed ## Install the platform and the test/lint tools
	$(UV) sync --frozen --quiet

up: install ## Install and start Caboose on this machine (no configuration needed); prints the dashboard URL
	$(VENV)/bin/caboosed up

dashboard: install ## Build the dashboard now (`caboosed up` builds it itself when its sources changed)
	$(VENV)/bin/caboosed build-dashboard

openapi: install ## Write openapi.json, the API's OpenAPI document (what the dashboard's client comes from)
	$(VENV)/bin/caboosed openapi --output openapi.json

client: openapi ## Regenerate the dashboard's typed API client (frontend/src/client/) after an API change
	cd frontend && npm run generate:client

migrate: install ## Bring the database schema up to date
	$(VENV)/bin/caboosed migrate

test: install-dev ## Lint, type-check and run every test (PostgreSQL too when available)
	scripts/run-tests

test-fast: install-dev ## Unit and API tests on SQLite only (no lint, no end-to-end)
	cd backend && ../$(VENV)/bin/python -m pytest -m "not e2e" -q

lint: install-dev ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev ## Format and autofix the Python code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install-dev ## mypy --strict over the backend and the CLI
	$(VENV)/bin/mypy

lock: $(UV) ## Re-resolve Python dependencies into uv.lock after editing a pyproject.toml
	$(UV) lock

clean: ## Remove the installed environments and the dashboard build (not your data dir)
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache frontend/node_modules frontend/.next openapi.json
