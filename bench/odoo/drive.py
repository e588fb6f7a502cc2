#!/usr/bin/env python3
"""Drives a real Odoo 17 through its ORM over JSON-RPC for bench/odoo/run.sh, and watches the
legacy ERP (MariaDB, through one long-lived `mariadb` client) for what millrace writes there.

    drive.py latency OUT_DIR   measurement 1: manufacturing orders created and confirmed at a
                               steady rate; a subset marked done once it is in the ERP; for each,
                               Odoo's commit (the RPC's return) against PROD_ORDER.LAST_UPD
    drive.py day OUT_DIR       measurement 2: a plant day as fast as the API allows, then how long
                               until the ERP holds all of it

Settings come from the environment (run.sh sets them): BENCH_ODOO_RPC, BENCH_ODOO_DB,
BENCH_ODOO_LOGIN, BENCH_ODOO_PASSWORD, BENCH_ODOO_PG_URL (the Odoo database, for psql),
BENCH_MARIA_HOST/PORT/USER/PASSWORD/DB, and for `latency` BENCH_RATE, BENCH_SECONDS,
BENCH_DONE_EVERY, BENCH_WAIT; for `day` BENCH_SETTLE_TIMEOUT.

Each mode writes OUT_DIR/<mode>.env (KEY=value lines, read by run.sh) and a per-item TSV.
Standard library only (the dev virtualenv has no `requests`): urllib for JSON-RPC, the `mariadb`
and `psql` clients as subprocesses.
"""

import math
import os
import queue
import subprocess
import sys
import threading
import time

DESK = 8  # FURN_7800 "Desk Combination": manufactured, three-line BOM, no tracking
COMPONENT = 25  # FURN_0269, one of the desk's components, bought
PARTNER = 14  # the demo's vendor and customer
STOCK = 8  # WH/Stock


def log(msg):
    print(f"[bench/odoo drive {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"drive.py: {name} is not set")
    return value


# --- Odoo's external API: /jsonrpc, service object, execute_kw ----------------------------------


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from odoo_rpc import OdooError  # noqa: E402
from odoo_rpc import Rpc as OdooRpc  # noqa: E402
from maria_client import Maria  # noqa: E402


# Odoo gives up on a transaction that lost a serialization race with another of the driver's own
# (its concurrent calls, not millrace's): such a call is repeated, and counted.
RETRIES = [0]


class Rpc(OdooRpc):
    """scripts/odoo_rpc.py's session, on the database run.sh names in the environment; a call
    that lost a serialization race is repeated."""

    def execute(self, model, method, args, kwargs=None):
        for attempt in range(5):
            try:
                return super().execute(model, method, args, kwargs)
            except OdooError as e:
                text = str(e)
                if attempt == 4 or not ("could not serialize" in text or "concurrent update" in text):
                    raise
                RETRIES[0] += 1
                time.sleep(0.2 * (attempt + 1))

    def __init__(self, login=True):
        if login:
            super().__init__(env("BENCH_ODOO_RPC"), env("BENCH_ODOO_DB"), env("BENCH_ODOO_LOGIN"), env("BENCH_ODOO_PASSWORD"))
        else:
            super().__init__(env("BENCH_ODOO_RPC"))


# --- the ERP: scripts/maria_client.py (one long-lived `mariadb` client) -----------------------


def psql(sql):
    out = subprocess.run(
        [env("BENCH_PSQL", "psql"), "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", env("BENCH_ODOO_PG_URL"), "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def order_no(mo):
    return f"MO{mo:08d}"


STATUS_OF = {"confirmed": "R", "progress": "R", "to_close": "R", "done": "C", "cancel": "X"}


def compare_orders(maria, above):
    """Odoo's manufacturing orders with ids above `above` (drafts aside: they stay in Odoo) against
    PROD_ORDER: how many match in status, quantity ordered and quantity produced, and the first
    that does not."""
    def q(v):
        return f"{float(v or 0):.4f}"
    odoo = {order_no(int(i)): (STATUS_OF.get(st, "?"), q(qty), q(done)) for i, st, qty, done in psql(
        f"SELECT id, state, product_qty, COALESCE(qty_producing, 0) FROM mrp_production WHERE id > {above} AND state <> 'draft'")}
    erp = {no.strip(): (st.strip(), q(qty), q(done)) for no, st, qty, done in maria.query(
        f"SELECT ORDER_NO, STATUS, QTY_ORDERED, QTY_COMPLETED FROM PROD_ORDER WHERE ORDER_NO > '{order_no(above)}'")}
    same = sum(1 for n, v in odoo.items() if erp.get(n) == v)
    first_bad = next((f"{n}: Odoo {'/'.join(v)}, ERP {'/'.join(erp[n]) if n in erp else 'missing'}"
                      for n, v in sorted(odoo.items()) if erp.get(n) != v), "")
    return same, len(odoo), first_bad


def as_left(intended):
    """Odoo's done orders against what the driver did to them ({id: quantity produced}): how many
    are done with that quantity, and the first that is not (a write into Odoo between the driver's
    calls would show here)."""
    if not intended:
        return 0, 0, ""
    ids = ",".join(str(i) for i in intended)
    rows = {int(i): (st, float(q or 0)) for i, st, q in psql(
        f"SELECT id, state, COALESCE(qty_producing, 0) FROM mrp_production WHERE id IN ({ids})")}
    ok = [i for i, q in intended.items() if rows.get(i) == ("done", float(q))]
    bad = next((f"{i}: {rows.get(i)} instead of done with {q:g}" for i, q in sorted(intended.items())
                if rows.get(i) != ("done", float(q))), "")
    return len(ok), len(intended), bad


def percentile(values, p):
    """Nearest rank."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def write_env(path, values):
    with open(path, "w") as f:
        for k, v in values.items():
            if isinstance(v, float):
                v = f"{v:.3f}"
            f.write(f"{k}={v}\n")


def stats(prefix, values):
    out = {f"{prefix}_N": len(values)}
    for name, p in (("P50", 50), ("P90", 90), ("P99", 99)):
        out[f"{prefix}_{name}"] = percentile(values, p) if values else "nan"
    out[f"{prefix}_MAX"] = max(values) if values else "nan"
    return out


# --- measurement 1: latency at a steady rate ----------------------------------------------------


def latency(out_dir):
    rate = float(env("BENCH_RATE", "2"))
    seconds = float(env("BENCH_SECONDS", "60"))
    done_every = int(env("BENCH_DONE_EVERY", "1"))
    wait = float(env("BENCH_WAIT", "120"))
    total = int(rate * seconds)
    maria = Maria()
    main_rpc = Rpc()
    # Warm-up, untimed: the first calls on a fresh database load its registry and views.
    main_rpc.execute("mrp.production", "search_read", [[["id", "<", 0]]], {"fields": ["name"]})
    first = (main_rpc.execute("mrp.production", "search", [[]], {"order": "id desc", "limit": 1}) or [0])[0] + 1

    lock = threading.Lock()
    orders = {}  # mo id -> dict
    errors = []
    failed_finish = set()
    next_index = [0]
    to_finish = queue.Queue()
    stop_polling = threading.Event()

    def creator():
        rpc = Rpc()
        while True:
            with lock:
                i = next_index[0]
                if i >= total:
                    return
                next_index[0] += 1
            due = t0 + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            started = time.time()
            try:
                mo = rpc.create("mrp.production", {"product_id": DESK, "product_qty": 1 + i % 3})
                rpc.execute("mrp.production", "action_confirm", [[mo]])
            except Exception as e:  # noqa: BLE001 - reported, the run goes on
                errors.append(f"order {i}: {e}")
                continue
            confirmed = time.time()
            with lock:
                orders[mo] = {"i": i, "qty": 1 + i % 3, "due": due, "start": started, "confirmed": confirmed,
                              "finish": i % done_every == 0 if done_every > 0 else False}

    def finisher():
        rpc = Rpc()
        while True:
            mo = to_finish.get()
            if mo is None:
                return
            o = orders[mo]
            try:
                o["finish_start"] = time.time()
                rpc.produce(mo, o["qty"])
                rpc.mark_done(mo, backorder=False)
                o["done"] = time.time()
            except Exception as e:  # noqa: BLE001
                failed_finish.add(mo)
                errors.append(f"mark done of {mo}: {e}")

    seen_r = {}  # order no -> (LAST_UPD epoch, observed)
    seen_c = {}
    polls = [0]

    def poller():
        low = order_no(first - 1)
        while not stop_polling.is_set():
            rows = maria.query(f"SELECT ORDER_NO, STATUS, LAST_UPD FROM PROD_ORDER WHERE ORDER_NO > '{low}'")
            now = time.time()
            polls[0] += 1
            for no, status, last_upd in rows:
                no = no.strip()
                if status == "R" and no not in seen_r and no not in seen_c:
                    seen_r[no] = (maria.epoch(last_upd), now)
                    mo = int(no[2:])
                    with lock:
                        o = orders.get(mo)
                    # (An order not yet in `orders`: its creator has not recorded the return yet;
                    # picked up below on a later poll.)
                    if o is not None and o["finish"]:
                        o["queued"] = True
                        to_finish.put(mo)
                elif status == "C" and no not in seen_c:
                    seen_c[no] = (maria.epoch(last_upd), now)
            with lock:
                late = [mo for mo, o in orders.items() if o["finish"] and not o.get("queued") and order_no(mo) in seen_r]
            for mo in late:
                orders[mo]["queued"] = True
                to_finish.put(mo)
            time.sleep(0.02)

    log(f"latency: {total} orders at {rate:g}/s ({seconds:g} s), 1 in {done_every} marked done once in the ERP; "
        f"MariaDB session time zone {maria.zone}, offset {maria.offset:+.0f} s from UTC")
    poll_thread = threading.Thread(target=poller, daemon=True)
    # Up to four orders in flight, so that a slow call does not hold the next one back (each starts
    # at its time on the schedule, not earlier); two mark-done sequences at a time.
    finishers = [threading.Thread(target=finisher, daemon=True) for _ in range(2)]
    t0 = time.time() + 0.2
    creators = [threading.Thread(target=creator, daemon=True) for _ in range(4)]
    poll_thread.start()
    for t in finishers:
        t.start()
    for t in creators:
        t.start()
    for t in creators:
        t.join()
    t_created = time.time()
    log(f"created and confirmed {len(orders)} orders in {t_created - t0:.1f} s; waiting for the ERP")

    def pending():
        with lock:
            snapshot = dict(orders)
        missing = [mo for mo in snapshot if order_no(mo) not in seen_r and order_no(mo) not in seen_c]
        unfinished = [mo for mo, o in snapshot.items() if o["finish"] and "done" not in o and mo not in failed_finish]
        not_closed = [mo for mo, o in snapshot.items() if "done" in o and order_no(mo) not in seen_c]
        return missing, unfinished, not_closed

    deadline = time.time() + wait
    while time.time() < deadline:
        missing, unfinished, not_closed = pending()
        if not missing and not unfinished and not not_closed:
            break
        time.sleep(0.1)
    missing, unfinished, not_closed = pending()
    for t in finishers:
        to_finish.put(None)
    for t in finishers:
        t.join(timeout=60)
    stop_polling.set()
    poll_thread.join(timeout=10)
    t_end = time.time()
    same, compared, first_bad = compare_orders(maria, first - 1)
    left_ok, left_n, left_bad = as_left({mo: o["qty"] for mo, o in orders.items() if "done" in o})

    # Per order: confirm latency from LAST_UPD at insert, done latency from LAST_UPD at close.
    confirm_lat, confirm_seen, done_lat, done_seen, rpc_confirm, lag = [], [], [], [], [], []
    with open(os.path.join(out_dir, "latency.tsv"), "w") as f:
        f.write("odoo_id\torder_no\tqty\tdue\tstart\tconfirm_returned\terp_insert_last_upd\tfirst_seen_R"
                "\tdone_returned\terp_close_last_upd\tfirst_seen_C\n")
        for mo in sorted(orders):
            o, no = orders[mo], order_no(mo)
            r, c = seen_r.get(no), seen_c.get(no)
            rpc_confirm.append(o["confirmed"] - o["start"])
            lag.append(o["start"] - o["due"])
            if r:
                confirm_lat.append(r[0] - o["confirmed"])
                confirm_seen.append(r[1] - o["confirmed"])
            if c and "done" in o:
                done_lat.append(c[0] - o["done"])
                done_seen.append(c[1] - o["done"])
            cells = [mo, no, o["qty"], o["due"], o["start"], o["confirmed"], r and r[0], r and r[1],
                     o.get("done"), c and c[0], c and c[1]]
            f.write("\t".join("" if v is None else (f"{v:.6f}" if isinstance(v, float) else str(v)) for v in cells) + "\n")
    arrived = sum(1 for mo in orders if order_no(mo) in seen_r or order_no(mo) in seen_c)
    finished = sum(1 for o in orders.values() if "done" in o)
    closed = sum(1 for mo, o in orders.items() if "done" in o and order_no(mo) in seen_c)
    # An order only seen closed (its insert missed by the poll): no confirm latency for it.
    result = {
        "L_ORDERS_PLANNED": total, "L_ORDERS": len(orders), "L_ARRIVED": arrived,
        "L_FINISH_PLANNED": sum(1 for o in orders.values() if o["finish"]), "L_FINISHED": finished,
        "L_CLOSED": closed, "L_DRIVE_S": t_created - t0, "L_TOTAL_S": t_end - t0,
        "L_RATE_ACHIEVED": len(orders) / (t_created - t0) if orders else 0.0,
        "L_RPC_CONFIRM_P50": percentile(rpc_confirm, 50), "L_RPC_CONFIRM_MAX": max(rpc_confirm, default=0.0),
        "L_LAG_MAX": max(lag, default=0.0), "L_LATE": sum(1 for x in lag if x > 0.1),
        "L_POLLS": polls[0], "L_POLL_EVERY_MS": (t_end - t0) / max(polls[0], 1) * 1000,
        "L_ERRORS": len(errors), "L_ERROR_FIRST": (errors[0] if errors else "").replace("\n", " ")[:300],
        "L_MISSING": len(missing), "L_NOT_CLOSED": len(not_closed), "L_TZ": maria.zone, "L_TZ_OFFSET": int(maria.offset),
        "L_FIRST_ID": first, "L_RETRIES": RETRIES[0], "L_SAME": same, "L_COMPARED": compared, "L_FIRST_DIFF": first_bad,
        "L_LEFT_OK": left_ok, "L_LEFT_N": left_n, "L_LEFT_BAD": left_bad,
        "L_SEEN_MINUS_LASTUPD_P50": percentile([s - c for s, c in zip(confirm_seen, confirm_lat)], 50),
    }
    result.update(stats("L_CONFIRM", confirm_lat))
    result.update(stats("L_CONFIRM_SEEN", confirm_seen))
    result.update(stats("L_DONE", done_lat))
    result.update(stats("L_DONE_SEEN", done_seen))
    write_env(os.path.join(out_dir, "latency.env"), result)
    for e in errors[:5]:
        log(f"error: {e}")
    log(f"latency: {arrived}/{len(orders)} orders in the ERP, {closed}/{finished} marked done seen closed; "
        f"confirm p50 {result['L_CONFIRM_P50']}, p99 {result['L_CONFIRM_P99']}; done p50 {result['L_DONE_P50']}, "
        f"p99 {result['L_DONE_P99']}")
    maria.close()


# --- measurement 2: a plant day -------------------------------------------------------------------


def day(out_dir):
    settle_timeout = float(env("BENCH_SETTLE_TIMEOUT", "300"))
    maria = Maria()
    rpc = Rpc()
    rpc.execute("stock.picking", "search_read", [[["id", "<", 0]]], {"fields": ["name"]})  # warm-up
    move_max = int(psql("SELECT COALESCE(max(id), 0) FROM stock_move")[0][0])
    mo_max = int(psql("SELECT COALESCE(max(id), 0) FROM mrp_production")[0][0])
    trans_max = int(maria.query("SELECT COALESCE(MAX(TRANS_NO), 0) FROM INV_TRANS")[0][0])
    calls0 = rpc.calls
    steps = {}

    def step(name, fn, *args):
        t = time.time()
        fn(*args)
        steps.setdefault(name, []).append(time.time() - t)

    def receive(qty):
        po = rpc.create("purchase.order", {"partner_id": PARTNER, "order_line": [
            [0, 0, {"product_id": COMPONENT, "product_qty": qty, "price_unit": 10}]]})
        rpc.execute("purchase.order", "button_confirm", [[po]])
        rpc.validate_picking(rpc.picking_of("purchase.order", po))

    made = {}  # the day's orders: id -> the quantity the driver produced

    def manufacture(qty, produce, backorder):
        mo = rpc.confirmed_order(DESK, qty)
        rpc.produce(mo, produce)
        rpc.mark_done(mo, backorder)
        made[mo] = produce

    def sell(qty):
        so = rpc.create("sale.order", {"partner_id": PARTNER, "order_line": [
            [0, 0, {"product_id": COMPONENT, "product_uom_qty": qty}]]})
        rpc.execute("sale.order", "action_confirm", [[so]])
        rpc.validate_picking(rpc.picking_of("sale.order", so))

    def scrap(qty):
        s = rpc.create("stock.scrap", {"product_id": COMPONENT, "scrap_qty": qty})
        rpc.execute("stock.scrap", "action_validate", [[s]])

    def count(qty):
        quant = rpc.create("stock.quant", {"product_id": COMPONENT, "location_id": STOCK, "inventory_quantity": qty},
                           {"inventory_mode": True})
        rpc.execute("stock.quant", "action_apply_inventory", [[quant]])

    # The day's deliveries need the component free in stock (the latency measurement's orders
    # consumed it, or reserved it): the receipts, 20 each, are topped up to cover what the day
    # uses (14 for its orders, 10 sold, 2 scrapped) with 10 to spare.
    free = rpc.execute("product.product", "read", [[COMPONENT]], {"fields": ["free_qty"]})[0]["free_qty"]
    receipt_qty = 20 + max(0, math.ceil((36 - free) / 5))
    log(f"day: 5 receipts of {receipt_qty} (free before: {free:g}), 10 manufacturing orders (3 with a backorder), "
        "5 deliveries, 2 scraps, 1 count")
    t0 = time.time()
    for _ in range(5):
        step("purchase receipt", receive, receipt_qty)
    for i in range(10):
        if i % 3 == 0 and i < 9:  # orders 0, 3, 6: produce 1 of 3, the rest as a backorder
            step("manufacturing order with backorder", manufacture, 3, 1, True)
        else:
            q = 1 + i % 2
            step("manufacturing order", manufacture, q, q, False)
    for _ in range(5):
        step("sale delivery", sell, 2)
    for _ in range(2):
        step("scrap", scrap, 1)
    step("stock count", count, 100)
    t_last = time.time()
    drive_s = t_last - t0
    calls = rpc.calls - calls0
    log(f"day driven in {drive_s:.2f} s ({calls} RPC calls); waiting for the ERP")

    # What the ERP must hold: Odoo's own record of the day, read after the fact.
    moves = psql(f"""
        SELECT CASE WHEN m.scrapped THEN 'SC' WHEN m.is_inventory THEN 'AJ'
                    WHEN m.raw_material_production_id IS NOT NULL THEN 'PI'
                    WHEN m.production_id IS NOT NULL THEN 'PR'
                    WHEN 'supplier' IN (s.usage, d.usage) THEN 'RC'
                    WHEN 'customer' IN (s.usage, d.usage) THEN 'SH' ELSE '??' END, count(*)
          FROM stock_move m JOIN stock_location s ON s.id = m.location_id
          JOIN stock_location d ON d.id = m.location_dest_id
         WHERE m.id > {move_max} AND m.state = 'done' AND (s.usage = 'internal') <> (d.usage = 'internal')
         GROUP BY 1 ORDER BY 1""")
    want_kinds = {k: int(n) for k, n in moves}
    want_rows = sum(want_kinds.values())
    mos = psql(f"SELECT id, state FROM mrp_production WHERE id > {mo_max} AND state <> 'draft' ORDER BY id")
    want_mos = {order_no(int(i)): STATUS_OF.get(s, "?") for i, s in mos}
    mo_list = ",".join(f"'{n}'" for n in want_mos) or "''"

    polls = 0
    settled_seen = None
    have_rows = 0
    have_mos = {}
    deadline = t_last + settle_timeout
    while time.time() < deadline:
        have_rows = int(maria.query(f"SELECT COUNT(*) FROM INV_TRANS WHERE TRANS_NO > {trans_max}")[0][0])
        have_mos = {no.strip(): st for no, st in maria.query(f"SELECT ORDER_NO, STATUS FROM PROD_ORDER WHERE ORDER_NO IN ({mo_list})")}
        polls += 1
        if have_rows >= want_rows and all(have_mos.get(n) == s for n, s in want_mos.items()):
            settled_seen = time.time()
            break
        time.sleep(0.05)
    # When the last of it was written: the newest LAST_UPD among the day's rows.
    last_trans = maria.query(f"SELECT MAX(LAST_UPD) FROM INV_TRANS WHERE TRANS_NO > {trans_max}")[0][0]
    last_order = maria.query(f"SELECT MAX(LAST_UPD) FROM PROD_ORDER WHERE ORDER_NO IN ({mo_list})")[0][0]
    last = max((maria.epoch(v) for v in (last_trans, last_order) if v and v != "NULL"), default=None)
    first_trans = maria.query(f"SELECT MIN(LAST_UPD) FROM INV_TRANS WHERE TRANS_NO > {trans_max}")[0][0]
    # A moment later, in case something arrives twice: the rows once more.
    time.sleep(2)
    rows_after = int(maria.query(f"SELECT COUNT(*) FROM INV_TRANS WHERE TRANS_NO > {trans_max}")[0][0])
    same, compared, first_bad = compare_orders(maria, mo_max)
    left_ok, left_n, left_bad = as_left(made)
    erp_kinds = {k.strip(): int(n) for k, n in maria.query(
        f"SELECT TRANS_TYPE, COUNT(*) FROM INV_TRANS WHERE TRANS_NO > {trans_max} GROUP BY TRANS_TYPE ORDER BY TRANS_TYPE")}
    with open(os.path.join(out_dir, "day.tsv"), "w") as f:
        f.write("step\tseconds\n")
        for name, ts in steps.items():
            for t in ts:
                f.write(f"{name}\t{t:.3f}\n")
    result = {
        "D_DRIVE_S": drive_s, "D_RETRIES": RETRIES[0], "D_RECEIPT_QTY": receipt_qty, "D_FREE_BEFORE": f"{free:g}", "D_RPC_CALLS": calls, "D_MOVES": want_rows, "D_ROWS": have_rows, "D_ROWS_AFTER": rows_after,
        "D_MOS": len(want_mos), "D_MOS_OK": sum(1 for n, s in want_mos.items() if have_mos.get(n) == s),
        "D_MOS_DONE": sum(1 for s in want_mos.values() if s == "C"),
        "D_MOS_OPEN": sum(1 for s in want_mos.values() if s == "R"),
        "D_SAME": same, "D_COMPARED": compared, "D_FIRST_DIFF": first_bad,
        "D_LEFT_OK": left_ok, "D_LEFT_N": left_n, "D_LEFT_BAD": left_bad,
        "D_SETTLED": "yes" if settled_seen else "no",
        "D_SETTLE_SEEN_S": (settled_seen - t_last) if settled_seen else "nan",
        "D_SETTLE_LASTUPD_S": (last - t_last) if (settled_seen and last) else "nan",
        "D_FIRST_ROW_AFTER_START_S": (maria.epoch(first_trans) - t0) if first_trans and first_trans != "NULL" else "nan",
        "D_KINDS_ODOO": " ".join(f"{k}={n}" for k, n in sorted(want_kinds.items())),
        "D_KINDS_ERP": " ".join(f"{k}={n}" for k, n in sorted(erp_kinds.items())),
        "D_STEPS": "; ".join(f"{name} ×{len(ts)} {sum(ts) / len(ts):.2f} s each" for name, ts in steps.items()),
        "D_POLLS": polls,
    }
    write_env(os.path.join(out_dir, "day.env"), result)
    log(f"day: {have_rows}/{want_rows} ledger rows, {result['D_MOS_OK']}/{len(want_mos)} orders as in Odoo; "
        f"settled {result['D_SETTLE_SEEN_S']} s after the last RPC (last LAST_UPD {result['D_SETTLE_LASTUPD_S']} s)")
    maria.close()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("latency", "day", "version"):
        sys.exit("usage: drive.py latency|day|version OUT_DIR")
    mode, out_dir = sys.argv[1], sys.argv[2]
    if mode == "version":
        v = Rpc(login=False).version()
        info = v.get("server_version_info") or []
        detail = ".".join(str(x) for x in info[:3]) + (f" {info[3]}" if len(info) > 3 else "")
        print(f"{v.get('server_version')} ({detail})" if detail else v.get("server_version"))
    elif mode == "latency":
        latency(out_dir)
    else:
        day(out_dir)


if __name__ == "__main__":
    main()
