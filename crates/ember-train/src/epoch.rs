//! One epoch of training: the loop the trainer and `ember bench train` share. For each batch:
//! forward and loss, backward, the gradient-sync slot (data-parallel training averages the
//! replicas' gradients there), Adam; progress on the way, the loss read back once at the end.

use burn::optim::GradientsParams;
use burn::prelude::*;
use ember_models::Model;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

use crate::adam::Adam;
use crate::batches::{Epoch, StepBatch};
use crate::collective::GradientSync;
use crate::seeds;

/// What one optimiser step needs besides the model and the batch.
pub struct Stepper<'a> {
    /// The optimiser, with its moments.
    pub optimizer: &'a mut Adam,
    /// The gradient hook.
    pub sync: &'a mut dyn GradientSync,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Optimiser steps taken so far (annealed losses read it); advanced by every step.
    pub steps: &'a mut usize,
}

/// One epoch's training figures.
#[derive(Debug, Clone, Copy)]
pub struct EpochStats {
    /// The mean loss over the epoch's examples.
    pub loss: f32,
    /// Examples trained on (positives, users, rating rows or targets).
    pub examples: usize,
    /// Scored samples (positives with their negatives; otherwise examples).
    pub samples: usize,
    /// Scored samples per second.
    pub samples_per_sec: f64,
    /// Wall seconds.
    pub train_secs: f64,
}

/// Where an epoch stands: the next batch, and what the batches before it summed. A checkpoint
/// taken in the middle of an epoch keeps it, so that the resumed epoch reports the loss an
/// uninterrupted one would.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochProgress {
    /// Batches done.
    pub batch: usize,
    /// The batches' losses weighted by their examples, summed.
    pub loss_sum: f32,
    /// Examples trained on.
    pub examples: usize,
    /// Scored samples.
    pub samples: usize,
    /// Wall seconds spent.
    pub secs: f64,
}

/// How an epoch's run ended.
pub enum EpochEnd {
    /// Every batch was trained on.
    Complete(EpochStats),
    /// `stop` asked to stop after the batch `progress.batch - 1`.
    Stopped(EpochProgress),
}

/// How often a visible progress bar reads the loss back from the device.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Trains `model` on the batches of `epoch` from `from.batch` on, in order (the earlier ones
/// having been taken already), seeding burn's generator before each batch with
/// `seeds::step(seed, epoch_number, batch)`. After each batch `stop(next batch)` may end the
/// run early; the progress so far is then returned to resume from.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    mut model: Model,
    epoch: &dyn Epoch,
    mut stepper: Stepper,
    (seed, epoch_number): (u64, usize),
    from: EpochProgress,
    stop: &mut dyn FnMut(usize) -> bool,
    bar: &ProgressBar,
) -> (Model, EpochEnd) {
    let device = model_device(&model);
    let replica = stepper.sync.replica();
    let mut totals = Totals::resumed(from, replica.rank == 0, &device);
    let mut shown = Instant::now();
    bar.set_position(from.batch as u64);
    for b in from.batch..epoch.batches() {
        let batch = epoch.batch(b);
        device.seed(seeds::replica(seeds::step(seed, epoch_number, b), replica));
        model = stepper.step(model, batch, &mut totals);
        bar.inc(1);
        if !bar.is_hidden() && shown.elapsed() >= PROGRESS_EVERY {
            shown = Instant::now();
            bar.set_message(totals.describe());
        }
        if b + 1 < epoch.batches() && stop(b + 1) {
            // A checkpoint keeps the epoch's totals over every replica.
            return (
                model,
                EpochEnd::Stopped(totals.progress(b + 1, stepper.sync)),
            );
        }
    }
    bar.finish_and_clear();
    (model, EpochEnd::Complete(totals.stats(stepper.sync)))
}

impl Stepper<'_> {
    /// One optimiser step of `model` on `batch`, its loss and counts added to `totals`.
    fn step(&mut self, model: Model, batch: StepBatch, totals: &mut Totals) -> Model {
        let StepBatch {
            batch,
            examples,
            samples,
        } = batch;
        // A replica whose share of the batch is empty still takes part in the sync.
        let grads = batch.map(|batch| {
            let loss = model.loss(&batch, *self.steps);
            totals.loss_sum =
                totals.loss_sum.clone() + loss.clone().detach().mul_scalar(examples as f64);
            GradientsParams::from_grads(loss.backward(), &model)
        });
        totals.examples += examples;
        totals.samples += samples;
        let grads = self.sync.sync(&model, grads, examples);
        let model = self.optimizer.step(self.learning_rate, model, grads);
        *self.steps += 1;
        model
    }
}

/// An epoch's running sums on this replica.
struct Totals {
    /// The batches' losses weighted by their examples, summed on the device (read back only
    /// when shown).
    loss_sum: Tensor<1>,
    examples: usize,
    samples: usize,
    /// Wall seconds of the epoch before this run of it (before a checkpoint).
    secs_before: f64,
    started: Instant,
}

impl Totals {
    /// The sums carried from before a checkpoint, `from`, counted once: by the first replica.
    fn resumed(from: EpochProgress, first_replica: bool, device: &Device) -> Self {
        let (loss_sum, examples, samples) = if first_replica {
            (from.loss_sum, from.examples, from.samples)
        } else {
            (0.0, 0, 0)
        };
        Self {
            loss_sum: Tensor::<1>::from_floats([loss_sum], device),
            examples,
            samples,
            secs_before: from.secs,
            started: Instant::now(),
        }
    }

    fn secs(&self) -> f64 {
        self.secs_before + self.started.elapsed().as_secs_f64()
    }

    /// The mean loss and throughput so far, for a progress bar.
    fn describe(&self) -> String {
        let mean = self.loss_sum.clone().into_scalar::<f32>() / self.examples.max(1) as f32;
        let rate = self.samples as f64 / self.secs();
        format!("loss {mean:.4}  {rate:.0} samples/s")
    }

    /// The loss sum, examples and samples over every replica (a single process's stay as
    /// they are).
    fn summed(&self, sync: &mut dyn GradientSync) -> [f64; 3] {
        let mut totals = [
            self.loss_sum.clone().into_scalar::<f32>() as f64, // waits for the device
            self.examples as f64,
            self.samples as f64,
        ];
        sync.sum(&mut totals);
        totals
    }

    /// Where the epoch stands before batch `next`.
    fn progress(&self, next: usize, sync: &mut dyn GradientSync) -> EpochProgress {
        let totals = self.summed(sync);
        EpochProgress {
            batch: next,
            loss_sum: totals[0] as f32,
            examples: totals[1] as usize,
            samples: totals[2] as usize,
            secs: self.secs(),
        }
    }

    /// The finished epoch's figures.
    fn stats(&self, sync: &mut dyn GradientSync) -> EpochStats {
        let totals = self.summed(sync);
        let (examples, samples) = (totals[1] as usize, totals[2] as usize);
        let loss = totals[0] as f32 / examples.max(1) as f32;
        let train_secs = self.secs();
        EpochStats {
            loss,
            examples,
            samples,
            samples_per_sec: samples as f64 / train_secs,
            train_secs,
        }
    }
}

/// A progress bar of `batches` batches labelled `label`, or a hidden one.
pub fn progress_bar(show: bool, batches: usize, label: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(batches as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30.cyan/blue}] {pos}/{len} batches {elapsed} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// The device a model's parameters live on.
fn model_device(model: &Model) -> Device {
    model
        .devices()
        .into_iter()
        .next()
        .expect("a model has parameters")
}
