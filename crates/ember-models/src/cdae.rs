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

use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softplus};
use ember_spec::{CdaeSpec, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::config::{ModelError, check_dropout};
use crate::dropout::Dropout;
use crate::layers::{dense, embedding, xavier_linear};
use crate::lookup::lookup;
use crate::size;
use crate::{
    Batch, DenseSplit, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender,
    kinds,
};

/// CDAE hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdaeConfig {
    /// Code size (the paper's K).
    pub hidden: usize,
    /// Corruption: dropout probability on the input row.
    pub dropout: f64,
}

impl Default for CdaeConfig {
    fn default() -> Self {
        Self {
            hidden: 50,
            dropout: 0.2,
        }
    }
}

/// CDAE.
#[derive(Module, Debug)]
pub struct Cdae {
    pub(crate) encoder: Linear,
    pub(crate) users: Embedding,
    pub(crate) decoder: Linear,
    dropout: Dropout,
    #[module(skip)]
    split: DenseSplit,
}

impl CdaeConfig {
    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Cdae {
        Cdae {
            encoder: xavier_linear(init.items, self.hidden, device),
            users: embedding(init.users, self.hidden, 0.01, device),
            decoder: xavier_linear(self.hidden, init.items, device),
            dropout: Dropout::new(self.dropout, init.masks),
            split: init.dense,
        }
    }
}

impl ModelFamily for kinds::Cdae {
    type Config = CdaeConfig;
    type Model = Cdae;

    /// The paper's: 50 hidden units, dropout 0.2.
    fn bench_preset() -> CdaeConfig {
        CdaeConfig {
            hidden: 50,
            dropout: 0.2,
        }
    }
}

impl ModelSettings for CdaeConfig {
    /// The user node makes CDAE read the user id beside the row.
    fn input(&self) -> Input {
        Input::UserRows { by_id: true }
    }

    fn validate(&self) -> Result<(), ModelError> {
        CdaeSpec {
            hidden: self.hidden,
        }
        .validate()?;
        check_dropout(self.dropout)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        size::sum([
            size::linear(items, self.hidden),
            size::table(users, self.hidden),
            size::linear(self.hidden, items),
        ])
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
        let code = sigmoid(
            dense(&self.encoder, corrupted, self.split) + lookup(&self.users, &users.into()),
        );
        dense(&self.decoder, code, self.split)
    }
}

impl Recommender for Cdae {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let batch = batch.user_rows();
        let rows = batch.dense();
        let logits = self.forward(batch.users.clone(), rows.clone());
        // Logistic loss with logits: softplus(s) − s·y, summed over items.
        (softplus(logits.clone(), 1.0) - logits * rows)
            .sum_dim(1)
            .mean()
            .reshape([1])
    }

    fn score_all(&self, query: &Query) -> Tensor<2> {
        let rows = query.user_rows();
        self.forward(rows.users.clone(), rows.dense())
    }

    fn export(&self) -> Export {
        let hidden = self.encoder.weight.dims()[1];
        Export::parameters(ModelSpec::Cdae(CdaeSpec { hidden }), self)
    }
}
