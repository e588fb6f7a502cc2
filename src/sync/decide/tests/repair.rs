//! Repairs (`millrace reconcile --repair`): decided against the target as it is now.

use super::*;

impl Case {
    /// As [`Case::decide`], for a repair (`millrace reconcile --repair`): nothing known is
    /// passed (the engine passes none), only fields in `only` when given.
    fn repair(&self, m: &Mapping, change: &Change, only: Option<&[usize]>) -> (Verdict, Vec<&'static str>) {
        let facts = Facts { xref_target: self.xref.as_deref(), repair: true, repair_fields: only, ..Facts::default() };
        let (verdict, asked) = self.answering(m, change, facts);
        assert!(!asked.contains(&CURRENT), "a repair never rechecks the ERP's row");
        (verdict, asked)
    }
}

#[test]
fn a_repair_writes_the_sources_owned_fields_that_differ_from_the_target_and_raises_no_conflict() {
    let (m, legacy, odoo) = item_in_sync();
    // Odoo's price and name differ from the ERP's (the ERP owns them); its `active` too (Odoo's).
    let odoo_now = with(&m, &odoo, &[("price", "9"), ("name", "Bolt?"), ("active", "false")]);
    let case =
        Case { target_row: Some(TargetRow { id: Some("7".into()), record: odoo_now.clone() }), ..Case::default() };
    let (v, asked) = case.repair(&m, &upsert(&m, System::Legacy, &legacy), None);
    assert_eq!(v.decision, Decision::Apply);
    assert_eq!(v.fields, fields(&m, &["name", "price"]), "the ERP's own fields only");
    assert!(
        v.conflict_fields.is_empty() && v.revert.is_none(),
        "Odoo's `active` is not the ERP's to write: no conflict"
    );
    assert_eq!(v.target_id.as_deref(), Some("7"));
    assert_eq!(asked, [TARGET], "compared with the target as it is now");
    // Limited to one field.
    let price = fields(&m, &["price"]);
    let (v, _) = case.repair(&m, &upsert(&m, System::Legacy, &legacy), Some(&price));
    assert_eq!(v.fields, price);
    // From Odoo: only `active` is Odoo's.
    let case =
        Case { target_row: Some(TargetRow { id: None, record: on(&m, System::Legacy, &legacy) }), ..Case::default() };
    let (v, _) = case.repair(&m, &upsert(&m, System::Odoo, &odoo_now), None);
    assert_eq!((v.decision, v.fields.clone()), (Decision::Apply, fields(&m, &["active"])));
    // Nothing of the source's differs: nothing to do, not a conflict.
    let (v, _) = case.repair(&m, &upsert(&m, System::Odoo, &with(&m, &odoo_now, &[("active", "true")])), None);
    assert_eq!(v.decision, Decision::Stale);
}

#[test]
fn a_repair_creates_only_from_the_system_of_record_and_never_rewrites_a_ledger_row() {
    let (m, legacy) = item();
    let (v, _) = Case::default().repair(&m, &upsert(&m, System::Legacy, &legacy), None);
    assert_eq!((v.decision, v.create), (Decision::Apply, true), "the ERP owns items: created in Odoo");
    let (v, _) = Case::default().repair(&m, &upsert(&m, System::Odoo, &legacy), None);
    assert_eq!(v.decision, Decision::Stale, "an item only Odoo has is left alone, not a conflict");

    let (m, row) = ledger();
    let erp_row = with(&m, &row, &[("qty", "3")]);
    let case =
        Case { target_row: Some(TargetRow { id: None, record: on(&m, System::Legacy, &erp_row) }), ..Case::default() };
    let (v, _) = case.repair(&m, &upsert(&m, System::Odoo, &row), None);
    assert_eq!(v.decision, Decision::Filtered, "a ledger row is never rewritten");
}
