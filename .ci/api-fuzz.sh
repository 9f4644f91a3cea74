#!/usr/bin/env bash
# The OpenAPI schema is the contract: schemathesis generates requests from /api/schema/ and checks every answer
# against it, on a live server (gunicorn) over a fresh PostgreSQL database holding the demo estate.
#
#   make api-fuzz        # or: bash .ci/api-fuzz.sh
#
# Environment: FUZZ_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/nhi_api_fuzz; dropped and created anew
# on every run), FUZZ_MAX_EXAMPLES (25 test cases per operation and phase), FUZZ_SEED (fixed, so that a failure
# reproduces; change it to explore), FUZZ_TIME_LIMIT (240 s for both passes together: past it the run is stopped and
# fails), FUZZ_REPORT_DIR (var/api-fuzz: the server's log, JUnit and NDJSON reports).
#
# Two passes, one per kind of caller:
#   1. as `security` (sees and edits everything): every operation;
#   2. as the `gateway` machine account: POST /authorize/ and POST /events/, the endpoints gateways call.
# Every check (`--checks all`) plus the portal's own (.ci/schemathesis_hooks.py); the exceptions, each with its
# reason, are the allow-list in .ci/schemathesis.toml. Any failure (a server error, an answer or status code the
# schema does not document, valid input refused, invalid input accepted, ...) fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=$VENV/bin/python
DB_URL=${FUZZ_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nhi_api_fuzz}
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-25}
SEED=${FUZZ_SEED:-20261129}
TIME_LIMIT=${FUZZ_TIME_LIMIT:-240}
REPORT_DIR=${FUZZ_REPORT_DIR:-var/api-fuzz}
CONFIG=.ci/schemathesis.toml
export SCHEMATHESIS_HOOKS=.ci/schemathesis_hooks.py

log() { printf '\n== %s\n' "$*"; }

mkdir -p "$REPORT_DIR"
# Demo mode, DEBUG off, an in-memory broker (a queued scan is accepted and never run), no rate limits: a 429 is
# documented, but one that depended on how fast this machine is would make the run flaky.
export DJANGO_SETTINGS_MODULE=nhi_portal.settings.test
export DATABASE_URL=$DB_URL
export CELERY_BROKER_URL=memory://
export AUDIT_ANCHOR_PATH=$REPORT_DIR/audit-anchor.jsonl

log "fresh database ${DB_URL##*/}: migrations, demo estate, a first scan, tokens"
"$PY" - "$DB_URL" <<'EOF'
import sys
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

url = urlsplit(sys.argv[1])
name = url.path.lstrip("/")
with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
EOF
rm -f "$AUDIT_ANCHOR_PATH"
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py seed_demo --quiet-logins
"$PY" manage.py scan >/dev/null
# Real objects for the workflow actions, which random ids would only ever find missing (see schemathesis.toml), and
# a gateway token issued only to be revoked: never one of the tokens the passes run with. Its text is not kept.
read -r FUZZ_REQUEST_ID FUZZ_FINDING_ID FUZZ_GRANT_ID FUZZ_TOKEN_ID < <("$PY" manage.py shell -v 0 -c "
from django.contrib.auth import get_user_model
from approvals.models import AccessRequest
from inventory.models import Finding, ScopeGrant
from operations.tokens import public_id, token_issue
disposable, _text = token_issue(actor=get_user_model().objects.get(username='security'), username='gateway', days=1,
                                via='cli')
print(AccessRequest.objects.filter(status='pending').order_by('pk').first().pk,
      Finding.objects.filter(status='open').order_by('pk').first().pk,
      ScopeGrant.objects.filter(status='active').order_by('pk').first().pk,
      public_id(disposable))" 2>/dev/null)
export FUZZ_REQUEST_ID FUZZ_FINDING_ID FUZZ_GRANT_ID FUZZ_TOKEN_ID
SECURITY_TOKEN=$("$PY" manage.py issue_token security --days 1 2>/dev/null)
GATEWAY_TOKEN=$("$PY" manage.py issue_token gateway --days 1 2>/dev/null)

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SCHEMA=http://127.0.0.1:$PORT/api/schema/
log "gunicorn on 127.0.0.1:$PORT (log: $REPORT_DIR/gunicorn.log)"
"$VENV/bin/gunicorn" nhi_portal.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 --timeout 60 \
  --log-level warning >"$REPORT_DIR/gunicorn.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
"$PY" - "$SCHEMA" "$SERVER" <<'EOF'
import os
import sys
import time
import urllib.request

for _ in range(120):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=5).read()
        sys.exit(0)
    except OSError:
        os.kill(int(sys.argv[2]), 0)  # gunicorn gone: stop waiting
        time.sleep(0.5)
sys.exit("gunicorn did not serve the schema within 60 s")
EOF

# One worker: a run that repeats with its seed (two threads interleave differently each time), and CPython 3.11.7's
# ast.parse is not thread-safe under Hypothesis's lambda descriptions ("AST constructor recursion depth mismatch").
# Health checks are about Hypothesis's own generation speed on patterns such as the justification's, not the API.
COMMON=(--checks all --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 --no-color
        --generation-database none --request-timeout 30 --suppress-health-check all)
START=$(date +%s)
status=0

fuzz() {  # NAME TOKEN [schemathesis options...]
  local name=$1 token=$2 left=$((TIME_LIMIT - ($(date +%s) - START)))
  shift 2
  log "schemathesis as $name"
  timeout --signal=INT "$((left > 1 ? left : 1))" "$VENV/bin/schemathesis" --config-file "$CONFIG" run "$SCHEMA" \
    "${COMMON[@]}" -H "Authorization: Token $token" "$@" --report junit,ndjson \
    --report-junit-path "$REPORT_DIR/$name.xml" --report-ndjson-path "$REPORT_DIR/$name.ndjson" \
    | tee "$REPORT_DIR/$name.log"
}

fuzz security "$SECURITY_TOKEN" || status=$?
fuzz gateway "$GATEWAY_TOKEN" --include-path /api/v1/authorize/ --include-path /api/v1/events/ \
  || status=$((status ? status : $?))

log "api-fuzz: $(($(date +%s) - START)) s of schemathesis (limit $TIME_LIMIT s), seed $SEED"
for name in security gateway; do
  printf '%-9s %s; %s\n' "$name" "$(grep -m1 -o 'Tested: [0-9]*' "$REPORT_DIR/$name.log" || echo 'Tested: ?')" \
    "$(grep -m1 -oE '[0-9]+ generated.*' "$REPORT_DIR/$name.log" || echo 'no summary: stopped?')"
done
if [ "$status" -eq 124 ]; then
  echo "stopped at the time limit: a run that long fails" >&2
fi
exit "$status"
