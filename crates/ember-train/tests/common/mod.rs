//! Data shared by the integration tests (each test file uses part of it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Held while a test trains: burn's random state is per process, so runs in parallel test
/// threads would draw from one generator and lose their seeds' determinism.
static TRAINING: Mutex<()> = Mutex::new(());

/// Trains `config` on the CPU with no other training in this process at the same time, so the
/// result depends on the config's seed alone.
pub fn train_alone(config: &ember_train::RunConfig) -> ember_train::RunSummary {
    let _alone = TRAINING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    ember_train::train(
        config,
        ember_train::Backend::Flex,
        ember_train::RunOptions::default(),
    )
    .unwrap()
}

/// An error and its causes, as the command line prints them.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Set in CI (`.ci/run`): a test whose input is missing fails instead of skipping.
pub const REQUIRE_INPUTS: &str = "EMBER_REQUIRE_TEST_INPUTS";

/// Skips a test whose input is missing, saying why; fails it instead when [`REQUIRE_INPUTS`]
/// is set.
pub fn skip(reason: &str) {
    if std::env::var_os(REQUIRE_INPUTS).is_some() {
        panic!("{reason}, and {REQUIRE_INPUTS} is set: a test with a missing input fails");
    }
    eprintln!("skipped: {reason}");
}

/// `../shared/datasets/<relative>` beside the repository, or `None` after [`skip`].
pub fn shared_dataset(relative: &str) -> Option<PathBuf> {
    let path = repo().join("../shared/datasets").join(relative);
    if path.exists() {
        return Some(path);
    }
    skip(&format!(
        "{} not found (the shared datasets are not on this machine)",
        path.display()
    ));
    None
}

/// Explicit ratings from a rank-3 taste model (`u.data` layout), in which a user's own taste,
/// not an item's mean, decides most of a rating.
pub fn rated_data(dir: &std::path::Path) -> std::path::PathBuf {
    let mut state = 11u64;
    let mut random = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5
    };
    let (users, items) = (200, 120);
    let users_f: Vec<[f64; 3]> = (0..users).map(|_| [random(), random(), random()]).collect();
    let items_f: Vec<[f64; 3]> = (0..items).map(|_| [random(), random(), random()]).collect();
    let mut lines = String::new();
    for u in 0..users {
        for i in 0..items {
            if random() < 0.1 {
                // About 60% of the cells are rated.
                let taste: f64 = (0..3).map(|k| users_f[u][k] * items_f[i][k]).sum();
                let rating = (3.0 + 12.0 * taste + 0.5 * random())
                    .round()
                    .clamp(1.0, 5.0);
                lines.push_str(&format!(
                    "{}\t{}\t{rating}\t{}\n",
                    u + 1,
                    i + 1,
                    u * items + i
                ));
            }
        }
    }
    let path = dir.join("u.data");
    std::fs::write(&path, lines).unwrap();
    path
}
