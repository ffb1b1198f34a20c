//! The training of one stage, as burn-train's Learner and RecBole's trainer shape it: epochs of
//! freshly drawn batches (the one loop in [`crate::epoch`]), validation every `eval.every`
//! epochs, and the best model kept. What happens around each epoch is a part of its own:
//! [`EarlyStopping`], the [`Checkpointer`], the [`EpochLog`] and the stop signal.

use burn::prelude::*;
use ember_data::Dataset;
use ember_metrics::MetricsReport;
use ember_models::{Input, Model};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::sync::Arc;
use std::time::Instant;

use crate::adam::{Adam, AdamLayout, AdamSettings};
use crate::batches::{EpochSource, HeldOut, training_epoch};
use crate::checkpointer::{Checkpointer, Fitted, Position, Resume};
use crate::collective::{Collective, GradientSync, Shard};
use crate::distributed::check_replicas;
use crate::early_stopping::EarlyStopping;
use crate::epoch::{EpochEnd, EpochProgress, EpochStats, Stepper, progress_bar, train_epoch};
use crate::epoch_log::{EpochLog, Validated};
use crate::evaluate::{EvaluationPlan, evaluate_model};
use crate::stop::StopSignal;
use crate::{EvalConfig, RunDir, TrainConfig, TrainError, seeds};

/// Trains the stages of one run: shared data, candidates, device and run directory.
pub struct Trainer<'a> {
    /// Optimisation settings.
    pub(crate) train: &'a TrainConfig,
    /// Validation settings.
    pub(crate) eval: &'a EvalConfig,
    /// The data of the stage being trained.
    pub(crate) data: &'a Dataset,
    /// The validation candidates.
    pub(crate) plan: &'a EvaluationPlan,
    pub(crate) device: Device,
    pub(crate) run: &'a mut RunDir,
    /// Show progress bars.
    pub(crate) progress: bool,
    /// Every epoch trained so far.
    pub(crate) log: EpochLog,
    /// When checkpoints are written, and the stages finished.
    pub(crate) checkpointer: Checkpointer,
    /// Applied to the gradients before every optimiser step.
    pub(crate) sync: Box<dyn GradientSync>,
    /// The ranks of a distributed run (one process otherwise): they share each batch and each
    /// evaluation, and stop together.
    pub(crate) ranks: Arc<dyn Collective>,
    /// Set from outside (Ctrl-C, SIGTERM) to stop after the current batch with a checkpoint.
    pub(crate) stop: StopSignal,
    /// Rows per chunk of the embedding gradients' segment plans; `None` for burn's gradient.
    pub(crate) plan_chunk: Option<usize>,
    /// How Adam lays out its update for the device.
    pub(crate) adam_layout: AdamLayout,
    /// How the run weights interactions, if it does.
    pub(crate) weights: Option<ember_data::Weights>,
}

/// How many epochs to train, and how the kept model is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Up to this many epochs; keep the best on validation, stop early after `patience` epochs
    /// without improvement.
    Select(usize),
    /// Exactly this many epochs, no validation (the refit on training + validation data once
    /// the epoch count has been chosen).
    Fixed(usize),
}

impl Schedule {
    /// The most epochs trained.
    pub fn epochs(self) -> usize {
        match self {
            Self::Select(n) | Self::Fixed(n) => n,
        }
    }

    /// Whether epoch `epoch` is validated: every `every` epochs and after the last, when the
    /// kept model is chosen on validation.
    pub fn validates(self, epoch: usize, every: usize) -> bool {
        match self {
            Self::Select(epochs) => epoch % every.max(1) == 0 || epoch == epochs,
            Self::Fixed(_) => false,
        }
    }
}

/// Per-model optimisation settings of [`Trainer::fit`].
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    /// Seed of shuffling and negative sampling.
    pub seed: u64,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Whether the model as given competes on validation as epoch 0 (a pre-trained start, or
    /// a model fitted when built).
    pub keep_initial: bool,
}

/// One stage of a run, as [`Trainer::fit`] trains it.
#[derive(Debug, Clone, Copy)]
pub struct StageRun<'s> {
    /// Its index among the run's stages (checkpoints name it).
    pub index: usize,
    /// Its label in the per-epoch lines (`neumf`, or `gmf`/`mlp` during NeuMF pre-training).
    pub name: &'s str,
    /// What its model reads.
    pub input: Input,
    /// How many epochs, and how the kept model is chosen.
    pub schedule: Schedule,
    /// Seed and learning rate.
    pub step: StepSettings,
}

impl StageRun<'_> {
    /// The label of epoch `epoch` in logs and progress bars.
    fn label(&self, epoch: usize) -> String {
        format!("{} epoch {epoch}/{}", self.name, self.schedule.epochs())
    }
}

/// A stage being trained: its optimiser, where it stands, and its best model so far.
struct Fitting {
    optimizer: Adam,
    best: Option<Fitted>,
    stopping: EarlyStopping,
    /// The first epoch still to train.
    first_epoch: usize,
    /// How far that epoch got before a checkpoint.
    progress: EpochProgress,
    /// Optimiser steps of the stage (the autoencoders' KL annealing reads them).
    steps: usize,
}

/// An epoch's validation.
struct Validation {
    report: MetricsReport,
    /// The monitored metric's value.
    value: f64,
    /// Whether it is the best epoch so far.
    improved: bool,
    secs: f64,
}

impl Fitted {
    /// `model` after `epochs` epochs of a schedule that never validated (a refit).
    fn unvalidated(model: Model, epochs: usize) -> Self {
        Fitted {
            model,
            best_epoch: epochs,
            best_valid: MetricsReport {
                protocol: "none (refit without validation)".into(),
                users: 0,
                skipped_users: 0,
                metrics: vec![],
                negatives: None,
                warnings: vec![],
                groups: Vec::new(),
            },
        }
    }
}

impl Trainer<'_> {
    /// Trains `model` as `stage`. With `resume`, `model` is the checkpoint's and training
    /// continues where it stopped.
    pub fn fit(
        &mut self,
        mut model: Model,
        stage: &StageRun,
        resume: Option<Resume>,
    ) -> Result<Fitted, TrainError> {
        let mut fitting = self.start(&model, stage, resume);
        let train_sets = self.data.train_sets();
        let confidence = crate::weighting::confidences(self.data, self.weights.as_ref());
        let source = EpochSource {
            data: self.data,
            train_sets: &train_sets,
            confidence: confidence.as_deref(),
            batch_size: self.train.batch_size,
            negatives: self.train.negatives,
            plan_chunk: self.plan_chunk,
            device: self.device.clone(),
            shard: Shard::of(self.ranks.as_ref()),
        };
        let epochs = stage.schedule.epochs();
        for epoch in fitting.first_epoch..=epochs {
            let (next, stats) = self.train_one_epoch(model, stage, &source, &mut fitting, epoch)?;
            model = next;
            self.check_epoch(&model, stage, epoch, &stats)?;
            if self.close_epoch(&model, stage, &mut fitting, epoch, &stats)? {
                break;
            }
        }
        Ok(fitting
            .best
            .unwrap_or_else(|| Fitted::unvalidated(model, epochs)))
    }

    /// Where `stage` starts: afresh (a model that starts trained competes as epoch 0), or
    /// from `resume`.
    fn start(&mut self, model: &Model, stage: &StageRun, resume: Option<Resume>) -> Fitting {
        let settings = AdamSettings {
            beta_2: self.train.adam_beta2 as f32,
            weight_decay: self.train.weight_decay as f32,
            ..AdamSettings::default()
        };
        let mut stopping = EarlyStopping::new(&self.eval.monitor, self.train.patience);
        let Some(r) = resume else {
            let mut best = None;
            if stage.step.keep_initial && matches!(stage.schedule, Schedule::Select(_)) {
                let fitted = self.validate_initial(model, stage);
                stopping.set_best(0, &fitted.best_valid);
                best = Some(fitted);
            }
            return Fitting {
                optimizer: Adam::new(settings, self.adam_layout),
                best,
                stopping,
                first_epoch: 1,
                progress: EpochProgress::default(),
                steps: 0,
            };
        };
        if let Some(best) = &r.best {
            stopping.set_best(best.best_epoch, &best.best_valid);
        }
        let layout = self.adam_layout;
        Fitting {
            optimizer: Adam::restore(
                settings,
                layout,
                model,
                r.adam_steps,
                r.moments,
                &self.device,
            ),
            best: r.best,
            stopping,
            first_epoch: r.epoch + 1,
            progress: r.progress,
            steps: r.steps,
        }
    }

    /// `model` as given, validated as epoch 0.
    fn validate_initial(&mut self, model: &Model, stage: &StageRun) -> Fitted {
        let valid = self.validate(model, stage.input);
        let monitor = &self.eval.monitor;
        let value = valid.get(monitor).unwrap_or(f64::NAN);
        self.run.log(&format!(
            "{} epoch 0 (as initialised): valid {monitor} {value:.4}",
            stage.name
        ));
        Fitted {
            model: model.clone(),
            best_epoch: 0,
            best_valid: valid,
        }
    }

    /// Trains epoch `epoch` of `stage` (RecBole's `_train_epoch`) from where `fitting` stands
    /// in it: a checkpoint every `train.checkpoint_every` batches, and one before stopping
    /// when a stop is asked for.
    fn train_one_epoch(
        &mut self,
        mut model: Model,
        stage: &StageRun,
        source: &EpochSource,
        fitting: &mut Fitting,
        epoch: usize,
    ) -> Result<(Model, EpochStats), TrainError> {
        // Each epoch's examples come from a generator of its own, so that a resumed run draws
        // what an uninterrupted one draws.
        let mut rng = SmallRng::seed_from_u64(seeds::epoch(stage.step.seed, epoch));
        let batches = training_epoch(stage.input, source, &mut rng);
        // Batches done before a checkpoint in the middle of this epoch: taken, not trained.
        for b in 0..fitting.progress.batch {
            let _ = batches.batch(b);
        }
        let bar = progress_bar(self.progress, batches.batches(), &stage.label(epoch));
        loop {
            let (stop, checkpointer) = (&self.stop, &self.checkpointer);
            // Every rank asks, so that all pause at the same batch.
            let mut pause = |next: usize| stop.requested() || checkpointer.due(next);
            let stepper = Stepper {
                optimizer: &mut fitting.optimizer,
                sync: self.sync.as_mut(),
                learning_rate: stage.step.learning_rate,
                steps: &mut fitting.steps,
            };
            let seeded = (stage.step.seed, epoch);
            let (next, end) = train_epoch(
                model,
                batches.as_ref(),
                stepper,
                seeded,
                fitting.progress,
                &mut pause,
                &bar,
            );
            model = next;
            let progress = match end {
                EpochEnd::Complete(stats) => {
                    fitting.progress = EpochProgress::default();
                    return Ok((model, stats));
                }
                EpochEnd::Stopped(progress) => progress,
            };
            fitting.progress = progress;
            let at = Position {
                stage: stage.index,
                epoch: epoch - 1,
                progress,
                steps: fitting.steps,
            };
            self.save(at, &model, fitting)?;
            if self.stop.requested() {
                bar.abandon();
                return Err(self.interrupted());
            }
        }
    }

    /// What is checked after each epoch: that every rank holds the same weights, and that the
    /// loss is finite.
    fn check_epoch(
        &mut self,
        model: &Model,
        stage: &StageRun,
        epoch: usize,
        stats: &EpochStats,
    ) -> Result<(), TrainError> {
        let label = stage.label(epoch);
        if let Some(report) = self.sync.report() {
            self.run.log(&format!("{label}: {report}"));
        }
        if self.ranks.size() > 1 {
            let print = check_replicas(model, self.ranks.as_ref()).map_err(|prints| {
                TrainError::ReplicasDiverged {
                    stage: stage.name.to_string(),
                    epoch,
                    prints: prints
                        .iter()
                        .map(|p| format!("{p:016x}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            self.run.log(&format!(
                "{label}: weights identical on all {} ranks (fingerprint {print:016x})",
                self.ranks.size()
            ));
        }
        if !stats.loss.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                loss: stats.loss,
            });
        }
        Ok(())
    }

    /// Validates epoch `epoch` when it is due (RecBole's `_valid_epoch`), records it, keeps
    /// the best model, and writes the checkpoint of the epoch's end; whether to stop early.
    fn close_epoch(
        &mut self,
        model: &Model,
        stage: &StageRun,
        fitting: &mut Fitting,
        epoch: usize,
        stats: &EpochStats,
    ) -> Result<bool, TrainError> {
        let eval = self.eval;
        let validation = stage
            .schedule
            .validates(epoch, eval.every)
            .then(|| self.validate_epoch(model, stage.input, &mut fitting.stopping, epoch));
        let validated = validation.as_ref().map(|v| Validated {
            report: &v.report,
            monitor: (eval.monitor.as_str(), v.value),
            best: v.improved,
            secs: v.secs,
        });
        let record = (stage.name, epoch, stage.schedule.epochs());
        self.log.record(self.run, record, stats, validated)?;
        let was_validated = validation.is_some();
        if let Some(v) = validation.filter(|v| v.improved) {
            fitting.best = Some(Fitted {
                model: model.clone(),
                best_epoch: epoch,
                best_valid: v.report,
            });
        }
        let at = Position {
            stage: stage.index,
            epoch,
            progress: EpochProgress::default(),
            steps: fitting.steps,
        };
        self.save(at, model, fitting)?;
        if self.stop.requested() {
            return Err(self.interrupted());
        }
        let stop = was_validated && fitting.stopping.should_stop(epoch);
        if stop {
            self.run.log(&format!(
                "{}: no improvement of {} for {} epochs, stopping",
                stage.name,
                eval.monitor,
                fitting.stopping.since_best(epoch)
            ));
        }
        Ok(stop)
    }

    /// The validation of epoch `epoch`, observed by `stopping`.
    fn validate_epoch(
        &self,
        model: &Model,
        input: Input,
        stopping: &mut EarlyStopping,
        epoch: usize,
    ) -> Validation {
        let started = Instant::now();
        let report = self.validate(model, input);
        let value = stopping.value(&report);
        let improved = stopping.observe(epoch, value);
        Validation {
            report,
            value,
            improved,
            secs: started.elapsed().as_secs_f64(),
        }
    }

    /// Writes a checkpoint at `at` of `model` as `fitting` stands.
    fn save(&mut self, at: Position, model: &Model, fitting: &Fitting) -> Result<(), TrainError> {
        let trained = (model, Some(&fitting.optimizer));
        let best = fitting.best.as_ref();
        self.checkpointer
            .save(self.run, at, trained, best, &self.log)
    }

    /// Marks stage `index`, labelled `name`, finished with `fitted`.
    pub(crate) fn finish_stage(
        &mut self,
        index: usize,
        name: &str,
        fitted: &Fitted,
    ) -> Result<(), TrainError> {
        self.checkpointer
            .finish_stage(self.run, (index, name), fitted, &self.log)
    }

    /// The error of a run stopped from outside, naming its directory.
    fn interrupted(&self) -> TrainError {
        TrainError::Interrupted {
            run_dir: self.run.dir().to_owned(),
        }
    }

    /// Validation metrics of `model`.
    fn validate(&self, model: &Model, input: Input) -> MetricsReport {
        evaluate_model(
            model,
            input,
            self.data,
            self.plan,
            HeldOut::Validation,
            self.eval,
            &self.device,
            self.ranks.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 2 epochs of 5 and the last; a fixed schedule never validates; `every = 0` is 1.
    #[test]
    fn a_selecting_schedule_validates_every_few_epochs_and_the_last() {
        let validated = |schedule: Schedule, every| {
            (1..=schedule.epochs())
                .filter(|&e| schedule.validates(e, every))
                .collect::<Vec<_>>()
        };
        assert_eq!(validated(Schedule::Select(5), 2), [2, 4, 5]);
        assert_eq!(validated(Schedule::Select(3), 0), [1, 2, 3]);
        assert_eq!(validated(Schedule::Fixed(4), 1), Vec::<usize>::new());
        assert_eq!(Schedule::Fixed(4).epochs(), 4);
    }
}
