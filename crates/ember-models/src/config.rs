use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    AutoRecConfig, Bert4RecConfig, CdaeConfig, GmfConfig, MfConfig, MlpConfig, Model,
    MultDaeConfig, MultVaeConfig, NeuMfConfig, SasRecConfig, SequenceLoss,
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
    /// Attention heads that do not divide the hidden size.
    #[error("model.heads ({heads}) must divide model.hidden ({hidden})")]
    BadHeads {
        /// Heads.
        heads: usize,
        /// Hidden size.
        hidden: usize,
    },
    /// A mask probability outside (0, 1).
    #[error("model.mask_prob must lie strictly between 0 and 1, got {0}")]
    BadMaskProb(f64),
    /// A sampled loss without negatives.
    #[error("model.negatives must be at least 1 for loss `{0}`")]
    NoNegatives(&'static str),
    /// A window too short for the model.
    #[error("model.max_len must be at least {0}")]
    ShortWindow(usize),
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
    /// SASRec (Kang & McAuley 2018), next-item prediction.
    #[serde(rename = "sasrec")]
    SasRec(SasRecConfig),
    /// BERT4Rec (Sun et al. 2019), masked-item prediction.
    #[serde(rename = "bert4rec")]
    Bert4Rec(Bert4RecConfig),
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

fn check_transformer(
    hidden: usize,
    blocks: usize,
    heads: usize,
    max_len: usize,
    min_len: usize,
    dropout: f64,
) -> Result<(), ModelError> {
    for (key, value) in [("hidden", hidden), ("blocks", blocks), ("heads", heads)] {
        if value == 0 {
            return Err(ModelError::ZeroSize(key));
        }
    }
    if hidden % heads != 0 {
        return Err(ModelError::BadHeads { heads, hidden });
    }
    if max_len < min_len {
        return Err(ModelError::ShortWindow(min_len));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(ModelError::BadDropout(dropout));
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
            ModelConfig::SasRec(_) => "sasrec",
            ModelConfig::Bert4Rec(_) => "bert4rec",
        }
    }

    /// Whether the model reads each user's items as a sequence in time order (SASRec,
    /// BERT4Rec).
    pub fn reads_sequences(&self) -> bool {
        matches!(self, ModelConfig::SasRec(_) | ModelConfig::Bert4Rec(_))
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
            | ModelConfig::AutoRec(_)
            | ModelConfig::SasRec(_)
            | ModelConfig::Bert4Rec(_) => None,
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
            ModelConfig::SasRec(c) => {
                check_transformer(c.hidden, c.blocks, c.heads, c.max_len, 1, c.dropout)?;
                let loss = match c.loss {
                    SequenceLoss::Bce => Some("bce"),
                    SequenceLoss::SampledSoftmax => Some("sampled_softmax"),
                    SequenceLoss::Softmax => None,
                };
                if let Some(loss) = loss
                    && c.negatives == 0
                {
                    return Err(ModelError::NoNegatives(loss));
                }
            }
            ModelConfig::Bert4Rec(c) => {
                // The scored window holds the mask token and at least one item.
                check_transformer(c.hidden, c.blocks, c.heads, c.max_len, 2, c.dropout)?;
                if !(c.mask_prob > 0.0 && c.mask_prob < 1.0) {
                    return Err(ModelError::BadMaskProb(c.mask_prob));
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
            ModelConfig::SasRec(c) => Model::SasRec(c.init(num_items, device)),
            ModelConfig::Bert4Rec(c) => Model::Bert4Rec(c.init(num_items, device)),
        }
    }
}
