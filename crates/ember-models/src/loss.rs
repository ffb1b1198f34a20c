//! The objectives of pair models: pointwise BCE and pairwise BPR over sampled negatives.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, softplus};
use serde::{Deserialize, Serialize};

use crate::lookup::IdBatch;
use crate::recommender::{PairBatch, PairTargets};

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

impl PairBatch {
    /// A batch of positives with `k` sampled negatives each, from host ids: `users` and
    /// `positives` of length `batch`, `negatives` of length `batch * k` (row-major). With
    /// `plan_chunk`, the ids carry segment plans for their gradients (see [`crate::lookup`]);
    /// `tables` are the (users, items) row counts they index.
    ///
    /// # Panics
    /// When the lengths disagree.
    pub fn sampled(
        users: &[i32],
        positives: &[i32],
        negatives: &[i32],
        tables: (usize, usize),
        plan_chunk: Option<usize>,
        device: &Device,
    ) -> Self {
        let n = users.len();
        assert_eq!(positives.len(), n, "one positive per user");
        let k = negatives.len().checked_div(n).unwrap_or(0);
        assert_eq!(negatives.len(), n * k, "k negatives per positive");
        let mut all_users = users.to_vec();
        for &u in users {
            all_users.extend(std::iter::repeat_n(u, k));
        }
        let all_items: Vec<i32> = positives.iter().chain(negatives).copied().collect();
        PairBatch {
            users: IdBatch::new(&all_users, tables.0, plan_chunk, device),
            items: IdBatch::new(&all_items, tables.1, plan_chunk, device),
            targets: PairTargets::Sampled {
                positives: n,
                negatives_per_positive: k,
            },
        }
    }
}

/// The loss of a pair batch from its pairs' scores (logits).
///
/// # Shapes
/// - scores: `[pairs]`
/// - output: `[1]`
pub(crate) fn pair_loss(scores: Tensor<1>, targets: &PairTargets, loss: Loss) -> Tensor<1> {
    match (targets, loss) {
        (PairTargets::Labels(labels), Loss::Bce) => {
            (softplus(scores.clone(), 1.0) - scores * labels.clone()).mean()
        }
        (PairTargets::Labels(_), Loss::Bpr) => {
            panic!(
                "BPR compares each positive with its sampled negatives: labelled pairs have none"
            )
        }
        (
            &PairTargets::Sampled {
                positives,
                negatives_per_positive,
            },
            loss,
        ) => sampled_loss(scores, positives, negatives_per_positive, loss),
    }
}

/// The loss of `b` positives followed by their `k` negatives each.
fn sampled_loss(scores: Tensor<1>, b: usize, k: usize, loss: Loss) -> Tensor<1> {
    match loss {
        Loss::Bce => bce_with_logits(scores, b),
        Loss::Bpr => {
            let positive = scores.clone().slice(0..b).unsqueeze_dim::<2>(1); // [b, 1]
            let negative = scores.slice(b..b + b * k).reshape([b, k]);
            log_sigmoid(positive - negative).mean().neg()
        }
    }
}

/// Mean binary cross-entropy of logits whose first `positives` entries are labelled 1 and the
/// rest 0: `softplus(s) - s * y`, numerically stable.
///
/// # Shapes
/// - scores: `[n]`
/// - output: `[1]`
fn bce_with_logits(scores: Tensor<1>, positives: usize) -> Tensor<1> {
    let n = scores.dims()[0];
    let positive = scores.clone().slice(0..positives);
    let total = softplus(scores, 1.0).sum() - positive.sum();
    total.div_scalar(n as f64)
}
