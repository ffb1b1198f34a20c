//! The evaluation driver: builds each protocol's candidates once, scores them with any
//! [`Scorer`] (a trained model, or the popularity baseline), and averages the metrics.

use burn::prelude::*;
use ember_data::Dataset;
use ember_data::sampling::evaluation_negatives;
use ember_metrics::{EvaluatorPart, MetricsReport, Protocol, RankingEvaluator, rating_report};
use ember_models::{Input, Model, Query};

use crate::EvalConfig;
use crate::batches::{HeldOut, Readers, dense_rating_rows, rating_rows, rating_width, user_ids};
use crate::collective::{Collective, Shard, Solo};
use crate::seeds;

/// Anything that scores (user, item) pairs.
pub trait Scorer {
    /// Scores of `users[i]` for `items[i]`.
    fn score_pairs(&self, users: &[u32], items: &[u32]) -> Vec<f32>;
    /// Scores of every item for each user, row-major `[users.len(), num_items]`.
    fn score_all(&self, users: &[u32]) -> Vec<f32>;
}

/// The most-popular baseline: every user gets the items' training counts.
#[derive(Debug, Clone)]
pub struct Popularity {
    counts: Vec<f32>,
}

impl Popularity {
    /// Counts the training interactions of each item.
    pub fn fit(data: &Dataset) -> Self {
        Self {
            counts: data
                .item_popularity()
                .into_iter()
                .map(|c| c as f32)
                .collect(),
        }
    }
}

impl Scorer for Popularity {
    fn score_pairs(&self, _users: &[u32], items: &[u32]) -> Vec<f32> {
        items.iter().map(|&i| self.counts[i as usize]).collect()
    }

    fn score_all(&self, users: &[u32]) -> Vec<f32> {
        users
            .iter()
            .flat_map(|_| self.counts.iter().copied())
            .collect()
    }
}

/// A trained model in inference mode on a device without autodiff.
pub struct ModelScorer<'a> {
    model: Model,
    device: Device,
    /// What the model reads of each user.
    readers: Readers<'a>,
    input: Input,
    num_items: usize,
    /// Most (user, item) pairs a pair model scores in one forward pass.
    max_scores: usize,
}

impl<'a> ModelScorer<'a> {
    /// Puts `model`, which reads `input`, in inference mode to score `which` held-out items of
    /// `data`; inputs are made on `device` (without autodiff).
    pub fn new(
        model: &Model,
        input: Input,
        data: &'a Dataset,
        device: &Device,
        which: HeldOut,
    ) -> Self {
        Self {
            model: model.valid(),
            device: device.clone().without_autodiff(),
            readers: Readers::new(input, data, which),
            input,
            num_items: data.num_items(),
            max_scores: usize::MAX,
        }
    }

    /// Scores at most `max_scores` (user, item) pairs per forward pass of a pair model.
    pub fn with_max_scores(mut self, max_scores: usize) -> Self {
        self.max_scores = max_scores.max(1);
        self
    }
}

impl Scorer for ModelScorer<'_> {
    fn score_pairs(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        // Each distinct user is read once; the pairs name their user's row.
        let mut distinct = users.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let rows: Vec<u32> = users
            .iter()
            .map(|u| distinct.binary_search(u).expect("listed") as u32)
            .collect();
        let query = self.readers.query(&distinct, &self.device);
        self.model
            .score_pairs(
                &query,
                user_ids(&rows, &self.device),
                user_ids(items, &self.device),
            )
            .try_into_vec_as::<f32>()
            .expect("float scores")
    }

    fn score_all(&self, users: &[u32]) -> Vec<f32> {
        let n = self.num_items;
        if self.input == Input::Pairs && users.len() * n > self.max_scores {
            // Every (user, item) pair costs a forward pass of its own: take the items in
            // chunks, so that memory follows `eval.max_scores`, not the catalogue.
            let chunk = (self.max_scores / users.len()).max(1);
            let mut scores = vec![0.0f32; users.len() * n];
            for start in (0..n).step_by(chunk) {
                let end = (start + chunk).min(n);
                let pair_users: Vec<u32> = users
                    .iter()
                    .flat_map(|&u| std::iter::repeat_n(u, end - start))
                    .collect();
                let pair_items: Vec<u32> = (0..users.len())
                    .flat_map(|_| start as u32..end as u32)
                    .collect();
                let part = self.score_pairs(&pair_users, &pair_items);
                for (row, part_row) in part.chunks(end - start).enumerate() {
                    scores[row * n + start..row * n + end].copy_from_slice(part_row);
                }
            }
            return scores;
        }
        let query = self.readers.query(users, &self.device);
        self.model
            .score_all(&query)
            .try_into_vec_as::<f32>()
            .expect("float scores")
    }
}

/// The metrics of `model`, which reads `input`, on the `which` held-out data: ranking metrics
/// under `plan`'s protocol, or for a rating model RMSE and MAE of its predicted ratings.
/// Ranking is shared among `ranks`'s ranks (each gets the whole report); every rank predicts
/// all the ratings of a rating model, which are few.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_model(
    model: &Model,
    input: Input,
    data: &Dataset,
    plan: &EvaluationPlan,
    which: HeldOut,
    eval: &EvalConfig,
    device: &Device,
    ranks: &dyn Collective,
) -> MetricsReport {
    if let Input::RatingRows { item_based } = input {
        let predictor = RatingPredictor::new(model, item_based, data, device);
        let mut report = evaluate_ratings(&|pairs| predictor.predict(pairs), data, which);
        if ranks.size() > 1 {
            // Rank 0's figures on every rank (processes could differ in the last bits), so that
            // all ranks choose the same best epoch and stop together.
            let mut values: Vec<f64> = report
                .metrics
                .iter()
                .map(|(_, v)| if ranks.rank() == 0 { *v } else { 0.0 })
                .collect();
            ranks.sum_f64(&mut values);
            for ((_, v), rank0) in report.metrics.iter_mut().zip(values) {
                *v = rank0;
            }
        }
        return report;
    }
    plan.evaluate_sharded(
        &ModelScorer::new(model, input, data, device, which).with_max_scores(eval.max_scores),
        data,
        which,
        (&eval.ks, eval.users_per_batch(data.num_items())),
        ranks,
    )
}

/// One held-out split's candidates.
#[derive(Debug, Clone)]
enum Candidates {
    /// All items but the masked ones (sorted per user).
    Full { masked: Vec<Vec<u32>> },
    /// The held-out items plus these negatives.
    Sampled { negatives: Vec<Vec<u32>> },
}

/// Why a protocol's candidates cannot be drawn from the data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The fixed-negatives protocol without a negatives file.
    #[error(
        "eval.protocol `fixed_negatives` needs a source with a negatives file (format `ncf` with <prefix>.test.negative)"
    )]
    NoNegativesFile,
    /// More sampled negatives than the catalogue can give.
    #[error(
        "eval.protocol `sampled` asks for {negatives} negatives per user, but the catalogue has {items} items: use fewer than {items} negatives, or `full_ranking` (which ranks every item)"
    )]
    TooManyNegatives {
        /// Negatives asked for.
        negatives: usize,
        /// Items in the catalogue.
        items: usize,
    },
}

/// The validation and test candidates of the sampled protocol: `negatives` per user, drawn
/// by `sampling` among the items not `valid_masked` (validation) or not known (test).
fn sampled_candidates(
    data: &Dataset,
    valid_masked: Vec<Vec<u32>>,
    (negatives, sampling): (usize, ember_metrics::NegativeSampling),
    seed: u64,
) -> Result<(Candidates, Candidates), PlanError> {
    let n_items = data.num_items();
    if negatives >= n_items {
        return Err(PlanError::TooManyNegatives {
            negatives,
            items: n_items,
        });
    }
    let popularity = data.item_popularity();
    let weights = match sampling {
        ember_metrics::NegativeSampling::Uniform => None,
        ember_metrics::NegativeSampling::Popularity => Some(popularity.as_slice()),
    };
    let n_items = n_items as u32;
    let valid = evaluation_negatives(&valid_masked, n_items, negatives, weights, seed);
    let test_seed = seeds::test_negatives(seed);
    let test_masked = data.masked_for_test();
    let test = evaluation_negatives(&test_masked, n_items, negatives, weights, test_seed);
    Ok((
        Candidates::Sampled { negatives: valid },
        Candidates::Sampled { negatives: test },
    ))
}

/// The candidates of both held-out splits under one protocol, drawn once per run.
#[derive(Debug, Clone)]
pub struct EvaluationPlan {
    protocol: Protocol,
    valid: Candidates,
    test: Candidates,
    /// The protocol validation follows (the fixed-negatives protocol validates on sampled
    /// negatives) and what its label adds.
    valid_protocol: Protocol,
    valid_note: &'static str,
    /// Under the time split, the start of its validation window and its cutoff (RFC 3339):
    /// full ranking masks the items each user had before them, not every known item.
    time_bounds: Option<(String, String)>,
    /// The groups test metrics are broken down by.
    groups: UserGroups,
}

/// The upper ends of the activity bands test metrics are broken down by, in training
/// interactions: 1–5, 6–20 and 21 or more (`[eval] activity_bands`).
pub const ACTIVITY_BANDS: [usize; 2] = [5, 20];

/// Each user's group for the breakdown of test metrics: cold (no training interaction, where a
/// split leaves users so) or the activity band of their training interactions.
#[derive(Debug, Clone)]
struct UserGroups {
    names: Vec<String>,
    of_user: Vec<usize>,
}

impl UserGroups {
    /// The groups of `data`'s users under the bands ending at `upper` (ascending).
    fn activity(data: &Dataset, upper: &[usize]) -> Self {
        let mut names = vec!["cold (no training interactions)".to_string()];
        let mut low = 1;
        for &high in upper {
            names.push(format!("{low}–{high} training interactions"));
            low = high + 1;
        }
        names.push(format!("{low}+ training interactions"));
        let of_user = data
            .train
            .iter()
            .map(|items| match items.len() {
                0 => 0,
                n => 1 + upper.iter().take_while(|&&high| n > high).count(),
            })
            .collect();
        Self { names, of_user }
    }
}

impl EvaluationPlan {
    /// Draws the candidates. What a user already has ([`Dataset::known`]: every interaction
    /// of the source, those below the implicit threshold included) is never a candidate, as
    /// serving never recommends it: full ranking masks it and sampled negatives avoid it, but
    /// for the held-out items being ranked. Validation leaves the test items alone (masks
    /// [`Dataset::masked_for_validation`]), so that model selection knows nothing of them.
    /// For the fixed-negatives protocol, validation uses as many uniform negatives as the file
    /// gives each user (99 in the NCF files), since the file only covers test.
    pub fn new(data: &Dataset, protocol: &Protocol, seed: u64) -> Result<Self, PlanError> {
        let n_items = data.num_items() as u32;
        let valid_masked = data.masked_for_validation();
        let mut valid_protocol = protocol.clone();
        let mut valid_note = "";
        let (valid, test) = match protocol {
            Protocol::FullRanking => (
                Candidates::Full {
                    masked: valid_masked,
                },
                Candidates::Full {
                    masked: data.masked_for_test(),
                },
            ),
            Protocol::Sampled {
                negatives,
                sampling,
            } => sampled_candidates(data, valid_masked, (*negatives, *sampling), seed)?,
            Protocol::FixedNegatives => {
                let Some(fixed) = &data.test_negatives else {
                    return Err(PlanError::NoNegativesFile);
                };
                let per_user = fixed.iter().map(Vec::len).max().unwrap_or(99).max(1);
                valid_protocol = Protocol::Sampled {
                    negatives: per_user,
                    sampling: ember_metrics::NegativeSampling::Uniform,
                };
                valid_note = " (validation of the fixed-negatives protocol)";
                let valid = evaluation_negatives(&valid_masked, n_items, per_user, None, seed);
                (
                    Candidates::Sampled { negatives: valid },
                    Candidates::Sampled {
                        negatives: fixed.clone(),
                    },
                )
            }
        };
        let time_bounds = data
            .time_split
            .as_ref()
            .map(|time| (time.stats.valid_start.clone(), time.stats.cutoff.clone()));
        Ok(Self {
            protocol: protocol.clone(),
            valid,
            test,
            valid_protocol,
            valid_note,
            time_bounds,
            groups: UserGroups::activity(data, &ACTIVITY_BANDS),
        })
    }

    /// Breaks test metrics down by activity bands ending at `upper` (ascending, the first at
    /// least 1) instead of [`ACTIVITY_BANDS`].
    pub fn with_activity_bands(mut self, data: &Dataset, upper: &[usize]) -> Self {
        self.groups = UserGroups::activity(data, upper);
        self
    }

    /// The protocol `which` is ranked under.
    fn protocol_of(&self, which: HeldOut) -> &Protocol {
        match which {
            HeldOut::Validation => &self.valid_protocol,
            HeldOut::Test => &self.protocol,
        }
    }

    /// The protocol's name, as reports give it before counting what was drawn.
    pub fn label(&self, which: HeldOut) -> String {
        self.labelled(which, None)
    }

    /// The protocol's name; given the `report` of its candidates, with what was drawn when
    /// users had fewer unseen items than the negatives asked for.
    fn labelled(&self, which: HeldOut, report: Option<&MetricsReport>) -> String {
        let protocol = self.protocol_of(which);
        let name = match (protocol, &self.time_bounds, report) {
            (Protocol::FullRanking, Some((valid_start, cutoff)), _) => {
                let bound = match which {
                    HeldOut::Validation => format!("the validation window ({valid_start})"),
                    HeldOut::Test => format!("the cutoff ({cutoff})"),
                };
                format!("full ranking over all items, each user's items from before {bound} masked")
            }
            (_, _, Some(report)) => protocol.label(report),
            (_, _, None) => protocol.to_string(),
        };
        match which {
            HeldOut::Validation => format!("{name}{}", self.valid_note),
            HeldOut::Test => name,
        }
    }

    /// Scores one split and averages the metrics over users with held-out items.
    pub fn evaluate(
        &self,
        scorer: &dyn Scorer,
        data: &Dataset,
        which: HeldOut,
        ks: &[usize],
        batch_users: usize,
    ) -> MetricsReport {
        self.evaluate_sharded(scorer, data, which, (ks, batch_users), &Solo)
    }

    /// [`EvaluationPlan::evaluate`] with the batches of users shared among `ranks`'s ranks:
    /// each scores its consecutive share of the batches, and the ranks' per-user values are
    /// put together in user order, so that every rank gets exactly the single-process report
    /// (the batches are the single process's, so are the scores).
    pub fn evaluate_sharded(
        &self,
        scorer: &dyn Scorer,
        data: &Dataset,
        which: HeldOut,
        (ks, batch_users): (&[usize], usize),
        ranks: &dyn Collective,
    ) -> MetricsReport {
        let (held_out, candidates) = match which {
            HeldOut::Validation => (&data.valid, &self.valid),
            HeldOut::Test => (&data.test, &self.test),
        };
        let users: Vec<u32> = (0..data.num_users() as u32)
            .filter(|&u| !held_out[u as usize].is_empty())
            .collect();
        let n_items = data.num_items();
        let mut evaluator = self.evaluator(which, ks, n_items, (held_out, candidates), &users);
        let merged = (ranks.size() > 1).then(|| evaluator.clone());
        if merged.is_some() {
            evaluator = evaluator.recording();
        }
        // Test metrics are broken down by group of users; validation runs every epoch and
        // needs only the monitor.
        let groups = (which == HeldOut::Test).then_some(&self.groups.of_user[..]);
        let chunks: Vec<&[u32]> = users.chunks(batch_users.max(1)).collect();
        for &chunk in &chunks[Shard::of(ranks).part(0..chunks.len())] {
            let adding = Adding {
                evaluator: &mut evaluator,
                groups,
                scorer,
                chunk,
                held_out,
            };
            match candidates {
                Candidates::Sampled { negatives } => add_sampled(adding, negatives),
                Candidates::Full { masked } => add_full(adding, (masked, n_items)),
            }
        }
        if let Some(merged) = merged {
            evaluator = merge_parts(merged, evaluator, ranks);
        }
        let mut report = evaluator.finish(self.label(which));
        report.protocol = self.labelled(which, Some(&report));
        report
    }

    /// The evaluator of the `which` split for `users`, whose held-out items are ranked against
    /// `candidates`: told what the protocol asked for, and for full ranking how many pairs
    /// it will score.
    fn evaluator(
        &self,
        which: HeldOut,
        ks: &[usize],
        n_items: usize,
        (held_out, candidates): (&[Vec<u32>], &Candidates),
        users: &[u32],
    ) -> RankingEvaluator {
        let mut evaluator =
            RankingEvaluator::new(ks, n_items).expect("ks validated with the config");
        if which == HeldOut::Test {
            evaluator = evaluator.grouped(self.groups.names.clone());
        }
        if let Some(asked) = self.protocol_of(which).asked() {
            evaluator = evaluator.asking(asked);
        }
        if which == HeldOut::Validation {
            // Run every epoch: skip the memory-hungry pooled AUC (it cannot be the monitor).
            evaluator = evaluator.without_global_auc();
        }
        if let Candidates::Full { masked } = candidates {
            // Every item but the masked ones that are not held out.
            let pairs: usize = users
                .iter()
                .map(|&u| {
                    let mask = &masked[u as usize];
                    let kept_held = held_out[u as usize]
                        .iter()
                        .filter(|i| mask.binary_search(i).is_ok())
                        .count();
                    n_items - mask.len() + kept_held
                })
                .sum();
            evaluator = evaluator.expecting_pairs(pairs);
        }
        evaluator
    }
}

/// One batch of users being scored and added to an evaluator.
struct Adding<'a> {
    evaluator: &'a mut RankingEvaluator,
    /// Each user's group, when the evaluator breaks its metrics down by group.
    groups: Option<&'a [usize]>,
    scorer: &'a dyn Scorer,
    chunk: &'a [u32],
    held_out: &'a [Vec<u32>],
}

impl Adding<'_> {
    fn add(&mut self, user: u32, items: &[u32], scores: &[f32], relevant: &[bool]) {
        let group = self.groups.map(|g| g[user as usize]);
        self.evaluator.add_user_in(group, items, scores, relevant);
    }
}

/// Scores the users of the batch on their held-out items and sampled `negatives`, and adds
/// them to its evaluator.
fn add_sampled(mut adding: Adding, negatives: &[Vec<u32>]) {
    let (scorer, chunk, held_out) = (adding.scorer, adding.chunk, adding.held_out);
    let mut pair_users = Vec::new();
    let mut pair_items = Vec::new();
    for &u in chunk {
        let list = held_out[u as usize].iter().chain(&negatives[u as usize]);
        for &i in list {
            pair_users.push(u);
            pair_items.push(i);
        }
    }
    let scores = scorer.score_pairs(&pair_users, &pair_items);
    let mut offset = 0;
    for &u in chunk {
        let positives = held_out[u as usize].len();
        let n = positives + negatives[u as usize].len();
        let relevant: Vec<bool> = (0..n).map(|j| j < positives).collect();
        adding.add(
            u,
            &pair_items[offset..offset + n],
            &scores[offset..offset + n],
            &relevant,
        );
        offset += n;
    }
}

/// Scores the users of the batch on every one of the `n_items` items but their `masked` ones
/// (a masked item that is held out stays a candidate), and adds them to its evaluator.
fn add_full(mut adding: Adding, (masked, n_items): (&[Vec<u32>], usize)) {
    let (scorer, chunk, held_out) = (adding.scorer, adding.chunk, adding.held_out);
    let scores = scorer.score_all(chunk);
    // Per-item flags, set and cleared for each user (lists are short).
    let mut relevant = vec![false; n_items];
    let mut excluded = vec![false; n_items];
    for (row, &u) in chunk.iter().enumerate() {
        let row_scores = &scores[row * n_items..(row + 1) * n_items];
        let held = &held_out[u as usize];
        let mask = &masked[u as usize];
        for &i in held {
            relevant[i as usize] = true;
        }
        // A held-out item that also occurs in training stays a candidate.
        for &i in mask {
            excluded[i as usize] = !relevant[i as usize];
        }
        let kept = n_items - mask.iter().filter(|&&i| excluded[i as usize]).count();
        let mut items = Vec::with_capacity(kept);
        let mut kept_scores = Vec::with_capacity(kept);
        let mut kept_relevant = Vec::with_capacity(kept);
        for i in 0..n_items {
            if !excluded[i] {
                items.push(i as u32);
                kept_scores.push(row_scores[i]);
                kept_relevant.push(relevant[i]);
            }
        }
        adding.add(u, &items, &kept_scores, &kept_relevant);
        for &i in held.iter().chain(mask) {
            relevant[i as usize] = false;
            excluded[i as usize] = false;
        }
    }
}

/// `merged` (an empty evaluator) with every rank's recorded part of `evaluator`, in rank
/// order: the single process's evaluator, on every rank.
fn merge_parts(
    mut merged: RankingEvaluator,
    evaluator: RankingEvaluator,
    ranks: &dyn Collective,
) -> RankingEvaluator {
    let (bytes, counts) = ranks.gather_bytes(&evaluator.into_part().to_bytes());
    let mut at = 0;
    for count in counts {
        let part =
            EvaluatorPart::from_bytes(&bytes[at..at + count]).expect("every rank sends a part");
        merged.absorb(part);
        at += count;
    }
    merged
}

/// Held-out ratings of one split as `(user, item, rating)`.
fn held_out_ratings(data: &Dataset, which: HeldOut) -> Vec<(u32, u32, f32)> {
    let Some(ratings) = &data.ratings else {
        return Vec::new();
    };
    let (items, values) = match which {
        HeldOut::Validation => (&data.valid, &ratings.valid),
        HeldOut::Test => (&data.test, &ratings.test),
    };
    items
        .iter()
        .zip(values)
        .enumerate()
        .flat_map(|(u, (items, values))| {
            items
                .iter()
                .zip(values)
                .map(move |(&i, &r)| (u as u32, i, r))
        })
        .collect()
}

/// RMSE and MAE of `predict` over one split's held-out ratings.
pub fn evaluate_ratings(
    predict: &dyn Fn(&[(u32, u32)]) -> Vec<f32>,
    data: &Dataset,
    which: HeldOut,
) -> MetricsReport {
    let held_out = held_out_ratings(data, which);
    let pairs: Vec<(u32, u32)> = held_out.iter().map(|&(u, i, _)| (u, i)).collect();
    let predicted = predict(&pairs);
    let users = held_out
        .iter()
        .map(|&(u, _, _)| u)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    rating_report(
        predicted
            .iter()
            .zip(&held_out)
            .map(|(&p, &(_, _, r))| (p, r)),
        users,
        format!("rating prediction over {} held-out ratings", held_out.len()),
    )
}

/// The range of the training ratings and its midpoint, the prediction for a user or item with
/// no training rating (AutoRec's convention: 3 on a 1–5 scale).
fn rating_range(data: &Dataset) -> (f32, f32) {
    let ratings = data.ratings.as_ref().expect("rating models need ratings");
    let (lo, hi) = ratings
        .train
        .iter()
        .flatten()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) }
}

/// The item-mean baseline of rating prediction: each item's mean training rating (the global
/// mean for an item without one).
pub fn item_mean_ratings(data: &Dataset) -> impl Fn(&[(u32, u32)]) -> Vec<f32> + '_ {
    let ratings = data.ratings.as_ref().expect("rating models need ratings");
    let mut sum = vec![0.0f64; data.num_items()];
    let mut count = vec![0usize; data.num_items()];
    for (items, values) in data.train.iter().zip(&ratings.train) {
        for (&i, &r) in items.iter().zip(values) {
            sum[i as usize] += r as f64;
            count[i as usize] += 1;
        }
    }
    let global = sum.iter().sum::<f64>() / count.iter().sum::<usize>().max(1) as f64;
    let mean: Vec<f32> = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| {
            if c > 0 {
                (s / c as f64) as f32
            } else {
                global as f32
            }
        })
        .collect();
    move |pairs: &[(u32, u32)]| pairs.iter().map(|&(_, i)| mean[i as usize]).collect()
}

/// Predicted ratings of a rating model (AutoRec), from the training ratings, in inference mode.
pub struct RatingPredictor<'a> {
    model: Model,
    device: Device,
    data: &'a Dataset,
    /// The training rating matrix as rows (items for an item-based model): `(column, rating)`.
    rows: Vec<Vec<(u32, f32)>>,
    item_based: bool,
    seen_users: Vec<bool>,
    seen_items: Vec<bool>,
    range: (f32, f32),
}

impl<'a> RatingPredictor<'a> {
    /// Puts `model`, a rating model reading rows of items (`item_based`) or of users, in
    /// inference mode over `data`'s training ratings.
    pub fn new(model: &Model, item_based: bool, data: &'a Dataset, device: &Device) -> Self {
        let mut seen_users = vec![false; data.num_users()];
        let mut seen_items = vec![false; data.num_items()];
        for (u, items) in data.train.iter().enumerate() {
            seen_users[u] = !items.is_empty();
            for &i in items {
                seen_items[i as usize] = true;
            }
        }
        Self {
            model: model.valid(),
            device: device.clone().without_autodiff(),
            data,
            rows: rating_rows(data, item_based),
            item_based,
            seen_users,
            seen_items,
            range: rating_range(data),
        }
    }

    /// Predicted ratings of `(user, item)` pairs, clipped to the training range; a user or
    /// item without training ratings gets the range's midpoint.
    pub fn predict(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let (lo, hi) = self.range;
        let width = rating_width(self.data, self.item_based);
        // Each pair's row (item or user) and column; reconstruct each distinct row once.
        let key = |&(u, i): &(u32, u32)| if self.item_based { (i, u) } else { (u, i) };
        let mut distinct: Vec<u32> = pairs.iter().map(|p| key(p).0).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let mut reconstructed = vec![0.0f32; distinct.len() * width];
        for (c, chunk) in distinct.chunks(256).enumerate() {
            let rows: Vec<&[(u32, f32)]> = chunk
                .iter()
                .map(|&r| self.rows[r as usize].as_slice())
                .collect();
            let query = Query::RatingRows(dense_rating_rows(&rows, width, &self.device));
            let out = self
                .model
                .score_all(&query)
                .try_into_vec_as::<f32>()
                .expect("float predictions");
            let start = c * 256 * width;
            reconstructed[start..start + out.len()].copy_from_slice(&out);
        }
        pairs
            .iter()
            .map(|p| {
                let (u, i) = *p;
                if !self.seen_users[u as usize] || !self.seen_items[i as usize] {
                    return (lo + hi) / 2.0;
                }
                let (row, column) = key(p);
                let r = distinct.binary_search(&row).expect("listed");
                reconstructed[r * width + column as usize].clamp(lo, hi)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_data::IdMap;
    use ember_metrics::NegativeSampling;

    /// One user over 6 items: trained on 0, validated on 3, tested on 2, and rated item 1
    /// below the implicit threshold (known, in no split); 4 and 5 are unseen.
    fn one_user() -> Dataset {
        let ids = |n: i64| IdMap::from_ids(&(0..n).collect::<Vec<_>>());
        Dataset {
            user_ids: ids(1),
            item_ids: ids(6),
            train: vec![vec![0]],
            valid: vec![vec![3]],
            test: vec![vec![2]],
            test_negatives: None,
            held_out_users: None,
            ratings: None,
            weights: None,
            known: vec![vec![0, 1, 2, 3]],
            known_days: None,
            time_split: None,
        }
    }

    /// Item 1, the low-rated one, scores above the test item 2, which scores above the
    /// validation item 3.
    struct Fixed;

    const SCORES: [f32; 6] = [0.95, 0.9, 0.8, 0.7, 0.1, 0.05];

    impl Scorer for Fixed {
        fn score_pairs(&self, _users: &[u32], items: &[u32]) -> Vec<f32> {
            items.iter().map(|&i| SCORES[i as usize]).collect()
        }
        fn score_all(&self, users: &[u32]) -> Vec<f32> {
            users.iter().flat_map(|_| SCORES).collect()
        }
    }

    #[test]
    fn full_ranking_masks_every_known_pair_but_the_held_out_items() {
        let data = one_user();
        let plan = EvaluationPlan::new(&data, &Protocol::FullRanking, 0).unwrap();
        // Test ranks 2 among 2, 4, 5 (0, 1, 3 masked): first. Masking only the training and
        // validation items, item 1 would rank above it (HR@1 0).
        let test = plan.evaluate(&Fixed, &data, HeldOut::Test, &[1, 2], 8);
        assert_eq!(test.get("HR@1"), Some(1.0));
        // Validation ranks 3 among 2, 3, 4, 5 (0 and 1 masked; the test item stays a
        // candidate): second. With item 1 unmasked it would be third (HR@2 0).
        let valid = plan.evaluate(&Fixed, &data, HeldOut::Validation, &[1, 2], 8);
        assert_eq!(valid.get("HR@1"), Some(0.0));
        assert_eq!(valid.get("HR@2"), Some(1.0));
    }

    #[test]
    fn sampled_negatives_are_never_a_known_item() {
        let data = one_user();
        let protocol = Protocol::Sampled {
            negatives: 2,
            sampling: NegativeSampling::Uniform,
        };
        for seed in 0..20 {
            let plan = EvaluationPlan::new(&data, &protocol, seed).unwrap();
            let (Candidates::Sampled { negatives: valid }, Candidates::Sampled { negatives: test }) =
                (&plan.valid, &plan.test)
            else {
                panic!("sampled candidates");
            };
            let mut test = test[0].clone();
            test.sort_unstable();
            assert_eq!(test, [4, 5], "seed {seed}: only the unseen items");
            // Validation may draw the test item 2 (unknown to model selection), never 0, 1, 3.
            assert_eq!(valid[0].len(), 2);
            assert!(
                valid[0].iter().all(|i| [2, 4, 5].contains(i)),
                "seed {seed}: {:?}",
                valid[0]
            );
        }
    }
}
