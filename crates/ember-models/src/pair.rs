//! What models that read a user by id share: scored as (user, item) pairs, trained on pairs
//! with sampled negatives (BCE or BPR), scoring every item by scoring every pair unless they
//! have a cheaper factorised form, and exported as their parameters.

use burn::prelude::*;
use ember_spec::ModelSpec;

use crate::config::DenseSplit;
use crate::layers::all_pairs;
use crate::lookup::IdBatch;
use crate::loss::{Loss, pair_loss};
use crate::recommender::{Batch, Export, Query, Recommender};

/// What a pair model holds beside its weights: fixed when it is built, never trained.
#[derive(Debug, Clone)]
pub(crate) struct PairSetup {
    /// The exported sizes.
    pub(crate) spec: ModelSpec,
    /// Items in the catalogue.
    pub(crate) items: usize,
    /// The objective (`train.loss`).
    pub(crate) loss: Loss,
    /// How dense layers split their batch.
    pub(crate) split: DenseSplit,
}

/// A model that scores (user, item) pairs; it answers [`Recommender`] through this.
pub(crate) trait PairModel: burn::module::Module {
    /// Scores (logits) of (user, item) pairs; ids may carry the segment plans of their
    /// gradients (see [`crate::lookup`]).
    ///
    /// # Shapes
    /// - users, items: `[pairs]`
    /// - output: `[pairs]`
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1>;

    /// Scores of every item for each user. The default scores every (user, item) pair.
    ///
    /// # Shapes
    /// - users: `[batch]`
    /// - output: `[batch, num_items]`
    fn score_users(&self, users: Tensor<1, Int>) -> Tensor<2> {
        let batch = users.dims()[0];
        let n = self.num_items();
        let (u, i) = all_pairs(users, n);
        self.score_batch(&u.into(), &i.into()).reshape([batch, n])
    }

    /// What the model was built with.
    fn setup(&self) -> &PairSetup;

    /// Items in the catalogue.
    fn num_items(&self) -> usize {
        self.setup().items
    }
}

impl<M: PairModel> Recommender for M {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let batch = batch.pairs();
        let scores = self.score_batch(&batch.users, &batch.items);
        pair_loss(scores, batch, self.setup().loss)
    }

    fn score_all(&self, query: &Query) -> Tensor<2> {
        self.score_users(query.ids().clone())
    }

    fn score_pairs(&self, query: &Query, rows: Tensor<1, Int>, items: Tensor<1, Int>) -> Tensor<1> {
        let users = query.ids().clone().select(0, rows);
        self.score_batch(&users.into(), &items.into())
    }

    /// The parameters, named by their module paths.
    fn export(&self) -> Export {
        Export::parameters(self.setup().spec.clone(), self)
    }
}
