//! Text encodings of data files: UTF-8 (the default) and Latin-1, which many exports from older
//! systems write. A UTF-8 file's bytes that are not UTF-8 are kept track of, so that a reader
//! refuses one in a field it reads (naming the line and the column) and lets one pass in a
//! field it does not read (a Latin-1 title beside integer ids).

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::DataError;

/// The character encoding of a text file (`encoding` of a delimited source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 (ASCII is UTF-8); a leading byte order mark is dropped.
    #[default]
    Utf8,
    /// ISO 8859-1: each byte is one character, U+0000 to U+00FF.
    Latin1,
}

/// A text file's contents, decoded.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The text, each byte sequence that is not UTF-8 replaced by U+FFFD.
    pub(crate) text: String,
    /// Those sequences, in the order of the file.
    pub(crate) invalid: Vec<InvalidByte>,
}

/// A byte sequence that is not UTF-8, in a file read as UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidByte {
    /// Where its U+FFFD stands in the decoded text (a byte offset).
    pub(crate) at: usize,
    /// Its first byte.
    pub(crate) byte: u8,
    /// Its 1-based line in the file.
    pub(crate) line: usize,
    /// Its 1-based column in that line, counted in bytes of the file.
    pub(crate) column: usize,
}

impl InvalidByte {
    /// The error for this byte of `path`: `field` names the field it is in when the format
    /// has several, and `hint` follows the message.
    pub(crate) fn error(&self, path: &Path, field: Option<&str>, hint: &str) -> DataError {
        let field = field
            .map(|f| format!(", in the {f} field"))
            .unwrap_or_default();
        DataError::Parse {
            path: path.to_owned(),
            line: self.line,
            message: format!(
                "not valid UTF-8 (byte 0x{:02X} at column {}{field}){hint}",
                self.byte, self.column
            ),
        }
    }
}

/// What the error for a non-UTF-8 byte in a delimited file adds.
pub(crate) const LATIN1_HINT: &str =
    "; if the file is Latin-1, set encoding = \"latin1\" in [data]";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a file's `bytes` as `encoding`.
pub(crate) fn decode(bytes: Vec<u8>, encoding: Encoding) -> Decoded {
    match encoding {
        Encoding::Latin1 => Decoded {
            text: bytes.iter().map(|&b| char::from(b)).collect(),
            invalid: Vec::new(),
        },
        Encoding::Utf8 => {
            let skip = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
            match String::from_utf8(bytes) {
                Ok(mut text) => {
                    text.drain(..skip);
                    Decoded {
                        text,
                        invalid: Vec::new(),
                    }
                }
                Err(e) => decode_broken_utf8(&e.into_bytes()[skip..], skip),
            }
        }
    }
}

/// Decodes UTF-8 that holds invalid sequences, recording each; `skip` bytes of the file come
/// before `bytes` (the byte order mark), for the columns.
fn decode_broken_utf8(bytes: &[u8], skip: usize) -> Decoded {
    let mut text = String::with_capacity(bytes.len() + 16);
    let mut invalid = Vec::new();
    let (mut line, mut line_start, mut offset) = (1, 0, skip);
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        if let Some(last) = valid.rfind('\n') {
            line += valid.bytes().filter(|&b| b == b'\n').count();
            line_start = offset + last + 1;
        }
        offset += valid.len();
        text.push_str(valid);
        // An invalid sequence never holds a line break: `\n` is ASCII.
        if let Some(&byte) = chunk.invalid().first() {
            invalid.push(InvalidByte {
                at: text.len(),
                byte,
                line,
                column: offset - line_start + 1,
            });
            text.push(char::REPLACEMENT_CHARACTER);
            offset += chunk.invalid().len();
        }
    }
    Decoded { text, invalid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_maps_each_byte_to_its_code_point() {
        let all: Vec<u8> = (0..=255).collect();
        let decoded = decode(all, Encoding::Latin1);
        assert!(decoded.invalid.is_empty());
        let chars: Vec<u32> = decoded.text.chars().map(u32::from).collect();
        assert_eq!(chars, (0..=255).collect::<Vec<u32>>());
        assert_eq!(decode(b"Jos\xe9".to_vec(), Encoding::Latin1).text, "José");
    }

    #[test]
    fn broken_utf8_is_replaced_and_located() {
        let decoded = decode(
            b"\xEF\xBB\xBFid,name\n1,Jos\xe9\n2,caf\xc3\xa9 \xff\xfe\n".to_vec(),
            Encoding::Utf8,
        );
        assert_eq!(
            decoded.text,
            "id,name\n1,Jos\u{fffd}\n2,café \u{fffd}\u{fffd}\n"
        );
        let found: Vec<(usize, u8, usize, usize)> = decoded
            .invalid
            .iter()
            .map(|b| (b.at, b.byte, b.line, b.column))
            .collect();
        // Line 1 holds the 3 bytes of the byte order mark: its columns count them.
        assert_eq!(
            found,
            [(13, 0xE9, 2, 6), (25, 0xFF, 3, 9), (28, 0xFE, 3, 10)]
        );
        for b in &decoded.invalid {
            assert!(decoded.text[b.at..].starts_with('\u{fffd}'));
        }
        let valid = decode(b"\xEF\xBB\xBFa\n".to_vec(), Encoding::Utf8);
        assert_eq!((valid.text.as_str(), valid.invalid.len()), ("a\n", 0));
    }
}
