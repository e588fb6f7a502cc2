"""The demo's Odoo side, through a real Odoo's ORM (JSON-RPC), for scripts/demo.sh (which gives
the demo database the ERP's keys with `millrace reconcile --bind --repair --apply`):

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
    {"user": user, "workload": workload}[sys.argv[1]]()
