//! Delimited text: a configured CSV/TSV (any one-character separator, or `::`), and the preset
//! formats that are delimited text (MovieLens 100K and 1M, SASRec's `user item` lines).

use std::path::Path;

use ember_spec::KeyType;
use ember_spec::lines::LineLimit;

use super::{Column, listed};
use crate::encoding::{Decoded, Encoding, InvalidByte, LATIN1_HINT};
use crate::keys::KeyColumn;
use crate::text::{
    Expect, Records, bad_key, bad_value, field_at, parse_integer, parse_rating, parse_weight,
    read_decoded, separator_hint, shown,
};
use crate::{DataError, Interactions, Result};

/// Which columns of a table hold what.
pub(super) struct TableSpec<'a> {
    pub(super) user: &'a Column,
    pub(super) item: &'a Column,
    pub(super) rating: Option<&'a Column>,
    pub(super) timestamp: Option<&'a Column>,
    pub(super) weight: Option<&'a Column>,
    /// The declared type of the user and item keys.
    pub(super) key_type: KeyType,
}

impl TableSpec<'static> {
    pub(super) const FOUR_COLUMNS: Self = Self {
        user: &Column::Index(0),
        item: &Column::Index(1),
        rating: Some(&Column::Index(2)),
        timestamp: Some(&Column::Index(3)),
        weight: None,
        key_type: KeyType::Integer,
    };
    pub(super) const TWO_COLUMNS: Self = Self {
        user: &Column::Index(0),
        item: &Column::Index(1),
        rating: None,
        timestamp: None,
        weight: None,
        key_type: KeyType::Integer,
    };
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

/// Reads a delimited text file line by line. Every value is read where its line is known, so
/// each error names the file, the line and what was expected. Comma-separated files may quote
/// fields (`"…"`); lines must all have as many fields as the header (or the first line);
/// columns not asked for are ignored. `encoding` is the source's setting, `None` for a preset
/// format (UTF-8, without the setting): in UTF-8 a byte that is not UTF-8 is refused in a
/// field read, and let pass in a field ignored.
pub(super) fn read_delimited(
    path: &Path,
    separator: &str,
    header: bool,
    spec: &TableSpec,
    (limit, encoding): (LineLimit, Option<Encoding>),
) -> Result<Interactions> {
    let separator = checked_separator(path, separator)?;
    let Decoded { text, invalid } = read_decoded(path, limit, encoding.unwrap_or_default())?;
    let mut invalid = invalid.iter().peekable();
    let hint = if encoding.is_some() { LATIN1_HINT } else { "" };
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
    let weight = spec.weight.map(|c| resolve(c, "weight")).transpose()?;
    let needed = 1 + [Some(user), Some(item), rating, timestamp, weight]
        .into_iter()
        .flatten()
        .max()
        .expect("user and item");
    let mut width = names.as_ref().map(|(_, names, _)| names.len());
    let mut keys = [KeyColumn::new(spec.key_type), KeyColumn::new(spec.key_type)];
    let mut out = Interactions {
        ratings: rating.map(|_| Vec::new()),
        timestamps: timestamp.map(|_| Vec::new()),
        weights: weight.map(|_| Vec::new()),
        ..Default::default()
    };
    let read = [
        Some((user, "user")),
        Some((item, "item")),
        rating.map(|at| (at, "rating")),
        timestamp.map(|at| (at, "timestamp")),
    ];
    while let Some(record) = records.next_into(path, &mut fields) {
        let (line, raw) = record?;
        if invalid.peek().is_some() {
            let at = Located {
                text: &text,
                record: raw,
                separator,
            };
            if let Some((bad, role)) = at.invalid_in(&mut invalid, &read) {
                return Err(bad.error(path, Some(role), hint));
            }
        }
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
        for (column, (position, role)) in keys.iter_mut().zip([(user, "user"), (item, "item")]) {
            let field = &fields[position];
            column.push(field).map_err(|bad| DataError::Parse {
                path: path.to_owned(),
                line,
                message: bad_key(role, field, bad),
            })?;
        }
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
        if let (Some(position), Some(weights)) = (weight, out.weights.as_mut()) {
            let field = &fields[position];
            weights.push(parse_weight(field).map_err(|bad| DataError::Parse {
                path: path.to_owned(),
                line,
                message: bad_value("weight", Expect::Weight, field, bad),
            })?);
        }
    }
    let [users, items] = keys;
    (out.users, out.user_keys) = users.finish();
    (out.items, out.item_keys) = items.finish();
    if out.is_empty() {
        return Err(empty());
    }
    Ok(out)
}

/// A record of a delimited text, where it lies in the text.
struct Located<'t> {
    text: &'t str,
    record: &'t str,
    separator: &'t str,
}

impl Located<'_> {
    /// The first of the `invalid` bytes (those not yet passed) that lies in the record in one
    /// of the fields `read` (positions and roles), with that field's role; the bytes up to the
    /// record's end are passed.
    fn invalid_in<'b, 'r>(
        &self,
        invalid: &mut std::iter::Peekable<std::slice::Iter<'b, InvalidByte>>,
        read: &[Option<(usize, &'r str)>],
    ) -> Option<(&'b InvalidByte, &'r str)> {
        let start = self.record.as_ptr() as usize - self.text.as_ptr() as usize;
        let end = start + self.record.len();
        while let Some(bad) = invalid.next_if(|bad| bad.at < end) {
            if bad.at < start {
                continue;
            }
            let quotes = self.separator == ",";
            let field = field_at(self.record, bad.at - start, self.separator, quotes);
            if let Some((_, role)) = read.iter().flatten().find(|(at, _)| *at == field) {
                return Some((bad, *role));
            }
        }
        None
    }
}
