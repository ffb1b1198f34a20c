//! Top-10 latency over a 100k-item synthetic MF and GMF model (32 factors), one thread:
//! `cargo bench -p ember-infer --bench topk`.
//!
//! - `single`: one `recommend` call (one user), the latency a request sees;
//! - `batch16`: `recommend_many` for 16 users, which reads the item table once for all of them,
//!   given per user.
//!
//! A plain timing loop rather than criterion: criterion as a dev-dependency changes features of
//! crates the training build shares (`either`, `ciborium`), so `cargo test` and `cargo run`
//! would each build burn and polars (see README, "Two commands").

use ember_infer::{
    ExportedModel, FactorsSpec, Key, Keys, Manifest, ModelSpec, Precision, TensorF32, write_model,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The median time of one call of `f`, over samples of `per_sample` calls taken for about two
/// seconds after half a second of warm-up.
fn median_per_call(per_sample: usize, mut f: impl FnMut()) -> Duration {
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_millis(500) {
        f();
    }
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) || samples.len() < 11 {
        let t = Instant::now();
        for _ in 0..per_sample {
            f();
        }
        samples.push(t.elapsed() / per_sample as u32);
    }
    samples.sort();
    samples[samples.len() / 2]
}

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
            ModelSpec::Mf(FactorsSpec { factors })
        } else {
            ModelSpec::Gmf(FactorsSpec { factors })
        };
        let manifest = Manifest::new(
            spec,
            precision,
            Keys::Integers((0..users as i64).collect()),
            Keys::Integers((0..items as i64).collect()),
        );
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
        write_model(&out, &manifest, &tensors, &vec![Vec::new(); users]).expect("write");
        let model = ExportedModel::load(&out).expect("load");
        let name = format!("{kind}-{precision:?}").to_lowercase();
        let mut user = 0i64;
        let single = median_per_call(100, || {
            user = (user + 1) % users as i64;
            black_box(model.recommend(&Key::Integer(user), 10, &[]).unwrap());
        });
        let batch = median_per_call(10, || {
            user = (user + 16) % (users as i64 - 16);
            let queries: Vec<(Key, &[Key])> = (user..user + 16)
                .map(|u| (Key::Integer(u), &[][..]))
                .collect();
            black_box(model.recommend_many(&queries, 10).unwrap());
        });
        println!(
            "top10 of {items} items, {factors} factors, {name}: single {:.3} ms, batch16 {:.3} ms per user",
            single.as_secs_f64() * 1e3,
            batch.as_secs_f64() * 1e3 / 16.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
