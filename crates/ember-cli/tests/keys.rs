//! String keys on the decision side: an export whose users and items are strings (written with
//! ember-infer's writer, so no training is needed) answers `recommend`, `campaign`, `segments`,
//! `nba` and `ember serve` with the keys exactly as written (`000123` stays `000123`, never 123
//! nor an internal index); a key of the wrong kind is refused clearly; and serve's JSON carries
//! integer keys beyond ±2^53 as strings.

use std::fs;
use std::path::Path;
use std::process::Output;

use ember_infer::{FactorsSpec, Keys, Manifest, ModelSpec, Precision, TensorF32};
use polars::prelude::{DataType, ParquetReader, SerReader};
use serde_json::{Value, json};

mod common;

use common::{ember, ok, post, serve};

/// The error of a run that must fail cleanly: exit 1, `error: …`, no panic.
fn fails(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {err}");
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    err
}

/// Users in byte order, as a manifest lists them; user `u`'s first factor is `USER_VALUES[u]`.
const USERS: [&str; 6] = [
    "000123", "C-000123", "C-000200", "C-000301", "C-000400", "C-000555",
];
const USER_VALUES: [f32; 6] = [1.0, 2.0, 3.0, -1.0, -2.0, 0.5];
/// Items in byte order (`,` sorts before `-`); item `i`'s first factor is `ITEM_VALUES[i]`, so
/// user `u`'s score for item `i` is `USER_VALUES[u] × ITEM_VALUES[i]`.
const ITEMS: [&str; 5] = ["000123", "SKU,9", "SKU-00042", "SKU-00100", "SKU-00200"];
const ITEM_VALUES: [f32; 5] = [0.5, 2.0, 1.0, 3.0, -1.0];

/// Writes an MF export over `users` and `items` to `dir/name`; user 1 has item 2. A second
/// factor, 0 for every item, leaves the scores as said and spreads the segments' map.
fn write_mf(dir: &Path, name: &str, users: Keys, items: Keys) {
    let manifest = Manifest::new(
        ModelSpec::Mf(FactorsSpec { factors: 2 }),
        Precision::F32,
        users,
        items,
    );
    let tensors = [
        TensorF32 {
            name: "users.weight".into(),
            shape: vec![USERS.len(), 2],
            data: USER_VALUES
                .iter()
                .enumerate()
                .flat_map(|(u, &v)| [v, 0.1 * u as f32])
                .collect(),
        },
        TensorF32 {
            name: "items.weight".into(),
            shape: vec![ITEMS.len(), 2],
            data: ITEM_VALUES.iter().flat_map(|&v| [v, 0.0]).collect(),
        },
    ];
    let mut known = vec![Vec::new(); USERS.len()];
    known[1] = vec![2];
    ember_infer::write_model(&dir.join(name), &manifest, &tensors, &known).unwrap();
}

/// The string-keyed export, `models/strings`.
fn write_strings(dir: &Path) {
    let strings = |keys: &[&str]| Keys::Strings(keys.iter().map(|k| k.to_string()).collect());
    write_mf(dir, "models/strings", strings(&USERS), strings(&ITEMS));
}

/// The integer-keyed export, `models/integers`: users 10…14 and 2^53 + 1, items 100…104.
fn write_integers(dir: &Path) {
    let mut users: Vec<i64> = (10..15).collect();
    users.push((1 << 53) + 1);
    write_mf(
        dir,
        "models/integers",
        Keys::Integers(users),
        Keys::Integers((100..105).collect()),
    );
}

#[test]
fn recommend_writes_string_keys_as_written_in_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_strings(cwd);
    fs::write(cwd.join("users.csv"), "user\n000123\nC-000123\n").unwrap();
    fs::write(cwd.join("suppress.csv"), "item\nSKU-00100\n").unwrap();
    let args = |out: &'static str| {
        [
            "recommend",
            "--model",
            "models/strings",
            "--users",
            "users.csv",
            "--suppress",
            "suppress.csv",
            "--k",
            "2",
            "--out",
            out,
            "--no-progress",
        ]
    };
    ok(ember(&args("recs.csv"), cwd));
    // 000123 (×1): SKU,9 = 2, SKU-00042 = 1; C-000123 (×2) has SKU-00042: SKU,9 = 4,
    // 000123 = 1. SKU-00100 (3, 6) is suppressed; a key with a comma is quoted.
    assert_eq!(
        fs::read_to_string(cwd.join("recs.csv")).unwrap(),
        "user,rank,item,score\n\
         000123,1,\"SKU,9\",2\n\
         000123,2,SKU-00042,1\n\
         C-000123,1,\"SKU,9\",4\n\
         C-000123,2,000123,1\n"
    );
    ok(ember(&args("recs.parquet"), cwd));
    let file = fs::File::open(cwd.join("recs.parquet")).unwrap();
    let frame = ParquetReader::new(file).finish().unwrap();
    let strings = |name: &str| -> Vec<String> {
        let column = frame.column(name).unwrap();
        assert_eq!(column.dtype(), &DataType::String, "{name}");
        let keys = column.str().unwrap();
        (0..keys.len())
            .map(|k| keys.get(k).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        strings("user"),
        ["000123", "000123", "C-000123", "C-000123"]
    );
    assert_eq!(strings("item"), ["SKU,9", "SKU-00042", "SKU,9", "000123"]);
}

#[test]
fn campaign_segments_and_nba_speak_string_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_strings(cwd);
    // Item 000123 (×0.5): C-000200 1.5, C-000123 1, 000123 0.5, C-000555 0.25, …
    fs::write(cwd.join("holdout.csv"), "customer,item\nC-000123,000123\n").unwrap();
    ok(ember(
        &[
            "campaign",
            "--model",
            "models/strings",
            "--item",
            "000123",
            "--budget",
            "3",
            "--control",
            "0",
            "--holdout",
            "holdout.csv",
            "--out",
            "campaign",
            "--no-progress",
        ],
        cwd,
    ));
    assert_eq!(
        fs::read_to_string(cwd.join("campaign/audience.csv")).unwrap(),
        "customer,score,rank,group\n\
         C-000200,1.5,1,target\n\
         C-000123,1,2,target\n\
         000123,0.5,3,target\n"
    );
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("campaign/campaign.json")).unwrap())
            .unwrap();
    assert_eq!(summary["item"], "000123");
    assert_eq!(summary["evaluation"]["converters"], 1);

    ok(ember(
        &[
            "segments",
            "--model",
            "models/strings",
            "--k",
            "2",
            "--out",
            "segments",
            "--no-progress",
        ],
        cwd,
    ));
    let assignments = fs::read_to_string(cwd.join("segments/assignments.csv")).unwrap();
    let customers: Vec<&str> = assignments
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(customers, USERS);
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("segments/segments.json")).unwrap())
            .unwrap();
    // C-000123 is the only customer with an item: SKU-00042, as a string.
    let held: Vec<&Value> = summary["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["top_items"].as_array().unwrap())
        .map(|pair| &pair[0])
        .collect();
    assert_eq!(held, [&json!("SKU-00042")]);

    // promo: SKU,9 σ(2) against SKU-00200 σ(−1) for 000123; other: 000123 σ(0.5).
    fs::write(
        cwd.join("actions.csv"),
        "id,items,value\npromo,\"SKU,9;SKU-00200\",10\nother,000123,1\n",
    )
    .unwrap();
    fs::write(
        cwd.join("contacts.csv"),
        "customer,action,day\nC-000123,promo,2026-11-30\n",
    )
    .unwrap();
    fs::write(cwd.join("users.csv"), "user\n000123\n").unwrap();
    ok(ember(
        &[
            "nba",
            "--model",
            "models/strings",
            "--actions",
            "actions.csv",
            "--contacts",
            "contacts.csv",
            "--users",
            "users.csv",
            "--today",
            "2026-12-01",
            "--out",
            "nba.csv",
            "--no-progress",
        ],
        cwd,
    ));
    let nba = fs::read_to_string(cwd.join("nba.csv")).unwrap();
    let rows: Vec<&str> = nba.lines().collect();
    assert_eq!(rows.len(), 3, "{nba}");
    assert!(rows[1].starts_with("000123,1,promo,\"SKU,9\",10,"), "{nba}");
    assert!(rows[2].starts_with("000123,2,other,000123,1,"), "{nba}");
}

#[test]
fn campaign_measure_reads_keys_of_the_audiences_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    // String keys: the outcome of `123` is not one of `000123`.
    fs::write(
        cwd.join("audience.csv"),
        "customer,group\n000123,target\nC-1,target\nC-2,control\nC-3,control\n",
    )
    .unwrap();
    fs::write(
        cwd.join("outcomes.csv"),
        "customer,converted\n123,1\nC-2,1\n000123,1\n",
    )
    .unwrap();
    let measure = |audience: &str| {
        ember(
            &[
                "campaign",
                "measure",
                "--audience",
                audience,
                "--outcomes",
                "outcomes.csv",
            ],
            cwd,
        )
    };
    let out = ok(measure("audience.csv"));
    assert!(out.contains("1 outcome rows were of customers"), "{out}");
    // Integer keys: `000123` is customer 123.
    fs::write(
        cwd.join("integers.csv"),
        "customer,group\n123,target\n5,target\n6,control\n7,control\n",
    )
    .unwrap();
    fs::write(
        cwd.join("outcomes.csv"),
        "customer,converted\n000123,1\n6,1\n",
    )
    .unwrap();
    let out = ok(measure("integers.csv"));
    assert!(out.contains("0 outcome rows were of customers"), "{out}");
    for group in ["target", "control"] {
        let row = format!("{group:<10} {:>10} {:>12}", 2, 1);
        assert!(out.contains(&row), "{row:?}: {out}");
    }
    // Outcomes that are not keys of the audience's kind.
    fs::write(cwd.join("outcomes.csv"), "customer,converted\nC-9,1\n").unwrap();
    let err = fails(measure("integers.csv"));
    assert!(
        err.contains(
            "outcomes.csv:2: column `customer`: `C-9` is not an integer key: the model's \
             customers have integer keys"
        ),
        "{err}"
    );
}

#[test]
fn keys_of_the_wrong_kind_are_refused_naming_file_line_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_integers(cwd);
    fs::write(cwd.join("users.csv"), "user\n10\nC-17\n").unwrap();
    let err = fails(ember(
        &[
            "recommend",
            "--model",
            "models/integers",
            "--users",
            "users.csv",
            "--out",
            "recs.csv",
        ],
        cwd,
    ));
    assert!(
        err.contains(
            "users.csv:3: column `user`: `C-17` is not an integer key: the model's users have \
             integer keys"
        ),
        "{err}"
    );
    assert!(!cwd.join("recs.csv").exists());
    let err = fails(ember(
        &[
            "campaign",
            "--model",
            "models/integers",
            "--item",
            "SKU-1",
            "--budget",
            "2",
            "--out",
            "campaign",
        ],
        cwd,
    ));
    assert!(
        err.contains("--item SKU-1: not an integer key: the model's items have integer keys"),
        "{err}"
    );
    fs::write(cwd.join("actions.csv"), "id,items,value\na,100,1\n").unwrap();
    fs::write(cwd.join("contacts.csv"), "customer,action,day\nC-17,a,5\n").unwrap();
    let err = fails(ember(
        &[
            "nba",
            "--model",
            "models/integers",
            "--actions",
            "actions.csv",
            "--contacts",
            "contacts.csv",
            "--out",
            "nba.csv",
        ],
        cwd,
    ));
    assert!(
        err.contains(
            "contacts.csv:2: column `customer`: `C-17` is not an integer key: the model's \
             customers have integer keys"
        ),
        "{err}"
    );
    // The same integers read by a string-keyed model are strings it does not know.
    write_strings(cwd);
    fs::write(cwd.join("users.csv"), "user\n123\n").unwrap();
    let err = fails(ember(
        &[
            "recommend",
            "--model",
            "models/strings",
            "--users",
            "users.csv",
            "--out",
            "recs.csv",
        ],
        cwd,
    ));
    assert!(
        err.contains("users.csv: user 123 (data row 1) is not a customer of the model"),
        "{err}"
    );
}

#[test]
fn serve_takes_and_gives_keys_of_the_models_kind() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_strings(cwd);
    fs::write(
        cwd.join("actions.csv"),
        "id,items,value\npromo,\"SKU,9;SKU-00200\",10\n",
    )
    .unwrap();
    let (mut child, addr) = serve(cwd, "models/strings", &["--actions", "actions.csv"]);
    let (status, reply) = post(
        &addr,
        "/v1/recommend",
        r#"{"user": "000123", "k": 2, "exclude": ["SKU-00100"]}"#,
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["user"], "000123");
    let ids: Vec<Value> = reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!("SKU,9"), json!("SKU-00042")]);
    let (status, reply) = post(&addr, "/v1/audience", r#"{"item": "000123", "k": 2}"#);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["item"], "000123");
    assert_eq!(reply["users"][0]["id"], "C-000200");
    assert_eq!(reply["users"][1]["id"], "C-000123");
    let (status, reply) = post(
        &addr,
        "/v1/next-best-action",
        r#"{"user": "000123", "today": "2026-12-01"}"#,
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["user"], json!("000123"));
    assert_eq!(reply["best"]["item"], json!("SKU,9"));
    for (request, message) in [
        (
            r#"{"user": 123}"#,
            "`user` must be a string key (a JSON string), got 123: the model's users have \
             string keys",
        ),
        (
            r#"{"user": "000123", "exclude": ["SKU-00100", 7]}"#,
            "`exclude` must be a list of string keys (JSON strings), got 7: the model's items \
             have string keys",
        ),
    ] {
        let (status, reply) = post(&addr, "/v1/recommend", request);
        assert_eq!(status, 400, "{request}: {reply}");
        assert_eq!(reply["error"], message, "{request}");
    }
    let (status, reply) = post(&addr, "/v1/recommend", r#"{"user": "123"}"#);
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["error"], "unknown user id 123");
    child.kill().unwrap();
    child.wait().unwrap();

    // Integer keys: JSON numbers, and strings beyond ±2^53 both ways.
    write_integers(cwd);
    let (mut child, addr) = serve(cwd, "models/integers", &[]);
    let big = "9007199254740993";
    let (status, reply) = post(
        &addr,
        "/v1/recommend",
        &format!(r#"{{"user": "{big}", "k": 1}}"#),
    );
    assert_eq!(status, 200, "{reply}");
    // 2^53 + 1 is user 5 (×0.5): item 103 (3) is the best.
    assert_eq!(reply["user"], json!(big));
    assert_eq!(reply["items"][0]["id"], json!(103));
    let (status, reply) = post(&addr, "/v1/audience", r#"{"item": 100, "k": 6}"#);
    assert_eq!(status, 200, "{reply}");
    let ids: Vec<Value> = reply["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    // Item 100 (×0.5): users 12, 11 (who has item 102, not 100), 10, 2^53 + 1, 13, 14.
    assert_eq!(
        ids,
        [
            json!(12),
            json!(11),
            json!(10),
            json!(big),
            json!(13),
            json!(14)
        ]
    );
    let (status, reply) = post(&addr, "/v1/recommend", r#"{"user": "10"}"#);
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["error"],
        "`user` must be an integer key (a JSON number, or a string of digits beyond ±2^53), \
         got \"10\": the model's users have integer keys"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
