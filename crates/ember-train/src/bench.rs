//! Training throughput benchmark (`ember bench train`): the same model, data and loop as
//! `scripts/bench_torch_neumf.py`, so the two can be compared on one machine.
//!
//! Synthetic pointwise data as in the PyTorch peer: `samples` (user, item) pairs drawn uniformly
//! from a seeded generator, labelled 1 when `(user + item) % 5 == 0`, binary cross-entropy on
//! logits, Adam at 1e-3. Each epoch's ids and labels are uploaded once; each batch is a slice
//! of them on the device, plus the segment plans of its embedding gradients (computed on the
//! CPU, see `ember_models::lookup`). The loss is read back once per epoch.

use ember_models::{DenseSplit, Loss, Model, ModelConfig, ModelInit, NeuMfConfig};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::adam::{Adam, AdamSettings};
use crate::batches::LabelledPairs;
use crate::config::EmbeddingGradient;
use crate::epoch::{SingleDevice, Stepper, train_epoch};
use crate::{Backend, TrainError};

/// Catalogue sizes to benchmark on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchSize {
    /// 6,040 users × 3,706 items (MovieLens-1M, the throughput probe's size).
    Probe,
    /// 138,493 users × 26,744 items (MovieLens-20M).
    Ml20m,
}

impl BenchSize {
    /// (users, items)
    pub fn tables(self) -> (usize, usize) {
        match self {
            Self::Probe => (6_040, 3_706),
            Self::Ml20m => (138_493, 26_744),
        }
    }
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct TrainBench {
    /// `neumf`, `gmf`, `mlp` or `mf`, with the peer's sizes (factors 32, MLP 128-64-32-16).
    pub model: String,
    /// Catalogue size.
    pub size: BenchSize,
    /// Pairs per optimiser step.
    pub batch: usize,
    /// Pairs per epoch.
    pub samples: usize,
    /// Epochs; all but the last are warm-up.
    pub epochs: usize,
    /// How embedding tables get their gradients.
    pub embedding_gradient: EmbeddingGradient,
    /// Most chunks a dense layer splits its batch into (1 = none); chunks keep the device's
    /// fewest rows (`Backend::dense_split`).
    pub split_k: usize,
    /// Seed of the synthetic data and of the model.
    pub seed: u64,
}

/// One epoch's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchEpoch {
    /// Wall seconds.
    pub secs: f64,
    /// Pairs per second.
    pub samples_per_sec: f64,
    /// Mean training loss.
    pub loss: f32,
}

/// The benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub device: Backend,
    pub model: String,
    pub users: usize,
    pub items: usize,
    pub batch: usize,
    pub samples: usize,
    pub embedding_gradient: String,
    pub split_k: usize,
    /// Every epoch, warm-up included.
    pub epochs: Vec<BenchEpoch>,
    /// Pairs per second of the last epoch (the first ones are warm-up).
    pub samples_per_sec: f64,
    /// The device allocator's peak reservation (GPU backends), or the process's peak resident
    /// memory (CPU backends), in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Which of the two `peak_memory_bytes` is.
    pub peak_memory_kind: &'static str,
}

fn bench_model(name: &str) -> Result<ModelConfig, TrainError> {
    let neumf = NeuMfConfig {
        factors: 32,
        layers: vec![128, 64, 32, 16],
        init_std: 0.01,
        pretrain: false,
        alpha: 0.5,
    };
    Ok(match name {
        "neumf" => ModelConfig::NeuMf(neumf),
        "gmf" => ModelConfig::Gmf(neumf.gmf()),
        "mlp" => ModelConfig::Mlp(neumf.mlp()),
        "mf" => ModelConfig::Mf(ember_models::MfConfig {
            factors: 32,
            init_std: 0.01,
        }),
        other => {
            return Err(TrainError::Bench(format!(
                "unknown bench model `{other}`: use neumf, gmf, mlp or mf"
            )));
        }
    })
}

/// Peak resident memory of this process (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the benchmark on `backend`.
pub fn bench_train(
    bench: &TrainBench,
    backend: Backend,
    mut on_epoch: impl FnMut(usize, &BenchEpoch),
) -> Result<BenchReport, TrainError> {
    if bench.batch == 0 || bench.samples < bench.batch || bench.epochs == 0 {
        return Err(TrainError::Bench(
            "bench needs batch > 0, samples ≥ batch and at least one epoch".into(),
        ));
    }
    let device = backend.device()?.autodiff();
    device.seed(bench.seed);
    let plan_chunk = bench.embedding_gradient.plan_chunk(backend);
    let (num_users, num_items) = bench.size.tables();
    let config = bench_model(&bench.model)?;
    let init = ModelInit {
        users: num_users,
        items: num_items,
        train: &[],
        dense: DenseSplit {
            groups: bench.split_k,
            ..backend.dense_split()
        },
        pair_loss: Loss::Bce,
    };
    let mut model: Model = config.init(&init, &device);

    // The peer's data: uniform ids, label (u + i) % 5 == 0.
    let mut rng = SmallRng::seed_from_u64(bench.seed);
    let n = bench.samples;
    let users: Vec<i32> = (0..n)
        .map(|_| rng.random_range(0..num_users as i32))
        .collect();
    let items: Vec<i32> = (0..n)
        .map(|_| rng.random_range(0..num_items as i32))
        .collect();
    let labels: Vec<f32> = users
        .iter()
        .zip(&items)
        .map(|(u, i)| if (u + i) % 5 == 0 { 1.0 } else { 0.0 })
        .collect();

    let mut optimizer = Adam::new(AdamSettings::default(), backend.adam_layout());
    let mut sync = SingleDevice;
    let mut steps = 0;
    let mut peak_reserved: Option<u64> = None;
    let mut epochs = Vec::new();
    for epoch in 0..bench.epochs {
        device
            .sync()
            .map_err(|e| TrainError::DeviceFailed(format!("{e:?}")))?;
        let started = std::time::Instant::now();
        // Uploaded every epoch, as training resamples its negatives every epoch.
        let pairs = LabelledPairs::new(
            users.clone(),
            items.clone(),
            labels.clone(),
            bench.batch,
            (num_users, num_items),
            plan_chunk,
            &device,
        );
        let stepper = Stepper {
            optimizer: &mut optimizer,
            sync: &mut sync,
            learning_rate: 1e-3,
            steps: &mut steps,
        };
        let (next, stats) = train_epoch(model, &pairs, stepper, &indicatif::ProgressBar::hidden());
        model = next;
        if let Some(usage) = device.memory_pool_usage() {
            peak_reserved = Some(peak_reserved.unwrap_or(0).max(usage.bytes_reserved));
        }
        // The upload counts, as it did before the loop was shared: time from the epoch start.
        let secs = started.elapsed().as_secs_f64();
        let figures = BenchEpoch {
            secs,
            samples_per_sec: (n / bench.batch * bench.batch) as f64 / secs,
            loss: stats.loss,
        };
        on_epoch(epoch, &figures);
        epochs.push(figures);
    }
    let (peak_memory_bytes, peak_memory_kind) = match peak_reserved {
        Some(bytes) => (Some(bytes), "device allocator reserved"),
        None => (peak_rss(), "process peak RSS"),
    };
    Ok(BenchReport {
        device: backend,
        model: bench.model.clone(),
        users: num_users,
        items: num_items,
        batch: bench.batch,
        samples: n,
        embedding_gradient: match plan_chunk {
            Some(c) => format!("segmented (chunk {c})"),
            None => "burn".into(),
        },
        split_k: bench.split_k,
        samples_per_sec: epochs.last().map_or(0.0, |e| e.samples_per_sec),
        epochs,
        peak_memory_bytes,
        peak_memory_kind,
    })
}
