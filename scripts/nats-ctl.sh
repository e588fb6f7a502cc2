#!/usr/bin/env bash
# Controls the project-local three-node NATS JetStream cluster that scripts/dev-env.sh set up
# (nodes n1, n2, n3; config, store and log in .dev/nats/nN):
#   scripts/nats-ctl.sh {start|stop|restart|status|kill} [NODE]
# NODE is 1, 2 or 3; without it the command applies to all three. Tests call it (through
# $MILLRACE_TEST_NATS_CTL) to take a node away under a running publisher or consumer (say, the
# stream's leader) and bring it back. It only ever acts on our own servers (by pid file,
# executable and OS user), never on a system NATS. As root it acts as the unprivileged
# `millrace` user, which runs the servers.
#   start    launches the nodes that are not running; returns once every running node answers
#            /healthz (so it is current with the cluster: a restarted node has rejoined) and
#            all name the same JetStream meta leader, one of them. A single node can only be
#            ready while at least one other runs (a majority elects the leader).
#   stop     clean shutdown: SIGTERM, then waits until the process is gone (SIGKILL after 60 s).
#   kill     SIGKILL, a crash; waits until the process is gone.
#   restart  stop, then start.
#   status   one line per node and the meta leader; exits 0 when the nodes asked about are all
#            running and 3 when not, like pg-ctl.sh.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    echo "usage: $0 {start|stop|restart|status|kill} [1|2|3]" >&2
    exit 2
}

[[ $# -eq 1 || $# -eq 2 ]] || usage
nodes=("${MR_NATS_NODES[@]}")
if [[ $# -eq 2 ]]; then
    [[ $2 =~ ^[1-3]$ ]] || usage
    nodes=("$2")
fi

mr_nats_resolve_paths
for n in "${MR_NATS_NODES[@]}"; do
    [[ -r $(mr_nats_conf "$n") ]] ||
        mr_die "no NATS node n$n in $MR_NATS_BASE: run scripts/dev-env.sh first"
done

status() {
    local n rc=0 leader where
    for n in "${nodes[@]}"; do
        where="nats://127.0.0.1:$(mr_nats_port client "$n"), monitor http://127.0.0.1:$(mr_nats_port monitor "$n"), dir $(mr_nats_dir "$n")"
        if mr_nats_is_running "$n"; then
            echo "NATS n$n is running (pid $(cat -- "$(mr_nats_pid "$n")"), $where)"
        else
            echo "NATS n$n is not running ($where)"
            rc=3
        fi
    done
    local monitors=()
    mapfile -t monitors < <(mr_nats_running_monitors)
    if leader=$(mr_nats_probe "${monitors[@]}"); then
        echo "JetStream meta leader: $leader"
    else
        echo "JetStream not ready: $leader"
    fi
    return "$rc"
}

case $1 in
start) mr_nats_start "${nodes[@]}" ;;
stop) mr_nats_stop "${nodes[@]}" ;;
kill) mr_nats_kill "${nodes[@]}" ;;
restart)
    mr_nats_stop "${nodes[@]}"
    mr_nats_start "${nodes[@]}"
    ;;
status) status ;;
*) usage ;;
esac
