#!/usr/bin/env bash
# The Task API's user-space instructions per request, counted by callgrind: a figure that does
# not vary with the machine's load, for comparing builds of the service (docs/performance.md,
# "Instructions per request"). Throughput is task-bench's job; this tells changes of a few
# per cent apart where throughput on a shared 2-core machine cannot.
#
# usage: instructions-per-request.sh TASK_API_BINARY [get|put|post] [REQUESTS]
#   Environment: POSTGRES_URL (default postgres://postgres@127.0.0.1:5432), and any
#   TASK_API_* variable, passed to the replica (e.g. TASK_API_LOG_FORMAT=json, the default here).
# Needs valgrind, curl, psql and python3. The replica runs in dev mode on a fresh database,
# one task is created, 200 requests warm up, the counters are zeroed, REQUESTS sequential
# keep-alive requests are counted.
set -euo pipefail
binary=$(realpath "$1"); workload=${2:-get}; requests=${3:-1000}
postgres=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
database=task_instructions_$$
work=$(mktemp -d)
replica=
cleanup() {
  [ -n "$replica" ] && kill "$replica" 2>/dev/null && wait "$replica" 2>/dev/null
  psql -q "$postgres/postgres" -c "drop database if exists $database" || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q "$postgres/postgres" -c "create database $database"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
public=127.0.0.1:$(port); admin=127.0.0.1:$(port)
TASK_API_LOG_FORMAT=${TASK_API_LOG_FORMAT:-json} DATABASE_URL="$postgres/$database" \
  TASK_API_DEV_MODE=true TASK_API_LISTEN=$public TASK_API_ADMIN_LISTEN=$admin \
  valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$work/callgrind.out" \
  "$binary" > "$work/replica.log" 2>&1 &
replica=$!
for _ in $(seq 1 240); do curl -sf "http://$admin/readyz" > /dev/null && break; sleep 0.5; done
curl -sf "http://$admin/readyz" > /dev/null || { cat "$work/replica.log" >&2; exit 1; }
token=$(grep -o 'eyJ[A-Za-z0-9_.-]*' "$work/replica.log" | head -1)
python3 - "$public" "$token" "$workload" "$requests" <<'PY'
import datetime, http.client, json, subprocess, sys
address, token, workload, requests = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = address.rsplit(":", 1)
connection = http.client.HTTPConnection(host, int(port))
headers = {"Authorization": "Bearer " + token, "content-type": "application/json"}
create = json.dumps({"title": "t", "content": "c", "due_date": "2026-12-01",
                     "request_timestamp": "2026-11-23T10:00:00Z"})
def call(method, path, body=None):
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    payload = response.read()
    if response.status not in (200, 201):
        sys.exit(f"{method} {path}: {response.status} {payload!r}")
    return payload
task = json.loads(call("POST", "/tasks", create))["id"]
sent = 0
def run(count):
    global sent
    for _ in range(count):
        sent += 1
        if workload == "get":
            call("GET", f"/tasks/{task}")
        elif workload == "put":
            at = datetime.datetime(2026, 11, 24) + datetime.timedelta(milliseconds=sent)
            call("PUT", f"/tasks/{task}", json.dumps(
                {"title": f"t{sent}", "request_timestamp": at.isoformat() + "Z"}))
        elif workload == "post":
            call("POST", "/tasks", create)
        else:
            sys.exit(f"unknown workload {workload}")
run(200)
subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
run(requests)
subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
PY
dump="$work/callgrind.out.1"  # the dump callgrind_control -d wrote
total=$(callgrind_annotate "$dump" | grep -m1 'PROGRAM TOTALS' | awk '{gsub(",", "", $1); print $1}')
echo "$workload: $((total / requests)) instructions per request ($requests requests, $binary)"
