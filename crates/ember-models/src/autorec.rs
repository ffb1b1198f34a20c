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
use serde::{Deserialize, Serialize};

use crate::layers::{dense, xavier_linear};

fn default_hidden() -> usize {
    500
}
fn default_item_based() -> bool {
    true
}
fn default_l2() -> f64 {
    1.0
}

/// AutoRec hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRecConfig {
    /// Hidden units (the paper's k).
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// I-AutoRec (rows are items) when true, U-AutoRec (rows are users) when false.
    #[serde(default = "default_item_based")]
    pub item_based: bool,
    /// The L2 weight λ on both weight matrices.
    #[serde(default = "default_l2")]
    pub l2: f64,
}

/// Models that predict explicit ratings by reconstructing rows of the rating matrix.
pub trait RatingModel {
    /// Reconstructed rows (predicted ratings).
    ///
    /// # Shapes
    /// - rows: `[batch, row length]` (ratings, 0 where unobserved)
    /// - output: `[batch, row length]`
    fn reconstruct(&self, rows: Tensor<2>) -> Tensor<2>;

    /// The training loss of a batch of rows (a scalar).
    ///
    /// # Shapes
    /// - rows: `[batch, row length]`
    /// - output: `[1]`
    fn rating_loss(&self, rows: Tensor<2>) -> Tensor<1>;

    /// Whether rows are items (their ratings by every user) rather than users.
    fn item_based(&self) -> bool;
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
}

impl AutoRecConfig {
    /// Builds the model for `num_users` × `num_items`.
    pub fn init(&self, num_users: usize, num_items: usize, device: &Device) -> AutoRec {
        let (rows, width) = if self.item_based {
            (num_items, num_users)
        } else {
            (num_users, num_items)
        };
        AutoRec {
            encoder: xavier_linear(width, self.hidden, device),
            decoder: xavier_linear(self.hidden, width, device),
            item_based: self.item_based,
            l2: self.l2,
            rows,
        }
    }
}

impl RatingModel for AutoRec {
    fn reconstruct(&self, rows: Tensor<2>) -> Tensor<2> {
        dense(&self.decoder, sigmoid(dense(&self.encoder, rows)))
    }

    fn rating_loss(&self, rows: Tensor<2>) -> Tensor<1> {
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

    fn item_based(&self) -> bool {
        self.item_based
    }
}
