#!/usr/bin/env bash
# The ledger benchmark (issue 3, "Benchmark"): earn across partners, earn at
# one hot partner and authorise+capture, with the batching writer on and off,
# against a private MariaDB on this machine. Not a timed test: it prints
# figures, the median of BENCH_RUNS runs each.
#
#   tests/load/run_ledger_bench.sh
#
# Needs the project built in build/ (deploy/test.sh, or
# `cmake --build build`): build/services/ledger/loyalty-ledger,
# build/tests/load/loyalty-ledger-load, build/tools/loyalty-healthcheck,
# build/tools/loyalty-keygen (the load runs with a service-role API key, which
# may earn and redeem for every partner).
#
# Steps: a fresh MariaDB in build/bench-db (wiped first) -> an earn-rules file
# (partners PREFIX1..N, active, EUR, 1 point per EUR, postpaid) -> for each
# mode (batching, naive): start the ledger on its own schema, run each
# scenario BENCH_RUNS times, read its peak resident memory after each run,
# stop it -> a table of medians. Everything is stopped on exit.
#
# Environment (defaults in brackets):
#   BENCH_DB_PORT   MariaDB TCP port [3309]
#   BENCH_PORT      ledger gRPC port [7192]
#   BENCH_RUNS      runs per scenario [3]
#   BENCH_DURATION  measured seconds per run [10]
#   BENCH_WARMUP    warm-up seconds per run [2]
#   BENCH_CALLERS   concurrent callers [64]
#   BENCH_MEMBERS   members [10000]
#   BENCH_PARTNERS  partners [5]
#   BENCH_MODES     modes to run ["batching naive"]
#   BENCH_ALL       1 = also run redeem and quote in naive mode [0]
#   BENCH_SCENARIOS scenarios to run in every mode [batching: "earn earn_hot
#                   redeem quote", naive: "earn earn_hot"]. quote sends the
#                   earn basket to QuoteEarn: the ceiling of gRPC, auth and
#                   the rules on this machine, without the writer and MariaDB.
#   BENCH_THREADS   generator worker threads [1]
#   BENCH_BUILD_DIR build folder [<repo>/build]
#   BENCH_OUT       results folder [<build>/bench-results/<UTC time>]
#
# Exit: 0 when every run completed with at most 1% failed operations;
# 1 otherwise (the table is printed either way); 2 usage or missing binaries.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/../.." && pwd -P)"
# shellcheck source=deploy/lib.sh
. "$REPO_ROOT/deploy/lib.sh"
lib_init "$(basename -- "$0")"
# shellcheck source=tests/load/lib_ledger.sh
. "$SCRIPT_DIR/lib_ledger.sh"

BUILD_DIR="$(abs_path "${BENCH_BUILD_DIR:-$REPO_ROOT/build}")"
LEDGER_BIN="$BUILD_DIR/services/ledger/loyalty-ledger"
LOAD_BIN="$BUILD_DIR/tests/load/loyalty-ledger-load"
HEALTH_BIN="$BUILD_DIR/tools/loyalty-healthcheck"
KEYGEN_BIN="$BUILD_DIR/tools/loyalty-keygen"
DEV_DB="$REPO_ROOT/deploy/dev-db.sh"
DB_DIR="$BUILD_DIR/bench-db"

DB_PORT="${BENCH_DB_PORT:-3309}"
DB_PASSWORD=bench
PORT="${BENCH_PORT:-7192}"
RUNS="${BENCH_RUNS:-3}"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CALLERS="${BENCH_CALLERS:-64}"
MEMBERS="${BENCH_MEMBERS:-10000}"
PARTNERS="${BENCH_PARTNERS:-5}"
MODES="${BENCH_MODES:-batching naive}"
ALL="${BENCH_ALL:-0}"
SCENARIOS="${BENCH_SCENARIOS:-}"
THREADS="${BENCH_THREADS:-1}"
PARTNER_PREFIX=bench-p
MEMBER_PREFIX=bench-m

if (($# > 0)); then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
for v in DB_PORT PORT RUNS DURATION CALLERS MEMBERS PARTNERS THREADS WARMUP; do
  if ! [[ "${!v}" =~ ^[0-9]+$ ]] || { [[ "$v" != WARMUP ]] && ((${!v} == 0)); }; then
    printf '%s: error: BENCH_%s must be a positive integer, got "%s"\n' "$PROG" "$v" "${!v}" >&2
    exit 2
  fi
done
for mode in $MODES; do
  case "$mode" in batching | naive) ;; *)
    printf '%s: error: BENCH_MODES may hold batching and naive, not "%s"\n' "$PROG" "$mode" >&2
    exit 2
    ;;
  esac
done

ledger_require_built "$LEDGER_BIN" "$LOAD_BIN" "$HEALTH_BIN" "$KEYGEN_BIN"

OUT="$(abs_path "${BENCH_OUT:-$BUILD_DIR/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}")"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
RULES="$OUT/earn-rules.json"
KEYS_FILE="$OUT/api-keys.json"
API_KEY="$(ledger_keygen service "ledger benchmark")" || die "loyalty-keygen failed"

# ---------------------------------------------------------------------------
# Clean-up: the ledger (if running) and the database, whatever happens.
# ---------------------------------------------------------------------------
# shellcheck disable=SC2317  # invoked by the traps
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ledger_stop
  ledger_db_stop
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Machine and versions, for the report.
# ---------------------------------------------------------------------------
cpu_model="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
mariadb_version="$("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version 2>/dev/null | head -n 1 || true)"
git_rev="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null | head -n 1)" ]]; then
  git_rev="$git_rev+dirty"
fi
log "machine: $(nproc) cores, ${cpu_model:-unknown cpu}, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo) RAM"
log "mariadb: ${mariadb_version:-unknown}"
log "commit:  $git_rev"
log "plan:    modes [$MODES], $RUNS runs x (${WARMUP}s warm-up + ${DURATION}s) per scenario, $CALLERS callers, $MEMBERS members, $PARTNERS partners"
log "results: $OUT"

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
ledger_db_fresh_start "$OUT/dev-db.log" || die "could not start the benchmark database"

# ---------------------------------------------------------------------------
# Earn rules: proto3 JSON of loyalty.ledger.internal.v1.EarnRulesFile.
# ---------------------------------------------------------------------------
ledger_write_rules "$PARTNER_PREFIX" "$PARTNERS"

# ---------------------------------------------------------------------------
# Ledger
# ---------------------------------------------------------------------------
# start_ledger MODE: starts the ledger on schema loyalty_bench_MODE and waits
# until it is SERVING.
start_ledger() {
  local mode="$1" batching=true
  [[ "$mode" == naive ]] && batching=false
  ledger_start "loyalty_bench_$mode" "$OUT/ledger-$mode.log" \
    --batching="$batching" --max_threads=128 --db_pool_size=16 --log_level=warn \
    --partner_rate_limit_rps=0
}

# kb_field PID FIELD: a "FIELD: N kB" value of /proc/PID/status, in kB.
kb_field() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

# record MODE SCENARIO RUN RC HWM_KB RSS_KB JSON|null NOTE
record() {
  printf '{"mode":"%s","scenario":"%s","run":%s,"rc":%s,"hwm_kb":%s,"rss_kb":%s,"result":%s,"note":"%s"}\n' \
    "$1" "$2" "$3" "$4" "${5:-null}" "${6:-null}" "$7" "$8" >>"$RESULTS"
}

all_ok=1
run_scenario() {
  local mode="$1" scenario="$2" run rc json hwm rss out setup
  for ((run = 1; run <= RUNS; run++)); do
    if [[ -z "$LEDGER_PID" ]] || ! pid_alive "$LEDGER_PID"; then
      warn "$mode/$scenario run $run: the ledger is not running"
      record "$mode" "$scenario" "$run" null "" "" null "ledger not running"
      all_ok=0
      continue
    fi
    # Reset the peak resident set size, so VmHWM is this run's peak.
    echo 5 >"/proc/$LEDGER_PID/clear_refs" 2>/dev/null || true
    # Redeem: the first run earns 500 points per member (not measured);
    # later runs spend what is left.
    setup=true
    ((run > 1)) && setup=false
    out="$OUT/$mode-$scenario-$run.txt"
    rc=0
    "$LOAD_BIN" --target="127.0.0.1:$PORT" --scenario="$scenario" --callers="$CALLERS" \
      --duration_s="$DURATION" --warmup_s="$WARMUP" --members="$MEMBERS" \
      --partners="$PARTNERS" --partner_prefix="$PARTNER_PREFIX" \
      --member_prefix="$MEMBER_PREFIX" --threads="$THREADS" --setup="$setup" \
      --api_key="$API_KEY" \
      --json >"$out" 2>&1 || rc=$?
    hwm="" rss=""
    if pid_alive "$LEDGER_PID"; then
      hwm="$(kb_field "$LEDGER_PID" VmHWM)"
      rss="$(kb_field "$LEDGER_PID" VmRSS)"
    fi
    json="$(grep '^{' "$out" | tail -n 1 || true)"
    [[ -n "$json" ]] || json=null
    sed -e '/^{/d' -e 's/^/    /' "$out"
    log "$mode/$scenario run $run/$RUNS: exit $rc, ledger peak RSS ${hwm:-?} kB"
    ((rc == 0)) || all_ok=0
    record "$mode" "$scenario" "$run" "$rc" "$hwm" "$rss" "$json" ""
    if ! pid_alive "$LEDGER_PID"; then
      warn "the ledger died during $mode/$scenario run $run"
      tail_file "$OUT/ledger-$mode.log" 20
    fi
  done
}

for mode in $MODES; do
  scenarios="earn earn_hot"
  if [[ "$mode" == batching || "$ALL" == 1 ]]; then
    scenarios="$scenarios redeem quote"
  fi
  [[ -z "$SCENARIOS" ]] || scenarios="$SCENARIOS"
  log "=== mode $mode: starting the ledger (schema loyalty_bench_$mode)"
  if ! start_ledger "$mode"; then
    all_ok=0
    for scenario in $scenarios; do
      record "$mode" "$scenario" 0 null "" "" null "ledger did not start"
    done
    continue
  fi
  for scenario in $scenarios; do
    log "--- $mode / $scenario"
    run_scenario "$mode" "$scenario"
  done
  log "stopping the ledger"
  ledger_stop
done

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
summary_rc=0
"$LOYALTY_PYTHON" - "$RESULTS" "$CALLERS" "$DURATION" <<'PY' | tee "$OUT/summary.txt" || summary_rc=$?
import json
import statistics
import sys

path, callers, duration = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(path) if line.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["mode"], r["scenario"]), []).append(r)

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def fmt(v, spec):
    if v is None:
        width = spec.split(".")[0]
        return format("-", ">" + width) if width else "-"
    return format(v, spec)

print()
print(f"Ledger benchmark: {callers} callers, {duration} s measured per run, "
      "median of the runs; throughput counts successful operations only")
header = (f"{'mode':<9} {'scenario':<9} {'runs':>4} {'ok ops/s':>9} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'RSS MB':>7}  errors")
print(header)
print("-" * len(header))
med = {}
for (mode, scenario), rs in groups.items():
    results = [r["result"] for r in rs if r["result"]]
    ok_s = median([x["ok_per_s"] for x in results])
    p50 = median([x["p50_ms"] for x in results])
    p95 = median([x["p95_ms"] for x in results])
    p99 = median([x["p99_ms"] for x in results])
    hwm = [r["hwm_kb"] for r in rs if r["hwm_kb"] is not None]
    rss = max(hwm) / 1024 if hwm else None
    med[(mode, scenario)] = (ok_s, p99, rss)
    errors = {}
    for x in results:
        for code, n in x["errors"].items():
            errors[code] = errors.get(code, 0) + n
    notes = sorted({r["note"] for r in rs if r["note"]})
    failed_runs = sum(1 for r in rs if r["rc"] != 0)
    err = " ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none"
    if notes:
        err += " [" + "; ".join(notes) + "]"
    if failed_runs:
        err += f" ({failed_runs} run(s) FAILED)"
    print(f"{mode:<9} {scenario:<9} {len(results):>4} {fmt(ok_s, '9.0f')} {fmt(p50, '7.2f')} "
          f"{fmt(p95, '7.2f')} {fmt(p99, '7.2f')} {fmt(rss, '7.1f')}  {err}")

def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b

def get(mode, scenario):
    return med.get((mode, scenario), (None, None, None))[0]

print()
print("RSS MB is the ledger's peak resident memory (VmHWM, reset before each run), max over runs.")
for mode in ("batching", "naive"):
    r = ratio(get(mode, "earn_hot"), get(mode, "earn"))
    if (mode, "earn") in med:
        target = "   (target >= 0.80)" if mode == "batching" else ""
        print(f"hot/spread ({mode}): {fmt(r, '.2f')}{target}")
for scenario in ("earn", "earn_hot"):
    r = ratio(get("batching", scenario), get("naive", scenario))
    if ("batching", scenario) in med and ("naive", scenario) in med:
        print(f"batching/naive ({scenario}): {fmt(r, '.2f')}   (target >= 2.0)")

b_ok, b_p99, _ = med.get(("batching", "earn"), (None, None, None))
if b_ok is not None:
    verdict = "met" if b_ok >= 10000 and b_p99 is not None and b_p99 <= 25 else "NOT met"
    print(f"earn target (>= 10000 ok/s, p99 <= 25 ms, batching): {verdict} "
          f"({fmt(b_ok, '.0f')}/s, p99 {fmt(b_p99, '.2f')} ms)")
# Memory only means something for groups where the ledger did real work.
rss_all = [v[2] for v in med.values() if v[2] is not None and v[0]]
if rss_all:
    verdict = "met" if max(rss_all) <= 200 else "NOT met"
    print(f"memory target (ledger RSS <= 200 MB): {verdict} (max {max(rss_all):.1f} MB)")
elif med:
    print("memory target (ledger RSS <= 200 MB): n/a (no scenario had successful operations)")
PY
((summary_rc == 0)) || warn "could not summarise $RESULTS"
log "per-run outputs, ledger logs and results.jsonl are in $OUT"
if ((all_ok)); then
  exit 0
fi
warn "some runs failed or did not run (see the errors column and $OUT)"
exit 1
