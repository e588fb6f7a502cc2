#!/usr/bin/env bash
# Large-transaction benchmark: `millrace run` given one very large Odoo transaction, and one very
# large first legacy poll, with its peak memory and throughput, against the mariadb client.
#
#   A. Odoo → ERP: BENCH_MOVES stock moves (default 1,000,000: copies of the fixture's done
#      manufacturing moves) inserted in ONE transaction (an INSERT … SELECT, as an import or a
#      mass validation does) into a fresh copy of the Odoo 17 fixture, with the shipped
#      inventory_transaction mapping (each done move is one INV_TRANS row, numbered by the ERP)
#      and the Parquet archive on. Timed from the commit to the last INV_TRANS row; millrace's
#      peak RSS from /usr/bin/time. Baseline in the same run: the `mariadb` client writing the
#      same number of rows into a copy of INV_TRANS as multi-row INSERTs of 1,000 rows (the
#      ceiling in ../shared/reference/benchmarks.md).
#   B. ERP → Odoo: a fresh millrace whose first poll reads an ITEM_MASTER of BENCH_ITEMS rows
#      (default 1,000,000), the same items as Odoo already has (as after a migration), so the poll
#      is read, mapped and decided whole. Peak RSS and time until the poll is acknowledged.
#      (Writing new items into Odoo goes through its API, which needs a real Odoo server: that is
#      bench/orm's measurement; the fixture here is a database without a server.)
#
# Usage: bench/large/run.sh            (about 10 minutes at the defaults)
# Env:   BENCH_MOVES=1000000 BENCH_ITEMS=1000000 BENCH_NO_README=1 BENCH_SKIP_A=1 BENCH_SKIP_B=1
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
MOVES=${BENCH_MOVES:-1000000}
ITEMS=${BENCH_ITEMS:-1000000}
DB=millrace_bench_large
LEGACY_DB=millrace_bench_large_legacy
T_START=$SECONDS

log() { printf '[bench/large] %s\n' "$*" >&2; }
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
    cp "$WORK"/run-*.log "${TMPDIR:-/tmp}/" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n * 1000 / ms }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
wait_for() { # what, target, seconds, command printing a count
    local what=$1 target=$2 limit=$3
    shift 3
    local deadline=$((SECONDS + limit))
    while ((SECONDS < deadline)); do
        [[ $("$@") -ge $target ]] && return 0
        sleep 0.2
    done
    die "timed out waiting for $what ($("$@") of $target)"
}

# fresh_world NAME MAPPINGS…: both fixtures, keys aligned, the mappings, `millrace setup`.
fresh_world() {
    local name=$1
    shift
    bash scripts/load-odoo-fixture.sh --fresh "$DB" >/dev/null
    bash scripts/load-legacy-fixture.sh --fresh "$LEGACY_DB" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" -f sql/odoo17/fixture-erp-keys.sql
    rm -rf "$WORK/$name" && mkdir -p "$WORK/$name/mappings"
    for m in "$@"; do cp "mappings/$m.toml" "$WORK/$name/mappings/"; done
    cat >"$WORK/$name/millrace.toml" <<TOML
[odoo]
url = "$DB_URL?sslmode=disable"
slot = "millrace_bench_large"
publication = "millrace_bench_large"

[legacy]
kind = "odbc"
connection_string = "${MILLRACE_TEST_ODBC}Database=$LEGACY_DB;"
poll_interval = "500ms"

[sync]
mappings = "mappings"

[archive]
dir = "archive"
TOML
    [[ -n ${BEFORE_SETUP:-} ]] && eval "$BEFORE_SETUP"
    "$MILLRACE" --config "$WORK/$name/millrace.toml" setup >/dev/null
}

start_run() { # NAME
    /usr/bin/time -f '%M %U %S %e' -o "$WORK/$1/time.txt" "$MILLRACE" --config "$WORK/$1/millrace.toml" run 2>"$WORK/run-$1.log" &
    RUN_PID=$!
}
stop_run() { # NAME → "peak_kb user_s sys_s elapsed_s" in $WORK/NAME/time.txt
    kill -TERM "$(pgrep -P "$RUN_PID" || echo "$RUN_PID")" 2>/dev/null || true
    wait "$RUN_PID" || true
    RUN_PID=""
}

A_ROW="" B_ROW="" BASE_ROW="" W_ROW="" SPLIT="" TOUCH_ROW=""
if [[ -z ${BENCH_SKIP_A:-} ]]; then
    log "A: one Odoo transaction of $MOVES stock moves"
    fresh_world a inventory_transaction
    BEFORE=$(mariadb_bench -e "SELECT COALESCE(MAX(TRANS_NO), 0) FROM INV_TRANS")
    MILLRACE_LOG=${MILLRACE_LOG:-info,millrace::sync=debug,millrace::cmd::run=debug} start_run a
    sleep 2
    MOVE_IDS="SELECT id FROM stock_move WHERE state = 'done' AND (production_id IS NOT NULL OR raw_material_production_id IS NOT NULL)"
    PER_COPY=$(psql -X -At "$DB_URL" -c "SELECT count(*) FROM ($MOVE_IDS) m")
    COPIES=$(((MOVES + PER_COPY - 1) / PER_COPY))
    MOVES=$((COPIES * PER_COPY))
    COLUMNS=$(psql -X -At "$DB_URL" -c "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'stock_move' AND column_name <> 'id'")
    T0=$(now_ms)
    psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" -c "INSERT INTO stock_move ($COLUMNS) SELECT $COLUMNS FROM stock_move, generate_series(1, $COPIES) WHERE id IN ($MOVE_IDS)"
    T1=$(now_ms)
    written() { mariadb_bench -e "SELECT COUNT(*) FROM INV_TRANS WHERE TRANS_NO > $BEFORE"; }
    wait_for "the ledger rows" "$MOVES" 3600 written
    T2=$(now_ms)
    # Re-emission at this size: 20 products of the moves touched in one transaction; timed until
    # the slot is acknowledged past it (every record it leads to decided, applied and archived).
    LSN_BEFORE=$(psql -X -At "$DB_URL" -c "SELECT pg_current_wal_lsn()")
    T3=$(now_ms)
    psql -X -q "$DB_URL" -c "UPDATE product_product SET write_date = now() WHERE id IN (SELECT DISTINCT product_id FROM stock_move ORDER BY 1 LIMIT 20)"
    TOUCH_LSN=$(psql -X -At "$DB_URL" -c "SELECT pg_current_wal_lsn()")
    acked() { psql -X -At "$DB_URL" -c "SELECT (confirmed_flush_lsn >= '$TOUCH_LSN')::int FROM pg_replication_slots WHERE slot_name = 'millrace_bench_large'"; }
    wait_for "the acknowledgement past the touch" 1 600 acked
    T4=$(now_ms)
    TOUCH_ROW="| A'. then 20 products of those moves touched in one transaction (the database holding $((MOVES + 88)) stock moves): until the slot is acknowledged past it | $(secs $((T4 - T3))) s | – | – | – |"
    : "$LSN_BEFORE"
    stop_run a
    read -r A_KB A_USER A_SYS _ <"$WORK/a/time.txt"
    A_MS=$((T2 - T1))
    PARTS=$(grep -c "part of a large Odoo transaction handled" "$WORK/run-a.log" || true)
    # The ERP writes alone (multi-row statements and their commit), from the engine's debug log.
    read -r W_ROWS W_US < <(sed -n 's/.*ERP writes committed rows=\([0-9]*\) took_us=\([0-9]*\).*/\1 \2/p' "$WORK/run-a.log" |
        awk '{ r += $1; t += $2 } END { print r + 0, t + 0 }')
    # Where a part's time goes, summed over the parts (milliseconds).
    read -r D_MS P_MS R_MS < <(sed -n 's/.*batch processed source="odoo".*decide_ms=\([0-9]*\) apply_ms=\([0-9]*\) record_ms=\([0-9]*\).*/\1 \2 \3/p' "$WORK/run-a.log" |
        awk '{ d += $1; p += $2; r += $3 } END { print d + 0, p + 0, r + 0 }')
    READ_MS=$(sed -n 's/.*Odoo rows read through rows=[0-9]* took_ms=\([0-9]*\).*/\1/p' "$WORK/run-a.log" | awk '{ t += $1 } END { print t + 0 }')
    DEAD=$(psql -X -At "$DB_URL" -c "SELECT count(*) FROM millrace.dlq")
    A_ROW="| A. millrace \`run\`: one Odoo transaction of $MOVES stock moves → $MOVES INV_TRANS rows (archive on; $PARTS parts) | $(secs "$A_MS") s after the commit ($(secs $((T1 - T0))) s to commit it) | **$(rate "$MOVES" "$A_MS")** | **$(mb "$A_KB") MB** | $(awk -v u="$A_USER" -v s="$A_SYS" 'BEGIN { printf "%.1f", u + s }') s; dead letters: $DEAD |"

    log "baseline: the mariadb client, $MOVES rows as multi-row INSERTs of 1,000"
    mariadb_bench -e "CREATE TABLE INV_TRANS_BASE LIKE INV_TRANS"
    SQL=$WORK/base.sql
    awk -v n="$MOVES" 'BEGIN {
        for (i = 0; i < n; i += 1000) {
            printf "INSERT INTO INV_TRANS_BASE (TRANS_NO, TRANS_DATE, TRANS_TYPE, ITEM_NO, WHSE_CODE, QTY, UOM_CODE, LOT_NO, REF_NO) VALUES "
            for (j = i; j < i + 1000 && j < n; j++) {
                printf "%s(%d,\x27""2026-12-07 10:00:00\x27"",\x27""PI\x27"",\x27""FURN_0269\x27"",\x27""WH\x27"",-1.0000,\x27""Unit\x27"",\x27\x27"",\x27""MO00000007\x27"")", (j > i ? "," : ""), 1000000 + j
            }
            print ";"
        }
    }' >"$SQL"
    T0=$(now_ms)
    mariadb_bench -e "SET autocommit = 0; SOURCE $SQL; COMMIT;"
    T1=$(now_ms)
    BASE_MS=$((T1 - T0))
    BASE_ROW="| baseline: \`mariadb\` client, the same number of rows as multi-row INSERTs of 1,000, one transaction | $(secs "$BASE_MS") s | **$(rate "$MOVES" "$BASE_MS")** | – | – |"
    if ((W_US > 0)); then
        W_ROW="| A's ERP writes alone (millrace's multi-row statements through Connector/ODBC and their commits, $W_ROWS rows) | $(secs $((W_US / 1000))) s | **$(rate "$W_ROWS" $((W_US / 1000)))** | – | – |"
        SPLIT="- Where A's time went, summed over its parts: read-through of the moves from Odoo $(secs "$READ_MS") s, deciding $(secs "$D_MS") s, writing the ERP (with the pending fingerprints) $(secs "$P_MS") s, recording the outcome in the control state $(secs "$R_MS") s."
    fi
fi

if [[ -z ${BENCH_SKIP_B:-} ]]; then
    log "B: a first legacy poll of $ITEMS ITEM_MASTER rows"
    EXISTING=$ITEMS
    # The same items on both sides before millrace's first start (as after a migration): the first
    # poll reads, maps and decides them all.
    existing_items() {
        psql -X -q -v ON_ERROR_STOP=1 "$DB_URL" <<SQL
WITH t AS (
  INSERT INTO product_template (name, detailed_type, type, uom_id, uom_po_id, categ_id, list_price, sale_ok, purchase_ok, active, tracking, default_code, purchase_line_warn, sale_line_warn, sequence)
  SELECT jsonb_build_object('en_US', 'Large item ' || g), 'product', 'product', 1, 1, 1, g % 1000, true, true, true, 'none', 'LG-' || lpad(g::text, 7, '0'), 'no-message', 'no-message', 1
    FROM generate_series(1, $EXISTING) g
  RETURNING id, default_code)
INSERT INTO product_product (product_tmpl_id, default_code, active) SELECT id, default_code, true FROM t;
SQL
    }
    BEFORE_SETUP=existing_items fresh_world b item
    mariadb_bench -e "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE, LAST_UPD)
                      SELECT CONCAT('LG-', LPAD(seq, 7, '0')), CONCAT('Large item ', seq), 'EA', seq % 1000,
                             ${BENCH_ITEMS_UPDATED:-NOW(6)} FROM seq_1_to_$ITEMS"
    T0=$(now_ms)
    start_run b
    odoo_items() { psql -X -At "$DB_URL" -c "SELECT count(*) FROM product_product WHERE default_code LIKE 'LG-%'"; }
    wait_for "the new items in Odoo" "$ITEMS" 3600 odoo_items
    polled() { psql -X -At "$DB_URL" -c "SELECT count(*) FROM millrace.legacy_checkpoint WHERE table_name = 'ITEM_MASTER' AND watermark IS NOT NULL"; }
    wait_for "the poll's acknowledgement" 1 3600 polled
    T1=$(now_ms)
    stop_run b
    read -r B_KB B_USER B_SYS _ <"$WORK/b/time.txt"
    B_MS=$((T1 - T0))
    DECIDED=$(psql -X -At "$DB_URL" -c "SELECT COALESCE(sum(n), 0) FROM millrace.decision_count WHERE source = 'legacy'")
    B_ROW="| B. millrace \`run\`, first start: one poll of an ITEM_MASTER of $ITEMS rows (all already in Odoo), $DECIDED decisions | $(secs "$B_MS") s from the start to the poll's acknowledgement | **$(rate "$ITEMS" "$B_MS")** | **$(mb "$B_KB") MB** | $(awk -v u="$B_USER" -v s="$B_SYS" 'BEGIN { printf "%.1f", u + s }') s |"
fi

MARIADB_VERSION=$(mariadb_bench -e "SELECT VERSION()" 2>/dev/null || echo "?")
PG_VERSION=$(psql -X -At "$MILLRACE_TEST_PG_URL" -c "SHOW server_version")
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src || echo " + uncommitted changes")
TOTAL_S=$((SECONDS - T_START))

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M') UTC, millrace $COMMIT; $(nproc) cores ($CPU_MODEL), $MEM_GB GB RAM,
PostgreSQL $PG_VERSION, MariaDB $MARIADB_VERSION with Connector/ODBC; whole script ${TOTAL_S} s.
Targets (issue 12): peak RSS under 150 MB for A and under 200 MB for B; A at least 20,000 rows/s.

| run | time | rows/s | millrace peak RSS | millrace CPU |
|---|---|---|---|---|
$A_ROW
${TOUCH_ROW:-}
${W_ROW:-}
$BASE_ROW
$B_ROW

${SPLIT:-}
EOF

printf '\n===== bench/large results =====\n' && cat "$RESULTS" && printf '===============================\n'

if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme large "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
