"""Odoo's external API (JSON-RPC `execute_kw`) for millrace's scripts: the demo's workload
(scripts/odoo_demo.py) and the benchmark's driver (bench/odoo/drive.py) drive a real Odoo the way
its users do — create, confirm, produce, mark done and validate through the wizards Odoo opens —
never by writing its tables. Standard library only (urllib).
"""

import json
import urllib.request


class OdooError(RuntimeError):
    pass


class Rpc:
    """A logged-in session on one database of an Odoo server (`url`: http://host:port)."""

    def __init__(self, url, db=None, login=None, password=None):
        self.url = url.rstrip("/") + "/jsonrpc"
        self.calls = 0
        self.db = db
        self.password = password
        self.uid = None
        if db is not None:
            self.uid = self.call("common", "login", db, login, password)
            if not isinstance(self.uid, int):
                raise OdooError(f"login to {db} refused: {self.uid!r}")

    def call(self, service, method, *args):
        body = json.dumps(
            {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"service": service, "method": method, "args": list(args)}}
        ).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            reply = json.load(response)
        self.calls += 1
        if "error" in reply:
            data = reply["error"].get("data") or {}
            raise OdooError(f"{data.get('name', 'error')}: {data.get('message', reply['error'])}")
        # Odoo leaves "result" out when the method returned None.
        return reply.get("result")

    def execute(self, model, method, args, kwargs=None):
        try:
            return self.call("object", "execute_kw", self.db, self.uid, self.password, model, method, args, kwargs or {})
        except OdooError as e:
            raise OdooError(f"{model}.{method}({json.dumps(args)}, {json.dumps(kwargs or {})}): {e}") from None

    def create(self, model, values, context=None):
        result = self.execute(model, "create", [values], {"context": context} if context else None)
        return result[0] if isinstance(result, list) else result

    def version(self):
        return self.call("common", "version")  # needs no login

    def through_wizards(self, what, result, choose):
        """Follows the wizards an action returns, as tests/common/odoo.rs does: each created with
        the action's context (or the existing record, res_id) and the button `choose` names."""
        for _ in range(4):
            if not isinstance(result, dict) or not result.get("res_model"):
                return
            model, existing = result["res_model"], result.get("res_id")
            button = choose(model)
            if button is None:
                if existing:  # the form of a record (a new backorder, say): done
                    return
                raise OdooError(f"{what}: unexpected wizard {model}: {result}")
            context = result.get("context") if isinstance(result.get("context"), dict) else {}
            wizard = existing or self.create(model, {}, context)
            result = self.execute(model, button, [[wizard]], {"context": context})
        raise OdooError(f"{what}: still asked for a wizard: {result}")

    def confirmed_order(self, product, qty):
        mo = self.create("mrp.production", {"product_id": product, "product_qty": qty})
        self.execute("mrp.production", "action_confirm", [[mo]])
        return mo

    def produce(self, mo, qty):
        self.execute("mrp.production", "write", [[mo], {"qty_producing": qty}])
        self.execute("mrp.production", "set_qty_producing", [[mo]])

    def mark_done(self, mo, backorder):
        result = self.execute("mrp.production", "button_mark_done", [[mo]])
        choices = {
            "mrp.production.backorder": "action_backorder" if backorder else "action_close_mo",
            "mrp.consumption.warning": "action_confirm",
        }
        self.through_wizards(f"mark done of manufacturing order {mo}", result, choices.get)

    def validate_picking(self, picking):
        result = self.execute("stock.picking", "button_validate", [[picking]])
        choices = {
            "stock.backorder.confirmation": "process_cancel_backorder",
            # The delivery's text message to the customer (stock_sms): not sent.
            "confirm.stock.sms": "dont_send_sms",
        }
        self.through_wizards(f"validating transfer {picking}", result, choices.get)

    def picking_of(self, model, order):
        rows = self.execute(model, "read", [[order]], {"fields": ["picking_ids"]})
        if not rows or not rows[0]["picking_ids"]:
            raise OdooError(f"{model} {order} has no transfer")
        return rows[0]["picking_ids"][0]

    def receive(self, partner, product, qty):
        """A purchase confirmed and its receipt validated: the picking's id."""
        order = self.create(
            "purchase.order",
            {"partner_id": partner, "order_line": [[0, 0, {"product_id": product, "product_qty": qty, "price_unit": 10}]]},
        )
        self.execute("purchase.order", "button_confirm", [[order]])
        picking = self.picking_of("purchase.order", order)
        self.validate_picking(picking)
        return picking

    def deliver(self, partner, product, qty):
        """A sale confirmed and its delivery validated: the picking's id."""
        order = self.create("sale.order", {"partner_id": partner, "order_line": [[0, 0, {"product_id": product, "product_uom_qty": qty}]]})
        self.execute("sale.order", "action_confirm", [[order]])
        picking = self.picking_of("sale.order", order)
        self.validate_picking(picking)
        return picking

    def scrap(self, product, qty):
        scrap = self.create("stock.scrap", {"product_id": product, "scrap_qty": qty})
        self.execute("stock.scrap", "action_validate", [[scrap]])
        return scrap


# The rights millrace's integration user needs for what it writes (items, units, BOMs, lots,
# production reports, deliveries): as tests/common/odoo.rs gives them.
INTEGRATION_GROUPS = [
    "base.group_user", "stock.group_stock_manager", "mrp.group_mrp_manager", "sales_team.group_sale_manager",
    "purchase.group_purchase_manager", "uom.group_uom", "stock.group_production_lot",
]


def create_integration_user(admin, login, password):
    """millrace's integration user, made by `admin` (an Rpc session) as Odoo's admin makes one: the
    groups above and an email address (Odoo posts a chatter message as the user when it makes a
    backorder). Its id."""
    groups = []
    for xml_id in INTEGRATION_GROUPS:
        module, name = xml_id.split(".")
        groups.append(admin.execute("ir.model.data", "check_object_reference", [module, name])[1])
    return admin.create("res.users", {"name": "millrace integration", "login": login, "password": password,
                                      "email": "millrace@example.com", "groups_id": [[6, 0, groups]]})
