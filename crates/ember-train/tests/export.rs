//! Export → ember-infer parity: a model trained on the CPU, exported and reloaded without burn,
//! scores exactly as the training side does (f32), and close to it at f16 and int8.

use ember_data::{DataSource, SyntheticConfig};
use ember_infer::{ExportedModel, Precision};
use ember_metrics::Protocol;
use ember_models::{GmfConfig, MfConfig, MlpConfig, ModelConfig, NeuMfConfig};
use ember_train::{
    ModelScorer, RunConfig, RunOptions, Scorer, export::export_run, load_run, train,
};

fn run_for(dir: &std::path::Path, model: ModelConfig) -> std::path::PathBuf {
    let mut config = RunConfig::default();
    config.name = model.name().into();
    config.output_dir = dir.join("runs");
    config.data = DataSource::Synthetic {
        synthetic: SyntheticConfig {
            users: 40,
            items: 30,
            interactions_per_user: 8,
            ..Default::default()
        },
    };
    config.model = model;
    config.train.epochs = 2;
    config.eval.protocol = Protocol::FullRanking;
    config.eval.ks = vec![5];
    config.eval.monitor = "HR@5".into();
    train(&config, "flex", RunOptions { progress: false })
        .unwrap()
        .run_dir
}

fn models() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Mf(MfConfig {
            factors: 8,
            init_std: 0.3,
        }),
        ModelConfig::Gmf(GmfConfig {
            factors: 8,
            init_std: 0.3,
        }),
        ModelConfig::Mlp(MlpConfig {
            layers: vec![16, 8, 4],
            init_std: 0.3,
        }),
        ModelConfig::NeuMf(NeuMfConfig {
            factors: 8,
            layers: vec![16, 8, 4],
            init_std: 0.3,
            pretrain: false,
            alpha: 0.5,
        }),
    ]
}

#[test]
fn exported_scores_match_training_side() {
    let dir = tempfile::tempdir().unwrap();
    for model in models() {
        let run_dir = run_for(dir.path(), model.clone());
        let run = load_run(&run_dir, "flex").unwrap();
        let (users, items) = (run.data.num_users() as u32, run.data.num_items() as u32);
        let all_users: Vec<u32> = (0..users).collect();
        let expected =
            ModelScorer::new(&run.model, &burn::prelude::Device::flex()).score_all(&all_users);
        for (precision, tolerance) in [
            (Precision::F32, 1e-5f32),
            (Precision::F16, 0.02),
            (Precision::Int8, 0.05),
        ] {
            let out = dir.path().join(format!("{}-{precision:?}", model.name()));
            export_run(&run_dir, &out, precision).unwrap();
            let exported = ExportedModel::load(&out).unwrap();
            let mut worst = 0.0f32;
            for u in 0..users {
                for i in 0..items {
                    let got = exported.score_internal(u, i);
                    let want = expected[(u * items + i) as usize];
                    worst = worst.max((got - want).abs() / want.abs().max(1.0));
                }
            }
            assert!(
                worst <= tolerance,
                "{} {precision:?}: worst relative difference {worst}",
                model.name()
            );
            // External ids round-trip: recommend() names items by the data's own ids.
            let user = run.data.user_ids.external(0);
            let top = exported.recommend(user, 3, &[]).unwrap();
            assert_eq!(top.len(), 3);
            assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
            assert!(
                top.iter()
                    .all(|s| run.data.item_ids.internal(s.id).is_some())
            );
        }
    }
}

#[test]
fn export_refuses_an_existing_directory_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run_for(dir.path(), models().remove(0));
    let out = dir.path().join("m");
    export_run(&run_dir, &out, Precision::F32).unwrap();
    let err = export_run(&run_dir, &out, Precision::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The Python reader (numpy + safetensors) reproduces ember-infer's scores for MF and GMF.
#[test]
fn python_reads_the_format() {
    let python_ok = std::process::Command::new("python3")
        .args(["-c", "import numpy, safetensors"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        eprintln!(
            "skipped: python3 with numpy and safetensors is not installed (.ci/run installs them)"
        );
        return;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_export.py");
    let dir = tempfile::tempdir().unwrap();
    for model in models().into_iter().take(2) {
        let run_dir = run_for(dir.path(), model.clone());
        for precision in [Precision::F32, Precision::Int8] {
            let out = dir
                .path()
                .join(format!("py-{}-{precision:?}", model.name()));
            export_run(&run_dir, &out, precision).unwrap();
            let exported = ExportedModel::load(&out).unwrap();
            let result = std::process::Command::new("python3")
                .arg(&script)
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                result.status.success(),
                "{}",
                String::from_utf8_lossy(&result.stderr)
            );
            let scores: Vec<f32> = String::from_utf8_lossy(&result.stdout)
                .lines()
                .map(|l| l.parse().unwrap())
                .collect();
            let (users, items) = (
                exported.manifest().user_ids.len(),
                exported.manifest().item_ids.len(),
            );
            assert_eq!(scores.len(), users * items);
            for u in 0..users {
                for i in 0..items {
                    let want = exported.score_internal(u as u32, i as u32);
                    let got = scores[u * items + i];
                    assert!(
                        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{} {precision:?} ({u}, {i}): {got} vs {want}",
                        model.name()
                    );
                }
            }
        }
    }
}
