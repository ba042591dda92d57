#!/usr/bin/env bash
# task-bench against a PostgreSQL cluster of its own: `initdb` with default settings (fsync
# on, no TLS) in a temporary directory, served on a free loopback port, stopped and removed
# afterwards. The table then divides by what this database does, not by the machine
# service's configuration. Arguments go to task-bench, e.g.
#   crates/task-bench/scripts/fresh-cluster.sh --no-build --out target/fresh.md
# As root the cluster runs as the `postgres` OS user (initdb refuses root).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
pg_bin=${PG_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)}
[ -x "$pg_bin/initdb" ] || { echo "fresh-cluster.sh: no initdb under ${pg_bin:-/usr/lib/postgresql}" >&2; exit 1; }

directory=$(mktemp -d /tmp/task-bench-pg.XXXXXX)
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres:postgres "$directory"
stop() {
  as_owner "$pg_bin/pg_ctl" stop -w -m fast -D "$directory/data" >/dev/null 2>&1 || true
  rm -rf "$directory"
}
trap stop EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner "$pg_bin/initdb" --auth=trust --username=postgres -D "$directory/data" >/dev/null
as_owner "$pg_bin/pg_ctl" start -w -t 60 -D "$directory/data" -l "$directory/server.log" \
  -o "-p $port -k $directory -c listen_addresses=127.0.0.1" >/dev/null
echo "fresh-cluster.sh: initdb cluster on 127.0.0.1:$port ($("$pg_bin/postgres" --version))" >&2

cd "$root"
# Both together, as task-bench builds the replica: one feature set, nothing rebuilt twice.
cargo build --release --quiet -p task-api -p task-bench
"${CARGO_TARGET_DIR:-$root/target}/release/task-bench" --postgres-url "postgres://postgres@127.0.0.1:$port" "$@"
