//! Interaction data for ember: read ([`DataSource`]), clean ([`Preprocess`]), split ([`Split`]),
//! sample negatives ([`sampling`]), and hand dense-id [`Dataset`]s to training.
//!
//! Data flows one way: a source yields [`Interactions`] with the file's own ids; preprocessing
//! filters them; the split maps ids to dense internal ids ([`IdMap`]) and holds out validation
//! and test items per user.

mod dataset;
mod error;
mod ids;
mod inputs;
mod interactions;
pub mod keys;
mod preprocess;
pub mod sampling;
pub mod sequences;
mod source;
mod split;
pub mod synthetic;
mod text;
mod time_split;

pub use dataset::{Dataset, DatasetStats, SplitRatings, sorted_sets};
pub use error::{DataError, Result};
pub use ids::IdMap;
pub use inputs::{InputFile, fingerprint, verify};
pub use interactions::{Interactions, TimeUnit};
pub use keys::KeyDictionary;
pub use preprocess::{Preprocess, PreprocessStats};
pub use source::postgres::{EpochUnit, PostgresError};
pub use source::{Column, DataSource, Loaded};
pub use split::{FixedTest, Split};
pub use synthetic::SyntheticConfig;
pub use time_split::{TimeSplit, TimeSplitStats};

/// Reads, cleans and splits: the whole data pipeline in one call.
pub fn prepare(
    source: &DataSource,
    preprocess: &Preprocess,
    split: &Split,
) -> Result<(Dataset, PreprocessStats)> {
    split.validate()?;
    if *split == Split::Fixed
        && (preprocess.implicit_threshold.is_some()
            || preprocess.min_user_interactions > 1
            || preprocess.min_item_interactions > 1)
    {
        // They would filter the training file only, leaving test users and items untrained.
        return Err(DataError::Invalid(
            "split `fixed` keeps the source's own test files: preprocess.implicit_threshold and k-core filtering cannot be used with it".into(),
        ));
    }
    let Loaded {
        mut interactions,
        fixed,
        time_unit,
    } = source.load()?;
    let (stats, dropped) = preprocess.apply_keeping_dropped(&mut interactions)?;
    if interactions.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: preprocessing removed every interaction (read {}, below threshold {}, k-core {})",
            source.describe(),
            stats.read,
            stats.below_threshold,
            stats.k_core
        )));
    }
    let mut dataset = split.apply_with_time_unit(&interactions, fixed.as_ref(), time_unit)?;
    dataset.set_known(&[&interactions, &dropped], fixed.as_ref(), time_unit);
    Ok((dataset, stats))
}
