//! Full-ranking evaluation in chunks set by `eval.max_scores` (users per batch, and items per
//! forward pass of a pair model) gives the metrics of scoring everything at once.

use ember_data::{DataSource, SyntheticConfig};
use ember_metrics::Protocol;
use ember_models::{GmfConfig, ModelConfig, MultDaeConfig, NeuMfConfig};
use ember_train::{Backend, RunConfig, RunOptions, evaluate_run, train};

#[test]
fn chunked_full_ranking_equals_unchunked() {
    let dir = tempfile::tempdir().unwrap();
    let models = [
        ModelConfig::NeuMf(NeuMfConfig {
            factors: 8,
            layers: vec![16, 8, 4],
            init_std: 0.3,
            pretrain: false,
            alpha: 0.5,
        }),
        ModelConfig::Gmf(GmfConfig {
            factors: 8,
            init_std: 0.1,
        }),
        ModelConfig::MultDae(MultDaeConfig {
            hidden: vec![12, 6],
            dropout: 0.5,
        }),
    ];
    for model in models {
        let mut config = RunConfig::default();
        config.name = model.name().into();
        config.output_dir = dir.path().to_owned();
        config.data = DataSource::Synthetic {
            synthetic: SyntheticConfig {
                users: 150,
                items: 101,
                interactions_per_user: 12,
                ..Default::default()
            },
        }
        .into();
        config.model = model;
        config.train.epochs = 1;
        config.eval.protocol = Protocol::FullRanking;
        config.eval.ks = vec![5, 10];
        let run = train(&config, Backend::Flex, RunOptions::default()).unwrap();
        let (whole, _) =
            evaluate_run(&run.run_dir, Backend::Flex, None, &Default::default()).unwrap();
        // 37 scores at once: one user per batch, items in ragged chunks of 37.
        let path = run.run_dir.join("config.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let chunked_text = text.replace("max_scores = 1048576", "max_scores = 37");
        assert_ne!(text, chunked_text, "config.toml names eval.max_scores");
        std::fs::write(&path, chunked_text).unwrap();
        let (chunked, _) =
            evaluate_run(&run.run_dir, Backend::Flex, None, &Default::default()).unwrap();
        assert_eq!(whole.users, chunked.users);
        assert_eq!(whole.metrics.len(), chunked.metrics.len());
        for ((name, a), (other, b)) in whole.metrics.iter().zip(&chunked.metrics) {
            assert_eq!(name, other);
            // Chunks change the shapes of the products, so scores may differ in their last
            // bits: the global AUC, which orders every user's pairs together, can then swap
            // near-ties between users.
            let tolerance = if name.as_str() == ember_metrics::names::AUC_GLOBAL {
                1e-5
            } else {
                1e-9
            };
            assert!(
                (a - b).abs() <= tolerance,
                "{}: {name} {a} vs {b}",
                run.model
            );
        }
    }
}
