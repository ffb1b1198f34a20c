//! The training schedule: epochs of freshly drawn batches (the one loop in [`crate::epoch`]),
//! validation every `eval.every` epochs, early stopping, and the best model kept.

use burn::prelude::*;
use ember_data::Dataset;
use ember_metrics::MetricsReport;
use ember_models::{Input, Model};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde_json::json;
use std::time::Instant;

use crate::adam::{Adam, AdamLayout, AdamSettings};
use crate::batches::{EpochSource, training_epoch};
use crate::epoch::{GradientSync, Stepper, progress_bar, train_epoch};
use crate::evaluate::{EvaluationPlan, HeldOut, evaluate_model};
use crate::plot::EpochPoint;
use crate::{RunConfig, RunDir, TrainError};

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
    /// Put before stage names in logs and curves (`"refit "` during the refit).
    pub(crate) stage_prefix: &'static str,
    /// Every epoch trained so far, for the learning-curve plot.
    pub(crate) curves: Vec<EpochPoint>,
    /// Applied to the gradients before every optimiser step.
    pub(crate) sync: Box<dyn GradientSync>,
    /// Rows per chunk of the embedding gradients' segment plans; `None` for burn's gradient.
    pub(crate) plan_chunk: Option<usize>,
    /// How Adam lays out its update for the device.
    pub(crate) adam_layout: AdamLayout,
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
    /// Trains `model`, which reads `input`, on the schedule. `stage` labels the per-epoch lines
    /// (`neumf`, or `gmf`/`mlp` during NeuMF pre-training).
    pub fn fit(
        &mut self,
        mut model: Model,
        input: Input,
        stage: &str,
        schedule: Schedule,
        step: StepSettings,
    ) -> Result<Fitted, TrainError> {
        let stage = format!("{}{stage}", self.stage_prefix);
        let stage = stage.as_str();
        let cfg = &self.config.train;
        let monitor = self.config.eval.monitor.clone();
        let mut optimizer = Adam::new(
            AdamSettings {
                beta_2: cfg.adam_beta2 as f32,
                weight_decay: cfg.weight_decay as f32,
                ..AdamSettings::default()
            },
            self.adam_layout,
        );
        let mut rng = SmallRng::seed_from_u64(step.seed);
        let train_sets = self.data.train_sets();
        let mut best: Option<Fitted> = None;
        if step.keep_initial && matches!(schedule, Schedule::Select(_)) {
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
        let mut steps = 0; // optimiser steps so far (the autoencoders' KL annealing)
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
        };
        for epoch in 1..=epochs {
            let label = format!("{stage} epoch {epoch}/{epochs}");
            let batches = training_epoch(input, &source, &mut rng);
            let bar = progress_bar(self.progress, batches.batches(), &label);
            let stepper = Stepper {
                optimizer: &mut optimizer,
                sync: self.sync.as_mut(),
                learning_rate: step.learning_rate,
                steps: &mut steps,
            };
            let (next, stats) = train_epoch(model, batches.as_ref(), stepper, &bar);
            model = next;
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
            if improved {
                best = Some(Fitted {
                    model: model.clone(),
                    best_epoch: epoch,
                    best_valid: valid,
                });
            } else {
                let since_best = epoch - best.as_ref().map_or(0, |b| b.best_epoch);
                if since_best >= cfg.patience.max(1) {
                    self.run.log(&format!(
                        "{stage}: no improvement of {monitor} for {since_best} epochs, stopping"
                    ));
                    break;
                }
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
            },
        }))
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
        )
    }
}
