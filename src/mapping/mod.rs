//! Mappings: how a canonical entity (item, BOM, production order, …) is stored on each side.
//!
//! A mapping file ([`spec::MappingFile`]) is compiled into a [`Mapping`]: fields in a fixed order,
//! each side's columns with their transforms, ownership and hand-over rules. [`transform`]
//! converts stored values to canonical ones and back; [`odoo`] and [`legacy`] read and write
//! whole records on each side.

pub mod legacy;
pub mod odoo;
pub mod order;
pub mod record;
pub mod spec;
pub mod transform;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use record::{ChangeOp, Record};
pub use spec::{ConflictPolicy, FieldType, System};

use crate::config::{push_column_once, LegacyTable, Strategy};
use crate::model::Value;

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read mapping directory {path}: {source}")]
    ReadDir { path: PathBuf, source: std::io::Error },
    #[error("cannot read mapping file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("mapping file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("mapping file {path} (entity {entity}): {message}")]
    Invalid { path: PathBuf, entity: String, message: String },
    #[error("mapping files {first} and {second} both define entity {entity}")]
    Duplicate { entity: String, first: PathBuf, second: PathBuf },
}

/// A field of the canonical record.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub owner: Option<System>,
    /// A decimal field whose every column rounds (`round`) has at most this many fractional
    /// digits (the largest `round`), so the archive and exports store it as a decimal of that
    /// scale; `None`: its values may have any scale and are stored as their exact text.
    pub decimal_scale: Option<u8>,
}

/// A field handed to another owner while a field of the record holds one of some values.
#[derive(Debug, Clone)]
pub struct Handover {
    pub field: usize,
    /// The new owner; `None`: both sides (either side's change is applied).
    pub to: Option<System>,
    pub when_field: usize,
    pub when_values: Vec<Value>,
}

/// Which table of a side a column lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnTable {
    Main,
    Parent,
}

#[derive(Debug, Clone)]
pub struct Lookup {
    pub table: String,
    pub key: String,
    pub value: String,
    pub translate: Option<String>,
    pub trim: bool,
    pub filter: Vec<(String, Value)>,
    /// Park (true) or dead-letter (false) a write whose value has no referenced row.
    pub park_when_missing: bool,
}

/// How one field is stored in one column.
#[derive(Debug, Clone)]
pub struct Column {
    pub field: usize,
    pub table: ColumnTable,
    pub column: String,
    pub trim: bool,
    /// Stored value (as text) → canonical value.
    pub map: Vec<(String, Value)>,
    pub lookup: Option<Lookup>,
    pub translate: Option<String>,
    pub reciprocal: bool,
    pub pad: Option<usize>,
    pub prefix: Option<String>,
    pub round: Option<u8>,
    pub also: Vec<String>,
    pub read_only: bool,
    /// Odoo: an SQL expression read instead of the column (read-only).
    pub expr: Option<String>,
    /// The canonical value of a stored NULL.
    pub null_as: Option<Value>,
    /// Legacy: a table that must hold the written value.
    pub references: Option<Reference>,
    /// Legacy key column numbered by the ERP when millrace creates a row.
    pub assign: Option<KeyAssign>,
    /// Odoo: the model's field the value is written to through the API; `None`: not written
    /// (a column of a parent that is found, not created).
    pub orm_field: Option<String>,
}

/// A table of the ERP that must hold a written value (referential integrity the ERP's schema
/// does not enforce).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub table: String,
    pub column: String,
    pub park_when_missing: bool,
}

/// How the ERP numbers a record millrace creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAssign {
    /// One above the highest number in the column (and above every number handed out before).
    Next,
}

#[derive(Debug, Clone)]
pub struct Parent {
    pub table: String,
    pub link: String,
    pub create: bool,
    pub defaults: Vec<(String, Value)>,
}

/// What a delete from the other side does on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    Delete,
    Ignore,
    /// Odoo: the record is archived (`active` false), not deleted.
    Archive,
}

/// How one side stores the entity.
#[derive(Debug, Clone)]
pub struct Side {
    pub system: System,
    pub table: String,
    /// Odoo: the model written through the API.
    pub model: String,
    pub id_column: String,
    pub parent: Option<Parent>,
    pub columns: Vec<Column>,
    pub defaults: Vec<(String, Value)>,
    pub only: Vec<(usize, Vec<Value>)>,
    /// Odoo: fields an existing row is found by when the key has no column here and no
    /// cross-reference binds it yet.
    pub match_fields: Vec<usize>,
    /// Legacy: how the table is polled.
    pub poll: Option<LegacyTable>,
    pub timezone: Option<chrono_tz::Tz>,
    pub on_delete: OnDelete,
    /// Rows millrace created are never updated.
    pub insert_only: bool,
    /// Whether `backfill` copies this side's rows.
    pub backfill: bool,
    /// Legacy: the columns read from the table (see [`Mappings::legacy_read_columns`]); empty:
    /// every column.
    pub read_columns: Vec<String>,
    /// Odoo, through its API: fields recorded by a business action instead of written.
    pub workflow: Option<Workflow>,
    /// Odoo: a row the integration user made that millrace knows nothing of is a record of its
    /// own (`made_by_integration_user = "new"`), not an echo.
    pub integration_rows_are_new: bool,
}

/// Which business action a [`Workflow`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowKind {
    /// A manufacturing order: quantity producing and lot set and the components consumed as
    /// Odoo's form does, components of scrapped units scrapped, the order marked done.
    Production,
    /// A sale order line: its open delivery validated for the quantity shipped since the last.
    Delivery,
}

/// Fields Odoo records through a business action rather than as written values
/// (`[odoo.workflow]`).
#[derive(Debug, Clone)]
pub struct Workflow {
    pub kind: WorkflowKind,
    pub quantity: usize,
    pub scrapped: Option<usize>,
    pub lot: Option<usize>,
    /// The record values on which the order is finished.
    pub done: Vec<(usize, Vec<Value>)>,
    pub backorder: bool,
}

impl Workflow {
    /// The fields the action records (never written as values).
    pub fn fields(&self) -> Vec<usize> {
        let mut fields = vec![self.quantity];
        fields.extend(self.scrapped);
        fields.extend(self.lot);
        fields.extend(self.done.iter().map(|(f, _)| *f));
        fields
    }

    /// Whether the record says the order is finished.
    pub fn is_done(&self, record: &Record) -> bool {
        !self.done.is_empty() && self.done.iter().all(|(field, values)| values.contains(&record.values[*field]))
    }
}

impl Side {
    pub fn column_of(&self, field: usize) -> Option<&Column> {
        self.columns.iter().find(|c| c.field == field)
    }
}

impl Mapping {
    /// The key field this side's ERP numbers itself, with its column, if any.
    pub fn assigned_key(&self) -> Option<(usize, &Column)> {
        self.legacy.columns.iter().find(|c| c.assign.is_some() && self.key.contains(&c.field)).map(|c| (c.field, c))
    }
}

/// A compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub entity: String,
    pub file: PathBuf,
    pub key: Vec<usize>,
    pub owner: System,
    pub conflict: ConflictPolicy,
    pub park_deadline: Duration,
    pub fields: Vec<Field>,
    pub handovers: Vec<Handover>,
    pub odoo: Side,
    pub legacy: Side,
}

impl Mapping {
    pub fn side(&self, system: System) -> &Side {
        match system {
            System::Odoo => &self.odoo,
            System::Legacy => &self.legacy,
        }
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Who owns `field` given the record it is in (hand-over rules look at other fields).
    pub fn owner_of(&self, field: usize, record: &Record) -> System {
        for handover in &self.handovers {
            if handover.field == field && handover.when_values.contains(&record.values[handover.when_field]) {
                return handover.to.unwrap_or(self.owner);
            }
        }
        self.fields[field].owner.unwrap_or(self.owner)
    }

    /// Whether `system` may change `field` of this record: its owner does, and while a
    /// hand-over to `both` applies, either side does.
    pub fn may_change(&self, field: usize, record: &Record, system: System) -> bool {
        for handover in &self.handovers {
            if handover.field == field && handover.when_values.contains(&record.values[handover.when_field]) {
                return handover.to.is_none_or(|to| to == system);
            }
        }
        self.fields[field].owner.unwrap_or(self.owner) == system
    }

    /// The canonical key of a record, as text (`["A100"]`, `["FURN_8855","01",10]`).
    pub fn key_text(&self, record: &Record) -> String {
        let values: Vec<&Value> = self.key.iter().map(|i| &record.values[*i]).collect();
        crate::model::key_text(&values)
    }

    /// Whether changes of this entity can be written into `system`: some field of it can.
    pub fn writes_into(&self, system: System) -> bool {
        (0..self.fields.len()).any(|f| self.writes_field_into(f, system))
    }

    /// Whether `field` can be written into `system`: the other side owns it, a hand-over gives it
    /// to the other side (or both), or conflicts are accepted.
    pub fn writes_field_into(&self, field: usize, system: System) -> bool {
        self.conflict == ConflictPolicy::Accept
            || self.fields[field].owner.unwrap_or(self.owner) == system.other()
            || self.handovers.iter().any(|h| h.field == field && h.to != Some(system))
    }

    /// Whether a side replicates this record (`only` filters).
    pub fn passes_filter(&self, system: System, record: &Record) -> bool {
        self.side(system).only.iter().all(|(field, values)| values.contains(&record.values[*field]))
    }

    /// Compiles one parsed file.
    pub fn compile(path: &Path, file: spec::MappingFile) -> Result<Mapping, MappingError> {
        let invalid =
            |message: String| MappingError::Invalid { path: path.to_path_buf(), entity: file.entity.clone(), message };
        if file.entity.is_empty() || !file.entity.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid("entity must be a name of letters, digits and _".into()));
        }
        let fields: Vec<Field> = file
            .fields
            .iter()
            .map(|(name, spec)| Field { name: name.clone(), ty: spec.ty, owner: spec.owner, decimal_scale: None })
            .collect();
        let index = |name: &str, what: &str| {
            fields
                .iter()
                .position(|f| f.name == name)
                .ok_or_else(|| invalid(format!("{what} names field {name:?}, which is not in [fields]")))
        };
        if file.key.is_empty() {
            return Err(invalid("key must name at least one field".into()));
        }
        let key = file.key.iter().map(|k| index(k, "key")).collect::<Result<Vec<_>, _>>()?;
        let mut handovers = Vec::new();
        for h in &file.handover {
            let field = index(&h.field, "handover")?;
            if h.when.len() != 1 {
                return Err(invalid(format!("handover of {}: `when` must name exactly one field", h.field)));
            }
            let (when_name, values) = h.when.iter().next().expect("checked: one entry");
            let when_field = index(when_name, "handover.when")?;
            let when_values = values
                .iter()
                .map(|v| transform::toml_to_value(v, fields[when_field].ty))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("handover of {}: {e}", h.field)))?;
            let to = match h.to.as_str() {
                "both" => None,
                other => Some(System::parse(other).ok_or_else(|| {
                    invalid(format!("handover of {}: to = {other:?}; use \"odoo\", \"legacy\" or \"both\"", h.field))
                })?),
            };
            handovers.push(Handover { field, to, when_field, when_values });
        }
        let park_deadline = match &file.park_deadline {
            Some(text) => crate::config::parse_duration("park_deadline", text).map_err(|e| invalid(e.to_string()))?,
            None => Duration::from_secs(3600),
        };
        let odoo = compile_side(System::Odoo, &file.odoo, &fields, &key, &invalid)?;
        let legacy = compile_side(System::Legacy, &file.legacy, &fields, &key, &invalid)?;
        let mut fields = fields;
        for (index, field) in fields.iter_mut().enumerate() {
            if field.ty == FieldType::Decimal {
                field.decimal_scale = decimal_scale([odoo.column_of(index), legacy.column_of(index)]);
            }
        }
        Ok(Mapping {
            entity: file.entity.clone(),
            file: path.to_path_buf(),
            key,
            owner: file.owner,
            conflict: file.conflict,
            park_deadline,
            fields,
            handovers,
            odoo,
            legacy,
        })
    }
}

/// The scale every canonical value of a decimal field fits, when all its columns round and
/// none maps values (a value map's canonical values are whatever the map says).
fn decimal_scale(columns: [Option<&Column>; 2]) -> Option<u8> {
    let mut scale = None;
    for column in columns.into_iter().flatten() {
        if !column.map.is_empty() {
            return None;
        }
        scale = Some(column.round?.max(scale.unwrap_or(0)));
    }
    scale
}

fn compile_side(
    system: System,
    spec: &spec::SideSpec,
    fields: &[Field],
    key: &[usize],
    invalid: &dyn Fn(String) -> MappingError,
) -> Result<Side, MappingError> {
    let section = system.as_str();
    let parent = match &spec.parent {
        Some(p) => {
            if system == System::Legacy {
                return Err(invalid("[legacy.parent] is not supported: legacy rows are read whole".into()));
            }
            Some(Parent {
                table: p.table.clone(),
                link: p.link.clone(),
                create: p.create,
                defaults: defaults(&p.defaults, invalid, &format!("[{section}.parent.defaults]"))?,
            })
        }
        None => None,
    };
    let mut columns = Vec::new();
    for (name, raw) in &spec.columns {
        let field = fields
            .iter()
            .position(|f| &f.name == name)
            .ok_or_else(|| invalid(format!("[{section}.columns] maps {name:?}, which is not in [fields]")))?;
        let c = raw.clone().into_spec();
        if c.expr.is_some() && system == System::Legacy {
            return Err(invalid(format!("[legacy.columns] {name}: expr is only for the Odoo side")));
        }
        if c.expr.is_some() && (!c.column.is_empty() || c.lookup.is_some() || c.translate.is_some()) {
            return Err(invalid(format!(
                "[{section}.columns] {name}: expr replaces column, lookup and translate; give only expr"
            )));
        }
        if c.expr.is_none() && c.column.is_empty() {
            return Err(invalid(format!("[{section}.columns] {name}: needs a column (or, on the Odoo side, an expr)")));
        }
        if (c.references.is_some() || c.assign.is_some()) && system == System::Odoo {
            return Err(invalid(format!("[odoo.columns] {name}: references and assign are for the legacy side")));
        }
        let null_as = match &c.null_as {
            Some(v) => Some(
                transform::toml_to_value(v, fields[field].ty)
                    .map_err(|e| invalid(format!("[{section}.columns] {name}: null_as: {e}")))?,
            ),
            None => None,
        };
        let references = match &c.references {
            Some(r) => Some(Reference {
                table: r.table.clone(),
                column: r.column.clone().unwrap_or_else(|| c.column.clone()),
                park_when_missing: match r.missing.as_deref() {
                    None | Some("park") => true,
                    Some("dead_letter") => false,
                    Some(other) => {
                        return Err(invalid(format!(
                        "[{section}.columns] {name}: references.missing is {other:?}; use \"park\" or \"dead_letter\""
                    )))
                    }
                },
            }),
            None => None,
        };
        let assign = match c.assign.as_deref() {
            None => None,
            Some("next") if key.contains(&field) && fields[field].ty == FieldType::Int => Some(KeyAssign::Next),
            Some("next") => {
                return Err(invalid(format!("[{section}.columns] {name}: assign = \"next\" is for an int key field")))
            }
            Some(other) => return Err(invalid(format!("[{section}.columns] {name}: assign {other:?}: use \"next\""))),
        };
        let (table, column) = match (c.column.split_once('.'), &parent) {
            (Some((link, column)), Some(p)) if link == p.link => (ColumnTable::Parent, column.to_string()),
            (Some(_), _) => {
                return Err(invalid(format!(
                    "[{section}.columns] {name}: {:?} reads through a link that is not the parent's",
                    c.column
                )))
            }
            (None, _) => (ColumnTable::Main, c.column.clone()),
        };
        if c.field.is_some() && system == System::Legacy {
            return Err(invalid(format!("[legacy.columns] {name}: field is for the Odoo side (the model's field)")));
        }
        let orm_field = match (&c.field, table, &parent) {
            (Some(f), _, _) => Some(f.clone()),
            // An expression is read only, unless the model has a field to write it to (a
            // product's cost: read from Odoo's company properties, written as standard_price).
            (None, _, _) if c.expr.is_some() => None,
            (None, ColumnTable::Main, _) => Some(column.clone()),
            (None, ColumnTable::Parent, Some(p)) if p.create => Some(column.clone()),
            (None, ColumnTable::Parent, _) => None,
        };
        let ty = fields[field].ty;
        let mut map = Vec::new();
        for (stored, canonical) in &c.map {
            let value = transform::toml_to_value(canonical, ty)
                .map_err(|e| invalid(format!("[{section}.columns] {name}: map entry {stored:?}: {e}")))?;
            map.push((stored.clone(), value));
        }
        let lookup = match c.lookup {
            Some(l) => {
                let park_when_missing = match l.missing.as_deref() {
                    None | Some("park") => true,
                    Some("dead_letter") => false,
                    Some(other) => {
                        return Err(invalid(format!(
                            "[{section}.columns] {name}: lookup.missing is {other:?}; use \"park\" or \"dead_letter\""
                        )))
                    }
                };
                let mut filter = Vec::new();
                for (column, value) in &l.filter {
                    filter.push((column.clone(), transform::toml_to_value(value, FieldType::Text).map_err(invalid)?));
                }
                Some(Lookup {
                    table: l.table,
                    key: l.key.unwrap_or_else(|| "id".into()),
                    value: l.value,
                    translate: l.translate,
                    trim: l.trim,
                    filter,
                    park_when_missing,
                })
            }
            None => None,
        };
        columns.push(Column {
            field,
            table,
            column,
            trim: c.trim,
            map,
            lookup,
            translate: c.translate,
            reciprocal: c.reciprocal,
            pad: c.pad,
            prefix: c.prefix,
            round: c.round,
            also: c.also,
            read_only: c.read_only || (c.expr.is_some() && c.field.is_none()),
            expr: c.expr,
            null_as,
            references,
            assign,
            orm_field,
        });
    }
    let only = field_values(fields, &spec.only, &format!("[{section}.only]"), invalid)?;
    let mut match_fields = Vec::new();
    for name in &spec.match_fields {
        let field = fields
            .iter()
            .position(|f| &f.name == name)
            .ok_or_else(|| invalid(format!("[{section}] match names {name:?}, which is not in [fields]")))?;
        if system == System::Legacy || !columns.iter().any(|c| c.field == field) {
            return Err(invalid(format!("[{section}] match: {name:?} must be a field stored in Odoo ([odoo] match)")));
        }
        match_fields.push(field);
    }
    let integration_rows_are_new = match spec.made_by_integration_user.as_deref() {
        None | Some("echo") => false,
        Some("new") if system == System::Odoo => true,
        Some(other) => {
            return Err(invalid(format!(
                "[{section}] made_by_integration_user {other:?}: use \"echo\" or \"new\" (Odoo side)"
            )))
        }
    };
    let workflow = match &spec.workflow {
        None => None,
        Some(_) if system == System::Legacy => {
            return Err(invalid("[legacy.workflow]: workflows are Odoo's business actions ([odoo.workflow])".into()))
        }
        Some(w) => Some(workflow(fields, w, invalid)?),
    };
    let timezone = match &spec.timezone {
        Some(name) => Some(
            name.parse::<chrono_tz::Tz>()
                .map_err(|_| invalid(format!("[{section}] timezone {name:?} is not an IANA zone name")))?,
        ),
        None => None,
    };
    let on_delete = match spec.on_delete.as_deref() {
        None | Some("delete") => OnDelete::Delete,
        Some("ignore") => OnDelete::Ignore,
        Some("archive") if system == System::Odoo => OnDelete::Archive,
        Some(other) => {
            return Err(invalid(format!(
                "[{section}] on_delete {other:?}: use \"delete\", \"ignore\" or (Odoo side) \"archive\""
            )))
        }
    };
    // `strategy = "none"`: millrace writes the table and never polls it (rows the ERP enters
    // itself stay the ERP's own).
    let poll = if system == System::Legacy && spec.strategy.as_deref() != Some("none") {
        let strategy = match spec.strategy.as_deref().unwrap_or("timestamp") {
            "timestamp" => Strategy::Timestamp {
                column: spec.column.clone().unwrap_or_else(|| "LAST_UPD".into()),
                safety_window: match &spec.safety_window {
                    Some(t) => crate::config::parse_duration("safety_window", t).map_err(|e| invalid(e.to_string()))?,
                    None => Duration::from_secs(120),
                },
            },
            "hashdiff" => Strategy::Hashdiff { chunk_size: spec.chunk_size.unwrap_or(10_000) },
            "rowversion" => Strategy::Rowversion { column: spec.column.clone().unwrap_or_else(|| "RV".into()) },
            "change_tracking" => Strategy::ChangeTracking,
            other => {
                return Err(invalid(format!(
                    "[legacy] strategy {other:?}: use timestamp, hashdiff, rowversion, change_tracking or none"
                )))
            }
        };
        let mut key_columns = Vec::new();
        for k in key {
            let column = columns
                .iter()
                .find(|c| c.field == *k)
                .ok_or_else(|| invalid(format!("[legacy.columns] must map key field {}", fields[*k].name)))?;
            key_columns.push(column.column.clone());
        }
        Some(LegacyTable {
            table: spec.table.clone(),
            key: key_columns,
            strategy,
            delete_scan_interval: match &spec.delete_scan_interval {
                Some(t) => {
                    Some(crate::config::parse_duration("delete_scan_interval", t).map_err(|e| invalid(e.to_string()))?)
                }
                None => None,
            },
            chunk_size: spec.chunk_size.unwrap_or(10_000),
            // Filled in once every mapping is loaded (another may look rows of this table up).
            columns: Vec::new(),
        })
    } else {
        None
    };
    if spec.model.is_some() && system == System::Legacy {
        return Err(invalid("[legacy] model is for the Odoo side (the model written through Odoo's API)".into()));
    }
    // Odoo names a model's table after the model, dots as underscores.
    let model = spec.model.clone().unwrap_or_else(|| spec.table.replace('_', "."));
    Ok(Side {
        system,
        table: spec.table.clone(),
        model,
        id_column: spec.id_column.clone().unwrap_or_else(|| "id".into()),
        parent,
        columns,
        defaults: defaults(&spec.defaults, invalid, &format!("[{section}.defaults]"))?,
        only,
        match_fields,
        poll,
        timezone,
        on_delete,
        insert_only: spec.insert_only,
        backfill: spec.backfill.unwrap_or(true),
        read_columns: Vec::new(),
        workflow,
        integration_rows_are_new,
    })
}

/// `{ field = [value, …] }` tables (`only`, a workflow's `done`) as field indices and values.
fn field_values(
    fields: &[Field],
    raw: &BTreeMap<String, Vec<toml::Value>>,
    section: &str,
    invalid: &dyn Fn(String) -> MappingError,
) -> Result<Vec<(usize, Vec<Value>)>, MappingError> {
    let mut out = Vec::new();
    for (name, values) in raw {
        let field = fields
            .iter()
            .position(|f| &f.name == name)
            .ok_or_else(|| invalid(format!("{section} names {name:?}, which is not in [fields]")))?;
        let values = values
            .iter()
            .map(|v| transform::toml_to_value(v, fields[field].ty))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("{section} {name}: {e}")))?;
        out.push((field, values));
    }
    Ok(out)
}

fn workflow(
    fields: &[Field],
    spec: &spec::WorkflowSpec,
    invalid: &dyn Fn(String) -> MappingError,
) -> Result<Workflow, MappingError> {
    let kind = match spec.kind.as_str() {
        "production" => WorkflowKind::Production,
        "delivery" => WorkflowKind::Delivery,
        other => return Err(invalid(format!("[odoo.workflow] kind {other:?}: use \"production\" or \"delivery\""))),
    };
    let field = |role: &str, name: &str| {
        fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| invalid(format!("[odoo.workflow] {role} names {name:?}, which is not in [fields]")))
    };
    let quantity = field("quantity", &spec.quantity)?;
    let scrapped = spec.scrapped.as_deref().map(|n| field("scrapped", n)).transpose()?;
    let lot = spec.lot.as_deref().map(|n| field("lot", n)).transpose()?;
    let done = field_values(fields, &spec.done, "[odoo.workflow.done]", invalid)?;
    if kind == WorkflowKind::Delivery && (scrapped.is_some() || lot.is_some() || !done.is_empty()) {
        return Err(invalid(
            "[odoo.workflow] a delivery takes quantity and backorder (scrapped, lot and done are for production)"
                .into(),
        ));
    }
    Ok(Workflow { kind, quantity, scrapped, lot, done, backorder: spec.backorder.unwrap_or(true) })
}

fn defaults(
    raw: &BTreeMap<String, toml::Value>,
    invalid: &dyn Fn(String) -> MappingError,
    section: &str,
) -> Result<Vec<(String, Value)>, MappingError> {
    raw.iter()
        .map(|(column, value)| {
            let value = match value {
                toml::Value::Integer(n) => Value::Int(*n),
                toml::Value::Boolean(b) => Value::Bool(*b),
                toml::Value::Float(f) => Value::Float(*f),
                toml::Value::String(s) => Value::Text(s.clone()),
                other => return Err(invalid(format!("{section} {column}: unsupported value {other}"))),
            };
            Ok((column.clone(), value))
        })
        .collect()
}

/// Every mapping of a directory, by entity name.
#[derive(Debug, Clone, Default)]
pub struct Mappings {
    pub entities: Vec<Mapping>,
}

impl Mappings {
    pub fn load_dir(dir: &Path) -> Result<Mappings, MappingError> {
        let entries =
            std::fs::read_dir(dir).map_err(|source| MappingError::ReadDir { path: dir.to_path_buf(), source })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        let mut entities: Vec<Mapping> = Vec::new();
        for path in paths {
            let text =
                std::fs::read_to_string(&path).map_err(|source| MappingError::Read { path: path.clone(), source })?;
            let mapping = Mapping::parse(&path, &text)?;
            if let Some(first) = entities.iter().find(|m| m.entity == mapping.entity) {
                return Err(MappingError::Duplicate {
                    entity: mapping.entity.clone(),
                    first: first.file.clone(),
                    second: path,
                });
            }
            entities.push(mapping);
        }
        let mut mappings = Mappings { entities };
        mappings.set_legacy_read_columns();
        Ok(mappings)
    }

    /// Every column of legacy `table` some mapping needs: the columns of the mappings whose table
    /// it is and the column of their polling strategy, and the key, value and filter columns of
    /// lookups into it. In first-seen order, each once (compared as the ERP does, ignoring case).
    pub fn legacy_read_columns(&self, table: &str) -> Vec<String> {
        let mut columns: Vec<String> = Vec::new();
        let mut add = |c: &str| push_column_once(&mut columns, c);
        for m in &self.entities {
            if m.legacy.table.eq_ignore_ascii_case(table) {
                m.legacy.columns.iter().for_each(|c| add(&c.column));
                if let Some(column) = m.legacy.poll.as_ref().and_then(|p| p.strategy.column()) {
                    add(column);
                }
            }
            for l in m.legacy.columns.iter().filter_map(|c| c.lookup.as_ref()) {
                if l.table.eq_ignore_ascii_case(table) {
                    add(&l.key);
                    add(&l.value);
                    l.filter.iter().for_each(|(c, _)| add(c));
                }
            }
        }
        columns
    }

    fn set_legacy_read_columns(&mut self) {
        let read: Vec<Vec<String>> = self.entities.iter().map(|m| self.legacy_read_columns(&m.legacy.table)).collect();
        for (m, columns) in self.entities.iter_mut().zip(read) {
            if let Some(poll) = &mut m.legacy.poll {
                poll.columns = columns.clone();
            }
            m.legacy.read_columns = columns;
        }
    }

    pub fn get(&self, entity: &str) -> Option<&Mapping> {
        self.entities.iter().find(|m| m.entity == entity)
    }

    /// Every legacy table polled, each once, in mapping order; then the lookup tables no mapping
    /// polls, compared by content (`hashdiff`: code tables are small), so that a change to a
    /// looked-up row re-emits the entities that draw on it.
    pub fn legacy_tables(&self) -> Vec<LegacyTable> {
        let mut tables: Vec<LegacyTable> = Vec::new();
        for m in &self.entities {
            if let Some(poll) = &m.legacy.poll {
                if !tables.iter().any(|t| t.table.eq_ignore_ascii_case(&poll.table)) {
                    tables.push(poll.clone());
                }
            }
        }
        for m in &self.entities {
            for l in m.legacy.columns.iter().filter_map(|c| c.lookup.as_ref()) {
                if !tables.iter().any(|t| t.table.eq_ignore_ascii_case(&l.table)) {
                    tables.push(LegacyTable {
                        table: l.table.clone(),
                        key: vec![l.key.clone()],
                        strategy: Strategy::Hashdiff { chunk_size: 10_000 },
                        delete_scan_interval: None,
                        chunk_size: 10_000,
                        columns: self.legacy_read_columns(&l.table),
                    });
                }
            }
        }
        tables
    }

    /// Every Odoo table a mapping reads: main tables, parents and lookup tables.
    pub fn odoo_tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = Vec::new();
        let mut add = |t: &str| {
            if !tables.iter().any(|x| x == t) {
                tables.push(t.to_string());
            }
        };
        for m in &self.entities {
            add(&m.odoo.table);
            if let Some(p) = &m.odoo.parent {
                add(&p.table);
            }
            for c in &m.odoo.columns {
                if let Some(l) = &c.lookup {
                    add(&l.table);
                }
            }
        }
        tables
    }
}

impl Mapping {
    pub fn parse(path: &Path, text: &str) -> Result<Mapping, MappingError> {
        let file: spec::MappingFile = toml::from_str(text)
            .map_err(|source| MappingError::Parse { path: path.to_path_buf(), source: Box::new(source) })?;
        Mapping::compile(path, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decimal_field_has_a_fixed_scale_only_where_every_column_rounds() {
        let text = r#"
entity = "part"
key = ["code"]
owner = "legacy"

[fields]
code = { type = "text" }
qty = { type = "decimal" }
price = { type = "decimal" }
factor = { type = "decimal" }

[legacy]
table = "PART"
strategy = "hashdiff"

[legacy.columns]
code = "CODE"
qty = { column = "QTY", round = 4 }
price = { column = "PRICE", round = 2 }
factor = { column = "FACTOR", map = { "1" = 1.5 } }

[odoo]
table = "part"

[odoo.columns]
code = "code"
qty = { column = "qty", round = 6 }
price = "price"
factor = { column = "factor", round = 2 }
"#;
        let m = Mapping::parse(Path::new("part.toml"), text).unwrap();
        let scale = |name: &str| m.fields[m.field_index(name).unwrap()].decimal_scale;
        assert_eq!(scale("qty"), Some(6), "the largest rounding of its columns");
        assert_eq!(scale("price"), None, "Odoo's column keeps any scale");
        assert_eq!(scale("factor"), None, "a value map's values keep their own scale");
        assert_eq!(scale("code"), None);
    }
}
