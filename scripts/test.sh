#!/usr/bin/env bash
# Runs millrace's whole test suite: sets up the dev environment (packages, the local
# PostgreSQL and MariaDB, ODBC), then rustfmt's check, then every test target in release mode.
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh -- --nocapture
# This is what CI runs (through .ci/run); it must work from a fresh clone as root.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

# rustup installs into ~/.cargo/bin, which non-login shells (CI) may not have on PATH.
if ! command -v cargo >/dev/null 2>&1; then
    cargo_bin=${CARGO_HOME:-${HOME:-/root}/.cargo}/bin
    if [[ -x $cargo_bin/cargo ]]; then
        PATH=$cargo_bin:$PATH
        export PATH
    fi
fi

# Run one named step; on failure say which one, loudly, and exit with its status.
step() {
    local name=$1 rc=0
    shift
    echo "==> [test.sh] $name"
    "$@" || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "==> [test.sh] FAILED: $name (exit $rc)" >&2
        exit "$rc"
    fi
}

step "dev environment (scripts/dev-env.sh)" bash scripts/dev-env.sh
# shellcheck source=/dev/null
step "load .dev/env" source .dev/env
step "cargo on PATH" command -v cargo
step "format check (cargo fmt --all -- --check)" cargo fmt --all -- --check
step "lints (cargo clippy --release --all-targets -- -D warnings)" cargo clippy --release --all-targets -- -D warnings
step "tests (cargo test --release --all-targets${*:+ $*})" cargo test --release --all-targets "$@"
echo "==> [test.sh] all steps passed"
