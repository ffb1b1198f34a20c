//! The training loop: epochs of positives with resampled negatives, Adam, validation after every
//! epoch, early stopping, and the best model kept.

use burn::optim::GradientsParams;
use burn::prelude::*;
use ember_data::Dataset;
use ember_data::sampling::TrainingEpoch;
use ember_data::sequences::{FlatBatch, SequenceEpoch};
use ember_metrics::MetricsReport;
use ember_models::{EpochPairs, Model, ModelKind, SequenceBatch, SequenceTask, UserRows};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use serde_json::json;
use std::time::Instant;

use crate::adam::{Adam, AdamLayout, AdamSettings};
use crate::evaluate::{
    EvaluationPlan, HeldOut, ModelScorer, RatingPredictor, dense_rating_rows, evaluate_ratings,
    higher_is_better, rating_rows, user_rows,
};
use crate::plot::EpochPoint;
use crate::{RunConfig, RunDir, TrainError};

/// What happens to gradients between the backward pass and the optimiser step.
///
/// On one device nothing; for data-parallel training over several devices, an implementation
/// all-reduces (averages) the gradients of the replicas here (burn's `DistributedContext`), and
/// the rest of the loop stays as it is.
pub trait GradientSync {
    /// Returns the gradients to apply.
    fn sync(&mut self, grads: GradientsParams) -> GradientsParams;
}

/// One optimiser step on `loss`: backward, the gradient hook, Adam. The trainer and
/// `ember bench train` both step through here, so a data-parallel `GradientSync` serves both.
pub(crate) fn optimizer_step(
    model: Model,
    loss: Tensor<1>,
    optimizer: &mut Adam,
    sync: &mut dyn GradientSync,
    learning_rate: f64,
) -> Model {
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optimizer.step(learning_rate, model, sync.sync(grads))
}

/// Training on a single device.
#[derive(Debug, Default)]
pub struct SingleDevice;

impl GradientSync for SingleDevice {
    fn sync(&mut self, grads: GradientsParams) -> GradientsParams {
        grads
    }
}

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

/// One epoch's training figures.
struct EpochStats {
    loss: f32,
    samples_per_sec: f64,
    train_secs: f64,
}

impl EpochStats {
    /// Closes the epoch's progress bar and reads the loss back once: `loss_sum` summed the
    /// batch losses weighted by their examples (`examples` in all); `samples` counts what was
    /// scored, for the rate.
    fn finish(
        bar: ProgressBar,
        loss_sum: Tensor<1>,
        examples: usize,
        samples: usize,
        started: Instant,
    ) -> Self {
        bar.finish_and_clear();
        let train_secs = started.elapsed().as_secs_f64();
        Self {
            loss: loss_sum.into_scalar::<f32>() / examples.max(1) as f32,
            samples_per_sec: samples as f64 / train_secs,
            train_secs,
        }
    }
}

impl Trainer<'_> {
    /// Trains `model` on the schedule. `stage` labels the per-epoch lines (`neumf`, or
    /// `gmf`/`mlp` during NeuMF pre-training).
    pub fn fit(
        &mut self,
        mut model: Model,
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
            let valid = self.validate(&model);
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
        for epoch in 1..=epochs {
            let label = format!("{stage} epoch {epoch}/{epochs}");
            let (next, stats) = match model.kind() {
                ModelKind::Pairs(_) => self.train_pairs_epoch(
                    model,
                    &mut optimizer,
                    &mut rng,
                    step.learning_rate,
                    &train_sets,
                    &label,
                )?,
                ModelKind::Ratings(_) => self.train_ratings_epoch(
                    model,
                    &mut optimizer,
                    &mut rng,
                    step.learning_rate,
                    &label,
                ),
                ModelKind::Rows(_) => self.train_rows_epoch(
                    model,
                    &mut optimizer,
                    &mut rng,
                    step.learning_rate,
                    &mut steps,
                    &label,
                ),
                ModelKind::Sequences(_) => self.train_sequences_epoch(
                    model,
                    &mut optimizer,
                    &mut rng,
                    step.learning_rate,
                    &train_sets,
                    &label,
                ),
            };
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
            let valid = self.validate(&model);
            let value = valid.get(&monitor).unwrap_or(f64::NAN);
            let improved = best.as_ref().is_none_or(|b| {
                let best_value = b.best_valid.get(&monitor).unwrap_or(f64::NAN);
                if best_value.is_nan() {
                    !value.is_nan()
                } else if higher_is_better(&monitor) {
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
    fn validate(&self, model: &Model) -> MetricsReport {
        if let ModelKind::Ratings(_) = model.kind() {
            let predictor = RatingPredictor::new(model, self.data, &self.device);
            return evaluate_ratings(
                &|pairs| predictor.predict(pairs),
                self.data,
                HeldOut::Validation,
            );
        }
        self.plan.evaluate(
            &ModelScorer::new(model, self.data, &self.device, HeldOut::Validation),
            self.data,
            HeldOut::Validation,
            &self.config.eval.ks,
            self.config.eval.batch_users,
        )
    }

    /// One pass over freshly sampled (user, item) pairs with negatives, for pair models.
    fn train_pairs_epoch(
        &mut self,
        mut model: Model,
        optimizer: &mut Adam,
        rng: &mut SmallRng,
        learning_rate: f64,
        train_sets: &[Vec<u32>],
        label: &str,
    ) -> Result<(Model, EpochStats), TrainError> {
        let cfg = &self.config.train;
        let started = Instant::now();
        let num_items = self.data.num_items() as u32;
        let examples =
            TrainingEpoch::sample(&self.data.train, train_sets, num_items, cfg.negatives, rng);
        // The whole epoch goes to the device at once; batches are slices there.
        let epoch = EpochPairs::new(
            &examples.users,
            &examples.positives,
            &examples.negatives,
            cfg.batch_size,
            (self.data.num_users(), self.data.num_items()),
            self.plan_chunk,
            &self.device,
        );
        let batches = epoch.batches();
        let bar = self.progress_bar(batches as u64, label);
        let mut loss_sum = Tensor::<1>::zeros([1], &self.device);
        let mut done = 0; // positives trained so far
        for b in 0..batches {
            let batch = epoch.batch(b);
            let ModelKind::Pairs(pairs) = model.kind() else {
                unreachable!("chosen by the caller")
            };
            let loss = pairs.loss(&batch, cfg.loss);
            // Accumulated on the device; read back only when shown.
            loss_sum = loss_sum + loss.clone().detach().mul_scalar(batch.positives as f64);
            done += batch.positives;
            model = optimizer_step(model, loss, optimizer, self.sync.as_mut(), learning_rate);
            bar.inc(1);
            if b % 50 == 49 && !bar.is_hidden() {
                let mean = loss_sum.clone().into_scalar::<f32>() / done as f32;
                let rate =
                    done as f64 * (1 + cfg.negatives) as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!("loss {mean:.4}  {rate:.0} samples/s"));
            }
        }
        let samples = examples.len() * (1 + cfg.negatives);
        let stats = EpochStats::finish(bar, loss_sum, examples.len(), samples, started);
        Ok((model, stats))
    }

    /// One pass over the training users in shuffled batches of `batch_size` rows, for row
    /// models. Each batch's rows are made dense on the host and uploaded: the user × item
    /// matrix is never built whole.
    fn train_rows_epoch(
        &mut self,
        mut model: Model,
        optimizer: &mut Adam,
        rng: &mut SmallRng,
        learning_rate: f64,
        steps: &mut usize,
        label: &str,
    ) -> (Model, EpochStats) {
        let cfg = &self.config.train;
        let started = Instant::now();
        let ModelKind::Rows(row_model) = model.kind() else {
            unreachable!("chosen by the caller")
        };
        let mut users: Vec<u32> = if row_model.uses_user_ids() {
            // Id-based: every user with a row (held-out users' fold-in items included).
            (0..self.data.num_users() as u32)
                .filter(|&u| !self.data.train[u as usize].is_empty())
                .collect()
        } else {
            self.data.training_users()
        };
        users.shuffle(rng);
        let num_items = self.data.num_items();
        let batches = users.len().div_ceil(cfg.batch_size.max(1));
        let bar = self.progress_bar(batches as u64, label);
        let mut loss_sum = Tensor::<1>::zeros([1], &self.device);
        for (b, chunk) in users.chunks(cfg.batch_size.max(1)).enumerate() {
            let ids: Vec<i32> = chunk.iter().map(|&u| u as i32).collect();
            let batch = UserRows {
                users: Tensor::from_data(TensorData::new(ids, [chunk.len()]), &self.device),
                rows: user_rows(&self.data.train, chunk, num_items, &self.device),
                step: *steps,
            };
            let ModelKind::Rows(rows) = model.kind() else {
                unreachable!("chosen by the caller")
            };
            let loss = rows.row_loss(&batch);
            loss_sum = loss_sum + loss.clone().detach().mul_scalar(chunk.len() as f64);
            model = optimizer_step(model, loss, optimizer, self.sync.as_mut(), learning_rate);
            *steps += 1;
            bar.inc(1);
            if b % 10 == 9 && !bar.is_hidden() {
                let done = (b + 1) * cfg.batch_size;
                let mean = loss_sum.clone().into_scalar::<f32>() / done as f32;
                bar.set_message(format!("loss {mean:.4}"));
            }
        }
        let stats = EpochStats::finish(bar, loss_sum, users.len(), users.len(), started);
        (model, stats)
    }

    /// One pass over the rows of the training rating matrix (items for I-AutoRec) in shuffled
    /// batches of `batch_size`, for rating models; rows are made dense per batch.
    fn train_ratings_epoch(
        &mut self,
        mut model: Model,
        optimizer: &mut Adam,
        rng: &mut SmallRng,
        learning_rate: f64,
        label: &str,
    ) -> (Model, EpochStats) {
        let cfg = &self.config.train;
        let started = Instant::now();
        let ModelKind::Ratings(rating_model) = model.kind() else {
            unreachable!("chosen by the caller")
        };
        let item_based = rating_model.item_based();
        let rows = rating_rows(self.data, item_based);
        let width = if item_based {
            self.data.num_users()
        } else {
            self.data.num_items()
        };
        let mut order: Vec<usize> = (0..rows.len()).filter(|&r| !rows[r].is_empty()).collect();
        order.shuffle(rng);
        let batch_size = cfg.batch_size.max(1);
        let bar = self.progress_bar(order.len().div_ceil(batch_size) as u64, label);
        let mut loss_sum = Tensor::<1>::zeros([1], &self.device);
        for chunk in order.chunks(batch_size) {
            let batch_rows: Vec<&[(u32, f32)]> =
                chunk.iter().map(|&r| rows[r].as_slice()).collect();
            let ModelKind::Ratings(rating_model) = model.kind() else {
                unreachable!("chosen by the caller")
            };
            let loss =
                rating_model.rating_loss(dense_rating_rows(&batch_rows, width, &self.device));
            loss_sum = loss_sum + loss.clone().detach().mul_scalar(chunk.len() as f64);
            model = optimizer_step(model, loss, optimizer, self.sync.as_mut(), learning_rate);
            bar.inc(1);
        }
        let stats = EpochStats::finish(bar, loss_sum, order.len(), order.len(), started);
        (model, stats)
    }

    /// One pass over the training users' sequences in shuffled batches of `batch_size` windows,
    /// for sequence models: next-item targets with sampled negatives (SASRec), or masked items
    /// (BERT4Rec), drawn afresh every epoch.
    fn train_sequences_epoch(
        &mut self,
        mut model: Model,
        optimizer: &mut Adam,
        rng: &mut SmallRng,
        learning_rate: f64,
        train_sets: &[Vec<u32>],
        label: &str,
    ) -> (Model, EpochStats) {
        let cfg = &self.config.train;
        let started = Instant::now();
        let ModelKind::Sequences(sequence_model) = model.kind() else {
            unreachable!("chosen by the caller")
        };
        let users = self.data.training_users();
        let (num_items, max_len) = (sequence_model.num_items(), sequence_model.max_len());
        let epoch = match sequence_model.task() {
            SequenceTask::NextItem { negatives } => SequenceEpoch::next_item(
                &self.data.train,
                &users,
                train_sets,
                num_items,
                max_len,
                negatives,
                rng,
            ),
            SequenceTask::MaskedItem { mask_prob } => SequenceEpoch::masked_item(
                &self.data.train,
                &users,
                num_items,
                max_len,
                mask_prob,
                rng,
            ),
        };
        let batch_size = cfg.batch_size.max(1);
        let bar = self.progress_bar(epoch.len().div_ceil(batch_size) as u64, label);
        let mut loss_sum = Tensor::<1>::zeros([1], &self.device);
        let mut targets = 0;
        for start in (0..epoch.len()).step_by(batch_size) {
            let rows = start..(start + batch_size).min(epoch.len());
            let flat = epoch.batch(rows.clone());
            let count = flat.targets.len();
            let batch = sequence_batch(flat, rows.len(), max_len, &self.device);
            let ModelKind::Sequences(sequence_model) = model.kind() else {
                unreachable!("chosen by the caller")
            };
            let loss = sequence_model.sequence_loss(&batch);
            loss_sum = loss_sum + loss.clone().detach().mul_scalar(count as f64);
            targets += count;
            model = optimizer_step(model, loss, optimizer, self.sync.as_mut(), learning_rate);
            bar.inc(1);
            if (start / batch_size) % 20 == 19 && !bar.is_hidden() {
                let mean = loss_sum.clone().into_scalar::<f32>() / targets as f32;
                bar.set_message(format!("loss {mean:.4}"));
            }
        }
        let stats = EpochStats::finish(bar, loss_sum, targets, targets, started);
        (model, stats)
    }

    fn progress_bar(&self, len: u64, prefix: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} batches {elapsed} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_string());
        bar
    }
}

/// A batch of sequence windows on `device`.
fn sequence_batch(flat: FlatBatch, rows: usize, max_len: usize, device: &Device) -> SequenceBatch {
    let targets = flat.targets.len();
    let ids = |values: Vec<i32>, len: usize| {
        Tensor::<1, Int>::from_data(TensorData::new(values, [len]), device)
    };
    let k = flat.negatives.len() / targets.max(1);
    SequenceBatch {
        inputs: ids(flat.inputs, rows * max_len).reshape([rows, max_len]),
        positions: ids(flat.positions, targets),
        targets: ids(flat.targets, targets),
        negatives: (k > 0).then(|| ids(flat.negatives, targets * k).reshape([targets, k])),
    }
}
