//! Checkpoints: everything needed to continue a run where it stopped, written at the end of
//! every epoch (and every `train.checkpoint_every` batches when set), so that a run killed from
//! outside, or stopped with Ctrl-C, loses at most that much work.
//!
//! A checkpoint is a directory `checkpoints/<sequence>` in the run directory, written under a
//! temporary name and renamed when complete: a directory with a number is always whole. It
//! holds the model being trained (`model.bpk`), the stage's best model so far (`best.bpk`),
//! Adam's moments by parameter path (`adam.safetensors`) and `state.json`: the stage, the
//! epoch and batch, the optimiser step count, the partial sums of an unfinished epoch, the best
//! epoch and its validation metrics, the learning curves and the finished stages (whose models
//! are in `stages/<index>.bpk`). Generators need no saving: every epoch's generator and every
//! step's dropout seed are derived from the stage seed and their position
//! (`seeds::epoch`, `seeds::step`). Older checkpoints are removed once a newer one is
//! complete, except the one taken at the stage's best epoch.
//!
//! Every state also records the run's [`Origin`]: its config's fingerprint and its input files
//! as they were when it started, which a resume checks, and where it was to finish.

use burn::module::Module;
use ember_infer::TensorBytes;
use ember_metrics::MetricsReport;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::epoch::EpochProgress;
use crate::plot::EpochPoint;
use crate::{ConfigFingerprint, TrainError};
use ember_data::InputFile;

/// The checkpoints' directory inside a run directory.
pub const DIR: &str = "checkpoints";
/// Where finished stages' models are kept, inside a run directory.
pub const STAGES: &str = "stages";
/// The version of `state.json` this build writes and reads (2: the run's [`Origin`] added).
pub(crate) const VERSION: u32 = 2;

/// A finished stage: its name, its chosen epoch and that epoch's validation metrics (its model
/// is `stages/<index>.bpk`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageDone {
    /// Stage label (`gmf`, `neumf`, `refit neumf`, …).
    pub name: String,
    /// The epoch kept.
    pub best_epoch: usize,
    /// Its validation metrics.
    pub best_valid: MetricsReport,
}

/// The best epoch of the stage being trained, so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BestSoFar {
    /// 0 for a pre-trained start, else 1-based.
    pub epoch: usize,
    /// Its validation metrics.
    pub valid: MetricsReport,
}

/// What a run was started as, so that a resume continues that run and no other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// Where the finished run goes (absolute); a resume finishes it beside the partial
    /// directory's current location, under this name.
    pub target: PathBuf,
    /// The partial directory (canonical), to tell a moved one.
    pub partial: PathBuf,
    /// The resolved config's fingerprint.
    pub config: ConfigFingerprint,
    /// The input files as they were when the run started.
    pub inputs: Vec<InputFile>,
}

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// [`VERSION`].
    pub version: u32,
    /// What the run was started as.
    pub origin: Origin,
    /// Stages finished, in order.
    pub done: Vec<StageDone>,
    /// The stage being trained (its index among the run's stages).
    pub stage: usize,
    /// Its epochs completed.
    pub epoch: usize,
    /// How far the next epoch got (batch 0 at an epoch's end).
    pub progress: EpochProgress,
    /// Optimiser steps of the stage so far.
    pub steps: usize,
    /// Adam's step count (named `adam_time` in `state.json`).
    #[serde(rename = "adam_time")]
    pub adam_steps: i32,
    /// The stage's best epoch so far (its model is `best.bpk`).
    pub best: Option<BestSoFar>,
    /// Every epoch trained so far, for the learning curves.
    pub curves: Vec<EpochPoint>,
    /// Lines of `metrics.jsonl` written so far (a resumed run drops any line after them).
    pub epoch_lines: usize,
}

/// What a checkpoint holds besides its state.
pub struct Saved<'a> {
    /// The model being trained.
    pub model: &'a ember_models::Model,
    /// The stage's best model, when there is one.
    pub best: Option<&'a ember_models::Model>,
    /// Adam's moments by parameter path.
    pub adam: &'a [(String, Vec<f32>, Vec<f32>)],
}

/// A checkpoint read back.
pub struct Loaded {
    /// `state.json`.
    pub state: State,
    /// Its directory.
    pub dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

fn weights_error(path: &Path) -> impl FnOnce(burn::store::RecordError) -> TrainError + '_ {
    move |source| TrainError::Weights {
        path: path.to_owned(),
        source,
    }
}

/// The numbered checkpoint directories of `run`, oldest first.
fn numbered(run: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let dir = run.join(DIR);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io(&dir))? {
        let entry = entry.map_err(io(&dir))?;
        if let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u64>().ok())
        {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a checkpoint of `state` into `run` and removes the older ones (but the one of the
/// stage's best epoch). Nothing is overwritten: the new checkpoint is complete before any old
/// one goes.
pub fn write(run: &Path, state: &State, saved: Saved) -> Result<PathBuf, TrainError> {
    let existing = numbered(run)?;
    let next = existing.last().map_or(1, |(n, _)| n + 1);
    let root = run.join(DIR);
    fs::create_dir_all(&root).map_err(io(&root))?;
    let partial = root.join(format!(".writing-{next}"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io(&partial))?;
    let model = partial.join("model.bpk");
    saved
        .model
        .clone()
        .save_file(&model)
        .map_err(weights_error(&model))?;
    if let Some(best) = saved.best {
        let path = partial.join("best.bpk");
        best.clone()
            .save_file(&path)
            .map_err(weights_error(&path))?;
    }
    let adam = partial.join("adam.safetensors");
    write_moments(&adam, saved.adam)?;
    let state_path = partial.join("state.json");
    let text = serde_json::to_string_pretty(state).expect("a state always serialises");
    fs::write(&state_path, text).map_err(io(&state_path))?;
    let done = root.join(format!("{next:06}"));
    fs::rename(&partial, &done).map_err(io(&done))?;
    // Keep the new one and the one taken at the stage's best epoch.
    let best_epoch = state.best.as_ref().map(|b| b.epoch);
    for (_, old) in existing {
        let keep = read_state(&old).is_ok_and(|s| {
            s.stage == state.stage
                && best_epoch == Some(s.epoch)
                && s.progress.batch == 0
                && s.epoch > 0
        });
        if !keep {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
    }
    Ok(done)
}

fn read_state(dir: &Path) -> Result<State, TrainError> {
    let path = dir.join("state.json");
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let unreadable = |e: serde_json::Error| TrainError::Checkpoint {
        path: path.clone(),
        message: format!("unreadable state: {e}"),
    };
    // The version first: an older state lacks fields this build needs, and saying so is
    // clearer than naming the first missing field.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(unreadable)?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(VERSION.into()) {
        let written = version.map_or("no version".into(), |v| format!("version {v}"));
        return Err(TrainError::Checkpoint {
            path,
            message: format!(
                "written with checkpoint {written}, and this build reads version {VERSION}, \
                 which records the run's config to check a resume against: finish the run with \
                 the ember that started it, or start a new run"
            ),
        });
    }
    serde_json::from_value(value).map_err(unreadable)
}

/// The latest checkpoint of `run`, if it has one.
pub fn latest(run: &Path) -> Result<Option<Loaded>, TrainError> {
    match numbered(run)?.pop() {
        None => Ok(None),
        Some((_, dir)) => Ok(Some(Loaded {
            state: read_state(&dir)?,
            dir,
        })),
    }
}

impl Loaded {
    /// The model being trained, loaded into `model` (a freshly built model of the same kind).
    pub fn model(&self, model: ember_models::Model) -> Result<ember_models::Model, TrainError> {
        let path = self.dir.join("model.bpk");
        model.try_load_file(&path).map_err(weights_error(&path))
    }

    /// The stage's best model, loaded into `model`.
    pub fn best(&self, model: ember_models::Model) -> Result<ember_models::Model, TrainError> {
        let path = self.dir.join("best.bpk");
        model.try_load_file(&path).map_err(weights_error(&path))
    }

    /// Adam's moments by parameter path.
    pub fn adam(&self) -> Result<Vec<(String, Vec<f32>, Vec<f32>)>, TrainError> {
        read_moments(&self.dir.join("adam.safetensors"))
    }
}

/// Where stage `index`'s finished model is kept.
pub fn stage_path(run: &Path, index: usize) -> PathBuf {
    run.join(STAGES).join(format!("{index}.bpk"))
}

/// Keeps a finished stage's model, written under a temporary name first.
pub fn save_stage(run: &Path, index: usize, model: &ember_models::Model) -> Result<(), TrainError> {
    let path = stage_path(run, index);
    let dir = path.parent().expect("inside the run");
    fs::create_dir_all(dir).map_err(io(dir))?;
    // burn writes to the exact name it is given; rename makes the stage appear whole.
    let partial = dir.join(format!(".{index}.writing.bpk"));
    model
        .clone()
        .save_file(&partial)
        .map_err(weights_error(&partial))?;
    fs::rename(&partial, &path).map_err(io(&path))
}

/// Loads finished stage `index`'s model into `model`.
pub fn load_stage(
    run: &Path,
    index: usize,
    model: ember_models::Model,
) -> Result<ember_models::Model, TrainError> {
    let path = stage_path(run, index);
    model.try_load_file(&path).map_err(weights_error(&path))
}

/// Writes each parameter's moments as `m/<path>` and `v/<path>`.
fn write_moments(path: &Path, moments: &[(String, Vec<f32>, Vec<f32>)]) -> Result<(), TrainError> {
    let stored: Vec<(String, TensorBytes)> = moments
        .iter()
        .flat_map(|(name, m, v)| {
            [
                (format!("m/{name}"), TensorBytes::f32_vector(m)),
                (format!("v/{name}"), TensorBytes::f32_vector(v)),
            ]
        })
        .collect();
    let views = stored.iter().map(|(name, m)| (name.clone(), m));
    let bytes = safetensors::serialize(views, None).map_err(|e| TrainError::Checkpoint {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    fs::write(path, bytes).map_err(io(path))
}

/// Reads what [`write_moments`] wrote.
fn read_moments(path: &Path) -> Result<Vec<(String, Vec<f32>, Vec<f32>)>, TrainError> {
    let bytes = fs::read(path).map_err(io(path))?;
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_owned(),
        message,
    };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut first: HashMap<String, Vec<f32>> = HashMap::new();
    let mut second: HashMap<String, Vec<f32>> = HashMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!("`{name}` is not F32")));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        match (name.strip_prefix("m/"), name.strip_prefix("v/")) {
            (Some(p), _) => first.insert(p.to_string(), values),
            (_, Some(p)) => second.insert(p.to_string(), values),
            _ => return Err(bad(format!("unexpected tensor `{name}`"))),
        };
    }
    let mut out = Vec::new();
    for (name, m) in first {
        let v = second
            .remove(&name)
            .ok_or_else(|| bad(format!("`m/{name}` without `v/{name}`")))?;
        out.push((name, m, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
