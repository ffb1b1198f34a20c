//! Data-parallel training across processes, on the collective operations of
//! [`crate::collective`] (MPI's in `mpi_group`, behind the `mpi` cargo feature):
//! - [`ReplicaSync`]: the training loop's gradient sync, averaging the ranks' gradients by
//!   their examples, dense or as the rows a step touched, whichever moves fewer bytes;
//! - [`broadcast_model`]: rank 0's weights on every rank;
//! - [`check_replicas`]: that every rank holds the same weights.
//!
//! Every rank reads the same data and draws the same epochs (same seeds): a rank's batch is
//! its consecutive share of the single-process batch, so the ranks' union is the
//! single-process epoch and the averaged gradient is the single-process gradient (up to the
//! order of float additions).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use ember_models::Model;
use std::sync::Arc;
use std::time::Instant;

use crate::collective::{Collective, GradientSync, Shard};
use crate::params::{AutodiffState, weights_fingerprint};

/// Parameters of at least this many values are all-reduced on their own (no copy into the
/// flat buffer of the small ones).
const OWN_ALL_REDUCE: usize = 1 << 16;

/// How [`ReplicaSync`] exchanges a matrix's gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradientExchange {
    /// Every parameter dense, except embedding tables whose touched rows, gathered from every
    /// rank with their ids, are fewer bytes than the table (Horovod's sparse all-gather).
    #[default]
    Auto,
    /// Every parameter by a dense all-reduce.
    Dense,
}

/// Bytes and time of the gradient exchange, summed over steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SyncStats {
    /// Steps synced.
    pub steps: usize,
    /// Bytes this rank put into collectives.
    pub sent: u64,
    /// Bytes it would have put in with every parameter dense.
    pub dense: u64,
    /// Bytes it received from the gathers of touched rows.
    pub gathered: u64,
    /// Wall seconds in the exchange (host copies included).
    pub secs: f64,
}

impl SyncStats {
    /// One line for the log: per step, what was sent and what dense would have sent.
    pub fn describe(&self) -> String {
        let steps = self.steps.max(1) as f64;
        let mb = |b: u64| b as f64 / steps / 1e6;
        format!(
            "gradient sync: {} steps, {:.3} MB sent a step ({:.3} MB with every parameter dense), {:.3} MB gathered a step, {:.2} ms a step",
            self.steps,
            mb(self.sent),
            mb(self.dense),
            mb(self.gathered),
            self.secs / steps * 1e3
        )
    }
}

/// A parameter as the sync sees it: its id and shape, in the model's visiting order (the same
/// on every rank).
#[derive(Debug, Clone, PartialEq)]
struct ParamSlot {
    id: ParamId,
    shape: Vec<usize>,
}

impl ParamSlot {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The model's float parameters in visiting order.
fn param_slots(model: &Model) -> Vec<ParamSlot> {
    struct Slots(Vec<ParamSlot>);
    impl ModuleVisitor for Slots {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(ParamSlot {
                id: param.id,
                shape: param.val().dims().to_vec(),
            });
        }
    }
    let mut slots = Slots(Vec::new());
    model.visit(&mut slots);
    slots.0
}

/// Averages the gradients of data-parallel replicas, one per rank, weighting each by the
/// examples it trained on: the result is the gradient of the loss over the union of the ranks'
/// batches, and every rank applies the same one.
pub struct ReplicaSync {
    ranks: Arc<dyn Collective>,
    exchange: GradientExchange,
    stats: SyncStats,
}

impl ReplicaSync {
    /// A sync over `ranks`.
    pub fn new(ranks: Arc<dyn Collective>, exchange: GradientExchange) -> Self {
        Self {
            ranks,
            exchange,
            stats: SyncStats::default(),
        }
    }

    /// What the exchange has cost since the last call (or the start).
    pub fn take_stats(&mut self) -> SyncStats {
        std::mem::take(&mut self.stats)
    }
}

/// A gradient on the host, taken out of burn's container.
fn host_gradient<const D: usize>(grads: &mut GradientsParams, id: ParamId) -> Option<Vec<f32>> {
    let grad = grads.remove::<D>(id)?;
    Some(
        grad.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32"),
    )
}

fn take_gradient(grads: &mut GradientsParams, slot: &ParamSlot) -> Option<Vec<f32>> {
    match slot.shape.len() {
        1 => host_gradient::<1>(grads, slot.id),
        2 => host_gradient::<2>(grads, slot.id),
        3 => host_gradient::<3>(grads, slot.id),
        4 => host_gradient::<4>(grads, slot.id),
        d => panic!("parameters of rank {d} are not synced"),
    }
}

fn put_gradient(grads: &mut GradientsParams, slot: &ParamSlot, values: Vec<f32>, device: &Device) {
    let data = TensorData::new(values, slot.shape.clone());
    match slot.shape.len() {
        1 => grads.register::<1>(slot.id, Tensor::from_data(data, device)),
        2 => grads.register::<2>(slot.id, Tensor::from_data(data, device)),
        3 => grads.register::<3>(slot.id, Tensor::from_data(data, device)),
        4 => grads.register::<4>(slot.id, Tensor::from_data(data, device)),
        d => panic!("parameters of rank {d} are not synced"),
    }
}

/// The rows of a `[rows, width]` matrix that hold a non-zero value.
fn touched_rows(values: &[f32], width: usize) -> Vec<u32> {
    values
        .chunks(width.max(1))
        .enumerate()
        .filter(|(_, row)| row.iter().any(|&v| v != 0.0))
        .map(|(r, _)| r as u32)
        .collect()
}

/// What every rank learns of a step before the exchange, in one small all-reduce: the
/// examples in all, which parameters have a gradient on any rank, and how many rows each
/// matrix's gather of touched rows would carry.
struct StepMeta {
    /// `[examples, has_gradient × n, gathered_rows × n]`, summed over the ranks.
    sums: Vec<f64>,
    /// Parameters.
    n: usize,
}

impl StepMeta {
    fn exchange(
        ranks: &dyn Collective,
        examples: usize,
        local: &[Option<Vec<f32>>],
        touched: &[Option<Vec<u32>>],
    ) -> Self {
        let n = local.len();
        let mut sums = vec![0.0f64; 1 + 2 * n];
        sums[0] = examples as f64;
        for p in 0..n {
            sums[1 + p] = local[p].is_some() as u8 as f64;
            sums[1 + n + p] = touched[p].as_ref().map_or(0, Vec::len) as f64;
        }
        ranks.sum_f64(&mut sums);
        Self { sums, n }
    }

    /// The weight of this rank's gradients: its share of the step's examples.
    fn weight(&self, examples: usize) -> f32 {
        let total = self.sums[0];
        if total > 0.0 {
            (examples as f64 / total) as f32
        } else {
            0.0
        }
    }

    /// Whether any rank has a gradient for parameter `p`.
    fn has_gradient(&self, p: usize) -> bool {
        self.sums[1 + p] != 0.0
    }

    /// Whether matrix `p` travels as its touched rows: when they are fewer bytes, ids
    /// included, than the whole table.
    fn by_rows(&self, p: usize, touched: &Option<Vec<u32>>, shape: &[usize]) -> bool {
        match (touched, shape) {
            (Some(_), &[rows, width]) => {
                let gathered_rows = self.sums[1 + self.n + p] as usize;
                gathered_rows * (width + 1) < rows * width
            }
            _ => false,
        }
    }
}

/// Small dense gradients, weighted, waiting for one all-reduce together.
#[derive(Default)]
struct FlatReduce<'a> {
    values: Vec<f32>,
    slots: Vec<&'a ParamSlot>,
}

impl<'a> FlatReduce<'a> {
    fn push(&mut self, slot: &'a ParamSlot, values: &[f32]) {
        self.values.extend_from_slice(values);
        self.slots.push(slot);
    }

    /// Sums the gathered gradients over the ranks and puts each back in `grads`.
    fn reduce(mut self, ranks: &dyn Collective, grads: &mut GradientsParams, device: &Device) {
        ranks.sum_f32(&mut self.values);
        let mut at = 0;
        for slot in self.slots {
            let len = slot.len();
            put_gradient(grads, slot, self.values[at..at + len].to_vec(), device);
            at += len;
        }
    }
}

impl ReplicaSync {
    /// Which rows of each embedding-like matrix this rank's step touched (`None` for the
    /// parameters that always travel dense).
    fn touched(&self, slots: &[ParamSlot], local: &[Option<Vec<f32>>]) -> Vec<Option<Vec<u32>>> {
        slots
            .iter()
            .zip(local)
            .map(
                |(slot, values)| match (self.exchange, slot.shape.as_slice(), values) {
                    (GradientExchange::Auto, &[_, width], Some(values)) => {
                        Some(touched_rows(values, width))
                    }
                    (GradientExchange::Auto, &[_, _], None) => Some(Vec::new()),
                    _ => None,
                },
            )
            .collect()
    }

    /// Replaces `values`, a `[rows, width]` gradient whose rows `ids` this rank touched, with
    /// the sum over the ranks of their touched rows, each weighted by its rank's `weight`.
    fn sum_touched_rows(&mut self, values: &mut [f32], ids: &[u32], width: usize, weight: f32) {
        let mut rows = Vec::with_capacity(ids.len() * width);
        for &r in ids {
            let r = r as usize;
            rows.extend(
                values[r * width..(r + 1) * width]
                    .iter()
                    .map(|v| v * weight),
            );
        }
        self.stats.sent += (ids.len() * (width + 1) * 4) as u64;
        let (all_ids, _) = self.ranks.gather_u32(ids);
        let (all_rows, _) = self.ranks.gather_f32(&rows);
        self.stats.gathered += ((all_ids.len() + all_rows.len()) * 4) as u64;
        // Summed in rank order on every rank: the same result everywhere. The table is zeroed
        // only where this rank's own rows were (the rest already is).
        for &r in ids {
            let r = r as usize;
            values[r * width..(r + 1) * width].fill(0.0);
        }
        for (k, &r) in all_ids.iter().enumerate() {
            let r = r as usize;
            for (s, v) in values[r * width..(r + 1) * width]
                .iter_mut()
                .zip(&all_rows[k * width..(k + 1) * width])
            {
                *s += v;
            }
        }
    }
}

impl GradientSync for ReplicaSync {
    fn sync(
        &mut self,
        model: &Model,
        grads: Option<GradientsParams>,
        examples: usize,
    ) -> GradientsParams {
        let started = Instant::now();
        // Read every step: each stage of a run (NeuMF's pre-training, a refit) is a new model
        // with new parameter ids.
        let slots = param_slots(model);
        let device = model
            .devices()
            .into_iter()
            .next()
            .expect("a model has parameters")
            .inner();
        let mut grads = grads.unwrap_or_else(GradientsParams::new);
        let mut local: Vec<Option<Vec<f32>>> =
            slots.iter().map(|s| take_gradient(&mut grads, s)).collect();
        assert!(
            grads.is_empty(),
            "every gradient belongs to a parameter of the model"
        );
        let touched = self.touched(&slots, &local);
        let meta = StepMeta::exchange(self.ranks.as_ref(), examples, &local, &touched);
        let weight = meta.weight(examples);
        // Small dense parameters travel in one flat all-reduce; large ones each in their own,
        // in place.
        let mut flat = FlatReduce::default();
        for (p, slot) in slots.iter().enumerate() {
            if !meta.has_gradient(p) {
                continue; // no rank has a gradient for it: Adam leaves it alone
            }
            self.stats.dense += slot.len() as u64 * 4;
            let mut values = local[p].take().unwrap_or_else(|| vec![0.0; slot.len()]);
            if meta.by_rows(p, &touched[p], &slot.shape) {
                let ids = touched[p].as_ref().expect("matrix rows");
                self.sum_touched_rows(&mut values, ids, slot.shape[1], weight);
                put_gradient(&mut grads, slot, values, &device);
                continue;
            }
            self.stats.sent += slot.len() as u64 * 4;
            for v in &mut values {
                *v *= weight;
            }
            if values.len() >= OWN_ALL_REDUCE {
                self.ranks.sum_f32(&mut values);
                put_gradient(&mut grads, slot, values, &device);
            } else {
                flat.push(slot, &values);
            }
        }
        flat.reduce(self.ranks.as_ref(), &mut grads, &device);
        self.stats.steps += 1;
        self.stats.secs += started.elapsed().as_secs_f64();
        grads
    }

    fn sum(&mut self, values: &mut [f64]) {
        self.ranks.sum_f64(values);
    }

    fn replica(&self) -> Shard {
        Shard::of(self.ranks.as_ref())
    }

    fn report(&mut self) -> Option<String> {
        Some(self.take_stats().describe())
    }
}

/// `model` with rank 0's weights on every rank.
pub fn broadcast_model(model: Model, ranks: &dyn Collective) -> Model {
    if ranks.size() == 1 {
        return model;
    }
    struct Broadcast<'a> {
        ranks: &'a dyn Collective,
    }
    impl ModuleMapper for Broadcast<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let state = AutodiffState::of(&tensor);
            let device = tensor.device();
            let shape = tensor.shape();
            let mut values = tensor
                .inner()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32");
            self.ranks.broadcast_f32(&mut values);
            let updated = Tensor::<D>::from_data(TensorData::new(values, shape), &device.inner());
            Param::from_mapped_value(id, state.restore(updated, id), mapper)
        }
    }
    model.map(&mut Broadcast { ranks })
}

/// Checks that every rank holds the same weights (their fingerprints agree); the
/// fingerprint, or the ranks' differing ones.
pub fn check_replicas(model: &Model, ranks: &dyn Collective) -> Result<u64, Vec<u64>> {
    let mine = weights_fingerprint(model);
    if ranks.size() == 1 {
        return Ok(mine);
    }
    let halves = [(mine >> 32) as u32, mine as u32];
    let (all, _) = ranks.gather_u32(&halves);
    let prints: Vec<u64> = all
        .chunks(2)
        .map(|h| ((h[0] as u64) << 32) | h[1] as u64)
        .collect();
    if prints.iter().all(|&p| p == mine) {
        Ok(mine)
    } else {
        Err(prints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_rows_are_the_rows_with_a_non_zero_value() {
        let m = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -2.0];
        assert_eq!(touched_rows(&m, 2), vec![1, 3]);
        assert_eq!(touched_rows(&[0.0; 4], 2), Vec::<u32>::new());
    }
}
