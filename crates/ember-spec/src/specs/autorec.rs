//! AutoRec.

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// AutoRec: `encoder` `[width, hidden]` and `decoder` `[hidden, width]` over rows of the rating
/// matrix (`width` = users for I-AutoRec, items for U-AutoRec); scores are predicted ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRecSpec {
    /// Hidden units.
    pub hidden: usize,
    /// Rows are items (I-AutoRec) rather than users (U-AutoRec).
    pub item_based: bool,
}

impl AutoRecSpec {
    /// Checks the size.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("hidden", self.hidden)
    }
}
