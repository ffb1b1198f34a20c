//! Parquet files, read with polars and hardened against malformed files: every page header of
//! the columns read is checked before polars decodes it (a negative count would abort the
//! process), a panic of the decoder becomes an error, and every value is checked as a column of
//! ids, ratings or timestamps must hold it (no truncated floats, no nulls, no wrapped integers).

use polars::prelude::*;
use std::path::Path;

use ember_spec::KeyType;

use super::listed;
use super::postgres::QueryColumns;
use crate::keys::{KeyColumn, KeyDictionary};
use crate::text::{
    Bad, Expect, bad_key, bad_value, parse_integer, parse_rating, parse_weight, rating_from_f64,
    shown, shown_cut, weight_from_f64,
};
use crate::{DataError, Interactions, Result, TimeUnit};

/// Runs a polars Parquet read, turning a panic of the reader into an error. polars 0.55's
/// Parquet decoder panics on some malformed files (found by fuzzing: a thrift bool field, a
/// bit width over 32, an unwrap of missing metadata, a slice past the end); ember must answer
/// them with an error, not a crash.
pub(super) fn guarded<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
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

/// Reads a Parquet file's columns. Each column is read in the type ember needs only when
/// every value converts exactly; anything else (a fraction in an id column, a boolean column,
/// a string that is not a number, a null, NaN) is an error naming the column, the row and the
/// value. Never truncated, never wrapped.
pub(super) fn read_parquet(
    path: &Path,
    columns: &QueryColumns,
) -> Result<(Interactions, Option<TimeUnit>)> {
    let QueryColumns {
        user,
        item,
        rating,
        timestamp,
        weight,
        key_type,
    } = *columns;
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
    if let Some(w) = weight {
        wanted.push((w, "weight", Expect::Weight));
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
    let of = |wanted| ParquetColumn::of(&df, path, wanted);
    let keys = |wanted| of(wanted)?.keys(key_type);
    let (users, user_keys) = keys(wanted[0])?;
    let (items, item_keys) = keys(wanted[1])?;
    let mut out = Interactions {
        users,
        items,
        user_keys,
        item_keys,
        ..Default::default()
    };
    if let Some(r) = rating {
        out.ratings = Some(of((r, "rating", Expect::Rating))?.ratings()?);
    }
    if let Some(w) = weight {
        out.weights = Some(of((w, "weight", Expect::Weight))?.weights()?);
    }
    let mut unit = None;
    if let Some(t) = timestamp {
        out.timestamps = Some(of((t, "timestamp", Expect::Timestamp))?.integers()?);
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

impl<'a> ParquetColumn<'a> {
    /// The column `name` of `df`, to be read as `role` (checked as `expect` says).
    fn of(
        df: &'a DataFrame,
        path: &'a Path,
        (name, role, expect): (&'a str, &'a str, Expect),
    ) -> Result<Self> {
        let series = df
            .column(name)
            .map(|c| c.as_materialized_series())
            .map_err(|e| reader_error(path, e))?;
        Ok(Self {
            path,
            name,
            role,
            expect,
            series,
        })
    }

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
                    Expect::Weight => "a finite number, 0 or more",
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
                Expect::Rating | Expect::Weight => "numbers (integers or floats)",
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

    /// The column as user or item keys: an integer column (or whole floats) as integer keys, a
    /// string column as string keys, unless `declared` says otherwise (`integer`: strings of
    /// integers; `string`: integers in decimal).
    fn keys(&self, declared: KeyType) -> Result<(Vec<i64>, KeyDictionary)> {
        let dtype = self.series.dtype();
        if !matches!(dtype, DataType::String) && !dtype.is_categorical() && !dtype.is_enum() {
            let integers = self.integers()?;
            if declared != KeyType::String {
                return Ok((integers, KeyDictionary::Integers));
            }
            let mut column = KeyColumn::new(KeyType::String);
            integers
                .into_iter()
                .for_each(|key| column.push_integer(key));
            return Ok(column.finish());
        }
        self.no_nulls()?;
        // A categorical column's values are its categories' strings.
        let strings = self
            .series
            .cast(&DataType::String)
            .map_err(|e| reader_error(self.path, e))?;
        let values = strings.str().map_err(|e| reader_error(self.path, e))?;
        let read_as = match declared {
            KeyType::Integer => KeyType::Integer,
            _ => KeyType::String,
        };
        let mut column = KeyColumn::new(read_as);
        for (index, value) in values.iter().enumerate() {
            let value = value.unwrap_or(""); // nulls were refused above
            column.push(value).map_err(|bad| DataError::Value {
                path: self.path.to_owned(),
                column: shown(self.name),
                row: index + 1,
                message: bad_key(self.role, value, bad),
            })?;
        }
        Ok(column.finish())
    }

    /// The column as finite `f32` ratings: integers, floats, or strings of numbers.
    fn ratings(&self) -> Result<Vec<f32>> {
        self.floats(rating_from_f64, parse_rating)
    }

    /// The column as `f32` weights: ratings that are also 0 or more.
    fn weights(&self) -> Result<Vec<f32>> {
        self.floats(weight_from_f64, parse_weight)
    }

    /// The column as `f32`s, each number checked by `from_f64`, each string read by `parse`.
    fn floats(
        &self,
        from_f64: fn(f64) -> std::result::Result<f32, Bad>,
        parse: fn(&str) -> std::result::Result<f32, Bad>,
    ) -> Result<Vec<f32>> {
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
                .map(|(index, v)| from_f64(v).map_err(|bad| self.bad(index, &v.to_string(), bad)))
                .collect();
        }
        if let DataType::String = dtype {
            let values = s.str().map_err(|e| reader_error(self.path, e))?;
            return values
                .iter()
                .map(|v| v.unwrap_or("")) // nulls were refused above
                .enumerate()
                .map(|(index, v)| parse(v).map_err(|bad| self.bad(index, v, bad)))
                .collect();
        }
        Err(self.wrong_type())
    }
}
