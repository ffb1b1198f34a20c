//! AutoRec (Sedhain et al., "AutoRec: Autoencoders Meet Collaborative Filtering", WWW 2015):
//! rating prediction with an autoencoder over the rows of the rating matrix.
//!
//! - I-AutoRec (`item_based = true`, the paper's better variant): each item is a row of its
//!   ratings by every user; `h(r) = W σ(V r + μ) + b` reconstructs it, and the predicted rating
//!   of user u for item i is `h(r_i)_u`.
//! - U-AutoRec: each user is a row of their ratings of every item.
//!
//! The loss counts observed ratings only (missing entries are 0 in the input and masked in the
//! loss, so ratings must be positive) and adds `λ/2 (‖W‖² + ‖V‖²)`; per batch it is the paper's
//! objective divided by the number of rows, estimated from the batch: the mean squared error
//! per row plus `λ/(2 · rows) (‖W‖² + ‖V‖²)`.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use ember_spec::{AutoRecSpec, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::config::{ModelError, check_weight};
use crate::layers::{dense, xavier_linear};
use crate::size;
use crate::{
    Batch, DenseSplit, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender,
    kinds,
};

/// AutoRec hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoRecConfig {
    /// Hidden units (the paper's k).
    pub hidden: usize,
    /// I-AutoRec (rows are items) when true, U-AutoRec (rows are users) when false.
    pub item_based: bool,
    /// The L2 weight λ on both weight matrices.
    pub l2: f64,
}

impl Default for AutoRecConfig {
    fn default() -> Self {
        Self {
            hidden: 500,
            item_based: true,
            l2: 1.0,
        }
    }
}

/// AutoRec.
#[derive(Module, Debug)]
pub struct AutoRec {
    pub(crate) encoder: Linear,
    pub(crate) decoder: Linear,
    item_based: bool,
    l2: f64,
    /// Rows of the whole rating matrix (items for I-AutoRec), to scale the penalty per batch.
    rows: usize,
    #[module(skip)]
    split: DenseSplit,
}

impl AutoRecConfig {
    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> AutoRec {
        let (rows, width) = if self.item_based {
            (init.items, init.users)
        } else {
            (init.users, init.items)
        };
        AutoRec {
            encoder: xavier_linear(width, self.hidden, device),
            decoder: xavier_linear(self.hidden, width, device),
            item_based: self.item_based,
            l2: self.l2,
            rows,
            split: init.dense,
        }
    }
}

impl ModelFamily for kinds::AutoRec {
    type Config = AutoRecConfig;
    type Model = AutoRec;

    /// The paper's I-AutoRec: 500 hidden units, λ = 1.
    fn bench_preset() -> AutoRecConfig {
        AutoRecConfig {
            hidden: 500,
            item_based: true,
            l2: 1.0,
        }
    }
}

impl ModelSettings for AutoRecConfig {
    fn input(&self) -> Input {
        Input::RatingRows {
            item_based: self.item_based,
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        AutoRecSpec {
            hidden: self.hidden,
            item_based: self.item_based,
        }
        .validate()?;
        check_weight("l2", self.l2)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        let width = if self.item_based { users } else { items };
        size::sum([
            size::linear(width, self.hidden),
            size::linear(self.hidden, width),
        ])
    }
}

impl AutoRec {
    /// Reconstructed rows (predicted ratings).
    ///
    /// # Shapes
    /// - rows: `[batch, width]` (ratings, 0 where unobserved)
    /// - output: `[batch, width]`
    pub fn reconstruct(&self, rows: Tensor<2>) -> Tensor<2> {
        dense(
            &self.decoder,
            sigmoid(dense(&self.encoder, rows, self.split)),
            self.split,
        )
    }
}

impl Recommender for AutoRec {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let rows = batch.rating_rows().clone();
        let batch = rows.dims()[0];
        let observed = rows.clone().greater_elem(0.0).float();
        let error = (self.reconstruct(rows.clone()) - rows) * observed;
        let squared = error.powi_scalar(2).sum().reshape([1]);
        let penalty = (self.encoder.weight.val().powi_scalar(2).sum()
            + self.decoder.weight.val().powi_scalar(2).sum())
        .reshape([1])
        .mul_scalar(self.l2 / 2.0 * batch as f64 / self.rows.max(1) as f64);
        (squared + penalty).div_scalar(batch as f64)
    }

    /// Reconstructed rows: predicted ratings, unclipped.
    fn score_all(&self, query: &Query) -> Tensor<2> {
        self.reconstruct(query.rating_rows().clone())
    }

    fn export(&self) -> Export {
        let spec = AutoRecSpec {
            hidden: self.encoder.weight.dims()[1],
            item_based: self.item_based,
        };
        Export::parameters(ModelSpec::AutoRec(spec), self)
    }
}
