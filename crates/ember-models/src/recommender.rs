//! The one interface every model answers, in the spirit of RecBole's three questions (the loss
//! on a batch, scores for candidates, scores for all items) and burn's `TrainStep`.
//!
//! A model's config says what the model reads of a user ([`Input`]); ember-train's `batches`
//! module builds that input, for training ([`Batch`]) and for scoring ([`Query`]), and asks the
//! model through [`Recommender`]. Nothing outside this crate asks which model it holds.

use burn::prelude::*;
use ember_spec::ModelSpec;

use crate::export::NamedTensor;
use crate::lookup::IdBatch;
use crate::sequence::SequenceTask;

/// What a model reads of a user: it decides how training batches and scoring inputs are built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// (user, item) pairs with sampled negatives: models with a vector per user id (the NCF
    /// family, LightGCN).
    Pairs,
    /// Each user's item row, made dense one batch at a time (the autoencoders). With `by_id` the
    /// model also learns a vector per user id (CDAE), so it trains on every user's row, the
    /// fold-in part of held-out users included, as id-based models do.
    UserRows {
        /// The model reads the user id too.
        by_id: bool,
    },
    /// Rows of the explicit rating matrix: items' ratings by every user when `item_based`, else
    /// users' ratings of every item. The model predicts ratings (RMSE, MAE), not rankings.
    RatingRows {
        /// Rows are items.
        item_based: bool,
    },
    /// Each user's items in time order, as windows of `max_len` tokens
    /// ([`ember_spec::tokens`]).
    Sequences {
        /// Window length.
        max_len: usize,
        /// How training examples are made.
        task: SequenceTask,
    },
}

impl Input {
    /// Whether the model predicts explicit ratings (evaluated by RMSE and MAE) rather than
    /// ranking items.
    pub fn predicts_ratings(&self) -> bool {
        matches!(self, Input::RatingRows { .. })
    }

    /// Whether the model reads each user's items in time order.
    pub fn reads_sequences(&self) -> bool {
        matches!(self, Input::Sequences { .. })
    }
}

/// A training batch, of the kind the model's [`Input`] names.
// A batch is built once per step and moved, never stored in bulk: boxing would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Batch {
    /// Positive pairs with their negatives, or labelled pairs.
    Pairs(PairBatch),
    /// Users' item rows.
    UserRows(UserRows),
    /// `[rows, width]` rows of the rating matrix (0 where unrated).
    RatingRows(Tensor<2>),
    /// Sequence windows with their targets.
    Sequences(SequenceBatch),
}

impl Batch {
    fn kind(&self) -> &'static str {
        match self {
            Batch::Pairs(_) => "pairs",
            Batch::UserRows(_) => "user rows",
            Batch::RatingRows(_) => "rating rows",
            Batch::Sequences(_) => "sequences",
        }
    }

    fn wrong(&self, wanted: &str) -> ! {
        panic!(
            "a model that reads {wanted} was given a batch of {}: batches are built from the model's Input",
            self.kind()
        )
    }

    /// The pair batch of a pair model.
    pub fn pairs(&self) -> &PairBatch {
        match self {
            Batch::Pairs(b) => b,
            other => other.wrong("pairs"),
        }
    }

    /// The user rows of a row model.
    pub fn user_rows(&self) -> &UserRows {
        match self {
            Batch::UserRows(b) => b,
            other => other.wrong("user rows"),
        }
    }

    /// The rating rows of a rating model.
    pub fn rating_rows(&self) -> &Tensor<2> {
        match self {
            Batch::RatingRows(b) => b,
            other => other.wrong("rating rows"),
        }
    }

    /// The windows of a sequence model.
    pub fn sequences(&self) -> &SequenceBatch {
        match self {
            Batch::Sequences(b) => b,
            other => other.wrong("sequences"),
        }
    }
}

/// What a model is given to score every item, of the kind its [`Input`] names.
// A batch is built once per step and moved, never stored in bulk: boxing would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Query {
    /// `[users]` user ids.
    Ids(Tensor<1, Int>),
    /// Users' item rows (the training items; a held-out user's fold-in items).
    UserRows(UserRows),
    /// `[rows, width]` rows of the rating matrix to reconstruct.
    RatingRows(Tensor<2>),
    /// `[users, max_len]` windows of each user's latest items.
    Windows(Tensor<2, Int>),
}

impl Query {
    fn kind(&self) -> &'static str {
        match self {
            Query::Ids(_) => "user ids",
            Query::UserRows(_) => "user rows",
            Query::RatingRows(_) => "rating rows",
            Query::Windows(_) => "windows",
        }
    }

    fn wrong(&self, wanted: &str) -> ! {
        panic!(
            "a model that reads {wanted} was asked with {}: queries are built from the model's Input",
            self.kind()
        )
    }

    /// The user ids of an id-based model's query.
    pub fn ids(&self) -> &Tensor<1, Int> {
        match self {
            Query::Ids(ids) => ids,
            other => other.wrong("user ids"),
        }
    }

    /// The rows of a row model's query.
    pub fn user_rows(&self) -> &UserRows {
        match self {
            Query::UserRows(rows) => rows,
            other => other.wrong("user rows"),
        }
    }

    /// The rows of a rating model's query.
    pub fn rating_rows(&self) -> &Tensor<2> {
        match self {
            Query::RatingRows(rows) => rows,
            other => other.wrong("rating rows"),
        }
    }

    /// The windows of a sequence model's query.
    pub fn windows(&self) -> &Tensor<2, Int> {
        match self {
            Query::Windows(tokens) => tokens,
            other => other.wrong("windows"),
        }
    }
}

/// A batch of (user, item) pairs, flattened for one forward pass.
#[derive(Debug, Clone)]
pub struct PairBatch {
    /// `[pairs]` users.
    pub users: IdBatch,
    /// `[pairs]` items.
    pub items: IdBatch,
    /// What the pairs are trained towards.
    pub targets: PairTargets,
    /// `[positives]`: each positive's confidence (its loss term is multiplied by it), when
    /// the run weights interactions; `None` weighs every positive alike. Only with
    /// [`PairTargets::Sampled`].
    pub confidence: Option<Tensor<1>>,
}

/// What a [`PairBatch`]'s pairs are trained towards.
// A batch is built once per step and moved, never stored in bulk: boxing would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum PairTargets {
    /// The first `positives` pairs are positives; then come `negatives_per_positive` sampled
    /// negatives per positive, positive by positive (`[positives, k]` row-major).
    Sampled {
        /// Positives in the batch.
        positives: usize,
        /// Negatives per positive (`k`).
        negatives_per_positive: usize,
    },
    /// `[pairs]` a label (1 or 0) for each pair: the throughput benchmark's pointwise data.
    Labels(Tensor<1>),
}

/// A batch of users as rows of the user × item matrix, given by their items (sparse): the
/// models that read the rows densely make them dense on the device ([`UserRows::dense`]).
#[derive(Debug, Clone)]
pub struct UserRows {
    /// `[batch]`: the rows' user ids.
    pub users: Tensor<1, Int>,
    /// `[interactions]`: every row's items (distinct within a row), row after row.
    pub items: Tensor<1, Int>,
    /// `[interactions]`: the row (`0..batch`) of each of `items`, ascending.
    pub item_rows: Tensor<1, Int>,
    /// Items in the catalogue: the width of a row.
    pub num_items: usize,
    /// `[interactions]`: the count of each of `items` (its weight), when the run weights
    /// interactions; `None` counts each once. Only the models that read counts (Mult-VAE,
    /// Mult-DAE) are given them.
    pub values: Option<Tensor<1>>,
}

impl UserRows {
    /// Rows in the batch.
    pub fn batch(&self) -> usize {
        self.users.dims()[0]
    }

    /// `[batch, num_items]`: 1 where the user interacted with the item (its count, with
    /// [`UserRows::values`]), 0 elsewhere.
    pub fn dense(&self) -> Tensor<2> {
        let (batch, device) = (self.batch(), self.users.device());
        let positions = self.item_rows.clone() * self.num_items as i64 + self.items.clone();
        let values = match &self.values {
            Some(values) => values.clone(),
            None => Tensor::<1>::ones([positions.dims()[0]], &device),
        };
        Tensor::<1>::zeros([batch * self.num_items], &device)
            .select_assign(0, positions, values, burn::tensor::IndexingUpdateOp::Add)
            .reshape([batch, self.num_items])
    }

    /// `[interactions]`: each row's entries of the L2-normalised row, `1 / √(its items)`, or
    /// with [`UserRows::values`] `w / ‖w‖₂` (0 for a row whose counts are all 0).
    pub fn normalised_values(&self) -> Tensor<1> {
        let device = self.users.device();
        let count = self.items.dims()[0];
        let Some(values) = &self.values else {
            let sizes = Tensor::<1>::zeros([self.batch()], &device).select_assign(
                0,
                self.item_rows.clone(),
                Tensor::<1>::ones([count], &device),
                burn::tensor::IndexingUpdateOp::Add,
            );
            return sizes.select(0, self.item_rows.clone()).sqrt().recip();
        };
        let squares = Tensor::<1>::zeros([self.batch()], &device).select_assign(
            0,
            self.item_rows.clone(),
            values.clone().powi_scalar(2),
            burn::tensor::IndexingUpdateOp::Add,
        );
        // The bound keeps an all-zero row at 0 instead of 0/0, as TensorFlow's l2_normalize.
        let norms = squares.sqrt().clamp_min(1e-12);
        values.clone() / norms.select(0, self.item_rows.clone())
    }
}

/// A batch of sequence windows with their targets, on the device.
#[derive(Debug, Clone)]
pub struct SequenceBatch {
    /// `[rows, max_len]` input tokens.
    pub inputs: Tensor<2, Int>,
    /// `[targets]` the flat positions (`row * max_len + t`) that have a target.
    pub positions: Tensor<1, Int>,
    /// `[targets]` the internal item id to predict at each of those positions.
    pub targets: Tensor<1, Int>,
    /// `[targets, k]` sampled negative items, for losses that use them.
    pub negatives: Option<Tensor<2, Int>>,
}

/// What an exported model is made of: its spec and its tensors.
#[derive(Debug, Clone)]
pub struct Export {
    /// Kind and sizes.
    pub spec: ModelSpec,
    /// Every tensor the inference side loads, by name.
    pub tensors: Vec<NamedTensor>,
}

impl Export {
    /// The export of a model whose parameters are what inference reads, named by their module
    /// paths (`gmf_users.weight`, `tower.layers.0.bias`, `blocks.1.attention.query.weight`).
    pub fn parameters<M: Module>(spec: ModelSpec, model: &M) -> Self {
        Self {
            spec,
            tensors: crate::export::named_parameters(model),
        }
    }
}

/// What every model answers.
pub trait Recommender {
    /// The training loss of a batch of the model's input kind, a scalar. `step` counts the
    /// optimiser steps before this batch (annealed terms read it).
    ///
    /// # Shapes
    /// - output: `[1]`
    fn loss(&self, batch: &Batch, step: usize) -> Tensor<1>;

    /// Scores of every item (logits, higher is better; predicted ratings for rating models) for
    /// each user of `query` (each row, for rating models).
    ///
    /// # Shapes
    /// - query: `[users, …]`
    /// - output: `[users, num_items]` (`[rows, width]` for rating models)
    fn score_all(&self, query: &Query) -> Tensor<2>;

    /// Scores of pairs: `items[k]` for the user in row `rows[k]` of `query`. The default scores
    /// every item and picks the pairs; id-based models score the pairs alone.
    ///
    /// # Shapes
    /// - rows, items: `[pairs]`
    /// - output: `[pairs]`
    fn score_pairs(&self, query: &Query, rows: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let all = self.score_all(query);
        let [users, n] = all.dims();
        let flat = rows.mul_scalar(n as i64) + items;
        all.reshape([users * n]).select(0, flat)
    }

    /// The model as ember-infer loads it.
    fn export(&self) -> Export;
}
