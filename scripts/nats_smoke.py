"""Smoke test of the dev NATS JetStream cluster (scripts/dev-env.sh, scripts/nats-ctl.sh).

    source .dev/env && "$MILLRACE_PYTHON" scripts/nats_smoke.py [URLS]

URLS is a comma-separated list of nats:// URLs, by default $MILLRACE_TEST_NATS_URLS. With
nats-py (pinned in dev-env.sh's virtualenv): creates the stream SMOKE (subjects smoke.>, three
replicas, so it needs the cluster), publishes one message twice with the same Nats-Msg-Id (the
second must come back as a duplicate, with the first's sequence), reads it back through a
durable pull consumer, checks nothing else is there, deletes the stream and prints OK. Exits
non-zero, saying why, on anything else. A SMOKE stream left over from an interrupted run is
deleted first.
"""

import asyncio
import os
import sys

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError

STREAM = "SMOKE"
SUBJECT = "smoke.hello"
DURABLE = "smoke-reader"
MSG_ID = "millrace-smoke-1"
PAYLOAD = b"hello from millrace scripts/nats_smoke.py"


def fail(why):
    print(f"nats_smoke: FAILED: {why}", file=sys.stderr)
    sys.exit(1)


async def smoke(urls):
    nc = await nats.connect(servers=urls, connect_timeout=5, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=10)
        try:
            await js.delete_stream(STREAM)
        except NotFoundError:
            pass

        info = await js.add_stream(name=STREAM, subjects=["smoke.>"], num_replicas=3)
        if info.config.num_replicas != 3:
            fail(f"stream has {info.config.num_replicas} replicas, not 3")
        try:
            # The replicas report in once the stream's group has elected its leader.
            info = await js.stream_info(STREAM)
            cluster = info.cluster
            peers = sorted(r.name for r in (cluster.replicas or [])) if cluster else []
            print(f"stream {STREAM}: 3 replicas, leader {cluster.leader if cluster else None}, "
                  f"followers {', '.join(peers) or '(none yet)'}")

            headers = {"Nats-Msg-Id": MSG_ID}
            first = await js.publish(SUBJECT, PAYLOAD, headers=headers)
            second = await js.publish(SUBJECT, PAYLOAD, headers=headers)
            print(f"publish 1: seq {first.seq}, duplicate {bool(first.duplicate)}")
            print(f"publish 2: seq {second.seq}, duplicate {bool(second.duplicate)}")
            if first.duplicate:
                fail("the first publish was taken for a duplicate")
            if not second.duplicate or second.seq != first.seq:
                fail("the second publish with the same Nats-Msg-Id was not detected as a duplicate")

            sub = await js.pull_subscribe("smoke.>", durable=DURABLE, stream=STREAM)
            msgs = await sub.fetch(1, timeout=5)
            if len(msgs) != 1 or msgs[0].data != PAYLOAD or msgs[0].subject != SUBJECT:
                fail(f"read back {[(m.subject, m.data) for m in msgs]}")
            await msgs[0].ack_sync()
            print(f"durable pull consumer {DURABLE}: read {msgs[0].subject} "
                  f"(stream seq {msgs[0].metadata.sequence.stream}) and acked it")
            try:
                extra = await sub.fetch(1, timeout=1)
                fail(f"a second message is in the stream: {[m.data for m in extra]}")
            except NatsTimeoutError:
                pass
            state = (await js.stream_info(STREAM)).state
            if state.messages != 1:
                fail(f"the stream holds {state.messages} messages, not 1")
            await sub.unsubscribe()
        finally:
            await js.delete_stream(STREAM)
        print(f"stream {STREAM} deleted")
    finally:
        await nc.close()


def main():
    urls = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MILLRACE_TEST_NATS_URLS", "")
    if not urls:
        fail("no URLs: pass them, or source .dev/env for MILLRACE_TEST_NATS_URLS")
    asyncio.run(asyncio.wait_for(smoke(urls.split(",")), timeout=60))
    print("OK")


if __name__ == "__main__":
    main()
