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
            confidence: None,
        }
    }
}

/// The loss of a pair batch from its pairs' scores (logits), each positive's term multiplied
/// by its confidence when the batch has them.
///
/// # Shapes
/// - scores: `[pairs]`
/// - output: `[1]`
pub(crate) fn pair_loss(scores: Tensor<1>, batch: &PairBatch, loss: Loss) -> Tensor<1> {
    let targets = &batch.targets;
    if let (
        Some(confidence),
        &PairTargets::Sampled {
            positives,
            negatives_per_positive,
        },
    ) = (&batch.confidence, targets)
    {
        return weighted_loss(
            scores,
            confidence.clone(),
            negatives_per_positive,
            (positives, loss),
        );
    }
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

/// The loss of `b` positives followed by their `k` negatives each, each positive's term scaled
/// by its confidence `c` (Hu, Koren & Volinsky's confidence, negatives at 1): BCE
/// `(Σ_p c_p softplus(−s_p) + Σ_n softplus(s_n)) / (b (1 + k))`, BPR
/// `−Σ_{p,j} c_p log σ(s_p − s_pj) / (b k)`.
///
/// # Shapes
/// - scores: `[b (1 + k)]`
/// - confidence: `[b]`
/// - output: `[1]`
fn weighted_loss(
    scores: Tensor<1>,
    confidence: Tensor<1>,
    k: usize,
    (b, loss): (usize, Loss),
) -> Tensor<1> {
    let positive = scores.clone().slice(0..b);
    match loss {
        Loss::Bce => {
            let n = scores.dims()[0];
            let negatives = softplus(scores.slice(b..n), 1.0).sum();
            let positives = (softplus(positive.neg(), 1.0) * confidence).sum();
            (positives + negatives).div_scalar(n as f64)
        }
        Loss::Bpr => {
            let negative = scores.slice(b..b + b * k).reshape([b, k]);
            let terms = log_sigmoid(positive.unsqueeze_dim::<2>(1) - negative);
            (terms * confidence.unsqueeze_dim::<2>(1)).mean().neg()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Two positives scored 0 and 1, one negative each scored 0 and −1, with confidences 2
    /// and 0.5.
    fn two_pairs(confidence: Option<[f32; 2]>) -> (Tensor<1>, PairBatch) {
        let device = Device::flex();
        let mut batch = PairBatch::sampled(&[0, 1], &[0, 1], &[2, 3], (2, 4), None, &device);
        batch.confidence =
            confidence.map(|c| Tensor::from_data(TensorData::new(c.to_vec(), [2]), &device));
        let scores = Tensor::from_data(TensorData::new(vec![0.0f32, 1.0, 0.0, -1.0], [4]), &device);
        (scores, batch)
    }

    fn value(t: Tensor<1>) -> f32 {
        t.into_scalar()
    }

    #[test]
    fn confidences_scale_each_positives_term_by_hand() {
        let (ln2, sp1) = (2f32.ln(), (1.0 + (-1f32).exp()).ln()); // softplus(0), softplus(−1)
        let (scores, batch) = two_pairs(Some([2.0, 0.5]));
        // BCE: (2 softplus(−0) + 0.5 softplus(−1) + softplus(0) + softplus(−1)) / 4.
        let bce = (2.0 * ln2 + 0.5 * sp1 + ln2 + sp1) / 4.0;
        assert!((value(pair_loss(scores.clone(), &batch, Loss::Bce)) - bce).abs() < 1e-6);
        assert!((bce - 0.637_333_5).abs() < 1e-6);
        // BPR: −(2 log σ(0 − 0) + 0.5 log σ(1 − (−1))) / 2.
        let bpr = (2.0 * ln2 + 0.5 * (1.0 + (-2f32).exp()).ln()) / 2.0;
        assert!((value(pair_loss(scores, &batch, Loss::Bpr)) - bpr).abs() < 1e-6);
        assert!((bpr - 0.724_879_2).abs() < 1e-6);
    }

    #[test]
    fn unit_confidences_give_the_unweighted_loss() {
        for loss in [Loss::Bce, Loss::Bpr] {
            let (scores, plain) = two_pairs(None);
            let (_, ones) = two_pairs(Some([1.0, 1.0]));
            let a = value(pair_loss(scores.clone(), &plain, loss));
            let b = value(pair_loss(scores, &ones, loss));
            assert!((a - b).abs() < 1e-6, "{loss:?}: {a} vs {b}");
        }
    }
}
