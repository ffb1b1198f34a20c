//! The training schedule: epochs of freshly drawn batches (the one loop in [`crate::epoch`]),
//! validation every `eval.every` epochs, early stopping, and the best model kept.

use burn::prelude::*;
use ember_data::Dataset;
use ember_metrics::MetricsReport;
use ember_models::{Input, Model};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::adam::{Adam, AdamLayout, AdamSettings, Moments};
use crate::batches::HeldOut;
use crate::batches::{EpochSource, training_epoch};
use crate::checkpoint::{self, BestSoFar, Saved, StageDone, State};
use crate::collective::{Collective, GradientSync, Shard};
use crate::epoch::{EpochEnd, EpochProgress, Stepper, progress_bar, train_epoch};
use crate::evaluate::{EvaluationPlan, evaluate_model};
use crate::plot::EpochPoint;
use crate::{RunConfig, RunDir, TrainError, seeds};

/// The outcome of fitting one model.
pub struct Fitted {
    /// The model of the best validation epoch.
    pub model: Model,
    /// 1-based best epoch.
    pub best_epoch: usize,
    /// Validation metrics of the best epoch.
    pub best_valid: MetricsReport,
}

/// Trains models for one run: shared data, candidates, device and run directory.
pub struct Trainer<'a> {
    pub(crate) config: &'a RunConfig,
    pub(crate) data: &'a Dataset,
    pub(crate) plan: &'a EvaluationPlan,
    pub(crate) device: Device,
    pub(crate) run: &'a mut RunDir,
    pub(crate) progress: bool,
    /// Every epoch trained so far, for the learning-curve plot.
    pub(crate) curves: Vec<EpochPoint>,
    /// Applied to the gradients before every optimiser step.
    pub(crate) sync: Box<dyn GradientSync>,
    /// The ranks of a distributed run (one process otherwise): they share each batch and each
    /// evaluation, and stop together.
    pub(crate) ranks: Arc<dyn Collective>,
    /// Rows per chunk of the embedding gradients' segment plans; `None` for burn's gradient.
    pub(crate) plan_chunk: Option<usize>,
    /// How Adam lays out its update for the device.
    pub(crate) adam_layout: AdamLayout,
    /// Set from outside (Ctrl-C, SIGTERM) to stop after the current batch with a checkpoint.
    pub(crate) stop: Option<Arc<AtomicBool>>,
    /// What the run was started as and where it finishes (kept in checkpoints).
    pub(crate) origin: checkpoint::Origin,
    /// The run's stages finished so far.
    pub(crate) done: Vec<StageDone>,
    /// Lines written to `metrics.jsonl`.
    pub(crate) epoch_lines: usize,
}

/// Where a stage continues from a checkpoint.
pub struct Resume {
    /// Epochs completed.
    pub epoch: usize,
    /// How far the next epoch got.
    pub progress: EpochProgress,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Adam's step count.
    pub adam_steps: i32,
    /// Adam's moments by parameter path.
    pub moments: Moments,
    /// The best epoch so far, with its model.
    pub best: Option<Fitted>,
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

/// Per-model optimisation settings of [`Trainer::fit`].
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    /// Seed of shuffling and negative sampling.
    pub seed: u64,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Whether the model as given competes on validation as epoch 0 (a pre-trained start).
    pub keep_initial: bool,
}

impl Trainer<'_> {
    /// Whether a stop was asked for from outside, on any rank (each rank is signalled on its
    /// own; all must stop at the same batch).
    fn stop_requested(&self) -> bool {
        let local = self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
        self.ranks.any(local)
    }

    /// Writes a checkpoint of stage `stage` after `epoch` epochs and `progress` into the next.
    #[allow(clippy::too_many_arguments)]
    fn checkpoint(
        &mut self,
        stage: usize,
        epoch: usize,
        progress: EpochProgress,
        steps: usize,
        model: &Model,
        optimizer: &Adam,
        best: Option<&Fitted>,
    ) -> Result<(), TrainError> {
        let state = State {
            version: checkpoint::VERSION,
            origin: self.origin.clone(),
            done: self.done.clone(),
            stage,
            epoch,
            progress,
            steps,
            adam_steps: optimizer.steps(),
            best: best.map(|b| BestSoFar {
                epoch: b.best_epoch,
                valid: b.best_valid.clone(),
            }),
            curves: self.curves.clone(),
            epoch_lines: self.epoch_lines,
        };
        // Rank 0's checkpoint is the run's; the other ranks hold the same state and resume
        // from it.
        if self.ranks.rank() == 0 {
            let moments = optimizer.moments(model);
            checkpoint::write(
                self.run.dir(),
                &state,
                Saved {
                    model,
                    best: best.map(|b| &b.model),
                    adam: &moments,
                },
            )?;
        }
        // From now on a failed or stopped run keeps its directory: it can be resumed.
        self.run.keep();
        Ok(())
    }

    /// Marks stage `stage` finished with `fitted` (its model kept in `stages/`), with a
    /// checkpoint at the start of the next stage.
    pub(crate) fn finish_stage(
        &mut self,
        stage: usize,
        name: &str,
        fitted: &Fitted,
    ) -> Result<(), TrainError> {
        checkpoint::save_stage(self.run.dir(), stage, &fitted.model)?;
        self.done.push(StageDone {
            name: name.to_string(),
            best_epoch: fitted.best_epoch,
            best_valid: fitted.best_valid.clone(),
        });
        let optimizer = Adam::new(AdamSettings::default(), self.adam_layout);
        self.checkpoint(
            stage + 1,
            0,
            EpochProgress::default(),
            0,
            &fitted.model,
            &optimizer,
            None,
        )
    }

    /// Trains `model`, which reads `input`, on the schedule: stage `index` of the run, labelled
    /// `stage` in the per-epoch lines (`neumf`, or `gmf`/`mlp` during NeuMF pre-training).
    /// With `resume`, `model` is the checkpoint's and training continues where it stopped.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        &mut self,
        mut model: Model,
        input: Input,
        (index, stage): (usize, &str),
        schedule: Schedule,
        step: StepSettings,
        resume: Option<Resume>,
    ) -> Result<Fitted, TrainError> {
        let cfg = &self.config.train;
        let monitor = self.config.eval.monitor.clone();
        let settings = AdamSettings {
            beta_2: cfg.adam_beta2 as f32,
            weight_decay: cfg.weight_decay as f32,
            ..AdamSettings::default()
        };
        let train_sets = self.data.train_sets();
        let (mut optimizer, mut best, first_epoch, mut progress, mut steps) = match resume {
            Some(r) => (
                Adam::restore(
                    settings,
                    self.adam_layout,
                    &model,
                    r.adam_steps,
                    r.moments,
                    &self.device,
                ),
                r.best,
                r.epoch + 1,
                r.progress,
                r.steps,
            ),
            None => (
                Adam::new(settings, self.adam_layout),
                None,
                1,
                EpochProgress::default(),
                0, // optimiser steps so far (the autoencoders' KL annealing)
            ),
        };
        if step.keep_initial && matches!(schedule, Schedule::Select(_)) && first_epoch == 1 {
            // A model that starts trained (NeuMF from GMF and MLP) competes as "epoch 0".
            let valid = self.validate(&model, input);
            let value = valid.get(&monitor).unwrap_or(f64::NAN);
            self.run.log(&format!(
                "{stage} epoch 0 (as initialised): valid {monitor} {value:.4}"
            ));
            best = Some(Fitted {
                model: model.clone(),
                best_epoch: 0,
                best_valid: valid,
            });
        }
        let every = self.config.eval.every.max(1);
        let epochs = match schedule {
            Schedule::Select(n) | Schedule::Fixed(n) => n,
        };
        let source = EpochSource {
            data: self.data,
            train_sets: &train_sets,
            batch_size: cfg.batch_size,
            negatives: cfg.negatives,
            plan_chunk: self.plan_chunk,
            device: self.device.clone(),
            shard: Shard::of(self.ranks.as_ref()),
        };
        let checkpoint_every = cfg.checkpoint_every;
        for epoch in first_epoch..=epochs {
            let label = format!("{stage} epoch {epoch}/{epochs}");
            // Each epoch's examples come from a generator of its own, so that a resumed run
            // draws what an uninterrupted one draws.
            let mut rng = SmallRng::seed_from_u64(seeds::epoch(step.seed, epoch));
            let batches = training_epoch(input, &source, &mut rng);
            // Batches done before a checkpoint in the middle of this epoch: taken, not trained.
            for b in 0..progress.batch {
                let _ = batches.batch(b);
            }
            let bar = progress_bar(self.progress, batches.batches(), &label);
            let stats = loop {
                let (stop, ranks) = (self.stop.clone(), self.ranks.clone());
                let mut pause = |next: usize| {
                    let local = stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
                    // Every rank asks, so that all pause at the same batch.
                    ranks.any(local) || (checkpoint_every > 0 && next % checkpoint_every == 0)
                };
                let stepper = Stepper {
                    optimizer: &mut optimizer,
                    sync: self.sync.as_mut(),
                    learning_rate: step.learning_rate,
                    steps: &mut steps,
                };
                let (next, end) = train_epoch(
                    model,
                    batches.as_ref(),
                    stepper,
                    (step.seed, epoch),
                    progress,
                    &mut pause,
                    &bar,
                );
                model = next;
                match end {
                    EpochEnd::Complete(stats) => break stats,
                    EpochEnd::Stopped(done) => {
                        progress = done;
                        self.checkpoint(
                            index,
                            epoch - 1,
                            progress,
                            steps,
                            &model,
                            &optimizer,
                            best.as_ref(),
                        )?;
                        if self.stop_requested() {
                            bar.abandon();
                            return Err(self.interrupted());
                        }
                    }
                }
            };
            progress = EpochProgress::default();
            if let Some(report) = self.sync.report() {
                self.run.log(&format!("{label}: {report}"));
            }
            if self.ranks.size() > 1 {
                match crate::distributed::check_replicas(&model, self.ranks.as_ref()) {
                    Ok(print) => self.run.log(&format!(
                        "{label}: weights identical on all {} ranks (fingerprint {print:016x})",
                        self.ranks.size()
                    )),
                    Err(prints) => {
                        return Err(TrainError::ReplicasDiverged {
                            stage: stage.to_string(),
                            epoch,
                            prints: prints
                                .iter()
                                .map(|p| format!("{p:016x}"))
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                }
            }
            if !stats.loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    loss: stats.loss,
                });
            }
            let mut line = json!({
                "stage": stage,
                "epoch": epoch,
                "loss": stats.loss,
                "samples_per_sec": stats.samples_per_sec,
                "train_secs": stats.train_secs,
            });
            let summary = format!(
                "{label}: loss {:.4}, {:.0} samples/s, train {:.1}s",
                stats.loss, stats.samples_per_sec, stats.train_secs
            );
            // Validation runs every `eval.every` epochs and after the last.
            if schedule == Schedule::Fixed(epochs) || (epoch % every != 0 && epoch != epochs) {
                self.curves.push(EpochPoint {
                    stage: stage.to_string(),
                    epoch,
                    loss: stats.loss as f64,
                    valid: None,
                });
                self.run.log(&summary);
                self.run
                    .append_line(crate::files::EPOCHS, &line.to_string())?;
                self.epoch_lines += 1;
                self.end_of_epoch(index, epoch, steps, &model, &optimizer, best.as_ref())?;
                continue;
            }
            let eval_started = Instant::now();
            let valid = self.validate(&model, input);
            let value = valid.get(&monitor).unwrap_or(f64::NAN);
            let improved = best.as_ref().is_none_or(|b| {
                let best_value = b.best_valid.get(&monitor).unwrap_or(f64::NAN);
                if best_value.is_nan() {
                    !value.is_nan()
                } else if ember_metrics::higher_is_better(&monitor) {
                    value > best_value
                } else {
                    value < best_value
                }
            });
            self.run.log(&format!(
                "{summary}, eval {:.1}s, valid {monitor} {value:.4}{}",
                eval_started.elapsed().as_secs_f64(),
                if improved { " (best)" } else { "" }
            ));
            self.curves.push(EpochPoint {
                stage: stage.to_string(),
                epoch,
                loss: stats.loss as f64,
                valid: Some(value),
            });
            line["valid"] = valid
                .metrics
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            self.run
                .append_line(crate::files::EPOCHS, &line.to_string())?;
            self.epoch_lines += 1;
            if improved {
                best = Some(Fitted {
                    model: model.clone(),
                    best_epoch: epoch,
                    best_valid: valid,
                });
            }
            self.end_of_epoch(index, epoch, steps, &model, &optimizer, best.as_ref())?;
            let since_best = epoch - best.as_ref().map_or(0, |b| b.best_epoch);
            if !improved && since_best >= cfg.patience.max(1) {
                self.run.log(&format!(
                    "{stage}: no improvement of {monitor} for {since_best} epochs, stopping"
                ));
                break;
            }
        }
        Ok(best.unwrap_or_else(|| Fitted {
            model,
            best_epoch: epochs,
            best_valid: MetricsReport {
                protocol: "none (refit without validation)".into(),
                users: 0,
                skipped_users: 0,
                metrics: vec![],
                negatives: None,
                warnings: vec![],
            },
        }))
    }

    /// The checkpoint at the end of an epoch, and a stop there when one was asked for.
    fn end_of_epoch(
        &mut self,
        index: usize,
        epoch: usize,
        steps: usize,
        model: &Model,
        optimizer: &Adam,
        best: Option<&Fitted>,
    ) -> Result<(), TrainError> {
        self.checkpoint(
            index,
            epoch,
            EpochProgress::default(),
            steps,
            model,
            optimizer,
            best,
        )?;
        if self.stop_requested() {
            return Err(self.interrupted());
        }
        Ok(())
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
            &self.config.eval,
            &self.device,
            self.ranks.as_ref(),
        )
    }
}
