//! Where interactions come from: a configured file (delimited text or Parquet), one of the
//! preset public formats, or the built-in synthetic generator.

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::split::FixedTest;
use crate::synthetic::SyntheticConfig;
use crate::text::{diagnose_delimited, fields, numbered_lines, parse_id, read_text};
use crate::{DataError, Interactions, Result};

/// A column of a table: by header name, or by 0-based position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// 0-based position (the only choice for a file without a header).
    Index(usize),
    /// Header name.
    Name(String),
}

/// The `[data]` table of a config: the source of interactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSource {
    /// The built-in seeded generator (the default).
    Synthetic {
        /// Its parameters.
        #[serde(default)]
        synthetic: SyntheticConfig,
    },
    /// A delimited text file (CSV, TSV, any single-character separator, or `::`).
    Delimited {
        /// The file.
        path: PathBuf,
        /// Field separator; `"\t"` for TSV, `"::"` for MovieLens-1M style.
        #[serde(default = "comma")]
        separator: String,
        /// Whether the first line names the columns.
        #[serde(default = "yes")]
        header: bool,
        /// User id column.
        user: Column,
        /// Item id column.
        item: Column,
        /// Rating column, if any.
        #[serde(default)]
        rating: Option<Column>,
        /// Timestamp column, if any.
        #[serde(default)]
        timestamp: Option<Column>,
    },
    /// A Parquet file with named columns.
    Parquet {
        /// The file.
        path: PathBuf,
        /// User id column.
        user: String,
        /// Item id column.
        item: String,
        /// Rating column, if any.
        #[serde(default)]
        rating: Option<String>,
        /// Timestamp column, if any.
        #[serde(default)]
        timestamp: Option<String>,
    },
    /// MovieLens-100K `u.data`: `user\titem\trating\ttimestamp`.
    Movielens100k {
        /// Path to `u.data`.
        path: PathBuf,
    },
    /// MovieLens-1M `ratings.dat`: `user::item::rating::timestamp`.
    Movielens1m {
        /// Path to `ratings.dat`.
        path: PathBuf,
    },
    /// The NCF paper's files: `<prefix>.train.rating`, `<prefix>.test.rating` and, when present,
    /// `<prefix>.test.negative`. Use with `[split] kind = "fixed"`.
    Ncf {
        /// Path prefix, e.g. `../shared/datasets/ncf-ml-100k/ml-100k`.
        prefix: PathBuf,
    },
    /// SASRec's `user item` lines, in time order within each user.
    Sasrec {
        /// The file.
        path: PathBuf,
    },
    /// `user item1 item2 …` lines, one user per line, items in time order.
    Sequences {
        /// The file.
        path: PathBuf,
    },
}

fn comma() -> String {
    ",".into()
}
fn yes() -> bool {
    true
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Synthetic {
            synthetic: SyntheticConfig::default(),
        }
    }
}

/// What a source yields: interactions, and for the NCF format its own test split.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// All (training) interactions.
    pub interactions: Interactions,
    /// The source's own test split, when it has one.
    pub fixed: Option<FixedTest>,
}

impl DataSource {
    /// A short name for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Synthetic { synthetic: s } => {
                format!(
                    "synthetic ({} users, {} items, seed {})",
                    s.users, s.items, s.seed
                )
            }
            DataSource::Delimited { path, .. }
            | DataSource::Parquet { path, .. }
            | DataSource::Movielens100k { path }
            | DataSource::Movielens1m { path }
            | DataSource::Sasrec { path }
            | DataSource::Sequences { path } => path.display().to_string(),
            DataSource::Ncf { prefix } => format!("{}.*", prefix.display()),
        }
    }

    /// Reads the source.
    pub fn load(&self) -> Result<Loaded> {
        let interactions = match self {
            DataSource::Synthetic { synthetic } => synthetic.generate()?,
            DataSource::Delimited {
                path,
                separator,
                header,
                user,
                item,
                rating,
                timestamp,
            } => {
                let spec = TableSpec {
                    user,
                    item,
                    rating: rating.as_ref(),
                    timestamp: timestamp.as_ref(),
                };
                read_delimited(path, separator, *header, &spec)?
            }
            DataSource::Parquet {
                path,
                user,
                item,
                rating,
                timestamp,
            } => read_parquet(path, user, item, rating.as_deref(), timestamp.as_deref())?,
            DataSource::Movielens100k { path } => {
                read_delimited(path, "\t", false, &TableSpec::FOUR_COLUMNS)?
            }
            DataSource::Movielens1m { path } => {
                read_delimited(path, "::", false, &TableSpec::FOUR_COLUMNS)?
            }
            DataSource::Ncf { prefix } => return read_ncf(prefix),
            DataSource::Sasrec { path } => {
                read_delimited(path, " ", false, &TableSpec::TWO_COLUMNS)?
            }
            DataSource::Sequences { path } => read_sequences(path)?,
        };
        Ok(Loaded {
            interactions,
            fixed: None,
        })
    }
}

/// Which columns of a table hold what.
struct TableSpec<'a> {
    user: &'a Column,
    item: &'a Column,
    rating: Option<&'a Column>,
    timestamp: Option<&'a Column>,
}

impl TableSpec<'static> {
    const FOUR_COLUMNS: Self = Self {
        user: &Column::Index(0),
        item: &Column::Index(1),
        rating: Some(&Column::Index(2)),
        timestamp: Some(&Column::Index(3)),
    };
    const TWO_COLUMNS: Self = Self {
        user: &Column::Index(0),
        item: &Column::Index(1),
        rating: None,
        timestamp: None,
    };
}

fn not_found(path: &Path) -> DataError {
    DataError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
    }
}

fn polars_error(path: &Path, e: PolarsError) -> DataError {
    DataError::Reader {
        path: path.to_owned(),
        source: e,
    }
}

/// Reads a delimited file with polars (all columns as text, then cast), falling back to a
/// line-by-line diagnosis for the exact line of any failure.
fn read_delimited(
    path: &Path,
    separator: &str,
    header: bool,
    spec: &TableSpec,
) -> Result<Interactions> {
    if !path.exists() {
        return Err(not_found(path));
    }
    // polars takes one-byte separators; `::` is read as `:` with an empty field between values.
    let (byte, stride) = match separator {
        "::" => (b':', 2),
        s if s.len() == 1 => (s.as_bytes()[0], 1),
        other => {
            return Err(DataError::Invalid(format!(
                "{}: separator {other:?} is not supported: use one character, \"\\t\", or \"::\"",
                path.display()
            )));
        }
    };
    let quote = if byte == b',' { Some(b'"') } else { None };
    let frame = CsvReadOptions::default()
        .with_has_header(header)
        .with_infer_schema_length(Some(0)) // every column as text: we cast, and report the line
        .map_parse_options(|options| options.with_separator(byte).with_quote_char(quote))
        .try_into_reader_with_file_path(Some(path.to_owned()))
        .and_then(|reader| reader.finish());
    let names: Vec<String> = match &frame {
        Ok(df) => df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    // Resolve each wanted column to its position in the file.
    let resolve = |c: &Column| -> Result<usize> {
        match c {
            Column::Index(i) => Ok(i * stride),
            Column::Name(n) if header => {
                names
                    .iter()
                    .position(|x| x == n)
                    .ok_or_else(|| DataError::MissingColumn {
                        path: path.to_owned(),
                        column: n.clone(),
                        available: names.join(", "),
                    })
            }
            Column::Name(n) => Err(DataError::Invalid(format!(
                "{}: column `{n}` is named, but the file has no header (header = false): give its 0-based index",
                path.display()
            ))),
        }
    };
    let diagnose = |positions: &[(usize, &str, bool)]| {
        let display_sep = if stride == 2 { ":" } else { separator };
        diagnose_delimited(path, display_sep, header, positions)
    };
    let df = match frame {
        Ok(df) => df,
        Err(e) => {
            // Find the line that broke polars; fall back to its message.
            let user = resolve(spec.user).unwrap_or(0);
            let item = resolve(spec.item).unwrap_or(stride);
            return Err(diagnose(&[(user, "user", true), (item, "item", true)])
                .unwrap_or_else(|| polars_error(path, e)));
        }
    };
    if df.height() == 0 {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    let mut wanted = vec![
        (resolve(spec.user)?, "user", true),
        (resolve(spec.item)?, "item", true),
    ];
    if let Some(r) = spec.rating {
        wanted.push((resolve(r)?, "rating", false));
    }
    if let Some(t) = spec.timestamp {
        wanted.push((resolve(t)?, "timestamp", true));
    }
    for &(position, name, _) in &wanted {
        if position >= df.width() {
            return Err(
                diagnose(&wanted).unwrap_or_else(|| DataError::MissingColumn {
                    path: path.to_owned(),
                    column: format!("{name} (position {})", position / stride),
                    available: format!("{} columns", df.width().div_ceil(stride)),
                }),
            );
        }
    }
    let column = |position: usize, dtype: DataType| -> Option<Series> {
        let series = df.columns()[position]
            .as_materialized_series()
            .str()
            .ok()?
            .clone()
            .into_series();
        // Trim so that "1 " parses; a value that still does not parse becomes null.
        let trimmed = series
            .str()
            .ok()?
            .apply_values(|s| std::borrow::Cow::Owned(s.trim().to_string()))
            .into_series();
        let cast = trimmed.cast(&dtype).ok()?;
        (cast.null_count() == 0).then_some(cast)
    };
    let mut out = Interactions::default();
    let ids = |position| {
        column(position, DataType::Int64).map(|s| {
            s.i64()
                .expect("i64")
                .into_no_null_iter()
                .collect::<Vec<i64>>()
        })
    };
    let fail = || {
        diagnose(&wanted)
            .unwrap_or_else(|| DataError::Invalid(format!("{}: unreadable values", path.display())))
    };
    out.users = ids(wanted[0].0).ok_or_else(fail)?;
    out.items = ids(wanted[1].0).ok_or_else(fail)?;
    for &(position, name, _) in &wanted[2..] {
        if name == "rating" {
            let s = column(position, DataType::Float32).ok_or_else(fail)?;
            out.ratings = Some(s.f32().expect("f32").into_no_null_iter().collect());
        } else {
            out.timestamps = Some(ids(position).ok_or_else(fail)?);
        }
    }
    Ok(out)
}

fn read_parquet(
    path: &Path,
    user: &str,
    item: &str,
    rating: Option<&str>,
    timestamp: Option<&str>,
) -> Result<Interactions> {
    if !path.exists() {
        return Err(not_found(path));
    }
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().map_err(|e| polars_error(path, e))?;
    let available = schema
        .iter_names()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut wanted = vec![(user, DataType::Int64), (item, DataType::Int64)];
    if let Some(r) = rating {
        wanted.push((r, DataType::Float32));
    }
    if let Some(t) = timestamp {
        wanted.push((t, DataType::Int64));
    }
    for (name, _) in &wanted {
        if schema.get(*name).is_none() {
            return Err(DataError::MissingColumn {
                path: path.to_owned(),
                column: name.to_string(),
                available,
            });
        }
    }
    let df = reader
        .with_columns(Some(wanted.iter().map(|(n, _)| n.to_string()).collect()))
        .finish()
        .map_err(|e| polars_error(path, e))?;
    if df.height() == 0 {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    // Each column in the type ember reads it as; a value that does not convert is an error
    // (never silently truncated).
    let mut columns = std::collections::HashMap::new();
    for (name, dtype) in &wanted {
        let series = df
            .column(name)
            .expect("selected")
            .as_materialized_series()
            .strict_cast(dtype)
            .map_err(|e| polars_error(path, e))?;
        columns.insert(*name, series);
    }
    let get = |name: &str| columns[name].clone();
    let no_nulls = |s: &Series, name: &str| {
        if s.null_count() > 0 {
            Err(DataError::Invalid(format!(
                "{}: column `{name}` has {} missing values",
                path.display(),
                s.null_count()
            )))
        } else {
            Ok(())
        }
    };
    let mut out = Interactions::default();
    for (name, _) in &wanted {
        no_nulls(&get(name), name)?;
    }
    out.users = get(user).i64().expect("i64").into_no_null_iter().collect();
    out.items = get(item).i64().expect("i64").into_no_null_iter().collect();
    out.ratings = rating.map(|r| get(r).f32().expect("f32").into_no_null_iter().collect());
    out.timestamps = timestamp.map(|t| get(t).i64().expect("i64").into_no_null_iter().collect());
    Ok(out)
}

/// `user item1 item2 …` lines.
fn read_sequences(path: &Path) -> Result<Interactions> {
    let text = read_text(path)?;
    let mut out = Interactions {
        timestamps: Some(Vec::new()),
        ..Default::default()
    };
    for (line, content) in numbered_lines(&text) {
        let f = fields(content, " ");
        if f.len() < 2 {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "expected `user item1 item2 …` (at least 2 fields), found {}",
                    f.len()
                ),
            });
        }
        let user = parse_id(path, line, "user", f[0])?;
        for (position, field) in f[1..].iter().enumerate() {
            out.users.push(user);
            out.items.push(parse_id(path, line, "item", field)?);
            out.timestamps.as_mut().expect("set").push(position as i64);
        }
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// The NCF paper's three files.
fn read_ncf(prefix: &Path) -> Result<Loaded> {
    let with_suffix = |suffix: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let interactions = read_delimited(
        &with_suffix(".train.rating"),
        "\t",
        false,
        &TableSpec::FOUR_COLUMNS,
    )?;
    let test_rows = read_delimited(
        &with_suffix(".test.rating"),
        "\t",
        false,
        &TableSpec::FOUR_COLUMNS,
    )?;
    let test: Vec<(i64, i64)> = test_rows
        .users
        .iter()
        .copied()
        .zip(test_rows.items.iter().copied())
        .collect();
    let negatives_path = with_suffix(".test.negative");
    let negatives = if negatives_path.exists() {
        Some(read_ncf_negatives(&negatives_path)?)
    } else {
        None
    };
    Ok(Loaded {
        interactions,
        fixed: Some(FixedTest { test, negatives }),
    })
}

/// `(user,item)\tneg1\tneg2…` lines. A negative equal to the held-out item (an upstream quirk of
/// the ML-1M file) is dropped: the same item cannot be both.
fn read_ncf_negatives(path: &Path) -> Result<Vec<(i64, Vec<i64>)>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (line, content) in numbered_lines(&text) {
        let f: Vec<&str> = content.split('\t').collect();
        let pair = f[0].trim();
        let inner = pair.strip_prefix('(').and_then(|p| p.strip_suffix(')'));
        let Some((user, item)) = inner.and_then(|p| p.split_once(',')) else {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!("expected `(user,item)` as the first field, found `{pair}`"),
            });
        };
        let user = parse_id(path, line, "user", user)?;
        let item = parse_id(path, line, "item", item)?;
        let mut negatives = Vec::with_capacity(f.len() - 1);
        for field in f[1..].iter().filter(|s| !s.trim().is_empty()) {
            let n = parse_id(path, line, "negative item", field)?;
            if n != item {
                negatives.push(n);
            }
        }
        out.push((user, negatives));
    }
    if out.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}
