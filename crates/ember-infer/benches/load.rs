//! What verifying an export costs when it loads: a synthetic MF export of 1,000,000 users and
//! 20,000 items (32 factors, 20 known items a user), loaded five times; printed beside the
//! time SHA-256 takes over the same `model.safetensors` bytes, the part of a load that format
//! version 3's checksums add: `cargo bench -p ember-infer --bench load`.

use ember_infer::{ExportedModel, FactorsSpec, Keys, Manifest, ModelSpec, Precision, TensorF32};
use std::time::Instant;

fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn main() {
    let (users, items, factors, known_per_user) = (1_000_000usize, 20_000usize, 32usize, 20);
    let mut state = 7u64;
    let mut value = || (lcg(&mut state) as f32 / (1u64 << 31) as f32 - 0.5) * 0.2;
    let tensors = vec![
        TensorF32 {
            name: "users.weight".into(),
            shape: vec![users, factors],
            data: (0..users * factors).map(|_| value()).collect(),
        },
        TensorF32 {
            name: "items.weight".into(),
            shape: vec![items, factors],
            data: (0..items * factors).map(|_| value()).collect(),
        },
    ];
    let mut state = 11u64;
    let known: Vec<Vec<u32>> = (0..users)
        .map(|_| {
            (0..known_per_user)
                .map(|_| (lcg(&mut state) % items as u64) as u32)
                .collect()
        })
        .collect();
    let manifest = Manifest::new(
        ModelSpec::Mf(FactorsSpec { factors }),
        Precision::F32,
        Keys::Integers((0..users as i64).collect()),
        Keys::Integers((0..items as i64).collect()),
    );
    let dir = std::env::temp_dir().join(format!("ember-load-bench-{}", std::process::id()));
    ember_infer::write_model(&dir, &manifest, &tensors, &known).expect("write");
    drop((tensors, known));
    let weights = std::fs::read(dir.join("model.safetensors")).expect("read");
    let (mut loads, mut hashes) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(ExportedModel::load(&dir).expect("load"));
        loads.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(ember_infer::sha256(&weights));
        hashes.push(t.elapsed().as_secs_f64());
    }
    let (load, hash) = (median(loads), median(hashes));
    println!(
        "{users} users x {items} items x {factors} factors ({:.1} MB of weights): load {:.3} s \
         (median of 5), of which SHA-256 of the weights {:.3} s ({:.0}%, {:.2} GB/s)",
        weights.len() as f64 / 1e6,
        load,
        hash,
        100.0 * hash / load,
        weights.len() as f64 / hash / 1e9
    );
    let _ = std::fs::remove_dir_all(&dir);
}
