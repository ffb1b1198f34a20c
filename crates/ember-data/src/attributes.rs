//! What is known about customers and products: the optional `[data.users]` and `[data.items]`
//! tables, read from a delimited file or a PostgreSQL query, checked against the run's id maps,
//! and encoded with encoders fitted on the run's users or items ([`ember_spec::attributes`]).
//!
//! A table has a key column and typed columns (categorical, multi-valued, numeric, and the
//! items' display `name` or the users' `label`). Missing rows and values go to each column's
//! "unknown" bucket and are counted ([`Coverage`]); a key the interactions do not have is
//! counted, not an error. A key of the wrong kind, a key given twice, or a number a numeric
//! column cannot read is an error naming the file (or query row), the line and the column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ember_spec::lines::{LineLimit, MAX_LINE_BYTES_VAR};
use ember_spec::{
    AttributeColumn, AttributeSchema, ColumnEncoder, FeatureRows, Key, SideAttributes,
};
use serde::{Deserialize, Serialize};

use crate::encoding::Encoding;
use crate::inputs::{InputFile, fingerprint};
use crate::source::Column;
use crate::source::postgres::{PostgresSpec, read_text_rows};
use crate::text::{Records, read_decoded, shown};
use crate::{DataError, IdMap, Result};

/// One attribute table (`[data.users]` or `[data.items]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum AttributeTable {
    /// A delimited text file.
    Delimited {
        /// The file.
        path: PathBuf,
        /// Field separator (default `,`).
        #[serde(default = "comma")]
        separator: String,
        /// Whether the first line names the columns (default true).
        #[serde(default = "yes")]
        header: bool,
        /// `"utf8"` (the default) or `"latin1"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encoding: Option<Encoding>,
        /// The key column (by header name, or 0-based position).
        key: Column,
        /// The attribute columns.
        columns: Vec<AttributeSpec>,
    },
    /// The rows of a PostgreSQL query (it must have an `ORDER BY`); the password as for the
    /// `[data]` source, never from here.
    Postgres {
        /// Connection string, without a password.
        url: String,
        /// The query.
        query: String,
        /// The environment variable holding the password, if not `PGPASSWORD` or ~/.pgpass.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        /// The key column's name in the result.
        key: String,
        /// The attribute columns (by name in the result).
        columns: Vec<AttributeSpec>,
    },
}

fn comma() -> String {
    ",".into()
}
fn yes() -> bool {
    true
}

/// One attribute column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// The column (by header name, or 0-based position).
    pub column: Column,
    /// What it holds.
    #[serde(rename = "type")]
    pub kind: AttributeKind,
    /// Its name in outputs and the export (default: the header name, or `column_<n>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A multi-valued column's separator (default `|`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// A numeric column's encoding: `standard` (the default) or `quantiles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<NumericScale>,
    /// Quantile buckets (default 5, at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<usize>,
}

/// What an attribute column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeKind {
    /// One value per row (age band, region, channel).
    Categorical,
    /// Several values per row with a separator (genres `Action|Comedy`, tags).
    Multi,
    /// A number, standardised or bucketed by quantiles.
    Numeric,
    /// An item's display name (items only).
    Name,
    /// A user's display label (users only).
    Label,
}

/// How a numeric column is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericScale {
    /// `(x − mean) / standard deviation`.
    Standard,
    /// The quantile bucket of `x`.
    Quantiles,
}

/// Which side a table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `[data.users]`.
    Users,
    /// `[data.items]`.
    Items,
}

impl Side {
    /// `users` or `items`, as the config's table names it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Users => "users",
            Side::Items => "items",
        }
    }
}

/// How much of a side a table covers, for `ember data stats` and the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Rows read.
    pub rows: usize,
    /// Rows whose key is a user (item) of the interactions.
    pub matched: usize,
    /// Rows whose key the interactions do not have (skipped).
    pub not_in_interactions: usize,
    /// Users (items) of the interactions without a row: every column unknown.
    pub without_row: usize,
    /// Per column, the users (items) with no value (no row, or an empty field).
    pub missing: Vec<(String, usize)>,
}

/// One side's attributes, read and encoded for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedAttributes {
    /// Encoders, display texts and features by internal id, as an export carries them.
    pub side: SideAttributes,
    /// What the table covered.
    pub coverage: Coverage,
    /// The fingerprint of the file or the query's rows, for `inputs.json`.
    pub input: InputFile,
}

/// A table's rows as text: its column names, and for each row its line (or row) number, key
/// text and fields.
struct RawTable {
    /// Where the rows came from, as messages name it (a path, or `query`).
    origin: String,
    names: Vec<String>,
    rows: Vec<(usize, Vec<Option<String>>)>,
    input: InputFile,
}

impl AttributeTable {
    fn columns(&self) -> &[AttributeSpec] {
        match self {
            AttributeTable::Delimited { columns, .. }
            | AttributeTable::Postgres { columns, .. } => columns,
        }
    }

    /// Makes a file path absolute, relative to `base` (as [`crate::DataSource::make_absolute`]).
    pub fn make_absolute(&mut self, base: &Path) {
        if let AttributeTable::Delimited { path, .. } = self
            && path.is_relative()
        {
            *path = std::path::absolute(base.join(&*path)).unwrap_or_else(|_| base.join(&*path));
        }
    }

    /// The files the table reads.
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            AttributeTable::Delimited { path, .. } => vec![path.clone()],
            AttributeTable::Postgres { .. } => vec![],
        }
    }

    /// Checks the columns against the side: `name` for items and `label` for users, at most
    /// one of them, options only where they apply, names given once.
    pub fn check(&self, side: Side) -> Result<()> {
        let invalid = |message: String| {
            Err(DataError::Invalid(format!(
                "data.{}: {message}",
                side.name()
            )))
        };
        let mut names: Vec<String> = Vec::new();
        let mut display = 0;
        for spec in self.columns() {
            let name = spec.output_name();
            match (spec.kind, side) {
                (AttributeKind::Name, Side::Users) => {
                    return invalid(format!(
                        "column `{name}`: `name` is for items; a user's display text is a `label`"
                    ));
                }
                (AttributeKind::Label, Side::Items) => {
                    return invalid(format!(
                        "column `{name}`: `label` is for users; an item's display text is a `name`"
                    ));
                }
                (AttributeKind::Name | AttributeKind::Label, _) => display += 1,
                _ => {}
            }
            let numeric = spec.kind == AttributeKind::Numeric;
            if spec.separator.is_some() && spec.kind != AttributeKind::Multi {
                return invalid(format!(
                    "column `{name}`: `separator` is for `multi` columns"
                ));
            }
            if (spec.scale.is_some() || spec.buckets.is_some()) && !numeric {
                return invalid(format!(
                    "column `{name}`: `scale` and `buckets` are for `numeric` columns"
                ));
            }
            if spec.buckets.is_some_and(|b| b < 2) {
                return invalid(format!("column `{name}`: `buckets` must be at least 2"));
            }
            if names.contains(&name) {
                return invalid(format!(
                    "column `{name}` is given twice (name one with `name`)"
                ));
            }
            names.push(name);
        }
        if display > 1 {
            return invalid("at most one `name` or `label` column".into());
        }
        Ok(())
    }

    /// Reads the table and encodes it for the users (items) of `ids`: encoders are fitted on
    /// the rows of those ids.
    pub fn load(&self, side: Side, ids: &IdMap) -> Result<LoadedAttributes> {
        self.check(side)?;
        let raw = self.read()?;
        let positions = self.positions(side, &raw)?;
        let rows = rows_by_id(side, ids, &raw, positions.key)?;
        // Each column's value for each id, in id order (`None`: no row, or an empty field).
        let values: Vec<Vec<Option<&str>>> = positions
            .columns
            .iter()
            .map(|&at| {
                let value = |row: &Option<usize>| {
                    let field = raw.rows[(*row)?].1.get(at)?.as_deref()?.trim();
                    (!field.is_empty()).then_some(field)
                };
                rows.by_id.iter().map(value).collect()
            })
            .collect();
        let mut schema = AttributeSchema::default();
        let mut display = None;
        let mut encoded = Vec::new();
        for (spec, column) in self.columns().iter().zip(&values) {
            let encoder = match spec.kind {
                AttributeKind::Name | AttributeKind::Label => {
                    display = Some(column.iter().map(|v| v.map(String::from)).collect());
                    continue;
                }
                _ => fit(spec, column, &raw, &rows.by_id)?,
            };
            let name = spec.output_name();
            schema.columns.push(AttributeColumn { name, encoder });
            encoded.push(column.as_slice());
        }
        let features = encode_rows(&schema, &encoded, ids.len())?;
        let coverage = Coverage {
            rows: raw.rows.len(),
            matched: rows.matched,
            not_in_interactions: rows.not_in_interactions,
            without_row: rows.by_id.iter().filter(|r| r.is_none()).count(),
            missing: (self.columns().iter().zip(&values))
                .map(|(spec, column)| {
                    let missing = column.iter().filter(|v| v.is_none()).count();
                    (spec.output_name(), missing)
                })
                .collect(),
        };
        Ok(LoadedAttributes {
            side: SideAttributes {
                schema,
                display,
                features: Some(features),
            },
            coverage,
            input: raw.input,
        })
    }

    /// The table's rows as text.
    fn read(&self) -> Result<RawTable> {
        let limit = LineLimit::from_env(MAX_LINE_BYTES_VAR)
            .map_err(|e| DataError::Invalid(e.to_string()))?;
        match self {
            AttributeTable::Delimited {
                path,
                separator,
                header,
                encoding,
                ..
            } => {
                let input = fingerprint(path)?;
                let decoded = read_decoded(path, limit, encoding.unwrap_or_default())?;
                if let Some(bad) = decoded.invalid.first() {
                    return Err(bad.error(
                        path,
                        None,
                        "; if the file is Latin-1, set encoding = \"latin1\" in its table",
                    ));
                }
                let mut records = Records::new(&decoded.text, separator, separator == ",");
                let mut fields = Vec::new();
                let mut rows = Vec::new();
                let mut names = Vec::new();
                while let Some(record) = records.next_into(path, &mut fields) {
                    let (line, _) = record?;
                    let owned: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
                    if *header && names.is_empty() && rows.is_empty() {
                        names = owned;
                        continue;
                    }
                    rows.push((line, owned.into_iter().map(Some).collect()));
                }
                Ok(RawTable {
                    origin: path.display().to_string(),
                    names,
                    rows,
                    input,
                })
            }
            AttributeTable::Postgres {
                url,
                query,
                password_env,
                ..
            } => {
                let spec = PostgresSpec {
                    url,
                    query,
                    password_env: password_env.as_deref(),
                };
                let (names, rows, read) = read_text_rows(spec, limit)?;
                Ok(RawTable {
                    origin: "query".into(),
                    names,
                    rows,
                    input: InputFile::of_query(spec, read),
                })
            }
        }
    }

    /// Where the key and each attribute column are among the table's fields.
    fn positions(&self, side: Side, raw: &RawTable) -> Result<Positions> {
        let find = |column: &Column| -> Result<usize> {
            match column {
                Column::Index(i) => Ok(*i),
                Column::Name(name) => raw.names.iter().position(|n| n == name).ok_or_else(|| {
                    let header = if raw.names.is_empty() {
                        "the table has no header: name columns by 0-based position".to_string()
                    } else {
                        format!("it has {}", crate::source::listed(&raw.names))
                    };
                    DataError::Invalid(format!(
                        "data.{}: {}: no column `{}`; {header}",
                        side.name(),
                        raw.origin,
                        shown(name)
                    ))
                }),
            }
        };
        let key = match self {
            AttributeTable::Delimited { key, .. } => find(key)?,
            AttributeTable::Postgres { key, .. } => find(&Column::Name(key.clone()))?,
        };
        let columns = self
            .columns()
            .iter()
            .map(|s| find(&s.column))
            .collect::<Result<_>>()?;
        Ok(Positions { key, columns })
    }
}

impl AttributeSpec {
    /// The column's name in outputs and the export.
    pub fn output_name(&self) -> String {
        match (&self.name, &self.column) {
            (Some(name), _) => name.clone(),
            (None, Column::Name(name)) => name.clone(),
            (None, Column::Index(i)) => format!("column_{i}"),
        }
    }
}

struct Positions {
    key: usize,
    columns: Vec<usize>,
}

/// Each internal id's row, and the counts of what matched.
struct RowsById {
    by_id: Vec<Option<usize>>,
    matched: usize,
    not_in_interactions: usize,
}

/// Finds each id's row by its key (of the id map's kind), refusing a key of the wrong kind and a
/// key given twice.
fn rows_by_id(side: Side, ids: &IdMap, raw: &RawTable, key_at: usize) -> Result<RowsById> {
    let kind = ids.key_kind();
    let mut by_id = vec![None; ids.len()];
    let mut first_line: HashMap<Key, usize> = HashMap::new();
    let (mut matched, mut not_in_interactions) = (0, 0);
    let at = |line: usize, message: String| {
        DataError::Invalid(format!(
            "data.{}: {}:{line}: {message}",
            side.name(),
            raw.origin
        ))
    };
    for (r, (line, fields)) in raw.rows.iter().enumerate() {
        let text = fields.get(key_at).cloned().flatten().unwrap_or_default();
        let text = text.trim();
        if text.is_empty() {
            return Err(at(*line, "the key is empty".into()));
        }
        // Any text is a string key: only an integer kind refuses one.
        let key = Key::parse(kind, text).ok_or_else(|| {
            let side = side.name();
            let text = shown(text);
            at(
                *line,
                format!(
                    "key `{text}` is not an integer key: the interactions' {side} have integer keys"
                ),
            )
        })?;
        if let Some(first) = first_line.insert(key.clone(), *line) {
            return Err(at(
                *line,
                format!(
                    "key `{}` is given twice (first at line {first})",
                    shown(text)
                ),
            ));
        }
        match ids.internal_of_key(&key) {
            Some(id) => {
                by_id[id as usize] = Some(r);
                matched += 1;
            }
            None => not_in_interactions += 1,
        }
    }
    Ok(RowsById {
        by_id,
        matched,
        not_in_interactions,
    })
}

/// The encoder of an encoded column (not a `name` or `label`), fitted on its known values.
fn fit(
    spec: &AttributeSpec,
    column: &[Option<&str>],
    raw: &RawTable,
    by_id: &[Option<usize>],
) -> Result<ColumnEncoder> {
    let known = || column.iter().flatten().copied();
    Ok(match spec.kind {
        AttributeKind::Multi => {
            ColumnEncoder::multi(spec.separator.as_deref().unwrap_or("|"), known())
        }
        AttributeKind::Numeric => {
            let numbers = numbers(raw, by_id, column, spec)?;
            match spec.scale.unwrap_or(NumericScale::Standard) {
                NumericScale::Standard => ColumnEncoder::standard(&numbers),
                NumericScale::Quantiles => {
                    ColumnEncoder::quantiles(&numbers, spec.buckets.unwrap_or(5))
                }
            }
        }
        _ => ColumnEncoder::categorical(known()),
    })
}

/// Every id's features: the encoded columns' values (`columns[c][id]`) through `schema`.
fn encode_rows(
    schema: &AttributeSchema,
    columns: &[&[Option<&str>]],
    ids: usize,
) -> Result<FeatureRows> {
    let mut features = FeatureRows {
        offsets: vec![0],
        ..FeatureRows::default()
    };
    for id in 0..ids {
        let raw: Vec<Option<&str>> = columns.iter().map(|c| c[id]).collect();
        // Every number was read while fitting, so this cannot fail on training rows.
        for (f, v) in schema.encode(&raw).map_err(DataError::Invalid)? {
            features.indices.push(f);
            features.values.push(v);
        }
        features.offsets.push(features.indices.len() as u32);
    }
    Ok(features)
}

/// The numbers of a numeric column's known values, refusing one that is not a number with its
/// line.
fn numbers(
    raw: &RawTable,
    by_id: &[Option<usize>],
    column: &[Option<&str>],
    spec: &AttributeSpec,
) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for (row, value) in by_id.iter().zip(column) {
        if let (Some(row), Some(value)) = (row, value) {
            let x = ember_spec::attributes::number(value).map_err(|e| {
                DataError::Invalid(format!(
                    "{}:{}: column `{}`: {e}",
                    raw.origin,
                    raw.rows[*row].0,
                    spec.output_name()
                ))
            })?;
            out.push(x);
        }
    }
    Ok(out)
}
