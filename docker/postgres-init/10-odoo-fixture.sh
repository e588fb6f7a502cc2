#!/bin/bash
# docker-compose.yml, service `postgres`: run once by the postgres image's entrypoint, when the
# data volume is new, against the database POSTGRES_DB (odoo). Loads the Odoo 17 fixture
# (sql/odoo17/, mounted at /fixtures/odoo17), aligns the keys the demo ERP numbers differently
# (sql/odoo17/fixture-erp-keys.sql, as scripts/demo.sh does), and lets other containers open
# replication connections (the image's pg_hba.conf only allows ordinary ones from outside).
#
# The entrypoint sources this file when it is not executable, so: no `set -u`, no `exit`.
set -e

odoo_psql() {
    psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

echo "millrace: loading the Odoo 17 fixture into database $POSTGRES_DB"
odoo_psql -f /fixtures/odoo17/odoo17-mfg-schema.sql >/dev/null
# The demo data turns off FK triggers (session_replication_role): it needs a superuser, which
# POSTGRES_USER is.
odoo_psql -f /fixtures/odoo17/odoo17-mfg-demo-data.sql >/dev/null
odoo_psql -f /fixtures/odoo17/fixture-erp-keys.sql >/dev/null

templates=$(odoo_psql -At -c "SELECT count(*) FROM product_template")
if [ "$templates" != 44 ]; then
    echo "millrace: fixture loaded, but product_template has $templates rows (expected 44)" >&2
    false
fi

# millrace streams changes over a replication connection (replication=database), which
# pg_hba.conf matches with the `replication` keyword, not `all`.
echo "host replication all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
echo "millrace: Odoo 17 fixture loaded ($templates product templates); replication allowed from the network"
