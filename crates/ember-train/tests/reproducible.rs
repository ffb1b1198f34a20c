//! The same config and seed give the same result. burn's random state is per process and per
//! backend, so this test has a process of its own: tests that train in parallel threads of one
//! process draw from the same generator, as two runs inside one process at once would.

use ember_data::{DataSource, SyntheticConfig};
use ember_metrics::Protocol;
use ember_models::{GmfConfig, ModelConfig, SasRecConfig, SequenceLoss};
use ember_train::{Backend, RunConfig, RunOptions, train};

fn config(dir: &std::path::Path, model: ModelConfig) -> RunConfig {
    let mut config = RunConfig::default();
    config.name = model.name().into();
    config.output_dir = dir.to_owned();
    config.data = DataSource::Synthetic {
        synthetic: SyntheticConfig {
            users: 200,
            items: 100,
            interactions_per_user: 15,
            ..Default::default()
        },
    }
    .into();
    config.model = model;
    config.train.epochs = 2;
    config.eval.protocol = Protocol::FullRanking;
    config.eval.ks = vec![10];
    config
}

#[test]
fn same_seed_same_result() {
    let dir = tempfile::tempdir().unwrap();
    // An id-based model, and a sequence model with dropout and sampled negatives.
    let models = [
        ModelConfig::Gmf(GmfConfig {
            factors: 8,
            init_std: 0.1,
        }),
        ModelConfig::SasRec(SasRecConfig {
            hidden: 16,
            blocks: 1,
            heads: 1,
            max_len: 10,
            dropout: 0.3,
            loss: SequenceLoss::Bce,
            negatives: 1,
        }),
    ];
    for model in models {
        let config = config(dir.path(), model);
        let a = train(&config, Backend::Flex, RunOptions::default()).unwrap();
        let b = train(&config, Backend::Flex, RunOptions::default()).unwrap();
        assert_ne!(a.run_dir, b.run_dir, "a second run gets its own directory");
        assert_eq!(a.test, b.test, "{}", a.model);
        assert_eq!(a.valid, b.valid, "{}", a.model);
    }
}
