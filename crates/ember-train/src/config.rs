//! The run configuration: one TOML file, read into plain serde structs that reject unknown keys.

use ember_data::{DataSource, Preprocess, Split};
use ember_metrics::{NegativeSampling, Protocol};
use ember_models::{Loss, ModelConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::TrainError;

/// Everything a run needs. Every table and key is optional; the defaults train NeuMF on the
/// built-in synthetic data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run name: the run directory is `<output_dir>/<name>`.
    pub name: String,
    /// Seed of everything random: initialisation, shuffling, negatives.
    pub seed: u64,
    /// Backend: `flex`, `ndarray`, `wgpu` or `vulkan` (overridden by `--device`).
    pub device: String,
    /// Where run directories go.
    pub output_dir: PathBuf,
    /// The interaction source.
    pub data: DataSource,
    /// Cleaning before the split.
    pub preprocess: Preprocess,
    /// Train/validation/test split.
    pub split: Split,
    /// The model and its hyper-parameters.
    pub model: ModelConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// Evaluation.
    pub eval: EvalConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            seed: 42,
            device: "flex".into(),
            output_dir: PathBuf::from("runs"),
            data: DataSource::default(),
            preprocess: Preprocess::default(),
            split: Split::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
        }
    }
}

/// Optimisation settings (the `[train]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Maximum epochs.
    pub epochs: usize,
    /// Positive examples per batch (each comes with `negatives` sampled negatives).
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Sampled negatives per positive, resampled every epoch.
    pub negatives: usize,
    /// Objective.
    pub loss: Loss,
    /// L2 penalty added to the gradients by Adam (0 = none).
    pub weight_decay: f64,
    /// Stop after this many epochs without improvement of `eval.monitor` on validation.
    pub patience: usize,
    /// Epochs of GMF and of MLP pre-training for NeuMF with `pretrain = true` (default: `epochs`).
    pub pretrain_epochs: Option<usize>,
    /// Adam's learning rate when fine-tuning a pre-trained NeuMF (default: `learning_rate`).
    pub finetune_learning_rate: Option<f64>,
    /// Once the epoch count is chosen on validation, train again from scratch on training +
    /// validation interactions for that many epochs, and test that model.
    pub refit: bool,
    /// How embedding tables get their gradients (see `ember_models::lookup`).
    pub embedding_gradient: EmbeddingGradient,
    /// Adam's β₂ (0.999; SASRec's code uses 0.98).
    pub adam_beta2: f64,
}

/// How embedding tables get their gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingGradient {
    /// Segmented on GPU backends, burn's own on CPU backends.
    #[default]
    Auto,
    /// burn's `select_assign`: serial over the batch on GPUs, a tight loop on CPUs.
    Burn,
    /// Sorted into segments on the CPU, summed in parallel on the device (deterministic).
    Segmented,
}

impl EmbeddingGradient {
    /// Rows per chunk of the segment plan on `device_name`, or `None` for burn's gradient.
    pub fn plan_chunk(self, device_name: &str) -> Option<usize> {
        let gpu = crate::device::is_gpu(device_name);
        match self {
            Self::Segmented => Some(ember_models::lookup::DEFAULT_CHUNK),
            Self::Auto if gpu => Some(ember_models::lookup::DEFAULT_CHUNK),
            Self::Auto | Self::Burn => None,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 256,
            learning_rate: 1e-3,
            negatives: 4,
            loss: Loss::Bce,
            weight_decay: 0.0,
            patience: 5,
            pretrain_epochs: None,
            finetune_learning_rate: None,
            refit: false,
            embedding_gradient: EmbeddingGradient::Auto,
            adam_beta2: 0.999,
        }
    }
}

/// Evaluation settings (the `[eval]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Which candidates the held-out items are ranked against.
    pub protocol: Protocol,
    /// Cut-offs of the @k metrics.
    pub ks: Vec<usize>,
    /// The validation metric for early stopping and model selection, e.g. `NDCG@10`.
    pub monitor: String,
    /// Users scored per evaluation batch.
    pub batch_users: usize,
    /// Validate every this many epochs (and after the last); early stopping still counts
    /// `train.patience` in epochs.
    pub every: usize,
    /// More protocols the selected model (and the baseline) are tested under, reported beside
    /// the main one; validation always uses `protocol`.
    pub extra_protocols: Vec<Protocol>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Sampled {
                negatives: 99,
                sampling: NegativeSampling::Uniform,
            },
            ks: vec![5, 10, 20],
            monitor: "NDCG@10".into(),
            batch_users: 256,
            every: 1,
            extra_protocols: Vec::new(),
        }
    }
}

impl RunConfig {
    /// Reads and checks a config file.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::Config {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks config text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, TrainError> {
        let config: RunConfig = toml::from_str(text).map_err(|e| TrainError::Config {
            path: path.to_owned(),
            message: with_suggestion(&e.to_string()),
        })?;
        config.validate().map_err(|message| TrainError::Config {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Checks the values that serde cannot: sizes, cut-offs, the monitored metric.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.train;
        let positive = [
            ("train.epochs", t.epochs),
            ("train.batch_size", t.batch_size),
            ("eval.batch_users", self.eval.batch_users),
            ("eval.every", self.eval.every),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(format!("{key} must be at least 1, got 0"));
            }
        }
        if t.negatives == 0 && !self.model.reads_sequences() {
            return Err(
                "train.negatives must be at least 1 (training needs negatives), got 0".into(),
            );
        }
        let rates = [
            ("learning_rate", Some(t.learning_rate)),
            ("finetune_learning_rate", t.finetune_learning_rate),
        ];
        for (key, rate) in rates {
            if let Some(rate) = rate
                && !(rate > 0.0 && rate.is_finite())
            {
                return Err(format!("train.{key} must be positive, got {rate}"));
            }
        }
        if t.pretrain_epochs == Some(0) {
            return Err("train.pretrain_epochs must be at least 1".into());
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
            return Err(format!(
                "train.weight_decay must not be negative, got {}",
                t.weight_decay
            ));
        }
        if !(0.0..1.0).contains(&t.adam_beta2) {
            return Err(format!(
                "train.adam_beta2 must lie in [0, 1), got {}",
                t.adam_beta2
            ));
        }
        if self.eval.ks.is_empty() || self.eval.ks.contains(&0) {
            return Err(format!(
                "eval.ks must list cut-offs k >= 1, got {:?}",
                self.eval.ks
            ));
        }
        self.eval
            .protocol
            .validate()
            .map_err(|e| format!("eval.protocol: {e}"))?;
        for protocol in &self.eval.extra_protocols {
            protocol
                .validate()
                .map_err(|e| format!("eval.extra_protocols: {e}"))?;
        }
        // AUC(global) is computed on test only (it keeps every scored pair), so it cannot steer.
        let mut known: Vec<String> = vec!["MRR".into(), "AUC(user)".into()];
        for k in &self.eval.ks {
            for m in ["HR", "NDCG", "Precision", "Recall", "MAP", "Coverage"] {
                known.push(format!("{m}@{k}"));
            }
            known.push(format!("{}{k}", ember_metrics::RECALL_MIN_PREFIX));
        }
        if self.model.predicts_ratings() {
            // Rating prediction reports errors, not rankings.
            known = vec!["RMSE".into(), "MAE".into()];
        }
        if !known.contains(&self.eval.monitor) {
            let nearest = nearest(&self.eval.monitor, known.iter().map(String::as_str))
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "eval.monitor `{}` is not a metric this run computes{nearest}; with ks = {:?} it can be one of: {}",
                self.eval.monitor,
                self.eval.ks,
                known.join(", ")
            ));
        }
        self.model.validate().map_err(|e| e.to_string())?;
        if self.train.patience < self.eval.every {
            return Err(format!(
                "train.patience ({}) must be at least eval.every ({}): patience counts epochs, and validation runs every {} epochs",
                self.train.patience, self.eval.every, self.eval.every
            ));
        }
        if self.model.reads_sequences() {
            // Their test input is the history up to the test item: training then validation
            // items, which is in time order only for these splits.
            if !matches!(self.split, Split::LeaveOneOut | Split::Fixed) {
                return Err(format!(
                    "model `{}` reads each user's items in time order: use split `leave_one_out` (or `fixed`), whose held-out items are each user's latest",
                    self.model.name()
                ));
            }
            if self.train.loss != Loss::default() {
                return Err(format!(
                    "train.loss applies to pair models; model `{}` takes its loss from model.loss",
                    self.model.name()
                ));
            }
        }
        if self.model.predicts_ratings() {
            if self.preprocess.implicit_threshold.is_some() {
                return Err(format!(
                    "model `{}` predicts ratings: remove preprocess.implicit_threshold, which keeps only the high ones",
                    self.model.name()
                ));
            }
            if !self.preprocess.dedup {
                return Err(format!(
                    "model `{}` predicts ratings: set preprocess.dedup = true, or a repeated (user, item) pair could be trained on and tested",
                    self.model.name()
                ));
            }
        }
        self.split.validate().map_err(|e| e.to_string())?;
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            return Err(format!(
                "name `{}` must be a plain directory name",
                self.name
            ));
        }
        Ok(())
    }

    /// The config as TOML, as saved in the run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }
}

/// Appends "did you mean `x`?" to serde's "unknown field `y`, expected one of `a`, `b`" and
/// "unknown variant" messages.
fn with_suggestion(message: &str) -> String {
    for marker in ["unknown field `", "unknown variant `"] {
        let Some(start) = message.find(marker) else {
            continue;
        };
        let rest = &message[start + marker.len()..];
        let Some(end) = rest.find('`') else { continue };
        let unknown = &rest[..end];
        let Some(expected) = rest.find("expected") else {
            continue;
        };
        let candidates = rest[expected..].split('`').skip(1).step_by(2);
        if let Some(best) = nearest(unknown, candidates) {
            return format!("{}\ndid you mean `{best}`?", message.trim_end());
        }
    }
    message.to_string()
}

/// The candidate closest to `word` by edit distance, if reasonably close.
fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestion_for_unknown_key() {
        let err = RunConfig::from_toml("[train]\nepoch = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("unknown field `epoch`"), "{err}");
        assert!(err.contains("did you mean `epochs`?"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn suggestion_for_unknown_model_key_and_kind() {
        let err = RunConfig::from_toml(
            "[model]\nkind = \"neumf\"\nfactor = 8\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("did you mean `factors`?"), "{err}");
        let err =
            RunConfig::from_toml("[model]\nkind = \"nuemf\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("did you mean `neumf`?"), "{err}");
    }

    #[test]
    fn invalid_values() {
        let cases = [
            ("[eval]\nks = [0, 10]\n", "eval.ks"),
            (
                "[train]\nbatch_size = 0\n",
                "train.batch_size must be at least 1",
            ),
            ("[eval]\nmonitor = \"NDCG@50\"\n", "eval.monitor `NDCG@50`"),
            (
                "[eval]\nprotocol = { kind = \"sampled\", negatives = 0 }\n",
                "at least one negative",
            ),
            ("[model]\nkind = \"mlp\"\nlayers = [7, 4]\n", "model.layers"),
            (
                "[model]\nkind = \"mf\"\ninit_std = -0.1\n",
                "model.init_std must be a positive number",
            ),
            (
                "[eval]\nmonitor = \"AUC(global)\"\n",
                "eval.monitor `AUC(global)`",
            ),
            ("[train]\npretrain_epochs = 0\n", "train.pretrain_epochs"),
            (
                "[model]\nkind = \"autorec\"\n[eval]\nmonitor = \"NDCG@10\"\n",
                "eval.monitor `NDCG@10`",
            ),
            (
                "[preprocess]\nimplicit_threshold = 4.0\n[model]\nkind = \"autorec\"\n[eval]\nmonitor = \"RMSE\"\n",
                "remove preprocess.implicit_threshold",
            ),
            (
                "[preprocess]\ndedup = false\n[model]\nkind = \"autorec\"\n[eval]\nmonitor = \"RMSE\"\n",
                "set preprocess.dedup = true",
            ),
            (
                "[model]\nkind = \"mult_vae\"\nbeta = -1.0\n",
                "model.beta must be a non-negative number",
            ),
            (
                "[split]\nkind = \"held_out_users\"\nvalid_users = 1\ntest_users = 1\nfold_in = 1.5\n",
                "fold_in 1.5 must lie strictly between 0 and 1",
            ),
            (
                "[model]\nkind = \"sasrec\"\nhidden = 50\nheads = 3\n",
                "model.heads (3) must divide model.hidden (50)",
            ),
            (
                "[model]\nkind = \"sasrec\"\n[split]\nkind = \"ratio\"\ntrain = 0.8\nvalid = 0.1\ntest = 0.1\n",
                "use split `leave_one_out`",
            ),
            (
                "[model]\nkind = \"sasrec\"\n[train]\nloss = \"bpr\"\n",
                "takes its loss from model.loss",
            ),
            (
                "[model]\nkind = \"sasrec\"\nloss = \"sampled_softmax\"\nnegatives = 0\n",
                "model.negatives must be at least 1 for loss `sampled_softmax`",
            ),
            (
                "[model]\nkind = \"bert4rec\"\nmask_prob = 1.0\n",
                "model.mask_prob must lie strictly between 0 and 1",
            ),
            (
                "[model]\nkind = \"bert4rec\"\nmax_len = 1\n",
                "model.max_len must be at least 2",
            ),
            (
                "[train]\npatience = 2\n[eval]\nevery = 5\n",
                "train.patience (2) must be at least eval.every (5)",
            ),
            (
                "[eval]\nextra_protocols = [{ kind = \"sampled\", negatives = 0 }]\n",
                "eval.extra_protocols",
            ),
        ];
        for (text, expected) in cases {
            let err = RunConfig::from_toml(text, Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }

    #[test]
    fn defaults_round_trip() {
        let config = RunConfig::default();
        let again = RunConfig::from_toml(&config.to_toml(), Path::new("x")).unwrap();
        assert_eq!(config, again);
    }
}
