//! The neural collaborative filtering family (He et al., "Neural Collaborative Filtering",
//! WWW 2017): MF, GMF, MLP and NeuMF.
//!
//! - MF: `ŷ = p_u · q_i`.
//! - GMF (eq. 9): `ŷ = hᵀ (p_u ⊙ q_i)`.
//! - MLP (eq. 10): `ŷ = hᵀ φ_L(… φ_1([p_u ‖ q_i]))` with ReLU layers.
//! - NeuMF (eq. 11–12): `ŷ = hᵀ [p^G_u ⊙ q^G_i ‖ φ^M(p^M_u ‖ q^M_i)]`, with separate embeddings
//!   for the two parts; optionally initialised from trained GMF and MLP (section 3.4.1), the output
//!   layer being `[α h_GMF ‖ (1−α) h_MLP]`.
//!
//! Every model returns logits; the sigmoid lives in the loss (`train.loss`: BCE or BPR).

use burn::module::Param;
use burn::nn::{Embedding, Linear, LinearConfig};
use burn::prelude::*;
use ember_spec::{FactorsSpec, MlpSpec, ModelSpec, NeuMfSpec};
use serde::{Deserialize, Serialize};

use crate::config::{ModelError, check_init_std};
use crate::layers::{Tower, dense, embedding};
use crate::lookup::{IdBatch, lookup, lookup_pair};
use crate::pair::PairModel;
use crate::size;
use crate::{
    DenseSplit, Export, Input, Loss, Model, ModelConfig, ModelFamily, ModelInit, ModelSettings,
    Pretraining, kinds,
};

/// Matrix factorisation hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfConfig {
    /// Latent dimension.
    pub factors: usize,
    /// Standard deviation of the N(0, σ²) embedding initialisation.
    pub init_std: f64,
}

impl Default for MfConfig {
    fn default() -> Self {
        Self {
            factors: 32,
            init_std: 0.01,
        }
    }
}

/// Matrix factorisation: a dot product of user and item embeddings.
#[derive(Module, Debug)]
pub struct Mf {
    pub(crate) users: Embedding,
    pub(crate) items: Embedding,
    #[module(skip)]
    loss: Loss,
}

impl MfConfig {
    fn spec(&self) -> FactorsSpec {
        FactorsSpec {
            factors: self.factors,
        }
    }

    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Mf {
        Mf {
            users: embedding(init.users, self.factors, self.init_std, device),
            items: embedding(init.items, self.factors, self.init_std, device),
            loss: init.pair_loss,
        }
    }
}

impl ModelFamily for kinds::Mf {
    type Config = MfConfig;
    type Model = Mf;

    /// The PyTorch peer's MF (`scripts/bench_torch_neumf.py`): 32 factors.
    fn bench_preset() -> MfConfig {
        MfConfig {
            factors: 32,
            init_std: 0.01,
        }
    }
}

impl ModelSettings for MfConfig {
    fn input(&self) -> Input {
        Input::Pairs
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_init_std(self.init_std)?;
        Ok(self.spec().validate()?)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        size::sum([
            size::table(users, self.factors),
            size::table(items, self.factors),
        ])
    }
}

impl PairModel for Mf {
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1> {
        (lookup(&self.users, users) * lookup(&self.items, items))
            .sum_dim(1)
            .squeeze_dim::<1>(1)
    }

    fn score_users(&self, users: Tensor<1, Int>) -> Tensor<2> {
        lookup(&self.users, &users.into()).matmul(self.items.weight.val().transpose())
    }

    fn num_items(&self) -> usize {
        self.items.weight.dims()[0]
    }

    fn objective(&self) -> Loss {
        self.loss
    }

    fn export_pairs(&self) -> Export {
        let factors = self.items.weight.dims()[1];
        Export::parameters(ModelSpec::Mf(FactorsSpec { factors }), self)
    }
}

/// GMF hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmfConfig {
    /// Latent dimension (predictive factors).
    pub factors: usize,
    /// Standard deviation of the embedding initialisation.
    pub init_std: f64,
}

impl Default for GmfConfig {
    fn default() -> Self {
        Self {
            factors: 32,
            init_std: 0.01,
        }
    }
}

/// Generalized matrix factorisation: a learned weighting of the element-wise product.
#[derive(Module, Debug)]
pub struct Gmf {
    pub(crate) users: Embedding,
    pub(crate) items: Embedding,
    pub(crate) output: Linear,
    #[module(skip)]
    loss: Loss,
    #[module(skip)]
    split: DenseSplit,
}

impl GmfConfig {
    fn spec(&self) -> FactorsSpec {
        FactorsSpec {
            factors: self.factors,
        }
    }

    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Gmf {
        Gmf {
            users: embedding(init.users, self.factors, self.init_std, device),
            items: embedding(init.items, self.factors, self.init_std, device),
            output: LinearConfig::new(self.factors, 1).init(device),
            loss: init.pair_loss,
            split: init.dense,
        }
    }
}

impl ModelFamily for kinds::Gmf {
    type Config = GmfConfig;
    type Model = Gmf;

    /// The PyTorch peer's GMF (`scripts/bench_torch_neumf.py`): 32 factors.
    fn bench_preset() -> GmfConfig {
        GmfConfig {
            factors: 32,
            init_std: 0.01,
        }
    }
}

impl ModelSettings for GmfConfig {
    fn input(&self) -> Input {
        Input::Pairs
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_init_std(self.init_std)?;
        Ok(self.spec().validate()?)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        size::sum([
            size::table(users, self.factors),
            size::table(items, self.factors),
            size::linear(self.factors, 1),
        ])
    }
}

impl Gmf {
    /// The element-wise product `p_u ⊙ q_i`.
    ///
    /// # Shapes
    /// - users, items: `[batch]`
    /// - output: `[batch, factors]`
    fn interaction(&self, users: &IdBatch, items: &IdBatch) -> Tensor<2> {
        lookup(&self.users, users) * lookup(&self.items, items)
    }
}

impl PairModel for Gmf {
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1> {
        dense(&self.output, self.interaction(users, items), self.split).squeeze_dim::<1>(1)
    }

    fn score_users(&self, users: Tensor<1, Int>) -> Tensor<2> {
        // hᵀ(p ⊙ q) + b = (p ⊙ h) · q + b: one matmul instead of batch × items products.
        let h = self.output.weight.val().reshape([1, -1]); // [1, factors]
        let scaled = lookup(&self.users, &users.into()) * h;
        let scores = scaled.matmul(self.items.weight.val().transpose());
        match &self.output.bias {
            Some(b) => scores + b.val().unsqueeze_dim::<2>(0),
            None => scores,
        }
    }

    fn num_items(&self) -> usize {
        self.items.weight.dims()[0]
    }

    fn objective(&self) -> Loss {
        self.loss
    }

    fn export_pairs(&self) -> Export {
        let factors = self.items.weight.dims()[1];
        Export::parameters(ModelSpec::Gmf(FactorsSpec { factors }), self)
    }
}

/// MLP hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Layer sizes; the first is the concatenated embedding size (user and item get half each),
    /// the last is the predictive factor count. NCF's "[64, 32, 16, 8]".
    pub layers: Vec<usize>,
    /// Standard deviation of the embedding initialisation.
    pub init_std: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            layers: vec![64, 32, 16, 8],
            init_std: 0.01,
        }
    }
}

/// Multi-layer perceptron over concatenated user and item embeddings.
#[derive(Module, Debug)]
pub struct Mlp {
    pub(crate) users: Embedding,
    pub(crate) items: Embedding,
    pub(crate) tower: Tower,
    pub(crate) output: Linear,
    #[module(skip)]
    loss: Loss,
    #[module(skip)]
    split: DenseSplit,
}

impl MlpConfig {
    fn spec(&self) -> MlpSpec {
        MlpSpec {
            layers: self.layers.clone(),
        }
    }

    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Mlp {
        let half = self.layers[0] / 2;
        Mlp {
            users: embedding(init.users, half, self.init_std, device),
            items: embedding(init.items, half, self.init_std, device),
            tower: Tower::new(&self.layers, init.dense, device),
            output: LinearConfig::new(*self.layers.last().expect("validated"), 1).init(device),
            loss: init.pair_loss,
            split: init.dense,
        }
    }
}

impl ModelFamily for kinds::Mlp {
    type Config = MlpConfig;
    type Model = Mlp;

    /// The PyTorch peer's MLP (`scripts/bench_torch_neumf.py`): 128-64-32-16.
    fn bench_preset() -> MlpConfig {
        MlpConfig {
            layers: vec![128, 64, 32, 16],
            init_std: 0.01,
        }
    }
}

impl ModelSettings for MlpConfig {
    fn input(&self) -> Input {
        Input::Pairs
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_init_std(self.init_std)?;
        Ok(self.spec().validate()?)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        mlp_parameters(&self.layers, users, items)
    }
}

impl Mlp {
    /// The last hidden layer `φ_L`.
    ///
    /// # Shapes
    /// - users, items: `[batch]`
    /// - output: `[batch, layers[last]]`
    fn hidden(&self, users: &IdBatch, items: &IdBatch) -> Tensor<2> {
        let x = Tensor::cat(
            vec![lookup(&self.users, users), lookup(&self.items, items)],
            1,
        );
        self.tower.forward(x)
    }

    fn layer_sizes(&self) -> Vec<usize> {
        let first = 2 * self.users.weight.dims()[1];
        std::iter::once(first)
            .chain(self.tower.layers().iter().map(|l| l.weight.dims()[1]))
            .collect()
    }
}

impl PairModel for Mlp {
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1> {
        dense(&self.output, self.hidden(users, items), self.split).squeeze_dim::<1>(1)
    }

    fn num_items(&self) -> usize {
        self.items.weight.dims()[0]
    }

    fn objective(&self) -> Loss {
        self.loss
    }

    fn export_pairs(&self) -> Export {
        let layers = self.layer_sizes();
        Export::parameters(ModelSpec::Mlp(MlpSpec { layers }), self)
    }
}

/// The MLP's tables (half of `layers[0]` wide each), tower and output layer.
fn mlp_parameters(layers: &[usize], users: usize, items: usize) -> u128 {
    let half = layers[0] / 2;
    let last = *layers.last().expect("validated");
    size::sum([
        size::table(users, half),
        size::table(items, half),
        size::stack(layers),
        size::linear(last, 1),
    ])
}

/// NeuMF hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeuMfConfig {
    /// GMF latent dimension.
    pub factors: usize,
    /// MLP layer sizes (see [`MlpConfig::layers`]).
    pub layers: Vec<usize>,
    /// Standard deviation of the embedding initialisation.
    pub init_std: f64,
    /// Pre-train GMF and MLP first and initialise NeuMF from them (NCF section 3.4.1).
    pub pretrain: bool,
    /// Weight of the GMF part in the pre-trained output layer.
    pub alpha: f64,
}

impl Default for NeuMfConfig {
    fn default() -> Self {
        Self {
            factors: 32,
            layers: vec![64, 32, 16, 8],
            init_std: 0.01,
            pretrain: false,
            alpha: 0.5,
        }
    }
}

/// GMF and MLP with separate embeddings, fused in the output layer.
#[derive(Module, Debug)]
pub struct NeuMf {
    pub(crate) gmf_users: Embedding,
    pub(crate) gmf_items: Embedding,
    pub(crate) mlp_users: Embedding,
    pub(crate) mlp_items: Embedding,
    pub(crate) tower: Tower,
    pub(crate) output: Linear,
    #[module(skip)]
    loss: Loss,
    #[module(skip)]
    split: DenseSplit,
}

impl NeuMfConfig {
    fn spec(&self) -> NeuMfSpec {
        NeuMfSpec {
            factors: self.factors,
            layers: self.layers.clone(),
        }
    }

    /// Builds the model, randomly initialised.
    pub fn init(&self, init: &ModelInit, device: &Device) -> NeuMf {
        let half = self.layers[0] / 2;
        NeuMf {
            gmf_users: embedding(init.users, self.factors, self.init_std, device),
            gmf_items: embedding(init.items, self.factors, self.init_std, device),
            mlp_users: embedding(init.users, half, self.init_std, device),
            mlp_items: embedding(init.items, half, self.init_std, device),
            tower: Tower::new(&self.layers, init.dense, device),
            output: LinearConfig::new(self.factors + self.layers.last().expect("validated"), 1)
                .init(device),
            loss: init.pair_loss,
            split: init.dense,
        }
    }

    /// The GMF part's config.
    pub fn gmf(&self) -> GmfConfig {
        GmfConfig {
            factors: self.factors,
            init_std: self.init_std,
        }
    }

    /// The MLP part's config.
    pub fn mlp(&self) -> MlpConfig {
        MlpConfig {
            layers: self.layers.clone(),
            init_std: self.init_std,
        }
    }

    /// Builds NeuMF from trained GMF and MLP models: their embeddings and tower as they are, and
    /// the output layer `[α h_GMF ‖ (1−α) h_MLP]` with bias `α b_GMF + (1−α) b_MLP`.
    pub fn from_pretrained(&self, gmf: Gmf, mlp: Mlp) -> NeuMf {
        let alpha = self.alpha;
        let weight = Tensor::cat(
            vec![
                gmf.output.weight.val().mul_scalar(alpha),
                mlp.output.weight.val().mul_scalar(1.0 - alpha),
            ],
            0,
        )
        .detach(); // a new leaf parameter, not a function of the pre-trained ones
        let bias = match (&gmf.output.bias, &mlp.output.bias) {
            (Some(g), Some(m)) => Some(Param::from_tensor(
                (g.val().mul_scalar(alpha) + m.val().mul_scalar(1.0 - alpha)).detach(),
            )),
            _ => None,
        };
        NeuMf {
            gmf_users: gmf.users,
            gmf_items: gmf.items,
            mlp_users: mlp.users,
            mlp_items: mlp.items,
            tower: mlp.tower,
            output: Linear {
                weight: Param::from_tensor(weight),
                bias,
            },
            loss: gmf.loss,
            split: gmf.split,
        }
    }
}

impl ModelFamily for kinds::NeuMf {
    type Config = NeuMfConfig;
    type Model = NeuMf;

    /// The PyTorch peer's NeuMF (`scripts/bench_torch_neumf.py`): factors 32, MLP
    /// 128-64-32-16, no pre-training.
    fn bench_preset() -> NeuMfConfig {
        NeuMfConfig {
            factors: 32,
            layers: vec![128, 64, 32, 16],
            init_std: 0.01,
            pretrain: false,
            alpha: 0.5,
        }
    }
}

impl ModelSettings for NeuMfConfig {
    fn input(&self) -> Input {
        Input::Pairs
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_init_std(self.init_std)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(ModelError::BadAlpha(self.alpha));
        }
        Ok(self.spec().validate()?)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        let half = self.layers[0] / 2;
        let last = *self.layers.last().expect("validated");
        size::sum([
            size::table(users, self.factors),
            size::table(items, self.factors),
            size::table(users, half),
            size::table(items, half),
            size::stack(&self.layers),
            size::linear(self.factors.saturating_add(last), 1),
        ])
    }

    /// With `pretrain`, GMF and MLP are trained first and NeuMF starts from them.
    fn pretraining(&self) -> Option<Pretraining> {
        if !self.pretrain {
            return None;
        }
        let config = self.clone();
        Some(Pretraining {
            stages: vec![
                ("gmf", ModelConfig::Gmf(self.gmf())),
                ("mlp", ModelConfig::Mlp(self.mlp())),
            ],
            assemble: Box::new(move |stages| match <[Model; 2]>::try_from(stages) {
                Ok([Model::Gmf(gmf), Model::Mlp(mlp)]) => {
                    Model::NeuMf(config.from_pretrained(gmf, mlp))
                }
                _ => unreachable!("the stages are the GMF and MLP listed above"),
            }),
        })
    }
}

impl PairModel for NeuMf {
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1> {
        let (gmf_users, mlp_users) = lookup_pair(&self.gmf_users, &self.mlp_users, users);
        let (gmf_items, mlp_items) = lookup_pair(&self.gmf_items, &self.mlp_items, items);
        let gmf = gmf_users * gmf_items;
        let mlp_in = Tensor::cat(vec![mlp_users, mlp_items], 1);
        let fused = Tensor::cat(vec![gmf, self.tower.forward(mlp_in)], 1);
        dense(&self.output, fused, self.split).squeeze_dim::<1>(1)
    }

    fn num_items(&self) -> usize {
        self.gmf_items.weight.dims()[0]
    }

    fn objective(&self) -> Loss {
        self.loss
    }

    fn export_pairs(&self) -> Export {
        let factors = self.gmf_items.weight.dims()[1];
        let first = 2 * self.mlp_users.weight.dims()[1];
        let layers = std::iter::once(first)
            .chain(self.tower.layers().iter().map(|l| l.weight.dims()[1]))
            .collect();
        Export::parameters(ModelSpec::NeuMf(NeuMfSpec { factors, layers }), self)
    }
}
