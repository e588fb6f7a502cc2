# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
# Shared variables and helpers for millrace's dev/test scripts (dev-env.sh, pg-ctl.sh,
# mariadb-ctl.sh, odoo-ctl.sh, nats-ctl.sh, load-odoo-fixture.sh, load-legacy-fixture.sh).
# Sourced, never executed: it only defines things, so it doesn't set shell options itself;
# every caller runs with `set -euo pipefail`.
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

# ---- NATS JetStream (a three-node cluster) ------------------------------------------------

# Debian's nats-server, three nodes n1..n3 in one cluster with JetStream on every node, for the
# tests that publish the change stream to a durable log and kill or restart a node under it.
# Ports of node N (1..3): client PORT+N-1, cluster routes CLUSTER_PORT+N-1, monitoring
# MONITOR_PORT+N-1. Not 4222/6222/8222: a system NATS (which we never touch) may own those.
MR_NATSD=/usr/sbin/nats-server # the package's path; also what start-stop-daemon matches
MR_NATS_NODES=(1 2 3)
MR_NATS_CLUSTER_NAME=millrace-dev
MR_NATS_DEFAULT_PORT=44222

# Sets MR_NATS_BASE (see mr_state_base: .dev/nats, or /var/tmp/millrace-<hash>/nats) and the
# three port bases. Computed here rather than when this file is sourced, so that a bad
# MILLRACE_DEV_NATS_* value stops only the NATS scripts, with a message that names it. The
# cluster and monitoring bases follow the client base unless set on their own, so one override
# (MILLRACE_DEV_NATS_PORT) moves the whole cluster.
mr_nats_resolve_paths() {
    MR_NATS_BASE=$(mr_state_base nats)
    MR_NATS_PORT=${MILLRACE_DEV_NATS_PORT:-$MR_NATS_DEFAULT_PORT}
    [[ $MR_NATS_PORT =~ ^[1-9][0-9]*$ ]] || mr_die "MILLRACE_DEV_NATS_PORT=$MR_NATS_PORT is not a port"
    MR_NATS_CLUSTER_PORT=${MILLRACE_DEV_NATS_CLUSTER_PORT:-$((MR_NATS_PORT + 2000))}
    MR_NATS_MONITOR_PORT=${MILLRACE_DEV_NATS_MONITOR_PORT:-$((MR_NATS_PORT + 4000))}
    [[ $MR_NATS_CLUSTER_PORT =~ ^[1-9][0-9]*$ ]] ||
        mr_die "MILLRACE_DEV_NATS_CLUSTER_PORT=$MR_NATS_CLUSTER_PORT is not a port"
    [[ $MR_NATS_MONITOR_PORT =~ ^[1-9][0-9]*$ ]] ||
        mr_die "MILLRACE_DEV_NATS_MONITOR_PORT=$MR_NATS_MONITOR_PORT is not a port"
}

# Node $1's directory, and the files in it: nats.conf (every setting; written by dev-env.sh),
# store/ (JetStream's), log/nats-server.log (the server's stdout and stderr, which is where it
# logs), run/nats-server.pid (written by start-stop-daemon when it launches the server).
mr_nats_dir() { printf '%s\n' "$MR_NATS_BASE/n$1"; }
mr_nats_conf() { printf '%s\n' "$MR_NATS_BASE/n$1/nats.conf"; }
mr_nats_log() { printf '%s\n' "$MR_NATS_BASE/n$1/log/nats-server.log"; }
mr_nats_pid() { printf '%s\n' "$MR_NATS_BASE/n$1/run/nats-server.pid"; }

# Node $2's port of kind $1 (client, cluster, monitor) as its nats.conf has it (which is what
# the running server listens on, whatever the environment says now); from the port bases when
# there is no nats.conf yet (dev-env.sh, writing it).
mr_nats_port() {
    local kind=$1 n=$2 conf port="" key base
    conf=$(mr_nats_conf "$n")
    case $kind in
    client) key='listen' base=$MR_NATS_PORT ;;
    cluster) key='    listen' base=$MR_NATS_CLUSTER_PORT ;; # the one inside cluster { }
    monitor) key='http' base=$MR_NATS_MONITOR_PORT ;;
    *) mr_die "mr_nats_port: unknown kind $kind" ;;
    esac
    if [[ -r $conf ]]; then
        port=$(sed -n "s/^$key: 127\.0\.0\.1:\([0-9]*\)\$/\1/p" "$conf" | head -n 1)
    fi
    printf '%s\n' "${port:-$((base + n - 1))}"
}

# The comma-separated URL lists .dev/env exports (client: nats://, monitoring: http://).
mr_nats_url_list() {
    local scheme=$1 kind=$2 n out=""
    for n in "${MR_NATS_NODES[@]}"; do
        out+="${out:+,}$scheme://127.0.0.1:$(mr_nats_port "$kind" "$n")"
    done
    printf '%s\n' "$out"
}
mr_nats_urls() { mr_nats_url_list nats client; }
mr_nats_monitor_urls() { mr_nats_url_list http monitor; }

# Is our node $1 running? By pid file AND executable AND owner, as for MariaDB: the machine's
# own nats-server (same executable) never matches, and a stale pid file never makes us signal
# someone else's process.
mr_nats_is_running() {
    local pid
    pid=$(mr_nats_pid "$1")
    [[ -e $pid ]] || return 1
    mr_as_pg "$MR_SSD" --status --pidfile "$pid" --exec "$MR_NATSD" --user "$MR_PG_OS_USER" \
        >/dev/null 2>&1
}

mr_nats_show_log_tail() {
    local log
    log=$(mr_nats_log "$1")
    if [[ -r $log ]]; then
        mr_log "last lines of $log:"
        tail -n 25 -- "$log" >&2 || true
    fi
}

# Is the cluster usable, as far as the nodes NAME=MONITOR_PORT of $@ (those running) can tell?
# Each must answer /healthz with "ok" (with JetStream on, nats-server says so only once it is
# current with the meta leader and its streams and consumers have caught up: after a restart,
# that is "rejoined"), be the server its name says (/varz, so an answer never comes from some
# other server on the port), and name the same JetStream meta leader in /jsz, which must be one
# of them: a node that was just killed goes on being named for a few seconds. On success prints
# the leader's name; on failure why not, and returns 1. Python's urllib: curl isn't one of our
# packages.
mr_nats_probe() {
    python3 - "$MR_NATS_CLUSTER_NAME" "$@" <<'PY'
import json, sys, urllib.error, urllib.request

def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:  # /healthz answers 503 with a JSON body that says why
        body = e.read()
        return json.loads(body) if body else {"status": f"HTTP {e.code}"}

def main(cluster, nodes):
    if not nodes:
        return "no node is running"
    leaders = set()
    for name, port in nodes:
        try:
            health = get(port, "/healthz")
            if health.get("status") != "ok":
                return f"{name}: /healthz says {health.get('error') or health.get('status')}"
            varz = get(port, "/varz")
            if varz.get("server_name") != name or (varz.get("cluster") or {}).get("name") != cluster:
                return f"port {port} is not {name} of {cluster}"
            leader = (get(port, "/jsz").get("meta_cluster") or {}).get("leader")
        except (OSError, ValueError) as e:
            return f"{name}: no answer on 127.0.0.1:{port} ({e})"
        if not leader:
            return f"{name} knows no JetStream meta leader (a majority, 2 of the 3 nodes, must run)"
        leaders.add(leader)
    if len(leaders) > 1:
        return "the nodes name different meta leaders: " + ", ".join(sorted(leaders))
    leader = leaders.pop()
    if leader not in {name for name, _ in nodes}:
        return f"the meta leader {leader} is not running (a new one is being elected)"
    print(leader)
    return None

why = main(sys.argv[1], [arg.split("=", 1) for arg in sys.argv[2:]])
if why:
    print(why)
    sys.exit(1)
PY
}

# The NAME=MONITOR_PORT arguments of mr_nats_probe for the nodes that run, one a line.
mr_nats_running_monitors() {
    local n
    for n in "${MR_NATS_NODES[@]}"; do
        if mr_nats_is_running "$n"; then
            printf 'n%s=%s\n' "$n" "$(mr_nats_port monitor "$n")"
        fi
    done
}

# Wait until the nodes of $@ run and the cluster is usable (mr_nats_probe over every node that
# runs). Seconds, normally: a meta leader is elected within about a second of a cold start, and
# within about five of the old one's being killed.
mr_nats_wait_ready() {
    local i n why="" monitors=()
    for ((i = 0; i < 240; i++)); do
        for n in "$@"; do
            if ! mr_nats_is_running "$n"; then
                mr_nats_show_log_tail "$n"
                mr_die "NATS n$n exited while starting (ports $(mr_nats_port client "$n")/$(mr_nats_port cluster "$n")/$(mr_nats_port monitor "$n") taken? see $(mr_nats_log "$n"))"
            fi
        done
        mapfile -t monitors < <(mr_nats_running_monitors)
        if why=$(mr_nats_probe "${monitors[@]}"); then
            return 0
        fi
        sleep 0.25
    done
    if ((${#monitors[@]} < 2)); then
        why+=" (only ${#monitors[@]} of the 3 nodes run: electing a meta leader takes 2)"
    fi
    mr_die "the NATS cluster did not become ready within 60s: $why"
}

# nats-server doesn't daemonize: start-stop-daemon detaches it (new session, stdin on
# /dev/null, so it never holds a CI job's output pipe open), records its pid and appends its
# output, which is its log, to log/nats-server.log. It runs as the servers' OS user. All the
# nodes of $@ that are not running are launched first and waited for together: a node alone
# cannot elect a meta leader.
mr_nats_start() {
    local n pid
    for n in "$@"; do
        mr_nats_is_running "$n" && continue
        pid=$(mr_nats_pid "$n")
        if ! mr_as_pg "$MR_SSD" --start --quiet --background --make-pidfile --pidfile "$pid" \
            --output "$(mr_nats_log "$n")" --exec "$MR_NATSD" --user "$MR_PG_OS_USER" -- \
            --config "$(mr_nats_conf "$n")"; then
            mr_nats_show_log_tail "$n"
            mr_die "could not launch NATS n$n (pid file $pid)"
        fi
    done
    mr_nats_wait_ready "$@"
}

# Stop the nodes of $@ with signal $1: TERM, nats-server's clean shutdown (KILL after a minute),
# or KILL, a crash. Either way returns once the process is gone. The nodes are signalled
# together and then waited for, so stopping the cluster takes no longer than stopping a node.
mr_nats_signal() {
    local signal=$1 n pid pids=() retry rc=0
    shift
    if [[ $signal == KILL ]]; then retry=KILL/10; else retry=$signal/60/KILL/10; fi
    for n in "$@"; do
        mr_nats_is_running "$n" || continue
        pid=$(mr_nats_pid "$n")
        mr_as_pg "$MR_SSD" --stop --quiet --oknodo --remove-pidfile --pidfile "$pid" \
            --exec "$MR_NATSD" --user "$MR_PG_OS_USER" --retry "$retry" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || rc=$?
    done
    [[ $rc -eq 0 ]] || mr_die "could not stop NATS node(s) $* (start-stop-daemon exit $rc)"
}

mr_nats_stop() { mr_nats_signal TERM "$@"; }
mr_nats_kill() { mr_nats_signal KILL "$@"; }
