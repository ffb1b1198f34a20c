//! Text files: reading them (binary files refused, a UTF-8 BOM dropped), splitting lines into
//! fields, the one rule for reading an id, a timestamp or a rating from text, and how text from
//! a file is shown in an error message.

use crate::keys::BadKey;
use ember_spec::lines::{self, LineLimit, TextError};
use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use crate::encoding::{Decoded, Encoding, decode};
use crate::{DataError, Result};

/// At most this many characters of a value from a file are shown in a message.
const SHOWN_CHARS: usize = 40;

/// Text from a data file as an error message shows it: control characters (ANSI escapes
/// included), invisible formatting characters (bidi overrides, zero-width spaces, BOMs) and
/// backslashes escaped the way Rust writes them (`\u{1b}`, `\t`, `\\`), and anything past 40
/// characters cut with `…`. A file must not be able to drive the terminal that shows the
/// message, nor flood it.
pub(crate) fn shown(value: &str) -> String {
    shown_cut(value, SHOWN_CHARS)
}

/// [`shown`] with another length limit (for the Parquet reader's own messages).
pub(crate) fn shown_cut(value: &str, limit: usize) -> String {
    let mut out = String::with_capacity(value.len().min(4 * limit) + 3);
    for (n, c) in value.chars().enumerate() {
        if n == limit {
            out.push('…');
            break;
        }
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || is_invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Format characters that change how the rest of a line is shown (Unicode bidi controls,
/// zero-width characters, line and paragraph separators, the BOM).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Reads a whole UTF-8 text file of a format whose every field ember reads: a byte that is not
/// UTF-8 is refused with its line and column. See [`read_decoded`].
pub(crate) fn read_text(path: &Path, limit: LineLimit) -> Result<String> {
    let decoded = read_decoded(path, limit, Encoding::Utf8)?;
    match decoded.invalid.first() {
        Some(bad) => Err(bad.error(path, None, "")),
        None => Ok(decoded.text),
    }
}

/// Reads a whole text file in `encoding`: I/O errors become [`DataError::Io`], a directory is
/// refused, and each line is checked as it is read ([`lines::read_all`]): a NUL byte is
/// refused as binary and a line longer than `limit` is refused with its line, so that a file
/// without line breaks (`/dev/zero`) stops at once instead of filling memory. A leading UTF-8
/// BOM is dropped. In UTF-8, bytes that are not UTF-8 are replaced and listed, for the reader
/// to refuse those in the fields it reads.
pub(crate) fn read_decoded(path: &Path, limit: LineLimit, encoding: Encoding) -> Result<Decoded> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if metadata.is_dir() {
        return Err(DataError::NotAFile {
            path: path.to_owned(),
            kind: "a directory",
        });
    }
    let bytes = lines::read_all(file, limit, metadata.len()).map_err(|e| match e {
        TextError::Io(source) => io(source),
        e => DataError::Parse {
            path: path.to_owned(),
            line: e.line().unwrap_or(1),
            message: e.to_string(),
        },
    })?;
    Ok(decode(bytes, encoding))
}

/// What a field is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A user or item id: an integer.
    Id,
    /// A timestamp: an integer (only its order matters).
    Timestamp,
    /// A rating: a finite number.
    Rating,
    /// A weight: a finite number, 0 or more.
    Weight,
}

impl Expect {
    fn noun(self) -> &'static str {
        match self {
            Expect::Id => "an integer id",
            Expect::Timestamp => "an integer",
            Expect::Rating => "a finite number",
            Expect::Weight => "a finite number, 0 or more",
        }
    }
}

/// Why a value is not what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Nothing there (an empty field, a null).
    Empty,
    /// Not a number at all.
    Malformed,
    /// A number with a fractional part where an integer is read.
    Fraction,
    /// An integer outside `i64`.
    OutOfRange,
    /// A float beyond ±2^53, where floats no longer hold every integer.
    Inexact,
    /// NaN or infinite (or, for a rating or a weight, beyond `f32`).
    NotFinite,
    /// Below 0 where a weight is read.
    Negative,
}

/// The message for `what` (`user`, `item`, `rating`, …) holding `value` (as the file wrote
/// it) when `expect` was expected.
pub(crate) fn bad_value(what: &str, expect: Expect, value: &str, bad: Bad) -> String {
    let noun = expect.noun();
    let value = shown(value.trim());
    match bad {
        Bad::Empty => format!("{what} is empty: expected {noun}"),
        Bad::Malformed if matches!(expect, Expect::Rating | Expect::Weight) => {
            format!("{what} `{value}` is not a number")
        }
        Bad::Malformed => format!("{what} `{value}` is not {noun}"),
        Bad::Fraction => format!("{what} `{value}` is not {noun}: it has a fractional part"),
        Bad::OutOfRange => format!(
            "{what} `{value}` is not {noun} ember can hold: it lies outside the 64-bit range \
             ({} to {})",
            i64::MIN,
            i64::MAX
        ),
        Bad::Inexact => format!(
            "{what} `{value}` is not {noun} ember can hold exactly: a float beyond ±2^53 \
             (9007199254740992) no longer holds every integer; store the column as integers"
        ),
        Bad::NotFinite if matches!(expect, Expect::Rating | Expect::Weight) => format!(
            "{what} `{value}` is not {noun}: NaN, infinities and values beyond ±3.4e38 \
             ({what}s are 32-bit floats) are refused"
        ),
        Bad::Negative => format!(
            "{what} `{value}` is negative: weights (counts, quantities, spend) must be 0 or more"
        ),
        Bad::NotFinite => format!("{what} `{value}` is not {noun}: NaN and infinities are refused"),
    }
}

/// The message for a user or item key field (`what`) that is not a key of its column.
pub(crate) fn bad_key(what: &str, value: &str, bad: BadKey) -> String {
    match bad {
        BadKey::Empty => format!("{what} is empty: every interaction needs its {what} key"),
        BadKey::NotInteger(bad) => format!(
            "{}; the keys are declared integers (key_type = \"integer\"): set key_type = \"string\" \
             for keys such as `C-000123`",
            bad_value(what, Expect::Id, value, bad)
        ),
        BadKey::NotIntegerLike(bad) => format!(
            "{}; if the keys are codes rather than numbers, set key_type = \"string\"",
            bad_value(what, Expect::Id, value, bad)
        ),
    }
}

/// Reads an integer written in decimal (`42`, `-7`, `+7`), also with a zero fraction (`42.0`,
/// `42.`: what a float column exported to text looks like). Surrounding whitespace is ignored.
/// Anything else (a fraction, an exponent, hex, a value outside `i64`) is refused, never
/// rounded or wrapped.
pub(crate) fn parse_integer(field: &str) -> Result<i64, Bad> {
    let field = field.trim();
    if field.is_empty() {
        return Err(Bad::Empty);
    }
    let (whole, fraction) = match field.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (field, None),
    };
    let digits = whole.strip_prefix(['+', '-']).unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Bad::Malformed);
    }
    if let Some(fraction) = fraction {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Bad::Malformed);
        }
        if fraction.bytes().any(|b| b != b'0') {
            return Err(Bad::Fraction);
        }
    }
    // Only digits and a sign are left: the one way this fails is overflow.
    whole.parse::<i64>().map_err(|_| Bad::OutOfRange)
}

/// Reads a rating: any number Rust's float syntax takes, which must be finite as an `f32`.
pub(crate) fn parse_rating(field: &str) -> Result<f32, Bad> {
    let field = field.trim();
    if field.is_empty() {
        return Err(Bad::Empty);
    }
    let value = field.parse::<f64>().map_err(|_| Bad::Malformed)?;
    rating_from_f64(value)
}

/// Reads a weight: a number as [`parse_rating`] reads one, which must also be 0 or more.
pub(crate) fn parse_weight(field: &str) -> Result<f32, Bad> {
    parse_rating(field).and_then(checked_weight)
}

/// A weight from a float: finite within `f32`'s range, and 0 or more.
pub(crate) fn weight_from_f64(value: f64) -> Result<f32, Bad> {
    rating_from_f64(value).and_then(checked_weight)
}

fn checked_weight(weight: f32) -> Result<f32, Bad> {
    if weight < 0.0 {
        Err(Bad::Negative)
    } else {
        Ok(weight)
    }
}

/// A rating from a float: finite, and within `f32`'s range.
pub(crate) fn rating_from_f64(value: f64) -> Result<f32, Bad> {
    let rating = value as f32;
    if rating.is_finite() {
        Ok(rating)
    } else {
        Err(Bad::NotFinite)
    }
}

/// Parses one id field of a line, or says which line and why not.
pub(crate) fn parse_id(path: &Path, line: usize, what: &str, field: &str) -> Result<i64> {
    parse_integer(field).map_err(|bad| DataError::Parse {
        path: path.to_owned(),
        line,
        message: bad_value(what, Expect::Id, field, bad),
    })
}

/// The non-empty lines of a text with their 1-based numbers (`\r\n` endings work).
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Splits a line on `separator`; a run of whitespace counts as one separator when it is a
/// space.
pub(crate) fn fields<'a>(line: &'a str, separator: &'a str) -> Vec<&'a str> {
    if separator == " " {
        line.split_whitespace().collect()
    } else {
        line.split(separator).collect()
    }
}

/// Separators a line may hold instead of the configured one, for the hint of a message.
const OTHER_SEPARATORS: [(&str, &str); 6] = [
    ("\t", "tabs"),
    (",", "commas"),
    (";", "semicolons"),
    ("|", "`|`"),
    ("::", "`::`"),
    (" ", "spaces"),
];

/// When `line` holds another common separator than `separator`, a hint saying so (starting
/// with `; `), else an empty string.
pub(crate) fn separator_hint(line: &str, separator: &str) -> String {
    OTHER_SEPARATORS
        .iter()
        .filter(|(s, _)| !separator.contains(s) && !s.contains(separator))
        .find(|(s, _)| line.trim().contains(s))
        .map(|(s, name)| {
            format!("; the line holds {name}: is the separator {s:?} (`separator` in [data])?")
        })
        .unwrap_or_default()
}

/// The 0-based field of `record` (a record as [`Records`] reads it) that holds its byte
/// `offset`.
pub(crate) fn field_at(record: &str, offset: usize, separator: &str, quotes: bool) -> usize {
    let before = &record[..offset];
    if separator == " " {
        // Fields are the runs of non-space: a byte inside one belongs to the last run begun.
        let runs = before.split_whitespace().count();
        let inside = before.ends_with(|c: char| !c.is_whitespace());
        return runs - usize::from(inside);
    }
    if !quotes {
        return before.matches(separator).count();
    }
    let mut quoted = false;
    let mut field = 0;
    for c in before.chars() {
        match c {
            // `""` inside a quoted field toggles twice: it stays quoted.
            '"' => quoted = !quoted,
            ',' if !quoted => field += 1,
            _ => {}
        }
    }
    field
}

/// The records (lines) of a delimited text, split into fields. Blank lines are skipped. With
/// `quotes` (comma-separated files), a field that starts with `"` runs to the next lone `"`
/// (`""` is a quote inside it) and may hold separators and line breaks.
pub(crate) struct Records<'a> {
    text: &'a str,
    /// Byte offset of the next line.
    at: usize,
    /// 1-based number of the line at `at`.
    line: usize,
    separator: &'a str,
    quotes: bool,
}

impl<'a> Records<'a> {
    pub(crate) fn new(text: &'a str, separator: &'a str, quotes: bool) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
            separator,
            quotes,
        }
    }

    /// The next line: reads its fields into `out` and returns its 1-based number, `None` at
    /// the end of the text, or the error of a quoted field that never closes.
    pub(crate) fn next_into(
        &mut self,
        path: &Path,
        out: &mut Vec<Cow<'a, str>>,
    ) -> Option<Result<(usize, &'a str)>> {
        loop {
            if self.at >= self.text.len() {
                return None;
            }
            let rest = &self.text[self.at..];
            let end = rest.find('\n').unwrap_or(rest.len());
            let raw = &rest[..end];
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let number = self.line;
            if line.trim().is_empty() {
                self.advance(end);
                continue;
            }
            out.clear();
            if self.quotes && line.contains('"') {
                return Some(self.quoted_into(path, out));
            }
            self.advance(end);
            if self.separator == " " {
                out.extend(line.split_whitespace().map(Cow::Borrowed));
            } else {
                out.extend(line.split(self.separator).map(Cow::Borrowed));
            }
            return Some(Ok((number, line)));
        }
    }

    /// Moves past a line of `end` bytes and its line break.
    fn advance(&mut self, end: usize) {
        self.at += end + 1;
        self.line += 1;
    }

    /// Reads a record with quoted fields, which may run over several lines.
    fn quoted_into(
        &mut self,
        path: &Path,
        out: &mut Vec<Cow<'a, str>>,
    ) -> Result<(usize, &'a str)> {
        let text = self.text;
        let bytes = text.as_bytes();
        let sep = self.separator.as_bytes();
        let first_line = self.line;
        let start = self.at;
        let mut i = self.at;
        loop {
            // One field starting at `i`.
            if bytes.get(i) == Some(&b'"') {
                let opened = self.line;
                let mut value = String::new();
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        None => {
                            return Err(DataError::Parse {
                                path: path.to_owned(),
                                line: opened,
                                message: "a quoted field is never closed: expected a `\"` \
                                          before the end of the file"
                                    .into(),
                            });
                        }
                        Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                            value.push('"');
                            j += 2;
                        }
                        Some(b'"') => {
                            j += 1;
                            break;
                        }
                        Some(_) => {
                            // Copy up to the next quote in one piece (char boundaries hold:
                            // `"` is ASCII).
                            let next = text[j..].find('"').map_or(text.len(), |k| j + k);
                            let piece = &text[j..next];
                            self.line += piece.matches('\n').count();
                            value.push_str(piece);
                            j = next;
                        }
                    }
                }
                // After the closing quote: spaces, then a separator or the end of the line.
                while matches!(bytes.get(j), Some(b' ' | b'\t' | b'\r')) {
                    j += 1;
                }
                out.push(Cow::Owned(value));
                match bytes.get(j) {
                    None | Some(b'\n') => {
                        i = j;
                        break;
                    }
                    _ if bytes[j..].starts_with(sep) => i = j + sep.len(),
                    Some(_) => {
                        let found = text[j..].chars().next().map(String::from);
                        return Err(DataError::Parse {
                            path: path.to_owned(),
                            line: self.line,
                            message: format!(
                                "a quoted field is followed by `{}`: expected {:?} or the end \
                                 of the line",
                                shown(&found.unwrap_or_default()),
                                self.separator
                            ),
                        });
                    }
                }
            } else {
                let end = text[i..].find('\n').map_or(text.len(), |k| i + k);
                let field_end = text[i..end].find(self.separator).map_or(end, |k| i + k);
                let field = text[i..field_end].trim_end_matches('\r');
                out.push(Cow::Borrowed(field));
                if field_end == end {
                    i = end;
                    break;
                }
                i = field_end + sep.len();
            }
        }
        // `i` is at the line break ending the record (or the end of the text).
        self.at = i + 1;
        self.line += 1;
        let record = text[start..i.min(text.len())].trim_end_matches('\r');
        Ok((first_line, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_control_characters_and_cuts() {
        assert_eq!(shown("plain 42"), "plain 42");
        assert_eq!(shown("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(shown("a\tb\r\n"), "a\\tb\\r\\n");
        assert_eq!(shown("\u{202e}abc"), "\\u{202e}abc");
        assert_eq!(shown("back\\slash"), "back\\\\slash");
        let long = "x".repeat(100);
        assert_eq!(shown(&long), format!("{}…", "x".repeat(40)));
    }

    #[test]
    fn integers_are_whole_and_in_range() {
        assert_eq!(parse_integer(" 42 "), Ok(42));
        assert_eq!(parse_integer("-7"), Ok(-7));
        assert_eq!(parse_integer("+7"), Ok(7));
        assert_eq!(parse_integer("3.0"), Ok(3));
        assert_eq!(parse_integer("3."), Ok(3));
        assert_eq!(parse_integer("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_integer("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_integer("9223372036854775808"), Err(Bad::OutOfRange));
        assert_eq!(parse_integer("3.5"), Err(Bad::Fraction));
        assert_eq!(parse_integer(""), Err(Bad::Empty));
        for bad in [
            "1e3", "0x10", "abc", ".5", "-", "1.0.0", "١٢", "3.0e0", "NaN",
        ] {
            assert_eq!(parse_integer(bad), Err(Bad::Malformed), "{bad}");
        }
    }

    #[test]
    fn ratings_are_finite_f32() {
        assert_eq!(parse_rating("4.5"), Ok(4.5));
        assert_eq!(parse_rating("1e3"), Ok(1000.0));
        for bad in ["NaN", "nan", "inf", "-inf", "infinity", "1e39"] {
            assert_eq!(parse_rating(bad), Err(Bad::NotFinite), "{bad}");
        }
        assert_eq!(parse_rating("five"), Err(Bad::Malformed));
        assert_eq!(parse_rating(" "), Err(Bad::Empty));
    }

    #[test]
    fn field_at_counts_the_separators_before_a_byte() {
        assert_eq!(field_at("1,2,abc", 5, ",", false), 2);
        assert_eq!(field_at("1,\"a,b\",c", 5, ",", true), 1);
        assert_eq!(field_at("1,\"a,\"\"b\",c", 10, ",", true), 2);
        assert_eq!(field_at("1::2::x", 6, "::", false), 2);
        assert_eq!(field_at("  1   22 x", 6, " ", false), 1);
        assert_eq!(field_at("  1   22 x", 9, " ", false), 2);
        assert_eq!(field_at("  1   22 x", 7, " ", false), 1);
    }

    #[test]
    fn quoted_fields_hold_separators_quotes_and_line_breaks() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\n\n\"multi\nline\",2,3\r\nlast,\"\",x";
        let path = Path::new("t.csv");
        let mut records = Records::new(text, ",", true);
        let mut out = Vec::new();
        let mut lines = Vec::new();
        while let Some(record) = records.next_into(path, &mut out) {
            let (line, _) = record.unwrap();
            lines.push((line, out.iter().map(|f| f.to_string()).collect::<Vec<_>>()));
        }
        assert_eq!(
            lines,
            vec![
                (1, vec!["a".into(), "b,c".into(), "say \"hi\"".into()]),
                (3, vec!["multi\nline".into(), "2".into(), "3".into()]),
                (5, vec!["last".into(), "".into(), "x".into()]),
            ]
        );
        let mut open = Records::new("1,\"2\n3,4\n", ",", true);
        let err = open.next_into(path, &mut out).unwrap().unwrap_err();
        assert!(
            err.to_string()
                .contains("t.csv:1: a quoted field is never closed")
        );
    }
}
