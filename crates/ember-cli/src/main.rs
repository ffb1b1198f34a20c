//! `ember`: train, evaluate and inspect recommendation models, and make decisions with them.

mod campaign;
mod nba;
mod output;
mod ranks;
mod recommend;
mod report;
mod segments;
mod serve;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use ember_data::{Dataset, prepare};
use ember_metrics::{MetricsReport, NegativeSampling, Protocol};
use ember_train::{Backend, RunConfig, RunOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
    Train(TrainArgs),
    /// Evaluate a finished run on its test split.
    Eval(EvalArgs),
    /// Export a finished run's model for ember-infer (`manifest.json` + `model.safetensors`).
    Export(ExportArgs),
    /// Serve an exported model over HTTP (JSON API).
    Serve(ServeArgs),
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
    Data(DataCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Training throughput on synthetic data, the same model and loop as
    /// scripts/bench_torch_neumf.py (warm-up epochs excluded).
    Train(BenchTrainArgs),
}

#[derive(Args)]
struct BenchTrainArgs {
    /// A model kind: neumf, gmf, mlp, mf (the NCF peer's labelled pairs), lightgcn, mult_vae,
    /// mult_dae, cdae, sasrec, bert4rec, gru4rec (each with its paper's settings).
    #[arg(long, default_value = "neumf")]
    model: String,
    /// Backend: flex, ndarray, wgpu, vulkan.
    #[arg(long, default_value = "flex")]
    device: Backend,
    /// Examples per optimiser step: pairs, positives, users or windows.
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Catalogue: `probe` (6,040 × 3,706), `ml20m` (138,493 × 26,744) or `games` (31,013 ×
    /// 23,715); default: games for the sequence models, probe for the others.
    #[arg(long)]
    size: Option<String>,
    /// Labelled pairs per epoch for neumf, gmf, mlp and mf (default: 8,000,000 on GPU backends,
    /// 1,000,000 on CPU ones); users per epoch for the others (default: every user of the
    /// size).
    #[arg(long)]
    samples: Option<usize>,
    /// Epochs; the figure is the last one's, the others are warm-up.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Embedding gradients: auto, burn or segmented.
    #[arg(long, default_value = "auto")]
    embedding_gradient: String,
    /// Most chunks a dense layer splits its batch into (1 = plain products). Chunks keep at
    /// least 65,536 rows on GPU backends and 256 on CPU ones.
    #[arg(long)]
    split_k: Option<usize>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Under `mpirun -np N` (with the `mpi` feature): how the ranks exchange gradients,
    /// `auto` (embedding tables as the rows a step touched, when smaller) or `dense`.
    #[arg(long, default_value = "auto")]
    gradient_exchange: String,
}

#[derive(Args)]
struct TrainArgs {
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
}

#[derive(Args)]
struct EvalArgs {
    /// A run directory written by `ember train`.
    #[arg(long)]
    run: PathBuf,
    /// Backend.
    #[arg(long, default_value = "flex")]
    device: Backend,
    /// Protocol: `full`, `sampled:N`, `popularity:N` or `fixed` (default: the run's own).
    #[arg(long)]
    protocol: Option<String>,
    /// Print the reports as JSON (`{"test": …, "baseline": …}`) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    /// A run directory written by `ember train`.
    #[arg(long)]
    run: PathBuf,
    /// The new model directory, e.g. models/NAME.
    #[arg(long)]
    out: PathBuf,
    /// Precision of the stored matrices: f32, f16 or int8.
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Skip comparing the export's metrics with the run's model on held-out data.
    #[arg(long)]
    no_check: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// An exported model directory (`ember export`).
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on (port 0 picks a free port; the first stdout line names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Worker threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// An actions table (`id,items,value[,categories,cap,cooldown_days]`): enables
    /// POST /v1/next-best-action.
    #[arg(long)]
    actions: Option<PathBuf>,
    /// Item categories (`item,category`), for actions with an allow-list.
    #[arg(long, requires = "actions")]
    items: Option<PathBuf>,
    /// Past contacts (`customer,action,day`), for caps and cool-downs.
    #[arg(long, requires = "actions")]
    contacts: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Print the sizes of the data set and its split.
    Stats {
        /// TOML config naming the data, preprocessing and split.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Write the split as TSV files (`train.tsv`, `valid.tsv`, `test.tsv`: user, item, with the
    /// data's own ids) into a new directory.
    Split {
        /// TOML config naming the data, preprocessing and split.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Output directory (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
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
    match run(Cli::parse()) {
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

fn load_config(path: Option<&Path>) -> Result<RunConfig> {
    Ok(match path {
        Some(p) => RunConfig::from_file(p)?,
        None => RunConfig::default(),
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train(args),
        Command::Eval(args) => eval(args),
        Command::Serve(args) => {
            let actions = match &args.actions {
                Some(path) => Some(serve::ActionTables::read(
                    path,
                    args.items.as_deref(),
                    args.contacts.as_deref(),
                )?),
                None => None,
            };
            serve::serve(&args.model, &args.addr, args.threads, actions)
        }
        Command::Recommend(args) => recommend::run(args),
        Command::Campaign(args) => campaign::run(args),
        Command::Segments(args) => segments::run(args),
        Command::Nba(args) => nba::run(args),
        Command::Report(args) => report::run(args),
        Command::Export(args) => {
            let precision = match args.precision.as_str() {
                "f32" => ember_infer::Precision::F32,
                "f16" => ember_infer::Precision::F16,
                "int8" => ember_infer::Precision::Int8,
                other => bail!("unknown precision `{other}`: use f32, f16 or int8"),
            };
            ember_decide::Destination::check(
                "--out",
                &args.out,
                ember_decide::OutputKind::Directory,
                &[&args.run],
                false,
            )?;
            let manifest = ember_train::export::export_run(&args.run, &args.out, precision)?;
            let size = std::fs::metadata(args.out.join("model.safetensors"))
                .map(|m| m.len())
                .unwrap_or(0);
            println!(
                "exported {} ({} users, {} items, {:?}, {} bytes of weights) to {}",
                args.run.display(),
                manifest.user_ids.len(),
                manifest.item_ids.len(),
                manifest.precision,
                size,
                args.out.display()
            );
            if !args.no_check {
                let check = ember_train::export::check_export(&args.run, &args.out)?;
                println!("{}: run's model → export ({:?})", check.label, precision);
                for (name, trained, exported) in &check.metrics {
                    println!(
                        "  {name:<22} {trained:.4} → {exported:.4} ({:+.4})",
                        exported - trained
                    );
                }
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Train(args)) => bench_train(args),
        Command::Data(DataCommand::Stats { config }) => {
            let config = load_config(config.as_deref())?;
            let (data, prep) = prepare(&config.data, &config.preprocess, &config.split)?;
            println!("source: {}", config.data.describe());
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"preprocess": prep, "dataset": data.stats()})
                )?
            );
            Ok(())
        }
        Command::Data(DataCommand::Split { config: path, out }) => {
            let config = load_config(path.as_deref())?;
            let files = config.data.files();
            let inputs: Vec<&Path> = path.iter().chain(&files).map(PathBuf::as_path).collect();
            ember_decide::Destination::check(
                "--out",
                &out,
                ember_decide::OutputKind::Directory,
                &inputs,
                false,
            )?;
            let (data, _) = prepare(&config.data, &config.preprocess, &config.split)?;
            write_split(&data, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let ranks = ranks::Ranks::join()?;
    let progress = !args.no_progress && std::io::stderr().is_terminal() && ranks.is_root();
    let options = RunOptions {
        progress,
        stop: Some(stop_flag()?),
        ranks: ranks.group.clone(),
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

fn parse_protocol(text: &str) -> Result<Protocol> {
    let sampled = |n: &str, sampling| -> Result<Protocol> {
        let negatives = n
            .parse()
            .with_context(|| format!("`{n}` is not a number of negatives"))?;
        let p = Protocol::Sampled {
            negatives,
            sampling,
        };
        p.validate()?;
        Ok(p)
    };
    match text.split_once(':') {
        None if text == "full" => Ok(Protocol::FullRanking),
        None if text == "fixed" => Ok(Protocol::FixedNegatives),
        Some(("sampled", n)) => sampled(n, NegativeSampling::Uniform),
        Some(("popularity", n)) => sampled(n, NegativeSampling::Popularity),
        _ => bail!("unknown protocol `{text}`: use full, sampled:N, popularity:N or fixed"),
    }
}

fn eval(args: EvalArgs) -> Result<()> {
    let protocol = args.protocol.as_deref().map(parse_protocol).transpose()?;
    // Under mpirun the ranks share the users to score (with the `mpi` feature).
    let ranks = ranks::Ranks::join()?;
    let (test, popularity) =
        match ember_train::evaluate_run(&args.run, args.device, protocol, &ranks.group) {
            Ok(reports) => reports,
            Err(e) => {
                ranks.end_job(1);
                return Err(e.into());
            }
        };
    if !ranks.is_root() {
        return Ok(());
    }
    if args.json {
        let json = serde_json::json!({"test": test, "baseline": popularity});
        println!("{json}");
    } else {
        print_table(&[("test", &test), (baseline_label(&popularity), &popularity)]);
    }
    Ok(())
}

/// The baseline column's name: popularity for ranking runs, item means for rating runs.
fn baseline_label(baseline: &MetricsReport) -> &'static str {
    if baseline.is_rating() {
        "item means (test)"
    } else {
        "popularity (test)"
    }
}

/// One row per metric, one column per report; each report's protocol is listed under the table.
fn print_table(reports: &[(&str, &MetricsReport)]) {
    let mut out = String::new();
    let width = reports[0]
        .1
        .metrics
        .iter()
        .map(|(m, _)| m.chars().count() + 2)
        .max()
        .unwrap_or(16)
        .max(16);
    out.push_str(&format!("{:<width$}", "metric"));
    for (name, _) in reports {
        out.push_str(&format!("{name:>20}"));
    }
    out.push('\n');
    for (metric, _) in &reports[0].1.metrics {
        out.push_str(&format!("{metric:<width$}"));
        for (_, report) in reports {
            match report.get(metric) {
                Some(v) => out.push_str(&format!("{v:>20.4}")),
                None => out.push_str(&format!("{:>20}", "-")),
            }
        }
        out.push('\n');
    }
    for (name, report) in reports {
        out.push_str(&format!(
            "{name}: {} ({} users)\n",
            report.protocol, report.users
        ));
    }
    // Reports scored on the same candidates share their warnings: each is said once.
    let mut warnings: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, report) in reports {
        for warning in &report.warnings {
            match warnings.iter_mut().find(|(w, _)| *w == warning.as_str()) {
                Some((_, names)) => names.push(*name),
                None => warnings.push((warning.as_str(), vec![*name])),
            }
        }
    }
    for (warning, names) in warnings {
        out.push_str(&format!("warning ({}): {warning}\n", names.join(", ")));
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// Writes the split with external ids, under a temporary name renamed at the end.
fn write_split(data: &Dataset, out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{}: already exists; choose a new directory", out.display());
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    let partial = parent.join(format!(
        ".{}.partial-{}",
        out.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir_all(&partial).with_context(|| partial.display().to_string())?;
    let result = (|| -> Result<()> {
        for (file, lists) in [
            ("train.tsv", &data.train),
            ("valid.tsv", &data.valid),
            ("test.tsv", &data.test),
        ] {
            let mut text = String::from("user\titem\n");
            for (u, items) in lists.iter().enumerate() {
                for &i in items {
                    text.push_str(&format!(
                        "{}\t{}\n",
                        data.user_ids.external(u as u32),
                        data.item_ids.external(i)
                    ));
                }
            }
            std::fs::write(partial.join(file), text)?;
        }
        std::fs::rename(&partial, out)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

fn bench_train(args: BenchTrainArgs) -> Result<()> {
    use ember_train::bench::{BenchSize, TrainBench};
    let size = match args.size.as_deref() {
        None => BenchSize::default_for(&args.model),
        Some("probe") => BenchSize::Probe,
        Some("ml20m") => BenchSize::Ml20m,
        Some("games") => BenchSize::Games,
        Some(other) => bail!("unknown --size `{other}`: use probe, ml20m or games"),
    };
    let embedding_gradient = match args.embedding_gradient.as_str() {
        "auto" => ember_train::EmbeddingGradient::Auto,
        "burn" => ember_train::EmbeddingGradient::Burn,
        "segmented" => ember_train::EmbeddingGradient::Segmented,
        other => bail!("unknown --embedding-gradient `{other}`: use auto, burn or segmented"),
    };
    let labelled = matches!(args.model.as_str(), "neumf" | "gmf" | "mlp" | "mf");
    let samples = args
        .samples
        .unwrap_or(match (labelled, args.device.is_gpu()) {
            (true, true) => 8_000_000,
            (true, false) => 1_000_000,
            (false, _) => size.tables().0,
        });
    let gradient_exchange = match args.gradient_exchange.as_str() {
        "auto" => ember_train::distributed::GradientExchange::Auto,
        "dense" => ember_train::distributed::GradientExchange::Dense,
        other => bail!("unknown --gradient-exchange `{other}`: use auto or dense"),
    };
    let ranks = ranks::Ranks::join()?;
    let bench = TrainBench {
        model: args.model,
        size,
        batch: args.batch,
        samples,
        epochs: args.epochs,
        embedding_gradient,
        split_k: args
            .split_k
            .unwrap_or_else(|| args.device.dense_split().groups),
        seed: 42,
        gradient_exchange,
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
    Ok(())
}
