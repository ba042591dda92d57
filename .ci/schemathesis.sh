#!/usr/bin/env bash
# Fuzzes the running service against its own OpenAPI document with schemathesis: every check
# (schema-valid requests must be accepted, invalid ones refused, responses must match the
# document, created tasks must be reachable through the document's links, auth must be
# enforced) and every phase, stateful included. Any failure fails the run.
#
#   .ci/schemathesis.sh BINARY [sqlite|postgres ...]
#
# BINARY is a built task-api. The service runs in dev mode (it prints a token for the run) on
# free loopback ports, once per backend: a fresh SQLite file, and a fresh database on
# $TEST_POSTGRES_URL's server. SCHEMATHESIS_SEED and SCHEMATHESIS_MAX_EXAMPLES make a run
# reproducible or longer; the defaults keep CI to about a minute per backend.
set -euo pipefail

binary="$1"
shift
backends=("$@")
((${#backends[@]})) || backends=(sqlite postgres)
seed="${SCHEMATHESIS_SEED:-20261203}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
work="$(mktemp -d)"
service_pid=""
database=""

cleanup() {
  if [ -n "$service_pid" ]; then kill "$service_pid" 2>/dev/null || true; wait "$service_pid" 2>/dev/null || true; fi
  if [ -n "$database" ]; then psql -q "$TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Reads one field of the first JSON log line that has it.
log_field() {
  python3 - "$1" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        record = json.loads(line)
    except ValueError:
        continue
    if sys.argv[2] in record:
        print(record[sys.argv[2]])
        break
PY
}

start_service() {
  local url="$1" log="$work/service.log"
  : >"$log"
  DATABASE_URL="$url" TASK_API_DEV_MODE=true TASK_API_LOG_FORMAT=json TASK_API_LOG_LEVEL=warn,task_api=info \
    TASK_API_LISTEN=127.0.0.1:0 TASK_API_ADMIN_LISTEN=127.0.0.1:0 "$binary" >"$log" 2>&1 &
  service_pid=$!
  for _ in $(seq 1 100); do
    public="$(log_field "$log" public)"
    [ -n "$public" ] && break
    kill -0 "$service_pid" 2>/dev/null || { cat "$log" >&2; echo "schemathesis: the service did not start" >&2; return 1; }
    sleep 0.2
  done
  [ -n "$public" ] || { cat "$log" >&2; echo "schemathesis: the service did not report its address" >&2; return 1; }
  token="$(log_field "$log" token)"
  [ -n "$token" ] || { echo "schemathesis: no dev-mode token in the log" >&2; return 1; }
}

stop_service() {
  kill "$service_pid" 2>/dev/null || true
  wait "$service_pid" 2>/dev/null || true
  service_pid=""
}

for backend in "${backends[@]}"; do
  case "$backend" in
    sqlite) url="sqlite://$work/schemathesis.sqlite?mode=rwc" ;;
    postgres)
      : "${TEST_POSTGRES_URL:?TEST_POSTGRES_URL must name a PostgreSQL server}"
      database="schemathesis_$$_$RANDOM"
      psql -q "$TEST_POSTGRES_URL" -c "CREATE DATABASE $database"
      url="${TEST_POSTGRES_URL%/*}/$database"
      ;;
    *) echo "schemathesis: unknown backend $backend" >&2; exit 2 ;;
  esac
  start_service "$url"
  echo "schemathesis: $backend backend, service at $public, seed $seed, $max_examples examples"
  schemathesis run "http://$public/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$max_examples" \
    --seed "$seed" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check too_slow \
    --no-color
  stop_service
  if [ "$backend" = postgres ]; then
    psql -q "$TEST_POSTGRES_URL" -c "DROP DATABASE $database WITH (FORCE)"
    database=""
  fi
done
