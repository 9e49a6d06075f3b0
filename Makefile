# Nextstep: `make run` to try it, `make test` to test it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The settings read them too: without SITE_URL, links in emails point at http://HOST:PORT.
export HOST PORT

.PHONY: run test test-fast lint check-deploy install install-dev web worker migrate seed clean bench

# Local mode: DEBUG on, SQLite, the ORM broker, emails printed to the console.
run: export DEBUG = 1
run: export POSTAL_ADDRESS ?= Nextstep Demo GmbH, Beispielstrasse 1, 10115 Berlin, Germany
run: install migrate
	@$(PY) manage.py seed_demo
	@$(PY) manage.py setup_schedules
	@$(PY) manage.py ensure_local_admin
	@echo "Nextstep: http://$(HOST):$(PORT)/admin/  (web server and worker; Ctrl-C stops both)"
	@$(PY) manage.py qcluster & worker=$$!; \
	 trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	 $(PY) manage.py runserver $(HOST):$(PORT)

# pytest exits 5 when it collected no test: that is a broken suite, not a pass.
test: install-dev
	@$(VENV)/bin/pytest $(PYTEST_ARGS); status=$$?; \
	 if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	 exit $$status

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory check-deploy

# `check --deploy` with the environment production would have.
check-deploy:
	DEBUG=0 SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	ALLOWED_HOSTS=crm.example.com SITE_URL=https://crm.example.com SECURE_HSTS_PRELOAD=1 \
	ANYMAIL_WEBHOOK_SECRET=user:pass POSTAL_ADDRESS="Example Ltd, 1 Street, City" \
	$(PY) manage.py check --deploy --fail-level WARNING

# Performance: its own data set in a separate database (docs/performance.md).
# `make bench SCALE=100k`, with DATABASE_URL / REDIS_URL as for the app.
SCALE ?= quick
bench: export DEBUG ?= 1
bench: install-dev
	@mkdir -p .local
	$(PY) manage.py bench --scale $(SCALE) --json .local/bench-$(SCALE).json --chart .local/bench-$(SCALE).png

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(VENV)/.installed $@

migrate: export DEBUG ?= 1
migrate: install
	@$(PY) manage.py migrate --noinput

web: install
	$(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	$(PY) manage.py qcluster

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm .local staticfiles
