//! Top-10 latency over a 100k-item synthetic MF and GMF model (32 factors), one thread.
//! `cargo bench -p ember-infer --bench topk`. Prints the median and the 99th percentile over
//! 2,000 users after 200 warm-up queries.

use ember_infer::{
    ExportedModel, FORMAT_VERSION, Manifest, ModelSpec, Precision, TensorF32, write_model,
};
use std::time::Instant;

fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.2
}

fn main() {
    let (users, items, factors) = (10_000usize, 100_000usize, 32usize);
    let mut state = 42u64;
    let dir = std::env::temp_dir().join(format!("ember-topk-bench-{}", std::process::id()));
    for (kind, precision) in [
        ("mf", Precision::F32),
        ("gmf", Precision::F32),
        ("mf", Precision::Int8),
    ] {
        let spec = if kind == "mf" {
            ModelSpec::Mf { factors }
        } else {
            ModelSpec::Gmf { factors }
        };
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            model: spec,
            precision,
            user_ids: (0..users as i64).collect(),
            item_ids: (0..items as i64).collect(),
            dataset_fingerprint: "synthetic".into(),
            metrics: serde_json::Value::Null,
        };
        let mut tensors = vec![
            TensorF32 {
                name: "users.weight".into(),
                shape: vec![users, factors],
                data: (0..users * factors).map(|_| lcg(&mut state)).collect(),
            },
            TensorF32 {
                name: "items.weight".into(),
                shape: vec![items, factors],
                data: (0..items * factors).map(|_| lcg(&mut state)).collect(),
            },
        ];
        if kind == "gmf" {
            tensors.push(TensorF32 {
                name: "output.weight".into(),
                shape: vec![factors, 1],
                data: (0..factors).map(|_| lcg(&mut state)).collect(),
            });
            tensors.push(TensorF32 {
                name: "output.bias".into(),
                shape: vec![1],
                data: vec![0.1],
            });
        }
        let out = dir.join(format!("{kind}-{precision:?}"));
        write_model(&out, &manifest, &tensors).expect("write");
        let model = ExportedModel::load(&out).expect("load");
        for u in 0..200 {
            std::hint::black_box(model.recommend(u, 10, &[]).unwrap());
        }
        let mut times: Vec<f64> = (0..2000)
            .map(|u| {
                let started = Instant::now();
                std::hint::black_box(model.recommend(u as i64 % users as i64, 10, &[]).unwrap());
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{kind} {precision:?}: top-10 of {items} items, {factors} factors: median {:.3} ms, p99 {:.3} ms per user",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
