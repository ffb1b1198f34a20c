use std::path::PathBuf;

/// Everything that can go wrong while reading, cleaning or splitting interaction data.
///
/// Text taken from a data file (a field, a header name, a column name, the Parquet reader's
/// own message) reaches these messages only through `text::shown`: control and escape
/// characters escaped, long values cut. `docs/bad-inputs.md` lists every bad input and its
/// message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The path names a directory, a device, a pipe or a socket: ember reads a data file more
    /// than once (an endless device such as `/dev/zero` was hashed forever).
    #[error(
        "{}: this is {kind}, not a regular file: ember reads its data from a file, more than once (to fingerprint it, to parse it, and later to check that it is unchanged)",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead (`a directory`, `a character device`, …).
        kind: &'static str,
    },
    /// An input file is not what it was when the run was trained.
    #[error(
        "{}: the data changed since the run was trained (then {was}; now {now}): restore the file, or train a new run on the new data",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// Its size and hash then.
        was: String,
        /// Its size and hash now, or that it is missing.
        now: String,
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
    #[error("{path}: no column `{column}` (the file has: {available}){hint}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns the file has, comma-separated.
        available: String,
        /// Empty, or a suggestion starting with `; ` (e.g. a different separator).
        hint: String,
    },
    /// A column of a Parquet file has a type that cannot hold what it was asked for.
    #[error("{path}: column `{column}` holds {found}: expected {expected}")]
    ColumnType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its type, in words.
        found: String,
        /// What ember reads from it.
        expected: String,
    },
    /// A value of a Parquet column is not what ember reads from it.
    #[error("{path}: column `{column}`, row {row}: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// 1-based row number.
        row: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The file holds no interactions.
    #[error("{path}: no interactions (the file is empty or every line was filtered out)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// polars could not read the (Parquet) file.
    #[error("{path}: not a readable Parquet file: {message}")]
    Reader {
        /// The file.
        path: PathBuf,
        /// What polars said, escaped and cut.
        message: String,
    },
    /// Reading from PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] crate::source::postgres::PostgresError),
    /// The data is readable but unusable with the chosen settings.
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
