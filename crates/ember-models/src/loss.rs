use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, softplus};
use serde::{Deserialize, Serialize};

use crate::Recommender;
use crate::lookup::{EpochIds, IdBatch};

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
    ///
    /// # Panics
    /// When `users` is empty or the lengths disagree.
    pub fn new(
        users: &[i32],
        positives: &[i32],
        negatives: &[i32],
        tables: (usize, usize),
        plan_chunk: Option<usize>,
        device: &Device,
    ) -> Self {
        let batch = users.len().max(1);
        EpochPairs::new(
            users, positives, negatives, batch, tables, plan_chunk, device,
        )
        .batch(0)
    }
}

/// An epoch of positives with their negatives, flattened batch by batch as in [`PairBatch`],
/// uploaded to the device once and cut into batches there (in order).
#[derive(Debug)]
pub struct EpochPairs {
    users: EpochIds,
    items: EpochIds,
    /// Positives in each batch.
    positives: Vec<usize>,
    negatives_per_positive: usize,
}

impl EpochPairs {
    /// `users` and `positives` of equal length, `negatives` `k` per positive, in batches of
    /// `batch_size` positives (the last may be smaller).
    pub fn new(
        users: &[i32],
        positives: &[i32],
        negatives: &[i32],
        batch_size: usize,
        tables: (usize, usize),
        plan_chunk: Option<usize>,
        device: &Device,
    ) -> Self {
        let n = users.len();
        assert_eq!(positives.len(), n, "one positive per user");
        let k = if n == 0 { 0 } else { negatives.len() / n };
        assert_eq!(negatives.len(), n * k, "k negatives per positive");
        assert!(batch_size > 0, "batch size must be positive");
        let mut all_users = Vec::with_capacity(n * (1 + k));
        let mut all_items = Vec::with_capacity(n * (1 + k));
        let mut bounds = vec![0];
        let mut sizes = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let end = (start + batch_size).min(n);
            all_users.extend_from_slice(&users[start..end]);
            for &u in &users[start..end] {
                all_users.extend(std::iter::repeat_n(u, k));
            }
            all_items.extend_from_slice(&positives[start..end]);
            all_items.extend_from_slice(&negatives[start * k..end * k]);
            bounds.push(all_users.len());
            sizes.push(end - start);
        }
        Self {
            users: EpochIds::new(all_users, bounds.clone(), tables.0, plan_chunk, device),
            items: EpochIds::new(all_items, bounds, tables.1, plan_chunk, device),
            positives: sizes,
            negatives_per_positive: k,
        }
    }

    /// Number of batches.
    pub fn batches(&self) -> usize {
        self.positives.len()
    }

    /// Batch `b`, sliced on the device.
    pub fn batch(&self, b: usize) -> PairBatch {
        PairBatch {
            users: self.users.batch(b),
            items: self.items.batch(b),
            positives: self.positives[b],
            negatives_per_positive: self.negatives_per_positive,
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
fn bce_with_logits(scores: Tensor<1>, positives: usize) -> Tensor<1> {
    let n = scores.dims()[0];
    let positive = scores.clone().slice(0..positives);
    let total = softplus(scores, 1.0).sum() - positive.sum();
    total.div_scalar(n as f64)
}
