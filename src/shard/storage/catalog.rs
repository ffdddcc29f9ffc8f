//! Table and index definitions: what `CREATE TABLE` / `CREATE INDEX`
//! declared, as storage keeps it in the WAL and the checkpoint manifest.
//! Defaults are kept as SQL text for the executor to evaluate; storage only
//! checks that a row fits its columns (type, typmod, NOT NULL).

use super::error::{Result, StorageError};
use crate::shard::datum::{self, Datum, KeyValue};
use crate::wire::Value;
use ann::Metric;

/// A column's declared type, with its typmod where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer` (and `serial`).
    Int4,
    /// `bigint` (and `bigserial`).
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `text`.
    Text,
    /// `varchar[(n)]`.
    Varchar(Option<u32>),
    /// `date`.
    Date,
    /// `timestamptz`.
    Timestamptz,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `interval`.
    Interval,
    /// `json`.
    Json,
    /// `uuid`.
    Uuid,
    /// `jsonb`.
    Jsonb,
    /// `vector[(n)]`.
    Vector(Option<u32>),
    /// `halfvec[(n)]`.
    HalfVec(Option<u32>),
    /// `sparsevec[(n)]`.
    SparseVec(Option<u32>),
    /// `bit[(n)]`.
    Bit(Option<u32>),
    /// A one-dimensional array of a type above (`integer[]`, `vector(3)[]`).
    Array(ElementType),
}

/// The element type of an array column: a non-array [`ColumnType`] kept
/// as its storage tag and typmod, so that `ColumnType` stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementType {
    tag: u8,
    typmod: Option<u32>,
}

impl ElementType {
    /// The element type for `ty`; `None` for an array type (an array of
    /// arrays is the same array type, as in PostgreSQL).
    pub fn of(ty: ColumnType) -> Option<ElementType> {
        match ty.tag() {
            (ARRAY_TAG, _) => None,
            (tag, typmod) => Some(ElementType { tag, typmod }),
        }
    }

    /// The element type as a column type.
    pub fn column_type(self) -> ColumnType {
        ColumnType::from_tag(self.tag, self.typmod).unwrap_or(ColumnType::Text)
    }
}

/// The storage tag of array types (see [`ColumnType::tag`]).
pub const ARRAY_TAG: u8 = 15;

impl ColumnType {
    /// The type as PostgreSQL prints it (`vector(3)`, `character varying(20)`).
    pub fn sql_name(self) -> String {
        let with = |base: &str, n: Option<u32>| match n {
            Some(n) => format!("{base}({n})"),
            None => base.to_string(),
        };
        match self {
            ColumnType::Bool => "boolean".into(),
            ColumnType::Int2 => "smallint".into(),
            ColumnType::Int4 => "integer".into(),
            ColumnType::Int8 => "bigint".into(),
            ColumnType::Float4 => "real".into(),
            ColumnType::Float8 => "double precision".into(),
            ColumnType::Text => "text".into(),
            ColumnType::Varchar(n) => with("character varying", n),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamptz => "timestamp with time zone".into(),
            ColumnType::Timestamp => "timestamp without time zone".into(),
            ColumnType::Interval => "interval".into(),
            ColumnType::Json => "json".into(),
            ColumnType::Uuid => "uuid".into(),
            ColumnType::Jsonb => "jsonb".into(),
            ColumnType::Vector(n) => with("vector", n),
            ColumnType::HalfVec(n) => with("halfvec", n),
            ColumnType::SparseVec(n) => with("sparsevec", n),
            ColumnType::Bit(n) => with("bit", n),
            ColumnType::Array(e) => format!("{}[]", e.column_type().sql_name()),
        }
    }

    /// The type's tag and typmod in WAL records and checkpoints (an
    /// array's typmod is its element's; the element's tag follows).
    pub fn tag(self) -> (u8, Option<u32>) {
        match self {
            ColumnType::Bool => (0, None),
            ColumnType::Int2 => (1, None),
            ColumnType::Int4 => (2, None),
            ColumnType::Int8 => (3, None),
            ColumnType::Float4 => (4, None),
            ColumnType::Float8 => (5, None),
            ColumnType::Text => (6, None),
            ColumnType::Varchar(n) => (7, n),
            ColumnType::Date => (8, None),
            ColumnType::Timestamptz => (9, None),
            ColumnType::Timestamp => (18, None),
            ColumnType::Interval => (19, None),
            ColumnType::Json => (16, None),
            ColumnType::Uuid => (17, None),
            ColumnType::Jsonb => (10, None),
            ColumnType::Vector(n) => (11, n),
            ColumnType::HalfVec(n) => (12, n),
            ColumnType::SparseVec(n) => (13, n),
            ColumnType::Bit(n) => (14, n),
            ColumnType::Array(e) => (ARRAY_TAG, e.typmod),
        }
    }

    /// The non-array type with storage tag `tag` and typmod `n`.
    pub fn from_tag(tag: u8, n: Option<u32>) -> Option<ColumnType> {
        Some(match tag {
            0 => ColumnType::Bool,
            1 => ColumnType::Int2,
            2 => ColumnType::Int4,
            3 => ColumnType::Int8,
            4 => ColumnType::Float4,
            5 => ColumnType::Float8,
            6 => ColumnType::Text,
            7 => ColumnType::Varchar(n),
            8 => ColumnType::Date,
            9 => ColumnType::Timestamptz,
            18 => ColumnType::Timestamp,
            19 => ColumnType::Interval,
            10 => ColumnType::Jsonb,
            16 => ColumnType::Json,
            17 => ColumnType::Uuid,
            11 => ColumnType::Vector(n),
            12 => ColumnType::HalfVec(n),
            13 => ColumnType::SparseVec(n),
            14 => ColumnType::Bit(n),
            _ => return None,
        })
    }

    /// The column type of pgvector type `ty` with typmod `typmod`.
    pub fn of_vector(ty: ann::VectorType, typmod: Option<u32>) -> ColumnType {
        match ty {
            ann::VectorType::Vector => ColumnType::Vector(typmod),
            ann::VectorType::HalfVec => ColumnType::HalfVec(typmod),
            ann::VectorType::SparseVec => ColumnType::SparseVec(typmod),
            ann::VectorType::Bit => ColumnType::Bit(typmod),
        }
    }

    /// The pgvector type of a vector column with its dimensions, if it is one.
    pub fn vector_type(self) -> Option<(ann::VectorType, Option<u32>)> {
        Some(match self {
            ColumnType::Vector(n) => (ann::VectorType::Vector, n),
            ColumnType::HalfVec(n) => (ann::VectorType::HalfVec, n),
            ColumnType::SparseVec(n) => (ann::VectorType::SparseVec, n),
            ColumnType::Bit(n) => (ann::VectorType::Bit, n),
            _ => return None,
        })
    }

    /// Checks that a non-NULL `value` is of this type and fits its typmod.
    fn check(self, column: &str, value: &Value) -> Result<()> {
        let fits = match (self, value) {
            (ColumnType::Bool, Value::Bool(_))
            | (ColumnType::Int2, Value::Int2(_))
            | (ColumnType::Int4, Value::Int4(_))
            | (ColumnType::Int8, Value::Int8(_))
            | (ColumnType::Float4, Value::Float4(_))
            | (ColumnType::Float8, Value::Float8(_))
            | (ColumnType::Text, Value::Text(_))
            | (ColumnType::Date, Value::Date(_))
            | (ColumnType::Timestamptz, Value::Timestamptz(_))
            | (ColumnType::Timestamp, Value::Timestamp(_))
            | (ColumnType::Interval, Value::Interval(_))
            | (ColumnType::Json, Value::Json(_))
            | (ColumnType::Uuid, Value::Uuid(_))
            | (ColumnType::Jsonb, Value::Jsonb(_)) => true,
            (ColumnType::Varchar(n), Value::Text(s)) => {
                if let Some(n) = n.filter(|&n| s.chars().count() > n as usize) {
                    return Err(StorageError::new(
                        "22001",
                        format!("value too long for type character varying({n})"),
                    ));
                }
                true
            }
            (ColumnType::Vector(n), Value::Vector(v)) => check_dims(n, |n| v.check_dims(n))?,
            (ColumnType::HalfVec(n), Value::HalfVec(v)) => check_dims(n, |n| v.check_dims(n))?,
            (ColumnType::SparseVec(n), Value::SparseVec(v)) => check_dims(n, |n| v.check_dims(n))?,
            (ColumnType::Bit(n), Value::Bit(v)) => check_dims(n, |n| v.check_dims(n))?,
            (ColumnType::Array(e), Value::Array(a)) => {
                let elem = e.column_type();
                for item in a.items.iter().flatten() {
                    elem.check(column, item)?;
                }
                true
            }
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(StorageError::datatype_mismatch(
                column,
                &self.sql_name(),
                &datum::type_name(value),
            ))
        }
    }
}

fn check_dims(typmod: Option<u32>, check: impl FnOnce(u32) -> ann::Result<()>) -> Result<bool> {
    if let Some(n) = typmod {
        check(n)?;
    }
    Ok(true)
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Declared type.
    pub ty: ColumnType,
    /// `NOT NULL` (implied for primary-key columns).
    pub not_null: bool,
    /// `DEFAULT` expression as SQL text, evaluated by the executor; for an
    /// identity column, [`IDENTITY_MARK`] before its sequence's `nextval`.
    pub default: Option<String>,
}

/// What an identity column's (`GENERATED BY DEFAULT AS IDENTITY`) stored
/// default starts with: it numbers rows from its sequence as a serial
/// column does, but PostgreSQL's catalog shows it as an identity
/// (`attidentity` 'd') without a default.
pub const IDENTITY_MARK: &str = "identity:";

impl ColumnDef {
    /// True for an identity column.
    pub fn is_identity(&self) -> bool {
        self.default
            .as_deref()
            .is_some_and(|d| d.starts_with(IDENTITY_MARK))
    }

    /// The default the catalog shows: none for an identity column.
    pub fn shown_default(&self) -> Option<&str> {
        self.default.as_deref().filter(|_| !self.is_identity())
    }

    /// True when rows get the column's value from its sequence (a serial
    /// or identity column).
    pub fn numbers_rows(&self) -> bool {
        self.default
            .as_deref()
            .is_some_and(|d| d.trim_start_matches(IDENTITY_MARK).starts_with("nextval("))
    }

    /// Checks `value` for this column of `table`: NULL only where allowed
    /// (`in_key`: the column is part of the primary key), else the type.
    pub fn check_value(&self, table: &str, value: &Datum, in_key: bool) -> Result<()> {
        match value {
            None if self.not_null || in_key => Err(StorageError::not_null(&self.name, table)),
            None => Ok(()),
            Some(v) => self.ty.check(&self.name, v),
        }
    }
}

/// A `UNIQUE (columns)` constraint: no two rows whose values in the
/// columns are all non-NULL share them.
#[derive(Debug, Clone, PartialEq)]
pub struct Unique {
    /// Constraint name (`<table>_<columns>_key` unless given).
    pub name: String,
    /// Column positions.
    pub columns: Vec<usize>,
}

/// What deleting a referenced row does to the rows that reference it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// `NO ACTION` (the default): the delete fails.
    NoAction,
    /// `RESTRICT`: the delete fails (shown as RESTRICT).
    Restrict,
    /// `CASCADE`: they are deleted too.
    Cascade,
    /// `SET NULL`: their referencing columns become NULL.
    SetNull,
}

/// What changing a referenced key does while rows reference it: the
/// change fails either way; the catalog shows which was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUpdate {
    /// `NO ACTION` (the default).
    #[default]
    NoAction,
    /// `RESTRICT`.
    Restrict,
}

/// A `FOREIGN KEY (columns) REFERENCES table (referenced)` constraint:
/// a row whose columns are all non-NULL needs a row of `table` with those
/// values in `referenced` (its primary key or a UNIQUE constraint's
/// columns).
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    /// Constraint name (`<table>_<columns>_fkey` unless given).
    pub name: String,
    /// Referencing column positions.
    pub columns: Vec<usize>,
    /// The referenced table.
    pub table: String,
    /// Referenced column positions in `table`.
    pub referenced: Vec<usize>,
    /// `ON DELETE`.
    pub on_delete: OnDelete,
    /// `ON UPDATE`.
    pub on_update: OnUpdate,
}

/// A table's constraints besides its primary key and NOT NULLs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Constraints {
    /// UNIQUE constraints.
    pub unique: Vec<Unique>,
    /// FOREIGN KEY constraints.
    pub foreign_keys: Vec<ForeignKey>,
}

/// The values of `columns` in `row` as a key; `None` when one is NULL
/// (such a row neither conflicts nor references).
pub fn key_of_columns(columns: &[usize], row: &[Datum]) -> Option<Vec<KeyValue>> {
    columns
        .iter()
        .map(|&i| row.get(i).and_then(datum::key))
        .collect()
}

/// A table's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    /// Storage's id for the table (names file and WAL references).
    pub oid: u32,
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Positions of the primary-key columns (empty: no primary key).
    pub primary_key: Vec<usize>,
    /// UNIQUE and FOREIGN KEY constraints.
    pub constraints: Constraints,
}

impl TableDef {
    /// Position of column `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The primary key's constraint name, `<table>_pkey` as PostgreSQL names it.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    /// Checks that `row` has one value per column, each of the column's
    /// type, and no NULL where the column is NOT NULL or in the key.
    pub fn check_row(&self, row: &[Datum]) -> Result<()> {
        if row.len() != self.columns.len() {
            return Err(StorageError::new(
                "42601",
                format!(
                    "row has {} values but table \"{}\" has {} columns",
                    row.len(),
                    self.name,
                    self.columns.len()
                ),
            ));
        }
        for (i, (col, value)) in self.columns.iter().zip(row).enumerate() {
            col.check_value(&self.name, value, self.primary_key.contains(&i))?;
        }
        Ok(())
    }

    /// The primary key of a checked row (`None` without a primary key).
    pub fn key_of(&self, row: &[Datum]) -> Option<Vec<KeyValue>> {
        if self.primary_key.is_empty() {
            return None;
        }
        self.primary_key
            .iter()
            .map(|&i| datum::key(&row[i]))
            .collect()
    }

    /// 23505 for `key` on this table's primary key.
    pub fn duplicate_key(&self, key: &[KeyValue]) -> StorageError {
        let columns: Vec<&str> = self
            .primary_key
            .iter()
            .map(|&i| self.columns[i].name.as_str())
            .collect();
        StorageError::unique_violation(&self.pkey_name(), &columns, key)
    }

    /// 23505 for `key` on UNIQUE constraint `i`.
    pub fn duplicate_unique(&self, i: usize, key: &[KeyValue]) -> StorageError {
        let u = &self.constraints.unique[i];
        let columns: Vec<&str> = u
            .columns
            .iter()
            .map(|&c| self.columns[c].name.as_str())
            .collect();
        StorageError::unique_violation(&u.name, &columns, key)
    }

    /// The names of `columns`, comma-separated.
    pub fn column_list(&self, columns: &[usize]) -> String {
        columns
            .iter()
            .map(|&c| self.columns[c].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// True when `columns` are this table's primary key or a UNIQUE
    /// constraint's columns (in any order), as a foreign key needs.
    pub fn is_unique_key(&self, columns: &[usize]) -> bool {
        let same = |k: &[usize]| {
            let (mut a, mut b) = (k.to_vec(), columns.to_vec());
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        same(&self.primary_key) || self.constraints.unique.iter().any(|u| same(&u.columns))
    }

    /// Checks the definition itself: distinct column names, key columns
    /// that exist and are scalar.
    pub fn validate(&self) -> Result<()> {
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i].iter().any(|o| o.name == c.name) {
                return Err(StorageError::new(
                    "42701",
                    format!("column \"{}\" specified more than once", c.name),
                ));
            }
        }
        let constrained = self.constraints.unique.iter().map(|u| &u.columns);
        let referencing = self.constraints.foreign_keys.iter().map(|f| &f.columns);
        for &k in constrained
            .chain(referencing)
            .flatten()
            .chain(&self.primary_key)
        {
            let Some(c) = self.columns.get(k) else {
                return Err(StorageError::new(
                    "42703",
                    "primary key column does not exist",
                ));
            };
            if c.ty.vector_type().is_some() {
                return Err(StorageError::unsupported(format!(
                    "a primary key on column \"{}\" of type {} is not supported",
                    c.name,
                    c.ty.sql_name()
                )));
            }
        }
        Ok(())
    }
}

/// How an index is organised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IndexMethod {
    /// Ordered index on a scalar column (equality and range filters).
    BTree,
    /// pgvector's IVFFlat with `lists` lists, for `metric`'s operator.
    IvfFlat {
        /// The opclass's distance.
        metric: Metric,
        /// `WITH (lists = …)`.
        lists: u32,
    },
    /// A GIN index on a jsonb column (`jsonb_ops`, or `jsonb_path_ops`
    /// with `path_ops`). Storage keeps no entries for it: containment and
    /// existence filters scan, with the same answers.
    Gin {
        /// The `jsonb_path_ops` operator class.
        path_ops: bool,
    },
    /// pgvector's HNSW, for `metric`'s operator.
    Hnsw {
        /// The opclass's distance.
        metric: Metric,
        /// `WITH (m = …)`.
        m: u32,
        /// `WITH (ef_construction = …)`.
        ef_construction: u32,
    },
}

impl IndexMethod {
    /// The distance an ANN method serves (`None` for a btree).
    pub fn metric(self) -> Option<Metric> {
        match self {
            IndexMethod::BTree | IndexMethod::Gin { .. } => None,
            IndexMethod::IvfFlat { metric, .. } | IndexMethod::Hnsw { metric, .. } => Some(metric),
        }
    }

    /// The access method's name in SQL (`btree`, `ivfflat`, `hnsw`).
    pub fn name(self) -> &'static str {
        match self {
            IndexMethod::BTree => "btree",
            IndexMethod::Gin { .. } => "gin",
            IndexMethod::IvfFlat { .. } => "ivfflat",
            IndexMethod::Hnsw { .. } => "hnsw",
        }
    }
}

/// A secondary index on one column or an expression, maybe partial.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    /// Storage's id for the index (names its checkpoint file).
    pub oid: u32,
    /// Index name (unique among tables and indexes).
    pub name: String,
    /// Position of the indexed column (of an expression: the first
    /// column it reads).
    pub column: usize,
    /// Index method and its options.
    pub method: IndexMethod,
    /// The indexed expression, as SQL text in PostgreSQL's `pg_get_expr`
    /// form. The executor computes it for every row written (refusing a
    /// row it fails on, as PostgreSQL does). A btree index keeps no
    /// entries for it (queries filter on it by scanning); an ANN index
    /// holds its values (see [`super::index_source`]).
    pub expression: Option<String>,
    /// A partial ANN index's predicate (`WHERE …`), as SQL text in
    /// `pg_get_expr` form: only rows meeting it are indexed.
    pub predicate: Option<String>,
    /// The names of the options `WITH (…)` gave, in order: what
    /// `pg_class.reloptions` and `pg_get_indexdef` show (the others take
    /// their defaults, which PostgreSQL does not show).
    pub with: Vec<String>,
}
