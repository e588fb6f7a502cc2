#!/usr/bin/env bash
# ERP → Odoo through Odoo's API: millrace against a Python client doing batched `create` over
# JSON-RPC, against the same real Odoo 17 server, in the same run; and the latency from an ERP
# commit to the record being visible through Odoo's API at a steady rate.
#
#   1. setup: a copy of the template database scripts/dev-env.sh builds, the demo ERP in a fresh
#      MariaDB database, an integration user (drive.py user), a config with the shipped item
#      mapping and [odoo.api] as that user, `millrace setup`, `millrace run` in the background
#      under /usr/bin/time -v; the first sync (the demo's items) settles (decision counts still
#      for 2 s);
#   2. throughput, BENCH_ROUNDS rounds, alternating:
#        A (Python): BENCH_ITEMS items of ITEM_BENCH (a copy of ITEM_MASTER that millrace does not
#          map) read in one query, their units resolved with one search_read, created as
#          product.product in batches of BENCH_BATCH (`create` with a list) as the integration
#          user: from the read's start to the last create's return;
#        B (millrace): BENCH_ITEMS items inserted into ITEM_MASTER in one ERP transaction: from its
#          commit until Odoo holds all of them (a count every 100 ms);
#      the same item values (unit, cost, price, tracking) on both sides, distinct numbers;
#   3. latency: BENCH_RATE items per second for BENCH_SECONDS s, one per ERP transaction; the
#      driver asks Odoo's API every 25 ms which of them it has (drive.py latency);
#   4. SIGTERM; millrace's peak RSS and CPU; dead letters; the results into bench/README.md.
#
# Needs the real Odoo that scripts/dev-env.sh installs; without it, says so and exits 0.
#
# Usage: bench/orm/run.sh      (about 4 minutes at the defaults, plus the release build)
# Env:   BENCH_ITEMS=2000 BENCH_ROUNDS=2 BENCH_BATCH=500 BENCH_RATE=5 BENCH_SECONDS=60
#        BENCH_NO_README=1     print the results only
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ITEMS=${BENCH_ITEMS:-2000}
ROUNDS=${BENCH_ROUNDS:-2}
export BENCH_BATCH=${BENCH_BATCH:-500} BENCH_RATE=${BENCH_RATE:-5} BENCH_SECONDS=${BENCH_SECONDS:-60}
DB=millrace_bench_orm
LEGACY_DB=millrace_bench_orm_legacy
SLOT=millrace_bench_orm
T_START=$SECONDS

log() { printf '[bench/orm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
[[ $ITEMS =~ ^[0-9]+$ && $ITEMS -ge 1 ]] || die "BENCH_ITEMS must be a whole number >= 1"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "BENCH_ROUNDS must be a whole number >= 1"

cd "$ROOT"
bash scripts/dev-env.sh >/dev/null
unset MILLRACE_TEST_ODOO_RPC
# shellcheck source=/dev/null
source .dev/env
if [[ -z ${MILLRACE_TEST_ODOO_RPC:-} ]]; then
    log "skipped: no real Odoo server (scripts/dev-env.sh installs one when ../shared/odoo17/odoo17-server.tar.xz or MILLRACE_ODOO_SERVER_TARBALL is there); README left as it is"
    exit 0
fi
while IFS= read -r var; do
    [[ $var == MILLRACE_TEST_* || $var == MILLRACE_PYTHON ]] || unset "$var"
done < <(compgen -e | grep '^MILLRACE_' || true)
export MILLRACE_LOG=info

url_re='^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/?$'
[[ $MILLRACE_TEST_MARIADB_URL =~ $url_re ]] || die "cannot parse MILLRACE_TEST_MARIADB_URL"
M_USER=${BASH_REMATCH[1]} M_PASSWORD=${BASH_REMATCH[2]} M_HOST=${BASH_REMATCH[3]} M_PORT=${BASH_REMATCH[4]}

log "building millrace (cargo build --release)"
cargo build --release --quiet
MILLRACE=$ROOT/target/release/millrace
PSQL=$MILLRACE_TEST_PG_BIN/psql
PY=$MILLRACE_PYTHON
ODOO_ADMIN_URL=$MILLRACE_TEST_ODOO_PG_URL
ODOO_DB_URL="${MILLRACE_TEST_ODOO_PG_URL%/*}/$DB"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/millrace-bench-orm.XXXXXX")
RUN_LOG_KEPT=${TMPDIR:-/tmp}/bench-orm-run.log

maria() {
    MYSQL_PWD=$M_PASSWORD mariadb --no-defaults --protocol=TCP --host="$M_HOST" --port="$M_PORT" \
        --user="$M_USER" --batch --skip-column-names "$@"
}
odoo_sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$ODOO_DB_URL" -c "$1"; }
admin_sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$ODOO_ADMIN_URL" -c "$1"; }

RUN_PID=""
stop_run() {
    [[ -n $RUN_PID ]] || return 0
    local child
    child=$(pgrep -P "$RUN_PID" || true)
    kill -TERM "${child:-$RUN_PID}" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
    RUN_PID=""
}
drop_all() {
    admin_sql "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null 2>&1 || true
    admin_sql "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    maria -e "DROP DATABASE IF EXISTS \`$LEGACY_DB\`" >/dev/null 2>&1 || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_run
    drop_all
    cp -- "$WORK/run.log" "$RUN_LOG_KEPT" 2>/dev/null || true
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. setup ------------------------------------------------------------------------------------

log "copying the Odoo template to $DB; the demo ERP into $LEGACY_DB"
drop_all
for attempt in $(seq 1 50); do
    admin_sql "CREATE DATABASE $DB TEMPLATE $MILLRACE_TEST_ODOO_TEMPLATE" >/dev/null 2>"$WORK/createdb.err" && break
    if ! grep -q 'is being accessed by other users' "$WORK/createdb.err" || ((attempt == 50)); then
        die "CREATE DATABASE $DB TEMPLATE $MILLRACE_TEST_ODOO_TEMPLATE: $(cat "$WORK/createdb.err")"
    fi
    sleep 0.2
done
bash scripts/load-legacy-fixture.sh --fresh "$LEGACY_DB" >/dev/null
maria -D "$LEGACY_DB" -e "CREATE TABLE ITEM_BENCH LIKE ITEM_MASTER"

export BENCH_ODOO_RPC=$MILLRACE_TEST_ODOO_RPC BENCH_ODOO_DB=$DB BENCH_ODOO_LOGIN=$MILLRACE_TEST_ODOO_LOGIN \
    BENCH_ODOO_PASSWORD=$MILLRACE_TEST_ODOO_PASSWORD BENCH_MARIA_HOST=$M_HOST BENCH_MARIA_PORT=$M_PORT \
    BENCH_MARIA_USER=$M_USER BENCH_MARIA_PASSWORD=$M_PASSWORD BENCH_MARIA_DB=$LEGACY_DB
"$PY" "$BENCH_DIR/drive.py" user "$WORK"

mkdir -p "$WORK/mappings"
cp mappings/item.toml "$WORK/mappings/"
cat >"$WORK/millrace.toml" <<TOML
[odoo]
url = "$ODOO_DB_URL?sslmode=disable"
slot = "$SLOT"
publication = "millrace_bench_orm"

[odoo.api]
url = "$MILLRACE_TEST_ODOO_RPC"
database = "$DB"
login = "millrace"
key_file = "$WORK/key"

[legacy]
kind = "odbc"
connection_string = "${MILLRACE_TEST_ODBC}Database=$LEGACY_DB;"
poll_interval = "300ms"

[sync]
mappings = "mappings"
retry_interval = "500ms"
TOML
"$MILLRACE" --config "$WORK/millrace.toml" setup >"$WORK/setup.log" 2>&1 ||
    die "millrace setup failed: $(cat "$WORK/setup.log")"

log "starting millrace run"
/usr/bin/time -v -o "$WORK/time.txt" "$MILLRACE" --config "$WORK/millrace.toml" run 2>"$WORK/run.log" &
RUN_PID=$!
decisions() { odoo_sql "SELECT COALESCE(sum(n), 0) FROM millrace.decision_count" 2>/dev/null || echo 0; }
settle() {
    local last=-1 same=0 now t0=$SECONDS
    while ((SECONDS - t0 < 600)); do
        kill -0 "$RUN_PID" 2>/dev/null || die "millrace run exited; its log:"$'\n'"$(tail -n 30 "$WORK/run.log")"
        now=$(decisions)
        if [[ $now == "$last" ]]; then same=$((same + 1)); else same=0; fi
        last=$now
        ((same >= 4)) && { [[ $now != 0 ]] || ((SECONDS - t0 >= 20)); } && return 0
        sleep 0.5
    done
    die "decisions never settled"
}
T0=$SECONDS
settle
INITIAL_DECISIONS=$(decisions)
INITIAL_S=$((SECONDS - T0))
log "first sync settled: $INITIAL_DECISIONS decisions (${INITIAL_S} s)"

# The same values on both sides: unit EA, costs and prices cycling, no tracking.
items_sql() { # TABLE PREFIX
    echo "INSERT INTO $1 (ITEM_NO, DESCRIPTION, UOM_CODE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS)
          SELECT CONCAT('$2', LPAD(seq, 6, '0')), CONCAT('Bench item ', seq), 'EA', 'N', 1 + seq % 50 + 0.25,
                 10 + seq % 90 + 0.5, 'A' FROM seq_1_to_$ITEMS"
}
now_s() { date +%s.%N; }
PY_RUNS=() MR_RUNS=()
for round in $(seq 1 "$ROUNDS"); do
    log "round $round: A, Python batched create of $ITEMS items"
    maria -D "$LEGACY_DB" -e "$(items_sql ITEM_BENCH "PY$round-")"
    "$PY" "$BENCH_DIR/drive.py" python "$WORK" "PY$round-"
    # shellcheck source=/dev/null
    source "$WORK/python.env"
    [[ $PY_ROWS == "$ITEMS" ]] || die "the Python client created $PY_ROWS of $ITEMS"
    PY_RUNS+=("$PY_SECONDS")
    log "round $round: B, millrace, $ITEMS items in one ERP transaction"
    maria -D "$LEGACY_DB" -e "$(items_sql ITEM_MASTER "MR$round-")"
    t0=$(now_s)
    while :; do
        n=$(odoo_sql "SELECT count(*) FROM product_product WHERE default_code LIKE 'MR$round-%'")
        [[ $n == "$ITEMS" ]] && break
        awk -v a="$(now_s)" -v b="$t0" 'BEGIN { exit !(a - b > 900) }' && die "millrace wrote $n of $ITEMS in 900 s"
        kill -0 "$RUN_PID" 2>/dev/null || die "millrace run exited"
        sleep 0.1
    done
    MR_RUNS+=("$(awk -v a="$(now_s)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')")
    settle
done

log "latency: $BENCH_RATE items/s for $BENCH_SECONDS s"
"$PY" "$BENCH_DIR/drive.py" latency "$WORK"
# shellcheck source=/dev/null
source "$WORK/latency.env"
settle
DLQ=$(odoo_sql "SELECT count(*) FROM millrace.dlq WHERE status = 'open'")
BENCH_DEAD=$(odoo_sql "SELECT count(*) FROM millrace.dlq WHERE key LIKE '[\"MR%' OR key LIKE '[\"LAT-%'")
stop_run

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
PY_MED=$(median "${PY_RUNS[@]}")
MR_MED=$(median "${MR_RUNS[@]}")
RATIO=$(awk -v p="$PY_MED" -v m="$MR_MED" 'BEGIN { printf "%.2f", p / m }')
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 1) ? "meets" : "misses" }')
RSS_MB=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/time.txt")
CPU_S=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.1f", u + s }' "$WORK/time.txt")
ODOO_VERSION=$("$PY" -c "import sys; sys.path.insert(0, '$ROOT/scripts'); from odoo_rpc import Rpc; print(Rpc('$MILLRACE_TEST_ODOO_RPC').version()['server_version'])")
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/ [0-9]*-Core.*//')
MEM_GB=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
TOTAL_S=$((SECONDS - T_START))
ms() { awk -v s="$1" 'BEGIN { printf "%.0f ms", s * 1000 }'; }

RESULTS=$WORK/results.md
cat >"$RESULTS" <<MD
Last run: $(date -u '+%Y-%m-%d %H:%M') UTC, millrace $COMMIT; $(nproc) cores ($CPU_MODEL), $MEM_GB GB RAM; Odoo
$ODOO_VERSION (threaded, \`workers = 0\`), PostgreSQL and MariaDB on the same machine; whole script ${TOTAL_S} s. The first sync of the
demo's items: $INITIAL_DECISIONS decisions (${INITIAL_S} s).

**Throughput**, ERP items → Odoo products, $ITEMS items per run, A and B alternating, $ROUNDS rounds; both write through
Odoo's JSON-RPC as the same integration user, the same values (unit, cost, price, tracking, type).

| contender | runs | median | items/s |
|---|---|---|---|
| A: Python, one read + \`create\` with lists of $BENCH_BATCH (bench/orm/drive.py) | ${PY_RUNS[*]} s | $PY_MED s | $(awk -v n="$ITEMS" -v s="$PY_MED" 'BEGIN { printf "%.0f", n / s }') |
| B: \`millrace run\`, from the ERP commit until Odoo holds them all | ${MR_RUNS[*]} s | $MR_MED s | $(awk -v n="$ITEMS" -v s="$MR_MED" 'BEGIN { printf "%.0f", n / s }') |

millrace / Python = **$RATIO** (target ≥ 1: $VERDICT). millrace's time includes finding the rows (a poll every 300 ms),
deciding them, and recording each one's outcome, cross-reference and archive-free control state.

**Latency**, ERP commit → visible through Odoo's API: $LAT_N items, $BENCH_RATE/s for $BENCH_SECONDS s, one per ERP
transaction, the driver asking Odoo every 25 ms (an upper bound by up to that much): p50 **$(ms "$LAT_P50")**, p99
**$(ms "$LAT_P99")**, max $(ms "$LAT_MAX"); $LAT_SEEN of $LAT_N seen.

millrace over the whole run: peak RSS **$RSS_MB MB**, CPU $CPU_S s. Dead letters of the benchmark's items: $BENCH_DEAD
(open dead letters in all, the demo's first sync included: $DLQ).
MD
printf '\n===== bench/orm results =====\n' && cat "$RESULTS" && printf '=============================\n'
if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme orm "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
