//! A whole run, as `ember train` starts or resumes it: prepare the data, train the stages of
//! the run's [`StagePlan`] in order (with early stopping on validation), test the selected
//! model once beside its baseline, and write the run directory.

use burn::module::Module;
use burn::prelude::Device;
use ember_data::Dataset;
use ember_models::Model;
use serde_json::json;
use std::path::Path;

use crate::checkpoint::{self, Loaded, Origin, StageDone};
use crate::checkpointer::Checkpointer;
use crate::collective::{GradientSync, SingleDevice};
use crate::distributed::{self, ReplicaSync};
use crate::epoch_log::EpochLog;
use crate::evaluate::EvaluationPlan;
use crate::finished::test_and_baseline;
use crate::resuming::{checked_checkpoint, finish_complete, resumable, take_run};
use crate::stages::{StagePlan, model_init};
use crate::stop::StopSignal;
use crate::trainer::Trainer;
use crate::{
    Backend, ConfigError, ConfigFingerprint, RunConfig, RunDir, RunOptions, RunSummary, TrainError,
    files, plot,
};

/// Runs a whole training job described by `config` on `backend`.
pub fn train(
    config: &RunConfig,
    backend: Backend,
    options: RunOptions,
) -> Result<RunSummary, TrainError> {
    config.validate().map_err(TrainError::config("config"))?;
    let config = &resolved(config, backend)?;
    let job = Job {
        config,
        backend,
        prepared: Prepared::within(config, backend, options.max_memory)?,
    };
    let ranks = &options.ranks;
    let mut run = if ranks.is_root() {
        RunDir::create(&config.output_dir, &config.name)?
    } else {
        RunDir::scratch(ranks.rank(), None)?
    };
    run.write(files::CONFIG, &config.to_toml())?;
    let inputs = job.prepared.inputs.clone();
    let listed = serde_json::to_string_pretty(&inputs).expect("json");
    run.write(files::INPUTS, &listed)?;
    job.write_data(&mut run)?;
    job.log_start(&mut run, ranks.size());
    run.log(&job.prepared.memory);
    let origin = Origin {
        target: std::path::absolute(run.target()).unwrap_or_else(|_| run.target().to_owned()),
        partial: std::fs::canonicalize(run.dir()).unwrap_or_else(|_| run.dir().to_owned()),
        config: ConfigFingerprint::of(config),
        inputs,
    };
    let partial = run.dir().to_owned();
    job.run_stages(run, origin, None, options)
        .map_err(|e| resumable(e, &partial))
}

/// `config` as the run records it: its data read by absolute path (so that eval, export and
/// resume read the same data from any directory, or say it changed), and the device it trains
/// on (which a resume must match).
fn resolved(config: &RunConfig, backend: Backend) -> Result<RunConfig, TrainError> {
    let mut config = config.clone();
    let cwd = std::env::current_dir().map_err(TrainError::io("."))?;
    config.data.make_absolute(&cwd);
    config.device = backend;
    Ok(config)
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
    let job = Job {
        config: &config,
        backend,
        prepared: Prepared::within(&config, backend, options.max_memory)?,
    };
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
    job.run_stages(run, origin, Some(latest), options)
        .map_err(|e| resumable(e, run_dir))
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

/// What a run needs before training, checked before anything is written.
struct Prepared {
    data: Dataset,
    preprocess: ember_data::PreprocessStats,
    /// The fingerprints of the inputs read, taken as they were read.
    inputs: Vec<ember_data::InputFile>,
    /// What the attribute tables covered (`[data.users]`, `[data.items]`), for `data.json`.
    coverage: serde_json::Value,
    plan: EvaluationPlan,
    extra_plans: Vec<EvaluationPlan>,
    /// What the model will take of the memory there is, for the log.
    memory: String,
}

impl Prepared {
    /// The data, its checks and its evaluation plans, refusing a model that does not fit in
    /// `max_memory` bytes (by default in what the system gives this process).
    fn within(
        config: &RunConfig,
        backend: Backend,
        max_memory: Option<u64>,
    ) -> Result<Self, TrainError> {
        backend.device()?;
        let crate::weighting::RunData {
            data,
            preprocess,
            inputs,
            attributes,
        } = crate::weighting::prepare_run_data(config)?;
        let coverage = json!({
            "users": attributes.users.as_ref().map(|a| &a.coverage),
            "items": attributes.items.as_ref().map(|a| &a.coverage),
        });
        check_data(config, &data).map_err(TrainError::config("config"))?;
        let memory = crate::memory::check(config, &data, max_memory)?;
        let bands = &config.eval.activity_bands;
        let plan = EvaluationPlan::new(&data, &config.eval.protocol, config.seed)
            .map_err(|e| TrainError::config("config")(e.into()))?
            .with_activity_bands(&data, bands);
        // Drawn now, from the same data as the main plan: a protocol the data cannot serve
        // fails before training, not after.
        let extra_plans = config
            .eval
            .extra_protocols
            .iter()
            .map(|protocol| {
                EvaluationPlan::new(&data, protocol, config.seed)
                    .map(|plan| plan.with_activity_bands(&data, bands))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrainError::config("config")(ConfigError::ExtraPlan(e)))?;
        Ok(Self {
            data,
            preprocess,
            inputs,
            coverage,
            plan,
            extra_plans,
            memory,
        })
    }
}

/// A run ready to train: its config, its device, and its data prepared.
struct Job<'a> {
    config: &'a RunConfig,
    backend: Backend,
    prepared: Prepared,
}

/// What a run reports once its stages are trained.
struct Outcome<'a> {
    /// The selected model: the last stage's.
    model: Model,
    /// The data it was trained on (its popularity is the matching baseline).
    data: &'a Dataset,
    /// The stage whose validation chose the epoch.
    chosen: StageDone,
    /// The learning curves, as a PNG.
    curves: Vec<u8>,
}

impl Job<'_> {
    /// Writes the external ids and what the data holds.
    fn write_data(&self, run: &mut RunDir) -> Result<(), TrainError> {
        let data = &self.prepared.data;
        let external = |ids: &ember_data::IdMap, n: usize| {
            (0..n as u32).map(|k| ids.key(k)).collect::<Vec<_>>()
        };
        let ids = json!({
            "users": external(&data.user_ids, data.num_users()),
            "items": external(&data.item_ids, data.num_items()),
        });
        run.write(files::ID_MAPS, &ids.to_string())?;
        let mut described = json!({
            "source": self.config.data.describe(),
            "preprocess": self.prepared.preprocess,
            "dataset": data.stats(),
        });
        if self.config.data.users.is_some() || self.config.data.items.is_some() {
            described["attributes"] = self.prepared.coverage.clone();
        }
        run.write(
            files::DATA,
            &serde_json::to_string_pretty(&described).expect("json"),
        )
    }

    /// Logs the data, the device, the model and the ranks a run starts with.
    fn log_start(&self, run: &mut RunDir, ranks: usize) {
        let (config, stats) = (self.config, self.prepared.data.stats());
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
        if let Some(time) = &stats.time_split {
            run.log(&format!(
                "time split: train before {}, validate to {}, test from it on: {} test users; \
                 left out as new (no training interaction): {} users and {} items after the \
                 cutoff ({} interactions), {} users and {} items in the validation window ({})",
                time.valid_start,
                time.cutoff,
                time.test_users,
                time.new_users_test,
                time.new_items_test,
                time.interactions_left_out_test,
                time.new_users_valid,
                time.new_items_valid,
                time.interactions_left_out_valid
            ));
        }
        let parallel = if ranks > 1 {
            format!(
                ", {ranks} ranks data-parallel ({} examples a batch in all)",
                config.train.batch_size
            )
        } else {
            String::new()
        };
        run.log(&format!(
            "device {}, model {}, seed {}{parallel}",
            self.backend,
            config.model.name(),
            config.seed,
        ));
        if let Some(note) = config.weights_note() {
            run.log(&format!("weights: {note}"));
        }
    }

    /// Trains the stages not finished yet (all of them, or those after `resume`'s), then
    /// tests the selected model and writes the rest of the run directory.
    fn run_stages(
        &self,
        mut run: RunDir,
        origin: Origin,
        resume: Option<Loaded>,
        options: RunOptions,
    ) -> Result<RunSummary, TrainError> {
        let (config, data) = (self.config, &self.prepared.data);
        let device = self.backend.device()?.autodiff();
        let ranks = options.ranks.collective();
        let merged = config
            .train
            .refit
            .then(|| data.with_validation_in_training());
        let plan = StagePlan::new(&config.model, &config.train, config.seed);
        let mut trainer = self.trainer(&mut run, &device, origin, resume.as_ref(), &options);
        let first = trainer.checkpointer.done().len(); // those before are finished
        for (index, stage) in plan.stages().iter().enumerate().skip(first) {
            let stage_data = match (&merged, stage.refit) {
                (Some(merged), true) => merged,
                _ => data,
            };
            trainer.data = stage_data;
            if plan.starts_refit(index) {
                trainer.run.log("refit: training again on training + validation interactions with the chosen epoch counts");
            }
            let init = model_init(stage_data, config.train.loss, self.backend);
            let model = plan.build(index, &init, &device, trainer.run.dir())?;
            // The ranks of a distributed run take rank 0's initial weights (the same ones,
            // made certain).
            let model = distributed::broadcast_model(model, ranks);
            let (model, resumed) = match &resume {
                Some(loaded) => Checkpointer::resume_point(loaded, index, model)?,
                None => (model, None),
            };
            let stage_run = plan.run_of(index, trainer.checkpointer.done());
            let fitted = trainer.fit(model, &stage_run, resumed)?;
            trainer.finish_stage(index, &stage.name, &fitted)?;
        }
        let chosen = trainer.checkpointer.done()[plan.selected()].clone();
        let curves = plot::learning_curves(trainer.log.curves(), &config.eval.monitor)?;
        let final_data = merged.as_ref().unwrap_or(data);
        let init = model_init(final_data, config.train.loss, self.backend);
        let model =
            checkpoint::load_stage(run.dir(), plan.last(), config.model.init(&init, &device))?;
        let outcome = Outcome {
            model,
            data: final_data,
            chosen,
            curves,
        };
        self.finish(run, outcome, &device, &options)
    }

    /// The trainer of this run writing to `run`, continuing from `resume` when given.
    fn trainer<'a>(
        &'a self,
        run: &'a mut RunDir,
        device: &Device,
        origin: Origin,
        resume: Option<&Loaded>,
        options: &RunOptions,
    ) -> Trainer<'a> {
        let (config, ranks) = (self.config, &options.ranks);
        let sync: Box<dyn GradientSync> = if ranks.size() > 1 {
            let exchange = config.train.gradient_exchange;
            Box::new(ReplicaSync::new(ranks.0.clone(), exchange))
        } else {
            Box::new(SingleDevice)
        };
        let (done, log) = match resume {
            Some(loaded) => {
                let state = &loaded.state;
                let log = EpochLog::resumed(state.curves.clone(), state.epoch_lines);
                (state.done.clone(), log)
            }
            None => (Vec::new(), EpochLog::default()),
        };
        let every = config.train.checkpoint_every;
        Trainer {
            train: &config.train,
            eval: &config.eval,
            data: &self.prepared.data,
            plan: &self.prepared.plan,
            device: device.clone(),
            run,
            progress: options.progress,
            log,
            checkpointer: Checkpointer::new(origin, done, every, ranks.is_root()),
            sync,
            ranks: ranks.0.clone(),
            stop: StopSignal::new(options.stop.clone(), ranks.0.clone()),
            plan_chunk: config.train.embedding_gradient.plan_chunk(self.backend),
            adam_layout: self.backend.adam_layout(),
            weights: config.weighting(),
        }
    }

    /// Writes the curves and the selected model, tests it under every protocol beside its
    /// baseline, writes `metrics.json` and renames the run directory to its final name.
    fn finish(
        &self,
        mut run: RunDir,
        outcome: Outcome,
        device: &Device,
        options: &RunOptions,
    ) -> Result<RunSummary, TrainError> {
        let config = self.config;
        run.write_bytes(files::CURVES, &outcome.curves)?;
        let weights = run.path(files::WEIGHTS);
        let saved = outcome.model.clone().save_file(&weights);
        saved.map_err(|source| TrainError::Weights {
            path: weights.clone(),
            source,
        })?;
        let (model, data) = (&outcome.model, outcome.data);
        let (input, ranks) = (config.model.input(), options.ranks.collective());
        let test_of =
            |plan| test_and_baseline(model, input, data, plan, &config.eval, device, ranks);
        let (test, popularity) = test_of(&self.prepared.plan);
        let extra: Vec<_> = self.prepared.extra_plans.iter().map(test_of).collect();
        let chosen = outcome.chosen;
        let extra_json: Vec<_> = extra
            .iter()
            .map(|(test, popularity)| json!({"test": test, "popularity_test": popularity}))
            .collect();
        let mut metrics = json!({
            "model": config.model.name(),
            "best_epoch": chosen.best_epoch,
            "monitor": config.eval.monitor,
            "refit": config.train.refit,
            "validation": chosen.best_valid,
            "test": test,
            "popularity_test": popularity,
            "extra_protocols": extra_json,
        });
        if let Some(note) = config.weights_note() {
            metrics["weights"] = note.into();
        }
        let text = serde_json::to_string_pretty(&metrics).expect("json");
        run.write(files::METRICS, &text)?;
        let monitor = &config.eval.monitor;
        let value = chosen.best_valid.get(monitor).unwrap_or(f64::NAN);
        run.log(&format!(
            "best epoch {} (valid {monitor} {value:.4})",
            chosen.best_epoch
        ));
        Ok(RunSummary {
            run_dir: run.finish()?,
            model: config.model.name().into(),
            best_epoch: chosen.best_epoch,
            valid: chosen.best_valid,
            test,
            popularity,
            extra,
        })
    }
}
