//! LightGCN.

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// LightGCN: the export holds the final embeddings, each node's layer-combined propagation
/// (`users.weight` `[users, factors]`, `items.weight` `[items, factors]`), scored by their dot
/// product; `layers` records how many propagation layers made them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightGcnSpec {
    /// Embedding size.
    pub factors: usize,
    /// Propagation layers (0 is plain MF).
    pub layers: usize,
}

impl LightGcnSpec {
    /// Checks the size.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("factors", self.factors)
    }
}
