#!/usr/bin/env bash
# Export benchmark: a 1,000,000-row Odoo table to zstd Parquet, `millrace export` against two
# ways it is done without millrace, all three in the same run.
#
#   1. database millrace_bench_export on the dev PostgreSQL: the Odoo 17 fixture (sql/odoo17/,
#      loaded by scripts/load-odoo-fixture.sh), its stock_move (62 columns: integer, numeric,
#      character varying, text, date, timestamp, double precision, boolean) filled up to
#      BENCH_ROWS rows by stock_move.sql (copies of the fixture's own moves with other products,
#      states, quantities, dates and document numbers). The database is KEPT after the run and
#      reused as long as stock_move has BENCH_ROWS rows and stock_move.sql is unchanged (building
#      it takes about 40 s); BENCH_FRESH_DB=1 rebuilds it; to remove it:
#      psql "$MILLRACE_TEST_PG_URL" -c 'DROP DATABASE millrace_bench_export'
#   2. the contenders, alternating A B C A B C … (BENCH_ROUNDS rounds), every one over TCP to
#      127.0.0.1 without TLS, each run into an empty directory:
#      A  `millrace --config F export --table stock_move --side odoo --out DIR`, which writes
#         DIR/stock_move.parquet (zstd). The binary is target/release/millrace as it is: this
#         script does NOT build it (it stops, saying so, when the binary is missing or has no
#         `export` command; BENCH_SKIP_MILLRACE=1 runs the baselines alone);
#      B  psycopg 3 `COPY (SELECT * FROM stock_move) TO STDOUT (FORMAT csv)` into memory, then
#         pyarrow.csv.read_csv and pyarrow.parquet.write_table(compression='zstd')
#         (pyarrow_export.py), in the .dev/py virtualenv that scripts/dev-env.sh makes;
#      C  sling (the Go binary from PyPI's sling-linux-amd64), which writes Parquet through the
#         DuckDB CLI: installed offline-capable into .dev/bench-sling (the PyPI wheels
#         sling-linux-amd64, duckdb-cli and the DuckDB json and httpfs extension wheels of the
#         same DuckDB version, the extensions copied into $HOME/.duckdb/extensions/v<version>/
#         linux_amd64/ with HOME=.dev/bench-sling/home for sling alone; DUCKDB_PATH,
#         DUCKDB_VERSION, SLING_DISABLE_TELEMETRY=true). Its target is a directory, with
#         file_max_rows so that sling names its part files (data_001.parquet, …): given one
#         .parquet file, sling 1.4.11 runs one DuckDB COPY per batch into the same file, so
#         only the last batch is left (126,413 of 1,000,000 rows here; sling-cli issue #588). When sling cannot be installed or does not run, the results say
#         "skipped: <reason>" and the rest goes on;
#      each under /usr/bin/time (elapsed, max RSS of the largest single process, CPU), with the
#      RSS of the whole process tree (sling + duckdb) also sampled every 0.2 s;
#   3. after each run, untimed: the output read back with pyarrow (check_parquet.py): BENCH_ROWS
#      rows, 62 columns, zstd;
#   4. prints the results and rewrites the export section of bench/README.md.
#
# Usage: bench/export/run.sh          (from any directory; about 4 minutes, most of it sling)
# Env:   BENCH_ROUNDS=3          rounds of A B C
#        BENCH_ROWS=1000000      rows in stock_move
#        BENCH_SKIP_MILLRACE=1   run only the baselines B and C (no millrace binary needed)
#        BENCH_MILLRACE_BIN=PATH the millrace binary to run (default: target/release/millrace)
#        BENCH_SKIP_SLING=1      leave sling out (reported as skipped)
#        BENCH_FRESH_DB=1        rebuild millrace_bench_export even when it could be reused
#        BENCH_RUN_TIMEOUT=900   seconds before a single run is killed
#        BENCH_NO_README=1       print the results only, leave bench/README.md alone
#
# Needs nothing outside this repository and PyPI: scripts/dev-env.sh provides PostgreSQL 15
# (port 55432), /usr/bin/time, .dev/env and the .dev/py virtualenv (MILLRACE_PYTHON).

set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

DB=millrace_bench_export
TABLE=stock_move
ROWS=${BENCH_ROWS:-1000000}
ROUNDS=${BENCH_ROUNDS:-3}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-900}
MILLRACE_BIN=${BENCH_MILLRACE_BIN:-$ROOT/target/release/millrace}

# sling and the DuckDB it writes Parquet with, pinned together (the extension wheels are built
# for one DuckDB version; duckdb is the extension wheels' own dependency).
DUCKDB_VER=1.4.4
SLING_REQUIREMENTS=(
    "sling-linux-amd64==1.4.11"
    "duckdb-cli==1.4.4.post2"
    "duckdb-ext-json==1.4.4.20260205"
    "duckdb-ext-httpfs==1.4.4.20260205"
    "duckdb==1.4.4"
)
SLING_VENV=$ROOT/.dev/bench-sling

T_START=$SECONDS

log() { printf '[bench/export %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

[[ $ROWS =~ ^[0-9]+$ && $ROWS -ge 1000 ]] || die "BENCH_ROWS must be a number >= 1000"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "BENCH_ROUNDS must be a number >= 1"

# --- millrace: the binary as it is, never built here -------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/millrace-bench-export.XXXXXX")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    rm -rf -- "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

MILLRACE_STATUS=""
if [[ ${BENCH_SKIP_MILLRACE:-0} == 1 ]]; then
    MILLRACE_STATUS="skipped: BENCH_SKIP_MILLRACE=1"
    log "millrace: $MILLRACE_STATUS"
else
    [[ -x $MILLRACE_BIN ]] ||
        die "$MILLRACE_BIN is missing: build it first (cargo build --release), or run the baselines alone with BENCH_SKIP_MILLRACE=1"
    "$MILLRACE_BIN" export --help >/dev/null 2>&1 ||
        die "$MILLRACE_BIN has no \`export\` command: rebuild it from a tree that has one (cargo build --release), or run the baselines alone with BENCH_SKIP_MILLRACE=1"
    # A private copy, so a rebuild by someone else during the run cannot swap the binary.
    BIN=$WORK/millrace
    cp -- "$MILLRACE_BIN" "$BIN"
fi
MILLRACE_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    MILLRACE_COMMIT+=" + uncommitted changes"
fi

# --- environment -------------------------------------------------------------------------------

log "dev environment (scripts/dev-env.sh)"
bash "$ROOT/scripts/dev-env.sh" >&2
# shellcheck source=/dev/null
. "$ROOT/.dev/env"
PY=${MILLRACE_PYTHON:?.dev/env has no MILLRACE_PYTHON: scripts/dev-env.sh is too old}
if [[ ! -x /usr/bin/time ]]; then
    log "installing Debian's time (for /usr/bin/time)"
    apt-get install -y -q --no-install-recommends time >&2 || die "/usr/bin/time is missing (Debian package: time)"
fi

PORT=$MILLRACE_TEST_PG_PORT
PSQL=$MILLRACE_TEST_PG_BIN/psql
ADMIN_URL="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"
DB_URL="postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable"
psql_db() { "$PSQL" "$DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql_value() { "$PSQL" "$DB_URL" -X -q -v ON_ERROR_STOP=1 -At -c "$1"; }

# Only the settings given here reach millrace (none from the caller's environment).
while IFS= read -r var; do
    [[ $var == MILLRACE_TEST_* || $var == MILLRACE_PYTHON ]] || unset "$var"
done < <(compgen -e | grep '^MILLRACE_' || true)
export MILLRACE_LOG=info

# --- 1. database -------------------------------------------------------------------------------

# The database's comment says what it was built from; reused only when that and the row count
# still hold (the comment is written last, so an interrupted build is never reused).
GEN_ID="bench/export stock_move.sql $(sha256sum "$BENCH_DIR/stock_move.sql" | cut -c1-16), $ROWS rows"
have_db() {
    local comment count
    comment=$("$PSQL" "$ADMIN_URL" -X -q -At -c \
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$DB'") || return 1
    [[ $comment == "$GEN_ID" ]] || return 1
    count=$(sql_value "SELECT count(*) FROM $TABLE" 2>/dev/null) || return 1
    [[ $count == "$ROWS" ]]
}
if [[ ${BENCH_FRESH_DB:-0} != 1 ]] && have_db; then
    log "reusing database $DB ($TABLE has $ROWS rows)"
else
    log "building database $DB: the Odoo 17 fixture, then $TABLE filled to $ROWS rows"
    t0=$SECONDS
    bash "$ROOT/scripts/load-odoo-fixture.sh" --fresh "$DB" >&2
    psql_db -v rows="$ROWS" -f "$BENCH_DIR/stock_move.sql" >/dev/null
    count=$(sql_value "SELECT count(*) FROM $TABLE")
    [[ $count == "$ROWS" ]] || die "$TABLE has $count rows after stock_move.sql, expected $ROWS"
    "$PSQL" "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -c "COMMENT ON DATABASE $DB IS '$GEN_ID'"
    log "built in $((SECONDS - t0)) s"
fi
TABLE_MB=$(sql_value "SELECT round(pg_table_size('$TABLE') / 1048576.0)")
COLUMNS=$(sql_value "SELECT count(*) FROM pg_attribute WHERE attrelid = '$TABLE'::regclass AND attnum > 0 AND NOT attisdropped")

# --- sling: its own virtualenv, from PyPI wheels only ------------------------------------------

SLING_STATUS="" SLING_BIN="" SLING_HOME=$SLING_VENV/home
setup_sling() {
    local py=$SLING_VENV/bin/python marker=$SLING_VENV/millrace-requirements.txt want site ext
    want=$(printf '%s\n' "${SLING_REQUIREMENTS[@]}")
    if [[ ! -f $marker || "$(cat -- "$marker")" != "$want" ]] || ! "$py" -c '' 2>/dev/null; then
        log "installing sling into $SLING_VENV: ${SLING_REQUIREMENTS[*]}"
        rm -rf -- "$SLING_VENV"
        if ! python3 -m venv "$SLING_VENV" >"$WORK/sling-install.log" 2>&1; then
            SLING_STATUS="skipped: python3 -m venv failed ($(tail -n 1 "$WORK/sling-install.log"))"
            return 0
        fi
        if ! "$py" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
            "${SLING_REQUIREMENTS[@]}" >>"$WORK/sling-install.log" 2>&1; then
            SLING_STATUS="skipped: pip could not install ${SLING_REQUIREMENTS[*]} ($(grep -m 1 -E '^ERROR' "$WORK/sling-install.log" || tail -n 1 "$WORK/sling-install.log"))"
            return 0
        fi
        printf '%s\n' "$want" >"$marker"
    fi
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    SLING_BIN=$site/sling_linux_amd64/bin/sling-linux-amd64
    [[ -x $SLING_BIN ]] || { SLING_STATUS="skipped: the sling-linux-amd64 wheel has no $SLING_BIN"; return 0; }
    [[ -x $SLING_VENV/bin/duckdb ]] || { SLING_STATUS="skipped: the duckdb-cli wheel installed no bin/duckdb"; return 0; }
    mkdir -p "$SLING_HOME/.duckdb/extensions/v$DUCKDB_VER/linux_amd64"
    for ext in json httpfs; do
        [[ -f $site/duckdb_ext/extensions/v$DUCKDB_VER/linux_amd64/$ext.duckdb_extension ]] ||
            { SLING_STATUS="skipped: the duckdb-ext-$ext wheel has no extension for DuckDB v$DUCKDB_VER"; return 0; }
        cp -u -- "$site/duckdb_ext/extensions/v$DUCKDB_VER/linux_amd64/$ext.duckdb_extension" \
            "$SLING_HOME/.duckdb/extensions/v$DUCKDB_VER/linux_amd64/"
    done
    if ! "${SLING_ENV[@]}" "$SLING_BIN" --version >"$WORK/sling-version.log" 2>&1; then
        SLING_STATUS="skipped: \`sling --version\` failed ($(tail -n 1 "$WORK/sling-version.log"))"
        return 0
    fi
}
# sling's environment: its own HOME (~/.sling, ~/.duckdb), DuckDB from the wheel, no telemetry,
# and the source connection as an environment variable.
SLING_ENV=(env HOME="$SLING_HOME" DUCKDB_PATH="$SLING_VENV/bin/duckdb" DUCKDB_VERSION="$DUCKDB_VER"
    SLING_DISABLE_TELEMETRY=true BENCH_EXPORT_PG="postgresql://postgres@127.0.0.1:$PORT/$DB?sslmode=disable")
if [[ ${BENCH_SKIP_SLING:-0} == 1 ]]; then
    SLING_STATUS="skipped: BENCH_SKIP_SLING=1"
else
    setup_sling
fi
if [[ -n $SLING_STATUS ]]; then
    log "sling: $SLING_STATUS"
else
    SLING_VERSION=$(awk '/Version/ { print $2; exit }' "$WORK/sling-version.log")
    log "sling $SLING_VERSION with DuckDB $("$SLING_VENV/bin/duckdb" --version | awk '{ print $1 }')"
fi

# --- 2. the contenders -------------------------------------------------------------------------

cat >"$WORK/millrace.toml" <<TOML
[odoo]
url = "$DB_URL"
TOML

# Peak of the summed RSS (KB) of every descendant of process $1, sampled every 0.2 s into $2.
sample_tree_rss() {
    local root=$1 out=$2 peak=0 now
    while kill -0 "$root" 2>/dev/null; do
        now=$(ps -e -o pid=,ppid=,rss= | awk -v root="$root" '
            { parent[$1] = $2; rss[$1] = $3 }
            END {
                for (p in parent) {
                    q = parent[p]
                    while (q != root && (q in parent)) q = parent[q]
                    if (q == root) sum += rss[p]
                }
                print sum + 0
            }')
        ((now > peak)) && peak=$now
        sleep 0.2
    done
    echo "$peak" >"$out"
}

# Runs contender $1 once into an empty $2; sets ELAPSED, RSS_KB, TREE_KB, CPU_S. Returns non-zero
# when the command fails (its output is in $2.log).
run_one() {
    local tool=$1 out=$2 pid user sys
    rm -rf -- "$out"
    mkdir -p "$out"
    case $tool in
    millrace)
        timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$out.time" \
            "$BIN" --config "$WORK/millrace.toml" export --table "$TABLE" --side odoo --out "$out" \
            >"$out.stdout" 2>"$out.log" &
        ;;
    pyarrow)
        timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$out.time" \
            "$PY" "$BENCH_DIR/pyarrow_export.py" "$DB_URL" "$TABLE" "$out/$TABLE.parquet" \
            >"$out.stdout" 2>"$out.log" &
        ;;
    sling)
        timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$out.time" \
            "${SLING_ENV[@]}" "$SLING_BIN" run --src-conn BENCH_EXPORT_PG --src-stream "public.$TABLE" \
            --tgt-object "file://$out/$TABLE/" \
            --tgt-options "{\"format\": \"parquet\", \"compression\": \"zstd\", \"file_max_rows\": $ROWS}" \
            >"$out.stdout" 2>"$out.log" &
        ;;
    esac
    pid=$!
    sample_tree_rss "$pid" "$out.tree" &
    if ! wait "$pid"; then
        wait || true
        return 1
    fi
    wait || true
    read -r ELAPSED RSS_KB user sys <<<"$(tail -n 1 -- "$out.time")"
    [[ $ELAPSED =~ ^[0-9.]+$ && $RSS_KB =~ ^[0-9]+$ ]] || die "unexpected /usr/bin/time output: $(cat -- "$out.time")"
    CPU_S=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    TREE_KB=$(cat -- "$out.tree")
}

# Where each contender's Parquet is: one file (millrace, pyarrow) or sling's directory of parts.
output_of() {
    case $1 in
    sling) printf '%s/%s' "$2" "$TABLE" ;;
    *) printf '%s/%s.parquet' "$2" "$TABLE" ;;
    esac
}

# Untimed: reads the output back; sets CHECK (rows, columns, files, bytes, codecs) and returns
# non-zero unless it has ROWS rows, COLUMNS columns and only zstd.
check_output() {
    local path=$1 rows cols codecs
    CHECK=$("$PY" "$BENCH_DIR/check_parquet.py" "$path" 2>&1) || { CHECK="unreadable: $CHECK"; return 1; }
    IFS=$'\t' read -r rows cols _ _ codecs <<<"$CHECK"
    [[ $rows == "$ROWS" && $cols == "$COLUMNS" && $codecs == ZSTD ]]
}

TOOLS=(millrace pyarrow sling)
declare -A LABEL=(
    [millrace]="A: \`millrace export --side odoo\`"
    [pyarrow]="B: psycopg 3 COPY csv → \`pyarrow.csv.read_csv\` → \`pyarrow.parquet.write_table(zstd)\`"
    [sling]="C: sling${SLING_VERSION:+ $SLING_VERSION} (Parquet through the DuckDB $DUCKDB_VER CLI)"
)
declare -A SHORT=([millrace]="millrace" [pyarrow]="psycopg + pyarrow" [sling]="sling")
declare -A STATUS=([millrace]=$MILLRACE_STATUS [pyarrow]="" [sling]=$SLING_STATUS)
declare -A TIMES=() RSS=() TREE=() CPU=() OUTPUT=() SUMMARY=()

# Warms the caches the same way for everyone: the whole table read once, untimed.
"$PSQL" "$DB_URL" -X -q -c "COPY $TABLE TO STDOUT" >/dev/null

LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
    for tool in "${TOOLS[@]}"; do
        [[ -z ${STATUS[$tool]} ]] || continue
        out=$WORK/$tool-$round
        if ! run_one "$tool" "$out"; then
            # sling's message: the lines after "execution failed" (or the log's last ones).
            reason=$(sed 's/\x1b\[[0-9;]*m//g' -- "$out.log" | awk '/execution failed/ { on = 1; next } on && NF' |
                grep -v -e '^fatal:$' -e '^--- ' | head -n 4 | tr '\n' ' ' | cut -c1-300)
            [[ -n $reason ]] || reason=$(tail -n 3 -- "$out.log" "$out.time" 2>/dev/null | tr '\n' ' ' | cut -c1-300)
            [[ $tool == sling ]] || die "$tool failed in round $round: $(cat -- "$out.log" "$out.time" 2>/dev/null)"
            STATUS[sling]="failed (round $round): $reason"
            log "sling ${STATUS[sling]}"
            continue
        fi
        if ! check_output "$(output_of "$tool" "$out")"; then
            [[ $tool == sling ]] || die "$tool wrote a wrong file in round $round: $CHECK (expected $ROWS rows, $COLUMNS columns, ZSTD)"
            STATUS[sling]="failed (round $round): wrote $CHECK (rows, columns, files, bytes, codecs), expected $ROWS rows, $COLUMNS columns, ZSTD"
            log "sling ${STATUS[sling]}"
            continue
        fi
        TIMES[$tool]+="$ELAPSED " RSS[$tool]+="$RSS_KB " TREE[$tool]+="$TREE_KB " CPU[$tool]+="$CPU_S "
        OUTPUT[$tool]=$CHECK
        SUMMARY[$tool]=$(tail -n 1 -- "$out.stdout" | sed 's/\x1b\[[0-9;]*m//g')
        log "round $round $tool: ${ELAPSED}s, max RSS ${RSS_KB} KB (process tree ${TREE_KB} KB), CPU ${CPU_S}s; read back: $CHECK"
        rm -rf -- "$out"
    done
done
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

# --- 3. results --------------------------------------------------------------------------------

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max_of() { printf '%s\n' "$@" | sort -g | tail -n 1; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
join_times() { printf '%s' "$*" | sed 's/ *$//; s/ / s, /g; s/$/ s/'; }

declare -A MED=()
ROWS_MD=""
for tool in "${TOOLS[@]}"; do
    if [[ -n ${STATUS[$tool]} ]]; then
        ROWS_MD+="| ${LABEL[$tool]} | ${STATUS[$tool]} | – | – | – | – | – | – |"$'\n'
        continue
    fi
    # shellcheck disable=SC2086  # word splitting of the space-separated lists is intended
    {
        MED[$tool]=$(median ${TIMES[$tool]})
        rate=$(awk -v r="$ROWS" -v t="${MED[$tool]}" 'BEGIN { printf "%d", r / t }')
        rss=$(mb "$(max_of ${RSS[$tool]})")
        tree=$(mb "$(max_of ${TREE[$tool]})")
        cpu=$(median ${CPU[$tool]})
        runs=$(join_times ${TIMES[$tool]})
    }
    IFS=$'\t' read -r _ _ files bytes _ <<<"${OUTPUT[$tool]}"
    output=$(awk -v f="$files" -v b="$bytes" 'BEGIN { printf "%d file%s, %.1f MB", f, (f == 1 ? "" : "s"), b / 1048576 }')
    ROWS_MD+="| ${LABEL[$tool]} | $runs | ${MED[$tool]} s | **$rate** | $rss MB | $tree MB | $cpu s | $output |"$'\n'
done

FASTEST="no contender ran"
if [[ ${#MED[@]} -gt 0 ]]; then
    ranking=$(for tool in "${!MED[@]}"; do printf '%s %s\n' "${MED[$tool]}" "$tool"; done | sort -g)
    read -r best_t best <<<"$(head -n 1 <<<"$ranking")"
    FASTEST="Fastest: **${SHORT[$best]}** (median ${best_t} s)"
    while read -r t tool; do
        [[ $tool == "$best" ]] && continue
        FASTEST+=", $(awk -v a="$t" -v b="$best_t" 'BEGIN { printf "%.1f", a / b }')× faster than ${SHORT[$tool]}"
    done <<<"$ranking"
    FASTEST+="."
fi

TOTAL_S=$((SECONDS - T_START))
PG_VERSION=$(sql_value "SHOW server_version")
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
PY_VERSIONS=$("$PY" -c 'import platform, psycopg, pyarrow; print(f"Python {platform.python_version()}, psycopg {psycopg.__version__}, pyarrow {pyarrow.__version__}")')

NOTES=""
if [[ -n ${SUMMARY[millrace]:-} ]]; then
    NOTES+="- millrace's summary line (last run): \`${SUMMARY[millrace]}\`"$'\n'
fi
if [[ -n ${SUMMARY[pyarrow]:-} ]]; then
    NOTES+="- B's steps (last run): ${SUMMARY[pyarrow]}. Column types are pyarrow's guesses from the CSV: \`numeric\` becomes float64 (inexact), all-NULL columns the null type, \`priority\` ('0'/'1') int64."$'\n'
fi
if [[ -z ${STATUS[sling]} ]]; then
    NOTES+="- C writes a directory of part files (a single-file target keeps only sling's last batch, see the script's header); its max RSS is the larger of sling and the duckdb process it feeds, the process tree column is both together."$'\n'
fi

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), millrace ${MILLRACE_STATUS:+not run, }$MILLRACE_COMMIT; $(nproc) cores ($CPU_MODEL),
$MEM_GB GB RAM, PostgreSQL $PG_VERSION; $PY_VERSIONS; whole script ${TOTAL_S} s.

$ROWS rows of the Odoo 17 fixture's \`$TABLE\` ($COLUMNS columns, $TABLE_MB MB in PostgreSQL) to zstd
Parquet, every contender over TCP to 127.0.0.1 without TLS, alternating A B C, $ROUNDS rounds; each
output read back with pyarrow afterwards ($ROWS rows, $COLUMNS columns, zstd: checked). Max RSS is
/usr/bin/time's (the largest single process, highest of the runs); the process tree's is sampled
every 0.2 s (all its processes together; a sample can miss a short peak). Load average (1 min)
before / after the runs: $LOAD_BEFORE / $LOAD_AFTER (about 2 is this benchmark alone: the server and
the contender; more means other work shared the two cores and the times are noisy).

| contender | runs | median | rows/s | max RSS | process tree RSS | CPU (median) | output |
|---|---|---|---|---|---|---|---|
${ROWS_MD%$'\n'}

$FASTEST

${NOTES%$'\n'}
EOF

printf '\n===== bench/export results =====\n' && cat "$RESULTS" && printf '================================\n'

if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme export "$RESULTS" "$README"
    log "updated $README"
fi
log "done in ${TOTAL_S}s"
