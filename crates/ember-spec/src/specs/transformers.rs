//! The transformer sequence models (SASRec, BERT4Rec).

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// SASRec and BERT4Rec: `items.weight` (one row per token, see [`crate::tokens`]),
/// `positions.weight` `[max_len, hidden]`, `blocks.k.…` attention blocks, and each model's
/// output layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerSpec {
    /// Hidden size (BERT4Rec's feed-forward layer is 4 × wider).
    pub hidden: usize,
    /// Blocks.
    pub blocks: usize,
    /// Attention heads (they divide `hidden`).
    pub heads: usize,
    /// Window length (BERT4Rec's includes the mask token).
    pub max_len: usize,
    /// ε of every layer norm.
    pub layer_norm_epsilon: f64,
}

impl TransformerSpec {
    /// Checks the sizes; the window holds at least `min_len` tokens.
    pub fn validate(&self, min_len: usize) -> Result<(), SpecError> {
        positive("hidden", self.hidden)?;
        positive("blocks", self.blocks)?;
        positive("heads", self.heads)?;
        if !self.hidden.is_multiple_of(self.heads) {
            return Err(SpecError::BadHeads {
                heads: self.heads,
                hidden: self.hidden,
            });
        }
        if self.max_len < min_len {
            return Err(SpecError::ShortWindow(min_len));
        }
        if !(self.layer_norm_epsilon > 0.0 && self.layer_norm_epsilon.is_finite()) {
            return Err(SpecError::BadEpsilon(self.layer_norm_epsilon));
        }
        self.hidden.checked_mul(4).ok_or(SpecError::Overflow)?;
        Ok(())
    }
}
