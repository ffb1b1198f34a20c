//! NeuMF on the real NCF-format MovieLens-100K split (read from ../shared/datasets; skipped with
//! a message when it is absent).

use ember_train::{Backend, RunConfig, RunOptions, train};

mod common;

#[test]
fn neumf_on_ncf_ml100k_beats_popularity_by_far() {
    let repo = common::repo();
    let Some(directory) = common::shared_dataset("ncf-ml-100k") else {
        return;
    };
    let prefix = directory.join("ml-100k");
    let config_path = repo.join("configs/ncf-ml100k-neumf.toml");
    let mut config = RunConfig::from_file(&config_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    config.output_dir = dir.path().to_owned();
    config.data = ember_data::DataSource::Ncf { prefix }.into();
    config.train.epochs = 4;
    let summary = train(&config, Backend::Flex, RunOptions::default()).unwrap();
    assert_eq!(summary.test.users, 943);
    let hr = summary.test.get("HR@10").unwrap();
    let pop = summary.popularity.get("HR@10").unwrap();
    // Popularity is 0.311 on this split (see the datasets README); a trained NeuMF is far above.
    assert!((pop - 0.311).abs() < 0.02, "popularity HR@10 {pop}");
    assert!(hr > pop + 0.15, "NeuMF HR@10 {hr} vs popularity {pop}");
}
