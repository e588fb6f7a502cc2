#!/usr/bin/env bash
# Sets up millrace's local development/test environment and is safe to re-run (a second run
# only checks things and takes about a second):
#   - installs the Debian packages the tests need, if missing;
#   - creates and starts a project-local PostgreSQL 15 cluster (port 55432, logical decoding,
#     TLS with a private CA, one pg_hba rule per auth method under test);
#   - writes .dev/env, which exports MILLRACE_TEST_* for the test suite.
#
# Usage: bash scripts/dev-env.sh      (or `source scripts/dev-env.sh` to also import .dev/env)
# Env:   MILLRACE_DEV_PG_PORT  port of the dev server (default 55432)
#
# Everything it creates lives in the git-ignored .dev/ (or, when the server's OS user can't
# reach the repo, /var/tmp/millrace-<hash>/ with .dev/pg symlinked to it). `rm -rf .dev` after
# `scripts/pg-ctl.sh stop` starts from scratch.

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
)

MR_TMP_DIRS=()
trap 'rm -rf -- "${MR_TMP_DIRS[@]}"' EXIT

mr_have() {
    if [[ $1 == /* ]]; then [[ -x $1 ]]; else command -v "$1" >/dev/null 2>&1; fi
}

mr_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# Run as root: directly when we are root, through sudo when that exists.
MR_SUDO=()
mr_as_root() {
    "${MR_SUDO[@]}" "$@"
}

MR_APT_UPDATED=0
mr_apt_install() {
    # A fresh machine (or Docker image) has empty package lists; update once per run.
    if [[ $MR_APT_UPDATED -eq 0 ]]; then
        mr_as_root apt-get -o DPkg::Lock::Timeout=300 update -q
        MR_APT_UPDATED=1
    fi
    mr_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

install_packages() {
    local entry pkg probe missing=()
    for entry in "${MR_PACKAGES[@]}"; do
        pkg=${entry%%:*}
        probe=${entry#*:}
        if ! mr_have "$probe" && ! mr_pkg_installed "$pkg"; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi

    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            mr_die "missing packages (${missing[*]}) and not root, no sudo: install them by hand"
        MR_SUDO=(sudo)
    fi
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

    for entry in "${MR_PACKAGES[@]}"; do
        mr_have "${entry#*:}" || mr_die "package ${entry%%:*} installed but ${entry#*:} is missing"
    done
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

# Decide where the cluster lives (see mr_pg_resolve_paths in lib.sh) and create its dirs.
prepare_pg_dirs() {
    mkdir -p "$MR_DEV_DIR"
    # Our own directory: make sure the server user may pass through it even under umask 077.
    chmod 0755 "$MR_DEV_DIR"
    if [[ ! -e $MR_DEV_DIR/pg && ! -L $MR_DEV_DIR/pg ]]; then
        if [[ $EUID -ne 0 ]] || mr_as_pg test -x "$MR_DEV_DIR" -a -r "$MR_DEV_DIR"; then
            mkdir -p "$MR_DEV_DIR/pg"
            chmod 0755 "$MR_DEV_DIR/pg"
        else
            # Don't chmod the user's parent directories (could be /root or /); use a
            # per-checkout directory outside the repo and record it as a symlink.
            local base=/var/tmp/millrace-$MR_PATH_HASH/pg
            mr_log "$MR_PG_OS_USER cannot traverse $MR_ROOT; keeping the cluster in $base"
            mkdir -p "$base"
            chmod 0755 "$(dirname -- "$base")" "$base"
            ln -s "$base" "$MR_DEV_DIR/pg"
        fi
    fi
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
max_replication_slots = 100
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
            MILLRACE_TEST_PG_REPLICA_URL "postgres://postgres@127.0.0.1:$MR_PG_REPLICA_PORT/postgres"
    } >"$tmp"
    mv -f -- "$tmp" "$MR_ENV_FILE"
}

main() {
    local started=$SECONDS
    install_packages
    setup_tls
    setup_postgres
    setup_replica_postgres
    write_env
    echo "millrace dev env ready in $((SECONDS - started))s: PostgreSQL 15 on 127.0.0.1:$MR_PG_PORT (data $MR_PG_DATA, log $MR_PG_LOG); source $MR_ENV_FILE"
}

main "$@"
