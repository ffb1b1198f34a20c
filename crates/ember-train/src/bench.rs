//! Training throughput benchmark (`ember bench train`): every model family on synthetic data of
//! a stated size, through the trainer's own batches and loop, so that each family can be set
//! beside its PyTorch peer (`scripts/bench_torch_<family>.py`) on one machine.
//!
//! Data, seeded and uniform, so both sides do the same work whatever the model learns:
//! - Models that read pairs and nothing else (MF, GMF, MLP and NeuMF; [`labelled_pairs`]): as in
//!   `scripts/bench_torch_neumf.py`, `samples` (user, item) pairs labelled 1 when
//!   `(user + item) % 5 == 0`, BCE on logits. Each epoch's ids and labels are uploaded once;
//!   each batch is a slice of them on the device.
//! - The others: every user gets `per_user` distinct items in a random order (their "time"
//!   order), rated 1 to 5 uniformly for rating models, and an epoch is the trainer's for the
//!   model's `Input`: LightGCN's positives with one sampled negative (BPR), the autoencoders'
//!   user rows, AutoRec's rating rows, the sequence models' windows of each user's items with
//!   their targets. `samples` is then the number of users.
//!
//! The models are each family's bench preset, as their papers and README give them (see
//! [`preset`]); Adam at 1e-3 (β₂ as the family's preset says: 0.98 for SASRec, as its code).
//! The loss is read back once per epoch.

use burn::prelude::Device;
use ember_data::{Dataset, IdMap, SplitRatings};
use ember_models::{DenseSplit, Input, Loss, MODEL_KINDS, Model, ModelConfig, ModelInit};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::adam::{Adam, AdamSettings};
use crate::batches::{Epoch, EpochSource, LabelledPairs, training_epoch};
use crate::collective::{GradientSync, Ranks, Shard, SingleDevice};
use crate::config::EmbeddingGradient;
use crate::distributed::{GradientExchange, ReplicaSync, broadcast_model};
use crate::epoch::{EpochEnd, EpochProgress, EpochStats, Stepper, train_epoch};
use crate::params::materialize;
use crate::{Backend, TrainError};

/// Catalogue sizes to benchmark on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchSize {
    /// 6,040 users × 3,706 items, 165 items per user (MovieLens-1M, the throughput probe's
    /// size).
    Probe,
    /// 138,493 users × 26,744 items, 144 items per user (MovieLens-20M).
    Ml20m,
    /// 31,013 users × 23,715 items, 10 items per user (SASRec's Games data, whose users have
    /// 9.3 items on average).
    Games,
}

impl BenchSize {
    /// (users, items)
    pub fn tables(self) -> (usize, usize) {
        match self {
            Self::Probe => (6_040, 3_706),
            Self::Ml20m => (138_493, 26_744),
            Self::Games => (31_013, 23_715),
        }
    }

    /// Items per user, for the families that read interactions.
    pub fn per_user(self) -> usize {
        match self {
            Self::Probe => 165,
            Self::Ml20m => 144,
            Self::Games => 10,
        }
    }

    /// The size a model is benchmarked on unless asked otherwise: models that read sequences
    /// on Games (whose short sequences their papers measure), the others on the probe.
    pub fn default_for(model: &ModelConfig) -> Self {
        if model.input().reads_sequences() {
            Self::Games
        } else {
            Self::Probe
        }
    }
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct TrainBench {
    /// A model kind (see [`preset`]).
    pub model: String,
    /// Catalogue size.
    pub size: BenchSize,
    /// Examples per optimiser step: pairs, positives, users or windows.
    pub batch: usize,
    /// Labelled pairs per epoch for the NCF family; users for the others (at most the size's).
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
    /// How the ranks of a distributed benchmark (`mpirun -np N ember bench train`) exchange
    /// gradients.
    pub gradient_exchange: GradientExchange,
}

/// One epoch's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchEpoch {
    /// Wall seconds.
    pub secs: f64,
    /// Examples per second (pairs, positives, users or windows).
    pub examples_per_sec: f64,
    /// Scored samples per second (positives with their negatives; otherwise examples).
    pub samples_per_sec: f64,
    /// Mean training loss (0 for a model fitted when it is built, which has none).
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
    /// Examples per epoch.
    pub samples: usize,
    pub embedding_gradient: String,
    pub split_k: usize,
    /// Every epoch, warm-up included.
    pub epochs: Vec<BenchEpoch>,
    /// Scored samples per second of the last epoch (the first ones are warm-up).
    pub samples_per_sec: f64,
    /// Examples per second of the last epoch.
    pub examples_per_sec: f64,
    /// Seconds of the last epoch.
    pub epoch_secs: f64,
    /// The device allocator's peak reservation (GPU backends), or the process's peak resident
    /// memory (CPU backends), in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Which of the two `peak_memory_bytes` is.
    pub peak_memory_kind: &'static str,
    /// Processes training data-parallel (MPI ranks); the figures above are their sums.
    pub ranks: usize,
    /// The gradient exchange of the last epoch, per step (data-parallel runs).
    pub sync: Option<BenchSync>,
}

/// What the ranks' gradient exchange cost per step, as rank 0 saw it.
#[derive(Debug, Clone, Serialize)]
pub struct BenchSync {
    /// `auto` or `dense`.
    pub exchange: GradientExchange,
    /// Bytes a rank put into collectives per step.
    pub sent_bytes_per_step: f64,
    /// Bytes it would have put in with every parameter dense.
    pub dense_bytes_per_step: f64,
    /// Bytes it received from gathers of touched rows per step.
    pub gathered_bytes_per_step: f64,
    /// Milliseconds per step in the exchange (host copies included).
    pub ms_per_step: f64,
    /// Milliseconds per step in all.
    pub step_ms: f64,
}

/// The model a kind is benchmarked with: its family's
/// [`ModelFamily::bench_preset`](ember_models::ModelFamily::bench_preset), the paper's settings
/// (its README row's) or the PyTorch peer's in `scripts/bench_torch_<family>.py`.
pub fn preset(model: &str) -> Result<ModelConfig, TrainError> {
    ModelConfig::bench_preset(model).ok_or_else(|| {
        let (last, others) = MODEL_KINDS.split_last().expect("at least one kind");
        TrainError::Bench(format!(
            "no benchmark for model `{model}`: use {} or {last}",
            others.join(", ")
        ))
    })
}

/// Whether a model is benchmarked on the NCF peer's labelled pairs
/// (`scripts/bench_torch_neumf.py`) rather than on interactions: a model that reads pairs and
/// is built from nothing else (LightGCN, built over the training graph, needs interactions).
pub fn labelled_pairs(model: &ModelConfig) -> bool {
    model.input() == Input::Pairs && !model.settings().built_from_train()
}

/// `users` users, each with `per_user` distinct items of `items` drawn uniformly, in a random
/// order (their time order), as training data.
fn synthetic_interactions(users: usize, items: usize, per_user: usize, seed: u64) -> Dataset {
    let mut rng = SmallRng::seed_from_u64(seed);
    let per_user = per_user.min(items);
    let train: Vec<Vec<u32>> = (0..users)
        .map(|_| {
            let mut chosen = rand::seq::index::sample(&mut rng, items, per_user)
                .into_iter()
                .map(|i| i as u32)
                .collect::<Vec<_>>();
            chosen.shuffle(&mut rng);
            chosen
        })
        .collect();
    let ids = |n: usize| IdMap::from_ids(&(0..n as i64).collect::<Vec<_>>());
    let mut data = Dataset {
        user_ids: ids(users),
        item_ids: ids(items),
        valid: vec![Vec::new(); users],
        test: vec![Vec::new(); users],
        train,
        test_negatives: None,
        held_out_users: None,
        ratings: None,
        weights: None,
        known: Vec::new(),
        known_days: None,
        time_split: None,
    };
    data.known = data.split_sets();
    data
}

/// A rating from 1 to 5, drawn uniformly, for each of the `train` interactions: what a rating
/// model trains on. Drawn from its own generator, so the interactions are those of every other
/// family.
fn synthetic_ratings(train: &[Vec<u32>], seed: u64) -> SplitRatings {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5241_5449_4e47); // "RATING"
    let none = vec![Vec::new(); train.len()];
    SplitRatings {
        train: train
            .iter()
            .map(|items| {
                items
                    .iter()
                    .map(|_| rng.random_range(1..=5) as f32)
                    .collect()
            })
            .collect(),
        valid: none.clone(),
        test: none,
    }
}

/// Peak resident memory of this process (Linux), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the benchmark on `backend`.
///
/// Every rank of `ranks` calls it alike; each trains on its share of every batch.
pub fn bench_train(
    bench: &TrainBench,
    backend: Backend,
    ranks: &Ranks,
    mut on_epoch: impl FnMut(usize, &BenchEpoch),
) -> Result<BenchReport, TrainError> {
    let config = preset(&bench.model)?;
    let labelled = labelled_pairs(&config);
    check_bench(bench, labelled)?;
    if config.settings().fitted_at_init() {
        return bench_fit(bench, backend, ranks, &config, &mut on_epoch);
    }
    let device = backend.device()?.autodiff();
    device.seed(bench.seed);
    let work = Workload::new(bench, &config);
    let mut model = work.model(&config, bench, backend, &device, ranks);
    // The NCF peer's data: uniform ids, label (u + i) % 5 == 0.
    let mut rng = SmallRng::seed_from_u64(bench.seed);
    let pairs = labelled.then(|| labelled_data(bench.samples, work.tables, &mut rng));
    let train_sets = work.data.train_sets();
    let plan_chunk = bench.embedding_gradient.plan_chunk(backend);
    let shard = Shard::of(ranks.collective());
    let source = EpochSource {
        confidence: None,
        data: &work.data,
        train_sets: &train_sets,
        batch_size: bench.batch,
        negatives: 1,
        plan_chunk,
        device: device.clone(),
        shard,
    };
    let mut trainer = BenchTrainer::new(bench, &config, backend, ranks);
    let mut epochs = Vec::new();
    for epoch in 0..bench.epochs {
        device
            .sync()
            .map_err(|e| TrainError::DeviceFailed(format!("{e:?}")))?;
        let started = std::time::Instant::now();
        // Built every epoch, as training draws its examples every epoch; the time counts.
        let batches: Box<dyn Epoch> = match &pairs {
            Some((users, items, labels)) => Box::new(LabelledPairs::new(
                users.clone(),
                items.clone(),
                labels.clone(),
                bench.batch,
                work.tables,
                plan_chunk,
                (shard, &device),
            )),
            None => training_epoch(config.input(), &source, &mut rng),
        };
        let (next, stats) = trainer.epoch(model, batches.as_ref(), (bench.seed, epoch));
        model = next;
        trainer.note_memory(&device);
        let figures = trainer.figures(&stats, started.elapsed().as_secs_f64());
        on_epoch(epoch, &figures);
        epochs.push(figures);
    }
    Ok(trainer.report(bench, backend, &work, epochs, ranks.size()))
}

/// Refuses settings that leave nothing to train on.
fn check_bench(bench: &TrainBench, labelled: bool) -> Result<(), TrainError> {
    if bench.batch == 0 || bench.samples == 0 || bench.epochs == 0 {
        return Err(TrainError::Bench(
            "bench needs batch > 0, samples > 0 and at least one epoch".into(),
        ));
    }
    if labelled && bench.samples < bench.batch {
        return Err(TrainError::Bench(
            "bench needs at least one batch of pairs: samples ≥ batch".into(),
        ));
    }
    Ok(())
}

/// What the benchmark trains on: the model's tables and, for the families that read
/// interactions, the users' synthetic items (with ratings for rating models).
struct Workload {
    /// Users and items of the model's tables.
    tables: (usize, usize),
    /// Synthetic interactions (no users for labelled pairs).
    data: Dataset,
    /// Whether the model trains on labelled pairs.
    labelled: bool,
}

impl Workload {
    fn new(bench: &TrainBench, config: &ModelConfig) -> Self {
        let labelled = labelled_pairs(config);
        let (num_users, num_items) = bench.size.tables();
        let users = if labelled {
            num_users
        } else {
            bench.samples.min(num_users)
        };
        let mut data = synthetic_interactions(
            if labelled { 0 } else { users },
            num_items,
            bench.size.per_user(),
            bench.seed,
        );
        if config.input().predicts_ratings() {
            data.ratings = Some(synthetic_ratings(&data.train, bench.seed));
        }
        Self {
            tables: (users, num_items),
            data,
            labelled,
        }
    }

    /// The model of `config` for this workload on `device`, initialised now rather than at
    /// first use (see `params::materialize`), with rank 0's weights on every rank of a
    /// distributed bench.
    fn model(
        &self,
        config: &ModelConfig,
        bench: &TrainBench,
        backend: Backend,
        device: &Device,
        ranks: &Ranks,
    ) -> Model {
        let init = ModelInit {
            users: self.tables.0,
            items: self.tables.1,
            train: &self.data.train,
            dense: DenseSplit {
                groups: bench.split_k,
                ..backend.dense_split()
            },
            pair_loss: if self.labelled { Loss::Bce } else { Loss::Bpr },
            masks: backend.masks(),
        };
        let model = materialize(config.init(&init, device));
        broadcast_model(model, ranks.collective())
    }
}

/// `samples` pairs of uniform user and item ids from `tables`, labelled 1 when
/// `(user + item) % 5 == 0` (the NCF peer's data).
fn labelled_data(
    samples: usize,
    (num_users, num_items): (usize, usize),
    rng: &mut SmallRng,
) -> (Vec<i32>, Vec<i32>, Vec<f32>) {
    let users: Vec<i32> = (0..samples)
        .map(|_| rng.random_range(0..num_users as i32))
        .collect();
    let items: Vec<i32> = (0..samples)
        .map(|_| rng.random_range(0..num_items as i32))
        .collect();
    let labels: Vec<f32> = users
        .iter()
        .zip(&items)
        .map(|(u, i)| if (u + i) % 5 == 0 { 1.0 } else { 0.0 })
        .collect();
    (users, items, labels)
}

/// The optimiser and gradient sync of the benchmark's epochs, and what they measured.
struct BenchTrainer {
    optimizer: Adam,
    /// The ranks' sync in a distributed bench.
    replicas: Option<ReplicaSync>,
    single: SingleDevice,
    exchange: GradientExchange,
    steps: usize,
    peak_reserved: Option<u64>,
    sync: Option<BenchSync>,
    examples_per_epoch: usize,
    plan_chunk: Option<usize>,
}

impl BenchTrainer {
    fn new(bench: &TrainBench, config: &ModelConfig, backend: Backend, ranks: &Ranks) -> Self {
        let settings = AdamSettings {
            beta_2: config.bench_adam_beta2(),
            ..AdamSettings::default()
        };
        Self {
            optimizer: Adam::new(settings, backend.adam_layout()),
            replicas: (ranks.size() > 1)
                .then(|| ReplicaSync::new(ranks.0.clone(), bench.gradient_exchange)),
            single: SingleDevice,
            exchange: bench.gradient_exchange,
            steps: 0,
            peak_reserved: None,
            sync: None,
            examples_per_epoch: 0,
            plan_chunk: bench.embedding_gradient.plan_chunk(backend),
        }
    }

    /// Trains `model` on every batch of `batches`, the epoch `epoch` of a bench seeded `seed`.
    fn epoch(
        &mut self,
        model: Model,
        batches: &dyn Epoch,
        seeded: (u64, usize),
    ) -> (Model, EpochStats) {
        let sync: &mut dyn GradientSync = match &mut self.replicas {
            Some(r) => r,
            None => &mut self.single,
        };
        let stepper = Stepper {
            optimizer: &mut self.optimizer,
            sync,
            learning_rate: 1e-3,
            steps: &mut self.steps,
        };
        let (model, end) = train_epoch(
            model,
            batches,
            stepper,
            seeded,
            EpochProgress::default(),
            &mut |_| false,
            &indicatif::ProgressBar::hidden(),
        );
        let EpochEnd::Complete(stats) = end else {
            unreachable!("the bench never asks to stop")
        };
        (model, stats)
    }

    /// Notes the device allocator's reservation (GPU backends).
    fn note_memory(&mut self, device: &Device) {
        if let Some(usage) = device.memory_pool_usage() {
            let peak = self.peak_reserved.unwrap_or(0).max(usage.bytes_reserved);
            self.peak_reserved = Some(peak);
        }
    }

    /// The figures of an epoch trained as `stats` in `secs` wall seconds, with what its
    /// gradient exchange cost.
    fn figures(&mut self, stats: &EpochStats, secs: f64) -> BenchEpoch {
        self.examples_per_epoch = stats.examples;
        if let Some(r) = &mut self.replicas {
            let s = r.take_stats();
            let steps = s.steps.max(1) as f64;
            self.sync = Some(BenchSync {
                exchange: self.exchange,
                sent_bytes_per_step: s.sent as f64 / steps,
                dense_bytes_per_step: s.dense as f64 / steps,
                gathered_bytes_per_step: s.gathered as f64 / steps,
                ms_per_step: s.secs / steps * 1e3,
                step_ms: secs / steps * 1e3,
            });
        }
        BenchEpoch {
            secs,
            examples_per_sec: stats.examples as f64 / secs,
            samples_per_sec: stats.samples as f64 / secs,
            loss: stats.loss,
        }
    }

    /// The report of `epochs` of `bench` on `work`, over `ranks` ranks.
    fn report(
        self,
        bench: &TrainBench,
        device: Backend,
        work: &Workload,
        epochs: Vec<BenchEpoch>,
        ranks: usize,
    ) -> BenchReport {
        let measured = Measured {
            examples: self.examples_per_epoch,
            embedding_gradient: match self.plan_chunk {
                Some(c) => format!("segmented (chunk {c})"),
                None => "burn".into(),
            },
            peak_reserved: self.peak_reserved,
            sync: self.sync,
        };
        report(bench, device, work, epochs, (ranks, measured))
    }
}

/// What a benchmark measured beside its epochs' figures.
struct Measured {
    /// Examples of the last epoch.
    examples: usize,
    /// How embedding tables got their gradients.
    embedding_gradient: String,
    /// The device allocator's peak reservation, where it has one.
    peak_reserved: Option<u64>,
    /// The gradient exchange of the last epoch (data-parallel runs).
    sync: Option<BenchSync>,
}

/// The report of `epochs` of `bench` on `work`, over `ranks` ranks, with what they `measured`.
fn report(
    bench: &TrainBench,
    device: Backend,
    work: &Workload,
    epochs: Vec<BenchEpoch>,
    (ranks, measured): (usize, Measured),
) -> BenchReport {
    let (peak_memory_bytes, peak_memory_kind) = match measured.peak_reserved {
        Some(bytes) => (Some(bytes), "device allocator reserved"),
        None => (peak_rss(), "process peak RSS"),
    };
    let last = epochs.last().expect("at least one epoch");
    BenchReport {
        device,
        model: bench.model.clone(),
        users: work.tables.0,
        items: work.tables.1,
        batch: bench.batch,
        samples: measured.examples,
        embedding_gradient: measured.embedding_gradient,
        split_k: bench.split_k,
        samples_per_sec: last.samples_per_sec,
        examples_per_sec: last.examples_per_sec,
        epoch_secs: last.secs,
        peak_memory_bytes,
        peak_memory_kind,
        ranks,
        sync: measured.sync,
        epochs,
    }
}

/// The benchmark of a model fitted when it is built
/// ([`ModelSettings::fitted_at_init`](ember_models::ModelSettings::fitted_at_init)), which has
/// no steps to time: each epoch is one fit on the synthetic interactions, its examples the
/// users and its samples their interactions, its loss 0. Every rank fits alone.
fn bench_fit(
    bench: &TrainBench,
    backend: Backend,
    ranks: &Ranks,
    config: &ModelConfig,
    on_epoch: &mut impl FnMut(usize, &BenchEpoch),
) -> Result<BenchReport, TrainError> {
    let work = Workload::new(bench, config);
    let interactions: usize = work.data.train.iter().map(Vec::len).sum();
    let device = backend.device()?;
    let init = ModelInit {
        dense: DenseSplit {
            groups: bench.split_k,
            ..backend.dense_split()
        },
        masks: backend.masks(),
        ..ModelInit::new(work.tables.1, &work.data.train)
    };
    let mut epochs = Vec::new();
    for epoch in 0..bench.epochs {
        let started = std::time::Instant::now();
        drop(config.init(&init, &device));
        let secs = started.elapsed().as_secs_f64();
        let figures = BenchEpoch {
            secs,
            examples_per_sec: work.tables.0 as f64 / secs,
            samples_per_sec: interactions as f64 / secs,
            loss: 0.0,
        };
        on_epoch(epoch, &figures);
        epochs.push(figures);
    }
    let measured = Measured {
        examples: work.tables.0,
        embedding_gradient: "none (fitted when built)".into(),
        peak_reserved: None,
        sync: None,
    };
    Ok(report(
        bench,
        backend,
        &work,
        epochs,
        (ranks.size(), measured),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(model: &str, samples: usize) -> TrainBench {
        TrainBench {
            model: model.into(),
            size: BenchSize::Probe,
            batch: 1,
            samples,
            epochs: 2,
            embedding_gradient: EmbeddingGradient::Auto,
            split_k: 1,
            seed: 7,
            gradient_exchange: GradientExchange::Auto,
        }
    }

    /// What the bench does with a model comes from what the model reads, not from its name.
    #[test]
    fn sizes_and_data_follow_the_models_input() {
        let size = |kind| BenchSize::default_for(&preset(kind).unwrap());
        assert_eq!(size("gru4rec"), BenchSize::Games);
        assert_eq!(size("item_knn"), BenchSize::Probe);
        let labelled = |kind| labelled_pairs(&preset(kind).unwrap());
        assert!(labelled("mf") && labelled("neumf"));
        // LightGCN reads pairs but is built over the training graph.
        assert!(!labelled("lightgcn") && !labelled("item_knn") && !labelled("sasrec"));
        assert_eq!(preset("sasrec").unwrap().bench_adam_beta2(), 0.98);
        let err = preset("knn").unwrap_err().to_string();
        assert!(
            err.contains("no benchmark for model `knn`: use mf, gmf,"),
            "{err}"
        );
        assert!(err.ends_with(", gru4rec or item_knn"), "{err}");
    }

    /// A model fitted when it is built is timed fitting: each epoch one fit on the users'
    /// synthetic items (165 each on the probe's catalogue), with no loss.
    #[test]
    fn a_fitted_model_is_timed_fitting() {
        let mut seen = Vec::new();
        let report = bench_train(
            &bench("item_knn", 40),
            Backend::Flex,
            &Ranks::default(),
            |epoch, e| seen.push((epoch, e.loss)),
        )
        .unwrap();
        assert_eq!(seen, vec![(0, 0.0), (1, 0.0)]);
        assert_eq!(
            (report.users, report.items, report.samples),
            (40, 3_706, 40)
        );
        assert_eq!(report.embedding_gradient, "none (fitted when built)");
        let per_user = report.samples_per_sec / report.examples_per_sec;
        assert!((per_user - 165.0).abs() < 1e-6, "{per_user}");
    }
}
