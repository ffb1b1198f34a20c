//! The model families, one file each, behind one trait: every family answers the same
//! questions ([`Family`]), so the queries (`model.rs`) never special-case a kind. A family's
//! loader names its tensors, once; [`registration`] is the one place that maps a
//! [`ModelSpec`] to its family.

mod autoencoders;
mod autorec;
mod gru4rec;
mod lightgcn;
mod ncf;
mod transformers;

use std::fmt::Debug;
use std::sync::Arc;

use crate::source::{Stored, TensorSource};
use crate::{InferError, ModelSpec};

/// A loaded model's scores. Users and items are internal ids, in range.
pub(crate) trait Family: Debug + Send + Sync {
    /// Scores of every item, in item order, for each user of `users`.
    ///
    /// # Shapes
    /// - users: `[batch]`
    /// - output: `[batch][items]`
    fn user_scores(&self, users: &[usize]) -> Vec<Vec<f32>>;

    /// Scores of `(user, item)` pairs, in their order.
    fn pair_scores(&self, pairs: &[(usize, usize)]) -> Vec<f32>;

    /// Scores of every item for a user given by their items (oldest first; unknown ones
    /// already dropped) rather than by id: how a history-based family serves a user it was not
    /// trained on. By default a family scores only the users it was trained on.
    fn history_scores(&self, items: &[u32]) -> Result<Vec<f32>, ById> {
        let _ = items;
        Err(ById)
    }

    /// Scores of `item` for each of the first `users` users (all of them), in user order.
    fn audience_scores(&self, item: usize, users: usize) -> Vec<f32> {
        let pairs: Vec<(usize, usize)> = (0..users).map(|u| (u, item)).collect();
        self.pair_scores(&pairs)
    }
}

/// The answer of a family that scores only the users it was trained on, by id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ById;

impl ById {
    /// The error a query by history gets from a model of `kind`.
    pub(crate) fn error(self, kind: &str) -> InferError {
        InferError::Unsupported(format!(
            "model kind `{kind}` scores the users it was trained on by id: ask with `user`, \
             not `history`"
        ))
    }
}

type Loader<'a> = Box<dyn FnOnce(&TensorSource<'_>) -> Result<Arc<dyn Family>, InferError> + 'a>;

/// A family as the export sees it: what it stores beside its weights, and its loader.
pub(crate) struct Registration<'a> {
    /// What the export stores to score the users it was trained on.
    pub(crate) stored: Stored,
    load: Loader<'a>,
}

impl<'a> Registration<'a> {
    fn new<F: Family + 'static>(
        stored: Stored,
        load: impl FnOnce(&TensorSource<'_>) -> Result<F, InferError> + 'a,
    ) -> Self {
        Self {
            stored,
            load: Box::new(move |src| Ok(Arc::new(load(src)?) as Arc<dyn Family>)),
        }
    }

    /// Loads the family from `src`.
    pub(crate) fn load(self, src: &TensorSource<'_>) -> Result<Arc<dyn Family>, InferError> {
        (self.load)(src)
    }
}

/// The family of `spec` (which [`ModelSpec::validate`] accepted).
pub(crate) fn registration(spec: &ModelSpec) -> Registration<'_> {
    use Stored::*;
    use autoencoders::Flavour;
    match spec {
        ModelSpec::Mf(s) => Registration::new(Nothing, |src| ncf::load_mf(s, src)),
        ModelSpec::Gmf(s) => Registration::new(Nothing, |src| ncf::load_gmf(s, src)),
        ModelSpec::Mlp(s) => Registration::new(Nothing, |src| ncf::Mlp::load(s, src)),
        ModelSpec::NeuMf(s) => Registration::new(Nothing, |src| ncf::NeuMf::load(s, src)),
        ModelSpec::MultDae(s) => Registration::new(ItemSets, |src| {
            autoencoders::Autoencoder::load_mult(s, Flavour::Dae, src)
        }),
        ModelSpec::MultVae(s) => Registration::new(ItemSets, |src| {
            autoencoders::Autoencoder::load_mult(s, Flavour::Vae, src)
        }),
        ModelSpec::Cdae(s) => {
            Registration::new(ItemSets, |src| autoencoders::Autoencoder::load_cdae(s, src))
        }
        ModelSpec::AutoRec(s) => Registration::new(Ratings, |src| autorec::AutoRec::load(s, src)),
        ModelSpec::SasRec(s) => Registration::new(Sequences, |src| {
            transformers::Transformer::load(s, transformers::Variant::SasRec, src)
        }),
        ModelSpec::Bert4Rec(s) => Registration::new(Sequences, |src| {
            transformers::Transformer::load(s, transformers::Variant::Bert4Rec, src)
        }),
        ModelSpec::LightGcn(s) => Registration::new(Nothing, |src| lightgcn::load(s, src)),
        ModelSpec::Gru4Rec(s) => Registration::new(Sequences, |src| gru4rec::Gru4Rec::load(s, src)),
    }
}

/// Pair scores of a family that computes a whole row of scores at once (a user's every item, or
/// an item's every user): each distinct row of the pairs is decoded once, whatever the order of
/// the pairs. `row_of(u, i)` is the pair's row; `decode(row, u, out)` writes the row's scores
/// given a user of it; `pick(u, i, decoded)` reads the pair's score.
pub(crate) fn pair_scores_by_row(
    pairs: &[(usize, usize)],
    row_of: impl Fn(usize, usize) -> usize,
    mut decode: impl FnMut(usize, usize, &mut Vec<f32>),
    pick: impl Fn(usize, usize, &[f32]) -> f32,
) -> Vec<f32> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&k| row_of(pairs[k].0, pairs[k].1));
    let mut scores = vec![0.0f32; pairs.len()];
    let (mut decoded, mut current) = (Vec::new(), None);
    for k in order {
        let (u, i) = pairs[k];
        let row = row_of(u, i);
        if current != Some(row) {
            decode(row, u, &mut decoded);
            current = Some(row);
        }
        scores[k] = pick(u, i, &decoded);
    }
    scores
}
