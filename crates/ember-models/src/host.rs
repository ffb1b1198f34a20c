#![allow(deprecated)] // burn-ndarray is deprecated, and still one of the backends ember offers.
//! What the host kernels of ember's backend operations share: reading a CPU backend's tensors
//! (without a copy on Flex), writing results back, and running a loop compiled for AVX2 and
//! FMA when the CPU has them.

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, TensorMetadata};
use burn::prelude::*;

/// A CPU backend whose tensors the host kernels read and write.
pub trait HostTensors: Backend {
    /// Calls `f` with the tensor's values (row-major, as `f32`); on Flex without a copy when
    /// the tensor is contiguous `f32`.
    fn read<R>(x: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> R) -> R {
        read_copied::<Self, R>(x, f)
    }

    /// A float tensor of `values` with `like`'s device and dtype.
    fn write(values: Vec<f32>, shape: Shape, like: &FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_from_data(
            TensorData::new(values, shape).convert_dtype(like.dtype()),
            &like.device(),
        )
    }

    /// The tensor's values as `i64`.
    fn ints(x: IntTensor<Self>) -> Vec<i64> {
        burn::tensor::read_sync(Self::int_into_data(x))
            .expect("a CPU backend reads its tensors")
            .convert::<i64>()
            .into_vec::<i64>()
            .expect("i64 after convert")
    }
}

/// Calls `f` with a copy of the tensor's values as `f32`.
fn read_copied<B: Backend, R>(x: &FloatTensor<B>, f: impl FnOnce(&[f32]) -> R) -> R {
    let values = burn::tensor::read_sync(B::float_into_data(x.clone()))
        .expect("a CPU backend reads its tensors")
        .convert::<f32>();
    f(values.as_slice::<f32>().expect("f32 after convert"))
}

#[cfg(feature = "flex")]
impl HostTensors for burn::backend::Flex {
    fn read<R>(x: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> R) -> R {
        use burn::tensor::DType;
        if x.dtype() == DType::F32 {
            if let Some(values) = x.as_slice::<f32>() {
                return f(values);
            }
            if let Some(values) = x.to_contiguous().as_slice::<f32>() {
                return f(values);
            }
        }
        read_copied::<Self, R>(x, f)
    }

    fn write(values: Vec<f32>, shape: Shape, like: &FloatTensor<Self>) -> FloatTensor<Self> {
        let data = TensorData::new(values, shape).convert_dtype(like.dtype());
        burn::backend::flex::FlexTensor::from_data(data)
    }
}

#[cfg(feature = "ndarray")]
impl HostTensors for burn::backend::NdArray {}

/// Where each of `groups` groups starts when items are ordered by their group `keys` (a
/// counting sort's offsets): group `g` is `offsets[g]..offsets[g + 1]`.
pub fn group_offsets(keys: impl Iterator<Item = usize>, groups: usize) -> Vec<usize> {
    let mut offsets = vec![0usize; groups + 1];
    for k in keys {
        offsets[k + 1] += 1;
    }
    for g in 0..groups {
        offsets[g + 1] += offsets[g];
    }
    offsets
}

/// `vectorised!(fn name(args) => body);` defines `name`, which calls `body` (an
/// `#[inline(always)]` function over slices) compiled with AVX2 and FMA when the CPU has them
/// (its loops then vectorise 8 wide), else for the build's target (SSE2 on x86-64).
///
/// `vectorised!(avx512, fn name(args) => body);` adds an AVX-512F tier in front (16 wide), for
/// loops whose measured gain is worth a third copy of their code (ember-train's Adam update).
///
/// Rust never contracts `a * b + c` into a fused multiply-add, so every tier computes the same
/// values bit for bit as long as `body` only uses exactly rounded operations.
#[macro_export]
macro_rules! vectorised {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:path;) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn with_avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
    (avx512, $(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:path;) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) {
            $crate::vectorised!(fn up_to_avx2($($arg: $ty),*) => $body;);
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn with_avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { with_avx512($($arg),*) };
                }
            }
            up_to_avx2($($arg),*)
        }
    };
}
pub(crate) use crate::vectorised;

/// Lanes of the row reductions' independent accumulators (two AVX-512 registers' worth), so
/// that the compiler vectorises them (one accumulator would be a chain of dependent adds).
const LANES: usize = 16;

/// The largest value of `row` (NaNs are skipped; `−∞` for an empty row).
#[inline(always)]
pub fn max_of(row: &[f32]) -> f32 {
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut maxes = [f32::NEG_INFINITY; LANES];
    for chunk in chunks {
        for (m, &x) in maxes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    maxes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `Σ f(x)` over `row`, in `LANES` interleaved partial sums.
#[inline(always)]
pub fn sum_of(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut sums = [0.0f32; LANES];
    for chunk in chunks {
        for (s, &x) in sums.iter_mut().zip(chunk) {
            *s += f(x);
        }
    }
    sums.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// `e^x`, within 2 ulp of the exact value for `x ≤ 88.7`; 0 below `−87.3` (where `e^x` would
/// not be a normal `f32`). Cephes' `expf`: `x = n ln 2 + r`, `|r| ≤ ln 2 / 2`, a degree-7
/// polynomial for `e^r`, `2^n` put into the exponent bits. No branches and no calls, so loops
/// over it vectorise.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOWEST: f32 = -87.336_54;
    const HIGHEST: f32 = 88.722_83;
    // 1.5 · 2²³: adding it rounds to the nearest integer, which lands in the mantissa's low bits.
    const ROUND: f32 = 12_582_912.0;
    let clamped = if x > HIGHEST { HIGHEST } else { x };
    let shifted = clamped * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let e_r = p * r * r + r + 1.0;
    // The integer n is in the low bits of `shifted`; shifted into the exponent field (the
    // high bits of ROUND's pattern fall off) with the bias 127 added.
    let two_n = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    if x < LOWEST { 0.0 } else { e_r * two_n }
}

/// `erf(x)` within 5e-7 (absolute; the formula is within 1.5e-7, f32 arithmetic adds the rest): Abramowitz and Stegun 7.1.26, `1 − t·P(t)·e^{−x²}` with
/// `t = 1 / (1 + p|x|)`, odd in `x`. Vectorises like [`exp_f32`].
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let y = 1.0 - poly * exp_f32(-a * a);
    y.copysign(x)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn polynomial_exp_is_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = (x as f64).exp();
            let relative = ((exp_f32(x) as f64 - exact) / exact).abs();
            worst = worst.max(relative);
            x += 0.001_7;
        }
        // 2 ulp of f32 is 2 · 2⁻²³ ≈ 2.4e-7 relative.
        assert!(worst < 2.4e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    /// erf by its series (|x| < 3) or its asymptotic tail, in f64.
    pub(crate) fn erf_reference(x: f64) -> f64 {
        if x.abs() > 3.0 {
            let a = x.abs();
            let tail = (-a * a).exp() / (a * std::f64::consts::PI.sqrt())
                * (1.0 - 1.0 / (2.0 * a * a) + 3.0 / (4.0 * a.powi(4)));
            return (1.0 - tail).copysign(x);
        }
        // erf x = 2/√π Σ (−1)ⁿ x^{2n+1} / (n! (2n+1))
        let (mut term, mut sum) = (x, x);
        for n in 1..100 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    }

    #[test]
    fn erf_is_within_5e7() {
        let mut worst = 0.0f64;
        let mut x = -6.0f32;
        while x < 6.0 {
            worst = worst.max((erf_f32(x) as f64 - erf_reference(x as f64)).abs());
            x += 0.000_9;
        }
        assert!(worst < 5e-7, "worst absolute error {worst:e}");
        assert!(erf_f32(0.0).abs() < 2e-7);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert!(erf_f32(f32::NAN).is_nan());
    }
}
