use std::collections::HashMap;

use ember_spec::{Key, KeyKind};

use crate::keys::KeyDictionary;

/// A stable map between a source's (external) keys and dense internal ids `0..len`.
///
/// Internal ids follow the external keys in ascending order (integers by value, strings by
/// their bytes), so the same set of keys always gets the same map, whatever the order of the
/// file. External ids are key codes ([`crate::keys`]); [`IdMap::key`] gives the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct IdMap {
    /// `external[internal]`, ascending.
    external: Vec<i64>,
    internal: HashMap<i64, u32>,
    keys: KeyDictionary,
}

impl IdMap {
    /// Builds the map of every distinct integer key in `ids`.
    pub fn from_ids<'a>(ids: impl IntoIterator<Item = &'a i64>) -> Self {
        Self::from_codes(ids, &KeyDictionary::Integers)
    }

    /// Builds the map of every distinct key code in `codes`, whose keys `keys` holds.
    pub fn from_codes<'a>(codes: impl IntoIterator<Item = &'a i64>, keys: &KeyDictionary) -> Self {
        let mut external: Vec<i64> = codes.into_iter().copied().collect();
        external.sort_unstable();
        external.dedup();
        let internal = external
            .iter()
            .enumerate()
            .map(|(i, &e)| (e, i as u32))
            .collect();
        Self {
            external,
            internal,
            keys: keys.clone(),
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.external.len()
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.external.is_empty()
    }

    /// The internal id of an external one (a key code).
    pub fn internal(&self, external: i64) -> Option<u32> {
        self.internal.get(&external).copied()
    }

    /// The external id (key code) of an internal one.
    pub fn external(&self, internal: u32) -> i64 {
        self.external[internal as usize]
    }

    /// The key of an internal id, as the source has it.
    pub fn key(&self, internal: u32) -> Key {
        self.keys.key(self.external(internal))
    }

    /// The internal id of a key.
    pub fn internal_of_key(&self, key: &Key) -> Option<u32> {
        self.keys.code(key).and_then(|code| self.internal(code))
    }

    /// The kind of the keys.
    pub fn key_kind(&self) -> KeyKind {
        self.keys.kind()
    }

    /// What the external ids (key codes) stand for.
    pub fn dictionary(&self) -> &KeyDictionary {
        &self.keys
    }
}
