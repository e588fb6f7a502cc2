#!/usr/bin/env python3
"""Verified Odoo 17 JSON-RPC (execute_kw) call sequences for millrace's write-back workflows.

Runs every workflow against one database of a running Odoo 17 (with mrp, sale_stock,
purchase_stock, mrp_account installed, demo data) and asserts the results:

  python3 scripts/odoo_workflows_check.py DB [--url http://127.0.0.1:58069] [--login admin]
        [--password admin] [--only 1,2,3,4,5,6,7] [--pg-url postgres://...] [--no-concurrency]

--pg-url (default: $MILLRACE_TEST_ODOO_PG_URL with the database replaced by DB) is only used by
workflow 6 to provoke a serialization failure with psql (needs psql on PATH or
$MILLRACE_TEST_PG_BIN). Everything else goes through /jsonrpc only, as a user would.
Standard library + /work/main/scripts/odoo_rpc.py.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from odoo_rpc import OdooError, Rpc  # noqa: E402

RUN = time.strftime("%H%M%S")  # keeps codes/names unique when the script runs twice on one DB


def step(msg):
    print(f"\n== {msg}", flush=True)


def info(msg):
    print(f"   {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print(f"   OK  {msg}", flush=True)


def close(a, b, eps=1e-6):
    return abs((a or 0.0) - (b or 0.0)) < eps


class Client(Rpc):
    """odoo_rpc.Rpc plus: raw error bodies, contexts, and a few read helpers."""

    def raw(self, model, method, args, kwargs=None, timeout=300):
        """execute_kw returning (result, error-object-of-the-JSON-RPC-reply)."""
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": [self.db, self.uid, self.password, model, method, args, kwargs or {}]}}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.load(resp)
        self.calls += 1
        return reply.get("result"), reply.get("error")

    def expect_error(self, what, model, method, args, kwargs=None):
        result, error = self.raw(model, method, args, kwargs)
        if error is None:
            raise AssertionError(f"{what}: expected an error, got {result!r}")
        data = error.get("data") or {}
        info(f"{what}: error.code={error.get('code')} error.message={error.get('message')!r}")
        info(f"    data.name={data.get('name')!r}")
        info(f"    data.message={data.get('message')!r}")
        info(f"    data.arguments={data.get('arguments')!r} data.context={data.get('context')!r}")
        return data

    def read1(self, model, rid, fields, context=None):
        kw = {"fields": fields}
        if context:
            kw["context"] = context
        return self.execute(model, "read", [[rid]], kw)[0]

    def sr(self, model, domain, fields, **kw):
        kw["fields"] = fields
        return self.execute(model, "search_read", [domain], kw)

    def ref(self, xmlid):
        # ir.model.data itself is readable by Settings users only; check_object_reference is public
        # and works for any user: returns [model, res_id] (res_id False when not readable).
        module, name = xmlid.split(".")
        model, res_id = self.execute("ir.model.data", "check_object_reference", [module, name])
        assert res_id, xmlid
        return res_id

    def on_hand(self, products):
        rows = self.execute("product.product", "read", [products], {"fields": ["qty_available"]})
        return {r["id"]: r["qty_available"] for r in rows}


class WebSession:
    """The web client's session API (cookie), for the few methods the external API can't reach."""

    def __init__(self, base, db, login, password):
        import http.cookiejar
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        r = self.post("/web/session/authenticate", {"db": db, "login": login, "password": password})
        assert r.get("uid"), r

    def post(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).encode()
        req = urllib.request.Request(self.base + path, body, {"Content-Type": "application/json"})
        with self.opener.open(req, timeout=300) as resp:
            reply = json.load(resp)
        if "error" in reply:
            raise OdooError(f"{path}: {reply['error']['data']['name']}: {reply['error']['data']['message']}")
        return reply.get("result")

    def call_kw(self, model, method, args, kwargs=None):
        return self.post(f"/web/dataset/call_kw/{model}/{method}",
                         {"model": model, "method": method, "args": args, "kwargs": kwargs or {}})


def m2o(v):
    return v[0] if v else False


# --------------------------------------------------------------------------------------------
# shared fixtures
# --------------------------------------------------------------------------------------------

class Fixture:
    def __init__(self, rpc):
        self.rpc = rpc
        user = rpc.read1("res.users", rpc.uid, ["company_id"])
        self.company = m2o(user["company_id"])
        wh = rpc.sr("stock.warehouse", [("company_id", "=", self.company)], ["lot_stock_id"], limit=1)[0]
        self.warehouse = wh["id"]
        self.stock = m2o(wh["lot_stock_id"])
        self.unit = rpc.ref("uom.product_uom_unit")
        self.kg = rpc.ref("uom.product_uom_kgm")

    def products(self, vals_list):
        """product.product create with a list: one call, returns the list of ids."""
        ids = self.rpc.execute("product.product", "create", [vals_list])
        assert isinstance(ids, list) and len(ids) == len(vals_list), ids
        return ids

    def set_stock(self, product, qty, lot=False):
        """Inventory adjustment as a user does it (Inventory > Physical Inventory > Apply)."""
        ctx = {"inventory_mode": True}
        quant = self.rpc.execute("stock.quant", "create", [{
            "product_id": product, "location_id": self.stock, "inventory_quantity": qty,
            "lot_id": lot}], {"context": ctx})
        quant = quant[0] if isinstance(quant, list) else quant
        res = self.rpc.execute("stock.quant", "action_apply_inventory", [[quant]], {"context": ctx})
        assert not isinstance(res, dict) or not res.get("res_model"), res
        return quant


def svl(rpc, product, after_id=0):
    return rpc.sr("stock.valuation.layer", [("product_id", "=", product), ("id", ">", after_id)],
                  ["quantity", "value", "unit_cost", "stock_move_id", "description"], order="id")


def last_svl_id(rpc):
    rows = rpc.sr("stock.valuation.layer", [], ["id"], order="id desc", limit=1)
    return rows[0]["id"] if rows else 0


# --------------------------------------------------------------------------------------------
# 1. production report
# --------------------------------------------------------------------------------------------

def raw_moves(rpc, mo):
    rows = rpc.sr("stock.move", [("raw_material_production_id", "=", mo)],
                  ["product_id", "product_uom_qty", "quantity", "picked", "state", "manual_consumption",
                   "should_consume_qty"], order="id")
    return {m2o(r["product_id"]): r for r in rows}


def report_production(rpc, mo, qty, lot, consumed=None):
    """The ERP's report for one (still open) MO: qty = what this MO has produced so far (absolute,
    not an increment), lot = stock.lot id. consumed: {component: qty} overrides (actual consumption
    different from the BOM)."""
    rpc.execute("mrp.production", "write", [[mo], {"qty_producing": qty, "lot_producing_id": lot}])
    rpc.execute("mrp.production", "set_qty_producing", [[mo]])
    for product, q in (consumed or {}).items():
        move = raw_moves(rpc, mo)[product]
        rpc.execute("stock.move", "write", [[move["id"]], {"quantity": q, "picked": True}])


def mark_done(rpc, mo, backorder, seen):
    """button_mark_done and the wizards it returns; seen collects the wizard models met."""
    result = rpc.execute("mrp.production", "button_mark_done", [[mo]])
    for _ in range(4):
        if not isinstance(result, dict) or not result.get("res_model"):
            return result
        model = result["res_model"]
        if model == "mrp.production":  # the form of the new backorder: done
            return result
        ctx = result.get("context") or {}
        seen.append(model)
        button = {
            "mrp.production.backorder": "action_backorder" if backorder else "action_close_mo",
            "mrp.consumption.warning": "action_confirm",
        }[model]
        info(f"wizard {model} (context keys {sorted(ctx)}) -> {button}")
        wizard = rpc.execute(model, "create", [{}], {"context": ctx})
        wizard = wizard[0] if isinstance(wizard, list) else wizard
        result = rpc.execute(model, button, [[wizard]], {"context": ctx})
    raise AssertionError(f"still a wizard after mark done: {result}")


def find_lot(rpc, fx, product, name):
    """The ERP's lot: reuse a stock.lot (product, name, company), else create it."""
    rows = rpc.sr("stock.lot", [("product_id", "=", product), ("name", "=", name),
                                ("company_id", "in", [fx.company, False])], ["id"])
    if rows:
        return rows[0]["id"]
    return rpc.create("stock.lot", {"name": name, "product_id": product, "company_id": fx.company})


def wf_production(rpc, fx):
    step("1. production report")
    comp_a, comp_b, fin = fx.products([
        {"name": f"MR comp A {RUN}", "default_code": f"MR-CA-{RUN}", "detailed_type": "product",
         "standard_price": 2.0, "uom_id": fx.unit, "uom_po_id": fx.unit},
        {"name": f"MR comp B {RUN}", "default_code": f"MR-CB-{RUN}", "detailed_type": "product",
         "standard_price": 3.0, "uom_id": fx.unit, "uom_po_id": fx.unit},
        {"name": f"MR finished {RUN}", "default_code": f"MR-FG-{RUN}", "detailed_type": "product",
         "tracking": "lot", "standard_price": 20.0, "uom_id": fx.unit, "uom_po_id": fx.unit},
    ])
    fin_tmpl = m2o(rpc.read1("product.product", fin, ["product_tmpl_id"])["product_tmpl_id"])
    bom = rpc.create("mrp.bom", {
        "product_tmpl_id": fin_tmpl, "product_qty": 1, "type": "normal",
        "bom_line_ids": [[0, 0, {"product_id": comp_a, "product_qty": 2}],
                         [0, 0, {"product_id": comp_b, "product_qty": 0.5}]]})
    info(f"products A={comp_a} B={comp_b} F={fin} (lot-tracked); bom {bom}: 1 F = 2 A + 0.5 B")
    fx.set_stock(comp_a, 100)
    fx.set_stock(comp_b, 50)
    check(fx.rpc.on_hand([comp_a, comp_b]) == {comp_a: 100, comp_b: 50}, "components stocked 100 A, 50 B")
    categ = rpc.read1("product.product", fin, ["categ_id", "cost_method", "valuation"])
    info(f"category {categ['categ_id']}: cost_method={categ['cost_method']} valuation={categ['valuation']}")

    # --- MO 1: two cumulative partial reports, then close with a backorder --------------------
    mo = rpc.create("mrp.production", {"product_id": fin, "product_qty": 10, "bom_id": bom})
    rpc.execute("mrp.production", "action_confirm", [[mo]])
    m = rpc.read1("mrp.production", mo, ["name", "state", "qty_producing", "product_uom_id", "consumption"])
    rm = raw_moves(rpc, mo)
    info(f"MO {m['name']} state={m['state']} consumption={m['consumption']}; raw moves after confirm: "
         + "; ".join(f"{p}: demand={r['product_uom_qty']} quantity={r['quantity']} picked={r['picked']} "
                     f"state={r['state']} manual={r['manual_consumption']}" for p, r in rm.items()))
    check(rm[comp_a]["product_uom_qty"] == 20 and rm[comp_b]["product_uom_qty"] == 5, "demand A 20, B 5")
    check(rm[comp_a]["quantity"] == 20 and not rm[comp_a]["picked"],
          "reserved at confirm: move.quantity = 20 (reservation), picked False")

    lot1 = find_lot(rpc, fx, fin, f"LOT-{RUN}-1")
    before = fx.rpc.on_hand([comp_a, comp_b, fin])
    svl0 = last_svl_id(rpc)

    # write alone: does it touch the components?
    rpc.execute("mrp.production", "write", [[mo], {"qty_producing": 4, "lot_producing_id": lot1}])
    rm = raw_moves(rpc, mo)
    m = rpc.read1("mrp.production", mo, ["state", "qty_producing"])
    check(rm[comp_a]["quantity"] == 20 and not rm[comp_a]["picked"],
          f"write(qty_producing=4) alone leaves components untouched (A quantity {rm[comp_a]['quantity']}, "
          f"picked {rm[comp_a]['picked']}); MO state {m['state']}")
    rpc.execute("mrp.production", "set_qty_producing", [[mo]])
    rm = raw_moves(rpc, mo)
    check(rm[comp_a]["quantity"] == 8 and rm[comp_a]["picked"] and rm[comp_b]["quantity"] == 2
          and rm[comp_b]["picked"], "set_qty_producing(): A quantity 8 picked, B quantity 2 picked")
    m = rpc.read1("mrp.production", mo, ["state", "qty_producing", "qty_produced"])
    info(f"MO state={m['state']} qty_producing={m['qty_producing']} qty_produced={m['qty_produced']}")
    check(fx.rpc.on_hand([comp_a, comp_b, fin]) == before, "nothing posted yet: on-hand unchanged")

    # second cumulative report 7 on the same open MO
    report_production(rpc, mo, 7, lot1)
    rm = raw_moves(rpc, mo)
    check(rm[comp_a]["quantity"] == 14 and rm[comp_b]["quantity"] == 3.5,
          "cumulative 7: set_qty_producing recomputes absolutely: A 14, B 3.5")

    seen = []
    res = mark_done(rpc, mo, backorder=True, seen=seen)
    check(seen == ["mrp.production.backorder"], f"mark done asked {seen}")
    info(f"action_backorder returned {json.dumps(res)[:300]}")
    m = rpc.read1("mrp.production", mo, ["name", "state", "product_qty", "qty_produced", "qty_producing",
                                         "procurement_group_id", "backorder_sequence"])
    backorders = rpc.sr("mrp.production", [("procurement_group_id", "=", m2o(m["procurement_group_id"])),
                                           ("id", "!=", mo)],
                        ["name", "state", "product_qty", "qty_producing", "lot_producing_id", "backorder_sequence"])
    info(f"MO after: {m}")
    info(f"backorder(s): {backorders}")
    check(m["state"] == "done" and m["qty_produced"] == 7 and m["product_qty"] == 7,
          "MO done, qty_produced 7, its product_qty shrunk to 7")
    check(len(backorders) == 1 and backorders[0]["product_qty"] == 3 and backorders[0]["state"] == "confirmed",
          f"one backorder {backorders[0]['name']} of 3, confirmed")
    if isinstance(res, dict):
        check(res.get("res_id") == backorders[0]["id"], "the wizard returned the backorder's form (res_id)")
    after = fx.rpc.on_hand([comp_a, comp_b, fin])
    check(after == {comp_a: 86, comp_b: 46.5, fin: 7}, f"on-hand A 100-14=86, B 50-3.5=46.5, F +7: {after}")
    layers = {p: svl(rpc, p, svl0) for p in (comp_a, comp_b, fin)}
    for p, rows in layers.items():
        info(f"SVL product {p}: " + "; ".join(f"qty={r['quantity']} value={r['value']} unit_cost={r['unit_cost']}"
                                              for r in rows))
    check(close(sum(r["value"] for r in layers[fin]), 140.0) and close(sum(r["value"] for r in layers[comp_a]), -28.0)
          and close(sum(r["value"] for r in layers[comp_b]), -10.5),
          "stock.valuation.layer: F +7*20=140, A -14*2=-28, B -3.5*3=-10.5 (standard cost)")
    quants = rpc.sr("stock.quant", [("product_id", "=", fin), ("location_id", "=", fx.stock)], ["lot_id", "quantity"])
    check([(m2o(q["lot_id"]), q["quantity"]) for q in quants] == [(lot1, 7)], f"F quant in lot {lot1}: 7")

    # --- third report: cumulative 9 for the ERP order -> 9 - 7 = 2 on the backorder; ERP closes
    bo = backorders[0]["id"]
    lot2 = find_lot(rpc, fx, fin, f"LOT-{RUN}-2")
    report_production(rpc, bo, 9 - 7, lot2)
    rm = raw_moves(rpc, bo)
    check(rm[comp_a]["quantity"] == 4 and rm[comp_b]["quantity"] == 1, "backorder: A 4, B 1 for 2 F")
    seen = []
    mark_done(rpc, bo, backorder=False, seen=seen)
    check(seen == ["mrp.production.backorder"], f"mark done asked {seen} -> action_close_mo")
    b = rpc.read1("mrp.production", bo, ["state", "product_qty", "qty_produced"])
    more = rpc.sr("mrp.production", [("procurement_group_id", "=", m2o(m["procurement_group_id"])),
                                     ("id", "not in", [mo, bo])], ["name"])
    rm = raw_moves(rpc, bo)
    info(f"backorder after close: {b}; raw moves: " + "; ".join(
        f"{p}: demand={r['product_uom_qty']} qty={r['quantity']} state={r['state']}" for p, r in rm.items()))
    check(b["state"] == "done" and b["qty_produced"] == 2 and not more, "backorder done with 2, no new backorder")
    after = fx.rpc.on_hand([comp_a, comp_b, fin])
    check(after == {comp_a: 82, comp_b: 45.5, fin: 9}, f"on-hand A 82, B 45.5, F 9: {after}")

    # --- MO 2: full quantity in one report, actual consumption of A above the BOM ------------
    mo2 = rpc.create("mrp.production", {"product_id": fin, "product_qty": 5, "bom_id": bom})
    rpc.execute("mrp.production", "action_confirm", [[mo2]])
    lot3 = find_lot(rpc, fx, fin, f"LOT-{RUN}-3")
    report_production(rpc, mo2, 5, lot3, consumed={comp_a: 11})
    seen = []
    mark_done(rpc, mo2, backorder=False, seen=seen)
    check(seen == ["mrp.consumption.warning"], f"A consumed 11 instead of 10: wizard {seen} -> action_confirm")
    after = fx.rpc.on_hand([comp_a, comp_b, fin])
    check(after == {comp_a: 71, comp_b: 43, fin: 14}, f"on-hand A 82-11=71, B 45.5-2.5=43, F 14: {after}")

    # --- MO 3: partial report, ERP closes without backorder --------------------------------
    mo3 = rpc.create("mrp.production", {"product_id": fin, "product_qty": 10, "bom_id": bom})
    rpc.execute("mrp.production", "action_confirm", [[mo3]])
    report_production(rpc, mo3, 6, lot3)
    seen = []
    mark_done(rpc, mo3, backorder=False, seen=seen)
    check(seen == ["mrp.production.backorder"], "wizard mrp.production.backorder -> action_close_mo")
    m3 = rpc.read1("mrp.production", mo3, ["state", "product_qty", "qty_produced", "procurement_group_id"])
    rm = raw_moves(rpc, mo3)
    others = rpc.sr("mrp.production", [("procurement_group_id", "=", m2o(m3["procurement_group_id"])),
                                       ("id", "!=", mo3)], ["name"])
    info(f"MO3 after close: {m3}; raw moves " + "; ".join(
        f"{p}: demand={r['product_uom_qty']} qty={r['quantity']} state={r['state']}" for p, r in rm.items()))
    check(m3["state"] == "done" and m3["qty_produced"] == 6 and not others, "MO3 done with 6, no backorder")
    after = fx.rpc.on_hand([comp_a, comp_b, fin])
    check(after == {comp_a: 59, comp_b: 40, fin: 20}, f"on-hand A 59, B 40, F 20: {after}")

    # --- trap: mark done with qty_producing 0 produces EVERYTHING (no immediate-production wizard)
    mo4 = rpc.create("mrp.production", {"product_id": fin, "product_qty": 2, "bom_id": bom})
    rpc.execute("mrp.production", "action_confirm", [[mo4]])
    seen = []
    mark_done(rpc, mo4, backorder=False, seen=seen)
    m4 = rpc.read1("mrp.production", mo4, ["state", "qty_produced", "lot_producing_id"])
    check(m4["state"] == "done" and m4["qty_produced"] == 2 and m4["lot_producing_id"] and not seen,
          f"button_mark_done with qty_producing 0: no wizard, produces all 2, auto-creates lot {m4['lot_producing_id']}")

    # --- scrap ------------------------------------------------------------------------------
    # (a) finished product from a done MO (in the UI: MO > Scrap; finished goods are offered once done)
    before = fx.rpc.on_hand([comp_a, fin])
    scrap = rpc.create("stock.scrap", {"production_id": mo, "product_id": fin, "scrap_qty": 1,
                                       "lot_id": lot1, "company_id": fx.company})
    s = rpc.read1("stock.scrap", scrap, ["name", "location_id", "scrap_location_id", "product_uom_id", "state"])
    info(f"scrap {s}")
    res = rpc.execute("stock.scrap", "action_validate", [[scrap]])
    info(f"action_validate -> {res!r}")
    s = rpc.read1("stock.scrap", scrap, ["state", "move_ids"])
    mv = rpc.read1("stock.move", s["move_ids"][0], ["production_id", "raw_material_production_id", "scrapped",
                                                    "location_dest_id", "quantity", "state"])
    mo_scraps = rpc.read1("mrp.production", mo, ["scrap_ids", "scrap_count"])
    check(s["state"] == "done" and m2o(mv["production_id"]) == mo and mv["scrapped"],
          f"scrap done; its move has production_id={mo}: {mv}")
    check(scrap in mo_scraps["scrap_ids"], f"MO scrap_ids {mo_scraps}")
    check(fx.rpc.on_hand([fin])[fin] == before[fin] - 1, "F on-hand -1")
    # (b) a component scrapped during an open MO
    mo5 = rpc.create("mrp.production", {"product_id": fin, "product_qty": 3, "bom_id": bom})
    rpc.execute("mrp.production", "action_confirm", [[mo5]])
    scrap2 = rpc.create("stock.scrap", {"production_id": mo5, "product_id": comp_a, "scrap_qty": 1.5,
                                        "company_id": fx.company})
    res = rpc.execute("stock.scrap", "action_validate", [[scrap2]])
    s2 = rpc.read1("stock.scrap", scrap2, ["state", "move_ids", "location_id"])
    mv2 = rpc.read1("stock.move", s2["move_ids"][0], ["production_id", "raw_material_production_id"])
    check(s2["state"] == "done" and m2o(mv2["raw_material_production_id"]) == mo5,
          f"component scrap on an open MO: move.raw_material_production_id={mo5}")
    check(fx.rpc.on_hand([comp_a])[comp_a] == before[comp_a] - 1.5, "A on-hand -1.5")
    # (c) scrap more than on hand: a wizard instead of an error
    scrap3 = rpc.create("stock.scrap", {"production_id": mo5, "product_id": comp_b, "scrap_qty": 1000,
                                        "company_id": fx.company})
    res = rpc.execute("stock.scrap", "action_validate", [[scrap3]])
    check(isinstance(res, dict) and res.get("res_model") == "stock.warn.insufficient.qty.scrap",
          f"scrap 1000 > on hand returns wizard {res.get('res_model')} (button action_done forces it)")
    rpc.execute("mrp.production", "action_cancel", [[mo5]])
    return {"bom": bom, "fin": fin, "comp_a": comp_a, "mo_done": mo}


# --------------------------------------------------------------------------------------------
# 2. shipment
# --------------------------------------------------------------------------------------------

def so_lines(rpc, so):
    rows = rpc.sr("sale.order.line", [("order_id", "=", so)],
                  ["product_id", "product_uom_qty", "qty_delivered", "qty_to_invoice", "qty_invoiced",
                   "invoice_status", "qty_delivered_method"], order="id")
    return {m2o(r["product_id"]): r for r in rows}


def validate(rpc, picking, backorder, seen):
    result = rpc.execute("stock.picking", "button_validate", [[picking]])
    for _ in range(4):
        if not isinstance(result, dict) or not result.get("res_model"):
            return result
        model = result["res_model"]
        ctx = result.get("context") or {}
        seen.append(model)
        button = {"stock.backorder.confirmation": "process" if backorder else "process_cancel_backorder",
                  "confirm.stock.sms": "dont_send_sms"}[model]
        info(f"wizard {model} (context {ctx}) -> {button}")
        wizard = rpc.execute(model, "create", [{}], {"context": ctx})
        wizard = wizard[0] if isinstance(wizard, list) else wizard
        result = rpc.execute(model, button, [[wizard]], {"context": ctx})
    raise AssertionError(f"still a wizard: {result}")


def set_picked(rpc, picking, qty_by_product):
    """Writes each move's done quantity (the increment for this picking) and picked=True."""
    moves = rpc.sr("stock.move", [("picking_id", "=", picking)],
                   ["product_id", "product_uom_qty", "quantity", "picked", "sale_line_id", "state"])
    for mv in moves:
        q = qty_by_product.get(m2o(mv["product_id"]), 0)
        vals = {"quantity": q, "picked": bool(q)}
        rpc.execute("stock.move", "write", [[mv["id"]], vals])
        info(f"move {mv['id']} product {m2o(mv['product_id'])} demand {mv['product_uom_qty']} "
             f"(reserved {mv['quantity']}) -> write {vals}")


def wf_shipment(rpc, fx):
    step("2. shipment")
    p_del, p_ord = fx.products([
        {"name": f"MR ship delivery-policy {RUN}", "default_code": f"MR-SD-{RUN}", "detailed_type": "product",
         "invoice_policy": "delivery", "list_price": 50, "uom_id": fx.unit, "uom_po_id": fx.unit},
        {"name": f"MR ship order-policy {RUN}", "default_code": f"MR-SO-{RUN}", "detailed_type": "product",
         "invoice_policy": "order", "list_price": 40, "uom_id": fx.unit, "uom_po_id": fx.unit},
    ])
    fx.set_stock(p_del, 100)
    fx.set_stock(p_ord, 100)
    partner = rpc.create("res.partner", {"name": f"MR customer {RUN}"})
    so = rpc.create("sale.order", {"partner_id": partner, "order_line": [
        [0, 0, {"product_id": p_del, "product_uom_qty": 10}],
        [0, 0, {"product_id": p_ord, "product_uom_qty": 10}]]})
    res = rpc.execute("sale.order", "action_confirm", [[so]])
    info(f"action_confirm -> {res!r}")
    o = rpc.read1("sale.order", so, ["name", "state", "picking_ids", "invoice_status"])
    lines = so_lines(rpc, so)
    info(f"{o}")
    for p, l in lines.items():
        info(f"line {p}: qty {l['product_uom_qty']} delivered {l['qty_delivered']} to_invoice {l['qty_to_invoice']} "
             f"status {l['invoice_status']} method {l['qty_delivered_method']}")
    check(lines[p_del]["invoice_status"] == "no" and lines[p_ord]["invoice_status"] == "to invoice",
          "after confirm: delivery-policy line 'no', order-policy line 'to invoice' (qty_to_invoice 10)")
    check(len(o["picking_ids"]) == 1, "one outgoing picking")
    pick = o["picking_ids"][0]
    p = rpc.read1("stock.picking", pick, ["name", "state", "picking_type_code"])
    check(p["state"] == "assigned" and p["picking_type_code"] == "outgoing", f"picking {p}")
    before = fx.rpc.on_hand([p_del, p_ord])

    # report 1: cumulative D = 4 (p_del) and 6 (p_ord)
    set_picked(rpc, pick, {p_del: 4, p_ord: 6})
    seen = []
    validate(rpc, pick, backorder=True, seen=seen)
    check(seen == ["stock.backorder.confirmation"], f"wizards {seen} -> process (create backorder)")
    p = rpc.read1("stock.picking", pick, ["state"])
    bos = rpc.sr("stock.picking", [("backorder_id", "=", pick)], ["name", "state", "move_ids"])
    lines = so_lines(rpc, so)
    check(p["state"] == "done" and len(bos) == 1, f"picking done, backorder {bos[0]['name']} ({bos[0]['state']})")
    check(lines[p_del]["qty_delivered"] == 4 and lines[p_ord]["qty_delivered"] == 6, "qty_delivered 4 / 6")
    check(lines[p_del]["invoice_status"] == "to invoice" and lines[p_del]["qty_to_invoice"] == 4
          and lines[p_ord]["qty_to_invoice"] == 10,
          "delivery policy: qty_to_invoice 4 ('to invoice'); order policy: still 10")
    check(fx.rpc.on_hand([p_del, p_ord]) == {p_del: before[p_del] - 4, p_ord: before[p_ord] - 6}, "on-hand -4 / -6")

    # report 2: cumulative D = 10 and 8 -> increments 6 and 2 on the backorder; no further backorder
    bo = bos[0]["id"]
    set_picked(rpc, bo, {p_del: 10 - 4, p_ord: 8 - 6})
    seen = []
    validate(rpc, bo, backorder=False, seen=seen)
    check(seen == ["stock.backorder.confirmation"], f"wizards {seen} -> process_cancel_backorder")
    bo_r = rpc.read1("stock.picking", bo, ["state"])
    more = rpc.sr("stock.picking", [("backorder_id", "=", bo)], ["name", "state"])
    bo_moves = rpc.sr("stock.move", [("picking_id", "=", bo)], ["product_id", "state", "quantity", "product_uom_qty"])
    info(f"backorder moves after: {bo_moves}")
    lines = so_lines(rpc, so)
    o = rpc.read1("sale.order", so, ["invoice_status", "delivery_status"])
    for pid, l in lines.items():
        info(f"line {pid}: qty {l['product_uom_qty']} delivered {l['qty_delivered']} to_invoice {l['qty_to_invoice']} "
             f"status {l['invoice_status']}")
    check(bo_r["state"] == "done" and not more, "backorder done, no new backorder")
    check(lines[p_del]["qty_delivered"] == 10 and lines[p_ord]["qty_delivered"] == 8, "qty_delivered 10 / 8")
    check(lines[p_del]["qty_to_invoice"] == 10 and lines[p_ord]["qty_to_invoice"] == 10,
          "qty_to_invoice: delivery policy 10 (delivered), order policy 10 (ordered)")
    info(f"order invoice_status={o['invoice_status']} delivery_status={o['delivery_status']}")
    check(fx.rpc.on_hand([p_del, p_ord]) == {p_del: before[p_del] - 10, p_ord: before[p_ord] - 8}, "on-hand -10 / -8")

    # validating with nothing picked/quantity: UserError
    so2 = rpc.create("sale.order", {"partner_id": partner, "order_line": [[0, 0, {"product_id": p_del, "product_uom_qty": 1}]]})
    rpc.execute("sale.order", "action_confirm", [[so2]])
    pick2 = rpc.read1("sale.order", so2, ["picking_ids"])["picking_ids"][0]
    set_picked(rpc, pick2, {})
    rpc.expect_error("button_validate with all quantities 0", "stock.picking", "button_validate", [[pick2]])
    return {"partner": partner, "p_del": p_del}


# --------------------------------------------------------------------------------------------
# 3. products
# --------------------------------------------------------------------------------------------

def wf_products(rpc, fx, pg):
    step("3. products")
    vals = [
        {"default_code": f"MR-P1-{RUN}", "name": f"MR batch one {RUN}", "list_price": 12.345, "standard_price": 1.23456,
         "uom_id": fx.unit, "uom_po_id": fx.unit, "tracking": "lot", "detailed_type": "product"},
        {"default_code": f"MR-P2-{RUN}", "name": f"MR batch two {RUN}", "list_price": 1.005, "standard_price": 0.1 + 0.2,
         "uom_id": fx.kg, "uom_po_id": fx.kg, "tracking": "none", "detailed_type": "product"},
    ]
    ids = rpc.execute("product.product", "create", [vals])
    check(isinstance(ids, list) and len(ids) == 2 and all(isinstance(i, int) for i in ids),
          f"create([dict, dict]) returns a list of ids {ids}")
    one = rpc.execute("product.product", "create", [{"name": f"MR single {RUN}", "detailed_type": "consu"}])
    check(isinstance(one, int), f"create(dict) returns a bare int {one}")
    rows = rpc.execute("product.product", "read", [ids], {"fields": [
        "default_code", "name", "list_price", "lst_price", "standard_price", "uom_id", "uom_po_id", "tracking",
        "detailed_type", "type", "sale_ok", "purchase_ok", "active", "product_tmpl_id", "categ_id", "invoice_policy"]})
    for r in rows:
        info(json.dumps(r))
    check(close(rows[0]["list_price"], 12.35) and close(rows[1]["list_price"], 1.01),
          f"list_price rounded to 'Product Price' digits (2): 12.345->{rows[0]['list_price']}, 1.005->{rows[1]['list_price']}")
    info(f"standard_price 1.23456 -> {rows[0]['standard_price']!r}; 0.1+0.2 -> {rows[1]['standard_price']!r}")
    other = [c for c in rpc.read1("res.users", rpc.uid, ["company_ids"])["company_ids"] if c != fx.company]
    if other:
        r2 = rpc.read1("product.product", ids[0], ["standard_price"], context={"allowed_company_ids": [other[0]]})
        info(f"standard_price read with allowed_company_ids=[{other[0]}] -> {r2['standard_price']} (company-dependent)")
    if pg:
        out = psql(pg, f"SELECT p.id, t.name::text, t.list_price FROM product_product p JOIN product_template t "
                       f"ON t.id = p.product_tmpl_id WHERE p.id IN ({ids[0]},{ids[1]}) ORDER BY p.id")
        info(f"SQL product_template name (jsonb) / list_price: {out.strip()}")
        out = psql(pg, f"SELECT res_id, company_id, value_float FROM ir_property WHERE name='standard_price' "
                       f"AND res_id IN ('product.product,{ids[0]}','product.product,{ids[1]}')")
        info(f"SQL ir_property standard_price: {out.strip()}")

    # archive
    rpc.execute("product.product", "write", [[ids[1]], {"active": False}])
    r = rpc.read1("product.product", ids[1], ["active"])
    t = rpc.execute("product.template", "read", [[m2o(rows[1]["product_tmpl_id"])]], {"fields": ["active"]})[0]
    found = rpc.execute("product.product", "search", [[("id", "=", ids[1])]])
    found_all = rpc.execute("product.product", "search", [[("id", "=", ids[1]), ("active", "in", [True, False])]])
    check(not r["active"] and not found and found_all == [ids[1]],
          f"archived variant: active False, hidden from search unless active in (True, False); template active={t['active']}")
    partner = rpc.create("res.partner", {"name": f"MR p3 {RUN}"})
    res, err = rpc.raw("sale.order", "create", [{"partner_id": partner, "order_line": [[0, 0, {"product_id": ids[1], "product_uom_qty": 1}]]}])
    info(f"sale.order with an ARCHIVED product over RPC -> result={res} error={err and err['data']['name']}")
    rpc.execute("product.product", "write", [[ids[1]], {"active": True}])

    # sale_ok
    rpc.execute("product.product", "write", [[ids[1]], {"sale_ok": False}])
    res, err = rpc.raw("sale.order", "create", [{"partner_id": partner, "order_line": [[0, 0, {"product_id": ids[1], "product_uom_qty": 1}]]}])
    info(f"sale.order with sale_ok=False product over RPC -> result={res} error={err and err['data']['name']}")
    rpc.execute("product.product", "write", [[ids[1]], {"sale_ok": True}])

    # uom_id change on a product with stock moves
    fx.set_stock(ids[1], 5)
    grams = rpc.ref("uom.product_uom_gram")
    data = rpc.expect_error("write uom_id on a product with moves", "product.product", "write",
                            [[ids[1]], {"uom_id": grams, "uom_po_id": grams}])
    check(data["name"] == "odoo.exceptions.UserError", "UserError")
    ok = rpc.execute("product.product", "write", [[ids[1]], {"uom_id": fx.kg}])
    check(ok is True, "writing the SAME uom_id is accepted (no change)")
    ok = rpc.execute("product.product", "write", [[ids[0]], {"uom_id": fx.kg}])
    r = rpc.read1("product.product", ids[0], ["uom_id", "uom_po_id"])
    check(ok is True and m2o(r["uom_id"]) == fx.kg and m2o(r["uom_po_id"]) == fx.kg,
          "uom_id -> other category on a product WITHOUT moves: accepted, uom_po_id silently follows")
    rpc.expect_error("create with uom_id/uom_po_id of different categories", "product.product", "create",
                     [{"name": f"MR bad uom {RUN}", "uom_id": fx.unit, "uom_po_id": fx.kg}])
    ok = rpc.execute("product.product", "write", [[ids[0]], {"uom_id": grams, "uom_po_id": grams}])
    check(ok is True, "uom_id change within the category without moves: accepted")
    return ids


# --------------------------------------------------------------------------------------------
# 4. units
# --------------------------------------------------------------------------------------------

def wf_units(rpc, fx, pg):
    step("4. units of measure")
    kg = rpc.read1("uom.uom", fx.kg, ["name", "category_id", "uom_type", "factor"])
    weight = m2o(kg["category_id"])
    rpc.execute("uom.uom", "write", [[fx.kg], {"name": f"Kilogram {RUN}"}])
    check(rpc.read1("uom.uom", fx.kg, ["name"])["name"] == f"Kilogram {RUN}", "rename of the reference unit kg: ok")
    if pg:
        info("SQL uom_uom.name jsonb: " + psql(pg, f"SELECT name::text FROM uom_uom WHERE id={fx.kg}").strip())
    rpc.execute("uom.uom", "write", [[fx.kg], {"name": "kg"}])

    bag = rpc.create("uom.uom", {"name": f"bag25 {RUN}", "category_id": weight, "uom_type": "bigger",
                                 "factor_inv": 25, "rounding": 0.001})
    mg = rpc.create("uom.uom", {"name": f"mgx {RUN}", "category_id": weight, "uom_type": "smaller",
                                "factor": 1000000, "rounding": 1})
    tri = rpc.create("uom.uom", {"name": f"third {RUN}", "category_id": weight, "uom_type": "bigger",
                                 "factor_inv": 3})
    ratio = rpc.create("uom.uom", {"name": f"ratio7 {RUN}", "category_id": weight, "uom_type": "bigger",
                                   "ratio": 7})
    for u in (bag, mg, tri, ratio):
        info(json.dumps(rpc.read1("uom.uom", u, ["name", "uom_type", "factor", "factor_inv", "ratio", "rounding"])))
    b = rpc.read1("uom.uom", bag, ["factor", "factor_inv", "ratio"])
    check(close(b["factor"], 0.04) and close(b["factor_inv"], 25) and close(b["ratio"], 25),
          "bigger via factor_inv=25: factor 0.04, factor_inv 25, ratio 25")
    check(close(rpc.read1("uom.uom", ratio, ["factor_inv"])["factor_inv"], 7), "bigger via ratio=7 (the UI field) works too")
    check(close(rpc.read1("uom.uom", mg, ["factor"])["factor"], 1e6), "smaller via factor=1e6")

    bad = [
        ("factor 0", {"uom_type": "smaller", "factor": 0}),
        ("factor_inv 0", {"uom_type": "bigger", "factor_inv": 0}),
        ("ratio 0", {"uom_type": "bigger", "ratio": 0}),
        ("rounding 0", {"uom_type": "smaller", "factor": 2, "rounding": 0}),
        ("second reference unit", {"uom_type": "reference", "factor": 1}),
        ("reference with factor 2", {"uom_type": "reference", "factor": 2}),
    ]
    for what, v in bad:
        rpc.expect_error(f"uom create, {what}", "uom.uom", "create",
                         [dict(v, name=f"bad {what} {RUN}", category_id=weight)])
    neg = rpc.raw("uom.uom", "create", [{"name": f"neg {RUN}", "category_id": weight, "uom_type": "smaller", "factor": -5}])
    info(f"uom create with factor -5 -> result={neg[0]} error={neg[1] and neg[1]['data']['name']}")
    mix = rpc.raw("uom.uom", "create", [{"name": f"mix {RUN}", "category_id": weight, "uom_type": "bigger", "factor": 4}])
    if mix[0]:
        info(f"uom_type bigger with factor 4 (i.e. 'smaller' numbers) accepted: "
             f"{rpc.read1('uom.uom', mix[0], ['factor', 'factor_inv', 'ratio'])} -> ratio follows uom_type: no check")
    ok = rpc.execute("uom.uom", "write", [[bag], {"uom_type": "reference", "factor": 1}])
    refs = rpc.sr("uom.uom", [("category_id", "=", weight), ("uom_type", "=", "reference")], ["name"])
    check(ok is True and len(refs) == 2,
          f"TRAP: write uom_type='reference' skips the one-reference check -> 2 references {refs}")
    rpc.execute("uom.uom", "write", [[bag], {"uom_type": "bigger", "factor_inv": 25}])
    check(len(rpc.sr("uom.uom", [("category_id", "=", weight), ("uom_type", "=", "reference")], ["name"])) == 1,
          "reverted (write uom_type bigger runs the check again)")
    rpc.expect_error("write kg (reference) to smaller: category loses its reference", "uom.uom", "write",
                     [[fx.kg], {"uom_type": "smaller", "factor": 2}])
    rpc.expect_error("unlink kg", "uom.uom", "unlink", [[fx.kg]])
    rpc.execute("uom.uom", "write", [[bag], {"active": False}])
    check(not rpc.read1("uom.uom", bag, ["active"])["active"], "archive a unit: active False")


# --------------------------------------------------------------------------------------------
# 5. BOM delete
# --------------------------------------------------------------------------------------------

def wf_bom(rpc, fx, prod):
    step("5. BOM delete / archive")
    fin, bom, comp = prod["fin"], prod["bom"], prod["comp_a"]
    tmpl = m2o(rpc.read1("product.product", fin, ["product_tmpl_id"])["product_tmpl_id"])
    # bom (of workflow 1) has done MOs only now; make one with a confirmed MO too
    bom2 = rpc.create("mrp.bom", {"product_tmpl_id": tmpl, "product_qty": 1, "code": f"B2-{RUN}",
                                  "bom_line_ids": [[0, 0, {"product_id": comp, "product_qty": 1}]]})
    mo = rpc.create("mrp.production", {"product_id": fin, "product_qty": 1, "bom_id": bom2})
    rpc.execute("mrp.production", "action_confirm", [[mo]])
    res, err = rpc.raw("mrp.bom", "unlink", [[bom2]])
    if err is None:
        still = rpc.execute("mrp.bom", "search", [[("id", "=", bom2), ("active", "in", [True, False])]])
        raise AssertionError(f"unlink of a BOM with a confirmed MO returned {res!r} and the BOM "
                             f"{'still exists' if still else 'is gone'}: this Odoo's unlink is broken "
                             f"(upstream raises UserError)")
    data = err["data"]
    info(f"unlink a BOM with a confirmed MO: data.name={data['name']!r} data.message={data['message']!r}")
    check(data["name"] == "odoo.exceptions.UserError", "UserError")
    ok = rpc.execute("mrp.bom", "write", [[bom2], {"active": False}])
    b = rpc.execute("mrp.bom", "read", [[bom2]], {"fields": ["active"]})[0]
    m = rpc.read1("mrp.production", mo, ["bom_id", "state"])
    check(ok is True and not b["active"] and m2o(m["bom_id"]) == bom2,
          f"archive (active False) of a BOM with a confirmed MO works; the MO keeps bom_id: {m}")
    rpc.execute("mrp.production", "action_cancel", [[mo]])
    # BOM used only by done MOs
    done = rpc.sr("mrp.production", [("bom_id", "=", bom)], ["state"])
    info(f"bom {bom} used by MOs in states {sorted({d['state'] for d in done})}")
    res, err = rpc.raw("mrp.bom", "unlink", [[bom]])
    m = rpc.read1("mrp.production", prod["mo_done"], ["bom_id", "state"])
    lines = rpc.sr("stock.move", [("raw_material_production_id", "=", prod["mo_done"])], ["bom_line_id"])
    info(f"unlink of a BOM used only by done/cancelled MOs -> result={res} error={err and err['data']['message']}")
    gone = not rpc.execute("mrp.bom", "search", [[("id", "=", bom), ("active", "in", [True, False])]])
    check(err is None and gone, "a BOM used only by done/cancelled MOs CAN be deleted")
    info(f"done MO afterwards: bom_id={m['bom_id']}; its raw moves' bom_line_id={[l['bom_line_id'] for l in lines]}")


# --------------------------------------------------------------------------------------------
# 6. error shapes
# --------------------------------------------------------------------------------------------

def psql_bin():
    p = shutil.which("psql")
    if p:
        return p
    b = os.environ.get("MILLRACE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
    return os.path.join(b, "psql")


def psql(url, sql):
    return subprocess.run([psql_bin(), "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout


def wf_errors(rpc, fx, pg, concurrency):
    step("6. error shapes")
    d = rpc.expect_error("ValidationError (uom with two references)", "uom.uom", "create",
                         [{"name": f"ref2 {RUN}", "category_id": rpc.read1("uom.uom", fx.kg, ["category_id"])["category_id"][0],
                           "uom_type": "reference"}])
    check(d["name"] == "odoo.exceptions.ValidationError", d["name"])
    d = rpc.expect_error("UserError (delete a done MO)", "mrp.production", "unlink",
                         [rpc.execute("mrp.production", "search", [[("state", "=", "done")]], {"limit": 1})])
    check(d["name"] == "odoo.exceptions.UserError", d["name"])
    d = rpc.expect_error("MissingError (write a deleted id)", "product.product", "write", [[99999999], {"name": "x"}])
    check(d["name"] == "odoo.exceptions.MissingError", d["name"])
    res, err = rpc.raw("product.product", "read", [[99999999]], {"fields": ["name"]})
    info(f"read of a missing id -> result={res!r} error={err and err['data']['name']}")
    d = rpc.expect_error("private method over RPC", "res.users.apikeys", "_generate", [None, "x"])
    d = rpc.expect_error("unknown method", "product.product", "no_such_method", [[1]])
    d = rpc.expect_error("unknown field in write", "product.product", "write", [[fx.unit], {"no_such_field": 1}])
    d = rpc.expect_error("unknown model", "no.such.model", "search", [[]])
    # bad password / uid
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": [rpc.db, rpc.uid, "wrong-password", "res.partner", "search", [[]], {}]}}).encode()
    with urllib.request.urlopen(urllib.request.Request(rpc.url, body, {"Content-Type": "application/json"})) as r:
        reply = json.load(r)
    info(f"wrong password: error.code={reply['error']['code']} data.name={reply['error']['data']['name']!r} "
         f"data.message={reply['error']['data']['message']!r}")
    login = rpc.call("common", "login", rpc.db, "admin", "wrong")
    info(f"common.login with a wrong password returns {login!r} (no error)")
    # AccessError: a user with only internal-user rights
    uid = rpc.create("res.users", {"name": f"MR plain {RUN}", "login": f"mr_plain_{RUN}", "password": "plain-pw-123",
                                   "groups_id": [[6, 0, [rpc.ref("base.group_user")]]]})
    dflt = rpc.create("res.users", {"name": f"MR default {RUN}", "login": f"mr_default_{RUN}"})
    g = rpc.sr("res.groups", [("id", "in", rpc.read1("res.users", dflt, ["groups_id"])["groups_id"])], ["full_name"])
    info(f"a res.users created with no groups_id gets the default user's groups: {sorted(x['full_name'] for x in g)}")
    plain = Client(rpc.url[:-len("/jsonrpc")], rpc.db, f"mr_plain_{RUN}", "plain-pw-123")
    d = plain.expect_error("AccessError (internal user without Inventory rights writes a product)",
                           "product.product", "write", [[fx.products([{"name": f"MR acl {RUN}"}])[0]], {"name": "x"}])
    check(d["name"] == "odoo.exceptions.AccessError", d["name"])
    d = plain.expect_error("AccessError (plain user reads mrp.production)", "mrp.production", "search", [[]])
    d = plain.expect_error("AccessError (plain user reads ir.config_parameter)", "ir.config_parameter", "search_read", [[]])
    d = plain.expect_error("AccessError (record rule: other company's warehouse)", "stock.warehouse", "read",
                           [rpc.execute("stock.warehouse", "search", [[("company_id", "!=", fx.company)]])], {"fields": ["name"]})

    if concurrency and pg:
        partner = rpc.create("res.partner", {"name": f"MR lock {RUN}"})
        # (a) one conflict: Odoo retries, the client sees success
        sql = f"BEGIN; UPDATE res_partner SET write_date = now() WHERE id = {partner}; SELECT pg_sleep(2); COMMIT;"
        p = subprocess.Popen([psql_bin(), "-X", "-q", pg, "-c", sql], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        t = time.time()
        res, err = rpc.raw("res.partner", "write", [[partner], {"comment": "one conflict"}])
        p.wait()
        info(f"one concurrent update (lock held 2 s): result={res} error={err} after {time.time() - t:.1f}s")
        check(res is True, "a single serialization failure is retried by Odoo and invisible to the client")
        # (b) a conflict on every try: retries exhausted
        sql = "".join(f"BEGIN; UPDATE res_partner SET write_date = now() WHERE id = {partner}; "
                      f"SELECT pg_sleep(2); COMMIT;\n" for _ in range(300))
        p = subprocess.Popen([psql_bin(), "-X", "-q", pg], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        p.stdin.write(sql)
        p.stdin.flush()
        time.sleep(0.5)
        t = time.time()
        # nested retries (HTTP layer x execute_kw, 5 x 5 tries): can take several minutes
        res, err = rpc.raw("res.partner", "write", [[partner], {"comment": "always conflicting"}], timeout=900)
        took = time.time() - t
        p.kill()
        p.wait()
        if err:
            info(f"retries exhausted after {took:.1f}s: error.code={err['code']} error.message={err['message']!r} "
                 f"data.name={err['data']['name']!r} data.message={err['data']['message']!r} "
                 f"data.arguments={err['data']['arguments']!r}")
            check(err["data"]["name"] == "psycopg2.errors.SerializationFailure", "psycopg2.errors.SerializationFailure")
        else:
            info(f"no error after {took:.1f}s: result={res}")


# --------------------------------------------------------------------------------------------
# 7. integration user + API key
# --------------------------------------------------------------------------------------------

def wf_user(rpc, fx):
    step("7. integration user and API key")
    groups = ["base.group_user", "mrp.group_mrp_manager", "stock.group_stock_manager",
              "sales_team.group_sale_manager", "purchase.group_purchase_manager", "uom.group_uom",
              "stock.group_production_lot"]
    gids = [rpc.ref(g) for g in groups]
    login, password = f"millrace_{RUN}", f"mr-{RUN}-integration-pw"
    # email: without one, any chatter message posted in the user's name (e.g. "The backorder ... has
    # been created." when a picking is validated with a backorder) fails with UserError
    # "Unable to send message, please configure the sender's email address."
    uid = rpc.create("res.users", {"name": f"millrace integration {RUN}", "login": login, "password": password,
                                   "email": f"{login}@millrace.invalid",
                                   "company_id": fx.company, "company_ids": [[6, 0, [fx.company]]],
                                   "groups_id": [[4, g] for g in gids]})
    u = rpc.read1("res.users", uid, ["share", "groups_id"])
    check(all(g in u["groups_id"] for g in gids) and not u["share"], f"user {uid} internal with {groups}")

    # Over /jsonrpc (the external API) there is no HTTP request object (dispatch_rpc runs under
    # borrow_request()), so @check_identity methods such as make_key refuse:
    me = Client(rpc.url[:-len("/jsonrpc")], rpc.db, login, password)
    wiz = me.create("res.users.apikeys.description", {"name": "millrace"})
    me.expect_error("make_key over /jsonrpc", "res.users.apikeys.description", "make_key", [[wiz]])
    # What the UI does (Preferences > Account Security > New API Key), over the web client's
    # session API: /web/session/authenticate, then /web/dataset/call_kw.
    web = WebSession(rpc.url[:-len("/jsonrpc")], rpc.db, login, password)
    wiz = web.call_kw("res.users.apikeys.description", "create", [{"name": "millrace"}])
    act = web.call_kw("res.users.apikeys.description", "make_key", [[wiz]])
    info(f"make_key (web session) -> res_model={act.get('res_model')} res_id={act.get('res_id')}")
    check(act.get("res_model") == "res.users.identitycheck", "make_key asks for res.users.identitycheck first")
    web.call_kw("res.users.identitycheck", "write", [[act["res_id"]], {"password": password}])
    act = web.call_kw("res.users.identitycheck", "run_check", [[act["res_id"]]])
    key = (act.get("context") or {}).get("default_key")
    check(act.get("res_model") == "res.users.apikeys.show" and key and len(key) == 40,
          f"run_check -> res.users.apikeys.show, context.default_key = 40-hex key {key[:6]}...")
    print(f"   INTEGRATION_USER login={login} api_key={key}", flush=True)
    kuid = rpc.call("common", "login", rpc.db, login, key)
    check(kuid == uid, "common.login(db, login, API key) -> the user's id")
    api = Client(rpc.url[:-len("/jsonrpc")], rpc.db, login, key)
    part = api.create("res.partner", {"name": f"MR written by key {RUN}"})
    api.execute("res.partner", "write", [[part], {"comment": "by api"}])
    r = rpc.read1("res.partner", part, ["create_uid", "write_uid"])
    check(m2o(r["create_uid"]) == uid and m2o(r["write_uid"]) == uid, f"create_uid = write_uid = {uid}: {r}")
    keys = rpc.sr("res.users.apikeys", [("user_id", "=", uid)], ["name", "scope"])
    info(f"res.users.apikeys of the user (read as admin): {keys}")
    # the user can revoke its own key
    kid = keys[0]["id"]
    res, err = api.raw("res.users.apikeys", "remove", [[kid]])
    info(f"remove key as the key's user over RPC -> result={res} error={err and err['data']['name']} "
         f"{err and err['data']['message']!r}")
    return uid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--url", default=os.environ.get("MILLRACE_TEST_ODOO_RPC", "http://127.0.0.1:58069"))
    ap.add_argument("--login", default=os.environ.get("MILLRACE_TEST_ODOO_LOGIN", "admin"))
    ap.add_argument("--password", default=os.environ.get("MILLRACE_TEST_ODOO_PASSWORD", "admin"))
    ap.add_argument("--only", default="1,2,3,4,5,6,7")
    ap.add_argument("--pg-url", default=None)
    ap.add_argument("--no-concurrency", action="store_true")
    a = ap.parse_args()
    pg = a.pg_url
    if pg is None and os.environ.get("MILLRACE_TEST_ODOO_PG_URL"):
        u = urllib.parse.urlsplit(os.environ["MILLRACE_TEST_ODOO_PG_URL"])
        pg = urllib.parse.urlunsplit(u._replace(path="/" + a.db))
    only = {int(x) for x in a.only.split(",")}
    rpc = Client(a.url, a.db, a.login, a.password)
    fx = Fixture(rpc)
    info(f"Odoo {rpc.version()['server_version']} db {a.db} uid {rpc.uid} company {fx.company} stock {fx.stock}")
    t = time.time()
    prod = None
    if 1 in only or 5 in only:
        prod = wf_production(rpc, fx)
    if 2 in only:
        wf_shipment(rpc, fx)
    if 3 in only:
        wf_products(rpc, fx, pg)
    if 4 in only:
        wf_units(rpc, fx, pg)
    if 5 in only:
        wf_bom(rpc, fx, prod)
    if 6 in only:
        wf_errors(rpc, fx, pg, not a.no_concurrency)
    if 7 in only:
        wf_user(rpc, fx)
    print(f"\nALL CHECKS PASSED ({rpc.calls} admin calls, {time.time() - t:.0f}s)")


if __name__ == "__main__":
    main()
