//! ItemKNN.

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// ItemKNN (Sarwar et al., "Item-Based Collaborative Filtering Recommendation Algorithms",
/// WWW 2001): each item's `neighbours` most similar items, by the cosine similarity of the
/// items' users on binary interactions, shrunk by `shrinkage`:
/// `sim(i, j) = |U_i ∩ U_j| / (√|U_i| √|U_j| + shrinkage)`. A user scores item `i` by
/// `Σ_{j ∈ N(i) ∩ I_u} sim(i, j)` over their own items `I_u`.
///
/// Tensors: `neighbours.similarity` `[items, neighbours]`, each item's neighbours' similarities,
/// highest first (ties by item id), and `neighbours.item` `[items × neighbours]`, their item
/// ids in the same order, row-major, as F32 values at every precision (exact for catalogues of
/// up to 2^24 items). An item with fewer neighbours (items it shares a user with) fills its row
/// with itself at similarity 0, which adds nothing. The export also stores each user's
/// training items, the `I_u` of the users it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemKnnSpec {
    /// Neighbours kept per item (`k`).
    pub neighbours: usize,
    /// The shrinkage term of the similarity's denominator (0: plain cosine).
    pub shrinkage: f64,
}

impl ItemKnnSpec {
    /// Checks the sizes: at least one neighbour, a shrinkage that is a non-negative number.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("neighbours", self.neighbours)?;
        if !(self.shrinkage >= 0.0 && self.shrinkage.is_finite()) {
            return Err(SpecError::Negative {
                key: "shrinkage",
                value: self.shrinkage,
            });
        }
        Ok(())
    }
}
