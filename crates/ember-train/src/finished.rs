//! A finished run read back: its selected model on its data, checked against the input files
//! it was trained on, and its test metrics beside its baseline's.

use burn::module::Module;
use burn::prelude::Device;
use ember_data::Dataset;
use ember_metrics::MetricsReport;
use ember_models::Input;
use std::path::Path;

use crate::collective::{Collective, Ranks};
use crate::evaluate::{self, EvaluationPlan, Popularity};
use crate::stages::model_init;
use crate::{Backend, ConfigError, EvalConfig, HeldOut, RunConfig, TrainError, files};

/// Checks that the files a run was trained on are unchanged (`inputs.json`; runs written
/// before it existed are not checked).
pub(crate) fn check_inputs(run_dir: &Path) -> Result<(), TrainError> {
    let path = run_dir.join(files::INPUTS);
    if !path.exists() {
        return Ok(());
    }
    ember_data::verify(&read_inputs(&path)?)?;
    Ok(())
}

/// The input files an `inputs.json` lists.
pub(crate) fn read_inputs(path: &Path) -> Result<Vec<ember_data::InputFile>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::io(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Test metrics of `model` and of its baseline on the same held-out data: popularity for
/// ranking models, each item's mean rating for rating models (RMSE, MAE).
pub(crate) fn test_and_baseline(
    model: &ember_models::Model,
    input: Input,
    data: &Dataset,
    plan: &EvaluationPlan,
    eval: &EvalConfig,
    device: &Device,
    ranks: &dyn Collective,
) -> (MetricsReport, MetricsReport) {
    let test =
        evaluate::evaluate_model(model, input, data, plan, HeldOut::Test, eval, device, ranks);
    let baseline = if input.predicts_ratings() {
        let mut baseline =
            evaluate::evaluate_ratings(&evaluate::item_mean_ratings(data), data, HeldOut::Test);
        baseline.protocol = format!("item-mean ratings, {}", baseline.protocol);
        baseline
    } else {
        let (ks, batch_users) = (&eval.ks, eval.users_per_batch(data.num_items()));
        plan.evaluate(&Popularity::fit(data), data, HeldOut::Test, ks, batch_users)
    };
    (test, baseline)
}

/// A finished run loaded back: its config, data and selected model.
pub struct LoadedRun {
    /// The run's resolved config.
    pub config: RunConfig,
    /// The data, prepared again from the config (deterministic).
    pub data: Dataset,
    /// The selected model.
    pub model: ember_models::Model,
    /// The users' and items' attributes (`[data.users]`, `[data.items]`), read again.
    pub attributes: ember_data::RunAttributes,
}

/// Loads a run directory written by [`crate::train`], with its model on `backend`.
pub fn load_run(run_dir: &Path, backend: Backend) -> Result<LoadedRun, TrainError> {
    let config = RunConfig::from_file(&run_dir.join(files::CONFIG))?;
    check_inputs(run_dir)?;
    let device = backend.device()?;
    let crate::weighting::RunData {
        data, attributes, ..
    } = crate::weighting::prepare_run_data(&config)?;
    // A refit model was trained on training + validation: so is its popularity baseline.
    let data = if config.train.refit {
        data.with_validation_in_training()
    } else {
        data
    };
    let weights = run_dir.join(files::WEIGHTS);
    let model = config
        .model
        .init(&model_init(&data, config.train.loss, backend), &device)
        .try_load_file(&weights)
        .map_err(|source| TrainError::Weights {
            path: weights.clone(),
            source,
        })?;
    Ok(LoadedRun {
        config,
        data,
        model,
        attributes,
    })
}

/// Evaluates a finished run on its test split under `protocol` (default: the run's own),
/// with the users shared among `ranks` (each gets the whole report).
pub fn evaluate_run(
    run_dir: &Path,
    backend: Backend,
    protocol: Option<ember_metrics::Protocol>,
    ranks: &Ranks,
) -> Result<(MetricsReport, MetricsReport), TrainError> {
    let run = load_run(run_dir, backend)?;
    let config_path = run_dir.join(files::CONFIG);
    let input = run.config.model.input();
    if protocol.is_some() && input.predicts_ratings() {
        return Err(TrainError::config(config_path)(
            ConfigError::RankingOfRatings(run.config.model.name()),
        ));
    }
    let protocol = protocol.unwrap_or_else(|| run.config.eval.protocol.clone());
    let plan = EvaluationPlan::new(&run.data, &protocol, run.config.seed)
        .map_err(|e| TrainError::config(config_path)(e.into()))?
        .with_activity_bands(&run.data, &run.config.eval.activity_bands);
    let device = backend.device()?;
    Ok(test_and_baseline(
        &run.model,
        input,
        &run.data,
        &plan,
        &run.config.eval,
        &device,
        ranks.collective(),
    ))
}
