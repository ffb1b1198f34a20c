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
//!
//! The four differ in their tables and layers alone: what they share is written once. A config
//! says its spec, its initialisation scale, its parameter count and its own checks
//! ([`NcfConfig`]), and gets [`ModelSettings`] from them; a model holds the [`PairSetup`] it was
//! built with and gets its objective, catalogue and export from it ([`PairModel`]).

use burn::module::Param;
use burn::nn::{Embedding, Linear, LinearConfig};
use burn::prelude::*;
use ember_spec::{FactorsSpec, MlpSpec, ModelSpec, NeuMfSpec};
use serde::{Deserialize, Serialize};

use crate::config::{ModelError, check_init_std};
use crate::layers::{Tower, dense, embedding};
use crate::lookup::{IdBatch, lookup, lookup_pair};
use crate::pair::{PairModel, PairSetup};
use crate::size;
use crate::{Input, Model, ModelConfig, ModelFamily, ModelInit, ModelSettings, Pretraining, kinds};

/// What sets one NCF config apart; the [`ModelSettings`] of every NCF config is built from it.
trait NcfConfig {
    /// The exported sizes, which `validate` checks.
    fn spec(&self) -> ModelSpec;

    /// Standard deviation of the N(0, σ²) embedding initialisation.
    fn init_std(&self) -> f64;

    /// See [`ModelSettings::parameter_count`].
    fn parameters(&self, users: usize, items: usize) -> u128;

    /// Checks of the family's own settings, made after the initialisation scale's and before
    /// the spec's.
    fn check(&self) -> Result<(), ModelError> {
        Ok(())
    }

    /// See [`ModelSettings::pretraining`].
    fn stages(&self) -> Option<Pretraining> {
        None
    }

    /// What a model built from this config for `init` holds beside its weights.
    fn setup(&self, init: &ModelInit) -> PairSetup {
        PairSetup {
            spec: self.spec(),
            items: init.items,
            loss: init.pair_loss,
            split: init.dense,
        }
    }

    /// A user table and an item table, `dim` wide, for `init`'s users and items (users first).
    fn tables(&self, init: &ModelInit, dim: usize, device: &Device) -> (Embedding, Embedding) {
        let users = embedding(init.users, dim, self.init_std(), device);
        (users, embedding(init.items, dim, self.init_std(), device))
    }
}

impl<C: NcfConfig> ModelSettings for C {
    fn input(&self) -> Input {
        Input::Pairs
    }

    fn validate(&self) -> Result<(), ModelError> {
        check_init_std(self.init_std())?;
        self.check()?;
        Ok(self.spec().validate()?)
    }

    fn parameter_count(&self, users: usize, items: usize) -> u128 {
        self.parameters(users, items)
    }

    fn pretraining(&self) -> Option<Pretraining> {
        self.stages()
    }
}

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
    setup: PairSetup,
}

impl MfConfig {
    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Mf {
        let (users, items) = self.tables(init, self.factors, device);
        Mf {
            users,
            items,
            setup: self.setup(init),
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

impl NcfConfig for MfConfig {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Mf(FactorsSpec {
            factors: self.factors,
        })
    }

    fn init_std(&self) -> f64 {
        self.init_std
    }

    fn parameters(&self, users: usize, items: usize) -> u128 {
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

    fn setup(&self) -> &PairSetup {
        &self.setup
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
    setup: PairSetup,
}

impl GmfConfig {
    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Gmf {
        let (users, items) = self.tables(init, self.factors, device);
        Gmf {
            users,
            items,
            output: LinearConfig::new(self.factors, 1).init(device),
            setup: self.setup(init),
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

impl NcfConfig for GmfConfig {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Gmf(FactorsSpec {
            factors: self.factors,
        })
    }

    fn init_std(&self) -> f64 {
        self.init_std
    }

    fn parameters(&self, users: usize, items: usize) -> u128 {
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
        dense(
            &self.output,
            self.interaction(users, items),
            self.setup.split,
        )
        .squeeze_dim::<1>(1)
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

    fn setup(&self) -> &PairSetup {
        &self.setup
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
    setup: PairSetup,
}

impl MlpConfig {
    /// Builds the model.
    pub fn init(&self, init: &ModelInit, device: &Device) -> Mlp {
        let (users, items) = self.tables(init, self.layers[0] / 2, device);
        Mlp {
            users,
            items,
            tower: Tower::new(&self.layers, init.dense, device),
            output: LinearConfig::new(*self.layers.last().expect("validated"), 1).init(device),
            setup: self.setup(init),
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

impl NcfConfig for MlpConfig {
    fn spec(&self) -> ModelSpec {
        ModelSpec::Mlp(MlpSpec {
            layers: self.layers.clone(),
        })
    }

    fn init_std(&self) -> f64 {
        self.init_std
    }

    fn parameters(&self, users: usize, items: usize) -> u128 {
        let half = self.layers[0] / 2;
        let last = *self.layers.last().expect("validated");
        size::sum([
            size::table(users, half),
            size::table(items, half),
            size::stack(&self.layers),
            size::linear(last, 1),
        ])
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
}

impl PairModel for Mlp {
    fn score_batch(&self, users: &IdBatch, items: &IdBatch) -> Tensor<1> {
        dense(&self.output, self.hidden(users, items), self.setup.split).squeeze_dim::<1>(1)
    }

    fn setup(&self) -> &PairSetup {
        &self.setup
    }
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
    setup: PairSetup,
}

impl NeuMfConfig {
    /// Builds the model, randomly initialised.
    pub fn init(&self, init: &ModelInit, device: &Device) -> NeuMf {
        let (gmf_users, gmf_items) = self.tables(init, self.factors, device);
        let (mlp_users, mlp_items) = self.tables(init, self.layers[0] / 2, device);
        NeuMf {
            gmf_users,
            gmf_items,
            mlp_users,
            mlp_items,
            tower: Tower::new(&self.layers, init.dense, device),
            output: LinearConfig::new(self.factors + self.layers.last().expect("validated"), 1)
                .init(device),
            setup: self.setup(init),
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
            setup: PairSetup {
                spec: self.spec(),
                ..gmf.setup
            },
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

impl NcfConfig for NeuMfConfig {
    fn spec(&self) -> ModelSpec {
        ModelSpec::NeuMf(NeuMfSpec {
            factors: self.factors,
            layers: self.layers.clone(),
        })
    }

    fn init_std(&self) -> f64 {
        self.init_std
    }

    fn check(&self) -> Result<(), ModelError> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(ModelError::BadAlpha(self.alpha));
        }
        Ok(())
    }

    fn parameters(&self, users: usize, items: usize) -> u128 {
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
    fn stages(&self) -> Option<Pretraining> {
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
        dense(&self.output, fused, self.setup.split).squeeze_dim::<1>(1)
    }

    fn setup(&self) -> &PairSetup {
        &self.setup
    }
}
