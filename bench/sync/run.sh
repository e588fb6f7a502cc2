#!/usr/bin/env bash
# Sync benchmark: end-to-end throughput of `millrace run` in each direction, and its memory.
#
#   1. fresh copies of the Odoo 17 fixture (PostgreSQL) and of the demo legacy ERP (MariaDB,
#      through Connector/ODBC), keys aligned as scripts/demo.sh does, the shipped production_order
#      mapping, `millrace setup`, then `millrace run` under /usr/bin/time;
#   2. once the first sync of the existing rows is over (decision counts stop moving):
#      (legacy → Odoo goes through Odoo's API, which needs a real Odoo server: bench/orm measures
#      it, against a Python client doing the same through JSON-RPC)
#      (b) Odoo → legacy: BENCH_ORDERS manufacturing orders confirmed in Odoo in one transaction;
#          timed until the last is in PROD_ORDER;
#      (c) quiet: 10 s after (b) with no writes on either side (the no-loop check);
#   3. SIGTERM, then millrace's peak RSS and CPU from /usr/bin/time;
#   4. prints the results and rewrites the sync section of bench/README.md;
#   5. drops both databases on exit.
#
# No baseline tool does what millrace does here (decide ownership, suppress echoes, write two
# tables per item through lookups); the figures are for capacity planning and for comparing
# millrace with itself from change to change.
#
# Usage: bench/sync/run.sh     (about 2 minutes at the defaults)
# Env:   BENCH_ORDERS=2000 BENCH_NO_README=1
#        BENCH_ARCHIVE=1   with the Parquet archive on ([archive], default rotation), as in production
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ORDERS=${BENCH_ORDERS:-2000}
DB=millrace_bench_sync
LEGACY_DB=millrace_bench_sync_legacy
T_START=$SECONDS

log() { printf '[bench/sync] %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

cd "$ROOT"
bash scripts/dev-env.sh >/dev/null
# shellcheck source=/dev/null
source .dev/env
cargo build --release --quiet
MILLRACE=$ROOT/target/release/millrace
WORK=$(mktemp -d)
DB_URL="${MILLRACE_TEST_PG_URL%/*}/$DB"

mariadb_bench() {
    local url=${MILLRACE_TEST_MARIADB_URL#mysql://}
    local creds=${url%@*} hostport=${url#*@}
    MYSQL_PWD=${creds#*:} mariadb -h "${hostport%:*}" -P "${hostport#*:}" -u "${creds%%:*}" -D "$LEGACY_DB" \
        --batch --skip-column-names "$@"
}

RUN_PID=""
cleanup() {
    if [[ -n $RUN_PID ]]; then kill "$RUN_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    psql -X -q "$MILLRACE_TEST_PG_URL" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null 2>&1 || true
    psql -X -q "$MILLRACE_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    mariadb_bench -e "DROP DATABASE IF EXISTS $LEGACY_DB" >/dev/null 2>&1 || true
    cp "$WORK/run.log" "${TMPDIR:-/tmp}/bench-sync-run.log" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "loading both fixtures"
bash scripts/load-odoo-fixture.sh --fresh "$DB" >/dev/null
bash scripts/load-legacy-fixture.sh --fresh "$LEGACY_DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" -f sql/odoo17/fixture-erp-keys.sql
mkdir -p "$WORK/mappings"
cp mappings/production_order.toml "$WORK/mappings/"
cat >"$WORK/millrace.toml" <<TOML
[odoo]
url = "$DB_URL?sslmode=disable"
slot = "millrace_bench_sync"
publication = "millrace_bench_sync"

[legacy]
kind = "odbc"
connection_string = "${MILLRACE_TEST_ODBC}Database=$LEGACY_DB;"
poll_interval = "200ms"

[sync]
mappings = "mappings"
TOML
if [[ -n ${BENCH_ARCHIVE:-} ]]; then
    printf '\n[archive]\ndir = "archive"\n' >>"$WORK/millrace.toml"
fi
"$MILLRACE" --config "$WORK/millrace.toml" setup >/dev/null

/usr/bin/time -f '%M %U %S %e' -o "$WORK/time.txt" "$MILLRACE" --config "$WORK/millrace.toml" run 2>"$WORK/run.log" &
RUN_PID=$!

decisions() {
    psql -X -At "$DB_URL" -c "SELECT COALESCE(sum(n), 0) FROM millrace.decision_count" 2>/dev/null || echo 0
}
settle() {
    local last=-1 now
    for _ in $(seq 1 600); do
        now=$(decisions)
        [[ $now == "$last" && $now != 0 ]] && return 0
        last=$now
        sleep 1
    done
    die "decisions never settled"
}
wait_count() { # what, target, command printing a count
    local target=$2
    shift 2
    for _ in $(seq 1 6000); do
        [[ $("$@") -ge $target ]] && return 0
        sleep 0.1
    done
    die "timed out waiting for $target"
}
now_ms() { date +%s%3N; }

log "first sync of the existing rows"
settle
INITIAL_DECISIONS=$(decisions)

log "(b) $ORDERS manufacturing orders confirmed in Odoo"
T0=$(now_ms)
psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" -c "
INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
       location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
SELECT 'WH/MO/B' || lpad(g::text, 5, '0'), m.product_id, m.product_uom_id, m.picking_type_id,
       m.location_src_id, m.location_dest_id, m.company_id, m.consumption, 1 + g % 9, 0,
       '2026-12-05 06:00:00', 'confirmed'
  FROM mrp_production m, generate_series(1, $ORDERS) g WHERE m.name = 'WH/MO/00001'" >/dev/null
# The ERP's order number is Odoo's id as MO and eight digits (mappings/production_order.toml).
read -r FIRST_NO LAST_NO < <(psql -X -At -F ' ' "$DB_URL" -c "
SELECT 'MO' || lpad(min(id)::text, 8, '0'), 'MO' || lpad(max(id)::text, 8, '0')
  FROM mrp_production WHERE name LIKE 'WH/MO/B%'")
legacy_orders() { mariadb_bench -e "SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO BETWEEN '$FIRST_NO' AND '$LAST_NO'"; }
wait_count orders "$ORDERS" legacy_orders
T1=$(now_ms)
B_MS=$((T1 - T0))

log "(c) 10 quiet seconds"
# The orders' echoes (the ERP rows millrace wrote, polled back) are decided after (b) ends.
settle
Q0=$(decisions)
W0=$(psql -X -At "$DB_URL" -c "SELECT COALESCE(sum(n), 0) FROM millrace.decision_count WHERE decision = 'apply'")
sleep 10
W1=$(psql -X -At "$DB_URL" -c "SELECT COALESCE(sum(n), 0) FROM millrace.decision_count WHERE decision = 'apply'")
Q1=$(decisions)

kill -TERM "$(pgrep -P "$RUN_PID" || echo "$RUN_PID")" 2>/dev/null || true
wait "$RUN_PID" || true
RUN_PID=""
read -r RSS_KB USER_S SYS_S ELAPSED_S <"$WORK/time.txt"
DEAD=$(psql -X -At "$DB_URL" -c "SELECT count(*) FROM millrace.dlq")

rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / ms }'; }
B_RATE=$(rate "$ORDERS" "$B_MS")
RSS_MB=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
CPU_S=$(awk -v u="$USER_S" -v s="$SYS_S" 'BEGIN { printf "%.1f", u + s }')
MARIADB_VERSION=$(mariadb_bench -e "SELECT VERSION()")
PG_VERSION=$(psql -X -At "$DB_URL" -c "SHOW server_version")
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src || echo " + uncommitted changes")
TOTAL_S=$((SECONDS - T_START))
if [[ -n ${BENCH_ARCHIVE:-} ]]; then
    ARCHIVE_NOTE="with the Parquet archive on (\`[archive]\`, default rotation): $(find "$WORK/archive" -name '*.parquet' | wc -l) files, $(du -sm "$WORK/archive" | cut -f1) MB"
else
    ARCHIVE_NOTE="without the archive (\`BENCH_ARCHIVE=1\` turns it on)"
fi

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M') UTC, millrace $COMMIT; $(nproc) cores ($CPU_MODEL), $MEM_GB GB RAM,
PostgreSQL $PG_VERSION, MariaDB $MARIADB_VERSION with Connector/ODBC; whole script ${TOTAL_S} s.
The first sync of the fixture's existing rows took $INITIAL_DECISIONS decisions before (b). Run $ARCHIVE_NOTE.
Legacy → Odoo goes through Odoo's API: see the orm section.

| direction | changes | until the last one is on the other side | changes/s |
|---|---|---|---|
| (b) Odoo → legacy: confirmed manufacturing orders (mrp_production → PROD_ORDER), one transaction | $ORDERS | $(awk -v ms="$B_MS" 'BEGIN { printf "%.2f s", ms / 1000 }') | **$B_RATE** |

- (c) no loop: in 10 quiet seconds after (b) (once its echoes were decided), $((W1 - W0)) writes and $((Q1 - Q0)) decisions of any kind (expected 0 and 0).
- millrace over the whole run ($ELAPSED_S s): peak RSS **$RSS_MB MB**, CPU $CPU_S s; dead letters at the end: $DEAD.
- Where the time goes: a batch's control state is read in two queries and written in one
  statement per kind, the legacy rows a batch needs are read in bulk, a batch is written without
  savepoints unless a change fails, and a looked-up value is resolved once per batch.
EOF

printf '\n===== bench/sync results =====\n' && cat "$RESULTS" && printf '==============================\n'

if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme sync "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
