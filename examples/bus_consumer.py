#!/usr/bin/env python3
"""Read millrace's change stream: a starting point for another system (MES, WMS, BI).

`millrace capture` publishes every canonical change it reads from Odoo and the legacy ERP to the
NATS JetStream stream of its pipeline (docs/DESIGN.md §11; README, "Reading the change stream"):

    subject   millrace.<pipeline>.<odoo|legacy>.<entity>    e.g. millrace.plant1.odoo.production_order
    stream    MILLRACE_<PIPELINE>                            ('-' becomes '_'), unless [bus] stream says otherwise
    header    Nats-Msg-Id                                    the change's id, stable across re-publishes
    payload   one JSON object, schema 1                      entity, op, key, record, position, ours, ...

This program binds a durable pull consumer of its own (--durable) and prints every message as one
JSON line on stdout:

    {"subject": ..., "stream_sequence": 42, "time": "2026-...Z", "msg_id": "odoo:0/1A2B3C:...",
     "payload": {"schema": 1, "entity": "production_order", "op": "upsert", "key": "[\\"MO00000012\\"]", ...}}

then acknowledges it. The durable keeps its place in the stream on the server: started again
with the same --durable, it goes on after the last message it acknowledged. Where a *new* durable
starts is --from-sequence N, --from-time ISO or, by default, the oldest message the stream still
holds (its retention is [bus] max_age / max_bytes). To replay, use a new --durable name (or delete
the old one: `nats consumer rm <stream> <durable>`).

    source .dev/env   # the dev cluster; or give --urls
    "$MILLRACE_PYTHON" examples/bus_consumer.py --pipeline plant1 --durable mes \\
        --subject millrace.plant1.odoo.production_order --skip-echoes

Needs nats-py (`pip install nats-py`) and nothing else. Exits 0 after --max messages or
--idle-seconds without one (otherwise runs until Ctrl-C), 1 when the stream or the servers
cannot be reached (about ten seconds of retries; a supervisor starts it again, the durable keeps
its place), 2 on a bad argument. Diagnostics go to stderr, messages only to stdout.
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import ssl
import sys
import time

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

# The payload schema this program was written for (src/bus/message.rs SCHEMA).
SCHEMA = 1


def log(text):
    print(f"bus_consumer: {text}", file=sys.stderr, flush=True)


def arguments():
    env = os.environ.get
    p = argparse.ArgumentParser(
        description="Read a millrace pipeline's change stream with a durable consumer of your own.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Credentials and the urls follow millrace's own [bus] environment variables.",
    )
    p.add_argument("--urls", default=env("MILLRACE_BUS_URLS") or "nats://127.0.0.1:4222",
                   help="comma-separated nats:// or tls:// URLs (default: $MILLRACE_BUS_URLS)")
    p.add_argument("--pipeline", default=env("MILLRACE_BUS_PIPELINE") or "default",
                   help="[bus] pipeline (default: $MILLRACE_BUS_PIPELINE or 'default')")
    p.add_argument("--stream", help="[bus] stream, when set there (default MILLRACE_<PIPELINE>)")
    p.add_argument("--durable", required=True, help="this consumer's durable name on the server, e.g. mes")
    p.add_argument("--subject", help="a subject or wildcard within the pipeline (default millrace.<pipeline>.>)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from-sequence", type=int, metavar="N",
                       help="a new durable starts at stream sequence N")
    start.add_argument("--from-time", metavar="ISO",
                       help="a new durable starts at the first message stored at or after this time "
                            "(ISO 8601; UTC without an offset)")
    p.add_argument("--skip-echoes", action="store_true",
                   help="do not print changes with ours = true (millrace's own writes coming back)")
    p.add_argument("--max", type=int, metavar="N", help="stop after printing N messages")
    p.add_argument("--idle-seconds", type=float, metavar="S", help="stop after S seconds without a message")
    p.add_argument("--batch", type=int, default=100, help="messages fetched at a time (default 100)")
    p.add_argument("--user", default=env("MILLRACE_BUS_USER"), help="NATS user ($MILLRACE_BUS_USER)")
    p.add_argument("--password-file", default=env("MILLRACE_BUS_PASSWORD_FILE"),
                   help="file holding the user's password ($MILLRACE_BUS_PASSWORD_FILE)")
    p.add_argument("--token-file", default=env("MILLRACE_BUS_TOKEN_FILE"),
                   help="file holding a NATS token ($MILLRACE_BUS_TOKEN_FILE)")
    p.add_argument("--tls-ca", help="CA certificate (PEM) the servers are checked against; TLS is then required")
    args = p.parse_args()

    args.urls = [u.strip() for u in args.urls.split(",") if u.strip()]
    args.stream = args.stream or "MILLRACE_" + args.pipeline.upper().replace("-", "_")
    prefix = f"millrace.{args.pipeline}."
    args.subject = args.subject or prefix + ">"
    if not args.subject.startswith(prefix):
        p.error(f"--subject {args.subject} is not within the pipeline's subjects {prefix}>")
    if not args.durable or any(c in args.durable for c in ".*> \t/\\"):
        p.error(f"--durable {args.durable!r}: a consumer name has no '.', '*', '>', '/', '\\' or spaces")
    if args.user and not args.password_file:
        p.error("--user needs --password-file")
    if args.password_file and not args.user:
        p.error("--password-file needs --user")
    if args.from_time:
        try:
            t = datetime.datetime.fromisoformat(args.from_time)
        except ValueError as e:
            p.error(f"--from-time: {e}")
        args.from_time = t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)
    if args.from_sequence is not None and args.from_sequence < 1:
        p.error("--from-sequence: stream sequences start at 1")
    if args.batch < 1 or (args.max is not None and args.max < 1):
        p.error("--batch and --max must be at least 1")
    return args


def read_secret(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


async def connect(args):
    async def on_error(e):
        log(f"NATS: {type(e).__name__}: {e}")

    # About ten attempts per server, a second apart, then give up (exit 1): run it under a
    # supervisor that starts it again; the durable keeps its place meanwhile.
    options = {"servers": args.urls, "name": f"bus_consumer {args.durable}", "connect_timeout": 5,
               "max_reconnect_attempts": 10, "reconnect_time_wait": 1, "error_cb": on_error}
    if args.user:
        options["user"], options["password"] = args.user, read_secret(args.password_file)
    if args.token_file:
        options["token"] = read_secret(args.token_file)
    if args.tls_ca:
        options["tls"] = ssl.create_default_context(cafile=args.tls_ca)
    return await nats.connect(**options)


async def bind(js, args):
    """The durable consumer: made with the chosen starting point if it does not exist yet, else
    resumed where it left off (then --from-* does not apply: the server keeps its position).
    (None, None) when a durable of that name reads another subject."""
    try:
        info = await js.consumer_info(args.stream, args.durable)
        if info.config.filter_subject != args.subject:
            log(f"durable {args.durable} exists with subject {info.config.filter_subject}, not {args.subject}: "
                f"choose another --durable, or delete it (nats consumer rm {args.stream} {args.durable})")
            return None, None
        ignored = args.from_sequence is not None or args.from_time is not None
        log(f"durable {args.durable} resumes after stream sequence {info.ack_floor.stream_seq} "
            f"({info.num_pending} messages waiting)"
            + ("; --from-sequence/--from-time apply only to a new durable" if ignored else ""))
    except NotFoundError:
        config = ConsumerConfig(
            durable_name=args.durable,
            filter_subject=args.subject,
            # One confirmed acknowledgement of a batch's last message covers the whole batch.
            ack_policy=AckPolicy.ALL,
            description="a reader of millrace's change stream (examples/bus_consumer.py)",
        )
        if args.from_sequence is not None:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, args.from_sequence
            where = f"stream sequence {args.from_sequence}"
        elif args.from_time is not None:
            config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, args.from_time
            where = f"the first message at or after {args.from_time.isoformat()}"
        else:
            config.deliver_policy = DeliverPolicy.ALL
            where = "the oldest message retained"
        info = await js.add_consumer(args.stream, config=config)
        log(f"durable {args.durable} created on {args.stream} for {args.subject}, starting at {where}")
    return info, await js.pull_subscribe_bind(durable=args.durable, stream=args.stream)


class SeenIds:
    """The Nats-Msg-Ids seen in this run (the newest 100,000).

    JetStream drops a re-published message with the same Nats-Msg-Id only within the stream's
    duplicate window ([bus] duplicate_window, 10 minutes by default). A capture that was down
    longer than that (or killed between publishing a batch and saving its source position)
    publishes that batch again after the window: the stream then holds the same change twice, under
    the same id. millrace's apply recognises it; another consumer drops it by the id. A consumer
    that must not see a change twice across its own restarts keeps the ids it handled next to
    what it did with them (same database transaction) instead of in memory.
    """

    def __init__(self, limit=100_000):
        self.ids, self.limit = collections.OrderedDict(), limit

    def seen(self, msg_id):
        if msg_id in self.ids:
            return True
        self.ids[msg_id] = None
        if len(self.ids) > self.limit:
            self.ids.popitem(last=False)
        return False


def line(msg):
    """One message as a JSON object."""
    meta = msg.metadata
    try:
        payload = json.loads(msg.data)
    except ValueError:
        payload = msg.data.decode("utf-8", "replace")
    return {
        "subject": msg.subject,
        "stream_sequence": meta.sequence.stream,
        "time": meta.timestamp.isoformat().replace("+00:00", "Z"),
        "msg_id": (msg.headers or {}).get("Nats-Msg-Id"),
        "payload": payload,
    }


async def consume(args):
    try:
        nc = await connect(args)
    except Exception as e:  # the servers cannot be reached (or refused us): say so
        log(f"cannot connect to {','.join(args.urls)}: {type(e).__name__}: {e}")
        return 1
    try:
        js = nc.jetstream(timeout=10)
        try:
            await js.stream_info(args.stream)
        except NotFoundError:
            log(f"stream {args.stream} not found: has `millrace capture` run with [bus] pipeline = "
                f"\"{args.pipeline}\" on these servers?")
            return 1
        info, sub = await bind(js, args)
        if sub is None:
            return 2
        # This program's durables acknowledge by batch (AckPolicy.ALL); one made elsewhere may want
        # every message acknowledged (explicit), or none.
        policy = info.config.ack_policy
        seen, printed, duplicates, echoes = SeenIds(), 0, 0, 0
        idle_since = time.monotonic()
        while args.max is None or printed < args.max:
            # Never fetch more than may still be printed: whatever is fetched is acknowledged.
            want = args.batch if args.max is None else min(args.batch, args.max - printed)
            wait = 5.0 if args.idle_seconds is None else max(0.1, min(5.0, args.idle_seconds))
            try:
                msgs = await sub.fetch(want, timeout=wait)
            except (NatsTimeoutError, asyncio.TimeoutError):  # nats-py raises either when nothing came
                if args.idle_seconds is not None and time.monotonic() - idle_since >= args.idle_seconds:
                    break
                continue
            idle_since = time.monotonic()
            for msg in msgs:
                out = line(msg)
                payload = out["payload"]
                if out["msg_id"] and seen.seen(out["msg_id"]):
                    duplicates += 1
                elif args.skip_echoes and isinstance(payload, dict) and payload.get("ours"):
                    echoes += 1
                else:
                    if isinstance(payload, dict) and payload.get("schema") != SCHEMA:
                        log(f"stream sequence {out['stream_sequence']}: payload schema {payload.get('schema')}, "
                            f"this program reads {SCHEMA}")
                    print(json.dumps(out, ensure_ascii=False), flush=True)
                    printed += 1
                if policy == AckPolicy.EXPLICIT:
                    await msg.ack_sync(timeout=5)
            # Printed (handled) first, acknowledged after: a crash in between means those messages
            # come again (at least once), never that one is lost.
            if policy == AckPolicy.ALL and msgs:
                await msgs[-1].ack_sync(timeout=5)
        log(f"{printed} printed, {duplicates} duplicates skipped"
            + (f", {echoes} echoes skipped" if args.skip_echoes else ""))
        return 0
    finally:
        # Every acknowledgement was confirmed by the server: nothing is left to flush.
        await nc.close()


def main():
    args = arguments()
    try:
        sys.exit(asyncio.run(consume(args)))
    except nats.errors.Error as e:
        # The connection was lost for good (or the server refused a request).
        log(f"stopped: {type(e).__name__}: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        # What was printed and not acknowledged is delivered again after the consumer's ack wait.
        sys.exit(130)


if __name__ == "__main__":
    main()
