//! Recommendation models as burn modules, all built into one [`Model`] enum from the serde-tagged
//! [`ModelConfig`], so configs, the trainer and the evaluator handle every model alike.
//!
//! Models read a user in one of two ways ([`Model::kind`]):
//! - by user id ([`Recommender`]: the NCF family): the loss on a batch of (user, item) pairs with
//!   sampled negatives, scores for given pairs, scores for every item;
//! - by the user's interaction row ([`RowModel`]: the autoencoders): the loss on a batch of rows,
//!   scores for every item from a row. These score users unseen in training (fold-in);
//! - as rows of the explicit rating matrix ([`RatingModel`]: AutoRec), predicting ratings;
//! - by the user's item sequence ([`SequenceModel`]: SASRec, BERT4Rec): the loss on a batch of
//!   sequence windows, scores for every item as the next one.
//!
//! One file per model family.

pub mod autorec;
pub mod bert4rec;
pub mod cdae;
mod config;
mod export;
pub mod layers;
pub mod lookup;
mod loss;
pub mod multvae;
pub mod ncf;
pub mod sasrec;
mod sequence;

pub use autorec::{AutoRec, AutoRecConfig, RatingModel};
pub use bert4rec::{Bert4Rec, Bert4RecConfig};
pub use cdae::{Cdae, CdaeConfig};
pub use config::{ModelConfig, ModelError};
pub use export::NamedTensor;
pub use lookup::{IdBatch, SegmentPlan};
pub use loss::{EpochPairs, Loss, PairBatch};
pub use multvae::{MultDae, MultDaeConfig, MultVae, MultVaeConfig, UserRows};
pub use ncf::{Gmf, GmfConfig, Mf, MfConfig, Mlp, MlpConfig, NeuMf, NeuMfConfig};
pub use sasrec::{SasRec, SasRecConfig};
pub use sequence::{SequenceBatch, SequenceLoss, SequenceModel, SequenceTask};

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

/// Models that read a user as their interaction row instead of a user id (the autoencoders).
pub trait RowModel {
    /// Scores (logits) of every item for each user row (`users` are the rows' user ids, read
    /// only by models with [`Self::uses_user_ids`]).
    ///
    /// # Shapes
    /// - users: `[batch]`
    /// - rows: `[batch, num_items]` (1 where the user interacted)
    /// - output: `[batch, num_items]`
    fn score_rows(&self, users: Tensor<1, Int>, rows: Tensor<2>) -> Tensor<2>;

    /// The training loss of a batch of user rows (a scalar).
    ///
    /// # Shapes
    /// - output: `[1]`
    fn row_loss(&self, batch: &UserRows) -> Tensor<1>;

    /// Number of items the model scores.
    fn num_items(&self) -> usize;

    /// Whether the model also learns a vector per user id (CDAE's user node). Such a model
    /// trains on every user's row, the fold-in part of held-out users included, as id-based
    /// models do; the others train on the training users only.
    fn uses_user_ids(&self) -> bool {
        false
    }
}

/// How a model reads users: by id, or by interaction row.
pub enum ModelKind<'a> {
    /// Trained on (user, item) pairs with sampled negatives.
    Pairs(&'a dyn Recommender),
    /// Trained on batches of user rows.
    Rows(&'a dyn RowModel),
    /// Predicts explicit ratings (AutoRec); trained on rows of the rating matrix.
    Ratings(&'a dyn RatingModel),
    /// Reads the user's items in time order; trained on windows of their sequences.
    Sequences(&'a dyn SequenceModel),
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
    /// Denoising autoencoder with a multinomial likelihood.
    MultDae(MultDae),
    /// Variational autoencoder with a multinomial likelihood.
    MultVae(MultVae),
    /// Collaborative denoising autoencoder (with a user node).
    Cdae(Cdae),
    /// Autoencoder rating prediction.
    AutoRec(AutoRec),
    /// Self-attentive sequential recommendation (causal transformer).
    SasRec(SasRec),
    /// Bidirectional transformer trained on masked items.
    Bert4Rec(Bert4Rec),
}

impl Model {
    /// The model's interface for its kind of input.
    pub fn kind(&self) -> ModelKind<'_> {
        match self {
            Model::Mf(m) => ModelKind::Pairs(m),
            Model::Gmf(m) => ModelKind::Pairs(m),
            Model::Mlp(m) => ModelKind::Pairs(m),
            Model::NeuMf(m) => ModelKind::Pairs(m),
            Model::MultDae(m) => ModelKind::Rows(m),
            Model::MultVae(m) => ModelKind::Rows(m),
            Model::Cdae(m) => ModelKind::Rows(m),
            Model::AutoRec(m) => ModelKind::Ratings(m),
            Model::SasRec(m) => ModelKind::Sequences(m),
            Model::Bert4Rec(m) => ModelKind::Sequences(m),
        }
    }

    /// Number of items the model scores (`None` for rating models, which predict ratings).
    pub fn num_items(&self) -> Option<usize> {
        match self.kind() {
            ModelKind::Pairs(m) => Some(m.num_items()),
            ModelKind::Rows(m) => Some(m.num_items()),
            ModelKind::Sequences(m) => Some(m.num_items()),
            ModelKind::Ratings(_) => None,
        }
    }
}
