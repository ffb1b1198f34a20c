//! Propensities: a customer's model scores as numbers in [0, 1] that can be multiplied by a
//! value, following what the scores are ([`ScoreScale`]):
//!
//! - logits of a per-item probability (MF, GMF, MLP, NeuMF, LightGCN, CDAE): `σ(s)`. For a
//!   model trained with BCE this is the model's probability of an interaction; a BPR-trained
//!   one (LightGCN's default) only orders items, so its `σ(s)` is a ranking score;
//! - next-item logits (Mult-DAE, Mult-VAE, SASRec, BERT4Rec, GRU4Rec): the softmax over every
//!   item, `exp(s_i) / Σ_j exp(s_j)`: the probability that the customer's next item is this
//!   one (small numbers that sum to 1 over the catalogue);
//! - ratings (AutoRec): `(r − low) / (high − low)` over the training ratings' range.
//!
//! None of these is calibrated on the business's own conversions; comparing them within one
//! customer (which action) is sound, and so is ranking customers for one item.

use crate::{DecideError, ExportedModel, Key};
pub use ember_infer::ScoreScale;

/// The propensities of `user` for each of `items` (external keys).
pub fn propensities(
    model: &ExportedModel,
    user: &Key,
    items: &[Key],
) -> Result<Vec<f64>, DecideError> {
    let pairs = || -> Vec<(Key, Key)> { items.iter().map(|i| (user.clone(), i.clone())).collect() };
    match model.score_scale() {
        ScoreScale::Logits => Ok(model
            .score(&pairs())?
            .into_iter()
            .map(|s| sigmoid(s as f64))
            .collect()),
        ScoreScale::NextItemLogits => {
            let u = model.user_index(user)?;
            let scores = model.item_scores_internal(u);
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let total: f64 = scores.iter().map(|&s| (s as f64 - max).exp()).sum();
            items
                .iter()
                .map(|i| {
                    let s = scores[model.item_index(i)? as usize] as f64;
                    Ok((s - max).exp() / total)
                })
                .collect()
        }
        ScoreScale::Ratings { low, high } => {
            let (low, high) = (low as f64, high as f64);
            Ok(model
                .score(&pairs())?
                .into_iter()
                .map(|r| {
                    if high > low {
                        ((r as f64 - low) / (high - low)).clamp(0.0, 1.0)
                    } else {
                        0.5
                    }
                })
                .collect())
        }
    }
}

/// The logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
