use std::path::PathBuf;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config file is unreadable or invalid.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong, with the nearest valid key where one was misspelt.
        message: String,
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
    /// Writing the run directory failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// Saving or loading model weights failed.
    #[error("{path}: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing an exported model failed.
    #[error("export: {0}")]
    Export(String),
    /// A benchmark setting is invalid, or the device failed during one.
    #[error("bench: {0}")]
    Bench(String),
    /// Training diverged (the loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}: the loss is {loss}; lower train.learning_rate")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// The loss value.
        loss: f32,
    },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |error| TrainError::Io { path, error }
    }
}
