//! Interaction weights in a run: the data prepared with them (`[data] weight`, `[weights]`),
//! kept only for a model that uses them, and the line that says what the model made of them.

use ember_data::{
    Dataset, InputFile, PreprocessStats, RunAttributes, Weights, prepare_fingerprinted,
};
use ember_models::WeightUse;

use crate::{RunConfig, TrainError};

impl RunConfig {
    /// How the run weights interactions: its `[weights]` table, or the defaults when only
    /// `[data] weight` names a column; `None` for an unweighted run.
    pub fn weighting(&self) -> Option<Weights> {
        self.weights
            .clone()
            .or_else(|| self.data.has_weight_column().then(Weights::default))
    }

    /// What the model makes of the weights, for the log and `metrics.json`; `None` for an
    /// unweighted run. A model that ignores them says so rather than training silently as if
    /// they were not there.
    pub fn weights_note(&self) -> Option<String> {
        let weights = self.weighting()?;
        Some(match self.model.weight_use() {
            WeightUse::Confidence => format!(
                "{}, each positive's loss term times its confidence (confidences averaging 1 over the training interactions)",
                weights.describe()
            ),
            WeightUse::Counts => format!(
                "{}: the counts of each user's row (input and multinomial target); the confidence is not used",
                weights.describe()
            ),
            WeightUse::Ignored => format!("ignored by {}", self.model.name()),
        })
    }
}

/// What a run reads: its data (read, cleaned and split), the preprocessing's counts, the
/// fingerprints of every input (the attribute tables' included), and the attributes.
pub(crate) struct RunData {
    pub(crate) data: Dataset,
    pub(crate) preprocess: PreprocessStats,
    pub(crate) inputs: Vec<InputFile>,
    pub(crate) attributes: RunAttributes,
}

/// Reads, cleans and splits the run's data, with its weights when the run has them and the
/// model uses them ([`Dataset::weights`] is `None` otherwise), then its attribute tables for
/// the users and items it kept; and the fingerprints of what it read.
pub(crate) fn prepare_run_data(config: &RunConfig) -> Result<RunData, TrainError> {
    config.data.check_attributes()?;
    let weights = config.weighting();
    let (mut data, preprocess, mut inputs) = prepare_fingerprinted(
        &config.data,
        &config.preprocess,
        &config.split,
        weights.as_ref(),
    )?;
    if config.model.weight_use() == WeightUse::Ignored {
        data.weights = None;
    }
    let attributes = config
        .data
        .load_attributes(&data.user_ids, &data.item_ids)?;
    inputs.extend(
        [&attributes.users, &attributes.items]
            .into_iter()
            .flatten()
            .map(|a| a.input.clone()),
    );
    Ok(RunData {
        data,
        preprocess,
        inputs,
        attributes,
    })
}

/// Each training interaction's confidence (averaging 1), for a pair model of a weighted run.
pub(crate) fn confidences(data: &Dataset, weights: Option<&Weights>) -> Option<Vec<Vec<f32>>> {
    Some(weights?.confidences(&data.weights.as_ref()?.train))
}
