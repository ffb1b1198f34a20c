//! `ember train`: train a model and evaluate it, or resume a stopped run.

use anyhow::{Context, Result};
use clap::Args;
use ember_train::{Backend, RunConfig, RunOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::eval::{baseline_label, print_table};
use crate::ranks;

#[derive(Args)]
pub struct TrainArgs {
    /// TOML config (see configs/); without one, the built-in defaults are used.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Backend: flex, ndarray, wgpu, vulkan (overrides the config's `device`).
    #[arg(long)]
    device: Option<Backend>,
    /// Run name (overrides the config's `name`).
    #[arg(long)]
    name: Option<String>,
    /// Where run directories go (overrides the config's `output_dir`).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Maximum epochs (overrides `train.epochs`).
    #[arg(long)]
    epochs: Option<usize>,
    /// Hide progress bars.
    #[arg(long)]
    no_progress: bool,
    /// Continue a stopped or killed run from its latest checkpoint: its run directory (the
    /// hidden `.NAME.partial-PID` one), with the config it was started with.
    #[arg(long, conflicts_with_all = ["config", "name", "output_dir", "epochs"])]
    resume: Option<PathBuf>,
    /// The most memory the run may use, e.g. 4G (binary units): a model whose estimated
    /// weights, optimiser state and batches exceed it is refused before it is built (default:
    /// the cgroup's limit, MemAvailable or ulimit -v, whichever leaves least).
    #[arg(long, value_name = "SIZE", value_parser = ember_train::memory::parse_size)]
    max_memory: Option<u64>,
}

/// `ember train`: rank 0 prints the tables; a failing rank ends the others.
pub fn run(args: TrainArgs) -> Result<()> {
    let ranks = ranks::Ranks::join()?;
    let progress = !args.no_progress && std::io::stderr().is_terminal() && ranks.is_root();
    let options = RunOptions {
        progress,
        stop: Some(stop_flag()?),
        ranks: ranks.group.clone(),
        max_memory: args.max_memory,
    };
    match train_or_resume(args, options) {
        Ok((config, summary)) if ranks.is_root() => report(&config, &summary),
        Ok(_) => Ok(()),
        // Every rank stops at the same batch; rank 0 says where its checkpoint is.
        Err(e) if !ranks.is_root() && is_interrupted(&e) => Ok(()),
        Err(e) if ranks.group.size() > 1 && !is_interrupted(&e) => {
            // The other ranks may be waiting for this one: end them all.
            eprintln!("error (rank {}): {e:#}", ranks.group.rank());
            ranks.end_job(1);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn is_interrupted(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ember_train::TrainError>(),
        Some(ember_train::TrainError::Interrupted { .. })
    )
}

fn train_or_resume(
    args: TrainArgs,
    options: RunOptions,
) -> Result<(RunConfig, ember_train::RunSummary)> {
    if let Some(run_dir) = &args.resume {
        let config = RunConfig::from_file(&run_dir.join(ember_train::files::CONFIG))?;
        let device = args.device.unwrap_or(config.device);
        let summary = ember_train::resume(run_dir, device, options)?;
        return Ok((config, summary));
    }
    let mut config = load_config(args.config.as_deref())?;
    if let Some(name) = args.name {
        config.name = name;
    }
    if let Some(dir) = args.output_dir {
        config.output_dir = dir;
    }
    if let Some(epochs) = args.epochs {
        config.train.epochs = epochs;
    }
    let device = args.device.unwrap_or(config.device);
    config.device = device;
    let summary = ember_train::train(&config, device, options)?;
    Ok((config, summary))
}

/// The tables a finished run prints.
fn report(config: &RunConfig, summary: &ember_train::RunSummary) -> Result<()> {
    println!(
        "\nmodel {} — best epoch {} (chosen on validation {})",
        summary.model, summary.best_epoch, config.eval.monitor
    );
    print_table(&[
        ("validation", &summary.valid),
        ("test", &summary.test),
        (baseline_label(&summary.popularity), &summary.popularity),
    ]);
    for (test, popularity) in &summary.extra {
        println!();
        print_table(&[("test", test), (baseline_label(popularity), popularity)]);
    }
    println!("run directory: {}", summary.run_dir.display());
    Ok(())
}

/// A flag set by the first Ctrl-C or SIGTERM: training stops after its current batch with a
/// checkpoint. A second one exits at once.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopped at once: the last checkpoint stands");
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch to write a checkpoint (again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// The run config at `path`, or the built-in defaults.
pub(crate) fn load_config(path: Option<&Path>) -> Result<RunConfig> {
    Ok(match path {
        Some(p) => RunConfig::from_file(p)?,
        None => RunConfig::default(),
    })
}
