//! The autoencoders over a user's item row (Mult-DAE, Mult-VAE, CDAE).

use serde::{Deserialize, Serialize};

use super::positive;
use crate::SpecError;

/// Mult-DAE and Mult-VAE: `encoder.k` layers `items → hidden[0] → … → code` (Mult-VAE's last
/// layer is twice as wide: mean and log-variance), `decoder.k` layers back to the items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderSpec {
    /// Encoder sizes after the item layer, the last being the code.
    pub hidden: Vec<usize>,
}

impl AutoencoderSpec {
    /// Checks the sizes: at least one, none 0.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(SpecError::BadHidden(self.hidden.clone()));
        }
        Ok(())
    }
}

/// CDAE: `encoder` `[items, hidden]`, a user vector `users.weight` `[users, hidden]`, and
/// `decoder` `[hidden, items]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdaeSpec {
    /// Code size.
    pub hidden: usize,
}

impl CdaeSpec {
    /// Checks the size.
    pub fn validate(&self) -> Result<(), SpecError> {
        positive("hidden", self.hidden)
    }
}
