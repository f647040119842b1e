#!/usr/bin/env bash
# A private MariaDB server owned by the project: no system service, no root
# password, data in a folder of the checkout.
#
#   deploy/dev-db.sh start|stop|status|restart [DIR]
#
# DIR        data folder (default: DEV_DB_DIR, else <repo>/.data/mariadb).
#            Holds my.cnf, data/, tmp/, mysqld.sock, mysqld.pid, error.log.
# DEV_DB_PORT      TCP port on 127.0.0.1 (default: the port DIR last ran on,
#                  else 3307).
# DEV_DB_PASSWORD  password of the application user `loyalty` (default
#                  loyalty-dev); set again on every start.
# DEV_DB_START_TIMEOUT  seconds to wait for the server to answer (default 60).
# DEV_DB_STOP_TIMEOUT   seconds to wait for a clean shutdown (default 60).
#
# The user `loyalty` (@localhost and @127.0.0.1) has ALL on the databases whose
# names match `loyalty%`. The administrator is the OS user running this script,
# authenticated by the unix socket (no password).
#
# Exit codes: 0 ok (status: running), 1 error, 2 usage, 3 status: not running.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$SCRIPT_DIR/lib.sh"
lib_init "$(basename -- "$0")"

usage() {
  printf 'usage: %s start|stop|status|restart [DIR]\n' "$PROG" >&2
  exit 2
}

(($# >= 1 && $# <= 2)) || usage
ACTION="$1"
case "$ACTION" in start | stop | status | restart) ;; *) usage ;; esac

DIR="$(abs_path "${2:-${DEV_DB_DIR:-$DATA_DIR/mariadb}}")"
DIR="${DIR%/}"
CNF="$DIR/my.cnf"
DATADIR="$DIR/data"
TMPDIR_DB="$DIR/tmp"
SOCKET="$DIR/mysqld.sock"
PIDFILE="$DIR/mysqld.pid"
ERRLOG="$DIR/error.log"
OUTLOG="$DIR/mariadbd.out"
LOCKFILE="$DIR/.dev-db.lock"
HOST=127.0.0.1
APP_USER=loyalty
ADMIN_USER="$(id -un)"
START_TIMEOUT="${DEV_DB_START_TIMEOUT:-60}"
STOP_TIMEOUT="${DEV_DB_STOP_TIMEOUT:-60}"

# Unix socket paths are limited to sizeof(sun_path) - 1 = 107 bytes.
if ((${#SOCKET} > 107)); then
  die "socket path is ${#SOCKET} bytes, the limit is 107: $SOCKET (use a shorter DIR)"
fi

# The port: the environment, else the one recorded in DIR's my.cnf, else 3307.
recorded_port() { dev_db_port_of "$DIR"; }
PORT="${DEV_DB_PORT:-}"
if [[ -z "$PORT" ]]; then
  PORT="$(recorded_port || true)"
  PORT="${PORT:-3307}"
fi
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
  die "bad DEV_DB_PORT: $PORT"
fi

# is_our_server PID: PID is a mariadbd started with this DIR's my.cnf.
is_our_server() {
  local pid="$1" comm=""
  pid_alive "$pid" || return 1
  read -r comm <"/proc/$pid/comm" 2>/dev/null || return 1
  [[ "$comm" == mariadbd ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--defaults-file=$CNF"
}

# The pid of the server running on DIR, if any. The pid file may be stale
# (after kill -9 or a crash); is_our_server guards against pid reuse. Without
# a pid file (e.g. killed during startup), look for a mariadbd started with
# this DIR's my.cnf.
server_pid() {
  local pid file
  if pid="$(read_pid_file "$PIDFILE")" && is_our_server "$pid"; then
    printf '%s\n' "$pid"
    return 0
  fi
  while IFS= read -r file; do
    pid="${file#/proc/}"
    pid="${pid%/cmdline}"
    if is_our_server "$pid"; then
      printf '%s\n' "$pid"
      return 0
    fi
  done < <(grep -laF -- "--defaults-file=$CNF" /proc/[0-9]*/cmdline 2>/dev/null || true)
  return 1
}

admin() {
  mariadb-admin --no-defaults --protocol=socket --socket="$SOCKET" --user="$ADMIN_USER" \
    --connect-timeout=5 "$@"
}

sql_admin() {
  mariadb --no-defaults --protocol=socket --socket="$SOCKET" --user="$ADMIN_USER" \
    --connect-timeout=5 --batch --skip-column-names
}

require_binaries() {
  local bin missing=()
  for bin in mariadbd mariadb-install-db mariadb mariadb-admin; do
    command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]] || missing+=("$bin")
  done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: run deploy/install-deps.sh"
}

mariadbd_bin() {
  command -v mariadbd 2>/dev/null || printf '/usr/sbin/mariadbd\n'
}

write_cnf() {
  local user_line=""
  # mariadbd refuses to run as root unless told to.
  ((EUID == 0)) && user_line="user = root"
  cat >"$CNF.tmp" <<EOF
# Written by deploy/dev-db.sh on every start; edits are overwritten.
# Read with --defaults-file, so no system option file is read.
[mysqld]
${user_line}
datadir = $DATADIR
tmpdir = $TMPDIR_DB
socket = $SOCKET
pid-file = $PIDFILE
log-error = $ERRLOG
port = $PORT
bind-address = $HOST
skip-name-resolve
skip-external-locking

character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
default-storage-engine = InnoDB
# REPEATABLE-READ is the default; stated so nobody wonders.
transaction-isolation = REPEATABLE-READ

# Durability: every commit is on disk when acknowledged.
innodb_flush_log_at_trx_commit = 1
innodb_doublewrite = 1
innodb_file_per_table = 1
innodb_buffer_pool_size = 512M
innodb_lock_wait_timeout = 10

max_connections = 500
performance_schema = OFF

[client]
socket = $SOCKET
port = $PORT
default-character-set = utf8mb4
EOF
  mv -f "$CNF.tmp" "$CNF"
}

setup_users() {
  app_user_sql "$APP_USER" "${DEV_DB_PASSWORD:-loyalty-dev}" | sql_admin
}

print_info() {
  log "host:     $HOST"
  log "port:     $PORT"
  log "socket:   $SOCKET"
  log "user:     $APP_USER (password from DEV_DB_PASSWORD, default loyalty-dev)"
  log "data dir: $DIR"
  log "admin:    mariadb --no-defaults --socket=$SOCKET --user=$ADMIN_USER"
}

# Serialises start/stop/restart on one DIR (fd 9, released on exit).
LOCKED=0
lock_dir() {
  ((LOCKED)) && return 0
  mkdir -p "$DIR"
  exec 9>"$LOCKFILE"
  if ! flock -w 120 9; then
    die "another $PROG is busy with $DIR (lock $LOCKFILE)"
  fi
  LOCKED=1
}

# A running server keeps the port it was started with (recorded in my.cnf).
use_running_port() {
  local running
  running="$(recorded_port || true)"
  [[ -n "$running" ]] || return 0
  if [[ -n "${DEV_DB_PORT:-}" && "$DEV_DB_PORT" != "$running" ]]; then
    warn "running on port $running, not DEV_DB_PORT=$DEV_DB_PORT; use restart to change it"
  fi
  PORT="$running"
}

# The data folder is initialised once; the marker is written only after
# mariadb-install-db succeeded, so an interrupted initialisation is redone.
INIT_MARKER_NAME=.initialized
init_db() {
  local marker="$DIR/$INIT_MARKER_NAME" existing
  [[ -f "$marker" ]] && return 0
  if [[ -d "$DATADIR" ]]; then
    existing="$(find "$DATADIR" -mindepth 1 -maxdepth 1 -type d -name 'loyalty*' -print -quit)"
    if [[ -n "$existing" ]]; then
      die "$DATADIR holds databases but $marker is missing; if the data is intact, create that file (touch) and start again"
    fi
  fi
  log "initialising a new database in $DATADIR"
  rm -rf "$DATADIR"
  mkdir -p "$DATADIR"
  if ! mariadb-install-db --defaults-file="$CNF" \
    --datadir="$DATADIR" \
    --auth-root-authentication-method=socket \
    --auth-root-socket-user="$ADMIN_USER" \
    --skip-test-db \
    --skip-name-resolve >"$DIR/install-db.log" 2>&1; then
    tail_file "$DIR/install-db.log"
    rm -rf "$DATADIR"
    die "mariadb-install-db failed (log: $DIR/install-db.log)"
  fi
  : >"$marker"
}

# wait_ready PID: waits until the server answers on its socket; dies if the
# process exits or START_TIMEOUT passes.
wait_ready() {
  local pid="$1" waited=0
  until admin ping >/dev/null 2>&1; do
    if ! pid_alive "$pid"; then
      tail_file "$ERRLOG"
      die "mariadbd exited during startup (log: $ERRLOG)"
    fi
    if ((waited >= START_TIMEOUT * 5)); then
      tail_file "$ERRLOG"
      die "mariadbd did not answer within ${START_TIMEOUT}s (pid $pid, log: $ERRLOG); stop it with: $0 stop $DIR"
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
}

do_start() {
  local pid
  require_binaries
  lock_dir
  if pid="$(server_pid)"; then
    use_running_port
    log "already running (pid $pid)"
    wait_ready "$pid"
    setup_users || die "could not update the user $APP_USER"
    print_info
    return 0
  fi
  if [[ -e "$PIDFILE" || -e "$SOCKET" ]]; then
    log "removing stale pid file and socket (unclean stop); InnoDB recovers on start"
    rm -f "$PIDFILE" "$SOCKET" "$SOCKET.lock"
  fi
  if port_in_use "$PORT" "$HOST"; then
    die "port $PORT is already in use by another process; set DEV_DB_PORT to a free port"
  fi
  mkdir -p "$TMPDIR_DB"
  write_cnf

  init_db

  log "starting mariadbd on $HOST:$PORT"
  # setsid: own session, so a Ctrl-C in the caller's terminal does not reach
  # it; fd 9 (the lock) is not inherited.
  setsid "$(mariadbd_bin)" --defaults-file="$CNF" </dev/null >>"$OUTLOG" 2>&1 9>&- &
  local launched=$!
  wait_ready "$launched"

  if ! setup_users; then
    tail_file "$ERRLOG"
    die "could not create the user $APP_USER"
  fi
  log "running (pid $launched)"
  print_info
}

do_stop() {
  local pid
  if [[ ! -d "$DIR" ]]; then
    log "not running ($DIR does not exist)"
    return 0
  fi
  lock_dir
  if ! pid="$(server_pid)"; then
    rm -f "$PIDFILE" "$SOCKET" "$SOCKET.lock"
    log "not running ($DIR)"
    return 0
  fi
  log "stopping mariadbd (pid $pid)"
  if ! admin shutdown >/dev/null 2>&1; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  if ! wait_pid_exit "$pid" "$STOP_TIMEOUT"; then
    tail_file "$ERRLOG"
    die "mariadbd (pid $pid) did not stop within ${STOP_TIMEOUT}s"
  fi
  log "stopped"
}

do_status() {
  local pid
  if pid="$(server_pid)"; then
    use_running_port
    if admin ping >/dev/null 2>&1; then
      log "running (pid $pid), answering"
    else
      log "running (pid $pid), not answering yet"
    fi
    log "host: $HOST  port: $PORT  socket: $SOCKET  data dir: $DIR"
    return 0
  fi
  log "not running  (port: $PORT  socket: $SOCKET  data dir: $DIR)"
  return 3
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  status)
    rc=0
    do_status || rc=$?
    exit "$rc"
    ;;
  restart)
    do_stop
    do_start
    ;;
esac
