//! `millrace reconcile`: both sides of each mapped entity read through its mapping and compared
//! record by record.
//!
//! The ERP side is read in key order (keyset pages) and kept only as key → content hash, and,
//! where the mapping has match rules (`[odoo] match`), match values → keys; the Odoo side is then
//! read in id order inside one repeatable-read transaction (one consistent snapshot) and each
//! record looked up by the key it is bound to (cross-reference) or its natural key. Records whose
//! hashes differ are read again whole from the ERP by key, in batches, to name each differing
//! field, its two values and its owner. Memory is the ERP side's keys and hashes, not its records.
//!
//! An Odoo record without a key (a product without internal reference) is matched by the
//! mapping's match fields to an ERP record no Odoo record holds: one to one is a match (bound with
//! `--bind`: a cross-reference, so the first sync finds it instead of creating a copy); one to
//! several, or several to one, is ambiguous and never bound.

use std::collections::{BTreeMap, HashMap};

pub mod run;

use crate::mapping::{Mapping, Record, System};
use crate::model::Value;

/// What a reconcile finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    OnlyOdoo,
    OnlyErp,
    Differs,
    /// An Odoo record without a key matched one ERP record by the mapping's match rules.
    Matched,
    /// Match rules found several candidates: reported, never bound.
    Ambiguous,
    /// A row that could not be read through the mapping (bad data).
    Unreadable,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OnlyOdoo => "only_in_odoo",
            Kind::OnlyErp => "only_in_erp",
            Kind::Differs => "different",
            Kind::Matched => "matched_by_rule",
            Kind::Ambiguous => "ambiguous",
            Kind::Unreadable => "unreadable",
        }
    }
}

/// One line of the details: a record only on one side, a differing field, a match.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub entity: String,
    pub kind: Kind,
    pub key: String,
    pub odoo_id: Option<i64>,
    pub field: Option<String>,
    /// The system of record of the field (for a difference).
    pub owner: Option<&'static str>,
    pub odoo_value: Option<String>,
    pub erp_value: Option<String>,
    pub detail: String,
}

/// Counts per entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub entity: String,
    pub only_in_odoo: u64,
    pub only_in_erp: u64,
    /// Records present on both sides with at least one differing field.
    pub different: u64,
    pub equal: u64,
    pub matched_by_rule: u64,
    pub ambiguous: u64,
    pub unreadable: u64,
    /// Cross-references recorded (`--bind`).
    pub bound: u64,
}

impl Summary {
    /// The counts by kind name (`equal` included), as /metrics labels them.
    pub fn counts(&self) -> [(&'static str, u64); 7] {
        [
            ("only_in_odoo", self.only_in_odoo),
            ("only_in_erp", self.only_in_erp),
            ("different", self.different),
            ("matched_by_rule", self.matched_by_rule),
            ("ambiguous", self.ambiguous),
            ("unreadable", self.unreadable),
            ("equal", self.equal),
        ]
    }

    /// Whether the sides disagree on this entity.
    pub fn differs(&self) -> bool {
        self.only_in_odoo + self.only_in_erp + self.different + self.matched_by_rule + self.ambiguous + self.unreadable
            > 0
    }
}

/// The fields both sides store: the ones compared.
pub fn compared_fields(m: &Mapping) -> Vec<usize> {
    (0..m.fields.len())
        .filter(|f| m.odoo.columns.iter().any(|c| c.field == *f) && m.legacy.columns.iter().any(|c| c.field == *f))
        .collect()
}

/// The content hash of the compared fields.
pub fn content_hash(record: &Record, fields: &[usize]) -> i64 {
    let values: Vec<Value> = fields.iter().map(|f| record.values[*f].clone()).collect();
    crate::model::row_hash_i64(&values)
}

/// The text of the match fields' values, or `None` when one of them is empty (no match on
/// nothing).
pub fn match_text(m: &Mapping, record: &Record) -> Option<String> {
    if m.odoo.match_fields.is_empty() {
        return None;
    }
    let values: Vec<&Value> = m.odoo.match_fields.iter().map(|f| &record.values[*f]).collect();
    if values.iter().any(|v| v.is_null() || matches!(v, Value::Text(t) if t.trim().is_empty())) {
        return None;
    }
    Some(crate::model::key_text(&values))
}

fn text(value: &Value) -> Option<String> {
    (!value.is_null()).then(|| crate::model::value_text(value))
}

/// The differing compared fields of one record present on both sides, each with its owner.
pub fn field_findings(m: &Mapping, key: &str, odoo_id: i64, odoo: &Record, erp: &Record) -> Vec<Finding> {
    compared_fields(m)
        .into_iter()
        .filter(|f| odoo.values[*f] != erp.values[*f])
        .map(|f| {
            // The owner decides from the ERP's record (the system of record of most entities'
            // hand-overs' state is whichever side owns the state field); both agree unless a
            // hand-over field itself differs.
            let owner = m.owner_of(f, erp);
            Finding {
                entity: m.entity.clone(),
                kind: Kind::Differs,
                key: key.to_string(),
                odoo_id: Some(odoo_id),
                field: Some(m.fields[f].name.clone()),
                owner: Some(owner.as_str()),
                odoo_value: text(&odoo.values[f]),
                erp_value: text(&erp.values[f]),
                detail: format!(
                    "{} is {} in Odoo and {} in the ERP; the {} owns it",
                    m.fields[f].name,
                    text(&odoo.values[f]).unwrap_or_else(|| "empty".into()),
                    text(&erp.values[f]).unwrap_or_else(|| "empty".into()),
                    match owner {
                        System::Odoo => "Odoo",
                        System::Legacy => "ERP",
                    }
                ),
            }
        })
        .collect()
}

/// One ERP record as remembered between the two passes.
#[derive(Debug, Clone)]
pub struct ErpEntry {
    pub hash: i64,
    /// Found on the Odoo side (by key, or matched by rule).
    pub seen: bool,
}

/// The ERP side of one entity: key → entry, and match values → keys.
#[derive(Debug, Default)]
pub struct ErpSide {
    pub entries: HashMap<String, ErpEntry>,
    pub by_match: HashMap<String, Vec<String>>,
}

impl ErpSide {
    pub fn add(&mut self, m: &Mapping, fields: &[usize], key: String, record: &Record) {
        if let Some(text) = match_text(m, record) {
            self.by_match.entry(text).or_default().push(key.clone());
        }
        self.entries.insert(key, ErpEntry { hash: content_hash(record, fields), seen: false });
    }
}

/// Odoo records without a key, by their match values.
#[derive(Debug, Default)]
pub struct Keyless {
    pub by_match: BTreeMap<String, Vec<i64>>,
    /// Keyless records with no match value (or no match rules): only in Odoo.
    pub unmatchable: Vec<i64>,
}

/// The outcome of the match rules: (key, Odoo id) pairs matched one to one, and the findings
/// (matches, ambiguities, keyless records with no candidate). ERP records matched are marked seen.
pub fn match_keyless(m: &Mapping, erp: &mut ErpSide, keyless: &Keyless) -> (Vec<(String, i64)>, Vec<Finding>) {
    let mut pairs = Vec::new();
    let mut findings = Vec::new();
    let finding = |kind: Kind, key: String, id: Option<i64>, detail: String| Finding {
        entity: m.entity.clone(),
        kind,
        key,
        odoo_id: id,
        field: None,
        owner: None,
        odoo_value: None,
        erp_value: None,
        detail,
    };
    for (values, ids) in &keyless.by_match {
        let candidates: Vec<String> = erp
            .by_match
            .get(values)
            .map(|keys| keys.iter().filter(|k| erp.entries.get(*k).is_some_and(|e| !e.seen)).cloned().collect())
            .unwrap_or_default();
        let fields: Vec<&str> = m.odoo.match_fields.iter().map(|f| m.fields[*f].name.as_str()).collect();
        match (ids.as_slice(), candidates.as_slice()) {
            (_, []) => {
                for id in ids {
                    findings.push(finding(
                        Kind::OnlyOdoo,
                        format!("{}.id={id}", m.odoo.table),
                        Some(*id),
                        format!("no key in Odoo and no ERP record with {} = {values}", fields.join(", ")),
                    ));
                }
            }
            ([id], [key]) => {
                if let Some(e) = erp.entries.get_mut(key) {
                    e.seen = true;
                }
                pairs.push((key.clone(), *id));
                findings.push(finding(
                    Kind::Matched,
                    key.clone(),
                    Some(*id),
                    format!("Odoo record {id} has no key; matched by {} = {values}", fields.join(", ")),
                ));
            }
            _ => {
                let key = candidates.join(" | ");
                let id_list: Vec<String> = ids.iter().map(i64::to_string).collect();
                findings.push(finding(
                    Kind::Ambiguous,
                    key,
                    ids.first().copied(),
                    format!(
                        "{} = {values} matches Odoo records {} and ERP records {}: not bound",
                        fields.join(", "),
                        id_list.join(", "),
                        candidates.join(", ")
                    ),
                ));
            }
        }
    }
    for id in &keyless.unmatchable {
        findings.push(finding(
            Kind::OnlyOdoo,
            format!("{}.id={id}", m.odoo.table),
            Some(*id),
            "no key in Odoo, and nothing to match it by".into(),
        ));
    }
    (pairs, findings)
}

/// The findings as CSV (RFC 4180 quoting).
pub fn to_csv(findings: &[Finding]) -> String {
    fn cell(text: Option<&str>) -> String {
        match text {
            None => String::new(),
            Some(t) if t.contains([',', '"', '\n', '\r']) => format!("\"{}\"", t.replace('"', "\"\"")),
            Some(t) => t.to_string(),
        }
    }
    let mut out = String::from("entity,kind,key,odoo_id,field,owner,odoo_value,erp_value,detail\n");
    for f in findings {
        let id = f.odoo_id.map(|i| i.to_string());
        let row = [
            cell(Some(&f.entity)),
            cell(Some(f.kind.as_str())),
            cell(Some(&f.key)),
            cell(id.as_deref()),
            cell(f.field.as_deref()),
            cell(f.owner),
            cell(f.odoo_value.as_deref()),
            cell(f.erp_value.as_deref()),
            cell(Some(&f.detail)),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// The findings as one Parquet file (every column text, the id an integer).
pub fn write_parquet(path: &std::path::Path, findings: &[Finding]) -> anyhow::Result<()> {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let strings = |get: &dyn Fn(&Finding) -> Option<String>| -> ArrayRef {
        Arc::new(findings.iter().map(get).collect::<StringArray>())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("entity", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("odoo_id", DataType::Int64, true),
        Field::new("field", DataType::Utf8, true),
        Field::new("owner", DataType::Utf8, true),
        Field::new("odoo_value", DataType::Utf8, true),
        Field::new("erp_value", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        strings(&|f| Some(f.entity.clone())),
        strings(&|f| Some(f.kind.as_str().to_string())),
        strings(&|f| Some(f.key.clone())),
        Arc::new(findings.iter().map(|f| f.odoo_id).collect::<Int64Array>()),
        strings(&|f| f.field.clone()),
        strings(&|f| f.owner.map(str::to_string)),
        strings(&|f| f.odoo_value.clone()),
        strings(&|f| f.erp_value.clone()),
        strings(&|f| Some(f.detail.clone())),
    ];
    let batch = arrow::record_batch::RecordBatch::try_new(schema.clone(), columns)?;
    let file = std::fs::File::create(path)?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        let text = r#"
entity = "work_center"
owner = "odoo"
key = ["code"]
[fields]
code = { type = "text" }
name = { type = "text" }
[odoo]
table = "mrp_workcenter"
model = "mrp.workcenter"
match = ["name"]
[odoo.columns]
code = "code"
name = "name"
[legacy]
table = "WORK_CENTER"
[legacy.columns]
code = "WC_CODE"
name = "DESCRIPTION"
"#;
        Mapping::parse(std::path::Path::new("work_center.toml"), text).expect("mapping")
    }

    fn record(code: Option<&str>, name: &str) -> Record {
        Record { values: vec![code.map_or(Value::Null, |c| Value::Text(c.into())), Value::Text(name.into())] }
    }

    #[test]
    fn keyless_records_match_one_to_one_and_ambiguity_is_reported_not_bound() {
        let m = mapping();
        let fields = compared_fields(&m);
        let mut erp = ErpSide::default();
        erp.add(&m, &fields, "[\"A\"]".into(), &record(Some("A"), "Assembly"));
        erp.add(&m, &fields, "[\"P1\"]".into(), &record(Some("P1"), "Paint"));
        erp.add(&m, &fields, "[\"P2\"]".into(), &record(Some("P2"), "Paint"));
        erp.add(&m, &fields, "[\"Q\"]".into(), &record(Some("Q"), "Quality"));
        let mut keyless = Keyless::default();
        for (id, name) in [(1, "Assembly"), (2, "Paint"), (3, "Drill")] {
            keyless.by_match.entry(match_text(&m, &record(None, name)).unwrap()).or_default().push(id);
        }
        let (pairs, findings) = match_keyless(&m, &mut erp, &keyless);
        assert_eq!(pairs, vec![("[\"A\"]".to_string(), 1)]);
        let kinds: Vec<(Kind, Option<i64>)> = findings.iter().map(|f| (f.kind, f.odoo_id)).collect();
        assert!(kinds.contains(&(Kind::Matched, Some(1))), "{findings:#?}");
        assert!(kinds.contains(&(Kind::Ambiguous, Some(2))), "{findings:#?}");
        assert!(kinds.contains(&(Kind::OnlyOdoo, Some(3))), "{findings:#?}");
        assert!(erp.entries["[\"A\"]"].seen && !erp.entries["[\"P1\"]"].seen);
    }

    #[test]
    fn a_difference_names_the_field_both_values_and_the_owner() {
        let m = mapping();
        let found = field_findings(&m, "[\"A\"]", 7, &record(Some("A"), "Assembly 2"), &record(Some("A"), "Assembly"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field.as_deref(), Some("name"));
        assert_eq!(found[0].owner, Some("odoo"));
        assert_eq!(
            (found[0].odoo_value.as_deref(), found[0].erp_value.as_deref()),
            (Some("Assembly 2"), Some("Assembly"))
        );
        let csv = to_csv(&found);
        assert!(csv.lines().nth(1).unwrap().starts_with("work_center,different,\"[\"\"A\"\"]\",7,name,odoo,"), "{csv}");
    }
}
