use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, softplus};
use serde::{Deserialize, Serialize};

use crate::Recommender;

/// Training objective over positives and sampled negatives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Binary cross-entropy: positives labelled 1, negatives 0 (pointwise, as in NCF).
    #[default]
    Bce,
    /// Bayesian personalised ranking: `-log σ(s_pos - s_neg)` per (positive, negative) pair.
    Bpr,
}

/// A batch of positive (user, item) pairs, each with `k` sampled negative items.
#[derive(Debug, Clone)]
pub struct PairBatch {
    /// `[batch]`
    pub users: Tensor<1, Int>,
    /// `[batch]`
    pub positives: Tensor<1, Int>,
    /// `[batch, k]`
    pub negatives: Tensor<2, Int>,
}

/// The loss of a batch, scoring positives and negatives in one forward pass.
pub(crate) fn pair_loss<M: Recommender + ?Sized>(
    model: &M,
    batch: &PairBatch,
    loss: Loss,
) -> Tensor<1> {
    let [b, k] = batch.negatives.dims();
    let neg_users = batch
        .users
        .clone()
        .unsqueeze_dim::<2>(1)
        .repeat_dim(1, k)
        .reshape([b * k]);
    let users = Tensor::cat(vec![batch.users.clone(), neg_users], 0);
    let items = Tensor::cat(
        vec![
            batch.positives.clone(),
            batch.negatives.clone().reshape([b * k]),
        ],
        0,
    );
    let scores = model.score_pairs(users, items); // [b + b * k]
    match loss {
        Loss::Bce => {
            // Numerically stable BCE with logits: softplus(s) - s * y, averaged over all pairs.
            let positive = scores.clone().slice(0..b);
            let total = softplus(scores, 1.0).sum() - positive.sum();
            total.div_scalar((b + b * k) as f64)
        }
        Loss::Bpr => {
            let positive = scores.clone().slice(0..b).unsqueeze_dim::<2>(1); // [b, 1]
            let negative = scores.slice(b..b + b * k).reshape([b, k]);
            log_sigmoid(positive - negative).mean().neg()
        }
    }
}
