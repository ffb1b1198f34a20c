//! Training and evaluation of ember models: the loop ([`Trainer`]), the evaluation driver
//! ([`EvaluationPlan`]), and the run directory ([`RunDir`]) that holds everything about a run.
//!
//! [`train`] is the whole job behind `ember train`: read and split the data, train with early
//! stopping on validation, evaluate the selected model once on test beside the popularity
//! baseline, and write the run directory.

pub mod adam;
pub mod batches;
pub mod bench;
mod config;
pub mod device;
pub mod epoch;
mod error;
pub mod evaluate;
pub mod export;
pub mod plot;
mod run_dir;
mod trainer;

pub use config::{ConfigError, EmbeddingGradient, EvalConfig, RunConfig, TrainConfig};
pub use device::Backend;
pub use epoch::{GradientSync, SingleDevice};
pub use error::TrainError;
pub use evaluate::{
    EvaluationPlan, HeldOut, ModelScorer, PlanError, Popularity, RatingPredictor, Scorer,
};
pub use run_dir::RunDir;
pub use trainer::{Fitted, Schedule, StepSettings, Trainer};

use burn::module::Module;
use burn::prelude::Device;
use ember_data::{Dataset, prepare};
use ember_metrics::MetricsReport;
use ember_models::{Input, ModelInit};
use serde_json::json;
use std::path::{Path, PathBuf};

/// File names inside a run directory.
pub mod files {
    /// The resolved config.
    pub const CONFIG: &str = "config.toml";
    /// External ids of users and items, indexed by internal id.
    pub const ID_MAPS: &str = "id_maps.json";
    /// Data set sizes and what preprocessing removed.
    pub const DATA: &str = "data.json";
    /// One JSON line per epoch.
    pub const EPOCHS: &str = "metrics.jsonl";
    /// Final metrics.
    pub const METRICS: &str = "metrics.json";
    /// Learning curves (training loss, validation metric) as SVG.
    pub const CURVES: &str = "curves.svg";
    /// The selected model's weights (burn's burnpack format).
    pub const WEIGHTS: &str = "model.bpk";
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Model name.
    pub model: String,
    /// Epoch chosen on validation.
    pub best_epoch: usize,
    /// Validation metrics of that epoch.
    pub valid: MetricsReport,
    /// Test metrics of the chosen model.
    pub test: MetricsReport,
    /// Test metrics of the popularity baseline, same candidates.
    pub popularity: MetricsReport,
    /// Test metrics of the model and of the baseline under each of `eval.extra_protocols`.
    pub extra: Vec<(MetricsReport, MetricsReport)>,
}

/// Options that do not change results.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Show progress bars.
    pub progress: bool,
}

/// What a model is built for on `data`, on `backend`, with `config`'s objective.
pub fn model_init<'a>(data: &'a Dataset, config: &RunConfig, backend: Backend) -> ModelInit<'a> {
    ModelInit {
        users: data.num_users(),
        items: data.num_items(),
        train: &data.train,
        dense: backend.dense_split(),
        pair_loss: config.train.loss,
        masks: backend.masks(),
    }
}

/// Checks that `config`'s model can be trained and evaluated on `data`: everything that needs
/// the data and not only the config, done before anything is written.
fn check_data(config: &RunConfig, data: &Dataset) -> Result<(), ConfigError> {
    let stats = data.stats();
    if stats.valid == 0 {
        return Err(ConfigError::NoValidation);
    }
    if stats.test == 0 {
        return Err(ConfigError::NoTest);
    }
    if config.model.input().predicts_ratings() {
        let model = config.model.name();
        let Some(ratings) = &data.ratings else {
            return Err(ConfigError::NoRatings(model));
        };
        // Rating models read 0 as "not rated".
        if ratings.train.iter().flatten().any(|&r| r <= 0.0) {
            return Err(ConfigError::RatingsNotPositive(model));
        }
    }
    Ok(())
}

/// Runs a whole training job described by `config` on `backend`.
pub fn train(
    config: &RunConfig,
    backend: Backend,
    options: RunOptions,
) -> Result<RunSummary, TrainError> {
    let config_error = TrainError::config("config");
    config.validate().map_err(config_error)?;
    let device = backend.device()?.autodiff();
    let (data, prep) = prepare(&config.data, &config.preprocess, &config.split)?;
    check_data(config, &data).map_err(TrainError::config("config"))?;
    let plan = EvaluationPlan::new(&data, &config.eval.protocol, config.seed)
        .map_err(|e| TrainError::config("config")(e.into()))?;
    // Drawn now, from the same data as the main plan: a protocol the data cannot serve fails
    // before training, not after.
    let extra_plans = config
        .eval
        .extra_protocols
        .iter()
        .map(|protocol| EvaluationPlan::new(&data, protocol, config.seed))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrainError::config("config")(ConfigError::ExtraPlan(e)))?;

    let mut run = RunDir::create(&config.output_dir, &config.name)?;
    run.write(files::CONFIG, &config.to_toml())?;
    let ids = json!({
        "users": (0..data.num_users() as u32).map(|u| data.user_ids.external(u)).collect::<Vec<_>>(),
        "items": (0..data.num_items() as u32).map(|i| data.item_ids.external(i)).collect::<Vec<_>>(),
    });
    run.write(files::ID_MAPS, &ids.to_string())?;
    let stats = data.stats();
    run.write(
        files::DATA,
        &serde_json::to_string_pretty(
            &json!({"source": config.data.describe(), "preprocess": prep, "dataset": stats}),
        )
        .expect("json"),
    )?;
    run.log(&format!(
        "data {}: {} users, {} items, {} train / {} valid / {} test interactions (density {:.4})",
        config.data.describe(),
        stats.users,
        stats.items,
        stats.train,
        stats.valid,
        stats.test,
        stats.density
    ));
    run.log(&format!(
        "device {backend}, model {}, seed {}",
        config.model.name(),
        config.seed
    ));

    let merged = config
        .train
        .refit
        .then(|| data.with_validation_in_training());
    let mut trainer = Trainer {
        config,
        data: &data,
        plan: &plan,
        device: device.clone(),
        run: &mut run,
        progress: options.progress,
        stage_prefix: "",
        curves: Vec::new(),
        sync: Box::new(SingleDevice),
        plan_chunk: config.train.embedding_gradient.plan_chunk(backend),
        adam_layout: backend.adam_layout(),
    };
    device.seed(config.seed);
    let selected = fit_stages(&mut trainer, &model_init(&data, config, backend), &|_| None)?;
    let fitted = match &merged {
        Some(merged) => {
            // The epoch counts are chosen; train again from scratch on training + validation data.
            trainer.data = merged;
            trainer.stage_prefix = "refit ";
            trainer.run.log("refit: training again on training + validation interactions with the chosen epoch counts");
            device.seed(config.seed);
            let chosen = selected.epochs;
            let epochs_of = |stage: &str| chosen.iter().find(|(s, _)| s == stage).map(|(_, e)| *e);
            let refit = fit_stages(
                &mut trainer,
                &model_init(merged, config, backend),
                &epochs_of,
            )?;
            Fitted {
                model: refit.fitted.model,
                ..selected.fitted
            }
        }
        None => selected.fitted,
    };
    let curves = plot::learning_curves(&trainer.curves, &config.eval.monitor);
    run.write(files::CURVES, &curves)?;
    // The data the final model was trained on (its popularity is the matching baseline).
    let data = merged.as_ref().unwrap_or(&data);
    let weights = run.path(files::WEIGHTS);
    fitted
        .model
        .clone()
        .save_file(&weights)
        .map_err(|source| TrainError::Weights {
            path: weights.clone(),
            source,
        })?;

    let input = config.model.input();
    let test_of = |plan| test_and_baseline(&fitted.model, input, data, plan, config, &device);
    let (test, popularity) = test_of(&plan);
    let extra: Vec<_> = extra_plans.iter().map(test_of).collect();
    let extra_json: Vec<_> = extra
        .iter()
        .map(|(test, popularity)| json!({"test": test, "popularity_test": popularity}))
        .collect();
    let metrics = json!({
        "model": config.model.name(),
        "best_epoch": fitted.best_epoch,
        "monitor": config.eval.monitor,
        "refit": config.train.refit,
        "validation": fitted.best_valid,
        "test": test,
        "popularity_test": popularity,
        "extra_protocols": extra_json,
    });
    run.write(
        files::METRICS,
        &serde_json::to_string_pretty(&metrics).expect("json"),
    )?;
    run.log(&format!(
        "best epoch {} (valid {} {:.4})",
        fitted.best_epoch,
        config.eval.monitor,
        fitted
            .best_valid
            .get(&config.eval.monitor)
            .unwrap_or(f64::NAN)
    ));
    let run_dir = run.finish()?;
    Ok(RunSummary {
        run_dir,
        model: config.model.name().into(),
        best_epoch: fitted.best_epoch,
        valid: fitted.best_valid,
        test,
        popularity,
        extra,
    })
}

/// The outcome of all stages of a model's training (NeuMF with pre-training has three).
struct Staged {
    fitted: Fitted,
    /// The epochs each stage kept, by stage name.
    epochs: Vec<(String, usize)>,
}

/// Trains the configured model, after the stages it starts from (NeuMF's GMF and MLP
/// pre-training) when it has any. `fixed(stage)` gives a stage's exact epoch count (refit);
/// `None` selects it on validation.
fn fit_stages(
    trainer: &mut Trainer,
    init: &ModelInit,
    fixed: &dyn Fn(&str) -> Option<usize>,
) -> Result<Staged, TrainError> {
    let config = trainer.config;
    let device = trainer.device.clone();
    let schedule = |stage: &str, max: usize| match fixed(stage) {
        Some(n) => Schedule::Fixed(n),
        None => Schedule::Select(max),
    };
    let epochs = config.train.epochs;
    let lr = config.train.learning_rate;
    let step = |seed, learning_rate, keep_initial| StepSettings {
        seed,
        learning_rate,
        keep_initial,
    };
    let mut kept = Vec::new();
    let (model, pretrained) = match config.model.pretraining() {
        Some(pretraining) => {
            let pre = config.train.pretrain_epochs.unwrap_or(epochs);
            let mut models = Vec::new();
            for (k, (stage, stage_config)) in pretraining.stages.into_iter().enumerate() {
                let fitted = trainer.fit(
                    stage_config.init(init, &device),
                    stage_config.input(),
                    stage,
                    schedule(stage, pre),
                    step(config.seed + 1 + k as u64, lr, false),
                )?;
                kept.push((stage.to_string(), fitted.best_epoch));
                models.push(fitted.model);
            }
            ((pretraining.assemble)(models), true)
        }
        None => (config.model.init(init, &device), false),
    };
    let name = config.model.name();
    // Fine-tuning a pre-trained model may use its own (smaller) learning rate.
    let final_lr = if pretrained {
        config.train.finetune_learning_rate.unwrap_or(lr)
    } else {
        lr
    };
    let fitted = trainer.fit(
        model,
        config.model.input(),
        name,
        schedule(name, epochs),
        step(config.seed, final_lr, pretrained),
    )?;
    kept.push((name.to_string(), fitted.best_epoch));
    Ok(Staged {
        fitted,
        epochs: kept,
    })
}

/// Test metrics of `model` and of its baseline on the same held-out data: popularity for
/// ranking models, each item's mean rating for rating models (RMSE, MAE).
fn test_and_baseline(
    model: &ember_models::Model,
    input: Input,
    data: &Dataset,
    plan: &EvaluationPlan,
    config: &RunConfig,
    device: &Device,
) -> (MetricsReport, MetricsReport) {
    let test = evaluate::evaluate_model(
        model,
        input,
        data,
        plan,
        HeldOut::Test,
        &config.eval,
        device,
    );
    let baseline = if input.predicts_ratings() {
        let mut baseline =
            evaluate::evaluate_ratings(&evaluate::item_mean_ratings(data), data, HeldOut::Test);
        baseline.protocol = format!("item-mean ratings, {}", baseline.protocol);
        baseline
    } else {
        let (ks, batch_users) = (&config.eval.ks, config.eval.batch_users);
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
}

/// Loads a run directory written by [`train`], with its model on `backend`.
pub fn load_run(run_dir: &Path, backend: Backend) -> Result<LoadedRun, TrainError> {
    let config = RunConfig::from_file(&run_dir.join(files::CONFIG))?;
    let device = backend.device()?;
    let (data, _) = prepare(&config.data, &config.preprocess, &config.split)?;
    // A refit model was trained on training + validation: so is its popularity baseline.
    let data = if config.train.refit {
        data.with_validation_in_training()
    } else {
        data
    };
    let weights = run_dir.join(files::WEIGHTS);
    let model = config
        .model
        .init(&model_init(&data, &config, backend), &device)
        .try_load_file(&weights)
        .map_err(|source| TrainError::Weights {
            path: weights.clone(),
            source,
        })?;
    Ok(LoadedRun {
        config,
        data,
        model,
    })
}

/// Evaluates a finished run on its test split under `protocol` (default: the run's own).
pub fn evaluate_run(
    run_dir: &Path,
    backend: Backend,
    protocol: Option<ember_metrics::Protocol>,
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
        .map_err(|e| TrainError::config(config_path)(e.into()))?;
    let device = backend.device()?;
    let config = RunConfig {
        eval: EvalConfig {
            protocol,
            ..run.config.eval.clone()
        },
        ..run.config.clone()
    };
    Ok(test_and_baseline(
        &run.model, input, &run.data, &plan, &config, &device,
    ))
}
