//! Batches: the one place that turns data into what a model reads ([`Input`]), for training
//! epochs and for scoring. The trainer, the evaluator and the benchmark all build their
//! tensors here; ember-data draws the examples (negatives, windows) on the host.

use burn::prelude::*;
use ember_data::Dataset;
use ember_data::sampling::TrainingEpoch;
use ember_data::sequences::{FlatBatch, SequenceEpoch};
use ember_models::lookup::EpochIds;
use ember_models::{
    Batch, Input, PairBatch, PairTargets, Query, SequenceBatch, SequenceTask, UserRows,
};
use ember_spec::tokens;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use std::borrow::Cow;
use std::ops::Range;

use crate::collective::Shard;

/// Which held-out items are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldOut {
    /// The validation items (model selection, early stopping).
    Validation,
    /// The test items (reported once, for the selected model).
    Test,
}

/// One training batch, with what the loop counts of it.
pub struct StepBatch {
    /// The batch; `None` when this rank's share of it is empty.
    pub batch: Option<Batch>,
    /// Examples in it: the weight of its loss in the epoch's mean (positives, users, rows or
    /// targets).
    pub examples: usize,
    /// Scored samples, for the throughput (pairs with their negatives; otherwise examples).
    pub samples: usize,
}

impl StepBatch {
    /// A rank's empty share of a batch.
    pub const EMPTY: StepBatch = StepBatch {
        batch: None,
        examples: 0,
        samples: 0,
    };
}

/// How `len` examples are cut into batches of `size` (the last may be smaller), and which part
/// of each batch this rank takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    len: usize,
    size: usize,
    shard: Shard,
}

impl Cut {
    fn new(len: usize, size: usize, shard: Shard) -> Self {
        Self {
            len,
            size: size.max(1),
            shard,
        }
    }

    /// Number of batches.
    fn batches(self) -> usize {
        self.len.div_ceil(self.size)
    }

    /// This rank's part of batch `b`, as a range of the examples.
    fn rank_part(self, b: usize) -> Range<usize> {
        self.shard
            .part(b * self.size..((b + 1) * self.size).min(self.len))
    }
}

/// An epoch's batches, taken in order.
pub trait Epoch {
    /// Number of batches.
    fn batches(&self) -> usize;
    /// Batch `b` on the device.
    fn batch(&self, b: usize) -> StepBatch;
}

/// What an epoch is drawn from.
pub struct EpochSource<'a> {
    /// The split data (its training part is trained on).
    pub data: &'a Dataset,
    /// Each user's training items, sorted (what negatives avoid).
    pub train_sets: &'a [Vec<u32>],
    /// Each training interaction's confidence, aligned with `data.train`, for a pair model of
    /// a weighted run; `None` weighs every positive alike.
    pub confidence: Option<&'a [Vec<f32>]>,
    /// Examples per batch: positives, users, rating rows or windows.
    pub batch_size: usize,
    /// Sampled negatives per positive, for pair models.
    pub negatives: usize,
    /// Rows per chunk of the embedding gradients' segment plans; `None` for burn's gradient.
    pub plan_chunk: Option<usize>,
    /// Where batches go.
    pub device: Device,
    /// This rank's share of every batch (data-parallel training); [`Shard::WHOLE`] otherwise.
    pub shard: Shard,
}

impl EpochSource<'_> {
    /// How `len` examples are cut into this source's batches, and this rank's part of each.
    fn cut(&self, len: usize) -> Cut {
        Cut::new(len, self.batch_size, self.shard)
    }
}

/// A fresh epoch of training batches for a model that reads `input`: every training
/// interaction, user, rating row or sequence once, shuffled and resampled by `rng`.
pub fn training_epoch<'a>(
    input: Input,
    source: &EpochSource<'a>,
    rng: &mut SmallRng,
) -> Box<dyn Epoch + 'a> {
    match input {
        Input::Pairs => Box::new(PairEpoch::sample(source, rng)),
        Input::UserRows { by_id } => Box::new(RowEpoch::shuffled(source, by_id, rng)),
        Input::RatingRows { item_based } => {
            Box::new(RatingEpoch::shuffled(source, item_based, rng))
        }
        Input::Sequences { max_len, task } => {
            Box::new(WindowEpoch::draw(source, max_len, task, rng))
        }
    }
}

/// An epoch of positives with their negatives, uploaded to the device once and cut into batches
/// there (in order); each batch flattened as [`PairTargets::Sampled`] describes.
pub struct PairEpoch {
    users: EpochIds,
    items: EpochIds,
    /// Each batch's positives' confidences, when the run weights them.
    confidence: Option<Vec<Tensor<1>>>,
    /// Positives in each batch.
    positives: Vec<usize>,
    negatives_per_positive: usize,
}

impl PairEpoch {
    fn sample(source: &EpochSource, rng: &mut SmallRng) -> Self {
        let data = source.data;
        let examples = TrainingEpoch::sample(
            &data.train,
            source.train_sets,
            data.num_items() as u32,
            source.negatives,
            rng,
        );
        let mut epoch = Self::new(
            &examples.users,
            &examples.positives,
            &examples.negatives,
            source.batch_size,
            (data.num_users(), data.num_items()),
            source.plan_chunk,
            (source.shard, &source.device),
        );
        if let Some(confidence) = source.confidence {
            let of_positive: Vec<f32> = (examples.users.iter().zip(&examples.slots))
                .map(|(&u, &slot)| confidence[u as usize][slot as usize])
                .collect();
            let cut = source.cut(of_positive.len());
            epoch.confidence = Some(
                (0..cut.batches())
                    .map(|b| floats(of_positive[cut.rank_part(b)].to_vec(), &source.device))
                    .collect(),
            );
        }
        epoch
    }

    /// `users` and `positives` of equal length, `negatives` `k` per positive, in batches of
    /// `batch_size` positives (the last may be smaller), of which `shard`'s part is kept.
    pub fn new(
        users: &[i32],
        positives: &[i32],
        negatives: &[i32],
        batch_size: usize,
        tables: (usize, usize),
        plan_chunk: Option<usize>,
        (shard, device): (Shard, &Device),
    ) -> Self {
        let n = users.len();
        assert_eq!(positives.len(), n, "one positive per user");
        let k = negatives.len().checked_div(n).unwrap_or(0);
        assert_eq!(negatives.len(), n * k, "k negatives per positive");
        let cut = Cut::new(n, batch_size, shard);
        let mut all_users = Vec::with_capacity(n * (1 + k));
        let mut all_items = Vec::with_capacity(n * (1 + k));
        let mut bounds = vec![0];
        let mut sizes = Vec::new();
        for b in 0..cut.batches() {
            let Range { start, end } = cut.rank_part(b);
            all_users.extend_from_slice(&users[start..end]);
            for &u in &users[start..end] {
                all_users.extend(std::iter::repeat_n(u, k));
            }
            all_items.extend_from_slice(&positives[start..end]);
            all_items.extend_from_slice(&negatives[start * k..end * k]);
            bounds.push(all_users.len());
            sizes.push(end - start);
        }
        Self {
            users: EpochIds::new(all_users, bounds.clone(), tables.0, plan_chunk, device),
            items: EpochIds::new(all_items, bounds, tables.1, plan_chunk, device),
            confidence: None,
            positives: sizes,
            negatives_per_positive: k,
        }
    }
}

impl Epoch for PairEpoch {
    fn batches(&self) -> usize {
        self.positives.len()
    }

    fn batch(&self, b: usize) -> StepBatch {
        let (positives, k) = (self.positives[b], self.negatives_per_positive);
        if positives == 0 {
            self.users.skip(b);
            self.items.skip(b);
            return StepBatch::EMPTY;
        }
        StepBatch {
            batch: Some(Batch::Pairs(PairBatch {
                users: self.users.batch(b),
                items: self.items.batch(b),
                targets: PairTargets::Sampled {
                    positives,
                    negatives_per_positive: k,
                },
                confidence: self.confidence.as_ref().map(|c| c[b].clone()),
            })),
            examples: positives,
            samples: positives * (1 + k),
        }
    }
}

/// Labelled (user, item) pairs in full batches, uploaded once: the throughput benchmark's
/// pointwise data (`ember bench train`, as `scripts/bench_torch_neumf.py` draws it).
pub struct LabelledPairs {
    users: EpochIds,
    items: EpochIds,
    labels: Tensor<1>,
    /// Where each batch starts in this rank's pairs, and where the last ends.
    bounds: Vec<usize>,
}

impl LabelledPairs {
    /// `users`, `items` and `labels` of equal length, in batches of `batch` (a trailing partial
    /// batch is left out, so every step has one shape), of which `shard`'s part is kept.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Vec<i32>,
        items: Vec<i32>,
        labels: Vec<f32>,
        batch: usize,
        tables: (usize, usize),
        plan_chunk: Option<usize>,
        (shard, device): (Shard, &Device),
    ) -> Self {
        let steps = users.len() / batch.max(1);
        let (users, items, labels, bounds) = if shard.ranks == 1 {
            let bounds: Vec<usize> = (0..=steps).map(|s| s * batch).collect();
            let n = steps * batch;
            (
                users[..n].to_vec(),
                items[..n].to_vec(),
                labels[..n].to_vec(),
                bounds,
            )
        } else {
            let (mut u, mut i, mut l, mut bounds) = (Vec::new(), Vec::new(), Vec::new(), vec![0]);
            let cut = Cut::new(steps * batch, batch, shard);
            for s in 0..steps {
                let part = cut.rank_part(s);
                u.extend_from_slice(&users[part.clone()]);
                i.extend_from_slice(&items[part.clone()]);
                l.extend_from_slice(&labels[part]);
                bounds.push(u.len());
            }
            (u, i, l, bounds)
        };
        let n = labels.len();
        Self {
            users: EpochIds::new(users, bounds.clone(), tables.0, plan_chunk, device),
            items: EpochIds::new(items, bounds.clone(), tables.1, plan_chunk, device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
            bounds,
        }
    }
}

impl Epoch for LabelledPairs {
    fn batches(&self) -> usize {
        self.users.batches()
    }

    fn batch(&self, b: usize) -> StepBatch {
        let range = self.bounds[b]..self.bounds[b + 1];
        let examples = range.len();
        if examples == 0 {
            self.users.skip(b);
            self.items.skip(b);
            return StepBatch::EMPTY;
        }
        StepBatch {
            batch: Some(Batch::Pairs(PairBatch {
                users: self.users.batch(b),
                items: self.items.batch(b),
                targets: PairTargets::Labels(self.labels.clone().slice(range)),
                confidence: None,
            })),
            examples,
            samples: examples,
        }
    }
}

/// The users whose rows train a row model, shuffled, in batches made dense on the host one at a
/// time: the user × item matrix is never built whole.
struct RowEpoch<'a> {
    data: &'a Dataset,
    users: Vec<u32>,
    cut: Cut,
    device: Device,
}

impl<'a> RowEpoch<'a> {
    fn shuffled(source: &EpochSource<'a>, by_id: bool, rng: &mut SmallRng) -> Self {
        let data = source.data;
        let mut users: Vec<u32> = if by_id {
            // Id-based: every user with a row (held-out users' fold-in items included).
            (0..data.num_users() as u32)
                .filter(|&u| !data.train[u as usize].is_empty())
                .collect()
        } else {
            data.training_users()
        };
        users.shuffle(rng);
        Self {
            data,
            cut: source.cut(users.len()),
            users,
            device: source.device.clone(),
        }
    }
}

impl Epoch for RowEpoch<'_> {
    fn batches(&self) -> usize {
        self.cut.batches()
    }

    fn batch(&self, b: usize) -> StepBatch {
        let chunk = &self.users[self.cut.rank_part(b)];
        StepBatch {
            batch: (!chunk.is_empty()).then(|| {
                Batch::UserRows(user_rows(
                    (
                        &self.data.train,
                        self.data.weights.as_ref().map(|w| &w.train[..]),
                    ),
                    chunk,
                    self.data.num_items(),
                    &self.device,
                ))
            }),
            examples: chunk.len(),
            samples: chunk.len(),
        }
    }
}

/// The non-empty rows of the training rating matrix, shuffled, made dense per batch.
struct RatingEpoch {
    rows: Vec<Vec<(u32, f32)>>,
    order: Vec<usize>,
    width: usize,
    cut: Cut,
    device: Device,
}

impl RatingEpoch {
    fn shuffled(source: &EpochSource, item_based: bool, rng: &mut SmallRng) -> Self {
        let data = source.data;
        let rows = rating_rows(data, item_based);
        let mut order: Vec<usize> = (0..rows.len()).filter(|&r| !rows[r].is_empty()).collect();
        order.shuffle(rng);
        Self {
            rows,
            cut: source.cut(order.len()),
            order,
            width: rating_width(data, item_based),
            device: source.device.clone(),
        }
    }
}

impl Epoch for RatingEpoch {
    fn batches(&self) -> usize {
        self.cut.batches()
    }

    fn batch(&self, b: usize) -> StepBatch {
        let rows: Vec<&[(u32, f32)]> = self.order[self.cut.rank_part(b)]
            .iter()
            .map(|&r| self.rows[r].as_slice())
            .collect();
        StepBatch {
            batch: (!rows.is_empty())
                .then(|| Batch::RatingRows(dense_rating_rows(&rows, self.width, &self.device))),
            examples: rows.len(),
            samples: rows.len(),
        }
    }
}

/// One window per training user with next-item targets (and negatives) or masked items, drawn
/// afresh every epoch, in batches of `batch_size` windows.
struct WindowEpoch {
    epoch: SequenceEpoch,
    cut: Cut,
    device: Device,
}

impl WindowEpoch {
    fn draw(source: &EpochSource, max_len: usize, task: SequenceTask, rng: &mut SmallRng) -> Self {
        let data = source.data;
        let users = data.training_users();
        let num_items = data.num_items();
        let epoch = match task {
            SequenceTask::NextItem { negatives } => SequenceEpoch::next_item(
                &data.train,
                &users,
                source.train_sets,
                num_items,
                max_len,
                negatives,
                rng,
            ),
            SequenceTask::MaskedItem { mask_prob } => {
                SequenceEpoch::masked_item(&data.train, &users, num_items, max_len, mask_prob, rng)
            }
        };
        Self {
            cut: source.cut(epoch.len()),
            epoch,
            device: source.device.clone(),
        }
    }
}

impl Epoch for WindowEpoch {
    fn batches(&self) -> usize {
        self.cut.batches()
    }

    fn batch(&self, b: usize) -> StepBatch {
        let rows = self.cut.rank_part(b);
        if rows.is_empty() {
            return StepBatch::EMPTY;
        }
        let flat = self.epoch.batch(rows.clone());
        let targets = flat.targets.len();
        StepBatch {
            batch: Some(Batch::Sequences(sequence_batch(
                flat,
                rows.len(),
                self.epoch.max_len,
                &self.device,
            ))),
            examples: targets,
            samples: targets,
        }
    }
}

/// A batch of sequence windows on `device`.
fn sequence_batch(flat: FlatBatch, rows: usize, max_len: usize, device: &Device) -> SequenceBatch {
    let targets = flat.targets.len();
    let k = flat.negatives.len() / targets.max(1);
    SequenceBatch {
        inputs: ids(flat.inputs, device).reshape([rows, max_len]),
        positions: ids(flat.positions, device),
        targets: ids(flat.targets, device),
        negatives: (k > 0).then(|| ids(flat.negatives, device).reshape([targets, k])),
    }
}

fn ids(values: Vec<i32>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// `values` as a tensor on `device`.
fn floats(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// The users' ids on `device`.
pub fn user_ids(users: &[u32], device: &Device) -> Tensor<1, Int> {
    ids(users.iter().map(|&u| u as i32).collect(), device)
}

/// The rows of `users` (their items in `lists`, with their counts in `counts` when given,
/// entry for entry), with their ids, on `device`.
pub fn user_rows(
    (lists, counts): (&[Vec<u32>], Option<&[Vec<f32>]>),
    users: &[u32],
    num_items: usize,
    device: &Device,
) -> UserRows {
    let count: usize = users.iter().map(|&u| lists[u as usize].len()).sum();
    let (mut items, mut item_rows) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for (r, &u) in users.iter().enumerate() {
        for &i in &lists[u as usize] {
            items.push(i as i32);
            item_rows.push(r as i32);
        }
    }
    let values = counts.map(|counts| {
        let flat: Vec<f32> = users
            .iter()
            .flat_map(|&u| counts[u as usize].iter().copied())
            .collect();
        floats(flat, device)
    });
    UserRows {
        users: user_ids(users, device),
        items: ids(items, device),
        item_rows: ids(item_rows, device),
        num_items,
        values,
    }
}

/// The training ratings as rows of `(column, rating)`: per item over users when `item_based`,
/// per user over items otherwise.
pub fn rating_rows(data: &Dataset, item_based: bool) -> Vec<Vec<(u32, f32)>> {
    let ratings = data.ratings.as_ref().expect("rating models need ratings");
    let n_rows = if item_based {
        data.num_items()
    } else {
        data.num_users()
    };
    let mut rows = vec![Vec::new(); n_rows];
    for (u, (items, values)) in data.train.iter().zip(&ratings.train).enumerate() {
        for (&i, &r) in items.iter().zip(values) {
            if item_based {
                rows[i as usize].push((u as u32, r));
            } else {
                rows[u].push((i, r));
            }
        }
    }
    rows
}

/// Columns of a rating row: users for item rows, items for user rows.
pub fn rating_width(data: &Dataset, item_based: bool) -> usize {
    if item_based {
        data.num_users()
    } else {
        data.num_items()
    }
}

/// Dense `[rows.len(), width]` rating rows on `device` (0 where unobserved).
pub fn dense_rating_rows(rows: &[&[(u32, f32)]], width: usize, device: &Device) -> Tensor<2> {
    let mut dense = vec![0.0f32; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        for &(c, v) in *row {
            dense[r * width + c as usize] = v;
        }
    }
    Tensor::from_data(TensorData::new(dense, [rows.len(), width]), device)
}

/// What a model reads of each user when it scores them, by its [`Input`]: ids, item rows or
/// windows of their items. Rating models are scored from rating rows (`evaluate`'s
/// `RatingPredictor`).
pub struct Readers<'a> {
    input: Input,
    /// Each user's items as the model reads them.
    histories: Cow<'a, [Vec<u32>]>,
    /// The counts of `histories`, entry for entry, for a row model of a weighted run.
    counts: Option<&'a [Vec<f32>]>,
    num_items: usize,
}

impl<'a> Readers<'a> {
    /// How a model reading `input` sees the users of `data` when scoring the `which` held-out
    /// items: their training items (for a held-out user, the fold-in part); for sequence models
    /// scoring test items, their training then validation items (everything before the test
    /// item, as in SASRec's protocol).
    pub fn new(input: Input, data: &'a Dataset, which: HeldOut) -> Self {
        let histories = match (input, which) {
            (Input::Sequences { .. }, HeldOut::Test) => Cow::Owned(
                data.train
                    .iter()
                    .zip(&data.valid)
                    .map(|(train, valid)| train.iter().chain(valid).copied().collect())
                    .collect(),
            ),
            _ => Cow::Borrowed(data.train.as_slice()),
        };
        // Row models read the training items, whose weights the data holds when the model
        // takes them as counts.
        let counts = match input {
            Input::UserRows { .. } => data.weights.as_ref().map(|w| &w.train[..]),
            _ => None,
        };
        Self {
            input,
            histories,
            counts,
            num_items: data.num_items(),
        }
    }

    /// Each user's items as the model reads them.
    pub fn histories(&self) -> &[Vec<u32>] {
        &self.histories
    }

    /// The query that scores `users` on `device`.
    ///
    /// # Panics
    /// For rating models, which are scored from rating rows.
    pub fn query(&self, users: &[u32], device: &Device) -> Query {
        match self.input {
            Input::Pairs => Query::Ids(user_ids(users, device)),
            Input::UserRows { .. } => Query::UserRows(user_rows(
                (&self.histories, self.counts),
                users,
                self.num_items,
                device,
            )),
            Input::Sequences { max_len, task } => {
                let mask = match task {
                    SequenceTask::MaskedItem { .. } => Some(tokens::mask(self.num_items)),
                    SequenceTask::NextItem { .. } => None,
                };
                let windows: Vec<i32> = users
                    .iter()
                    .flat_map(|&u| {
                        tokens::scoring_window(&self.histories[u as usize], max_len, mask)
                    })
                    .collect();
                Query::Windows(ids(windows, device).reshape([users.len(), max_len]))
            }
            Input::RatingRows { .. } => {
                panic!("rating models predict ratings from rating rows (RatingPredictor)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten examples in batches of four over two ranks: batches 0..4, 4..8 and 8..10, each
    /// split in consecutive halves.
    #[test]
    fn a_cut_gives_each_rank_its_half_of_every_batch_the_last_one_short() {
        let cut = |rank| Cut::new(10, 4, Shard { rank, ranks: 2 });
        assert_eq!(cut(0).batches(), 3);
        let parts = |rank| (0..3).map(|b| cut(rank).rank_part(b)).collect::<Vec<_>>();
        assert_eq!(parts(0), [0..2, 4..6, 8..9]);
        assert_eq!(parts(1), [2..4, 6..8, 9..10]);
        let whole = Cut::new(10, 4, Shard::WHOLE);
        assert_eq!(whole.rank_part(2), 8..10);
        // A batch size of 0 is read as 1, never as no batches.
        assert_eq!(Cut::new(3, 0, Shard::WHOLE).batches(), 3);
    }
}
