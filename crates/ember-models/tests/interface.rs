//! Every pair model answers the shared interface consistently: `score_all` equals
//! `score_pairs` over every item, and the loss is a finite scalar that training can reduce.

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use ember_models::{
    Batch, GmfConfig, LightGcnConfig, Loss, MfConfig, MlpConfig, ModelConfig, ModelInit,
    NeuMfConfig, PairBatch, Query,
};

mod common;

/// Each of 6 users' training items among 10 (LightGCN's graph).
fn train_lists() -> Vec<Vec<u32>> {
    vec![
        vec![0, 1],
        vec![1, 2, 3],
        vec![4],
        vec![5, 6],
        vec![0, 7],
        vec![8, 9, 2],
    ]
}

fn init(users: usize, items: usize, train: &[Vec<u32>], pair_loss: Loss) -> ModelInit<'_> {
    ModelInit {
        users,
        items,
        pair_loss,
        ..ModelInit::new(items, train)
    }
}

fn configs() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Mf(MfConfig {
            factors: 4,
            init_std: 0.5,
        }),
        ModelConfig::Gmf(GmfConfig {
            factors: 4,
            init_std: 0.5,
        }),
        ModelConfig::Mlp(MlpConfig {
            layers: vec![8, 6, 3],
            init_std: 0.5,
        }),
        ModelConfig::NeuMf(NeuMfConfig {
            factors: 4,
            layers: vec![8, 6, 3],
            init_std: 0.5,
            pretrain: false,
            alpha: 0.5,
        }),
        ModelConfig::LightGcn(LightGcnConfig {
            factors: 4,
            layers: 2,
            reg: 1e-4,
            init_std: 0.5,
        }),
    ]
}

fn ints(v: Vec<i32>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

#[test]
fn score_all_matches_score_pairs() {
    let device = Device::flex();
    let (users, items) = (6, 10);
    let train = train_lists();
    for config in configs() {
        let model = config.init(&init(users, items, &train, Loss::Bce), &device);
        let all: Vec<f32> = model
            .score_all(&Query::Ids(ints(vec![0, 3, 4], &device)))
            .try_into_vec_as::<f32>()
            .unwrap();
        assert_eq!(all.len(), 3 * items);
        for (row, user) in [0, 3, 4].into_iter().enumerate() {
            let pairs = model
                .score_pairs(
                    &Query::Ids(ints(vec![user], &device)),
                    ints(vec![0; items], &device),
                    ints((0..items as i32).collect(), &device),
                )
                .try_into_vec_as::<f32>()
                .unwrap();
            for i in 0..items {
                let a = all[row * items + i];
                assert!(
                    (a - pairs[i]).abs() < 1e-5,
                    "{}: user {user} item {i}: {a} vs {}",
                    config.name(),
                    pairs[i]
                );
            }
        }
    }
}

#[test]
fn training_reduces_the_loss_of_a_fixed_batch() {
    let device = Device::flex().autodiff();
    device.seed(3);
    // burn's embedding gradient, and the segmented one at two chunk sizes.
    for (config, plan_chunk) in configs()
        .into_iter()
        .flat_map(|c| [(c.clone(), None), (c.clone(), Some(2)), (c, Some(16))])
    {
        for loss_kind in [Loss::Bce, Loss::Bpr] {
            device.seed(3); // the same start with either gradient
            let train = train_lists();
            let mut model = config.init(&init(6, 10, &train, loss_kind), &device);
            let batch = Batch::Pairs(PairBatch::sampled(
                &[0, 1, 2, 3, 4, 5],
                &[1, 2, 3, 4, 5, 6],
                &[7, 8, 9, 0, 7, 8, 9, 0, 7, 8, 9, 0],
                (6, 10),
                plan_chunk,
                &device,
            ));
            let first: f32 = model.loss(&batch, 0).into_scalar();
            assert!(first.is_finite());
            let mut optimizer = AdamConfig::new().init();
            for _ in 0..30 {
                let loss = model.loss(&batch, 0);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(0.05, model, grads);
            }
            let last: f32 = model.loss(&batch, 0).into_scalar();
            assert!(
                last < first * 0.8,
                "{} {loss_kind:?} {plan_chunk:?}: loss {first} -> {last}",
                config.name()
            );
        }
    }
}

/// MF (embeddings, products and sums, no matmul) trains on wgpu with the segmented gradient, and
/// its losses follow the CPU's step for step.
#[cfg(feature = "wgpu")]
#[test]
fn mf_trains_alike_on_wgpu_and_flex() {
    if !common::vulkan_available() {
        return;
    }
    // The same initial weights on both devices: initialised once on the CPU, then copied.
    let config = ModelConfig::Mf(MfConfig {
        factors: 8,
        init_std: 0.1,
    });
    let init = init(40, 30, &[], Loss::Bce);
    let initial = config.init(&init, &Device::flex());
    let losses = |device: Device, plan_chunk: Option<usize>| {
        let mut model = config
            .init(&init, &device)
            .load_record(initial.clone().into_record());
        let users: Vec<i32> = (0..64).map(|i| i % 40).collect();
        let positives: Vec<i32> = (0..64).map(|i| (i * 7) % 30).collect();
        let negatives: Vec<i32> = (0..64 * 3).map(|i| (i * 11 + 3) % 30).collect();
        let batch = Batch::Pairs(PairBatch::sampled(
            &users,
            &positives,
            &negatives,
            (40, 30),
            plan_chunk,
            &device,
        ));
        let mut optimizer = AdamConfig::new().init();
        let mut out = Vec::new();
        for _ in 0..20 {
            let loss = model.loss(&batch, 0);
            out.push(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(0.05, model, grads);
        }
        out
    };
    let gpu = losses(Device::wgpu(DeviceKind::DefaultDevice).autodiff(), Some(64));
    let cpu = losses(Device::flex().autodiff(), None);
    assert!(
        gpu[19] < gpu[0] * 0.8,
        "wgpu loss {} -> {}",
        gpu[0],
        gpu[19]
    );
    for (g, c) in gpu.iter().zip(&cpu) {
        assert!((g - c).abs() < 1e-4, "wgpu {g} vs flex {c}");
    }
}

#[test]
fn bce_loss_matches_the_formula() {
    // MF with known embeddings: scores are dot products, and the loss is the mean of
    // softplus(s) - y * s over the positive and its negatives.
    let device = Device::flex();
    let config = ModelConfig::Mf(MfConfig {
        factors: 2,
        init_std: 1.0,
    });
    let model = config.init(&init(2, 3, &[], Loss::Bce), &device);
    let batch = Batch::Pairs(PairBatch::sampled(
        &[0, 1],
        &[0, 1],
        &[2, 2],
        (2, 3),
        None,
        &device,
    ));
    let s = |u: i32, i: i32| {
        model
            .score_pairs(
                &Query::Ids(ints(vec![u], &device)),
                ints(vec![0], &device),
                ints(vec![i], &device),
            )
            .into_scalar::<f32>() as f64
    };
    let softplus = |x: f64| (1.0 + x.exp()).ln();
    let expected = ((softplus(s(0, 0)) - s(0, 0))
        + (softplus(s(1, 1)) - s(1, 1))
        + softplus(s(0, 2))
        + softplus(s(1, 2)))
        / 4.0;
    let bce: f32 = model.loss(&batch, 0).into_scalar();
    assert!((bce as f64 - expected).abs() < 1e-5, "{bce} vs {expected}");
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let bpr_expected =
        -((sigmoid(s(0, 0) - s(0, 2))).ln() + (sigmoid(s(1, 1) - s(1, 2))).ln()) / 2.0;
    // The same weights, trained towards BPR.
    let bpr_model = config
        .init(&init(2, 3, &[], Loss::Bpr), &device)
        .load_record(model.clone().into_record());
    let bpr: f32 = bpr_model.loss(&batch, 0).into_scalar();
    assert!(
        (bpr as f64 - bpr_expected).abs() < 1e-5,
        "{bpr} vs {bpr_expected}"
    );
}
