//! `ember`: train, evaluate and inspect recommendation models, and make decisions with them.
//!
//! `main` parses the command line and hands each command to its module's `run`.

mod approval;
mod bench;
mod campaign;
mod data;
mod eval;
mod export;
mod nba;
mod output;
mod ranks;
mod recommend;
mod report;
mod segments;
mod serve;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ember",
    version,
    about = "Train, evaluate and inspect recommendation models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model and evaluate it (the default config trains NeuMF on built-in synthetic data).
    Train(train::TrainArgs),
    /// Evaluate a finished run on its test split.
    Eval(eval::EvalArgs),
    /// Export a finished run's model for ember-infer (`manifest.json` + `model.safetensors`).
    Export(export::ExportArgs),
    /// Serve an exported model over HTTP (JSON API).
    Serve(serve::ServeArgs),
    /// Every (or every listed) customer's top-k items, to CSV or Parquet.
    Recommend(recommend::RecommendArgs),
    /// Choose an item's campaign audience with a control group, and show what targeting is
    /// worth on held-out interactions; `campaign measure` proves what it did.
    Campaign(campaign::CampaignArgs),
    /// Group customers into segments by the model's view of their tastes, with a map.
    Segments(segments::SegmentsArgs),
    /// Each customer's next best action from an actions table, with eligibility rules.
    Nba(nba::NbaArgs),
    /// One self-contained HTML report on a run, its campaigns and segments.
    Report(report::ReportArgs),
    /// Inspect or split a data set described by a config.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Keeps freed tensor buffers in the process instead of handing them back to the kernel.
///
/// Training allocates and frees buffers of the same few sizes at every step. glibc serves large
/// ones with `mmap` and trims the heap on free, so each step faulted in fresh zeroed pages: on the
/// CPU backend that cost a quarter of a NeuMF step (measured with `ember bench train --device
/// flex --batch 4096`: 248k → 326k samples/s with these thresholds).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 256 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        // No colour codes in a redirected log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap's own words (`error: invalid value …`, or the help asked for); a bad value
            // exits 1 as every other bad input does, not with clap's 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 130: stopped by a signal, as shells report Ctrl-C.
            match e.downcast_ref::<ember_train::TrainError>() {
                Some(ember_train::TrainError::Interrupted { .. }) => ExitCode::from(130),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Hands the command to its module.
fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Export(args) => export::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Recommend(args) => recommend::run(args),
        Command::Campaign(args) => campaign::run(args),
        Command::Segments(args) => segments::run(args),
        Command::Nba(args) => nba::run(args),
        Command::Report(args) => report::run(args),
        Command::Data(command) => data::run(command),
        Command::Bench(command) => bench::run(command),
    }
}
