#!/usr/bin/env bash
# Sets up millrace's local development/test environment and is safe to re-run (a second run
# only checks things and takes about a second):
#   - installs the Debian packages the tests need, if missing;
#   - creates and starts a project-local PostgreSQL 15 cluster (port 55432, logical decoding,
#     TLS with a private CA, one pg_hba rule per auth method under test);
#   - creates and starts a project-local MariaDB (port 33306), the demo legacy ERP's database,
#     with an administrative account for the tests;
#   - registers the MariaDB and PostgreSQL ODBC drivers and checks that both connect;
#   - creates a Python virtualenv in .dev/py with pinned pyarrow, duckdb, psycopg and nats-py,
#     which the tests use to read what millrace writes (MILLRACE_PYTHON);
#   - when the Odoo 17 server tarball is there (MILLRACE_ODOO_SERVER_TARBALL, by default
#     ../shared/odoo17/odoo17-server.tar.xz next to the clone): unpacks it with a virtualenv
#     into .dev/odoo, builds the template database millrace_odoo_tmpl (demo data) once, and
#     starts Odoo on 127.0.0.1:58069 (scripts/odoo-ctl.sh); without it, says the tests that need
#     a real Odoo will be skipped;
#   - creates and starts a project-local three-node NATS JetStream cluster (Debian's
#     nats-server; clients on 44222-44224, routes on 46222-46224, monitoring on 48222-48224;
#     state in .dev/nats/n1..n3; scripts/nats-ctl.sh); when it won't start, says so and goes
#     on without it (the tests that need it are then SKIPPED);
#   - writes .dev/env, which exports MILLRACE_TEST_* and MILLRACE_PYTHON for the test suite.
#
# Usage: bash scripts/dev-env.sh      (or `source scripts/dev-env.sh` to also import .dev/env)
# Env:   MILLRACE_DEV_PG_PORT       port of the dev PostgreSQL (default 55432)
#        MILLRACE_DEV_MARIADB_PORT  port of the dev MariaDB (default 33306)
#        MILLRACE_DEV_BENCH=1       also install what bench/ compares against (pyodbc)
#        MILLRACE_ODOO_SERVER_TARBALL  the Odoo 17 server tarball (default: see above)
#        MILLRACE_DEV_ODOO_PORT     port of the dev Odoo (default 58069)
#        MILLRACE_DEV_NATS_PORT     client port of NATS node n1 (default 44222; n2, n3 the next)
#        MILLRACE_DEV_NATS_CLUSTER_PORT  route port of n1 (default: the client port + 2000)
#        MILLRACE_DEV_NATS_MONITOR_PORT  monitoring port of n1 (default: the client port + 4000)
#
# Everything it creates lives in the git-ignored .dev/ (or, when the servers' OS user can't
# reach the repo, /var/tmp/millrace-<hash>/ with .dev/pg, .dev/mariadb, .dev/odoo and .dev/nats
# symlinked to it). `rm -rf .dev` after `scripts/odoo-ctl.sh stop`, `scripts/pg-ctl.sh stop`,
# `scripts/mariadb-ctl.sh stop` and `scripts/nats-ctl.sh stop` starts from scratch.

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the work in a child bash, so `set -e` and our helper variables neither leak
    # into nor (on an error) kill the caller's interactive shell; then import .dev/env.
    if bash "${BASH_SOURCE[0]}" "$@"; then
        # shellcheck source=/dev/null
        . "$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)/.dev/env"
        return 0
    else
        return 1
    fi
fi

set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# The Debian packages we need, each with a file whose presence means "already there", so a
# second run never touches apt (slow, needs root, and may have no network).
MR_PACKAGES=(
    "postgresql-15:$MR_PG_BIN/postgres"
    "postgresql-client-15:$MR_PG_BIN/psql"
    "openssl:openssl"
    "time:/usr/bin/time"
    "procps:ps"
    "python3:python3"
    # The legacy ERP side: a MariaDB we start ourselves (see setup_mariadb; the package's own
    # service is kept from starting, see mr_block_service_starts) and ODBC, through which
    # millrace reaches legacy databases. An empty probe means "ask dpkg": the drivers' .so
    # paths depend on the architecture.
    "mariadb-server:$MR_MARIADBD"
    "mariadb-client:mariadb"
    "unixodbc:isql"
    "odbcinst:odbcinst"
    "unixodbc-dev:/usr/include/sql.h"
    "odbc-mariadb:"
    "odbc-postgresql:"
    # The operator page's browser test: Debian's Chromium, driven by playwright-core (npm).
    "chromium:/usr/bin/chromium"
    "nodejs:node"
    "npm:npm"
    # The durable log the change stream can be published to: a three-node JetStream cluster of
    # our own (see setup_nats; the package's service is kept from starting, as MariaDB's is).
    "nats-server:$MR_NATSD"
)

MR_TMP_DIRS=()
# Also on failure: never leave our temporary policy-rc.d behind (see mr_block_service_starts).
trap 'rm -rf -- "${MR_TMP_DIRS[@]}"; mr_unblock_service_starts' EXIT

# A probe is a path that must exist (a binary, a header) or a command on PATH; empty: none.
mr_have() {
    if [[ -z $1 ]]; then
        return 1
    elif [[ $1 == /* ]]; then
        [[ -e $1 ]]
    else
        command -v "$1" >/dev/null 2>&1
    fi
}

mr_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# Run as root: directly when we are root, through sudo when that exists.
MR_SUDO=()
mr_as_root() {
    "${MR_SUDO[@]}" "$@"
}

# Called before the first thing that needs root (apt, /etc/odbcinst.ini); $1 says what for.
mr_need_root() {
    [[ $EUID -ne 0 && ${#MR_SUDO[@]} -eq 0 ]] || return 0
    command -v sudo >/dev/null 2>&1 || mr_die "$1 needs root, and there is no sudo: do it by hand"
    MR_SUDO=(sudo)
}

# Packages' maintainer scripts start their services (invoke-rc.d, deb-systemd-invoke). We
# never use those: mariadb-server's would be a second MariaDB on 3306, and its postinst fails
# the whole install when that start fails (say, because 3306 is taken). So while our apt-get
# runs, a policy-rc.d denies every service start, as Docker images' own policy-rc.d does; both
# invoke-rc.d and deb-systemd-invoke ask it first. Only when there is none yet: an existing one
# is the machine's policy and stays as it is. Nothing here ever stops a running server (a
# package that is installed already, like a system MariaDB's, is not reconfigured).
MR_POLICY_RC_D=/usr/sbin/policy-rc.d
MR_POLICY_RC_D_OURS=0
mr_block_service_starts() {
    [[ ! -e $MR_POLICY_RC_D ]] || return 0
    printf '%s\n' '#!/bin/sh' \
        '# Temporary, from millrace scripts/dev-env.sh while it runs apt-get: no service starts.' \
        'exit 101' | mr_as_root tee "$MR_POLICY_RC_D" >/dev/null
    mr_as_root chmod 0755 "$MR_POLICY_RC_D"
    MR_POLICY_RC_D_OURS=1
}
mr_unblock_service_starts() {
    if [[ ${MR_POLICY_RC_D_OURS:-0} -eq 1 ]]; then
        mr_as_root rm -f "$MR_POLICY_RC_D"
        MR_POLICY_RC_D_OURS=0
    fi
}

MR_APT_UPDATED=0
mr_apt_install() {
    # A fresh machine (or Docker image) has empty package lists; update once per run.
    if [[ $MR_APT_UPDATED -eq 0 ]]; then
        mr_as_root apt-get -o DPkg::Lock::Timeout=300 update -q
        MR_APT_UPDATED=1
    fi
    mr_block_service_starts
    mr_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
    mr_unblock_service_starts
}

# The packages among the "package:probe" entries $@ that are missing, one a line.
mr_missing_packages() {
    local entry pkg probe
    for entry in "$@"; do
        pkg=${entry%%:*}
        probe=${entry#*:}
        if ! mr_have "$probe" && ! mr_pkg_installed "$pkg"; then
            printf '%s\n' "$pkg"
        fi
    done
}

# After installing: every "package:probe" entry of $@ must now be there.
mr_verify_packages() {
    local entry pkg probe
    for entry in "$@"; do
        pkg=${entry%%:*}
        probe=${entry#*:}
        if [[ -n $probe ]]; then
            mr_have "$probe" || mr_die "package $pkg installed but $probe is missing"
        else
            mr_pkg_installed "$pkg" || mr_die "package $pkg did not install"
        fi
    done
}

install_packages() {
    local missing=()
    mapfile -t missing < <(mr_missing_packages "${MR_PACKAGES[@]}")
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi

    mr_need_root "installing packages (${missing[*]})"
    mr_log "installing missing packages: ${missing[*]}"

    if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
        # Installing postgresql-15 would otherwise create and start a "main" cluster on port
        # 5432 that we never use. postgresql-common's createcluster.conf can switch that off,
        # but only if it's in place before postgresql-15 is configured: install it first.
        if ! mr_pkg_installed postgresql-common; then
            mr_apt_install postgresql-common
        fi
        if [[ -f /etc/postgresql-common/createcluster.conf ]]; then
            mr_as_root sed -i -E 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
                /etc/postgresql-common/createcluster.conf
        fi
    fi
    mr_apt_install "${missing[@]}"
    mr_verify_packages "${MR_PACKAGES[@]}"
}

# Only as root: the unprivileged account that owns and runs the cluster.
ensure_pg_os_user() {
    [[ $EUID -eq 0 ]] || return 0
    if ! id -u "$MR_PG_OS_USER" >/dev/null 2>&1; then
        mr_log "creating system user $MR_PG_OS_USER (PostgreSQL refuses to run as root)"
        useradd --system --user-group --create-home --home-dir "/var/lib/$MR_PG_OS_USER" \
            --shell /usr/sbin/nologin "$MR_PG_OS_USER"
    fi
}

# openssl wants a config file for extensions; a throwaway one keeps us independent of the
# system's openssl.cnf defaults.
mr_openssl_ext() {
    local file=$1
    shift
    printf '%s\n' "$@" >"$file"
}

setup_tls() {
    mkdir -p "$MR_TLS_DIR"
    local d=$MR_TLS_DIR tmp
    tmp=$(mktemp -d)
    MR_TMP_DIRS+=("$tmp") # removed on exit, also when openssl fails

    # Private keys are unencrypted (dev only) but not world-readable.
    local old_umask
    old_umask=$(umask)
    umask 077

    # The CA that the tests trust (sslrootcert / MILLRACE_TEST_PG_CA).
    if [[ ! -s $d/ca.crt || ! -s $d/ca.key ]]; then
        mr_log "generating dev CA in $d"
        mr_openssl_ext "$tmp/ca.ext" \
            "basicConstraints = critical, CA:TRUE" \
            "keyUsage = critical, keyCertSign, cRLSign" \
            "subjectKeyIdentifier = hash"
        openssl req -new -newkey rsa:2048 -nodes -keyout "$d/ca.key" -subj "/CN=millrace dev CA" \
            -out "$tmp/ca.csr" 2>/dev/null
        openssl x509 -req -in "$tmp/ca.csr" -signkey "$d/ca.key" -days 3650 -sha256 \
            -extfile "$tmp/ca.ext" -out "$d/ca.crt" 2>/dev/null
        rm -f "$d/server.crt" # signed by the old CA, if any: re-issue below
    fi

    # Server certificate: CN=localhost and subjectAltName DNS:localhost ONLY. Deliberately
    # no IP:127.0.0.1, so sslmode=verify-full passes with host=localhost and fails with
    # host=127.0.0.1 — the tests rely on both outcomes.
    if [[ ! -s $d/server.crt || ! -s $d/server.key ]] ||
        ! openssl verify -CAfile "$d/ca.crt" "$d/server.crt" >/dev/null 2>&1; then
        mr_log "issuing dev server certificate (CN=localhost)"
        mr_openssl_ext "$tmp/server.ext" \
            "basicConstraints = critical, CA:FALSE" \
            "keyUsage = critical, digitalSignature, keyEncipherment" \
            "extendedKeyUsage = serverAuth" \
            "subjectAltName = DNS:localhost" \
            "subjectKeyIdentifier = hash" \
            "authorityKeyIdentifier = keyid"
        openssl req -new -newkey rsa:2048 -nodes -keyout "$d/server.key" -subj "/CN=localhost" \
            -out "$tmp/server.csr" 2>/dev/null
        openssl x509 -req -in "$tmp/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
            -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 \
            -extfile "$tmp/server.ext" -out "$d/server.crt" 2>/dev/null
    fi

    # An unrelated CA, for the "server cert signed by a CA we don't trust" tests.
    if [[ ! -s $d/other-ca.crt ]]; then
        mr_log "generating unrelated CA (other-ca.crt)"
        mr_openssl_ext "$tmp/other.ext" \
            "basicConstraints = critical, CA:TRUE" \
            "keyUsage = critical, keyCertSign, cRLSign" \
            "subjectKeyIdentifier = hash"
        openssl req -new -newkey rsa:2048 -nodes -keyout "$d/other-ca.key" \
            -subj "/CN=millrace unrelated CA" -out "$tmp/other.csr" 2>/dev/null
        openssl x509 -req -in "$tmp/other.csr" -signkey "$d/other-ca.key" -days 3650 -sha256 \
            -extfile "$tmp/other.ext" -out "$d/other-ca.crt" 2>/dev/null
    fi

    umask "$old_umask"
    rm -rf -- "$tmp"
    chmod 0644 "$d/ca.crt" "$d/server.crt" "$d/other-ca.crt"
    chmod 0600 "$d/ca.key" "$d/server.key" "$d/other-ca.key"
}

# Create the state directory .dev/NAME of one server (pg, mariadb), or decide it lives outside
# the repo (see mr_state_base in lib.sh). Both servers make the same choice, since it depends
# only on whether their OS user can traverse the repo path.
prepare_state_dir() {
    local name=$1
    mkdir -p "$MR_DEV_DIR"
    # Our own directory: make sure the server user may pass through it even under umask 077.
    chmod 0755 "$MR_DEV_DIR"
    if [[ ! -e $MR_DEV_DIR/$name && ! -L $MR_DEV_DIR/$name ]]; then
        if [[ $EUID -ne 0 ]] || mr_as_pg test -x "$MR_DEV_DIR" -a -r "$MR_DEV_DIR"; then
            mkdir -p "$MR_DEV_DIR/$name"
            chmod 0755 "$MR_DEV_DIR/$name"
        else
            # Don't chmod the user's parent directories (could be /root or /); use a
            # per-checkout directory outside the repo and record it as a symlink.
            local base=/var/tmp/millrace-$MR_PATH_HASH/$name
            mr_log "$MR_PG_OS_USER cannot traverse $MR_ROOT; keeping .dev/$name in $base"
            mkdir -p "$base"
            chmod 0755 "$(dirname -- "$base")" "$base"
            ln -s "$base" "$MR_DEV_DIR/$name"
        fi
    fi
}

# Decide where the cluster lives (see mr_pg_resolve_paths in lib.sh) and create its dirs.
prepare_pg_dirs() {
    prepare_state_dir pg
    mr_pg_resolve_paths
    mkdir -p "$MR_PG_BASE/log" "$MR_PG_SOCKET_DIR"
    if [[ $EUID -eq 0 ]]; then
        chown "$MR_PG_OS_USER:" "$MR_PG_BASE" "$MR_PG_BASE/log" "$MR_PG_SOCKET_DIR"
    fi
}

mr_initdb() {
    # C.UTF-8 is built into Debian 12's glibc; fall back to plain C elsewhere. Either way
    # collation doesn't depend on the machine's installed locales.
    local locale=C
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        locale=C.UTF-8
    fi
    mr_log "initdb $MR_PG_DATA (locale $locale)"
    # --no-sync: a throwaway dev cluster doesn't need initdb's final fsync of every file.
    mr_as_pg "$MR_PG_BIN/initdb" -D "$MR_PG_DATA" --auth=trust -U postgres --encoding=UTF8 \
        --locale="$locale" --no-sync --no-instructions >/dev/null
}

# Write $2 to file $1 (owned by the server user) only if the content differs; returns 0 if
# it changed, 1 if not. Keeps a re-run from needlessly restarting or reloading the server.
mr_write_if_changed() {
    local file=$1 content=$2 mode=${3:-0600}
    if [[ -f $file ]] && [[ "$(cat -- "$file")" == "$content" ]]; then
        return 1
    fi
    printf '%s\n' "$content" >"$file.tmp"
    chmod "$mode" "$file.tmp"
    if [[ $EUID -eq 0 ]]; then chown "$MR_PG_OS_USER:" "$file.tmp"; fi
    mv -f -- "$file.tmp" "$file"
    return 0
}

# Single-quote a value for postgresql.conf.
mr_conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

setup_postgres() {
    ensure_pg_os_user
    prepare_pg_dirs

    if [[ ! -f $MR_PG_DATA/PG_VERSION ]]; then
        if [[ -d $MR_PG_DATA ]] && [[ -n "$(ls -A -- "$MR_PG_DATA")" ]]; then
            mr_die "$MR_PG_DATA exists but is not a cluster; remove it and re-run"
        fi
        mr_initdb
    fi

    local restart_needed=0 reload_needed=0

    # Our settings go in their own file, included last from postgresql.conf, so they override
    # initdb's defaults and can be compared/rewritten wholesale on every run.
    if ! grep -q "^include_if_exists = 'millrace.conf'" "$MR_PG_DATA/postgresql.conf"; then
        printf "\n# millrace dev settings (scripts/dev-env.sh)\ninclude_if_exists = 'millrace.conf'\n" \
            >>"$MR_PG_DATA/postgresql.conf"
        restart_needed=1
    fi

    local conf
    conf=$(
        cat <<EOF
# Generated by scripts/dev-env.sh on every run; edit the script, not this file.
cluster_name = 'millrace-dev'
port = $MR_PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = $(mr_conf_quote "$MR_PG_SOCKET_DIR")
max_connections = 300

# Logical replication (what millrace consumes), with room for many test slots at once.
wal_level = logical
max_replication_slots = 300
max_wal_senders = 100
wal_sender_timeout = 60s

shared_buffers = 256MB

# DEV ONLY: no durability. The cluster is disposable test scaffolding, and skipping fsync
# makes the many small test transactions much faster. After an OS crash the cluster may be
# corrupt: stop it, rm -rf .dev/pg, and re-run dev-env.sh. Never copy these to production.
fsync = off
synchronous_commit = off
full_page_writes = off

# TLS with the dev CA's server certificate (copied into the data dir, owned by the server
# user, since the server can't read root's .dev/tls/server.key).
ssl = on
ssl_cert_file = $(mr_conf_quote "$MR_PG_DATA/server.crt")
ssl_key_file = $(mr_conf_quote "$MR_PG_DATA/server.key")
EOF
    )
    if mr_write_if_changed "$MR_PG_DATA/millrace.conf" "$conf"; then
        restart_needed=1 # port/shared_buffers/wal_level etc. only take effect on restart
    fi

    # Copies of the server cert/key for the server user (the key must be 0600 and owned by
    # that user, or PostgreSQL refuses it).
    if mr_write_if_changed "$MR_PG_DATA/server.crt" "$(cat "$MR_TLS_DIR/server.crt")" 0644; then
        reload_needed=1
    fi
    if mr_write_if_changed "$MR_PG_DATA/server.key" "$(cat "$MR_TLS_DIR/server.key")" 0600; then
        reload_needed=1
    fi

    # One rule block per auth method the tests exercise; the test creates a role and makes it
    # a member of the matching group role. First match wins, so the order matters. Logical
    # replication connections (replication=database) match on the database column, so `all`
    # covers them too (only physical replication needs the `replication` keyword).
    local hba addr
    hba="# Generated by scripts/dev-env.sh on every run; edit the script, not this file.
# TYPE    DATABASE  USER               ADDRESS        METHOD"
    for addr in 127.0.0.1/32 ::1/128; do
        hba+="
# members of mr_auth_tls: TLS + SCRAM, and no plain TCP at all
hostssl   all       +mr_auth_tls       $addr   scram-sha-256
hostnossl all       +mr_auth_tls       $addr   reject
host      all       +mr_auth_trust     $addr   trust
host      all       +mr_auth_password  $addr   password
host      all       +mr_auth_md5       $addr   md5
host      all       +mr_auth_scram     $addr   scram-sha-256
# everyone else, including the superuser postgres: trust (a superuser only matches +group
# rules if it is an explicit member)
host      all       all                $addr   trust"
    done
    hba+="
local     all       all                               trust"
    if mr_write_if_changed "$MR_PG_DATA/pg_hba.conf" "$hba"; then
        reload_needed=1
    fi

    if ! mr_pg_is_running; then
        mr_log "starting PostgreSQL on 127.0.0.1:$MR_PG_PORT"
        "$MR_SCRIPTS_DIR/pg-ctl.sh" start
    elif [[ $restart_needed -eq 1 ]]; then
        mr_log "configuration changed: restarting PostgreSQL"
        "$MR_SCRIPTS_DIR/pg-ctl.sh" restart
    elif [[ $reload_needed -eq 1 ]]; then
        mr_pg_ctl reload >/dev/null
        mr_pg_wait_ready
    else
        mr_pg_wait_ready
    fi

    # Group roles for pg_hba's +role rules. NOLOGIN: they're only groups.
    # shellcheck disable=SC2119  # no extra psql args: the SQL comes on stdin
    mr_psql_admin <<'SQL'
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['mr_auth_tls','mr_auth_trust','mr_auth_password','mr_auth_md5','mr_auth_scram'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$$;
SQL
    # millrace's least-privileged role: LOGIN and REPLICATION only, with a password (scram).
    mr_psql_admin <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$MR_SERVICE_USER') THEN
    CREATE ROLE $MR_SERVICE_USER LOGIN;
  END IF;
END
\$\$;
ALTER ROLE $MR_SERVICE_USER LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$MR_SERVICE_PASSWORD';
GRANT mr_auth_scram TO $MR_SERVICE_USER;
SQL
}

# A second, minimal cluster left at the default wal_level=replica: `millrace setup` must refuse
# it, and the test that proves so needs a server that is not logical.
MR_PG_REPLICA_PORT=${MILLRACE_DEV_PG_REPLICA_PORT:-55433}
setup_replica_postgres() {
    local data=$MR_PG_BASE/replica-data log=$MR_PG_BASE/log/replica.log
    if [[ ! -f $data/PG_VERSION ]]; then
        mr_log "initdb $data (wal_level=replica, for setup refusal tests)"
        mr_as_pg "$MR_PG_BIN/initdb" -D "$data" --auth=trust -U postgres --encoding=UTF8 \
            --locale=C --no-sync --no-instructions >/dev/null
    fi
    mr_write_if_changed "$data/millrace.conf" "port = $MR_PG_REPLICA_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = $(mr_conf_quote "$MR_PG_SOCKET_DIR")
wal_level = replica
shared_buffers = 16MB
max_connections = 20
fsync = off" 0600 || true
    if ! grep -q "^include_if_exists = 'millrace.conf'" "$data/postgresql.conf"; then
        echo "include_if_exists = 'millrace.conf'" >>"$data/postgresql.conf"
    fi
    if ! mr_as_pg "$MR_PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        mr_log "starting the wal_level=replica PostgreSQL on 127.0.0.1:$MR_PG_REPLICA_PORT"
        if ! mr_as_pg "$MR_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 120 start >/dev/null; then
            tail -n 25 -- "$log" >&2 || true
            mr_die "could not start the wal_level=replica PostgreSQL (port $MR_PG_REPLICA_PORT)"
        fi
    fi
}

# The demo legacy ERP's database: a MariaDB of our own (the system's, if any, is never used nor
# touched), run as the same unprivileged user as PostgreSQL, with its state next to the
# cluster's (.dev/mariadb, or /var/tmp/millrace-<hash>/mariadb; see prepare_state_dir).
setup_mariadb() {
    ensure_pg_os_user
    prepare_state_dir mariadb
    mr_maria_resolve_paths
    local sock_dir
    sock_dir=$(dirname -- "$MR_MARIA_SOCKET")
    mkdir -p "$MR_MARIA_BASE/log" "$MR_MARIA_BASE/run" "$sock_dir"
    if [[ $EUID -eq 0 ]]; then
        chown "$MR_PG_OS_USER:" "$MR_MARIA_BASE" "$MR_MARIA_BASE/log" "$MR_MARIA_BASE/run" "$sock_dir"
    fi

    if [[ ! -d $MR_MARIA_DATA/mysql ]]; then
        if [[ -d $MR_MARIA_DATA ]] && [[ -n "$(ls -A -- "$MR_MARIA_DATA")" ]]; then
            mr_die "$MR_MARIA_DATA exists but is not a MariaDB data dir; remove it and re-run"
        fi
        mr_maria_install_db
    fi

    # Every server setting is in this file (the server reads no other, see lib.sh). Compared
    # and rewritten wholesale on every run, like PostgreSQL's millrace.conf.
    local conf
    conf=$(
        cat <<EOF
# Generated by scripts/dev-env.sh on every run; edit the script, not this file.
# Control: scripts/mariadb-ctl.sh start|stop|restart|status
# Client:  mariadb --defaults-file=$MR_MARIA_CNF     (root over the socket)
[mariadbd]
datadir = $MR_MARIA_DATA
port = $MR_MARIA_PORT
bind-address = 127.0.0.1
socket = $MR_MARIA_SOCKET
pid-file = $MR_MARIA_PID
log-error = $MR_MARIA_LOG
# Accounts are by IP ('millrace'@'127.0.0.1'); no DNS lookup on every connection.
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
max_connections = 300
innodb_buffer_pool_size = 256M
# DEV ONLY: a commit writes the redo log but fsyncs it about once a second, so a crash of the
# machine (not of mariadbd) can lose the last second of commits. Never copy to production.
innodb_flush_log_at_trx_commit = 2
# sql_mode and transaction isolation (REPEATABLE-READ) stay at the server's defaults: that is
# what a customer's server runs with.

[client]
port = $MR_MARIA_PORT
socket = $MR_MARIA_SOCKET
user = root
EOF
    )
    local changed=0
    if mr_write_if_changed "$MR_MARIA_CNF" "$conf" 0644; then
        changed=1
    fi

    if ! mr_maria_is_running; then
        mr_log "starting MariaDB on 127.0.0.1:$MR_MARIA_PORT"
        mr_maria_start
    elif [[ $changed -eq 1 ]]; then
        mr_log "MariaDB configuration changed: restarting it"
        mr_maria_restart
    else
        mr_maria_wait_ready
    fi

    # The tests' administrative account, under both names a local client arrives with
    # (skip-name-resolve: TCP clients are '127.0.0.1'; socket clients are 'localhost'). ALTER
    # resets the password should someone have changed it. Anonymous accounts would shadow
    # real ones for some clients: --skip-test-db creates none, and we make sure.
    # shellcheck disable=SC2119  # no extra client args: the SQL comes on stdin
    mr_maria_admin <<SQL
CREATE USER IF NOT EXISTS '$MR_MARIA_USER'@'127.0.0.1' IDENTIFIED BY '$MR_MARIA_PASSWORD';
CREATE USER IF NOT EXISTS '$MR_MARIA_USER'@'localhost' IDENTIFIED BY '$MR_MARIA_PASSWORD';
ALTER USER '$MR_MARIA_USER'@'127.0.0.1' IDENTIFIED BY '$MR_MARIA_PASSWORD';
ALTER USER '$MR_MARIA_USER'@'localhost' IDENTIFIED BY '$MR_MARIA_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MR_MARIA_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$MR_MARIA_USER'@'localhost' WITH GRANT OPTION;
DROP USER IF EXISTS ''@'localhost', ''@'127.0.0.1';
CREATE USER IF NOT EXISTS '$MR_SERVICE_USER'@'%' IDENTIFIED BY '$MR_SERVICE_PASSWORD';
ALTER USER '$MR_SERVICE_USER'@'%' IDENTIFIED BY '$MR_SERVICE_PASSWORD';
SQL
    # root: empty password, over the socket only ('root'@'localhost', from
    # mariadb-install-db's "normal" method). It also made password-less root accounts for TCP
    # and for the machine's host name (which skip-name-resolve ignores, with a warning on
    # every start); drop those, whatever the host name was.
    # shellcheck disable=SC2119
    mr_maria_admin -e "SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';')
        FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost'" | mr_maria_admin
}

# A new data directory with the system tables. Built in data.new and renamed when complete,
# so an interrupted run never leaves a half-made data dir that later runs would take for done.
mr_maria_install_db() {
    local tmp=$MR_MARIA_BASE/data.new log=$MR_MARIA_BASE/log/install-db.log
    local args=(--no-defaults --auth-root-authentication-method=normal --skip-test-db
        --skip-name-resolve --datadir="$tmp")
    # --user is root-only; mariadbd then drops to that user and the files are that user's.
    if [[ $EUID -eq 0 ]]; then
        args+=(--user="$MR_PG_OS_USER")
    fi
    rm -rf -- "$tmp"
    mr_log "mariadb-install-db $MR_MARIA_DATA"
    if ! (cd / && mariadb-install-db "${args[@]}") >"$log" 2>&1; then
        tail -n 25 -- "$log" >&2 || true
        mr_die "mariadb-install-db failed (full output in $log)"
    fi
    # As root, mariadb-install-db leaves a few files (mysql_upgrade_info) owned by root.
    if [[ $EUID -eq 0 ]]; then
        chown -R "$MR_PG_OS_USER:" "$tmp"
    fi
    rm -rf -- "$MR_MARIA_DATA"
    mv -- "$tmp" "$MR_MARIA_DATA"
}

# Make sure unixODBC knows driver $1 (the name in /etc/odbcinst.ini) with library $3 of
# package $2 and the settings KEY=VALUE in $4...; register or correct it when not. Debian's
# odbc-mariadb and odbc-postgresql register "MariaDB Unicode" and "PostgreSQL Unicode"
# themselves; this covers machines where that didn't happen, was undone, or points to a
# library that is gone, and applies our settings.
mr_odbc_ensure_driver() {
    local name=$1 pkg=$2 lib=$3
    shift 3
    local section driver kv ok=1
    # odbcinst exits non-zero for an unknown driver: that is an answer here, not a failure.
    section=$(odbcinst -q -d -n "$name" 2>/dev/null) || section=""
    driver=$(sed -n 's/^Driver[[:space:]]*=[[:space:]]*//p' <<<"$section" | head -n 1)
    if [[ -z $driver || ($driver == /* && ! -e $driver) ]]; then
        ok=0
        driver=$(dpkg -L "$pkg" 2>/dev/null | grep -E "/$lib\$" | head -n 1) || true
        [[ -n $driver && -e $driver ]] ||
            mr_die "package $pkg has no $lib; cannot register ODBC driver \"$name\""
    fi
    for kv in "$@"; do
        grep -qxF -- "$kv" <<<"$section" || ok=0
    done
    [[ $ok -eq 0 ]] || return 0

    mr_need_root "registering ODBC driver \"$name\" in /etc/odbcinst.ini"
    mr_log "registering ODBC driver \"$name\" ($driver${*:+; $*})"
    # `odbcinst -i` replaces the whole section: carry over the keys it has (Description,
    # Setup, ...) except those we set; it maintains UsageCount itself.
    local keys="UsageCount|Driver" tmp
    for kv in "$@"; do
        keys+="|${kv%%=*}"
    done
    tmp=$(mktemp -d)
    MR_TMP_DIRS+=("$tmp")
    {
        printf '[%s]\n' "$name"
        grep -vE "^(\[|($keys)[[:space:]]*=)" <<<"$section" || true
        if ! grep -q '^Description' <<<"$section"; then
            printf 'Description=%s (registered by millrace scripts/dev-env.sh)\n' "$name"
        fi
        printf 'Driver=%s\n' "$driver"
        if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; fi
    } >"$tmp/driver.ini"
    chmod 0644 "$tmp/driver.ini"
    mr_as_root odbcinst -i -d -f "$tmp/driver.ini" >/dev/null
    rm -rf -- "$tmp"
}

# Connect through ODBC once with connection string $2, so that a broken driver or account
# shows up here, by name, rather than as a puzzling test failure. isql -b exits non-zero
# when it cannot connect.
mr_odbc_check() {
    local what=$1 conn=$2 out
    if ! out=$(echo "SELECT 1" | isql -b -k "$conn" 2>&1); then
        printf '%s\n' "$out" >&2
        mr_die "cannot connect to $what through ODBC: isql -k \"$conn\""
    fi
}

setup_odbc() {
    mr_odbc_ensure_driver "$MR_ODBC_MARIADB_DRIVER" odbc-mariadb libmaodbc.so
    # Debian registers psqlODBC with CommLog=1, which writes a /tmp/psqlodbc_*.log for every
    # connection (a connection string's CommLog=0 doesn't stop it): thousands over a test run.
    mr_odbc_ensure_driver "$MR_ODBC_PG_DRIVER" odbc-postgresql psqlodbcw.so CommLog=0 Debug=0
    mr_odbc_check "the dev MariaDB" "$(mr_maria_odbc_conn)"
    mr_odbc_check "the dev PostgreSQL" "$(mr_pg_odbc_conn)"
}

# The ODBC connection strings .dev/env exports (and setup_odbc tries): the tests' MariaDB
# account, and PostgreSQL's superuser (trust over TCP, see pg_hba above).
mr_maria_odbc_conn() {
    printf 'Driver={%s};Server=127.0.0.1;Port=%s;User=%s;Password=%s;' \
        "$MR_ODBC_MARIADB_DRIVER" "$MR_MARIA_PORT" "$MR_MARIA_USER" "$MR_MARIA_PASSWORD"
}
mr_pg_odbc_conn() {
    printf 'Driver={%s};Server=127.0.0.1;Port=%s;Database=postgres;Uid=postgres;' \
        "$MR_ODBC_PG_DRIVER" "$MR_PG_PORT"
}

# Only with MILLRACE_DEV_BENCH=1 (CI doesn't benchmark): pyodbc, which bench/ compares millrace
# against, for whatever python3 is on PATH (on a dev box possibly a pyenv one, not Debian's).
install_bench_tools() {
    if python3 -c 'import pyodbc' >/dev/null 2>&1; then
        return 0
    fi
    local prefix
    prefix=$(python3 -c 'import sys; print(sys.prefix)')
    if [[ $prefix == /usr ]]; then
        # Debian's own python3: PEP 668 keeps pip out of it, and Debian packages pyodbc.
        mr_need_root "installing python3-pyodbc"
        mr_log "installing python3-pyodbc and python3-pip (for bench/)"
        mr_apt_install python3-pyodbc python3-pip
    else
        # A pyenv/venv python: pip into it. pyodbc's wheel links the system's libodbc
        # (unixodbc, installed above); without a wheel pip builds it against unixodbc-dev.
        if ! python3 -m pip --version >/dev/null 2>&1; then
            python3 -m ensurepip --upgrade >/dev/null
        fi
        mr_log "installing pyodbc with pip into $prefix (for bench/)"
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pyodbc
    fi
    python3 -c 'import pyodbc' || mr_die "pyodbc installed, but python3 cannot import it"
}

# The tests' Python readers (Parquet through pyarrow and DuckDB, PostgreSQL through psycopg) in a
# virtualenv of their own, .dev/py, made from whatever python3 is on PATH (Debian's in CI). Pinned,
# with wheels for CPython 3.11 on x86_64 (manylinux), so nothing is compiled. A marker file in the
# venv holds the requirement list and the interpreter it was installed for: when it matches, a
# re-run skips pip entirely.
MR_PY_DIR=$MR_DEV_DIR/py
MR_PY_REQUIREMENTS=(
    "pyarrow==26.0.1"
    "duckdb==2.0.1"
    "psycopg[binary]==3.3.9"
    # A JetStream client, for scripts/nats_smoke.py and for tests that read the published
    # change stream the way another consumer would.
    "nats-py==2.16.0"
)
MR_PY_MARKER=$MR_PY_DIR/millrace-requirements.txt
setup_python() {
    local py=$MR_PY_DIR/bin/python want version
    # The venv's interpreter must still run (a python3 upgraded or removed under it breaks it).
    version=$("$py" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || version=""
    want=$(printf '%s\n' "python $version" "${MR_PY_REQUIREMENTS[@]}")
    if [[ -n $version && -f $MR_PY_MARKER ]] && [[ "$(cat -- "$MR_PY_MARKER")" == "$want" ]]; then
        return 0
    fi

    # Debian's python3 ships venv without ensurepip (that is in python3-venv): install it.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        [[ "$(python3 -c 'import sys; print(sys.prefix)')" == /usr ]] ||
            mr_die "$(command -v python3) has no venv/ensurepip module, and is not Debian's python3: install them for it"
        mr_need_root "installing python3-venv"
        mr_log "installing python3-venv (for the virtualenv in $MR_PY_DIR)"
        mr_apt_install python3-venv
        python3 -c 'import venv, ensurepip' || mr_die "python3-venv installed, but python3 still lacks venv/ensurepip"
    fi
    if [[ -z $version ]] || ! "$py" -m pip --version >/dev/null 2>&1; then
        # Missing, half-made (a venv created before ensurepip was there has no pip), or broken.
        mr_log "creating the Python virtualenv $MR_PY_DIR ($(python3 --version 2>&1))"
        rm -rf -- "$MR_PY_DIR"
        python3 -m venv "$MR_PY_DIR" || mr_die "python3 -m venv $MR_PY_DIR failed"
        version=$("$py" -c 'import sys; print(sys.version.split()[0])')
        want=$(printf '%s\n' "python $version" "${MR_PY_REQUIREMENTS[@]}")
    fi
    rm -f -- "$MR_PY_MARKER"
    mr_log "installing ${MR_PY_REQUIREMENTS[*]} into $MR_PY_DIR (pip)"
    "$py" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${MR_PY_REQUIREMENTS[@]}" ||
        mr_die "pip install into $MR_PY_DIR failed"
    "$py" -c 'import pyarrow.parquet, duckdb, psycopg, nats.js' ||
        mr_die "installed, but $py cannot import pyarrow.parquet, duckdb, psycopg and nats.js"
    printf '%s\n' "$want" >"$MR_PY_MARKER"
}

# ---- A real Odoo 17 server (optional) -----------------------------------------------------
# For the tests that drive a real Odoo over JSON-RPC: Odoo 17 Community from a tarball (cut
# down to what a manufacturing database needs), a virtualenv for it, a template database with
# demo data that each test copies (CREATE DATABASE t TEMPLATE millrace_odoo_tmpl, about a
# second), and one server on 127.0.0.1:58069 serving every database. Like PostgreSQL, it is a
# test dependency that never goes into the repository: a clone on its own has no tarball, and
# then none of this happens, .dev/env has no MILLRACE_TEST_ODOO_*, and those tests say SKIPPED.
MR_ODOO_TARBALL=${MILLRACE_ODOO_SERVER_TARBALL:-$MR_ROOT/../shared/odoo17/odoo17-server.tar.xz}
# What the template has installed (with their dependencies); a change rebuilds it.
MR_ODOO_MODULES=base,product,uom,stock,mrp,sale_management,sale_stock,purchase,purchase_stock,mrp_account
# What pip needs to build Odoo's requirements (psycopg2 and python-ldap from source; lxml,
# Pillow), same "package:probe" form as MR_PACKAGES.
MR_ODOO_PACKAGES=(
    "python3-venv:"
    "python3-dev:/usr/bin/python3-config"
    "build-essential:"
    "libpq-dev:/usr/include/postgresql/libpq-fe.h"
    "libldap2-dev:/usr/include/ldap.h"
    "libsasl2-dev:/usr/include/sasl/sasl.h"
    "libxml2-dev:/usr/include/libxml2/libxml/xmlversion.h"
    "libxslt1-dev:/usr/include/libxslt/xslt.h"
    "libjpeg-dev:/usr/include/jpeglib.h"
    "zlib1g-dev:/usr/include/zlib.h"
)
# Beyond requirements.txt: Odoo 17 imports pkg_resources, which setuptools 81 dropped.
MR_ODOO_PIP_EXTRA=("setuptools<81")
MR_ODOO_READY=0   # set once the server answers; write_env then exports MILLRACE_TEST_ODOO_*
MR_ODOO_RESTART=0 # set when the code, venv or configuration under a running server changed

setup_odoo() {
    if [[ ! -f $MR_ODOO_TARBALL ]]; then
        mr_log "Odoo server tarball not found ($MR_ODOO_TARBALL; set MILLRACE_ODOO_SERVER_TARBALL): tests that need a real Odoo will be SKIPPED"
        return 0
    fi
    local missing=() old_umask
    mapfile -t missing < <(mr_missing_packages "${MR_ODOO_PACKAGES[@]}")
    if [[ ${#missing[@]} -gt 0 ]]; then
        mr_need_root "installing packages for Odoo (${missing[*]})"
        mr_log "installing missing packages for Odoo: ${missing[*]}"
        mr_apt_install "${missing[@]}"
        mr_verify_packages "${MR_ODOO_PACKAGES[@]}"
    fi

    ensure_pg_os_user
    prepare_state_dir odoo
    mr_odoo_resolve_paths
    # The server's user reads the code and the venv (made by whoever runs this) and owns what
    # it writes: the data dir, the log, the pid file.
    old_umask=$(umask)
    umask 022
    mkdir -p "$MR_ODOO_DATA" "$MR_ODOO_BASE/log" "$MR_ODOO_BASE/run"
    if [[ $EUID -eq 0 ]]; then
        chown "$MR_PG_OS_USER:" "$MR_ODOO_DATA" "$MR_ODOO_BASE/log" "$MR_ODOO_BASE/run"
    fi
    odoo_unpack
    odoo_venv
    odoo_write_conf
    umask "$old_umask"
    odoo_template

    if ! mr_odoo_is_running; then
        local t=$SECONDS
        mr_log "starting Odoo on 127.0.0.1:$MR_ODOO_PORT (log $MR_ODOO_LOG)"
        mr_odoo_start
        mr_log "Odoo answers JSON-RPC ($((SECONDS - t))s)"
    elif [[ $MR_ODOO_RESTART -eq 1 ]]; then
        mr_log "Odoo's code or configuration changed: restarting it"
        mr_odoo_restart
    else
        mr_odoo_wait_ready
    fi
    MR_ODOO_READY=1
}

# Unpack the tarball into $MR_ODOO_SERVER (its top directory stripped), unless what is there
# came from the same tarball. server.stamp records the tarball's path, size and mtime (cheap to
# compare on every run) and its sha256 (computed only when those differ, and recorded in the
# template's marker). Unpacked next to the old tree and swapped in when complete.
odoo_unpack() {
    local marker=$MR_ODOO_BASE/server.stamp stamp sha="" old_stamp="" old_sha="" t=$SECONDS
    stamp="$MR_ODOO_TARBALL $(stat -L -c '%s %Y' -- "$MR_ODOO_TARBALL")"
    if [[ -f $MR_ODOO_SERVER/odoo-bin && -f $marker ]]; then
        { read -r old_stamp && read -r old_sha; } <"$marker" || true
        if [[ $old_stamp == "$stamp" && -n $old_sha ]]; then
            MR_ODOO_SERVER_SHA=$old_sha
            return 0
        fi
        sha=$(sha256sum <"$MR_ODOO_TARBALL" | cut -c1-64)
        if [[ $sha == "$old_sha" ]]; then # touched or copied: same content
            printf '%s\n' "$stamp" "$sha" >"$marker"
            MR_ODOO_SERVER_SHA=$sha
            return 0
        fi
    fi
    [[ -n $sha ]] || sha=$(sha256sum <"$MR_ODOO_TARBALL" | cut -c1-64)

    mr_log "unpacking $MR_ODOO_TARBALL into $MR_ODOO_SERVER"
    mr_odoo_stop # never swap the code under a running server
    local tmp=$MR_ODOO_BASE/server.new
    rm -rf -- "$tmp"
    mkdir -p "$tmp"
    tar -xJf "$MR_ODOO_TARBALL" -C "$tmp" --strip-components=1 --no-same-owner ||
        mr_die "could not unpack $MR_ODOO_TARBALL"
    [[ -f $tmp/odoo-bin && -f $tmp/requirements.txt && -d $tmp/odoo/addons/base ]] ||
        mr_die "$MR_ODOO_TARBALL is not an Odoo server tree (no odoo-bin, requirements.txt, odoo/addons/base in its top directory)"
    # The server's user writes the bytecode caches next to the sources on first import.
    if [[ $EUID -eq 0 ]]; then
        chown -R "$MR_PG_OS_USER:" "$tmp"
    fi
    rm -f -- "$marker"
    rm -rf -- "$MR_ODOO_SERVER"
    mv -- "$tmp" "$MR_ODOO_SERVER"
    printf '%s\n' "$stamp" "$sha" >"$marker"
    MR_ODOO_SERVER_SHA=$sha
    MR_ODOO_RESTART=1
    mr_log "unpacked Odoo ($((SECONDS - t))s)"
}

# Odoo's virtualenv, on Debian's Python 3.11 (/usr/bin/python3: the one requirements.txt's pins
# and the -dev packages above are for; on a dev box `python3` may be a pyenv one). As in
# setup_python, a marker holds the interpreter's version and the requirements it was installed
# with: when it matches, a re-run skips pip.
odoo_venv() {
    local py=$MR_ODOO_PY marker=$MR_ODOO_VENV/millrace-requirements.txt base=/usr/bin/python3
    local version want reqs t=$SECONDS
    if [[ ! -x $base ]]; then
        base=$(command -v python3) || mr_die "no python3 for Odoo's virtualenv"
    fi
    reqs=$(<"$MR_ODOO_SERVER/requirements.txt")
    version=$("$py" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null) || version=""
    want=$(printf '%s\n' "python $version" "${MR_ODOO_PIP_EXTRA[@]}" "$reqs")
    if [[ -n $version && -f $marker ]] && [[ "$(<"$marker")" == "$want" ]]; then
        return 0
    fi

    "$base" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
        mr_die "$base has no venv/ensurepip module (Debian: python3-venv), needed for Odoo's virtualenv"
    if [[ -z $version ]] || ! "$py" -m pip --version >/dev/null 2>&1; then
        mr_log "creating Odoo's virtualenv $MR_ODOO_VENV ($("$base" --version 2>&1), $base)"
        rm -rf -- "$MR_ODOO_VENV"
        "$base" -m venv "$MR_ODOO_VENV" || mr_die "$base -m venv $MR_ODOO_VENV failed"
        version=$("$py" -c 'import sys; print(sys.version.split()[0])')
        want=$(printf '%s\n' "python $version" "${MR_ODOO_PIP_EXTRA[@]}" "$reqs")
    fi
    rm -f -- "$marker"
    mr_log "installing Odoo's requirements into $MR_ODOO_VENV (pip; psycopg2 and python-ldap build from source, a minute or two)"
    "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        -r "$MR_ODOO_SERVER/requirements.txt" "${MR_ODOO_PIP_EXTRA[@]}" ||
        mr_die "pip install of Odoo's requirements into $MR_ODOO_VENV failed"
    "$py" -c 'import psycopg2, ldap, lxml, PIL, werkzeug, pkg_resources' ||
        mr_die "installed, but $py cannot import Odoo's requirements"
    # pip leaves the packages it built from source (psycopg2, vobject, ...) uncompiled, and the
    # server's user cannot write into the venv: without this, every start of Odoo would compile
    # them again (and log vobject's DeprecationWarnings).
    "$py" -m compileall -q -j 0 "$MR_ODOO_VENV/lib" >/dev/null 2>&1 || true
    printf '%s\n' "$want" >"$marker"
    MR_ODOO_RESTART=1
    mr_log "Odoo's virtualenv ready ($((SECONDS - t))s)"
}

# Every server setting, in the file that both the server and the template build read.
# Compared and rewritten wholesale on every run; a change restarts the server.
odoo_write_conf() {
    local conf
    conf=$(
        cat <<CONF
; Generated by scripts/dev-env.sh on every run; edit the script, not this file.
; Control: scripts/odoo-ctl.sh start|stop|restart|status
[options]
addons_path = $MR_ODOO_SERVER/addons,$MR_ODOO_SERVER/odoo/addons
data_dir = $MR_ODOO_DATA
db_host = 127.0.0.1
db_port = $MR_PG_PORT
db_user = $MR_ODOO_PG_ROLE
db_password = $MR_ODOO_PG_PASSWORD
; Local: no TLS handshake for each of Odoo's connections.
db_sslmode = disable
; Every database but the template (see MR_ODOO_DBFILTER in scripts/lib.sh), and no database
; manager (/web/database/*, the JSON-RPC "db" service's list, create, drop...).
dbfilter = $MR_ODOO_DBFILTER
list_db = False
http_interface = 127.0.0.1
http_port = $MR_ODOO_PORT
; Threaded mode, and no cron thread: the tests drive everything explicitly, and a cron
; thread would connect to every database (holding connections that tests want gone).
workers = 0
max_cron_threads = 0
CONF
    )
    if mr_write_if_changed "$MR_ODOO_CONF" "$conf" 0644; then
        MR_ODOO_RESTART=1
    fi
}

# The PostgreSQL role Odoo connects as (pg_hba: trust from 127.0.0.1, by the `all` rule), and
# the template database. The template's completion marker is its database comment, written
# last: a template left half-made by an interrupted run (or made for other modules, or from
# another tarball) has none that matches, and is rebuilt.
odoo_template() {
    local want have
    want="millrace Odoo template; modules=$MR_ODOO_MODULES; server sha256=$MR_ODOO_SERVER_SHA"
    have=$(
        mr_psql_admin -At <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$MR_ODOO_PG_ROLE' AND rolcanlogin AND rolsuper) THEN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$MR_ODOO_PG_ROLE') THEN
      ALTER ROLE $MR_ODOO_PG_ROLE LOGIN SUPERUSER PASSWORD '$MR_ODOO_PG_PASSWORD';
    ELSE
      CREATE ROLE $MR_ODOO_PG_ROLE LOGIN SUPERUSER PASSWORD '$MR_ODOO_PG_PASSWORD';
    END IF;
  END IF;
END
\$\$;
SELECT shobj_description(oid, 'pg_database') FROM pg_database
 WHERE datname = '$MR_ODOO_TEMPLATE' AND datistemplate AND NOT datallowconn;
SQL
    )
    if [[ $have == "$want" ]]; then
        return 0
    fi
    odoo_build_template "$want"
}

# Build the template under its build name (-i, with demo data: about 2 minutes), then
#   - move every attachment into the database (ir_attachment.location = db): Odoo keeps files
#     in data_dir/filestore/<db name>, which neither a rename nor CREATE DATABASE ... TEMPLATE
#     carries along, so a copy would miss its images, and its own new attachments would pile
#     up in the data dir;
#   - check that admin/admin logs in (the demo's account, which the tests use);
#   - rename it, and make it a template that accepts no connections at all: CREATE DATABASE
#     ... TEMPLATE fails while anyone is connected to the source, and so nobody can be.
odoo_build_template() {
    local want=$1 log=$MR_ODOO_BASE/log/template-build.log t=$SECONDS out
    mr_log "building the Odoo template database $MR_ODOO_TEMPLATE (demo data; $MR_ODOO_MODULES): about 2 minutes, log in $log"
    # shellcheck disable=SC2119  # no extra psql args: the SQL comes on stdin
    mr_psql_admin <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $MR_ODOO_TEMPLATE_BUILD WITH (FORCE);
SQL
    rm -rf -- "$MR_ODOO_DATA/filestore/$MR_ODOO_TEMPLATE_BUILD"
    local odoo=("$MR_ODOO_PY" "$MR_ODOO_SERVER/odoo-bin")
    local args=(--config="$MR_ODOO_CONF" --database="$MR_ODOO_TEMPLATE_BUILD" --no-http)
    if ! mr_as_pg "${odoo[@]}" "${args[@]}" --init="$MR_ODOO_MODULES" --stop-after-init \
        >"$log" 2>&1; then
        tail -n 40 -- "$log" >&2 || true
        mr_die "building the Odoo template failed (full log in $log)"
    fi
    mr_log "modules installed with demo data ($((SECONDS - t))s); moving attachments into the database"
    if ! out=$(mr_as_pg "${odoo[@]}" shell "${args[@]}" 2>>"$log" <<'PY'
env['ir.config_parameter'].set_param('ir_attachment.location', 'db')
env['ir.attachment'].force_storage()
env.flush_all()
env.cr.execute("SELECT count(*) FROM ir_attachment WHERE store_fname IS NOT NULL")
left = env.cr.fetchone()[0]
assert left == 0, f"{left} attachments still in the filestore"
admin = env.ref('base.user_admin')
admin.password = 'admin'
env.cr.commit()
uid = env['res.users'].authenticate(env.cr.dbname, 'admin', 'admin', {'interactive': False})
assert uid == admin.id, f"admin/admin logs in as {uid}, not {admin.id}"
print("millrace-template-ok")
PY
    ) || [[ $out != *millrace-template-ok* ]]; then
        tail -n 40 -- "$log" >&2 || true
        mr_die "preparing the Odoo template failed (full log in $log)"
    fi
    rm -rf -- "$MR_ODOO_DATA/filestore/$MR_ODOO_TEMPLATE_BUILD"
    # One statement at a time (DROP DATABASE cannot run in a transaction block); the comment,
    # the completion marker, last. A template must be unmarked before it can be dropped.
    # shellcheck disable=SC2119  # no extra psql args: the SQL comes on stdin
    mr_psql_admin <<SQL
SET client_min_messages = warning;
SELECT format('ALTER DATABASE %I IS_TEMPLATE false', datname) FROM pg_database
 WHERE datname = '$MR_ODOO_TEMPLATE'
\\gexec
DROP DATABASE IF EXISTS $MR_ODOO_TEMPLATE WITH (FORCE);
ALTER DATABASE $MR_ODOO_TEMPLATE_BUILD RENAME TO $MR_ODOO_TEMPLATE;
ALTER DATABASE $MR_ODOO_TEMPLATE WITH IS_TEMPLATE true ALLOW_CONNECTIONS false;
COMMENT ON DATABASE $MR_ODOO_TEMPLATE IS '$want';
SQL
    mr_log "Odoo template $MR_ODOO_TEMPLATE ready ($((SECONDS - t))s)"
}

# playwright-core (the driver library only; it downloads no browser) for the operator page's
# browser test, which drives Debian's Chromium. Kept under .dev/node, pinned to a major version.
MR_NODE_DIR=$MR_DEV_DIR/node
setup_browser() {
    if [[ -f $MR_NODE_DIR/node_modules/playwright-core/package.json ]]; then
        return 0
    fi
    mkdir -p "$MR_NODE_DIR"
    mr_log "installing playwright-core into $MR_NODE_DIR (npm)"
    (cd "$MR_NODE_DIR" && npm install --no-audit --no-fund --silent --prefix "$MR_NODE_DIR" playwright-core@1 >/dev/null) ||
        mr_die "npm install playwright-core failed"
}

# ---- NATS JetStream: a three-node cluster -------------------------------------------------
# For publishing the canonical change stream to a durable log, and for the tests that kill and
# restart a node (the stream's leader, say) under it. Three nodes of Debian's nats-server, one
# cluster (millrace-dev) with JetStream on every node, each with its own ports and directory
# .dev/nats/nN (nats.conf, store/, log/, run/); the machine's own NATS (4222), if any, is never
# used nor touched. Like MariaDB, run as the servers' OS user. Optional in this sense: when it
# won't start, the rest of the environment is still set up and .dev/env has no
# MILLRACE_TEST_NATS_*, so those tests say SKIPPED.
MR_NATS_READY=0 # set once the cluster is ready; write_env then exports MILLRACE_TEST_NATS_*

# Node $1's nats.conf. Every setting is here: the server is started with --config and nothing
# else. Ports are on 127.0.0.1 only, without auth or TLS (dev only).
mr_nats_node_conf() {
    local n=$1 m routes="" dir
    dir=$(mr_nats_dir "$n")
    for m in "${MR_NATS_NODES[@]}"; do
        [[ $m == "$n" ]] || routes+="${routes:+, }nats-route://127.0.0.1:$((MR_NATS_CLUSTER_PORT + m - 1))"
    done
    # The `listen:` and `http:` lines' form is what mr_nats_port (lib.sh) reads back.
    cat <<EOF
# Generated by scripts/dev-env.sh on every run; edit the script, not this file.
# Control: scripts/nats-ctl.sh start|stop|restart|status|kill [$n]
server_name: n$n
listen: 127.0.0.1:$((MR_NATS_PORT + n - 1))
http: 127.0.0.1:$((MR_NATS_MONITOR_PORT + n - 1))
jetstream {
    store_dir: "$dir/store"
    max_memory_store: 512MB
    max_file_store: 4GB
}
cluster {
    name: $MR_NATS_CLUSTER_NAME
    listen: 127.0.0.1:$((MR_NATS_CLUSTER_PORT + n - 1))
    routes: [$routes]
}
EOF
}

setup_nats() {
    ensure_pg_os_user
    prepare_state_dir nats
    mr_nats_resolve_paths
    local n dir changed=0 ctl=$MR_SCRIPTS_DIR/nats-ctl.sh t=$SECONDS
    for n in "${MR_NATS_NODES[@]}"; do
        dir=$(mr_nats_dir "$n")
        mkdir -p "$dir" "$dir/store" "$dir/log" "$dir/run"
        if [[ $EUID -eq 0 ]]; then
            chown "$MR_PG_OS_USER:" "$dir" "$dir/store" "$dir/log" "$dir/run"
        fi
        if mr_write_if_changed "$(mr_nats_conf "$n")" "$(mr_nats_node_conf "$n")" 0644; then
            changed=1
        fi
    done
    # A change (the ports, say) is in every node's routes: restart the whole cluster.
    if [[ $changed -eq 1 ]] && [[ -n "$(mr_nats_running_monitors)" ]]; then
        mr_log "NATS configuration changed: stopping the cluster to restart it"
        "$ctl" stop || mr_log "ERROR: could not stop the NATS cluster"
    fi
    if [[ -z "$(mr_nats_running_monitors)" ]]; then
        mr_log "starting the NATS JetStream cluster: clients on 127.0.0.1:$(mr_nats_urls | sed 's|nats://127.0.0.1:||g')"
    fi
    # A process of its own, with its own `set -e`: whatever goes wrong in it, we go on.
    if "$ctl" start; then
        MR_NATS_READY=1
        if [[ $((SECONDS - t)) -gt 1 ]]; then
            mr_log "NATS cluster ready ($((SECONDS - t))s)"
        fi
    else
        mr_log "ERROR: the NATS JetStream cluster did not start (logs in $MR_NATS_BASE/n*/log; try scripts/nats-ctl.sh start): going on without it; tests that need NATS will be SKIPPED"
    fi
}

write_env() {
    local tmp=$MR_ENV_FILE.tmp
    {
        echo "# Generated by scripts/dev-env.sh on every run; source it before running tests."
        printf 'export %s=%q\n' \
            MILLRACE_TEST_PG_URL "postgres://postgres@127.0.0.1:$MR_PG_PORT/postgres" \
            MILLRACE_TEST_PG_PORT "$MR_PG_PORT" \
            MILLRACE_TEST_PG_CA "$MR_TLS_DIR/ca.crt" \
            MILLRACE_TEST_PG_OTHER_CA "$MR_TLS_DIR/other-ca.crt" \
            MILLRACE_TEST_PG_BIN "$MR_PG_BIN" \
            MILLRACE_TEST_PG_DATA "$MR_PG_DATA" \
            MILLRACE_TEST_PG_SOCKET_DIR "$MR_PG_SOCKET_DIR" \
            MILLRACE_TEST_PG_CTL "$MR_SCRIPTS_DIR/pg-ctl.sh" \
            MILLRACE_TEST_PG_REPLICA_URL "postgres://postgres@127.0.0.1:$MR_PG_REPLICA_PORT/postgres" \
            MILLRACE_TEST_PG_ODBC "$(mr_pg_odbc_conn)" \
            MILLRACE_TEST_ODBC "$(mr_maria_odbc_conn)" \
            MILLRACE_TEST_MARIADB_URL "mysql://$MR_MARIA_USER:$MR_MARIA_PASSWORD@127.0.0.1:$MR_MARIA_PORT" \
            MILLRACE_TEST_MARIADB_PORT "$MR_MARIA_PORT" \
            MILLRACE_TEST_SERVICE_USER "$MR_SERVICE_USER" \
            MILLRACE_TEST_SERVICE_PASSWORD "$MR_SERVICE_PASSWORD" \
            MILLRACE_TEST_SERVICE_ODBC "Driver={$MR_ODBC_MARIADB_DRIVER};Server=127.0.0.1;Port=$MR_MARIA_PORT;User=$MR_SERVICE_USER;" \
            MILLRACE_TEST_MARIADB_SOCKET "$MR_MARIA_SOCKET" \
            MILLRACE_TEST_MARIADB_CTL "$MR_SCRIPTS_DIR/mariadb-ctl.sh" \
            MILLRACE_TEST_CHROMIUM /usr/bin/chromium \
            MILLRACE_TEST_PLAYWRIGHT "$MR_NODE_DIR/node_modules/playwright-core" \
            MILLRACE_PYTHON "$MR_PY_DIR/bin/python"
        # Only with a real Odoo (see setup_odoo); the tests that need one skip without these.
        # The tests copy the template (CREATE DATABASE ... TEMPLATE, over the PG URL) and talk
        # to the server, which serves every database, over JSON-RPC.
        if [[ $MR_ODOO_READY -eq 1 ]]; then
            printf 'export %s=%q\n' \
                MILLRACE_TEST_ODOO_RPC "http://127.0.0.1:$MR_ODOO_PORT" \
                MILLRACE_TEST_ODOO_PG_URL "postgres://$MR_ODOO_PG_ROLE:$MR_ODOO_PG_PASSWORD@127.0.0.1:$MR_PG_PORT/postgres" \
                MILLRACE_TEST_ODOO_TEMPLATE "$MR_ODOO_TEMPLATE" \
                MILLRACE_TEST_ODOO_LOGIN admin \
                MILLRACE_TEST_ODOO_PASSWORD admin \
                MILLRACE_TEST_ODOO_CTL "$MR_SCRIPTS_DIR/odoo-ctl.sh"
        fi
        # Only with a ready NATS cluster (see setup_nats): nodes n1, n2, n3 in this order in
        # each list, which is also the NODE argument of the ctl script.
        if [[ $MR_NATS_READY -eq 1 ]]; then
            printf 'export %s=%q\n' \
                MILLRACE_TEST_NATS_URLS "$(mr_nats_urls)" \
                MILLRACE_TEST_NATS_MONITOR "$(mr_nats_monitor_urls)" \
                MILLRACE_TEST_NATS_CTL "$MR_SCRIPTS_DIR/nats-ctl.sh"
        fi
    } >"$tmp"
    mv -f -- "$tmp" "$MR_ENV_FILE"
}

main() {
    local started=$SECONDS
    install_packages
    setup_tls
    setup_postgres
    setup_replica_postgres
    setup_mariadb
    setup_odbc
    setup_browser
    setup_python
    setup_odoo
    setup_nats
    if [[ ${MILLRACE_DEV_BENCH:-0} == 1 ]]; then
        install_bench_tools
    fi
    write_env
    echo "millrace dev env ready in $((SECONDS - started))s: PostgreSQL 15 on 127.0.0.1:$MR_PG_PORT (data $MR_PG_DATA, log $MR_PG_LOG), MariaDB on 127.0.0.1:$MR_MARIA_PORT (data $MR_MARIA_DATA, log $MR_MARIA_LOG); source $MR_ENV_FILE"
    if [[ $MR_ODOO_READY -eq 1 ]]; then
        echo "Odoo 17 on http://127.0.0.1:$MR_ODOO_PORT (log $MR_ODOO_LOG), template database $MR_ODOO_TEMPLATE"
    fi
    if [[ $MR_NATS_READY -eq 1 ]]; then
        echo "NATS JetStream cluster $MR_NATS_CLUSTER_NAME: $(mr_nats_urls) (monitoring $(mr_nats_monitor_urls); state in $MR_NATS_BASE/n1..n3)"
    else
        echo "NATS JetStream cluster NOT running: tests that need it will be SKIPPED"
    fi
}

main "$@"
