//! Line readers for the formats that are not tables (ragged lines), and the precise line-level
//! diagnosis used when a tabular file fails to parse.

use std::fs;
use std::path::Path;

use crate::{DataError, Result};

/// Reads a whole text file, mapping I/O errors to [`DataError::Io`].
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    // Latin-1 files (MovieLens item titles) are not read here; ids are ASCII, so a lossy
    // decode only matters for error messages.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses one id field.
pub(crate) fn parse_id(path: &Path, line: usize, what: &str, field: &str) -> Result<i64> {
    field.trim().parse::<i64>().map_err(|_| DataError::Parse {
        path: path.to_owned(),
        line,
        message: format!("{what} `{field}` is not an integer id"),
    })
}

/// Parses one number field.
pub(crate) fn parse_number<T: std::str::FromStr>(
    path: &Path,
    line: usize,
    what: &str,
    field: &str,
) -> Result<T> {
    field.trim().parse::<T>().map_err(|_| DataError::Parse {
        path: path.to_owned(),
        line,
        message: format!("{what} `{field}` is not a number"),
    })
}

/// The non-empty lines of a file with their 1-based numbers.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Splits a line on `separator`; a run of spaces counts as one separator when it is a space.
pub(crate) fn fields<'a>(line: &'a str, separator: &'a str) -> Vec<&'a str> {
    if separator == " " {
        line.split_whitespace().collect()
    } else {
        line.split(separator).collect()
    }
}

/// Finds the first line of a delimited file that does not fit: too few fields, or a
/// non-numeric value in a numeric column. `columns` are (0-based index, name, is_id) of the
/// columns that must parse. Returns `None` when every line fits (the failure was elsewhere).
pub(crate) fn diagnose_delimited(
    path: &Path,
    separator: &str,
    header: bool,
    columns: &[(usize, &str, bool)],
) -> Option<DataError> {
    let text = match read_text(path) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let needed = columns.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let mut expected_fields: Option<usize> = None;
    for (line, content) in numbered_lines(&text).skip(usize::from(header)) {
        let f = fields(content, separator);
        let expected = *expected_fields.get_or_insert(f.len());
        if f.len() < needed || f.len() != expected {
            return Some(DataError::Parse {
                path: path.to_owned(),
                line,
                message: format!(
                    "expected {} fields separated by {:?}, found {}",
                    expected.max(needed),
                    separator,
                    f.len()
                ),
            });
        }
        for &(index, name, is_id) in columns {
            let value = f[index];
            let result = if is_id {
                parse_id(path, line, name, value).map(|_| ())
            } else {
                parse_number::<f64>(path, line, name, value).map(|_| ())
            };
            if let Err(e) = result {
                return Some(e);
            }
        }
    }
    None
}
