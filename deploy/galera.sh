#!/usr/bin/env bash
# A private three-node MariaDB Galera cluster owned by the project, on the
# loopback of this one machine: no system service, no root password, data in a
# folder. For tests, and for trying the service against a cluster and its
# replicas. The single-server counterpart is deploy/dev-db.sh.
#
#   deploy/galera.sh start|stop|status [DIR]
#   deploy/galera.sh restart-node|kill-node|start-node N [DIR]
#
# start         Starts the nodes that are not running and waits until all three
#               are Synced in one cluster of size 3. When no node runs, one node
#               bootstraps a new cluster (--wsrep-new-cluster): on the first
#               start node 1, its data folder created with mariadb-install-db;
#               later the node stopped last (grastate.dat safe_to_bootstrap: 1),
#               else (after a crash or a lost quorum) the node with the highest
#               seqno (mariadbd --wsrep-recover), node 1 on a tie. The other
#               nodes then join one at a time, by SST (rsync) or, if they have
#               the history, IST. When nodes run, the missing ones join them.
#               Creates or updates the user `loyalty`.
# stop          Stops the running nodes one after the other, node 1 last (so
#               node 1 bootstraps the next start), each with mariadb-admin
#               shutdown; kill -9 after GALERA_STOP_TIMEOUT.
# status        Each node's pid, ports and wsrep state.
# kill-node N   kill -9 of node N (and of its SST helpers), for fault tests;
#               does not wait for a start or stop busy with DIR (a node can be
#               killed during its SST).
# start-node N  Starts node N (after a crash, from its recovered position, so
#               it can catch up by IST) and waits until it is Synced in the
#               running cluster; another node must be running.
# restart-node N  Clean shutdown of node N, then start-node N.
#
# DIR        data folder (default: GALERA_DIR, else <repo>/.data/galera). Node i
#            (1..3) lives in DIR/node<i>: my.cnf, data/, tmp/, mysqld.sock,
#            mysqld.pid, error.log.
# GALERA_BASE_PORT        SQL port of node 1 on 127.0.0.1; node i listens on
#                         base+i-1 (default: the ports DIR last ran on, else
#                         3320, i.e. 3320, 3321, 3322).
# GALERA_GCOMM_BASE_PORT  base of the Galera ports on 127.0.0.1 (default: the
#                         ports DIR last ran on, else 4610). Node i: group
#                         communication base+i-1, IST receiver base+10+i-1, SST
#                         receiver (rsync) base+20+i-1; with 4610: 4610-4612,
#                         4620-4622, 4630-4632.
# GALERA_PASSWORD         password of the application user `loyalty` (default
#                         loyalty-test); set again on every start.
# GALERA_START_TIMEOUT    seconds to wait for a start or start-node to be Synced
#                         (default 180).
# GALERA_STOP_TIMEOUT     seconds to wait for each node's clean shutdown before
#                         kill -9 (default 60).
#
# The user `loyalty` (@localhost and @127.0.0.1) has ALL on the databases whose
# names match `loyalty%`. The administrator is the OS user running this script,
# authenticated by each node's unix socket (no password). Reads are not causal
# across nodes (wsrep_sync_wait=0, the server's default): a row committed on
# one node is on the others a moment later; SET SESSION wsrep_sync_wait=1 for
# read-your-writes across nodes.
#
# Run as root, mariadbd runs with user = root, and the SST method is a wrapper of
# rsync's in DIR/sst-bin (see write_sst_wrappers). Memory is kept small (128M
# buffer pool, 64M gcache per node): about 150 MB resident per node.
#
# Exit codes: 0 ok (status: all 3 nodes Synced in a cluster of 3), 1 error,
# 2 usage, 3 status: not all 3 Synced.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$SCRIPT_DIR/lib.sh"
lib_init "$(basename -- "$0")"

usage() {
  printf 'usage: %s start|stop|status [DIR]\n' "$PROG" >&2
  printf '       %s restart-node|kill-node|start-node N [DIR]   (N: 1, 2 or 3)\n' "$PROG" >&2
  exit 2
}

(($# >= 1)) || usage
ACTION="$1"
NODE=""
case "$ACTION" in
  start | stop | status)
    (($# <= 2)) || usage
    DIR_ARG="${2:-}"
    ;;
  restart-node | kill-node | start-node)
    (($# >= 2 && $# <= 3)) || usage
    NODE="$2"
    [[ "$NODE" =~ ^[123]$ ]] || usage
    DIR_ARG="${3:-}"
    ;;
  *) usage ;;
esac

DIR="$(abs_path "${DIR_ARG:-${GALERA_DIR:-$DATA_DIR/galera}}")"
DIR="${DIR%/}"
NODES=(1 2 3)
LOCKFILE="$DIR/.galera.lock"
HOST=127.0.0.1
APP_USER=loyalty
ADMIN_USER="$(id -un)"
START_TIMEOUT="${GALERA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${GALERA_STOP_TIMEOUT:-60}"
PROVIDER=/usr/lib/galera/libgalera_smm.so

node_dir() { printf '%s/node%s\n' "$DIR" "$1"; }
node_cnf() { printf '%s/node%s/my.cnf\n' "$DIR" "$1"; }
node_datadir() { printf '%s/node%s/data\n' "$DIR" "$1"; }
node_socket() { printf '%s/node%s/mysqld.sock\n' "$DIR" "$1"; }
node_pidfile() { printf '%s/node%s/mysqld.pid\n' "$DIR" "$1"; }
node_errlog() { printf '%s/node%s/error.log\n' "$DIR" "$1"; }

# Unix socket paths are limited to sizeof(sun_path) - 1 = 107 bytes.
SOCKET3="$(node_socket 3)"
if ((${#SOCKET3} > 107)); then
  die "socket path is ${#SOCKET3} bytes, the limit is 107: $SOCKET3 (use a shorter DIR)"
fi

# The ports a cluster ran on are recorded in node 1's my.cnf: the SQL port
# (port = ...) and the group communication port (gmcast.listen_addr).
recorded_base_port() { dev_db_port_of "$(node_dir 1)"; }
recorded_gcomm_base_port() {
  local cnf port
  cnf="$(node_cnf 1)"
  [[ -r "$cnf" ]] || return 1
  port="$(sed -n 's|^wsrep_provider_options.*gmcast\.listen_addr=tcp://[^;:]*:\([0-9][0-9]*\).*|\1|p' "$cnf" | head -n 1)"
  [[ -n "$port" ]] || return 1
  printf '%s\n' "$port"
}

check_port_number() {
  if ! [[ "$2" =~ ^[0-9]+$ ]] || (($2 < 1 || $2 + 22 > 65535)); then
    die "bad $1: $2"
  fi
}

# set_ports BASE GCOMM_BASE: the ports of every node, in SQL_PORT[i],
# GCOMM_PORT[i], IST_PORT[i] and SST_PORT[i].
declare -a SQL_PORT GCOMM_PORT IST_PORT SST_PORT
set_ports() {
  local base="$1" gbase="$2" i sql galera
  check_port_number GALERA_BASE_PORT "$base"
  check_port_number GALERA_GCOMM_BASE_PORT "$gbase"
  GCOMM_BASE_PORT="$gbase"
  for i in "${NODES[@]}"; do
    SQL_PORT[i]=$((base + i - 1))
    GCOMM_PORT[i]=$((gbase + i - 1))
    IST_PORT[i]=$((gbase + 10 + i - 1))
    SST_PORT[i]=$((gbase + 20 + i - 1))
  done
  # No SQL port may be one of the Galera ports.
  for sql in "${SQL_PORT[@]}"; do
    for galera in "${GCOMM_PORT[@]}" "${IST_PORT[@]}" "${SST_PORT[@]}"; do
      ((sql != galera)) || die "SQL port $sql is also a Galera port: change GALERA_BASE_PORT or GALERA_GCOMM_BASE_PORT"
    done
  done
}

# The ports: the environment, else the ones recorded in DIR, else the defaults.
ENV_BASE_PORT="${GALERA_BASE_PORT:-}"
ENV_GCOMM_BASE_PORT="${GALERA_GCOMM_BASE_PORT:-}"
initial_base="${ENV_BASE_PORT:-$(recorded_base_port || true)}"
initial_gbase="${ENV_GCOMM_BASE_PORT:-$(recorded_gcomm_base_port || true)}"
set_ports "${initial_base:-3320}" "${initial_gbase:-4610}"

# A running cluster keeps the ports it was started with (recorded in DIR).
use_running_ports() {
  local base gbase
  base="$(recorded_base_port || true)"
  gbase="$(recorded_gcomm_base_port || true)"
  [[ -n "$base" && -n "$gbase" ]] || return 0
  if [[ -n "$ENV_BASE_PORT" && "$ENV_BASE_PORT" != "$base" ]] ||
    [[ -n "$ENV_GCOMM_BASE_PORT" && "$ENV_GCOMM_BASE_PORT" != "$gbase" ]]; then
    warn "the cluster runs on ports $base (SQL) and $gbase (Galera), not the ones in GALERA_BASE_PORT / GALERA_GCOMM_BASE_PORT; stop it to change them"
  fi
  set_ports "$base" "$gbase"
}

# is_our_server PID I: PID is a mariadbd started with node I's my.cnf.
is_our_server() {
  local pid="$1" cnf comm=""
  cnf="$(node_cnf "$2")"
  pid_alive "$pid" || return 1
  read -r comm <"/proc/$pid/comm" 2>/dev/null || return 1
  [[ "$comm" == mariadbd ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--defaults-file=$cnf"
}

# node_pid I: the pid of node I's server, if it runs. The pid file may be stale
# (after kill -9 or a crash); is_our_server guards against pid reuse. Without
# a pid file (e.g. killed during startup or SST), look for a mariadbd started
# with node I's my.cnf.
node_pid() {
  local i="$1" pid file cnf
  cnf="$(node_cnf "$i")"
  if pid="$(read_pid_file "$(node_pidfile "$i")")" && is_our_server "$pid" "$i"; then
    printf '%s\n' "$pid"
    return 0
  fi
  while IFS= read -r file; do
    pid="${file#/proc/}"
    pid="${pid%/cmdline}"
    if is_our_server "$pid" "$i"; then
      printf '%s\n' "$pid"
      return 0
    fi
  done < <(grep -laF -- "--defaults-file=$cnf" /proc/[0-9]*/cmdline 2>/dev/null || true)
  return 1
}

# running_nodes: prints the numbers of the nodes whose server runs.
running_nodes() {
  local i
  for i in "${NODES[@]}"; do
    if node_pid "$i" >/dev/null; then
      printf '%s\n' "$i"
    fi
  done
}

admin() {
  local i="$1"
  shift
  mariadb-admin --no-defaults --protocol=socket --socket="$(node_socket "$i")" \
    --user="$ADMIN_USER" --connect-timeout=5 "$@"
}

sql_admin() {
  mariadb --no-defaults --protocol=socket --socket="$(node_socket "$1")" --user="$ADMIN_USER" \
    --connect-timeout=5 --batch --skip-column-names
}

# wsrep_state I: prints "cluster_size local_state ready cluster_status" of node
# I (e.g. "3 Synced ON Primary"); fails while the node does not answer (a
# joiner does not until its SST is done).
wsrep_state() {
  local out
  out="$(printf '%s\n' "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_status');" |
    sql_admin "$1" 2>/dev/null)" || return 1
  awk -F '\t' '
    $1 == "wsrep_cluster_size" { size = $2 }
    $1 == "wsrep_local_state_comment" { state = $2 }
    $1 == "wsrep_ready" { ready = $2 }
    $1 == "wsrep_cluster_status" { status = $2 }
    END {
      if (state == "") exit 1
      printf "%s %s %s %s\n", size, state, ready, status
    }' <<<"$out"
}

# node_synced I [SIZE]: node I is Synced, ready and in the Primary component
# (of SIZE nodes, if given).
node_synced() {
  local size state ready status
  read -r size state ready status < <(wsrep_state "$1" || true) || return 1
  [[ "$state" == Synced && "$ready" == ON && "$status" == Primary ]] || return 1
  [[ -z "${2:-}" || "$size" == "$2" ]]
}

# node_primary I: node I answers, and is in the Primary component.
node_primary() {
  local size state ready status
  read -r size state ready status < <(wsrep_state "$1" || true) || return 1
  [[ "$status" == Primary && "$ready" == ON ]]
}

require_binaries() {
  local bin missing=()
  for bin in mariadbd mariadb-install-db mariadb mariadb-admin rsync wsrep_sst_rsync; do
    command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]] || missing+=("$bin")
  done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: install mariadb-server, galera-4 and rsync"
  [[ -r "$PROVIDER" ]] || die "missing $PROVIDER: install galera-4"
}

mariadbd_bin() {
  command -v mariadbd 2>/dev/null || printf '/usr/sbin/mariadbd\n'
}

# write_cnf I: node I's my.cnf, written again on every start of the node.
write_cnf() {
  local i="$1" dir cnf user_line="" cluster_address="" j
  dir="$(node_dir "$i")"
  cnf="$(node_cnf "$i")"
  # mariadbd refuses to run as root unless told to.
  ((EUID == 0)) && user_line="user = root"
  for j in "${NODES[@]}"; do
    cluster_address+="${cluster_address:+,}$HOST:${GCOMM_PORT[j]}"
  done
  mkdir -p "$dir/tmp"
  cat >"$cnf.tmp" <<EOF
# Written by deploy/galera.sh on every start of the node; edits are overwritten.
# Read with --defaults-file, so no system option file is read.
[mysqld]
${user_line}
datadir = $(node_datadir "$i")
tmpdir = $dir/tmp
socket = $(node_socket "$i")
pid-file = $(node_pidfile "$i")
log-error = $(node_errlog "$i")
port = ${SQL_PORT[i]}
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
innodb_lock_wait_timeout = 10
# Small: three nodes share a 2-core machine with other servers.
innodb_buffer_pool_size = 128M
innodb_log_file_size = 48M
max_connections = 200
performance_schema = OFF

# Galera: every node on $HOST, each with its own ports.
wsrep_on = ON
wsrep_provider = $PROVIDER
wsrep_cluster_name = loyalty-galera-$GCOMM_BASE_PORT
wsrep_cluster_address = gcomm://$cluster_address
wsrep_node_name = node$i
wsrep_node_address = $HOST:${GCOMM_PORT[i]}
wsrep_node_incoming_address = $HOST:${SQL_PORT[i]}
# pc.recovery off: after a crash of every node, start chooses the node that
# bootstraps (by recovered seqno), not the nodes themselves.
wsrep_provider_options = "gmcast.listen_addr=tcp://$HOST:${GCOMM_PORT[i]};ist.recv_addr=$HOST:${IST_PORT[i]};gcache.size=64M;pc.recovery=FALSE"
wsrep_sst_method = $SST_METHOD
wsrep_sst_receive_address = $HOST:${SST_PORT[i]}
binlog_format = ROW
innodb_autoinc_lock_mode = 2

[client]
socket = $(node_socket "$i")
port = ${SQL_PORT[i]}
default-character-set = utf8mb4
EOF
  mv -f "$cnf.tmp" "$cnf"
}

# setup_users I: through node I; Galera replicates the statements.
setup_users() {
  app_user_sql "$APP_USER" "${GALERA_PASSWORD:-loyalty-test}" | sql_admin "$1"
}

print_info() {
  local i
  for i in "${NODES[@]}"; do
    log "node$i:    $HOST:${SQL_PORT[i]}  socket $(node_socket "$i")"
  done
  log "galera:   group $HOST:${GCOMM_PORT[1]}-${GCOMM_PORT[3]}  IST ${IST_PORT[1]}-${IST_PORT[3]}  SST ${SST_PORT[1]}-${SST_PORT[3]}"
  log "user:     $APP_USER (password from GALERA_PASSWORD, default loyalty-test)"
  log "data dir: $DIR"
  log "admin:    mariadb --no-defaults --socket=$(node_socket 1) --user=$ADMIN_USER"
}

# Serialises the actions that start or stop nodes on one DIR (fd 9, released
# on exit).
LOCKED=0
lock_dir() {
  ((LOCKED)) && return 0
  mkdir -p "$DIR"
  exec 9>"$LOCKFILE"
  if ! flock -w 300 9; then
    die "another $PROG is busy with $DIR (lock $LOCKFILE)"
  fi
  LOCKED=1
}

# Node 1's data folder is initialised once; the marker is written only after
# mariadb-install-db succeeded, so an interrupted initialisation is redone. The
# other nodes get their data by SST from a running node.
INIT_MARKER_NAME=.initialized
init_node1() {
  local dir datadir marker existing
  dir="$(node_dir 1)"
  datadir="$(node_datadir 1)"
  marker="$dir/$INIT_MARKER_NAME"
  [[ -f "$marker" ]] && return 0
  if [[ -d "$datadir" ]]; then
    existing="$(find "$datadir" -mindepth 1 -maxdepth 1 -type d -name 'loyalty*' -print -quit)"
    if [[ -n "$existing" ]]; then
      die "$datadir holds databases but $marker is missing; if the data is intact, create that file (touch) and start again"
    fi
  fi
  log "node1: initialising a new database in $datadir"
  rm -rf "$datadir"
  mkdir -p "$datadir"
  # wsrep off: the system tables are written locally, node 1 bootstraps the
  # cluster with them.
  if ! mariadb-install-db --defaults-file="$(node_cnf 1)" \
    --datadir="$datadir" \
    --auth-root-authentication-method=socket \
    --auth-root-socket-user="$ADMIN_USER" \
    --skip-test-db \
    --skip-name-resolve \
    --wsrep-on=OFF >"$dir/install-db.log" 2>&1; then
    tail_file "$dir/install-db.log"
    rm -rf "$datadir"
    die "mariadb-install-db failed (log: $dir/install-db.log)"
  fi
  : >"$marker"
}

# grastate_field I KEY: a field of node I's grastate.dat (Galera's saved state).
grastate_field() {
  local file
  file="$(node_datadir "$1")/grastate.dat"
  [[ -r "$file" ]] || return 1
  sed -n "s/^$2:[[:space:]]*\\([^[:space:]]*\\).*/\\1/p" "$file" | head -n 1
}

ZERO_UUID=00000000-0000-0000-0000-000000000000

# node_position I: prints node I's last committed position, uuid:seqno. After
# a clean shutdown it is in grastate.dat; after a crash (seqno -1) it comes
# from InnoDB, by mariadbd --wsrep-recover (as galera_recovery does for the
# system service). Fails if the node has no Galera state.
node_position() {
  local i="$1" uuid seqno recover_log pos
  uuid="$(grastate_field "$i" uuid)" || return 1
  seqno="$(grastate_field "$i" seqno)" || return 1
  if [[ -n "$uuid" && "$uuid" != "$ZERO_UUID" && "$seqno" =~ ^[0-9]+$ ]]; then
    printf '%s:%s\n' "$uuid" "$seqno"
    return 0
  fi
  recover_log="$(node_dir "$i")/wsrep-recover.log"
  # Messages to stderr: stdout is the position.
  log "node$i: was not stopped cleanly; recovering its position (mariadbd --wsrep-recover)" >&2
  write_cnf "$i"
  if ! timeout "$START_TIMEOUT" "$(mariadbd_bin)" --defaults-file="$(node_cnf "$i")" \
    --wsrep-recover --log-error="$recover_log" \
    --pid-file="$(node_dir "$i")/wsrep-recover.pid" </dev/null >/dev/null 2>&1 9>&-; then
    tail_file "$recover_log" 20
    warn "node$i: position recovery failed (log: $recover_log)"
    return 1
  fi
  pos="$(sed -n 's/.*WSREP: Recovered position: *\([0-9a-f-]*:-\{0,1\}[0-9][0-9]*\).*/\1/p' "$recover_log" | tail -n 1)"
  if [[ -z "$pos" || "${pos%%:*}" == "$ZERO_UUID" || ! "${pos##*:}" =~ ^[0-9]+$ ]]; then
    warn "node$i: no position recovered (log: $recover_log)"
    return 1
  fi
  log "node$i: recovered position $pos" >&2
  printf '%s\n' "$pos"
}

# Run as root, the joiner's rsync daemon of wsrep_sst_rsync (its rsyncd.conf
# has no uid/gid) switches to the user nobody, which cannot create the
# directories of the root-owned data folder: every SST fails with "mkdir
# "mysql" (in rsync_sst) failed: Permission denied (13)" (MDEV-40688). So, as
# root, the SST method is loyalty_rsync: DIR/sst-bin/wsrep_sst_loyalty_rsync
# runs Debian's wsrep_sst_rsync with DIR/sst-bin first on PATH, where an rsync
# wrapper keeps the daemon root (--dparam uid=0, gid=0) and passes the other
# rsync calls through. (A PATH set for mariadbd alone does not do: it puts
# its own bin folder, /usr/bin, first for the SST scripts.)
SST_BIN="$DIR/sst-bin"
SST_METHOD=rsync
((EUID == 0)) && SST_METHOD=loyalty_rsync
write_sst_wrappers() {
  local rsync_bin sst_rsync_bin
  rsync_bin="$(command -v rsync)"
  sst_rsync_bin="$(command -v wsrep_sst_rsync)"
  mkdir -p "$SST_BIN"
  cat >"$SST_BIN/rsync.tmp" <<EOF
#!/bin/sh
# Written by deploy/galera.sh: the SST rsync daemon stays root (MDEV-40688).
for arg in "\$@"; do
  if [ "\$arg" = --daemon ]; then
    exec $rsync_bin "\$@" --dparam=uid=0 --dparam=gid=0
  fi
done
exec $rsync_bin "\$@"
EOF
  cat >"$SST_BIN/wsrep_sst_$SST_METHOD.tmp" <<EOF
#!/bin/sh
# Written by deploy/galera.sh: rsync SST with the rsync wrapper of this folder.
PATH="$SST_BIN:\$PATH"
export PATH
exec $sst_rsync_bin "\$@"
EOF
  chmod 755 "$SST_BIN/rsync.tmp" "$SST_BIN/wsrep_sst_$SST_METHOD.tmp"
  mv -f "$SST_BIN/rsync.tmp" "$SST_BIN/rsync"
  mv -f "$SST_BIN/wsrep_sst_$SST_METHOD.tmp" "$SST_BIN/wsrep_sst_$SST_METHOD"
}

# start_node_process I [ARGS...]: launches node I's mariadbd in the background;
# its pid is LAUNCHED[I] (setsid execs in place: the pid is mariadbd's).
declare -a LAUNCHED
start_node_process() {
  local i="$1" dir
  shift
  dir="$(node_dir "$i")"
  if [[ -e "$(node_pidfile "$i")" || -e "$(node_socket "$i")" ]]; then
    log "node$i: removing stale pid file and socket (unclean stop); InnoDB recovers on start"
    rm -f "$(node_pidfile "$i")" "$(node_socket "$i")" "$(node_socket "$i").lock"
  fi
  local port
  for port in "${SQL_PORT[i]}" "${GCOMM_PORT[i]}" "${IST_PORT[i]}" "${SST_PORT[i]}"; do
    if port_in_use "$port" "$HOST"; then
      die "node$i: port $port is already in use by another process; set GALERA_BASE_PORT / GALERA_GCOMM_BASE_PORT to free ports"
    fi
  done
  mkdir -p "$(node_datadir "$i")"
  # setsid: own session and process group (so kill-node can take the SST
  # helpers along), and a Ctrl-C in the caller's terminal does not reach it;
  # fd 9 (the lock) is not inherited.
  local path="$PATH"
  if ((EUID == 0)); then
    write_sst_wrappers
    path="$SST_BIN:$PATH"
  fi
  PATH="$path" setsid "$(mariadbd_bin)" --defaults-file="$(node_cnf "$i")" "$@" \
    </dev/null >>"$dir/mariadbd.out" 2>&1 9>&- &
  LAUNCHED[i]=$!
}

# load_position I: POSITION[I] is node_position I, found once per run (the
# recovery takes seconds); fails if the node has none.
declare -a POSITION
load_position() {
  local i="$1" pos
  if [[ -z "${POSITION[i]:-}" ]]; then
    if pos="$(node_position "$i")"; then
      POSITION[i]="$pos"
    else
      POSITION[i]=none
    fi
  fi
  [[ "${POSITION[i]}" != none ]]
}

# set_start_args I: START_ARGS, the extra options of node I: its start
# position if it crashed (so that it asks for IST from there, not a full SST).
declare -a START_ARGS
set_start_args() {
  local i="$1"
  START_ARGS=()
  [[ "$(grastate_field "$i" seqno 2>/dev/null || true)" == "-1" ]] || return 0
  if load_position "$i"; then
    START_ARGS=("--wsrep_start_position=${POSITION[i]}")
  fi
}

# describe_node I: one line about node I, for status and timeouts.
describe_node() {
  local i="$1" pid state size local_state ready status
  if ! pid="$(node_pid "$i")"; then
    printf 'node%s: not running  (port %s)\n' "$i" "${SQL_PORT[i]}"
    return 0
  fi
  if state="$(wsrep_state "$i")"; then
    read -r size local_state ready status <<<"$state"
    printf 'node%s: pid %s  port %s  %s  cluster_size %s  ready %s  %s\n' \
      "$i" "$pid" "${SQL_PORT[i]}" "$local_state" "$size" "$ready" "$status"
  else
    printf 'node%s: pid %s  port %s  not answering (starting, or receiving SST)\n' "$i" "$pid" "${SQL_PORT[i]}"
  fi
}

# wait_synced SIZE NODE...: waits until each NODE is Synced in the Primary
# component of SIZE nodes (any size if SIZE is empty); dies if one exits, or
# after START_TIMEOUT seconds, with the nodes' states and error logs.
wait_synced() {
  local size="$1" i pending waited=0
  shift
  while :; do
    pending=0
    for i in "$@"; do
      # Just launched, the process may not be mariadbd yet: LAUNCHED[i].
      if ! pid_alive "${LAUNCHED[i]:-}" && ! node_pid "$i" >/dev/null; then
        tail_file "$(node_errlog "$i")"
        die "node$i: mariadbd exited during startup (log: $(node_errlog "$i"))"
      fi
      node_synced "$i" "$size" || pending=1
    done
    ((pending)) || return 0
    if ((waited >= START_TIMEOUT * 2)); then
      for i in "${NODES[@]}"; do
        describe_node "$i" | sed "s/^/$PROG: /" >&2
      done
      for i in "$@"; do
        node_synced "$i" "$size" || tail_file "$(node_errlog "$i")" 30
      done
      die "not Synced within ${START_TIMEOUT}s${size:+ in a cluster of $size}; stop it with: $0 stop $DIR"
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

# primary_node: prints a running node that is in the Primary component,
# waiting up to 30 seconds (a node may be starting or joining).
primary_node() {
  local i waited=0
  while :; do
    for i in "${NODES[@]}"; do
      if node_primary "$i"; then
        printf '%s\n' "$i"
        return 0
      fi
    done
    ((waited < 60)) || return 1
    sleep 0.5
    waited=$((waited + 1))
  done
}

# choose_bootstrap_node: when no node runs, sets BOOT_NODE, the node that
# bootstraps the cluster: the node stopped last (safe_to_bootstrap: 1), else
# the one with the highest seqno (node 1 on a tie), else node 1 (initialised
# first if new).
BOOT_NODE=""
choose_bootstrap_node() {
  local i pos seqno best=0 best_seqno=-1 uuid="" uuids=""
  for i in "${NODES[@]}"; do
    if [[ "$(grastate_field "$i" safe_to_bootstrap 2>/dev/null || true)" == 1 ]] &&
      [[ "$(grastate_field "$i" seqno)" =~ ^[0-9]+$ ]]; then
      BOOT_NODE="$i"
      return 0
    fi
  done
  for i in "${NODES[@]}"; do
    [[ -f "$(node_datadir "$i")/grastate.dat" ]] || continue
    load_position "$i" || continue
    pos="${POSITION[i]}"
    seqno="${pos##*:}"
    uuid="${pos%%:*}"
    [[ " $uuids " == *" $uuid "* ]] || uuids+="${uuids:+ }$uuid"
    if ((seqno > best_seqno)); then
      best="$i"
      best_seqno="$seqno"
    fi
  done
  [[ "$uuids" != *" "* ]] || warn "the nodes hold different cluster histories ($uuids); the one of node$best wins"
  if ((best > 0)); then
    BOOT_NODE="$best"
    return 0
  fi
  if [[ -f "$(node_datadir 2)/grastate.dat" || -f "$(node_datadir 3)/grastate.dat" ]] &&
    [[ ! -f "$(node_dir 1)/$INIT_MARKER_NAME" ]]; then
    die "no node has a recoverable position and node1 is not initialised; remove $DIR to start afresh"
  fi
  BOOT_NODE=1
}

# bootstrap: no node runs; starts a new cluster (history kept) on one node,
# BOOT_NODE.
bootstrap() {
  local boot i
  for i in "${NODES[@]}"; do
    write_cnf "$i"
  done
  choose_bootstrap_node
  boot="$BOOT_NODE"
  if ((boot == 1)); then
    init_node1
  fi
  if [[ -f "$(node_datadir "$boot")/grastate.dat" ]]; then
    # Galera refuses to bootstrap from a node that was not the last to leave;
    # this one was chosen as the most advanced.
    sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$(node_datadir "$boot")/grastate.dat"
  fi
  set_start_args "$boot"
  log "node$boot: bootstrapping the cluster (--wsrep-new-cluster) on $HOST:${SQL_PORT[boot]}"
  start_node_process "$boot" --wsrep-new-cluster "${START_ARGS[@]}"
  wait_synced "" "$boot"
}

do_start() {
  local running=() i primary missing=()
  require_binaries
  lock_dir
  mapfile -t running < <(running_nodes)
  if ((${#running[@]} > 0)); then
    use_running_ports
    log "running: ${running[*]/#/node}; waiting for the Primary component"
    primary="$(primary_node)" ||
      die "${running[*]/#/node} running but none is in the Primary component (quorum lost); restart the cluster: $0 stop $DIR && $0 start $DIR"
  else
    bootstrap
    primary="$BOOT_NODE"
  fi
  if ! setup_users "$primary"; then
    tail_file "$(node_errlog "$primary")"
    die "could not create the user $APP_USER"
  fi
  for i in "${NODES[@]}"; do
    node_pid "$i" >/dev/null || missing+=("$i")
  done
  # One joiner at a time: started together, they disturb each other's group
  # membership (gcomm reconnects, evs timeouts) and take seconds longer.
  for i in "${missing[@]}"; do
    write_cnf "$i"
    set_start_args "$i"
    log "node$i: joining the cluster on $HOST:${SQL_PORT[i]}"
    start_node_process "$i" "${START_ARGS[@]}"
    wait_synced "" "$i"
  done
  wait_synced 3 "${NODES[@]}"
  log "running: 3 nodes Synced"
  print_info
}

# stop_node I: clean shutdown of node I; kill -9 after STOP_TIMEOUT.
stop_node() {
  local i="$1" pid
  pid="$(node_pid "$i")" || return 0
  log "node$i: stopping mariadbd (pid $pid)"
  if ! admin "$i" shutdown >/dev/null 2>&1; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  if ! wait_pid_exit "$pid" "$STOP_TIMEOUT"; then
    tail_file "$(node_errlog "$i")" 20
    warn "node$i: mariadbd (pid $pid) did not stop within ${STOP_TIMEOUT}s; kill -9"
    kill_node_process "$i" "$pid"
  fi
}

# kill_node_process I PID: kill -9 of node I's server, and of its process group
# (SST scripts and rsync) when it leads one (started by this script).
kill_node_process() {
  local i="$1" pid="$2" pgid
  pgid="$(awk '{print $5}' "/proc/$pid/stat" 2>/dev/null || true)"
  if [[ "$pgid" == "$pid" ]]; then
    kill -KILL -- "-$pid" 2>/dev/null || true
  else
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait_pid_exit "$pid" 10 || die "node$i: mariadbd (pid $pid) survived kill -9"
}

do_stop() {
  local i stopped=0
  if [[ ! -d "$DIR" ]]; then
    log "not running ($DIR does not exist)"
    return 0
  fi
  lock_dir
  # Node 1 last: it has safe_to_bootstrap: 1 and bootstraps the next start.
  for i in 3 2 1; do
    if node_pid "$i" >/dev/null; then
      stop_node "$i"
      stopped=1
    fi
    rm -f "$(node_pidfile "$i")" "$(node_socket "$i")" "$(node_socket "$i").lock"
  done
  if ((stopped)); then
    log "stopped"
  else
    log "not running ($DIR)"
  fi
}

do_status() {
  local i synced=0
  if [[ -n "$(running_nodes)" ]]; then
    use_running_ports
  fi
  for i in "${NODES[@]}"; do
    log "$(describe_node "$i")"
    if node_pid "$i" >/dev/null && node_synced "$i" 3; then
      synced=$((synced + 1))
    fi
  done
  log "$synced of 3 nodes Synced  (data dir: $DIR)"
  ((synced == 3)) || return 3
}

# No lock: a fault may strike while a start is busy (e.g. during an SST).
do_kill_node() {
  local i="$1" pid
  if ! pid="$(node_pid "$i")"; then
    log "node$i: not running"
    return 0
  fi
  log "node$i: kill -9 (pid $pid)"
  kill_node_process "$i" "$pid"
  log "node$i: killed"
}

do_start_node() {
  local i="$1" pid others=() j primary
  require_binaries
  lock_dir
  for j in "${NODES[@]}"; do
    ((j == i)) && continue
    node_pid "$j" >/dev/null && others+=("$j")
  done
  ((${#others[@]} > 0)) || die "no other node runs, node$i has no cluster to join; use: $0 start $DIR"
  use_running_ports
  if pid="$(node_pid "$i")"; then
    log "node$i: already running (pid $pid)"
  else
    primary="$(primary_node)" ||
      die "${others[*]/#/node} running but none is in the Primary component (quorum lost); restart the cluster: $0 stop $DIR && $0 start $DIR"
    write_cnf "$i"
    set_start_args "$i"
    log "node$i: joining the cluster (node$primary is Primary) on $HOST:${SQL_PORT[i]}"
    start_node_process "$i" "${START_ARGS[@]}"
  fi
  wait_synced "" "$i"
  log "node$i: $(describe_node "$i" | sed 's/^node[0-9]*: //')"
}

do_restart_node() {
  local i="$1" j running_others=0
  lock_dir
  for j in "${NODES[@]}"; do
    ((j == i)) && continue
    node_pid "$j" >/dev/null && running_others=$((running_others + 1))
  done
  ((running_others > 0)) || die "node$i is the only running node; restart the cluster: $0 stop $DIR && $0 start $DIR"
  use_running_ports
  stop_node "$i"
  do_start_node "$i"
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop ;;
  status)
    rc=0
    do_status || rc=$?
    exit "$rc"
    ;;
  kill-node) do_kill_node "$NODE" ;;
  start-node) do_start_node "$NODE" ;;
  restart-node) do_restart_node "$NODE" ;;
esac
