//! Training and evaluation of ember models: the loop ([`Trainer`]), the evaluation driver
//! ([`EvaluationPlan`]), and the run directory ([`RunDir`]) that holds everything about a run.
//!
//! [`train`] is the whole job behind `ember train`: read and split the data, train with early
//! stopping on validation, evaluate the selected model once on test beside the popularity
//! baseline, and write the run directory. [`resume`] continues one from its checkpoint.
//!
//! The modules, from the leaves up: [`collective`] (the ranks of a run and how they share
//! work) and [`params`] (walking a model's parameters); [`seeds`] (every seed of a run);
//! [`batches`] and [`epoch`] (an epoch's batches and its loop), [`adam`], [`evaluate`],
//! [`checkpoint`] (the files); the parts of a stage's training (early stopping, the
//! checkpointer, the epoch log, the stop signal) and the [`Trainer`] that loops over them;
//! the stage plan; and the run itself, which trains the plan's stages in order.

pub mod adam;
pub mod batches;
pub mod bench;
pub mod checkpoint;
mod checkpointer;
pub mod collective;
mod config;
pub mod device;
pub mod distributed;
mod early_stopping;
pub mod epoch;
mod epoch_log;
mod error;
pub mod evaluate;
pub mod export;
mod finished;
pub mod memory;
#[cfg(feature = "mpi")]
pub mod mpi_group;
pub mod params;
pub mod plot;
mod resuming;
mod run;
mod run_dir;
pub mod seeds;
mod stages;
mod stop;
mod trainer;
mod weighting;

pub use batches::HeldOut;
pub use checkpointer::{Fitted, Resume};
pub use collective::{GradientSync, Ranks, SingleDevice};
pub use config::{
    ConfigError, ConfigFingerprint, EmbeddingGradient, EvalConfig, RunConfig, TrainConfig,
};
pub use device::Backend;
pub use error::TrainError;
pub use evaluate::{EvaluationPlan, ModelScorer, PlanError, Popularity, RatingPredictor, Scorer};
pub use finished::{LoadedRun, evaluate_run, load_run};
pub use run::{resume, train};
pub use run_dir::{RunDir, RunLock};
pub use stages::model_init;
pub use trainer::{Schedule, StageRun, StepSettings, Trainer};

use ember_metrics::MetricsReport;
use std::path::PathBuf;

/// File names inside a run directory.
pub mod files {
    /// The resolved config.
    pub const CONFIG: &str = "config.toml";
    /// External ids of users and items, indexed by internal id.
    pub const ID_MAPS: &str = "id_maps.json";
    /// Data set sizes and what preprocessing removed.
    pub const DATA: &str = "data.json";
    /// The input files, by absolute path, with their sizes and hashes at training time.
    pub const INPUTS: &str = "inputs.json";
    /// One JSON line per epoch.
    pub const EPOCHS: &str = "metrics.jsonl";
    /// Final metrics.
    pub const METRICS: &str = "metrics.json";
    /// Learning curves (training loss, validation metric) as PNG.
    pub const CURVES: &str = "curves.png";
    /// The selected model's weights (burn's burnpack format).
    pub const WEIGHTS: &str = "model.bpk";
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Model name.
    pub model: String,
    /// Epoch chosen on validation.
    pub best_epoch: usize,
    /// Validation metrics of that epoch.
    pub valid: MetricsReport,
    /// Test metrics of the chosen model.
    pub test: MetricsReport,
    /// Test metrics of the popularity baseline, same candidates.
    pub popularity: MetricsReport,
    /// Test metrics of the model and of the baseline under each of `eval.extra_protocols`.
    pub extra: Vec<(MetricsReport, MetricsReport)>,
}

/// Options that do not change results.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show progress bars.
    pub progress: bool,
    /// When set (by a Ctrl-C or SIGTERM handler), training stops after the current batch with a
    /// checkpoint, and [`train`] returns [`TrainError::Interrupted`].
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The ranks of a data-parallel run (one process by default). Every rank calls [`train`]
    /// or [`resume`] with the same arguments; rank 0 alone writes the run directory.
    pub ranks: Ranks,
    /// The most memory the run may use, in bytes (`--max-memory`), instead of the limits
    /// [`memory::available`] reads.
    pub max_memory: Option<u64>,
}
