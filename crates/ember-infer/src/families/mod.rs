//! The model families, one file each, behind one trait: every family answers the same
//! questions ([`Family`]), so the queries (`model.rs`) never special-case a kind. A family's
//! loader names its tensors, once; [`registration`] is the one place that maps a
//! [`ModelSpec`] to its family.

mod autoencoders;
mod autorec;
mod gru4rec;
mod item_knn;
mod lightgcn;
mod ncf;
mod transformers;

use std::fmt::Debug;
use std::sync::Arc;

use crate::source::{Stored, TensorSource};
use crate::{InferError, ModelSpec, ScoreScale};

/// The most items of a user an occlusion explanation removes one at a time (each removal is
/// one more forward pass). Beyond it, a sequence model removes its latest items; Mult-DAE,
/// Mult-VAE and CDAE the items whose encoder rows have the largest norm `‖W₁[j]‖`;
/// U-AutoRec those with the largest `|r_j| ‖V[j]‖` (the items that move the first layer
/// most).
pub const MAX_OCCLUDED: usize = 256;

/// Whose scores an explanation is about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    /// A user of the training data, with their known items (`None`: the export stores none).
    User {
        /// Internal user id.
        user: usize,
        /// The user's known items, sorted and distinct.
        known: Option<&'a [u32]>,
    },
    /// A user given by their items, oldest first (history-based families).
    History(&'a [u32]),
}

/// Why a family cannot explain a subject.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unexplained {
    /// The family scores only users it was trained on, by id, and was asked about a history.
    ById(ById),
    /// The family explains by the user's known items, and the export stores none.
    NoKnownItems,
}

/// A loaded model's scores. Users and items are internal ids, in range.
///
/// The families that decode one row of scores per user from the user's items (the
/// autoencoders, GRU4Rec, the transformers) give [`Family::user_row`] and
/// [`Family::history_row`], and the queries default to them; the others score many users or
/// pairs at once, and give their own [`Family::user_scores`] and [`Family::pair_scores`].
pub(crate) trait Family: Debug + Send + Sync {
    /// Scores of every item, in item order, for the user `user` of the training data, into
    /// `out` (one row of scores).
    ///
    /// # Shapes
    /// - output: `[items]`
    fn user_row(&self, user: usize, out: &mut Vec<f32>);

    /// Scores of every item for a user given by their items (oldest first; unknown ones
    /// already dropped) rather than by id, into `out`: how a history-based family serves a
    /// user it was not trained on. By default a family scores only the users it was trained
    /// on.
    fn history_row(&self, items: &[u32], out: &mut Vec<f32>) -> Result<(), ById> {
        let _ = (items, out);
        Err(ById)
    }

    /// Scores of every item, in item order, for each user of `users`: by default one
    /// [`Family::user_row`] each.
    ///
    /// # Shapes
    /// - users: `[batch]`
    /// - output: `[batch][items]`
    fn user_scores(&self, users: &[usize]) -> Vec<Vec<f32>> {
        users
            .iter()
            .map(|&u| {
                let mut scores = Vec::new();
                self.user_row(u, &mut scores);
                scores
            })
            .collect()
    }

    /// Scores of `(user, item)` pairs, in their order: by default one [`Family::user_row`]
    /// per distinct user of the pairs.
    fn pair_scores(&self, pairs: &[(usize, usize)]) -> Vec<f32> {
        pair_scores_by_row(
            pairs,
            |u, _| u,
            |u, _, out| self.user_row(u, out),
            |_, i, decoded| decoded[i],
        )
    }

    /// The [`Family::history_row`] of `items`.
    fn history_scores(&self, items: &[u32]) -> Result<Vec<f32>, ById> {
        let mut scores = Vec::new();
        self.history_row(items, &mut scores)?;
        Ok(scores)
    }

    /// Scores of `item` for each of the first `users` users (all of them), in user order.
    fn audience_scores(&self, item: usize, users: usize) -> Vec<f32> {
        let pairs: Vec<(usize, usize)> = (0..users).map(|u| (u, item)).collect();
        self.pair_scores(&pairs)
    }

    /// For each of `targets`, how much each of the subject's own items weighs in its score:
    /// `(item, weight)` pairs, higher meaning "more because of it", naming only the subject's
    /// items (the known items of a user, or the items of a history). Each family computes it
    /// from its own structure (item similarity, attention, or occlusion; see its file).
    fn explain(
        &self,
        subject: Subject<'_>,
        targets: &[usize],
    ) -> Result<Vec<Vec<(u32, f32)>>, Unexplained>;

    /// The user's representation: the vector the family scores every item from (an
    /// embedding, an encoder's code, a sequence's last state), for segmenting users.
    fn user_vector(&self, user: usize) -> Result<Vec<f32>, InferError>;

    /// What the scores are, as the family's default objective makes them.
    fn score_scale(&self) -> ScoreScale {
        ScoreScale::Logits
    }
}

/// For each target, the cosine similarity of its vector with each of `own` items' (the
/// target itself left out): the item–item explanation of the embedding models.
pub(crate) fn cosine_because(
    targets: &[usize],
    own: &[u32],
    vector: impl Fn(usize) -> Vec<f32>,
) -> Vec<Vec<(u32, f32)>> {
    let unit = |i: usize| {
        let mut v = vector(i);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    };
    let own_units: Vec<(u32, Vec<f32>)> = own.iter().map(|&c| (c, unit(c as usize))).collect();
    targets
        .iter()
        .map(|&t| {
            let target = unit(t);
            own_units
                .iter()
                .filter(|(c, _)| *c as usize != t)
                .map(|(c, v)| (*c, crate::kernels::dot(&target, v)))
                .collect()
        })
        .collect()
}

/// The distinct items of a history, sorted: the set the models that read item sets (the
/// autoencoders, ItemKNN) take, whatever the order and repeats a caller gives.
pub(crate) fn item_set(items: &[u32]) -> Vec<u32> {
    let mut set = items.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

/// The distinct items of `items` an occlusion explanation removes: all of them up to
/// [`MAX_OCCLUDED`]; beyond it, the [`MAX_OCCLUDED`] of highest `priority` (ties by item id).
pub(crate) fn occlusion_candidates(items: &[u32], priority: impl Fn(u32) -> f32) -> Vec<u32> {
    let mut distinct = items.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > MAX_OCCLUDED {
        let mut ranked: Vec<(f32, u32)> = distinct.iter().map(|&i| (priority(i), i)).collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        distinct = ranked[..MAX_OCCLUDED].iter().map(|&(_, i)| i).collect();
        distinct.sort_unstable();
    }
    distinct
}

/// The latest [`MAX_OCCLUDED`] distinct items of a sequence (oldest first), as candidates.
pub(crate) fn latest_candidates(sequence: &[u32]) -> Vec<u32> {
    let last_seen = |item: u32| sequence.iter().rposition(|&i| i == item).unwrap_or(0) as f32;
    occlusion_candidates(sequence, last_seen)
}

/// Occlusion: for each target, the drop in its score when each `candidate` is removed from
/// `input` (every occurrence), `score(input)` giving the targets' scores for an input. One
/// call of `score` for the whole input, then one per candidate, whatever the number of
/// targets.
pub(crate) fn occlusion_because(
    input: &[u32],
    candidates: &[u32],
    targets: &[usize],
    mut score: impl FnMut(&[u32]) -> Vec<f32>,
) -> Vec<Vec<(u32, f32)>> {
    let base = score(input);
    let mut out: Vec<Vec<(u32, f32)>> = vec![Vec::with_capacity(candidates.len()); targets.len()];
    let mut without = Vec::with_capacity(input.len());
    for &c in candidates {
        without.clear();
        without.extend(input.iter().copied().filter(|&i| i != c));
        let scores = score(&without);
        for ((because, b), s) in out.iter_mut().zip(&base).zip(scores) {
            because.push((c, b - s));
        }
    }
    out
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
        ModelSpec::ItemKnn(s) => Registration::new(ItemSets, |src| item_knn::ItemKnn::load(s, src)),
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
