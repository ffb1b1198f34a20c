//! Training and evaluation of ember models: the loop ([`Trainer`]), the evaluation driver
//! ([`EvaluationPlan`]), and the run directory ([`RunDir`]) that holds everything about a run.
//!
//! [`train`] is the whole job behind `ember train`: read and split the data, train with early
//! stopping on validation, evaluate the selected model once on test beside the popularity
//! baseline, and write the run directory.

pub mod adam;
pub mod bench;
mod config;
pub mod device;
mod error;
pub mod evaluate;
pub mod export;
pub mod plot;
mod run_dir;
mod trainer;

pub use config::{EmbeddingGradient, EvalConfig, RunConfig, TrainConfig};
pub use error::TrainError;
pub use evaluate::{EvaluationPlan, HeldOut, ModelScorer, Popularity, RatingPredictor, Scorer};
pub use run_dir::RunDir;
pub use trainer::{Fitted, GradientSync, Schedule, SingleDevice, StepSettings, Trainer};

use burn::module::Module;
use ember_data::{Dataset, prepare};
use ember_metrics::MetricsReport;
use ember_models::{Model, ModelConfig};
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

/// Runs a whole training job described by `config` on the backend `device_name`.
pub fn train(
    config: &RunConfig,
    device_name: &str,
    options: RunOptions,
) -> Result<RunSummary, TrainError> {
    config.validate().map_err(|message| TrainError::Config {
        path: PathBuf::from("config"),
        message,
    })?;
    let device = device::device(device_name)?.autodiff();
    let (groups, min_rows) = device::default_split_k(device_name);
    ember_models::layers::set_split_k(groups, min_rows);
    let (data, prep) = prepare(&config.data, &config.preprocess, &config.split)?;
    let plan =
        EvaluationPlan::new(&data, &config.eval.protocol, config.seed).map_err(|message| {
            TrainError::Config {
                path: PathBuf::from("config"),
                message,
            }
        })?;
    // Drawn now, from the same data as the main plan: a protocol the data cannot serve fails
    // before training, not after.
    let extra_plans = config
        .eval
        .extra_protocols
        .iter()
        .map(|protocol| EvaluationPlan::new(&data, protocol, config.seed))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| TrainError::Config {
            path: PathBuf::from("config"),
            message: format!("eval.extra_protocols: {message}"),
        })?;

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
        "device {device_name}, model {}, seed {}",
        config.model.name(),
        config.seed
    ));

    let stats_check = data.stats();
    if stats_check.valid == 0 {
        return Err(TrainError::Config {
            path: PathBuf::from("config"),
            message: "the split leaves no validation interactions, which choose the epoch: use a split with validation (leave_one_out needs users with 3+ interactions)".into(),
        });
    }
    if stats_check.test == 0 {
        return Err(TrainError::Config {
            path: PathBuf::from("config"),
            message: "the split leaves no test interactions".into(),
        });
    }
    // AutoRec reads 0 as "not rated".
    if config.model.predicts_ratings()
        && let Some(ratings) = &data.ratings
        && ratings.train.iter().flatten().any(|&r| r <= 0.0)
    {
        return Err(TrainError::Config {
            path: PathBuf::from("config"),
            message: format!(
                "model `{}` reads 0 as a missing rating, and the data has ratings <= 0: shift the scale to start above 0",
                config.model.name()
            ),
        });
    }
    if config.model.predicts_ratings() && data.ratings.is_none() {
        return Err(TrainError::Config {
            path: PathBuf::from("config"),
            message: format!(
                "model `{}` predicts ratings, and the data has none: use a source with a rating column, no implicit_threshold, and a split other than `fixed`",
                config.model.name()
            ),
        });
    }
    let (users, items) = (data.num_users(), data.num_items());
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
        plan_chunk: config.train.embedding_gradient.plan_chunk(device_name),
        adam_layout: adam::AdamLayout::for_backend(device_name),
    };
    device.seed(config.seed);
    let selected = fit_stages(&mut trainer, users, items, &|_| None)?;
    let fitted = match &merged {
        Some(merged) => {
            // The epoch counts are chosen; train again from scratch on training + validation data.
            trainer.data = merged;
            trainer.stage_prefix = "refit ";
            trainer.run.log("refit: training again on training + validation interactions with the chosen epoch counts");
            device.seed(config.seed);
            let chosen = selected.epochs;
            let epochs_of = |stage: &str| chosen.iter().find(|(s, _)| s == stage).map(|(_, e)| *e);
            let refit = fit_stages(&mut trainer, users, items, &epochs_of)?;
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
        .map_err(|e| TrainError::Weights {
            path: weights.clone(),
            message: e.to_string(),
        })?;

    let (test, popularity) = test_and_baseline(&fitted.model, data, &plan, config, &device);
    let extra: Vec<_> = extra_plans
        .iter()
        .map(|plan| test_and_baseline(&fitted.model, data, plan, config, &device))
        .collect();
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

/// Trains the configured model, with NeuMF's GMF and MLP pre-training stages when asked.
/// `fixed(stage)` gives a stage's exact epoch count (refit); `None` selects it on validation.
fn fit_stages(
    trainer: &mut Trainer,
    users: usize,
    items: usize,
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
    let mut pretrained = false;
    let model = match &config.model {
        ModelConfig::NeuMf(neumf) if neumf.pretrain => {
            let pre = config.train.pretrain_epochs.unwrap_or(epochs);
            let gmf = trainer.fit(
                Model::Gmf(neumf.gmf().init(users, items, &device)),
                "gmf",
                schedule("gmf", pre),
                step(config.seed + 1, lr, false),
            )?;
            let mlp = trainer.fit(
                Model::Mlp(neumf.mlp().init(users, items, &device)),
                "mlp",
                schedule("mlp", pre),
                step(config.seed + 2, lr, false),
            )?;
            kept.push(("gmf".to_string(), gmf.best_epoch));
            kept.push(("mlp".to_string(), mlp.best_epoch));
            let (Model::Gmf(gmf), Model::Mlp(mlp)) = (gmf.model, mlp.model) else {
                unreachable!("fit returns its input kind")
            };
            pretrained = true;
            Model::NeuMf(neumf.from_pretrained(gmf, mlp))
        }
        other => other.init(users, items, &device),
    };
    let name = config.model.name();
    // Fine-tuning a pre-trained NeuMF may use its own (smaller) learning rate.
    let final_lr = if pretrained {
        config.train.finetune_learning_rate.unwrap_or(lr)
    } else {
        lr
    };
    let fitted = trainer.fit(
        model,
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
    model: &Model,
    data: &Dataset,
    plan: &EvaluationPlan,
    config: &RunConfig,
    device: &burn::prelude::Device,
) -> (MetricsReport, MetricsReport) {
    if let ember_models::ModelKind::Ratings(_) = model.kind() {
        let predictor = evaluate::RatingPredictor::new(model, data, device);
        let test = evaluate::evaluate_ratings(&|p| predictor.predict(p), data, HeldOut::Test);
        let mut baseline =
            evaluate::evaluate_ratings(&evaluate::item_mean_ratings(data), data, HeldOut::Test);
        baseline.protocol = format!("item-mean ratings, {}", baseline.protocol);
        return (test, baseline);
    }
    let (ks, batch_users) = (&config.eval.ks, config.eval.batch_users);
    let test = plan.evaluate(
        &ModelScorer::new(model, data, device, HeldOut::Test),
        data,
        HeldOut::Test,
        ks,
        batch_users,
    );
    let popularity = plan.evaluate(&Popularity::fit(data), data, HeldOut::Test, ks, batch_users);
    (test, popularity)
}

/// A finished run loaded back: its config, data and selected model.
pub struct LoadedRun {
    /// The run's resolved config.
    pub config: RunConfig,
    /// The data, prepared again from the config (deterministic).
    pub data: Dataset,
    /// The selected model.
    pub model: Model,
}

/// Loads a run directory written by [`train`].
pub fn load_run(run_dir: &Path, device_name: &str) -> Result<LoadedRun, TrainError> {
    let config = RunConfig::from_file(&run_dir.join(files::CONFIG))?;
    let device = device::device(device_name)?;
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
        .init(data.num_users(), data.num_items(), &device)
        .try_load_file(&weights)
        .map_err(|e| TrainError::Weights {
            path: weights.clone(),
            message: e.to_string(),
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
    device_name: &str,
    protocol: Option<ember_metrics::Protocol>,
) -> Result<(MetricsReport, MetricsReport), TrainError> {
    let run = load_run(run_dir, device_name)?;
    if protocol.is_some() && run.config.model.predicts_ratings() {
        return Err(TrainError::Config {
            path: run_dir.join(files::CONFIG),
            message: format!(
                "model `{}` predicts ratings, evaluated by RMSE and MAE: a ranking protocol does not apply",
                run.config.model.name()
            ),
        });
    }
    let protocol = protocol.unwrap_or_else(|| run.config.eval.protocol.clone());
    let plan = EvaluationPlan::new(&run.data, &protocol, run.config.seed).map_err(|message| {
        TrainError::Config {
            path: run_dir.join(files::CONFIG),
            message,
        }
    })?;
    let device = device::device(device_name)?;
    let config = RunConfig {
        eval: EvalConfig {
            protocol,
            ..run.config.eval.clone()
        },
        ..run.config.clone()
    };
    Ok(test_and_baseline(
        &run.model, &run.data, &plan, &config, &device,
    ))
}
