//! Loading rejects malformed and hostile files with typed errors; queries behave; a model is
//! shared between threads.

use ember_infer::{
    ExportedModel, FORMAT_VERSION, FactorsSpec, InferError, Key, Keys, Manifest, MlpSpec,
    ModelSpec, Precision, TensorF32, write_model,
};
use std::path::Path;
use std::sync::Arc;

/// An integer key.
fn k(id: i64) -> Key {
    Key::Integer(id)
}

/// Integer keys.
fn keys(ids: &[i64]) -> Vec<Key> {
    ids.iter().map(|&id| Key::Integer(id)).collect()
}

/// The integer keys of answers.
fn ids(answers: &[ember_infer::Scored]) -> Vec<i64> {
    answers.iter().map(|s| s.id.as_integer().unwrap()).collect()
}

fn manifest(precision: Precision) -> Manifest {
    let mut manifest = Manifest::new(
        ModelSpec::Mf(FactorsSpec { factors: 2 }),
        precision,
        Keys::Integers(vec![10, 20]),
        Keys::Integers(vec![100, 200, 300]),
    );
    manifest.dataset_fingerprint = "test".into();
    manifest
}

/// `manifest` as JSON with the checksums of `weights`: an edited export that passes the
/// checksums, to reach the checks behind them.
fn sealed(manifest: &Manifest, weights: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&manifest.with_checksums(weights)).unwrap()
}

/// Known items of the two users of [`manifest`]: none.
const NO_KNOWN: [Vec<u32>; 2] = [Vec::new(), Vec::new()];

fn mf_tensors() -> Vec<TensorF32> {
    vec![
        TensorF32 {
            name: "users.weight".into(),
            shape: vec![2, 2],
            data: vec![1.0, 0.0, 0.0, 1.0],
        },
        TensorF32 {
            name: "items.weight".into(),
            shape: vec![3, 2],
            data: vec![0.5, 0.1, 0.2, 0.9, 0.5, -1.0],
        },
    ]
}

fn written(dir: &Path, precision: Precision) -> std::path::PathBuf {
    let out = dir.join(format!("{precision:?}"));
    write_model(&out, &manifest(precision), &mf_tensors(), &NO_KNOWN).unwrap();
    out
}

fn load_bytes(manifest: &[u8], weights: &[u8]) -> Result<ExportedModel, InferError> {
    ExportedModel::from_bytes(
        manifest,
        weights,
        Path::new("manifest.json"),
        Path::new("model.safetensors"),
    )
}

#[test]
fn queries_use_external_ids() {
    let dir = tempfile::tempdir().unwrap();
    let model = ExportedModel::load(&written(dir.path(), Precision::F32)).unwrap();
    // User 10 = [1, 0]: item scores 0.5, 0.2, 0.5 — the tie 100/300 goes by id.
    let top = model.recommend(&k(10), 3, &[]).unwrap();
    assert_eq!(ids(&top), vec![100, 300, 200]);
    let top = model.recommend(&k(10), 2, &keys(&[100])).unwrap();
    assert_eq!(ids(&top), vec![300, 200]);
    // Item 200 = [0.2, 0.9]: user 20 (0.9) before user 10 (0.2).
    let audience = model.audience(&k(200), 5).unwrap();
    assert_eq!(ids(&audience), vec![20, 10]);
    assert_eq!(model.score(&[(k(20), k(300))]).unwrap(), vec![-1.0]);
    assert!(matches!(
        model.recommend(&k(99), 3, &[]),
        Err(InferError::UnknownId {
            what: "user",
            id: Key::Integer(99)
        })
    ));
}

#[test]
fn lower_precisions_stay_close() {
    let dir = tempfile::tempdir().unwrap();
    let exact = ExportedModel::load(&written(dir.path(), Precision::F32)).unwrap();
    for precision in [Precision::F16, Precision::Int8] {
        let model = ExportedModel::load(&written(dir.path(), precision)).unwrap();
        for u in 0..2 {
            for i in 0..3 {
                let (a, b) = (exact.score_internal(u, i), model.score_internal(u, i));
                assert!((a - b).abs() < 0.02, "{precision:?} ({u}, {i}): {a} vs {b}");
            }
        }
    }
}

#[test]
fn shared_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(ExportedModel::load(&written(dir.path(), Precision::Int8)).unwrap());
    let expected = model.recommend(&k(20), 3, &[]).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || {
                let mut last = Vec::new();
                for _ in 0..200 {
                    last = model.recommend(&k(20), 3, &[]).unwrap();
                }
                last
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
}

#[test]
fn malformed_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let good = written(dir.path(), Precision::F32);
    let manifest_bytes = std::fs::read(good.join("manifest.json")).unwrap();
    let weights = std::fs::read(good.join("model.safetensors")).unwrap();
    assert!(load_bytes(&manifest_bytes, &weights).is_ok());

    // Truncated weights, garbage, an empty file: the checksum refuses them as they stand,
    // and with checksums made to fit, the safetensors parser does.
    for bad in [
        &weights[..weights.len() - 3],
        &weights[..5],
        b"" as &[u8],
        b"\xff\xff\xff\xff\xff\xff\xff\xffxx",
    ] {
        assert!(matches!(
            load_bytes(&manifest_bytes, bad),
            Err(InferError::Checksum {
                what: "model.safetensors",
                ..
            })
        ));
        assert!(matches!(
            load_bytes(&sealed(&manifest(Precision::F32), bad), bad),
            Err(InferError::Safetensors { .. })
        ));
    }
    // A manifest claiming more users than the file holds: caught by shape, before allocating.
    let mut m = manifest(Precision::F32);
    m.user_ids = Keys::Integers((0..1_000_000).collect());
    let err = load_bytes(&sealed(&m, &weights), &weights).unwrap_err();
    assert!(err.to_string().contains("users.weight"), "{err}");
    // Wrong precision for the stored dtype.
    let m = manifest(Precision::F16);
    assert!(matches!(
        load_bytes(&sealed(&m, &weights), &weights),
        Err(InferError::Tensor { .. })
    ));
    // Another kind expects other tensors.
    let mut m = manifest(Precision::F32);
    m.model = ModelSpec::Gmf(FactorsSpec { factors: 2 });
    assert!(
        load_bytes(&sealed(&m, &weights), &weights)
            .unwrap_err()
            .to_string()
            .contains("output.weight")
    );
    // Version, duplicate ids, invalid sizes, unknown keys, not JSON.
    let mut m = manifest(Precision::F32).with_checksums(&weights);
    m.format_version = 99;
    assert!(matches!(
        load_bytes(&serde_json::to_vec(&m).unwrap(), &weights),
        Err(InferError::Version { found: 99 })
    ));
    let mut m = manifest(Precision::F32);
    m.item_ids = Keys::Integers(vec![1, 1, 2]);
    assert_eq!(
        load_bytes(&sealed(&m, &weights), &weights)
            .unwrap_err()
            .to_string(),
        "manifest.json: invalid manifest: item_ids are not in the order of the run's id maps: \
         `1` at position 1 is not above the key before it (the list must be strictly ascending, \
         each key once)"
    );
    let mut m = manifest(Precision::F32);
    m.model = ModelSpec::Mlp(MlpSpec { layers: vec![3] });
    let err = load_bytes(&serde_json::to_vec(&m).unwrap(), &weights).unwrap_err();
    assert!(matches!(err, InferError::Manifest { .. }));
    // The spec check's own message is the error's source.
    let source = std::error::Error::source(&err)
        .expect("a source")
        .to_string();
    assert!(source.contains("model.layers must list"), "{source}");
    let text =
        String::from_utf8(manifest_bytes.clone())
            .unwrap()
            .replacen('{', "{\"extra\": 1,", 1);
    assert!(matches!(
        load_bytes(text.as_bytes(), &weights),
        Err(InferError::Manifest { .. })
    ));
    assert!(matches!(
        load_bytes(b"[1, 2", &weights),
        Err(InferError::Manifest { .. })
    ));
}

#[test]
fn non_finite_weights_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // The writer loads what it wrote before making it visible: it refuses, naming the tensor,
    // and leaves nothing behind.
    let mut tensors = mf_tensors();
    tensors[1].data[3] = f32::NAN;
    let out = dir.path().join("nan");
    let err = write_model(&out, &manifest(Precision::F32), &tensors, &NO_KNOWN)
        .unwrap_err()
        .to_string();
    assert!(err.contains("items.weight") && err.contains("NaN"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A file written by someone else: the loader refuses it.
    let good = written(dir.path(), Precision::F32);
    let manifest_bytes = std::fs::read(good.join("manifest.json")).unwrap();
    let mut weights = std::fs::read(good.join("model.safetensors")).unwrap();
    let at = weights
        .windows(4)
        .position(|w| w == 0.9f32.to_le_bytes())
        .expect("items.weight holds 0.9 once");
    weights[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    // As it stands, the checksum finds the change; with the checksum made to fit (an export
    // written wrongly, not damaged), the value check still refuses it.
    let err = load_bytes(&manifest_bytes, &weights).unwrap_err();
    assert!(
        matches!(
            err,
            InferError::Checksum {
                what: "model.safetensors",
                ..
            }
        ),
        "{err}"
    );
    let err = load_bytes(&sealed(&manifest(Precision::F32), &weights), &weights)
        .unwrap_err()
        .to_string();
    assert!(err.contains("items.weight") && err.contains("NaN"), "{err}");
}

/// The hostile cases that loaded before format version 3: a flipped mantissa bit in the
/// weights, a reversed id list (every user would get another user's recommendations), other
/// ids in place of the real ones, an extension this build does not know, and an export of an
/// older version. Each is refused, naming what is wrong.
#[test]
fn checksums_and_id_order_refuse_edited_exports() {
    let dir = tempfile::tempdir().unwrap();
    let good = written(dir.path(), Precision::F32);
    let manifest_bytes = std::fs::read(good.join("manifest.json")).unwrap();
    let weights = std::fs::read(good.join("model.safetensors")).unwrap();
    let stored: Manifest = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(stored.format_version, FORMAT_VERSION);
    assert_eq!(stored.checksums.weights, ember_infer::sha256(&weights));
    // The lowest mantissa bit of the 0.9 in items.weight.
    let mut flipped = weights.clone();
    let at = flipped
        .windows(4)
        .position(|w| w == 0.9f32.to_le_bytes())
        .unwrap();
    flipped[at] ^= 1;
    let err = load_bytes(&manifest_bytes, &flipped)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "model.safetensors: the checksum of model.safetensors does not match the manifest \
             ({} recorded, {} found): it was changed or damaged after export; export the run \
             again",
            stored.checksums.weights,
            ember_infer::sha256(&flipped)
        )
    );
    // user_ids reversed, with or without checksums made to fit: the order gives it away.
    let mut reversed = stored.clone();
    reversed.user_ids = Keys::Integers(vec![20, 10]);
    for bytes in [
        serde_json::to_vec(&reversed).unwrap(),
        sealed(&reversed, &weights),
    ] {
        let err = load_bytes(&bytes, &weights).unwrap_err().to_string();
        assert!(
            err.contains("user_ids are not in the order of the run's id maps: `10` at position 1"),
            "{err}"
        );
    }
    // Other ids, still ascending: the checksum of the list.
    let mut other = stored.clone();
    other.item_ids = Keys::Integers(vec![100, 200, 301]);
    let err = load_bytes(&serde_json::to_vec(&other).unwrap(), &weights).unwrap_err();
    assert!(
        matches!(
            err,
            InferError::Checksum {
                what: "item_ids",
                ..
            }
        ),
        "{err}"
    );
    // An extension this build does not read.
    let mut extended = manifest(Precision::F32);
    extended
        .extensions
        .insert("calibration".into(), serde_json::json!({"kind": "platt"}));
    let err = load_bytes(&sealed(&extended, &weights), &weights)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("extension `calibration` is not one this build reads"),
        "{err}"
    );
    // A version-2 export (no checksums): refused with what to do.
    let mut old: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    old["format_version"] = 2.into();
    old.as_object_mut().unwrap().remove("checksums");
    let err = load_bytes(&serde_json::to_vec(&old).unwrap(), &weights)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "format version 2 is not supported: this build reads version 3, whose checksums prove \
         an export whole; export the run again with this ember (`ember export --run RUN --out \
         DIR`)"
    );
}

/// The writer lists no tensor names: it writes what it is given and loads the result with the
/// real loader before renaming it into place, so a tensor missing, misshapen or left over fails
/// the export with the loader's error, and nothing is left behind.
#[test]
fn the_writer_checks_its_output_by_loading_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let write = |tensors: &[TensorF32]| {
        write_model(&out, &manifest(Precision::Int8), tensors, &NO_KNOWN)
            .unwrap_err()
            .to_string()
    };
    let mut extra = mf_tensors();
    extra.push(TensorF32 {
        name: "extra.weight".into(),
        shape: vec![1],
        data: vec![0.0],
    });
    let err = write(&extra);
    assert_eq!(err, "tensor `extra.weight`: not part of this model kind");
    let err = write(&mf_tensors()[..1]);
    assert_eq!(err, "tensor `items.weight`: missing");
    let mut wide = mf_tensors();
    wide[0] = TensorF32 {
        name: "users.weight".into(),
        shape: vec![2, 3],
        data: vec![0.5; 6],
    };
    let err = write(&wide);
    assert!(
        err.contains("users.weight") && err.contains("[2, 2]"),
        "{err}"
    );
    let mut short = mf_tensors();
    short[0].data.pop();
    assert!(write(&short).contains("shape [2, 2] with 3 values"));
    let err = ember_infer::write_model_with(
        &out,
        &manifest(Precision::F32),
        &mf_tensors(),
        ember_infer::ModelData::Histories(&[vec![0], vec![1]]),
        &NO_KNOWN,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("takes no histories"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    write_model(&out, &manifest(Precision::Int8), &mf_tensors(), &NO_KNOWN).unwrap();
    let err = write(&mf_tensors());
    assert!(err.contains("already exists"), "{err}");
}

/// Batched and single top-k agree with a brute-force ranking, on a catalogue larger than one
/// block of the kernel, with a factor count that is not a multiple of the SIMD width, at f32
/// and int8, with exclusions.
#[test]
fn batched_top_k_matches_brute_force() {
    let (users, items, factors) = (7usize, 2_501usize, 13usize);
    let mut state = 7u64;
    let mut random = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let user_rows: Vec<f32> = (0..users * factors).map(|_| random()).collect();
    let item_rows: Vec<f32> = (0..items * factors).map(|_| random()).collect();
    let dir = tempfile::tempdir().unwrap();
    for precision in [Precision::F32, Precision::Int8] {
        let mut manifest = manifest(precision);
        manifest.model = ModelSpec::Mf(FactorsSpec { factors });
        manifest.user_ids = Keys::Integers((0..users as i64).map(|u| 1000 + u).collect());
        manifest.item_ids = Keys::Integers((0..items as i64).map(|i| 5 * i).collect());
        let tensors = vec![
            TensorF32 {
                name: "users.weight".into(),
                shape: vec![users, factors],
                data: user_rows.clone(),
            },
            TensorF32 {
                name: "items.weight".into(),
                shape: vec![items, factors],
                data: item_rows.clone(),
            },
        ];
        let out = dir.path().join(format!("big-{precision:?}"));
        write_model(&out, &manifest, &tensors, &vec![Vec::new(); users]).unwrap();
        let model = ExportedModel::load(&out).unwrap();
        let exclude: Vec<Key> = (0..50).map(|i| k(5 * (i * 37 % items as i64))).collect();
        let queries: Vec<(Key, &[Key])> = (0..users as i64)
            .map(|u| (k(1000 + u), if u % 2 == 0 { &exclude[..] } else { &[][..] }))
            .collect();
        let batched = model.recommend_many(&queries, 20).unwrap();
        for (u, (user, skip)) in queries.iter().enumerate() {
            let single = model.recommend(user, 20, skip).unwrap();
            assert_eq!(single, batched[u], "user {user}: batched and single differ");
            // Brute force from the model's own pairwise scores.
            let Keys::Integers(item_ids) = model.item_ids() else {
                panic!("integer keys")
            };
            let mut all: Vec<(f32, i64)> = item_ids
                .iter()
                .filter(|&&i| !skip.contains(&k(i)))
                .map(|&i| (model.score(&[(user.clone(), k(i))]).unwrap()[0], i))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let expected: Vec<i64> = all[..20].iter().map(|p| p.1).collect();
            let got: Vec<i64> = ids(&single);
            assert_eq!(got, expected, "user {user} at {precision:?}");
            for (s, p) in single.iter().zip(&all) {
                assert!((s.score - p.0).abs() < 1e-5, "{} vs {}", s.score, p.0);
            }
        }
    }
}

/// The fuzzer's seed models of the autoencoders (`scripts/fuzz_seed_autoencoders.py`, written with Python's
/// safetensors package) load, and a user's stored history gives the same top-k as that history
/// passed in (for CDAE, whose user vector a bare history lacks, only a top-k).
#[test]
fn autoencoder_seed_models_load_and_serve_histories() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/load");
    for name in ["seed-mult_dae", "seed-mult_vae", "seed-cdae"] {
        let data = std::fs::read(corpus.join(name)).unwrap();
        let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        let (manifest, weights) = data[4..].split_at(n);
        let model = load_bytes(manifest, weights).unwrap();
        // User 10's stored history is items 100 and 103, which are also their known items:
        // left out of their recommendations, as a history's own items are.
        assert!(model.has_known_items());
        let by_user = model.recommend(&k(10), 4, &[]).unwrap();
        assert_eq!(
            model.recommend(&k(10), 4, &keys(&[100, 103])).unwrap(),
            by_user
        );
        let by_history = model
            .recommend_history(&keys(&[103, 100, 999]), 4, &[])
            .unwrap();
        if name == "seed-cdae" {
            assert_eq!(by_history.len(), 2);
        } else {
            assert_eq!(by_user, by_history, "{name}");
        }
        assert_eq!(by_user.len(), 2);
        // User 11 has no history: still answered (from the biases alone).
        assert_eq!(model.recommend(&k(11), 2, &keys(&[100])).unwrap().len(), 2);
        // A history pointing outside the catalogue is rejected (with checksums made to fit).
        let bad = last_history_item_out_of_range(weights);
        let err = load_bytes(&resealed(manifest, &bad), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("history"), "{name}: {err}");
    }
}

/// `weights` with the last stored history item set outside the catalogue.
fn last_history_item_out_of_range(weights: &[u8]) -> Vec<u8> {
    let file = safetensors::SafeTensors::deserialize(weights).unwrap();
    let items = file.tensor("history.items").unwrap();
    let end = items.data().as_ptr() as usize + items.data().len() - weights.as_ptr() as usize;
    let mut bad = weights.to_vec();
    bad[end - 4..end].copy_from_slice(&7i32.to_le_bytes());
    bad
}

/// A seed's manifest with the checksums of `weights`.
fn resealed(manifest: &[u8], weights: &[u8]) -> Vec<u8> {
    let manifest: Manifest = serde_json::from_slice(manifest).unwrap();
    sealed(&manifest, weights)
}

/// The AutoRec seed (item-based, ratings 1 to 5 stored) loads; predictions stay in the
/// training range, and a user given by items alone is refused (AutoRec reads ratings).
#[test]
fn autorec_seed_model_predicts_within_the_rating_range() {
    let data =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/load/seed-autorec"))
            .unwrap();
    let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let (manifest, weights) = data[4..].split_at(n);
    let model = load_bytes(manifest, weights).unwrap();
    let pairs: Vec<(Key, Key)> = (10..13)
        .flat_map(|u| (100..104).map(move |i| (k(u), k(i))))
        .collect();
    let scores = model.score(&pairs).unwrap();
    assert!(scores.iter().all(|s| (1.0..=5.0).contains(s)), "{scores:?}");
    // Item 102 has no training rating: the midpoint of the range.
    assert_eq!(model.score(&[(k(10), k(102))]).unwrap()[0], 3.0);
    let err = model.recommend_history(&keys(&[100]), 2, &[]).unwrap_err();
    assert!(err.to_string().contains("by id"), "{err}");
}

/// The fuzzer's SASRec and BERT4Rec seeds (`scripts/fuzz_seed_autoencoders.py`) load; a user's
/// stored sequence gives the same top-k as that sequence passed in, in order, and a different
/// order gives other scores (the models read order, not a set).
#[test]
fn sequence_seed_models_load_and_read_order() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/load");
    for name in ["seed-sasrec", "seed-bert4rec"] {
        let data = std::fs::read(corpus.join(name)).unwrap();
        let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
        let (manifest, weights) = data[4..].split_at(n);
        let model = load_bytes(manifest, weights).unwrap();
        // User 10's stored sequence is 103, 100, 103 (a repeat, in time order); their known
        // items, 100 and 103, are left out.
        let by_user = model.recommend(&k(10), 4, &[]).unwrap();
        assert_eq!(by_user.len(), 2);
        assert_eq!(
            model
                .recommend_history(&keys(&[103, 100, 103]), 4, &[])
                .unwrap(),
            by_user,
            "{name}"
        );
        let reordered = model
            .recommend_history(&keys(&[100, 103, 103]), 4, &[])
            .unwrap();
        assert_ne!(
            reordered.iter().map(|s| s.score).collect::<Vec<_>>(),
            by_user.iter().map(|s| s.score).collect::<Vec<_>>(),
            "{name}: order should matter"
        );
        // User 11 has no items: still answered.
        assert_eq!(model.recommend(&k(11), 2, &[]).unwrap().len(), 2);
        // A stored item outside the catalogue is rejected.
        let bad = last_history_item_out_of_range(weights);
        let err = load_bytes(&resealed(manifest, &bad), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("history"), "{name}: {err}");
    }
}

/// The `attributes` extension as the training side writes it: three items, two of them named,
/// with one categorical column of two values.
fn item_attributes(display: Vec<Option<&str>>, feature: u32) -> serde_json::Value {
    use ember_infer::{
        AttributeColumn, AttributeSchema, ColumnEncoder, ExportedAttributes, FeatureRows,
        SideAttributes,
    };
    let items = SideAttributes {
        schema: AttributeSchema {
            columns: vec![AttributeColumn {
                name: "genre".into(),
                encoder: ColumnEncoder::Categorical {
                    vocabulary: vec!["Comedy".into(), "Drama".into()],
                },
            }],
        },
        display: Some(display.into_iter().map(|d| d.map(String::from)).collect()),
        features: Some(FeatureRows {
            offsets: vec![0, 1, 2, 3],
            indices: vec![1, feature, 0],
            values: vec![1.0; 3],
        }),
    };
    serde_json::to_value(ExportedAttributes {
        users: None,
        items: Some(items),
    })
    .unwrap()
}

#[test]
fn attributes_name_items_and_are_checked_against_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let good = written(dir.path(), Precision::F32);
    let weights = std::fs::read(good.join("model.safetensors")).unwrap();
    let with = |attributes: serde_json::Value| {
        let mut m = manifest(Precision::F32);
        m.extensions.insert("attributes".into(), attributes);
        load_bytes(&sealed(&m, &weights), &weights)
    };
    let model = with(item_attributes(
        vec![Some("Toy Story"), None, Some("Fargo")],
        2,
    ))
    .unwrap();
    assert!(model.has_item_names());
    assert_eq!(model.item_name_of(&k(100)), Some("Toy Story"));
    assert_eq!(model.item_name_of(&k(200)), None);
    assert_eq!(model.item_name(2), Some("Fargo"));
    assert_eq!(model.item_name_of(&k(999)), None);
    assert_eq!(model.user_label(0), None);
    let items = model.attributes().items.as_ref().unwrap();
    assert_eq!(items.schema.width(), 3);
    assert_eq!(
        items.features.as_ref().unwrap().row(1).collect::<Vec<_>>(),
        [(2, 1.0)]
    );
    // An export without the extension names nothing.
    let plain = load_bytes(&sealed(&manifest(Precision::F32), &weights), &weights).unwrap();
    assert!(!plain.has_item_names());
    assert_eq!(plain.item_name(0), None);

    let err = with(item_attributes(vec![Some("Toy Story"), None], 2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("attributes of the items: 2 names or labels for 3 ids"),
        "{err}"
    );
    let err = with(item_attributes(vec![None, None, None], 3))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("attributes of the items: feature 3 outside the 3 features of the schema"),
        "{err}"
    );
}
