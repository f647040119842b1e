#!/usr/bin/env bash
# deploy/quickstart.sh on ports and a data folder of its own: `start` (no
# apt, no build, no demo), then `status` and `stop` without the port
# variables, which must use the ports the services were started on.
#
# Needs the four service binaries built in QUICKSTART_BUILD_DIR (ctest passes
# the build tree; default <repo>/build). Starts its own MariaDB in a temporary
# folder, so it needs no test database and never touches <repo>/.data.
set -euo pipefail

REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
QUICKSTART="$REPO_ROOT/deploy/quickstart.sh"
export QUICKSTART_BUILD_DIR="${QUICKSTART_BUILD_DIR:-$REPO_ROOT/build}"
PYTHON=/usr/bin/python3

failures=0
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}

# A short path: the database's unix socket must fit in 107 bytes.
WORK="$(mktemp -d /tmp/qs-test.XXXXXX)"
export QUICKSTART_DATA_DIR="$WORK/data"
export QUICKSTART_SKIP_DEPS=1 QUICKSTART_SKIP_BUILD=1 QUICKSTART_SKIP_DEMO=1
export QUICKSTART_HEALTH_TIMEOUT=120

# Five ports: four services and the database. QUICKSTART_TEST_PORTS pins
# them ("M L S C DB"); by default, ports that were free a moment ago.
if [[ -n "${QUICKSTART_TEST_PORTS:-}" ]]; then
  read -r -a PORTS <<<"$QUICKSTART_TEST_PORTS"
else
  read -r -a PORTS < <("$PYTHON" -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')
fi
((${#PORTS[@]} == 5)) || { echo "QUICKSTART_TEST_PORTS needs 5 ports" >&2; exit 2; }
SERVICES=(membership ledger settlement catalog)
declare -A PORT=([membership]="${PORTS[0]}" [ledger]="${PORTS[1]}" [settlement]="${PORTS[2]}" [catalog]="${PORTS[3]}")
DB_PORT="${PORTS[4]}"

cleanup() {
  # Whatever happened, nothing started here keeps running.
  env -u QUICKSTART_MEMBERSHIP_PORT -u QUICKSTART_LEDGER_PORT -u QUICKSTART_SETTLEMENT_PORT \
    -u QUICKSTART_CATALOG_PORT "$QUICKSTART" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== start on ports ${PORT[*]} (database $DB_PORT), data in $QUICKSTART_DATA_DIR"
if ! QUICKSTART_MEMBERSHIP_PORT="${PORT[membership]}" QUICKSTART_LEDGER_PORT="${PORT[ledger]}" \
  QUICKSTART_SETTLEMENT_PORT="${PORT[settlement]}" QUICKSTART_CATALOG_PORT="${PORT[catalog]}" \
  DEV_DB_PORT="$DB_PORT" "$QUICKSTART" start >"$WORK/start.out" 2>&1; then
  cat "$WORK/start.out"
  fail "quickstart start failed"
  exit 1
fi
cat "$WORK/start.out"
for name in "${SERVICES[@]}"; do
  grep -qE "^    $name +127\.0\.0\.1:${PORT[$name]} +pid [0-9]+ " "$WORK/start.out" ||
    fail "start does not list $name on port ${PORT[$name]}"
  [[ "$(cat "$QUICKSTART_DATA_DIR/run/$name.addr" 2>/dev/null)" == "127.0.0.1:${PORT[$name]}" ]] ||
    fail "run/$name.addr does not hold 127.0.0.1:${PORT[$name]}"
  # The logs, and so the state, are in the data folder given, not <repo>/.data.
  grep -q "quickstart.sh: $name starting (pid [0-9]*, log $QUICKSTART_DATA_DIR/logs/$name.log)" "$WORK/start.out" ||
    fail "$name does not log to $QUICKSTART_DATA_DIR/logs"
done
grep -qE "^    mariadb +127\.0\.0\.1:$DB_PORT +socket $QUICKSTART_DATA_DIR/mariadb/mysqld\.sock " "$WORK/start.out" ||
  fail "the database does not run in $QUICKSTART_DATA_DIR/mariadb on port $DB_PORT"

# status and stop run without the port variables, as from another terminal.
unset DEV_DB_PORT

echo "== status"
rc=0
"$QUICKSTART" status >"$WORK/status.out" 2>&1 || rc=$?
cat "$WORK/status.out"
((rc == 0)) || fail "status exited $rc, not 0"
for name in "${SERVICES[@]}"; do
  grep -qE "^quickstart\.sh: $name: SERVING on 127\.0\.0\.1:${PORT[$name]} \(pid [0-9]+\)$" "$WORK/status.out" ||
    fail "status does not report $name SERVING on port ${PORT[$name]}"
done
grep -q "^dev-db.sh: running (pid [0-9]*), answering$" "$WORK/status.out" || fail "status does not report the database"
grep -q "port: $DB_PORT " "$WORK/status.out" || fail "status does not name the database port $DB_PORT"

# A second start finds everything running where it is.
echo "== start again"
rc=0
"$QUICKSTART" start >"$WORK/again.out" 2>&1 || rc=$?
cat "$WORK/again.out"
((rc == 0)) || fail "a second start exited $rc"
for name in "${SERVICES[@]}"; do
  grep -q "$name already running (pid [0-9]*) on 127.0.0.1:${PORT[$name]}$" "$WORK/again.out" ||
    fail "a second start does not find $name running on port ${PORT[$name]}"
done

pids=()
for name in "${SERVICES[@]}"; do pids+=("$(cat "$QUICKSTART_DATA_DIR/run/$name.pid")"); done
pids+=("$(cat "$QUICKSTART_DATA_DIR/mariadb/mysqld.pid")")

echo "== stop"
rc=0
"$QUICKSTART" stop >"$WORK/stop.out" 2>&1 || rc=$?
cat "$WORK/stop.out"
((rc == 0)) || fail "stop exited $rc"
for pid in "${pids[@]}"; do
  if [[ -d "/proc/$pid" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
    fail "pid $pid still runs after stop"
  fi
done
for name in "${SERVICES[@]}"; do
  if "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
    "${PORT[$name]}" 2>/dev/null; then
    fail "port ${PORT[$name]} ($name) still answers after stop"
  fi
done

echo "== status after stop"
rc=0
"$QUICKSTART" status >"$WORK/stopped.out" 2>&1 || rc=$?
cat "$WORK/stopped.out"
((rc == 3)) || fail "status after stop exited $rc, not 3"
for name in "${SERVICES[@]}"; do
  grep -q "^quickstart.sh: $name: not running$" "$WORK/stopped.out" || fail "status after stop: $name"
done

if ((failures > 0)); then
  printf '%d check(s) failed\n' "$failures" >&2
  exit 1
fi
echo "PASS"
