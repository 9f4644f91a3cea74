# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint format check-deploy bench bench-authorize clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: venv, install, migrate, demo data and a first scan, web + Celery worker + beat (SQLite, filesystem broker). Ctrl-C stops all.
run: $(STAMP)
	mkdir -p var/broker/queue var/broker/processed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py scan
	@echo ""
	@echo "  NHI Portal is starting at http://$(HOST):$(PORT)/"
	@echo ""
	@trap 'kill 0' INT TERM EXIT; \
	  DJANGO_SETTINGS_MODULE=nhi_portal.settings.dev $(VENV)/bin/celery -A nhi_portal worker --beat --loglevel=INFO --concurrency=2 \
	    --scheduler django_celery_beat.schedulers:DatabaseScheduler --schedule var/celerybeat-schedule & \
	  $(PY) manage.py runserver $(HOST):$(PORT)

## test: the whole suite. PostgreSQL when DATABASE_URL is set, SQLite otherwise.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## check-deploy: Django's deployment checklist under production settings.
check-deploy: $(STAMP)
	DJANGO_SETTINGS_MODULE=nhi_portal.settings.production SECRET_KEY=$$(openssl rand -hex 32) \
	  CREDENTIAL_FINGERPRINT_KEY=$$(openssl rand -hex 32) AUDIT_SEAL_KEY=$$(openssl rand -hex 32) \
	  AUDIT_ANCHOR_PATH=$$(mktemp -u /tmp/nhi-audit-anchor.XXXXXX.jsonl) \
	  ALLOWED_HOSTS=portal.example.com $(PY) manage.py check --deploy --fail-level WARNING

## bench: seed the scale data on PostgreSQL and time the list/detail pages and the identities API.
bench: $(STAMP)
	$(PY) bench/pages.py

## bench-authorize: gunicorn + wrk against /api/v1/authorize/ and a trivial endpoint, 30 s each.
bench-authorize: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/authorize.py

clean:
	rm -rf var $(VENV)
