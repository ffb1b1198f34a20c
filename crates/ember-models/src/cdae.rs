//! Collaborative denoising autoencoder (Wu et al., "Collaborative Denoising Auto-Encoders for
//! Top-N Recommender Systems", WSDM 2016).
//!
//! A user's corrupted row `ỹ_u` (dropout with rescaling) and a per-user vector `V_u` (the "user
//! node") give the code `z_u = σ(Wᵀ ỹ_u + V_u + b)`; the output is one logit per item,
//! `W'ᵀ z_u + b'`. The loss is the logistic loss over every item of the row (the paper's negative
//! sampling approximates this sum on large catalogues; on the catalogues ember trains it is one
//! dense product per batch), summed per user and averaged over the batch.
//!
//! The user node makes CDAE id-based: it trains on every user's row, the fold-in part of
//! held-out users included, as the NCF models do.

use burn::nn::{Dropout, DropoutConfig, Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softplus};
use serde::{Deserialize, Serialize};

use crate::layers::{dense, embedding, xavier_linear};
use crate::lookup::lookup;
use crate::{RowModel, UserRows};

fn default_hidden() -> usize {
    50
}
fn default_dropout() -> f64 {
    0.2
}

/// CDAE hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdaeConfig {
    /// Code size (the paper's K).
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// Corruption: dropout probability on the input row.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

/// CDAE.
#[derive(Module, Debug)]
pub struct Cdae {
    pub(crate) encoder: Linear,
    pub(crate) users: Embedding,
    pub(crate) decoder: Linear,
    dropout: Dropout,
}

impl CdaeConfig {
    /// Builds the model for `num_users` × `num_items`.
    pub fn init(&self, num_users: usize, num_items: usize, device: &Device) -> Cdae {
        Cdae {
            encoder: xavier_linear(num_items, self.hidden, device),
            users: embedding(num_users, self.hidden, 0.01, device),
            decoder: xavier_linear(self.hidden, num_items, device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl Cdae {
    /// One logit per item (corruption only on an autodiff device, i.e. in training).
    ///
    /// # Shapes
    /// - users: `[batch]`
    /// - rows: `[batch, num_items]`
    /// - output: `[batch, num_items]`
    pub fn forward(&self, users: Tensor<1, Int>, rows: Tensor<2>) -> Tensor<2> {
        let corrupted = self.dropout.forward(rows);
        let code = sigmoid(dense(&self.encoder, corrupted) + lookup(&self.users, &users.into()));
        dense(&self.decoder, code)
    }
}

impl RowModel for Cdae {
    fn score_rows(&self, users: Tensor<1, Int>, rows: Tensor<2>) -> Tensor<2> {
        self.forward(users, rows)
    }

    fn row_loss(&self, batch: &UserRows) -> Tensor<1> {
        let logits = self.forward(batch.users.clone(), batch.rows.clone());
        // Logistic loss with logits: softplus(s) − s·y, summed over items.
        (softplus(logits.clone(), 1.0) - logits * batch.rows.clone())
            .sum_dim(1)
            .mean()
            .reshape([1])
    }

    fn num_items(&self) -> usize {
        self.encoder.weight.dims()[0]
    }

    fn uses_user_ids(&self) -> bool {
        true
    }
}
