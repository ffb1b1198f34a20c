//! Interaction data for ember: read ([`DataSource`]), clean ([`Preprocess`]), split ([`Split`]),
//! sample negatives ([`sampling`]), and hand dense-id [`Dataset`]s to training.
//!
//! Data flows one way: a source yields [`Interactions`] with the file's own ids; preprocessing
//! filters them; the split maps ids to dense internal ids ([`IdMap`]) and holds out validation
//! and test items per user.

pub mod attributes;
mod data_config;
mod dataset;
mod encoding;
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
mod weights;

pub use attributes::{AttributeTable, Coverage, LoadedAttributes, Side};
pub use data_config::{DataConfig, RunAttributes};
pub use dataset::{Dataset, DatasetStats, SplitRatings, SplitWeights, sorted_sets};
pub use encoding::Encoding;
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
pub use weights::{Confidence, WeightSource, Weights};

/// Reads, cleans and splits: the whole data pipeline in one call, without weights (a weight
/// column the source names is not kept).
pub fn prepare(
    source: &DataSource,
    preprocess: &Preprocess,
    split: &Split,
) -> Result<(Dataset, PreprocessStats)> {
    prepare_weighted(source, preprocess, split, None)
}

/// [`prepare`], with each interaction's weight (summed over a repeated pair) when `weights`
/// says where to read it from ([`Dataset::weights`]).
pub fn prepare_weighted(
    source: &DataSource,
    preprocess: &Preprocess,
    split: &Split,
    weights: Option<&Weights>,
) -> Result<(Dataset, PreprocessStats)> {
    check_split(preprocess, split, weights)?;
    prepare_loaded(source, preprocess, split, weights, source.load()?)
}

/// [`prepare_weighted`], and the fingerprints of what it read, as [`DataSource::fingerprint`]
/// gives them: the files are fingerprinted before they are read, a query's rows as they are
/// read (so that the query runs once).
pub fn prepare_fingerprinted(
    source: &DataSource,
    preprocess: &Preprocess,
    split: &Split,
    weights: Option<&Weights>,
) -> Result<(Dataset, PreprocessStats, Vec<InputFile>)> {
    let files = source.fingerprint_files()?;
    check_split(preprocess, split, weights)?;
    let mut loaded = source.load()?;
    let inputs = loaded.query_rows.take().map_or(files, |rows| vec![rows]);
    let (dataset, stats) = prepare_loaded(source, preprocess, split, weights, loaded)?;
    Ok((dataset, stats, inputs))
}

/// Refuses a split (or weights) that cannot be made, or cannot be made of preprocessed data.
fn check_split(preprocess: &Preprocess, split: &Split, weights: Option<&Weights>) -> Result<()> {
    split.validate()?;
    if let Some(weights) = weights {
        weights.validate()?;
    }
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
    weights: Option<&Weights>,
    loaded: Loaded,
) -> Result<(Dataset, PreprocessStats)> {
    let Loaded {
        mut interactions,
        fixed,
        time_unit,
        ..
    } = loaded;
    match weights {
        Some(weights) => weights.fill(&mut interactions, &source.describe())?,
        None => interactions.weights = None,
    }
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
    let mut stats = stats;
    if preprocess.drop_unseen_test_items {
        stats.unseen_held_out = dataset.drop_unseen_held_out_items();
    }
    Ok((dataset, stats))
}
