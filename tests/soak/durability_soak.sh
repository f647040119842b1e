#!/usr/bin/env bash
# The durability soak (issue "never acknowledge a write the database did not
# commit"). Not part of ctest: run it by hand; it takes about 10-15 minutes
# with the defaults.
#
#   tests/soak/durability_soak.sh
#
# Needs the project built in build/ first (cmake --build build, or
# deploy/test.sh): build/services/ledger/loyalty-ledger,
# build/tools/loyaltyctl, build/tests/soak/loyalty-durability-client,
# build/tools/loyalty-healthcheck, build/tools/loyalty-keygen.
#
# Steps: a fresh private MariaDB in build/soak-db (wiped first, deploy/dev-db.sh)
# -> an earn-rules file (partners soak-p1..N) and a service-role API key ->
# the ledger on schema loyalty_soak -> for each fault kind in SOAK_FAULTS,
# SOAK_ROUNDS rounds of:
#   1. loyalty-durability-client load: SOAK_CALLERS callers run Earn,
#      Authorize and Capture (of their own holds) for SOAK_LOAD_S seconds;
#      every operation has its own idempotency key (also its receipt or
#      reference), and an answer that is not final (UNAVAILABLE,
#      DEADLINE_EXCEEDED, ABORTED, CANCELLED, ...) is retried with the same
#      request and key until it is final;
#   2. after a random delay, the fault:
#        db      kill -9 of mariadbd, down for a random while, then
#                deploy/dev-db.sh start (InnoDB crash recovery);
#        ledger  kill -9 of the ledger, down for a random while, then the
#                ledger is started again;
#        dbstop  (not in the default SOAK_FAULTS) SIGSTOP of mariadbd for a
#                random while, up to SOAK_STOP_MAX_MS, then SIGCONT: the
#                database hangs instead of failing, callers' deadlines pass
#                (DEADLINE_EXCEEDED) while their writes may still commit;
#   3. the load drains: no new operation, every one in flight reaches a final
#      answer, every hold still open is captured;
#   4. (SOAK_CHECK_EACH_ROUND=1) loyaltyctl chain verify, and every
#      record so far checked against the database
#      (loyalty-durability-client verify --quiet).
# At the end, the same checks once more and the summary table: per fault kind
# the rounds, operations, acknowledged on the first answer, retried,
# unresolved, lost, duplicated, phantom (refused but written), unexpected
# answers; then the invariant violations (member balances against the OK
# answers and against the journal, sums to zero, lots, pending holds,
# nothing negative) and the chain. See tests/soak/durability_client.cc for
# exactly what each figure counts. Everything started is stopped on exit,
# Ctrl-C included.
#
# Environment (defaults in brackets):
#   SOAK_ROUNDS          rounds per fault kind [20]
#   SOAK_FAULTS          fault kinds, run in this order: db, ledger,
#                        dbstop ["db ledger"]
#   SOAK_LOAD_S          seconds of load per round, before the drain [6]
#   SOAK_FAULT_MIN_MS    earliest fault, ms after the load starts [500]
#   SOAK_FAULT_MAX_MS    latest fault [SOAK_LOAD_S * 1000 - 500]
#   SOAK_DOWN_MAX_MS     the killed process stays down 0..this ms [2000]
#   SOAK_STOP_MAX_MS     dbstop: mariadbd stays stopped 0..this ms [6000]
#   SOAK_CALLERS         concurrent callers [20]
#   SOAK_MEMBERS         members soak-m1..N [100]
#   SOAK_PARTNERS        partners soak-p1..N [3]
#   SOAK_OP_TIMEOUT_S    an operation not final after this is unresolved [300]
#   SOAK_CHECK_EACH_ROUND  1 = verify after every round, 0 = only at the end [1]
#   SOAK_FRESH_CHANNEL   1 = a caller retries on a new gRPC channel after a
#                        failed connection; 0 = on one default channel, left
#                        to gRPC's reconnect backoff (slower to recover) [1]
#   SOAK_LEDGER_FLAGS    extra ledger flags, e.g. "--batching=false" for one
#                        transaction per request [none]
#   SOAK_SEED            random seed of the fault timing and the load [random]
#   SOAK_DB_PORT         MariaDB TCP port [3331]
#   SOAK_PORT            ledger gRPC port [7291]
#   SOAK_BUILD_DIR       build folder [<repo>/build]
#   SOAK_OUT             results folder [<build>/soak-results/<UTC time>]
#
# Exit: 0 when nothing was lost or duplicated, no invariant was violated,
# every operation got a final answer and the chain verifies; 1 otherwise (the
# table is printed either way); 2 usage or missing binaries.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$REPO_ROOT/deploy/lib.sh"
lib_init "$(basename -- "$0")"
# shellcheck source=tests/load/lib_ledger.sh
. "$REPO_ROOT/tests/load/lib_ledger.sh"

BUILD_DIR="$(abs_path "${SOAK_BUILD_DIR:-$REPO_ROOT/build}")"
LEDGER_BIN="$BUILD_DIR/services/ledger/loyalty-ledger"
LOYALTYCTL_BIN="$BUILD_DIR/tools/loyaltyctl"
CLIENT_BIN="$BUILD_DIR/tests/soak/loyalty-durability-client"
HEALTH_BIN="$BUILD_DIR/tools/loyalty-healthcheck"
KEYGEN_BIN="$BUILD_DIR/tools/loyalty-keygen"
DEV_DB="$REPO_ROOT/deploy/dev-db.sh"
DB_DIR="$BUILD_DIR/soak-db"
SCHEMA=loyalty_soak

ROUNDS="${SOAK_ROUNDS:-20}"
FAULTS="${SOAK_FAULTS:-db ledger}"
LOAD_S="${SOAK_LOAD_S:-6}"
FAULT_MIN_MS="${SOAK_FAULT_MIN_MS:-500}"
FAULT_MAX_MS="${SOAK_FAULT_MAX_MS:-$((LOAD_S * 1000 - 500))}"
DOWN_MAX_MS="${SOAK_DOWN_MAX_MS:-2000}"
STOP_MAX_MS="${SOAK_STOP_MAX_MS:-6000}"
CALLERS="${SOAK_CALLERS:-20}"
MEMBERS="${SOAK_MEMBERS:-100}"
PARTNERS="${SOAK_PARTNERS:-3}"
OP_TIMEOUT_S="${SOAK_OP_TIMEOUT_S:-300}"
CHECK_EACH_ROUND="${SOAK_CHECK_EACH_ROUND:-1}"
FRESH_CHANNEL="${SOAK_FRESH_CHANNEL:-1}"
read -r -a LEDGER_FLAGS <<<"${SOAK_LEDGER_FLAGS:-}"
SEED="${SOAK_SEED:-$((RANDOM * 32768 + RANDOM))}"
DB_PORT="${SOAK_DB_PORT:-3331}"
PORT="${SOAK_PORT:-7291}"
DB_PASSWORD=soak
PARTNER_PREFIX=soak-p
MEMBER_PREFIX=soak-m
# How long the ledger may take to be SERVING again after the database is back.
RECOVER_TIMEOUT_S=60

if (($# > 0)); then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
for v in ROUNDS LOAD_S FAULT_MIN_MS FAULT_MAX_MS DOWN_MAX_MS STOP_MAX_MS CALLERS MEMBERS PARTNERS OP_TIMEOUT_S \
  CHECK_EACH_ROUND FRESH_CHANNEL SEED DB_PORT PORT; do
  if ! [[ "${!v}" =~ ^[0-9]+$ ]]; then
    printf '%s: error: SOAK_%s must be a non-negative integer, got "%s"\n' "$PROG" "$v" "${!v}" >&2
    exit 2
  fi
done
if ((ROUNDS == 0 || LOAD_S == 0 || CALLERS == 0 || MEMBERS == 0 || PARTNERS == 0 || FAULT_MAX_MS < FAULT_MIN_MS)); then
  printf '%s: error: SOAK_ROUNDS, _LOAD_S, _CALLERS, _MEMBERS, _PARTNERS must be > 0 and FAULT_MAX_MS >= FAULT_MIN_MS\n' "$PROG" >&2
  exit 2
fi
for fault in $FAULTS; do
  case "$fault" in db | ledger | dbstop) ;; *)
    printf '%s: error: SOAK_FAULTS may hold db, ledger and dbstop, not "%s"\n' "$PROG" "$fault" >&2
    exit 2
    ;;
  esac
done
ledger_require_built "$LEDGER_BIN" "$LOYALTYCTL_BIN" "$CLIENT_BIN" "$HEALTH_BIN" "$KEYGEN_BIN"

OUT="$(abs_path "${SOAK_OUT:-$BUILD_DIR/soak-results/$(date -u +%Y%m%dT%H%M%SZ)}")"
OPS_DIR="$OUT/ops"
ROUND_DIR="$OUT/rounds"
mkdir -p "$OPS_DIR" "$ROUND_DIR"
rm -f "$OPS_DIR"/*.ops
RULES="$OUT/earn-rules.json"
KEYS_FILE="$OUT/api-keys.json"
LEDGER_LOG="$OUT/ledger.log"
DB_LOG="$OUT/dev-db.log"
API_KEY="$(ledger_keygen service "durability soak")" || die "loyalty-keygen failed"
RANDOM="$SEED"

# ---------------------------------------------------------------------------
# Clean-up: the load client, the ledger and the database, whatever happens.
# ---------------------------------------------------------------------------
CLIENT_PID=""
STOPPED_DB_PID=""  # a mariadbd under SIGSTOP (dbstop), to continue before stopping it

# shellcheck disable=SC2317  # invoked by the traps
stop_client() {
  local pid="$CLIENT_PID"
  [[ -n "$pid" ]] || return 0
  CLIENT_PID=""
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_client
  ledger_stop
  [[ -z "$STOPPED_DB_PID" ]] || kill -CONT "$STOPPED_DB_PID" 2>/dev/null || true
  ledger_db_stop
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
# rand_between LO HI: a random integer in [LO, HI].
rand_between() {
  echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1)))
}

sleep_ms() {
  sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

now_ms() {
  echo $(($(date +%s%N) / 1000000))
}

seconds() {
  printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100))
}

start_db() {
  DEV_DB_PORT="$DB_PORT" DEV_DB_PASSWORD="$DB_PASSWORD" "$DEV_DB" start "$DB_DIR" >>"$DB_LOG" 2>&1
}

# db_pid: the pid of the soak's mariadbd (its pid file, checked against its
# command line, so a reused pid is never killed).
db_pid() {
  local pid
  pid="$(read_pid_file "$DB_DIR/mysqld.pid")" || return 1
  pid_alive "$pid" "--defaults-file=$DB_DIR/my.cnf" || return 1
  printf '%s\n' "$pid"
}

start_soak_ledger() {
  ledger_start "$SCHEMA" "$LEDGER_LOG" --log_level=warn --partner_rate_limit_rps=0 "${LEDGER_FLAGS[@]}"
}

# wait_serving SECONDS: the ledger is running and SERVING within SECONDS.
wait_serving() {
  local waited=0
  until ledger_serving; do
    pid_alive "$LEDGER_PID" || return 1
    ((waited < $1 * 10)) || return 1
    sleep 0.1
    waited=$((waited + 1))
  done
}

# inject_db DOWN_MS: kill -9 of MariaDB, DOWN_MS later a start (crash recovery).
inject_db() {
  local pid
  pid="$(db_pid)" || {
    warn "no running mariadbd found in $DB_DIR"
    return 1
  }
  kill -KILL "$pid"
  wait_pid_exit "$pid" 30 || warn "mariadbd (pid $pid) still there 30 s after SIGKILL"
  sleep_ms "$1"
  start_db || {
    tail_file "$DB_LOG"
    warn "MariaDB did not start again"
    return 1
  }
}

# inject_dbstop STOP_MS: SIGSTOP of MariaDB, STOP_MS later SIGCONT.
inject_dbstop() {
  local pid
  pid="$(db_pid)" || {
    warn "no running mariadbd found in $DB_DIR"
    return 1
  }
  STOPPED_DB_PID="$pid"
  kill -STOP "$pid"
  sleep_ms "$1"
  kill -CONT "$pid"
  STOPPED_DB_PID=""
}

# inject_ledger DOWN_MS: kill -9 of the ledger, DOWN_MS later a start.
inject_ledger() {
  local pid="$LEDGER_PID"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  LEDGER_PID=""
  sleep_ms "$1"
  start_soak_ledger
}

# chain_verdict: ok, broken or failed, from loyaltyctl chain verify (exit
# code 6: the chain does not verify).
chain_verdict() {
  local rc=0
  LOYALTY_API_KEY="$API_KEY" "$LOYALTYCTL_BIN" chain verify --ledger="127.0.0.1:$PORT" \
    >>"$OUT/verify-chain.log" 2>&1 || rc=$?
  case "$rc" in 0) echo ok ;; 6) echo broken ;; *) echo failed ;; esac
}

# verify [FLAG...]: loyalty-durability-client verify on every record so far.
verify() {
  LOYALTY_DB_PASSWORD="$DB_PASSWORD" "$CLIENT_BIN" verify --records_dir="$OPS_DIR" \
    --db_port="$DB_PORT" --db_name="$SCHEMA" "$@"
}

# json_field FILE NAME: a number from the client's one-line JSON report.
json_field() {
  sed -n "s/.*\"$2\":\([0-9][0-9]*\).*/\1/p" "$1" | head -n 1
}

# ---------------------------------------------------------------------------
# Start
# ---------------------------------------------------------------------------
git_rev="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null | head -n 1)" ]]; then
  git_rev="$git_rev+dirty"
fi
log "commit:  $git_rev"
log "plan:    faults [$FAULTS] x $ROUNDS rounds, ${LOAD_S}s load per round, fault at ${FAULT_MIN_MS}..${FAULT_MAX_MS} ms, down 0..${DOWN_MAX_MS} ms (dbstop: 0..${STOP_MAX_MS} ms)"
log "load:    $CALLERS callers, $MEMBERS members, $PARTNERS partners, seed $SEED"
log "ledger:  extra flags [${LEDGER_FLAGS[*]}]"
log "ports:   MariaDB 127.0.0.1:$DB_PORT ($DB_DIR), ledger 127.0.0.1:$PORT"
log "results: $OUT"
started_ms="$(now_ms)"

ledger_db_fresh_start "$DB_LOG" || die "could not start the soak database"
ledger_write_rules "$PARTNER_PREFIX" "$PARTNERS"
start_soak_ledger || die "the ledger did not start"

# ---------------------------------------------------------------------------
# Rounds
# ---------------------------------------------------------------------------
failed_rounds=0
round_index=0
for fault in $FAULTS; do
  for ((round = 1; round <= ROUNDS; round++)); do
    round_index=$((round_index + 1))
    label="$(printf '%s-%02d' "$fault" "$round")"
    report="$ROUND_DIR/$label.json"
    LOYALTY_API_KEY="$API_KEY" "$CLIENT_BIN" load --target="ipv4:127.0.0.1:$PORT" --round="$label" \
      --records="$OPS_DIR/$label.ops" --callers="$CALLERS" --duration_s="$LOAD_S" \
      --members="$MEMBERS" --partners="$PARTNERS" --member_prefix="$MEMBER_PREFIX" \
      --partner_prefix="$PARTNER_PREFIX" --op_timeout_s="$OP_TIMEOUT_S" \
      --fresh_channel="$( ((FRESH_CHANNEL)) && echo true || echo false)" \
      --seed="$((SEED + round_index))" >"$report" 2>"$ROUND_DIR/$label.err" &
    CLIENT_PID=$!
    round_start="$(now_ms)"

    at_ms="$(rand_between "$FAULT_MIN_MS" "$FAULT_MAX_MS")"
    down_ms="$(rand_between 0 "$DOWN_MAX_MS")"
    [[ "$fault" != dbstop ]] || down_ms="$(rand_between 0 "$STOP_MAX_MS")"
    sleep_ms "$at_ms"
    fault_ms="$(now_ms)"
    fault_ok=1
    case "$fault" in
      db) inject_db "$down_ms" || fault_ok=0 ;;
      ledger) inject_ledger "$down_ms" || fault_ok=0 ;;
      dbstop) inject_dbstop "$down_ms" || fault_ok=0 ;;
    esac
    back_ms=$(($(now_ms) - fault_ms))
    if ((fault_ok)) && ! wait_serving "$RECOVER_TIMEOUT_S"; then
      warn "$label: the ledger is not SERVING ${RECOVER_TIMEOUT_S}s after the fault"
      tail_file "$LEDGER_LOG" 20
      fault_ok=0
    fi
    if ((!fault_ok)); then
      die "$label: could not restore after the fault; stopping (logs in $OUT)"
    fi

    client_rc=0
    wait "$CLIENT_PID" || client_rc=$?
    CLIENT_PID=""
    round_ms=$(($(now_ms) - round_start))
    if ((client_rc != 0)); then
      failed_rounds=$((failed_rounds + 1))
      warn "$label: the load client exited with $client_rc"
      tail_file "$ROUND_DIR/$label.err" 10
    fi
    line="$label: fault at $(seconds "$at_ms")s, down $(seconds "$down_ms")s, serving again after $(seconds "$back_ms")s;"
    line="$line $(json_field "$report" ops) ops, $(json_field "$report" acked_first) acked first,"
    line="$line $(json_field "$report" retried) retried (max $(json_field "$report" max_attempts) tries,"
    line="$line $(json_field "$report" max_op_ms) ms); round $(seconds "$round_ms")s"
    log "$line"
    if ((CHECK_EACH_ROUND)); then
      check_rc=0
      check="$(verify --quiet=true --chain="$(chain_verdict)")" || check_rc=$?
      log "  check: $(printf '%s\n' "$check" | head -n 1)"
      if ((check_rc != 0)); then
        printf '%s\n' "$check" | sed 's/^/    /'
        failed_rounds=$((failed_rounds + 1))
      fi
    fi
  done
done

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
elapsed_ms=$(($(now_ms) - started_ms))
{
  printf '\nDurability soak: faults [%s], %s rounds each, %ss of load per round, %s callers, seed %s, commit %s%s\n' \
    "$FAULTS" "$ROUNDS" "$LOAD_S" "$CALLERS" "$SEED" "$git_rev" "${LEDGER_FLAGS[*]:+, ledger flags ${LEDGER_FLAGS[*]}}"
  verify --chain="$(chain_verdict)" || true
  printf 'wall time: %s s (final check included: %s s)\n' "$(seconds "$elapsed_ms")" \
    "$(seconds $(($(now_ms) - started_ms)))"
} | tee "$OUT/summary.txt"
summary_rc=0
grep -q '^result: PASS' "$OUT/summary.txt" || summary_rc=1
log "per-round reports, operation records and logs are in $OUT"
if ((summary_rc == 0 && failed_rounds == 0)); then
  exit 0
fi
warn "the soak FAILED (see the table above and $OUT)"
exit 1
