//! The run configuration: one TOML file, read into plain serde structs that reject unknown keys.

use ember_data::{DataConfig, DataError, Preprocess, Split};
use ember_metrics::{MetricsError, NegativeSampling, Protocol, names};
use ember_models::{Input, Loss, ModelConfig, ModelError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::TrainError;
use crate::device::Backend;
use crate::evaluate::PlanError;

/// What is wrong with a config, or with a config for its data.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// Not valid TOML, or a key or value serde does not know (with the nearest valid key).
    #[error("{}{}", error.to_string().trim_end(), suggestion.as_ref().map(|s| format!("\ndid you mean `{s}`?")).unwrap_or_default())]
    Parse {
        /// What the TOML parser said, with the line and column.
        error: toml::de::Error,
        /// The nearest valid key or variant to an unknown one.
        suggestion: Option<String>,
    },
    /// A count that must be positive is 0.
    #[error("{0} must be at least 1, got 0")]
    Zero(&'static str),
    /// Pair models without negatives.
    #[error("train.negatives must be at least 1 (training needs negatives), got 0")]
    NoNegatives,
    /// A rate that must be a positive number.
    #[error("train.{key} must be positive, got {value}")]
    NotPositive {
        /// The key under `[train]`.
        key: &'static str,
        /// Its value.
        value: f64,
    },
    /// A negative or non-finite weight decay.
    #[error("train.weight_decay must not be negative, got {0}")]
    NegativeWeightDecay(f64),
    /// β₂ outside [0, 1).
    #[error("train.adam_beta2 must lie in [0, 1), got {0}")]
    BadBeta2(f64),
    /// Cut-offs that are missing or 0.
    #[error("eval.ks must list cut-offs k >= 1, got {0:?}")]
    BadCutoffs(Vec<usize>),
    /// Activity bands that do not ascend from 1.
    #[error(
        "eval.activity_bands must list the bands' upper ends, ascending from at least 1 (the \
         default [5, 20] gives 1–5, 6–20 and 21+), got {0:?}"
    )]
    BadActivityBands(Vec<usize>),
    /// An invalid protocol.
    #[error("eval.protocol")]
    Protocol(#[source] MetricsError),
    /// An invalid extra protocol.
    #[error("eval.extra_protocols")]
    ExtraProtocol(#[source] MetricsError),
    /// A monitor this run does not compute.
    #[error(
        "eval.monitor `{monitor}` is not a metric this run computes{}; with ks = {ks:?} it can be one of: {}",
        nearest.as_ref().map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default(),
        known.join(", ")
    )]
    UnknownMonitor {
        /// The monitor asked for.
        monitor: String,
        /// The closest known metric.
        nearest: Option<String>,
        /// The run's cut-offs.
        ks: Vec<usize>,
        /// What it could be.
        known: Vec<String>,
    },
    /// Invalid model hyper-parameters.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Validation less often than patience allows.
    #[error(
        "train.patience ({patience}) must be at least eval.every ({every}): patience counts epochs, and validation runs every {every} epochs"
    )]
    PatienceBelowEvery {
        /// `train.patience`.
        patience: usize,
        /// `eval.every`.
        every: usize,
    },
    /// A sequence model on a split whose held-out items are not each user's latest.
    #[error(
        "model `{0}` reads each user's items in time order: use split `leave_one_out` (or `fixed`, or `time`), whose held-out items are each user's latest"
    )]
    SequenceSplit(&'static str),
    /// `train.loss` given to a model with its own loss.
    #[error("train.loss applies to pair models; model `{0}` takes its loss from model.loss")]
    OwnLoss(&'static str),
    /// A rating model with ratings filtered by a threshold.
    #[error(
        "model `{0}` predicts ratings: remove preprocess.implicit_threshold, which keeps only the high ones"
    )]
    RatingThreshold(&'static str),
    /// A rating model without de-duplication.
    #[error(
        "model `{0}` predicts ratings: set preprocess.dedup = true, or a repeated (user, item) pair could be trained on and tested"
    )]
    RatingDuplicates(&'static str),
    /// An invalid split.
    #[error(transparent)]
    Split(DataError),
    /// A run name that is not a plain directory name.
    #[error("name `{0}` must be a plain directory name")]
    BadName(String),
    /// The protocol's candidates cannot be drawn from this data.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An extra protocol's candidates cannot be drawn from this data.
    #[error("eval.extra_protocols")]
    ExtraPlan(#[source] PlanError),
    /// No validation data to choose the epoch with.
    #[error(
        "the split leaves no validation interactions, which choose the epoch: use a split with validation (leave_one_out needs users with 3+ interactions)"
    )]
    NoValidation,
    /// No test data.
    #[error("the split leaves no test interactions")]
    NoTest,
    /// A rating model on ratings of 0 or below, which it reads as missing.
    #[error(
        "model `{0}` reads 0 as a missing rating, and the data has ratings <= 0: shift the scale to start above 0"
    )]
    RatingsNotPositive(&'static str),
    /// A rating model on data without ratings.
    #[error(
        "model `{0}` predicts ratings, and the data has none: use a source with a rating column, no implicit_threshold, and a split other than `fixed`"
    )]
    NoRatings(&'static str),
    /// A ranking protocol asked of a rating model.
    #[error(
        "model `{0}` predicts ratings, evaluated by RMSE and MAE: a ranking protocol does not apply"
    )]
    RankingOfRatings(&'static str),
}

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
    pub device: Backend,
    /// Where run directories go.
    pub output_dir: PathBuf,
    /// The interaction source.
    pub data: DataConfig,
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
    /// Interaction weights (the `[weights]` table), used rather than thresholded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<ember_data::Weights>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            seed: 42,
            device: Backend::Flex,
            output_dir: PathBuf::from("runs"),
            data: DataConfig::default(),
            preprocess: Preprocess::default(),
            split: Split::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            eval: EvalConfig::default(),
            weights: None,
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
    /// Also write a checkpoint every this many batches within an epoch (0: only at the end of
    /// every epoch).
    pub checkpoint_every: usize,
    /// How ranks of a distributed run (`mpirun -np N ember train`) exchange gradients:
    /// `auto` sends embedding tables as the rows a step touched when that is fewer bytes,
    /// `dense` all-reduces every parameter whole.
    pub gradient_exchange: crate::distributed::GradientExchange,
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
    /// Rows per chunk of the segment plan on `backend`, or `None` for burn's gradient.
    pub fn plan_chunk(self, backend: Backend) -> Option<usize> {
        let gpu = backend.is_gpu();
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
            checkpoint_every: 0,
            gradient_exchange: crate::distributed::GradientExchange::Auto,
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
    /// Users scored per evaluation batch (at most).
    pub batch_users: usize,
    /// Scores computed at once in full-ranking evaluation: the bound on its memory. Users are
    /// scored in chunks of at most `max_scores / items`, and models that score (user, item)
    /// pairs (GMF, MLP, NeuMF) take the items in chunks too, so that a forward pass never holds
    /// more than `max_scores` pairs (for NeuMF about 0.5 KB of activations each).
    pub max_scores: usize,
    /// Validate every this many epochs (and after the last); early stopping still counts
    /// `train.patience` in epochs.
    pub every: usize,
    /// More protocols the selected model (and the baseline) are tested under, reported beside
    /// the main one; validation always uses `protocol`.
    pub extra_protocols: Vec<Protocol>,
    /// The upper ends of the bands of training activity test metrics are broken down by:
    /// `[5, 20]` (the default) gives 1–5, 6–20 and 21+ training interactions.
    #[serde(skip_serializing_if = "is_default_bands")]
    pub activity_bands: Vec<usize>,
}

/// Whether `bands` are the default (left out of a written config, so that runs written before
/// bands existed keep their fingerprint).
fn is_default_bands(bands: &[usize]) -> bool {
    bands == crate::evaluate::ACTIVITY_BANDS
}

impl EvalConfig {
    /// Users scored together over a catalogue of `items`: at most `batch_users`, and at most
    /// `max_scores / items` (at least one), so that a batch's scores fit in `max_scores`.
    pub fn users_per_batch(&self, items: usize) -> usize {
        self.batch_users.min(self.max_scores / items.max(1)).max(1)
    }
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
            max_scores: 1 << 20,
            every: 1,
            extra_protocols: Vec::new(),
            activity_bands: crate::evaluate::ACTIVITY_BANDS.to_vec(),
        }
    }
}

impl RunConfig {
    /// Reads and checks a config file. It is read as every text input is (a line at a time
    /// within `EMBER_MAX_LINE_BYTES`, no NUL byte): `--config /dev/zero` grew until memory ran
    /// out.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let read = |e| TrainError::config(path)(ConfigError::Read(e));
        let limit = ember_spec::lines::LineLimit::from_env(ember_spec::lines::MAX_LINE_BYTES_VAR)
            .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let file = std::fs::File::open(path).map_err(read)?;
        let bytes = ember_spec::lines::read_all(file, limit, 0).map_err(|e| match e {
            ember_spec::lines::TextError::Io(e) => read(e),
            e => {
                let message = format!("line {}: {e}", e.line().unwrap_or(1));
                read(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    message,
                ))
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks config text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, TrainError> {
        let config: RunConfig = toml::from_str(text).map_err(|error| {
            let suggestion = suggestion(error.message());
            TrainError::config(path)(ConfigError::Parse { error, suggestion })
        })?;
        config.validate().map_err(TrainError::config(path))?;
        Ok(config)
    }

    /// Checks the values that serde cannot: sizes, cut-offs, the monitored metric, and that
    /// the model can be trained and evaluated on this split.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let input = self.model.input();
        self.check_sizes(input)?;
        self.check_optimiser()?;
        self.check_evaluation(input)?;
        self.model.validate()?;
        if self.train.patience < self.eval.every {
            return Err(ConfigError::PatienceBelowEvery {
                patience: self.train.patience,
                every: self.eval.every,
            });
        }
        self.check_model_on_split(input)?;
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.starts_with('.') {
            return Err(ConfigError::BadName(self.name.clone()));
        }
        Ok(())
    }

    /// Counts that must be positive, and negatives for the models that learn from them.
    fn check_sizes(&self, input: Input) -> Result<(), ConfigError> {
        let t = &self.train;
        let positive = [
            ("train.epochs", t.epochs),
            ("train.batch_size", t.batch_size),
            ("eval.batch_users", self.eval.batch_users),
            ("eval.max_scores", self.eval.max_scores),
            ("eval.every", self.eval.every),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::Zero(key));
            }
        }
        if t.negatives == 0 && input == Input::Pairs {
            return Err(ConfigError::NoNegatives);
        }
        Ok(())
    }

    /// Learning rates, pre-training epochs, weight decay and Adam's beta2.
    fn check_optimiser(&self) -> Result<(), ConfigError> {
        let t = &self.train;
        let rates = [
            ("learning_rate", Some(t.learning_rate)),
            ("finetune_learning_rate", t.finetune_learning_rate),
        ];
        for (key, rate) in rates {
            if let Some(value) = rate
                && !(value > 0.0 && value.is_finite())
            {
                return Err(ConfigError::NotPositive { key, value });
            }
        }
        if t.pretrain_epochs == Some(0) {
            return Err(ConfigError::Zero("train.pretrain_epochs"));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
            return Err(ConfigError::NegativeWeightDecay(t.weight_decay));
        }
        if !(0.0..1.0).contains(&t.adam_beta2) {
            return Err(ConfigError::BadBeta2(t.adam_beta2));
        }
        Ok(())
    }

    /// Cut-offs, protocols, and a monitored metric the evaluation reports for this model.
    fn check_evaluation(&self, input: Input) -> Result<(), ConfigError> {
        if self.eval.ks.is_empty() || self.eval.ks.contains(&0) {
            return Err(ConfigError::BadCutoffs(self.eval.ks.clone()));
        }
        let bands = &self.eval.activity_bands;
        if bands.first() == Some(&0) || bands.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError::BadActivityBands(bands.clone()));
        }
        self.eval
            .protocol
            .validate()
            .map_err(ConfigError::Protocol)?;
        for protocol in &self.eval.extra_protocols {
            protocol.validate().map_err(ConfigError::ExtraProtocol)?;
        }
        let known: Vec<String> = if input.predicts_ratings() {
            // Rating prediction reports errors, not rankings.
            names::RATING_METRICS
                .iter()
                .map(|m| m.to_string())
                .collect()
        } else {
            names::monitorable(&self.eval.ks)
        };
        if !known.contains(&self.eval.monitor) {
            return Err(ConfigError::UnknownMonitor {
                monitor: self.eval.monitor.clone(),
                nearest: nearest(&self.eval.monitor, known.iter().map(String::as_str))
                    .map(str::to_string),
                ks: self.eval.ks.clone(),
                known,
            });
        }
        Ok(())
    }

    /// What the model's input asks of the split and preprocessing, then the split itself.
    fn check_model_on_split(&self, input: Input) -> Result<(), ConfigError> {
        let model = self.model.name();
        if input.reads_sequences() {
            // Their test input is the history up to the test items: training then validation
            // items, which is in time order only for these splits (under the time split, every
            // item before the cutoff).
            if !matches!(
                self.split,
                Split::LeaveOneOut | Split::Fixed | Split::Time { .. }
            ) {
                return Err(ConfigError::SequenceSplit(model));
            }
            if self.train.loss != Loss::default() {
                return Err(ConfigError::OwnLoss(model));
            }
        }
        if input.predicts_ratings() {
            if self.preprocess.implicit_threshold.is_some() {
                return Err(ConfigError::RatingThreshold(model));
            }
            if !self.preprocess.dedup {
                return Err(ConfigError::RatingDuplicates(model));
            }
        }
        self.split.validate().map_err(ConfigError::Split)
    }

    /// The config as TOML, as saved in the run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }
}

/// Keys of the resolved config that cannot change a run's result (where it is written, under
/// what name, how often it checkpoints): a resumed run may have them edited. RunConfig holds no
/// progress or logging setting; those are command-line options.
const RESULT_NEUTRAL: [&str; 3] = ["name", "output_dir", "train.checkpoint_every"];

/// The resolved config as dotted keys (`train.learning_rate`) and their values in JSON
/// (`0.001`, `"/a/u.data"`, `null` for an unset option), less the keys that cannot change a
/// result: recorded when a run starts, so that a resume can tell which values were edited
/// since. Values are kept as text: a float read back from JSON may differ from the one written
/// in its last bit, text compares exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigFingerprint(BTreeMap<String, String>);

impl ConfigFingerprint {
    /// The fingerprint of `config`.
    pub fn of(config: &RunConfig) -> Self {
        let mut keys = BTreeMap::new();
        let value = serde_json::to_value(config).expect("a config always serialises");
        flatten(String::new(), value, &mut keys);
        for key in RESULT_NEUTRAL {
            keys.remove(key);
        }
        Self(keys)
    }

    /// The value of a dotted key, in JSON.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every key whose value differs in `now`, in key order, as `key was A, now B` (a key
    /// absent on one side, or TOML's absent optional value, reads `unset`).
    pub fn changes(&self, now: &Self) -> Vec<String> {
        let keys: BTreeSet<&String> = self.0.keys().chain(now.0.keys()).collect();
        fn shown(value: Option<&String>) -> &str {
            match value.map(String::as_str) {
                None | Some("null") => "unset",
                Some(value) => value,
            }
        }
        keys.into_iter()
            .map(|key| (key, shown(self.0.get(key)), shown(now.0.get(key))))
            .filter(|(_, was, is)| was != is)
            .map(|(key, was, is)| format!("{key} was {was}, now {is}"))
            .collect()
    }
}

/// Adds `value`'s leaves, in JSON, to `keys` under dotted names below `prefix`; arrays are
/// leaves.
fn flatten(prefix: String, value: Value, keys: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let key = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(key, field, keys);
            }
        }
        leaf => {
            keys.insert(prefix, leaf.to_string());
        }
    }
}

/// The valid key or variant nearest to the unknown one in serde's "unknown field `y`,
/// expected one of `a`, `b`" and "unknown variant" messages.
fn suggestion(message: &str) -> Option<String> {
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
            return Some(best.to_string());
        }
    }
    None
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

    /// The error and its causes, as the command line prints them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        text
    }

    #[test]
    fn suggestion_for_unknown_key() {
        let err =
            chain(&RunConfig::from_toml("[train]\nepoch = 3\n", Path::new("c.toml")).unwrap_err());
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("unknown field `epoch`"), "{err}");
        assert!(err.contains("did you mean `epochs`?"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn suggestion_for_unknown_model_key_and_kind() {
        let err = chain(
            &RunConfig::from_toml(
                "[model]\nkind = \"neumf\"\nfactor = 8\n",
                Path::new("c.toml"),
            )
            .unwrap_err(),
        );
        assert!(err.contains("did you mean `factors`?"), "{err}");
        let err = chain(
            &RunConfig::from_toml("[model]\nkind = \"nuemf\"\n", Path::new("c.toml")).unwrap_err(),
        );
        assert!(err.contains("did you mean `neumf`?"), "{err}");
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
                "model `sasrec` reads each user's items in time order: use split `leave_one_out` (or `fixed`, or `time`), whose held-out items are each user's latest",
            ),
            (
                "[split]\nkind = \"time\"\ncutoff = \"1998-03-01\"\n",
                "split time: give exactly one of valid_days and valid_cutoff",
            ),
            (
                "[split]\nkind = \"time\"\ncutoff = \"March 1998\"\nvalid_days = 14\n",
                "split time: cutoff \"March 1998\" is not a date (YYYY-MM-DD)",
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
            (
                "[eval]\nactivity_bands = [20, 5]\n",
                "eval.activity_bands must list the bands' upper ends, ascending from at least 1 \
                 (the default [5, 20] gives 1–5, 6–20 and 21+), got [20, 5]",
            ),
            (
                "[eval]\nactivity_bands = [0, 5]\n",
                "eval.activity_bands must list the bands' upper ends",
            ),
        ];
        for (text, expected) in cases {
            let err = chain(&RunConfig::from_toml(text, Path::new("c.toml")).unwrap_err());
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }

    fn parsed(text: &str) -> RunConfig {
        RunConfig::from_toml(text, Path::new("c.toml")).unwrap()
    }

    #[test]
    fn fingerprint_names_each_changed_key_with_both_values() {
        let was = parsed(
            "[data]\nformat = \"movielens100k\"\npath = \"/a/u.data\"\n[train]\nlearning_rate = 0.001\n",
        );
        let now = parsed(
            "[data]\nformat = \"movielens100k\"\npath = \"/b/u.data\"\n[train]\nlearning_rate = 0.01\npretrain_epochs = 3\n",
        );
        let changes = ConfigFingerprint::of(&was).changes(&ConfigFingerprint::of(&now));
        assert_eq!(
            changes,
            [
                "data.path was \"/a/u.data\", now \"/b/u.data\"",
                "train.learning_rate was 0.001, now 0.01",
                "train.pretrain_epochs was unset, now 3",
            ]
        );
    }

    #[test]
    fn fingerprint_leaves_out_what_cannot_change_a_result() {
        let was = parsed("name = \"a\"\noutput_dir = \"x\"\n[train]\ncheckpoint_every = 0\n");
        let now = parsed("name = \"b\"\noutput_dir = \"y\"\n[train]\ncheckpoint_every = 30\n");
        assert_eq!(ConfigFingerprint::of(&was), ConfigFingerprint::of(&now));
        let fingerprint = ConfigFingerprint::of(&was);
        assert_eq!(fingerprint.get("train.learning_rate"), Some("0.001"));
        assert_eq!(fingerprint.get("device"), Some("\"flex\""));
        assert_eq!(fingerprint.get("name"), None);
    }

    /// A resume compares the fingerprint recorded from the config in memory with one read back
    /// from config.toml: the TOML round trip must not change a value (f32 fields included).
    #[test]
    fn fingerprint_survives_the_toml_round_trip() {
        let config = parsed(
            "[data]\nformat = \"synthetic\"\n[data.synthetic]\ntaste = 0.3\n[model]\nkind = \"sasrec\"\ndropout = 0.3\n[train]\nlearning_rate = 0.0007\nfinetune_learning_rate = 1e-4\n[eval]\nextra_protocols = [{ kind = \"full_ranking\" }]\n",
        );
        let again = RunConfig::from_toml(&config.to_toml(), Path::new("x")).unwrap();
        let (was, now) = (
            ConfigFingerprint::of(&config),
            ConfigFingerprint::of(&again),
        );
        assert_eq!(was.changes(&now), Vec::<String>::new());
        assert_eq!(was, now);
        let taste: f64 = was.get("data.synthetic.taste").unwrap().parse().unwrap();
        assert!((taste - 0.3).abs() < 1e-7, "{taste}");
    }

    #[test]
    fn defaults_round_trip() {
        let config = RunConfig::default();
        let again = RunConfig::from_toml(&config.to_toml(), Path::new("x")).unwrap();
        assert_eq!(config, again);
    }
}
