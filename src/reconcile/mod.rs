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
pub mod service;

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
    /// Records the owner's version was written for (`--repair --apply`), or would be (dry run).
    pub repaired: u64,
    /// Repairs that did not land: parked or dead-lettered (named in the details).
    pub repair_failed: u64,
}

/// What `--repair` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    Off,
    /// Decides each repair against the target as it is now and reports it; writes nothing.
    DryRun,
    Apply,
}

/// How a reconcile runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Record the match rules' one-to-one pairs as cross-references.
    pub bind: bool,
    pub repair: Repair,
    /// With `repair`: only these fields (`None`: every field).
    pub repair_fields: Option<Vec<String>>,
    /// A progress line on stderr.
    pub tty: bool,
    /// Who asked, for the report kept in the control state: `cli`, `schedule`, `http`.
    pub via: &'static str,
}

impl Options {
    pub fn compare_only(via: &'static str) -> Options {
        Options { bind: false, repair: Repair::Off, repair_fields: None, tty: false, via }
    }
}

/// One record a repair wrote (or would write), or could not.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Repaired {
    pub entity: String,
    pub key: String,
    /// `erp_to_odoo` or `odoo_to_erp`.
    pub direction: &'static str,
    /// `repair` (written, or would be in a dry run), `parked`, `dead_letter`, `failed`, …
    pub outcome: &'static str,
    pub fields: Vec<String>,
    pub detail: Option<String>,
}

/// Everything one reconcile found and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub summaries: Vec<Summary>,
    pub findings: Vec<Finding>,
    pub repairs: Vec<Repaired>,
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

/// The content hash of the compared fields that are not the key's: what an Odoo record without
/// a key (or with another) is compared by to tell apart the ERP records its match values name.
pub fn rest_hash(m: &Mapping, record: &Record, fields: &[usize]) -> i64 {
    let rest: Vec<usize> = fields.iter().copied().filter(|f| !m.key.contains(f)).collect();
    content_hash(record, &rest)
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

/// A value as a difference's detail names it: `empty` for none, `""` for an empty text.
fn shown(value: &Value) -> String {
    match text(value) {
        None => "empty".into(),
        Some(t) if t.is_empty() => "\"\"".into(),
        Some(t) => t,
    }
}

/// The differing compared fields of one record present on both sides, each with its owner.
pub fn field_findings(m: &Mapping, key: &str, odoo_id: i64, odoo: &Record, erp: &Record) -> Vec<Finding> {
    compared_fields(m)
        .into_iter()
        // Equal as the engine compares them: an empty text is not NULL to it either (a blank
        // ERP description is written to Odoo as an empty reference).
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
                    shown(&odoo.values[f]),
                    shown(&erp.values[f]),
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
    /// The hash of the compared fields but the key's ([`rest_hash`]): tells apart records the
    /// match rules cannot.
    pub rest: i64,
    /// The hash of its match values ([`match_hash`]; 0: none). Only a hash: a map of match
    /// values to keys for every ERP record would be most of a large reconcile's memory, and only
    /// the few values Odoo's keyless records have are ever looked up.
    pub match_hash: u64,
    /// Found on the Odoo side (by key, or matched by rule).
    pub seen: bool,
}

/// The hash of a record's match values (never 0, which says "none").
pub fn match_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish().max(1)
}

/// The ERP side of one entity: key → entry.
#[derive(Debug, Default)]
pub struct ErpSide {
    pub entries: HashMap<String, ErpEntry>,
}

impl ErpSide {
    pub fn add(&mut self, m: &Mapping, fields: &[usize], key: String, record: &Record) {
        let match_hash = match_text(m, record).map_or(0, |text| match_hash(&text));
        self.entries.insert(
            key,
            ErpEntry {
                hash: content_hash(record, fields),
                rest: rest_hash(m, record, fields),
                match_hash,
                seen: false,
            },
        );
    }
}

/// Odoo records without a key, by their match values.
#[derive(Debug, Default)]
pub struct Keyless {
    pub by_match: BTreeMap<String, Vec<i64>>,
    /// Keyless records with no match value (or no match rules): only in Odoo.
    pub unmatchable: Vec<i64>,
    /// Records with a natural key the ERP does not hold (and no cross-reference), matched by
    /// the rules like keyless ones (their key was renumbered on one side, as a BOM's sequence):
    /// id → their key, which names them if nothing matches.
    pub keyed: HashMap<i64, String>,
    /// Each matched record's [`rest_hash`]: id → hash.
    pub rest: HashMap<i64, i64>,
}

impl Keyless {
    /// An Odoo record for the match rules; `key`: its natural key the ERP does not hold.
    pub fn add(&mut self, m: &Mapping, fields: &[usize], id: i64, record: &Record, key: Option<String>) {
        match match_text(m, record) {
            Some(text) => {
                self.by_match.entry(text).or_default().push(id);
                self.rest.insert(id, rest_hash(m, record, fields));
                if let Some(key) = key {
                    self.keyed.insert(id, key);
                }
            }
            None => self.unmatchable.push(id),
        }
    }
}

/// Among Odoo records and ERP records the match values cannot tell apart, the pairs whose other
/// fields are all equal, one to one (each the only one of its side equal to the other): the
/// variants of one product, say, told apart by their prices. Then, if exactly one of each side
/// is left, that pair too (the rule's own one-to-one).
fn settle(ids: &[i64], keys: &[String], odoo_rest: &HashMap<i64, i64>, erp: &ErpSide) -> Vec<(String, i64)> {
    let rest_of = |k: &String| erp.entries.get(k).map(|e| e.rest);
    let mut pairs = Vec::new();
    for id in ids {
        let Some(hash) = odoo_rest.get(id) else { continue };
        let same_erp: Vec<&String> = keys.iter().filter(|k| rest_of(k) == Some(*hash)).collect();
        let same_odoo = ids.iter().filter(|i| odoo_rest.get(i) == Some(hash)).count();
        if let ([key], 1) = (same_erp.as_slice(), same_odoo) {
            pairs.push(((*key).clone(), *id));
        }
    }
    let left_ids: Vec<i64> = ids.iter().copied().filter(|i| !pairs.iter().any(|(_, p)| p == i)).collect();
    let left_keys: Vec<&String> = keys.iter().filter(|k| !pairs.iter().any(|(p, _)| p == *k)).collect();
    if let ([id], [key]) = (left_ids.as_slice(), left_keys.as_slice()) {
        pairs.push(((*key).clone(), *id));
    }
    pairs
}

/// What the match rules found.
#[derive(Debug, Default)]
pub struct Matches {
    /// (ERP key, Odoo id) pairs matched one to one.
    pub pairs: Vec<(String, i64)>,
    /// Matches, ambiguities, keyless records with no candidate.
    pub findings: Vec<Finding>,
    /// The ERP keys of the ambiguities, each with why: `run` never creates them on the other side.
    pub ambiguous: Vec<(String, String)>,
}

/// The match rules over the Odoo records without a key (or with one the ERP lacks). ERP
/// records matched, or candidates of an ambiguity, are marked seen.
pub fn match_keyless(m: &Mapping, erp: &mut ErpSide, keyless: &Keyless) -> Matches {
    let mut ambiguous = Vec::new();
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
    // The ERP records not found by key whose match values some keyless Odoo record has, by
    // those values' hash: one pass over the ERP side.
    let wanted: std::collections::HashSet<u64> = keyless.by_match.keys().map(|t| match_hash(t)).collect();
    let mut by_match: HashMap<u64, Vec<String>> = HashMap::new();
    if !wanted.is_empty() {
        for (key, entry) in &erp.entries {
            if !entry.seen && wanted.contains(&entry.match_hash) {
                by_match.entry(entry.match_hash).or_default().push(key.clone());
            }
        }
        for keys in by_match.values_mut() {
            keys.sort();
        }
    }
    for (values, ids) in &keyless.by_match {
        let mut ids = ids.clone();
        let mut candidates: Vec<String> = by_match
            .get(&match_hash(values))
            .map(|keys| keys.iter().filter(|k| erp.entries.get(*k).is_some_and(|e| !e.seen)).cloned().collect())
            .unwrap_or_default();
        let fields: Vec<&str> = m.odoo.match_fields.iter().map(|f| m.fields[*f].name.as_str()).collect();
        if ids.len() > 1 || candidates.len() > 1 {
            for (key, id) in settle(&ids, &candidates, &keyless.rest, erp) {
                if let Some(e) = erp.entries.get_mut(&key) {
                    e.seen = true;
                }
                findings.push(finding(
                    Kind::Matched,
                    key.clone(),
                    Some(id),
                    format!(
                        "Odoo record {id} matched by {} = {values}, told apart from the others by its other fields",
                        fields.join(", ")
                    ),
                ));
                ids.retain(|i| *i != id);
                candidates.retain(|k| *k != key);
                pairs.push((key, id));
            }
            if ids.is_empty() {
                continue;
            }
        }
        match (ids.as_slice(), candidates.as_slice()) {
            (_, []) => {
                for id in &ids {
                    let (key, detail) = match keyless.keyed.get(id) {
                        Some(key) => (
                            key.clone(),
                            format!("no ERP record with this key, nor one with {} = {values}", fields.join(", ")),
                        ),
                        None => (
                            format!("{}.id={id}", m.odoo.table),
                            format!("no key in Odoo and no ERP record with {} = {values}", fields.join(", ")),
                        ),
                    };
                    findings.push(finding(Kind::OnlyOdoo, key, Some(*id), detail));
                }
            }
            ([id], [key]) => {
                if let Some(e) = erp.entries.get_mut(key) {
                    e.seen = true;
                }
                pairs.push((key.clone(), *id));
                let why = match keyless.keyed.get(id) {
                    Some(own) => format!("its key {own} is not the ERP's"),
                    None => "has no key".to_string(),
                };
                findings.push(finding(
                    Kind::Matched,
                    key.clone(),
                    Some(*id),
                    format!("Odoo record {id} {why}; matched by {} = {values}", fields.join(", ")),
                ));
            }
            _ => {
                // Its ERP candidates are not "only in the ERP" either: a repair must not create
                // copies of records that are in Odoo, just not told apart.
                for k in &candidates {
                    if let Some(e) = erp.entries.get_mut(k) {
                        e.seen = true;
                    }
                }
                let key = candidates.join(" | ");
                let id_list: Vec<String> = ids.iter().map(i64::to_string).collect();
                let detail = format!(
                    "{} = {values} matches Odoo records {} and ERP records {}: not bound",
                    fields.join(", "),
                    id_list.join(", "),
                    candidates.join(", ")
                );
                ambiguous.extend(candidates.iter().map(|k| (k.clone(), detail.clone())));
                findings.push(finding(Kind::Ambiguous, key, ids.first().copied(), detail));
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
    Matches { pairs, findings, ambiguous }
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

/// The repairs as CSV.
pub fn repairs_csv(repairs: &[Repaired]) -> String {
    let mut out = String::from("entity,key,direction,outcome,fields,detail\n");
    for r in repairs {
        let cell = |t: &str| {
            if t.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", t.replace('"', "\"\""))
            } else {
                t.to_string()
            }
        };
        let row = [
            cell(&r.entity),
            cell(&r.key),
            cell(r.direction),
            cell(r.outcome),
            cell(&r.fields.join(" ")),
            cell(r.detail.as_deref().unwrap_or_default()),
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
        for (id, name) in [(1, "Assembly"), (2, "Paint"), (3, "Drill"), (4, "Paint")] {
            keyless.add(&m, &fields, id, &record(None, name), None);
        }
        let Matches { pairs, findings, ambiguous } = match_keyless(&m, &mut erp, &keyless);
        assert_eq!(ambiguous.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["[\"P1\"]", "[\"P2\"]"]);
        assert_eq!(pairs, vec![("[\"A\"]".to_string(), 1)]);
        let kinds: Vec<(Kind, Option<i64>)> = findings.iter().map(|f| (f.kind, f.odoo_id)).collect();
        assert!(kinds.contains(&(Kind::Matched, Some(1))), "{findings:#?}");
        assert!(kinds.contains(&(Kind::Ambiguous, Some(2))), "{findings:#?}");
        assert!(kinds.contains(&(Kind::OnlyOdoo, Some(3))), "{findings:#?}");
        // Ambiguous candidates are not "only in the ERP" (a repair would copy them into Odoo).
        assert!(erp.entries["[\"A\"]"].seen && erp.entries["[\"P1\"]"].seen && !erp.entries["[\"Q\"]"].seen);
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
