//! Training and evaluation of ember models: the loop ([`Trainer`]), the evaluation driver
//! ([`EvaluationPlan`]), and the run directory ([`RunDir`]) that holds everything about a run.
//!
//! [`train`] is the whole job behind `ember train`: read and split the data, train with early
//! stopping on validation, evaluate the selected model once on test beside the popularity
//! baseline, and write the run directory.

pub mod adam;
pub mod batches;
pub mod bench;
pub mod checkpoint;
pub mod collective;
mod config;
pub mod device;
pub mod distributed;
pub mod epoch;
mod error;
pub mod evaluate;
pub mod export;
#[cfg(feature = "mpi")]
pub mod mpi_group;
pub mod params;
pub mod plot;
mod run_dir;
pub mod seeds;
mod trainer;

pub use batches::HeldOut;
pub use collective::{GradientSync, Ranks, SingleDevice};
pub use config::{
    ConfigError, ConfigFingerprint, EmbeddingGradient, EvalConfig, RunConfig, TrainConfig,
};
pub use device::Backend;
pub use error::TrainError;
pub use evaluate::{EvaluationPlan, ModelScorer, PlanError, Popularity, RatingPredictor, Scorer};
pub use run_dir::{RunDir, RunLock};
pub use trainer::{Fitted, Resume, Schedule, StepSettings, Trainer};

use burn::module::Module;
use burn::prelude::Device;
use ember_data::{Dataset, prepare};
use ember_metrics::MetricsReport;
use ember_models::{Input, ModelConfig, ModelInit};
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
    /// The input files, by absolute path, with their sizes and hashes at training time.
    pub const INPUTS: &str = "inputs.json";
    /// One JSON line per epoch.
    pub const EPOCHS: &str = "metrics.jsonl";
    /// Final metrics.
    pub const METRICS: &str = "metrics.json";
    /// Learning curves (training loss, validation metric) as PNG.
    pub const CURVES: &str = "curves.png";
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
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show progress bars.
    pub progress: bool,
    /// When set (by a Ctrl-C or SIGTERM handler), training stops after the current batch with a
    /// checkpoint, and [`train`] returns [`TrainError::Interrupted`].
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The ranks of a data-parallel run (one process by default). Every rank calls [`train`]
    /// or [`resume`] with the same arguments; rank 0 alone writes the run directory.
    pub ranks: Ranks,
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

/// One stage of a run: a model trained on its own schedule. A run has one stage, or NeuMF's
/// GMF and MLP pre-training stages and then NeuMF; with `refit` each of them once more on
/// training and validation data, for the epoch count validation chose.
#[derive(Debug, Clone)]
struct StageSpec {
    /// Label in logs and curves.
    name: String,
    /// The stage's model.
    config: ModelConfig,
    /// Built from the phase's pre-trained stages rather than initialised.
    assembled: bool,
    /// Trained for a fixed number of epochs on training and validation data.
    refit: bool,
    /// Seed of its epochs' generators.
    seed: u64,
    /// Adam's learning rate.
    learning_rate: f64,
}

/// The stages of `config`'s run, in order.
fn stages(config: &RunConfig) -> Vec<StageSpec> {
    let lr = config.train.learning_rate;
    let mut out = Vec::new();
    let pretraining = config.model.pretraining();
    if let Some(pretraining) = &pretraining {
        for (k, (name, stage_config)) in pretraining.stages.iter().enumerate() {
            out.push(StageSpec {
                name: name.to_string(),
                config: stage_config.clone(),
                assembled: false,
                refit: false,
                seed: seeds::pretraining_stage(config.seed, k),
                learning_rate: lr,
            });
        }
    }
    let pretrained = pretraining.is_some();
    out.push(StageSpec {
        name: config.model.name().to_string(),
        config: config.model.clone(),
        assembled: pretrained,
        refit: false,
        seed: config.seed,
        // Fine-tuning a pre-trained model may use its own (smaller) learning rate.
        learning_rate: if pretrained {
            config.train.finetune_learning_rate.unwrap_or(lr)
        } else {
            lr
        },
    });
    if config.train.refit {
        let selection = out.clone();
        out.extend(selection.into_iter().map(|s| StageSpec {
            name: format!("refit {}", s.name),
            refit: true,
            ..s
        }));
    }
    out
}

/// Runs a whole training job described by `config` on `backend`.
pub fn train(
    config: &RunConfig,
    backend: Backend,
    options: RunOptions,
) -> Result<RunSummary, TrainError> {
    config.validate().map_err(TrainError::config("config"))?;
    // The run reads its data by absolute path, and records what the files held, so that
    // eval, export and resume read the same data from any directory, or say it changed.
    let mut config = config.clone();
    let cwd = std::env::current_dir().map_err(TrainError::io("."))?;
    config.data.make_absolute(&cwd);
    // config.toml names the device the run trains on, which a resume must match.
    config.device = backend;
    let config = &config;
    let inputs = config.data.fingerprint()?;
    let prepared = Prepared::new(config, backend)?;
    let ranks = &options.ranks;
    let mut run = if ranks.is_root() {
        RunDir::create(&config.output_dir, &config.name)?
    } else {
        RunDir::scratch(ranks.rank(), None)?
    };
    run.write(files::CONFIG, &config.to_toml())?;
    run.write(
        files::INPUTS,
        &serde_json::to_string_pretty(&inputs).expect("json"),
    )?;
    let data = &prepared.data;
    let ids = json!({
        "users": (0..data.num_users() as u32).map(|u| data.user_ids.external(u)).collect::<Vec<_>>(),
        "items": (0..data.num_items() as u32).map(|i| data.item_ids.external(i)).collect::<Vec<_>>(),
    });
    run.write(files::ID_MAPS, &ids.to_string())?;
    let stats = data.stats();
    run.write(
        files::DATA,
        &serde_json::to_string_pretty(
            &json!({"source": config.data.describe(), "preprocess": prepared.preprocess, "dataset": stats}),
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
        "device {backend}, model {}, seed {}{}",
        config.model.name(),
        config.seed,
        if ranks.size() > 1 {
            format!(
                ", {} ranks data-parallel ({} examples a batch in all)",
                ranks.size(),
                config.train.batch_size
            )
        } else {
            String::new()
        }
    ));
    let origin = checkpoint::Origin {
        target: std::path::absolute(run.target()).unwrap_or_else(|_| run.target().to_owned()),
        partial: std::fs::canonicalize(run.dir()).unwrap_or_else(|_| run.dir().to_owned()),
        config: ConfigFingerprint::of(config),
        inputs,
    };
    let partial = run.dir().to_owned();
    run_stages(config, backend, &prepared, run, origin, None, options)
        .map_err(|e| resumable(e, &partial))
}

/// Continues the run in `run_dir` (a `.partial` directory left by a run that was killed or
/// stopped) from its latest checkpoint, with the config it was started with: refused when
/// config.toml, the device or the input files changed since, or when another process trains
/// the run. The run finishes beside the partial directory, wherever that is now; a partial
/// directory whose results are all written (a crash before its rename) is only renamed.
pub fn resume(
    run_dir: &Path,
    backend: Backend,
    options: RunOptions,
) -> Result<RunSummary, TrainError> {
    let here = std::fs::canonicalize(run_dir).map_err(TrainError::io(run_dir))?;
    let ranks = &options.ranks;
    let lock = take_run(run_dir, &here, ranks)?;
    if run_dir.join(files::METRICS).exists() {
        return finish_complete(run_dir, &here, lock, ranks);
    }
    let (latest, config, origin) = checked_checkpoint(run_dir, &here, backend)?;
    let recorded = &latest.state.origin;
    let prepared = Prepared::new(&config, backend)?;
    let mut run = match lock {
        Some(lock) => RunDir::reopen(run_dir, origin.target.clone(), lock)?,
        // The other ranks read the checkpoint from the same directory (a shared file system,
        // as for the data) and keep a private copy of its stage models.
        None => RunDir::scratch(ranks.rank(), Some(run_dir))?,
    };
    // Rank 0 writes to the directory only once every rank has its copy.
    ranks.collective().barrier();
    run.truncate_lines(files::EPOCHS, latest.state.epoch_lines)?;
    if origin.partial != recorded.partial {
        run.log(&format!(
            "the run was moved from {}: it finishes beside its partial directory, as {}",
            recorded.partial.display(),
            origin.target.display()
        ));
    }
    run.log(&format!(
        "resumed from {} (stage {}, {} epochs and {} batches done) on device {backend}",
        latest.dir.display(),
        latest.state.stage,
        latest.state.epoch,
        latest.state.progress.batch
    ));
    run_stages(
        &config,
        backend,
        &prepared,
        run,
        origin,
        Some(latest),
        options,
    )
    .map_err(|e| resumable(e, run_dir))
}

/// Refuses a directory there is nothing to resume in, then locks it (rank 0, which alone
/// writes it; every rank reads rank 0's checkpoint).
fn take_run(run_dir: &Path, here: &Path, ranks: &Ranks) -> Result<Option<RunLock>, TrainError> {
    let refuse = |message: &str| TrainError::Resume {
        run_dir: run_dir.to_owned(),
        message: message.into(),
    };
    // Refused before the lock, which would write into the directory.
    let complete = run_dir.join(files::METRICS).exists();
    if complete && !run_dir::is_partial(here) {
        return Err(refuse("the run is complete; there is nothing to resume"));
    }
    if !complete && !run_dir.join(checkpoint::DIR).is_dir() {
        return Err(refuse(NO_CHECKPOINT));
    }
    ranks.is_root().then(|| RunLock::take(run_dir)).transpose()
}

/// Why a directory without a checkpoint cannot be resumed.
const NO_CHECKPOINT: &str = "it holds no checkpoint (the run stopped before its first epoch ended)";

/// The latest checkpoint of `run_dir` and the run's config, once checked against what the run
/// started with, and the run's origin at its current place `here`.
fn checked_checkpoint(
    run_dir: &Path,
    here: &Path,
    backend: Backend,
) -> Result<(checkpoint::Loaded, RunConfig, checkpoint::Origin), TrainError> {
    let Some(latest) = checkpoint::latest(run_dir)? else {
        return Err(TrainError::Resume {
            run_dir: run_dir.to_owned(),
            message: NO_CHECKPOINT.into(),
        });
    };
    let config = RunConfig::from_file(&run_dir.join(files::CONFIG))?;
    let recorded = &latest.state.origin;
    check_config(run_dir, recorded, &config)?;
    check_device(run_dir, recorded, backend)?;
    check_recorded_inputs(run_dir, recorded)?;
    let origin = checkpoint::Origin {
        target: beside(here, &recorded.target),
        partial: here.to_owned(),
        ..recorded.clone()
    };
    Ok((latest, config, origin))
}

/// Where a run whose partial directory is now `partial` (canonical) finishes: beside it, under
/// `target`'s name. A partial directory is created beside its target, so this is the recorded
/// target unless the directory was moved.
fn beside(partial: &Path, target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default();
    partial.parent().unwrap_or(partial).join(name)
}

/// Refuses a run whose config.toml was edited since it started, naming every changed key
/// (those that cannot change a result are not compared).
fn check_config(
    run_dir: &Path,
    recorded: &checkpoint::Origin,
    config: &RunConfig,
) -> Result<(), TrainError> {
    let changes = recorded.config.changes(&ConfigFingerprint::of(config));
    if changes.is_empty() {
        return Ok(());
    }
    Err(TrainError::Resume {
        run_dir: run_dir.to_owned(),
        message: format!(
            "config.toml was edited after the run started: {}: resume refuses a run whose \
             config changed (start a new run, or put the values back)",
            changes.join("; ")
        ),
    })
}

/// Refuses to resume on another backend than the run's (`--device`): results are
/// bit-identical only on one backend.
fn check_device(
    run_dir: &Path,
    recorded: &checkpoint::Origin,
    backend: Backend,
) -> Result<(), TrainError> {
    let now = serde_json::to_string(&backend).expect("a backend always serialises");
    let was = recorded.config.get("device").unwrap_or("unset");
    if was == now {
        return Ok(());
    }
    Err(TrainError::Resume {
        run_dir: run_dir.to_owned(),
        message: format!(
            "the run was started on device `{}`, and --device asks for `{backend}`: a run \
             resumes on the backend it started on, as results are bit-identical only on one \
             (leave out --device, or start a new run)",
            was.trim_matches('"')
        ),
    })
}

/// Checks that the input files are those the run started on, and that its `inputs.json`
/// (which the finished run keeps) still lists them.
fn check_recorded_inputs(run_dir: &Path, recorded: &checkpoint::Origin) -> Result<(), TrainError> {
    let listed = read_inputs(&run_dir.join(files::INPUTS)).ok();
    if listed.as_ref() != Some(&recorded.inputs) {
        return Err(TrainError::Resume {
            run_dir: run_dir.to_owned(),
            message: "inputs.json was edited after the run started (it no longer lists the \
                      files the run was started on): put it back, or start a new run"
                .into(),
        });
    }
    ember_data::verify(&recorded.inputs)?;
    Ok(())
}

/// Finishes a run whose partial directory holds all its results but was never renamed (a
/// crash or a failed rename after `metrics.json` was written): checks that it is whole, then
/// renames it (rank 0) and reports its metrics.
fn finish_complete(
    run_dir: &Path,
    here: &Path,
    lock: Option<RunLock>,
    ranks: &Ranks,
) -> Result<RunSummary, TrainError> {
    for file in [files::CONFIG, files::WEIGHTS, files::CURVES] {
        if !run_dir.join(file).is_file() {
            return Err(TrainError::Resume {
                run_dir: run_dir.to_owned(),
                message: format!(
                    "it holds {} but no {file}: the run is incomplete and cannot be finished \
                     (start a new run)",
                    files::METRICS
                ),
            });
        }
    }
    // A checkpoint left behind still records the config, which the finished run must match.
    let target = match checkpoint::latest(run_dir)? {
        Some(latest) => {
            let config = RunConfig::from_file(&run_dir.join(files::CONFIG))?;
            check_config(run_dir, &latest.state.origin, &config)?;
            beside(here, &latest.state.origin.target)
        }
        None => beside(
            here,
            Path::new(&run_dir::partial_run_name(here).unwrap_or_default()),
        ),
    };
    let summary = written_summary(run_dir)?;
    // Every rank has read the directory before rank 0 renames it.
    ranks.collective().barrier();
    let run_dir = match lock {
        Some(lock) => {
            let mut run = RunDir::reopen(run_dir, target.clone(), lock)?;
            run.log(&format!(
                "the run was complete but not yet renamed: renaming it to {}",
                target.display()
            ));
            run.finish()?
        }
        None => target,
    };
    Ok(RunSummary { run_dir, ..summary })
}

/// The summary of a run as its `metrics.json` reports it (the run directory left empty).
fn written_summary(run_dir: &Path) -> Result<RunSummary, TrainError> {
    #[derive(serde::Deserialize)]
    struct Extra {
        test: MetricsReport,
        popularity_test: MetricsReport,
    }
    #[derive(serde::Deserialize)]
    struct Written {
        model: String,
        best_epoch: usize,
        validation: MetricsReport,
        test: MetricsReport,
        popularity_test: MetricsReport,
        extra_protocols: Vec<Extra>,
    }
    let path = run_dir.join(files::METRICS);
    let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
    let written: Written = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
        path: path.clone(),
        message: format!("unreadable metrics: {e}"),
    })?;
    Ok(RunSummary {
        run_dir: PathBuf::new(),
        model: written.model,
        best_epoch: written.best_epoch,
        valid: written.validation,
        test: written.test,
        popularity: written.popularity_test,
        extra: written
            .extra_protocols
            .into_iter()
            .map(|e| (e.test, e.popularity_test))
            .collect(),
    })
}

/// An error of a run that has a checkpoint says how to go on (Ctrl-C's already does).
fn resumable(e: TrainError, partial: &Path) -> TrainError {
    let has_checkpoint = matches!(checkpoint::latest(partial), Ok(Some(_)));
    // Those two already say how to go on.
    let says_how = matches!(
        e,
        TrainError::Interrupted { .. } | TrainError::Unrenamed { .. }
    );
    if has_checkpoint && !says_how {
        TrainError::Resumable {
            run_dir: partial.to_owned(),
            source: Box::new(e),
        }
    } else {
        e
    }
}

/// Checks that the files a run was trained on are unchanged (`inputs.json`; runs written
/// before it existed are not checked).
fn check_inputs(run_dir: &Path) -> Result<(), TrainError> {
    let path = run_dir.join(files::INPUTS);
    if !path.exists() {
        return Ok(());
    }
    ember_data::verify(&read_inputs(&path)?)?;
    Ok(())
}

/// The input files an `inputs.json` lists.
fn read_inputs(path: &Path) -> Result<Vec<ember_data::InputFile>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::io(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// What a run needs before training, checked before anything is written.
struct Prepared {
    data: Dataset,
    preprocess: ember_data::PreprocessStats,
    plan: EvaluationPlan,
    extra_plans: Vec<EvaluationPlan>,
}

impl Prepared {
    fn new(config: &RunConfig, backend: Backend) -> Result<Self, TrainError> {
        backend.device()?;
        let (data, preprocess) = prepare(&config.data, &config.preprocess, &config.split)?;
        check_data(config, &data).map_err(TrainError::config("config"))?;
        let plan = EvaluationPlan::new(&data, &config.eval.protocol, config.seed)
            .map_err(|e| TrainError::config("config")(e.into()))?;
        // Drawn now, from the same data as the main plan: a protocol the data cannot serve
        // fails before training, not after.
        let extra_plans = config
            .eval
            .extra_protocols
            .iter()
            .map(|protocol| EvaluationPlan::new(&data, protocol, config.seed))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrainError::config("config")(ConfigError::ExtraPlan(e)))?;
        Ok(Self {
            data,
            preprocess,
            plan,
            extra_plans,
        })
    }
}

/// Trains the stages not finished yet (all of them, or those after `resume`'s), then tests
/// the selected model and writes the rest of the run directory.
fn run_stages(
    config: &RunConfig,
    backend: Backend,
    prepared: &Prepared,
    mut run: RunDir,
    origin: checkpoint::Origin,
    resume: Option<checkpoint::Loaded>,
    options: RunOptions,
) -> Result<RunSummary, TrainError> {
    let device = backend.device()?.autodiff();
    let data = &prepared.data;
    let ranks = options.ranks.0.clone();
    let sync: Box<dyn GradientSync> = if ranks.size() > 1 {
        Box::new(distributed::ReplicaSync::new(
            ranks.clone(),
            config.train.gradient_exchange,
        ))
    } else {
        Box::new(SingleDevice)
    };
    let merged = config
        .train
        .refit
        .then(|| data.with_validation_in_training());
    let specs = stages(config);
    let selection = specs.iter().filter(|s| !s.refit).count();
    let (done, curves, epoch_lines) = match &resume {
        Some(loaded) => (
            loaded.state.done.clone(),
            loaded.state.curves.clone(),
            loaded.state.epoch_lines,
        ),
        None => (Vec::new(), Vec::new(), 0),
    };
    let mut trainer = Trainer {
        config,
        data,
        plan: &prepared.plan,
        device: device.clone(),
        run: &mut run,
        progress: options.progress,
        curves,
        sync,
        ranks: ranks.clone(),
        plan_chunk: config.train.embedding_gradient.plan_chunk(backend),
        adam_layout: backend.adam_layout(),
        stop: options.stop.clone(),
        origin,
        done,
        epoch_lines,
    };
    for (index, spec) in specs.iter().enumerate() {
        if index < trainer.done.len() {
            continue; // finished before the resumed checkpoint
        }
        let stage_data = match (&merged, spec.refit) {
            (Some(merged), true) => merged,
            _ => data,
        };
        trainer.data = stage_data;
        if spec.refit && index == selection {
            trainer.run.log("refit: training again on training + validation interactions with the chosen epoch counts");
        }
        let init = model_init(stage_data, config, backend);
        device.seed(seeds::stage_init(config.seed, index));
        let model = if spec.assembled {
            // Built from this phase's pre-trained stages, which precede it.
            let pretraining = config
                .model
                .pretraining()
                .expect("an assembled stage follows pre-training");
            let first = index - pretraining.stages.len();
            let models = pretraining
                .stages
                .iter()
                .enumerate()
                .map(|(k, (_, stage_config))| {
                    checkpoint::load_stage(
                        trainer.run.dir(),
                        first + k,
                        stage_config.init(&init, &device),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            (pretraining.assemble)(models)
        } else {
            spec.config.init(&init, &device)
        };
        // burn initialises parameters lazily, at their first use, which would make the initial
        // weights depend on the order a forward pass reads them and on how much of the
        // generator it drew before. They are initialised here, in the model's own order; the
        // ranks of a distributed run then take rank 0's (the same ones, made certain).
        device.seed(seeds::materialize(spec.seed));
        let model = params::materialize(model);
        let model = distributed::broadcast_model(model, ranks.as_ref());
        let schedule = if spec.refit {
            Schedule::Fixed(trainer.done[index - selection].best_epoch)
        } else if index + 1 < selection {
            Schedule::Select(config.train.pretrain_epochs.unwrap_or(config.train.epochs))
        } else {
            Schedule::Select(config.train.epochs)
        };
        let mut resumed = None;
        let mut model = model;
        if let Some(loaded) = &resume
            && loaded.state.stage == index
            && (loaded.state.epoch > 0 || loaded.state.progress.batch > 0)
        {
            let best = match &loaded.state.best {
                Some(b) => Some(Fitted {
                    model: loaded.best(model.clone())?,
                    best_epoch: b.epoch,
                    best_valid: b.valid.clone(),
                }),
                None => None,
            };
            model = loaded.model(model)?;
            resumed = Some(Resume {
                epoch: loaded.state.epoch,
                progress: loaded.state.progress,
                steps: loaded.state.steps,
                adam_steps: loaded.state.adam_steps,
                moments: loaded.adam()?,
                best,
            });
        }
        let fitted = trainer.fit(
            model,
            spec.config.input(),
            (index, &spec.name),
            schedule,
            StepSettings {
                seed: spec.seed,
                learning_rate: spec.learning_rate,
                keep_initial: spec.assembled,
            },
            resumed,
        )?;
        trainer.finish_stage(index, &spec.name, &fitted)?;
    }
    // The selected model is the main stage's; after a refit, trained again on more data.
    let main = selection - 1;
    let last = specs.len() - 1;
    let chosen = trainer.done[main].clone();
    let curves = plot::learning_curves(&trainer.curves, &config.eval.monitor)?;
    let final_data = merged.as_ref().unwrap_or(data);
    let model = checkpoint::load_stage(
        run.dir(),
        last,
        config
            .model
            .init(&model_init(final_data, config, backend), &device),
    )?;
    run.write_bytes(files::CURVES, &curves)?;
    // The data the final model was trained on (its popularity is the matching baseline).
    let data = final_data;
    let weights = run.path(files::WEIGHTS);
    model
        .clone()
        .save_file(&weights)
        .map_err(|source| TrainError::Weights {
            path: weights.clone(),
            source,
        })?;

    let input = config.model.input();
    let test_of =
        |plan| test_and_baseline(&model, input, data, plan, config, &device, ranks.as_ref());
    let (test, popularity) = test_of(&prepared.plan);
    let extra: Vec<_> = prepared.extra_plans.iter().map(test_of).collect();
    let extra_json: Vec<_> = extra
        .iter()
        .map(|(test, popularity)| json!({"test": test, "popularity_test": popularity}))
        .collect();
    let metrics = json!({
        "model": config.model.name(),
        "best_epoch": chosen.best_epoch,
        "monitor": config.eval.monitor,
        "refit": config.train.refit,
        "validation": chosen.best_valid,
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
        chosen.best_epoch,
        config.eval.monitor,
        chosen
            .best_valid
            .get(&config.eval.monitor)
            .unwrap_or(f64::NAN)
    ));
    let run_dir = run.finish()?;
    Ok(RunSummary {
        run_dir,
        model: config.model.name().into(),
        best_epoch: chosen.best_epoch,
        valid: chosen.best_valid,
        test,
        popularity,
        extra,
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
    ranks: &dyn collective::Collective,
) -> (MetricsReport, MetricsReport) {
    let test = evaluate::evaluate_model(
        model,
        input,
        data,
        plan,
        HeldOut::Test,
        &config.eval,
        device,
        ranks,
    );
    let baseline = if input.predicts_ratings() {
        let mut baseline =
            evaluate::evaluate_ratings(&evaluate::item_mean_ratings(data), data, HeldOut::Test);
        baseline.protocol = format!("item-mean ratings, {}", baseline.protocol);
        baseline
    } else {
        let (ks, batch_users) = (
            &config.eval.ks,
            config.eval.users_per_batch(data.num_items()),
        );
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
    check_inputs(run_dir)?;
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
        &run.model,
        input,
        &run.data,
        &plan,
        &config,
        &device,
        ranks.collective(),
    ))
}
