use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    AutoRecConfig, CdaeConfig, GmfConfig, MfConfig, MlpConfig, Model, MultDaeConfig, MultVaeConfig,
    NeuMfConfig,
};

/// Invalid model hyper-parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// A size that must be positive is zero.
    #[error("model.{0} must be at least 1")]
    ZeroSize(&'static str),
    /// The MLP layer list is unusable.
    #[error(
        "model.layers must list at least 2 sizes, the first even (it is split between user and item), got {0:?}"
    )]
    BadLayers(Vec<usize>),
    /// A non-positive or non-finite initialisation scale.
    #[error("model.init_std must be a positive number, got {0}")]
    BadInitStd(f64),
    /// α outside [0, 1].
    #[error("model.alpha must lie in [0, 1], got {0}")]
    BadAlpha(f64),
    /// An autoencoder's hidden sizes are unusable.
    #[error("model.hidden must list at least one size, none of them 0, got {0:?}")]
    BadHidden(Vec<usize>),
    /// A dropout probability outside [0, 1).
    #[error("model.dropout must lie in [0, 1), got {0}")]
    BadDropout(f64),
    /// A negative or non-finite L2 weight.
    #[error("model.l2 must be a non-negative number, got {0}")]
    BadL2(f64),
    /// A negative or non-finite KL weight.
    #[error("model.beta must be a non-negative number, got {0}")]
    BadBeta(f64),
}

/// Which model to train, with its hyper-parameters (the `[model]` table, tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelConfig {
    /// Matrix factorisation.
    Mf(MfConfig),
    /// Generalized matrix factorisation.
    Gmf(GmfConfig),
    /// Multi-layer perceptron.
    Mlp(MlpConfig),
    /// Neural matrix factorisation.
    #[serde(rename = "neumf")]
    NeuMf(NeuMfConfig),
    /// Mult-DAE (Liang et al. 2018).
    MultDae(MultDaeConfig),
    /// Mult-VAE (Liang et al. 2018).
    MultVae(MultVaeConfig),
    /// CDAE (Wu et al. 2016).
    Cdae(CdaeConfig),
    /// AutoRec (Sedhain et al. 2015), rating prediction.
    #[serde(rename = "autorec")]
    AutoRec(AutoRecConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::NeuMf(NeuMfConfig {
            factors: 32,
            layers: vec![64, 32, 16, 8],
            init_std: 0.01,
            pretrain: false,
            alpha: 0.5,
        })
    }
}

fn check_layers(layers: &[usize]) -> Result<(), ModelError> {
    if layers.len() < 2 || layers[0] % 2 != 0 || layers.contains(&0) {
        return Err(ModelError::BadLayers(layers.to_vec()));
    }
    Ok(())
}

impl ModelConfig {
    /// The model's name as written in configs.
    pub fn name(&self) -> &'static str {
        match self {
            ModelConfig::Mf(_) => "mf",
            ModelConfig::Gmf(_) => "gmf",
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::NeuMf(_) => "neumf",
            ModelConfig::MultDae(_) => "mult_dae",
            ModelConfig::MultVae(_) => "mult_vae",
            ModelConfig::Cdae(_) => "cdae",
            ModelConfig::AutoRec(_) => "autorec",
        }
    }

    /// Whether the model predicts explicit ratings (evaluated by RMSE and MAE) rather than
    /// ranking items.
    pub fn predicts_ratings(&self) -> bool {
        matches!(self, ModelConfig::AutoRec(_))
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<(), ModelError> {
        let init_std = match self {
            ModelConfig::Mf(c) => Some(c.init_std),
            ModelConfig::Gmf(c) => Some(c.init_std),
            ModelConfig::Mlp(c) => Some(c.init_std),
            ModelConfig::NeuMf(c) => Some(c.init_std),
            ModelConfig::MultDae(_)
            | ModelConfig::MultVae(_)
            | ModelConfig::Cdae(_)
            | ModelConfig::AutoRec(_) => None,
        };
        if let Some(init_std) = init_std
            && !(init_std > 0.0 && init_std.is_finite())
        {
            return Err(ModelError::BadInitStd(init_std));
        }
        let check_autoencoder = |hidden: &[usize], dropout: f64| {
            if hidden.is_empty() || hidden.contains(&0) {
                return Err(ModelError::BadHidden(hidden.to_vec()));
            }
            if !(0.0..1.0).contains(&dropout) {
                return Err(ModelError::BadDropout(dropout));
            }
            Ok(())
        };
        match self {
            ModelConfig::Mf(MfConfig { factors, .. })
            | ModelConfig::Gmf(GmfConfig { factors, .. }) => {
                if *factors == 0 {
                    return Err(ModelError::ZeroSize("factors"));
                }
            }
            ModelConfig::Mlp(c) => check_layers(&c.layers)?,
            ModelConfig::NeuMf(c) => {
                if c.factors == 0 {
                    return Err(ModelError::ZeroSize("factors"));
                }
                check_layers(&c.layers)?;
                if !(0.0..=1.0).contains(&c.alpha) {
                    return Err(ModelError::BadAlpha(c.alpha));
                }
            }
            ModelConfig::MultDae(c) => check_autoencoder(&c.hidden, c.dropout)?,
            ModelConfig::MultVae(c) => {
                check_autoencoder(&c.hidden, c.dropout)?;
                if !(c.beta >= 0.0 && c.beta.is_finite()) {
                    return Err(ModelError::BadBeta(c.beta));
                }
            }
            ModelConfig::Cdae(c) => check_autoencoder(&[c.hidden], c.dropout)?,
            ModelConfig::AutoRec(c) => {
                check_autoencoder(&[c.hidden], 0.0)?;
                if !(c.l2 >= 0.0 && c.l2.is_finite()) {
                    return Err(ModelError::BadL2(c.l2));
                }
            }
        }
        Ok(())
    }

    /// Builds a randomly initialised model.
    pub fn init(&self, num_users: usize, num_items: usize, device: &Device) -> Model {
        match self {
            ModelConfig::Mf(c) => Model::Mf(c.init(num_users, num_items, device)),
            ModelConfig::Gmf(c) => Model::Gmf(c.init(num_users, num_items, device)),
            ModelConfig::Mlp(c) => Model::Mlp(c.init(num_users, num_items, device)),
            ModelConfig::NeuMf(c) => Model::NeuMf(c.init(num_users, num_items, device)),
            ModelConfig::MultDae(c) => Model::MultDae(c.init(num_items, device)),
            ModelConfig::MultVae(c) => Model::MultVae(c.init(num_items, device)),
            ModelConfig::Cdae(c) => Model::Cdae(c.init(num_users, num_items, device)),
            ModelConfig::AutoRec(c) => Model::AutoRec(c.init(num_users, num_items, device)),
        }
    }
}
