//! When the trainer writes checkpoints and what goes into them, and where a stage continues
//! from one (RecBole's `_save_checkpoint` and `resume_checkpoint`). The files themselves are
//! [`crate::checkpoint`]'s.

use ember_metrics::MetricsReport;
use ember_models::Model;

use crate::adam::{Adam, Moments};
use crate::checkpoint::{self, BestSoFar, Loaded, Origin, Saved, StageDone, State};
use crate::epoch::EpochProgress;
use crate::epoch_log::EpochLog;
use crate::{RunDir, TrainError};

/// A model kept from training: a stage's best so far, or its outcome.
pub struct Fitted {
    /// The model of the best validation epoch.
    pub model: Model,
    /// The epoch it was kept at: 0 for a model validated as built, else 1-based.
    pub best_epoch: usize,
    /// Validation metrics of that epoch.
    pub best_valid: MetricsReport,
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

/// A point of the run a checkpoint is taken at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// The stage being trained (its index among the run's stages).
    pub stage: usize,
    /// Its epochs completed.
    pub epoch: usize,
    /// How far the next epoch got.
    pub progress: EpochProgress,
    /// Optimiser steps of the stage so far.
    pub steps: usize,
}

impl Position {
    /// The start of stage `stage`.
    pub fn start_of(stage: usize) -> Self {
        Self {
            stage,
            epoch: 0,
            progress: EpochProgress::default(),
            steps: 0,
        }
    }
}

/// Writes a run's checkpoints: at the end of every epoch, every `train.checkpoint_every`
/// batches when set, when a stop is asked for, and when a stage ends.
pub struct Checkpointer {
    /// What the run was started as and where it finishes.
    origin: Origin,
    /// The run's stages finished so far.
    done: Vec<StageDone>,
    /// Batches between checkpoints within an epoch (0: none).
    every: usize,
    /// Whether this process writes them (rank 0: the other ranks hold the same state and
    /// resume from rank 0's).
    writes: bool,
}

impl Checkpointer {
    /// A checkpointer of the run `origin`, whose stages `done` are finished, writing every
    /// `every` batches (0: at epoch ends only) when `writes`.
    pub fn new(origin: Origin, done: Vec<StageDone>, every: usize, writes: bool) -> Self {
        Self {
            origin,
            done,
            every,
            writes,
        }
    }

    /// The run's stages finished so far.
    pub fn done(&self) -> &[StageDone] {
        &self.done
    }

    /// Whether a checkpoint is due before batch `next` of an epoch.
    pub fn due(&self, next: usize) -> bool {
        self.every > 0 && next % self.every == 0
    }

    /// Writes a checkpoint at `at` of `model`, trained by `optimizer` (`None` before its
    /// first step), with the stage's `best` so far and the epochs `log` holds. From then on a
    /// failed or stopped run keeps its directory: it can be resumed.
    pub fn save(
        &self,
        run: &mut RunDir,
        at: Position,
        (model, optimizer): (&Model, Option<&Adam>),
        best: Option<&Fitted>,
        log: &EpochLog,
    ) -> Result<(), TrainError> {
        if self.writes {
            let state = State {
                version: checkpoint::VERSION,
                origin: self.origin.clone(),
                done: self.done.clone(),
                stage: at.stage,
                epoch: at.epoch,
                progress: at.progress,
                steps: at.steps,
                adam_steps: optimizer.map_or(0, Adam::steps),
                best: best.map(|b| BestSoFar {
                    epoch: b.best_epoch,
                    valid: b.best_valid.clone(),
                }),
                curves: log.curves().to_vec(),
                epoch_lines: log.lines(),
            };
            let moments = optimizer.map(|o| o.moments(model)).unwrap_or_default();
            let saved = Saved {
                model,
                best: best.map(|b| &b.model),
                adam: &moments,
            };
            checkpoint::write(run.dir(), &state, saved)?;
        }
        run.keep();
        Ok(())
    }

    /// Marks stage `stage`, labelled `name`, finished with `fitted` (its model kept in
    /// `stages/`), with a checkpoint at the start of the next stage.
    pub fn finish_stage(
        &mut self,
        run: &mut RunDir,
        (stage, name): (usize, &str),
        fitted: &Fitted,
        log: &EpochLog,
    ) -> Result<(), TrainError> {
        checkpoint::save_stage(run.dir(), stage, &fitted.model)?;
        self.done.push(StageDone {
            name: name.to_string(),
            best_epoch: fitted.best_epoch,
            best_valid: fitted.best_valid.clone(),
        });
        let next = Position::start_of(stage + 1);
        self.save(run, next, (&fitted.model, None), None, log)
    }

    /// Where stage `stage` continues from `loaded`: `model` (a freshly built model of the
    /// stage) with the checkpoint's weights, and the rest of its state; `model` as it is when
    /// the checkpoint was not taken inside the stage.
    pub fn resume_point(
        loaded: &Loaded,
        stage: usize,
        model: Model,
    ) -> Result<(Model, Option<Resume>), TrainError> {
        let state = &loaded.state;
        let inside = state.stage == stage && (state.epoch > 0 || state.progress.batch > 0);
        if !inside {
            return Ok((model, None));
        }
        let best = match &state.best {
            Some(b) => Some(Fitted {
                model: loaded.best(model.clone())?,
                best_epoch: b.epoch,
                best_valid: b.valid.clone(),
            }),
            None => None,
        };
        let resume = Resume {
            epoch: state.epoch,
            progress: state.progress,
            steps: state.steps,
            adam_steps: state.adam_steps,
            moments: loaded.adam()?,
            best,
        };
        Ok((loaded.model(model)?, Some(resume)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adam::{AdamLayout, AdamSettings};
    use crate::params::{materialize, parameters, weights_fingerprint};
    use crate::plot::EpochPoint;
    use crate::{ConfigFingerprint, RunConfig};
    use burn::prelude::*;
    use ember_models::{ModelConfig, ModelInit};

    /// A small MF model (3 users, 3 items, 2 factors), initialised from `seed`.
    fn mf(seed: u64, device: &Device) -> Model {
        let config: ModelConfig = toml::from_str("kind = \"mf\"\nfactors = 2").unwrap();
        let train = vec![vec![0u32, 1], vec![2], vec![1]];
        device.seed(seed);
        materialize(config.init(&ModelInit::new(3, &train), device))
    }

    fn origin() -> Origin {
        Origin {
            target: "/runs/x".into(),
            partial: "/runs/.x.partial-1".into(),
            config: ConfigFingerprint::of(&RunConfig::default()),
            inputs: vec![],
        }
    }

    fn report(ndcg: f64) -> MetricsReport {
        MetricsReport {
            protocol: "sampled".into(),
            users: 3,
            skipped_users: 0,
            metrics: vec![("NDCG@10".into(), ndcg)],
            negatives: None,
            warnings: vec![],
            groups: Vec::new(),
        }
    }

    /// An optimiser five steps in, with known moments for every parameter of `model` (in the
    /// order of their paths, as checkpoints give them back).
    fn adam_with_moments(model: &Model, device: &Device) -> (Adam, Moments) {
        let mut moments: Moments = parameters(model)
            .into_iter()
            .enumerate()
            .map(|(k, (_, path, n))| (path, vec![k as f32 + 0.5; n], vec![0.25; n]))
            .collect();
        let adam = Adam::restore(
            AdamSettings::default(),
            AdamLayout::Host,
            model,
            5,
            moments.clone(),
            device,
        );
        moments.sort_by(|a, b| a.0.cmp(&b.0));
        (adam, moments)
    }

    #[test]
    fn a_checkpoint_is_due_every_checkpoint_every_batches_and_never_with_0() {
        let every_3 = Checkpointer::new(origin(), vec![], 3, true);
        let due: Vec<usize> = (1..=7).filter(|&b| every_3.due(b)).collect();
        assert_eq!(due, [3, 6]);
        let never = Checkpointer::new(origin(), vec![], 0, true);
        assert!(!(1..10).any(|b| never.due(b)));
    }

    /// A checkpoint taken in the middle of epoch 3 of stage 1 gives that stage back its
    /// weights, best model, optimiser and progress; another stage starts afresh.
    #[test]
    fn a_stage_resumes_from_its_checkpoint_as_it_was_saved() {
        let device = Device::flex().autodiff();
        let out = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(out.path(), "x").unwrap();
        let (model, best_model) = (mf(1, &device), mf(2, &device));
        let (adam, moments) = adam_with_moments(&model, &device);
        let best = Fitted {
            model: best_model.clone(),
            best_epoch: 2,
            best_valid: report(0.5),
        };
        let progress = EpochProgress {
            batch: 4,
            loss_sum: 2.5,
            examples: 40,
            samples: 200,
            secs: 1.5,
        };
        let at = Position {
            stage: 1,
            epoch: 2,
            progress,
            steps: 17,
        };
        let point = EpochPoint {
            stage: "mf".into(),
            epoch: 2,
            loss: 0.5,
            valid: Some(0.5),
        };
        let log = EpochLog::resumed(vec![point.clone()], 7);
        let checkpointer = Checkpointer::new(origin(), vec![], 0, true);
        checkpointer
            .save(&mut run, at, (&model, Some(&adam)), Some(&best), &log)
            .unwrap();
        let loaded = checkpoint::latest(run.dir())
            .unwrap()
            .expect("a checkpoint");
        assert_eq!(
            (loaded.state.curves.clone(), loaded.state.epoch_lines),
            (vec![point], 7)
        );
        assert_eq!(loaded.state.origin, origin());

        let fresh = mf(3, &device);
        assert_ne!(weights_fingerprint(&fresh), weights_fingerprint(&model));
        let (resumed, point) = Checkpointer::resume_point(&loaded, 1, fresh).unwrap();
        let point = point.expect("inside stage 1");
        assert_eq!(weights_fingerprint(&resumed), weights_fingerprint(&model));
        assert_eq!(
            (point.epoch, point.progress, point.steps),
            (2, progress, 17)
        );
        assert_eq!((point.adam_steps, point.moments), (5, moments));
        let best = point.best.expect("a best epoch");
        assert_eq!((best.best_epoch, best.best_valid), (2, report(0.5)));
        assert_eq!(
            weights_fingerprint(&best.model),
            weights_fingerprint(&best_model)
        );

        let other = mf(3, &device);
        let (kept, none) = Checkpointer::resume_point(&loaded, 2, other.clone()).unwrap();
        assert!(none.is_none());
        assert_eq!(weights_fingerprint(&kept), weights_fingerprint(&other));
    }

    /// A finished stage keeps its model in `stages/`, and the checkpoint that follows is the
    /// start of the next stage: no optimiser state, no best epoch.
    #[test]
    fn a_finished_stage_is_kept_and_the_next_starts_afresh() {
        let device = Device::flex().autodiff();
        let out = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(out.path(), "x").unwrap();
        let fitted = Fitted {
            model: mf(1, &device),
            best_epoch: 3,
            best_valid: report(0.25),
        };
        let mut checkpointer = Checkpointer::new(origin(), vec![], 0, true);
        checkpointer
            .finish_stage(&mut run, (0, "gmf"), &fitted, &EpochLog::default())
            .unwrap();
        let done: Vec<_> = checkpointer
            .done()
            .iter()
            .map(|d| (d.name.as_str(), d.best_epoch))
            .collect();
        assert_eq!(done, [("gmf", 3)]);
        let stage = checkpoint::load_stage(run.dir(), 0, mf(9, &device)).unwrap();
        assert_eq!(
            weights_fingerprint(&stage),
            weights_fingerprint(&fitted.model)
        );
        let state = checkpoint::latest(run.dir()).unwrap().unwrap().state;
        assert_eq!((state.stage, state.epoch, state.steps), (1, 0, 0));
        assert_eq!((state.adam_steps, state.best.is_none()), (0, true));
        assert_eq!(state.done.len(), 1);
    }

    /// A rank other than 0 writes no checkpoint, but keeps its directory from then on, as
    /// rank 0 does.
    #[test]
    fn only_rank_0_writes_but_every_rank_keeps_its_directory() {
        let device = Device::flex().autodiff();
        let out = tempfile::tempdir().unwrap();
        let mut run = RunDir::create(out.path(), "x").unwrap();
        let dir = run.dir().to_owned();
        let model = mf(1, &device);
        Checkpointer::new(origin(), vec![], 0, false)
            .save(
                &mut run,
                Position::start_of(0),
                (&model, None),
                None,
                &EpochLog::default(),
            )
            .unwrap();
        assert!(!dir.join(checkpoint::DIR).exists());
        drop(run);
        assert!(dir.is_dir(), "kept after the run ends");
    }
}
