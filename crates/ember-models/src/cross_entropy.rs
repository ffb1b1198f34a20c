#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! Softmax cross-entropy over every class (`loss_r = log Σ_j e^{x_rj} − x_{r,t_r}`) as one
//! backend operation with its own backward pass (`∂loss_r/∂x_rj = softmax(x_r)_j − [j = t_r]`).
//!
//! Composed from tensor operations, a log-softmax over `[rows, items]` logits and its gradient
//! take a dozen passes over the whole matrix (subtract the max, exponentiate, sum, log,
//! subtract, gather; and as many backwards, with a zero-filled scatter for the gather), each
//! a separate operation. On the CPU backends this operation does each row in one go, rows in
//! parallel, with a polynomial `exp` the compiler vectorises: the forward reads the logits twice
//! (max, then the sum of exponentials) and the backward recomputes the row's log-sum-exp (the
//! row is still in cache) and writes the gradient once. On the GPU (the default) it is the
//! composed operations.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use rayon::prelude::*;

use crate::host::{HostTensors, exp_f32, vectorised};

vectorised!(
    /// [`forward_rows`] for the CPU at hand.
    fn forward_chunk(logits: &[f32], classes: usize, targets: &[i64], losses: &mut [f32]) => forward_rows;
);
vectorised!(
    /// [`backward_rows`] for the CPU at hand.
    fn backward_chunk(logits: &[f32], classes: usize, targets: &[i64], grads: &[f32], out: &mut [f32]) => backward_rows;
);

/// Lanes of the row loops' independent accumulators (enough for two AVX-512 registers).
const LANES: usize = 16;

/// `log Σ_j e^{row_j}`, shifted by the row's max.
#[inline(always)]
fn log_sum_exp(row: &[f32]) -> f32 {
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut maxes = [f32::NEG_INFINITY; LANES];
    for chunk in chunks.clone() {
        for (m, &x) in maxes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let max = maxes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    let mut sums = [0.0f32; LANES];
    for chunk in chunks {
        for (s, &x) in sums.iter_mut().zip(chunk) {
            *s += exp_f32(x - max);
        }
    }
    let sum = sums.iter().sum::<f32>() + tail.iter().map(|&x| exp_f32(x - max)).sum::<f32>();
    max + sum.ln()
}

/// Rows handed to one parallel task.
const ROWS_PER_TASK: usize = 8;

/// Each row's loss into `losses`.
#[inline(always)]
fn forward_rows(logits: &[f32], classes: usize, targets: &[i64], losses: &mut [f32]) {
    for ((row, &target), loss) in logits.chunks_exact(classes).zip(targets).zip(losses) {
        *loss = log_sum_exp(row) - row[target as usize];
    }
}

/// Each row's gradient, `(softmax(row) − onehot(target)) · grad`, into `out`.
#[inline(always)]
fn backward_rows(logits: &[f32], classes: usize, targets: &[i64], grads: &[f32], out: &mut [f32]) {
    let rows = logits
        .chunks_exact(classes)
        .zip(out.chunks_exact_mut(classes));
    for (((row, out), &target), &grad) in rows.zip(targets).zip(grads) {
        let lse = log_sum_exp(row);
        for (o, &x) in out.iter_mut().zip(row) {
            *o = exp_f32(x - lse) * grad;
        }
        out[target as usize] -= grad;
    }
}

/// Each row's loss on the host: `logits` row-major `[rows, classes]`.
pub fn host_loss(logits: &[f32], classes: usize, targets: &[i64]) -> Vec<f32> {
    check_targets(targets, classes);
    let mut losses = vec![0.0f32; targets.len()];
    losses
        .par_chunks_mut(ROWS_PER_TASK)
        .zip(logits.par_chunks(ROWS_PER_TASK * classes))
        .zip(targets.par_chunks(ROWS_PER_TASK))
        .for_each(|((losses, logits), targets)| forward_chunk(logits, classes, targets, losses));
    losses
}

/// The gradient of `Σ_r grads_r · loss_r` with respect to the logits, on the host.
pub fn host_gradient(logits: &[f32], classes: usize, targets: &[i64], grads: &[f32]) -> Vec<f32> {
    check_targets(targets, classes);
    let mut out = vec![0.0f32; logits.len()];
    out.par_chunks_mut(ROWS_PER_TASK * classes)
        .zip(logits.par_chunks(ROWS_PER_TASK * classes))
        .zip(targets.par_chunks(ROWS_PER_TASK))
        .zip(grads.par_chunks(ROWS_PER_TASK))
        .for_each(|(((out, logits), targets), grads)| {
            backward_chunk(logits, classes, targets, grads, out)
        });
    out
}

fn check_targets(targets: &[i64], classes: usize) {
    if let Some(bad) = targets.iter().find(|&&t| t < 0 || t as usize >= classes) {
        panic!("target {bad} is not one of the {classes} classes");
    }
}

/// The loss on the host, for the CPU backends (their tensors already live in host memory).
fn host_forward<B: HostTensors>(logits: FloatTensor<B>, targets: IntTensor<B>) -> FloatTensor<B> {
    let classes = logits.shape()[1];
    let targets = B::ints(targets);
    let losses = B::read(&logits, |values| host_loss(values, classes, &targets));
    let rows = losses.len();
    B::write(losses, [rows].into(), &logits)
}

/// The gradient on the host, for the CPU backends.
fn host_backward<B: HostTensors>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = logits.shape();
    let targets = B::ints(targets);
    let grads = B::read(&grad, <[f32]>::to_vec);
    let gradient = B::read(&logits, |values| {
        host_gradient(values, shape[1], &targets, &grads)
    });
    B::write(gradient, shape, &logits)
}

/// The loss from tensor operations (the GPU backends).
fn composed_forward<B: Backend>(logits: FloatTensor<B>, targets: IntTensor<B>) -> FloatTensor<B> {
    let shape = logits.shape();
    let rows = shape[0];
    let log_sum_exp = composed_log_sum_exp::<B>(logits.clone());
    let picked = B::float_gather(1, logits, B::int_reshape(targets, [rows, 1].into()));
    B::float_reshape(B::float_sub(log_sum_exp, picked), [rows].into())
}

/// `[rows, 1]`: each row's log-sum-exp.
fn composed_log_sum_exp<B: Backend>(logits: FloatTensor<B>) -> FloatTensor<B> {
    let shape = logits.shape();
    let max = B::float_max_dim(logits.clone(), 1);
    let shifted = B::float_sub(logits, B::float_expand(max.clone(), shape));
    let sum = B::float_sum_dim(B::float_exp(shifted), 1);
    B::float_add(B::float_log(sum), max)
}

/// The gradient from tensor operations (the GPU backends).
fn composed_backward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = logits.shape();
    let rows = shape[0];
    let log_sum_exp = composed_log_sum_exp::<B>(logits.clone());
    let grad = B::float_reshape(grad, [rows, 1].into());
    let softmax = B::float_exp(B::float_sub(
        logits,
        B::float_expand(log_sum_exp, shape.clone()),
    ));
    let scaled = B::float_mul(softmax, B::float_expand(grad.clone(), shape));
    B::float_scatter(
        1,
        scaled,
        B::int_reshape(targets, [rows, 1].into()),
        B::float_neg(grad),
        IndexingUpdateOp::Add,
    )
}

/// Softmax cross-entropy as a backend operation, so that autodiff can be given its own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait CrossEntropyOps: Backend {
    /// `[rows]`: each row's loss, for `logits` `[rows, classes]` and `targets` `[rows]`.
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_forward::<Self>(logits, targets)
    }

    /// `[rows, classes]`: the gradient of `Σ_r grad_r · loss_r` with respect to the logits.
    fn softmax_cross_entropy_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_backward::<Self>(logits, targets, grad)
    }
}

#[cfg(feature = "flex")]
impl CrossEntropyOps for burn::backend::Flex {
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        host_forward::<Self>(logits, targets)
    }

    fn softmax_cross_entropy_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        host_backward::<Self>(logits, targets, grad)
    }
}
#[cfg(feature = "ndarray")]
impl CrossEntropyOps for burn::backend::NdArray {
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        host_forward::<Self>(logits, targets)
    }

    fn softmax_cross_entropy_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        host_backward::<Self>(logits, targets, grad)
    }
}
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl CrossEntropyOps for burn::backend::Cube {}

impl<B: CrossEntropyOps, C: CheckpointStrategy> CrossEntropyOps for Autodiff<B, C> {
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SoftmaxCrossEntropy;

        impl<B: CrossEntropyOps> Backward<B, 1> for SoftmaxCrossEntropy {
            type State = (FloatTensor<B>, IntTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (logits, targets) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::softmax_cross_entropy_backward(logits, targets, grad)
                });
            }
        }

        let (logits, node) = logits.into_parts();
        match SoftmaxCrossEntropy
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::softmax_cross_entropy(logits.clone(), targets.clone());
                prep.finish((logits, targets), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::softmax_cross_entropy(logits, targets)),
        }
    }

    fn softmax_cross_entropy_backward(
        _logits: FloatTensor<Self>,
        _targets: IntTensor<Self>,
        _grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unimplemented!("the backward pass runs on the inner backend")
    }
}

/// Each row's softmax cross-entropy against its target class.
///
/// # Shapes
/// - logits: `[rows, classes]`
/// - targets: `[rows]`
/// - output: `[rows]`
pub fn softmax_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let output = <burn::backend::Dispatch as CrossEntropyOps>::softmax_cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
    );
    Tensor::from_dispatch(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::log_softmax;

    /// Logits with a wide range, in rows longer than the lanes and with a tail.
    fn logits(rows: usize, classes: usize) -> Vec<f32> {
        (0..rows * classes)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 30.0)
            .collect()
    }

    #[test]
    fn host_loss_and_gradient_match_log_softmax() {
        let (rows, classes) = (19, 37);
        let values = logits(rows, classes);
        let targets: Vec<i64> = (0..rows as i64).map(|r| r * 5 % classes as i64).collect();
        let grads: Vec<f32> = (0..rows).map(|r| 0.5 + r as f32 / 10.0).collect();
        let losses = host_loss(&values, classes, &targets);
        let gradient = host_gradient(&values, classes, &targets, &grads);
        for r in 0..rows {
            let row: Vec<f64> = values[r * classes..(r + 1) * classes]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            let t = targets[r] as usize;
            assert!((losses[r] as f64 - (lse - row[t])).abs() < 1e-5 * (1.0 + lse.abs()));
            for (j, &x) in row.iter().enumerate() {
                let expected = ((x - lse).exp() - if j == t { 1.0 } else { 0.0 }) * grads[r] as f64;
                let got = gradient[r * classes + j] as f64;
                assert!(
                    (got - expected).abs() < 1e-6,
                    "row {r} class {j}: {got} against {expected}"
                );
            }
        }
    }

    /// The operation and its gradient through autodiff against burn's log-softmax and gather,
    /// on the host kernels and on the composed operations (what the GPU backends run).
    #[test]
    fn operation_and_gradient_match_burns_log_softmax() {
        let device = Device::flex().autodiff();
        let (rows, classes) = (6, 41);
        let data = TensorData::new(logits(rows, classes), [rows, classes]);
        let targets = Tensor::<1, Int>::from_ints([3, 40, 0, 17, 17, 8], &device);
        let weights = Tensor::<1>::from_floats([1.0, 2.0, 0.5, -1.0, 3.0, 0.25], &device);

        let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
        let loss = softmax_cross_entropy(x.clone(), targets.clone());
        let grads = (loss.clone() * weights.clone()).sum().backward();
        let grad = x.grad(&grads).expect("x has a gradient");

        let y = Tensor::<2>::from_data(data.clone(), &device).require_grad();
        let reference = -log_softmax(y.clone(), 1)
            .gather(1, targets.clone().reshape([rows, 1]))
            .reshape([rows]);
        let reference_grads = (reference.clone() * weights.clone()).sum().backward();
        let reference_grad = y.grad(&reference_grads).expect("y has a gradient");

        let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-5);
        loss.into_data()
            .assert_approx_eq::<f32>(&reference.clone().into_data(), tolerance);
        grad.to_data()
            .assert_approx_eq::<f32>(&reference_grad.to_data(), tolerance);

        // The composed operations (the GPU backends' path), here on Flex's primitives.
        type Flex = burn::backend::Flex;
        let flex = Device::flex();
        let x = Tensor::<2>::from_data(data, &flex)
            .try_into_primitive::<Flex>()
            .expect("a Flex tensor");
        let t = Tensor::<1, Int>::from_data(targets.to_data(), &flex)
            .try_into_primitive::<Flex>()
            .expect("a Flex tensor");
        let w = Tensor::<1>::from_data(weights.to_data(), &flex)
            .try_into_primitive::<Flex>()
            .expect("a Flex tensor");
        let composed_loss =
            Tensor::<1>::from_primitive::<Flex>(composed_forward::<Flex>(x.clone(), t.clone()));
        let composed_grad = Tensor::<2>::from_primitive::<Flex>(composed_backward::<Flex>(x, t, w));
        composed_loss
            .into_data()
            .assert_approx_eq::<f32>(&reference.into_data(), tolerance);
        composed_grad
            .into_data()
            .assert_approx_eq::<f32>(&reference_grad.into_data(), tolerance);
    }
}
