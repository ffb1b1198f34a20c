//! The NCF family (MF, GMF, MLP, NeuMF).

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// MF and GMF: one latent dimension. Tensors: `users.weight` `[users, factors]`,
/// `items.weight` `[items, factors]`; GMF adds `output.weight` `[factors, 1]`, `output.bias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorsSpec {
    /// Latent dimension.
    pub factors: usize,
}

impl FactorsSpec {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("factors", self.factors)
    }
}

/// MLP over `[p_u ‖ q_i]`: `layers[0]` is the concatenated embedding size (half each), then
/// ReLU layers `tower.layers.k`, then `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// Layer sizes, the first being the concatenated embedding size.
    pub layers: Vec<usize>,
}

impl MlpSpec {
    /// Checks the sizes: at least two, none 0, the first even.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_layers(&self.layers)
    }
}

/// NeuMF: GMF tables (`gmf_users`, `gmf_items`, `factors` wide), MLP tables and tower as
/// [`MlpSpec`], and `output` over `[GMF ‖ MLP]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuMfSpec {
    /// GMF latent dimension.
    pub factors: usize,
    /// MLP layer sizes.
    pub layers: Vec<usize>,
}

impl NeuMfSpec {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("factors", self.factors)?;
        check_layers(&self.layers)?;
        self.factors
            .checked_add(*self.layers.last().expect("checked"))
            .ok_or(SpecError::Overflow)?;
        Ok(())
    }
}

fn check_layers(layers: &[usize]) -> Result<(), SpecError> {
    if layers.len() < 2 || !layers[0].is_multiple_of(2) || layers.contains(&0) {
        return Err(SpecError::BadLayers(layers.to_vec()));
    }
    Ok(())
}
