//! A time-split backtest on MovieLens-100K (`configs/ml100k-time-split.toml` with MF for a few
//! epochs), checked against the split and the popularity baseline's recall worked out here from
//! `u.data` alone. Reads ../shared/datasets; skipped with a message when it is absent.

use std::collections::{HashMap, HashSet};

use ember_train::RunConfig;

mod common;

/// 1998-03-01T00:00Z and the validation window's start 14 days before, in Unix seconds.
const CUTOFF: i64 = 888_710_400;
const VALID_START: i64 = CUTOFF - 14 * 86_400;

/// `u.data` rows: (user, item, rating, timestamp).
fn rows(path: &std::path::Path) -> Vec<(i64, i64, f64, i64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// What the backtest should hold out, worked out from the rows: per test user, the items
/// they rated 4+ on or after the cutoff (users and items with a 4+ rating before the window
/// only), and the number of such ratings left out for a new user or item.
fn expected_test(rows: &[(i64, i64, f64, i64)]) -> (HashMap<i64, HashSet<i64>>, usize) {
    let positive = |r: &&(i64, i64, f64, i64)| r.2 >= 4.0;
    let training: Vec<_> = rows
        .iter()
        .filter(positive)
        .filter(|r| r.3 < VALID_START)
        .collect();
    let users: HashSet<i64> = training.iter().map(|r| r.0).collect();
    let items: HashSet<i64> = training.iter().map(|r| r.1).collect();
    let mut test: HashMap<i64, HashSet<i64>> = HashMap::new();
    let mut left_out = 0;
    for r in rows.iter().filter(positive).filter(|r| r.3 >= CUTOFF) {
        if users.contains(&r.0) && items.contains(&r.1) {
            test.entry(r.0).or_default().insert(r.1);
        } else {
            left_out += 1;
        }
    }
    (test, left_out)
}

/// Popularity's Recall@k over the test users: items scored by their training count, the
/// candidates every training item but those the user rated (at any rating) before the cutoff,
/// test items excepted; a test item ranks below every candidate with its score.
fn popularity_recall(
    rows: &[(i64, i64, f64, i64)],
    test: &HashMap<i64, HashSet<i64>>,
    k: usize,
) -> f64 {
    let mut count: HashMap<i64, usize> = HashMap::new();
    for r in rows.iter().filter(|r| r.2 >= 4.0 && r.3 < VALID_START) {
        *count.entry(r.1).or_default() += 1;
    }
    let mut total = 0.0;
    for (user, held) in test {
        let before: HashSet<i64> = rows
            .iter()
            .filter(|r| r.0 == *user && r.3 < CUTOFF)
            .map(|r| r.1)
            .collect();
        let negatives: Vec<usize> = count
            .iter()
            .filter(|(i, _)| !held.contains(i) && !before.contains(i))
            .map(|(_, c)| *c)
            .collect();
        let mut relevant: Vec<usize> = held.iter().map(|i| count[i]).collect();
        relevant.sort_unstable_by(|a, b| b.cmp(a));
        let hits = relevant
            .iter()
            .enumerate()
            .filter(|(j, s)| negatives.iter().filter(|c| *c >= *s).count() + j < k)
            .count();
        total += hits as f64 / held.len() as f64;
    }
    total / test.len() as f64
}

#[test]
fn a_time_split_backtest_on_ml100k_scores_every_item_taken_after_the_cutoff() {
    let Some(dir) = common::shared_dataset("ml-100k") else {
        return;
    };
    let data = dir.join("u.data");
    let rows = rows(&data);
    let (test, left_out) = expected_test(&rows);
    let text = std::fs::read_to_string(common::repo().join("configs/ml100k-time-split.toml"))
        .unwrap()
        .replace("../shared/datasets/ml-100k/u.data", data.to_str().unwrap())
        .replace(
            "kind = \"neumf\"\nfactors = 16\nlayers = [64, 32, 16, 8]",
            "kind = \"mf\"\nfactors = 16",
        )
        .replace("epochs = 60", "epochs = 3");
    let mut config = RunConfig::from_toml(&text, std::path::Path::new("time.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    config.output_dir = out.path().to_owned();
    assert_eq!(config.model.name(), "mf");
    let summary = common::train_alone(&config);
    assert_eq!(summary.test.users, test.len());
    let described: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary.run_dir.join("data.json")).unwrap())
            .unwrap();
    let dataset = &described["dataset"];
    let pairs: usize = test.values().map(HashSet::len).sum();
    assert_eq!(dataset["test"], pairs);
    assert_eq!(dataset["time_split"]["test_users"], test.len());
    assert_eq!(
        dataset["time_split"]["interactions_left_out_test"],
        left_out
    );
    assert_eq!(dataset["time_split"]["cutoff"], "1998-03-01T00:00:00Z");
    for k in [10, 20] {
        let expected = popularity_recall(&rows, &test, k);
        let got = summary.popularity.get(&format!("Recall@{k}")).unwrap();
        assert!(
            (got - expected).abs() < 1e-9,
            "popularity Recall@{k} {got} vs {expected}"
        );
        for metric in [format!("Recall@{k}"), format!("NDCG@{k}")] {
            let value = summary.test.get(&metric).unwrap();
            assert!(value > 0.0 && value <= 1.0, "MF {metric} {value}");
        }
    }
}

/// SASRec takes the backtest too: its test input is each user's history before the cutoff,
/// and it is scored on the same users and items as the id models.
#[test]
fn sasrec_is_scored_on_every_item_taken_after_the_cutoff() {
    let Some(dir) = common::shared_dataset("ml-100k") else {
        return;
    };
    let data = dir.join("u.data");
    let (test, _) = expected_test(&rows(&data));
    let text =
        std::fs::read_to_string(common::repo().join("configs/ml100k-time-split-sasrec.toml"))
            .unwrap()
            .replace("../shared/datasets/ml-100k/u.data", data.to_str().unwrap())
            .replace("epochs = 200", "epochs = 2")
            .replace("every = 5", "every = 1");
    let mut config = RunConfig::from_toml(&text, std::path::Path::new("sasrec.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    config.output_dir = out.path().to_owned();
    let summary = common::train_alone(&config);
    assert_eq!(summary.model, "sasrec");
    assert_eq!(summary.test.users, test.len());
    let recall = summary.test.get("Recall@20").unwrap();
    assert!(recall > 0.0 && recall <= 1.0, "SASRec Recall@20 {recall}");
}
