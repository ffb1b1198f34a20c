//! What every model config answers, and what every model is built from.

use ember_spec::SpecError;

use crate::dropout::Masks;
use crate::{Input, Loss, Model, ModelConfig};

/// Invalid model hyper-parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// An architecture no model can be built with (shared with the exported spec's checks).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A non-positive or non-finite initialisation scale.
    #[error("model.init_std must be a positive number, got {0}")]
    BadInitStd(f64),
    /// α outside [0, 1].
    #[error("model.alpha must lie in [0, 1], got {0}")]
    BadAlpha(f64),
    /// A dropout probability outside [0, 1).
    #[error("model.dropout must lie in [0, 1), got {0}")]
    BadDropout(f64),
    /// A negative or non-finite weight of a loss term.
    #[error("model.{key} must be a non-negative number, got {value}")]
    BadWeight {
        /// The config key.
        key: &'static str,
        /// Its value.
        value: f64,
    },
    /// A mask probability outside (0, 1).
    #[error("model.mask_prob must lie strictly between 0 and 1, got {0}")]
    BadMaskProb(f64),
    /// A sampled loss without negatives.
    #[error("model.negatives must be at least 1 for loss `{0}`")]
    NoNegatives(&'static str),
}

/// `Err` unless `p` lies in [0, 1).
pub(crate) fn check_dropout(p: f64) -> Result<(), ModelError> {
    if !(0.0..1.0).contains(&p) {
        return Err(ModelError::BadDropout(p));
    }
    Ok(())
}

/// `Err` unless `std` is a positive number.
pub(crate) fn check_init_std(std: f64) -> Result<(), ModelError> {
    if !(std > 0.0 && std.is_finite()) {
        return Err(ModelError::BadInitStd(std));
    }
    Ok(())
}

/// `Err` unless `value` is a non-negative number.
pub(crate) fn check_weight(key: &'static str, value: f64) -> Result<(), ModelError> {
    if !(value >= 0.0 && value.is_finite()) {
        return Err(ModelError::BadWeight { key, value });
    }
    Ok(())
}

/// How dense layers split their batch into a product over chunks (see [`crate::layers::dense`]):
/// at most `groups` chunks (rounded down to a power of two; 1 = never split) of at least
/// `min_rows` rows each. A setting of the device the model trains on, given at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseSplit {
    /// Most chunks.
    pub groups: usize,
    /// Fewest rows per chunk.
    pub min_rows: usize,
}

impl DenseSplit {
    /// Plain products, never split.
    pub const NONE: Self = Self {
        groups: 1,
        min_rows: 1,
    };
}

impl Default for DenseSplit {
    fn default() -> Self {
        Self::NONE
    }
}

/// What a model is built for.
#[derive(Debug, Clone, Copy)]
pub struct ModelInit<'a> {
    /// Users (rows of the user tables).
    pub users: usize,
    /// Items in the catalogue.
    pub items: usize,
    /// Each user's training items, in time order (graph models build their graph from them).
    pub train: &'a [Vec<u32>],
    /// How the device splits dense layers.
    pub dense: DenseSplit,
    /// The objective of pair models (`train.loss`).
    pub pair_loss: Loss,
    /// Where the device draws dropout masks.
    pub masks: Masks,
}

impl<'a> ModelInit<'a> {
    /// A model for `train.len()` users and `items` items, as a CPU backend builds it: plain
    /// dense layers, dropout masks on the host, BCE for pair models.
    pub fn new(items: usize, train: &'a [Vec<u32>]) -> Self {
        Self {
            users: train.len(),
            items,
            train,
            dense: DenseSplit::NONE,
            pair_loss: Loss::Bce,
            masks: Masks::Host,
        }
    }
}

/// What a model makes of interaction weights ([`ModelSettings::weight_use`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightUse {
    /// Each positive's loss term is multiplied by its confidence (pair models).
    Confidence,
    /// The weights are the counts of the user's row, in its input and its multinomial target
    /// (Mult-VAE, Mult-DAE).
    Counts,
    /// The model trains as without weights.
    Ignored,
}

/// Stages trained before a model that starts from their results (NeuMF from GMF and MLP).
pub struct Pretraining {
    /// Each stage's name and model, trained in order.
    pub stages: Vec<(&'static str, ModelConfig)>,
    /// Builds the model from the stages' trained models, in the same order.
    pub assemble: Box<dyn Fn(Vec<Model>) -> Model>,
}

/// What every model's config answers.
pub trait ModelSettings {
    /// What the model reads of a user.
    fn input(&self) -> Input;

    /// Checks the hyper-parameters.
    fn validate(&self) -> Result<(), ModelError>;

    /// The parameters of the model built for `users` users and `items` items, counted from the
    /// config alone (before anything is allocated), saturating instead of overflowing.
    fn parameter_count(&self, users: usize, items: usize) -> u128;

    /// What the model makes of interaction weights. By default pair models (the NCF family,
    /// LightGCN) take them as confidences and every other model ignores them.
    fn weight_use(&self) -> WeightUse {
        match self.input() {
            Input::Pairs => WeightUse::Confidence,
            _ => WeightUse::Ignored,
        }
    }

    /// Stages to train first, when this model starts from other trained models.
    fn pretraining(&self) -> Option<Pretraining> {
        None
    }

    /// Whether `init` reads [`ModelInit::train`] (LightGCN builds its graph from it; every
    /// model fitted at init is fitted on it): such a model needs the training interactions
    /// even where bare pairs would feed its loss (the training benchmark).
    fn built_from_train(&self) -> bool {
        self.fitted_at_init()
    }

    /// The model is fitted in one pass when it is built (`init` reads `ModelInit::train`), has
    /// no trainable parameters, and is trained for no epochs: the trainer validates it once as
    /// built (epoch 0) and keeps it; its refit is a rebuild on training + validation data.
    fn fitted_at_init(&self) -> bool {
        false
    }

    /// Values the model built for `users` users and `items` items holds beside its parameters
    /// (fitted, not trained: no gradient, no optimiser state), counted from the config alone
    /// and saturating, as [`Self::parameter_count`]: ItemKNN's neighbour lists. Most models
    /// hold none.
    fn held_values(&self, users: usize, items: usize) -> u128 {
        let _ = (users, items);
        0
    }
}
