//! SASRec on SASRec's own "Games" data (../shared/datasets/sasrec/Video.txt) with the
//! repository's config, trained for a few epochs only (the full 100 take about an hour on two
//! CPU cores): the split must match the paper's data, and the model must already be well
//! ahead of popularity under both protocols. Skipped with a message when the data is absent.

use ember_train::{Backend, RunConfig, RunOptions, train};

mod common;

#[test]
fn sasrec_on_games_beats_popularity_under_both_protocols() {
    let Some(data) = common::shared_dataset("sasrec/Video.txt") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        RunConfig::from_file(&common::repo().join("configs/games-sasrec.toml")).unwrap();
    config.data = ember_data::DataSource::Sasrec { path: data }.into();
    config.output_dir = dir.path().to_owned();
    config.train.epochs = 6;
    config.eval.every = 3;
    let summary = train(&config, Backend::Flex, RunOptions::default()).unwrap();

    // The paper's Games data: 31,013 users, of whom 112 have fewer than 3 actions and only
    // train; every other user has one validation and one test item.
    assert_eq!(summary.test.users, 31_013 - 112);
    let [(test, popularity), (full, full_popularity)] = [
        (&summary.test, &summary.popularity),
        (&summary.extra[0].0, &summary.extra[0].1),
    ];
    assert!(
        test.protocol.contains("100 uniform negatives"),
        "{}",
        test.protocol
    );
    assert!(full.protocol.contains("full ranking"), "{}", full.protocol);
    let ndcg = |r: &ember_metrics::MetricsReport| r.get("NDCG@10").unwrap();
    eprintln!(
        "6 epochs: NDCG@10 {:.4} (popularity {:.4}), full ranking {:.4} (popularity {:.4})",
        ndcg(test),
        ndcg(popularity),
        ndcg(full),
        ndcg(full_popularity)
    );
    assert!(
        ndcg(test) > ndcg(popularity) + 0.05,
        "100 negatives: SASRec {} vs popularity {}",
        ndcg(test),
        ndcg(popularity)
    );
    assert!(
        ndcg(full) > ndcg(full_popularity),
        "full ranking: SASRec {} vs popularity {}",
        ndcg(full),
        ndcg(full_popularity)
    );
}
