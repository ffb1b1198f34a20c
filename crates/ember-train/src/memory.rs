//! The memory a run will take, estimated from its config and its data's sizes before the
//! model is built, against what this process may still take: a run that cannot fit is refused
//! with both figures, where it used to grow until the kernel killed it (`factors = 1e6` on 200
//! users: 18.5 GB) or abort on a failed allocation (`factors = 1e9`: "memory allocation of
//! 800000000000 bytes failed").
//!
//! The estimate is parameters × 4 bytes × [`COPIES`] (the copies of the weights alive at the
//! peak) plus the activations of the largest training or evaluation batch. The limit is the
//! smallest of what the kernel will give: the cgroup's `memory.max` less its `memory.current`
//! (v2; v1's `memory.limit_in_bytes` and `memory.usage_in_bytes`), `MemAvailable` in
//! `/proc/meminfo`, and the address-space limit (`ulimit -v`) less the address space in use;
//! `ember train --max-memory` replaces them all.

use ember_data::Dataset;
use ember_metrics::Protocol;
use ember_models::{Input, SequenceTask};

use crate::RunConfig;

/// Copies of every parameter (4 bytes each) a run's peak holds: the weights, their gradient,
/// Adam's two moments, the best epoch's model, and, while a checkpoint is written, the moments
/// copied out of the optimiser, their bytes and the serialised file. Measured: MF with 4,096
/// factors on 3,000 users and items, with batches too small to count, peaked 9.1 copies above
/// the same run with 8 factors (README, "Memory").
pub const COPIES: u128 = 9;

/// Copies of the values a fitted model holds beside its parameters
/// ([`ModelSettings::held_values`](ember_models::ModelSettings::held_values): ItemKNN's
/// neighbour lists, 4 bytes each) that a run's peak holds: the model as built and the lists of
/// the fit that builds it (or its rebuild for the refit) before they are indexed.
pub const HELD_COPIES: u128 = 2;

/// Bytes a batch holds per value of its widest tensor: the tensor (4 bytes a value) and half
/// as much again of what is computed from it and of its gradient. Measured between 4.6 (NeuMF's
/// evaluation batches) and 7.8 (MF's), 5.3 for MF's training batches (README, "Memory").
pub const ACTIVATION_BYTES: u128 = 6;

/// What a run's model will take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Parameters of the largest model the run builds.
    pub parameters: u128,
    /// Values it holds beside its parameters (fitted, not trained).
    pub held_values: u128,
    /// Values of the widest tensor a training or evaluation batch makes.
    pub batch_values: u128,
}

impl Estimate {
    /// Bytes of the parameters' copies and of the held values' copies.
    pub fn model_bytes(&self) -> u128 {
        let held = self.held_values.saturating_mul(4 * HELD_COPIES);
        self.parameters
            .saturating_mul(4 * COPIES)
            .saturating_add(held)
    }

    /// Bytes of a batch's activations.
    pub fn batch_bytes(&self) -> u128 {
        self.batch_values.saturating_mul(ACTIVATION_BYTES)
    }

    /// Both.
    pub fn bytes(&self) -> u128 {
        self.model_bytes().saturating_add(self.batch_bytes())
    }
}

/// Estimates what `config`'s model takes on `data`.
pub fn estimate(config: &RunConfig, data: &Dataset) -> Estimate {
    let (users, items) = (data.num_users(), data.num_items());
    let parameters = config.model.parameter_count(users, items);
    let held_values = config.model.settings().held_values(users, items);
    let input = config.model.input();
    // The pair models' widest tensors are the rows of the batch's embeddings.
    let width = parameters / (users as u128 + items as u128).max(1);
    let training = training_values(config, input, width, users as u128, items as u128);
    let eval = &config.eval;
    let scored_users = eval.users_per_batch(items) as u128;
    let evaluation = match input {
        // Pairs in chunks of at most `max_scores`.
        Input::Pairs => {
            let pairs = scored_users.saturating_mul(candidates(&eval.protocol, data));
            pairs.min(eval.max_scores as u128).saturating_mul(width)
        }
        // Every item's score for each user of a batch.
        _ => scored_users.saturating_mul(items as u128),
    };
    Estimate {
        parameters,
        held_values,
        batch_values: training.max(evaluation),
    }
}

/// The most items scored for one user under `protocol`.
fn candidates(protocol: &Protocol, data: &Dataset) -> u128 {
    let items = data.num_items() as u128;
    match protocol {
        Protocol::Sampled { negatives, .. } => (1 + *negatives as u128).min(items),
        Protocol::FixedNegatives => match &data.test_negatives {
            Some(lists) => 1 + lists.iter().map(Vec::len).max().unwrap_or(0) as u128,
            None => items,
        },
        Protocol::FullRanking => items,
    }
}

/// Values of the widest tensor of a training batch.
fn training_values(
    config: &RunConfig,
    input: Input,
    width: u128,
    users: u128,
    items: u128,
) -> u128 {
    let batch = config.train.batch_size as u128;
    match input {
        Input::Pairs => {
            let examples = batch.saturating_mul(1 + config.train.negatives as u128);
            examples.saturating_mul(width)
        }
        Input::UserRows { .. } => batch.saturating_mul(items),
        Input::RatingRows { item_based: true } => batch.saturating_mul(users),
        Input::RatingRows { item_based: false } => batch.saturating_mul(items),
        Input::Sequences { max_len, task } => {
            let scored = match task {
                SequenceTask::NextItem { negatives: 0 } | SequenceTask::MaskedItem { .. } => items,
                SequenceTask::NextItem { negatives } => 1 + negatives as u128,
            };
            batch.saturating_mul(max_len as u128).saturating_mul(scored)
        }
    }
}

/// Where a limit on memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `ember train --max-memory`.
    Flag,
    /// The cgroup's limit less its usage.
    Cgroup,
    /// `MemAvailable` in `/proc/meminfo`.
    MemAvailable,
    /// The address-space limit (`ulimit -v`) less the address space in use.
    AddressSpace,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Flag => "--max-memory, less what it holds now",
            Source::Cgroup => "its cgroup's memory.max less memory.current",
            Source::MemAvailable => "MemAvailable in /proc/meminfo",
            Source::AddressSpace => "its address-space limit (ulimit -v) less the space in use",
        }
    }
}

/// Bytes this process may still allocate, and what says so; `None` when nothing limits it
/// (or nothing could be read).
pub fn available(max_memory: Option<u64>) -> Option<(u64, Source)> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let status = read("/proc/self/status").unwrap_or_default();
    if let Some(max) = max_memory {
        let held = status_bytes(&status, "VmRSS").unwrap_or(0);
        return Some((max.saturating_sub(held), Source::Flag));
    }
    let cgroup = cgroup_v2(
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    )
    .or_else(|| {
        cgroup_v2(
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            read("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        )
    });
    let address_space = limits_address_space(&read("/proc/self/limits").unwrap_or_default())
        .map(|limit| limit.saturating_sub(status_bytes(&status, "VmSize").unwrap_or(0)));
    [
        cgroup.map(|b| (b, Source::Cgroup)),
        meminfo_available(&read("/proc/meminfo").unwrap_or_default())
            .map(|b| (b, Source::MemAvailable)),
        address_space.map(|b| (b, Source::AddressSpace)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(bytes, _)| *bytes)
}

/// A cgroup's room, from its limit file's and usage file's text: `None` without a limit
/// (`max`, or v1's "no limit", a number near 2^63).
fn cgroup_v2(limit: Option<String>, usage: Option<String>) -> Option<u64> {
    let limit: u64 = limit?.trim().parse().ok()?;
    if limit >= 1 << 62 {
        return None;
    }
    let usage: u64 = usage.and_then(|u| u.trim().parse().ok()).unwrap_or(0);
    Some(limit.saturating_sub(usage))
}

/// `MemAvailable` of `/proc/meminfo`'s text, in bytes.
fn meminfo_available(meminfo: &str) -> Option<u64> {
    kilobytes_field(meminfo, "MemAvailable")
}

/// A `Vm…` field of `/proc/self/status`'s text, in bytes.
fn status_bytes(status: &str, field: &str) -> Option<u64> {
    kilobytes_field(status, field)
}

/// A `Name:   1234 kB` line of a `/proc` file, in bytes.
fn kilobytes_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
    let value = line.split(':').nth(1)?.trim();
    let kilobytes: u64 = value.strip_suffix("kB")?.trim().parse().ok()?;
    kilobytes.checked_mul(1024)
}

/// The soft address-space limit of `/proc/self/limits`' text, in bytes (`None`: unlimited).
fn limits_address_space(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft = line["Max address space".len()..]
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// Refuses a run whose model will not fit in what this process may use (see the module
/// documentation), before the model is built; otherwise says what it will take, for the log.
pub fn check(
    config: &RunConfig,
    data: &Dataset,
    max_memory: Option<u64>,
) -> Result<String, TooLarge> {
    let estimate = estimate(config, data);
    let model = config.model.name();
    match available(max_memory) {
        Some((bytes, source)) if estimate.bytes() > bytes as u128 => Err(TooLarge {
            model,
            estimate,
            available: bytes,
            limited_by: source,
        }),
        Some((bytes, source)) => Ok(format!(
            "memory: {}; {} available ({})",
            needs(model, &estimate),
            shown_bytes(bytes as u128),
            source.describe()
        )),
        None => Ok(format!(
            "memory: {}; no limit found",
            needs(model, &estimate)
        )),
    }
}

/// What `model` needs, with the estimate's parts.
fn needs(model: &str, estimate: &Estimate) -> String {
    let held = match estimate.held_values {
        0 => String::new(),
        values => format!(
            ", {} fitted values × 4 B × {HELD_COPIES} copies",
            shown_count(values)
        ),
    };
    format!(
        "model and optimiser need about {} ({model}: {} parameters × 4 B × {COPIES} copies{held}, \
         and {} of batch activations)",
        shown_bytes(estimate.bytes()),
        shown_count(estimate.parameters),
        shown_bytes(estimate.batch_bytes()),
    )
}

/// A run whose model needs more memory than the process may use.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{}; this process may use {} more ({}): make the model smaller, or {}",
    needs(model, estimate),
    shown_bytes(*available as u128),
    limited_by.describe(),
    if matches!(limited_by, Source::Flag) { "raise --max-memory" } else { "give it more memory (--max-memory overrides the limit)" }
)]
pub struct TooLarge {
    /// The model kind.
    pub model: &'static str,
    /// What it needs.
    pub estimate: Estimate,
    /// Bytes the process may still take.
    pub available: u64,
    /// What says so.
    pub limited_by: Source,
}

/// Bytes in GiB (or MiB below one GiB), one decimal.
fn shown_bytes(bytes: u128) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let mib = bytes as f64 / MIB;
    if mib < 1024.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{:.1} GiB", mib / 1024.0)
    }
}

/// A count with its scale in words (`300.0 million`), exact below a million.
fn shown_count(count: u128) -> String {
    let n = count as f64;
    match n {
        _ if n < 1e6 => count.to_string(),
        _ if n < 1e9 => format!("{:.1} million", n / 1e6),
        _ if n < 1e12 => format!("{:.1} billion", n / 1e9),
        _ => format!("{n:.2e}"),
    }
}

/// Reads a size such as `4G`, `512M`, `1.5GiB`, `800000000`: a number of bytes, or of KiB,
/// MiB, GiB or TiB with `K`, `M`, `G` or `T` (binary units, with or without `iB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}`: expected a size such as 4G, 512M or 1073741824 (bytes)");
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(bad()),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_models::{ItemKnnConfig, MfConfig, ModelConfig};

    #[test]
    fn cgroup_limits_are_read_from_v2_and_v1_text() {
        let text = |s: &str| Some(s.to_string());
        assert_eq!(cgroup_v2(text("max\n"), text("123\n")), None);
        assert_eq!(
            cgroup_v2(text("4294967296\n"), text("1073741824\n")),
            Some(3 << 30)
        );
        // v1 without a limit: the largest multiple of the page size below 2^63.
        assert_eq!(cgroup_v2(text("9223372036854771712\n"), text("5\n")), None);
        assert_eq!(cgroup_v2(None, text("5")), None);
        assert_eq!(cgroup_v2(text("100"), text("250")), Some(0));
    }

    #[test]
    fn proc_files_are_read_in_bytes() {
        let meminfo =
            "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20971520 kB\n";
        assert_eq!(meminfo_available(meminfo), Some(20 << 30));
        assert_eq!(meminfo_available("MemTotal: 5 kB\n"), None);
        let status = "Name:\tember\nVmSize:\t  2097152 kB\nVmRSS:\t    10240 kB\n";
        assert_eq!(status_bytes(status, "VmSize"), Some(2 << 30));
        assert_eq!(status_bytes(status, "VmRSS"), Some(10 << 20));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max stack size            8388608              unlimited            bytes     \n\
                      Max address space         4294967296           unlimited            bytes     \n";
        assert_eq!(limits_address_space(limits), Some(4 << 30));
        let unlimited =
            "Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(limits_address_space(unlimited), None);
    }

    #[test]
    fn sizes_are_read_in_binary_units() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in ["", "G", "4X", "-1G", "0", "1e3"] {
            assert_eq!(
                parse_size(bad),
                Err(format!(
                    "`{bad}`: expected a size such as 4G, 512M or 1073741824 (bytes)"
                )),
            );
        }
    }

    /// Synthetic data of `users` users and `items` items.
    fn synthetic(users: usize, items: usize) -> Dataset {
        use ember_data::{DataSource, Preprocess, Split, SyntheticConfig, prepare};
        let synthetic = SyntheticConfig {
            users,
            items,
            interactions_per_user: 30,
            ..SyntheticConfig::default()
        };
        let source = DataSource::Synthetic { synthetic };
        prepare(&source, &Preprocess::default(), &Split::default())
            .unwrap()
            .0
    }

    #[test]
    fn a_model_that_cannot_fit_is_refused_with_its_figures() {
        let data = synthetic(200, 100);
        assert_eq!((data.num_users(), data.num_items()), (200, 100));
        let mut config = RunConfig::default();
        config.model = ModelConfig::Mf(MfConfig {
            factors: 1_000_000_000,
            init_std: 0.01,
        });
        // 3e11 parameters, 36 bytes each; the widest batch is the evaluation's 256 users × 100
        // candidates, each pair rows of 1e9 values: 2.56e13 values of 6 bytes.
        let estimate = estimate(&config, &data);
        assert_eq!(estimate.parameters, 300_000_000_000);
        assert_eq!(estimate.model_bytes(), 10_800_000_000_000);
        assert_eq!(estimate.batch_values, 25_600_000_000_000);
        assert_eq!(estimate.bytes(), 164_400_000_000_000);
        let err = check(&config, &data, Some(2 << 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "model and optimiser need about 153109.4 GiB (mf: 300.0 billion parameters × 4 B \
                 × 9 copies, and 143051.1 GiB of batch activations); this process may use "
            ) && err.ends_with(
                " more (--max-memory, less what it holds now): make the model smaller, or raise \
                 --max-memory"
            ),
            "{err}"
        );
        config.model = ModelConfig::Mf(MfConfig {
            factors: 8,
            init_std: 0.01,
        });
        let fits = check(&config, &data, Some(2 << 30)).unwrap();
        assert!(
            fits.starts_with("memory: model and optimiser need about "),
            "{fits}"
        );
    }

    /// ItemKNN has no parameter; its neighbour lists (4 values per item and neighbour) are
    /// counted twice at 4 bytes, and named.
    #[test]
    fn a_fitted_model_is_counted_by_what_it_holds() {
        let data = synthetic(200, 100);
        let mut config = RunConfig::default();
        config.model = ModelConfig::ItemKnn(ItemKnnConfig {
            neighbours: 1_000_000,
            shrinkage: 0.0,
        });
        let estimate = estimate(&config, &data);
        assert_eq!(
            (estimate.parameters, estimate.held_values),
            (0, 400_000_000)
        );
        assert_eq!(estimate.model_bytes(), 3_200_000_000);
        let err = check(&config, &data, Some(2 << 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "(item_knn: 0 parameters × 4 B × 9 copies, 400.0 million fitted values × 4 B × 2 \
                 copies, and "
            ),
            "{err}"
        );
    }
}
