#!/usr/bin/env bash
# Runs tests/sync_crash.rs's two-way crash test (SIGKILLs during ERP → Odoo API writes, Odoo →
# ERP orders and shop-floor reports, against the real Odoo 17 server) many times while other
# processes keep every core busy, and counts how many runs passed: as with scripts/stress.sh
# (which this mirrors for one test), a run that fails one time in five is a product bug until
# proven otherwise.
#
#   scripts/stress-sync-crash.sh [RUNS] [TEST_FILTER...]
#   e.g. scripts/stress-sync-crash.sh 10
#        scripts/stress-sync-crash.sh 5 killed_five_times a_large_transaction
#
# RUNS defaults to 10, the filter to the two-way test. Builds with the dev profile into
# $CARGO_TARGET_DIR (default target-check; STRESS_RELEASE=1 for --release). Uses the running
# dev environment (.dev/env; scripts/dev-env.sh is run only when it is missing). Load: one busy
# loop per core (`nproc`), stopped on exit. A failed run's output (its kill-schedule seed, and
# every millrace run's log) is kept under ${TMPDIR:-/tmp}/millrace-stress/. Exits non-zero if
# any run failed. Without a real Odoo server the test prints SKIPPED: that is reported, not
# counted as a pass.
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
runs=${1:-10}
[[ $runs =~ ^[0-9]+$ && $runs -gt 0 ]] || { echo "usage: $0 [RUNS] [TEST_FILTER...]" >&2; exit 2; }
shift || true
filters=("$@")
if [[ ${#filters[@]} -eq 0 ]]; then filters=(killed_five_times_during_a_two_way_workload_both_sides_converge); fi
[[ -f .dev/env ]] || bash scripts/dev-env.sh >/dev/null
# shellcheck source=/dev/null
source .dev/env
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-check}
profile=()
if [[ ${STRESS_RELEASE:-0} == 1 ]]; then profile=(--release); fi
cargo test "${profile[@]}" --test sync_crash --no-run --quiet
out=${TMPDIR:-/tmp}/millrace-stress
mkdir -p "$out"
burners=()
cleanup() { if [[ ${#burners[@]} -gt 0 ]]; then kill "${burners[@]}" 2>/dev/null || true; fi; }
trap cleanup EXIT
for _ in $(seq "$(nproc)"); do
    (while :; do :; done) &
    burners+=($!)
done
passed=0 skipped=0
for run in $(seq "$runs"); do
    log=$out/sync_crash-$(date +%Y%m%d-%H%M%S)-$run.log
    ok=1
    started=$SECONDS
    for filter in "${filters[@]}"; do
        if ! cargo test "${profile[@]}" --quiet --test sync_crash -- "$filter" --nocapture >>"$log" 2>&1; then
            ok=0
        fi
    done
    took=$((SECONDS - started))
    if grep -q '^SKIPPED' "$log"; then
        skipped=$((skipped + 1))
        echo "run $run/$runs: SKIPPED, no real Odoo server (${took}s; log $log)"
    elif [[ $ok -eq 1 ]]; then
        passed=$((passed + 1))
        echo "run $run/$runs: passed in ${took}s ($(grep -h 'kills while products' "$log" | tail -1))"
        rm -f "$log"
    else
        echo "run $run/$runs: FAILED in ${took}s (log $log)"
    fi
done
echo "sync_crash ${filters[*]}: $passed of $runs runs passed ($skipped skipped) under a load of $(nproc) busy loops"
[[ $passed -eq $runs ]]
