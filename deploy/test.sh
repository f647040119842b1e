#!/usr/bin/env bash
# Runs the tests: installs dependencies, builds everything, starts a throwaway
# private MariaDB, runs ctest, stops the database, exits with ctest's code.
#
#   deploy/test.sh [CTEST_ARGS...]     e.g. deploy/test.sh -R Ledger
#
# The database lives in build/test-db (wiped at every run) on port
# LOYALTY_TEST_DB_PORT (default 3308) and its own unix socket. The tests get:
#   LOYALTY_TEST_DB_HOST      127.0.0.1
#   LOYALTY_TEST_DB_PORT      the TCP port
#   LOYALTY_TEST_DB_SOCKET    the unix socket
#   LOYALTY_TEST_DB_USER      loyalty (ALL on databases named `loyalty%`)
#   LOYALTY_TEST_DB_PASSWORD  its password (default loyalty-test)
#   LOYALTY_TEST_DB_DIR       the server's folder
#   LOYALTY_DEV_DB_SCRIPT     absolute path of deploy/dev-db.sh; a test restarts
#                             the server with
#                             "$LOYALTY_DEV_DB_SCRIPT" restart "$LOYALTY_TEST_DB_DIR"
#                             (DEV_DB_PORT and DEV_DB_PASSWORD are exported to
#                             match, so it comes back on the same port).
#   LOYALTY_GALERA_SCRIPT     absolute path of deploy/galera.sh, and
#   LOYALTY_GALERA_DIR        build/test-galera: the Galera tests (label galera)
#                             start and stop a three-node cluster there, on SQL
#                             ports GALERA_BASE_PORT (LOYALTY_TEST_GALERA_PORT,
#                             default 3323) to +2 and Galera ports from
#                             GALERA_GCOMM_BASE_PORT (4650).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$SCRIPT_DIR/lib.sh"
lib_init "$(basename -- "$0")"

DEV_DB="$DEPLOY_DIR/dev-db.sh"
TEST_DB_DIR="$BUILD_DIR/test-db"

now() { date +%s; }

t0="$(now)"
"$DEPLOY_DIR/install-deps.sh"
log "dependencies took $(($(now) - t0))s"

t0="$(now)"
log "configuring $BUILD_DIR"
cmake_configure
log "building everything (-j$LOYALTY_JOBS)"
cmake --build "$BUILD_DIR" -j"$LOYALTY_JOBS"
log "build took $(($(now) - t0))s"

export LOYALTY_TEST_DB_HOST=127.0.0.1
export LOYALTY_TEST_DB_PORT="${LOYALTY_TEST_DB_PORT:-3308}"
export LOYALTY_TEST_DB_SOCKET="$TEST_DB_DIR/mysqld.sock"
export LOYALTY_TEST_DB_USER=loyalty
export LOYALTY_TEST_DB_PASSWORD="${LOYALTY_TEST_DB_PASSWORD:-loyalty-test}"
export LOYALTY_TEST_DB_DIR="$TEST_DB_DIR"
export LOYALTY_DEV_DB_SCRIPT="$DEV_DB"
export DEV_DB_PORT="$LOYALTY_TEST_DB_PORT"
export DEV_DB_PASSWORD="$LOYALTY_TEST_DB_PASSWORD"
export LOYALTY_GALERA_SCRIPT="$DEPLOY_DIR/galera.sh"
export LOYALTY_GALERA_DIR="$BUILD_DIR/test-galera"
export GALERA_BASE_PORT="${LOYALTY_TEST_GALERA_PORT:-3323}"
export GALERA_GCOMM_BASE_PORT="${LOYALTY_TEST_GALERA_GCOMM_PORT:-4650}"
export GALERA_PASSWORD="$LOYALTY_TEST_DB_PASSWORD"

# Servers left running by an interrupted earlier run are stopped first.
if [[ -d "$TEST_DB_DIR" ]]; then
  "$DEV_DB" stop "$TEST_DB_DIR" >/dev/null || true
fi
if [[ -d "$LOYALTY_GALERA_DIR" ]]; then
  "$LOYALTY_GALERA_SCRIPT" stop "$LOYALTY_GALERA_DIR" >/dev/null 2>&1 || true
fi
rm -rf "$TEST_DB_DIR" "$LOYALTY_GALERA_DIR"

# shellcheck disable=SC2317  # invoked by the EXIT trap
stop_test_db() {
  local pid
  # The Galera suite stops its cluster itself; this is for an interrupted run.
  if [[ -d "$LOYALTY_GALERA_DIR" ]]; then
    "$LOYALTY_GALERA_SCRIPT" stop "$LOYALTY_GALERA_DIR" >/dev/null 2>&1 || true
  fi
  if ! "$DEV_DB" stop "$TEST_DB_DIR"; then
    # Throwaway data: do not leave a server behind.
    if pid="$(read_pid_file "$TEST_DB_DIR/mysqld.pid")" && pid_alive "$pid" mariadbd; then
      warn "killing the test database (pid $pid)"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
}
trap stop_test_db EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the throwaway test database"
"$DEV_DB" start "$TEST_DB_DIR"

t0="$(now)"
rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error \
  -j"$LOYALTY_JOBS" --timeout 600 "$@" || rc=$?
log "tests took $(($(now) - t0))s"
if ((rc == 0)); then
  log "all tests passed"
else
  log "ctest failed (exit code $rc)"
fi
exit "$rc"
