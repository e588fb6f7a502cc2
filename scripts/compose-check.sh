#!/usr/bin/env bash
# Validates docker-compose.yml (and docker/ beside it) without starting anything:
# `docker compose config -q` (Compose v2), else `docker-compose config -q` (v1), else says it
# was skipped and exits 0 (neither is needed to build or test millrace).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "SKIPPED: docker compose not installed"
    exit 0
fi

"${compose[@]}" -f docker-compose.yml config -q
# The files the services mount or build from must exist (config does not check bind mounts).
for f in Dockerfile docker/millrace.toml docker/mssql-init.sh docker/rowversion-mappings.sh \
    docker/postgres-init/10-odoo-fixture.sh sql/odoo17/odoo17-mfg-schema.sql \
    sql/odoo17/odoo17-mfg-demo-data.sql sql/odoo17/fixture-erp-keys.sql sql/demo/so-line-numbers.sql \
    sql/legacy/mssql/schema.sql sql/legacy/mssql/demo-data.sql; do
    [[ -f $f ]] || { echo "compose-check: $f is missing" >&2; exit 1; }
done
echo "ok: docker-compose.yml is valid (${compose[*]} config)"
