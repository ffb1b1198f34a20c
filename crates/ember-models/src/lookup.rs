#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! Embedding lookups with a gradient that is parallel over the batch.
//!
//! burn's own lookup (`select`) takes its gradient through `select_assign`, which on the GPU runs
//! one thread per embedding column and loops over every id of the batch: serial in the batch,
//! and the largest cost of a training step at large batches. Batches are built on the CPU, so the
//! CPU also sorts each batch's ids into segments of equal ids ([`SegmentPlan`]). The gradient of
//! the table is then a few parallel, deterministic tensor operations on the device:
//!
//! 1. gather the output gradient's rows segment by segment, in chunks of at most `chunk` rows
//!    (short chunks padded with a zero row), and sum each chunk: `[chunks, chunk, dim] → [chunks, dim]`;
//! 2. repeat on the chunk sums until every segment (distinct id) has one row;
//! 3. gather those rows into the table's shape (rows absent from the batch get the zero row).
//!
//! Every step is a gather or a short reduction, so it uses the whole GPU whatever the batch
//! size, and the order of additions is fixed, so results are reproducible. On the CPU, burn's
//! `select_assign` is already a tight loop, so [`IdBatch::new`] leaves the plan out there.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, TensorMetadata, backend_extension};
use burn::tensor::Slice;
use burn::nn::Embedding;
use burn::prelude::*;

/// Rows summed per chunk at each level of the segment sum.
pub const DEFAULT_CHUNK: usize = 16;

/// How the ids of one batch fall into segments of equal ids, computed on the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Rows of the table.
    pub rows: usize,
    /// Rows summed per chunk.
    pub chunk: usize,
    /// One entry per level: `[chunks * chunk]` indices into the previous level's rows (the
    /// output gradient's rows at the first level), where the index equal to the previous level's
    /// row count stands for a zero row.
    pub levels: Vec<Vec<i32>>,
    /// `[rows]`: for each table row, the last level's row holding its gradient, or that level's
    /// row count (the zero row) when the row is not in the batch.
    pub row_map: Vec<i32>,
}

impl SegmentPlan {
    /// Plans the gradient of looking up `ids` in a table of `rows` rows.
    ///
    /// # Panics
    /// When an id is outside `0..rows` or `chunk < 2`.
    pub fn new(ids: &[i32], rows: usize, chunk: usize) -> Self {
        assert!(chunk >= 2, "chunk must be at least 2");
        // Counting sort by id: stable, so each segment lists batch positions in order.
        let mut counts = vec![0u32; rows + 1];
        for &id in ids {
            assert!((id as usize) < rows, "id {id} outside a table of {rows} rows");
            counts[id as usize + 1] += 1;
        }
        for r in 0..rows {
            counts[r + 1] += counts[r];
        }
        let row_start = counts.clone(); // row_start[r]..row_start[r + 1]: row r's segment
        let mut items = vec![0i32; ids.len()];
        let mut next = counts;
        for (pos, &id) in ids.iter().enumerate() {
            items[next[id as usize] as usize] = pos as i32;
            next[id as usize] += 1;
        }
        // Segment bounds over `items`, one segment per distinct id, in id order.
        let mut segment_rows = Vec::new();
        let mut bounds = vec![0usize];
        for r in 0..rows {
            if row_start[r + 1] > row_start[r] {
                segment_rows.push(r);
                bounds.push(row_start[r + 1] as usize);
            }
        }

        let mut levels = Vec::new();
        let mut current_rows = ids.len();
        while bounds.windows(2).any(|w| w[1] - w[0] > 1) {
            let zero = current_rows as i32;
            let mut index = Vec::new();
            let mut next_items = Vec::new();
            let mut next_bounds = vec![0usize];
            for w in bounds.windows(2) {
                for piece in items[w[0]..w[1]].chunks(chunk) {
                    next_items.push((index.len() / chunk) as i32);
                    index.extend_from_slice(piece);
                    index.resize(index.len() + chunk - piece.len(), zero);
                }
                next_bounds.push(next_items.len());
            }
            current_rows = next_items.len();
            items = next_items;
            bounds = next_bounds;
            levels.push(index);
        }

        let mut row_map = vec![current_rows as i32; rows];
        for (s, &r) in segment_rows.iter().enumerate() {
            row_map[r] = items[bounds[s]];
        }
        Self {
            rows,
            chunk,
            levels,
            row_map,
        }
    }

    /// Moves the plan to `device`.
    pub fn to_device(&self, device: &Device) -> SegmentPlanTensors {
        let int = |v: &[i32]| {
            Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
        };
        // One tensor (every level, then the row map), so the plan is one upload.
        let mut flat = Vec::with_capacity(
            self.levels.iter().map(Vec::len).sum::<usize>() + self.row_map.len(),
        );
        for level in &self.levels {
            flat.extend_from_slice(level);
        }
        flat.extend_from_slice(&self.row_map);
        SegmentPlanTensors {
            chunk: self.chunk,
            level_lengths: self.levels.iter().map(Vec::len).collect(),
            plan: int(&flat),
        }
    }
}

/// A [`SegmentPlan`] on the device.
#[derive(Debug, Clone)]
pub struct SegmentPlanTensors {
    chunk: usize,
    level_lengths: Vec<usize>,
    /// Every level's indices, then the row map.
    plan: Tensor<1, Int>,
}

/// Ids to look up, with the plan of their gradient when training on a device that profits.
#[derive(Debug, Clone)]
pub struct IdBatch {
    /// `[batch]`
    pub ids: Tensor<1, Int>,
    /// The segment plan of `ids`; `None` takes burn's own gradient.
    pub plan: Option<SegmentPlanTensors>,
}

impl From<Tensor<1, Int>> for IdBatch {
    fn from(ids: Tensor<1, Int>) -> Self {
        Self { ids, plan: None }
    }
}

impl IdBatch {
    /// Ids for a table of `rows` rows, on `device`, with a segment plan when `plan_chunk` is set.
    pub fn new(ids: &[i32], rows: usize, plan_chunk: Option<usize>, device: &Device) -> Self {
        let tensor = Tensor::<1, Int>::from_data(TensorData::new(ids.to_vec(), [ids.len()]), device);
        Self {
            ids: tensor,
            plan: plan_chunk.map(|c| SegmentPlan::new(ids, rows, c).to_device(device)),
        }
    }

    /// The ids alone.
    pub fn ids(&self) -> Tensor<1, Int> {
        self.ids.clone()
    }
}

/// Looks up rows of an embedding table, with the segmented gradient when `ids` carries a plan.
///
/// # Shapes
/// - ids: `[batch]`
/// - output: `[batch, dim]`
pub fn lookup(table: &Embedding, ids: &IdBatch) -> Tensor<2> {
    let weight = table.weight.val();
    match &ids.plan {
        None => weight.select(0, ids.ids.clone()),
        Some(plan) => {
            let output = <burn::backend::Dispatch as SegmentedLookupOps>::segmented_lookup(
                weight.into_dispatch(),
                ids.ids.clone().into_dispatch(),
                plan.plan.clone().into_dispatch(),
                plan.level_lengths.clone(),
                plan.chunk,
            );
            Tensor::from_dispatch(output)
        }
    }
}

/// The lookup as a backend operation, so that autodiff can be given its own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait SegmentedLookupOps: Backend {
    /// `table.select(0, ids)`; `plan` (every level's indices, then the row map), `level_lengths`
    /// and `chunk` are the [`SegmentPlan`] of `ids`, used by the backward pass.
    fn segmented_lookup(
        table: FloatTensor<Self>,
        ids: IntTensor<Self>,
        plan: IntTensor<Self>,
        level_lengths: Vec<usize>,
        chunk: usize,
    ) -> FloatTensor<Self> {
        let _ = (plan, level_lengths, chunk);
        Self::float_select(table, 0, ids)
    }
}

#[cfg(feature = "flex")]
impl SegmentedLookupOps for burn::backend::Flex {}
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl SegmentedLookupOps for burn::backend::NdArray {}
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl SegmentedLookupOps for burn::backend::Cube {}

/// The table's gradient from the output gradient, by the segment plan.
///
/// # Shapes
/// - grad: `[batch, dim]`
/// - output: `[rows, dim]`
fn segment_sum<B: Backend>(
    grad: FloatTensor<B>,
    plan: IntTensor<B>,
    level_lengths: &[usize],
    chunk: usize,
) -> FloatTensor<B> {
    let dim = grad.shape()[1];
    let dtype = grad.dtype().into();
    let device = grad.device();
    let plan_len = plan.shape()[0];
    let part = |start: usize, end: usize| B::int_slice(plan.clone(), &[Slice::from(start..end)]);
    let with_zero_row = |values: FloatTensor<B>| {
        B::float_cat(vec![values, B::float_zeros([1, dim].into(), &device, dtype)], 0)
    };
    let mut values = grad;
    let mut start = 0;
    for &len in level_lengths {
        let index = part(start, start + len);
        start += len;
        let chunks = len / chunk;
        let gathered = B::float_select(with_zero_row(values), 0, index);
        let summed = B::float_sum_dim(B::float_reshape(gathered, [chunks, chunk, dim].into()), 1);
        values = B::float_reshape(summed, [chunks, dim].into());
    }
    B::float_select(with_zero_row(values), 0, part(start, plan_len))
}

impl<B: Backend, C: CheckpointStrategy> SegmentedLookupOps for Autodiff<B, C> {
    fn segmented_lookup(
        table: FloatTensor<Self>,
        ids: IntTensor<Self>,
        plan: IntTensor<Self>,
        level_lengths: Vec<usize>,
        chunk: usize,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SegmentedLookup;

        impl<B: Backend> Backward<B, 1> for SegmentedLookup {
            type State = (IntTensor<B>, Vec<usize>, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (plan, level_lengths, chunk) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    segment_sum::<B>(grad, plan, &level_lengths, chunk)
                });
            }
        }

        let (table, node) = table.into_parts();
        match SegmentedLookup
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::float_select(table, 0, ids);
                prep.finish((plan, level_lengths, chunk), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::float_select(table, 0, ids)),
        }
    }
}
