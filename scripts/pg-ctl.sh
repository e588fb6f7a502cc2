#!/usr/bin/env bash
# Controls the project-local PostgreSQL cluster that scripts/dev-env.sh created:
#   scripts/pg-ctl.sh {start|stop|restart|status}
# Tests call it (through $MILLRACE_TEST_PG_CTL) to restart the server in the middle of a
# replication stream. As root it acts as the unprivileged `millrace` user, since pg_ctl and
# postgres refuse to run as root. `restart` uses -m fast (disconnects clients instead of
# waiting for them) and returns only once the server accepts TCP connections again.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 {start|stop|restart|status}" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage

mr_pg_resolve_paths
[[ -f $MR_PG_DATA/PG_VERSION ]] || mr_die "no cluster in $MR_PG_DATA: run scripts/dev-env.sh first"
MR_PG_PORT=$(mr_pg_configured_port)

case $1 in
start) mr_pg_start ;;
stop) mr_pg_stop ;;
restart) mr_pg_restart ;;
status) mr_pg_ctl status ;; # exit 3 when not running, as pg_ctl does
*) usage ;;
esac
