use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A stable map between a file's (external) ids and dense internal ids `0..len`.
///
/// Internal ids follow the external ids in ascending order, so the same set of ids always gets
/// the same map, whatever the order of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdMap {
    /// `external[internal]`.
    external: Vec<i64>,
    #[serde(skip)]
    internal: HashMap<i64, u32>,
}

impl IdMap {
    /// Builds the map of every distinct id in `ids`.
    pub fn from_ids<'a>(ids: impl IntoIterator<Item = &'a i64>) -> Self {
        let mut external: Vec<i64> = ids.into_iter().copied().collect();
        external.sort_unstable();
        external.dedup();
        Self::from_sorted(external)
    }

    fn from_sorted(external: Vec<i64>) -> Self {
        let internal = external
            .iter()
            .enumerate()
            .map(|(i, &e)| (e, i as u32))
            .collect();
        Self { external, internal }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.external.len()
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.external.is_empty()
    }

    /// The internal id of an external one.
    pub fn internal(&self, external: i64) -> Option<u32> {
        self.internal.get(&external).copied()
    }

    /// The external id of an internal one.
    pub fn external(&self, internal: u32) -> i64 {
        self.external[internal as usize]
    }

    /// Rebuilds the reverse index after deserialising.
    pub fn reindexed(self) -> Self {
        Self::from_sorted(self.external)
    }
}
