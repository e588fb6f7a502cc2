//! Business actions through Odoo's API: what a user does on a manufacturing order's form or on
//! a delivery, for the fields a mapping's `[odoo.workflow]` records by action instead of
//! writing them (Odoo computes them: a written `qty_delivered` is overwritten from the stock
//! moves, a written `qty_producing` consumes nothing).
//!
//! Every action reads the record first and does only what is still missing, so a batch retried
//! after an outage (some calls made, the reply of one lost) does each step once: the ERP's
//! quantities are cumulative, the steps are "bring Odoo to this total".

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::ApplyError;
use crate::mapping::{Record, Workflow, WorkflowKind};
use crate::model::Value;
use crate::odoo_api::{ApiError, OdooApi, Repeat};

/// Quantities closer than this are equal (Odoo's quantity precision is 0.01 or finer).
const EPSILON: f64 = 1e-6;

/// One record's action, from the values of its workflow fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub kind: WorkflowKind,
    /// The record's id (mrp.production, sale.order.line).
    pub id: i64,
    pub quantity: f64,
    pub scrapped: f64,
    pub lot: Option<String>,
    pub done: bool,
    pub backorder: bool,
}

impl Action {
    pub fn new(workflow: &Workflow, id: i64, record: &Record) -> Result<Action, String> {
        let number = |field: usize| -> Result<f64, String> {
            match &record.values[field] {
                Value::Null => Ok(0.0),
                Value::Int(n) => Ok(*n as f64),
                Value::Float(f) => Ok(*f),
                Value::Decimal(d) => Ok(d.to_f64()),
                other => Err(format!("{other:?} is not a quantity")),
            }
        };
        let lot = match workflow.lot.map(|f| &record.values[f]) {
            Some(Value::Text(name)) if !name.trim().is_empty() => Some(name.trim().to_string()),
            _ => None,
        };
        Ok(Action {
            kind: workflow.kind,
            id,
            quantity: number(workflow.quantity)?,
            scrapped: workflow.scrapped.map(number).transpose()?.unwrap_or(0.0),
            lot,
            done: workflow.is_done(record),
            backorder: workflow.backorder,
        })
    }
}

/// Why an action stopped: Odoo cannot do it as asked (the change is dead-lettered), or Odoo is
/// unavailable (the batch is retried).
#[derive(Debug)]
pub enum ActionError {
    Dead(String),
    Api(ApiError),
}

impl From<ApiError> for ActionError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Refused { call, name, message } => {
                let short = name.rsplit('.').next().unwrap_or(&name).to_string();
                ActionError::Dead(format!("Odoo refused {call}: {message} ({short})"))
            }
            other => ActionError::Api(other),
        }
    }
}

impl ActionError {
    /// The change's outcome, or the batch's failure.
    pub fn into_outcome(self) -> Result<ApplyError, ApiError> {
        match self {
            ActionError::Dead(reason) => Ok(ApplyError::Dead { field: None, reason }),
            ActionError::Api(e) => Err(e),
        }
    }
}

fn f64_of(v: &Json) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn id_of(v: &Json) -> Option<i64> {
    v.as_i64().or_else(|| v.get(0).and_then(Json::as_i64))
}

async fn read_one(api: &OdooApi, model: &str, id: i64, fields: &[&str]) -> Result<Json, ActionError> {
    let rows = api.search_read(model, json!([["id", "=", id]]), fields, true).await?;
    rows.into_iter().next().ok_or_else(|| ActionError::Dead(format!("Odoo has no {model} {id} (deleted?)")))
}

/// Answers the wizards a button opens as the user would, until the button's work is done.
async fn answer_wizards(
    api: &OdooApi,
    mut reply: Json,
    what: &str,
    backorder: bool,
) -> Result<Option<i64>, ActionError> {
    for _ in 0..4 {
        let Some(res_model) = reply.get("res_model").and_then(Json::as_str).map(str::to_string) else {
            return Ok(None);
        };
        let context = reply.get("context").cloned().unwrap_or_else(|| json!({}));
        let button = match res_model.as_str() {
            // The form a finished button opens (the backorder made): done.
            "mrp.production" | "stock.picking" => return Ok(reply.get("res_id").and_then(Json::as_i64)),
            "mrp.production.backorder" if backorder => "action_backorder",
            "mrp.production.backorder" => "action_close_mo",
            "stock.backorder.confirmation" if backorder => "process",
            "stock.backorder.confirmation" => "process_cancel_backorder",
            // The quantities consumed differ from the BOM's: the ERP reported what was used.
            "mrp.consumption.warning" => "action_confirm",
            // Texting the customer about the delivery (stock_sms) is the plant's choice in
            // Odoo's settings, not an integration's: the delivery is validated without it.
            "confirm.stock.sms" => "dont_send_sms",
            other => {
                return Err(ActionError::Dead(format!(
                    "{what}: Odoo asked a question millrace does not answer ({other}); finish it in Odoo"
                )))
            }
        };
        let ids = api.create(&res_model, &[json!({})], &context).await?;
        reply =
            api.execute_kw(&res_model, button, json!([ids]), json!({"context": context}), Repeat::OnlyIfNotRun).await?;
    }
    Err(ActionError::Dead(format!("{what}: Odoo kept asking questions; finish it in Odoo")))
}

/// A production report on a manufacturing order: the quantity producing (cumulative) and the
/// lot set and the components consumed for it as the form's onchange does
/// (`set_qty_producing`), the components of scrapped units scrapped from the order, and, when
/// the record says the order is finished, the order marked done (with a backorder for the rest
/// or without, as the mapping says).
pub async fn production(api: &OdooApi, a: &Action) -> Result<(), ActionError> {
    let fields = [
        "name",
        "state",
        "qty_producing",
        "qty_produced",
        "product_qty",
        "product_id",
        "company_id",
        "lot_producing_id",
    ];
    let mo = read_one(api, "mrp.production", a.id, &fields).await?;
    let name = mo["name"].as_str().unwrap_or("?").to_string();
    let what = format!("manufacturing order {name}");
    match mo["state"].as_str().unwrap_or("") {
        "done" => {
            let produced = f64_of(&mo["qty_produced"]);
            if (produced - a.quantity).abs() > EPSILON {
                return Err(ActionError::Dead(format!(
                    "{what} is done in Odoo with {produced} produced; the ERP reports {}: correct it in one of them",
                    a.quantity
                )));
            }
            return Ok(());
        }
        "cancel" => return Err(ActionError::Dead(format!("{what} is cancelled in Odoo"))),
        "draft" => return Err(ActionError::Dead(format!("{what} is a draft in Odoo: confirm it first"))),
        _ => {}
    }
    let product = id_of(&mo["product_id"]).unwrap_or(0);
    let company = id_of(&mo["company_id"]).unwrap_or(0);
    let lot = match &a.lot {
        Some(lot) => Some(lot_id(api, product, company, lot).await?),
        None => None,
    };
    let current_lot = id_of(&mo["lot_producing_id"]);
    if (f64_of(&mo["qty_producing"]) - a.quantity).abs() > EPSILON || (lot.is_some() && lot != current_lot) {
        let mut values = json!({"qty_producing": a.quantity});
        if let Some(lot) = lot {
            values["lot_producing_id"] = json!(lot);
        }
        api.write("mrp.production", &[a.id], &values, &json!({})).await?;
        // What the form's onchange does: each component move set to what the quantity
        // producing consumes per the BOM, and picked.
        api.execute_kw("mrp.production", "set_qty_producing", json!([[a.id]]), json!({}), Repeat::Safe).await?;
    }
    if a.scrapped > EPSILON {
        scrap_components(api, a, f64_of(&mo["product_qty"]), company).await?;
    }
    if a.done {
        if a.quantity <= EPSILON {
            // Odoo would take "nothing producing" as "everything": it records the whole
            // ordered quantity as produced.
            return Err(ActionError::Dead(format!(
                "{what}: the ERP closed it with nothing produced; close or cancel it in Odoo"
            )));
        }
        let reply = api
            .execute_kw("mrp.production", "button_mark_done", json!([[a.id]]), json!({}), Repeat::OnlyIfNotRun)
            .await?;
        answer_wizards(api, reply, &what, a.backorder).await?;
    }
    Ok(())
}

/// The lot of `product` named `name`, created when Odoo has none.
async fn lot_id(api: &OdooApi, product: i64, company: i64, name: &str) -> Result<i64, ActionError> {
    let domain = json!([["product_id", "=", product], ["name", "=", name], ["company_id", "in", [company, false]]]);
    if let Some(lot) = api.search_read("stock.lot", domain, &["id"], true).await?.first() {
        return Ok(lot["id"].as_i64().unwrap_or(0));
    }
    let ids = api
        .create("stock.lot", &[json!({"name": name, "product_id": product, "company_id": company})], &json!({}))
        .await?;
    Ok(ids[0])
}

/// Scraps from the order what its components held for the scrapped units (the BOM's share of
/// each per unit), less what was scrapped for it before: scrapped units consumed their
/// components, and finished none.
async fn scrap_components(api: &OdooApi, a: &Action, ordered: f64, company: i64) -> Result<(), ActionError> {
    if ordered <= EPSILON {
        return Ok(());
    }
    let moves = api
        .search_read(
            "stock.move",
            json!([["raw_material_production_id", "=", a.id], ["state", "!=", "cancel"], ["scrapped", "=", false]]),
            &["product_id", "product_uom_qty", "product_uom", "location_id"],
            true,
        )
        .await?;
    let scraps = api
        .search_read(
            "stock.scrap",
            json!([["production_id", "=", a.id], ["state", "=", "done"]]),
            &["product_id", "scrap_qty"],
            true,
        )
        .await?;
    let mut scrapped: BTreeMap<i64, f64> = BTreeMap::new();
    for s in &scraps {
        *scrapped.entry(id_of(&s["product_id"]).unwrap_or(0)).or_default() += f64_of(&s["scrap_qty"]);
    }
    for m in &moves {
        let product = id_of(&m["product_id"]).unwrap_or(0);
        let wanted = a.scrapped * f64_of(&m["product_uom_qty"]) / ordered;
        let missing = wanted - scrapped.get(&product).copied().unwrap_or(0.0);
        if missing <= EPSILON {
            continue;
        }
        // Counted once per product, whatever the number of its moves.
        scrapped.insert(product, wanted);
        let values = json!({
            "production_id": a.id,
            "product_id": product,
            "scrap_qty": (missing * 1e6).round() / 1e6,
            "product_uom_id": id_of(&m["product_uom"]),
            "location_id": id_of(&m["location_id"]),
            "company_id": company,
        });
        let ids = api.create("stock.scrap", &[values], &json!({})).await?;
        let reply =
            api.execute_kw("stock.scrap", "action_validate", json!([ids]), json!({}), Repeat::OnlyIfNotRun).await?;
        // Odoo asks whether to scrap more than it counts on hand; the shop floor scrapped it.
        if reply.get("res_model").and_then(Json::as_str) == Some("stock.warn.insufficient.qty.scrap") {
            let context = reply.get("context").cloned().unwrap_or_else(|| json!({}));
            let wizard = api.create("stock.warn.insufficient.qty.scrap", &[json!({})], &context).await?;
            api.execute_kw(
                "stock.warn.insufficient.qty.scrap",
                "action_done",
                json!([wizard]),
                json!({"context": context}),
                Repeat::OnlyIfNotRun,
            )
            .await?;
        }
    }
    Ok(())
}

/// One sale order line's shipment: its cumulative shipped quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Shipment {
    /// The change's index in the batch.
    pub index: usize,
    pub line: i64,
    pub shipped: f64,
    pub backorder: bool,
}

/// A delivery move to ship: (change index, move id, quantity).
type ShippedMove = (usize, i64, f64);

/// Deliveries for the shipped quantities: the lines' open delivery moves set to what shipped
/// since Odoo's delivered quantity, and each delivery validated once for all its lines in the
/// batch (what is not shipped goes to a backorder, or is cancelled, as the mapping says). Odoo
/// then computes the lines' delivered quantity and invoice status itself. The outcome of each
/// shipment, by its index.
pub async fn deliveries(
    api: &OdooApi,
    shipments: &[Shipment],
) -> Result<Vec<(usize, Result<(), ActionError>)>, ApiError> {
    let mut outcomes = Vec::new();
    let mut pickings: BTreeMap<i64, (bool, Vec<ShippedMove>)> = BTreeMap::new();
    for (n, s) in shipments.iter().enumerate() {
        // Quantities are cumulative: a later shipment of the line in the batch includes this one.
        if shipments[n + 1..].iter().any(|later| later.line == s.line) {
            outcomes.push((s.index, Ok(())));
            continue;
        }
        match delivery_move(api, s).await {
            Ok(None) => outcomes.push((s.index, Ok(()))),
            Ok(Some((picking, move_id, quantity))) => {
                let entry = pickings.entry(picking).or_insert((s.backorder, Vec::new()));
                entry.1.push((s.index, move_id, quantity));
            }
            Err(ActionError::Api(e)) => return Err(e),
            Err(dead) => outcomes.push((s.index, Err(dead))),
        }
    }
    for (picking, (backorder, lines)) in pickings {
        let reason = match validate(api, picking, backorder, &lines).await {
            Ok(()) => None,
            Err(ActionError::Api(e)) => return Err(e),
            Err(ActionError::Dead(reason)) => Some(reason),
        };
        for (index, ..) in &lines {
            outcomes.push((*index, reason.clone().map_or(Ok(()), |r| Err(ActionError::Dead(r)))));
        }
    }
    Ok(outcomes)
}

/// The open delivery move to ship a line's increment on: (picking, move, quantity), or `None`
/// when Odoo already delivered what the ERP shipped.
async fn delivery_move(api: &OdooApi, s: &Shipment) -> Result<Option<(i64, i64, f64)>, ActionError> {
    let line = read_one(api, "sale.order.line", s.line, &["qty_delivered", "state", "product_uom", "order_id"]).await?;
    let order = line["order_id"].get(1).and_then(Json::as_str).unwrap_or("?").to_string();
    let what = format!("sale order {order} line {}", s.line);
    let delivered = f64_of(&line["qty_delivered"]);
    let increment = s.shipped - delivered;
    if increment.abs() <= EPSILON {
        return Ok(None);
    }
    if increment < 0.0 {
        return Err(ActionError::Dead(format!(
            "{what}: the ERP shipped {} but Odoo delivered {delivered}; a return is made in Odoo",
            s.shipped
        )));
    }
    if !matches!(line["state"].as_str(), Some("sale" | "done")) {
        return Err(ActionError::Dead(format!("{what}: the order is not confirmed in Odoo, so it has no delivery")));
    }
    let moves = api
        .search_read(
            "stock.move",
            json!([
                ["sale_line_id", "=", s.line],
                ["state", "not in", ["done", "cancel"]],
                ["location_dest_id.usage", "=", "customer"],
                ["picking_id", "!=", false]
            ]),
            &["picking_id", "product_uom"],
            true,
        )
        .await?;
    let Some(first) = moves.first() else {
        return Err(ActionError::Dead(format!(
            "{what}: Odoo has no open delivery for the {increment} shipped beyond its {delivered}"
        )));
    };
    if id_of(&first["product_uom"]) != id_of(&line["product_uom"]) {
        return Err(ActionError::Dead(format!(
            "{what}: its delivery counts in another unit than the line; validate it in Odoo"
        )));
    }
    let picking = id_of(&first["picking_id"]).unwrap_or(0);
    Ok(Some((picking, first["id"].as_i64().unwrap_or(0), increment)))
}

/// Sets the shipped moves of a delivery (every other move of it shipping nothing now) and
/// validates it.
async fn validate(api: &OdooApi, picking: i64, backorder: bool, shipped: &[ShippedMove]) -> Result<(), ActionError> {
    let moves = api
        .search_read(
            "stock.move",
            json!([["picking_id", "=", picking], ["state", "not in", ["done", "cancel"]]]),
            &["id"],
            true,
        )
        .await?;
    for m in &moves {
        let id = m["id"].as_i64().unwrap_or(0);
        let values = match shipped.iter().find(|(_, move_id, _)| *move_id == id) {
            Some((_, _, quantity)) => json!({"quantity": quantity, "picked": true}),
            None => json!({"quantity": 0, "picked": false}),
        };
        api.write("stock.move", &[id], &values, &json!({})).await?;
    }
    let reply =
        api.execute_kw("stock.picking", "button_validate", json!([[picking]]), json!({}), Repeat::OnlyIfNotRun).await?;
    answer_wizards(api, reply, &format!("delivery {picking}"), backorder).await?;
    Ok(())
}
