//! I-AutoRec on the real MovieLens-100K ratings (read from ../shared/datasets; skipped with a
//! message when it is absent): far below the item-mean baseline's RMSE. A short schedule keeps
//! the test quick; `configs/ml100k-autorec.toml` is the full one.

use ember_train::{Backend, RunConfig, RunOptions, train};

mod common;

#[test]
fn i_autorec_on_ml100k_beats_item_means() {
    let Some(data) = common::shared_dataset("ml-100k/u.data") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        RunConfig::from_file(&common::repo().join("configs/ml100k-autorec.toml")).unwrap();
    config.data = ember_data::DataSource::Movielens100k { path: data }.into();
    config.output_dir = dir.path().to_owned();
    config.train.learning_rate = 1e-3;
    config.train.epochs = 25;
    let summary = train(&config, Backend::Flex, RunOptions::default()).unwrap();
    let rmse = summary.test.get("RMSE").unwrap();
    let item_means = summary.popularity.get("RMSE").unwrap();
    eprintln!("I-AutoRec test RMSE {rmse:.4}, item means {item_means:.4}");
    // Item means are about 1.03 on this split.
    assert!((item_means - 1.03).abs() < 0.02, "item means {item_means}");
    assert!(
        rmse < 0.93,
        "I-AutoRec RMSE {rmse} (item means {item_means})"
    );
}
