//! Dropout with masks drawn where they are cheap.
//!
//! burn's `Dropout` draws each mask element from a ChaCha generator through a generic sampler;
//! on a CPU backend that was a third of SASRec's training step (perf, 2 cores). Here, on CPU
//! backends ([`Masks::Host`]) one 64-bit seed per call comes from burn's generator (so
//! `device.seed` still fixes every mask) and the mask is filled from a xoshiro256++ generator,
//! four 16-bit draws per 64-bit word: an element is kept when its draw is below
//! `round(keep · 65536)`, so the keep probability is exact to 1/65536. On GPU backends
//! ([`Masks::Device`]) the mask is burn's, drawn on the device.
//!
//! As burn's, it is active only on an autodiff device (training) and scales kept values by
//! `1 / keep`.

use burn::prelude::*;
use burn::tensor::Distribution;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// Where dropout masks are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Masks {
    /// On the device, by burn's generator (GPU backends).
    #[default]
    Device,
    /// On the host, by a fast seeded generator, then moved to the device (CPU backends).
    Host,
}

/// Dropout with probability `prob`.
#[derive(Module, Debug)]
pub struct Dropout {
    prob: f64,
    #[module(skip)]
    masks: Masks,
}

impl Dropout {
    /// Drops each element with probability `prob` (in [0, 1)), masks drawn as `masks` says.
    pub fn new(prob: f64, masks: Masks) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "validated by the model's config: dropout {prob}"
        );
        Self { prob, masks }
    }

    /// `input` with each element zeroed with probability `prob` and the others scaled by
    /// `1 / (1 - prob)`, in training (on an autodiff device); `input` itself otherwise.
    ///
    /// # Shapes
    /// - input: any
    /// - output: the input's
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        if self.prob == 0.0 || !input.device().is_autodiff() {
            return input;
        }
        let keep = 1.0 - self.prob;
        match self.masks {
            Masks::Device => {
                let mask = input.random_like(Distribution::Bernoulli(keep));
                input * mask * (1.0 / keep)
            }
            Masks::Host => {
                let (shape, device) = (input.shape(), input.device());
                let mask = host_mask(shape.num_elements(), keep, seed(&device));
                input * Tensor::from_data(TensorData::new(mask, shape), &device)
            }
        }
    }
}

/// One 64-bit seed from burn's generator on `device`.
fn seed(device: &Device) -> u64 {
    let draws: Vec<f32> = Tensor::<1>::random([2], Distribution::Default, device)
        .try_into_vec_as::<f32>()
        .expect("float draws");
    (u64::from(draws[0].to_bits()) << 32) | u64::from(draws[1].to_bits())
}

/// `n` mask values: `1 / keep` with probability `keep`, else 0.
fn host_mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let threshold = (keep * 65536.0).round() as u64;
    let scale = (1.0 / keep) as f32;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut mask = vec![0.0f32; n];
    for chunk in mask.chunks_mut(4) {
        let mut bits = rng.next_u64();
        for value in chunk {
            if bits & 0xffff < threshold {
                *value = scale;
            }
            bits >>= 16;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_masks_keep_the_asked_share_and_scale_it() {
        for keep in [0.5, 0.8, 0.9] {
            let mask = host_mask(400_000, keep, 7);
            let kept = mask.iter().filter(|&&v| v > 0.0).count() as f64 / mask.len() as f64;
            assert!((kept - keep).abs() < 0.005, "keep {keep}: kept {kept}");
            assert!(
                mask.iter()
                    .all(|&v| v == 0.0 || (v - (1.0 / keep) as f32).abs() < 1e-6)
            );
            // The mean is preserved, as burn's dropout preserves it.
            let mean = mask.iter().map(|&v| v as f64).sum::<f64>() / mask.len() as f64;
            assert!((mean - 1.0).abs() < 0.01, "keep {keep}: mean {mean}");
        }
        assert_eq!(host_mask(100, 0.5, 3), host_mask(100, 0.5, 3));
        assert_ne!(host_mask(100, 0.5, 3), host_mask(100, 0.5, 4));
    }

    #[test]
    fn dropout_is_off_without_autodiff_and_seeded_with_it() {
        let x = || Tensor::<2>::ones([64, 64], &Device::flex());
        let dropout = Dropout::new(0.5, Masks::Host);
        assert_eq!(
            dropout.forward(x()).try_into_vec_as::<f32>().unwrap(),
            x().try_into_vec_as::<f32>().unwrap()
        );
        let device = Device::flex().autodiff();
        let draw = || {
            let x = Tensor::<2>::ones([64, 64], &device);
            dropout.forward(x).try_into_vec_as::<f32>().unwrap()
        };
        device.seed(5);
        let a = draw();
        device.seed(5);
        assert_eq!(a, draw(), "the device seed fixes the mask");
        assert_ne!(a, draw(), "each call draws a new mask");
    }
}
