#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! Softmax cross-entropy over every class as one backend operation with its own backward pass.
//! Row `r` has targets `T_r` (one for a next or masked item; a user's items for the
//! multinomial likelihood of Mult-VAE): `loss_r = Σ_{t ∈ T_r} (log Σ_j e^{x_rj} − x_rt)` and
//! `∂loss_r/∂x_rj = |T_r| softmax(x_r)_j − #{t ∈ T_r : t = j}`.
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

use crate::host::{HostTensors, exp_f32, group_offsets, max_of, sum_of, vectorised};

vectorised!(
    /// [`forward_rows`] for the CPU at hand.
    fn forward_chunk(logits: &[f32], classes: usize, offsets: &[usize], targets: &[i64], losses: &mut [f32]) => forward_rows;
);
vectorised!(
    /// [`backward_rows`] for the CPU at hand.
    fn backward_chunk(logits: &[f32], classes: usize, offsets: &[usize], targets: &[i64], grads: &[f32], out: &mut [f32]) => backward_rows;
);

/// `log Σ_j e^{row_j}`, shifted by the row's max.
#[inline(always)]
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = max_of(row);
    max + sum_of(row, |x| exp_f32(x - max)).ln()
}

/// Rows handed to one parallel task.
const ROWS_PER_TASK: usize = 8;

/// Each row's loss into `losses`; row `r`'s targets are `targets[offsets[r]..offsets[r + 1]]`.
#[inline(always)]
fn forward_rows(
    logits: &[f32],
    classes: usize,
    offsets: &[usize],
    targets: &[i64],
    losses: &mut [f32],
) {
    for (r, (row, loss)) in logits.chunks_exact(classes).zip(losses).enumerate() {
        let mine = &targets[offsets[r]..offsets[r + 1]];
        *loss = if mine.is_empty() {
            0.0
        } else {
            let lse = log_sum_exp(row);
            mine.iter().map(|&t| lse - row[t as usize]).sum()
        };
    }
}

/// Each row's gradient, `(|T| softmax(row) − Σ_{t ∈ T} onehot(t)) · grad`, into `out`.
#[inline(always)]
fn backward_rows(
    logits: &[f32],
    classes: usize,
    offsets: &[usize],
    targets: &[i64],
    grads: &[f32],
    out: &mut [f32],
) {
    let rows = logits
        .chunks_exact(classes)
        .zip(out.chunks_exact_mut(classes));
    for (r, ((row, out), &grad)) in rows.zip(grads).enumerate() {
        let mine = &targets[offsets[r]..offsets[r + 1]];
        if mine.is_empty() {
            out.fill(0.0);
            continue;
        }
        let lse = log_sum_exp(row);
        let scale = grad * mine.len() as f32;
        for (o, &x) in out.iter_mut().zip(row) {
            *o = exp_f32(x - lse) * scale;
        }
        for &t in mine {
            out[t as usize] -= grad;
        }
    }
}

/// Targets grouped by row: row `r`'s are `targets[offsets[r]..offsets[r + 1]]`.
struct RowTargets {
    offsets: Vec<usize>,
    targets: Vec<i64>,
}

impl RowTargets {
    /// From each target's class and row (rows in ascending order).
    fn new(targets: Vec<i64>, target_rows: &[i64], rows: usize, classes: usize) -> Self {
        assert_eq!(targets.len(), target_rows.len(), "a row for every target");
        if let Some(bad) = targets.iter().find(|&&t| t < 0 || t as usize >= classes) {
            panic!("target {bad} is not one of the {classes} classes");
        }
        assert!(
            target_rows.windows(2).all(|w| w[0] <= w[1])
                && target_rows.iter().all(|&r| r >= 0 && (r as usize) < rows),
            "target rows must ascend within 0..{rows}"
        );
        let offsets = group_offsets(target_rows.iter().map(|&r| r as usize), rows);
        Self { offsets, targets }
    }
}

/// Each row's loss on the host: `logits` row-major `[rows, classes]`.
fn host_loss(logits: &[f32], classes: usize, targets: &RowTargets) -> Vec<f32> {
    let rows = targets.offsets.len() - 1;
    let mut losses = vec![0.0f32; rows];
    losses
        .par_chunks_mut(ROWS_PER_TASK)
        .zip(logits.par_chunks(ROWS_PER_TASK * classes))
        .enumerate()
        .for_each(|(task, (losses, logits))| {
            let first = task * ROWS_PER_TASK;
            let offsets = &targets.offsets[first..=first + losses.len()];
            forward_chunk(logits, classes, offsets, &targets.targets, losses)
        });
    losses
}

/// The gradient of `Σ_r grads_r · loss_r` with respect to the logits, on the host.
fn host_gradient(logits: &[f32], classes: usize, targets: &RowTargets, grads: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; logits.len()];
    out.par_chunks_mut(ROWS_PER_TASK * classes)
        .zip(logits.par_chunks(ROWS_PER_TASK * classes))
        .zip(grads.par_chunks(ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, ((out, logits), grads))| {
            let first = task * ROWS_PER_TASK;
            let offsets = &targets.offsets[first..=first + grads.len()];
            backward_chunk(logits, classes, offsets, &targets.targets, grads, out)
        });
    out
}

fn row_targets<B: HostTensors>(
    targets: IntTensor<B>,
    target_rows: IntTensor<B>,
    shape: &Shape,
) -> RowTargets {
    RowTargets::new(B::ints(targets), &B::ints(target_rows), shape[0], shape[1])
}

/// The loss on the host, for the CPU backends (their tensors already live in host memory).
fn host_forward<B: HostTensors>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    target_rows: IntTensor<B>,
) -> FloatTensor<B> {
    let shape = logits.shape();
    let targets = row_targets::<B>(targets, target_rows, &shape);
    let losses = B::read(&logits, |values| host_loss(values, shape[1], &targets));
    B::write(losses, [shape[0]].into(), &logits)
}

/// The gradient on the host, for the CPU backends.
fn host_backward<B: HostTensors>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    target_rows: IntTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = logits.shape();
    let targets = row_targets::<B>(targets, target_rows, &shape);
    let grads = B::read(&grad, <[f32]>::to_vec);
    let gradient = B::read(&logits, |values| {
        host_gradient(values, shape[1], &targets, &grads)
    });
    B::write(gradient, shape, &logits)
}

/// `[targets]`: where each target's logit is in the flattened logits.
fn flat_positions<B: Backend>(
    targets: IntTensor<B>,
    target_rows: IntTensor<B>,
    classes: usize,
) -> IntTensor<B> {
    B::int_add(
        B::int_mul_scalar(target_rows, (classes as i64).into()),
        targets,
    )
}

/// The loss from tensor operations (the GPU backends).
fn composed_forward<B: Backend>(
    logits: FloatTensor<B>,
    targets: IntTensor<B>,
    target_rows: IntTensor<B>,
) -> FloatTensor<B> {
    let shape = logits.shape();
    let (rows, classes) = (shape[0], shape[1]);
    let (device, dtype) = (logits.device(), logits.dtype());
    let log_sum_exp = B::float_reshape(composed_log_sum_exp::<B>(logits.clone()), [rows].into());
    let positions = flat_positions::<B>(targets, target_rows.clone(), classes);
    let picked = B::float_select(
        B::float_reshape(logits, [rows * classes].into()),
        0,
        positions,
    );
    let per_target = B::float_sub(B::float_select(log_sum_exp, 0, target_rows.clone()), picked);
    B::float_select_assign(
        B::float_zeros([rows].into(), &device, dtype.into()),
        0,
        target_rows,
        per_target,
        IndexingUpdateOp::Add,
    )
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
    target_rows: IntTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = logits.shape();
    let (rows, classes) = (shape[0], shape[1]);
    let (device, dtype) = (logits.device(), logits.dtype());
    let count = target_rows.shape()[0];
    let counts = B::float_select_assign(
        B::float_zeros([rows].into(), &device, dtype.into()),
        0,
        target_rows.clone(),
        B::float_ones([count].into(), &device, dtype.into()),
        IndexingUpdateOp::Add,
    );
    let log_sum_exp = composed_log_sum_exp::<B>(logits.clone());
    let softmax = B::float_exp(B::float_sub(
        logits,
        B::float_expand(log_sum_exp, shape.clone()),
    ));
    let scale = B::float_reshape(B::float_mul(grad.clone(), counts), [rows, 1].into());
    let scaled = B::float_mul(softmax, B::float_expand(scale, shape.clone()));
    let positions = flat_positions::<B>(targets, target_rows.clone(), classes);
    let flat = B::float_select_assign(
        B::float_reshape(scaled, [rows * classes].into()),
        0,
        positions,
        B::float_neg(B::float_select(grad, 0, target_rows)),
        IndexingUpdateOp::Add,
    );
    B::float_reshape(flat, shape)
}

/// Softmax cross-entropy as a backend operation, so that autodiff can be given its own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait CrossEntropyOps: Backend {
    /// `[rows]`: each row's loss, for `logits` `[rows, classes]`, the classes `targets` and
    /// the rows `target_rows` (ascending) of the targets.
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        target_rows: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_forward::<Self>(logits, targets, target_rows)
    }

    /// `[rows, classes]`: the gradient of `Σ_r grad_r · loss_r` with respect to the logits.
    fn softmax_cross_entropy_backward(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        target_rows: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composed_backward::<Self>(logits, targets, target_rows, grad)
    }
}

/// The host kernels for a CPU backend.
macro_rules! host_cross_entropy {
    ($backend:ty) => {
        impl CrossEntropyOps for $backend {
            fn softmax_cross_entropy(
                logits: FloatTensor<Self>,
                targets: IntTensor<Self>,
                target_rows: IntTensor<Self>,
            ) -> FloatTensor<Self> {
                host_forward::<Self>(logits, targets, target_rows)
            }

            fn softmax_cross_entropy_backward(
                logits: FloatTensor<Self>,
                targets: IntTensor<Self>,
                target_rows: IntTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                host_backward::<Self>(logits, targets, target_rows, grad)
            }
        }
    };
}
#[cfg(feature = "flex")]
host_cross_entropy!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
host_cross_entropy!(burn::backend::NdArray);
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl CrossEntropyOps for burn::backend::Cube {}

impl<B: CrossEntropyOps, C: CheckpointStrategy> CrossEntropyOps for Autodiff<B, C> {
    fn softmax_cross_entropy(
        logits: FloatTensor<Self>,
        targets: IntTensor<Self>,
        target_rows: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SoftmaxCrossEntropy;

        impl<B: CrossEntropyOps> Backward<B, 1> for SoftmaxCrossEntropy {
            type State = (FloatTensor<B>, IntTensor<B>, IntTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (logits, targets, target_rows) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::softmax_cross_entropy_backward(logits, targets, target_rows, grad)
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
                let output =
                    B::softmax_cross_entropy(logits.clone(), targets.clone(), target_rows.clone());
                prep.finish((logits, targets, target_rows), output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::softmax_cross_entropy(logits, targets, target_rows))
            }
        }
    }

    fn softmax_cross_entropy_backward(
        _logits: FloatTensor<Self>,
        _targets: IntTensor<Self>,
        _target_rows: IntTensor<Self>,
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
    let rows = logits.dims()[0];
    let target_rows = Tensor::<1, Int>::arange(0..rows as i64, &logits.device());
    softmax_cross_entropy_of_rows(logits, targets, target_rows)
}

/// Each row's softmax cross-entropy summed over its targets: target `k` is class
/// `targets[k]` of row `target_rows[k]` (ascending; a row may have any number of targets).
///
/// # Shapes
/// - logits: `[rows, classes]`
/// - targets, target_rows: `[targets]`
/// - output: `[rows]`
pub fn softmax_cross_entropy_of_rows(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    target_rows: Tensor<1, Int>,
) -> Tensor<1> {
    let output = <burn::backend::Dispatch as CrossEntropyOps>::softmax_cross_entropy(
        logits.into_dispatch(),
        targets.into_dispatch(),
        target_rows.into_dispatch(),
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

    /// Six rows: one target, none, three (one class twice), one, two, one.
    const TARGETS: [i64; 9] = [3, 40, 0, 40, 17, 17, 8, 1, 39];
    const TARGET_ROWS: [i64; 9] = [0, 2, 2, 2, 3, 4, 4, 5, 5];

    /// `[rows, classes]`: how often each class is a target of each row.
    fn counts(rows: usize, classes: usize) -> Vec<f32> {
        let mut counts = vec![0.0f32; rows * classes];
        for (&t, &r) in TARGETS.iter().zip(&TARGET_ROWS) {
            counts[r as usize * classes + t as usize] += 1.0;
        }
        counts
    }

    #[test]
    fn host_loss_and_gradient_match_log_softmax() {
        let (rows, classes) = (6, 37);
        let values = logits(rows, classes);
        let targets = TARGETS.map(|t| t % classes as i64);
        let mut counts = vec![0.0f64; rows * classes];
        for (&t, &r) in targets.iter().zip(&TARGET_ROWS) {
            counts[r as usize * classes + t as usize] += 1.0;
        }
        let row_targets = RowTargets::new(targets.to_vec(), &TARGET_ROWS, rows, classes);
        let grads: Vec<f32> = (0..rows).map(|r| 0.5 + r as f32 / 10.0).collect();
        let losses = host_loss(&values, classes, &row_targets);
        let gradient = host_gradient(&values, classes, &row_targets, &grads);
        for r in 0..rows {
            let row: Vec<f64> = values[r * classes..(r + 1) * classes]
                .iter()
                .map(|&x| x as f64)
                .collect();
            let count = &counts[r * classes..(r + 1) * classes];
            let n: f64 = count.iter().sum();
            let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
            let expected: f64 = row.iter().zip(count).map(|(x, c)| c * (lse - x)).sum();
            assert!((losses[r] as f64 - expected).abs() < 1e-5 * (1.0 + expected.abs()));
            for (j, &x) in row.iter().enumerate() {
                let expected = (n * (x - lse).exp() - count[j]) * grads[r] as f64;
                let got = gradient[r * classes + j] as f64;
                assert!(
                    (got - expected).abs() < 1e-5,
                    "row {r} class {j}: {got} against {expected}"
                );
            }
        }
    }

    /// The operation and its gradient through autodiff against burn's log-softmax, on the
    /// host kernels and on the composed operations (what the GPU backends run).
    #[test]
    fn operation_and_gradient_match_burns_log_softmax() {
        let device = Device::flex().autodiff();
        let (rows, classes) = (6, 41);
        let data = TensorData::new(logits(rows, classes), [rows, classes]);
        let targets = Tensor::<1, Int>::from_ints(TARGETS, &device);
        let target_rows = Tensor::<1, Int>::from_ints(TARGET_ROWS, &device);
        let weights = Tensor::<1>::from_floats([1.0, 2.0, 0.5, -1.0, 3.0, 0.25], &device);

        let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
        let loss = softmax_cross_entropy_of_rows(x.clone(), targets.clone(), target_rows.clone());
        let grads = (loss.clone() * weights.clone()).sum().backward();
        let grad = x.grad(&grads).expect("x has a gradient");

        let y = Tensor::<2>::from_data(data.clone(), &device).require_grad();
        let counts = Tensor::<2>::from_data(
            TensorData::new(counts(rows, classes), [rows, classes]),
            &device,
        );
        let reference = -(log_softmax(y.clone(), 1) * counts)
            .sum_dim(1)
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
        let ints = |values: [i64; 9]| {
            Tensor::<1, Int>::from_ints(values, &flex)
                .try_into_primitive::<Flex>()
                .expect("a Flex tensor")
        };
        let (t, r) = (ints(TARGETS), ints(TARGET_ROWS));
        let w = Tensor::<1>::from_data(weights.to_data(), &flex)
            .try_into_primitive::<Flex>()
            .expect("a Flex tensor");
        let composed_loss = Tensor::<1>::from_primitive::<Flex>(composed_forward::<Flex>(
            x.clone(),
            t.clone(),
            r.clone(),
        ));
        let composed_grad =
            Tensor::<2>::from_primitive::<Flex>(composed_backward::<Flex>(x, t, r, w));
        composed_loss
            .into_data()
            .assert_approx_eq::<f32>(&reference.into_data(), tolerance);
        composed_grad
            .into_data()
            .assert_approx_eq::<f32>(&reference_grad.into_data(), tolerance);
    }

    #[test]
    fn one_target_per_row_is_the_usual_cross_entropy() {
        let device = Device::flex();
        let (rows, classes) = (3, 20);
        let x = Tensor::<2>::from_data(
            TensorData::new(logits(rows, classes), [rows, classes]),
            &device,
        );
        let targets = Tensor::<1, Int>::from_ints([19, 0, 7], &device);
        let reference = -log_softmax(x.clone(), 1)
            .gather(1, targets.clone().reshape([rows, 1]))
            .reshape([rows]);
        softmax_cross_entropy(x, targets)
            .into_data()
            .assert_approx_eq::<f32>(
                &reference.into_data(),
                burn::tensor::Tolerance::<f32>::absolute(1e-5),
            );
    }
}
