//! Known items, explanations and user vectors, for every model kind: queries never return
//! what a user already has unless asked, explanations name only the user's own items, and
//! every kind but I-AutoRec gives a user vector.

use ember_infer::{
    AutoRecSpec, AutoencoderSpec, CdaeSpec, ExportedModel, FactorsSpec, Gru4RecSpec, ItemKnnSpec,
    Key, Keys, Known, KnownItems, LightGcnSpec, Manifest, MlpSpec, ModelData, ModelSpec, NeuMfSpec,
    Options, Precision, TensorF32, TransformerSpec, write_model_known, write_model_with,
};
use std::path::Path;

const USERS: usize = 6;
const ITEMS: usize = 9;

/// A deterministic stream of values in [-0.5, 0.5).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> TensorF32 {
        let n = shape.iter().product();
        // Layer norm gains near 1, everything else small.
        let data = (0..n)
            .map(|_| {
                let v = self.next();
                if name.ends_with("gamma") { 1.0 + v } else { v }
            })
            .collect();
        TensorF32 {
            name: name.into(),
            shape: shape.to_vec(),
            data,
        }
    }
}

/// Each user's known items (internal ids): user `u` has `u`, `u + 2` and `2u mod 9`.
fn known() -> Vec<Vec<u32>> {
    (0..USERS as u32)
        .map(|u| vec![u, u + 2, (2 * u) % ITEMS as u32])
        .collect()
}

/// Each user's training items, in time order: the known items but the last (as a split would
/// hold the test item back).
fn histories() -> Vec<Vec<u32>> {
    known()
        .into_iter()
        .map(|mut k| {
            k.pop();
            k
        })
        .collect()
}

/// A block of a transformer under `prefix` with a feed-forward layer `ff` wide.
fn block(rng: &mut Lcg, prefix: &str, hidden: usize, ff: usize) -> Vec<TensorF32> {
    let mut out = Vec::new();
    for norm in ["attention_norm", "feed_forward_norm"] {
        out.push(rng.tensor(&format!("{prefix}.{norm}.gamma"), &[hidden]));
        out.push(rng.tensor(&format!("{prefix}.{norm}.beta"), &[hidden]));
    }
    for p in ["query", "key", "value", "output"] {
        out.push(rng.tensor(&format!("{prefix}.attention.{p}.weight"), &[hidden, hidden]));
        out.push(rng.tensor(&format!("{prefix}.attention.{p}.bias"), &[hidden]));
    }
    out.push(rng.tensor(&format!("{prefix}.feed_forward_in.weight"), &[hidden, ff]));
    out.push(rng.tensor(&format!("{prefix}.feed_forward_in.bias"), &[ff]));
    out.push(rng.tensor(&format!("{prefix}.feed_forward_out.weight"), &[ff, hidden]));
    out.push(rng.tensor(&format!("{prefix}.feed_forward_out.bias"), &[hidden]));
    out
}

/// A dense layer `name` of `[inputs, outputs]`.
fn dense(rng: &mut Lcg, name: &str, inputs: usize, outputs: usize) -> Vec<TensorF32> {
    vec![
        rng.tensor(&format!("{name}.weight"), &[inputs, outputs]),
        rng.tensor(&format!("{name}.bias"), &[outputs]),
    ]
}

/// A small model of every kind, with random weights, and what its export stores.
fn specs() -> Vec<(ModelSpec, Vec<TensorF32>)> {
    let mut rng = Lcg(11);
    let (u, i) = (USERS, ITEMS);
    let mut out = Vec::new();
    let factors = |rng: &mut Lcg| {
        vec![
            rng.tensor("users.weight", &[u, 4]),
            rng.tensor("items.weight", &[i, 4]),
        ]
    };
    out.push((ModelSpec::Mf(FactorsSpec { factors: 4 }), factors(&mut rng)));
    let mut gmf = factors(&mut rng);
    gmf.extend(dense(&mut rng, "output", 4, 1));
    out.push((ModelSpec::Gmf(FactorsSpec { factors: 4 }), gmf));
    let mut mlp = factors(&mut rng);
    mlp.extend(dense(&mut rng, "tower.layers.0", 8, 4));
    mlp.extend(dense(&mut rng, "output", 4, 1));
    out.push((ModelSpec::Mlp(MlpSpec { layers: vec![8, 4] }), mlp));
    let mut neumf = vec![
        rng.tensor("gmf_users.weight", &[u, 4]),
        rng.tensor("gmf_items.weight", &[i, 4]),
        rng.tensor("mlp_users.weight", &[u, 4]),
        rng.tensor("mlp_items.weight", &[i, 4]),
    ];
    neumf.extend(dense(&mut rng, "tower.layers.0", 8, 4));
    neumf.extend(dense(&mut rng, "output", 8, 1));
    out.push((
        ModelSpec::NeuMf(NeuMfSpec {
            factors: 4,
            layers: vec![8, 4],
        }),
        neumf,
    ));
    out.push((
        ModelSpec::LightGcn(LightGcnSpec {
            factors: 4,
            layers: 2,
        }),
        factors(&mut rng),
    ));
    for vae in [false, true] {
        let mut t = dense(&mut rng, "encoder.0", i, 5);
        t.extend(dense(&mut rng, "encoder.1", 5, if vae { 6 } else { 3 }));
        t.extend(dense(&mut rng, "decoder.0", 3, 5));
        t.extend(dense(&mut rng, "decoder.1", 5, i));
        let spec = AutoencoderSpec { hidden: vec![5, 3] };
        out.push((
            if vae {
                ModelSpec::MultVae(spec)
            } else {
                ModelSpec::MultDae(spec)
            },
            t,
        ));
    }
    let mut cdae = dense(&mut rng, "encoder", i, 3);
    cdae.push(rng.tensor("users.weight", &[u, 3]));
    cdae.extend(dense(&mut rng, "decoder", 3, i));
    out.push((ModelSpec::Cdae(CdaeSpec { hidden: 3 }), cdae));
    for item_based in [false, true] {
        let width = if item_based { u } else { i };
        let mut t = dense(&mut rng, "encoder", width, 3);
        t.extend(dense(&mut rng, "decoder", 3, width));
        out.push((
            ModelSpec::AutoRec(AutoRecSpec {
                hidden: 3,
                item_based,
            }),
            t,
        ));
    }
    for bert in [false, true] {
        let hidden = 4;
        let spec = TransformerSpec {
            hidden,
            blocks: 2,
            heads: 2,
            max_len: 5,
            layer_norm_epsilon: 1e-8,
        };
        let rows = i + 1 + usize::from(bert);
        let mut t = vec![
            rng.tensor("items.weight", &[rows, hidden]),
            rng.tensor("positions.weight", &[5, hidden]),
        ];
        let ff = if bert { 4 * hidden } else { hidden };
        for k in 0..2 {
            t.extend(block(&mut rng, &format!("blocks.{k}"), hidden, ff));
        }
        if bert {
            t.push(rng.tensor("embedding_norm.gamma", &[hidden]));
            t.push(rng.tensor("embedding_norm.beta", &[hidden]));
            t.extend(dense(&mut rng, "head", hidden, hidden));
            t.push(rng.tensor("head_norm.gamma", &[hidden]));
            t.push(rng.tensor("head_norm.beta", &[hidden]));
            t.push(rng.tensor("output_bias", &[i]));
            out.push((ModelSpec::Bert4Rec(spec), t));
        } else {
            t.push(rng.tensor("final_norm.gamma", &[hidden]));
            t.push(rng.tensor("final_norm.beta", &[hidden]));
            out.push((ModelSpec::SasRec(spec), t));
        }
    }
    let mut gru = vec![rng.tensor("items.weight", &[i + 1, 4])];
    gru.extend(dense(&mut rng, "gru.0.input", 4, 9));
    gru.extend(dense(&mut rng, "gru.0.recurrent", 3, 9));
    gru.extend(dense(&mut rng, "projection", 3, 4));
    out.push((
        ModelSpec::Gru4Rec(Gru4RecSpec {
            embedding: 4,
            hidden: 3,
            layers: 1,
            max_len: 4,
        }),
        gru,
    ));
    // ItemKNN: item j's neighbours are j + 1 (similarity 0.5) and j + 3 (0.25), mod 9.
    let knn_items: Vec<f32> = (0..i)
        .flat_map(|j| [(j + 1) % i, (j + 3) % i])
        .map(|n| n as f32)
        .collect();
    out.push((
        ModelSpec::ItemKnn(ItemKnnSpec {
            neighbours: 2,
            shrinkage: 0.0,
        }),
        vec![
            TensorF32 {
                name: "neighbours.similarity".into(),
                shape: vec![i, 2],
                data: [0.5, 0.25].repeat(i),
            },
            TensorF32 {
                name: "neighbours.item".into(),
                shape: vec![i * 2],
                data: knn_items,
            },
        ],
    ));
    out
}

fn manifest(spec: ModelSpec) -> Manifest {
    Manifest::new(
        spec,
        Precision::F32,
        Keys::Integers((0..USERS as i64).map(|u| 10 + u).collect()),
        Keys::Integers((0..ITEMS as i64).map(|i| 100 + i).collect()),
    )
}

/// The day of each of [`known`]'s entries: 100, 200 and 300 for a user's three (so an item
/// listed twice, as user 0's item 0, is last had on the later day).
fn known_days() -> Vec<Vec<i32>> {
    vec![vec![100, 200, 300]; USERS]
}

/// Every kind, written with its users' data and known items and loaded back.
fn models(dir: &Path) -> Vec<ExportedModel> {
    models_with(dir, None)
}

/// [`models`], with the known items' `days` when given.
fn models_with(dir: &Path, days: Option<&[Vec<i32>]>) -> Vec<ExportedModel> {
    let histories = histories();
    // Ratings: rows are users (U-AutoRec) or items (I-AutoRec), from the training items.
    let user_ratings: Vec<Vec<(u32, f32)>> = histories
        .iter()
        .map(|h| h.iter().map(|&i| (i, 1.0 + (i % 5) as f32)).collect())
        .collect();
    let mut item_ratings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); ITEMS];
    for (u, row) in user_ratings.iter().enumerate() {
        for &(i, r) in row {
            item_ratings[i as usize].push((u as u32, r));
        }
    }
    specs()
        .into_iter()
        .enumerate()
        .map(|(k, (spec, tensors))| {
            let data = match &spec {
                ModelSpec::MultDae(_)
                | ModelSpec::MultVae(_)
                | ModelSpec::Cdae(_)
                | ModelSpec::SasRec(_)
                | ModelSpec::Bert4Rec(_)
                | ModelSpec::Gru4Rec(_)
                | ModelSpec::ItemKnn(_) => ModelData::Histories(&histories),
                ModelSpec::AutoRec(s) if s.item_based => ModelData::Ratings(&item_ratings),
                ModelSpec::AutoRec(_) => ModelData::Ratings(&user_ratings),
                _ => ModelData::None,
            };
            let out = dir.join(format!("{k}-{}", spec.kind()));
            let known = known();
            let known = KnownItems {
                items: &known,
                days,
            };
            write_model_known(&out, &manifest(spec), &tensors, data, known).unwrap();
            ExportedModel::load(&out).unwrap()
        })
        .collect()
}

/// Every kind is in the list the tests here go through: a new family cannot be left out.
#[test]
fn the_list_covers_every_kind() {
    let mut listed: Vec<&str> = specs().iter().map(|(spec, _)| spec.kind()).collect();
    listed.sort_unstable();
    listed.dedup();
    let mut kinds = ModelSpec::KINDS.to_vec();
    kinds.sort_unstable();
    assert_eq!(listed, kinds);
}

fn name(model: &ExportedModel) -> String {
    serde_json::to_string(&model.manifest().model).unwrap()
}

fn external(items: &[u32]) -> Vec<Key> {
    items
        .iter()
        .map(|&i| Key::Integer(100 + i as i64))
        .collect()
}

/// Integer keys.
fn keys(ids: &[i64]) -> Vec<Key> {
    ids.iter().map(|&id| Key::Integer(id)).collect()
}

#[test]
fn queries_leave_known_items_out_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    for model in models(dir.path()) {
        let name = name(&model);
        assert!(model.has_known_items());
        for (u, known) in known().iter().enumerate() {
            let user = Key::Integer(10 + u as i64);
            let mut expected = known.clone();
            expected.sort_unstable();
            expected.dedup();
            assert_eq!(model.known_items(&user).unwrap(), external(&expected));
            let top = model.recommend(&user, ITEMS, &[]).unwrap();
            assert_eq!(top.len(), ITEMS - expected.len(), "{name}");
            assert!(
                top.iter().all(|s| !external(known).contains(&s.id)),
                "{name}"
            );
            // The opt-out ranks every item, with the scores scoring gives.
            let include = Options {
                known: Known::Include,
                ..Options::default()
            };
            let all = model.recommend_for(&user, ITEMS, &include).unwrap();
            assert_eq!(all.len(), ITEMS, "{name}");
            for r in &all {
                let score = model.score(&[(user.clone(), r.id.clone())]).unwrap()[0];
                assert!(
                    (r.score - score).abs() < 1e-5,
                    "{name}: {} vs {score}",
                    r.score
                );
            }
            // A suppression list is left out on top of the known items.
            let suppress = [top[0].id.clone()];
            let options = Options {
                exclude: &suppress,
                ..Options::default()
            };
            let fewer = model.recommend_for(&user, ITEMS, &options).unwrap();
            assert_eq!(fewer.len(), top.len() - 1);
            assert!(fewer.iter().all(|r| r.id != suppress[0]));
        }
        // Batched answers equal single ones.
        let users: Vec<Key> = (10..10 + USERS as i64).map(Key::Integer).collect();
        let many = model
            .recommend_many_for(&users, 4, &Options::default())
            .unwrap();
        for (user, answer) in users.iter().zip(&many) {
            let single = model.recommend(user, 4, &[]).unwrap();
            let ids: Vec<Key> = answer.iter().map(|r| r.id.clone()).collect();
            assert_eq!(ids, single.iter().map(|s| s.id.clone()).collect::<Vec<_>>());
        }
        // An audience leaves out the item's owners: item 102 is known to users 10 (2 = 0 + 2),
        // 11 (2 = 2·1) and 12 (2).
        let audience = model.audience(&Key::Integer(102), USERS).unwrap();
        let ids: Vec<Key> = audience.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids.len(), USERS - 3, "{name}: {ids:?}");
        assert!(
            ids.iter().all(|u| !keys(&[10, 11, 12]).contains(u)),
            "{name}"
        );
        let include = Options {
            known: Known::Include,
            ..Options::default()
        };
        assert_eq!(
            model
                .audience_for(&Key::Integer(102), USERS, &include)
                .unwrap()
                .len(),
            USERS
        );
    }
}

#[test]
fn explanations_name_only_the_users_own_items() {
    let dir = tempfile::tempdir().unwrap();
    for model in models(dir.path()) {
        let name = name(&model);
        for (u, known) in known().iter().enumerate() {
            let user = Key::Integer(10 + u as i64);
            let own = external(known);
            let options = Options {
                explain: 5,
                known: Known::Include,
                ..Options::default()
            };
            let answers = model.recommend_for(&user, ITEMS, &options).unwrap();
            let mut explained = 0;
            for r in &answers {
                assert!(r.because.len() <= 5);
                for b in &r.because {
                    assert!(
                        own.contains(&b.item),
                        "{name}: {} not user {user}'s",
                        b.item
                    );
                    assert!(
                        b.item != r.id && b.weight > 0.0,
                        "{name}: {b:?} for {}",
                        r.id
                    );
                }
                assert!(r.because.windows(2).all(|w| w[0].weight >= w[1].weight));
                explained += usize::from(!r.because.is_empty());
            }
            // (AutoRec's predictions of these random weights are clipped to the rating range,
            // where removing a rating changes nothing.)
            if model.manifest().model.kind() != "autorec" {
                assert!(
                    explained > 0,
                    "{name}: user {user} got no explanation at all"
                );
            }
            // The direct query gives the same explanations.
            let ids: Vec<Key> = answers.iter().map(|r| r.id.clone()).collect();
            let direct = model.explain(&user, &ids, 5).unwrap();
            for (r, because) in answers.iter().zip(direct) {
                assert_eq!(r.because, because, "{name}");
            }
        }
        // Audience members are explained by their own items.
        let options = Options {
            explain: 3,
            ..Options::default()
        };
        for member in model
            .audience_for(&Key::Integer(105), USERS, &options)
            .unwrap()
        {
            let own = external(&known()[(member.id.as_integer().unwrap() - 10) as usize]);
            assert!(
                member.because.iter().all(|b| own.contains(&b.item)),
                "{name}"
            );
        }
    }
}

/// MF's explanation is the cosine of item embeddings, by hand: items 0 = [1, 0], 1 = [1, 1],
/// 2 = [0, 1], 3 = [-1, 0]; a user who has 0, 2 and 3 and is recommended 1 has cos 0.7071
/// for 0 and 2, and a negative one for 3, which is left out.
#[test]
fn mf_explains_by_the_cosine_of_item_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = manifest(ModelSpec::Mf(FactorsSpec { factors: 2 }));
    m.user_ids = Keys::Integers(vec![10]);
    m.item_ids = Keys::Integers(vec![100, 101, 102, 103]);
    let tensors = vec![
        TensorF32 {
            name: "users.weight".into(),
            shape: vec![1, 2],
            data: vec![1.0, 1.0],
        },
        TensorF32 {
            name: "items.weight".into(),
            shape: vec![4, 2],
            data: vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, -1.0, 0.0],
        },
    ];
    let out = dir.path().join("mf");
    write_model_with(&out, &m, &tensors, ModelData::None, &[vec![3, 0, 2, 0]]).unwrap();
    let model = ExportedModel::load(&out).unwrap();
    assert_eq!(
        model.known_items(&Key::Integer(10)).unwrap(),
        keys(&[100, 102, 103])
    );
    let options = Options {
        explain: 3,
        ..Options::default()
    };
    let top = model.recommend_for(&Key::Integer(10), 3, &options).unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].id, Key::Integer(101));
    let because: Vec<(Key, f32)> = top[0]
        .because
        .iter()
        .map(|b| (b.item.clone(), b.weight))
        .collect();
    assert_eq!(because.len(), 2);
    assert_eq!(
        (&because[0].0, &because[1].0),
        (&Key::Integer(100), &Key::Integer(102))
    );
    for (_, w) in because {
        assert!((w - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6, "{w}");
    }
}

/// Occlusion is the drop in the item's score without each history item (ItemKNN's terms are
/// exactly that), computed here from the scores of the smaller histories; the sequence models'
/// attention weights over a window of distinct items sum to 1 (SASRec: every position is an
/// item).
#[test]
fn occlusion_and_attention_weights_are_what_the_docs_say() {
    let dir = tempfile::tempdir().unwrap();
    let include = Options {
        known: Known::Include,
        ..Options::default()
    };
    let history = keys(&[101, 104, 107]);
    let target = keys(&[105]);
    for model in models(dir.path()) {
        let kind = model.manifest().model.kind();
        let score_of = |history: &[Key], item: &Key| {
            model
                .recommend_history_for(history, ITEMS, &include)
                .unwrap()
                .into_iter()
                .find(|r| r.id == *item)
                .unwrap()
                .score
        };
        match kind {
            "mult_dae" | "mult_vae" | "cdae" | "gru4rec" | "item_knn" => {
                let because = model
                    .explain_history(&history, &target, 10)
                    .unwrap()
                    .remove(0);
                let full = score_of(&history, &target[0]);
                for c in &history {
                    let without: Vec<Key> = history.iter().filter(|&i| i != c).cloned().collect();
                    let drop = full - score_of(&without, &target[0]);
                    match because.iter().find(|b| b.item == *c) {
                        Some(b) => assert!((b.weight - drop).abs() < 1e-5, "{kind}: {b:?} {drop}"),
                        None => assert!(drop <= 0.0, "{kind}: {c} dropped {drop}"),
                    }
                }
            }
            "sasrec" => {
                let because = model
                    .explain_history(&history, &target, 10)
                    .unwrap()
                    .remove(0);
                let total: f32 = because.iter().map(|b| b.weight).sum();
                assert_eq!(because.len(), 3);
                assert!((total - 1.0).abs() < 1e-5, "{total}");
            }
            "bert4rec" => {
                let because = model
                    .explain_history(&history, &target, 10)
                    .unwrap()
                    .remove(0);
                let total: f32 = because.iter().map(|b| b.weight).sum();
                // The rest of the weight is on the mask token.
                assert!(total > 0.0 && total < 1.0, "{total}");
            }
            // Folded in: explained by the cosine of the target's item vector with each item
            // of the history, as a known user is.
            "mf" | "gmf" | "lightgcn" | "mlp" | "neumf" => {
                let because = model
                    .explain_history(&history, &target, 3)
                    .unwrap()
                    .remove(0);
                assert!(!because.is_empty(), "{kind}");
                for b in &because {
                    assert!(history.contains(&b.item), "{kind}: {b:?}");
                    assert!((-1.0..=1.0).contains(&b.weight), "{kind}: {b:?}");
                }
            }
            _ => {
                let err = model.explain_history(&history, &target, 3).unwrap_err();
                assert!(err.to_string().contains("ask with `user`"), "{kind}: {err}");
            }
        }
    }
}

#[test]
fn every_kind_but_item_based_autorec_has_user_vectors() {
    let dir = tempfile::tempdir().unwrap();
    for model in models(dir.path()) {
        let spec = &model.manifest().model;
        let expected = match spec {
            ModelSpec::Mf(_) | ModelSpec::Gmf(_) | ModelSpec::LightGcn(_) => 4,
            ModelSpec::Mlp(_) => 4,
            ModelSpec::NeuMf(_) => 8,
            ModelSpec::MultDae(_) | ModelSpec::MultVae(_) | ModelSpec::Cdae(_) => 3,
            ModelSpec::AutoRec(s) if s.item_based => {
                let err = model
                    .user_vector(&Key::Integer(10))
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.contains("item_based: true") && err.contains("no user vector"),
                    "{err}"
                );
                continue;
            }
            ModelSpec::AutoRec(_) => 3,
            ModelSpec::SasRec(_) | ModelSpec::Bert4Rec(_) => 4,
            ModelSpec::Gru4Rec(_) => 3,
            // The user's item row.
            ModelSpec::ItemKnn(_) => ITEMS,
        };
        let vectors: Vec<Vec<f32>> = (10..10 + USERS as i64)
            .map(|u| model.user_vector(&Key::Integer(u)).unwrap())
            .collect();
        assert!(vectors.iter().all(|v| v.len() == expected), "{spec:?}");
        assert!(vectors.iter().flatten().all(|x| x.is_finite()));
        // Users with other items get other vectors.
        assert_ne!(vectors[0], vectors[1], "{spec:?}");
    }
}

/// The history query on NeuMF once answered with a Rust debug dump. NeuMF now folds a
/// history in (the same answer each time, the history's items left out); a kind that cannot
/// (AutoRec) names the request's fields and the kind as manifests write it.
#[test]
fn regression_neumf_history_query_answers_in_the_apis_words() {
    let dir = tempfile::tempdir().unwrap();
    let models = models(dir.path());
    let of_kind = |kind: &str| {
        models
            .iter()
            .find(|m| m.manifest().model.kind() == kind)
            .unwrap()
    };
    let neumf = of_kind("neumf");
    let answer = neumf.recommend_history(&keys(&[101]), 3, &[]).unwrap();
    assert_eq!(answer.len(), 3);
    assert!(answer.iter().all(|s| s.id != Key::Integer(101)));
    assert_eq!(
        answer,
        neumf.recommend_history(&keys(&[101]), 3, &[]).unwrap()
    );
    let err = of_kind("autorec")
        .recommend_history(&keys(&[101]), 3, &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "model kind `autorec` scores the users it was trained on by id: ask with `user`, not \
         `history`"
    );
    for text in [
        err,
        neumf
            .user_vector(&Key::Integer(99))
            .unwrap_err()
            .to_string(),
    ] {
        assert!(!text.contains("Spec") && !text.contains('{'), "{text}");
    }
}

#[test]
fn since_a_day_leaves_out_only_what_was_had_from_that_day() {
    let dir = tempfile::tempdir().unwrap();
    let days = known_days();
    for model in models_with(dir.path(), Some(&days)) {
        let name = name(&model);
        assert!(model.has_known_days(), "{name}");
        // User 10 has items 0 (days 100 and 300: 300) and 2 (day 200).
        assert_eq!(model.known_days_internal(0), Some(&[300, 200][..]));
        // User 13 has 3 (day 100), 5 (200) and 6 (300).
        assert_eq!(model.known_days_internal(3), Some(&[100, 200, 300][..]));
        let since = |day| Options {
            known: Known::Since(day),
            ..Options::default()
        };
        let ids = |user, day| -> Vec<i64> {
            let top = model
                .recommend_for(&Key::Integer(user), ITEMS, &since(day))
                .unwrap();
            top.iter().map(|r| r.id.as_integer().unwrap()).collect()
        };
        // Since day 200, user 13 gets item 103 back but not 105 nor 106.
        let top = ids(13, 200);
        assert_eq!(top.len(), ITEMS - 2, "{name}");
        assert!(top.contains(&103) && !top.contains(&105) && !top.contains(&106));
        assert_eq!(
            model
                .left_out_items(&Key::Integer(13), Known::Since(200))
                .unwrap(),
            keys(&[105, 106])
        );
        // Since day 301 nothing is left out; since day 100, everything.
        assert_eq!(ids(13, 301).len(), ITEMS, "{name}");
        assert_eq!(ids(13, 100).len(), ITEMS - 3, "{name}");
        // Item 102's owners: users 10 (day 200), 11 (2 = 2·1, day 300) and 12 (2, day 100).
        // Since day 250 only user 11 is left out of its audience.
        let audience: Vec<i64> = model
            .audience_for(&Key::Integer(102), USERS, &since(250))
            .unwrap()
            .iter()
            .map(|r| r.id.as_integer().unwrap())
            .collect();
        assert_eq!(audience.len(), USERS - 1, "{name}: {audience:?}");
        assert!(!audience.contains(&11), "{name}");
    }
}

#[test]
fn since_a_day_needs_days_the_export_and_the_query_have() {
    let dir = tempfile::tempdir().unwrap();
    let since = Options {
        known: Known::Since(200),
        ..Options::default()
    };
    let models = models(dir.path());
    let message = "leaving out known items since a date needs the day of each known \
                   interaction (tensor `known.days`), and this export has none: its data had no \
                   timestamps that are dates (or it was exported before they were stored); use \
                   all or none";
    for model in &models {
        assert!(!model.has_known_days());
        let err = model
            .recommend_for(&Key::Integer(10), 3, &since)
            .unwrap_err();
        assert_eq!(err.to_string(), message, "{}", name(model));
        let err = model
            .audience_for(&Key::Integer(102), 3, &since)
            .unwrap_err();
        assert_eq!(err.to_string(), message, "{}", name(model));
    }
    // A history has no dates at all.
    let sasrec = models
        .iter()
        .find(|m| m.manifest().model.kind() == "sasrec")
        .unwrap();
    let err = sasrec
        .recommend_history_for(&keys(&[101, 102]), 3, &since)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a history given with the query has no dates, so nothing in it can be left out since \
         a date: use all or none"
    );
}

#[test]
fn known_days_must_match_the_known_items() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, tensors) = specs().remove(0);
    let known = known();
    let mut days = known_days();
    days[4].pop();
    let given = KnownItems {
        items: &known,
        days: Some(&days),
    };
    let out = dir.path().join("m");
    let err = write_model_known(
        &out,
        &manifest(spec.clone()),
        &tensors,
        ModelData::None,
        given,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor `known.days`: days given are not one per known item of each user"
    );
    assert!(!out.exists());
    // A file whose days do not match its known items fails to load, naming both counts.
    let days = known_days();
    let given = KnownItems {
        items: &known,
        days: Some(&days),
    };
    write_model_known(&out, &manifest(spec), &tensors, ModelData::None, given).unwrap();
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut kept: Vec<(String, Vec<u8>, safetensors::Dtype, Vec<usize>)> = Vec::new();
    for (name, view) in file.tensors() {
        let (mut data, mut shape) = (view.data().to_vec(), view.shape().to_vec());
        if name == "known.days" {
            data.truncate(data.len() - 4);
            shape[0] -= 1;
        }
        kept.push((name, data, view.dtype(), shape));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = kept
        .iter()
        .map(|(name, data, dtype, shape)| {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap();
            (name.clone(), view)
        })
        .collect();
    let weights = safetensors::serialize(views, None).unwrap();
    // With the checksums made to fit: a file written wrongly, not one damaged after export.
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let manifest = serde_json::to_vec(&manifest.with_checksums(&weights)).unwrap();
    let err = ExportedModel::from_bytes(
        &manifest,
        &weights,
        Path::new("manifest.json"),
        Path::new("model.safetensors"),
    )
    .unwrap_err();
    // Users 10 and 12 have two distinct items, the other four three: 16 known items.
    assert_eq!(
        err.to_string(),
        "tensor `known.days`: 15 days for 16 known items: one per known item"
    );
}

#[test]
fn known_items_must_cover_every_user() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, tensors) = specs().remove(0);
    let err = write_model_with(
        &dir.path().join("m"),
        &manifest(spec),
        &tensors,
        ModelData::None,
        &known()[..2],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("known items given for 2 users, the manifest has 6"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The fuzz corpus's seeds (`scripts/fuzz_seed_autoencoders.py`) are version-3 exports with
/// known items: the I-AutoRec seed's user 10 rated items 100 and 103, and its explanations name
/// only those.
#[test]
fn seed_exports_carry_known_items() {
    let data =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/load/seed-autorec"))
            .unwrap();
    let n = u32::from_le_bytes(data[..4].try_into().unwrap()) as usize;
    let (manifest, weights) = data[4..].split_at(n);
    let model = ExportedModel::from_bytes(
        manifest,
        weights,
        Path::new("manifest.json"),
        Path::new("model.safetensors"),
    )
    .unwrap();
    assert!(model.has_known_items());
    let user = Key::Integer(10);
    assert_eq!(model.known_items(&user).unwrap(), keys(&[100, 103]));
    let because = model.explain(&user, &keys(&[101]), 3).unwrap().remove(0);
    assert!(
        because.iter().all(|b| keys(&[100, 103]).contains(&b.item)),
        "{because:?}"
    );
}
