#!/usr/bin/env bash
# Bus benchmark: Odoo → legacy ERP through NATS JetStream (`millrace capture` and `millrace apply`,
# two processes) against the embedded `millrace run`, in the same run.
#
# Modes: A `millrace run`; B `millrace capture` + `millrace apply` on the project's three-node
# JetStream cluster (scripts/dev-env.sh, scripts/nats-ctl.sh), stream replicas 3. Each round runs
# A then B (A B A B …, BENCH_ROUNDS rounds); each mode of each round:
#   1. fresh copies of the Odoo 17 fixture (PostgreSQL) and of the demo legacy ERP (MariaDB, through
#      Connector/ODBC), keys aligned, the shipped production_order mapping, `millrace setup`, as
#      bench/sync does; B's config also gets a [bus] section whose pipeline is this invocation's
#      and round's own (bench<pid>r<round>: a new stream MILLRACE_BENCH<pid>R<round>, a new
#      consumer, an empty de-duplication window), so stale streams cannot interfere;
#   2. the mode's processes under /usr/bin/time; waits for the first sync of the existing rows
#      (decision counts stop moving);
#   3. throughput: BENCH_ORDERS manufacturing orders confirmed in Odoo in one transaction; timed
#      from its commit (clock_timestamp() in the inserting session right after the COMMIT) until
#      a poll of PROD_ORDER (one MariaDB session kept open, a query every 10 ms) counts them all;
#      the inserting sessions (here and in 4) commit with synchronous_commit = on, as Odoo does;
#   3b. sustained throughput: BENCH_STREAM_TXNS transactions of BENCH_STREAM_ORDERS orders committed
#      back to back by one session, from before the first commit until PROD_ORDER counts them all
#      (the throughput of record: with the bus, capture and apply work on different transactions at once);
#   4. latency: once (3)'s echoes are decided, BENCH_LATENCY_TXNS single-order transactions at
#      BENCH_LATENCY_RATE a second (one DO block committing each order and noting
#      clock_timestamp() right after each COMMIT); commit → applied is each order's PROD_ORDER.LAST_UPD
#      (DATETIME(6), stamped by MariaDB when millrace's INSERT ran; the ERP writes no LAST_UPD
#      itself and millrace does not set it) minus that commit time; p50 and p99 over all rounds;
#   5. SIGTERM, then the peak RSS and CPU of each process from /usr/bin/time; for B the stream's
#      message count and the consumer's backlog, then the stream is deleted.
# Then prints the results, B's throughput as a ratio of A's (target: ≥ 0.7) and rewrites the bus
# section of bench/README.md; drops both databases (and any stream left) on exit.
#
# Fresh databases for every mode rather than a reset between modes: both start from the same
# state (the same ids, so the same ERP order numbers; an empty control state, cross-reference and
# fingerprints; a slot created just before; an ERP without the other mode's orders), at a cost of
# a few seconds per mode. A reset would have to undo the orders on both sides, the control state and
# the slot, and whatever it missed would favour one mode.
#
# Usage: bench/bus/run.sh     (about 2.5 minutes at the defaults, plus the release build)
# Env:   BENCH_ORDERS=2000 BENCH_STREAM_TXNS=100 BENCH_STREAM_ORDERS=50 BENCH_LATENCY_TXNS=200 BENCH_LATENCY_RATE=20 BENCH_ROUNDS=3
#        BENCH_NO_README=1     print the results only
# One run at a time (a lock in ${TMPDIR:-/tmp}); a bus round during which a NATS node restarted (the
# tests share the cluster) is flagged and the README is then left alone.
# The processes' logs and /usr/bin/time figures are kept in ${TMPDIR:-/tmp}/bench-bus/
# (<mode>-r<round>-<process>.log, .time).
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ORDERS=${BENCH_ORDERS:-2000}
STREAM_TXNS=${BENCH_STREAM_TXNS:-100}
STREAM_ORDERS=${BENCH_STREAM_ORDERS:-50}
LAT_TXNS=${BENCH_LATENCY_TXNS:-200}
LAT_RATE=${BENCH_LATENCY_RATE:-20}
ROUNDS=${BENCH_ROUNDS:-3}
DB=millrace_bench_bus
LEGACY_DB=millrace_bench_bus_legacy
SLOT=millrace_bench_bus
POLL_S=0.01 # the throughput poll's interval
LOGS_KEPT=${TMPDIR:-/tmp}/bench-bus
T_START=$SECONDS

log() { printf '[bench/bus %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
whole() { [[ $1 =~ ^[0-9]+$ && $1 -ge 1 ]]; }
whole "$ORDERS" || die "BENCH_ORDERS must be a whole number >= 1"
whole "$LAT_TXNS" || die "BENCH_LATENCY_TXNS must be a whole number >= 1"
whole "$LAT_RATE" || die "BENCH_LATENCY_RATE must be a whole number >= 1"
whole "$ROUNDS" || die "BENCH_ROUNDS must be a whole number >= 1"

cd "$ROOT"
# scripts/dev-env.sh only when the environment is not up: run while a test has taken a NATS node
# away (scripts/nats-ctl.sh), it starts that node too, may collide with the test's own restart,
# and then writes a .dev/env without the cluster for everyone.
if [[ -r .dev/env ]] && grep -q '^export MILLRACE_TEST_NATS_URLS=' .dev/env &&
    bash scripts/pg-ctl.sh status >/dev/null 2>&1 && bash scripts/mariadb-ctl.sh status >/dev/null 2>&1 &&
    bash scripts/nats-ctl.sh status >/dev/null 2>&1; then
    log "the dev environment is up (PostgreSQL, MariaDB, NATS): not running scripts/dev-env.sh"
else
    bash scripts/dev-env.sh >/dev/null
fi
# shellcheck source=/dev/null
source .dev/env
# Only the dev environment's settings: a MILLRACE_BUS_URLS or MILLRACE_BUS_PIPELINE of the caller's
# would override the config's [bus].
while IFS= read -r var; do
    [[ $var == MILLRACE_TEST_* || $var == MILLRACE_PYTHON ]] || unset "$var"
done < <(compgen -e | grep '^MILLRACE_' || true)
export MILLRACE_LOG=${BENCH_LOG:-info} # BENCH_LOG: a tracing filter for the processes (e.g. info,millrace::cmd=debug)
# One run at a time against a dev server: a second would drop this one's databases (same names).
LOCK_FILE=${TMPDIR:-/tmp}/millrace-bench-bus.$MILLRACE_TEST_PG_PORT.lock
exec {LOCK_FD}>>"$LOCK_FILE"
flock -n "$LOCK_FD" || die "another bench/bus/run.sh is running against this dev server ($LOCK_FILE is locked)"
[[ -n ${MILLRACE_TEST_NATS_URLS:-} ]] || die "no NATS cluster in .dev/env (scripts/dev-env.sh could not start it)"
nats_ready() { bash scripts/nats-ctl.sh status 2>/dev/null | grep '^JetStream meta leader: ' >/dev/null; }
for _ in $(seq 1 60); do
    if nats_ready; then break; fi
    sleep 1
done
nats_ready || die "the NATS cluster is not ready: $(bash scripts/nats-ctl.sh status 2>&1 | tail -n 1)"

url_re='^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/?$'
[[ $MILLRACE_TEST_MARIADB_URL =~ $url_re ]] || die "cannot parse MILLRACE_TEST_MARIADB_URL"
M_USER=${BASH_REMATCH[1]} M_PASSWORD=${BASH_REMATCH[2]} M_HOST=${BASH_REMATCH[3]} M_PORT=${BASH_REMATCH[4]}
maria() {
    MYSQL_PWD=$M_PASSWORD mariadb --no-defaults --protocol=TCP --host="$M_HOST" --port="$M_PORT" \
        --user="$M_USER" --batch --skip-column-names "$@"
}

log "building millrace (cargo build --release)"
cargo build --release --quiet
MILLRACE=$ROOT/target/release/millrace
PY=$MILLRACE_PYTHON
WORK=$(mktemp -d "${TMPDIR:-/tmp}/millrace-bench-bus.XXXXXX")
DB_URL="${MILLRACE_TEST_PG_URL%/*}/$DB"
NATS_URLS_TOML=$(printf '%s\n' "$MILLRACE_TEST_NATS_URLS" | tr ',' '\n' | awk 'NF { printf "%s\"%s\"", (n++ ? ", " : ""), $1 }')
odoo_sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$DB_URL" "$@"; }
admin_sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$MILLRACE_TEST_PG_URL" -c "$1"; }

# The stream of a pipeline: its message count, bytes and the apply consumer's backlog (pending
# and unacknowledged) as one line; `delete` deletes it after, and the pipeline's lease bucket.
cat >"$WORK/stream.py" <<'PY'
import asyncio, sys
import nats
from nats.js.errors import NotFoundError

async def main(urls, pipeline, delete):
    stream = "MILLRACE_" + pipeline.upper().replace("-", "_")
    nc = await nats.connect(servers=urls.split(","), connect_timeout=5, max_reconnect_attempts=3)
    js = nc.jetstream()
    try:
        info = await js.stream_info(stream)
        try:
            ci = await js.consumer_info(stream, "millrace-apply-" + pipeline)
            backlog = (ci.num_pending, ci.num_ack_pending)
        except NotFoundError:
            backlog = ("-", "-")
        print(info.state.messages, info.state.bytes, *backlog)
        if delete:
            await js.delete_stream(stream)
    except NotFoundError:
        print("- - - -")
    if delete:
        try:
            await js.delete_key_value("millrace_lease_" + pipeline)
        except NotFoundError:
            pass
    await nc.close()

asyncio.run(main(sys.argv[1], sys.argv[2], len(sys.argv) > 3 and sys.argv[3] == "delete"))
PY

declare -A PROC_PID=()
PIPELINES=()
# Stops the mode's processes (SIGTERM to millrace, the child of /usr/bin/time; they drain and
# exit), waits for them.
stop_procs() {
    local name pid child
    for name in "${!PROC_PID[@]}"; do
        pid=${PROC_PID[$name]}
        child=$(pgrep -P "$pid" || true)
        kill -TERM "${child:-$pid}" 2>/dev/null || true
    done
    for name in "${!PROC_PID[@]}"; do
        wait "${PROC_PID[$name]}" 2>/dev/null || true
        unset "PROC_PID[$name]"
    done
}
drop_all() {
    admin_sql "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '$DB' AND active_pid IS NOT NULL" >/dev/null 2>&1 || true
    admin_sql "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null 2>&1 || true
    admin_sql "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    maria -e "DROP DATABASE IF EXISTS \`$LEGACY_DB\`" >/dev/null 2>&1 || true
}
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    stop_procs
    bench_sql_close
    for p in "${PIPELINES[@]}"; do
        "$PY" "$WORK/stream.py" "$MILLRACE_TEST_NATS_URLS" "$p" delete >/dev/null 2>&1 || true
    done
    drop_all
    if compgen -G "$WORK/*.log" >/dev/null; then
        mkdir -p "$LOGS_KEPT" && cp -- "$WORK"/*.log "$WORK"/*.time "$LOGS_KEPT/" 2>/dev/null || true
    fi
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf -- "$LOGS_KEPT"

# One MariaDB session for the polls (qualified table names: the ERP database is dropped and made
# again for every mode, which ends the sessions using it).
bench_sql_open env MYSQL_PWD="$M_PASSWORD" mariadb --no-defaults --protocol=TCP --host="$M_HOST" \
    --port="$M_PORT" --user="$M_USER" --batch --skip-column-names --unbuffered

# Each NATS node's start time (its /varz): the dev cluster is shared with the tests, some of which
# stop and restart nodes; a bus round during which one restarted is not a measure of millrace.
nats_starts() {
    local m
    for m in ${MILLRACE_TEST_NATS_MONITOR//,/ }; do
        printf '%s=%s ' "${m##*:}" "$(curl -fsS -m 2 "$m/varz" 2>/dev/null | sed -n 's/^ *"start": *"\([^"]*\)".*/\1/p')"
    done
}
NATS_BEFORE=""
nats_disturbed() { [[ -n $NATS_BEFORE && $(nats_starts) != "$NATS_BEFORE" ]]; }
# Dies with the end of each log when a process of the mode has ended (a crash, or it gave up).
check_alive() {
    local name
    for name in "${!PROC_PID[@]}"; do
        if ! kill -0 "${PROC_PID[$name]}" 2>/dev/null; then
            log "millrace $name ended by itself; the end of its log (kept in $LOGS_KEPT/$CUR_TAG-$name.log):"
            tail -n 30 "$WORK/$CUR_TAG-$name.log" >&2 || true
            if nats_disturbed; then
                log "a NATS node was stopped or restarted meanwhile, not by this script (node start times before: $NATS_BEFORE; now: $(nats_starts))"
            fi
            die "millrace $name is gone"
        fi
    done
}
tail_logs() {
    local name
    for name in "${!PROC_PID[@]}"; do
        log "the end of millrace $name's log:"
        grep -v ' DEBUG ' "$WORK/$CUR_TAG-$name.log" | tail -n 15 >&2 || true
    done
}
decisions() { odoo_sql -c "SELECT COALESCE(sum(n), 0) FROM millrace.decision_count" 2>/dev/null || echo 0; }
# Waits until the decision count stops moving (two equal readings a second apart, not 0).
settle() {
    local last=-1 now
    for _ in $(seq 1 600); do
        check_alive
        now=$(decisions)
        [[ $now == "$last" && $now != 0 ]] && return 0
        last=$now
        sleep 1
    done
    tail_logs
    die "decisions never settled ($1)"
}
# wait_erp_orders FIRST_NO LAST_NO COUNT TIMEOUT_S INTERVAL_S: polls PROD_ORDER until it holds
# COUNT orders numbered FIRST_NO..LAST_NO; SEEN_AT is the time of the poll that counted them all
# (MariaDB's clock, epoch seconds).
wait_erp_orders() {
    local n at deadline=$((SECONDS + $4))
    while :; do
        bench_sql "DO SLEEP($5); SELECT COUNT(*), UNIX_TIMESTAMP(NOW(6)) FROM \`$LEGACY_DB\`.PROD_ORDER WHERE ORDER_NO BETWEEN '$1' AND '$2'" >"$WORK/poll" ||
            die "the polling session to MariaDB ended"
        read -r n at <"$WORK/poll"
        if ((n >= $3)); then
            SEEN_AT=$at
            return 0
        fi
        check_alive
        if ((SECONDS > deadline)); then
            tail_logs
            die "after $4 s, $n of the $3 orders $1..$2 are in PROD_ORDER"
        fi
    done
}
mo() { printf 'MO%08d' "$1"; } # the ERP's order number of an Odoo id (mappings/production_order.toml)
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
time_field() { tail -n 1 "$1" | awk -v f="$2" '{ print $f }'; } # /usr/bin/time -o file's last line

# The copy of the fixture's confirmed order WH/MO/00001 every benchmark order is made from.
order_insert() { # NAME_EXPR QTY_EXPR FROM_EXTRA
    printf '%s' "INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
       location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
SELECT $1, m.product_id, m.product_uom_id, m.picking_type_id, m.location_src_id, m.location_dest_id,
       m.company_id, m.consumption, $2, 0, '2026-12-05 06:00:00', 'confirmed'
  FROM mrp_production m$3 WHERE m.name = 'WH/MO/00001'"
}
# The inserting sessions commit as Odoo does in production (synchronous_commit's default, on): the
# dev server's `off` would leave each commit waiting up to wal_writer_delay (200 ms) for the WAL
# writer, as a logical walsender sends only flushed WAL: noise of that size in both measures.
COMMIT_OPTS="-c synchronous_commit=on"
INTERVAL_MS=$(awk -v r="$LAT_RATE" 'BEGIN { printf "%.3f", 1000 / r }')

# measure MODE ROUND: one mode of one round (see the header); appends its figures to $WORK/<what>.<mode>.
measure() {
    local mode=$1 round=$2 config=$WORK/millrace.toml pipeline="" name
    CUR_TAG=$mode-r$round
    log "round $round, $mode: fresh databases"
    drop_all
    bash scripts/load-odoo-fixture.sh --fresh "$DB" >/dev/null 2>&1 || die "loading the Odoo fixture into $DB failed"
    bash scripts/load-legacy-fixture.sh --fresh "$LEGACY_DB" >/dev/null 2>&1 || die "loading the demo ERP into $LEGACY_DB failed"
    odoo_sql -f sql/odoo17/fixture-erp-keys.sql >/dev/null
    rm -rf "$WORK/mappings"
    mkdir -p "$WORK/mappings"
    cp mappings/production_order.toml "$WORK/mappings/"
    cat >"$config" <<TOML
[odoo]
url = "$DB_URL?sslmode=disable"
slot = "$SLOT"
publication = "millrace_bench_bus"

[legacy]
kind = "odbc"
connection_string = "${MILLRACE_TEST_ODBC}Database=$LEGACY_DB;"
poll_interval = "200ms"

[sync]
mappings = "mappings"
TOML
    if [[ $mode == bus ]]; then
        pipeline=bench$$r$round
        PIPELINES+=("$pipeline")
        cat >>"$config" <<TOML

[bus]
kind = "nats"
urls = [$NATS_URLS_TOML]
pipeline = "$pipeline"
replicas = 3
TOML
    fi
    "$MILLRACE" --config "$config" setup >"$WORK/$CUR_TAG-setup.log" 2>&1 || {
        tail -n 20 "$WORK/$CUR_TAG-setup.log" >&2
        die "millrace setup failed"
    }

    local roles=(run)
    NATS_BEFORE=""
    if [[ $mode == bus ]]; then
        roles=(capture apply)
        NATS_BEFORE=$(nats_starts)
    fi
    for name in "${roles[@]}"; do
        /usr/bin/time -f '%M %U %S %e' -o "$WORK/$CUR_TAG-$name.time" \
            "$MILLRACE" --config "$config" "$name" >"$WORK/$CUR_TAG-$name.log" 2>&1 &
        PROC_PID[$name]=$!
    done
    log "round $round, $mode: first sync of the existing rows"
    settle "the first sync"
    decisions >>"$WORK/initial.$mode"

    # 1. throughput
    log "round $round, $mode: $ORDERS orders confirmed in one transaction"
    local ids t0 first last
    mapfile -t ids < <(PGOPTIONS=$COMMIT_OPTS odoo_sql -F ' ' \
        -c "WITH o AS ($(order_insert "'WH/MO/B' || lpad(g::text, 5, '0')" "1 + g % 9" ", generate_series(1, $ORDERS) g") RETURNING id) SELECT min(id), max(id), count(*) FROM o" \
        -c "SELECT extract(epoch FROM clock_timestamp())")
    read -r first last _ <<<"${ids[0]}"
    t0=${ids[1]}
    wait_erp_orders "$(mo "$first")" "$(mo "$last")" "$ORDERS" 600 "$POLL_S"
    ms_between "$t0" "$SEEN_AT" >>"$WORK/tput.$mode"
    echo >>"$WORK/tput.$mode"
    log "round $round, $mode: $(tail -n 1 "$WORK/tput.$mode") ms"
    settle "the orders' echoes"

    # 1b. sustained throughput: transactions back to back, as a busy plant commits them
    log "round $round, $mode: $STREAM_TXNS transactions of $STREAM_ORDERS orders, back to back"
    mapfile -t ids < <(PGOPTIONS=$COMMIT_OPTS odoo_sql -c "DO \$bench\$
DECLARE
    a bigint;
    b bigint;
    lo bigint;
BEGIN
    RAISE NOTICE 'bench-start %', extract(epoch FROM clock_timestamp());
    FOR i IN 1..$STREAM_TXNS LOOP
        WITH o AS ($(order_insert "'WH/MO/S' || lpad(i::text, 5, '0') || '-' || g" "1 + g % 9" ", generate_series(1, $STREAM_ORDERS) g") RETURNING id)
        SELECT min(id), max(id) INTO a, b FROM o;
        lo := coalesce(lo, a);
        COMMIT;
    END LOOP;
    RAISE NOTICE 'bench-ids % %', lo, b;
END
\$bench\$" 2>&1 | awk '$2 == "bench-start" { print $3 } $2 == "bench-ids" { print $3, $4 }')
    t0=${ids[0]}
    read -r first last <<<"${ids[1]}"
    wait_erp_orders "$(mo "$first")" "$(mo "$last")" "$((STREAM_TXNS * STREAM_ORDERS))" 600 "$POLL_S"
    ms_between "$t0" "$SEEN_AT" >>"$WORK/stream_tput.$mode"
    echo >>"$WORK/stream_tput.$mode"
    log "round $round, $mode: sustained $(tail -n 1 "$WORK/stream_tput.$mode") ms"
    settle "the sustained orders' echoes"

    # 2. latency
    log "round $round, $mode: $LAT_TXNS single-order transactions at $LAT_RATE/s"
    PGOPTIONS=$COMMIT_OPTS odoo_sql -c "DO \$bench\$
DECLARE
    v bigint;
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..$LAT_TXNS LOOP
        $(order_insert "'WH/MO/L' || lpad(i::text, 5, '0')" "1 + i % 9" "") RETURNING id INTO v;
        COMMIT;
        RAISE NOTICE 'bench-commit % %', v, extract(epoch FROM clock_timestamp());
        PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + i * interval '$INTERVAL_MS ms' - clock_timestamp())));
    END LOOP;
END
\$bench\$" 2>"$WORK/commits.raw"
    awk '$2 == "bench-commit" { print $3, $4 }' "$WORK/commits.raw" >"$WORK/commits"
    [[ $(wc -l <"$WORK/commits") -eq $LAT_TXNS ]] || die "the latency transactions did not all commit: $(head -c 500 "$WORK/commits.raw")"
    first=$(awk 'NR == 1 || $1 < m { m = $1 } END { print m }' "$WORK/commits")
    last=$(awk 'NR == 1 || $1 > m { m = $1 } END { print m }' "$WORK/commits")
    wait_erp_orders "$(mo "$first")" "$(mo "$last")" "$LAT_TXNS" 120 0.05
    bench_sql "SELECT CAST(SUBSTRING(ORDER_NO, 3) AS UNSIGNED), UNIX_TIMESTAMP(LAST_UPD) FROM \`$LEGACY_DB\`.PROD_ORDER WHERE ORDER_NO BETWEEN '$(mo "$first")' AND '$(mo "$last")'" >"$WORK/applied" ||
        die "the polling session to MariaDB ended"
    awk 'NR == FNR { c[$1] = $2; next } ($1 in c) { printf "%.1f\n", ($2 - c[$1]) * 1000 }' \
        "$WORK/commits" "$WORK/applied" >"$WORK/lat.$CUR_TAG"
    [[ $(wc -l <"$WORK/lat.$CUR_TAG") -eq $LAT_TXNS ]] || die "matched $(wc -l <"$WORK/lat.$CUR_TAG") of the $LAT_TXNS latency orders"
    cat "$WORK/lat.$CUR_TAG" >>"$WORK/lat.$mode"
    log "round $round, $mode: latency p50 p99 $(bench_percentiles "$WORK/lat.$CUR_TAG" 50 99) ms"
    settle "the latency orders' echoes"

    # 3. stop; the processes' figures
    odoo_sql -c "SELECT count(*) FROM millrace.dlq" >>"$WORK/dlq.$mode"
    odoo_sql -F ' ' -c "SELECT source || '/' || decision || '=' || n FROM millrace.decision_count WHERE entity = 'production_order' ORDER BY 1" |
        paste -sd ' ' >"$WORK/decisions.$CUR_TAG"
    stop_procs
    for name in "${roles[@]}"; do
        time_field "$WORK/$CUR_TAG-$name.time" 1 >>"$WORK/rss.$name"
        awk '{ printf "%.1f %.1f\n", $2 + $3, $4 }' < <(tail -n 1 "$WORK/$CUR_TAG-$name.time") >>"$WORK/cpu.$name"
        if grep -q '^Command' "$WORK/$CUR_TAG-$name.time"; then
            echo "$CUR_TAG $name: $(grep '^Command' "$WORK/$CUR_TAG-$name.time")" >>"$WORK/odd"
        fi
    done
    if nats_disturbed; then
        log "round $round, $mode: a NATS node was stopped or restarted during it, not by this script"
        echo "round $round (node start times before: $NATS_BEFORE; after: $(nats_starts))" >>"$WORK/disturbed"
    fi
    NATS_BEFORE=""
    if [[ -n $pipeline ]]; then
        "$PY" "$WORK/stream.py" "$MILLRACE_TEST_NATS_URLS" "$pipeline" delete >"$WORK/stream.$CUR_TAG" ||
            echo "- - - -" >"$WORK/stream.$CUR_TAG"
    fi
}

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
    measure run "$round"
    measure bus "$round"
done
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
drop_all

# ---- results ------------------------------------------------------------------------------------

secs_list() { awk '{ printf "%s%.2f s", (NR > 1 ? ", " : ""), $1 / 1000 }' "$1"; }
mapfile -t TPUT_RUN <"$WORK/tput.run"
mapfile -t TPUT_BUS <"$WORK/tput.bus"
MED_RUN=$(bench_median "${TPUT_RUN[@]}")
MED_BUS=$(bench_median "${TPUT_BUS[@]}")
rate() { awk -v n="$ORDERS" -v ms="$1" 'BEGIN { printf "%.0f", n * 1000 / ms }'; }
RATE_RUN=$(rate "$MED_RUN")
RATE_BUS=$(rate "$MED_BUS")
RATIO_ONE=$(awk -v a="$MED_RUN" -v b="$MED_BUS" 'BEGIN { printf "%.2f", a / b }')
mapfile -t STPUT_RUN <"$WORK/stream_tput.run"
mapfile -t STPUT_BUS <"$WORK/stream_tput.bus"
SMED_RUN=$(bench_median "${STPUT_RUN[@]}")
SMED_BUS=$(bench_median "${STPUT_BUS[@]}")
SN=$((STREAM_TXNS * STREAM_ORDERS))
SRATE_RUN=$(awk -v n="$SN" -v ms="$SMED_RUN" 'BEGIN { printf "%.0f", n * 1000 / ms }')
SRATE_BUS=$(awk -v n="$SN" -v ms="$SMED_BUS" 'BEGIN { printf "%.0f", n * 1000 / ms }')
# The throughput of record: the sustained one (a plant commits many transactions); the one large
# transaction is end-to-end latency of a single batch, reported beside it.
RATIO=$(awk -v a="$SMED_RUN" -v b="$SMED_BUS" 'BEGIN { printf "%.2f", a / b }')
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.7) ? "meets" : "misses" }')
ssecs() { awk '{ printf "%s%.2f s", (NR > 1 ? ", " : ""), $1 / 1000 }' "$1"; }
read -r P50_RUN P99_RUN MAX_RUN < <(bench_percentiles "$WORK/lat.run" 50 99 100)
read -r P50_BUS P99_BUS MAX_BUS < <(bench_percentiles "$WORK/lat.bus" 50 99 100)
MIN_LAT=$(awk 'NR == 1 || $1 < m { m = $1 } END { print m }' "$WORK/lat.run" "$WORK/lat.bus")
round_p50s() { # MODE: each round's p50 / p99
    local r out=""
    for r in $(seq 1 "$ROUNDS"); do
        out+="${out:+, }$(bench_percentiles "$WORK/lat.$1-r$r" 50 99 | awk '{ printf "%.0f / %.0f", $1, $2 }')"
    done
    printf '%s ms' "$out"
}
mb() { awk -v k="$(sort -g "$1" | tail -n 1)" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
# FILE of "cpu_s elapsed_s" lines (one per round): the median share of a core, in %.
cpu_share() {
    local share
    mapfile -t share < <(awk '{ print ($2 > 0) ? 100 * $1 / $2 : 0 }' "$1")
    printf '%.0f' "$(bench_median "${share[@]}")"
}
cpu_med() { # the same FILE: the median CPU time and share
    local cpu
    mapfile -t cpu < <(awk '{ print $1 }' "$1")
    printf '%.1f s (%s %%)' "$(bench_median "${cpu[@]}")" "$(cpu_share "$1")"
}
STREAMS=""
for r in $(seq 1 "$ROUNDS"); do
    read -r msgs bytes pend unacked <"$WORK/stream.bus-r$r"
    STREAMS+="${STREAMS:+; }round $r: $msgs messages, $(awk -v b="$bytes" 'BEGIN { if (b + 0 == b) printf "%.1f MB", b / 1048576; else print b }'), backlog $pend pending + $unacked unacknowledged"
done
sum() { awk '{ s += $1 } END { print s + 0 }' "$1"; }
DLQ_RUN=$(sum "$WORK/dlq.run")
DLQ_BUS=$(sum "$WORK/dlq.bus")
INITIAL=$(sort -u "$WORK/initial.run" "$WORK/initial.bus" | paste -sd '/')
MARIADB_VERSION=$(maria -e "SELECT VERSION()")
PG_SYNC=$(admin_sql "SHOW synchronous_commit")
PG_WWD=$(admin_sql "SHOW wal_writer_delay")
PG_VERSION=$(psql -X -At "$MILLRACE_TEST_PG_URL" -c "SHOW server_version")
NATS_VERSION=$(curl -fsS -m 5 "${MILLRACE_TEST_NATS_MONITOR%%,*}/varz" 2>/dev/null | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' || true)
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GIB=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock mappings || echo " + uncommitted changes (src, mappings or Cargo files)")
TOTAL_S=$((SECONDS - T_START))
ms() { printf '%.0f ms' "$1"; }

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M') UTC, millrace $COMMIT; $(nproc) cores ($CPU_MODEL), $MEM_GIB GiB RAM,
PostgreSQL $PG_VERSION, MariaDB $MARIADB_VERSION with Connector/ODBC, NATS server ${NATS_VERSION:-?}
(three nodes on this machine, file storage, stream replicas 3); whole script ${TOTAL_S} s. Modes alternate,
$ROUNDS round(s) (A B A B …), each on fresh databases; load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER.
The first sync of the fixture's existing rows: $INITIAL decisions before the throughput run.

| mode | $ORDERS orders confirmed in one transaction: commit → all in PROD_ORDER | median | orders/s | latency p50 | p99 | max | peak RSS | CPU (median; share of a core over its life) |
|---|---|---|---|---|---|---|---|---|
| A: \`millrace run\` (embedded) | $(secs_list "$WORK/tput.run") | $(awk -v m="$MED_RUN" 'BEGIN { printf "%.2f s", m / 1000 }') | **$RATE_RUN** | **$(ms "$P50_RUN")** | **$(ms "$P99_RUN")** | $(ms "$MAX_RUN") | $(mb "$WORK/rss.run") | $(cpu_med "$WORK/cpu.run") |
| B: \`millrace capture\` + \`millrace apply\` through JetStream | $(secs_list "$WORK/tput.bus") | $(awk -v m="$MED_BUS" 'BEGIN { printf "%.2f s", m / 1000 }') | **$RATE_BUS** | **$(ms "$P50_BUS")** | **$(ms "$P99_BUS")** | $(ms "$MAX_BUS") | capture $(mb "$WORK/rss.capture"), apply $(mb "$WORK/rss.apply") | capture $(cpu_med "$WORK/cpu.capture"), apply $(cpu_med "$WORK/cpu.apply") |

| mode | sustained: $STREAM_TXNS transactions of $STREAM_ORDERS orders back to back, first commit → all in PROD_ORDER | median | orders/s |
|---|---|---|---|
| A: \`millrace run\` | $(ssecs "$WORK/stream_tput.run") | $(awk -v m="$SMED_RUN" 'BEGIN { printf "%.2f s", m / 1000 }') | **$SRATE_RUN** |
| B: \`millrace capture\` + \`millrace apply\` | $(ssecs "$WORK/stream_tput.bus") | $(awk -v m="$SMED_BUS" 'BEGIN { printf "%.2f s", m / 1000 }') | **$SRATE_BUS** |

bus / run throughput, sustained = **$RATIO** (target ≥ 0.7: $VERDICT); one large transaction: $RATIO_ONE.

- Sustained: $STREAM_TXNS transactions of $STREAM_ORDERS orders committed one after the other by one session
  (as fast as it can), from before the first commit until a poll of PROD_ORDER counts all $SN. With the
  bus, capture reads and publishes the next transactions while apply decides the previous ones; \`run\`
  does both in turn.
- One large transaction: the bus adds the publishing of its $ORDERS changes to three replicas and their
  fetch before apply can decide it whole (a transaction is decided as one batch), about 0.1–0.2 s here.

- Throughput: from the commit (\`clock_timestamp()\` in the inserting session right after it) until a
  poll of PROD_ORDER (one MariaDB session kept open, a query every 10 ms) counts all $ORDERS.
- Latency: $LAT_TXNS single-order transactions at $LAT_RATE/s per round (one DO block committing each order,
  \`clock_timestamp()\` right after each COMMIT), to the order's PROD_ORDER.LAST_UPD (MariaDB's clock
  when millrace's INSERT ran; its batch commits right after); percentiles over all rounds'
  $((LAT_TXNS * ROUNDS)) orders (nearest rank). Both servers read this machine's clock (the
  smallest latency measured: $(ms "$MIN_LAT")). Each round's p50 / p99: A $(round_p50s run); B $(round_p50s bus).
  The inserting sessions commit with synchronous_commit = on, Odoo's production setting (the dev
  server's default here is $PG_SYNC with wal_writer_delay = $PG_WWD: as a logical walsender sends
  only flushed WAL, a commit would wait up to that long before either mode could see it).
- Peak RSS is the highest of the rounds, each process over its whole life (the first sync, both
  phases, the drain at SIGTERM); CPU is its user + system time.
- The bus: $STREAMS (each round's stream is deleted after it). Dead letters at the end: A $DLQ_RUN, B $DLQ_BUS.
EOF
RUN_SHARE=$(cpu_share "$WORK/cpu.run")
if ((RUN_SHARE > 50)); then
    printf -- '- A'\''s process used %s %% of a core over its whole life, idle phases included (B'\''s two: %s %% and %s %%): on\n  this %s-core machine that CPU is taken from PostgreSQL and MariaDB, so A'\''s figures are held back by it.\n' \
        "$RUN_SHARE" "$(cpu_share "$WORK/cpu.capture")" "$(cpu_share "$WORK/cpu.apply")" "$(nproc)" >>"$RESULTS"
fi
if [[ -s $WORK/odd ]]; then
    printf -- '- Exit statuses: %s.\n' "$(paste -sd ';' "$WORK/odd" | sed 's/;/; /g')" >>"$RESULTS"
fi
if [[ -s $WORK/disturbed ]]; then
    printf -- '- **Disturbed**: a NATS node was stopped or restarted by something else (the dev cluster is shared with the tests) during B of %s: those figures measure the failover, not millrace.\n' \
        "$(paste -sd ';' "$WORK/disturbed" | sed 's/;/; /g')" >>"$RESULTS"
fi

printf '\n===== bench/bus results =====\n' && cat "$RESULTS" && printf '=============================\n'
for f in "$WORK"/decisions.*; do
    log "decisions, production_order, ${f##*decisions.}: $(cat "$f")"
done

if [[ -s $WORK/disturbed ]]; then
    log "the NATS cluster was disturbed during the run: $README left as it is; run it again"
elif [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme bus "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
