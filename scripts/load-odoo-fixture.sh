#!/usr/bin/env bash
# Loads the Odoo 17 manufacturing fixture (sql/odoo17/, see its README.md) into a new
# database on the project-local dev server:
#   scripts/load-odoo-fixture.sh [--fresh] DBNAME
# --fresh drops DBNAME first (and any replication slots on it, which would block the drop);
# without it an existing DBNAME is an error, so a fixture is never loaded twice into one DB.
# Needs scripts/dev-env.sh to have run (uses the server URL from .dev/env).
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
# Restricting the name keeps it safe to splice into both SQL and the URL without quoting.
[[ $db =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || mr_die "DBNAME must match [A-Za-z_][A-Za-z0-9_]*"

[[ -r $MR_ENV_FILE ]] || mr_die "$MR_ENV_FILE missing: run scripts/dev-env.sh first"
# shellcheck source=/dev/null
. "$MR_ENV_FILE"

fixture=$MR_ROOT/sql/odoo17
admin_url=$MILLRACE_TEST_PG_URL
db_url=${MILLRACE_TEST_PG_URL%/*}/$db
psql() { "$MILLRACE_TEST_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

exists=$(psql -d "$admin_url" -At -c "SELECT 1 FROM pg_database WHERE datname = '$db'")
if [[ -n $exists ]]; then
    [[ $fresh -eq 1 ]] || mr_die "database $db already exists (use --fresh to drop and reload it)"
    mr_log "dropping database $db"
    # Slots (even inactive ones) pin their database; end their walsenders and drop them.
    psql -d "$admin_url" -At >/dev/null <<SQL
SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
 WHERE database = '$db' AND active_pid IS NOT NULL;
SELECT pg_sleep(0.5);
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$db';
SQL
    psql -d "$admin_url" -c "DROP DATABASE \"$db\" WITH (FORCE)"
fi

mr_log "creating database $db and loading sql/odoo17"
psql -d "$admin_url" -c "CREATE DATABASE \"$db\""
psql -d "$db_url" -f "$fixture/odoo17-mfg-schema.sql" >/dev/null
# The demo data turns off FK triggers (session_replication_role), so it needs a superuser:
# the URL's user is postgres.
psql -d "$db_url" -f "$fixture/odoo17-mfg-demo-data.sql" >/dev/null

count=$(psql -d "$db_url" -At -c "SELECT count(*) FROM product_template")
[[ $count == 44 ]] || mr_die "fixture loaded, but product_template has $count rows (expected 44)"
echo "loaded Odoo 17 fixture into $db ($db_url): product_template has $count rows"
