#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! GELU and tanh as backend operations with their own backward passes.
//!
//! burn's CPU backends evaluate `erf` and `tanh` element by element with scalar library calls,
//! on one thread: GELU in BERT4Rec's feed-forward layers (`[batch · len, 4 · hidden]`) was a
//! sixth of a training step, tanh a tenth of Mult-VAE's. On the CPU backends these operations
//! run over chunks in parallel with an `erf` ([`crate::host::erf_f32`], within 5e-7) and a
//! `tanh` ([`tanh_f32`]) that the compiler vectorises. On the GPU (the default) they are
//! burn's own.
//!
//! - GELU: `x Φ(x) = x/2 (1 + erf(x/√2))`, gradient `Φ(x) + x φ(x)` (from the input), on
//!   every backend (burn's GPU and NdArray backends differentiate the tanh approximation).
//! - tanh: gradient `1 − tanh(x)²` (from the output).
//! - softmax over the last dimension: gradient `y ⊙ (g − Σ g ⊙ y)` (from the output); the
//!   attention weights' softmax, where masked scores (−10⁴) sent burn's scalar `exp` down its
//!   slow underflow path.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;
use std::f32::consts::{FRAC_1_SQRT_2, PI};

use crate::host::{HostTensors, erf_f32, exp_f32, max_of, sum_of, vectorised};

/// Elements handed to one parallel task.
const CHUNK: usize = 1 << 14;

/// `tanh(x)` within 3 ulp: Cephes' `tanhf`, an odd polynomial below `|x| = 0.625` and
/// `1 − 2 / (e^{2|x|} + 1)` above, both computed and one chosen, so loops over it vectorise.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    let large = (1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

/// `x Φ(x)` of each of `x` into `out`.
#[inline(always)]
fn gelu_values(x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = 0.5 * x * (1.0 + erf_f32(x * FRAC_1_SQRT_2));
    }
}

/// `grad · (Φ(x) + x φ(x))` of each of `x` into `out`.
#[inline(always)]
fn gelu_gradients(x: &[f32], grad: &[f32], out: &mut [f32]) {
    let inverse_sqrt_2pi = 1.0 / (2.0 * PI).sqrt();
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
        let cdf = 0.5 * (1.0 + erf_f32(x * FRAC_1_SQRT_2));
        let pdf = inverse_sqrt_2pi * exp_f32(-0.5 * x * x);
        *o = g * (cdf + x * pdf);
    }
}

/// `tanh(x)` of each of `x` into `out`.
#[inline(always)]
fn tanh_values(x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = tanh_f32(x);
    }
}

/// `grad · (1 − y²)` of each output `y` into `out`.
#[inline(always)]
fn tanh_gradients(y: &[f32], grad: &[f32], out: &mut [f32]) {
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(grad) {
        *o = g * (1.0 - y * y);
    }
}

/// The softmax of each `len`-long row of `x` into `out`.
#[inline(always)]
fn softmax_rows(x: &[f32], len: usize, out: &mut [f32]) {
    for (row, out) in x.chunks_exact(len).zip(out.chunks_exact_mut(len)) {
        let max = max_of(row);
        for (o, &v) in out.iter_mut().zip(row) {
            *o = exp_f32(v - max);
        }
        let scale = 1.0 / sum_of(out, |e| e);
        for o in out.iter_mut() {
            *o *= scale;
        }
    }
}

/// `y ⊙ (g − Σ g ⊙ y)` of each `len`-long row of the outputs `y` and their gradients `g`.
#[inline(always)]
fn softmax_gradient_rows(y: &[f32], grad: &[f32], len: usize, out: &mut [f32]) {
    let rows = y.chunks_exact(len).zip(grad.chunks_exact(len));
    for ((y, g), out) in rows.zip(out.chunks_exact_mut(len)) {
        for (o, (&y, &g)) in out.iter_mut().zip(y.iter().zip(g)) {
            *o = y * g;
        }
        let dot = sum_of(out, |p| p);
        for (o, (&y, &g)) in out.iter_mut().zip(y.iter().zip(g)) {
            *o = y * (g - dot);
        }
    }
}

vectorised!(
    /// [`softmax_rows`] for the CPU at hand.
    fn softmax_chunk(x: &[f32], len: usize, out: &mut [f32]) => softmax_rows;
);
vectorised!(
    /// [`softmax_gradient_rows`] for the CPU at hand.
    fn softmax_gradient_chunk(y: &[f32], grad: &[f32], len: usize, out: &mut [f32]) => softmax_gradient_rows;
);
vectorised!(
    /// [`gelu_values`] for the CPU at hand.
    fn gelu_chunk(x: &[f32], out: &mut [f32]) => gelu_values;
);
vectorised!(
    /// [`gelu_gradients`] for the CPU at hand.
    fn gelu_gradient_chunk(x: &[f32], grad: &[f32], out: &mut [f32]) => gelu_gradients;
);
vectorised!(
    /// [`tanh_values`] for the CPU at hand.
    fn tanh_chunk(x: &[f32], out: &mut [f32]) => tanh_values;
);
vectorised!(
    /// [`tanh_gradients`] for the CPU at hand.
    fn tanh_gradient_chunk(y: &[f32], grad: &[f32], out: &mut [f32]) => tanh_gradients;
);

/// `kernel` over `x`, chunks in parallel, into a tensor shaped as `x`.
fn host_map<B: HostTensors>(x: FloatTensor<B>, kernel: fn(&[f32], &mut [f32])) -> FloatTensor<B> {
    let values = B::read(&x, |x| {
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(out, x)| kernel(x, out));
        out
    });
    B::write(values, x.shape(), &x)
}

/// `kernel` over `x` and `grad`, chunks in parallel, into a tensor shaped as `x`.
fn host_zip<B: HostTensors>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
    kernel: fn(&[f32], &[f32], &mut [f32]),
) -> FloatTensor<B> {
    let values = B::read(&x, |x| {
        B::read(&grad, |grad| {
            let mut out = vec![0.0f32; x.len()];
            out.par_chunks_mut(CHUNK)
                .zip(x.par_chunks(CHUNK))
                .zip(grad.par_chunks(CHUNK))
                .for_each(|((out, x), grad)| kernel(x, grad, out));
            out
        })
    });
    B::write(values, x.shape(), &x)
}

/// The softmax over the last dimension on the host, whole rows to each parallel task.
fn host_softmax<B: HostTensors>(x: FloatTensor<B>) -> FloatTensor<B> {
    let shape = x.shape();
    let len = shape[shape.num_dims() - 1].max(1);
    let chunk = (CHUNK / len).max(1) * len;
    let values = B::read(&x, |x| {
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(out, x)| softmax_chunk(x, len, out));
        out
    });
    B::write(values, shape, &x)
}

/// The softmax's gradient on the host, from its output `y`.
fn host_softmax_backward<B: HostTensors>(
    y: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = y.shape();
    let len = shape[shape.num_dims() - 1].max(1);
    let chunk = (CHUNK / len).max(1) * len;
    let values = B::read(&y, |y| {
        B::read(&grad, |grad| {
            let mut out = vec![0.0f32; y.len()];
            out.par_chunks_mut(chunk)
                .zip(y.par_chunks(chunk))
                .zip(grad.par_chunks(chunk))
                .for_each(|((out, y), grad)| softmax_gradient_chunk(y, grad, len, out));
            out
        })
    });
    B::write(values, shape, &y)
}

/// The activations as backend operations, so that autodiff can be given their own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait ActivationHostOps: Backend {
    /// `x Φ(x)`, element-wise.
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// The gradient with respect to `x` of `Σ grad ⊙ gelu(x)`, `grad · (Φ(x) + x φ(x))`
    /// (burn's default `gelu_backward`, which the GPU backends use, is the derivative of the
    /// tanh approximation instead).
    fn exact_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let scaled = Self::float_mul_scalar(x.clone(), FRAC_1_SQRT_2.into());
        let cdf = Self::float_mul_scalar(
            Self::float_add_scalar(Self::float_erf(scaled), 1f32.into()),
            0.5f32.into(),
        );
        let square = Self::float_mul(x.clone(), x.clone());
        let pdf = Self::float_mul_scalar(
            Self::float_exp(Self::float_mul_scalar(square, (-0.5f32).into())),
            (1.0 / (2.0 * PI).sqrt()).into(),
        );
        Self::float_mul(grad, Self::float_add(cdf, Self::float_mul(x, pdf)))
    }

    /// `tanh(x)`, element-wise.
    fn host_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_tanh(x)
    }

    /// The gradient with respect to `x` of `Σ grad ⊙ tanh(x)`, from the output `y = tanh(x)`.
    fn host_tanh_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let ones = Self::float_ones(y.shape(), &y.device(), y.dtype().into());
        let derivative = Self::float_sub(ones, Self::float_mul(y.clone(), y));
        Self::float_mul(grad, derivative)
    }

    /// The softmax over the last dimension.
    fn last_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }

    /// The gradient with respect to `x` of `Σ grad ⊙ softmax(x)`, from the output `y`.
    fn last_softmax_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = y.shape();
        let last = shape.num_dims() - 1;
        let dot = Self::float_sum_dim(Self::float_mul(y.clone(), grad.clone()), last);
        let centred = Self::float_sub(grad, Self::float_expand(dot, shape));
        Self::float_mul(y, centred)
    }
}

/// The host kernels for a CPU backend.
macro_rules! host_activations {
    ($backend:ty) => {
        impl ActivationHostOps for $backend {
            fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
                host_map::<Self>(x, gelu_chunk)
            }

            fn exact_gelu_backward(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                host_zip::<Self>(x, grad, gelu_gradient_chunk)
            }

            fn host_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
                host_map::<Self>(x, tanh_chunk)
            }

            fn host_tanh_backward(
                y: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                host_zip::<Self>(y, grad, tanh_gradient_chunk)
            }

            fn last_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
                host_softmax::<Self>(x)
            }

            fn last_softmax_backward(
                y: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                host_softmax_backward::<Self>(y, grad)
            }
        }
    };
}
#[cfg(feature = "flex")]
host_activations!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
host_activations!(burn::backend::NdArray);
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl ActivationHostOps for burn::backend::Cube {}

/// A tracked element-wise (or row-wise) operation whose backward pass is
/// `backward(kept, grad)`, `kept` being its input or its output.
#[derive(Debug)]
struct HostUnary<B: Backend> {
    backward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
}

impl<B: Backend> Backward<B, 1> for HostUnary<B> {
    type State = FloatTensor<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let kept = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            (self.backward)(kept, grad)
        });
    }
}

/// Runs `forward` on the inner backend and records `backward`, keeping the input
/// (`keep_output` false) or the output for it.
fn tracked_unary<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    forward: fn(FloatTensor<B>) -> FloatTensor<B>,
    backward: fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>,
    keep_output: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let (x, node) = x.into_parts();
    let step = HostUnary { backward };
    match step.prepare::<C>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let output = forward(x.clone());
            let kept = if keep_output { output.clone() } else { x };
            prep.finish(kept, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x)),
    }
}

impl<B: ActivationHostOps, C: CheckpointStrategy> ActivationHostOps for Autodiff<B, C> {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked_unary::<B, C>(x, B::exact_gelu, B::exact_gelu_backward, false)
    }

    fn exact_gelu_backward(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("the backward pass runs on the inner backend")
    }

    fn host_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked_unary::<B, C>(x, B::host_tanh, B::host_tanh_backward, true)
    }

    fn host_tanh_backward(_y: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("the backward pass runs on the inner backend")
    }

    fn last_softmax(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tracked_unary::<B, C>(x, B::last_softmax, B::last_softmax_backward, true)
    }

    fn last_softmax_backward(_y: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("the backward pass runs on the inner backend")
    }
}

/// `x Φ(x) = x/2 (1 + erf(x/√2))`, element-wise, with the exact derivative.
///
/// # Shapes
/// - x: any
/// - output: as `x`
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let output = <burn::backend::Dispatch as ActivationHostOps>::exact_gelu(x.into_dispatch());
    Tensor::from_dispatch(output)
}

/// `tanh(x)`, element-wise.
///
/// # Shapes
/// - x: any
/// - output: as `x`
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let output = <burn::backend::Dispatch as ActivationHostOps>::host_tanh(x.into_dispatch());
    Tensor::from_dispatch(output)
}

/// The softmax over the last dimension.
///
/// # Shapes
/// - x: any
/// - output: as `x`
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let output = <burn::backend::Dispatch as ActivationHostOps>::last_softmax(x.into_dispatch());
    Tensor::from_dispatch(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::tests::erf_reference;

    /// Values over `[-8, 8)`, in rows longer than a parallel chunk.
    fn inputs() -> TensorData {
        let n = 3 * 20_011;
        let values: Vec<f32> = (0..n).map(|i| (i as f32 / n as f32 - 0.5) * 16.0).collect();
        TensorData::new(values, [3, 20_011])
    }

    /// The gradient of `Σ w ⊙ f(x)` at `x` through autodiff, for `w = sin(x)`.
    fn value_and_gradient(f: fn(Tensor<2>) -> Tensor<2>) -> (TensorData, TensorData, Vec<f32>) {
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::from_data(inputs(), &device).require_grad();
        let weights = x.clone().detach().sin();
        let y = f(x.clone());
        let grad = x
            .grad(&(y.clone() * weights.clone()).sum().backward())
            .expect("x has a gradient");
        (
            y.into_data(),
            grad.into_data(),
            weights.into_data().to_vec::<f32>().unwrap(),
        )
    }

    /// The expected values and gradients, from f64 math.
    fn expected(f: impl Fn(f64) -> (f64, f64), weights: &[f32]) -> (TensorData, TensorData) {
        let xs = inputs().to_vec::<f32>().unwrap();
        let (values, grads): (Vec<f32>, Vec<f32>) = xs
            .iter()
            .zip(weights)
            .map(|(&x, &w)| {
                let (y, dy) = f(x as f64);
                (y as f32, (w as f64 * dy) as f32)
            })
            .unzip();
        (
            TensorData::new(values, [3, 20_011]),
            TensorData::new(grads, [3, 20_011]),
        )
    }

    #[test]
    fn gelu_and_its_gradient_match_f64_math() {
        let (y, grad, weights) = value_and_gradient(gelu);
        let (values, grads) = expected(
            |x| {
                let cdf = 0.5 * (1.0 + erf_reference(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (x * cdf, cdf + x * pdf)
            },
            &weights,
        );
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(2e-6);
        y.assert_approx_eq::<f32>(&values, tolerance);
        grad.assert_approx_eq::<f32>(&grads, tolerance);
    }

    #[test]
    fn tanh_and_its_gradient_match_f64_math() {
        let (y, grad, weights) = value_and_gradient(tanh);
        let (values, grads) = expected(|x| (x.tanh(), 1.0 - x.tanh().powi(2)), &weights);
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-6);
        y.assert_approx_eq::<f32>(&values, tolerance);
        grad.assert_approx_eq::<f32>(&grads, tolerance);
    }

    #[test]
    fn tanh_is_within_3_ulp() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let exact = (x as f64).tanh();
            if exact != 0.0 {
                worst = worst.max(((tanh_f32(x) as f64 - exact) / exact).abs());
            }
            x += 0.000_37;
        }
        // 3 ulp of f32 is 3 · 2⁻²³ ≈ 3.6e-7 relative.
        assert!(worst < 3.6e-7, "worst relative error {worst:e}");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(100.0), 1.0);
        assert_eq!(tanh_f32(-100.0), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn softmax_and_its_gradient_match_burns() {
        let device = Device::flex().autodiff();
        // Rows of 50 (attention's), with masked scores as the attention fills them.
        let data = TensorData::new(
            (0..4 * 3 * 50)
                .map(|i| {
                    if i % 7 == 0 {
                        -1.0e4
                    } else {
                        ((i * 37 % 101) as f32 - 50.0) / 9.0
                    }
                })
                .collect::<Vec<f32>>(),
            [4, 3, 50],
        );
        let run = |f: fn(Tensor<3>) -> Tensor<3>| {
            let x = Tensor::<3>::from_data(data.clone(), &device).require_grad();
            let y = f(x.clone());
            let weights = x.clone().detach().cos();
            let grad = x
                .grad(&(y.clone() * weights).sum().backward())
                .expect("x has a gradient");
            (y.into_data(), grad.into_data())
        };
        let (y, grad) = run(softmax_last);
        let (expected, expected_grad) = run(|x| burn::tensor::activation::softmax(x, 2));
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-6);
        y.assert_approx_eq::<f32>(&expected, tolerance);
        grad.assert_approx_eq::<f32>(&expected_grad, tolerance);
    }
}
