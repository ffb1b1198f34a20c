#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! GELU, `x Φ(x) = x/2 (1 + erf(x/√2))`, as a backend operation with its own backward pass
//! (`Φ(x) + x φ(x)`).
//!
//! burn's CPU backends evaluate `erf` element by element with a scalar library call, on one
//! thread; in BERT4Rec's feed-forward layers (`[batch · len, 4 · hidden]`) that was a sixth of
//! a training step. On the CPU backends this operation runs over chunks in parallel with an
//! `erf` the compiler vectorises ([`crate::host::erf_f32`], within 5e-7). On the GPU (the
//! default) it is burn's `gelu` and `gelu_backward`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, TensorMetadata, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;
use std::f32::consts::{FRAC_1_SQRT_2, PI};

use crate::host::{HostTensors, erf_f32, exp_f32, vectorised};

/// Elements handed to one parallel task.
const CHUNK: usize = 1 << 14;

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

vectorised!(
    /// [`gelu_values`] for the CPU at hand.
    fn gelu_chunk(x: &[f32], out: &mut [f32]) => gelu_values;
);
vectorised!(
    /// [`gelu_gradients`] for the CPU at hand.
    fn gelu_gradient_chunk(x: &[f32], grad: &[f32], out: &mut [f32]) => gelu_gradients;
);

/// `x Φ(x)` of each element on the host.
pub fn host_gelu(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, x)| gelu_chunk(x, out));
    out
}

/// `grad · (Φ(x) + x φ(x))` of each element on the host.
pub fn host_gelu_gradient(x: &[f32], grad: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|((out, x), grad)| gelu_gradient_chunk(x, grad, out));
    out
}

fn host_forward<B: HostTensors>(x: FloatTensor<B>) -> FloatTensor<B> {
    let values = B::read(&x, host_gelu);
    B::write(values, x.shape(), &x)
}

fn host_backward<B: HostTensors>(x: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let values = B::read(&x, |x| B::read(&grad, |grad| host_gelu_gradient(x, grad)));
    B::write(values, x.shape(), &x)
}

/// GELU as a backend operation, so that autodiff can be given its own backward.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "vulkan"))
)]
pub trait GeluOps: Backend {
    /// `x Φ(x)`, element-wise.
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// The gradient with respect to `x` of `Σ grad ⊙ gelu(x)`.
    fn exact_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }
}

#[cfg(feature = "flex")]
impl GeluOps for burn::backend::Flex {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        host_forward::<Self>(x)
    }

    fn exact_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        host_backward::<Self>(x, grad)
    }
}
#[cfg(feature = "ndarray")]
impl GeluOps for burn::backend::NdArray {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        host_forward::<Self>(x)
    }

    fn exact_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        host_backward::<Self>(x, grad)
    }
}
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
impl GeluOps for burn::backend::Cube {}

impl<B: GeluOps, C: CheckpointStrategy> GeluOps for Autodiff<B, C> {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Gelu;

        impl<B: GeluOps> Backward<B, 1> for Gelu {
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let x = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::exact_gelu_backward(x, grad)
                });
            }
        }

        let (x, node) = x.into_parts();
        match Gelu.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::exact_gelu(x.clone());
                prep.finish(x, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::exact_gelu(x)),
        }
    }

    fn exact_gelu_backward(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("the backward pass runs on the inner backend")
    }
}

/// `x Φ(x) = x/2 (1 + erf(x/√2))`, element-wise, with the exact derivative.
///
/// # Shapes
/// - x: any
/// - output: as `x`
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let output = <burn::backend::Dispatch as GeluOps>::exact_gelu(x.into_dispatch());
    Tensor::from_dispatch(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_and_its_gradient_match_burns_on_the_host() {
        let device = Device::flex().autodiff();
        let values: Vec<f32> = (0..3 * 20_011)
            .map(|i| (i as f32 / (3.0 * 20_011.0) - 0.5) * 16.0)
            .collect();
        let data = TensorData::new(values, [3, 20_011]);
        let weights = Tensor::<2>::from_data(data.clone(), &device).sin();

        let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
        let y = gelu(x.clone());
        let grad = x
            .grad(&(y.clone() * weights.clone()).sum().backward())
            .expect("x has a gradient");

        // burn's forward (scalar erf); the derivative written out with f64 math.
        let reference =
            burn::tensor::activation::gelu(Tensor::<2>::from_data(data.clone(), &device));
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(2e-6);
        y.into_data()
            .assert_approx_eq::<f32>(&reference.into_data(), tolerance);
        let xs = data.to_vec::<f32>().unwrap();
        let ws = weights.into_data().to_vec::<f32>().unwrap();
        let expected: Vec<f32> = xs
            .iter()
            .zip(&ws)
            .map(|(&x, &w)| {
                let x = x as f64;
                let cdf =
                    0.5 * (1.0 + crate::host::tests::erf_reference(x / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (w as f64 * (cdf + x * pdf)) as f32
            })
            .collect();
        grad.into_data()
            .assert_approx_eq::<f32>(&TensorData::new(expected, [3, 20_011]), tolerance);
    }
}
