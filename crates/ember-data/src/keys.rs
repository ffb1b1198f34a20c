//! Key columns as a source has them: integers, or strings coded as integers while reading.
//!
//! A string key column is interned as it is read: each distinct string is stored once, and
//! every row holds its code, an `i64` like an integer key. Codes are the ranks of the strings in
//! byte order, so that codes sort as their strings do: the id maps, which number keys in
//! ascending order, then give string keys the same dense ids whatever the file's order, and
//! everything between reading and output (preprocessing, splits, the known pairs) works on codes
//! exactly as on integer keys. Only the ends of a run turn codes back into keys
//! ([`KeyDictionary::key`]). Memory: one `i64` per row and each distinct string once, as for
//! integer keys plus the distinct strings.

use std::collections::HashMap;
use std::sync::Arc;

use ember_spec::{Key, KeyKind, KeyType};

use crate::text::{Bad, parse_integer};

/// How the codes of a key column ([`crate::Interactions::users`], `items`) read back as keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyDictionary {
    /// The codes are the integer keys themselves.
    #[default]
    Integers,
    /// Code `k` is the string `strings[k]`; strictly ascending by bytes.
    Strings(Arc<[String]>),
}

impl KeyDictionary {
    /// The kind of keys.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeyDictionary::Integers => KeyKind::Integer,
            KeyDictionary::Strings(_) => KeyKind::String,
        }
    }

    /// The key of `code`.
    pub fn key(&self, code: i64) -> Key {
        match self {
            KeyDictionary::Integers => Key::Integer(code),
            KeyDictionary::Strings(strings) => Key::String(strings[code as usize].clone()),
        }
    }

    /// The code of `key`, when the column holds it.
    pub fn code(&self, key: &Key) -> Option<i64> {
        match (self, key) {
            (KeyDictionary::Integers, Key::Integer(key)) => Some(*key),
            (KeyDictionary::Strings(strings), Key::String(key)) => strings
                .binary_search_by(|s| s.as_str().cmp(key))
                .ok()
                .map(|k| k as i64),
            _ => None,
        }
    }

    /// The code of a key written as `text` (whitespace around it ignored).
    pub fn code_of_text(&self, text: &str) -> Option<i64> {
        Key::parse(self.kind(), text).and_then(|key| self.code(&key))
    }
}

/// Why a field is not a key of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadKey {
    /// Empty (or only whitespace).
    Empty,
    /// Not an integer where the column is declared integer (`key_type = "integer"`).
    NotInteger(Bad),
    /// A number an undeclared column cannot take as an integer key (`2.5`, a value beyond 64
    /// bits): most likely a mistake in a column of integers, so refused rather than turning
    /// the whole column into strings.
    NotIntegerLike(Bad),
}

/// A key column being read, a field at a time. Declared integer columns parse every field as
/// an integer; declared string columns intern every field; undeclared (`auto`) columns start as
/// integers and turn to strings at the first field that is not a number (`C-000123`), or is an
/// integer written with a leading zero (`000123` is a code, not the number 123). A number that
/// is no integer key (`2.5`) is refused in an undeclared column.
#[derive(Debug)]
pub(crate) struct KeyColumn {
    declared: KeyType,
    codes: Vec<i64>,
    /// `Some` once the column holds strings: each distinct string and its code (in order of
    /// first appearance until [`KeyColumn::finish`] ranks them).
    interned: Option<HashMap<Box<str>, u32>>,
}

impl KeyColumn {
    pub(crate) fn new(declared: KeyType) -> Self {
        Self {
            declared,
            codes: Vec::new(),
            interned: (declared == KeyType::String).then(HashMap::new),
        }
    }

    /// Reads one field.
    pub(crate) fn push(&mut self, field: &str) -> Result<(), BadKey> {
        let field = field.trim();
        if field.is_empty() {
            return Err(BadKey::Empty);
        }
        if self.interned.is_none() {
            match parse_integer(field) {
                Ok(key) if self.declared == KeyType::Integer || !zero_padded(field) => {
                    self.codes.push(key);
                    return Ok(());
                }
                Err(bad) if self.declared == KeyType::Integer => {
                    return Err(BadKey::NotInteger(bad));
                }
                Err(bad) if bad != Bad::Malformed => return Err(BadKey::NotIntegerLike(bad)),
                _ => self.turn_to_strings(),
            }
        }
        let interned = self.interned.as_mut().expect("strings");
        let code = match interned.get(field) {
            Some(&code) => code,
            None => {
                let code = interned.len() as u32;
                interned.insert(field.into(), code);
                code
            }
        };
        self.codes.push(i64::from(code));
        Ok(())
    }

    /// Reads a key already typed as an integer (a typed column): as a string (in decimal) when
    /// the column is declared string.
    pub(crate) fn push_integer(&mut self, key: i64) {
        if self.interned.is_some() {
            self.push(&key.to_string())
                .expect("a decimal integer is not empty");
        } else {
            self.codes.push(key);
        }
    }

    /// The integers read so far become strings (in decimal): an undeclared column met its first
    /// key that is not an integer.
    fn turn_to_strings(&mut self) {
        let mut interned: HashMap<Box<str>, u32> = HashMap::new();
        for code in &mut self.codes {
            let text = code.to_string();
            let next = interned.len() as u32;
            *code = i64::from(*interned.entry(text.into()).or_insert(next));
        }
        self.interned = Some(interned);
    }

    /// The codes (string codes ranked in byte order) and their dictionary.
    pub(crate) fn finish(self) -> (Vec<i64>, KeyDictionary) {
        let Some(interned) = self.interned else {
            return (self.codes, KeyDictionary::Integers);
        };
        let mut strings: Vec<(Box<str>, u32)> = interned.into_iter().collect();
        strings.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut rank = vec![0i64; strings.len()];
        for (position, (_, code)) in strings.iter().enumerate() {
            rank[*code as usize] = position as i64;
        }
        let codes = self.codes.into_iter().map(|c| rank[c as usize]).collect();
        let strings: Arc<[String]> = strings.into_iter().map(|(s, _)| s.into()).collect();
        (codes, KeyDictionary::Strings(strings))
    }
}

/// `000123`, `-01`: digits with a leading zero, which an integer would drop.
fn zero_padded(field: &str) -> bool {
    let digits = field.strip_prefix(['+', '-']).unwrap_or(field);
    digits.len() > 1 && digits.starts_with('0') && digits.as_bytes()[1].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(declared: KeyType, fields: &[&str]) -> (Vec<i64>, KeyDictionary) {
        let mut column = KeyColumn::new(declared);
        for field in fields {
            column.push(field).unwrap();
        }
        column.finish()
    }

    #[test]
    fn undeclared_integer_columns_stay_integers() {
        let (codes, keys) = read(KeyType::Auto, &["196", " 7", "3.0", "0", "-2"]);
        assert_eq!(codes, vec![196, 7, 3, 0, -2]);
        assert_eq!(keys, KeyDictionary::Integers);
    }

    #[test]
    fn string_keys_get_codes_ranked_in_byte_order() {
        let (codes, keys) = read(KeyType::Auto, &["C-2", "C-10", "C-2", "B"]);
        // Byte order: "B" < "C-10" < "C-2".
        assert_eq!(codes, vec![2, 1, 2, 0]);
        assert_eq!(keys.key(1), Key::from("C-10"));
        assert_eq!(keys.code(&Key::from("C-2")), Some(2));
        assert_eq!(keys.code(&Key::from("C-3")), None);
        assert_eq!(keys.code(&Key::Integer(2)), None);
    }

    #[test]
    fn integers_read_before_the_first_string_become_their_decimal_strings() {
        let (codes, keys) = read(KeyType::Auto, &["12", "5", "SKU-1", "12"]);
        let KeyDictionary::Strings(strings) = &keys else {
            panic!("strings expected");
        };
        assert_eq!(&strings[..], ["12", "5", "SKU-1"]);
        assert_eq!(codes, vec![0, 1, 2, 0]);
    }

    #[test]
    fn zero_padded_codes_are_strings_unless_declared_integer() {
        let (_, keys) = read(KeyType::Auto, &["123", "000123"]);
        let KeyDictionary::Strings(strings) = &keys else {
            panic!("strings expected");
        };
        assert_eq!(&strings[..], ["000123", "123"]);
        let (codes, keys) = read(KeyType::Integer, &["123", "000123"]);
        assert_eq!((codes, keys), (vec![123, 123], KeyDictionary::Integers));
        let (codes, keys) = read(KeyType::String, &["7", "007"]);
        assert_eq!(codes, vec![1, 0]);
        assert_eq!(keys.kind(), KeyKind::String);
    }

    #[test]
    fn bad_keys_are_named() {
        let mut column = KeyColumn::new(KeyType::Integer);
        assert_eq!(column.push("C-1"), Err(BadKey::NotInteger(Bad::Malformed)));
        assert_eq!(column.push("  "), Err(BadKey::Empty));
        assert_eq!(KeyColumn::new(KeyType::String).push(""), Err(BadKey::Empty));
        let mut column = KeyColumn::new(KeyType::Auto);
        assert_eq!(
            column.push("2.5"),
            Err(BadKey::NotIntegerLike(Bad::Fraction))
        );
        assert_eq!(KeyColumn::new(KeyType::String).push("2.5"), Ok(()));
    }
}
