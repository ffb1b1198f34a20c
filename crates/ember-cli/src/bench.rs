//! `ember bench`: benchmarks.

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use ember_train::bench::{BenchReport, BenchSize, TrainBench};
use ember_train::distributed::GradientExchange;
use ember_train::{Backend, EmbeddingGradient};

use crate::ranks;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Training throughput on synthetic data, the same model and loop as
    /// scripts/bench_torch_neumf.py (warm-up epochs excluded).
    Train(BenchTrainArgs),
}

#[derive(Args)]
pub struct BenchTrainArgs {
    /// A model kind, as `[model] kind` names it (each family with its bench preset: its paper's
    /// settings, or its PyTorch peer's).
    #[arg(long, default_value = "neumf")]
    model: String,
    /// Backend: flex, ndarray, wgpu, vulkan.
    #[arg(long, default_value = "flex")]
    device: Backend,
    /// Examples per optimiser step: pairs, positives, users or windows.
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Catalogue (default: games for the sequence models, probe for the others).
    #[arg(long, value_enum)]
    size: Option<SizeArg>,
    /// Labelled pairs per epoch for models that read pairs alone: mf, gmf, mlp, neumf (default:
    /// 8,000,000 on GPU backends, 1,000,000 on CPU ones); users per epoch for the others
    /// (default: every user of the size).
    #[arg(long)]
    samples: Option<usize>,
    /// Epochs; the figure is the last one's, the others are warm-up.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Embedding gradients.
    #[arg(long, value_enum, default_value_t = EmbeddingGradientArg::Auto)]
    embedding_gradient: EmbeddingGradientArg,
    /// Most chunks a dense layer splits its batch into (1 = plain products). Chunks keep at
    /// least 65,536 rows on GPU backends and 256 on CPU ones.
    #[arg(long)]
    split_k: Option<usize>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Under `mpirun -np N` (with the `mpi` feature): how the ranks exchange gradients.
    #[arg(long, value_enum, default_value_t = GradientExchangeArg::Auto)]
    gradient_exchange: GradientExchangeArg,
}

/// `--size`, as clap parses it (ember-train does not depend on clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SizeArg {
    /// 6,040 × 3,706 (MovieLens-1M).
    #[value(name = "probe")]
    Probe,
    /// 138,493 × 26,744 (MovieLens-20M).
    #[value(name = "ml20m")]
    Ml20m,
    /// 31,013 × 23,715 (SASRec's Games).
    #[value(name = "games")]
    Games,
}

impl From<SizeArg> for BenchSize {
    fn from(arg: SizeArg) -> Self {
        match arg {
            SizeArg::Probe => BenchSize::Probe,
            SizeArg::Ml20m => BenchSize::Ml20m,
            SizeArg::Games => BenchSize::Games,
        }
    }
}

/// `--embedding-gradient`, as clap parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EmbeddingGradientArg {
    /// Segmented on GPU backends, burn's own on CPU backends.
    #[value(name = "auto")]
    Auto,
    /// burn's `select_assign`.
    #[value(name = "burn")]
    Burn,
    /// Sorted into segments on the CPU, summed in parallel on the device.
    #[value(name = "segmented")]
    Segmented,
}

impl From<EmbeddingGradientArg> for EmbeddingGradient {
    fn from(arg: EmbeddingGradientArg) -> Self {
        match arg {
            EmbeddingGradientArg::Auto => EmbeddingGradient::Auto,
            EmbeddingGradientArg::Burn => EmbeddingGradient::Burn,
            EmbeddingGradientArg::Segmented => EmbeddingGradient::Segmented,
        }
    }
}

/// `--gradient-exchange`, as clap parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GradientExchangeArg {
    /// Embedding tables as the rows a step touched, when smaller; the rest dense.
    #[value(name = "auto")]
    Auto,
    /// Every parameter by a dense all-reduce.
    #[value(name = "dense")]
    Dense,
}

impl From<GradientExchangeArg> for GradientExchange {
    fn from(arg: GradientExchangeArg) -> Self {
        match arg {
            GradientExchangeArg::Auto => GradientExchange::Auto,
            GradientExchangeArg::Dense => GradientExchange::Dense,
        }
    }
}

/// `ember bench …`.
pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Train(args) => bench_train(args),
    }
}

/// `ember bench train`: rank 0 prints each epoch on stderr and the report on stdout.
fn bench_train(args: BenchTrainArgs) -> Result<()> {
    let model = ember_train::bench::preset(&args.model)?;
    let size = args
        .size
        .map_or_else(|| BenchSize::default_for(&model), BenchSize::from);
    let labelled = ember_train::bench::labelled_pairs(&model);
    let samples = args
        .samples
        .unwrap_or(match (labelled, args.device.is_gpu()) {
            (true, true) => 8_000_000,
            (true, false) => 1_000_000,
            (false, _) => size.tables().0,
        });
    let ranks = ranks::Ranks::join()?;
    let bench = TrainBench {
        model: args.model,
        size,
        batch: args.batch,
        samples,
        epochs: args.epochs,
        embedding_gradient: args.embedding_gradient.into(),
        split_k: args
            .split_k
            .unwrap_or_else(|| args.device.dense_split().groups),
        seed: 42,
        gradient_exchange: args.gradient_exchange.into(),
    };
    let root = ranks.is_root();
    let result = ember_train::bench::bench_train(&bench, args.device, &ranks.group, |epoch, e| {
        if root {
            eprintln!(
                "epoch {epoch}: {:.3} s, {:.0} examples/s, {:.0} samples/s, loss {:.4}",
                e.secs, e.examples_per_sec, e.samples_per_sec, e.loss
            );
        }
    });
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            ranks.end_job(1);
            return Err(e.into());
        }
    };
    if !root {
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The report as lines for people.
fn print_report(report: &BenchReport) {
    let memory = report
        .peak_memory_bytes
        .map(|b| {
            format!(
                "{:.1} MiB ({})",
                b as f64 / 1048576.0,
                report.peak_memory_kind
            )
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "ember {} on {}, {} users x {} items, batch {}, {} examples an epoch, embedding \
         gradient {}, split-k {}: {:.0} examples/s, {:.0} samples/s, {:.2} s an epoch (last of \
         {} epochs), peak memory {memory}",
        report.model,
        report.device,
        report.users,
        report.items,
        report.batch,
        report.samples,
        report.embedding_gradient,
        report.split_k,
        report.examples_per_sec,
        report.samples_per_sec,
        report.epoch_secs,
        report.epochs.len()
    );
    if let Some(sync) = &report.sync {
        println!(
            "{} ranks, gradient exchange {:?}: {:.3} MB sent a step ({:.3} MB with every parameter dense), {:.3} MB gathered, {:.2} ms of a {:.2} ms step",
            report.ranks,
            sync.exchange,
            sync.sent_bytes_per_step / 1e6,
            sync.dense_bytes_per_step / 1e6,
            sync.gathered_bytes_per_step / 1e6,
            sync.ms_per_step,
            sync.step_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name on the command line reaches ember-train as its own choice.
    #[test]
    fn each_value_name_maps_to_its_choice() {
        let parse = |name: &str| SizeArg::from_str(name, false).map(BenchSize::from);
        assert_eq!(parse("probe"), Ok(BenchSize::Probe));
        assert_eq!(parse("ml20m"), Ok(BenchSize::Ml20m));
        assert_eq!(parse("games"), Ok(BenchSize::Games));
        assert!(parse("Games").is_err());
        let parse =
            |name: &str| EmbeddingGradientArg::from_str(name, false).map(EmbeddingGradient::from);
        assert_eq!(parse("auto"), Ok(EmbeddingGradient::Auto));
        assert_eq!(parse("burn"), Ok(EmbeddingGradient::Burn));
        assert_eq!(parse("segmented"), Ok(EmbeddingGradient::Segmented));
        let parse =
            |name: &str| GradientExchangeArg::from_str(name, false).map(GradientExchange::from);
        assert_eq!(parse("auto"), Ok(GradientExchange::Auto));
        assert_eq!(parse("dense"), Ok(GradientExchange::Dense));
    }
}
