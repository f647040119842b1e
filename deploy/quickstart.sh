#!/usr/bin/env bash
# Runs the whole platform on this machine: installs dependencies, builds,
# starts the private MariaDB and the four services.
#
#   deploy/quickstart.sh          start everything, stay in the foreground;
#                                 Ctrl-C stops everything cleanly
#   deploy/quickstart.sh start    start everything and return (leave running)
#   deploy/quickstart.sh stop     stop everything a previous run started
#   deploy/quickstart.sh status   show what is running
#
# State lives in <repo>/.data (git-ignored; QUICKSTART_DATA_DIR moves it) and
# is reused by the next run:
#   .data/mariadb/        the private database (deploy/dev-db.sh)
#   .data/logs/NAME.log   each service's stderr (one line per RPC)
#   .data/keys/api-keys.json   the hashed API keys every service reads
#                         (--api_keys_file); made on the first run
#   .data/keys/dev-keys.txt    the same development keys in plaintext, one
#                         "<label> <key>" per line (mode 0600): backoffice,
#                         finance, service, partner:vet-clinic,
#                         partner:pet-food, partner:groomer
#   .data/run/NAME.pid    each service's pid; run/quickstart.pid: the
#                         foreground run, if any
#   .data/run/NAME.addr   HOST:PORT each service was last started on: status,
#                         stop and the next start use it (as dev-db.sh
#                         remembers the database port in its my.cnf)
#
# Environment (all optional):
#   QUICKSTART_HOST            address the services listen on (default: the
#                              one they last ran on, else 127.0.0.1)
#   QUICKSTART_MEMBERSHIP_PORT, QUICKSTART_LEDGER_PORT,
#   QUICKSTART_SETTLEMENT_PORT, QUICKSTART_CATALOG_PORT   (default: the port
#                              each last ran on, else 7101..7104). A running
#                              service keeps its port until it is stopped.
#   QUICKSTART_DATA_DIR        the state folder (<repo>/.data)
#   QUICKSTART_BUILD_DIR       where the binaries are built (<repo>/build)
#   DEV_DB_PORT, DEV_DB_PASSWORD   the private MariaDB (default: the port it
#                              last ran on, else 3307; loyalty-dev)
#   QUICKSTART_EARN_RULES      the ledger's earn-rules JSON
#                              (deploy/config/earn-rules.dev.json)
#   QUICKSTART_SKIP_DEPS=1     do not run deploy/install-deps.sh
#   QUICKSTART_SKIP_BUILD=1    do not configure and build
#   QUICKSTART_SKIP_DEMO=1     do not run the demo after startup
#   QUICKSTART_HEALTH_TIMEOUT  seconds each service has to report SERVING (90)
#   QUICKSTART_STOP_TIMEOUT    seconds each service has to exit on SIGTERM (30)
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$SCRIPT_DIR/lib.sh"
lib_init "$(basename -- "$0")"

usage() {
  printf 'usage: %s [run|start|stop|status]\n' "$PROG" >&2
  exit 2
}
(($# <= 1)) || usage
ACTION="${1:-run}"
case "$ACTION" in run | start | stop | status) ;; -h | --help | help) usage ;; *) usage ;; esac

SERVICES=(membership ledger settlement catalog)
declare -A DEFAULT_PORT=([membership]=7101 [ledger]=7102 [settlement]=7103 [catalog]=7104)

DATA_DIR="$(abs_path "${QUICKSTART_DATA_DIR:-$DATA_DIR}")"
DATA_DIR="${DATA_DIR%/}"
BUILD_DIR="$(abs_path "${QUICKSTART_BUILD_DIR:-$BUILD_DIR}")"
BUILD_DIR="${BUILD_DIR%/}"
DB_DIR="$DATA_DIR/mariadb"
LOG_DIR="$DATA_DIR/logs"
KEYS_DIR="$DATA_DIR/keys"
KEYS_FILE="$KEYS_DIR/api-keys.json"
DEV_KEYS="$KEYS_DIR/dev-keys.txt"
KEYGEN_BIN="$BUILD_DIR/tools/loyalty-keygen"
# The development partners of deploy/config/earn-rules.dev.json.
DEV_PARTNERS=(vet-clinic pet-food groomer)
RUN_DIR="$DATA_DIR/run"
FOREGROUND_PIDFILE="$RUN_DIR/quickstart.pid"
DB_USER=loyalty
# DEV_DB_PORT, if set, goes through to dev-db.sh; the port actually used is
# read back from the database's my.cnf once it runs (DB_PORT).
DB_PORT=""
export DEV_DB_PASSWORD="${DEV_DB_PASSWORD:-loyalty-dev}"
HEALTH_TIMEOUT="${QUICKSTART_HEALTH_TIMEOUT:-90}"
STOP_TIMEOUT="${QUICKSTART_STOP_TIMEOUT:-30}"
DEV_DB="$DEPLOY_DIR/dev-db.sh"

service_bin() { printf '%s\n' "$BUILD_DIR/services/$1/loyalty-$1"; }
service_pidfile() { printf '%s\n' "$RUN_DIR/$1.pid"; }
service_addrfile() { printf '%s\n' "$RUN_DIR/$1.addr"; }
service_log() { printf '%s\n' "$LOG_DIR/$1.log"; }

# service_pid NAME: the pid of the running service NAME, if any.
service_pid() {
  local pid
  pid="$(read_pid_file "$(service_pidfile "$1")")" || return 1
  pid_alive "$pid" "$(service_bin "$1")" || return 1
  printf '%s\n' "$pid"
}

# recorded_addr NAME: the HOST:PORT NAME was last started on, if recorded.
recorded_addr() {
  local addr=""
  [[ -r "$(service_addrfile "$1")" ]] || return 1
  read -r addr <"$(service_addrfile "$1")" 2>/dev/null || true
  [[ "$addr" =~ ^[^:[:space:]]+:[0-9]+$ ]] || return 1
  printf '%s\n' "$addr"
}

# service_addr NAME: HOST:PORT of NAME. A running service is where it was
# started (recorded in run/NAME.addr), whatever the environment says now.
# Otherwise: QUICKSTART_HOST and QUICKSTART_<NAME>_PORT, else the address it
# last ran on, else 127.0.0.1 and the default port.
service_addr() {
  local name="$1" recorded host port var
  recorded="$(recorded_addr "$name" || true)"
  if [[ -n "$recorded" ]] && service_pid "$name" >/dev/null; then
    printf '%s\n' "$recorded"
    return 0
  fi
  var="QUICKSTART_${name^^}_PORT"
  host="${QUICKSTART_HOST:-${recorded%:*}}"
  port="${!var:-${recorded##*:}}"
  printf '%s:%s\n' "${host:-127.0.0.1}" "${port:-${DEFAULT_PORT[$name]}}"
}

now() { date +%s; }

# ---------------------------------------------------------------- build

install_deps() {
  if [[ "${QUICKSTART_SKIP_DEPS:-0}" == 1 ]]; then
    log "skipping dependency install (QUICKSTART_SKIP_DEPS=1)"
    return
  fi
  "$DEPLOY_DIR/install-deps.sh"
}

build() {
  local t0 targets=() name
  if [[ "${QUICKSTART_SKIP_BUILD:-0}" == 1 ]]; then
    log "skipping build (QUICKSTART_SKIP_BUILD=1)"
    return
  fi
  t0="$(now)"
  log "configuring $BUILD_DIR"
  cmake_configure
  for name in "${SERVICES[@]}"; do
    targets+=("loyalty-$name")
  done
  # loyalty-healthcheck checks the services as they start.
  # loyalty-keygen makes the development API keys.
  # loyaltyctl (also the ledger's chain verify and expiry, used in the README),
  # the reference integrations and the demo, for the README.
  targets+=(loyalty-healthcheck loyalty-keygen loyaltyctl loyalty-vet-pos loyalty-eshop loyalty-demo)
  log "building ${targets[*]} (-j$LOYALTY_JOBS)"
  cmake --build "$BUILD_DIR" -j"$LOYALTY_JOBS" --target "${targets[@]}"
  log "build took $(($(now) - t0))s"
}

# ---------------------------------------------------------------- keys

# ensure_dev_keys: on the first run, one API key per role and one per
# development partner. The services read only the hashed entries
# ($KEYS_FILE); the plaintext keys go to $DEV_KEYS (0600) for the examples
# and the demo. Later runs reuse both.
ensure_dev_keys() {
  local label role partner key tmp
  if [[ -s "$DEV_KEYS" && -s "$KEYS_FILE" ]]; then
    return 0
  fi
  [[ -x "$KEYGEN_BIN" ]] || die "$KEYGEN_BIN is missing: build first (deploy/quickstart.sh builds it)"
  log "making development API keys in ${KEYS_DIR#"$REPO_ROOT"/}"
  (umask 077 && mkdir -p "$KEYS_DIR")
  tmp="$DEV_KEYS.tmp"
  (
    umask 077
    {
      printf '# Development API keys made by deploy/quickstart.sh (plaintext: keep private).
'
      printf '# The services know them by their hashes in %s.
' "${KEYS_FILE#"$REPO_ROOT"/}"
      printf '# <label> <key>; send as metadata "authorization: Bearer <key>".
'
    } >"$tmp"
  )
  for label in backoffice finance service "${DEV_PARTNERS[@]/#/partner:}"; do
    role="${label%%:*}"
    partner=""
    [[ "$label" == partner:* ]] && partner="${label#partner:}"
    key="$("$KEYGEN_BIN" --role="$role" --partner_id="$partner"       --description="quickstart development key ($label)" --keys_file="$KEYS_FILE" 2>/dev/null)" ||
      die "loyalty-keygen failed for $label"
    printf '%-20s %s
' "$label" "$key" >>"$tmp"
  done
  mv -f "$tmp" "$DEV_KEYS"
}

# ---------------------------------------------------------------- services

# service_args NAME: extra flags for one service, one per line.
service_args() {
  case "$1" in
    ledger)
      # The earn rules come from the owning services' feeds: members and
      # tiers from membership, partners and contracts from settlement,
      # campaigns from catalog (docs/adr/0006). The file adds the programme
      # policy (lot expiry) only.
      printf '%s\n' "--earn_rules_file=${QUICKSTART_EARN_RULES:-$DEPLOY_DIR/config/earn-rules.dev.json}"
      printf '%s\n' "--membership_address=$(service_addr membership)"
      printf '%s\n' "--settlement_address=$(service_addr settlement)"
      printf '%s\n' "--catalog_address=$(service_addr catalog)"
      ;;
    membership)
      # Tiers, export, activity and referral rewards call the ledger.
      printf '%s\n' "--ledger_address=$(service_addr ledger)"
      ;;
    catalog)
      # Redeem, vouchers and tier limits call the ledger and membership;
      # partner ids of rewards and campaigns are checked with settlement.
      printf '%s\n' "--ledger_address=$(service_addr ledger)"
      printf '%s\n' "--membership_address=$(service_addr membership)"
      printf '%s\n' "--settlement_address=$(service_addr settlement)"
      ;;
    settlement)
      # Closing and reconciling periods read the ledger's journal.
      printf '%s\n' "--ledger_address=$(service_addr ledger)"
      ;;
  esac
}

start_service() {
  local name="$1" bin addr host port pid log_file pidfile var
  local -a extra=()
  mapfile -t extra < <(service_args "$name")
  bin="$(service_bin "$name")"
  addr="$(service_addr "$name")"
  host="${addr%:*}"
  port="${addr##*:}"
  pidfile="$(service_pidfile "$name")"
  log_file="$(service_log "$name")"
  if pid="$(service_pid "$name")"; then
    log "$name already running (pid $pid) on $addr"
    var="QUICKSTART_${name^^}_PORT"
    if [[ -n "${!var:-}" && "${!var}" != "$port" ]]; then
      warn "$name keeps port $port, not $var=${!var}; stop it first to move it"
    fi
    return 0
  fi
  if [[ ! -x "$bin" ]]; then
    warn "$bin is missing: build first (deploy/quickstart.sh builds it)"
    return 1
  fi
  if port_in_use "$port" "$host"; then
    warn "port $port for $name is in use by another process; set QUICKSTART_${name^^}_PORT"
    return 1
  fi
  printf '%s %s: started by %s on %s:%s ===\n' "$LOG_MARKER" "$(date -Is)" "$PROG" "$host" "$port" >>"$log_file"
  # The password goes through the environment, never the command line.
  # setsid: a Ctrl-C in this terminal reaches only this script, which then
  # stops the services in order.
  (
    export LOYALTY_DB_PASSWORD="$DEV_DB_PASSWORD"
    # Membership, catalog and settlement call the ledger (catalog also
    # membership) with the development service key (through the environment:
    # secrets never go on a command line).
    if [[ "$name" == membership || "$name" == catalog || "$name" == settlement ]]; then
      LOYALTY_LEDGER_API_KEY="$(awk '$1 == "service" { print $2 }' "$DEV_KEYS")"
      export LOYALTY_LEDGER_API_KEY
    fi
    # Every service asks settlement about API keys it does not know (keys
    # issued with CreateApiKey), with the development service key.
    LOYALTY_KEY_DIRECTORY_API_KEY="$(awk '$1 == "service" { print $2 }' "$DEV_KEYS")"
    export LOYALTY_KEY_DIRECTORY_API_KEY
    # The ledger reads the rules feeds with the same service key.
    if [[ "$name" == ledger ]]; then
      LOYALTY_SERVICE_API_KEY="$(awk '$1 == "service" { print $2 }' "$DEV_KEYS")"
      export LOYALTY_SERVICE_API_KEY
    fi
    exec setsid "$bin" \
      --listen="$addr" \
      --api_keys_file="$KEYS_FILE" \
      --key_directory_address="$(service_addr settlement)" \
      --db_host=127.0.0.1 \
      --db_port="$DB_PORT" \
      --db_socket= \
      --db_user="$DB_USER" \
      "${extra[@]}" \
      </dev/null >>"$log_file" 2>&1
  ) &
  pid=$!
  printf '%s\n' "$pid" >"$pidfile"
  # Remembered for status, stop and the next start (see service_addr).
  printf '%s\n' "$addr" >"$(service_addrfile "$name")"
  log "$name starting (pid $pid, log ${log_file#"$REPO_ROOT"/})"
}

LOG_MARKER="=== quickstart"

# tail_service_log NAME: the end of NAME's log, from its latest start only.
tail_service_log() {
  local file tmp
  file="$(service_log "$1")"
  tmp="$(mktemp)"
  awk -v m="$LOG_MARKER" 'index($0, m) == 1 { n = 0 } { buf[n++] = $0 } END { for (i = 0; i < n; i++) print buf[i] }' \
    "$file" >"$tmp" 2>/dev/null || true
  printf '%s: ---- %s (latest start) ----\n' "$PROG" "$file" >&2
  tail -n 40 -- "$tmp" | sed 's/^/    /' >&2
  printf '%s: ----\n' "$PROG" >&2
  rm -f "$tmp"
}

# wait_healthy NAME: waits until NAME answers SERVING; 1 if it dies or times out.
wait_healthy() {
  local name="$1" addr pid deadline
  addr="$(service_addr "$name")"
  pid="$(read_pid_file "$(service_pidfile "$name")")" || return 1
  deadline=$(($(now) + HEALTH_TIMEOUT))
  until grpc_health_check "$addr" 2; do
    if ! pid_alive "$pid"; then
      warn "$name (pid $pid) exited during startup"
      tail_service_log "$name"
      return 1
    fi
    if (($(now) >= deadline)); then
      warn "$name did not report SERVING on $addr within ${HEALTH_TIMEOUT}s"
      tail_service_log "$name"
      return 1
    fi
    sleep 0.5
  done
}

check_health_checker() {
  if [[ -x "$BUILD_DIR/tools/loyalty-healthcheck" ]]; then
    return 0
  fi
  if ! "$LOYALTY_PYTHON" -c 'import grpc' >/dev/null 2>&1; then
    die "no health checker: neither $BUILD_DIR/tools/loyalty-healthcheck nor python3-grpcio for $LOYALTY_PYTHON (run deploy/install-deps.sh)"
  fi
}

stop_services() {
  local name pid pids=() names=() i
  for name in "${SERVICES[@]}"; do
    if pid="$(service_pid "$name")"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    fi
  done
  for i in "${!pids[@]}"; do
    if ! wait_pid_exit "${pids[$i]}" "$STOP_TIMEOUT"; then
      warn "${names[$i]} (pid ${pids[$i]}) did not exit within ${STOP_TIMEOUT}s of SIGTERM; killing it"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      wait_pid_exit "${pids[$i]}" 10 || true
    fi
  done
  for name in "${SERVICES[@]}"; do
    rm -f "$(service_pidfile "$name")"
  done
  ((${#pids[@]} == 0)) || log "services stopped"
}

stop_db() {
  "$DEV_DB" stop "$DB_DIR"
}

stop_all() {
  stop_services
  stop_db
}

print_endpoints() {
  local name pid
  log "the platform is up:"
  for name in "${SERVICES[@]}"; do
    pid="$(service_pid "$name" || true)"
    printf '    %-11s %-16s pid %-7s log %s\n' "$name" "$(service_addr "$name")" \
      "${pid:-?}" "${LOG_DIR#"$REPO_ROOT"/}/$name.log"
  done
  printf '    %-11s 127.0.0.1:%-5s  socket %s  user %s\n' "mariadb" "$DB_PORT" "$DB_DIR/mysqld.sock" "$DB_USER"
  printf '    %-11s %s (plaintext, one per role and dev partner)\n' "api keys" "${DEV_KEYS#"$REPO_ROOT"/}"
}

# run_demo: the end-to-end demo (partners/demo), run once all four services
# are SERVING. It is idempotent: a second run changes nothing and prints the
# same statements. It gets the endpoints in the environment:
#   LOYALTY_MEMBERSHIP_ADDR, LOYALTY_LEDGER_ADDR, LOYALTY_SETTLEMENT_ADDR,
#   LOYALTY_CATALOG_ADDR (HOST:PORT each), and LOYALTY_DEV_KEYS_FILE (the
#   plaintext development keys, see ensure_dev_keys).
# Set QUICKSTART_DEMO_BIN to run another program, QUICKSTART_SKIP_DEMO=1 to
# skip it. A failing demo is reported but leaves the platform running.
run_demo() {
  local demo="${QUICKSTART_DEMO_BIN:-$BUILD_DIR/partners/demo/loyalty-demo}" name var
  if [[ "${QUICKSTART_SKIP_DEMO:-0}" == 1 || ! -x "$demo" ]]; then
    return 0
  fi
  log "running the demo: $demo"
  if ! (
    for name in "${SERVICES[@]}"; do
      var="LOYALTY_${name^^}_ADDR"
      export "$var=$(service_addr "$name")"
    done
    export LOYALTY_DEV_KEYS_FILE="$DEV_KEYS"
    "$demo"
  ); then
    warn "the demo failed (the services keep running)"
  fi
}

# ---------------------------------------------------------------- actions

foreground_pid() {
  local pid
  pid="$(read_pid_file "$FOREGROUND_PIDFILE")" || return 1
  pid_alive "$pid" "quickstart.sh" || return 1
  printf '%s\n' "$pid"
}

start_failed() {
  warn "startup failed; stopping everything"
  stop_all || true
  exit 1
}

start_all() {
  local t0 name
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  install_deps
  build
  check_health_checker
  ensure_dev_keys
  t0="$(now)"
  "$DEV_DB" start "$DB_DIR"
  DB_PORT="$(dev_db_port_of "$DB_DIR")" || die "cannot read the database port from $DB_DIR/my.cnf"
  for name in "${SERVICES[@]}"; do
    start_service "$name" || start_failed
  done
  for name in "${SERVICES[@]}"; do
    wait_healthy "$name" || start_failed
    log "$name is SERVING"
  done
  log "startup took $(($(now) - t0))s"
  print_endpoints
  run_demo
}

do_stop() {
  local pid
  if pid="$(foreground_pid)"; then
    log "asking the foreground quickstart (pid $pid) to stop"
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" $((STOP_TIMEOUT * 2 + 70)) || warn "the foreground quickstart (pid $pid) is still running"
  fi
  rm -f "$FOREGROUND_PIDFILE"
  stop_all
}

do_status() {
  local name pid addr rc=0 fg
  if fg="$(foreground_pid)"; then
    log "foreground quickstart running (pid $fg)"
  fi
  for name in "${SERVICES[@]}"; do
    if pid="$(service_pid "$name")"; then
      addr="$(service_addr "$name")"
      if grpc_health_check "$addr" 2; then
        log "$name: SERVING on $addr (pid $pid)"
      else
        log "$name: running but not SERVING on $addr (pid $pid)"
        rc=3
      fi
    else
      log "$name: not running"
      rc=3
    fi
  done
  "$DEV_DB" status "$DB_DIR" || rc=3
  return "$rc"
}

SLEEP_PID=""
on_signal() {
  trap - INT TERM
  if [[ -n "$SLEEP_PID" ]]; then kill "$SLEEP_PID" 2>/dev/null || true; fi
  printf '\n'
  log "stopping"
  stop_all || true
  rm -f "$FOREGROUND_PIDFILE"
  log "stopped"
  exit 0
}

do_run() {
  local pid name reported=" "
  if pid="$(foreground_pid)" && ((pid != $$)); then
    log "already running in the foreground (pid $pid); use '$0 stop' to stop it"
    do_status || true
    return 0
  fi
  mkdir -p "$RUN_DIR"
  printf '%s\n' "$$" >"$FOREGROUND_PIDFILE"
  trap 'rm -f "$FOREGROUND_PIDFILE"' EXIT
  trap on_signal INT TERM
  start_all
  log "running; press Ctrl-C (or run '$0 stop') to stop everything"
  while true; do
    sleep 2 &
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
    SLEEP_PID=""
    for name in "${SERVICES[@]}"; do
      if ! service_pid "$name" >/dev/null && [[ "$reported" != *" $name "* ]]; then
        warn "$name is no longer running (log: $(service_log "$name"))"
        reported+="$name "
      fi
    done
  done
}

case "$ACTION" in
  run) do_run ;;
  start)
    if pid="$(foreground_pid)"; then
      log "already running in the foreground (pid $pid)"
    fi
    start_all
    log "left running; stop with: $0 stop"
    ;;
  stop) do_stop ;;
  status)
    rc=0
    do_status || rc=$?
    exit "$rc"
    ;;
esac
