# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
# Shared variables and helpers for millrace's dev/test scripts (dev-env.sh, pg-ctl.sh,
# mariadb-ctl.sh, load-odoo-fixture.sh, load-legacy-fixture.sh). Sourced, never executed: it
# only defines things, so it doesn't set shell options itself; every caller runs with
# `set -euo pipefail`.
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

# The MariaDB that plays the legacy ERP's database (reached through ODBC, like a customer's).
MR_MARIA_DEFAULT_PORT=33306        # not 3306: a system MariaDB may already own that
MR_MARIA_PORT=${MILLRACE_DEV_MARIADB_PORT:-$MR_MARIA_DEFAULT_PORT}
MR_MARIADBD=/usr/sbin/mariadbd     # mariadb-server's path; also what start-stop-daemon matches
# The administrative account the tests use (they create their own databases). Dev only: the
# server listens on 127.0.0.1 alone.
MR_MARIA_USER=millrace
MR_MARIA_PASSWORD=millrace-dev-pw
# millrace's own least-privileged accounts (sql/grants/): no right of their own; each test
# grants them, as an administrator, what `millrace setup --print-sql` prints for its databases.
MR_SERVICE_USER=millrace_svc
MR_SERVICE_PASSWORD=millrace-svc-pw
# The driver names we register in /etc/odbcinst.ini (Debian's packages use the same ones).
MR_ODBC_MARIADB_DRIVER="MariaDB Unicode"
MR_ODBC_PG_DRIVER="PostgreSQL Unicode"
# In dpkg, which is essential; /sbin may not be on a non-root PATH.
MR_SSD=$(command -v start-stop-daemon || echo /sbin/start-stop-daemon)

# Short per-checkout id, used for locations outside the repo (/var/tmp, /tmp) so that two
# clones on one machine never share a cluster or a socket directory.
MR_PATH_HASH=$(printf '%s' "$MR_ROOT" | sha256sum | cut -c1-12)

# PostgreSQL refuses to run as root (and MariaDB wants not to), so as root we run both servers
# as an unprivileged system user; otherwise as whoever runs the script (who then owns the repo
# and .dev anyway).
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

# Run a command as the servers' OS user (PostgreSQL's and MariaDB's). `cd /` first: the
# caller's working directory may be inside a path that user cannot enter (e.g. a clone under
# /root), and initdb/postgres complain or fail when they cannot access their current directory.
mr_as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$MR_PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Where a server's state directory (.dev/pg, .dev/mariadb) really is. It normally lives in
# .dev/NAME; when the unprivileged user cannot traverse the repo path (say, a clone under /root,
# which is mode 0700), dev-env.sh puts it under /var/tmp/millrace-<hash>/NAME instead and makes
# .dev/NAME a symlink to it. The symlink is the record of that choice, so every script resolves
# it the same way. We use the symlink's target rather than the symlink itself because the
# server user may not be able to follow a path that goes through the repo.
mr_state_base() {
    if [[ -L $MR_DEV_DIR/$1 ]]; then
        readlink -- "$MR_DEV_DIR/$1"
    else
        printf '%s\n' "$MR_DEV_DIR/$1"
    fi
}

# Sets MR_PG_BASE / MR_PG_DATA / MR_PG_LOG / MR_PG_SOCKET_DIR (see mr_state_base).
mr_pg_resolve_paths() {
    MR_PG_BASE=$(mr_state_base pg)
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

# ---- MariaDB ------------------------------------------------------------------------------

# Sets MR_MARIA_BASE and the paths under it (see mr_state_base). my.cnf holds every server
# setting; the server is always started with --defaults-file=my.cnf, so the machine's
# /etc/mysql/ configuration (and a system MariaDB's socket, port and datadir) never applies.
mr_maria_resolve_paths() {
    MR_MARIA_BASE=$(mr_state_base mariadb)
    MR_MARIA_DATA=$MR_MARIA_BASE/data
    MR_MARIA_CNF=$MR_MARIA_BASE/my.cnf
    MR_MARIA_LOG=$MR_MARIA_BASE/log/mariadbd.err
    # Written by start-stop-daemon the moment it launches mariadbd (so a server that dies while
    # starting is noticed at once), then rewritten with the same pid by mariadbd itself, which
    # removes it on a clean shutdown. Both run as the server user, so it is that user's file.
    MR_MARIA_PID=$MR_MARIA_BASE/run/mariadbd.pid
    # Same length limit as PostgreSQL's socket (above), same /tmp fallback directory.
    MR_MARIA_SOCKET=$MR_MARIA_BASE/run/mariadbd.sock
    if ((${#MR_MARIA_SOCKET} > 100)); then
        MR_MARIA_SOCKET=/tmp/millrace-$MR_PATH_HASH/mariadbd.sock
    fi
}

# The port the existing server was configured with (my.cnf), for messages and .dev/env; an
# explicit MILLRACE_DEV_MARIADB_PORT still wins, as with mr_pg_configured_port.
mr_maria_configured_port() {
    local port=""
    if [[ -z ${MILLRACE_DEV_MARIADB_PORT:-} && -r $MR_MARIA_CNF ]]; then
        port=$(sed -n 's/^port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$MR_MARIA_CNF" | head -n 1)
    fi
    printf '%s\n' "${port:-$MR_MARIA_PORT}"
}

# Is our mariadbd running? Matched by pid file AND executable AND owner, so a stale pid file
# whose pid now belongs to something else (even a system mariadbd, which runs as `mysql`) is
# never taken for ours, and never signalled by mr_maria_stop.
mr_maria_is_running() {
    [[ -e $MR_MARIA_PID ]] || return 1
    mr_as_pg "$MR_SSD" --status --pidfile "$MR_MARIA_PID" --exec "$MR_MARIADBD" \
        --user "$MR_PG_OS_USER" >/dev/null 2>&1
}

# Over our own socket rather than TCP: an answer then comes from our server, never from some
# other one on the port. mariadbd opens the socket only after binding the TCP port, so this
# also means TCP is up. `ping` exits 0 even on "access denied", i.e. whenever a server answers.
mr_maria_ping() {
    mariadb-admin --no-defaults --socket="$MR_MARIA_SOCKET" --user=root --connect-timeout=2 \
        ping >/dev/null 2>&1
}

mr_maria_show_log_tail() {
    if [[ -r $MR_MARIA_LOG ]]; then
        mr_log "last lines of $MR_MARIA_LOG:"
        tail -n 25 -- "$MR_MARIA_LOG" >&2 || true
    fi
}

mr_maria_wait_ready() {
    local i
    for ((i = 0; i < 480; i++)); do
        if mr_maria_ping; then
            return 0
        fi
        if ! mr_maria_is_running; then
            mr_maria_show_log_tail
            mr_die "mariadbd exited while starting (data dir $MR_MARIA_DATA, port $(mr_maria_configured_port); is the port taken?)"
        fi
        sleep 0.25
    done
    mr_maria_show_log_tail
    mr_die "MariaDB (socket $MR_MARIA_SOCKET) did not become ready within 120s"
}

# mariadbd does not daemonize itself: start-stop-daemon detaches it (new session, stdio on
# /dev/null, so it never holds a CI job's output pipe open) and records its pid. Run as the
# server user, so the pid file is that user's and mariadbd can rewrite it. --user makes its
# "already running?" check, like mr_maria_is_running, ignore anyone else's mariadbd.
mr_maria_start() {
    if mr_maria_is_running; then
        mr_maria_wait_ready
        return 0
    fi
    if ! mr_as_pg "$MR_SSD" --start --quiet --background --make-pidfile --pidfile "$MR_MARIA_PID" \
        --exec "$MR_MARIADBD" --user "$MR_PG_OS_USER" -- --defaults-file="$MR_MARIA_CNF"; then
        mr_maria_show_log_tail
        mr_die "could not launch mariadbd (pid file $MR_MARIA_PID)"
    fi
    mr_maria_wait_ready
}

# SIGTERM is mariadbd's clean shutdown; give it 2 minutes before SIGKILL. No credentials needed
# (unlike `mariadb-admin shutdown`), and only our own process can match (see is_running).
mr_maria_stop() {
    mr_maria_is_running || return 0
    if ! mr_as_pg "$MR_SSD" --stop --quiet --oknodo --pidfile "$MR_MARIA_PID" \
        --exec "$MR_MARIADBD" --user "$MR_PG_OS_USER" --retry TERM/120/KILL/5; then
        mr_maria_show_log_tail
        mr_die "could not stop mariadbd (pid $(cat -- "$MR_MARIA_PID" 2>/dev/null))"
    fi
}

mr_maria_restart() {
    mr_maria_stop
    mr_maria_start
}

# The mariadb client as the server's root over our socket (root has an empty password there).
# --no-defaults: no ~/.my.cnf or /etc/mysql/ client settings (a system server's socket, a
# password) may leak in.
mr_maria_admin() {
    mariadb --no-defaults --socket="$MR_MARIA_SOCKET" --user=root --batch --skip-column-names "$@"
}

# ---- Odoo ---------------------------------------------------------------------------------

# A real Odoo 17 server for the tests that need one (optional: dev-env.sh sets it up only when
# the server tarball is there, see setup_odoo). It serves every database of the dev PostgreSQL
# on one port, except the template the tests copy theirs from (see MR_ODOO_DBFILTER).
MR_ODOO_DEFAULT_PORT=58069
MR_ODOO_PORT=${MILLRACE_DEV_ODOO_PORT:-$MR_ODOO_DEFAULT_PORT}
# The template database (demo data, the modules of MR_ODOO_MODULES in dev-env.sh) that tests
# copy with CREATE DATABASE ... TEMPLATE, and the name it is built under until it is complete.
MR_ODOO_TEMPLATE=millrace_odoo_tmpl
MR_ODOO_TEMPLATE_BUILD=${MR_ODOO_TEMPLATE}_build
# Odoo's own PostgreSQL role (it refuses to run as `postgres`). Trust over TCP (pg_hba), so the
# password is only there for clients that insist on one.
MR_ODOO_PG_ROLE=odoo
MR_ODOO_PG_PASSWORD=odoo
# Odoo's --db-filter is a regex that db names must match (re.match, with %h/%d replaced by the
# request's host); it decides which db a browser session may use, and which db a request
# without one goes to when exactly one is left. Excluding the template (and its build name)
# keeps the server from ever connecting to it, which would make CREATE DATABASE ... TEMPLATE
# fail ("source database is being accessed by other users"). JSON-RPC calls (/jsonrpc,
# service "object") name their database and are not filtered; the template refuses
# connections anyway (ALLOW_CONNECTIONS false, see dev-env.sh).
MR_ODOO_DBFILTER="^(?!${MR_ODOO_TEMPLATE}(_build)?\$).*\$"

# Sets MR_ODOO_BASE and the paths under it (see mr_state_base: .dev/odoo, or
# /var/tmp/millrace-<hash>/odoo when the server's OS user cannot traverse the repo).
mr_odoo_resolve_paths() {
    MR_ODOO_BASE=$(mr_state_base odoo)
    MR_ODOO_SERVER=$MR_ODOO_BASE/server # the unpacked tarball (odoo-bin, odoo/, addons/)
    MR_ODOO_VENV=$MR_ODOO_BASE/venv
    MR_ODOO_PY=$MR_ODOO_VENV/bin/python
    MR_ODOO_CONF=$MR_ODOO_BASE/odoo.conf # every server setting; written by dev-env.sh
    MR_ODOO_DATA=$MR_ODOO_BASE/data      # Odoo's data dir (sessions; attachments are in the db)
    MR_ODOO_LOG=$MR_ODOO_BASE/log/odoo.log
    # Written by start-stop-daemon when it launches the server (Odoo itself writes none).
    MR_ODOO_PID=$MR_ODOO_BASE/run/odoo.pid
}

# The port the existing configuration has (odoo.conf); MILLRACE_DEV_ODOO_PORT still wins.
mr_odoo_configured_port() {
    local port=""
    if [[ -z ${MILLRACE_DEV_ODOO_PORT:-} && -r $MR_ODOO_CONF ]]; then
        port=$(sed -n 's/^http_port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$MR_ODOO_CONF" | head -n 1)
    fi
    printf '%s\n' "${port:-$MR_ODOO_PORT}"
}

# Our server, by pid file AND executable (the venv's python, i.e. the interpreter it links to)
# AND owner, as for MariaDB: a stale pid file never makes us signal someone else's process.
mr_odoo_is_running() {
    [[ -e $MR_ODOO_PID ]] || return 1
    mr_as_pg "$MR_SSD" --status --pidfile "$MR_ODOO_PID" --exec "$MR_ODOO_PY" \
        --user "$MR_PG_OS_USER" >/dev/null 2>&1
}

# Does the server answer JSON-RPC (common.version) on 127.0.0.1:$1? The venv's python asks:
# curl isn't one of our packages.
mr_odoo_ping() {
    "$MR_ODOO_PY" - "http://127.0.0.1:$1/jsonrpc" <<'PY' >/dev/null 2>&1
import json, sys, urllib.request
body = json.dumps({"jsonrpc": "2.0", "method": "call",
                   "params": {"service": "common", "method": "version", "args": []}}).encode()
req = urllib.request.Request(sys.argv[1], data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=5) as resp:
    sys.exit(0 if json.load(resp).get("result", {}).get("server_version") else 1)
PY
}

mr_odoo_show_log_tail() {
    if [[ -r $MR_ODOO_LOG ]]; then
        mr_log "last lines of $MR_ODOO_LOG:"
        tail -n 40 -- "$MR_ODOO_LOG" >&2 || true
    fi
}

mr_odoo_wait_ready() {
    local port i
    port=$(mr_odoo_configured_port)
    for ((i = 0; i < 120; i++)); do
        if mr_odoo_ping "$port"; then
            return 0
        fi
        if ! mr_odoo_is_running; then
            mr_odoo_show_log_tail
            mr_die "Odoo exited while starting (port $port taken? see $MR_ODOO_LOG)"
        fi
        sleep 0.5
    done
    mr_odoo_show_log_tail
    mr_die "Odoo on 127.0.0.1:$port did not answer JSON-RPC within 60s"
}

# Odoo doesn't daemonize: start-stop-daemon detaches it (new session, stdin on /dev/null, so it
# never holds a CI job's output pipe open) and records its pid. stdout and stderr (Odoo's log,
# and any traceback before logging is set up) are appended to $MR_ODOO_LOG. It runs as the
# servers' OS user: Odoo only warns when run as root, but a web server has no business being
# root.
mr_odoo_start() {
    if mr_odoo_is_running; then
        mr_odoo_wait_ready
        return 0
    fi
    if ! mr_as_pg "$MR_SSD" --start --quiet --background --make-pidfile --pidfile "$MR_ODOO_PID" \
        --output "$MR_ODOO_LOG" --exec "$MR_ODOO_PY" --user "$MR_PG_OS_USER" -- \
        "$MR_ODOO_SERVER/odoo-bin" --config="$MR_ODOO_CONF"; then
        mr_odoo_show_log_tail
        mr_die "could not launch Odoo (pid file $MR_ODOO_PID)"
    fi
    mr_odoo_wait_ready
}

# SIGTERM is Odoo's graceful shutdown (it waits for running requests); KILL after 30 s.
mr_odoo_stop() {
    mr_odoo_is_running || return 0
    if ! mr_as_pg "$MR_SSD" --stop --quiet --oknodo --remove-pidfile --pidfile "$MR_ODOO_PID" \
        --exec "$MR_ODOO_PY" --user "$MR_PG_OS_USER" --retry TERM/30/KILL/5; then
        mr_odoo_show_log_tail
        mr_die "could not stop Odoo (pid $(cat -- "$MR_ODOO_PID" 2>/dev/null))"
    fi
}

mr_odoo_restart() {
    mr_odoo_stop
    mr_odoo_start
}
