use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, softplus};
use serde::{Deserialize, Serialize};

use crate::Recommender;
use crate::lookup::IdBatch;

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

/// A batch of positive (user, item) pairs, each with `k` sampled negative items, flattened for
/// one forward pass: the positives first, then the negatives positive by positive.
#[derive(Debug, Clone)]
pub struct PairBatch {
    /// `[batch * (1 + k)]`: each positive's user, then each negative's user.
    pub users: IdBatch,
    /// `[batch * (1 + k)]`: the positive items, then the negatives (`[batch, k]` row-major).
    pub items: IdBatch,
    /// Positives in the batch.
    pub positives: usize,
    /// Negatives per positive (`k`).
    pub negatives_per_positive: usize,
}

impl PairBatch {
    /// A batch from host ids: `users` and `positives` of length `batch`, `negatives` of length
    /// `batch * k`. With `plan_chunk`, the ids carry segment plans for their gradients (see
    /// [`crate::lookup`]); `tables` are the (users, items) row counts they index.
    pub fn new(
        users: &[i32],
        positives: &[i32],
        negatives: &[i32],
        tables: (usize, usize),
        plan_chunk: Option<usize>,
        device: &Device,
    ) -> Self {
        let batch = users.len();
        assert_eq!(positives.len(), batch, "one positive per user");
        let k = if batch == 0 { 0 } else { negatives.len() / batch };
        assert_eq!(negatives.len(), batch * k, "k negatives per positive");
        let mut all_users = Vec::with_capacity(batch * (1 + k));
        all_users.extend_from_slice(users);
        for &u in users {
            all_users.extend(std::iter::repeat_n(u, k));
        }
        let mut all_items = Vec::with_capacity(batch * (1 + k));
        all_items.extend_from_slice(positives);
        all_items.extend_from_slice(negatives);
        Self {
            users: IdBatch::new(&all_users, tables.0, plan_chunk, device),
            items: IdBatch::new(&all_items, tables.1, plan_chunk, device),
            positives: batch,
            negatives_per_positive: k,
        }
    }
}

/// The loss of a batch, scoring positives and negatives in one forward pass.
pub(crate) fn pair_loss<M: Recommender + ?Sized>(
    model: &M,
    batch: &PairBatch,
    loss: Loss,
) -> Tensor<1> {
    let (b, k) = (batch.positives, batch.negatives_per_positive);
    let scores = model.score_batch(&batch.users, &batch.items); // [b + b * k]
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
pub fn bce_with_logits(scores: Tensor<1>, positives: usize) -> Tensor<1> {
    let n = scores.dims()[0];
    let positive = scores.clone().slice(0..positives);
    let total = softplus(scores, 1.0).sum() - positive.sum();
    total.div_scalar(n as f64)
}
