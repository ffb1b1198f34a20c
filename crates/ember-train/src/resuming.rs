//! What a resume checks before it continues a run (that nothing the run's results depend on
//! changed since it started, and that no other process trains it), and the finish of a run
//! whose results were all written but whose directory was never renamed.

use ember_metrics::MetricsReport;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::collective::Ranks;
use crate::finished::read_inputs;
use crate::run_dir;
use crate::{
    Backend, ConfigFingerprint, RunConfig, RunDir, RunLock, RunSummary, TrainError, files,
};

/// Refuses a directory there is nothing to resume in, then locks it (rank 0, which alone
/// writes it; every rank reads rank 0's checkpoint).
pub(crate) fn take_run(
    run_dir: &Path,
    here: &Path,
    ranks: &Ranks,
) -> Result<Option<RunLock>, TrainError> {
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
pub(crate) fn checked_checkpoint(
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
pub(crate) fn finish_complete(
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
pub(crate) fn resumable(e: TrainError, partial: &Path) -> TrainError {
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
