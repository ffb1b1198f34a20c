//! Decisions on small exported models: batch recommendations equal per-user queries and never
//! hold suppressed items, audiences leave owners out and hold a seeded control group,
//! segments recover planted clusters, next best action applies its eligibility rules.

use ember_decide::batch::{BatchOptions, recommend_all, recommend_users, write_csv};
use ember_decide::campaign::{
    Arm, AudienceOptions, ConversionValue, EvaluationOptions, HeldOutRow, evaluate_audience,
    evaluate_ranking, read_audience, select_audience,
};
use ember_decide::nba::{
    Action, ContactHistory, Ineligible, ItemCategories, NbaInputs, next_best_action,
    next_best_actions,
};
use ember_decide::propensity::sigmoid;
use ember_decide::segments::{SegmentOptions, segment};
use ember_decide::{DecideError, Destination, ExportedModel, Key, KeyKind, Known, Options};
use ember_infer::{FactorsSpec, Keys, Manifest, ModelSpec, Precision, TensorF32};
use std::collections::HashMap;
use std::path::Path;

/// An MF model over users `10, 11, …` and items `100, 101, …` with the given rows.
fn mf(
    dir: &Path,
    name: &str,
    factors: usize,
    users: &[f32],
    items: &[f32],
    known: &[Vec<u32>],
) -> ExportedModel {
    let (u, i) = (users.len() / factors, items.len() / factors);
    let manifest = Manifest::new(
        ModelSpec::Mf(FactorsSpec { factors }),
        Precision::F32,
        Keys::Integers((0..u as i64).map(|x| 10 + x).collect()),
        Keys::Integers((0..i as i64).map(|x| 100 + x).collect()),
    );
    let tensors = [
        TensorF32 {
            name: "users.weight".into(),
            shape: vec![u, factors],
            data: users.to_vec(),
        },
        TensorF32 {
            name: "items.weight".into(),
            shape: vec![i, factors],
            data: items.to_vec(),
        },
    ];
    let out = dir.join(name);
    ember_infer::write_model(&out, &manifest, &tensors, known).unwrap();
    ExportedModel::load(&out).unwrap()
}

/// An integer key.
fn k(id: i64) -> Key {
    Key::Integer(id)
}

/// Integer keys.
fn keys(ids: &[i64]) -> Vec<Key> {
    ids.iter().map(|&id| Key::Integer(id)).collect()
}

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ember_decide::rng::Rng::new(seed);
    (0..n).map(|_| rng.uniform() as f32 - 0.5).collect()
}

/// 30 users, 12 items, 3 factors; user `u` knows items `u mod 12` and `(5u + 1) mod 12`.
fn random_model(dir: &Path) -> ExportedModel {
    let known: Vec<Vec<u32>> = (0..30u32).map(|u| vec![u % 12, (5 * u + 1) % 12]).collect();
    mf(dir, "random", 3, &random(90, 1), &random(36, 2), &known)
}

#[test]
fn batch_recommendations_equal_recommend_per_user_and_leave_suppressed_items_out() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path());
    let suppress = keys(&[103, 107, 999]);
    let options = BatchOptions {
        k: 5,
        chunk: 7, // not a divisor of 30: the last chunk is short
        suppress: suppress.clone(),
        known: Known::Exclude,
        explain: 2,
    };
    let batch: Vec<_> = recommend_all(&model, options.clone())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batch.len(), 30);
    for answer in &batch {
        let single = model
            .recommend_for(
                &answer.user,
                5,
                &Options {
                    exclude: &suppress,
                    known: Known::Exclude,
                    explain: 2,
                },
            )
            .unwrap();
        assert_eq!(answer.items, single, "user {}", answer.user);
        let known = model.known_items(&answer.user).unwrap();
        for r in &answer.items {
            assert!(!suppress.contains(&r.id) && !known.contains(&r.id));
            assert!(r.because.iter().all(|b| known.contains(&b.item)));
        }
    }
    let path = dir.path().join("recommendations.csv");
    let summary = write_csv(
        recommend_all(&model, options).unwrap(),
        &Destination::fresh(&path),
        true,
        None,
    )
    .unwrap();
    assert_eq!((summary.users, summary.rows), (30, 150));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user,rank,item,score,because"));
    for line in lines {
        let item: i64 = line.split(',').nth(2).unwrap().parse().unwrap();
        assert!(!suppress.contains(&k(item)), "{line}");
    }
    // Listed users, one of them unknown: the stream ends with the model's error, and a file
    // being written is not left behind.
    let listed = recommend_users(&model, keys(&[12, 10, 99]), BatchOptions::default()).unwrap();
    let answers: Vec<_> = listed.collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers[0].as_ref().unwrap_err().to_string(),
        "unknown user id 99"
    );
    let failed = dir.path().join("failed.csv");
    let listed = recommend_users(&model, keys(&[12, 99]), BatchOptions::default()).unwrap();
    assert!(write_csv(listed, &Destination::fresh(&failed), false, None).is_err());
    assert!(!failed.exists());
    let err = recommend_users(
        &model,
        keys(&[10]),
        BatchOptions {
            k: 0,
            ..BatchOptions::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(err.to_string(), "`k` must be at least 1");
}

#[test]
fn audiences_leave_owners_out_and_hold_a_seeded_control_group() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path());
    // Item 101 is known to users u with u mod 12 = 1 or 5u + 1 ≡ 1 (mod 12), i.e. u ≡ 0
    // (mod 12): users 10, 11, 22, 23, 34, 35 (ids 10 + u).
    let owners = keys(&[10, 11, 22, 23, 34, 35]);
    let mut options = AudienceOptions::new(20);
    options.control_share = 0.25;
    options.seed = 5;
    options.explain = 2;
    let audience = select_audience(&model, &k(101), &options).unwrap();
    assert_eq!(audience.eligible, 24);
    assert_eq!(audience.members.len(), 20);
    assert_eq!(
        (audience.count(Arm::Target), audience.count(Arm::Control)),
        (15, 5)
    );
    assert!(
        audience
            .members
            .iter()
            .all(|m| !owners.contains(&m.customer))
    );
    assert!(
        audience
            .members
            .windows(2)
            .all(|w| w[0].score >= w[1].score)
    );
    assert!(
        audience
            .members
            .iter()
            .enumerate()
            .all(|(k, m)| m.rank == k + 1)
    );
    for m in &audience.members {
        let known = model.known_items(&m.customer).unwrap();
        assert!(m.because.iter().all(|b| known.contains(&b.item)));
    }
    // The same seed draws the same control group; another seed another one.
    let control = |a: &ember_decide::campaign::Audience| -> Vec<Key> {
        a.members
            .iter()
            .filter(|m| m.arm == Arm::Control)
            .map(|m| m.customer.clone())
            .collect()
    };
    assert_eq!(
        control(&select_audience(&model, &k(101), &options).unwrap()),
        control(&audience)
    );
    options.seed = 6;
    assert_ne!(
        control(&select_audience(&model, &k(101), &options).unwrap()),
        control(&audience)
    );
    // The file round-trips.
    let path = dir.path().join("audience.csv");
    audience.write_csv(&path).unwrap();
    assert_eq!(
        ember_decide::campaign::audience_key_kind(&path).unwrap(),
        KeyKind::Integer
    );
    let rows = read_audience(&path, KeyKind::Integer).unwrap();
    assert_eq!(rows.len(), 20);
    for (row, m) in rows.iter().zip(&audience.members) {
        assert_eq!((&row.customer, row.arm), (&m.customer, m.arm));
    }
    options.control_share = 1.0;
    let err = select_audience(&model, &k(101), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`control_share` must lie in [0, 1)"), "{err}");
}

#[test]
fn evaluation_ranks_as_the_audience_and_counts_only_eligible_converters() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_model(dir.path());
    let ranking: Vec<Key> = model
        .audience_for(&k(101), 100, &Options::default())
        .unwrap()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    // Converters: the 1st and 4th of the ranking, one owner (10, not eligible), and one row of
    // another item.
    let held_out = [
        HeldOutRow {
            customer: ranking[0].clone(),
            item: k(101),
            value: Some(3.0),
        },
        HeldOutRow {
            customer: ranking[3].clone(),
            item: k(101),
            value: Some(4.0),
        },
        HeldOutRow {
            customer: ranking[3].clone(),
            item: k(101),
            value: Some(1.0),
        },
        HeldOutRow {
            customer: k(10),
            item: k(101),
            value: Some(100.0),
        },
        HeldOutRow {
            customer: ranking[1].clone(),
            item: k(102),
            value: Some(7.0),
        },
    ];
    let mut options = EvaluationOptions::new(2, 10.0);
    let e = evaluate_audience(&model, &k(101), &held_out, &options).unwrap();
    assert_eq!((e.eligible, e.converters), (24, 2));
    assert_eq!(e.at_budget.conversions, 1.0);
    assert!((e.lift - 1.0 / (2.0 * 2.0 / 24.0)).abs() < 1e-12);
    options.value = ConversionValue::Recorded;
    let e = evaluate_audience(&model, &k(101), &held_out, &options).unwrap();
    assert_eq!((e.at_budget.value, e.everyone.value), (3.0, 8.0));
    let values: HashMap<Key, f64> = [(ranking[0].clone(), 3.0), (ranking[3].clone(), 5.0)].into();
    assert_eq!(e, evaluate_ranking(&ranking, &values, 2, 0.0, 100).unwrap());
}

#[test]
fn segments_recover_planted_clusters_and_profile_their_items() {
    let dir = tempfile::tempdir().unwrap();
    // 45 users in three clusters of user vectors; cluster c knows items 3c and 3c + 1, and
    // everyone knows item 8 (popular, so it names no segment).
    let centres = [[3.0f32, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]];
    let noise = random(135, 9);
    let mut users = Vec::new();
    let mut known = Vec::new();
    for u in 0..45 {
        let c = u % 3;
        users.extend((0..3).map(|j| centres[c][j] + 0.3 * noise[3 * u + j]));
        known.push(vec![3 * c as u32, 3 * c as u32 + 1, 8]);
    }
    let model = mf(dir.path(), "clusters", 3, &users, &random(27, 3), &known);
    let options = SegmentOptions {
        k_max: 6,
        seed: 4,
        ..SegmentOptions::default()
    };
    let s = segment(&model, None, &options).unwrap();
    assert_eq!(s.k, 3, "{:?}", s.silhouettes);
    assert_eq!(s.silhouettes.len(), 5);
    let mut cluster_of_segment = HashMap::new();
    for (u, a) in s.assignments.iter().enumerate() {
        assert_eq!(a.customer, k(10 + u as i64));
        assert_eq!(*cluster_of_segment.entry(a.segment).or_insert(u % 3), u % 3);
        assert!(a.outlier.is_finite() && a.x.is_finite() && a.y.is_finite());
    }
    for seg in &s.segments {
        assert_eq!(seg.size, 15);
        let c = cluster_of_segment[&seg.id] as i64;
        let items: Vec<Key> = seg.top_items.iter().map(|i| i.item.clone()).collect();
        assert_eq!(items, keys(&[100 + 3 * c, 101 + 3 * c, 108]));
        assert!(
            seg.top_items[..2]
                .iter()
                .all(|i| i.share == 1.0 && i.penetration == 1.0)
        );
        // Held by a third of everyone, item 108 is in every segment: it names none.
        assert_eq!(seg.top_items[2].share, 1.0 / 3.0);
        let distinctive: Vec<Key> = seg.distinctive.iter().map(|i| i.item.clone()).collect();
        assert_eq!(distinctive, keys(&[100 + 3 * c, 101 + 3 * c]));
        assert_eq!(seg.label(), format!("{} · {}", 100 + 3 * c, 101 + 3 * c));
    }
    // The same seed, the same answer.
    assert_eq!(segment(&model, None, &options).unwrap(), s);
    let path = dir.path().join("segments.csv");
    s.write_assignments_csv(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 46);
}

/// One factor: user 10 is `[1]`, item `i` is `[v_i]`, so the score is `v_i` and the
/// propensity `σ(v_i)`.
fn nba_model(dir: &Path) -> ExportedModel {
    // Items 100..=105: 100 = 2, 101 = 1, 102 = 0.5, 103 = 3, 104 = −1, 105 = 0.
    let items = [2.0, 1.0, 0.5, 3.0, -1.0, 0.0];
    // User 10 has item 105 (category "camera") and 104; user 11 has nothing.
    mf(dir, "nba", 1, &[1.0, 1.0], &items, &[vec![5, 4], vec![]])
}

fn action(id: &str, items: &[i64], value: f64) -> Action {
    Action {
        id: id.into(),
        items: keys(items),
        value,
        categories: Vec::new(),
        cap: None,
        cooldown_days: None,
    }
}

#[test]
fn next_best_action_applies_its_eligibility_rules() {
    let dir = tempfile::tempdir().unwrap();
    let model = nba_model(dir.path());
    let mut lens = action("lens", &[103], 10.0);
    lens.categories = vec!["camera".into()];
    let mut capped = action("capped", &[100], 100.0);
    capped.cap = Some(2);
    let mut cooling = action("cooling", &[100], 90.0);
    cooling.cooldown_days = Some(30);
    let actions = vec![
        action("owned", &[104, 105], 1_000.0), // user 10 has both
        capped,
        cooling,
        lens,
        action("bundle", &[104, 101], 8.0), // user 10 has 104: 101 is the open item
        action("cheap", &[102], 1.0),
    ];
    let categories = ItemCategories([(k(105), vec!["camera".to_string()])].into());
    let mut contacts = ContactHistory::default();
    contacts.add(k(10), "capped", 100);
    contacts.add(k(10), "capped", 150);
    contacts.add(k(10), "cooling", 190); // 10 days before today
    contacts.add(k(11), "cooling", 100); // 100 days before today
    let inputs = NbaInputs {
        actions: &actions,
        categories: &categories,
        contacts: &contacts,
        today: 200,
        explain: 2,
        known: Known::Exclude,
    };
    let d = next_best_action(&model, k(10), &inputs).unwrap();
    assert_eq!(
        d.ineligible,
        [
            ("owned".to_string(), Ineligible::OwnsItems),
            ("capped".to_string(), Ineligible::Cap { contacts: 2 }),
            ("cooling".to_string(), Ineligible::CoolDown { days_ago: 10 }),
        ]
    );
    // lens: 10 σ(3) = 9.526; bundle: 8 σ(1) = 5.848; cheap: σ(0.5) = 0.622.
    let best = d.best.unwrap();
    assert_eq!((best.action.as_str(), &best.item), ("lens", &k(103)));
    assert!((best.propensity - sigmoid(3.0)).abs() < 1e-6);
    assert!((best.score - 10.0 * sigmoid(3.0)).abs() < 1e-6 && best.eligibility == 1.0);
    // Because of the customer's own items only.
    assert!(
        best.because
            .iter()
            .all(|b| keys(&[104, 105]).contains(&b.item))
    );
    let runner_up = d.runner_up.unwrap();
    assert_eq!(
        (runner_up.action.as_str(), &runner_up.item),
        ("bundle", &k(101))
    );
    assert!((runner_up.score - 8.0 * sigmoid(1.0)).abs() < 1e-6);
    // User 11: no camera, so no lens; never contacted with capped; cooling's contact is old.
    let d = next_best_action(&model, k(11), &inputs).unwrap();
    assert_eq!(d.ineligible, [("lens".to_string(), Ineligible::Category)]);
    // owned: 1000 σ(0) = 500 (item 105), above capped: 100 σ(2) = 88.1.
    assert_eq!(d.best.unwrap().action, "owned");
    assert_eq!(d.runner_up.unwrap().action, "capped");
    // Actions promoting an item the model does not know are refused up front.
    let unknown = vec![action("x", &[999], 1.0)];
    let inputs = NbaInputs {
        actions: &unknown,
        ..inputs
    };
    let err = next_best_actions(&model, keys(&[10]), &inputs)
        .err()
        .unwrap();
    assert!(matches!(err, DecideError::Invalid(_)));
    assert_eq!(
        err.to_string(),
        "action `x` promotes item 999, which the model does not know"
    );
}

/// An MF model over string keys: customers `C-000123`, `C-000200`, `000123` and items
/// `SKU-00042`, `SKU-00100`, `000123` (sorted by bytes, as the manifest requires), with one
/// factor: customer scores are `[1, 2, -1]`-scaled item values `[3, 1, 2]`.
fn string_model(dir: &Path) -> ExportedModel {
    string_model_with(dir, None)
}

/// [`string_model`] with the `attributes` extension `attributes`.
fn string_model_with(dir: &Path, attributes: Option<serde_json::Value>) -> ExportedModel {
    let mut manifest = Manifest::new(
        ModelSpec::Mf(FactorsSpec { factors: 1 }),
        Precision::F32,
        Keys::Strings(vec!["000123".into(), "C-000123".into(), "C-000200".into()]),
        Keys::Strings(vec![
            "000123".into(),
            "SKU-00042".into(),
            "SKU-00100".into(),
        ]),
    );
    let tensors = [
        TensorF32 {
            name: "users.weight".into(),
            shape: vec![3, 1],
            data: vec![-1.0, 1.0, 2.0],
        },
        TensorF32 {
            name: "items.weight".into(),
            shape: vec![3, 1],
            data: vec![2.0, 3.0, 1.0],
        },
    ];
    if let Some(attributes) = attributes {
        manifest.extensions.insert("attributes".into(), attributes);
    }
    let out = dir.join("strings");
    // C-000123 already has SKU-00042.
    ember_infer::write_model(&out, &manifest, &tensors, &[vec![], vec![1], vec![]]).unwrap();
    ExportedModel::load(&out).unwrap()
}

/// String keys come out as written, `000123` included (never the number 123, never an internal
/// index), and the readers read keys of the model's kind.
#[test]
fn string_keys_come_out_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = string_model(dir.path());
    assert_eq!(
        (model.user_key_kind(), model.item_key_kind()),
        (KeyKind::String, KeyKind::String)
    );
    // Scores: C-000123 = item values; C-000200 = twice; 000123 = negated.
    let path = dir.path().join("recommendations.csv");
    let options = BatchOptions {
        k: 2,
        suppress: vec![Key::from("SKU-00100")],
        ..BatchOptions::default()
    };
    write_csv(
        recommend_all(&model, options).unwrap(),
        &Destination::fresh(&path),
        false,
        None,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "user,rank,item,score\n\
         000123,1,000123,-2\n\
         000123,2,SKU-00042,-3\n\
         C-000123,1,000123,2\n\
         C-000200,1,SKU-00042,6\n\
         C-000200,2,000123,4\n"
    );
    // Customers and items read as strings, `000123` staying one.
    let customers = dir.path().join("customers.csv");
    std::fs::write(&customers, "user\nC-000200\n000123\n").unwrap();
    let read = ember_decide::read_ids(&customers, "user", KeyKind::String).unwrap();
    assert_eq!(read, [Key::from("C-000200"), Key::from("000123")]);
    let audience = select_audience(&model, &Key::from("000123"), &AudienceOptions::new(3)).unwrap();
    let members: Vec<String> = audience
        .members
        .iter()
        .map(|m| m.customer.to_string())
        .collect();
    assert_eq!(members, ["C-000200", "C-000123", "000123"]);
    let audience_csv = dir.path().join("audience.csv");
    audience.write_csv(&audience_csv).unwrap();
    assert_eq!(
        ember_decide::campaign::audience_key_kind(&audience_csv).unwrap(),
        KeyKind::String
    );
}

/// A key of the other kind in an input file is refused naming the file, the line, the key and
/// the kind the model's keys are.
#[test]
fn keys_of_the_wrong_kind_name_file_line_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let customers = dir.path().join("customers.csv");
    std::fs::write(&customers, "user\n17\nC-17\n").unwrap();
    let err = ember_decide::read_ids(&customers, "user", KeyKind::Integer)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}:3: column `user`: `C-17` is not an integer key: the model's users have integer \
             keys",
            customers.display()
        )
    );
    let outcomes = dir.path().join("outcomes.csv");
    std::fs::write(&outcomes, "customer,converted\n1,1\nC-17,0\n").unwrap();
    let err = ember_decide::campaign::read_outcomes(&outcomes, KeyKind::Integer)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "outcomes.csv:3: column `customer`: `C-17` is not an integer key: the model's \
             customers have integer keys"
        ),
        "{err}"
    );
    let actions = dir.path().join("actions.csv");
    std::fs::write(&actions, "id,items,value\na,1;SKU-1,5\n").unwrap();
    let err = ember_decide::nba::read_actions(&actions, KeyKind::Integer)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "actions.csv:2: column `items`: expected item keys separated by `;`: `SKU-1` is not \
             an integer key: the model's items have integer keys"
        ),
        "{err}"
    );
    // A model with string keys takes digits as strings: `000123` is not 123.
    let model = string_model(dir.path());
    assert!(matches!(
        model.user_index(&Key::Integer(123)),
        Err(ember_decide::InferError::KeyKind { .. })
    ));
    assert_eq!(
        model
            .user_index(&Key::Integer(123))
            .unwrap_err()
            .to_string(),
        "user `123` is not a string key: the model's users have string keys"
    );
    assert_eq!(
        model.item_index(&Key::from("123")).unwrap_err().to_string(),
        "unknown item id 123"
    );
}

/// [`string_model`]'s items named (`SKU-00042` without a name) and in categories: `000123`
/// travel, `SKU-00042` none, `SKU-00100` bath and travel.
fn named_model(dir: &Path) -> ExportedModel {
    use ember_infer::{
        AttributeColumn, AttributeSchema, ColumnEncoder, ExportedAttributes, FeatureRows,
        SideAttributes,
    };
    let items = SideAttributes {
        schema: AttributeSchema {
            columns: vec![AttributeColumn {
                name: "category".into(),
                encoder: ColumnEncoder::Multi {
                    separator: "|".into(),
                    vocabulary: vec!["bath".into(), "travel".into()],
                },
            }],
        },
        display: Some(vec![
            Some("Travel kit, 3 pieces".into()),
            None,
            Some("Shampoo 250 ml".into()),
        ]),
        features: Some(FeatureRows {
            offsets: vec![0, 1, 2, 4],
            indices: vec![2, 0, 1, 2],
            values: vec![1.0, 1.0, 0.5, 0.5],
        }),
    };
    let attributes = ExportedAttributes {
        users: None,
        items: Some(items),
    };
    string_model_with(dir, Some(serde_json::to_value(attributes).unwrap()))
}

/// A model whose run named its items writes each item's name next to its key (quoted where
/// CSV needs it, empty where the table had none), and its item attributes give `ember nba`
/// its categories.
#[test]
fn item_names_and_categories_come_from_the_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let model = named_model(dir.path());
    let path = dir.path().join("recommendations.csv");
    let options = BatchOptions {
        k: 2,
        suppress: vec![Key::from("SKU-00100")],
        ..BatchOptions::default()
    };
    write_csv(
        recommend_all(&model, options).unwrap(),
        &Destination::fresh(&path),
        false,
        ember_decide::ItemNames::of(&model),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "user,rank,item,name,score\n\
         000123,1,000123,\"Travel kit, 3 pieces\",-2\n\
         000123,2,SKU-00042,,-3\n\
         C-000123,1,000123,\"Travel kit, 3 pieces\",2\n\
         C-000200,1,SKU-00042,,6\n\
         C-000200,2,000123,\"Travel kit, 3 pieces\",4\n"
    );
    assert!(ember_decide::ItemNames::of(&string_model(&dir.path().join("plain"))).is_none());

    let categories = ember_decide::nba::categories_from_attributes(&model, "category").unwrap();
    let expected: HashMap<Key, Vec<String>> = [
        (Key::from("000123"), vec!["travel".to_string()]),
        (
            Key::from("SKU-00100"),
            vec!["bath".to_string(), "travel".to_string()],
        ),
    ]
    .into();
    assert_eq!(categories, ItemCategories(expected));
    let err = ember_decide::nba::categories_from_attributes(&model, "brand")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "--category-column `brand`: no such item attribute; the items have category"
    );
}
