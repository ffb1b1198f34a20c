//! How ember reads lines of text from a file it is given (interactions, customer lists,
//! outcomes, actions): never more than a line's worth at a time before checking it.
//!
//! A text reader that buffers until it meets a line break will buffer forever on a file that
//! has none: `/dev/zero` or a binary file fed by mistake grew until the kernel killed the
//! process. Both readers here read a line at a time, never more than a byte past a limit, and
//! stop at the first NUL byte (no text file has one) or at the first line longer than the
//! limit, naming the line. Training (ember-data) and the decision commands (ember-decide) read through this one
//! module so that they agree on the limit, its setting and its messages.

use std::io::{self, BufRead, Read};

/// The longest line accepted unless configured otherwise: 1 MiB. Interaction files hold lines
/// of tens of bytes, and the longest legitimate lines ember meets (a customer file with free-text
/// attributes, an actions table with a long item list) are a few kilobytes; 1 MiB is far above
/// both, and small enough that refusing a file without line breaks costs a millisecond and a
/// megabyte.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// The environment variable that sets the limit for every text reader of ember (in bytes).
pub const MAX_LINE_BYTES_VAR: &str = "EMBER_MAX_LINE_BYTES";

/// Bytes read from the file at a time.
const CHUNK: usize = 64 << 10;

/// A limit on the length of a line, and the setting a message names so that the reader knows
/// what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineLimit {
    /// The longest line accepted, in bytes (its line break not counted).
    pub bytes: usize,
    /// The setting that sets it (`data.max_line_bytes`, `EMBER_MAX_LINE_BYTES`).
    pub setting: &'static str,
}

/// A value of `EMBER_MAX_LINE_BYTES` that is not a positive number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{MAX_LINE_BYTES_VAR} = `{0}`: expected a positive number of bytes, e.g. 4194304")]
pub struct BadLineLimit(pub String);

impl LineLimit {
    /// The limit `EMBER_MAX_LINE_BYTES` sets, else the default (1 MiB) named as `setting`.
    pub fn from_env(setting: &'static str) -> Result<Self, BadLineLimit> {
        Self::from_value(std::env::var(MAX_LINE_BYTES_VAR).ok().as_deref(), setting)
    }

    /// The limit a value of `EMBER_MAX_LINE_BYTES` sets (`None`: unset), else the default.
    pub fn from_value(value: Option<&str>, setting: &'static str) -> Result<Self, BadLineLimit> {
        match value {
            None => Ok(Self {
                bytes: DEFAULT_MAX_LINE_BYTES,
                setting,
            }),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(bytes) if bytes > 0 => Ok(Self {
                    bytes,
                    setting: MAX_LINE_BYTES_VAR,
                }),
                _ => Err(BadLineLimit(text.chars().take(40).collect())),
            },
        }
    }
}

/// Why a text file was not read.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The operating system's error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A NUL byte: the file is binary.
    #[error("a NUL byte: this is not a text file (expected lines of text)")]
    Nul {
        /// The 1-based line it is on.
        line: usize,
    },
    /// A line longer than the limit.
    #[error(
        "a line longer than {} bytes (the limit is {}): is this a text file?",
        limit.bytes,
        limit.setting
    )]
    LongLine {
        /// The 1-based line.
        line: usize,
        /// The limit it broke.
        limit: LineLimit,
    },
}

impl TextError {
    /// The 1-based line the error is on (`None` for an I/O error).
    pub fn line(&self) -> Option<usize> {
        match self {
            TextError::Io(_) => None,
            TextError::Nul { line } | TextError::LongLine { line, .. } => Some(*line),
        }
    }
}

/// Reads the next line of `reader` into the end of `out` (its `\n` kept): at most a byte past
/// `limit`, so that a line without end costs the limit, not the memory. Returns the bytes read
/// (0 at the end of the text), after checking them.
fn read_line(
    reader: &mut impl BufRead,
    out: &mut Vec<u8>,
    line: usize,
    limit: LineLimit,
) -> Result<usize, TextError> {
    let start = out.len();
    let read = reader.take(limit.bytes as u64 + 1).read_until(b'\n', out)?;
    let text = &out[start..];
    if text.contains(&0) {
        return Err(TextError::Nul { line });
    }
    if text.len() - usize::from(text.last() == Some(&b'\n')) > limit.bytes {
        return Err(TextError::LongLine { line, limit });
    }
    Ok(read)
}

/// Reads all of `reader`, line by line, refusing a NUL byte or a line longer than `limit`
/// as soon as it is read: a file without line breaks costs the limit, not the memory.
/// `expected` bytes (the file's size, when known) are reserved first.
pub fn read_all(reader: impl Read, limit: LineLimit, expected: u64) -> Result<Vec<u8>, TextError> {
    let mut reader = io::BufReader::with_capacity(CHUNK, reader);
    let mut out = Vec::new();
    // A size that cannot be reserved is only a hint lost.
    let _ = out.try_reserve_exact(usize::try_from(expected).unwrap_or(0));
    let mut line = 1;
    while read_line(&mut reader, &mut out, line, limit)? > 0 {
        line += 1;
    }
    Ok(out)
}

/// The lines of a text, read one at a time, each checked as it is read.
pub struct Lines<R> {
    reader: R,
    limit: LineLimit,
    /// The line the next call returns.
    line: usize,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `reader`, none longer than `limit`.
    pub fn new(reader: R, limit: LineLimit) -> Self {
        Self {
            reader,
            limit,
            line: 1,
        }
    }

    /// Reads the next line into `out` (its `\n` dropped, a `\r` before it kept) and returns
    /// its 1-based number; `None` at the end of the text.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Option<Result<usize, TextError>> {
        out.clear();
        let line = self.line;
        match read_line(&mut self.reader, out, line, self.limit) {
            Ok(0) => None,
            Ok(_) => {
                if out.last() == Some(&b'\n') {
                    out.pop();
                }
                self.line += 1;
                Some(Ok(line))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: LineLimit = LineLimit {
        bytes: 8,
        setting: "data.max_line_bytes",
    };

    fn lines_of(text: &[u8], limit: LineLimit) -> Result<Vec<(usize, String)>, TextError> {
        // A small buffer, so that lines arrive in several pieces.
        let mut lines = Lines::new(io::BufReader::with_capacity(3, text), limit);
        let mut out = Vec::new();
        let mut read = Vec::new();
        while let Some(line) = lines.next_into(&mut out) {
            read.push((line?, String::from_utf8(out.clone()).unwrap()));
        }
        Ok(read)
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_one_byte_more_fails_with_its_line() {
        let text = b"12345678\nabc\r\n\nxyz";
        assert_eq!(read_all(&text[..], LIMIT, 0).unwrap(), text);
        assert_eq!(
            lines_of(text, LIMIT).unwrap(),
            [
                (1, "12345678".into()),
                (2, "abc\r".into()),
                (3, String::new()),
                (4, "xyz".into())
            ]
        );
        let long = b"ok\n123456789\n";
        for err in [
            read_all(&long[..], LIMIT, 0).unwrap_err(),
            lines_of(long, LIMIT).unwrap_err(),
        ] {
            assert_eq!(err.line(), Some(2));
            assert_eq!(
                err.to_string(),
                "a line longer than 8 bytes (the limit is data.max_line_bytes): is this a text \
                 file?"
            );
        }
    }

    #[test]
    fn a_nul_byte_is_refused_on_its_line() {
        let text = b"a,b\nc,\0\n";
        for err in [
            read_all(&text[..], LIMIT, 0).unwrap_err(),
            lines_of(text, LIMIT).unwrap_err(),
        ] {
            assert!(matches!(err, TextError::Nul { line: 2 }), "{err:?}");
        }
    }

    #[test]
    fn an_endless_stream_stops_at_the_limit() {
        // `io::repeat` never ends, as /dev/zero: the reader must stop on what it has seen.
        let err = read_all(io::repeat(0), LIMIT, 0).unwrap_err();
        assert!(matches!(err, TextError::Nul { line: 1 }), "{err:?}");
        let err = read_all(io::repeat(b'x'), LIMIT, 0).unwrap_err();
        assert!(
            matches!(err, TextError::LongLine { line: 1, .. }),
            "{err:?}"
        );
        let mut lines = Lines::new(io::BufReader::new(io::repeat(b'x')), LIMIT);
        let err = lines.next_into(&mut Vec::new()).unwrap().unwrap_err();
        assert!(
            matches!(err, TextError::LongLine { line: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn the_limit_comes_from_the_variable_or_the_default() {
        let default = LineLimit::from_value(None, "data.max_line_bytes").unwrap();
        assert_eq!(
            (default.bytes, default.setting),
            (1_048_576, "data.max_line_bytes")
        );
        let set = LineLimit::from_value(Some(" 4096 "), "data.max_line_bytes").unwrap();
        assert_eq!((set.bytes, set.setting), (4096, "EMBER_MAX_LINE_BYTES"));
        for bad in ["0", "-1", "1M", ""] {
            assert_eq!(
                LineLimit::from_value(Some(bad), "x")
                    .unwrap_err()
                    .to_string(),
                format!(
                    "EMBER_MAX_LINE_BYTES = `{bad}`: expected a positive number of bytes, e.g. 4194304"
                )
            );
        }
    }
}
