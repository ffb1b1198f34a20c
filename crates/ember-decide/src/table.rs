//! The files decisions read and write. Inputs are CSV with a header row (RFC 4180 fields:
//! commas, double quotes with `""` for a quote inside; blank lines skipped); every column is
//! named, a missing required column or an unknown one is an error naming the file, and a bad
//! value names the file, the line and what was expected. Outputs are written under a
//! temporary name beside the target and renamed into place once complete.

use ember_spec::lines::{LineLimit, Lines, MAX_LINE_BYTES_VAR, TextError};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::destination::Destination;
use crate::{DecideError, Key, KeyKind};

/// A CSV file being read: its columns, as the caller named them, and its remaining lines.
pub(crate) struct CsvReader {
    path: PathBuf,
    /// For each column the caller asked for, its position in the file's header.
    positions: Vec<Option<usize>>,
    names: Vec<&'static str>,
    lines: TextLines,
    line: usize,
}

/// The lines of an input file, each checked as it is read: none longer than
/// `EMBER_MAX_LINE_BYTES` (1 MiB by default), no NUL byte, UTF-8. A file without line breaks
/// (`/dev/zero`) is refused at the limit instead of filling memory.
struct TextLines {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    bytes: Vec<u8>,
}

impl TextLines {
    fn open(path: &Path) -> Result<Self, DecideError> {
        let limit = LineLimit::from_env(MAX_LINE_BYTES_VAR)
            .map_err(|e| DecideError::Invalid(e.to_string()))?;
        let file = File::open(path).map_err(DecideError::io(path))?;
        Ok(Self {
            path: path.to_owned(),
            lines: Lines::new(BufReader::new(file), limit),
            bytes: Vec::new(),
        })
    }

    /// The next line and its 1-based number, `None` at the end of the file.
    fn next(&mut self) -> Option<Result<(usize, String), DecideError>> {
        let line = match self.lines.next_into(&mut self.bytes)? {
            Ok(line) => line,
            Err(TextError::Io(e)) => return Some(Err(DecideError::io(&self.path)(e))),
            Err(e) => {
                let line = e.line().unwrap_or(1);
                return Some(Err(DecideError::input(&self.path, line, e.to_string())));
            }
        };
        let text = match std::str::from_utf8(&self.bytes) {
            Ok(text) => text.strip_suffix('\r').unwrap_or(text).to_owned(),
            Err(_) => {
                let message = "bytes that are not UTF-8: expected CSV text in UTF-8";
                return Some(Err(DecideError::input(&self.path, line, message)));
            }
        };
        Some(Ok((line, text)))
    }
}

/// One record, its fields in the order the caller named the columns.
pub(crate) struct Record<'r> {
    reader: &'r CsvReader,
    line: usize,
    fields: Vec<String>,
}

/// Splits one CSV line into fields.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (false, c) if was_quoted => {
                return Err(format!("`{c}` after a closing quote (expected a comma)"));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("an unclosed quote (fields may not span lines)".into());
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| f.trim().to_string()).collect())
}

impl CsvReader {
    /// Opens `path` and reads its header, which must hold every column of `required`, may hold
    /// those of `optional`, and nothing else (a misspelt optional column would otherwise be
    /// silently ignored).
    pub(crate) fn open(
        path: &Path,
        required: &[&'static str],
        optional: &[&'static str],
    ) -> Result<Self, DecideError> {
        let mut lines = TextLines::open(path)?;
        let (line, header) = loop {
            match lines.next() {
                None => {
                    return Err(DecideError::input(
                        path,
                        1,
                        format!(
                            "empty file: expected a header naming {}",
                            required.join(", ")
                        ),
                    ));
                }
                Some(next) => {
                    let (line, text) = next?;
                    if !text.trim().is_empty() {
                        break (line, text);
                    }
                }
            }
        };
        let header = split(header.trim_start_matches('\u{feff}'))
            .map_err(|e| DecideError::input(path, line, e))?;
        let known: Vec<&str> = required.iter().chain(optional).copied().collect();
        if let Some(unknown) = header.iter().find(|h| !known.contains(&h.as_str())) {
            return Err(DecideError::input(
                path,
                line,
                format!(
                    "unknown column `{unknown}`: expected the columns {}",
                    columns_list(required, optional)
                ),
            ));
        }
        let positions: Vec<Option<usize>> = known
            .iter()
            .map(|name| header.iter().position(|h| h == name))
            .collect();
        if let Some(missing) = required.iter().zip(&positions).find(|(_, p)| p.is_none()) {
            return Err(DecideError::input(
                path,
                line,
                format!(
                    "no column `{}`: expected the columns {}",
                    missing.0,
                    columns_list(required, optional)
                ),
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            positions,
            names: known,
            lines,
            line,
        })
    }

    /// The next record, `None` at the end of the file.
    pub(crate) fn next_record(&mut self) -> Option<Result<Record<'_>, DecideError>> {
        loop {
            let text = match self.lines.next()? {
                Ok((line, text)) => {
                    self.line = line;
                    text
                }
                Err(e) => return Some(Err(e)),
            };
            if text.trim().is_empty() {
                continue;
            }
            let fields = match split(&text) {
                Ok(fields) => fields,
                Err(e) => return Some(Err(DecideError::input(&self.path, self.line, e))),
            };
            let width = self.positions.iter().flatten().max().map_or(0, |m| m + 1);
            if fields.len() < width {
                return Some(Err(DecideError::input(
                    &self.path,
                    self.line,
                    format!("{} fields, the header has {width}", fields.len()),
                )));
            }
            let fields = self
                .positions
                .iter()
                .map(|p| p.map(|p| fields[p].clone()).unwrap_or_default())
                .collect();
            return Some(Ok(Record {
                reader: self,
                line: self.line,
                fields,
            }));
        }
    }
}

fn columns_list(required: &[&str], optional: &[&str]) -> String {
    let mut list: Vec<String> = required.iter().map(|c| format!("`{c}`")).collect();
    list.extend(optional.iter().map(|c| format!("`{c}` (optional)")));
    list.join(", ")
}

impl Record<'_> {
    /// The line of the file the record is on (1-based).
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    fn index(&self, column: &str) -> usize {
        self.reader
            .names
            .iter()
            .position(|n| *n == column)
            .expect("a column the reader was opened with")
    }

    /// The field of `column`, `None` when empty or absent.
    pub(crate) fn get(&self, column: &str) -> Option<&str> {
        Some(self.fields[self.index(column)].as_str()).filter(|f| !f.is_empty())
    }

    /// An error about `column` of this record: `what` was expected.
    pub(crate) fn error(&self, column: &str, message: impl std::fmt::Display) -> DecideError {
        DecideError::input(
            &self.reader.path,
            self.line,
            format!("column `{column}`: {message}"),
        )
    }

    /// The non-empty field of `column`.
    pub(crate) fn text(&self, column: &str) -> Result<&str, DecideError> {
        self.get(column).ok_or_else(|| self.error(column, "empty"))
    }

    /// The field of `column` parsed as `T` (`what` names it in the error), `None` when empty.
    pub(crate) fn parse_opt<T: std::str::FromStr>(
        &self,
        column: &str,
        what: &str,
    ) -> Result<Option<T>, DecideError> {
        self.get(column)
            .map(|text| {
                text.parse()
                    .map_err(|_| self.error(column, format!("expected {what}, got `{text}`")))
            })
            .transpose()
    }

    /// The field of `column` parsed as `T`, required.
    pub(crate) fn parse<T: std::str::FromStr>(
        &self,
        column: &str,
        what: &str,
    ) -> Result<T, DecideError> {
        self.parse_opt(column, what)?
            .ok_or_else(|| self.error(column, format!("empty, expected {what}")))
    }

    /// A required key of `kind`, the kind of the model's `whose` (`customers`, `items`), which
    /// the error names when the field is not one.
    pub(crate) fn key(&self, column: &str, kind: KeyKind, whose: &str) -> Result<Key, DecideError> {
        let text = self.text(column)?;
        Key::parse(kind, text).ok_or_else(|| self.error(column, not_a_key(text, kind, whose)))
    }

    /// The keys of `kind` (the kind of the model's `whose`) listed in `column`, separated by
    /// `;` (blanks around them ignored); empty when the field is.
    pub(crate) fn keys(
        &self,
        column: &str,
        kind: KeyKind,
        whose: &str,
    ) -> Result<Vec<Key>, DecideError> {
        let Some(text) = self.get(column) else {
            return Ok(Vec::new());
        };
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|k| {
                Key::parse(kind, k).ok_or_else(|| {
                    let why = not_a_key(k, kind, whose);
                    let which = if whose == "items" { "item" } else { "customer" };
                    self.error(
                        column,
                        format!("expected {which} keys separated by `;`: {why}"),
                    )
                })
            })
            .collect()
    }

    /// An optional finite number.
    pub(crate) fn number_opt(&self, column: &str) -> Result<Option<f64>, DecideError> {
        match self.parse_opt::<f64>(column, "a number")? {
            Some(x) if !x.is_finite() => Err(self.error(column, "expected a finite number")),
            x => Ok(x),
        }
    }

    /// A yes/no field: `1`/`0`, `true`/`false`, `yes`/`no` (any case).
    pub(crate) fn flag(&self, column: &str) -> Result<bool, DecideError> {
        let text = self.text(column)?;
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "y" => Ok(true),
            "0" | "false" | "no" | "n" => Ok(false),
            _ => Err(self.error(
                column,
                format!("expected 1 or 0 (true/false, yes/no), got `{text}`"),
            )),
        }
    }

    /// A day: a whole number of days, or a date `YYYY-MM-DD` (days since 1970-01-01).
    pub(crate) fn day(&self, column: &str) -> Result<i64, DecideError> {
        let text = self.text(column)?;
        parse_day(text).ok_or_else(|| {
            self.error(
                column,
                format!("expected a date YYYY-MM-DD or a day number, got `{text}`"),
            )
        })
    }
}

/// Why `text` is not a key of `kind`, the kind of the model's `whose`: "`C-17` is not an
/// integer key: the model's customers have integer keys".
pub(crate) fn not_a_key(text: &str, kind: KeyKind, whose: &str) -> String {
    let kind = kind.name();
    let article = if kind.starts_with('i') { "an" } else { "a" };
    format!("`{text}` is not {article} {kind} key: the model's {whose} have {kind} keys")
}

/// A day number, or a date `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_day(text: &str) -> Option<i64> {
    if let Ok(day) = text.parse::<i64>() {
        return Some(day);
    }
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month[m as usize - 1] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// The date `YYYY-MM-DD` of day number `day` (days since 1970-01-01; proleptic Gregorian,
/// Hinnant's `civil_from_days`): what [`parse_day`] reads back.
pub fn format_day(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A file written under a temporary name in its directory and moved into place by
/// [`Self::commit`] as its [`Destination`] allows; dropped uncommitted, the temporary file is
/// removed, so a reader never sees half a file.
pub struct AtomicFile {
    destination: Destination,
    partial: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `path`, a new file inside a directory this command is creating.
    pub fn create(path: &Path) -> Result<Self, DecideError> {
        Self::at(&Destination::fresh(path))
    }

    /// Starts writing at a checked destination ([`Destination::check`]).
    pub fn at(destination: &Destination) -> Result<Self, DecideError> {
        let partial = destination.partial();
        let file = File::create(&partial).map_err(DecideError::io(&partial))?;
        Ok(Self {
            destination: destination.clone(),
            partial,
            writer: Some(BufWriter::new(file)),
        })
    }

    /// Writes one CSV line of `fields` (quoted where they hold a comma, quote or line break).
    pub fn write_row<S: AsRef<str>>(&mut self, fields: &[S]) -> Result<(), DecideError> {
        let mut line = String::new();
        for (k, field) in fields.iter().enumerate() {
            if k > 0 {
                line.push(',');
            }
            let field = field.as_ref();
            if field.contains([',', '"', '\n', '\r']) {
                line.push('"');
                line.push_str(&field.replace('"', "\"\""));
                line.push('"');
            } else {
                line.push_str(field);
            }
        }
        line.push('\n');
        let writer = self.writer.as_mut().expect("not committed");
        writer
            .write_all(line.as_bytes())
            .map_err(DecideError::io(&self.partial))
    }

    /// Flushes the file and renames it into place.
    pub fn commit(mut self) -> Result<(), DecideError> {
        let writer = self.writer.take().expect("committed once");
        let file = writer
            .into_inner()
            .map_err(|e| DecideError::io(&self.partial)(e.into_error()))?;
        file.sync_all().map_err(DecideError::io(&self.partial))?;
        drop(file);
        self.destination.place(&self.partial)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_rfc_4180() {
        assert_eq!(split("a, b ,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split(r#""x, y","say ""hi""",,"#).unwrap(),
            ["x, y", r#"say "hi""#, "", ""]
        );
        assert!(split(r#""open"#).is_err());
        assert!(split(r#"a"b"#).is_err());
        assert!(split(r#""a"b"#).is_err());
    }

    #[test]
    fn dates_are_days_since_1970() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-03-01"), Some(11_017));
        assert_eq!(parse_day("2024-02-29"), Some(19_782));
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(parse_day("42"), Some(42));
        assert_eq!(parse_day("2024-1-5"), None);
        for (day, date) in [
            (0, "1970-01-01"),
            (11_017, "2000-03-01"),
            (19_782, "2024-02-29"),
            (-1, "1969-12-31"),
            (10_195, "1997-11-30"),
        ] {
            assert_eq!(format_day(day), date);
            assert_eq!(parse_day(date), Some(day));
        }
    }

    #[test]
    fn bad_files_name_the_file_line_and_expectation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "customer,value\n1,2.5\n\n2,abc\n").unwrap();
        let mut reader = CsvReader::open(&path, &["customer"], &["value"]).unwrap();
        let first = reader.next_record().unwrap().unwrap();
        assert_eq!(first.line(), 2);
        assert_eq!(first.number_opt("value").unwrap(), Some(2.5));
        drop(first);
        let err = reader.next_record().unwrap().unwrap().number_opt("value");
        let err = err.unwrap_err().to_string();
        assert!(
            err.ends_with("in.csv:4: column `value`: expected a number, got `abc`"),
            "{err}"
        );
        std::fs::write(&path, "customer,valeu\n").unwrap();
        let err = CsvReader::open(&path, &["customer"], &["value"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(":1: unknown column `valeu`"), "{err}");
        std::fs::write(&path, "value\n").unwrap();
        let err = CsvReader::open(&path, &["customer"], &["value"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no column `customer`"), "{err}");
    }

    #[test]
    fn binary_bytes_are_refused_on_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        let error = |content: &[u8]| {
            std::fs::write(&path, content).unwrap();
            let mut reader = CsvReader::open(&path, &["customer"], &[]).unwrap();
            loop {
                if let Err(e) = reader.next_record().expect("an error before the end") {
                    break e.to_string();
                }
            }
        };
        let nul = error(b"customer\n1\n2\x00\n");
        assert!(
            nul.ends_with("in.csv:3: a NUL byte: this is not a text file (expected lines of text)"),
            "{nul}"
        );
        let latin1 = error(b"customer\r\nJos\xe9\r\n");
        assert!(
            latin1.ends_with("in.csv:2: bytes that are not UTF-8: expected CSV text in UTF-8"),
            "{latin1}"
        );
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_row(&["a,b", "c"]).unwrap();
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_row(&["a,b", "c"]).unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "\"a,b\",c\n");
    }
}
