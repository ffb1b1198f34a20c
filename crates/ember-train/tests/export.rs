//! Export → ember-infer parity: a model trained on the CPU, exported and reloaded without burn,
//! scores exactly as the training side does (f32), and close to it at f16 and int8.

use ember_data::{DataSource, SyntheticConfig};
use ember_infer::{ExportedModel, Key, Precision};

mod common;
use ember_metrics::Protocol;
use ember_models::{
    AutoRecConfig, Bert4RecConfig, CdaeConfig, GmfConfig, Gru4RecConfig, Gru4RecLoss,
    ItemKnnConfig, LightGcnConfig, MfConfig, MlpConfig, ModelConfig, MultDaeConfig, MultVaeConfig,
    NeuMfConfig, SasRecConfig, SequenceLoss,
};
use ember_train::{
    Backend, HeldOut, ModelScorer, RatingPredictor, RunConfig, RunOptions, Scorer,
    export::{ExportedScorer, check_export, export_run},
    load_run, train,
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
    }
    .into();
    config.model = model;
    config.train.epochs = 2;
    config.eval.protocol = Protocol::FullRanking;
    config.eval.ks = vec![5];
    config.eval.monitor = "HR@5".into();
    train(&config, Backend::Flex, RunOptions::default())
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
        ModelConfig::MultDae(MultDaeConfig {
            hidden: vec![12, 6],
            dropout: 0.5,
        }),
        ModelConfig::MultVae(MultVaeConfig {
            hidden: vec![12, 6],
            dropout: 0.5,
            beta: 0.2,
            anneal_steps: 10,
        }),
        ModelConfig::Cdae(CdaeConfig {
            hidden: 8,
            dropout: 0.2,
        }),
        // Windows shorter than most users' histories: truncation is exercised too.
        ModelConfig::SasRec(SasRecConfig {
            hidden: 8,
            blocks: 2,
            heads: 2,
            max_len: 6,
            dropout: 0.2,
            loss: SequenceLoss::Bce,
            negatives: 1,
        }),
        ModelConfig::Bert4Rec(Bert4RecConfig {
            hidden: 8,
            blocks: 2,
            heads: 2,
            max_len: 5,
            dropout: 0.1,
            mask_prob: 0.3,
        }),
        ModelConfig::LightGcn(LightGcnConfig {
            factors: 8,
            layers: 2,
            reg: 1e-4,
            init_std: 0.3,
        }),
        // Two layers and windows shorter than most histories.
        ModelConfig::Gru4Rec(Gru4RecConfig {
            embedding: 6,
            hidden: 8,
            layers: 2,
            max_len: 5,
            dropout: 0.2,
            loss: Gru4RecLoss::Softmax,
            negatives: 4,
            bpreg: 1.0,
        }),
        // Fewer neighbours than most items share users with: the lists are cut.
        ModelConfig::ItemKnn(ItemKnnConfig {
            neighbours: 5,
            shrinkage: 2.0,
        }),
    ]
}

/// The parity list names every kind but AutoRec, which predicts ratings and has its own test
/// (`autorec_export_predicts_the_same_ratings`): a new family cannot be left out.
#[test]
fn the_parity_list_covers_every_kind() {
    let mut listed: Vec<&str> = models().iter().map(ModelConfig::name).collect();
    listed.push("autorec");
    listed.sort_unstable();
    let mut kinds = ember_models::MODEL_KINDS.to_vec();
    kinds.sort_unstable();
    assert_eq!(listed, kinds);
}

#[test]
fn exported_scores_match_training_side() {
    let dir = tempfile::tempdir().unwrap();
    for model in models() {
        let run_dir = run_for(dir.path(), model.clone());
        let run = load_run(&run_dir, Backend::Flex).unwrap();
        let (users, items) = (run.data.num_users() as u32, run.data.num_items() as u32);
        let all_users: Vec<u32> = (0..users).collect();
        // Inputs as the export stores them: each user's training items, followed by the
        // validation items for sequence models (what they read to score test items).
        let sequence = model.input().reads_sequences();
        let inputs = if sequence {
            HeldOut::Test
        } else {
            HeldOut::Validation
        };
        let expected = ModelScorer::new(
            &run.model,
            model.input(),
            &run.data,
            &burn::prelude::Device::flex(),
            inputs,
        )
        .score_all(&all_users);
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
            // The export check evaluates both on the same data (validation; test for sequence
            // models, whose exports read the validation items): at f32 the rankings are
            // the same up to float rounding, which can flip at most a near-tie (one user).
            let check = check_export(&run_dir, &out).unwrap();
            let split = if sequence {
                "test (sequence model: its export reads the validation items)"
            } else {
                "validation"
            };
            assert!(check.label.starts_with(split), "{}", check.label);
            assert!(check.metrics.iter().any(|(name, _, _)| name == "HR@5"));
            if precision == Precision::F32 {
                for (name, trained, exported) in &check.metrics {
                    assert!(
                        (trained - exported).abs() <= 1.0 / users as f64,
                        "{} {name}: run {trained} vs export {exported}",
                        model.name()
                    );
                }
            }
            // External ids round-trip: recommend() names items by the data's own ids. Known
            // items are kept here, to compare with the history query below, which leaves out
            // the history's own items by default.
            let user = run.data.user_ids.key(0);
            let include = ember_infer::Options {
                known: ember_infer::Known::Include,
                ..Default::default()
            };
            let top = exported.recommend_for(&user, 3, &include).unwrap();
            assert_eq!(top.len(), 3);
            assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
            assert!(top.iter().all(|s| {
                run.data
                    .item_ids
                    .internal(s.id.as_integer().unwrap())
                    .is_some()
            }));
            // History-based models also serve a user given as a list of items (fold-in): the
            // user's own training items give the user's own recommendations.
            let history: Vec<Key> = run.data.train[0]
                .iter()
                .chain(if sequence {
                    &run.data.valid[0][..]
                } else {
                    &[]
                })
                .map(|&i| run.data.item_ids.key(i))
                .collect();
            // By default a user's known items never come back.
            let known: Vec<Key> = exported.known_items(&user).unwrap();
            let fresh = exported.recommend(&user, 3, &[]).unwrap();
            assert!(fresh.iter().all(|s| !known.contains(&s.id)));
            match exported.recommend_history_for(&history, 3, &include) {
                Ok(from_history) => match model {
                    ModelConfig::MultDae(_)
                    | ModelConfig::MultVae(_)
                    | ModelConfig::SasRec(_)
                    | ModelConfig::Bert4Rec(_)
                    | ModelConfig::Gru4Rec(_)
                    | ModelConfig::ItemKnn(_) => assert_eq!(from_history, top),
                    // CDAE's user vector is missing from a bare history: other scores.
                    ModelConfig::Cdae(_) => assert_eq!(from_history.len(), 3),
                    // Folded in against the item table: a vector of its own, not the user's.
                    ModelConfig::Mf(_)
                    | ModelConfig::Gmf(_)
                    | ModelConfig::LightGcn(_)
                    | ModelConfig::Mlp(_)
                    | ModelConfig::NeuMf(_) => assert_eq!(from_history.len(), 3),
                    _ => panic!("{} answered a history", model.name()),
                },
                Err(e) => assert!(e.to_string().contains("by id"), "{e}"),
            }
        }
    }
}

#[test]
fn export_refuses_an_existing_directory_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = run_for(dir.path(), models().remove(0));
    let out = dir.path().join("m");
    export_run(&run_dir, &out, Precision::F32).unwrap();
    let err = common::chain(&export_run(&run_dir, &out, Precision::F32).unwrap_err());
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
        common::skip("python3 with numpy and safetensors is not installed (.ci/run installs them)");
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
            let (users, items) = (exported.user_ids().len(), exported.item_ids().len());
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

/// On the real NCF ML-100K split, int8 export keeps HR@10 within 0.005 of f32 at under a third
/// of the size (16-wide rows: 16 bytes of int8 plus a 4-byte scale, against 64 bytes of f32) (skipped when ../shared/datasets is absent).
#[test]
fn int8_export_on_ncf_ml100k_keeps_hit_rate() {
    let repo = common::repo();
    let Some(directory) = common::shared_dataset("ncf-ml-100k") else {
        return;
    };
    let prefix = directory.join("ml-100k");
    let dir = tempfile::tempdir().unwrap();
    let mut config = RunConfig::from_file(&repo.join("configs/ncf-ml100k-gmf.toml")).unwrap();
    config.data = DataSource::Ncf { prefix }.into();
    config.output_dir = dir.path().join("runs");
    config.train.epochs = 10;
    config.train.refit = false;
    let run_dir = train(&config, Backend::Flex, RunOptions::default())
        .unwrap()
        .run_dir;
    let run = load_run(&run_dir, Backend::Flex).unwrap();
    let plan =
        ember_train::EvaluationPlan::new(&run.data, &config.eval.protocol, config.seed).unwrap();
    let mut hit_rate = Vec::new();
    let mut size = Vec::new();
    for precision in [Precision::F32, Precision::F16, Precision::Int8] {
        let out = dir.path().join(format!("{precision:?}"));
        export_run(&run_dir, &out, precision).unwrap();
        let check = check_export(&run_dir, &out).unwrap();
        // The weights alone: every export also carries the users' known items, the same bytes
        // at every precision.
        let file = std::fs::read(out.join("model.safetensors")).unwrap();
        let tensors = safetensors::SafeTensors::deserialize(&file).unwrap();
        let weights: usize = tensors
            .tensors()
            .iter()
            .filter(|(name, _)| !name.starts_with("known."))
            .map(|(_, view)| view.data().len())
            .sum();
        // The NCF files have Unix-second timestamps: each known pair's day rides along, one
        // I32 per pair.
        let pairs: usize = run.data.known.iter().map(Vec::len).sum();
        let days = tensors.tensor("known.days").unwrap();
        assert_eq!(days.shape(), [pairs]);
        let known = file.len() - weights - days.data().len();
        assert!(
            known < 2 * pairs + 9000,
            "{known} bytes for the known items: about a byte an item and a header"
        );
        size.push(weights as f64);
        // Validation metric change per precision, as `ember export` prints it.
        for (name, trained, exported) in &check.metrics {
            eprintln!(
                "{precision:?} {} bytes, {}: {name} {trained:.4} -> {exported:.4}",
                check.bytes, check.label
            );
            if name == "HR@10" {
                assert!(
                    (trained - exported).abs() <= 0.005,
                    "{precision:?} validation HR@10 {trained} vs {exported}"
                );
            }
        }
        let model = ExportedModel::load(&out).unwrap();
        let report = plan.evaluate(
            &ExportedScorer(&model),
            &run.data,
            ember_train::HeldOut::Test,
            &[10],
            256,
        );
        hit_rate.push(report.get("HR@10").unwrap());
    }
    eprintln!(
        "test HR@10 f32 {:.4} f16 {:.4} int8 {:.4}; weight bytes f32 {} f16 {} int8 {}",
        hit_rate[0], hit_rate[1], hit_rate[2], size[0], size[1], size[2]
    );
    assert!(
        (hit_rate[0] - hit_rate[2]).abs() <= 0.005,
        "HR@10 f32 {} vs int8 {}",
        hit_rate[0],
        hit_rate[2]
    );
    assert!(
        size[2] < 0.33 * size[0],
        "int8 {} bytes vs f32 {}",
        size[2],
        size[0]
    );
}

/// AutoRec exports carry the training ratings; ember-infer's predicted ratings equal the
/// training side's (both variants), and the export check compares RMSE and MAE.
#[test]
fn autorec_export_predicts_the_same_ratings() {
    for item_based in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RunConfig::default();
        config.name = "autorec".into();
        config.output_dir = dir.path().join("runs");
        config.data = DataSource::Movielens100k {
            path: common::rated_data(dir.path()),
        }
        .into();
        config.split = ember_data::Split::Ratio {
            train: 0.8,
            valid: 0.1,
            test: 0.1,
            seed: 3,
        };
        config.model = ModelConfig::AutoRec(AutoRecConfig {
            hidden: 16,
            item_based,
            l2: 1.0,
        });
        config.train.epochs = 3;
        config.eval.monitor = "RMSE".into();
        let run_dir = train(&config, Backend::Flex, RunOptions::default())
            .unwrap()
            .run_dir;
        let run = load_run(&run_dir, Backend::Flex).unwrap();
        let predictor = RatingPredictor::new(
            &run.model,
            item_based,
            &run.data,
            &burn::prelude::Device::flex(),
        );
        let pairs: Vec<(u32, u32)> = (0..run.data.num_users() as u32)
            .flat_map(|u| (0..run.data.num_items() as u32).map(move |i| (u, i)))
            .collect();
        let expected = predictor.predict(&pairs);
        let out = dir.path().join("model");
        export_run(&run_dir, &out, Precision::F32).unwrap();
        let exported = ExportedModel::load(&out).unwrap();
        let external: Vec<(Key, Key)> = pairs
            .iter()
            .map(|&(u, i)| (run.data.user_ids.key(u), run.data.item_ids.key(i)))
            .collect();
        let got = exported.score(&external).unwrap();
        for ((p, e), g) in pairs.iter().zip(&expected).zip(&got) {
            assert!(
                (e - g).abs() < 1e-4,
                "item_based {item_based} {p:?}: {e} vs {g}"
            );
        }
        // recommend() ranks by predicted rating, audience() likewise.
        let user = run.data.user_ids.key(0);
        let top = exported.recommend(&user, 5, &[]).unwrap();
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(
            exported
                .audience(&run.data.item_ids.key(0), 5)
                .unwrap()
                .len(),
            5
        );
        let check = check_export(&run_dir, &out).unwrap();
        let names: Vec<&str> = check.metrics.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["RMSE", "MAE"]);
        for (name, trained, exported) in &check.metrics {
            assert!(
                (trained - exported).abs() < 1e-4,
                "{name}: {trained} vs {exported}"
            );
        }
    }
}

/// Scores each user of a run from their items before the test split (training and validation)
/// by the export's fold-in, as a customer the model was not trained on would be.
struct FoldedIn<'a> {
    model: &'a ExportedModel,
    data: &'a ember_data::Dataset,
}

impl Scorer for FoldedIn<'_> {
    fn score_pairs(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        users
            .iter()
            .zip(items)
            .map(|(&u, &i)| self.score_all(&[u])[i as usize])
            .collect()
    }

    fn score_all(&self, users: &[u32]) -> Vec<f32> {
        users
            .iter()
            .flat_map(|&u| {
                let u = u as usize;
                let history: Vec<u32> = self.data.train[u]
                    .iter()
                    .chain(&self.data.valid[u])
                    .copied()
                    .collect();
                self.model.history_scores_internal(&history).unwrap()
            })
            .collect()
    }
}

/// The repository's config `config` on ML-100K's `u.data`, adjusted, trained in `dir` and
/// exported at f32: the run loaded back and its export; `None` (skipped) without the dataset.
fn ml100k_exported(
    dir: &std::path::Path,
    config: &str,
    adjust: impl FnOnce(&mut RunConfig),
) -> Option<(ember_train::LoadedRun, ExportedModel)> {
    let path = common::shared_dataset("ml-100k/u.data")?;
    let mut config = RunConfig::from_file(&common::repo().join(config)).unwrap();
    config.output_dir = dir.join("runs");
    config.data = DataSource::Movielens100k { path }.into();
    adjust(&mut config);
    let run_dir = train(&config, Backend::Flex, RunOptions::default())
        .unwrap()
        .run_dir;
    let out = dir.join("model");
    export_run(&run_dir, &out, Precision::F32).unwrap();
    let run = load_run(&run_dir, Backend::Flex).unwrap();
    Some((run, ExportedModel::load(&out).unwrap()))
}

/// A customer MF was not trained on is scored by fold-in (a ridge fit against the frozen item
/// table): on ML-100K under full ranking, every test user folded in from their own items ranks
/// the test item far better than popularity does, and better than their trained vector of
/// this short training (skipped when ../shared/datasets is absent).
#[test]
fn fold_in_ranks_test_items_far_above_popularity_on_ml100k() {
    let dir = tempfile::tempdir().unwrap();
    // Fewer, larger steps than the config's 400 epochs: a test-sized MF that still beats
    // popularity clearly.
    let trained = ml100k_exported(dir.path(), "configs/ml100k-mf-bpr.toml", |config| {
        config.train.epochs = 30;
        config.train.learning_rate = 0.01;
        config.eval.every = 30;
    });
    let Some((run, model)) = trained else {
        return;
    };
    let plan = ember_train::EvaluationPlan::new(&run.data, &Protocol::FullRanking, 0).unwrap();
    let evaluate = |scorer: &dyn Scorer| {
        let report = plan.evaluate(scorer, &run.data, HeldOut::Test, &[10], 256);
        (report.get("HR@10").unwrap(), report.get("NDCG@10").unwrap())
    };
    let trained = evaluate(&ExportedScorer(&model));
    let folded = evaluate(&FoldedIn {
        model: &model,
        data: &run.data,
    });
    let popularity = evaluate(&ember_train::Popularity::fit(&run.data));
    eprintln!(
        "ML-100K MF test HR@10 / NDCG@10: trained {trained:.4?}, folded in {folded:.4?}, \
         popularity {popularity:.4?}"
    );
    // Measured: NDCG@10 trained 0.1816, folded in 0.2779, popularity 0.1436.
    assert!(
        folded.1 > 1.5 * popularity.1,
        "{folded:?} vs {popularity:?}"
    );
    assert!(folded.1 > trained.1, "{folded:?} vs {trained:?}");
}

/// NeuMF has no closed-form fold-in: a customer it was not trained on is fitted by gradient
/// steps on both of its user vectors against the frozen model. On ML-100K (the README's NeuMF
/// config, 5 epochs, full ranking) every test user folded in from their own items ranks the
/// test item as well as their trained vectors do, and far above popularity (skipped when
/// ../shared/datasets is absent).
#[test]
fn neumf_folds_in_by_gradient_steps_on_ml100k() {
    let dir = tempfile::tempdir().unwrap();
    let trained = ml100k_exported(dir.path(), "configs/movielens-100k.toml", |config| {
        config.train.epochs = 5;
    });
    let Some((run, model)) = trained else {
        return;
    };
    // The first 300 test users (a fold-in by steps takes about 20 ms a customer).
    let mut data = run.data.clone();
    data.test.iter_mut().skip(300).for_each(Vec::clear);
    let plan = ember_train::EvaluationPlan::new(&data, &Protocol::FullRanking, 0).unwrap();
    let ndcg = |scorer: &dyn Scorer| {
        let report = plan.evaluate(scorer, &data, HeldOut::Test, &[10], 256);
        assert_eq!(report.users, 300);
        report.get("NDCG@10").unwrap()
    };
    let trained = ndcg(&ExportedScorer(&model));
    let folded = ndcg(&FoldedIn {
        model: &model,
        data: &data,
    });
    let popularity = ndcg(&ember_train::Popularity::fit(&data));
    eprintln!(
        "ML-100K NeuMF test NDCG@10: trained {trained:.4}, folded in {folded:.4}, popularity \
         {popularity:.4}"
    );
    // Measured: these 300 users trained 0.0712, folded in 0.0702, popularity 0.0471 (every
    // test user: 0.0720, 0.0723, 0.0497).
    assert!(folded > 1.3 * popularity, "{folded} vs {popularity}");
    assert!(folded > 0.9 * trained, "{folded} vs {trained}");
}
