# shellcheck shell=bash
# Shared helpers for the deploy/ scripts. Source it, do not run it:
#
#   SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
#   . "$SCRIPT_DIR/lib.sh"
#   lib_init "$(basename -- "$0")"
#
# After lib_init: REPO_ROOT (absolute, physical), DEPLOY_DIR, BUILD_DIR, DATA_DIR.

# Debian's python3 (the one python3-grpcio is installed for). A pyenv or venv
# python3 earlier on PATH would not see the Debian modules.
LOYALTY_PYTHON="${LOYALTY_PYTHON:-/usr/bin/python3}"

# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
lib_init() {
  PROG="$1"
  DEPLOY_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
  REPO_ROOT="$(cd -- "$DEPLOY_DIR/.." && pwd -P)"
  BUILD_DIR="$REPO_ROOT/build"
  DATA_DIR="$REPO_ROOT/.data"
  export REPO_ROOT
}

log() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

# abs_path PATH: absolute path (relative to the current directory), without
# requiring it to exist.
abs_path() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$(pwd -P)" "${1#./}" ;;
  esac
}

# pid_alive PID [PATTERN]: the process exists (and is not a zombie), and, if
# PATTERN is given, its command line contains PATTERN (guards against pid reuse).
pid_alive() {
  local pid="$1" pattern="${2:-}" state cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -d "/proc/$pid" ]] || return 1
  state="$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != "Z" && "$state" != "X" ]] || return 1
  if [[ -n "$pattern" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"$pattern"* ]] || return 1
  fi
  return 0
}

# read_pid_file FILE: prints the pid in FILE, if it holds one.
read_pid_file() {
  local pid=""
  [[ -r "$1" ]] || return 1
  read -r pid <"$1" 2>/dev/null || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$pid"
}

# wait_pid_exit PID TIMEOUT_SECONDS: 0 once the process is gone, 1 on timeout.
wait_pid_exit() {
  local pid="$1" timeout="$2" waited=0
  while pid_alive "$pid"; do
    if ((waited >= timeout * 10)); then
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  return 0
}

# port_in_use PORT [HOST]: something is listening on HOST:PORT (TCP).
port_in_use() {
  local port="$1" host="${2:-127.0.0.1}"
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
    return
  fi
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# tail_file FILE [LINES]: prints the end of a log file, indented, to stderr.
tail_file() {
  local file="$1" lines="${2:-40}"
  if [[ -s "$file" ]]; then
    printf '%s: ---- last %s lines of %s ----\n' "$PROG" "$lines" "$file" >&2
    tail -n "$lines" -- "$file" | sed 's/^/    /' >&2
    printf '%s: ----\n' "$PROG" >&2
  else
    printf '%s: (%s is empty or missing)\n' "$PROG" "$file" >&2
  fi
}

# dev_db_port_of DIR: the port recorded in DIR/my.cnf by deploy/dev-db.sh (the
# port a running server listens on).
dev_db_port_of() {
  local port
  [[ -r "$1/my.cnf" ]] || return 1
  port="$(sed -n 's/^port[[:space:]]*=[[:space:]]*\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$1/my.cnf" | head -n 1)"
  [[ -n "$port" ]] || return 1
  printf '%s\n' "$port"
}

# cmake_configure: configure BUILD_DIR with the project's fixed settings.
cmake_configure() {
  cmake -S "$REPO_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
}

# Parallelism of builds and tests: the machines have 2 cores.
LOYALTY_JOBS="${LOYALTY_JOBS:-2}"

# grpc_health_check HOST:PORT [TIMEOUT_SECONDS]: 0 when the server's gRPC
# health service answers SERVING for the whole server (service "").
# Uses the project's C++ tool build/tools/loyalty-healthcheck when it has
# been built; otherwise Debian's python3-grpcio with hand-encoded messages
# (Debian ships no grpc_health python module): HealthCheckRequest{service=""}
# is the empty message, and HealthCheckResponse{status=SERVING} is 08 01.
grpc_health_check() {
  local target="$1" timeout="${2:-2}"
  local tool="$BUILD_DIR/tools/loyalty-healthcheck"
  if [[ -x "$tool" ]]; then
    timeout "$((timeout + 3))" "$tool" "$target" >/dev/null 2>&1
    return
  fi
  "$LOYALTY_PYTHON" - "$target" "$timeout" <<'PY' >/dev/null 2>&1
import sys
import grpc

target, timeout = sys.argv[1], float(sys.argv[2])
with grpc.insecure_channel(target) as channel:
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        response = check(b"", timeout=timeout)
    except (grpc.RpcError, grpc.FutureTimeoutError) as error:
        print(error, file=sys.stderr)
        sys.exit(2)
# Field 1 (status), varint; SERVING = 1. An empty message means UNKNOWN (0).
status = response[1] if len(response) >= 2 and response[0] == 0x08 else 0
sys.exit(0 if status == 1 else 1)
PY
}

# app_user_sql USER PASSWORD: the statements that create USER @localhost and
# @127.0.0.1 with PASSWORD (set again if it exists) and give it ALL on the
# databases named loyalty%. Printed, for the server's stdin, so that the
# password never appears on a command line.
app_user_sql() {
  local user="$1" pw="$2" host
  # A single-quoted SQL string literal (NO_BACKSLASH_ESCAPES is off).
  pw="${pw//\\/\\\\}"
  pw="${pw//\'/\\\'}"
  for host in localhost 127.0.0.1; do
    printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$user" "$host" "$pw"
    printf "ALTER USER '%s'@'%s' IDENTIFIED BY '%s';\n" "$user" "$host" "$pw"
    printf "GRANT ALL PRIVILEGES ON \`loyalty%%\`.* TO '%s'@'%s';\n" "$user" "$host"
  done
  printf 'FLUSH PRIVILEGES;\n'
}
