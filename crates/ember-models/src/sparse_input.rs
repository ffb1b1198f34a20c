#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! A batch of sparse rows times a dense weight matrix, `y = S W`, as a backend operation with
//! its own backward pass (`∂L/∂W = Sᵀ ∂L/∂y`; the entries of `S` are constants).
//!
//! The autoencoders' first layer reads a user's row of the user × item matrix, whose entries
//! are zero but for the user's few items. As a dense product it multiplies `[batch, items]` by
//! `[items, hidden]`; this reads only the rows of `W` of each user's items and sums them,
//! weighted. On the CPU backends rows are summed in parallel (the forward by batch row, the
//! backward by item, each in a fixed order); on the GPU (the default) it is a gather, a
//! multiplication and a scatter-add.
//!
//! `S` is given by its entries: entry `k` is `values[k]` at row `rows[k]` (ascending) and
//! column `columns[k]`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use rayon::prelude::*;

use crate::host::{HostTensors, group_offsets, vectorised};

/// The entries of a sparse `[rows, columns]` matrix, in row order.
struct Entries {
    values: Vec<f32>,
    rows: Vec<i64>,
    columns: Vec<i64>,
}

impl Entries {
    fn read<B: HostTensors>(
        values: &FloatTensor<B>,
        rows: IntTensor<B>,
        columns: IntTensor<B>,
        shape: [usize; 2],
    ) -> Self {
        let entries = Self {
            values: B::read(values, <[f32]>::to_vec),
            rows: B::ints(rows),
            columns: B::ints(columns),
        };
        assert!(
            entries.values.len() == entries.rows.len()
                && entries.rows.len() == entries.columns.len(),
            "a row and a column for every value"
        );
        assert!(
            entries.rows.windows(2).all(|w| w[0] <= w[1])
                && entries
                    .rows
                    .iter()
                    .all(|&r| r >= 0 && (r as usize) < shape[0]),
            "entry rows must ascend within 0..{}",
            shape[0]
        );
        assert!(
            entries
                .columns
                .iter()
                .all(|&c| c >= 0 && (c as usize) < shape[1]),
            "entry columns must lie within 0..{}",
            shape[1]
        );
        entries
    }

    /// `S W` for `weight` row-major `[columns, dim]`: `[rows, dim]`.
    fn times(&self, weight: &[f32], dim: usize, rows: usize) -> Vec<f32> {
        let offsets = group_offsets(self.rows.iter().map(|&r| r as usize), rows);
        let order: Vec<usize> = (0..self.values.len()).collect();
        let mut out = vec![0.0f32; rows * dim];
        out.par_chunks_mut(dim.max(1))
            .enumerate()
            .for_each(|(r, row)| {
                let mine = &order[offsets[r]..offsets[r + 1]];
                weighted_sum(row, mine, &self.columns, &self.values, weight)
            });
        out
    }

    /// `Sᵀ G` for `grad` row-major `[rows, dim]`: `[columns, dim]`, each column's entries
    /// added in row order.
    fn transpose_times(&self, grad: &[f32], dim: usize, columns: usize) -> Vec<f32> {
        let offsets = group_offsets(self.columns.iter().map(|&c| c as usize), columns);
        // Entries by column (a stable counting sort keeps each column's in row order).
        let mut next = offsets.clone();
        let mut by_column = vec![0usize; self.columns.len()];
        for (k, &c) in self.columns.iter().enumerate() {
            by_column[next[c as usize]] = k;
            next[c as usize] += 1;
        }
        let mut out = vec![0.0f32; columns * dim];
        out.par_chunks_mut(dim.max(1))
            .enumerate()
            .for_each(|(c, row)| {
                let mine = &by_column[offsets[c]..offsets[c + 1]];
                weighted_sum(row, mine, &self.rows, &self.values, grad)
            });
        out
    }
}

/// `out += Σ_{k ∈ entries} values[k] · source[keys[k]]`, `source` row-major with rows as wide
/// as `out`.
#[inline(always)]
fn weighted_rows(out: &mut [f32], entries: &[usize], keys: &[i64], values: &[f32], source: &[f32]) {
    let dim = out.len();
    for &k in entries {
        let (key, value) = (keys[k] as usize, values[k]);
        for (o, s) in out.iter_mut().zip(&source[key * dim..(key + 1) * dim]) {
            *o += value * s;
        }
    }
}

vectorised!(
    /// [`weighted_rows`] for the CPU at hand.
    fn weighted_sum(out: &mut [f32], entries: &[usize], keys: &[i64], values: &[f32], source: &[f32]) => weighted_rows;
);

fn host_forward<B: HostTensors>(
    values: FloatTensor<B>,
    rows: IntTensor<B>,
    columns: IntTensor<B>,
    batch: usize,
    weight: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = weight.shape();
    let entries = Entries::read::<B>(&values, rows, columns, [batch, shape[0]]);
    let out = B::read(&weight, |w| entries.times(w, shape[1], batch));
    B::write(out, [batch, shape[1]].into(), &weight)
}

fn host_backward<B: HostTensors>(
    values: FloatTensor<B>,
    rows: IntTensor<B>,
    columns: IntTensor<B>,
    weight_rows: usize,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = grad.shape();
    let entries = Entries::read::<B>(&values, rows, columns, [shape[0], weight_rows]);
    let out = B::read(&grad, |g| entries.transpose_times(g, shape[1], weight_rows));
    B::write(out, [weight_rows, shape[1]].into(), &grad)
}

/// `values[k] · weight[columns[k]]` for every entry: `[entries, dim]`.
fn composed_messages<B: Backend>(
    values: FloatTensor<B>,
    index: IntTensor<B>,
    source: FloatTensor<B>,
) -> FloatTensor<B> {
    let dim = source.shape()[1];
    let count = values.shape()[0];
    let picked = B::float_select(source, 0, index);
    let values = B::float_reshape(values, [count, 1].into());
    B::float_mul(picked, B::float_expand(values, [count, dim].into()))
}

/// `S W` from tensor operations (the GPU backends).
fn composed_times<B: Backend>(
    values: FloatTensor<B>,
    rows: IntTensor<B>,
    columns: IntTensor<B>,
    batch: usize,
    weight: FloatTensor<B>,
) -> FloatTensor<B> {
    let (device, dtype, dim) = (weight.device(), weight.dtype(), weight.shape()[1]);
    let messages = composed_messages::<B>(values, columns, weight);
    let zeros = B::float_zeros([batch, dim].into(), &device, dtype.into());
    B::float_select_assign(zeros, 0, rows, messages, IndexingUpdateOp::Add)
}

/// `Sᵀ G` from tensor operations (the GPU backends).
fn composed_transpose_times<B: Backend>(
    values: FloatTensor<B>,
    rows: IntTensor<B>,
    columns: IntTensor<B>,
    weight_rows: usize,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let (device, dtype, dim) = (grad.device(), grad.dtype(), grad.shape()[1]);
    let messages = composed_messages::<B>(values, rows, grad);
    let zeros = B::float_zeros([weight_rows, dim].into(), &device, dtype.into());
    B::float_select_assign(zeros, 0, columns, messages, IndexingUpdateOp::Add)
}

/// The sparse product as a backend operation, so that autodiff can be given its own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait SparseInputOps: Backend {
    /// `S W`, `[batch, dim]`, for `S` `[batch, weight rows]` given by its entries and `weight`
    /// `[weight rows, dim]`: by default a gather and a scatter-add (the GPU backends).
    fn sparse_times(
        values: FloatTensor<Self>,
        rows: IntTensor<Self>,
        columns: IntTensor<Self>,
        batch: usize,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_times::<Self>(values, rows, columns, batch, weight)
    }

    /// `Sᵀ grad`, `[weight rows, dim]`, for `grad` `[batch, dim]`.
    fn sparse_transpose_times(
        values: FloatTensor<Self>,
        rows: IntTensor<Self>,
        columns: IntTensor<Self>,
        weight_rows: usize,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_transpose_times::<Self>(values, rows, columns, weight_rows, grad)
    }
}

/// The host kernels for a CPU backend.
macro_rules! host_sparse_input {
    ($backend:ty) => {
        impl SparseInputOps for $backend {
            fn sparse_times(
                values: FloatTensor<Self>,
                rows: IntTensor<Self>,
                columns: IntTensor<Self>,
                batch: usize,
                weight: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                host_forward::<Self>(values, rows, columns, batch, weight)
            }

            fn sparse_transpose_times(
                values: FloatTensor<Self>,
                rows: IntTensor<Self>,
                columns: IntTensor<Self>,
                weight_rows: usize,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                host_backward::<Self>(values, rows, columns, weight_rows, grad)
            }
        }
    };
}
#[cfg(feature = "flex")]
host_sparse_input!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
host_sparse_input!(burn::backend::NdArray);
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl SparseInputOps for burn::backend::Cube {}

impl<B: SparseInputOps, C: CheckpointStrategy> SparseInputOps for Autodiff<B, C> {
    fn sparse_times(
        values: FloatTensor<Self>,
        rows: IntTensor<Self>,
        columns: IntTensor<Self>,
        batch: usize,
        weight: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SparseTimes;

        impl<B: SparseInputOps> Backward<B, 1> for SparseTimes {
            type State = (FloatTensor<B>, IntTensor<B>, IntTensor<B>, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (values, rows, columns, weight_rows) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::sparse_transpose_times(values, rows, columns, weight_rows, grad)
                });
            }
        }

        // The entries are constants: no gradient flows to them.
        let values = values.into_primitive();
        let (weight, node) = weight.into_parts();
        let weight_rows = weight.shape()[0];
        match SparseTimes.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output =
                    B::sparse_times(values.clone(), rows.clone(), columns.clone(), batch, weight);
                prep.finish((values, rows, columns, weight_rows), output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::sparse_times(values, rows, columns, batch, weight))
            }
        }
    }

    fn sparse_transpose_times(
        _values: FloatTensor<Self>,
        _rows: IntTensor<Self>,
        _columns: IntTensor<Self>,
        _weight_rows: usize,
        _grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unimplemented!("the backward pass runs on the inner backend")
    }
}

/// `S W` for the sparse `[batch, weight rows]` matrix `S` whose entry `k` is `values[k]` at
/// row `rows[k]` (ascending) and column `columns[k]`. Only `weight` gets a gradient.
///
/// # Shapes
/// - values, rows, columns: `[entries]`
/// - weight: `[weight rows, dim]`
/// - output: `[batch, dim]`
pub fn sparse_times(
    values: Tensor<1>,
    rows: Tensor<1, Int>,
    columns: Tensor<1, Int>,
    batch: usize,
    weight: Tensor<2>,
) -> Tensor<2> {
    let output = <burn::backend::Dispatch as SparseInputOps>::sparse_times(
        values.into_dispatch(),
        rows.into_dispatch(),
        columns.into_dispatch(),
        batch,
        weight.into_dispatch(),
    );
    Tensor::from_dispatch(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 0 and 2 hold entries, row 1 none; column 1 twice.
    fn sparse(device: &Device) -> (Tensor<1>, Tensor<1, Int>, Tensor<1, Int>, Tensor<2>) {
        let values = Tensor::<1>::from_floats([0.5, 2.0, -1.0, 3.0], device);
        let rows = Tensor::<1, Int>::from_ints([0, 0, 2, 2], device);
        let columns = Tensor::<1, Int>::from_ints([1, 3, 1, 0], device);
        let dense = Tensor::<2>::from_floats(
            [
                [0.0, 0.5, 0.0, 2.0],
                [0.0, 0.0, 0.0, 0.0],
                [3.0, -1.0, 0.0, 0.0],
            ],
            device,
        );
        (values, rows, columns, dense)
    }

    fn weight_data() -> TensorData {
        TensorData::new((0..12).map(|i| i as f32 * 0.25 - 1.0).collect(), [4, 3])
    }

    #[test]
    fn product_and_gradient_match_the_dense_product() {
        let device = Device::flex().autodiff();
        let (values, rows, columns, dense) = sparse(&device);
        let weight = Tensor::<2>::from_data(weight_data(), &device).require_grad();
        let y = sparse_times(values, rows, columns, 3, weight.clone());
        let expected = dense.clone().matmul(weight.clone().detach());
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-6);
        y.to_data()
            .assert_approx_eq::<f32>(&expected.into_data(), tolerance);
        // L = Σ y ⊙ c: ∂L/∂W = Sᵀ c.
        let c =
            Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], &device);
        let grads = (y * c.clone()).sum().backward();
        let grad = weight.grad(&grads).expect("the weight has a gradient");
        grad.into_data()
            .assert_approx_eq::<f32>(&dense.transpose().matmul(c).inner().into_data(), tolerance);
    }

    /// The composed operations (the GPU backends' path), here on Flex's primitives, against
    /// the host kernels.
    #[test]
    fn composed_operations_match_the_host_kernels() {
        type Flex = burn::backend::Flex;
        let device = Device::flex();
        let (values, rows, columns, _) = sparse(&device);
        let weight = Tensor::<2>::from_data(weight_data(), &device);
        let grad = Tensor::<2>::from_data(weight_data(), &device).narrow(0, 0, 3);
        let float = |t: Tensor<2>| t.try_into_primitive::<Flex>().expect("a Flex tensor");
        let v = values
            .clone()
            .try_into_primitive::<Flex>()
            .expect("a Flex tensor");
        let int = |t: Tensor<1, Int>| t.try_into_primitive::<Flex>().expect("a Flex tensor");
        let (r, c) = (int(rows.clone()), int(columns.clone()));
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-6);

        let composed =
            composed_times::<Flex>(v.clone(), r.clone(), c.clone(), 3, float(weight.clone()));
        let host = host_forward::<Flex>(v.clone(), r.clone(), c.clone(), 3, float(weight));
        Tensor::<2>::from_primitive::<Flex>(composed)
            .into_data()
            .assert_approx_eq::<f32>(
                &Tensor::<2>::from_primitive::<Flex>(host).into_data(),
                tolerance,
            );

        let composed = composed_transpose_times::<Flex>(
            v.clone(),
            r.clone(),
            c.clone(),
            4,
            float(grad.clone()),
        );
        let host = host_backward::<Flex>(v, r, c, 4, float(grad));
        Tensor::<2>::from_primitive::<Flex>(composed)
            .into_data()
            .assert_approx_eq::<f32>(
                &Tensor::<2>::from_primitive::<Flex>(host).into_data(),
                tolerance,
            );
    }
}
