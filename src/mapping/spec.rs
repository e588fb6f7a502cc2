//! The mapping file format: one canonical entity per TOML file in `mappings/`, as written by
//! the user. [`super::Mapping::compile`] checks it and turns it into what the pipeline runs.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Which system holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Odoo,
    Legacy,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Odoo => "odoo",
            System::Legacy => "legacy",
        }
    }

    pub fn other(self) -> System {
        match self {
            System::Odoo => System::Legacy,
            System::Legacy => System::Odoo,
        }
    }

    pub fn parse(text: &str) -> Option<System> {
        match text {
            "odoo" => Some(System::Odoo),
            "legacy" => Some(System::Legacy),
            _ => None,
        }
    }
}

/// What happens to a change of a field by the side that does not own it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Recorded as a conflict and not applied.
    #[default]
    Reject,
    /// Recorded as a conflict and applied anyway.
    Accept,
    /// Recorded as a conflict, and the owner's value written back over the edit (Odoo side:
    /// through its API), so the two systems never stay apart.
    Revert,
}

/// The canonical type of a field. Values from either side are converted to it, so that the
/// same business value compares equal whatever column type each side stores it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Int,
    Decimal,
    Bool,
    Date,
    Timestamp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub entity: String,
    /// The natural key: field names, in order.
    pub key: Vec<String>,
    /// System of record: creates and deletes, and every field without its own owner.
    pub owner: System,
    #[serde(default)]
    pub conflict: ConflictPolicy,
    /// How long a change may wait for a dependency before it is dead-lettered (`30m`).
    pub park_deadline: Option<String>,
    pub fields: BTreeMap<String, FieldSpec>,
    #[serde(default)]
    pub handover: Vec<HandoverSpec>,
    pub odoo: SideSpec,
    pub legacy: SideSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// The field's own owner, when it is not the entity's.
    pub owner: Option<System>,
}

/// Hands a field to `to` while the record's `when` field holds one of the listed values
/// (`when = { status = ["released", "closed"] }`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverSpec {
    pub field: String,
    /// `odoo`, `legacy`, or `both`: either side's change is applied (the last one wins).
    pub to: String,
    pub when: BTreeMap<String, Vec<toml::Value>>,
}

/// How one side stores the entity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideSpec {
    pub table: String,
    /// Odoo: the model millrace writes through Odoo's API (`product.product`); by default the
    /// table's name with dots (`mrp_bom_line` → `mrp.bom.line`).
    pub model: Option<String>,
    /// Odoo: the surrogate id column (default `id`). Not used on the legacy side.
    pub id_column: Option<String>,
    /// Odoo: a table each row hangs off (product_template for product_product).
    pub parent: Option<ParentSpec>,
    /// Column per field; a field missing here is not stored on this side.
    pub columns: BTreeMap<String, ColumnSpecRaw>,
    /// Columns written on insert when no field provides them (NOT NULL columns the other side
    /// knows nothing of). `"$now"` is the current UTC time.
    #[serde(default)]
    pub defaults: BTreeMap<String, toml::Value>,
    /// Only rows whose canonical fields hold one of the listed values are replicated from this
    /// side (`only = { status = ["released", "closed"] }`).
    #[serde(default)]
    pub only: BTreeMap<String, Vec<toml::Value>>,
    /// Odoo: when the key has no column in Odoo (a unit's ERP code), the fields an existing
    /// row is found by before the cross-reference binds it (`match = ["name"]`).
    #[serde(default, rename = "match")]
    pub match_fields: Vec<String>,
    /// Legacy: change-detection strategy and its options, as in `[[legacy.tables]]`.
    pub strategy: Option<String>,
    pub column: Option<String>,
    pub safety_window: Option<String>,
    pub delete_scan_interval: Option<String>,
    pub chunk_size: Option<usize>,
    /// Legacy: the zone its local DATETIMEs are in (`Europe/Brussels`); Odoo stores UTC.
    pub timezone: Option<String>,
    /// What a delete from the other side does here: `delete` (default), `ignore`, or (Odoo)
    /// `archive` (`active` set false: Odoo keeps what refers to it, as its users do).
    pub on_delete: Option<String>,
    /// Rows millrace created here are never updated afterwards (a ledger: corrections are new
    /// rows). A later change of such a record is `filtered`.
    #[serde(default)]
    pub insert_only: bool,
    /// Whether `backfill` copies this side's existing rows to the other side (default true).
    /// False for history the other side already holds in its own form (the ERP's ledger of
    /// past stock movements): only changes from now on flow.
    pub backfill: Option<bool>,
    /// Odoo, through its API: fields recorded by the business action a user would take instead
    /// of written as values (a production report, a delivery).
    pub workflow: Option<WorkflowSpec>,
    /// Odoo: what a row millrace's integration user made, and millrace knows nothing of, is:
    /// `echo` (default: what Odoo did because of millrace's write, such as the stock moves of a
    /// production the ERP reported, which the ERP has booked itself) or `new` (a business record
    /// of its own, such as the backorder Odoo makes when millrace marks an order done: it flows).
    pub made_by_integration_user: Option<String>,
}

/// A business action Odoo runs for some fields of a record (`[odoo.workflow]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// `production` (an mrp.production: the quantity produced, scrapped and the lot are reported
    /// on it, and it is marked done) or `delivery` (a sale.order.line: its delivery is validated
    /// for the quantity shipped).
    pub kind: String,
    /// The field holding the cumulative quantity produced or shipped.
    pub quantity: String,
    /// Production: the field holding the cumulative quantity scrapped.
    pub scrapped: Option<String>,
    /// Production: the field holding the lot the order produces.
    pub lot: Option<String>,
    /// Production: the record values on which the order is marked done
    /// (`done = { status = ["closed"] }`).
    #[serde(default)]
    pub done: BTreeMap<String, Vec<toml::Value>>,
    /// Whether finishing short of the ordered quantity leaves a backorder for the rest
    /// (default true); false closes the order (or delivery) with what was reported.
    pub backorder: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSpec {
    pub table: String,
    /// The column of the main table that holds the parent's id.
    pub link: String,
    /// Whether a new main row gets a new parent row (product_template for a new
    /// product_product), or must find an existing one (mrp_bom for a new mrp_bom_line).
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub defaults: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ColumnSpecRaw {
    Name(String),
    Full(Box<ColumnSpec>),
}

impl ColumnSpecRaw {
    pub fn into_spec(self) -> ColumnSpec {
        match self {
            ColumnSpecRaw::Name(column) => ColumnSpec { column, ..ColumnSpec::default() },
            ColumnSpecRaw::Full(spec) => *spec,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// The column; `link.column` reads the parent table's column (Odoo).
    #[serde(default)]
    pub column: String,
    /// Odoo: the model's field written through the API, when it is not the column's name (a
    /// parent column a new record's parent is created with is written on the model itself,
    /// which Odoo delegates to the parent: `product_tmpl_id.name` → `name`).
    pub field: Option<String>,
    /// Odoo only, instead of `column`: an SQL expression over the main row `m` (and the parent
    /// `p`) that yields the stored value (`CASE WHEN m.scrapped THEN 'scrap' … END`). Read-only:
    /// what Odoo derives from several columns cannot be written back.
    pub expr: Option<String>,
    /// The canonical value of a stored NULL (`null_as = 0`: a quantity Odoo leaves empty is 0).
    pub null_as: Option<toml::Value>,
    /// Legacy only: the written value must exist in another table of the ERP (an item number
    /// in ITEM_MASTER); a record referring to a missing row is parked, or dead-lettered.
    pub references: Option<ReferenceSpec>,
    /// Legacy only, on a key column: the ERP numbers the records millrace creates here itself
    /// (`assign = "next"`: one above the highest number in the column). The other side keeps
    /// no such number: its row is bound to the ERP's number through the cross-reference.
    pub assign: Option<String>,
    /// Drop trailing spaces (space-padded CHAR columns).
    #[serde(default)]
    pub trim: bool,
    /// Stored value → canonical value (status codes: `{ A = true, I = false }`).
    #[serde(default)]
    pub map: BTreeMap<String, toml::Value>,
    /// The column holds a reference; the canonical value is a column of the referenced row.
    pub lookup: Option<LookupSpec>,
    /// The column is a translated `jsonb`; the canonical value is this language's text.
    pub translate: Option<String>,
    /// The canonical value is 1 / the stored value (uom factors: Odoo's is the inverse).
    #[serde(default)]
    pub reciprocal: bool,
    /// Integers shown as zero-padded text of this width (`pad = 2`: 1 → "01").
    pub pad: Option<usize>,
    /// Text put in front of the stored value (`prefix = "C"` with `pad = 5`: 12 → "C00012").
    pub prefix: Option<String>,
    /// Decimal places the stored column keeps: canonical values are rounded to it on the way in
    /// so both sides compare equal.
    pub round: Option<u8>,
    /// Other columns that receive the same stored value on write (product_template.uom_po_id).
    #[serde(default)]
    pub also: Vec<String>,
    /// Read but never written (computed or owned elsewhere).
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    pub table: String,
    /// The referenced table's column holding the value (default: the same column name).
    pub column: Option<String>,
    /// `park` (default: wait for the referenced row) or `dead_letter`.
    pub missing: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    pub table: String,
    /// The referenced table's column the reference points at (default `id`).
    pub key: Option<String>,
    /// The referenced table's column that is the canonical value.
    pub value: String,
    pub translate: Option<String>,
    /// Drop trailing spaces of the looked-up value.
    #[serde(default)]
    pub trim: bool,
    /// Extra conditions on the referenced row (`where = { uom_type = "reference" }`).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, toml::Value>,
    /// When writing and no referenced row has the value: `park` (wait for it to be replicated)
    /// or `dead_letter` (a code that will never exist).
    pub missing: Option<String>,
}
