#!/usr/bin/env python3
"""The Python side of bench/orm/run.sh: a batched-create JSON-RPC client (the baseline millrace is
compared with), the integration user both use, and the commit-to-visible latency driver.

    drive.py user OUT_DIR            creates the integration user (as the admin); its key in OUT_DIR/key
    drive.py python OUT_DIR PREFIX   the baseline: reads the ERP items of ITEM_BENCH whose number starts
                                     with PREFIX (one query, through the mariadb client), resolves their
                                     units with one search_read, and creates them as product.product in
                                     batches of BENCH_BATCH (`create` with a list) as the integration
                                     user; writes OUT_DIR/python.env (seconds, rows)
    drive.py latency OUT_DIR         BENCH_RATE items per second for BENCH_SECONDS seconds inserted
                                     into ITEM_MASTER one per transaction; a poller asks Odoo's API
                                     every 25 ms which of the outstanding ones it has; latency = the
                                     first answer that has it − the ERP commit's return

Standard library only: urllib for JSON-RPC (scripts/odoo_rpc.py), the `mariadb` client as a
subprocess. Settings from the environment (run.sh sets them): BENCH_ODOO_RPC, BENCH_ODOO_DB,
BENCH_ODOO_LOGIN, BENCH_ODOO_PASSWORD (the admin), BENCH_MARIA_HOST/PORT/USER/PASSWORD/DB.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from maria_client import Maria  # noqa: E402
from odoo_rpc import Rpc, create_integration_user  # noqa: E402

INTEGRATION_LOGIN = "millrace"
INTEGRATION_KEY = "bench-integration-key-9T"


def log(msg):
    print(f"[bench/orm drive {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"drive.py: {name} is not set")
    return value


def admin():
    return Rpc(env("BENCH_ODOO_RPC"), env("BENCH_ODOO_DB"), env("BENCH_ODOO_LOGIN"), env("BENCH_ODOO_PASSWORD"))


def integration():
    return Rpc(env("BENCH_ODOO_RPC"), env("BENCH_ODOO_DB"), INTEGRATION_LOGIN, INTEGRATION_KEY)


def user(out_dir):
    create_integration_user(admin(), INTEGRATION_LOGIN, INTEGRATION_KEY)
    with open(os.path.join(out_dir, "key"), "w") as f:
        f.write(INTEGRATION_KEY + "\n")


def python(out_dir, prefix):
    batch = int(env("BENCH_BATCH", "500"))
    started = time.monotonic()
    maria = Maria()
    rows = maria.query(
        "SELECT TRIM(i.ITEM_NO), i.DESCRIPTION, TRIM(u.DESCRIPTION), i.LOT_CONTROL, i.STD_COST, i.LIST_PRICE, i.STATUS "
        f"FROM ITEM_BENCH i JOIN UOM u ON u.UOM_CODE = i.UOM_CODE WHERE i.ITEM_NO LIKE '{prefix}%' ORDER BY i.ITEM_NO")
    maria.close()
    rpc = integration()
    names = sorted({r[2] for r in rows})
    units = {u["name"]: u["id"] for u in rpc.execute("uom.uom", "search_read", [[["name", "in", names]]], {"fields": ["name"]})}
    tracking = {"N": "none", "L": "lot", "S": "serial"}
    values = [{
        "default_code": code, "name": name, "uom_id": units[unit], "uom_po_id": units[unit],
        "list_price": float(price), "standard_price": float(cost), "tracking": tracking[lot],
        "active": status == "A", "detailed_type": "product", "categ_id": 1, "sale_ok": True, "purchase_ok": True,
    } for code, name, unit, lot, cost, price, status in rows]
    created = 0
    for start in range(0, len(values), batch):
        ids = rpc.execute("product.product", "create", [values[start:start + batch]], {"context": {"lang": "en_US"}})
        created += len(ids)
    seconds = time.monotonic() - started
    with open(os.path.join(out_dir, "python.env"), "w") as f:
        f.write(f"PY_SECONDS={seconds:.3f}\nPY_ROWS={created}\n")


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def latency(out_dir):
    rate = float(env("BENCH_RATE", "5"))
    seconds = float(env("BENCH_SECONDS", "60"))
    n = int(rate * seconds)
    maria = Maria()
    rpc = admin()
    committed = {}
    visible = {}
    lock = threading.Lock()
    done = threading.Event()

    def poller():
        while not done.is_set():
            with lock:
                outstanding = [c for c in committed if c not in visible]
            if outstanding:
                found = rpc.execute("product.product", "search_read", [[["default_code", "in", outstanding]]],
                                    {"fields": ["default_code"], "context": {"active_test": False}})
                now = time.time()
                with lock:
                    for row in found:
                        visible.setdefault(row["default_code"], now)
            time.sleep(0.025)

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        code = f"LAT-{i:06d}"
        maria.query(
            "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS) "
            f"VALUES ('{code}', 'Latency probe {i}', 'EA', 'N', {1 + i % 50}.25, {10 + i % 90}.50, 'A')")
        with lock:
            committed[code] = time.time()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with lock:
            if len(visible) >= n:
                break
        time.sleep(0.1)
    done.set()
    thread.join(timeout=5)
    maria.close()
    lat = [visible[c] - committed[c] for c in committed if c in visible]
    with open(os.path.join(out_dir, "latency.env"), "w") as f:
        f.write(f"LAT_N={n}\nLAT_SEEN={len(lat)}\nLAT_P50={percentile(lat, 50):.3f}\n"
                f"LAT_P99={percentile(lat, 99):.3f}\nLAT_MAX={max(lat) if lat else float('nan'):.3f}\n")


def main():
    mode, out_dir = sys.argv[1], sys.argv[2]
    if mode == "user":
        user(out_dir)
    elif mode == "python":
        python(out_dir, sys.argv[3])
    elif mode == "latency":
        latency(out_dir)
    else:
        sys.exit(f"drive.py: unknown mode {mode}")


if __name__ == "__main__":
    main()
