#!/usr/bin/env bash
# Controls the project-local Odoo 17 server that scripts/dev-env.sh set up (only when it found
# the Odoo server tarball):
#   scripts/odoo-ctl.sh {start|stop|restart|status}
# It serves every database of the dev PostgreSQL but the template on 127.0.0.1:58069 (see
# .dev/odoo/odoo.conf). It only ever acts on our own server (by its pid file, executable and
# OS user). As root it acts as the unprivileged `millrace` user, which runs the server. `start`
# and `restart` return once the server answers JSON-RPC; `stop` is a clean shutdown (SIGTERM,
# SIGKILL after 30 s). `status` exits 0 when running and 3 when not, like pg-ctl.sh.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 {start|stop|restart|status}" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage

mr_odoo_resolve_paths
[[ -r $MR_ODOO_CONF && -f $MR_ODOO_SERVER/odoo-bin && -x $MR_ODOO_PY ]] ||
    mr_die "no Odoo server in $MR_ODOO_BASE: run scripts/dev-env.sh first (with the Odoo server tarball)"

case $1 in
start) mr_odoo_start ;;
stop) mr_odoo_stop ;;
restart) mr_odoo_restart ;;
status)
    if mr_odoo_is_running; then
        echo "Odoo is running (pid $(cat -- "$MR_ODOO_PID"), http://127.0.0.1:$(mr_odoo_configured_port), log $MR_ODOO_LOG)"
    else
        echo "Odoo is not running (log $MR_ODOO_LOG)"
        exit 3
    fi
    ;;
*) usage ;;
esac
