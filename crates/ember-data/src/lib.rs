//! Interaction data for ember: read ([`DataSource`]), clean ([`Preprocess`]), split ([`Split`]),
//! sample negatives ([`sampling`]), and hand dense-id [`Dataset`]s to training.
//!
//! Data flows one way: a source yields [`Interactions`] with the file's own ids; preprocessing
//! filters them; the split maps ids to dense internal ids ([`IdMap`]) and holds out validation
//! and test items per user.

mod dataset;
mod encoding;
mod error;
mod ids;
mod inputs;
mod interactions;
mod preprocess;
pub mod sampling;
pub mod sequences;
mod source;
mod split;
pub mod synthetic;
mod text;
mod time_split;

pub use dataset::{Dataset, DatasetStats, SplitRatings, sorted_sets};
pub use encoding::Encoding;
pub use error::{DataError, Result};
pub use ids::IdMap;
pub use inputs::{InputFile, fingerprint, verify};
pub use interactions::{Interactions, TimeUnit};
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
    check_split(preprocess, split)?;
    prepare_loaded(source, preprocess, split, source.load()?)
}

/// [`prepare`], and the fingerprints of what it read, as [`DataSource::fingerprint`] gives
/// them: the files are fingerprinted before they are read, a query's rows as they are read
/// (so that the query runs once).
pub fn prepare_fingerprinted(
    source: &DataSource,
    preprocess: &Preprocess,
    split: &Split,
) -> Result<(Dataset, PreprocessStats, Vec<InputFile>)> {
    let files = source.fingerprint_files()?;
    check_split(preprocess, split)?;
    let mut loaded = source.load()?;
    let inputs = loaded.query_rows.take().map_or(files, |rows| vec![rows]);
    let (dataset, stats) = prepare_loaded(source, preprocess, split, loaded)?;
    Ok((dataset, stats, inputs))
}

/// Refuses a split that cannot be made, or cannot be made of preprocessed data.
fn check_split(preprocess: &Preprocess, split: &Split) -> Result<()> {
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
    Ok(())
}

/// Cleans and splits what `source` loaded.
fn prepare_loaded(
    source: &DataSource,
    preprocess: &Preprocess,
    split: &Split,
    loaded: Loaded,
) -> Result<(Dataset, PreprocessStats)> {
    let Loaded {
        mut interactions,
        fixed,
        time_unit,
        ..
    } = loaded;
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
