# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
# Shared variables and helpers for millrace's dev/test scripts (dev-env.sh, pg-ctl.sh,
# load-odoo-fixture.sh). Sourced, never executed: it only defines things, so it doesn't set
# shell options itself; every caller runs with `set -euo pipefail`.
#
# Everything is derived from this file's own location, so the scripts work from a clone in
# any directory and from any working directory.

# Repo root = the directory that contains scripts/. `pwd -P` resolves symlinks so the path we
# hash (below) and hand to PostgreSQL is stable however the script was invoked.
MR_SCRIPTS_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
MR_ROOT=$(dirname -- "$MR_SCRIPTS_DIR")
MR_DEV_DIR=$MR_ROOT/.dev           # git-ignored; all generated state lives here
MR_TLS_DIR=$MR_DEV_DIR/tls
MR_ENV_FILE=$MR_DEV_DIR/env

MR_PG_BIN=${MILLRACE_DEV_PG_BIN:-/usr/lib/postgresql/15/bin}
MR_PG_DEFAULT_PORT=55432           # not 5432: a system PostgreSQL may already own that
MR_PG_PORT=${MILLRACE_DEV_PG_PORT:-$MR_PG_DEFAULT_PORT}

# Short per-checkout id, used for locations outside the repo (/var/tmp, /tmp) so that two
# clones on one machine never share a cluster or a socket directory.
MR_PATH_HASH=$(printf '%s' "$MR_ROOT" | sha256sum | cut -c1-12)

# PostgreSQL refuses to run as root, so as root we run the server as an unprivileged system
# user; otherwise as whoever runs the script (who then owns the repo and .dev anyway).
if [[ $EUID -eq 0 ]]; then
    MR_PG_OS_USER=millrace
else
    MR_PG_OS_USER=$(id -un)
fi

mr_log() { printf '[%s] %s\n' "$(basename -- "$0")" "$*" >&2; }
mr_die() {
    mr_log "ERROR: $*"
    exit 1
}

# Run a command as the PostgreSQL OS user. `cd /` first: the caller's working directory may be
# inside a path that user cannot enter (e.g. a clone under /root), and initdb/postgres
# complain or fail when they cannot access their current directory.
mr_as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$MR_PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Sets MR_PG_BASE / MR_PG_DATA / MR_PG_LOG / MR_PG_SOCKET_DIR. The cluster normally lives in
# .dev/pg; when the unprivileged user cannot traverse the repo path (say, a clone under /root,
# which is mode 0700), dev-env.sh puts it under /var/tmp/millrace-<hash>/pg instead and makes
# .dev/pg a symlink to it. The symlink is the record of that choice, so every script resolves
# it the same way. We use the symlink's target rather than the symlink itself because the
# server user may not be able to follow a path that goes through the repo.
mr_pg_resolve_paths() {
    if [[ -L $MR_DEV_DIR/pg ]]; then
        MR_PG_BASE=$(readlink -- "$MR_DEV_DIR/pg")
    else
        MR_PG_BASE=$MR_DEV_DIR/pg
    fi
    MR_PG_DATA=$MR_PG_BASE/data
    MR_PG_LOG=$MR_PG_BASE/log/postgres.log
    # A Unix socket path is limited to ~107 bytes and the server appends "/.s.PGSQL.NNNNN"
    # (15 bytes); deep checkouts would exceed that, so fall back to a short /tmp directory.
    MR_PG_SOCKET_DIR=$MR_PG_BASE/run
    if ((${#MR_PG_SOCKET_DIR} > 80)); then
        MR_PG_SOCKET_DIR=/tmp/millrace-$MR_PATH_HASH
    fi
}

# The port the existing cluster was configured with (dev-env.sh writes it into millrace.conf),
# so `pg-ctl.sh restart` waits on the right port even when called without the
# MILLRACE_DEV_PG_PORT override the cluster was set up with. An explicit override still wins.
mr_pg_configured_port() {
    local port=""
    if [[ -z ${MILLRACE_DEV_PG_PORT:-} && -r $MR_PG_DATA/millrace.conf ]]; then
        port=$(sed -n "s/^port = \([0-9]*\).*/\1/p" "$MR_PG_DATA/millrace.conf" | tail -n 1)
    fi
    printf '%s\n' "${port:-$MR_PG_PORT}"
}

mr_pg_ctl() { mr_as_pg "$MR_PG_BIN/pg_ctl" -D "$MR_PG_DATA" "$@"; }

mr_pg_is_running() { mr_pg_ctl status >/dev/null 2>&1; }

# On a failed start the useful message is in the server log, not in pg_ctl's output.
mr_pg_show_log_tail() {
    if [[ -r $MR_PG_LOG ]]; then
        mr_log "last lines of $MR_PG_LOG:"
        tail -n 25 -- "$MR_PG_LOG" >&2 || true
    fi
}

# pg_ctl -w already waits for the postmaster to report "ready"; this additionally waits until
# the TCP listener answers, which is what the tests use.
mr_pg_wait_ready() {
    local i
    for ((i = 0; i < 120; i++)); do
        if "$MR_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$MR_PG_PORT" -U postgres -d postgres; then
            return 0
        fi
        sleep 0.5
    done
    mr_pg_show_log_tail
    mr_die "PostgreSQL on 127.0.0.1:$MR_PG_PORT did not become ready within 60s"
}

mr_pg_start() {
    if mr_pg_is_running; then
        mr_pg_wait_ready
        return 0
    fi
    if ! mr_pg_ctl -l "$MR_PG_LOG" -w -t 120 start >/dev/null; then
        mr_pg_show_log_tail
        mr_die "could not start PostgreSQL (data dir $MR_PG_DATA, port $MR_PG_PORT; is the port taken?)"
    fi
    mr_pg_wait_ready
}

mr_pg_stop() {
    if mr_pg_is_running; then
        mr_pg_ctl -m fast -w -t 120 stop >/dev/null
    fi
}

# -m fast: disconnect clients (e.g. a test's replication stream) instead of waiting for them.
mr_pg_restart() {
    if ! mr_pg_ctl -l "$MR_PG_LOG" -m fast -w -t 120 restart >/dev/null; then
        mr_pg_show_log_tail
        mr_die "could not restart PostgreSQL (data dir $MR_PG_DATA)"
    fi
    mr_pg_wait_ready
}

# psql as superuser over the Unix socket (always trust, independent of pg_hba's TCP rules).
mr_psql_admin() {
    "$MR_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$MR_PG_SOCKET_DIR" -p "$MR_PG_PORT" \
        -U postgres -d postgres "$@"
}
