//! Mult-DAE and Mult-VAE on the real MovieLens-100K (ratings >= 4) under the held-out-users
//! protocol: both must beat popularity and NeuMF on test NDCG@100, with the repository's configs
//! (read from ../shared/datasets; skipped with a message when it is absent).

use ember_train::{Backend, RunConfig, RunOptions, RunSummary, train};
use std::path::Path;

mod common;

fn run(config: &str, dir: &Path) -> Option<RunSummary> {
    let data = common::shared_dataset("ml-100k/u.data")?;
    let mut config = RunConfig::from_file(&common::repo().join("configs").join(config)).unwrap();
    config.data = ember_data::DataSource::Movielens100k { path: data }.into();
    config.output_dir = dir.to_owned();
    Some(train(&config, Backend::Flex, RunOptions::default()).unwrap())
}

#[test]
fn autoencoders_beat_popularity_and_neumf_on_held_out_users() {
    let dir = tempfile::tempdir().unwrap();
    let Some(neumf) = run("ml100k-heldout-neumf.toml", dir.path()) else {
        return;
    };
    let ndcg = |s: &RunSummary| s.test.get("NDCG@100").unwrap();
    let popularity = neumf.popularity.get("NDCG@100").unwrap();
    // The protocol: 100 test users (those with 5+ positives score 20% of their items).
    assert_eq!(neumf.test.users, 100);
    assert!(
        ndcg(&neumf) > popularity,
        "NeuMF {} vs popularity {popularity}",
        ndcg(&neumf)
    );
    for config in [
        "ml100k-heldout-mult-dae.toml",
        "ml100k-heldout-mult-vae.toml",
    ] {
        let summary = run(config, dir.path()).unwrap();
        eprintln!(
            "{}: test NDCG@100 {:.4}, NeuMF {:.4}, popularity {popularity:.4}",
            summary.model,
            ndcg(&summary),
            ndcg(&neumf)
        );
        assert_eq!(summary.popularity.get("NDCG@100").unwrap(), popularity);
        assert!(
            ndcg(&summary) > ndcg(&neumf) && ndcg(&summary) > popularity,
            "{}: NDCG@100 {} vs NeuMF {} and popularity {popularity}",
            summary.model,
            ndcg(&summary),
            ndcg(&neumf)
        );
    }
}
