#!/usr/bin/env bash
# Decode benchmark: how fast `millrace tail` turns a replication slot's changes into JSON lines,
# compared with pg_recvlogical (the decode ceiling: it receives the same pgoutput stream and
# throws it away), and how much memory millrace needs for one huge transaction.
#
#   1. a fresh database millrace_bench_decode with an Odoo 17 stock_move table (stock_move.sql);
#   2. a publication and a "template" pgoutput slot, then the workload: 500,000 inserts in
#      1,000-row transactions, then 500,000 updates in 1,000-row transactions (workload.sql);
#      END_LSN is the WAL insert position after it;
#   3. pg_recvlogical (A) and `millrace tail --json --until-caught-up` (B), alternating
#      A B A B …, each on its own copy of the template slot (so every run decodes exactly the
#      same WAL range), timed with /usr/bin/time (elapsed seconds, max RSS);
#   4. peak RSS of millrace while it streams ONE 1,000,000-row transaction, with protocol v2
#      streaming on (the server sends the open transaction in chunks, millrace spills them to a
#      temp file) and off;
#   5. prints the results and rewrites the decode section of bench/README.md;
#   6. drops the slots and the database on exit, whatever happens.
#
# Usage: bench/decode/run.sh            (from any directory; takes a few minutes)
# Env:   BENCH_ROUNDS=3        rounds of A B
#        BENCH_RUN_TIMEOUT=600 seconds before a single contender run is killed (the run fails)
#        BENCH_NO_README=1     print the results only, leave bench/README.md alone
#
# Needs nothing outside this repository: scripts/dev-env.sh provides PostgreSQL 15 (port 55432)
# and .dev/env; the binary is built with `cargo build --release`.

set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

DB=millrace_bench_decode
PUB=bench_decode              # publication of stock_move (the throughput runs)
PUB_BIG=bench_decode_big      # publication of stock_move_big (the one-transaction RSS runs)
# Slot names are global to the cluster, which other work shares: prefix ours.
SLOT_PREFIX=bench_decode_
TEMPLATE=${SLOT_PREFIX}template
BIG_TEMPLATE=${SLOT_PREFIX}big_template

ROWS_INSERT=500000
ROWS_UPDATE=500000
TXN_ROWS=1000
ROWS_TOTAL=$((ROWS_INSERT + ROWS_UPDATE))
BIG_ROWS=1000000

ROUNDS=${BENCH_ROUNDS:-3}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-600}

T_START=$SECONDS

log() { printf '[bench/decode %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# --- environment -------------------------------------------------------------------------------

log "dev environment (scripts/dev-env.sh)"
bash "$ROOT/scripts/dev-env.sh" >&2
# shellcheck source=/dev/null
. "$ROOT/.dev/env"

PORT=$MILLRACE_TEST_PG_PORT
PG_BIN=$MILLRACE_TEST_PG_BIN
PSQL=$PG_BIN/psql
PG_RECVLOGICAL=$PG_BIN/pg_recvlogical
[[ -x $PG_RECVLOGICAL ]] || PG_RECVLOGICAL=$(command -v pg_recvlogical) || die "pg_recvlogical not found"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package: time)"

# Both contenders connect the same way: TCP to 127.0.0.1, no TLS (the dev server offers TLS, and
# libpq's default sslmode=prefer would encrypt pg_recvlogical's stream but not millrace's).
ADMIN_URL="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
DB_URL="postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable"
DB_CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=$DB sslmode=disable"

psql_admin() { "$PSQL" "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_db() { "$PSQL" "$DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql_value() { "$PSQL" "$DB_URL" -X -q -v ON_ERROR_STOP=1 -At -c "$1"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/millrace-bench-decode.XXXXXX")

# Drops every slot of the bench database (ending the walsenders that still hold one), then the
# database. Used at the start (leftovers of an interrupted run) and on exit.
drop_bench_db() {
    local attempt left
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        left=$("$PSQL" "$ADMIN_URL" -X -q -At -c "
            SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
             WHERE database = '$DB' AND active_pid IS NOT NULL;
            SELECT count(*) FROM (
              SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
               WHERE database = '$DB' AND active_pid IS NULL) d;
            SELECT count(*) FROM pg_replication_slots WHERE database = '$DB';" 2>/dev/null | tail -n 1) || left=x
        [[ $left == 0 ]] && break
        sleep 1
    done
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>&1 | grep -v 'does not exist, skipping' >&2 || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    log "cleaning up: slots and database $DB"
    drop_bench_db || log "WARNING: could not drop $DB or its slots; re-run this script to retry"
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -------------------------------------------------------------------------------------

# Another engineer may be mid-edit in src/: retry a failed build a few times.
log "cargo build --release"
built=0
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if (cd "$ROOT" && cargo build --release --bin millrace) >&2; then
        built=1
        break
    fi
    log "build failed (attempt $attempt/10; an edit in progress?): retrying in 60 s"
    sleep 60
done
[[ $built -eq 1 ]] || die "cargo build --release keeps failing"
# A private copy, so a rebuild by someone else during the run cannot swap the binary mid-benchmark.
BIN=$WORK/millrace
cp -- "$ROOT/target/release/millrace" "$BIN"
MILLRACE_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    MILLRACE_COMMIT+=" + uncommitted changes"
fi

# millrace reads ./millrace.toml when it exists: run it from the empty work directory, with only
# the settings given here.
cd -- "$WORK"
unset MILLRACE_ODOO_PASSWORD MILLRACE_ODOO_PASSWORD_FILE
export MILLRACE_ODOO_URL=$DB_URL MILLRACE_LOG=info

# --- 1. database -------------------------------------------------------------------------------

log "fresh database $DB"
drop_bench_db
psql_admin -c "CREATE DATABASE $DB"
psql_db -f "$BENCH_DIR/stock_move.sql" -f "$BENCH_DIR/workload.sql"
# Autovacuum would write WAL of its own while the contenders run, and moves millrace's end point.
psql_db -c "ALTER TABLE stock_move SET (autovacuum_enabled = false)"

# --- 2. publication, template slot, workload ---------------------------------------------------

export MILLRACE_ODOO_PUBLICATION=$PUB MILLRACE_ODOO_TABLES=public.stock_move
MILLRACE_ODOO_SLOT=$TEMPLATE "$BIN" --log-format json setup >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log" >&2; die "millrace setup failed"; }
START_LSN=$(sql_value "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '$TEMPLATE'")
[[ -n $START_LSN ]] || die "slot $TEMPLATE was not created"

log "workload: $ROWS_INSERT inserts + $ROWS_UPDATE updates in $TXN_ROWS-row transactions"
t0=$(date +%s.%N)
psql_db -c "
DO \$\$
BEGIN
  FOR b IN 0 .. $ROWS_INSERT / $TXN_ROWS - 1 LOOP
    INSERT INTO stock_move SELECT * FROM bench_stock_moves(b * $TXN_ROWS + 1, (b + 1) * $TXN_ROWS);
    COMMIT;
  END LOOP;
END
\$\$;"
# What Odoo writes when a move is reserved / done: state, quantity, picked, write_uid/date.
psql_db -c "
DO \$\$
BEGIN
  FOR b IN 0 .. $ROWS_UPDATE / $TXN_ROWS - 1 LOOP
    UPDATE stock_move
       SET state = CASE WHEN id % 5 = 0 THEN 'assigned' ELSE 'done' END,
           quantity = product_uom_qty,
           picked = id % 5 <> 0,
           is_done = id % 5 <> 0,
           write_uid = 6,
           write_date = write_date + INTERVAL '3 days 2 hours'
     WHERE id BETWEEN (b * $TXN_ROWS) % $ROWS_INSERT + 1 AND (b * $TXN_ROWS) % $ROWS_INSERT + $TXN_ROWS;
    COMMIT;
  END LOOP;
END
\$\$;"
END_LSN=$(sql_value "SELECT pg_current_wal_insert_lsn()")
sql_value "SELECT pg_switch_wal()" >/dev/null # END_LSN must be flushed for pg_recvlogical's --endpos
WORKLOAD_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
WAL_MB=$(sql_value "SELECT round(pg_wal_lsn_diff('$END_LSN', '$START_LSN') / 1048576)")
log "workload done in ${WORKLOAD_S}s: WAL $START_LSN .. $END_LSN ($WAL_MB MB)"

# --- 3. pg_recvlogical vs millrace -------------------------------------------------------------

copy_slot() { sql_value "SELECT slot_name FROM pg_copy_logical_replication_slot('$1', '$2')" >/dev/null; }
drop_slot() { sql_value "SELECT pg_drop_replication_slot('$1')" >/dev/null; }

# /usr/bin/time's format: elapsed s, max RSS KB, user s, system s.
TIME_FORMAT='%e %M %U %S'
# Sets ELAPSED, RSS_KB and CPU_S (user + system) from /usr/bin/time's output file.
read_time() {
    local line user sys
    line=$(tail -n 1 -- "$1")
    read -r ELAPSED RSS_KB user sys <<<"$line"
    [[ $ELAPSED =~ ^[0-9.]+$ && $RSS_KB =~ ^[0-9]+$ && $user =~ ^[0-9.]+$ && $sys =~ ^[0-9.]+$ ]] ||
        die "unexpected /usr/bin/time output: $(cat -- "$1")"
    CPU_S=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

# Checks a millrace JSON log: the closing line's change count, no bad rows. Sets TARGET_LSN.
check_millrace_log() {
    local logfile=$1 want=$2 changes bad
    changes=$(grep -o '"changes":[0-9]*' "$logfile" | tail -n 1 | cut -d: -f2)
    bad=$(grep -o '"bad_rows":[0-9]*' "$logfile" | tail -n 1 | cut -d: -f2)
    TARGET_LSN=$(grep -o '"target_lsn":"[0-9A-F/]*"' "$logfile" | head -n 1 | cut -d'"' -f4)
    [[ $changes == "$want" && $bad == 0 ]] ||
        die "millrace printed ${changes:-?} changes (${bad:-?} bad rows), expected $want; log: $(cat -- "$logfile")"
}

# A: pg_recvlogical, protocol v1 like millrace with streaming off, stopping at END_LSN.
run_recvlogical() {
    local slot=$1 out=$2
    timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f "$TIME_FORMAT" -o "$out.time" \
        "$PG_RECVLOGICAL" -d "$DB_CONNINFO" --slot "$slot" --start --no-loop --endpos "$END_LSN" \
        -o proto_version=1 -o publication_names="$PUB" -f /dev/null 2>"$out.log" ||
        die "pg_recvlogical failed on slot $slot: $(cat -- "$out.log" "$out.time" 2>/dev/null)"
    read_time "$out.time"
}

# B: millrace tail --json until caught up (the server's insert position at its start, >= END_LSN).
run_millrace() {
    local slot=$1 streaming=$2 want=$3 out=$4
    MILLRACE_ODOO_SLOT=$slot MILLRACE_ODOO_STREAMING=$streaming \
        timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f "$TIME_FORMAT" -o "$out.time" \
        "$BIN" --log-format json tail --json --until-caught-up >/dev/null 2>"$out.log" ||
        die "millrace tail failed on slot $slot: $(cat -- "$out.log" "$out.time" 2>/dev/null)"
    read_time "$out.time"
    check_millrace_log "$out.log" "$want"
}

# C (for reference, not a contender): the same decoding inside the server, without a client or a
# network: pg_logical_slot_peek_binary_changes up to END_LSN, counted in SQL. Sets ELAPSED.
run_server_only() {
    local slot=$1 t0 messages
    t0=$(date +%s.%N)
    messages=$(timeout -k 10 "$RUN_TIMEOUT" "$PSQL" "$DB_URL" -X -q -v ON_ERROR_STOP=1 -At -c "
        SELECT count(*) FROM pg_logical_slot_peek_binary_changes('$slot', '$END_LSN', NULL,
               'proto_version', '1', 'publication_names', '$PUB')") || die "pg_logical_slot_peek_binary_changes failed"
    ELAPSED=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    # One message per change, plus Begin/Commit per transaction and a Relation.
    ((messages >= ROWS_TOTAL)) || die "server-side decoding returned $messages messages, expected >= $ROWS_TOTAL"
}

# Once, untimed: millrace prints exactly one JSON line per change. Also warms the page cache with
# the WAL for every timed run that follows.
log "check: millrace prints $ROWS_TOTAL lines"
copy_slot "$TEMPLATE" "${SLOT_PREFIX}check"
LINES=$(MILLRACE_ODOO_SLOT=${SLOT_PREFIX}check MILLRACE_ODOO_STREAMING=false \
    timeout -k 10 "$RUN_TIMEOUT" "$BIN" --log-format json tail --json --until-caught-up 2>"$WORK/check.log" | wc -l) ||
    die "millrace tail (line count check) failed: $(cat -- "$WORK/check.log")"
drop_slot "${SLOT_PREFIX}check"
[[ $LINES -eq $ROWS_TOTAL ]] || die "millrace printed $LINES lines, expected $ROWS_TOTAL"
log "check: $LINES lines"

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
A_TIMES=() A_RSS=() A_CPU=() B_TIMES=() B_RSS=() B_CPU=() B_EXTRA_KB=() C_TIMES=()
n=0
for ((round = 1; round <= ROUNDS; round++)); do
    for contender in A B C; do
        n=$((n + 1))
        slot=${SLOT_PREFIX}run_$n
        copy_slot "$TEMPLATE" "$slot"
        if [[ $contender == A ]]; then
            run_recvlogical "$slot" "$WORK/run_$n"
            A_TIMES+=("$ELAPSED") A_RSS+=("$RSS_KB") A_CPU+=("$CPU_S")
            log "round $round A pg_recvlogical: ${ELAPSED}s, max RSS ${RSS_KB} KB, CPU ${CPU_S}s"
        elif [[ $contender == C ]]; then
            run_server_only "$slot"
            C_TIMES+=("$ELAPSED")
            log "round $round C server only:    ${ELAPSED}s"
        else
            run_millrace "$slot" false "$ROWS_TOTAL" "$WORK/run_$n"
            B_TIMES+=("$ELAPSED") B_RSS+=("$RSS_KB") B_CPU+=("$CPU_S")
            # WAL millrace read beyond END_LSN (other databases' writes, checkpoints): it stops at
            # the insert position at its start, pg_recvlogical at END_LSN.
            B_EXTRA_KB+=("$(sql_value "SELECT round(pg_wal_lsn_diff('$TARGET_LSN', '$END_LSN') / 1024)")")
            log "round $round B millrace:       ${ELAPSED}s, max RSS ${RSS_KB} KB, CPU ${CPU_S}s (read to $TARGET_LSN, ${B_EXTRA_KB[-1]} KB past END_LSN)"
        fi
        drop_slot "$slot"
    done
done
drop_slot "$TEMPLATE"
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
A_MED=$(median "${A_TIMES[@]}")
B_MED=$(median "${B_TIMES[@]}")
C_MED=$(median "${C_TIMES[@]}")
C_RATE=$(awk -v r="$ROWS_TOTAL" -v t="$C_MED" 'BEGIN { printf "%d", r / t }')
A_CPU_MED=$(median "${A_CPU[@]}")
B_CPU_MED=$(median "${B_CPU[@]}")
# millrace's own CPU per change: the rate one core would sustain if the server were never the limit.
B_CPU_RATE=$(awk -v r="$ROWS_TOTAL" -v t="$B_CPU_MED" 'BEGIN { printf "%d", r / t }')
A_RATE=$(awk -v r="$ROWS_TOTAL" -v t="$A_MED" 'BEGIN { printf "%d", r / t }')
B_RATE=$(awk -v r="$ROWS_TOTAL" -v t="$B_MED" 'BEGIN { printf "%d", r / t }')
RATIO=$(awk -v a="$A_MED" -v b="$B_MED" 'BEGIN { printf "%.2f", a / b }')
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.8) ? "meets" : "MISSES" }')
A_RSS_MB=$(awk -v k="$(median "${A_RSS[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')
B_RSS_MB=$(awk -v k="$(median "${B_RSS[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')

# --- 4. peak RSS on one 1,000,000-row transaction ----------------------------------------------

log "one transaction of $BIG_ROWS rows into stock_move_big"
psql_db -c "CREATE TABLE stock_move_big (LIKE stock_move INCLUDING ALL) WITH (autovacuum_enabled = false)"
export MILLRACE_ODOO_PUBLICATION=$PUB_BIG MILLRACE_ODOO_TABLES=public.stock_move_big
MILLRACE_ODOO_SLOT=$BIG_TEMPLATE "$BIN" --log-format json setup >"$WORK/setup_big.log" 2>&1 || { cat "$WORK/setup_big.log" >&2; die "millrace setup (big) failed"; }
psql_db -c "INSERT INTO stock_move_big SELECT * FROM bench_stock_moves(1, $BIG_ROWS)"
sql_value "SELECT pg_switch_wal()" >/dev/null

# What the server did for a slot, from pg_stat_replication_slots (written when the walsender
# exits, so wait for it): "streamed <MB> in <n> chunks; spilled <MB>".
slot_stats() {
    local slot=$1 stats=""
    for _ in $(seq 1 50); do
        stats=$(sql_value "SELECT format('streamed %s MB in %s chunks, spilled %s MB on the server',
                                          round(stream_bytes / 1048576.0), stream_count, round(spill_bytes / 1048576.0))
                             FROM pg_stat_replication_slots WHERE slot_name = '$slot' AND total_txns > 0")
        [[ -n $stats ]] && break
        sleep 0.1
    done
    printf '%s' "${stats:-no slot statistics}"
}
# Which protocol millrace asked for, from its "replication started" log line.
check_streaming() {
    grep -q "\"streaming\":$2" "$1" || die "millrace did not start with streaming=$2: $(cat -- "$1")"
}

copy_slot "$BIG_TEMPLATE" "${SLOT_PREFIX}big_on"
run_millrace "${SLOT_PREFIX}big_on" true "$BIG_ROWS" "$WORK/big_on"
check_streaming "$WORK/big_on.log" true
BIG_ON_S=$ELAPSED BIG_ON_MB=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
BIG_ON_STATS=$(slot_stats "${SLOT_PREFIX}big_on")
drop_slot "${SLOT_PREFIX}big_on"
log "streaming on:  ${BIG_ON_S}s, max RSS $BIG_ON_MB MB ($BIG_ON_STATS)"

copy_slot "$BIG_TEMPLATE" "${SLOT_PREFIX}big_off"
run_millrace "${SLOT_PREFIX}big_off" false "$BIG_ROWS" "$WORK/big_off"
check_streaming "$WORK/big_off.log" false
BIG_OFF_S=$ELAPSED BIG_OFF_MB=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
BIG_OFF_STATS=$(slot_stats "${SLOT_PREFIX}big_off")
drop_slot "${SLOT_PREFIX}big_off"
drop_slot "$BIG_TEMPLATE"
log "streaming off: ${BIG_OFF_S}s, max RSS $BIG_OFF_MB MB ($BIG_OFF_STATS)"
RSS_VERDICT=$(awk -v a="$BIG_ON_MB" -v b="$BIG_OFF_MB" 'BEGIN { print (a < 200 && b < 200) ? "meets" : "MISSES" }')
LDWM=$(sql_value "SHOW logical_decoding_work_mem")

# --- 5. results --------------------------------------------------------------------------------

TOTAL_S=$((SECONDS - T_START))
PG_VERSION=$(sql_value "SHOW server_version")
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)

join_times() { local IFS=' '; printf '%s' "$*" | sed 's/ / s, /g; s/$/ s/'; }

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), millrace $MILLRACE_COMMIT; $(nproc) cores ($CPU_MODEL),
$MEM_GB GB RAM, PostgreSQL $PG_VERSION; whole script ${TOTAL_S} s (workload generation ${WORKLOAD_S} s).

**Throughput**: $ROWS_TOTAL changes to a 62-column stock_move ($ROWS_INSERT inserts, then $ROWS_UPDATE
updates, $TXN_ROWS rows per transaction; $WAL_MB MB of WAL), every run on its own copy of the same
slot, pgoutput protocol v1, TCP to 127.0.0.1 without TLS, output to /dev/null; A and B alternate,
$ROUNDS rounds. Client CPU is the contender's own user + system time (the walsender's is not in it).
Load average (1 min) before / after these runs: $LOAD_BEFORE / $LOAD_AFTER (about 2 is this benchmark
alone: the walsender and the client; more means other work shared the cores and the times are noisy).

| contender | runs | median | rows/s | client CPU (median) | max RSS |
|---|---|---|---|---|---|
| A: \`pg_recvlogical --endpos\` | $(join_times "${A_TIMES[@]}") | $A_MED s | $A_RATE | $A_CPU_MED s | $A_RSS_MB MB |
| B: \`millrace tail --json --until-caught-up\` (streaming off) | $(join_times "${B_TIMES[@]}") | $B_MED s | $B_RATE | $B_CPU_MED s | $B_RSS_MB MB |
| C (reference): the server alone, \`pg_logical_slot_peek_binary_changes\` | $(join_times "${C_TIMES[@]}") | $C_MED s | $C_RATE | – | – |

millrace / pg_recvlogical = **$RATIO** (target ≥ 0.8: $VERDICT).

- millrace needs $B_CPU_MED s of CPU for the $ROWS_TOTAL changes: on its own core it cannot go faster
  than about $B_CPU_RATE rows/s, whatever the server does.
- C is the decoding and pgoutput encoding without a walsender, network or client: what a
  consumer could get if the transport cost nothing. Where A is well below C, pg_recvlogical is held
  back by the walsender's per-message send() and wake-up costs (a client that drains the socket at
  once makes the walsender send every message on its own), not by decoding; such a machine flatters
  the ratio.
- millrace's line count was checked once (untimed): $LINES lines. It stops at the WAL insert
  position at its start rather than at END_LSN; the extra WAL it read through (other databases'
  writes on the shared server): $(printf '%s KB, ' "${B_EXTRA_KB[@]}" | sed 's/, $//').

**Memory, one transaction of $BIG_ROWS rows** (\`INSERT … SELECT\` into a second stock_move-shaped
table, logical_decoding_work_mem = $LDWM):

| \`millrace tail --json --until-caught-up\` | elapsed | peak RSS | server side |
|---|---|---|---|
| streaming on (protocol v2; millrace spills to a temp file until commit) | $BIG_ON_S s | $BIG_ON_MB MB | $BIG_ON_STATS |
| streaming off (protocol v1; the server sends it all at commit) | $BIG_OFF_S s | $BIG_OFF_MB MB | $BIG_OFF_STATS |

Target < 200 MB: $RSS_VERDICT.
EOF

printf '\n===== bench/decode results =====\n' && cat "$RESULTS" && printf '================================\n'

if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme decode "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
