use std::path::PathBuf;

/// Everything that can go wrong while reading, cleaning or splitting interaction data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A line of a text file does not have the expected shape.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// A configured column is not in the file.
    #[error("{path}: no column `{column}` (the file has: {available})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns the file has, comma-separated.
        available: String,
    },
    /// The file holds no interactions.
    #[error("{path}: no interactions (the file is empty or every line was filtered out)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// polars could not read the file.
    #[error("{}", path.display())]
    Reader {
        /// The file.
        path: PathBuf,
        /// What polars said.
        #[source]
        source: polars::error::PolarsError,
    },
    /// The data is readable but unusable with the chosen settings.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
