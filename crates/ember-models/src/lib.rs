//! Recommendation models as burn modules, all behind one interface ([`Recommender`]): the loss on
//! a batch, scores for given (user, item) candidates, and scores for every item.
//!
//! One file per model family. Models are chosen from configs through the serde-tagged
//! [`ModelConfig`] enum, and built into the [`Model`] enum, so the trainer and the evaluator never
//! special-case a model.

mod config;
mod export;
pub mod layers;
pub mod lookup;
mod loss;
pub mod ncf;

pub use config::{ModelConfig, ModelError};
pub use export::NamedTensor;
pub use lookup::{IdBatch, SegmentPlan};
pub use loss::{EpochPairs, Loss, PairBatch};
pub use ncf::{Gmf, GmfConfig, Mf, MfConfig, Mlp, MlpConfig, NeuMf, NeuMfConfig};

use burn::prelude::*;

/// What every model answers.
pub trait Recommender {
    /// Scores of (user, item) pairs (logits: higher is better); ids may carry the segment plans
    /// of their gradients (see [`lookup`]).
    ///
    /// # Shapes
    /// - users: `[batch]`, items: `[batch]`
    /// - output: `[batch]`
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1>;

    /// Scores of (user, item) pairs (logits: higher is better).
    ///
    /// # Shapes
    /// - users: `[batch]`, items: `[batch]`
    /// - output: `[batch]`
    fn score_pairs(&self, users: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        self.score_batch(&users.into(), &items.into())
    }

    /// Scores of every item for each user.
    ///
    /// # Shapes
    /// - users: `[batch]`
    /// - output: `[batch, num_items]`
    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2>;

    /// Number of items the model scores.
    fn num_items(&self) -> usize;

    /// The training loss of a batch of positives with sampled negatives (a scalar).
    ///
    /// # Shapes
    /// - output: `[1]`
    fn loss(&self, batch: &PairBatch, loss: Loss) -> Tensor<1> {
        loss::pair_loss(self, batch, loss)
    }
}

/// Any model ember can train, as one module type.
#[derive(Module, Debug)]
pub enum Model {
    /// Matrix factorisation.
    Mf(Mf),
    /// Generalized matrix factorisation.
    Gmf(Gmf),
    /// Multi-layer perceptron over concatenated embeddings.
    Mlp(Mlp),
    /// GMF and MLP fused.
    NeuMf(NeuMf),
}

impl Model {
    fn inner(&self) -> &dyn Recommender {
        match self {
            Model::Mf(m) => m,
            Model::Gmf(m) => m,
            Model::Mlp(m) => m,
            Model::NeuMf(m) => m,
        }
    }
}

impl Recommender for Model {
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1> {
        self.inner().score_batch(users, items)
    }

    fn score_all(&self, users: Tensor<1, Int>) -> Tensor<2> {
        self.inner().score_all(users)
    }

    fn num_items(&self) -> usize {
        self.inner().num_items()
    }
}
