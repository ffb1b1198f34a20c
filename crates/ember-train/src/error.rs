use std::path::PathBuf;

use crate::config::ConfigError;

/// Why a run could not start or finish. Each variant names what failed; the cause, where there
/// is one, is its `source` (the command line prints the whole chain).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config file is unreadable or invalid.
    #[error("{}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: Box<ConfigError>,
    },
    /// The data could not be read or split.
    #[error(transparent)]
    Data(#[from] ember_data::DataError),
    /// The requested backend is not compiled into this binary.
    #[error("device `{name}` is not available in this build: {hint}")]
    Device {
        /// What was asked for.
        name: String,
        /// How to get it.
        hint: String,
    },
    /// Reading or writing a file or directory failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Saving or loading model weights failed.
    #[error("{}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What burn said.
        #[source]
        source: burn::store::RecordError,
    },
    /// Writing or reading an exported model failed.
    #[error("export")]
    Export(#[source] ember_infer::InferError),
    /// A chart (the learning curves) could not be drawn.
    #[error(transparent)]
    Chart(#[from] ember_charts::ChartError),
    /// A benchmark setting is invalid.
    #[error("bench: {0}")]
    Bench(String),
    /// The device failed.
    #[error("device error: {0}")]
    DeviceFailed(String),
    /// A checkpoint could not be read or written.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Training was stopped from outside (Ctrl-C, SIGTERM) after writing a checkpoint.
    #[error(
        "training stopped; its checkpoint is in {}: continue with `ember train --resume {}`",
        run_dir.display(),
        run_dir.display()
    )]
    Interrupted {
        /// The (partial) run directory holding the checkpoint.
        run_dir: PathBuf,
    },
    /// Training failed after a checkpoint was written: the run can go on once the cause (a
    /// full disk, a lost device) is fixed.
    #[error(
        "training failed; its last checkpoint is in {}: once the cause below is fixed, continue with `ember train --resume {}`",
        run_dir.display(),
        run_dir.display()
    )]
    Resumable {
        /// The (partial) run directory holding the checkpoint.
        run_dir: PathBuf,
        /// What failed.
        #[source]
        source: Box<TrainError>,
    },
    /// The run is complete, but its directory could not be given its final name.
    #[error(
        "the run is complete in {}, but renaming it to {} failed: once the cause below is fixed, `ember train --resume {}` finishes it",
        run_dir.display(),
        target.display(),
        run_dir.display()
    )]
    Unrenamed {
        /// The (partial) run directory, complete.
        run_dir: PathBuf,
        /// The name it was to take.
        target: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A run directory that cannot be resumed.
    #[error("cannot resume {}: {message}", run_dir.display())]
    Resume {
        /// The directory given.
        run_dir: PathBuf,
        /// Why not.
        message: String,
    },
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}: the loss is {loss}; lower train.learning_rate")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// The loss value.
        loss: f32,
    },
    /// The ranks of a distributed run hold different weights after an epoch (a bug, or ranks
    /// of different builds or data).
    #[error(
        "the ranks hold different weights after {stage} epoch {epoch} (fingerprints by rank: {prints}); every rank must run the same ember on the same data"
    )]
    ReplicasDiverged {
        /// The stage.
        stage: String,
        /// 1-based epoch.
        epoch: usize,
        /// Each rank's weights fingerprint, in hex.
        prints: String,
    },
    /// The model would not fit in the memory this process may use.
    #[error(transparent)]
    Memory(#[from] crate::memory::TooLarge),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }

    pub(crate) fn config(path: impl Into<PathBuf>) -> impl FnOnce(ConfigError) -> Self {
        let path = path.into();
        move |source| TrainError::Config {
            path,
            source: Box::new(source),
        }
    }
}
