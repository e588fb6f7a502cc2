#!/usr/bin/env bash
# Loads the demo legacy ERP (sql/legacy/mariadb/, see sql/legacy/README.md) into a new
# database on the project-local dev MariaDB:
#   scripts/load-legacy-fixture.sh [--fresh] DBNAME
# --fresh drops DBNAME first (ending the sessions that use it, which would block the drop);
# without it an existing DBNAME is an error, so the fixture is never loaded twice into one DB.
# Needs scripts/dev-env.sh to have run (uses the server and account from .dev/env).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 [--fresh] DBNAME" >&2
    exit 2
}

fresh=0
db=""
for arg in "$@"; do
    case $arg in
    --fresh) fresh=1 ;;
    -*) usage ;;
    *) [[ -z $db ]] || usage; db=$arg ;;
    esac
done
[[ -n $db ]] || usage
# Restricting the name keeps it safe to splice into SQL without quoting, and a valid name on
# SQL Server too.
[[ $db =~ ^[A-Za-z_][A-Za-z0-9_]*$ && ${#db} -le 64 ]] ||
    mr_die "DBNAME must match [A-Za-z_][A-Za-z0-9_]* (at most 64 characters)"

[[ -r $MR_ENV_FILE ]] || mr_die "$MR_ENV_FILE missing: run scripts/dev-env.sh first"
# shellcheck source=/dev/null
. "$MR_ENV_FILE"
[[ -n ${MILLRACE_TEST_MARIADB_URL:-} ]] ||
    mr_die "$MR_ENV_FILE has no MILLRACE_TEST_MARIADB_URL: re-run scripts/dev-env.sh"

# mysql://USER:PASSWORD@HOST:PORT
url_re='^mysql://([^:@/]+):([^@/]*)@([^:/]+):([0-9]+)/?$'
[[ $MILLRACE_TEST_MARIADB_URL =~ $url_re ]] ||
    mr_die "cannot parse MILLRACE_TEST_MARIADB_URL in $MR_ENV_FILE"
user=${BASH_REMATCH[1]} password=${BASH_REMATCH[2]} host=${BASH_REMATCH[3]} port=${BASH_REMATCH[4]}

fixture=$MR_ROOT/sql/legacy/mariadb
# --no-defaults: no ~/.my.cnf or /etc/mysql/ settings. The password goes through the
# environment, not the command line (where ps would show it and the client warns).
maria() {
    MYSQL_PWD=$password mariadb --no-defaults --protocol=TCP --host="$host" --port="$port" \
        --user="$user" --batch --skip-column-names "$@"
}

exists=$(maria -e "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db'")
if [[ -n $exists ]]; then
    [[ $fresh -eq 1 ]] || mr_die "database $db already exists (use --fresh to drop and reload it)"
    mr_log "dropping database $db"
    # A session inside the database (or holding one of its tables) makes DROP wait on its
    # metadata lock: end those first.
    maria -e "SELECT CONCAT('KILL ', ID, ';') FROM information_schema.PROCESSLIST
              WHERE DB = '$db' AND ID <> CONNECTION_ID()" | maria
    maria -e "DROP DATABASE \`$db\`"
fi

mr_log "creating database $db and loading sql/legacy/mariadb"
maria -e "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
maria --database="$db" <"$fixture/schema.sql"
maria --database="$db" <"$fixture/demo-data.sql"

# Every table, so a schema/data mismatch cannot slip through.
expected=(UOM=26 ITEM_MASTER=53 WORK_CENTER=3 BOM_HEADER=8 BOM_LINE=17 SO_HEADER=24 SO_LINE=50
    PROD_ORDER=7 INV_TRANS=42 LOT_MASTER=14 QUALITY_RESULT=14)
query=""
for entry in "${expected[@]}"; do
    query+="${query:+ UNION ALL }SELECT '${entry%%=*}', COUNT(*) FROM \`${entry%%=*}\`"
done
actual=$(maria --database="$db" -e "$query" | tr '\t' '=' | tr '\n' ' ')
for entry in "${expected[@]}"; do
    [[ " $actual " == *" $entry "* ]] ||
        mr_die "fixture loaded, but the row counts are off: expected ${expected[*]}, got $actual"
done
echo "loaded the demo legacy ERP into $db (${MILLRACE_TEST_MARIADB_URL/:$password@/:***@}/$db): ITEM_MASTER has 53 rows"
