#!/usr/bin/env bash
# Runs crash and race tests many times while other processes keep every core busy, and counts
# how many runs passed: a test that fails one run in five is a product bug until proven otherwise.
#
#   scripts/stress.sh RUNS TEST_BINARY [TEST_FILTER...]
#   e.g. scripts/stress.sh 20 odoo_real every_done_stock_move every_mark_done reads_of_a_decoded
#        scripts/stress.sh 10 sync_crash killed_five_times
#
# A test that needs the real Odoo prints SKIPPED without one: such a run is reported as skipped,
# never counted as passed.
#
# Load: one busy loop per core (`nproc`), stopped on exit. Each run's output is kept under
# ${TMPDIR:-/tmp}/millrace-stress/ when it fails. Exits non-zero if any run failed.
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
[[ $# -ge 2 ]] || { echo "usage: $0 RUNS TEST_BINARY [TEST_FILTER...]" >&2; exit 2; }
runs=$1 binary=$2
shift 2
bash scripts/dev-env.sh >/dev/null
# shellcheck source=/dev/null
source .dev/env
cargo test --release --test "$binary" --no-run --quiet
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
    log=$out/$binary-$run.log
    : >"$log"
    filters=("$@")
    if [[ ${#filters[@]} -eq 0 ]]; then filters=(""); fi
    ok=1
    started=$SECONDS
    for filter in "${filters[@]}"; do
        if ! cargo test --release --quiet --test "$binary" -- ${filter:+"$filter"} --nocapture >>"$log" 2>&1; then ok=0; fi
    done
    took=$((SECONDS - started))
    if grep -q '^SKIPPED' "$log"; then
        skipped=$((skipped + 1))
        echo "run $run/$runs: SKIPPED, no real Odoo server (${took}s; log $log)"
    elif [[ $ok -eq 1 ]]; then
        passed=$((passed + 1))
        rm -f "$log"
        echo "run $run/$runs: passed in ${took}s"
    else
        echo "run $run/$runs: FAILED in ${took}s (log $log)"
    fi
done
echo "$binary ${*:-(all tests)}: $passed of $runs runs passed ($skipped skipped) under a load of $(nproc) busy loops"
[[ $passed -eq $runs ]]
