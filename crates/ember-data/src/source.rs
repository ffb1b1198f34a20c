//! Where interactions come from: a configured file (delimited text or Parquet), one of the
//! preset public formats, or the built-in synthetic generator.

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ember_spec::lines::{LineLimit, MAX_LINE_BYTES_VAR};

use crate::split::FixedTest;
use crate::synthetic::SyntheticConfig;
use crate::text::{
    Bad, Expect, Records, bad_value, fields, numbered_lines, parse_id, parse_integer, parse_rating,
    rating_from_f64, read_text, separator_hint, shown, shown_cut,
};
use crate::{DataError, Interactions, Result, TimeUnit};

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
        /// The longest line read, in bytes (default `EMBER_MAX_LINE_BYTES`, else 1 MiB): a
        /// longer one is refused with its line, as a file that is not text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_line_bytes: Option<usize>,
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
    /// What the timestamps count, when they are points in time; `None` without timestamps
    /// or when they are only positions in a file (the sequence formats, the synthetic data).
    pub time_unit: Option<TimeUnit>,
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

    /// The line limit of the source's text files: `data.max_line_bytes` (delimited files), else
    /// `EMBER_MAX_LINE_BYTES`, else 1 MiB.
    fn line_limit(&self) -> Result<LineLimit> {
        let setting = match self {
            DataSource::Delimited {
                max_line_bytes: Some(0),
                ..
            } => {
                return Err(DataError::Invalid(
                    "data.max_line_bytes must be at least 1, got 0".into(),
                ));
            }
            DataSource::Delimited {
                max_line_bytes: Some(bytes),
                ..
            } => {
                return Ok(LineLimit {
                    bytes: *bytes,
                    setting: "data.max_line_bytes",
                });
            }
            DataSource::Delimited { .. } => "data.max_line_bytes",
            _ => MAX_LINE_BYTES_VAR,
        };
        LineLimit::from_env(setting).map_err(|e| DataError::Invalid(e.to_string()))
    }

    /// Reads the source.
    pub fn load(&self) -> Result<Loaded> {
        // Integer timestamps in text are read as Unix seconds, as MovieLens and the NCF files
        // write them.
        let seconds = |interactions: Interactions| {
            let unit = interactions
                .timestamps
                .is_some()
                .then_some(TimeUnit::Seconds);
            (interactions, unit)
        };
        let limit = self.line_limit()?;
        let (interactions, time_unit) = match self {
            DataSource::Synthetic { synthetic } => (synthetic.generate()?, None),
            DataSource::Delimited {
                path,
                separator,
                header,
                user,
                item,
                rating,
                timestamp,
                max_line_bytes: _,
            } => {
                let spec = TableSpec {
                    user,
                    item,
                    rating: rating.as_ref(),
                    timestamp: timestamp.as_ref(),
                };
                seconds(read_delimited(path, separator, *header, &spec, limit)?)
            }
            DataSource::Parquet {
                path,
                user,
                item,
                rating,
                timestamp,
            } => guarded(path, || {
                read_parquet(path, user, item, rating.as_deref(), timestamp.as_deref())
            })?,
            DataSource::Movielens100k { path } => {
                seconds(read_delimited(path, "\t", false, &TableSpec::FOUR_COLUMNS, limit)?)
            }
            DataSource::Movielens1m { path } => seconds(read_delimited(
                path,
                "::",
                false,
                &TableSpec::FOUR_COLUMNS,
                limit,
            )?),
            DataSource::Ncf { prefix } => return read_ncf(prefix, limit),
            DataSource::Sasrec { path } => (
                read_delimited(path, " ", false, &TableSpec::TWO_COLUMNS, limit)?,
                None,
            ),
            DataSource::Sequences { path } => (read_sequences(path, limit)?, None),
        };
        Ok(Loaded {
            interactions,
            fixed: None,
            time_unit,
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

/// Runs a polars Parquet read, turning a panic of the reader into an error. polars 0.55's
/// Parquet decoder panics on some malformed files (found by fuzzing: a thrift bool field, a
/// bit width over 32, an unwrap of missing metadata, a slice past the end); ember must answer
/// them with an error, not a crash.
fn guarded<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(DataError::Reader {
            path: path.to_owned(),
            message: format!(
                "the file is malformed (the Parquet decoder failed: {})",
                shown_cut(what, 200)
            ),
        })
    })
}

/// Refuses a Parquet file whose page headers, in the columns ember reads, declare a negative
/// count. polars 0.55 takes a data page's `num_values` as an unsigned size: `-1` makes it
/// reserve a validity bitmap of 2^64 bits, and that failed allocation aborts the process
/// (found by fuzzing; a panic would be caught by [`guarded`], an abort cannot be). The pages
/// are walked with polars' own page reader, one column chunk in memory at a time, without
/// decompressing them. Anything else wrong with a chunk (a range past the end, a bad header)
/// is left to polars, whose read reports it.
fn check_page_counts(
    path: &Path,
    metadata: &polars_parquet::parquet::metadata::FileMetadata,
    columns: &[String],
) -> Result<()> {
    use polars_parquet::parquet::page::{CompressedPage, DataPageHeader};
    use polars_parquet::parquet::read::PageReader;
    use std::io::{Read, Seek, SeekFrom};

    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    for (group, row_group) in metadata.row_groups.iter().enumerate() {
        for name in columns {
            let Some(chunks) = row_group.columns_under_root_iter(name) else {
                continue;
            };
            for chunk in chunks {
                let range = chunk.byte_range();
                if range.start > range.end || range.end > size {
                    continue;
                }
                let mut bytes = vec![0u8; (range.end - range.start) as usize];
                file.seek(SeekFrom::Start(range.start))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(io)?;
                let pages = PageReader::new(
                    std::io::Cursor::new(polars_buffer::Buffer::from(bytes)),
                    chunk,
                    Vec::new(),
                    usize::MAX,
                );
                for (number, page) in pages.enumerate() {
                    let page = match page {
                        Ok(CompressedPage::Data(page)) => page,
                        Ok(CompressedPage::Dict(_)) => continue,
                        // A page polars cannot even frame is polars' error to report.
                        Err(_) => break,
                    };
                    let counts: &[(&str, i32)] = match page.header() {
                        DataPageHeader::V1(h) => &[("values", h.num_values)],
                        DataPageHeader::V2(h) => &[
                            ("values", h.num_values),
                            ("nulls", h.num_nulls),
                            ("rows", h.num_rows),
                        ],
                    };
                    if let Some((what, count)) = counts.iter().find(|(_, count)| *count < 0) {
                        return Err(DataError::Reader {
                            path: path.to_owned(),
                            message: format!(
                                "the file is malformed: page {} of column `{}` in row group \
                                 {} declares {count} {what} (a count must be 0 or more)",
                                number + 1,
                                shown(name),
                                group + 1
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

fn reader_error(path: &Path, e: PolarsError) -> DataError {
    DataError::Reader {
        path: path.to_owned(),
        message: shown_cut(&e.to_string(), 300),
    }
}

/// The separators [`read_delimited`] takes: one character (not a line break or a quote), or
/// `::`.
fn checked_separator<'a>(path: &Path, separator: &'a str) -> Result<&'a str> {
    let mut chars = separator.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if !matches!(c, '\n' | '\r' | '"') => Ok(separator),
        _ if separator == "::" => Ok(separator),
        _ => Err(DataError::Invalid(format!(
            "{}: separator {separator:?} is not supported: use one character, \"\\t\", or \"::\"",
            path.display()
        ))),
    }
}

/// The names of a header as a message lists them (each one [`shown`], at most 20).
fn listed(names: &[String]) -> String {
    const LISTED: usize = 20;
    let mut list: Vec<String> = names.iter().take(LISTED).map(|n| shown(n)).collect();
    if names.len() > LISTED {
        list.push(format!("… ({} more)", names.len() - LISTED));
    }
    list.join(", ")
}

/// Reads a delimited text file line by line. Every value is read where its line is known, so
/// each error names the file, the line and what was expected. Comma-separated files may quote
/// fields (`"…"`); lines must all have as many fields as the header (or the first line);
/// columns not asked for are ignored.
fn read_delimited(
    path: &Path,
    separator: &str,
    header: bool,
    spec: &TableSpec,
    limit: LineLimit,
) -> Result<Interactions> {
    let separator = checked_separator(path, separator)?;
    let text = read_text(path, limit)?;
    let mut records = Records::new(&text, separator, separator == ",");
    let mut fields = Vec::new();
    let empty = || DataError::Empty {
        path: path.to_owned(),
    };
    // The header: its line, its names, and the line itself for hints.
    let names = if header {
        let (line, raw) = records.next_into(path, &mut fields).ok_or_else(empty)??;
        let names: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
        Some((line, names, raw))
    } else {
        None
    };
    let resolve = |column: &Column, role: &str| -> Result<usize> {
        match (column, &names) {
            (Column::Index(i), Some((line, names, raw))) if *i >= names.len() => {
                Err(DataError::Parse {
                    path: path.to_owned(),
                    line: *line,
                    message: format!(
                        "the header has {} fields, so no {role} column at 0-based position {i}{}",
                        names.len(),
                        separator_hint(raw, separator)
                    ),
                })
            }
            (Column::Index(i), _) => Ok(*i),
            (Column::Name(name), Some((line, names, raw))) => {
                let at: Vec<usize> = (0..names.len()).filter(|&i| names[i] == *name).collect();
                match at[..] {
                    [i] => Ok(i),
                    [] => Err(DataError::MissingColumn {
                        path: path.to_owned(),
                        column: shown(name),
                        available: listed(names),
                        hint: if names.len() == 1 {
                            separator_hint(raw, separator)
                        } else {
                            String::new()
                        },
                    }),
                    _ => Err(DataError::Parse {
                        path: path.to_owned(),
                        line: *line,
                        message: format!(
                            "the header names `{}` {} times (0-based positions {:?}): which column holds the {role} is ambiguous",
                            shown(name),
                            at.len(),
                            at
                        ),
                    }),
                }
            }
            (Column::Name(name), None) => Err(DataError::Invalid(format!(
                "{}: column `{name}` is named, but the file has no header (header = false): give its 0-based index",
                path.display()
            ))),
        }
    };
    let user = resolve(spec.user, "user")?;
    let item = resolve(spec.item, "item")?;
    let rating = spec.rating.map(|c| resolve(c, "rating")).transpose()?;
    let timestamp = spec
        .timestamp
        .map(|c| resolve(c, "timestamp"))
        .transpose()?;
    let needed = 1 + [Some(user), Some(item), rating, timestamp]
        .into_iter()
        .flatten()
        .max()
        .expect("user and item");
    let mut width = names.as_ref().map(|(_, names, _)| names.len());
    let mut out = Interactions {
        ratings: rating.map(|_| Vec::new()),
        timestamps: timestamp.map(|_| Vec::new()),
        ..Default::default()
    };
    while let Some(record) = records.next_into(path, &mut fields) {
        let (line, raw) = record?;
        let expected = *width.get_or_insert(fields.len());
        if fields.len() != expected || fields.len() < needed {
            let hint = if fields.len() < needed {
                separator_hint(raw, separator)
            } else {
                String::new()
            };
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "expected {} fields separated by {separator:?}, found {}{hint}",
                    expected.max(needed),
                    fields.len()
                ),
            });
        }
        let integer = |position: usize, role: &str, expect: Expect| {
            let field = &fields[position];
            parse_integer(field).map_err(|bad| DataError::Parse {
                path: path.to_owned(),
                line,
                message: bad_value(role, expect, field, bad),
            })
        };
        out.users.push(integer(user, "user", Expect::Id)?);
        out.items.push(integer(item, "item", Expect::Id)?);
        if let (Some(position), Some(ratings)) = (rating, out.ratings.as_mut()) {
            let field = &fields[position];
            let value = parse_rating(field).map_err(|bad| DataError::Parse {
                path: path.to_owned(),
                line,
                message: bad_value("rating", Expect::Rating, field, bad),
            })?;
            ratings.push(value);
        }
        if let (Some(position), Some(timestamps)) = (timestamp, out.timestamps.as_mut()) {
            timestamps.push(integer(position, "timestamp", Expect::Timestamp)?);
        }
    }
    if out.is_empty() {
        return Err(empty());
    }
    Ok(out)
}

/// Reads a Parquet file's columns. Each column is read in the type ember needs only when
/// every value converts exactly; anything else (a fraction in an id column, a boolean column,
/// a string that is not a number, a null, NaN) is an error naming the column, the row and the
/// value. Never truncated, never wrapped.
fn read_parquet(
    path: &Path,
    user: &str,
    item: &str,
    rating: Option<&str>,
    timestamp: Option<&str>,
) -> Result<(Interactions, Option<TimeUnit>)> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().map_err(|e| reader_error(path, e))?;
    let mut wanted = vec![(user, "user", Expect::Id), (item, "item", Expect::Id)];
    if let Some(r) = rating {
        wanted.push((r, "rating", Expect::Rating));
    }
    if let Some(t) = timestamp {
        wanted.push((t, "timestamp", Expect::Timestamp));
    }
    for (name, _, _) in &wanted {
        if schema.get(*name).is_none() {
            let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
            return Err(DataError::MissingColumn {
                path: path.to_owned(),
                column: shown(name),
                available: listed(&names),
                hint: String::new(),
            });
        }
    }
    let mut selected: Vec<String> = Vec::new();
    for (name, _, _) in &wanted {
        if !selected.iter().any(|s| s == name) {
            selected.push(name.to_string());
        }
    }
    let metadata = reader
        .get_metadata()
        .map_err(|e| reader_error(path, e))?
        .clone();
    check_page_counts(path, &metadata, &selected)?;
    let df = reader
        .with_columns(Some(selected))
        .finish()
        .map_err(|e| reader_error(path, e))?;
    if df.height() == 0 {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    let column = |name: &str| {
        df.column(name)
            .map(|c| c.as_materialized_series())
            .map_err(|e| reader_error(path, e))
    };
    let read = |(name, role, expect): (&str, &str, Expect)| -> Result<Vec<i64>> {
        ParquetColumn {
            path,
            name,
            role,
            expect,
            series: column(name)?,
        }
        .integers()
    };
    let mut out = Interactions {
        users: read(wanted[0])?,
        items: read(wanted[1])?,
        ..Default::default()
    };
    if let Some(r) = rating {
        let series = column(r)?;
        out.ratings = Some(
            ParquetColumn {
                path,
                name: r,
                role: "rating",
                expect: Expect::Rating,
                series,
            }
            .ratings()?,
        );
    }
    let mut unit = None;
    if let Some(t) = timestamp {
        out.timestamps = Some(read((t, "timestamp", Expect::Timestamp))?);
        unit = Some(match column(t)?.dtype() {
            DataType::Date => TimeUnit::Days,
            DataType::Datetime(polars::prelude::TimeUnit::Milliseconds, _) => {
                TimeUnit::Milliseconds
            }
            DataType::Datetime(polars::prelude::TimeUnit::Microseconds, _) => {
                TimeUnit::Microseconds
            }
            DataType::Datetime(polars::prelude::TimeUnit::Nanoseconds, _) => TimeUnit::Nanoseconds,
            _ => TimeUnit::Seconds,
        });
    }
    Ok((out, unit))
}

/// A column of a Parquet file, read as what its role needs.
struct ParquetColumn<'a> {
    path: &'a Path,
    name: &'a str,
    /// `user`, `item`, `rating` or `timestamp`.
    role: &'a str,
    expect: Expect,
    series: &'a Series,
}

impl ParquetColumn<'_> {
    /// An error about the value at 0-based `index`, which the file holds as `value`.
    fn bad(&self, index: usize, value: &str, bad: Bad) -> DataError {
        DataError::Value {
            path: self.path.to_owned(),
            column: shown(self.name),
            row: index + 1,
            message: bad_value(self.role, self.expect, value, bad),
        }
    }

    /// Refuses nulls, naming the first.
    fn no_nulls(&self) -> Result<()> {
        let missing = self.series.null_count();
        if missing == 0 {
            return Ok(());
        }
        let first = self
            .series
            .is_null()
            .iter()
            .position(|null| null == Some(true))
            .unwrap_or(0);
        Err(DataError::Value {
            path: self.path.to_owned(),
            column: shown(self.name),
            row: first + 1,
            message: format!(
                "{} is missing (null; {missing} in the column): expected {}",
                self.role,
                match self.expect {
                    Expect::Id => "an integer id",
                    Expect::Timestamp => "an integer",
                    Expect::Rating => "a finite number",
                }
            ),
        })
    }

    fn wrong_type(&self) -> DataError {
        let dtype = self.series.dtype();
        let found = match dtype {
            DataType::Boolean => "booleans (true/false)".to_string(),
            DataType::String => "strings".to_string(),
            other => format!("values of type {}", shown(&other.to_string())),
        };
        DataError::ColumnType {
            path: self.path.to_owned(),
            column: shown(self.name),
            found,
            expected: match self.expect {
                Expect::Id => "integer ids (integers, whole-number floats, or strings of integers)",
                Expect::Timestamp => "integer timestamps, dates or datetimes",
                Expect::Rating => "numbers (integers or floats)",
            }
            .into(),
        }
    }

    /// The column as `i64`s: integers that fit, whole floats within ±2^53, strings of
    /// integers, and (for timestamps) dates and datetimes as their integer values.
    fn integers(&self) -> Result<Vec<i64>> {
        self.no_nulls()?;
        let s = self.series;
        let dtype = s.dtype();
        let temporal = matches!(dtype, DataType::Date | DataType::Datetime(..));
        if dtype.is_integer() || (temporal && self.expect == Expect::Timestamp) {
            let cast = s
                .to_physical_repr()
                .cast(&DataType::Int64)
                .map_err(|e| reader_error(self.path, e))?;
            let values = cast.i64().map_err(|e| reader_error(self.path, e))?;
            if values.null_count() > 0 {
                // A value that does not fit in an i64 (a u64 above 2^63 - 1).
                let index = values.iter().position(|v| v.is_none()).expect("a null");
                let value = s.get(index).map(|v| v.to_string()).unwrap_or_default();
                return Err(self.bad(index, &value, Bad::OutOfRange));
            }
            return Ok(values.into_no_null_iter().collect());
        }
        if dtype.is_float() {
            let cast = s
                .cast(&DataType::Float64)
                .map_err(|e| reader_error(self.path, e))?;
            let values = cast.f64().map_err(|e| reader_error(self.path, e))?;
            /// Beyond this a float does not hold every integer.
            const EXACT: f64 = 9_007_199_254_740_992.0;
            return values
                .into_no_null_iter()
                .enumerate()
                .map(|(index, v)| {
                    let bad = if !v.is_finite() {
                        Bad::NotFinite
                    } else if v.fract() != 0.0 {
                        Bad::Fraction
                    } else if v.abs() > EXACT {
                        Bad::Inexact
                    } else {
                        return Ok(v as i64);
                    };
                    Err(self.bad(index, &v.to_string(), bad))
                })
                .collect();
        }
        if let DataType::String = dtype {
            let values = s.str().map_err(|e| reader_error(self.path, e))?;
            return values
                .iter()
                .map(|v| v.unwrap_or("")) // nulls were refused above
                .enumerate()
                .map(|(index, v)| parse_integer(v).map_err(|bad| self.bad(index, v, bad)))
                .collect();
        }
        Err(self.wrong_type())
    }

    /// The column as finite `f32` ratings: integers, floats, or strings of numbers.
    fn ratings(&self) -> Result<Vec<f32>> {
        self.no_nulls()?;
        let s = self.series;
        let dtype = s.dtype();
        if dtype.is_integer() || dtype.is_float() {
            let cast = s
                .cast(&DataType::Float64)
                .map_err(|e| reader_error(self.path, e))?;
            let values = cast.f64().map_err(|e| reader_error(self.path, e))?;
            return values
                .into_no_null_iter()
                .enumerate()
                .map(|(index, v)| {
                    rating_from_f64(v).map_err(|bad| self.bad(index, &v.to_string(), bad))
                })
                .collect();
        }
        if let DataType::String = dtype {
            let values = s.str().map_err(|e| reader_error(self.path, e))?;
            return values
                .iter()
                .map(|v| v.unwrap_or("")) // nulls were refused above
                .enumerate()
                .map(|(index, v)| parse_rating(v).map_err(|bad| self.bad(index, v, bad)))
                .collect();
        }
        Err(self.wrong_type())
    }
}

/// `user item1 item2 …` lines.
fn read_sequences(path: &Path, limit: LineLimit) -> Result<Interactions> {
    let text = read_text(path, limit)?;
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
        for field in &f[1..] {
            // File order is time order, also for a user on several lines.
            let position = out.items.len() as i64;
            out.users.push(user);
            out.items.push(parse_id(path, line, "item", field)?);
            out.timestamps.as_mut().expect("set").push(position);
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
fn read_ncf(prefix: &Path, limit: LineLimit) -> Result<Loaded> {
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
        limit,
    )?;
    let test_rows = read_delimited(
        &with_suffix(".test.rating"),
        "\t",
        false,
        &TableSpec::FOUR_COLUMNS,
        limit,
    )?;
    let test: Vec<(i64, i64)> = test_rows
        .users
        .iter()
        .copied()
        .zip(test_rows.items.iter().copied())
        .collect();
    let test_timestamps = test_rows.timestamps;
    let negatives_path = with_suffix(".test.negative");
    let negatives = if negatives_path.exists() {
        let mut known: HashSet<i64> = interactions.users.iter().copied().collect();
        known.extend(test_rows.users.iter().copied());
        Some(read_ncf_negatives(&negatives_path, &known, limit)?)
    } else {
        None
    };
    Ok(Loaded {
        interactions,
        fixed: Some(FixedTest {
            test,
            test_timestamps,
            negatives,
        }),
        time_unit: Some(TimeUnit::Seconds),
    })
}

/// `(user,item)\tneg1\tneg2…` lines, one per user of `known` (the users of the training and
/// test files). A negative equal to the held-out item (an upstream quirk of the ML-1M file) is
/// dropped: the same item cannot be both. Negatives may name items no file has an interaction
/// with: they are items of the catalogue nobody rated, and join the item ids.
fn read_ncf_negatives(
    path: &Path,
    known: &HashSet<i64>,
    limit: LineLimit,
) -> Result<Vec<(i64, Vec<i64>)>> {
    let text = read_text(path, limit)?;
    let mut out = Vec::new();
    let mut lines: HashMap<i64, usize> = HashMap::new();
    for (line, content) in numbered_lines(&text) {
        let f: Vec<&str> = content.split('\t').collect();
        let pair = f[0].trim();
        let inner = pair.strip_prefix('(').and_then(|p| p.strip_suffix(')'));
        let Some((user, item)) = inner.and_then(|p| p.split_once(',')) else {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "expected `(user,item)` as the first field, found `{}`",
                    shown(pair)
                ),
            });
        };
        let user = parse_id(path, line, "user", user)?;
        let item = parse_id(path, line, "item", item)?;
        let problem = if !known.contains(&user) {
            Some(format!(
                "the negatives file names user {user}, who has no training or test interaction"
            ))
        } else {
            lines.insert(user, line).map(|first| {
                format!("the negatives file lists user {user} twice (first at line {first})")
            })
        };
        if let Some(message) = problem {
            return Err(DataError::Parse {
                path: path.to_owned(),
                line,
                message,
            });
        }
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
