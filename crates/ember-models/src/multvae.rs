//! Autoencoders over a user's interaction row, with a multinomial likelihood (Liang et al.,
//! "Variational Autoencoders for Collaborative Filtering", WWW 2018): Mult-DAE and Mult-VAE.
//!
//! Both read a user's row `x_u` (1 for each item they interacted with), L2-normalise it, apply
//! dropout to the input (the denoising), encode it with tanh layers, decode it back to one logit
//! per item, and are trained on the multinomial log-likelihood `Σ_i x_ui log softmax(f(x_u))_i`.
//! - Mult-DAE: a plain encoder `I → 600 → 200` and decoder `200 → 600 → I` (default sizes).
//! - Mult-VAE: the encoder's last layer gives a mean and a log-variance of a Gaussian code; in
//!   training the code is sampled (reparameterised), at evaluation the mean is used, and the loss
//!   adds `β · KL(q(z|x) ‖ N(0, I))` with β annealed linearly from 0 to `beta` over
//!   `anneal_steps` optimiser steps (the paper's cap 0.2 and 200,000 steps by default).
//!
//! They take no user ids: a user unseen in training is scored from their row ("fold-in"), which
//! is what the held-out-users protocol measures.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::log_softmax;
use ember_spec::{AutoencoderSpec, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::activation::tanh;
use crate::config::{ModelError, check_dropout, check_weight};
use crate::cross_entropy::softmax_cross_entropy_of_rows;
use crate::dropout::Dropout;
use crate::layers::{dense, xavier_linear};
use crate::size;
use crate::sparse_input::sparse_times;
use crate::{
    Batch, DenseSplit, Export, Input, ModelFamily, ModelInit, ModelSettings, Query, Recommender,
    UserRows, WeightUse, kinds,
};

/// Mult-DAE hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultDaeConfig {
    /// Encoder sizes after the item layer, the last being the code: `[600, 200]` builds
    /// `I → 600 → 200 → 600 → I`.
    pub hidden: Vec<usize>,
    /// Dropout probability on the normalised input.
    pub dropout: f64,
}

impl Default for MultDaeConfig {
    fn default() -> Self {
        Self {
            hidden: vec![600, 200],
            dropout: 0.5,
        }
    }
}

/// Mult-VAE hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultVaeConfig {
    /// Encoder sizes after the item layer, the last being the code's dimension.
    pub hidden: Vec<usize>,
    /// Dropout probability on the normalised input.
    pub dropout: f64,
    /// The KL weight β reached at the end of annealing (and kept after).
    pub beta: f64,
    /// Optimiser steps over which β grows linearly from 0 to `beta`.
    pub anneal_steps: usize,
}

impl Default for MultVaeConfig {
    fn default() -> Self {
        Self {
            hidden: vec![600, 200],
            dropout: 0.5,
            beta: 0.2,
            anneal_steps: 200_000,
        }
    }
}

/// Linear layers with Xavier-uniform weights, as the paper's code initialises them.
fn layers(sizes: &[usize], device: &Device) -> Vec<Linear> {
    sizes
        .windows(2)
        .map(|w| xavier_linear(w[0], w[1], device))
        .collect()
}

/// The encoder over `[items, hidden…]` (its last layer twice as wide when `variational`: means
/// and log-variances) and the mirrored decoder, initialised in that order (encoder first, so
/// that a seed gives the same weights as before the two models shared this).
fn encoder_decoder(
    items: usize,
    hidden: &[usize],
    variational: bool,
    device: &Device,
) -> (Vec<Linear>, Vec<Linear>) {
    let sizes = check_sizes(items, hidden);
    let reversed: Vec<usize> = sizes.iter().rev().copied().collect();
    let mut encoder_sizes = sizes;
    if variational {
        *encoder_sizes.last_mut().expect("non-empty") *= 2;
    }
    (layers(&encoder_sizes, device), layers(&reversed, device))
}

/// Applies `layers` with tanh between them (not after the last).
///
/// # Shapes
/// - x: `[batch, layers[0].in]`
/// - output: `[batch, layers.last().out]`
fn tanh_stack(layers: &[Linear], mut x: Tensor<2>, split: DenseSplit) -> Tensor<2> {
    for (k, layer) in layers.iter().enumerate() {
        x = dense(layer, x, split);
        if k + 1 < layers.len() {
            x = tanh(x);
        }
    }
    x
}

/// The encoder over the input as the paper feeds it: each row divided by its L2 norm, then
/// dropout; tanh between layers. The first layer is a sparse product: it sums the weight rows
/// of each user's items instead of multiplying a dense `[batch, num_items]` row.
///
/// # Shapes
/// - output: `[batch, last encoder size]`
fn encode_rows(
    encoder: &[Linear],
    rows: &UserRows,
    dropout: &Dropout,
    split: DenseSplit,
) -> Tensor<2> {
    let first = &encoder[0];
    let values = dropout.forward(rows.normalised_values());
    let x = sparse_times(
        values,
        rows.item_rows.clone(),
        rows.items.clone(),
        rows.batch(),
        first.weight.val(),
    );
    let x = match &first.bias {
        Some(bias) => x + bias.val().unsqueeze_dim(0),
        None => x,
    };
    if encoder.len() == 1 {
        return x;
    }
    tanh_stack(&encoder[1..], tanh(x), split)
}

/// The multinomial negative log-likelihood per user, `Σ_{i ∈ items(u)} −log softmax(logits_u)_i`
/// (each term times the item's count, with [`UserRows::values`]), averaged over the batch.
///
/// # Shapes
/// - logits: `[batch, num_items]`
/// - output: `[1]`
fn multinomial_nll(logits: Tensor<2>, rows: &UserRows) -> Tensor<1> {
    if rows.values.is_some() {
        // Counts: `Σ_i w_ui (−log softmax(logits_u)_i)`, composed, as the fused operation
        // takes each target once.
        return (log_softmax(logits, 1) * rows.dense())
            .sum_dim(1)
            .mean()
            .neg()
            .reshape([1]);
    }
    softmax_cross_entropy_of_rows(logits, rows.items.clone(), rows.item_rows.clone())
        .mean()
        .reshape([1])
}

fn check_sizes(num_items: usize, hidden: &[usize]) -> Vec<usize> {
    assert!(
        num_items > 0 && !hidden.is_empty() && !hidden.contains(&0),
        "validated by ModelConfig::validate"
    );
    std::iter::once(num_items)
        .chain(hidden.iter().copied())
        .collect()
}

/// The encoder's sizes after the item layer (the spec's `hidden`), from its layers.
fn hidden_sizes(encoder: &[Linear]) -> Vec<usize> {
    encoder.iter().map(|l| l.weight.dims()[1]).collect()
}

fn check_autoencoder(hidden: &[usize], dropout: f64) -> Result<(), ModelError> {
    AutoencoderSpec {
        hidden: hidden.to_vec(),
    }
    .validate()?;
    check_dropout(dropout)
}

/// Parameters of the encoder over `[items, hidden…]` (its last layer twice as wide when
/// `variational`: means and log-variances) and of the mirrored decoder.
fn autoencoder_parameters(items: usize, hidden: &[usize], variational: bool) -> u128 {
    let sizes: Vec<usize> = std::iter::once(items)
        .chain(hidden.iter().copied())
        .collect();
    let reversed: Vec<usize> = sizes.iter().rev().copied().collect();
    let mut encoder = sizes;
    if variational {
        let last = encoder.last_mut().expect("non-empty");
        *last = last.saturating_mul(2);
    }
    size::sum([size::stack(&encoder), size::stack(&reversed)])
}

/// Mult-DAE.
#[derive(Module, Debug)]
pub struct MultDae {
    pub(crate) encoder: Vec<Linear>,
    pub(crate) decoder: Vec<Linear>,
    dropout: Dropout,
    #[module(skip)]
    split: DenseSplit,
}

impl MultDaeConfig {
    /// Builds the model for the catalogue's items.
    pub fn init(&self, init: &ModelInit, device: &Device) -> MultDae {
        let (encoder, decoder) = encoder_decoder(init.items, &self.hidden, false, device);
        MultDae {
            encoder,
            decoder,
            dropout: Dropout::new(self.dropout, init.masks),
            split: init.dense,
        }
    }
}

impl ModelFamily for kinds::MultDae {
    type Config = MultDaeConfig;
    type Model = MultDae;

    /// The paper's: `I → 600 → 200 → 600 → I`, dropout 0.5.
    fn bench_preset() -> MultDaeConfig {
        MultDaeConfig {
            hidden: vec![600, 200],
            dropout: 0.5,
        }
    }
}

impl ModelSettings for MultDaeConfig {
    fn input(&self) -> Input {
        Input::UserRows { by_id: false }
    }

    fn weight_use(&self) -> WeightUse {
        WeightUse::Counts
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_autoencoder(&self.hidden, self.dropout)
    }

    fn parameter_count(&self, _users: usize, items: usize) -> u128 {
        autoencoder_parameters(items, &self.hidden, false)
    }
}

impl MultDae {
    /// One logit per item for each row (dropout only on an autodiff device, i.e. in training).
    ///
    /// # Shapes
    /// - output: `[batch, num_items]`
    pub fn forward(&self, rows: &UserRows) -> Tensor<2> {
        // tanh between every layer, also between encoder and decoder.
        let code = tanh(encode_rows(&self.encoder, rows, &self.dropout, self.split));
        tanh_stack(&self.decoder, code, self.split)
    }
}

impl Recommender for MultDae {
    fn loss(&self, batch: &Batch, _step: usize) -> Tensor<1> {
        let rows = batch.user_rows();
        multinomial_nll(self.forward(rows), rows)
    }

    fn score_all(&self, query: &Query) -> Tensor<2> {
        self.forward(query.user_rows())
    }

    fn export(&self) -> Export {
        let hidden = hidden_sizes(&self.encoder);
        Export::parameters(ModelSpec::MultDae(AutoencoderSpec { hidden }), self)
    }
}

/// Mult-VAE.
#[derive(Module, Debug)]
pub struct MultVae {
    /// The last layer outputs `2 × code`: means, then log-variances.
    pub(crate) encoder: Vec<Linear>,
    pub(crate) decoder: Vec<Linear>,
    dropout: Dropout,
    beta: f64,
    anneal_steps: usize,
    #[module(skip)]
    split: DenseSplit,
}

impl MultVaeConfig {
    /// Builds the model for the catalogue's items.
    pub fn init(&self, init: &ModelInit, device: &Device) -> MultVae {
        let (encoder, decoder) = encoder_decoder(init.items, &self.hidden, true, device);
        MultVae {
            encoder,
            decoder,
            dropout: Dropout::new(self.dropout, init.masks),
            beta: self.beta,
            anneal_steps: self.anneal_steps,
            split: init.dense,
        }
    }
}

impl ModelFamily for kinds::MultVae {
    type Config = MultVaeConfig;
    type Model = MultVae;

    /// The paper's: `I → 600 → 200 → 600 → I`, dropout 0.5, β annealed to 0.2 over 200,000
    /// steps.
    fn bench_preset() -> MultVaeConfig {
        MultVaeConfig {
            hidden: vec![600, 200],
            dropout: 0.5,
            beta: 0.2,
            anneal_steps: 200_000,
        }
    }
}

impl ModelSettings for MultVaeConfig {
    fn input(&self) -> Input {
        Input::UserRows { by_id: false }
    }

    fn weight_use(&self) -> WeightUse {
        WeightUse::Counts
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_autoencoder(&self.hidden, self.dropout)?;
        check_weight("beta", self.beta)
    }

    fn parameter_count(&self, _users: usize, items: usize) -> u128 {
        autoencoder_parameters(items, &self.hidden, true)
    }
}

impl MultVae {
    /// The code's mean and log-variance for each row.
    ///
    /// # Shapes
    /// - output: (`[batch, code]`, `[batch, code]`)
    pub fn encode(&self, rows: &UserRows) -> (Tensor<2>, Tensor<2>) {
        let h = encode_rows(&self.encoder, rows, &self.dropout, self.split);
        let code = h.dims()[1] / 2;
        let mean = h.clone().narrow(1, 0, code);
        let log_var = h.narrow(1, code, code);
        (mean, log_var)
    }

    /// Logits from a code.
    ///
    /// # Shapes
    /// - code: `[batch, code]`
    /// - output: `[batch, num_items]`
    pub fn decode(&self, code: Tensor<2>) -> Tensor<2> {
        tanh_stack(&self.decoder, code, self.split)
    }

    /// The KL weight after `step` optimiser steps.
    pub fn beta_at(&self, step: usize) -> f64 {
        if self.anneal_steps == 0 {
            return self.beta;
        }
        (step as f64 / self.anneal_steps as f64).min(self.beta)
    }
}

impl Recommender for MultVae {
    fn loss(&self, batch: &Batch, step: usize) -> Tensor<1> {
        let rows = batch.user_rows();
        let (mean, log_var) = self.encode(rows);
        let std = log_var.clone().mul_scalar(0.5).exp();
        let noise = mean.random_like(Distribution::Normal(0.0, 1.0));
        let code = mean.clone() + std * noise;
        let nll = multinomial_nll(self.decode(code), rows);
        // KL(N(μ, σ²) ‖ N(0, 1)) = ½ Σ (σ² + μ² − 1 − log σ²), per user, averaged.
        let kl = (log_var.clone().exp() + mean.powi_scalar(2) - log_var - 1.0)
            .sum_dim(1)
            .mean()
            .mul_scalar(0.5)
            .reshape([1]);
        nll + kl.mul_scalar(self.beta_at(step))
    }

    /// Scores from the code's mean (no sampling).
    fn score_all(&self, query: &Query) -> Tensor<2> {
        self.decode(self.encode(query.user_rows()).0)
    }

    fn export(&self) -> Export {
        let mut hidden = hidden_sizes(&self.encoder);
        *hidden.last_mut().expect("at least one layer") /= 2; // mean and log-variance
        Export::parameters(ModelSpec::MultVae(AutoencoderSpec { hidden }), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64], device: &Device) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    fn floats(v: &[f32], device: &Device) -> Tensor<1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
    }

    /// One user with items 1 and 3 of 4, counted `values` times.
    fn row(values: Option<&[f32]>, device: &Device) -> UserRows {
        UserRows {
            users: ints(&[0], device),
            items: ints(&[1, 3], device),
            item_rows: ints(&[0, 0], device),
            num_items: 4,
            values: values.map(|v| floats(v, device)),
        }
    }

    #[test]
    fn mult_dae_reads_the_counts_of_its_row() {
        let device = Device::flex();
        let train = vec![vec![1u32, 3]];
        let config = MultDaeConfig {
            hidden: vec![2],
            dropout: 0.0,
        };
        let model = config.init(&ModelInit::new(4, &train), &device);
        // Counts 3 and 4 normalise to 0.6 and 0.8 (a binary row gives 1/√2 each).
        let rows = row(Some(&[3.0, 4.0]), &device);
        let values: Vec<f32> = rows
            .normalised_values()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(values, [0.6, 0.8]);
        let first = &model.encoder[0];
        let w: Vec<f32> = first.weight.val().into_data().try_to_vec::<f32>().unwrap(); // [4, 2]
        let b: Vec<f32> = first
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let code: Vec<f32> = encode_rows(&model.encoder, &rows, &model.dropout, model.split)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for j in 0..2 {
            let by_hand = 0.6 * w[2 + j] + 0.8 * w[6 + j] + b[j];
            assert!((code[j] - by_hand).abs() < 1e-6, "{code:?}");
        }
        let dense: Vec<f32> = rows.dense().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(dense, [0.0, 3.0, 0.0, 4.0]);
    }

    #[test]
    fn the_multinomial_likelihood_counts_each_item_by_its_count() {
        let device = Device::flex();
        // Two items, logits 0 and ln 3: softmax 1/4 and 3/4.
        let logits = Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 3f32.ln()], [2]), &device)
            .reshape([1, 2]);
        let rows = |values| UserRows {
            users: ints(&[0], &device),
            items: ints(&[0, 1], &device),
            item_rows: ints(&[0, 0], &device),
            num_items: 2,
            values,
        };
        let counted: f32 =
            multinomial_nll(logits.clone(), &rows(Some(floats(&[1.0, 2.0], &device))))
                .into_scalar();
        // −(1 · ln ¼ + 2 · ln ¾)
        let by_hand = 4f32.ln() + 2.0 * (4.0f32 / 3.0).ln();
        assert!((counted - by_hand).abs() < 1e-5, "{counted} vs {by_hand}");
        assert!((by_hand - 1.961_658).abs() < 1e-5);
        let once: f32 = multinomial_nll(logits, &rows(None)).into_scalar();
        assert!(
            (once - (4f32.ln() + (4.0f32 / 3.0).ln())).abs() < 1e-5,
            "{once}"
        );
    }
}
