#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, test and run the platform.
#
#   deploy/install-deps.sh
#
# Harmless to run twice: when every package is already installed it does not
# touch apt at all. Otherwise it runs apt-get update and installs the missing
# ones non-interactively (as root, or through sudo when available).
#
# The mariadb-server package is only needed for its binaries (mariadbd,
# mariadb-install-db): the project runs its own private server, see
# deploy/dev-db.sh. The Debian package would start and enable a system MariaDB
# on install; this script prevents that with a temporary policy-rc.d (and, on
# a systemd machine, disables the unit it just installed).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$SCRIPT_DIR/lib.sh"
lib_init "$(basename -- "$0")"

PACKAGES=(
  build-essential cmake ninja-build pkg-config g++
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libabsl-dev libmysqlcppconn-dev libssl-dev openssl
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  mariadb-server mariadb-client galera-4 rsync
  python3 python3-grpcio python3-protobuf
  procps iproute2 tzdata
)

# One dpkg-query for all: prints the packages that are not fully installed.
missing_packages() {
  local installed
  installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null |
    awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)"
  local pkg
  for pkg in "${PACKAGES[@]}"; do
    if ! grep -qxF -- "$pkg" <<<"$installed"; then
      printf '%s\n' "$pkg"
    fi
  done
}

mapfile -t MISSING < <(missing_packages)
if ((${#MISSING[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

log "missing packages: ${MISSING[*]}"

SUDO=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    die "not root and no sudo; as root run: apt-get update && apt-get install -y ${MISSING[*]}"
  fi
fi

# Keep the Debian package from starting a system MariaDB during the install
# (invoke-rc.d honours policy-rc.d). Only when there is no policy already.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=0
MARIADB_NEW=0
for pkg in "${MISSING[@]}"; do
  [[ "$pkg" == mariadb-server ]] && MARIADB_NEW=1
done
cleanup() {
  if ((OUR_POLICY)); then
    "${SUDO[@]}" rm -f "$POLICY" || true
  fi
}
trap cleanup EXIT
if ((MARIADB_NEW)) && [[ ! -e "$POLICY" ]]; then
  printf '#!/bin/sh\n# temporary, from %s: do not start services during install\nexit 101\n' "$PROG" |
    "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  OUR_POLICY=1
fi

APT_OPTS=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
export DEBIAN_FRONTEND=noninteractive

log "apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update
log "apt-get install ${MISSING[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${MISSING[@]}"

# On a machine booted with systemd the package enables the unit regardless of
# policy-rc.d: undo that for a server we just installed (we never use it).
if ((MARIADB_NEW)) && [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  log "disabling the system mariadb service installed as a side effect (the project uses deploy/dev-db.sh)"
  "${SUDO[@]}" systemctl disable --now mariadb.service >/dev/null 2>&1 || true
fi

mapfile -t STILL_MISSING < <(missing_packages)
if ((${#STILL_MISSING[@]} > 0)); then
  die "still missing after apt-get install: ${STILL_MISSING[*]}"
fi
log "all ${#PACKAGES[@]} packages are installed"
