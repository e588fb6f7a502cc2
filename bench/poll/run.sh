#!/usr/bin/env bash
# Poll benchmark: how fast `millrace tail --source legacy` reads a legacy table through ODBC,
# compared with pyodbc on the same driver, and what one incremental poll costs.
#
#   1. a fresh MariaDB database millrace_bench_poll with an ITEM_MASTER-like table
#      (item_master.sql: CHAR key, DECIMAL(18,4), DATETIME(6) LAST_UPD with an index, 12 columns),
#      filled with BENCH_ROWS rows in SQL (Sequence engine); LAST_UPD values lie in the past,
#      4 rows per stamp, in an order unrelated to the key;
#   2. (a) the first full read: pyodbc (A, pyodbc_read.py: fetchmany(10000) of
#      `SELECT * … ORDER BY LAST_UPD, ITEM_NO`) and `millrace tail --source legacy --json
#      --until-caught-up` (B: timestamp strategy, fresh state, no --ack, output to /dev/null)
#      alternating A B, plus the `mariadb` client running the same SELECT to /dev/null (C, the
#      ceiling); elapsed, CPU and max RSS from /usr/bin/time;
#   3. (b) incremental timestamp polls: one full poll with --ack, then BENCH_INCR_RUNS times:
#      UPDATE 100 other rows (untimed), then time `tail … --ack` (the whole process, and the
#      poll itself from millrace's JSON log);
#   4. (c) hashdiff: a first pass with --ack (stores a fingerprint per row), then passes with
#      100 changed rows each (the steady-state cost);
#   5. prints the results and rewrites the poll section of bench/README.md;
#   6. drops the MariaDB database and the PostgreSQL state databases on exit, whatever happens.
#
# Line counts are checked outside the timed runs.
#
# Usage: bench/poll/run.sh              (from any directory; about 4 minutes at 1,000,000 rows)
# Env:   BENCH_ROWS=1000000    rows in the table (at least 10000)
#        BENCH_ROUNDS=3        rounds of A B C in (a)
#        BENCH_INCR_RUNS=5     incremental polls in (b)
#        BENCH_HD_RUNS=3       steady-state hashdiff passes in (c)
#        BENCH_RUN_TIMEOUT=900 seconds before a single run is killed (the run fails)
#        BENCH_NO_README=1     print the results only, leave bench/README.md alone
#
# Needs nothing outside this repository: `MILLRACE_DEV_BENCH=1 scripts/dev-env.sh` provides
# MariaDB (port 33306) with Connector/ODBC, PostgreSQL 15 (port 55432, for millrace's control
# state), pyodbc and .dev/env; the binary is built with `cargo build --release`.

set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

DB=millrace_bench_poll              # the MariaDB database
STATE_A=millrace_bench_poll_state_a # PostgreSQL: control state of (a) (stays empty: no --ack)
STATE_B=millrace_bench_poll_state_b # … of (b)
STATE_C=millrace_bench_poll_state_c # … of (c)
TABLE=ITEM_MASTER
KEY=ITEM_NO
TS_COLUMN=LAST_UPD
CHANGED=100                         # rows changed before each incremental poll / hashdiff pass
CHUNK=10000                         # hashdiff chunk_size, and pyodbc's fetchmany size

ROWS=${BENCH_ROWS:-1000000}
ROUNDS=${BENCH_ROUNDS:-3}
INCR_RUNS=${BENCH_INCR_RUNS:-5}
HD_RUNS=${BENCH_HD_RUNS:-3}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-900}
POLL_TARGET_MS=50

T_START=$SECONDS

log() { printf '[bench/poll %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

if ! [[ $ROWS =~ ^[0-9]+$ ]] || ((ROWS < 10000)); then die "BENCH_ROWS must be a number >= 10000"; fi
STRIDE=$((ROWS / CHANGED))
# Each incremental poll and hashdiff pass changes rows r, r + STRIDE, r + 2*STRIDE, … (r = 1, 2, …).
((INCR_RUNS + HD_RUNS < STRIDE)) || die "too many runs for $ROWS rows"

# --- environment -------------------------------------------------------------------------------

log "dev environment (MILLRACE_DEV_BENCH=1 scripts/dev-env.sh)"
MILLRACE_DEV_BENCH=1 bash "$ROOT/scripts/dev-env.sh" >&2
# shellcheck source=/dev/null
. "$ROOT/.dev/env"

[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package: time)"
command -v mariadb >/dev/null || die "the mariadb client is missing"
python3 -c 'import pyodbc' || die "pyodbc is missing (MILLRACE_DEV_BENCH=1 scripts/dev-env.sh installs it)"

# mysql://user:password@host:port
[[ $MILLRACE_TEST_MARIADB_URL =~ ^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+) ]] ||
    die "unexpected MILLRACE_TEST_MARIADB_URL"
M_USER=${BASH_REMATCH[1]} M_PASSWORD=${BASH_REMATCH[2]} M_HOST=${BASH_REMATCH[3]} M_PORT=${BASH_REMATCH[4]}
ODBC="${MILLRACE_TEST_ODBC}Database=$DB;"
SELECT_SQL="SELECT * FROM $TABLE ORDER BY $TS_COLUMN, $KEY"

PSQL=$MILLRACE_TEST_PG_BIN/psql
PG_ADMIN_URL="${MILLRACE_TEST_PG_URL%%\?*}?sslmode=disable"
PG_BASE=${MILLRACE_TEST_PG_URL%%\?*}
PG_BASE=${PG_BASE%/*}
state_url() { printf '%s/%s?sslmode=disable' "$PG_BASE" "$1"; }

# The mariadb client, TCP like the ODBC driver; MYSQL_PWD keeps the password off the command line.
maria_cmd=(mariadb -h "$M_HOST" -P "$M_PORT" -u "$M_USER" --batch --skip-column-names)
maria() { MYSQL_PWD=$M_PASSWORD "${maria_cmd[@]}" "$@"; }
maria_db() { maria -D "$DB" "$@"; }
psql_admin() { "$PSQL" "$PG_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
state_value() { "$PSQL" "$(state_url "$1")" -X -q -v ON_ERROR_STOP=1 -At -c "$2"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/millrace-bench-poll.XXXXXX")

drop_all() {
    maria -e "DROP DATABASE IF EXISTS \`$DB\`" || return 1
    local s
    for s in "$STATE_A" "$STATE_B" "$STATE_C"; do
        psql_admin -c "DROP DATABASE IF EXISTS $s WITH (FORCE)" 2>&1 | grep -v 'does not exist, skipping' >&2 || true
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    log "cleaning up: MariaDB database $DB, state databases"
    drop_all || log "WARNING: could not drop $DB or the state databases; re-run this script to retry"
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

# millrace reads ./millrace.toml when it exists, and the environment overrides the file: run it
# from the empty work directory, with only the settings of the files written here.
cd -- "$WORK"
unset MILLRACE_ODOO_URL MILLRACE_ODOO_PASSWORD MILLRACE_ODOO_PASSWORD_FILE MILLRACE_ODOO_PUBLICATION \
    MILLRACE_ODOO_SLOT MILLRACE_ODOO_STREAMING MILLRACE_ODOO_TABLES MILLRACE_STATE_URL \
    MILLRACE_LEGACY_CONNECTION_STRING MILLRACE_LEGACY_KIND MILLRACE_LEGACY_PASSWORD \
    MILLRACE_LEGACY_PASSWORD_FILE MILLRACE_LEGACY_POLL_INTERVAL
export MILLRACE_LOG=info

# --- 1. databases and data ---------------------------------------------------------------------

log "fresh MariaDB database $DB, state databases"
drop_all
maria -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
for s in "$STATE_A" "$STATE_B" "$STATE_C"; do psql_admin -c "CREATE DATABASE $s"; done

log "generating $ROWS rows"
t0=$EPOCHREALTIME
maria_db <"$BENCH_DIR/item_master.sql"
# LAST_UPD: stamp number s = ((seq * 7907) mod ROWS) div 4, a permutation of the rows (7907 is a
# prime) cut into groups of 4 sharing a stamp (a batch job's rows), so LAST_UPD order is
# unrelated to key order and ties are broken by the key. Stamps are 29 s apart, starting 400 days
# ago: all in the past, so the incremental polls' 60 s re-read window holds only changed rows.
maria_db -e "
SET @base = TIMESTAMP(CURDATE() - INTERVAL 400 DAY, '06:00:00');
INSERT INTO $TABLE
SELECT CONCAT('IT', LPAD(seq, 9, '0')),
       CONCAT(ELT(1 + seq % 6, 'Desk Combination', 'Office Chair Black', 'Hex Bolt M8x40 zinc',
                  'Cable 3G1.5 H05VV-F', 'Pallet EUR 1200x800', 'Drawer Black'), ' ', seq % 997),
       ELT(1 + seq % 4, 'EA', 'KG', 'M', 'DZ'),
       ELT(1 + seq % 3, 'M', 'P', 'S'),
       IF(seq % 7 = 0, 'L', 'N'),
       (seq * 7919) % 10000000 / 10000,
       ROUND((seq * 7919) % 10000000 / 10000 * 1.35, 4),
       (seq * 104729) % 100000000 / 1000,
       IF(seq % 3 = 0, '', CONCAT('WC', LPAD(seq % 40, 2, '0'))),
       IF(seq % 50 = 0, 'I', 'A'),
       IF(seq % 11 = 0, NULL, DATE(@base) - INTERVAL (seq % 3000) DAY),
       @base + INTERVAL ((((seq * 7907) % $ROWS) DIV 4) * 29) SECOND
             + INTERVAL ((((seq * 7907) % $ROWS) DIV 4) * 7 % 1000000) MICROSECOND
  FROM seq_1_to_$ROWS;
ANALYZE TABLE $TABLE;" >/dev/null
GEN_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
[[ $(maria_db -e "SELECT COUNT(*) FROM $TABLE") == "$ROWS" ]] || die "the table does not hold $ROWS rows"
[[ $(maria_db -e "SELECT COUNT(DISTINCT $TS_COLUMN) FROM $TABLE") == "$((ROWS / 4))" ]] ||
    die "LAST_UPD is not 4 rows per stamp (is $ROWS a multiple of 7907?)"
TABLE_MB=$(maria -e "SELECT ROUND((data_length + index_length) / 1048576) FROM information_schema.tables
                      WHERE table_schema = '$DB' AND table_name = '$TABLE'")
QUERY_PLAN=$(maria_db -e "EXPLAIN $SELECT_SQL" | awk -F'\t' '{ print "type " $4 ", key " ($6 == "NULL" ? "none" : $6) ", " $10 }')
log "generated in ${GEN_S}s ($TABLE_MB MB with indexes); plan of the full read: $QUERY_PLAN"

# Changes CHANGED rows spread over the table (a different set for each n = 1, 2, …): bumps
# QTY_ON_HAND, so LAST_UPD moves to now.
update_rows() {
    local n=$1 changed keys k
    keys=$(for ((k = 0; k < CHANGED; k++)); do printf "'IT%09d'," $((n + k * STRIDE)); done)
    changed=$(maria_db -e "
        UPDATE $TABLE SET QTY_ON_HAND = QTY_ON_HAND + 1 WHERE $KEY IN (${keys%,});
        SELECT ROW_COUNT();")
    [[ $changed == "$CHANGED" ]] || die "UPDATE changed ${changed:-?} rows, expected $CHANGED"
}

toml_string() {
    local v=${1//\\/\\\\}
    printf '"%s"' "${v//\"/\\\"}"
}
# millrace gets the same connection string as pyodbc, and the password a second time in
# `password`, which it appends as PWD={…}. The reason: millrace trims the string's final ';' and
# hands it to SQLDriverConnect with its length but without a NUL terminator, and Connector/ODBC
# 3.1.15 reads on to the next NUL byte. Whenever the heap holds no 0 byte right after the string
# (with glibc, when its length is 8 mod 16) the last value gets junk appended: "Unknown database
# 'millrace_bench_pollU'". A value in braces ends at its '}', whatever follows.
write_config() {
    local file=$1 state=$2 strategy_lines=$3
    cat >"$file" <<EOF
[state]
url = "$(state_url "$state")"

[legacy]
kind = "odbc"
connection_string = $(toml_string "$ODBC")
password = $(toml_string "$M_PASSWORD")

[[legacy.tables]]
table = "$TABLE"
key = ["$KEY"]
$strategy_lines
EOF
}
write_config "$WORK/ts_a.toml" "$STATE_A" $'strategy = "timestamp"\ncolumn = "LAST_UPD"\nsafety_window = "60s"'
write_config "$WORK/ts_b.toml" "$STATE_B" $'strategy = "timestamp"\ncolumn = "LAST_UPD"\nsafety_window = "60s"'
write_config "$WORK/hd_c.toml" "$STATE_C" $'strategy = "hashdiff"\nchunk_size = '"$CHUNK"

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

# millrace tail --source legacy; stdout to $2, JSON log to $3.log, /usr/bin/time to $3.time.
millrace_tail() {
    local config=$1 stdout=$2 out=$3
    shift 3
    timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f "$TIME_FORMAT" -o "$out.time" \
        "$BIN" --config "$config" --log-format json tail --source legacy --json --until-caught-up "$@" \
        >"$stdout" 2>"$out.log" ||
        die "millrace tail ($config $*) failed: $(cat -- "$out.log" "$out.time" 2>/dev/null)"
    read_time "$out.time"
}

# The change count of millrace's closing log line, and no bad rows.
check_millrace_log() {
    local logfile=$1 want=$2 changes bad
    changes=$(grep '"tail stopped"' "$logfile" | grep -o '"changes":[0-9]*' | tail -n 1 | cut -d: -f2)
    bad=$(grep '"tail stopped"' "$logfile" | grep -o '"bad_rows":[0-9]*' | tail -n 1 | cut -d: -f2)
    [[ $changes == "$want" && $bad == 0 ]] ||
        die "millrace reported ${changes:-?} changes (${bad:-?} bad rows), expected $want; log: $(cat -- "$logfile")"
}

# The epoch time (seconds) of the first millrace log line in $1 whose message is $2.
log_time() {
    local ts
    ts=$(grep -m 1 "\"message\":\"$2\"" "$1" | grep -o '"timestamp":"[^"]*"' | cut -d'"' -f4)
    [[ -n $ts ]] || die "no \"$2\" line in $1: $(cat -- "$1")"
    date -d "$ts" +%s.%N
}
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { awk -v r="$1" -v t="$2" 'BEGIN { printf "%d", r / t }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
join_s() { local IFS=' '; printf '%s' "$*" | sed 's/ / s, /g; s/$/ s/'; }
join_ms() { local IFS=' '; printf '%s' "$*" | sed 's/ / ms, /g; s/$/ ms/'; }

# --- 2. (a) the first full read: pyodbc vs millrace, the mariadb client as ceiling --------------

# Once each, untimed: every contender returns all rows. Also loads the table into the buffer pool.
log "(a) checks: every contender reads $ROWS rows"
n=$(python3 "$BENCH_DIR/pyodbc_read.py" "$ODBC" "$SELECT_SQL") || die "pyodbc_read.py failed"
[[ $n == "$ROWS" ]] || die "pyodbc read $n rows, expected $ROWS"
n=$(maria_db --quick -e "$SELECT_SQL" | wc -l)
[[ $n == "$ROWS" ]] || die "the mariadb client printed $n rows, expected $ROWS"
LINES_A=$(timeout -k 10 "$RUN_TIMEOUT" "$BIN" --config "$WORK/ts_a.toml" --log-format json tail --source legacy \
    --json --until-caught-up 2>"$WORK/check_a.log" | awk -v f="$WORK/first_a.json" 'NR == 1 { print > f } END { print NR }') ||
    die "millrace tail (line count check) failed: $(cat -- "$WORK/check_a.log")"
[[ $LINES_A == "$ROWS" ]] || die "millrace printed $LINES_A lines, expected $ROWS: $(cat -- "$WORK/check_a.log")"
FIRST_A=$(cat -- "$WORK/first_a.json")
[[ $FIRST_A == *'"op":"r"'* ]] || die "millrace's first line is not a snapshot record: $FIRST_A"
log "(a) checks: $ROWS rows each"

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
A_T=() A_RSS=() A_CPU=() B_T=() B_RSS=() B_CPU=() C_T=() C_RSS=() C_CPU=()
for ((round = 1; round <= ROUNDS; round++)); do
    out=$WORK/a_${round}_A
    timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f "$TIME_FORMAT" -o "$out.time" \
        python3 "$BENCH_DIR/pyodbc_read.py" "$ODBC" "$SELECT_SQL" >"$out.out" 2>"$out.log" ||
        die "pyodbc_read.py failed: $(cat -- "$out.log" "$out.time")"
    [[ $(cat -- "$out.out") == "$ROWS" ]] || die "pyodbc read $(cat -- "$out.out") rows, expected $ROWS"
    read_time "$out.time"
    A_T+=("$ELAPSED") A_RSS+=("$RSS_KB") A_CPU+=("$CPU_S")
    log "(a) round $round A pyodbc:   ${ELAPSED}s, max RSS ${RSS_KB} KB, CPU ${CPU_S}s"

    out=$WORK/a_${round}_B
    millrace_tail "$WORK/ts_a.toml" /dev/null "$out"
    check_millrace_log "$out.log" "$ROWS"
    B_T+=("$ELAPSED") B_RSS+=("$RSS_KB") B_CPU+=("$CPU_S")
    log "(a) round $round B millrace: ${ELAPSED}s, max RSS ${RSS_KB} KB, CPU ${CPU_S}s"

    out=$WORK/a_${round}_C
    MYSQL_PWD=$M_PASSWORD timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f "$TIME_FORMAT" -o "$out.time" \
        "${maria_cmd[@]}" --quick -D "$DB" -e "$SELECT_SQL" >/dev/null 2>"$out.log" ||
        die "the mariadb client failed: $(cat -- "$out.log" "$out.time")"
    read_time "$out.time"
    C_T+=("$ELAPSED") C_RSS+=("$RSS_KB") C_CPU+=("$CPU_S")
    log "(a) round $round C mariadb:  ${ELAPSED}s, max RSS ${RSS_KB} KB, CPU ${CPU_S}s"
done
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
[[ -z $(state_value "$STATE_A" "SELECT 1 FROM millrace.legacy_checkpoint LIMIT 1") ]] ||
    die "(a) left a checkpoint behind although it never acknowledged"

A_MED=$(median "${A_T[@]}") B_MED=$(median "${B_T[@]}") C_MED=$(median "${C_T[@]}")
A_RATE=$(rate "$ROWS" "$A_MED") B_RATE=$(rate "$ROWS" "$B_MED") C_RATE=$(rate "$ROWS" "$C_MED")
A_CPU_MED=$(median "${A_CPU[@]}") B_CPU_MED=$(median "${B_CPU[@]}") C_CPU_MED=$(median "${C_CPU[@]}")
A_RSS_MB=$(mb "$(median "${A_RSS[@]}")") B_RSS_MB=$(mb "$(median "${B_RSS[@]}")") C_RSS_MB=$(mb "$(median "${C_RSS[@]}")")
B_RSS_MAX_MB=$(mb "$(printf '%s\n' "${B_RSS[@]}" | sort -n | tail -n 1)")
RATIO=$(awk -v a="$A_MED" -v b="$B_MED" 'BEGIN { printf "%.2f", a / b }')
VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 1.0) ? "meets" : "MISSES" }')
CEIL_RATIO=$(awk -v c="$C_MED" -v b="$B_MED" 'BEGIN { printf "%.2f", c / b }')
B_CPU_RATE=$(rate "$ROWS" "$B_CPU_MED")
A_CPU_RATE=$(rate "$ROWS" "$A_CPU_MED")

# --- 3. (b) incremental timestamp polls --------------------------------------------------------

log "(b) full poll with --ack"
millrace_tail "$WORK/ts_b.toml" /dev/null "$WORK/b_full" --ack
check_millrace_log "$WORK/b_full.log" "$ROWS"
B_FULL_S=$ELAPSED B_FULL_RSS_MB=$(mb "$RSS_KB")
B_KEPT=$(state_value "$STATE_B" "SELECT count(*) FROM millrace.legacy_row_hash")
log "(b) full poll with --ack: ${ELAPSED}s, max RSS ${RSS_KB} KB; $B_KEPT fingerprints kept"

# Timed with bash's clock around the process (timeout(1) adds about 1 ms), and split by the
# timestamps of millrace's log lines "polling the legacy database" (after start-up and the state
# database's connection and schema check) and "tail stopped" (after the poll and its save).
I_WALL=() I_START=() I_POLL=() I_EXIT=()
for ((i = 1; i <= INCR_RUNS; i++)); do
    update_rows "$i"
    out=$WORK/b_$i
    t0=$EPOCHREALTIME
    timeout -k 10 "$RUN_TIMEOUT" "$BIN" --config "$WORK/ts_b.toml" --log-format json tail --source legacy --json \
        --until-caught-up --ack >"$out.out" 2>"$out.log" ||
        die "incremental poll $i failed: $(cat -- "$out.log")"
    t1=$EPOCHREALTIME
    lines=$(wc -l <"$out.out")
    updates=$(grep -c '"op":"u"' "$out.out" || true)
    [[ $lines == "$CHANGED" && $updates == "$CHANGED" ]] ||
        die "incremental poll $i printed $lines lines ($updates updates), expected $CHANGED"
    check_millrace_log "$out.log" "$CHANGED"
    polling=$(log_time "$out.log" "polling the legacy database")
    stopped=$(log_time "$out.log" "tail stopped")
    I_WALL+=("$(ms_between "$t0" "$t1")") I_START+=("$(ms_between "$t0" "$polling")")
    I_POLL+=("$(ms_between "$polling" "$stopped")") I_EXIT+=("$(ms_between "$stopped" "$t1")")
    log "(b) poll $i: $lines lines; process ${I_WALL[-1]} ms = start ${I_START[-1]} + poll ${I_POLL[-1]} + exit ${I_EXIT[-1]} ms"
done
I_WALL_MED=$(median "${I_WALL[@]}")
I_START_MED=$(median "${I_START[@]}")
I_POLL_MED=$(median "${I_POLL[@]}")
I_EXIT_MED=$(median "${I_EXIT[@]}")
I_VERDICT=$(awk -v p="$I_POLL_MED" -v t="$POLL_TARGET_MS" 'BEGIN { print (p < t) ? "meets" : "MISSES" }')
I_WALL_VERDICT=$(awk -v p="$I_WALL_MED" -v t="$POLL_TARGET_MS" 'BEGIN { print (p < t) ? "under" : "over" }')
I_KEPT=$(state_value "$STATE_B" "SELECT count(*) FROM millrace.legacy_row_hash")

# --- 4. (c) hashdiff ---------------------------------------------------------------------------

log "(c) check: a first hashdiff pass prints $ROWS lines (untimed, no --ack)"
LINES_C=$(timeout -k 10 "$RUN_TIMEOUT" "$BIN" --config "$WORK/hd_c.toml" --log-format json tail --source legacy \
    --json --until-caught-up 2>"$WORK/check_c.log" | wc -l) ||
    die "millrace tail (hashdiff line count check) failed: $(cat -- "$WORK/check_c.log")"
[[ $LINES_C == "$ROWS" ]] || die "hashdiff printed $LINES_C lines, expected $ROWS: $(cat -- "$WORK/check_c.log")"

log "(c) first hashdiff pass with --ack"
millrace_tail "$WORK/hd_c.toml" /dev/null "$WORK/c_first" --ack
check_millrace_log "$WORK/c_first.log" "$ROWS"
HD_FIRST_S=$ELAPSED HD_FIRST_CPU=$CPU_S HD_FIRST_RSS_MB=$(mb "$RSS_KB")
HD_STORED=$(state_value "$STATE_C" "SELECT count(*) FROM millrace.legacy_row_hash WHERE strategy = 'hashdiff'")
[[ $HD_STORED == "$ROWS" ]] || die "the first hashdiff pass stored $HD_STORED fingerprints, expected $ROWS"
HD_FIRST_RATE=$(rate "$ROWS" "$HD_FIRST_S")
log "(c) first pass: ${HD_FIRST_S}s ($HD_FIRST_RATE rows/s), CPU ${HD_FIRST_CPU}s, max RSS $HD_FIRST_RSS_MB MB; $HD_STORED fingerprints stored"

H_T=() H_CPU=() H_RSS=()
for ((i = 1; i <= HD_RUNS; i++)); do
    update_rows "$((INCR_RUNS + i))"
    out=$WORK/c_$i
    millrace_tail "$WORK/hd_c.toml" "$out.out" "$out" --ack
    lines=$(wc -l <"$out.out")
    updates=$(grep -c '"op":"u"' "$out.out" || true)
    [[ $lines == "$CHANGED" && $updates == "$CHANGED" ]] ||
        die "hashdiff pass $i printed $lines lines ($updates updates), expected $CHANGED"
    check_millrace_log "$out.log" "$CHANGED"
    H_T+=("$ELAPSED") H_CPU+=("$CPU_S") H_RSS+=("$RSS_KB")
    log "(c) steady pass $i: $lines lines; ${ELAPSED}s, CPU ${CPU_S}s, max RSS ${RSS_KB} KB"
done
H_MED=$(median "${H_T[@]}")
H_RATE=$(rate "$ROWS" "$H_MED")
H_CPU_MED=$(median "${H_CPU[@]}")
H_RSS_MB=$(mb "$(median "${H_RSS[@]}")")

# --- 5. results --------------------------------------------------------------------------------

TOTAL_S=$((SECONDS - T_START))
MARIADB_VERSION=$(maria -e "SELECT VERSION()")
ODBC_VERSION=$(dpkg-query -W -f='${Version}' odbc-mariadb 2>/dev/null || echo unknown)
PYODBC_VERSION=$(python3 -c 'import pyodbc; print(pyodbc.version)')
PY_VERSION=$(python3 -c 'import platform; print(platform.python_version())')
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
ROWS_FMT=$ROWS

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), millrace $MILLRACE_COMMIT; $(nproc) cores ($CPU_MODEL),
$MEM_GB GB RAM, MariaDB $MARIADB_VERSION, MariaDB Connector/ODBC $ODBC_VERSION (unixODBC), pyodbc
$PYODBC_VERSION on Python $PY_VERSION; whole script ${TOTAL_S} s (generating the $ROWS_FMT rows ${GEN_S} s).

Table: $ROWS_FMT rows of an ITEM_MASTER-like table (\`bench/poll/item_master.sql\`, 12 columns,
$TABLE_MB MB with indexes), read with \`$SELECT_SQL\` (plan: $QUERY_PLAN).

**(a) First full read** through ODBC, same driver and connection string (TCP to 127.0.0.1), output
to /dev/null; A, B and C alternate, $ROUNDS rounds. CPU is the client's own user + system time (mariadbd's
is not in it). Load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER (about 2 is this benchmark
alone: mariadbd and the client).

| contender | runs | median | rows/s | client CPU (median) | max RSS (median) |
|---|---|---|---|---|---|
| A: pyodbc, \`fetchmany($CHUNK)\` (\`bench/poll/pyodbc_read.py\`) | $(join_s "${A_T[@]}") | $A_MED s | $A_RATE | $A_CPU_MED s | $A_RSS_MB MB |
| B: \`millrace tail --source legacy --json --until-caught-up\` (timestamp, fresh state, no --ack) | $(join_s "${B_T[@]}") | $B_MED s | $B_RATE | $B_CPU_MED s | $B_RSS_MB MB |
| C (ceiling): \`mariadb --quick --batch -e "…" > /dev/null\` | $(join_s "${C_T[@]}") | $C_MED s | $C_RATE | $C_CPU_MED s | $C_RSS_MB MB |

millrace / pyodbc = **$RATIO** (target ≥ 1.0: $VERDICT). The mariadb client is $CEIL_RATIO × millrace's rate.
Peak RSS of millrace: $B_RSS_MAX_MB MB (highest of the $ROUNDS runs).

- millrace used $B_CPU_MED s of CPU for $ROWS_FMT rows (about $B_CPU_RATE rows per CPU-second; pyodbc
  $A_CPU_RATE). millrace's line count was checked once, untimed: $LINES_A JSON lines, the first one a
  snapshot (\`"op":"r"\`).

**(b) Incremental \`timestamp\` poll**, \`tail --source legacy --json --until-caught-up --ack\` after
\`UPDATE\` of $CHANGED rows spread over the table (a different $CHANGED each time), safety window 60 s, so
each poll also re-reads the previous poll's rows and recognises them by fingerprint. Before these, one
full poll with --ack took $B_FULL_S s (max RSS $B_FULL_RSS_MB MB) and kept $B_KEPT fingerprints.

| | runs | median |
|---|---|---|
| whole process (bash's clock around it) | $(join_ms "${I_WALL[@]}") | $I_WALL_MED ms |
| … start-up: exec, the state database's connection and schema check | $(join_ms "${I_START[@]}") | $I_START_MED ms |
| … the poll: log "polling the legacy database" → "tail stopped" | $(join_ms "${I_POLL[@]}") | **$I_POLL_MED ms** |
| … exit | $(join_ms "${I_EXIT[@]}") | $I_EXIT_MED ms |

Poll target < $POLL_TARGET_MS ms: $I_VERDICT (the whole process is $I_WALL_VERDICT it). The poll as logged covers
the ODBC connect, reading the checkpoint and the kept fingerprints, the query, printing, and the
save (--ack). Each run printed exactly $CHANGED lines, all updates (checked after the run). Polls
less than 60 s apart re-read all the rows changed since the window's start: $I_KEPT fingerprints
(the rows a next poll would re-read) were kept at the end.

**(c) \`hashdiff\`** (chunk_size $CHUNK, key-ordered scan, each chunk's stored fingerprints looked up in
the state database):

| pass | time | rows/s | CPU | max RSS |
|---|---|---|---|---|
| first, --ack (stores $HD_STORED fingerprints; prints $ROWS_FMT snapshot lines to /dev/null) | $HD_FIRST_S s | $HD_FIRST_RATE | $HD_FIRST_CPU s | $HD_FIRST_RSS_MB MB |
| steady state, --ack, $CHANGED rows changed ($HD_RUNS runs: $(join_s "${H_T[@]}"); median) | $H_MED s | $H_RATE | $H_CPU_MED s | $H_RSS_MB MB |

The first pass's output was counted in an untimed run without --ack: $LINES_C lines; each steady
pass printed exactly $CHANGED updates. Of a steady pass's $H_MED s, millrace's own CPU is $H_CPU_MED s; the
rest is waiting: on MariaDB's keyset queries (\`SELECT * … WHERE ITEM_NO > ? ORDER BY ITEM_NO LIMIT $CHUNK\`,
the same queries as in the first pass) and on the state database's lookup of each chunk's stored
fingerprints (\`row_key = ANY(\$3)\` with $CHUNK keys; the first pass finds none).
EOF

printf '\n===== bench/poll results =====\n' && cat "$RESULTS" && printf '==============================\n'

if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme poll "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
