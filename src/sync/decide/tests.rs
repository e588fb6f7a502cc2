//! The rules of DESIGN §6, one case at a time: small mappings, known state and target rows made
//! in code, no database. [`Case::decide`] answers the rules' requests for rows as the engine
//! does and records them, so each test also shows which rows a decision reads.

use std::path::Path;

use super::*;
use crate::mapping::transform::coerce;

/// Owner legacy; `active` is Odoo's; `note` is only in Odoo. Fields in order: active, code,
/// name, note, price.
const ITEM: &str = r#"
entity = "item"
key = ["code"]
owner = "legacy"
conflict = "reject"

[fields]
code = { type = "text" }
name = { type = "text" }
price = { type = "decimal" }
active = { type = "bool", owner = "odoo" }
note = { type = "text" }

[odoo]
table = "product_product"

[odoo.columns]
code = "default_code"
name = "name"
price = "list_price"
active = "active"
note = "description"

[legacy]
table = "ITEM"
strategy = "hashdiff"

[legacy.columns]
code = "ITEM_NO"
name = "DESCR"
price = "PRICE"
active = "ACTIVE"
"#;

/// Owner odoo, with a hand-over of each kind. Fields in order: order_no, qty_produced,
/// qty_scrapped, qty_shipped, status.
const ORDER: &str = r#"
entity = "order"
key = ["order_no"]
owner = "odoo"

[fields]
order_no = { type = "text" }
status = { type = "text" }
qty_produced = { type = "decimal" }
qty_scrapped = { type = "decimal" }
qty_shipped = { type = "decimal", owner = "legacy" }

# Reported where the work is done while the order is released.
[[handover]]
field = "qty_produced"
to = "both"
when = { status = ["released"] }

# The shop floor's while released; Odoo's again once closed.
[[handover]]
field = "qty_scrapped"
to = "legacy"
when = { status = ["released"] }

# The ERP's, but Odoo's while nothing ships.
[[handover]]
field = "qty_shipped"
to = "odoo"
when = { status = ["open", "cancelled"] }

[odoo]
table = "mrp_production"
only = { status = ["open", "released", "closed", "cancelled"] }

[odoo.columns]
order_no = "name"
status = "state"
qty_produced = "qty_producing"
qty_scrapped = "qty_scrap"
qty_shipped = "qty_shipped"

[legacy]
table = "PROD_ORDER"
strategy = "hashdiff"

[legacy.columns]
order_no = "ORDER_NO"
status = "STATUS"
qty_produced = "QTY_COMPLETED"
qty_scrapped = "QTY_SCRAP"
qty_shipped = "QTY_SHIPPED"
"#;

/// An insert-only ledger written from Odoo; `note` is the ERP's; `state` only in Odoo. Fields
/// in order: item_no, note, qty, state, trans_no.
const LEDGER: &str = r#"
entity = "ledger"
key = ["trans_no"]
owner = "odoo"

[fields]
trans_no = { type = "int" }
item_no = { type = "text" }
qty = { type = "decimal" }
note = { type = "text", owner = "legacy" }
state = { type = "text" }

[odoo]
table = "stock_move"
only = { state = ["done"] }

[odoo.columns]
trans_no = "id"
item_no = "product"
qty = "quantity"
note = "note"
state = "state"

[legacy]
table = "INV_TRANS"
strategy = "none"
insert_only = true
on_delete = "ignore"

[legacy.columns]
trans_no = "TRANS_NO"
item_no = "ITEM_NO"
qty = "QTY"
note = "REMARK"
"#;

fn mapping(text: &str) -> Mapping {
    Mapping::parse(Path::new("test.toml"), text).expect("test mapping")
}

fn accepting(text: &str) -> Mapping {
    mapping(&text.replace(r#"conflict = "reject""#, r#"conflict = "accept""#))
}

fn f(m: &Mapping, name: &str) -> usize {
    m.field_index(name).expect("test field")
}

fn fields(m: &Mapping, names: &[&str]) -> Vec<usize> {
    names.iter().map(|n| f(m, n)).collect()
}

/// A record from field → text (coerced to the field's type); other fields null.
fn rec(m: &Mapping, values: &[(&str, &str)]) -> Record {
    with(m, &Record { values: vec![Value::Null; m.fields.len()] }, values)
}

/// `r` with some fields set.
fn with(m: &Mapping, r: &Record, values: &[(&str, &str)]) -> Record {
    let mut r = r.clone();
    for (name, text) in values {
        let i = f(m, name);
        r.values[i] = coerce(Value::Text(text.to_string()), m.fields[i].ty).expect("test value");
    }
    r
}

/// `r` as `system` stores it: fields without a column there are null.
fn on(m: &Mapping, system: System, r: &Record) -> Record {
    let side = m.side(system);
    Record {
        values: r
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| if side.column_of(i).is_some() { v.clone() } else { Value::Null })
            .collect(),
    }
}

/// What is known of a side holding `r` (read from it, not written by millrace).
fn known(m: &Mapping, r: &Record) -> Known {
    Known {
        record: Some(r.to_json(m)),
        fingerprint: Some(r.fingerprint()),
        position: Some("1".into()),
        written: false,
        pending_fingerprint: None,
        pending_record: None,
        recent_written: Vec::new(),
        pending_for: None,
    }
}

fn written(m: &Mapping, r: &Record) -> Known {
    Known { written: true, ..known(m, r) }
}

fn upsert(m: &Mapping, source: System, r: &Record) -> Change {
    Change {
        entity: 0,
        source,
        op: ChangeOp::Upsert,
        key: m.key_text(r),
        record: Some(r.clone()),
        position: "2".into(),
        ours: false,
        by_integration_user: false,
        source_id: None,
        dead_letter: None,
    }
}

fn delete(m: &Mapping, source: System, key: &Record) -> Change {
    Change { op: ChangeOp::Delete, record: None, ..upsert(m, source, key) }
}

/// What is known of a key, and the rows the databases would answer with.
#[derive(Default)]
struct Case {
    known_source: Option<Known>,
    known_target: Option<Known>,
    xref: Option<String>,
    /// The target's row when it is read (`None`: there is none).
    target_row: Option<TargetRow>,
    /// The ERP's row when it is read again (`None`: there is none).
    current_legacy: Option<Record>,
}

/// Which rows the rules asked for.
const TARGET: &str = "target row";
const CURRENT: &str = "current legacy row";

impl Case {
    /// Runs the rules as the engine does, answering each request for a row; each row may be
    /// asked for once.
    fn decide(&self, m: &Mapping, change: &Change) -> (Verdict, Vec<&'static str>) {
        let facts = Facts {
            known_source: self.known_source.as_ref(),
            known_target: self.known_target.as_ref(),
            xref_target: self.xref.as_deref(),
            ..Facts::default()
        };
        self.answering(m, change, facts)
    }

    /// Runs the rules from `facts`, answering each request for a row as the engine does.
    fn answering<'a>(&'a self, m: &Mapping, change: &Change, mut facts: Facts<'a>) -> (Verdict, Vec<&'static str>) {
        let mut asked = Vec::new();
        loop {
            match decide(m, change, &facts) {
                Step::Decided(v) => return (v, asked),
                Step::NeedTargetRow => {
                    assert!(!asked.contains(&TARGET), "the target row was asked for twice");
                    asked.push(TARGET);
                    facts.target = self.target_row.clone().map_or(Row::Absent, Row::Found);
                }
                Step::NeedCurrentLegacyRow => {
                    assert!(!asked.contains(&CURRENT), "the current legacy row was asked for twice");
                    asked.push(CURRENT);
                    facts.current_legacy = self.current_legacy.clone().map_or(Row::Absent, Row::Found);
                }
            }
        }
    }
}

fn item() -> (Mapping, Record) {
    let m = mapping(ITEM);
    let r = rec(&m, &[("code", "A1"), ("name", "Bolt"), ("price", "1.5"), ("active", "true")]);
    (m, r)
}

fn order(status: &str) -> (Mapping, Record) {
    let m = mapping(ORDER);
    let r = rec(
        &m,
        &[("order_no", "MO1"), ("status", status), ("qty_produced", "3"), ("qty_scrapped", "0"), ("qty_shipped", "0")],
    );
    (m, r)
}

fn ledger() -> (Mapping, Record) {
    let m = mapping(LEDGER);
    let r = rec(&m, &[("trans_no", "5"), ("item_no", "A1"), ("qty", "2"), ("state", "done")]);
    (m, r)
}

/// The item known the same on both sides: `(mapping, legacy record, odoo record)`.
fn item_in_sync() -> (Mapping, Record, Record) {
    let (m, legacy) = item();
    let odoo = with(&m, &legacy, &[("note", "odoo only")]);
    (m, legacy, odoo)
}

// --- echo -------------------------------------------------------------------------------------

#[test]
fn millraces_own_write_from_odoo_is_an_echo_whatever_is_known() {
    let (m, r) = item();
    let case = Case::default();
    for change in [upsert(&m, System::Odoo, &r), delete(&m, System::Odoo, &r)] {
        let change = Change { ours: true, ..change };
        let (v, asked) = case.decide(&m, &change);
        assert_eq!(v, Verdict::new(Decision::Echo));
        assert!(asked.is_empty());
    }
}

#[test]
fn the_content_of_a_write_in_flight_is_its_echo_from_either_side() {
    let (m, legacy, odoo) = item_in_sync();
    for (source, r) in [(System::Legacy, &legacy), (System::Odoo, &odoo)] {
        let before = with(&m, r, &[("price", "1.4")]);
        let case = Case {
            known_source: Some(Known { pending_fingerprint: Some(r.fingerprint()), ..known(&m, &before) }),
            ..Case::default()
        };
        let (v, asked) = case.decide(&m, &upsert(&m, source, r));
        assert_eq!(v.decision, Decision::Echo, "from {source:?}");
        assert!(asked.is_empty());
    }
}

#[test]
fn the_content_millrace_wrote_to_the_erp_seen_again_is_its_echo() {
    let (m, legacy, _) = item_in_sync();
    let case = Case { known_source: Some(written(&m, &legacy)), ..Case::default() };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &legacy));
    assert_eq!(v.decision, Decision::Echo);
    assert!(asked.is_empty());
}

#[test]
fn a_poll_between_two_of_millraces_writes_is_an_echo_of_the_earlier_one() {
    let (m, legacy, odoo) = item_in_sync();
    let latest = with(&m, &legacy, &[("price", "2")]);
    let case = Case {
        known_source: Some(Known { recent_written: vec![legacy.fingerprint()], ..written(&m, &latest) }),
        known_target: Some(known(&m, &with(&m, &odoo, &[("price", "2")]))),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &legacy));
    assert_eq!(v.decision, Decision::Echo);
    assert!(asked.is_empty());

    // Odoo's writes are recognised by their origin, never by earlier content: this is a
    // change (Odoo owns `active`).
    let odoo_latest = with(&m, &odoo, &[("active", "false")]);
    let case = Case {
        known_source: Some(Known { recent_written: vec![odoo.fingerprint()], ..written(&m, &odoo_latest) }),
        known_target: Some(known(&m, &with(&m, &legacy, &[("active", "false")]))),
        ..Case::default()
    };
    let (v, _) = case.decide(&m, &upsert(&m, System::Odoo, &odoo));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["active"]));
}

// --- stale ------------------------------------------------------------------------------------

#[test]
fn the_known_content_seen_again_from_odoo_or_unwritten_from_the_erp_is_stale() {
    let (m, legacy, odoo) = item_in_sync();
    for (source, known_source) in
        [(System::Odoo, written(&m, &odoo)), (System::Odoo, known(&m, &odoo)), (System::Legacy, known(&m, &legacy))]
    {
        let r = if source == System::Odoo { &odoo } else { &legacy };
        let case = Case { known_source: Some(known_source), ..Case::default() };
        let (v, asked) = case.decide(&m, &upsert(&m, source, r));
        assert_eq!(v, Verdict::new(Decision::Stale), "from {source:?}");
        assert!(asked.is_empty());
    }
}

#[test]
fn a_change_the_target_already_holds_is_stale() {
    let (m, legacy, odoo) = item_in_sync();
    let renamed = with(&m, &legacy, &[("name", "Bolt M6")]);
    let case = Case {
        known_source: Some(known(&m, &legacy)),
        known_target: Some(known(&m, &with(&m, &odoo, &[("name", "Bolt M6")]))),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &renamed));
    assert_eq!(v.decision, Decision::Stale);
    assert!(v.fields.is_empty() && v.conflict_fields.is_empty());
    assert!(asked.is_empty());
}

#[test]
fn a_foreign_value_unchanged_since_known_is_no_change() {
    // The ERP renamed the item and its rename has not reached Odoo yet; a user then edits
    // Odoo's note, which does not flow: Odoo's stale name is not a change of Odoo's.
    let (m, legacy, odoo) = item_in_sync();
    let case = Case {
        known_source: Some(known(&m, &odoo)),
        known_target: Some(known(&m, &with(&m, &legacy, &[("name", "Bolt M6")]))),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("note", "edited")])));
    assert_eq!(v.decision, Decision::Stale);
    assert!(asked.is_empty());
}

#[test]
fn a_field_holding_the_write_in_flight_has_not_changed() {
    // millrace was writing name B to Odoo when it stopped; the ERP has renamed it C since.
    // Odoo's change of `active` carries name B: not a change of Odoo's.
    let (m, legacy, odoo) = item_in_sync();
    let was = with(&m, &odoo, &[("name", "A")]);
    let pending = with(&m, &odoo, &[("name", "B")]);
    let change = upsert(&m, System::Odoo, &with(&m, &odoo, &[("name", "B"), ("active", "false")]));
    let mut case = Case {
        known_source: Some(Known {
            pending_fingerprint: Some(pending.fingerprint()),
            pending_record: Some(pending.to_json(&m)),
            ..known(&m, &was)
        }),
        known_target: Some(known(&m, &with(&m, &legacy, &[("name", "C")]))),
        ..Case::default()
    };
    let (v, _) = case.decide(&m, &change);
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["active"]));
    assert!(v.conflict_fields.is_empty());

    // Without the write in flight, B is Odoo's edit of the ERP's name.
    case.known_source = Some(known(&m, &was));
    let (v, _) = case.decide(&m, &change);
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["active"]));
    assert_eq!(v.conflict_fields, fields(&m, &["name"]));
}

#[test]
fn the_first_sight_of_a_key_is_compared_with_the_target_row() {
    let (m, legacy, odoo) = item_in_sync();
    let case = Case { target_row: Some(TargetRow { id: Some("7".into()), record: odoo.clone() }), ..Case::default() };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &legacy));
    assert_eq!(v.decision, Decision::Stale);
    assert_eq!(asked, [TARGET]);

    let renamed = with(&m, &legacy, &[("name", "Bolt M6")]);
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &renamed));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["name"]));
    assert!(!v.create && !v.target_absent);
    assert_eq!(v.target_id.as_deref(), Some("7"), "the row found by key");
    assert_eq!(v.expected, Some(with(&m, &odoo, &[("name", "Bolt M6")])));
    assert_eq!(asked, [TARGET]);
}

// --- legacy recheck ---------------------------------------------------------------------------

#[test]
fn a_poll_that_read_the_row_before_millraces_write_is_stale_by_the_recheck() {
    // millrace wrote Odoo's active = false into the ERP; a poll read the row before that write
    // committed (active still true) together with the ERP's rename.
    let (m, legacy, odoo) = item_in_sync();
    let before = with(&m, &legacy, &[("active", "false")]);
    let polled = with(&m, &legacy, &[("name", "Bolt M6")]);
    let case = Case {
        known_source: Some(written(&m, &before)),
        known_target: Some(known(&m, &with(&m, &odoo, &[("active", "false")]))),
        current_legacy: Some(with(&m, &before, &[("name", "Bolt M6")])),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &polled));
    assert_eq!(v.decision, Decision::Stale);
    assert_eq!(asked, [CURRENT], "no target read: the target is known");
}

#[test]
fn a_legacy_change_of_foreign_fields_the_row_still_holds_is_a_conflict() {
    let (m, legacy, odoo) = item_in_sync();
    let changed = with(&m, &legacy, &[("active", "false")]);
    for current in [Some(changed.clone()), None] {
        let case = Case {
            known_source: Some(known(&m, &legacy)),
            known_target: Some(known(&m, &odoo)),
            current_legacy: current.clone(),
            ..Case::default()
        };
        let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &changed));
        assert_eq!(v.decision, Decision::Conflict, "current row {current:?}");
        assert_eq!(v.conflict_fields, fields(&m, &["active"]));
        assert!(v.fields.is_empty());
        assert_eq!(v.expected, None);
        assert_eq!(asked, [CURRENT]);
    }
}

#[test]
fn an_odoo_change_of_foreign_fields_only_is_a_conflict_without_a_recheck() {
    let (m, legacy, odoo) = item_in_sync();
    let case = Case { known_source: Some(known(&m, &odoo)), known_target: Some(known(&m, &legacy)), ..Case::default() };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("name", "Bolt M6")])));
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(v.conflict_fields, fields(&m, &["name"]));
    assert!(v.fields.is_empty() && !v.create);
    assert!(asked.is_empty());
}

#[test]
fn under_revert_an_odoo_edit_of_a_field_the_erp_owns_is_a_conflict_with_the_owners_values() {
    let m = mapping(&ITEM.replace(r#"conflict = "reject""#, r#"conflict = "revert""#));
    let legacy = item().1;
    let odoo = with(&m, &legacy, &[("note", "odoo only")]);
    let case = Case { known_source: Some(known(&m, &odoo)), known_target: Some(known(&m, &legacy)), ..Case::default() };
    // A foreign field alone: nothing to apply, the ERP's values to write back.
    let (v, _) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("price", "139")])));
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(v.conflict_fields, fields(&m, &["price"]));
    assert_eq!(v.revert, Some(legacy.clone()), "the owner's record");
    // With a field Odoo owns: that one is applied, the other reverted.
    let (v, _) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("price", "139"), ("active", "false")])));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["active"]));
    assert_eq!(v.revert, Some(legacy.clone()));
    // Under reject there is nothing to write back.
    let m = mapping(ITEM);
    let (v, _) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("price", "139")])));
    assert_eq!((v.decision, v.revert), (Decision::Conflict, None));
}

#[test]
fn a_row_the_integration_user_wrote_last_is_an_echo_unless_a_user_changed_what_odoo_owns() {
    let (m, legacy, odoo) = item_in_sync();
    let by_api = |r: &Record| Change { by_integration_user: true, ..upsert(&m, System::Odoo, r) };
    // What millrace wrote with Odoo's own rounding of a field the ERP owns: millrace's.
    let case =
        Case { known_source: Some(written(&m, &odoo)), known_target: Some(known(&m, &legacy)), ..Case::default() };
    let (v, asked) = case.decide(&m, &by_api(&with(&m, &odoo, &[("price", "1.50")])));
    assert_eq!(v.decision, Decision::Echo);
    assert!(asked.is_empty());
    // Nothing known: what Odoo did because of millrace's write (the stock moves of a reported
    // production), by default.
    let (v, asked) = Case::default().decide(&m, &by_api(&odoo));
    assert_eq!((v.decision, asked), (Decision::Echo, vec![]));
    // An entity whose rows Odoo makes by itself while running millrace's actions (a production's
    // backorder): a row the ERP holds is millrace's...
    let mut m = m.clone();
    m.odoo.integration_rows_are_new = true;
    let case = Case { target_row: Some(TargetRow { id: None, record: legacy.clone() }), ..Case::default() };
    let (v, asked) = case.decide(&m, &by_api(&odoo));
    assert_eq!((v.decision, asked), (Decision::Echo, vec![TARGET]));
    // ... and one the ERP lacks is new, decided as any Odoo row (the ERP owns items: a conflict),
    // not dropped as an echo.
    let (v, asked) = Case::default().decide(&m, &by_api(&odoo));
    assert_eq!((v.decision, asked), (Decision::Conflict, vec![TARGET]));
    // A field only Odoo owns differs from what millrace knew: a user's edit the read saw after
    // millrace wrote the row again; it flows.
    let case =
        Case { known_source: Some(written(&m, &odoo)), known_target: Some(known(&m, &legacy)), ..Case::default() };
    let (v, _) = case.decide(&m, &by_api(&with(&m, &odoo, &[("active", "false")])));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["active"]));
}

// --- apply ------------------------------------------------------------------------------------

#[test]
fn the_system_of_record_creates_a_row_odoo_lacks() {
    let (m, legacy) = item();
    let case = Case::default();
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &legacy));
    assert_eq!(v.decision, Decision::Apply);
    assert!(v.create);
    assert_eq!(v.fields, fields(&m, &["active", "code", "name", "price"]), "every shared field");
    assert!(v.conflict_fields.is_empty());
    assert!(v.target_absent, "Odoo was searched and has no row");
    assert_eq!(v.target_id, None);
    assert_eq!(v.expected, Some(legacy.clone()));
    assert_eq!(asked, [TARGET]);
}

#[test]
fn an_update_writes_the_changed_fields_the_source_owns() {
    let (m, legacy, odoo) = item_in_sync();
    let case = Case {
        known_source: Some(known(&m, &legacy)),
        known_target: Some(known(&m, &odoo)),
        xref: Some("42".into()),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &with(&m, &legacy, &[("name", "Bolt M6")])));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["name"]));
    assert!(v.conflict_fields.is_empty() && !v.create && !v.target_absent);
    assert_eq!(v.target_id.as_deref(), Some("42"));
    // The target's values, the written field replaced (`note` is Odoo's own).
    assert_eq!(v.expected, Some(with(&m, &odoo, &[("name", "Bolt M6")])));
    assert!(asked.is_empty(), "nothing read: the target is known");

    // Toward the ERP: its columns only.
    let case = Case { known_source: Some(known(&m, &odoo)), known_target: Some(known(&m, &legacy)), ..Case::default() };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("active", "false")])));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["active"]));
    assert_eq!(v.expected, Some(on(&m, System::Legacy, &with(&m, &legacy, &[("active", "false")]))));
    assert!(asked.is_empty());
}

#[test]
fn foreign_fields_are_recorded_under_reject_and_written_under_accept() {
    for (m, accept) in [(mapping(ITEM), false), (accepting(ITEM), true)] {
        let legacy = item().1;
        let odoo = with(&m, &legacy, &[("note", "odoo only")]);
        let changed = with(&m, &legacy, &[("name", "Bolt M6"), ("active", "false")]);
        let case = Case {
            known_source: Some(known(&m, &legacy)),
            known_target: Some(known(&m, &odoo)),
            current_legacy: Some(changed.clone()),
            ..Case::default()
        };
        let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &changed));
        assert_eq!(v.decision, Decision::Apply, "accept: {accept}");
        assert_eq!(v.conflict_fields, fields(&m, &["active"]));
        assert_eq!(asked, [CURRENT]);
        if accept {
            assert_eq!(v.fields, fields(&m, &["name", "active"]), "owned, then foreign");
            assert_eq!(v.expected, Some(with(&m, &odoo, &[("name", "Bolt M6"), ("active", "false")])));
        } else {
            assert_eq!(v.fields, fields(&m, &["name"]));
            assert_eq!(v.expected, Some(with(&m, &odoo, &[("name", "Bolt M6")])));
        }
    }
}

// --- create -----------------------------------------------------------------------------------

#[test]
fn only_the_system_of_record_creates() {
    let (m, legacy) = item();
    let odoo = with(&m, &legacy, &[("note", "odoo only")]);
    let (v, asked) = Case::default().decide(&m, &upsert(&m, System::Odoo, &odoo));
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(v.conflict_fields, fields(&m, &["active", "code", "name", "price"]));
    assert!(v.fields.is_empty() && !v.create && v.expected.is_none());
    assert!(!v.target_absent, "only an Odoo target is searched");
    assert_eq!(asked, [TARGET]);

    // Under `accept` the other side's create is applied.
    let m = accepting(ITEM);
    let (v, asked) = Case::default().decide(&m, &upsert(&m, System::Odoo, &odoo));
    assert_eq!(v.decision, Decision::Apply);
    assert!(v.create && !v.target_absent);
    assert_eq!(v.fields, fields(&m, &["active", "code", "name", "price"]));
    assert!(v.conflict_fields.is_empty());
    assert_eq!(v.expected, Some(legacy));
    assert_eq!(asked, [TARGET]);
}

#[test]
fn the_target_id_comes_from_the_cross_reference_or_else_the_row_found() {
    let (m, legacy, odoo) = item_in_sync();
    let renamed = upsert(&m, System::Legacy, &with(&m, &legacy, &[("name", "Bolt M6")]));
    let found = |id: &str| Some(TargetRow { id: Some(id.into()), record: odoo.clone() });

    let case = Case { xref: Some("42".into()), target_row: found("43"), ..Case::default() };
    let (v, asked) = case.decide(&m, &renamed);
    assert_eq!(v.target_id.as_deref(), Some("42"));
    assert_eq!(asked, [TARGET]);

    let case = Case { target_row: found("43"), ..Case::default() };
    let (v, _) = case.decide(&m, &renamed);
    assert_eq!(v.target_id.as_deref(), Some("43"));
    assert!(!v.target_absent);

    // A cross-referenced row that is gone: created again, under no search.
    let case = Case { xref: Some("42".into()), ..Case::default() };
    let (v, _) = case.decide(&m, &renamed);
    assert!(v.create && !v.target_absent);
    assert_eq!(v.target_id.as_deref(), Some("42"));

    // Known once, forgotten since (deleted): searched, not absent for the sink.
    let case = Case { known_target: Some(Known { record: None, ..known(&m, &odoo) }), ..Case::default() };
    let (v, asked) = case.decide(&m, &renamed);
    assert!(v.create && !v.target_absent);
    assert_eq!(asked, [TARGET]);
}

// --- filters ----------------------------------------------------------------------------------

#[test]
fn a_record_outside_the_sources_only_filter_is_filtered() {
    let (m, draft) = order("draft");
    let (v, asked) = Case::default().decide(&m, &upsert(&m, System::Odoo, &draft));
    assert_eq!(v, Verdict::new(Decision::Filtered));
    assert!(asked.is_empty());

    // Filters are the source side's: the ERP's side has none.
    let (v, _) = Case::default().decide(&m, &upsert(&m, System::Legacy, &draft));
    assert_ne!(v.decision, Decision::Filtered);
}

// --- insert-only ledger -----------------------------------------------------------------------

#[test]
fn a_ledger_row_millrace_wrote_is_never_rewritten() {
    let (m, odoo) = ledger();
    let case = Case {
        known_source: Some(known(&m, &odoo)),
        known_target: Some(written(&m, &on(&m, System::Legacy, &odoo))),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("qty", "3")])));
    assert_eq!(v.decision, Decision::Filtered);
    assert!(asked.is_empty());
}

#[test]
fn a_ledger_row_is_created_and_never_written_over() {
    let (m, odoo) = ledger();
    let shared = fields(&m, &["item_no", "note", "qty", "trans_no"]);
    let (v, asked) = Case::default().decide(&m, &upsert(&m, System::Odoo, &odoo));
    assert_eq!(v.decision, Decision::Apply);
    assert!(v.create && !v.target_absent);
    assert_eq!(v.fields, shared);
    assert_eq!(v.expected, Some(on(&m, System::Legacy, &odoo)));
    assert_eq!(asked, [TARGET]);

    // The ERP holds another row under this number (with a remark of its own): an insert of the
    // whole record, refused by the database, never an update; nothing is a conflict.
    let erp = rec(&m, &[("trans_no", "5"), ("item_no", "B7"), ("qty", "9"), ("note", "theirs")]);
    let case = Case { target_row: Some(TargetRow { id: None, record: erp }), ..Case::default() };
    let (v, asked) = case.decide(&m, &upsert(&m, System::Odoo, &odoo));
    assert_eq!(v.decision, Decision::Apply);
    assert!(v.create);
    assert_eq!(v.fields, shared);
    assert!(v.conflict_fields.is_empty());
    assert_eq!(v.expected, Some(on(&m, System::Legacy, &odoo)));
    assert_eq!(asked, [TARGET]);
}

#[test]
fn a_ledger_move_not_done_is_filtered() {
    let (m, odoo) = ledger();
    let (v, _) = Case::default().decide(&m, &upsert(&m, System::Odoo, &with(&m, &odoo, &[("state", "draft")])));
    assert_eq!(v.decision, Decision::Filtered);
}

// --- deletes ----------------------------------------------------------------------------------

#[test]
fn a_delete_of_a_key_never_known_toward_odoo_is_stale() {
    let (m, legacy) = item();
    let forgotten = Known { record: None, ..known(&m, &legacy) };
    for case in [Case::default(), Case { known_source: Some(forgotten.clone()), ..Case::default() }] {
        let (v, asked) = case.decide(&m, &delete(&m, System::Legacy, &legacy));
        assert_eq!(v, Verdict::new(Decision::Stale));
        assert!(asked.is_empty());
    }
    // Before Odoo's on_delete is looked at.
    let m =
        mapping(&ITEM.replace("table = \"product_product\"", "table = \"product_product\"\non_delete = \"ignore\""));
    let (v, _) = Case::default().decide(&m, &delete(&m, System::Legacy, &legacy));
    assert_eq!(v.decision, Decision::Stale);
}

#[test]
fn a_delete_known_on_either_side_or_cross_referenced_is_applied() {
    let (m, legacy, odoo) = item_in_sync();
    let cases = [
        Case { known_source: Some(known(&m, &legacy)), ..Case::default() },
        Case { known_target: Some(known(&m, &odoo)), ..Case::default() },
        Case { xref: Some("42".into()), ..Case::default() },
    ];
    for case in cases {
        let (v, asked) = case.decide(&m, &delete(&m, System::Legacy, &legacy));
        assert_eq!(v.decision, Decision::Apply);
        assert_eq!(v.target_id, case.xref);
        assert!(v.fields.is_empty() && !v.create && v.expected.is_none());
        assert!(asked.is_empty());
    }
}

#[test]
fn a_delete_toward_a_side_that_ignores_deletes_is_filtered() {
    let (m, odoo) = ledger();
    let (v, _) = Case::default().decide(&m, &delete(&m, System::Odoo, &odoo));
    assert_eq!(v, Verdict::new(Decision::Filtered));

    let m =
        mapping(&ITEM.replace("table = \"product_product\"", "table = \"product_product\"\non_delete = \"ignore\""));
    let legacy = item().1;
    let case = Case { known_source: Some(known(&m, &legacy)), xref: Some("42".into()), ..Case::default() };
    let (v, _) = case.decide(&m, &delete(&m, System::Legacy, &legacy));
    assert_eq!(v, Verdict::new(Decision::Filtered));
}

#[test]
fn a_delete_by_the_other_side_is_a_conflict_under_reject_and_applied_under_accept() {
    // Toward the ERP, a key never known is not stale: the ERP may hold it.
    let (m, legacy) = item();
    for case in [Case::default(), Case { known_target: Some(known(&m, &legacy)), ..Case::default() }] {
        let (v, asked) = case.decide(&m, &delete(&m, System::Odoo, &legacy));
        assert_eq!(v.decision, Decision::Conflict);
        assert_eq!(v.conflict_fields, m.key);
        assert!(asked.is_empty());
    }
    let m = accepting(ITEM);
    let (v, _) = Case::default().decide(&m, &delete(&m, System::Odoo, &legacy));
    assert_eq!(v.decision, Decision::Apply);
    assert!(v.conflict_fields.is_empty());
}

// --- ownership by state: hand-overs -----------------------------------------------------------

/// The order known the same on both sides, and the verdict of `source`'s change of it.
fn order_change(status: &str, source: System, values: &[(&str, &str)]) -> (Mapping, Verdict, Vec<&'static str>) {
    let (m, r) = order(status);
    let changed = with(&m, &r, values);
    let case = Case {
        known_source: Some(known(&m, &r)),
        known_target: Some(known(&m, &r)),
        current_legacy: Some(changed.clone()),
        ..Case::default()
    };
    let (v, asked) = case.decide(&m, &upsert(&m, source, &changed));
    (m, v, asked)
}

#[test]
fn a_handover_to_both_lets_either_side_change_the_field_while_it_applies() {
    for source in [System::Odoo, System::Legacy] {
        let (m, v, asked) = order_change("released", source, &[("qty_produced", "5")]);
        assert_eq!(v.decision, Decision::Apply, "from {source:?}");
        assert_eq!(v.fields, fields(&m, &["qty_produced"]));
        assert!(v.conflict_fields.is_empty());
        assert!(asked.is_empty(), "nothing foreign: no recheck");
    }
    // Closed: Odoo's again (the entity's owner).
    let (m, v, asked) = order_change("closed", System::Legacy, &[("qty_produced", "5")]);
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(v.conflict_fields, fields(&m, &["qty_produced"]));
    assert_eq!(asked, [CURRENT]);
    let (_, v, _) = order_change("closed", System::Odoo, &[("qty_produced", "5")]);
    assert_eq!(v.decision, Decision::Apply);
}

#[test]
fn a_handover_to_the_erp_takes_the_field_from_the_owner_while_it_applies() {
    let (m, v, _) = order_change("released", System::Odoo, &[("qty_scrapped", "1")]);
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(v.conflict_fields, fields(&m, &["qty_scrapped"]));
    let (m, v, _) = order_change("released", System::Legacy, &[("qty_scrapped", "1")]);
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["qty_scrapped"]));

    // Open: no hand-over, the entity's owner.
    let (_, v, _) = order_change("open", System::Odoo, &[("qty_scrapped", "1")]);
    assert_eq!(v.decision, Decision::Apply);
    let (_, v, asked) = order_change("open", System::Legacy, &[("qty_scrapped", "1")]);
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(asked, [CURRENT]);
}

#[test]
fn a_handover_to_odoo_takes_a_field_the_erp_owns_while_it_applies() {
    for status in ["open", "cancelled"] {
        let (m, v, _) = order_change(status, System::Odoo, &[("qty_shipped", "2")]);
        assert_eq!(v.decision, Decision::Apply, "{status}");
        assert_eq!(v.fields, fields(&m, &["qty_shipped"]));
        let (m, v, asked) = order_change(status, System::Legacy, &[("qty_shipped", "2")]);
        assert_eq!(v.decision, Decision::Conflict, "{status}");
        assert_eq!(v.conflict_fields, fields(&m, &["qty_shipped"]));
        assert_eq!(asked, [CURRENT]);
    }
    // Released: the field's own owner, the ERP.
    let (m, v, _) = order_change("released", System::Odoo, &[("qty_shipped", "2")]);
    assert_eq!(v.decision, Decision::Conflict);
    assert_eq!(v.conflict_fields, fields(&m, &["qty_shipped"]));
    let (_, v, asked) = order_change("released", System::Legacy, &[("qty_shipped", "2")]);
    assert_eq!(v.decision, Decision::Apply);
    assert!(asked.is_empty());
}

#[test]
fn an_owned_value_the_target_lacks_is_caught_up_by_the_next_change() {
    // Odoo reported 2 scrapped while the shop floor owned the field (refused); then the order
    // closed in Odoo, and the field is Odoo's again.
    let (m, released) = order("released");
    let reported = with(&m, &released, &[("qty_scrapped", "2")]);
    let case =
        Case { known_source: Some(known(&m, &reported)), known_target: Some(known(&m, &released)), ..Case::default() };
    let closed = with(&m, &reported, &[("status", "closed")]);
    let (v, asked) = case.decide(&m, &upsert(&m, System::Odoo, &closed));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["qty_scrapped", "status"]));
    assert!(v.conflict_fields.is_empty());
    assert_eq!(v.expected, Some(closed));
    assert!(asked.is_empty());

    // While the ERP still owns it, Odoo's unchanged value is neither written nor a conflict.
    let produced = with(&m, &reported, &[("qty_produced", "4")]);
    let (v, _) = case.decide(&m, &upsert(&m, System::Odoo, &produced));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["qty_produced"]));
    assert!(v.conflict_fields.is_empty());
    assert_eq!(v.expected, Some(with(&m, &released, &[("qty_produced", "4")])));
}

#[test]
fn a_value_the_target_lacks_is_caught_up_under_a_handover_to_both() {
    // The ERP's 7 produced did not reach Odoo (Odoo holds 5); its next change, a shipment,
    // brings it along.
    let (m, released) = order("released");
    let erp = with(&m, &released, &[("qty_produced", "7")]);
    let case = Case {
        known_source: Some(known(&m, &erp)),
        known_target: Some(known(&m, &with(&m, &released, &[("qty_produced", "5")]))),
        ..Case::default()
    };
    let shipped = with(&m, &erp, &[("qty_shipped", "1")]);
    let (v, asked) = case.decide(&m, &upsert(&m, System::Legacy, &shipped));
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["qty_produced", "qty_shipped"]));
    assert!(v.conflict_fields.is_empty());
    assert_eq!(v.expected, Some(shipped));
    assert!(asked.is_empty());
}

mod repair;
