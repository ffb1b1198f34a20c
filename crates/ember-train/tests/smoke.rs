//! Every model trains a few epochs on tiny synthetic data on the CPU and must beat popularity.

use ember_data::Split;
use ember_data::{DataSource, SyntheticConfig};
use ember_metrics::Protocol;
use ember_models::{
    AutoRecConfig, Bert4RecConfig, CdaeConfig, GmfConfig, Gru4RecConfig, Gru4RecLoss,
    ItemKnnConfig, LightGcnConfig, Loss, MfConfig, MlpConfig, ModelConfig, MultDaeConfig,
    MultVaeConfig, NeuMfConfig, SasRecConfig, SequenceLoss,
};
use ember_train::{RunConfig, files};

mod common;

/// Small data in which personal taste, not popularity, explains most choices.
fn tiny_config(dir: &std::path::Path, model: ModelConfig) -> RunConfig {
    let mut config = RunConfig::default();
    config.name = model.name().into();
    config.output_dir = dir.to_owned();
    config.data = DataSource::Synthetic {
        synthetic: SyntheticConfig {
            users: 300,
            items: 150,
            interactions_per_user: 25,
            factors: 4,
            popularity_exponent: 0.3,
            candidates: 64,
            taste: 3.0,
            sequential: 0.0,
            seed: 5,
        },
    }
    .into();
    config.model = model;
    config.train.epochs = 8;
    config.train.learning_rate = 0.01;
    config.train.patience = 8;
    config.eval.protocol = Protocol::FullRanking;
    config.eval.ks = vec![10];
    config
}

fn beats_popularity(model: ModelConfig, loss: Loss) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), model);
    config.train.loss = loss;
    let summary = common::train_alone(&config);
    let ndcg = summary.test.get("NDCG@10").unwrap();
    let popularity = summary.popularity.get("NDCG@10").unwrap();
    assert!(
        ndcg > popularity * 1.2,
        "{}: NDCG@10 {ndcg:.4} does not beat popularity {popularity:.4}",
        summary.model
    );
    for file in [
        files::CONFIG,
        files::ID_MAPS,
        files::DATA,
        files::EPOCHS,
        files::METRICS,
        files::WEIGHTS,
        "log.txt",
    ] {
        assert!(summary.run_dir.join(file).is_file(), "{file} missing");
    }
}

#[test]
fn mf_bce_beats_popularity() {
    beats_popularity(
        ModelConfig::Mf(MfConfig {
            factors: 16,
            init_std: 0.1,
        }),
        Loss::Bce,
    );
}

#[test]
fn mf_bpr_beats_popularity() {
    beats_popularity(
        ModelConfig::Mf(MfConfig {
            factors: 16,
            init_std: 0.1,
        }),
        Loss::Bpr,
    );
}

#[test]
fn gmf_beats_popularity() {
    beats_popularity(
        ModelConfig::Gmf(GmfConfig {
            factors: 16,
            init_std: 0.1,
        }),
        Loss::Bce,
    );
}

#[test]
fn mlp_beats_popularity() {
    beats_popularity(
        ModelConfig::Mlp(MlpConfig {
            layers: vec![32, 16, 8],
            init_std: 0.1,
        }),
        Loss::Bce,
    );
}

#[test]
fn neumf_beats_popularity() {
    let neumf = NeuMfConfig {
        factors: 16,
        layers: vec![32, 16, 8],
        init_std: 0.1,
        pretrain: false,
        alpha: 0.5,
    };
    beats_popularity(ModelConfig::NeuMf(neumf), Loss::Bce);
}

#[test]
fn lightgcn_beats_popularity() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(
        dir.path(),
        ModelConfig::LightGcn(LightGcnConfig {
            factors: 16,
            layers: 2,
            reg: 1e-4,
            init_std: 0.1,
        }),
    );
    // The paper's objective: BPR with one negative per positive.
    config.train.loss = Loss::Bpr;
    config.train.negatives = 1;
    config.train.epochs = 15;
    config.train.patience = 15;
    let summary = common::train_alone(&config);
    let ndcg = summary.test.get("NDCG@10").unwrap();
    let popularity = summary.popularity.get("NDCG@10").unwrap();
    eprintln!("LightGCN: NDCG@10 {ndcg:.4}, popularity {popularity:.4}");
    assert!(
        ndcg > popularity * 1.2,
        "LightGCN: NDCG@10 {ndcg:.4} does not beat popularity {popularity:.4}"
    );
}

/// ItemKNN is fitted when it is built: the trainer validates it as built (epoch 0) and trains
/// it for no epoch, whatever `train.epochs` says, through no code of its own.
#[test]
fn item_knn_beats_popularity_with_no_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(
        dir.path(),
        ModelConfig::ItemKnn(ItemKnnConfig {
            neighbours: 20,
            shrinkage: 0.0,
        }),
    );
    let summary = common::train_alone(&config);
    let ndcg = summary.test.get("NDCG@10").unwrap();
    let popularity = summary.popularity.get("NDCG@10").unwrap();
    eprintln!("ItemKNN: NDCG@10 {ndcg:.4}, popularity {popularity:.4}");
    assert!(
        ndcg > popularity * 1.2,
        "ItemKNN: NDCG@10 {ndcg:.4} does not beat popularity {popularity:.4}"
    );
    // No epoch was trained, so none was logged: epoch 0 is the model as built.
    assert_eq!(summary.best_epoch, 0);
    assert!(!summary.run_dir.join(files::EPOCHS).exists());
    let log = std::fs::read_to_string(summary.run_dir.join("log.txt")).unwrap();
    assert!(log.contains("item_knn epoch 0 (as initialised)"), "{log}");
    assert!(!log.contains("item_knn epoch 1"), "{log}");
}

#[test]
fn pretrained_neumf_beats_popularity() {
    let neumf = NeuMfConfig {
        factors: 16,
        layers: vec![32, 16, 8],
        init_std: 0.1,
        pretrain: true,
        alpha: 0.5,
    };
    beats_popularity(ModelConfig::NeuMf(neumf), Loss::Bce);
}

/// The autoencoders under the held-out-users protocol: trained on the training users only,
/// scored on users they never saw from those users' fold-in items.
fn autoencoder_beats_popularity(model: ModelConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_config(dir.path(), model);
    config.split = Split::HeldOutUsers {
        valid_users: 40,
        test_users: 60,
        fold_in: 0.8,
        seed: 1,
    };
    config.train.batch_size = 25;
    config.train.epochs = 30;
    config.train.patience = 30;
    config.train.learning_rate = 3e-3;
    config.train.refit = false;
    config.eval.ks = vec![10, 20];
    config.eval.monitor = "NDCG@20".into();
    let summary = common::train_alone(&config);
    let ndcg = summary.test.get("NDCG@20").unwrap();
    let popularity = summary.popularity.get("NDCG@20").unwrap();
    assert!(
        summary.test.users >= 50,
        "{} test users scored",
        summary.test.users
    );
    assert!(
        ndcg > popularity * 1.2,
        "{}: NDCG@20 {ndcg:.4} does not beat popularity {popularity:.4}",
        summary.model
    );
    assert!(summary.test.get("Recall(min(k,n))@20").is_some());
}

#[test]
fn mult_dae_beats_popularity_on_held_out_users() {
    autoencoder_beats_popularity(ModelConfig::MultDae(MultDaeConfig {
        hidden: vec![64, 16],
        dropout: 0.5,
    }));
}

#[test]
fn mult_vae_beats_popularity_on_held_out_users() {
    autoencoder_beats_popularity(ModelConfig::MultVae(MultVaeConfig {
        hidden: vec![64, 16],
        dropout: 0.5,
        beta: 0.2,
        anneal_steps: 200,
    }));
}

#[test]
fn cdae_beats_popularity_on_held_out_users() {
    autoencoder_beats_popularity(ModelConfig::Cdae(CdaeConfig {
        hidden: 32,
        dropout: 0.2,
    }));
}

#[test]
fn autorec_beats_item_means() {
    for item_based in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = tiny_config(
            dir.path(),
            ModelConfig::AutoRec(AutoRecConfig {
                hidden: 32,
                item_based,
                l2: 1.0,
            }),
        );
        config.data = DataSource::Movielens100k {
            path: common::rated_data(dir.path()),
        }
        .into();
        config.split = Split::Ratio {
            train: 0.8,
            valid: 0.1,
            test: 0.1,
            seed: 3,
        };
        config.train.epochs = 60;
        config.train.patience = 60;
        config.train.batch_size = 16;
        config.train.learning_rate = 0.01;
        config.eval.monitor = "RMSE".into();
        let summary = common::train_alone(&config);
        let rmse = summary.test.get("RMSE").unwrap();
        let baseline = summary.popularity.get("RMSE").unwrap();
        eprintln!("AutoRec item_based {item_based}: RMSE {rmse:.4}, item means {baseline:.4}");
        assert!(
            rmse < 0.9 * baseline,
            "AutoRec (item_based {item_based}): RMSE {rmse:.4} vs item means {baseline:.4}"
        );
        assert!(summary.popularity.protocol.contains("item-mean"));
    }
}

/// Synthetic sequences in which each item is often followed by its fixed successor.
fn sequence_config(dir: &std::path::Path, model: ModelConfig) -> RunConfig {
    let mut config = tiny_config(dir, model);
    if let DataSource::Synthetic { synthetic } = &mut config.data.source {
        synthetic.sequential = 0.5;
    }
    config.split = Split::LeaveOneOut;
    config.train.batch_size = 32;
    config.train.epochs = 12;
    config.train.patience = 12;
    config.train.learning_rate = 0.005;
    config.eval.protocol = Protocol::Sampled {
        negatives: 100,
        sampling: ember_metrics::NegativeSampling::Uniform,
    };
    config.eval.extra_protocols = vec![Protocol::FullRanking];
    config.eval.every = 3;
    config
}

fn sequence_model_beats_popularity(model: ModelConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sequence_config(dir.path(), model);
    if config.model.name() == "bert4rec" {
        // The cloze task learns from a fraction of the positions: it needs more epochs.
        config.train.epochs = 30;
        config.train.patience = 30;
    }
    let summary = common::train_alone(&config);
    // The paper's protocol, and full ranking reported beside it.
    let reports = [
        (&summary.test, &summary.popularity),
        (&summary.extra[0].0, &summary.extra[0].1),
    ];
    for (test, popularity) in reports {
        let ndcg = test.get("NDCG@10").unwrap();
        let baseline = popularity.get("NDCG@10").unwrap();
        eprintln!(
            "{} ({}): NDCG@10 {ndcg:.4}, popularity {baseline:.4}",
            summary.model, test.protocol
        );
        assert!(
            ndcg > baseline * 1.2,
            "{} ({}): NDCG@10 {ndcg:.4} does not beat popularity {baseline:.4}",
            summary.model,
            test.protocol
        );
    }
    assert!(summary.extra[0].0.protocol.contains("full ranking"));
    assert_eq!(summary.extra.len(), 1);
}

fn small_sasrec(loss: SequenceLoss) -> ModelConfig {
    ModelConfig::SasRec(SasRecConfig {
        hidden: 32,
        blocks: 1,
        heads: 1,
        max_len: 20,
        dropout: 0.2,
        loss,
        negatives: if loss == SequenceLoss::SampledSoftmax {
            16
        } else {
            1
        },
    })
}

#[test]
fn sasrec_beats_popularity() {
    sequence_model_beats_popularity(small_sasrec(SequenceLoss::Bce));
}

#[test]
fn sasrec_with_full_softmax_beats_popularity() {
    sequence_model_beats_popularity(small_sasrec(SequenceLoss::Softmax));
}

#[test]
fn sasrec_with_sampled_softmax_beats_popularity() {
    sequence_model_beats_popularity(small_sasrec(SequenceLoss::SampledSoftmax));
}

#[test]
fn bert4rec_beats_popularity() {
    sequence_model_beats_popularity(ModelConfig::Bert4Rec(Bert4RecConfig {
        hidden: 32,
        blocks: 1,
        heads: 2,
        max_len: 20,
        dropout: 0.1,
        mask_prob: 0.3,
    }));
}

fn small_gru4rec(loss: Gru4RecLoss) -> ModelConfig {
    ModelConfig::Gru4Rec(Gru4RecConfig {
        embedding: 32,
        hidden: 32,
        layers: 1,
        max_len: 20,
        dropout: 0.1,
        loss,
        negatives: 32,
        bpreg: 1.0,
    })
}

#[test]
fn gru4rec_beats_popularity() {
    sequence_model_beats_popularity(small_gru4rec(Gru4RecLoss::Softmax));
}

#[test]
fn gru4rec_with_bpr_max_beats_popularity() {
    sequence_model_beats_popularity(small_gru4rec(Gru4RecLoss::BprMax));
}
