"""The demo's Odoo side, through a real Odoo's ORM (JSON-RPC), for scripts/demo.sh:

    odoo_demo.py align      give the demo database the keys the demo ERP uses, as an
                            installation does once before its first sync: an internal reference
                            for products without one (PP-000042), BOM sequences numbered 1, 2 …
                            per product and BOM line sequences 10, 20 … per BOM
    odoo_demo.py user KEY_FILE
                            millrace's integration user (inventory, manufacturing, sales and
                            purchase rights, an email address), as the admin makes it; its
                            password, which millrace uses as its API key, into KEY_FILE
    odoo_demo.py workload   a plant at work, one round every DEMO_ROUND seconds (default 2):
                            a manufacturing order confirmed, the one before produced and marked
                            done (every third with a backorder), components received, desks
                            delivered, and every fifth round a demo item archived

Settings from the environment: ODOO_RPC (http://127.0.0.1:58069), ODOO_DB, ODOO_LOGIN,
ODOO_PASSWORD.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odoo_rpc import OdooError, Rpc, create_integration_user  # noqa: E402

DESK = 8  # FURN_7800 "Desk Combination": manufactured, three-line BOM
COMPONENT = 25  # FURN_0269, one of its components, bought
PARTNER = 14  # the demo's vendor and customer


def session():
    return Rpc(os.environ["ODOO_RPC"], os.environ["ODOO_DB"], os.environ["ODOO_LOGIN"], os.environ["ODOO_PASSWORD"])


def write_grouped(rpc, model, values_by_id, field):
    """One write per distinct value, on every id that gets it."""
    by_value = {}
    for record_id, value in values_by_id.items():
        by_value.setdefault(value, []).append(record_id)
    for value, ids in by_value.items():
        rpc.execute(model, "write", [ids, {field: value}])


def align():
    rpc = session()
    products = rpc.execute("product.product", "search_read", [[["default_code", "=", False]]], {"fields": ["id"], "context": {"active_test": False}})
    for p in products:
        rpc.execute("product.product", "write", [[p["id"]], {"default_code": f"PP-{p['id']:06d}"}])
    boms = rpc.execute("mrp.bom", "search_read", [[]], {"fields": ["product_tmpl_id", "sequence"], "context": {"active_test": False}})
    ranks, seen = {}, {}
    for b in sorted(boms, key=lambda b: (b["product_tmpl_id"][0], b["sequence"] or 0, b["id"])):
        seen[b["product_tmpl_id"][0]] = seen.get(b["product_tmpl_id"][0], 0) + 1
        ranks[b["id"]] = seen[b["product_tmpl_id"][0]]
    write_grouped(rpc, "mrp.bom", ranks, "sequence")
    lines = rpc.execute("mrp.bom.line", "search_read", [[]], {"fields": ["bom_id", "sequence"]})
    numbers, seen = {}, {}
    for line in sorted(lines, key=lambda l: (l["bom_id"][0], l["sequence"] or 0, l["id"])):
        seen[line["bom_id"][0]] = seen.get(line["bom_id"][0], 0) + 1
        numbers[line["id"]] = 10 * seen[line["bom_id"][0]]
    write_grouped(rpc, "mrp.bom.line", numbers, "sequence")
    print(f"aligned through the ORM: {len(products)} internal references, {len(boms)} BOMs, {len(lines)} BOM lines")


def user():
    key = "demo-integration-" + os.urandom(8).hex()
    create_integration_user(session(), "millrace", key)
    with open(sys.argv[2], "w") as f:
        f.write(key + "\n")
    os.chmod(sys.argv[2], 0o600)


def workload():
    rpc = session()
    pause = float(os.environ.get("DEMO_ROUND", "2"))
    orders = []
    i = 0
    while True:
        i += 1
        try:
            mo = rpc.confirmed_order(DESK, i % 3 + 1)
            orders.append(mo)
            print(f"odoo: manufacturing order {mo} confirmed", flush=True)
            if len(orders) > 2:
                done = orders.pop(0)
                backorder = i % 3 == 0
                rpc.produce(done, 1)
                rpc.mark_done(done, backorder)
                print(f"odoo: manufacturing order {done} done{' (backorder for the rest)' if backorder else ''}", flush=True)
            if i % 3 == 0:
                rpc.receive(PARTNER, COMPONENT, 10)
                print("odoo: components received", flush=True)
            if i % 4 == 0:
                rpc.deliver(PARTNER, DESK, 1)
                print("odoo: a desk delivered", flush=True)
            if i % 5 == 0:
                ids = rpc.execute("product.product", "search", [[["default_code", "=", f"DEMO-{i - 2}"]]])
                if ids:
                    rpc.execute("product.product", "write", [ids, {"active": False}])
                    print(f"odoo: item DEMO-{i - 2} archived", flush=True)
        except OdooError as e:
            print(f"odoo: {e}", file=sys.stderr, flush=True)
        time.sleep(pause)


if __name__ == "__main__":
    {"align": align, "user": user, "workload": workload}[sys.argv[1]]()
