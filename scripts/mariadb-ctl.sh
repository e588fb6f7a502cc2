#!/usr/bin/env bash
# Controls the project-local MariaDB (the demo legacy ERP's database) that scripts/dev-env.sh
# created:
#   scripts/mariadb-ctl.sh {start|stop|restart|status}
# Tests call it (through $MILLRACE_TEST_MARIADB_CTL) to take the legacy database away in the
# middle of a poll and bring it back. It only ever acts on our own server (by its pid file,
# executable and OS user), never on a system MariaDB. As root it acts as the unprivileged
# `millrace` user, which runs the server. `stop` is a clean shutdown (SIGTERM, SIGKILL after
# 2 minutes); `start` and `restart` return once the server answers on its socket (and so on
# TCP). `status` exits 0 when running and 3 when not, like pg-ctl.sh.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 {start|stop|restart|status}" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage

mr_maria_resolve_paths
[[ -d $MR_MARIA_DATA/mysql && -r $MR_MARIA_CNF ]] ||
    mr_die "no MariaDB in $MR_MARIA_BASE: run scripts/dev-env.sh first"

case $1 in
start) mr_maria_start ;;
stop) mr_maria_stop ;;
restart) mr_maria_restart ;;
status)
    if mr_maria_is_running; then
        echo "MariaDB is running (pid $(cat -- "$MR_MARIA_PID"), 127.0.0.1:$(mr_maria_configured_port), data $MR_MARIA_DATA)"
    else
        echo "MariaDB is not running (data $MR_MARIA_DATA)"
        exit 3
    fi
    ;;
*) usage ;;
esac
