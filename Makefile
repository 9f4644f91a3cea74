# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock
UV     := $(VENV)/bin/uv
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lock lint format check-deploy api-fuzz bench bench-authorize clean

# Everything comes from the lock, hash-checked: pip itself, setuptools, the dependencies and the dev extra. The project
# then installs without dependencies or build isolation (that would fetch an unpinned setuptools); `pip check` fails
# when the lock no longer satisfies pyproject.toml (run `make lock`).
$(STAMP): $(LOCK) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

## lock: re-resolve requirements.lock from pyproject.toml (dependencies, the dev extra, the bootstrap group) with uv,
## for CPython 3.11 on x86_64 Linux. Pins already in the lock are kept; LOCK_ARGS=--upgrade moves everything to the
## newest releases the ranges allow, LOCK_ARGS='--upgrade-package django' only that package.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --group bootstrap --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --custom-compile-command 'make lock' --output-file $(LOCK) $(LOCK_ARGS) >/dev/null

$(UV): requirements-uv.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-uv.txt
	touch $(UV)

## run: venv, install, migrate, demo data and a first scan, web + Celery worker + beat (SQLite, filesystem broker). Ctrl-C stops all.
run: $(STAMP)
	mkdir -p var/broker/queue var/broker/processed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py scan
	@echo ""
	@echo "  NHI Portal is starting at http://$(HOST):$(PORT)/"
	@echo ""
	@VENV=$(VENV) HOST=$(HOST) PORT=$(PORT) exec bin/run-dev

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

## api-fuzz: schemathesis against gunicorn on a fresh PostgreSQL database with the demo data (.ci/api-fuzz.sh).
api-fuzz: $(STAMP)
	VENV=$(VENV) bash .ci/api-fuzz.sh

## bench: seed the scale data on PostgreSQL and time the list/detail pages and the identities API.
bench: $(STAMP)
	$(PY) bench/pages.py

## bench-authorize: gunicorn + wrk against /api/v1/authorize/ and a trivial endpoint, 30 s each.
bench-authorize: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/authorize.py

clean:
	rm -rf var $(VENV)
