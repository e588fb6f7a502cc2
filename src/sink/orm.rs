//! Writing entities into Odoo through its external API, as millrace's integration user.
//!
//! Odoo's business logic runs on every write (a product's cost becomes its company-dependent
//! property, a template gets its internal reference, a BOM line its template, stock and
//! valuation follow), which a row written with SQL would skip. What is written is found with
//! reads of Odoo's database (the row of a key, a parent row, the id a looked-up name stands
//! for: `odoo_rows`); nothing here writes Odoo's tables with SQL.
//!
//! A batch becomes as few calls as it can: consecutive creates of one model are one `create`
//! with a list of values, consecutive writes of the same values on one model one `write` on
//! the set of ids. Each call is one Odoo transaction: a call Odoo refuses is made again record by
//! record to find the one at fault, which is dead-lettered with Odoo's message; an outage fails
//! the whole batch, which is retried (a record a lost reply had created is then found by its key
//! and updated, not created twice).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::odoo_actions::{self, Action, ActionError, Shipment};
use super::odoo_rows::{Assignment, KeySearch};
use super::{about_record, field_named_in, ApplyError, Outcome, Sink, SinkError, Write};
use crate::config::{OdooApiSettings, PgConnInfo};
use crate::mapping::{ChangeOp, ColumnTable, Mapping, Mappings, OnDelete, System, WorkflowKind};
use crate::model::{quote_ident, TableName, Value};
use crate::odoo_api::{ApiError, FieldInfo, OdooApi};

/// Odoo's API as a [`Sink`].
pub struct OrmSink {
    api: OdooApi,
    /// Reads of Odoo's database (never a write).
    read: tokio_postgres::Client,
    /// `fields_get` of each model written so far.
    models: HashMap<String, BTreeMap<String, FieldInfo>>,
    /// How long a call sent may still be committed by Odoo: the calls' timeout, and a margin.
    in_flight_window: std::time::Duration,
}

/// A create waiting for its batched call: (change index, model, values, context).
type QueuedCreate = (usize, String, Map<String, Json>, Json);
/// A write waiting for its batched call: (change index, model, id, values, context).
type QueuedWrite = (usize, String, i64, Map<String, Json>, Json);

/// What a change needs done: a call, and a business action after the batch's writes.
struct Planned {
    call: Option<Call>,
    action: Option<Action>,
}

impl From<Option<Call>> for Planned {
    fn from(call: Option<Call>) -> Planned {
        Planned { call, action: None }
    }
}

/// One call's worth of work for a change.
enum Call {
    Create { model: String, values: Map<String, Json>, context: Json },
    Write { model: String, id: i64, values: Map<String, Json>, context: Json },
    Delete { model: String, id: i64, archive: bool, may_archive: bool },
}

impl OrmSink {
    /// Logs in to Odoo's API and opens the read connection to its database.
    pub async fn connect(settings: &OdooApiSettings, read: &PgConnInfo) -> Result<OrmSink, SinkError> {
        let api = OdooApi::login(settings).await.map_err(|e| unavailable(e.to_string()))?;
        let read = crate::pg::connect(read).await.map_err(|e| unavailable(e.to_string()))?;
        tracing::info!(database = api.database(), uid = api.uid(), "writing into Odoo through its API");
        let in_flight_window = settings.timeout + std::time::Duration::from_secs(10);
        Ok(OrmSink { api, read, models: HashMap::new(), in_flight_window })
    }

    /// The integration user's id.
    pub fn uid(&self) -> i64 {
        self.api.uid()
    }

    pub fn is_closed(&self) -> bool {
        self.read.is_closed()
    }

    async fn load_model(&mut self, model: &str) -> Result<(), SinkError> {
        if !self.models.contains_key(model) {
            let fields = match self.api.fields_get(model).await {
                Ok(fields) => fields,
                // A model Odoo does not know: every change of it is refused below, naming it.
                Err(ApiError::Refused { .. }) => BTreeMap::new(),
                Err(e) => return Err(unavailable(e.to_string())),
            };
            self.models.insert(model.to_string(), fields);
        }
        Ok(())
    }

    /// The call (and action) a change needs; none when it needs nothing.
    async fn plan(
        &self,
        w: &Write<'_>,
        created: &HashMap<(String, String), i64>,
        resolved: &std::cell::RefCell<HashMap<String, String>>,
    ) -> Result<Planned, ApplyError> {
        let m = w.mapping;
        let model = m.odoo.model.clone();
        let search = KeySearch { client: &self.read, resolved: Some(resolved) };
        let fields = self.models.get(&model).filter(|f| !f.is_empty()).ok_or_else(|| ApplyError::Dead {
            field: None,
            reason: format!("Odoo has no model {model} (the [odoo] model of mapping {})", m.entity),
        })?;
        let known = created.get(&(m.entity.clone(), w.key.to_string())).copied();
        let id = match (known, w.target_id.and_then(|s| s.parse::<i64>().ok())) {
            (Some(id), _) => Some(id),
            (None, Some(id)) if self.exists(m, id).await? => Some(id),
            (None, _) if w.op == ChangeOp::Delete => None,
            // (Found by match fields, a row may be ambiguous: searched again to say so.)
            (None, None) if w.target_absent && m.odoo.match_fields.is_empty() => None,
            (None, _) => match w.record {
                Some(record) => search.find_by_key(m, w.key, record).await?,
                None => None,
            },
        };
        if w.op == ChangeOp::Delete {
            let Some(id) = id else { return Ok(None.into()) };
            return Ok(Some(Call::Delete {
                model,
                id,
                archive: m.odoo.on_delete == OnDelete::Archive,
                may_archive: fields.contains_key("active"),
            })
            .into());
        }
        let Some(record) = w.record else {
            return Err(ApplyError::Dead { field: None, reason: format!("an upsert of {} without a record", w.key) });
        };
        match id {
            Some(id) => {
                // Fields a workflow records are not written: its action records them.
                let (written, action) = match &m.odoo.workflow {
                    Some(workflow) => {
                        let recorded = workflow.fields();
                        let written: Vec<usize> = w.fields.iter().copied().filter(|f| !recorded.contains(f)).collect();
                        let action = if w.fields.iter().any(|f| recorded.contains(f)) {
                            let action = Action::new(workflow, id, record).map_err(|reason| ApplyError::Dead {
                                field: Some(m.fields[workflow.quantity].name.clone()),
                                reason,
                            })?;
                            Some(action)
                        } else {
                            None
                        };
                        (written, action)
                    }
                    None => (w.fields.to_vec(), None),
                };
                let written: Vec<usize> = written.into_iter().filter(|f| !names_itself(m, record, *f)).collect();
                let assignments = search.column_values(m, w.key, record, &written, false).await?;
                let (values, context) = orm_values(m, w.key, fields, &assignments, &[])?;
                let call = (!values.is_empty()).then_some(Call::Write { model, id, values, context });
                Ok(Planned { call, action })
            }
            None if !w.create => Ok(None.into()),
            None => {
                let all: Vec<usize> = (0..m.fields.len()).collect();
                let assignments = search.column_values(m, w.key, record, &all, false).await?;
                let mut defaults: Vec<(String, Value)> = m.odoo.defaults.clone();
                if let Some(parent) = &m.odoo.parent {
                    if parent.create {
                        // Odoo creates the parent (a product's template) itself, with the
                        // values given to the model that delegates to it.
                        defaults.extend(parent.defaults.iter().cloned());
                    } else {
                        let parent_assignments: Vec<&Assignment> =
                            assignments.iter().filter(|a| a.table == ColumnTable::Parent).collect();
                        let parent_id = search.find_parent(m, w.key, &parent_assignments).await?;
                        defaults.push((parent.link.clone(), Value::Int(parent_id)));
                    }
                }
                let (values, context) = orm_values(m, w.key, fields, &assignments, &defaults)?;
                // A create sent before a restart or a failed batch, whose reply never came, may
                // still be committed by Odoo (it finishes a call whoever stopped listening): the
                // record is looked for again later, and made only once that call must be over.
                if let Some(sent) = w.in_flight_for.filter(|sent| *sent < self.in_flight_window) {
                    return Err(ApplyError::InFlight(format!(
                        "{} {}: not found in Odoo, but a write of it sent {} s ago (before a restart or a failed \
                         batch) may still be committed there; looked for again before it is made (for up to {} s)",
                        m.entity,
                        w.key,
                        sent.as_secs(),
                        self.in_flight_window.as_secs()
                    )));
                }
                Ok(Some(Call::Create { model, values, context }).into())
            }
        }
    }

    async fn exists(&self, m: &Mapping, id: i64) -> Result<bool, ApplyError> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE {}::bigint = $1",
            TableName::parse(&m.odoo.table).quoted(),
            quote_ident(&m.odoo.id_column)
        );
        let row = self.read.query_opt(&sql, &[&id]).await.map_err(|e| ApplyError::Transient(e.to_string()))?;
        Ok(row.is_some())
    }

    /// Runs the queued creates as one call per model (or one per record, when Odoo refuses the
    /// list, to find the one at fault).
    async fn flush_creates(
        &self,
        queue: &mut Vec<QueuedCreate>,
        changes: &[Option<Write<'_>>],
        outcomes: &mut [Outcome],
        created: &mut HashMap<(String, String), i64>,
    ) -> Result<(), SinkError> {
        let mut start = 0;
        while start < queue.len() {
            let (_, model, _, context) = &queue[start];
            let end = start + queue[start..].iter().take_while(|(_, m, _, c)| m == model && c == context).count();
            let run = &queue[start..end];
            let values: Vec<Json> = run.iter().map(|(_, _, v, _)| Json::Object(v.clone())).collect();
            match self.api.create(model, &values, context).await {
                Ok(ids) => {
                    for ((index, ..), id) in run.iter().zip(ids) {
                        record_created(changes, *index, id, outcomes, created);
                    }
                }
                Err(ApiError::Refused { .. }) if run.len() > 1 => {
                    for (index, model, values, context) in run {
                        match self.api.create(model, &[Json::Object(values.clone())], context).await {
                            Ok(ids) => record_created(changes, *index, ids[0], outcomes, created),
                            Err(e) => outcomes[*index] = Err(refusal(changes, *index, e)?),
                        }
                    }
                }
                Err(e) => outcomes[run[0].0] = Err(refusal(changes, run[0].0, e)?),
            }
            start = end;
        }
        queue.clear();
        Ok(())
    }

    /// Runs the queued writes: one call for each run of the same values on one model.
    async fn flush_writes(
        &self,
        queue: &mut Vec<QueuedWrite>,
        changes: &[Option<Write<'_>>],
        outcomes: &mut [Outcome],
    ) -> Result<(), SinkError> {
        let mut start = 0;
        while start < queue.len() {
            let (_, model, _, values, context) = &queue[start];
            let end = start
                + queue[start..].iter().take_while(|(_, m, _, v, c)| m == model && v == values && c == context).count();
            let run = &queue[start..end];
            let ids: Vec<i64> = run.iter().map(|(_, _, id, ..)| *id).collect();
            let values = Json::Object(values.clone());
            match self.api.write(model, &ids, &values, context).await {
                Ok(()) => {
                    for (index, _, id, ..) in run {
                        outcomes[*index] = Ok(Some(id.to_string()));
                    }
                }
                Err(ApiError::Refused { .. }) if run.len() > 1 => {
                    for (index, model, id, values, context) in run {
                        outcomes[*index] =
                            match self.api.write(model, &[*id], &Json::Object(values.clone()), context).await {
                                Ok(()) => Ok(Some(id.to_string())),
                                Err(e) => Err(refusal(changes, *index, e)?),
                            };
                    }
                }
                Err(e) => outcomes[run[0].0] = Err(refusal(changes, run[0].0, e)?),
            }
            start = end;
        }
        queue.clear();
        Ok(())
    }

    /// Deletes a record; one Odoo will not delete (a BOM its orders use, a product with stock
    /// moves) is archived instead when the model can be, as Odoo's own message advises.
    async fn delete(&self, model: &str, id: i64, archive: bool, may_archive: bool) -> Result<(), ApiError> {
        if !archive {
            match self.api.unlink(model, &[id]).await {
                Ok(()) => return Ok(()),
                Err(ApiError::Refused { message, .. }) if may_archive => {
                    tracing::info!(model, id, reason = %message, "Odoo refused the delete; archiving instead");
                }
                Err(e) => return Err(e),
            }
        }
        self.api.write(model, &[id], &json!({"active": false}), &json!({})).await
    }
}

/// Whether `field` is a lookup into the entity's own table that names the record itself (a
/// reference unit's class is its own name): left as it is on an update. Looked up while the
/// record is renamed, it would search for the new name before the record bears it.
fn names_itself(m: &Mapping, record: &crate::mapping::Record, field: usize) -> bool {
    let Some(lookup) = m.odoo.column_of(field).and_then(|c| c.lookup.as_ref()) else { return false };
    lookup.table == m.odoo.table
        && m.odoo.columns.iter().any(|c| {
            c.field != field
                && c.table == ColumnTable::Main
                && c.column == lookup.value
                && record.values[c.field] == record.values[field]
        })
}

fn record_created(
    changes: &[Option<Write<'_>>],
    index: usize,
    id: i64,
    outcomes: &mut [Outcome],
    created: &mut HashMap<(String, String), i64>,
) {
    if let Some(w) = &changes[index] {
        created.insert((w.mapping.entity.clone(), w.key.to_string()), id);
    }
    outcomes[index] = Ok(Some(id.to_string()));
}

/// A call's failure as the change's outcome; an outage fails the batch.
fn refusal(changes: &[Option<Write<'_>>], index: usize, error: ApiError) -> Result<ApplyError, SinkError> {
    match error {
        ApiError::Refused { call, name, message } => {
            let short = name.rsplit('.').next().unwrap_or(&name).to_string();
            let (entity, key, field) = match &changes[index] {
                Some(w) => (w.mapping.entity.as_str(), w.key, field_named_in(w.mapping, System::Odoo, &message)),
                None => ("?", "?", None),
            };
            Ok(ApplyError::Dead { field, reason: format!("{entity} {key}: Odoo refused {call}: {message} ({short})") })
        }
        other => Err(unavailable(other.to_string())),
    }
}

/// The values of a create or write, as the model's fields take them, and the context to send
/// them in (the language of translated fields).
fn orm_values(
    m: &Mapping,
    key: &str,
    fields: &BTreeMap<String, FieldInfo>,
    assignments: &[Assignment],
    defaults: &[(String, Value)],
) -> Result<(Map<String, Json>, Json), ApplyError> {
    let mut values = Map::new();
    let mut lang = None;
    for a in assignments {
        let Some(name) = &a.orm_field else { continue };
        let info = fields.get(name).ok_or_else(|| ApplyError::Dead {
            field: field_named_in(m, System::Odoo, &format!("\"{}\"", a.column)),
            reason: format!("{} {key}: model {} has no field {name} (check the mapping)", m.entity, m.odoo.model),
        })?;
        let value = json_value(info, a.value.as_deref()).map_err(|reason| ApplyError::Dead {
            field: field_named_in(m, System::Odoo, &format!("\"{}\"", a.column)),
            reason: format!("{} {key}: field {name} of {}: {reason}", m.entity, m.odoo.model),
        })?;
        if a.translate.is_some() {
            lang.clone_from(&a.translate);
        }
        values.insert(name.clone(), value);
    }
    for (name, value) in defaults {
        if values.contains_key(name) || (value.is_null() && !fields.contains_key(name)) {
            continue;
        }
        let Some(info) = fields.get(name) else {
            return Err(ApplyError::Dead {
                field: None,
                reason: format!(
                    "{} {key}: model {} has no field {name} (a default of the mapping)",
                    m.entity, m.odoo.model
                ),
            });
        };
        // `$now`: Odoo stamps its own dates.
        if matches!(value, Value::Text(t) if t == "$now") {
            continue;
        }
        let text = super::odoo_rows::default_text(value);
        let json = json_value(info, text.as_deref()).map_err(|reason| ApplyError::Dead {
            field: None,
            reason: format!("{} {key}: default {name} of {}: {reason}", m.entity, m.odoo.model),
        })?;
        values.insert(name.clone(), json);
    }
    let context = match lang {
        Some(lang) => json!({"lang": lang}),
        None => json!({}),
    };
    Ok((values, context))
}

/// A stored value (as text) in the form Odoo's field of this type takes over JSON-RPC; `None`
/// (NULL) is Odoo's `False`.
fn json_value(info: &FieldInfo, text: Option<&str>) -> Result<Json, String> {
    let Some(text) = text else { return Ok(Json::Bool(false)) };
    Ok(match info.ty.as_str() {
        "many2one" | "integer" | "many2one_reference" => {
            Json::from(text.parse::<i64>().map_err(|_| format!("{text:?} is not an integer"))?)
        }
        "float" | "monetary" => {
            let n: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
            serde_json::Number::from_f64(n)
                .map(Json::Number)
                .ok_or_else(|| format!("{text:?} is not a finite number"))?
        }
        "boolean" => Json::Bool(match text {
            "true" | "t" | "1" => true,
            "false" | "f" | "0" => false,
            other => return Err(format!("{other:?} is not true or false")),
        }),
        "selection" if !info.selection.is_empty() && !info.selection.iter().any(|s| s == text) => {
            return Err(format!("{text:?} is not one of its values ({})", info.selection.join(", ")));
        }
        // Odoo reads "YYYY-MM-DD HH:MM:SS" (UTC) and "YYYY-MM-DD".
        "datetime" => Json::String(text.replace('T', " ").chars().take(19).collect()),
        "date" => Json::String(text.chars().take(10).collect()),
        _ => Json::String(text.to_string()),
    })
}

impl Sink for OrmSink {
    async fn apply(
        &mut self,
        _mappings: &Arc<Mappings>,
        changes: &[Option<Write<'_>>],
    ) -> Result<Vec<Outcome>, SinkError> {
        for w in changes.iter().flatten() {
            self.load_model(&w.mapping.odoo.model).await?;
        }
        let mut outcomes: Vec<Outcome> = vec![Ok(None); changes.len()];
        let mut creates: Vec<QueuedCreate> = Vec::new();
        let mut writes: Vec<QueuedWrite> = Vec::new();
        let mut created: HashMap<(String, String), i64> = HashMap::new();
        // The (entity, key) of each queued create, so a later change of one finds it written.
        let mut queued_keys: HashSet<(&str, &str)> = HashSet::new();
        let resolved = std::cell::RefCell::new(HashMap::new());
        // Business actions, run once the batch's writes are made.
        let mut actions: Vec<(usize, Action)> = Vec::new();
        for (index, w) in changes.iter().enumerate() {
            let Some(w) = w else { continue };
            // What is queued is written before a change that may depend on it is planned: a
            // change of another model (a BOM line needs its BOM), or of a key already queued.
            let model = &w.mapping.odoo.model;
            let key_queued = queued_keys.contains(&(w.mapping.entity.as_str(), w.key));
            if creates.first().is_some_and(|(_, m, ..)| m != model) || key_queued {
                self.flush_creates(&mut creates, changes, &mut outcomes, &mut created).await?;
                queued_keys.clear();
            }
            // A mapping that looks rows of its own model up (a unit's class is named by its
            // reference unit) may need a queued write made first: a renamed reference unit
            // before the units of its class that name it anew.
            let looks_itself_up = w
                .mapping
                .odoo
                .columns
                .iter()
                .any(|c| c.lookup.as_ref().is_some_and(|l| l.table == w.mapping.odoo.table));
            if looks_itself_up && !creates.is_empty() {
                self.flush_creates(&mut creates, changes, &mut outcomes, &mut created).await?;
                queued_keys.clear();
            }
            if writes.first().is_some_and(|(_, m, ..)| m != model) || (looks_itself_up && !writes.is_empty()) {
                self.flush_writes(&mut writes, changes, &mut outcomes).await?;
            }
            let planned = match self.plan(w, &created, &resolved).await {
                Ok(Planned { call, action }) => {
                    if let Some(action) = action {
                        actions.push((index, action));
                    }
                    Ok(call)
                }
                Err(e) => Err(e),
            };
            match planned {
                Ok(None) => {}
                Ok(Some(Call::Create { model, values, context })) => {
                    queued_keys.insert((w.mapping.entity.as_str(), w.key));
                    creates.push((index, model, values, context));
                }
                Ok(Some(Call::Write { model, id, values, context })) => {
                    writes.push((index, model, id, values, context))
                }
                Ok(Some(Call::Delete { model, id, archive, may_archive })) => {
                    self.flush_creates(&mut creates, changes, &mut outcomes, &mut created).await?;
                    queued_keys.clear();
                    self.flush_writes(&mut writes, changes, &mut outcomes).await?;
                    outcomes[index] = match self.delete(&model, id, archive, may_archive).await {
                        Ok(()) => Ok(None),
                        Err(e) => Err(refusal(changes, index, e)?),
                    };
                }
                Err(ApplyError::Transient(message)) => return Err(unavailable(message)),
                Err(ApplyError::Dead { field, reason }) => {
                    outcomes[index] = Err(ApplyError::Dead { field, reason: about_record(w.mapping, w.key, reason) });
                }
                Err(other) => outcomes[index] = Err(other),
            }
        }
        self.flush_creates(&mut creates, changes, &mut outcomes, &mut created).await?;
        self.flush_writes(&mut writes, changes, &mut outcomes).await?;
        self.act(&actions, changes, &mut outcomes).await?;
        Ok(outcomes)
    }
}

impl OrmSink {
    /// Runs the batch's business actions (of changes whose writes went through): productions
    /// one by one, shipments grouped by delivery.
    async fn act(
        &self,
        actions: &[(usize, Action)],
        changes: &[Option<Write<'_>>],
        outcomes: &mut [Outcome],
    ) -> Result<(), SinkError> {
        let mut shipments = Vec::new();
        for (index, action) in actions {
            if outcomes[*index].is_err() {
                continue;
            }
            match action.kind {
                WorkflowKind::Production => {
                    if let Err(e) = odoo_actions::production(&self.api, action).await {
                        outcomes[*index] = Err(action_failure(changes, *index, e)?);
                    }
                }
                WorkflowKind::Delivery => shipments.push(Shipment {
                    index: *index,
                    line: action.id,
                    shipped: action.quantity,
                    backorder: action.backorder,
                }),
            }
        }
        if shipments.is_empty() {
            return Ok(());
        }
        let done = odoo_actions::deliveries(&self.api, &shipments).await.map_err(|e| unavailable(e.to_string()))?;
        for (index, result) in done {
            if let Err(e) = result {
                outcomes[index] = Err(action_failure(changes, index, e)?);
            }
        }
        Ok(())
    }
}

/// An action's failure as the change's outcome (a dead letter about its record); an outage
/// fails the batch.
fn action_failure(changes: &[Option<Write<'_>>], index: usize, e: ActionError) -> Result<ApplyError, SinkError> {
    match e.into_outcome() {
        Ok(ApplyError::Dead { field, reason }) => Ok(ApplyError::Dead {
            field,
            reason: match &changes[index] {
                Some(w) => about_record(w.mapping, w.key, reason),
                None => reason,
            },
        }),
        Ok(other) => Ok(other),
        Err(e) => Err(unavailable(e.to_string())),
    }
}

fn unavailable(message: String) -> SinkError {
    SinkError::Unavailable { system: "odoo", message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(ty: &str) -> FieldInfo {
        FieldInfo { ty: ty.into(), relation: None, readonly: false, required: false, selection: Vec::new() }
    }

    #[test]
    fn values_take_the_form_of_their_odoo_field() {
        assert_eq!(json_value(&field("many2one"), Some("12")), Ok(json!(12)));
        assert_eq!(json_value(&field("float"), Some("129.9000")), Ok(json!(129.9)));
        assert_eq!(json_value(&field("boolean"), Some("false")), Ok(json!(false)));
        assert_eq!(json_value(&field("char"), None), Ok(json!(false)));
        assert_eq!(json_value(&field("datetime"), Some("2026-12-07T10:11:12.5")), Ok(json!("2026-12-07 10:11:12")));
        assert!(json_value(&field("integer"), Some("x")).unwrap_err().contains("\"x\""));
        let tracking =
            FieldInfo { selection: vec!["serial".into(), "lot".into(), "none".into()], ..field("selection") };
        assert_eq!(json_value(&tracking, Some("lot")), Ok(json!("lot")));
        assert!(json_value(&tracking, Some("batch")).unwrap_err().contains("serial, lot, none"));
    }
}
