//! Recommendation models as burn modules behind one interface.
//!
//! Every model answers [`Recommender`]: the loss on a batch of what it reads, scores of every
//! item, scores of given pairs, and its exported form. Its config answers [`ModelSettings`]:
//! what the model reads of a user ([`Input`]: pairs, user rows, rating rows or sequences),
//! whether its hyper-parameters hold, and whether it starts from pre-trained stages. The trainer,
//! the evaluator and the benchmark build batches from the [`Input`] and never ask which model
//! they hold; the one dispatch on model kinds is the registry below.
//!
//! One file per model family. To add a model: name its kind in ember-spec's list
//! ([`ember_spec::model_families!`], with its exported spec), and write its file here: a serde
//! config implementing [`ModelSettings`] with an `init(&ModelInit, &Device)`, a
//! `#[derive(Module)]` struct implementing [`Recommender`], and their registration on the
//! kind, [`ModelFamily`] (with the model the benchmark builds). The registry below is built
//! from that list.

pub mod activation;
pub mod attention;
pub mod autorec;
pub mod bert4rec;
pub mod cdae;
mod config;
pub mod cross_entropy;
pub mod dropout;
mod export;
pub mod gru4rec;
mod host;
pub mod item_knn;
pub mod layers;
pub mod lightgcn;
pub mod lookup;
mod loss;
pub mod multvae;
pub mod ncf;
mod pair;
pub mod propagate;
mod recommender;
pub mod sasrec;
mod sequence;
mod size;
pub mod sparse_input;

pub use autorec::{AutoRec, AutoRecConfig};
pub use bert4rec::{Bert4Rec, Bert4RecConfig};
pub use cdae::{Cdae, CdaeConfig};
pub use config::{DenseSplit, ModelError, ModelInit, ModelSettings, Pretraining, WeightUse};
pub use dropout::{Dropout, Masks};
pub use export::NamedTensor;
pub use gru4rec::{Gru4Rec, Gru4RecConfig, Gru4RecLoss};
pub use item_knn::{ItemKnn, ItemKnnConfig};
pub use lightgcn::{LightGcn, LightGcnConfig};
pub use lookup::{IdBatch, SegmentPlan};
pub use loss::Loss;
pub use multvae::{MultDae, MultDaeConfig, MultVae, MultVaeConfig};
pub use ncf::{Gmf, GmfConfig, Mf, MfConfig, Mlp, MlpConfig, NeuMf, NeuMfConfig};
pub use recommender::{
    Batch, Export, Input, PairBatch, PairTargets, Query, Recommender, SequenceBatch, UserRows,
};
pub use sasrec::{SasRec, SasRecConfig};
pub use sequence::{SequenceLoss, SequenceTask};

use burn::prelude::*;
use ember_spec::ModelSpec;
use serde::{Deserialize, Serialize};

/// A model family as the registry sees it: its config and model types, and the model the
/// training benchmark (`ember bench train`) builds. Each family implements it once, in its own
/// file, on its kind's marker type in [`kinds`]:
///
/// ```ignore
/// impl ModelFamily for kinds::Mf {
///     type Config = MfConfig;
///     type Model = Mf;
///     fn bench_preset() -> MfConfig { … }
/// }
/// ```
///
/// The config has an inherent `init(&self, &ModelInit, &Device) -> Self::Model`.
pub trait ModelFamily {
    /// The hyper-parameters (the `[model]` table, less its `kind`).
    type Config: ModelSettings;
    /// The model the config builds.
    type Model: Recommender;

    /// The config the training benchmark builds: the paper's settings (the README row's), or
    /// those of the PyTorch peer it is set beside (`scripts/bench_torch_<family>.py`).
    fn bench_preset() -> Self::Config;

    /// Adam's β₂ in the training benchmark (the optimiser of the family's reference code).
    const BENCH_ADAM_BETA2: f32 = 0.999;
}

/// Builds the registry from ember-spec's list of families ([`ember_spec::model_families!`],
/// where each kind is written): a marker type per kind in [`kinds`], and the [`Model`] and
/// [`ModelConfig`] enums with their dispatch, each variant holding the types its kind's
/// [`ModelFamily`] names.
macro_rules! models {
    ($($(#[$doc:meta])* $variant:ident($spec:ty) = $kind:literal,)*) => {
        /// One marker type per model kind, named as its [`ember_spec::ModelSpec`] variant: a
        /// family registers its config and model by implementing [`ModelFamily`] on its kind.
        pub mod kinds {
            $($(#[$doc])* #[derive(Debug)] pub enum $variant {})*
        }

        /// Any model ember can train, as one module type.
        // One model per run, moved between steps: boxing variants would add indirection to
        // every parameter access for nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum Model {
            $($(#[$doc])* $variant(<kinds::$variant as ModelFamily>::Model),)*
        }

        /// Which model to train, with its hyper-parameters (the `[model]` table, tagged by
        /// `kind`).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum ModelConfig {
            $($(#[$doc])* #[serde(rename = $kind)]
            $variant(<kinds::$variant as ModelFamily>::Config),)*
        }

        /// Every model kind, as configs name them (ember-spec's [`ModelSpec::KINDS`]).
        pub const MODEL_KINDS: &[&str] = ModelSpec::KINDS;

        impl Model {
            /// The model behind the shared interface.
            pub fn recommender(&self) -> &dyn Recommender {
                match self {
                    $(Model::$variant(m) => m,)*
                }
            }
        }

        impl ModelConfig {
            /// The config behind the shared interface.
            pub fn settings(&self) -> &dyn ModelSettings {
                match self {
                    $(ModelConfig::$variant(c) => c,)*
                }
            }

            /// The model's kind as written in configs.
            pub fn name(&self) -> &'static str {
                match self {
                    $(ModelConfig::$variant(_) => $kind,)*
                }
            }

            /// Builds a randomly initialised model.
            pub fn init(&self, init: &ModelInit, device: &Device) -> Model {
                match self {
                    $(ModelConfig::$variant(c) => Model::$variant(c.init(init, device)),)*
                }
            }

            /// The model of kind `kind` that the training benchmark builds
            /// ([`ModelFamily::bench_preset`]), or `None` for an unknown kind.
            pub fn bench_preset(kind: &str) -> Option<Self> {
                match kind {
                    $($kind => Some(ModelConfig::$variant(
                        <kinds::$variant as ModelFamily>::bench_preset(),
                    )),)*
                    _ => None,
                }
            }

            /// Adam's β₂ in the training benchmark ([`ModelFamily::BENCH_ADAM_BETA2`]).
            pub fn bench_adam_beta2(&self) -> f32 {
                match self {
                    $(ModelConfig::$variant(_) => <kinds::$variant as ModelFamily>::BENCH_ADAM_BETA2,)*
                }
            }
        }
    };
}

ember_spec::model_families!(models);

impl Model {
    /// The training loss of a batch (see [`Recommender::loss`]).
    pub fn loss(&self, batch: &Batch, step: usize) -> Tensor<1> {
        self.recommender().loss(batch, step)
    }

    /// Scores of every item (see [`Recommender::score_all`]).
    pub fn score_all(&self, query: &Query) -> Tensor<2> {
        self.recommender().score_all(query)
    }

    /// Scores of pairs (see [`Recommender::score_pairs`]).
    pub fn score_pairs(
        &self,
        query: &Query,
        rows: Tensor<1, Int>,
        items: Tensor<1, Int>,
    ) -> Tensor<1> {
        self.recommender().score_pairs(query, rows, items)
    }

    /// The model as ember-infer loads it (see [`Recommender::export`]).
    pub fn export(&self) -> Export {
        self.recommender().export()
    }
}

impl ModelConfig {
    /// What the model reads of a user.
    pub fn input(&self) -> Input {
        self.settings().input()
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.settings().validate()
    }

    /// What the model makes of interaction weights.
    pub fn weight_use(&self) -> WeightUse {
        self.settings().weight_use()
    }

    /// Stages to train first (NeuMF's pre-training), if any.
    pub fn pretraining(&self) -> Option<Pretraining> {
        self.settings().pretraining()
    }

    /// The model's parameters for `users` users and `items` items, from the config alone
    /// (see [`ModelSettings::parameter_count`]).
    pub fn parameter_count(&self, users: usize, items: usize) -> u128 {
        self.settings().parameter_count(users, items)
    }
}

impl Default for ModelConfig {
    /// NeuMF with its defaults.
    fn default() -> Self {
        ModelConfig::NeuMf(NeuMfConfig::default())
    }
}
