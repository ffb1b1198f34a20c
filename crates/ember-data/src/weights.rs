//! Interaction weights (the `[weights]` table): where they come from and how a pair model turns
//! them into a per-interaction confidence (Hu, Koren & Volinsky 2008). The autoencoders read
//! them as counts, unchanged; what each model family makes of them is its own to say.

use serde::{Deserialize, Serialize};

use crate::{DataError, Interactions, Result};

/// Where the weights are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightSource {
    /// The source's `weight` column (`[data] weight = …`).
    #[default]
    Column,
    /// The source's ratings (any source with a rating column, the MovieLens presets included).
    Rating,
}

/// How a weight `w` becomes a pair model's confidence in a positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// `1 + alpha · w`.
    #[default]
    Linear,
    /// `1 + alpha · ln(1 + w / epsilon)`.
    Log,
}

/// The `[weights]` table: a weight per interaction, used rather than thresholded. Repeated
/// (user, item) pairs have their weights summed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Where the weights come from.
    pub from: WeightSource,
    /// How pair models turn a weight into a confidence.
    pub confidence: Confidence,
    /// The confidence's scale α (0 or more).
    pub alpha: f64,
    /// The log confidence's ε (positive).
    pub epsilon: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            from: WeightSource::Column,
            confidence: Confidence::Linear,
            alpha: 1.0,
            epsilon: 1.0,
        }
    }
}

impl Weights {
    /// Refuses an α below 0 or an ε that is not positive (or either not finite).
    pub fn validate(&self) -> Result<()> {
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(DataError::Invalid(format!(
                "weights.alpha must be a finite number, 0 or more, got {}",
                self.alpha
            )));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(DataError::Invalid(format!(
                "weights.epsilon must be a positive finite number, got {}",
                self.epsilon
            )));
        }
        Ok(())
    }

    /// The confidence in a positive of weight `w`.
    pub fn confidence_of(&self, w: f32) -> f32 {
        let w = w as f64;
        let scaled = match self.confidence {
            Confidence::Linear => w,
            Confidence::Log => (w / self.epsilon).ln_1p(),
        };
        (1.0 + self.alpha * scaled) as f32
    }

    /// The confidence of each of `weights`, divided by their mean: the confidences of a
    /// training set average 1, so that weighting moves the loss between interactions without
    /// rescaling it (the learning rate keeps its meaning).
    pub fn confidences(&self, weights: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let raw: Vec<Vec<f32>> = weights
            .iter()
            .map(|row| row.iter().map(|&w| self.confidence_of(w)).collect())
            .collect();
        let (sum, count) = raw
            .iter()
            .flatten()
            .fold((0.0f64, 0usize), |(s, n), &c| (s + c as f64, n + 1));
        // Every confidence is at least 1, so the mean is too.
        let mean = if count == 0 { 1.0 } else { sum / count as f64 };
        raw.into_iter()
            .map(|row| row.into_iter().map(|c| (c as f64 / mean) as f32).collect())
            .collect()
    }

    /// How the run weights, for the log and `metrics.json`.
    pub fn describe(&self) -> String {
        let from = match self.from {
            WeightSource::Column => "the weight column",
            WeightSource::Rating => "the ratings",
        };
        let confidence = match self.confidence {
            Confidence::Linear => format!("1 + {}·w", self.alpha),
            Confidence::Log => format!("1 + {}·ln(1 + w/{})", self.alpha, self.epsilon),
        };
        format!("weights from {from}, confidence {confidence}")
    }

    /// Gives `data` its weights from where `from` says: the ratings, copied, or the weight
    /// column the source read. `source` names the source in errors.
    pub(crate) fn fill(&self, data: &mut Interactions, source: &str) -> Result<()> {
        match self.from {
            WeightSource::Column if data.weights.is_none() => Err(DataError::Invalid(format!(
                "{source}: [weights] needs weights: name the column with data.weight (a delimited, Parquet or PostgreSQL source), or set weights.from = \"rating\""
            ))),
            WeightSource::Column => Ok(()),
            WeightSource::Rating => {
                let Some(ratings) = &data.ratings else {
                    return Err(DataError::Invalid(format!(
                        "{source}: weights.from = \"rating\" needs a rating column, and the data has none"
                    )));
                };
                data.weights = Some(ratings.clone());
                Ok(())
            }
        }
    }
}

/// Refuses a weight that is negative or not a number, naming its interaction: the readers
/// refuse these with their line or row, but ratings taken as weights and data built in code
/// can still hold them.
pub(crate) fn check_weights(data: &Interactions) -> Result<()> {
    let Some(weights) = &data.weights else {
        return Ok(());
    };
    match weights.iter().position(|w| !(*w >= 0.0 && w.is_finite())) {
        None => Ok(()),
        Some(i) => Err(DataError::Invalid(format!(
            "interaction {} (user {}, item {}) has weight {}: weights must be finite numbers, 0 or more",
            i + 1,
            data.users[i],
            data.items[i],
            weights[i]
        ))),
    }
}
