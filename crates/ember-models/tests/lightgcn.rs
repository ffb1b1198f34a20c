//! LightGCN's propagation equals the paper's matrix form computed densely by hand:
//! `E = Σₖ Âᵏ E⁽⁰⁾ / (K + 1)` with `Â = D^{-1/2} A D^{-1/2}`.

use burn::prelude::*;
use ember_models::{LightGcnConfig, Loss, ModelInit};

#[test]
fn final_embeddings_follow_the_normalised_adjacency() {
    let device = Device::flex();
    // 3 users, 4 items; item 3 has no interaction (an isolated node keeps its layer-0 row / 3).
    let train = vec![vec![0, 1], vec![1, 2], vec![0]];
    let (users, items, layers) = (3, 4, 2);
    let init = ModelInit {
        pair_loss: Loss::Bpr,
        ..ModelInit::new(items, &train)
    };
    let model = LightGcnConfig {
        factors: 3,
        layers,
        reg: 0.0,
        init_std: 0.5,
    }
    .init(&init, &device);
    let ego_users: Vec<f32> = model.users.weight.val().try_into_vec_as().unwrap();
    let ego_items: Vec<f32> = model.items.weight.val().try_into_vec_as().unwrap();
    let n = users + items;
    let dim = 3;
    let mut e0 = vec![0.0f64; n * dim];
    for (k, v) in ego_users.iter().chain(&ego_items).enumerate() {
        e0[k] = *v as f64;
    }
    // Dense Â.
    let mut adjacency = vec![0.0f64; n * n];
    for (u, list) in train.iter().enumerate() {
        for &i in list {
            adjacency[u * n + users + i as usize] = 1.0;
            adjacency[(users + i as usize) * n + u] = 1.0;
        }
    }
    let degree: Vec<f64> = (0..n)
        .map(|r| adjacency[r * n..(r + 1) * n].iter().sum())
        .collect();
    let mut normalised = adjacency.clone();
    for r in 0..n {
        for c in 0..n {
            if adjacency[r * n + c] > 0.0 {
                normalised[r * n + c] = 1.0 / (degree[r] * degree[c]).sqrt();
            }
        }
    }
    let product = |x: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; n * dim];
        for r in 0..n {
            for c in 0..n {
                for d in 0..dim {
                    out[r * dim + d] += normalised[r * n + c] * x[c * dim + d];
                }
            }
        }
        out
    };
    let mut layer = e0.clone();
    let mut sum = e0;
    for _ in 0..layers {
        layer = product(&layer);
        sum.iter_mut().zip(&layer).for_each(|(s, l)| *s += l);
    }
    let want: Vec<f64> = sum.iter().map(|s| s / (layers + 1) as f64).collect();
    let (final_users, final_items) = model.final_embeddings();
    let got: Vec<f32> = final_users
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .chain(final_items.try_into_vec_as::<f32>().unwrap())
        .collect();
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((*g as f64 - w).abs() < 1e-5, "entry {k}: {g} vs {w}");
    }
}
