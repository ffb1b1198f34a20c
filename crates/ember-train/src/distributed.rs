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

impl GradientSync for ReplicaSync {
    fn sync(
        &mut self,
        model: &Model,
        grads: Option<GradientsParams>,
        examples: usize,
    ) -> GradientsParams {
        let started = Instant::now();
        let ranks = self.ranks.clone();
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
        // Embedding-like matrices: which rows this rank's step touched.
        let touched: Vec<Option<Vec<u32>>> = slots
            .iter()
            .zip(&local)
            .map(
                |(slot, values)| match (self.exchange, slot.shape.as_slice(), values) {
                    (GradientExchange::Auto, &[_, width], Some(values)) => {
                        Some(touched_rows(values, width))
                    }
                    (GradientExchange::Auto, &[_, _], None) => Some(Vec::new()),
                    _ => None,
                },
            )
            .collect();
        // One small all-reduce: examples, which parameters have a gradient anywhere, and how
        // many rows each matrix's gather would carry.
        let n = slots.len();
        let mut meta = vec![0.0f64; 1 + 2 * n];
        meta[0] = examples as f64;
        for p in 0..n {
            meta[1 + p] = local[p].is_some() as u8 as f64;
            meta[1 + n + p] = touched[p].as_ref().map_or(0, Vec::len) as f64;
        }
        ranks.sum_f64(&mut meta);
        let total = meta[0];
        let weight = if total > 0.0 {
            (examples as f64 / total) as f32
        } else {
            0.0
        };
        let mut sent = 0u64;
        let mut gathered = 0u64;
        let mut dense_all = 0u64;
        // Small dense parameters travel in one flat all-reduce; large ones each in their own,
        // in place.
        let mut flat = Vec::new();
        let mut flat_slots = Vec::new();
        for (p, slot) in slots.iter().enumerate() {
            if meta[1 + p] == 0.0 {
                continue; // no rank has a gradient for it: Adam leaves it alone
            }
            dense_all += slot.len() as u64 * 4;
            let mut values = local[p].take().unwrap_or_else(|| vec![0.0; slot.len()]);
            let use_rows = match (&touched[p], slot.shape.as_slice()) {
                (Some(_), &[rows, width]) => {
                    let gathered_rows = meta[1 + n + p] as usize;
                    gathered_rows * (width + 1) < rows * width
                }
                _ => false,
            };
            if use_rows {
                let width = slot.shape[1];
                let ids = touched[p].as_ref().expect("matrix rows");
                let mut rows = Vec::with_capacity(ids.len() * width);
                for &r in ids {
                    let r = r as usize;
                    rows.extend(
                        values[r * width..(r + 1) * width]
                            .iter()
                            .map(|v| v * weight),
                    );
                }
                sent += (ids.len() * (width + 1) * 4) as u64;
                let (all_ids, _) = ranks.gather_u32(ids);
                let (all_rows, _) = ranks.gather_f32(&rows);
                gathered += ((all_ids.len() + all_rows.len()) * 4) as u64;
                // Summed in rank order on every rank: the same result everywhere. The table
                // is zeroed only where this rank's own rows were (the rest already is).
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
                put_gradient(&mut grads, slot, values, &device);
            } else {
                sent += slot.len() as u64 * 4;
                for v in &mut values {
                    *v *= weight;
                }
                if values.len() >= OWN_ALL_REDUCE {
                    ranks.sum_f32(&mut values);
                    put_gradient(&mut grads, slot, values, &device);
                } else {
                    flat.extend_from_slice(&values);
                    flat_slots.push(slot);
                }
            }
        }
        ranks.sum_f32(&mut flat);
        let mut at = 0;
        for slot in flat_slots {
            let len = slot.len();
            put_gradient(&mut grads, slot, flat[at..at + len].to_vec(), &device);
            at += len;
        }
        self.stats.steps += 1;
        self.stats.sent += sent;
        self.stats.dense += dense_all;
        self.stats.gathered += gathered;
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
