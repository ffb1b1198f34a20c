//! GRU4Rec.

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// GRU4Rec: `items.weight` `[items + 1, embedding]` (token rows, see [`crate::tokens`]; row 0
/// pads), `layers` GRU layers, and `projection` `[hidden, embedding]` (with bias) from the last
/// state onto the item embeddings, which score every item: `score_i = p · items[i + 1]`.
///
/// Layer `k` reads the previous layer's states (layer 0 the item embeddings), starting from a
/// zero state at the first real item (padding never enters), with `gru.k.input` (`[in, 3h]`,
/// bias `[3h]`) and `gru.k.recurrent` (`[h, 3h]`, bias `[3h]`), columns in the order reset,
/// update, new, as PyTorch's `nn.GRU`:
/// `r = σ(x Wᵢᵣ + bᵢᵣ + s Wₕᵣ + bₕᵣ)`, `z = σ(x Wᵢ_z + bᵢ_z + s Wₕ_z + bₕ_z)`,
/// `n = tanh(x Wᵢₙ + bᵢₙ + r ⊙ (s Wₕₙ + bₕₙ))`, `s' = (1 − z) ⊙ n + z ⊙ s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gru4RecSpec {
    /// Item embedding size.
    pub embedding: usize,
    /// GRU state size.
    pub hidden: usize,
    /// GRU layers.
    pub layers: usize,
    /// Window length: the latest items the model reads.
    pub max_len: usize,
}

impl Gru4RecSpec {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("embedding", self.embedding)?;
        positive("hidden", self.hidden)?;
        positive("layers", self.layers)?;
        positive("max_len", self.max_len)?;
        self.hidden.checked_mul(3).ok_or(SpecError::Overflow)?;
        Ok(())
    }
}
