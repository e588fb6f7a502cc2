#!/bin/bash
# docker-compose.yml, service `mssql-init`: a one-shot container (the SQL Server image, for its
# sqlcmd) that loads the demo legacy ERP into the `mssql` service once:
#
#   1. waits until the server answers;
#   2. unless legacy_demo is already loaded, creates it and runs sql/legacy/mssql/schema.sql
#      (tables, RV ROWVERSION columns, change tracking on the database and every table) and
#      sql/legacy/mssql/demo-data.sql;
#   3. renumbers the sales order lines to the Odoo line ids the shipped mappings key on, with
#      the statements the `odoo-keys` service wrote from sql/demo/so-line-numbers.sql (as
#      scripts/demo.sh does for MariaDB).
#
# A failed load drops legacy_demo again, so the next `docker compose up` starts over.
# Environment: MSSQL_SA_PASSWORD (required), MSSQL_HOST (default mssql), LEGACY_DB (default
# legacy_demo). The password travels in SQLCMDPASSWORD, never on a command line.
set -euo pipefail

host=${MSSQL_HOST:-mssql}
db=${LEGACY_DB:-legacy_demo}
fixtures=/fixtures/legacy
keys=/fixtures/keys/so-line-numbers.sql

SQLCMD=/opt/mssql-tools18/bin/sqlcmd
[[ -x $SQLCMD ]] || SQLCMD=/opt/mssql-tools/bin/sqlcmd # images before the tools18 switch
[[ -n ${MSSQL_SA_PASSWORD:-} ]] || { echo "mssql-init: MSSQL_SA_PASSWORD is not set" >&2; exit 2; }
[[ $db =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "mssql-init: LEGACY_DB must match [A-Za-z_][A-Za-z0-9_]*" >&2; exit 2; }
export SQLCMDPASSWORD=$MSSQL_SA_PASSWORD

# -C: trust the server's self-signed certificate; -b: fail on errors; -I: QUOTED_IDENTIFIER ON.
sql() { "$SQLCMD" -S "tcp:$host,1433" -U sa -C -b -I "$@"; }
scalar() { sql -h -1 -W -Q "SET NOCOUNT ON; $1" | tr -d '[:space:]'; }

echo "mssql-init: waiting for SQL Server at $host:1433"
for attempt in $(seq 1 90); do
    if sql -l 5 -Q "SELECT 1" -o /dev/null 2>/dev/null; then
        break
    fi
    if [[ $attempt -eq 90 ]]; then
        echo "mssql-init: SQL Server at $host:1433 did not answer within 3 minutes" >&2
        exit 1
    fi
    sleep 2
done

loaded=$(scalar "SELECT CASE WHEN OBJECT_ID(N'$db.dbo.SO_LINE') IS NOT NULL THEN 1 ELSE 0 END")
if [[ $loaded == 1 ]]; then
    echo "mssql-init: $db is already loaded; nothing to do"
    exit 0
fi

drop_db() {
    sql -Q "IF DB_ID(N'$db') IS NOT NULL BEGIN ALTER DATABASE [$db] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [$db]; END" || true
}
# A database left half-loaded by an interrupted run is dropped first.
drop_db
trap 'echo "mssql-init: loading $db failed; dropping it so the next run starts over" >&2; drop_db' ERR

echo "mssql-init: creating $db and loading sql/legacy/mssql"
sql -Q "CREATE DATABASE [$db]"
sql -d "$db" -i "$fixtures/schema.sql" >/dev/null
sql -d "$db" -i "$fixtures/demo-data.sql" >/dev/null

if [[ -s $keys ]]; then
    echo "mssql-init: renumbering SO_LINE to the Odoo line ids ($(grep -c '^UPDATE' "$keys") statements)"
    sql -d "$db" -i "$keys" >/dev/null
else
    echo "mssql-init: $keys is missing or empty (the odoo-keys service writes it)" >&2
    false
fi

items=$(scalar "SELECT COUNT(*) FROM [$db].dbo.ITEM_MASTER")
lines=$(scalar "SELECT COUNT(*) FROM [$db].dbo.SO_LINE")
tracked=$(scalar "SELECT COUNT(*) FROM [$db].sys.change_tracking_tables")
if [[ $items != 53 || $lines != 50 || $tracked != 11 ]]; then
    echo "mssql-init: loaded, but ITEM_MASTER has $items rows (expected 53), SO_LINE $lines (50), $tracked tables tracked (11)" >&2
    false
fi
trap - ERR
echo "mssql-init: $db loaded: $items items, $lines sales order lines, change tracking on $tracked tables"
