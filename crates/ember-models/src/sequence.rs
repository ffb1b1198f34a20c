//! What sequence models share: how their examples are made, the masks and the losses.
//!
//! Inputs are windows of tokens in the scheme of [`ember_spec::tokens`] (padding on the left,
//! item `i` as token `i + 1`, BERT4Rec's mask token after the items).

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softplus};
use ember_spec::tokens::PAD;
use serde::{Deserialize, Serialize};

use crate::SequenceBatch;
use crate::cross_entropy::softmax_cross_entropy;

/// How a sequence model's training examples are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SequenceTask {
    /// Predict each next item from the items before it, with `negatives` sampled negatives per
    /// position (0: the loss uses every item).
    NextItem {
        /// Sampled negatives per position.
        negatives: usize,
    },
    /// Predict items replaced by the mask token (each with probability `mask_prob`) from the
    /// whole window; scoring appends the mask token to the history.
    MaskedItem {
        /// Probability that an item is masked.
        mask_prob: f64,
    },
}

/// The loss of a next-item model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceLoss {
    /// Binary cross-entropy: the next item labelled 1, each sampled negative 0 (the SASRec
    /// paper's loss, with one negative).
    #[default]
    Bce,
    /// Softmax cross-entropy over every item.
    Softmax,
    /// Softmax cross-entropy over the next item and the sampled negatives.
    SampledSoftmax,
}

/// The attention mask of a batch (`true` = may not attend): every padded key, and with
/// `causal` every later position.
///
/// # Shapes
/// - tokens: `[batch, len]`
/// - output: `[batch, len, len]` (query, key)
pub fn attention_mask(tokens: &Tensor<2, Int>, causal: bool) -> Tensor<3, Bool> {
    let [batch, len] = tokens.dims();
    let padded_keys = tokens
        .clone()
        .equal_elem(PAD)
        .unsqueeze_dim::<3>(1)
        .expand([batch, len, len]);
    if !causal {
        return padded_keys;
    }
    // `true` above the diagonal: key k > query q is in the query's future. Made on the device
    // (burn's autoregressive mask), with no host copy per batch.
    let later = Tensor::<2, Bool>::tril_mask([len, len], 0, &tokens.device())
        .unsqueeze_dim::<3>(0)
        .expand([batch, len, len]);
    padded_keys.bool_or(later)
}

/// 1 at real positions, 0 at padded ones, to zero padded hidden states.
///
/// # Shapes
/// - tokens: `[batch, len]`
/// - output: `[batch, len, 1]`
pub fn real_positions(tokens: &Tensor<2, Int>) -> Tensor<3> {
    tokens
        .clone()
        .not_equal_elem(PAD)
        .float()
        .unsqueeze_dim::<3>(2)
}

/// The hidden states at the batch's target positions.
///
/// # Shapes
/// - hidden: `[rows, len, dim]`
/// - output: `[targets, dim]`
pub fn at_targets(hidden: Tensor<3>, batch: &SequenceBatch) -> Tensor<2> {
    let [rows, len, dim] = hidden.dims();
    hidden
        .reshape([rows * len, dim])
        .select(0, batch.positions.clone())
}

/// The next-item loss of hidden states `hidden` (one per target) against the output item
/// vectors `items` (row `i` scores item `i`), averaged over targets.
///
/// # Shapes
/// - hidden: `[targets, dim]`
/// - items: `[num_items, dim]`
/// - output: `[1]`
pub fn next_item_loss(
    hidden: Tensor<2>,
    items: Tensor<2>,
    batch: &SequenceBatch,
    loss: SequenceLoss,
) -> Tensor<1> {
    let [targets, dim] = hidden.dims();
    let negatives = || {
        batch
            .negatives
            .clone()
            .expect("the trainer samples negatives for this loss")
    };
    // Scores of each target's sampled negatives: `[targets, k]`.
    let negative_scores = |negatives: Tensor<2, Int>| {
        let [_, k] = negatives.dims();
        let vectors = items
            .clone()
            .select(0, negatives.reshape([targets * k]))
            .reshape([targets, k, dim]);
        (vectors * hidden.clone().unsqueeze_dim::<3>(1))
            .sum_dim(2)
            .reshape([targets, k])
    };
    let positive = (items.clone().select(0, batch.targets.clone()) * hidden.clone()).sum_dim(1); // [targets, 1]
    match loss {
        SequenceLoss::Bce => {
            // -log σ(s⁺) - log(1 - σ(s⁻)), each term averaged as in SASRec's code.
            softplus(-positive, 1.0).mean().reshape([1])
                + softplus(negative_scores(negatives()), 1.0)
                    .mean()
                    .reshape([1])
        }
        SequenceLoss::SampledSoftmax => {
            let logits = Tensor::cat(vec![positive, negative_scores(negatives())], 1);
            -log_softmax(logits, 1).narrow(1, 0, 1).mean().reshape([1])
        }
        SequenceLoss::Softmax => full_softmax_loss(hidden.matmul(items.transpose()), batch),
    }
}

/// Softmax cross-entropy of logits over every item against the batch's targets.
///
/// # Shapes
/// - logits: `[targets, num_items]`
/// - output: `[1]`
pub fn full_softmax_loss(logits: Tensor<2>, batch: &SequenceBatch) -> Tensor<1> {
    softmax_cross_entropy(logits, batch.targets.clone())
        .mean()
        .reshape([1])
}

/// The hidden state at the last position of each window.
///
/// # Shapes
/// - hidden: `[batch, len, dim]`
/// - output: `[batch, dim]`
pub fn last_position(hidden: Tensor<3>) -> Tensor<2> {
    let [batch, len, dim] = hidden.dims();
    hidden.narrow(1, len - 1, 1).reshape([batch, dim])
}
