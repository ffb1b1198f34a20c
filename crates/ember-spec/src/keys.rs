//! User and item keys as the data has them: integers (`196`, a customer number) or strings
//! (`C-000123`, a SKU such as `SHAMPOO-250ML`, a zero-padded SAP material number `000123`).
//!
//! Inside ember every user and item is a dense `u32`; a key is what the outside world calls it.
//! A run reads its keys as one of two kinds, per column ([`KeyKind`]), and every output and
//! every input that names users or items speaks that kind: `000123` read as a string is never
//! the number 123, and a file of integer keys gives the same results as before keys could be
//! strings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a column of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// 64-bit signed integers.
    Integer,
    /// Strings (UTF-8), compared byte for byte.
    String,
}

impl KeyKind {
    /// `integer` or `string`, as configs and messages write it.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Integer => "integer",
            KeyKind::String => "string",
        }
    }
}

/// What a config declares of a key column (`[data] key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// The type the source has: a typed column (Parquet, a database) keeps its type; a text
    /// column is integers when every key is written as one without leading zeros, else
    /// strings.
    #[default]
    Auto,
    /// Integers: a key that is not one is refused, naming its line or row.
    Integer,
    /// Strings, whatever they look like: `000123` stays `000123`.
    String,
}

impl KeyType {
    /// `true` for [`KeyType::Auto`], the default (configs leave it out).
    pub fn is_auto(&self) -> bool {
        *self == KeyType::Auto
    }
}

/// One user or item key.
///
/// Keys of one column are all of one kind; ordering across kinds (integers first) exists only
/// so that keys can be sorted and is never relied upon.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An integer key.
    Integer(i64),
    /// A string key.
    String(String),
}

impl Key {
    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            Key::Integer(_) => KeyKind::Integer,
            Key::String(_) => KeyKind::String,
        }
    }

    /// Reads `text` (surrounding whitespace ignored) as a key of `kind`. An integer key is
    /// written in decimal (`42`, `-7`, `+7`); `None` when `text` is empty or, for an integer
    /// kind, not an integer `i64` holds.
    pub fn parse(kind: KeyKind, text: &str) -> Option<Key> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match kind {
            KeyKind::Integer => text.parse::<i64>().ok().map(Key::Integer),
            KeyKind::String => Some(Key::String(text.to_owned())),
        }
    }

    /// The integer, for an integer key.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Key::Integer(key) => Some(*key),
            Key::String(_) => None,
        }
    }
}

impl fmt::Display for Key {
    /// The key as the data wrote it: an integer in decimal, a string as it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Integer(key) => write!(f, "{key}"),
            Key::String(key) => f.write_str(key),
        }
    }
}

impl From<i64> for Key {
    fn from(key: i64) -> Self {
        Key::Integer(key)
    }
}

impl From<&str> for Key {
    fn from(key: &str) -> Self {
        Key::String(key.to_owned())
    }
}

impl Serialize for Key {
    /// An integer key as a JSON number, a string key as a JSON string.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Integer(key) => serializer.serialize_i64(*key),
            Key::String(key) => serializer.serialize_str(key),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    /// A JSON integer as an integer key, a JSON string as a string key.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Integer(i64),
            String(String),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Integer(key) => Key::Integer(key),
            Either::String(key) => Key::String(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_padded_codes_stay_strings_and_integers_parse_as_integers() {
        assert_eq!(
            Key::parse(KeyKind::String, " 000123 "),
            Some(Key::String("000123".into()))
        );
        assert_eq!(
            Key::parse(KeyKind::Integer, "000123"),
            Some(Key::Integer(123))
        );
        assert_eq!(Key::parse(KeyKind::Integer, "+7"), Some(Key::Integer(7)));
        assert_eq!(Key::parse(KeyKind::Integer, "C-1"), None);
        assert_eq!(Key::parse(KeyKind::Integer, "9223372036854775808"), None);
        assert_eq!(Key::parse(KeyKind::String, "  "), None);
    }

    #[test]
    fn keys_show_as_written() {
        assert_eq!(Key::Integer(-42).to_string(), "-42");
        assert_eq!(Key::from("SHAMPOO-250ML").to_string(), "SHAMPOO-250ML");
    }
}
