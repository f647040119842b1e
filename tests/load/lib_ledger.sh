# shellcheck shell=bash
# Helpers shared by the scripts that run the ledger binary against a private
# MariaDB: tests/load/run_ledger_bench.sh and tests/soak/durability_soak.sh.
# Source it after deploy/lib.sh (and lib_init), do not run it.
#
# The caller sets, before using the functions below:
#   LEDGER_BIN      build/services/ledger/loyalty-ledger
#   HEALTH_BIN      build/tools/loyalty-healthcheck
#   KEYGEN_BIN      build/tools/loyalty-keygen
#   DEV_DB          deploy/dev-db.sh
#   DB_DIR          the private MariaDB's data folder (wiped by ledger_db_fresh_start)
#   DB_PORT         its TCP port on 127.0.0.1
#   DB_PASSWORD     password of its user `loyalty`
#   PORT            the ledger's gRPC port on 127.0.0.1
#   KEYS_FILE       the API keys file the ledger reads
#   RULES           the earn-rules file the ledger reads
# and reads back LEDGER_PID (the running ledger, or empty) and DB_STARTED
# (1 once ledger_db_fresh_start has run: stop the database on exit).

LEDGER_PID=""
DB_STARTED=0

# ledger_require_built BIN...: dies (exit 2) naming every binary not built.
ledger_require_built() {
  local bin missing=()
  for bin in "$@"; do
    [[ -x "$bin" ]] || missing+=("$bin")
  done
  if ((${#missing[@]} > 0)); then
    printf '%s: error: not built: %s\n' "$PROG" "${missing[*]}" >&2
    printf '%s: build the project first: deploy/test.sh, or cmake --build build\n' "$PROG" >&2
    exit 2
  fi
}

# ledger_keygen ROLE DESCRIPTION: mints a key of ROLE into KEYS_FILE (created
# afresh) and prints the plaintext key.
ledger_keygen() {
  rm -f "$KEYS_FILE"
  "$KEYGEN_BIN" --role="$1" --description="$2" --keys_file="$KEYS_FILE" 2>/dev/null
}

# ledger_db_fresh_start LOG: a fresh MariaDB in DB_DIR (any server running on
# it is stopped and its data wiped) on 127.0.0.1:DB_PORT; 1 on failure.
ledger_db_fresh_start() {
  local log_file="$1"
  if [[ -d "$DB_DIR" ]]; then
    DEV_DB_PORT="$DB_PORT" "$DEV_DB" stop "$DB_DIR" >/dev/null 2>&1 || true
  fi
  rm -rf "$DB_DIR"
  log "starting MariaDB in $DB_DIR on 127.0.0.1:$DB_PORT"
  DB_STARTED=1
  if ! DEV_DB_PORT="$DB_PORT" DEV_DB_PASSWORD="$DB_PASSWORD" "$DEV_DB" start "$DB_DIR" >"$log_file" 2>&1; then
    tail_file "$log_file"
    warn "could not start the database in $DB_DIR"
    return 1
  fi
}

# ledger_db_stop: stops the database ledger_db_fresh_start started.
ledger_db_stop() {
  ((DB_STARTED)) || return 0
  DEV_DB_PORT="$DB_PORT" "$DEV_DB" stop "$DB_DIR" >/dev/null 2>&1 ||
    warn "could not stop the database: $DEV_DB stop $DB_DIR"
}

# ledger_write_rules PARTNER_PREFIX COUNT: writes RULES, proto3 JSON of
# loyalty.ledger.internal.v1.EarnRulesFile: partners PREFIX1..COUNT, active,
# EUR, 1 point per EUR, postpaid, lots expiring after 365 days.
ledger_write_rules() {
  local prefix="$1" count="$2" p id sep
  {
    printf '{\n  "partners": [\n'
    for ((p = 1; p <= count; p++)); do
      id="$prefix$p"
      sep=","
      ((p == count)) && sep=""
      cat <<EOF
    {
      "partnerId": "$id",
      "status": "PARTNER_STATUS_ACTIVE",
      "settlementCurrency": "EUR",
      "contracts": [
        {
          "contractId": "$id-c1",
          "partnerId": "$id",
          "version": 1,
          "effectiveFrom": "2020-01-01T00:00:00Z",
          "earnCurrency": "EUR",
          "earnRateMilliPointsPerUnit": "1000",
          "issuePricePer1000Points": {"amountMinor": "1000", "currency": "EUR"},
          "reimbursementPer1000Points": {"amountMinor": "900", "currency": "EUR"},
          "fundingModel": "FUNDING_MODEL_POSTPAID"
        }
      ],
      "version": "1"
    }$sep
EOF
    done
    printf '  ],\n  "lotExpiryDays": 365\n}\n'
  } >"$RULES"
}

# ledger_start SCHEMA LOG [FLAG...]: starts the ledger on 127.0.0.1:PORT with
# schema SCHEMA, KEYS_FILE and RULES (and FLAGs), appending its output to LOG;
# sets LEDGER_PID and waits until it is SERVING. 1 when it exits or is not
# SERVING within 60 s (then it is stopped).
ledger_start() {
  local schema="$1" log_file="$2" waited=0
  shift 2
  if port_in_use "$PORT"; then
    warn "port $PORT is already in use; choose another ledger port"
    return 1
  fi
  # shellcheck disable=SC2153  # LEDGER_BIN is set by the caller
  LOYALTY_DB_HOST=127.0.0.1 LOYALTY_DB_PORT="$DB_PORT" LOYALTY_DB_USER=loyalty \
    LOYALTY_DB_PASSWORD="$DB_PASSWORD" LOYALTY_DB_NAME="$schema" \
    LOYALTY_API_KEYS_FILE="$KEYS_FILE" \
    "$LEDGER_BIN" --listen="127.0.0.1:$PORT" --earn_rules_file="$RULES" "$@" \
    </dev/null >>"$log_file" 2>&1 &
  LEDGER_PID=$!
  until ledger_serving; do
    if ! pid_alive "$LEDGER_PID"; then
      local rc=0
      wait "$LEDGER_PID" 2>/dev/null || rc=$?
      LEDGER_PID=""
      warn "the ledger exited during start-up (exit code $rc)"
      tail_file "$log_file" 20
      return 1
    fi
    if ((waited >= 600)); then
      warn "the ledger is not SERVING after 60 s"
      tail_file "$log_file" 20
      ledger_stop
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# ledger_serving: the ledger on PORT answers SERVING.
ledger_serving() {
  "$HEALTH_BIN" "127.0.0.1:$PORT" --timeout_ms=1000 >/dev/null 2>&1
}

# ledger_stop: SIGTERM, then SIGKILL after 20 s; no-op when not running.
ledger_stop() {
  local pid="$LEDGER_PID"
  [[ -n "$pid" ]] || return 0
  LEDGER_PID=""
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_pid_exit "$pid" 20; then
      warn "ledger (pid $pid) did not stop within 20 s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
