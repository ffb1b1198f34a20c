//! Decisions on exported ember models: the layer between a model's scores and what a business
//! does with them, running wherever inference runs (ember-infer; no burn, no polars).
//!
//! - [`exclusion`]: the exclusion policy (what a customer already has that decisions leave
//!   out: every known interaction by default, none, or those since a date), read and named.
//! - [`batch`]: recommendations for every (or every listed) customer, streamed to CSV in
//!   chunks, leaving out what each customer has and a suppression list.
//! - [`campaign`]: who gets an item's campaign (an audience of those who do not have it,
//!   ranked by propensity, within a budget, with a seeded random control group), how large
//!   the groups must be ([`campaign::power_check`]), what the targeting is worth on held-out
//!   interactions (gains and lift against random targeting and against sending to everyone),
//!   and, after the campaign, what it did ([`campaign::measure`]: lift with intervals and a
//!   p-value).
//! - [`segments`]: customer segments from the model's user vectors (k-means++, k chosen by
//!   silhouette, a 2-D map, profiles and outliers); the numeric toolkit they are made with
//!   (standardising, k-means++, silhouette, PCA by Jacobi rotations) is [`numeric`].
//! - [`nba`]: the next best action per customer from an actions table, eligibility rules and
//!   contact history.
//!
//! Everything is deterministic: randomness comes from [`rng::Rng`] with a seed the caller
//! gives. The statistics are in [`stats`], each method with its formula and source. Input
//! files are CSV with a header; a bad file is a [`DecideError::Input`] naming the file, the
//! line and what was expected, never a panic.

#![deny(missing_docs)]

pub mod batch;
pub mod campaign;
pub mod destination;
pub mod exclusion;
pub mod names;
pub mod nba;
pub mod numeric;
pub mod propensity;
pub mod rng;
pub mod segments;
pub mod stats;
mod table;

pub use destination::{Destination, OutputKind};
pub use ember_infer::{
    Because, ExportedModel, InferError, Key, KeyKind, Known, Options, Recommendation, sha256,
};
pub use exclusion::{describe_exclusion, parse_exclusion};
pub use names::{ItemNames, label};
pub use table::{AtomicFile, format_day, parse_day};

use std::path::{Path, PathBuf};

/// Errors of making a decision: reading inputs, querying the model, writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// An input file holds something unusable.
    #[error("{path}:{line}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// The line (1-based; the header is line 1).
        line: usize,
        /// What was expected, and what was found.
        message: String,
    },
    /// The model refused a query (an unknown id, a query its kind cannot answer).
    #[error(transparent)]
    Model(#[from] InferError),
    /// An option or a combination of inputs that cannot be used, named as the caller set it.
    #[error("{0}")]
    Invalid(String),
}

impl DecideError {
    /// A closure turning an I/O error on `path` into a [`DecideError::Io`].
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DecideError + '_ {
        move |source| DecideError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A [`DecideError::Input`].
    pub(crate) fn input(path: &Path, line: usize, message: impl Into<String>) -> DecideError {
        DecideError::Input {
            path: path.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// Reads a list of keys of `kind` (the model's, for what `column` names: `user`, `item`) from
/// the column `column` of the CSV file `path` (a list of customers, a suppression list of
/// items); a key of the other kind is an error naming its line.
pub fn read_ids(path: &Path, column: &'static str, kind: KeyKind) -> Result<Vec<Key>, DecideError> {
    let mut reader = table::CsvReader::open(path, &[column], &[])?;
    let whose = format!("{column}s");
    let mut ids = Vec::new();
    while let Some(record) = reader.next_record() {
        ids.push(record?.key(column, kind, &whose)?);
    }
    Ok(ids)
}

/// `because` items as one CSV field: item ids separated by `;`, strongest first.
pub(crate) fn because_field(because: &[Because]) -> String {
    because
        .iter()
        .map(|b| b.item.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// A float for a CSV field: shortest round-trip form.
pub(crate) fn number(x: f64) -> String {
    format!("{x}")
}
