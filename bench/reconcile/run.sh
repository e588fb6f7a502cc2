#!/usr/bin/env bash
# Reconcile benchmark (issue 15): `millrace reconcile --entity item` against reladiff (PyPI
# `reladiff`, the maintained fork of data-diff) comparing the same two tables, in the same run,
# alternating A B A B.
#
#   1. fresh copies of the Odoo 17 fixture (PostgreSQL) and of the demo legacy ERP (MariaDB),
#      their items removed (the fixture's product_product and product_template rows deleted
#      with FK triggers off; ITEM_MASTER emptied), then BENCH_ITEMS (default 1,000,000) items on
#      each side generated in SQL: product_template + product_product rows as the shipped item
#      mapping (mappings/item.toml) reads them (name {"en_US": …}, uom 1 = Units, tracking none,
#      list_price, default_code on the variant; no cost property, so std_cost 0), and ITEM_MASTER rows (unit EA = Units,
#      LOT_CONTROL N, STD_COST 0, STATUS A). Keys 'RC' + 7 digits. The two sides differ by 1,000
#      records, spread over the key range (every set on its own residue mod 10, so disjoint):
#        400 list prices changed in the ERP (+1.00), 300 descriptions changed in the ERP
#        (' rev B' appended), 150 items only in the ERP, 150 products only in Odoo;
#      so expected: only in Odoo 150, only in ERP 150, different 700, equal BENCH_ITEMS - 850;
#   2. reladiff's view of the same data, since it compares one table with one table, same
#      column names on both sides, and (on MySQL/MariaDB) only numeric or UUID keys:
#        Odoo:  VIEW reladiff_item over product_product ⋈ product_template ⋈ uom_uom, with the
#               cost property (LEFT JOIN LATERAL on ir_property, as the mapping's expression);
#        ERP:   VIEW reladiff_item over ITEM_MASTER ⋈ UOM, LOT_CONTROL and STATUS mapped to
#               Odoo's values as the mapping maps them;
#      both with the same 8 columns (item_id, item_no, description, uom, list_price,
#      lot_control, std_cost, active), keyed by item_id = the item number's digits as an
#      integer, indexed on both sides (an expression index on product_product; on ITEM_MASTER a
#      column ITEM_ID filled with it, with an index: MariaDB refuses a generated column that
#      converts a CHAR; millrace does not read it, its mapping names the columns it selects), so
#      reladiff's key-range checksums use an index;
#   3. BENCH_ROUNDS rounds (default 3) of A: `millrace reconcile --entity item --json`, B:
#      `reladiff … -k item_id -c … --stats --json` (hashdiff, its defaults: bisection factor 32,
#      threshold 16384, 1 thread per database), each under /usr/bin/time -v, with a sampler
#      reading /proc every 0.25 s (the contender's RSS and CPU, mariadbd's and PostgreSQL's CPU);
#      every run's counts checked against the expected ones;
#   4. one untimed millrace run with the mapping's `[odoo] match` line removed (what the ERP
#      side's index of match values costs in memory);
#   5. prints the results, rewrites the reconcile section of bench/README.md (unless
#      BENCH_NO_README=1), drops both databases and the work dir on exit.
#
# Targets (issue 15): millrace at least as fast as reladiff (median wall time), peak RSS < 300 MB.
#
# Usage: bench/reconcile/run.sh     (about 5 minutes at the defaults, plus the release build)
# Env:   BENCH_ITEMS=1000000 BENCH_ROUNDS=3 BENCH_NO_README=1
#        BENCH_PERF=1   after the rounds, one more millrace run under `perf record -g` (untimed),
#                       its top symbols printed
#        BENCH_KEEP=1   keep both databases and the work dir (perf.data, samples, outputs)
#        BENCH_RELADIFF_SPEC='reladiff[postgresql,mysql]==0.6.0'   what pip installs
set -euo pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/../.." && pwd -P)
README=$ROOT/bench/README.md
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
ITEMS=${BENCH_ITEMS:-1000000}
ROUNDS=${BENCH_ROUNDS:-3}
RELADIFF_SPEC=${BENCH_RELADIFF_SPEC:-reladiff[postgresql,mysql]==0.6.0}
N_PRICE=400 N_DESC=300 N_ERP_ONLY=150 N_ODOO_ONLY=150
DB=millrace_bench_reconcile
LEGACY_DB=millrace_bench_reconcile_legacy
T_START=$SECONDS

log() { printf '[bench/reconcile %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
[[ $ITEMS =~ ^[0-9]+$ && $ITEMS -ge 20000 ]] || die "BENCH_ITEMS must be a whole number >= 20000"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "BENCH_ROUNDS must be a whole number >= 1"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian package: time)"

cd "$ROOT"
bash scripts/dev-env.sh >/dev/null
# shellcheck source=/dev/null
source .dev/env
url_re='^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/?$'
[[ $MILLRACE_TEST_MARIADB_URL =~ $url_re ]] || die "cannot parse MILLRACE_TEST_MARIADB_URL"
M_USER=${BASH_REMATCH[1]} M_PASSWORD=${BASH_REMATCH[2]} M_HOST=${BASH_REMATCH[3]} M_PORT=${BASH_REMATCH[4]}
pg_re='^postgres(ql)?://([^:@/]+)(:[^@/]*)?@([^:/]+):([0-9]+)/'
[[ $MILLRACE_TEST_PG_URL =~ $pg_re ]] || die "cannot parse MILLRACE_TEST_PG_URL"
P_USER=${BASH_REMATCH[2]} P_PASS=${BASH_REMATCH[3]} P_HOST=${BASH_REMATCH[4]} P_PORT=${BASH_REMATCH[5]}

log "building millrace (cargo build --release)"
cargo build --release --quiet
MILLRACE=$ROOT/target/release/millrace
WORK=$(mktemp -d "${TMPDIR:-/tmp}/millrace-bench-reconcile.XXXXXX")
DB_URL="${MILLRACE_TEST_PG_URL%/*}/$DB"
PSQL=$MILLRACE_TEST_PG_BIN/psql

maria() {
    MYSQL_PWD=$M_PASSWORD mariadb --no-defaults --protocol=TCP --host="$M_HOST" --port="$M_PORT" \
        --user="$M_USER" --database="$LEGACY_DB" --batch --skip-column-names "$@"
}
pg() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$DB_URL" "$@"; }

SAMPLER_PID=""
cleanup() {
    if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    if [[ -n ${BENCH_KEEP:-} ]]; then
        log "kept (BENCH_KEEP): $DB, $LEGACY_DB and $WORK"
        return
    fi
    "$PSQL" -X -q "$MILLRACE_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    maria -e "DROP DATABASE IF EXISTS $LEGACY_DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max_of() { printf '%s\n' "$@" | sort -g | tail -n 1; }
join_s() { local out="" v; for v in "$@"; do out+="${out:+, }$v s"; done; printf '%s' "$out"; }

# ---------------------------------------------------------------------------------------------
# reladiff, in a virtualenv of its own under the work dir.
log "installing $RELADIFF_SPEC into a virtualenv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "$RELADIFF_SPEC" >"$WORK/pip.log" 2>&1 ||
    die "pip install $RELADIFF_SPEC failed: $(tail -5 "$WORK/pip.log")"
RELADIFF=$WORK/venv/bin/reladiff
RELADIFF_VERSION=$("$WORK/venv/bin/python" -c "import importlib.metadata as m; print(m.version('reladiff'))")
PY_VERSION=$("$WORK/venv/bin/python" -c "import platform; print(platform.python_version())")
MYSQL_CONNECTOR=$("$WORK/venv/bin/python" -c "import importlib.metadata as m; print(m.version('mysql-connector-python'))")
PSYCOPG2=$("$WORK/venv/bin/python" -c "import importlib.metadata as m; print(m.version('psycopg2-binary'))" 2>/dev/null || echo "?")

# ---------------------------------------------------------------------------------------------
# The two sides. Universe g = 1 … ITEMS + N_ODOO_ONLY; each set of differences is every
# `spacing`-th number on its own residue mod 10 (spacings are multiples of 10), so they are
# disjoint and spread over the whole key range.
spacing() { echo $((ITEMS / $1 / 10 * 10)); }
S_ONLY=$(spacing "$N_ERP_ONLY") S_PRICE=$(spacing "$N_PRICE") S_DESC=$(spacing "$N_DESC")
UNIVERSE=$((ITEMS + N_ODOO_ONLY))
# SQL predicates on g (same text in PostgreSQL and MariaDB).
ERP_ONLY="(g % $S_ONLY = 1 AND g DIV $S_ONLY < $N_ERP_ONLY)"
ODOO_ONLY="(g % $S_ONLY = 2 AND g DIV $S_ONLY < $N_ODOO_ONLY)"
PRICE_DIFF="(g % $S_PRICE = 3 AND g DIV $S_PRICE < $N_PRICE)"
DESC_DIFF="(g % $S_DESC = 4 AND g DIV $S_DESC < $N_DESC)"
pg_pred() { sed 's/ DIV / \/ /g' <<<"$1"; }
PRICE="((g % 1000) + (g % 100) / 100.0)"
EXP_ONLY_ODOO=$N_ODOO_ONLY EXP_ONLY_ERP=$N_ERP_ONLY EXP_DIFFERENT=$((N_PRICE + N_DESC))
EXP_EQUAL=$((ITEMS - N_ERP_ONLY - N_PRICE - N_DESC))

T_GEN=$SECONDS
log "loading the Odoo 17 fixture into $DB and the demo ERP into $LEGACY_DB"
bash scripts/load-odoo-fixture.sh --fresh "$DB" >/dev/null
bash scripts/load-legacy-fixture.sh --fresh "$LEGACY_DB" >/dev/null
UNITS=$(pg -At -c "SELECT name->>'en_US' FROM uom_uom WHERE id = 1")
[[ $UNITS == Units ]] || die "uom_uom 1 is '$UNITS', expected Units"

log "Odoo: $ITEMS products (product_template + product_product), $N_ODOO_ONLY of them only in Odoo"
pg <<SQL
SET client_min_messages = warning;
-- The fixture's products go (other fixture tables keep rows that pointed at them: unread here).
SET session_replication_role = replica;
DELETE FROM product_product;
DELETE FROM product_template;
SET session_replication_role = origin;
DELETE FROM ir_property WHERE name = 'standard_price';
WITH t AS (
  INSERT INTO product_template (name, detailed_type, type, uom_id, uom_po_id, categ_id, list_price,
         sale_ok, purchase_ok, active, tracking, default_code, purchase_line_warn, sale_line_warn, sequence)
  SELECT jsonb_build_object('en_US', 'Bench item ' || g), 'product', 'product', 1, 1, 1, $PRICE,
         true, true, true, 'none', 'RC' || lpad(g::text, 7, '0'), 'no-message', 'no-message', 1
    FROM generate_series(1, $UNIVERSE) g
   WHERE NOT $(pg_pred "$ERP_ONLY")
   ORDER BY g
  RETURNING id, default_code)
INSERT INTO product_product (product_tmpl_id, default_code, active)
SELECT id, default_code, true FROM t ORDER BY id;
-- reladiff's side: the mapped columns as one view, keyed by the item number's digits.
CREATE INDEX reladiff_item_id ON product_product ((substr(default_code, 3)::bigint));
CREATE VIEW reladiff_item AS
SELECT substr(pp.default_code, 3)::bigint AS item_id,
       pp.default_code AS item_no,
       pt.name->>'en_US' AS description,
       u.name->>'en_US' AS uom,
       pt.list_price::numeric(18,4) AS list_price,
       pt.tracking::text AS lot_control,
       COALESCE(c.value_float, 0)::numeric(18,4) AS std_cost,
       pp.active::int AS active
  FROM product_product pp
  JOIN product_template pt ON pt.id = pp.product_tmpl_id
  LEFT JOIN uom_uom u ON u.id = pt.uom_id
  LEFT JOIN LATERAL (SELECT p.value_float FROM ir_property p
                      WHERE p.name = 'standard_price' AND p.res_id = 'product.product,' || pp.id
                        AND p.company_id = 1 ORDER BY p.id LIMIT 1) c ON true;
SQL
pg -c "VACUUM ANALYZE product_template" -c "VACUUM ANALYZE product_product" -c "VACUUM ANALYZE ir_property"

log "ERP: $ITEMS ITEM_MASTER rows, $N_ERP_ONLY only in the ERP, $N_PRICE prices and $N_DESC descriptions changed"
maria -e "TRUNCATE TABLE ITEM_MASTER"
# ITEM_ID: the item number's digits as an integer, for reladiff's key (MariaDB refuses a generated
# column converting a CHAR: its value would depend on sql_mode), filled here; millrace does not read it.
maria -e "ALTER TABLE ITEM_MASTER ADD COLUMN ITEM_ID BIGINT NULL, ADD INDEX IX_ITEM_MASTER_ITEM_ID (ITEM_ID)"
maria -e "INSERT INTO ITEM_MASTER (ITEM_NO, ITEM_ID, DESCRIPTION, UOM_CODE, ITEM_TYPE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS)
          SELECT CONCAT('RC', LPAD(g, 7, '0')), g,
                 IF($DESC_DIFF, CONCAT('Bench item ', g, ' rev B'), CONCAT('Bench item ', g)),
                 'EA', 'P', 'N', 0, $PRICE + IF($PRICE_DIFF, 1, 0), 'A'
            FROM (SELECT seq AS g FROM seq_1_to_$UNIVERSE) s
           WHERE NOT $ODOO_ONLY"
maria -e "CREATE VIEW reladiff_item AS
          SELECT i.ITEM_ID AS item_id, TRIM(i.ITEM_NO) AS item_no, i.DESCRIPTION AS description,
                 u.DESCRIPTION AS uom, i.LIST_PRICE AS list_price,
                 CASE i.LOT_CONTROL WHEN 'N' THEN 'none' WHEN 'L' THEN 'lot' WHEN 'S' THEN 'serial' END AS lot_control,
                 i.STD_COST AS std_cost,
                 CASE i.STATUS WHEN 'A' THEN 1 WHEN 'I' THEN 0 END AS active
            FROM ITEM_MASTER i LEFT JOIN UOM u ON u.UOM_CODE = i.UOM_CODE"
maria -e "ANALYZE TABLE ITEM_MASTER" >/dev/null

read -r O_ROWS O_ONLY O_MISSING < <(pg -At -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE $(pg_pred "$ODOO_ONLY")), count(*) FILTER (WHERE $(pg_pred "$ERP_ONLY")) FROM (SELECT substr(default_code, 3)::int AS g FROM product_product) s")
read -r E_ROWS E_ONLY E_MISSING < <(maria -e "SELECT COUNT(*), SUM($ERP_ONLY), SUM($ODOO_ONLY) FROM (SELECT ITEM_ID AS g FROM ITEM_MASTER) s")
[[ "$O_ROWS $O_ONLY $O_MISSING $E_ROWS $E_ONLY $E_MISSING" == "$ITEMS $N_ODOO_ONLY 0 $ITEMS $N_ERP_ONLY 0" ]] ||
    die "generated (Odoo products, only in Odoo, ERP-only numbers in Odoo, ERP items, only in the ERP, Odoo-only numbers in the ERP) = ($O_ROWS $O_ONLY $O_MISSING $E_ROWS $E_ONLY $E_MISSING), expected ($ITEMS $N_ODOO_ONLY 0 $ITEMS $N_ERP_ONLY 0)"
O_SIZE=$(pg -At -c "SELECT pg_size_pretty(pg_total_relation_size('product_product') + pg_total_relation_size('product_template'))")
E_SIZE=$(maria -e "SELECT CONCAT(ROUND((DATA_LENGTH + INDEX_LENGTH) / 1048576), ' MB') FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$LEGACY_DB' AND TABLE_NAME = 'ITEM_MASTER'")
GEN_S=$((SECONDS - T_GEN))
log "generated in ${GEN_S}s (Odoo $O_SIZE, ITEM_MASTER $E_SIZE)"

mkdir -p "$WORK/millrace/mappings"
cp mappings/item.toml "$WORK/millrace/mappings/"
cat >"$WORK/millrace/millrace.toml" <<TOML
[odoo]
url = "$DB_URL?sslmode=disable"
slot = "millrace_bench_reconcile"
publication = "millrace_bench_reconcile"

[legacy]
kind = "odbc"
connection_string = "${MILLRACE_TEST_ODBC}Database=$LEGACY_DB;"

[sync]
mappings = "mappings"
TOML

RD_COLUMNS=(-c item_no -c description -c uom -c list_price -c lot_control -c std_cost -c active)
RD_A="postgresql://$P_USER${P_PASS}@$P_HOST:$P_PORT/$DB"
RD_B="mysql://$M_USER:$M_PASSWORD@$M_HOST:$M_PORT/$LEGACY_DB"

# ---------------------------------------------------------------------------------------------
# The sampler: every 0.25 s, the contender's RSS (KB) and CPU, the dev MariaDB server's CPU, and
# each PostgreSQL backend's CPU serving the bench database (clock ticks), to see which side a
# contender waits on and when its memory grows. A backend's ticks vanish when it exits, so they
# are kept per pid.
MARIADBD_PID=$(pgrep -f -- "--defaults-file=$ROOT/.dev/mariadb/my.cnf" | head -n 1 || true)
[[ -n $MARIADBD_PID ]] || MARIADBD_PID=$(pgrep -x mariadbd | head -n 1 || true)
ticks() { # PID → utime + stime (0 when gone)
    local f
    if f=$(cut -d' ' -f14,15 "/proc/$1/stat" 2>/dev/null); then echo $((${f% *} + ${f#* })); else echo 0; fi
}
sampler() { # TIME_PID OUT
    local time_pid=$1 out=$2 child="" t0 rss p backends
    t0=$(now_ms)
    while kill -0 "$time_pid" 2>/dev/null; do
        [[ -n $child ]] || child=$(pgrep -P "$time_pid" | head -n 1 || true)
        if [[ -n $child ]]; then
            rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$child/status" 2>/dev/null || true)
            backends=""
            for p in $(pgrep -f "^postgres: .* $DB " || true); do backends+="${backends:+,}$p=$(ticks "$p")"; done
            echo "$(($(now_ms) - t0)) ${rss:-0} $(ticks "$child") $(ticks "${MARIADBD_PID:-0}") ${backends:--}" >>"$out"
        fi
        sleep 0.25
    done
}
# Where the contender's time went, from a sampler file: the CPU of the client, MariaDB and the
# PostgreSQL backends over the run, and how long MariaDB was busier than PostgreSQL (the ERP
# read) and the RSS then.
spent() { # SAMPLES [phases]
    awk -v hz="$(getconf CLK_TCK)" -v phases="${2:-}" '
        function pg_total(field,   n, i, kv, parts, sum) {
            sum = 0
            n = (field == "-") ? 0 : split(field, parts, ",")
            for (i = 1; i <= n; i++) { split(parts[i], kv, "="); if (!(kv[1] in first)) first[kv[1]] = (NR == 1) ? kv[2] : 0; last[kv[1]] = kv[2] }
            for (i in last) sum += last[i] - first[i]
            return sum
        }
        { p = pg_total($5); m = $4 - (NR == 1 ? (m0 = $4) : m0); c = $3; if (NR == 1) c0 = $3
          if (NR > 1 && m - pm > p - pp) { erp_end = $1; erp_rss = $2 }
          pm = m; pp = p; if ($2 > peak) peak = $2 }
        END {
            printf "CPU: the client %.1f s, MariaDB %.1f s, the PostgreSQL backends %.1f s", (c - c0) / hz, m / hz, p / hz
            if (phases) printf "; MariaDB was busier than PostgreSQL (the ERP read) for the first %.1f s, at whose end RSS was %.0f MB", erp_end / 1000, erp_rss / 1024
        }
    ' "$1"
}

# run_one NAME OUTFILE CMD…: wall ms into $WALL, /usr/bin/time -v into $WORK/NAME.time, the
# sampler into $WORK/NAME.samples; the command's exit code into $RC.
run_one() {
    local name=$1 out=$2 t0 t1 time_pid
    shift 2
    rm -f "$WORK/$name.samples"
    t0=$(now_ms)
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$out" 2>"$WORK/$name.err" &
    time_pid=$!
    sampler "$time_pid" "$WORK/$name.samples" &
    SAMPLER_PID=$!
    RC=0
    wait "$time_pid" || RC=$?
    t1=$(now_ms)
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
    WALL=$((t1 - t0))
}
time_field() { awk -F': ' -v f="$2" 'index($0, f) { print $2; exit }' "$1"; }

A_T=() A_RSS=() A_CPU=() B_T=() B_RSS=() B_CPU=() A_CHECK=() B_CHECK=()
FAIL=""
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS: A millrace reconcile"
    run_one "a$round" "$WORK/a$round.json" env MILLRACE_LOG=info "$MILLRACE" --config "$WORK/millrace/millrace.toml" \
        reconcile --entity item --json
    [[ $RC == 3 ]] || die "millrace reconcile exited $RC (expected 3, the sides differ): $(tail -5 "$WORK/a$round.err")"
    A_T+=("$(secs "$WALL")")
    A_RSS+=("$(time_field "$WORK/a$round.time" "Maximum resident set size")")
    A_CPU+=("$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/a$round.time")")
    got=$(python3 -c "
import json, sys
e = [x for x in json.load(open(sys.argv[1]))['entities'] if x['entity'] == 'item'][0]
print(e['only_in_odoo'], e['only_in_erp'], e['different'], e['equal'], e['matched_by_rule'] + e['ambiguous'] + e['unreadable'])
" "$WORK/a$round.json")
    A_CHECK+=("$got")
    [[ $got == "$EXP_ONLY_ODOO $EXP_ONLY_ERP $EXP_DIFFERENT $EXP_EQUAL 0" ]] ||
        FAIL+="millrace round $round reported (only in Odoo, only in ERP, different, equal, other) = ($got); "
    log "  ${A_T[-1]} s, $(mb "${A_RSS[-1]}") MB; only in Odoo, only in ERP, different, equal, other: $got"

    log "round $round/$ROUNDS: B reladiff"
    run_one "b$round" "$WORK/b$round.json" env COLUMNS=10000 "$RELADIFF" "$RD_A" reladiff_item "$RD_B" reladiff_item \
        -k item_id "${RD_COLUMNS[@]}" --stats --json
    [[ $RC == 0 ]] || die "reladiff exited $RC: $(tail -5 "$WORK/b$round.err")"
    B_T+=("$(secs "$WALL")")
    B_RSS+=("$(time_field "$WORK/b$round.time" "Maximum resident set size")")
    B_CPU+=("$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$WORK/b$round.time")")
    got=$(python3 -c "
import json, sys
text = open(sys.argv[1]).read().replace('\n', ' ')  # rich wraps long lines
s = json.loads(text[text.index('{'):text.rindex('}') + 1])
print(s['exclusive_A'], s['exclusive_B'], s['updated'], s['unchanged'], s.get('stats', {}).get('rows_downloaded', '?'))
" "$WORK/b$round.json")
    B_DOWNLOADED=${got##* } got=${got% *}
    B_CHECK+=("$got")
    [[ $got == "$EXP_ONLY_ODOO $EXP_ONLY_ERP $EXP_DIFFERENT $EXP_EQUAL" ]] ||
        FAIL+="reladiff round $round reported (exclusive to Odoo, exclusive to the ERP, updated, unchanged) = ($got); "
    log "  ${B_T[-1]} s, $(mb "${B_RSS[-1]}") MB; exclusive to Odoo, exclusive to ERP, updated, unchanged: $got"
done
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

# Untimed: the same comparison with the mapping's `[odoo] match` line removed (in the work dir's
# copy), so the ERP side keeps no match values → keys index: what that index costs in memory.
mkdir -p "$WORK/nomatch/mappings"
grep -v '^match = ' mappings/item.toml >"$WORK/nomatch/mappings/item.toml"
cp "$WORK/millrace/millrace.toml" "$WORK/nomatch/millrace.toml"
log "untimed: millrace reconcile with the mapping's match rule removed"
run_one nomatch "$WORK/nomatch.json" "$MILLRACE" --config "$WORK/nomatch/millrace.toml" reconcile --entity item --json
NOMATCH_RSS=$(mb "$(time_field "$WORK/nomatch.time" "Maximum resident set size")") NOMATCH_T=$(secs "$WALL")

PERF_NOTE=""
if [[ -n ${BENCH_PERF:-} ]] && command -v perf >/dev/null; then
    log "perf: one more millrace run under perf record -g (untimed)"
    perf record -q -g -o "$WORK/perf.data" -- "$MILLRACE" --config "$WORK/millrace/millrace.toml" \
        reconcile --entity item --json >/dev/null 2>"$WORK/perf.err" || true
    perf_report() { # perf report options…: its table, trimmed
        perf report -i "$WORK/perf.data" --stdio -g none "$@" 2>/dev/null | grep -v '^#' | sed '/^$/d; s/[ -]*$//' | head -40
    }
    perf_report --no-children --sort dso >"$WORK/perf-dso.txt" || true
    perf_report --no-children --sort symbol --percent-limit 1 >"$WORK/perf.txt" || true
    perf_report --children --sort symbol --percent-limit 5 >"$WORK/perf-children.txt" || true
    printf '\n----- perf: millrace, by library -----\n' && cat "$WORK/perf-dso.txt"
    printf '\n----- perf: millrace, self time -----\n' && cat "$WORK/perf.txt"
    printf '\n----- perf: millrace, with children -----\n' && cat "$WORK/perf-children.txt"
    PERF_NOTE=yes
fi

# ---------------------------------------------------------------------------------------------
A_MED=$(median "${A_T[@]}") B_MED=$(median "${B_T[@]}")
A_CPU_MED=$(median "${A_CPU[@]}") B_CPU_MED=$(median "${B_CPU[@]}")
A_PEAK=$(mb "$(max_of "${A_RSS[@]}")") B_PEAK=$(mb "$(max_of "${B_RSS[@]}")")
RATIO=$(awk -v a="$A_MED" -v b="$B_MED" 'BEGIN { printf "%.2f", b / a }')
SPEED_VERDICT=$(awk -v r="$RATIO" 'BEGIN { print (r >= 1) ? "meets" : "misses" }')
RSS_VERDICT=$(awk -v m="$A_PEAK" 'BEGIN { print (m < 300) ? "meets" : "misses" }')
if [[ -z $FAIL ]]; then COUNTS="checked in every run: both report exactly the expected counts"; else COUNTS="**counts wrong**: $FAIL"; fi
MARIADB_VERSION=$(maria -e "SELECT VERSION()")
PG_VERSION=$(pg -At -c "SHOW server_version")
ODBC_DRIVER=$(dpkg-query -W -f '${Version}' odbc-mariadb 2>/dev/null || echo "?")
CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo | sed 's/ [0-9]*-Core.*//')
MEM_GB=$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock mappings && [[ -z $(git -C "$ROOT" ls-files --others --exclude-standard -- src) ]] || echo " + uncommitted changes (src, mappings or Cargo files)")
TOTAL_S=$((SECONDS - T_START))

RESULTS=$WORK/results.md
cat >"$RESULTS" <<EOF
Last run: $(date -u '+%Y-%m-%d %H:%M') UTC, millrace $COMMIT; $(nproc) cores ($CPU_MODEL), $MEM_GB GB RAM,
PostgreSQL $PG_VERSION, MariaDB $MARIADB_VERSION (millrace through Connector/ODBC $ODBC_DRIVER);
reladiff $RELADIFF_VERSION on Python $PY_VERSION (psycopg2-binary $PSYCOPG2, mysql-connector-python $MYSQL_CONNECTOR); whole script ${TOTAL_S} s
(generating the data ${GEN_S} s).

Data: $ITEMS items on each side (Odoo: product_template + product_product, $O_SIZE with indexes; ERP:
ITEM_MASTER, $E_SIZE), differing by $((N_PRICE + N_DESC + N_ERP_ONLY + N_ODOO_ONLY)) records spread over the key range: $N_PRICE list prices and
$N_DESC descriptions changed in the ERP, $N_ERP_ONLY items only in the ERP, $N_ODOO_ONLY products only in Odoo. Expected: only in
Odoo $EXP_ONLY_ODOO, only in the ERP $EXP_ONLY_ERP, different $EXP_DIFFERENT, equal $EXP_EQUAL. Counts $COUNTS.
A and B alternate, $ROUNDS rounds; TCP to 127.0.0.1 without TLS; load average (1 min) before / after: $LOAD_BEFORE / $LOAD_AFTER
(about 2 is this benchmark alone: a client and a database server).

| contender | runs | median | client CPU (median) | peak RSS (highest) |
|---|---|---|---|---|
| A: \`millrace reconcile --entity item --json\` (the shipped item mapping: 7 fields, unit looked up on both sides) | $(join_s "${A_T[@]}") | **$A_MED s** | $A_CPU_MED s | **$A_PEAK MB** |
| B: \`reladiff <odoo> reladiff_item <erp> reladiff_item -k item_id -c … --stats --json\` (hashdiff, defaults) | $(join_s "${B_T[@]}") | **$B_MED s** | $B_CPU_MED s | **$B_PEAK MB** |

reladiff / millrace time = **$RATIO** (target ≥ 1, millrace at least as fast: $SPEED_VERDICT); millrace peak RSS
$A_PEAK MB (target < 300 MB: $RSS_VERDICT).

- Where the time went (/proc sampled every 0.25 s, last round): A: $(spent "$WORK/a$ROUNDS.samples" phases). B: $(spent "$WORK/b$ROUNDS.samples").
- reladiff (last round) downloaded $B_DOWNLOADED rows ($(awk -v d="$B_DOWNLOADED" -v n="$ITEMS" 'BEGIN { printf "%.0f", 100 * d / n }') % of a side's) to compare them locally: it checksums key ranges on
  both sides, splits those whose checksums differ into 32, and fetches every differing range under its bisection
  threshold (16,384 rows); with the differences spread over the key range, most ranges hold one.
- Where millrace's memory goes: the same comparison with the mapping's \`[odoo] match\` line removed (an untimed
  run; no index of the ERP's match values, here the descriptions, is kept): $NOMATCH_T s, peak RSS **$NOMATCH_RSS MB**.
EOF

printf '\n===== bench/reconcile results =====\n' && cat "$RESULTS" && printf '===================================\n'
cp "$WORK"/a"$ROUNDS".samples "${TMPDIR:-/tmp}/bench-reconcile-millrace.samples" 2>/dev/null || true
cp "$WORK"/b"$ROUNDS".samples "${TMPDIR:-/tmp}/bench-reconcile-reladiff.samples" 2>/dev/null || true
[[ -z $PERF_NOTE ]] || cp "$WORK"/perf*.txt "${TMPDIR:-/tmp}/" 2>/dev/null || true

if [[ -z ${BENCH_NO_README:-} ]]; then
    bench_update_readme reconcile "$RESULTS" "$README"
    log "updated $README"
fi
[[ -z $FAIL ]] || die "$FAIL"
log "done in ${TOTAL_S}s"
