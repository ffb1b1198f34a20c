//! String keys end to end, trained: a shop whose customers are `C-000123` and whose products are
//! `SKU-00042` trains, exports and decides in those keys, and never shows an internal integer.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

mod common;

use common::{csv, ember, ok};

const USERS: u64 = 150;
const ITEMS: u64 = 60;

/// Taste groups over 150 customers and 60 products, written once with integer keys and once
/// with `C-…`/`SKU-…` keys (fixed width, so that the strings sort as the integers do).
fn write_shop(cwd: &Path) {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut integers = String::from("user,item,timestamp\n");
    let mut strings = integers.clone();
    for user in 0..USERS {
        let group = user % 3;
        let mut items = Vec::new();
        while items.len() < 12 {
            let item = if next() % 4 == 0 {
                next() % ITEMS
            } else {
                group * 20 + (next() % 20) * (next() % 20) / 19
            };
            if !items.contains(&item) {
                items.push(item);
            }
        }
        for (t, item) in items.iter().enumerate() {
            integers.push_str(&format!("{user},{item},{}\n", 1000 + t));
            strings.push_str(&format!("C-{user:06},SKU-{item:05},{}\n", 1000 + t));
        }
    }
    fs::write(cwd.join("integers.csv"), integers).unwrap();
    fs::write(cwd.join("strings.csv"), strings).unwrap();
}

fn config(name: &str, file: &str) -> String {
    format!(
        r#"
name = "{name}"
seed = 3
[data]
format = "delimited"
path = "{file}"
user = "user"
item = "item"
timestamp = "timestamp"
[split]
kind = "leave_one_out"
[model]
kind = "gmf"
factors = 8
[train]
epochs = 3
batch_size = 128
learning_rate = 0.01
[eval]
ks = [10]
monitor = "HR@10"
protocol = {{ kind = "sampled", negatives = 30 }}
"#
    )
}

fn train_and_export(cwd: &Path, name: &str, file: &str) -> serde_json::Value {
    let config = format!("{name}.toml");
    fs::write(cwd.join(&config), self::config(name, file)).unwrap();
    common::train_and_export(cwd, &config, name, &format!("models/{name}"));
    let metrics = fs::read_to_string(cwd.join(format!("runs/{name}/metrics.json"))).unwrap();
    serde_json::from_str(&metrics).unwrap()
}

fn is_customer(key: &str) -> bool {
    key.len() == 8 && key.starts_with("C-") && key[2..].bytes().all(|b| b.is_ascii_digit())
}

fn is_product(key: &str) -> bool {
    key.len() == 9 && key.starts_with("SKU-") && key[4..].bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn a_shop_with_string_keys_trains_and_decides_in_its_own_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_shop(cwd);
    // The same data under string keys that sort as the integers do trains the same model.
    let by_integer = train_and_export(cwd, "numbers", "integers.csv");
    let by_string = train_and_export(cwd, "codes", "strings.csv");
    assert_eq!(by_integer["test"], by_string["test"]);
    let ids: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("runs/codes/id_maps.json")).unwrap())
            .unwrap();
    assert_eq!(ids["users"][0], "C-000000");
    assert_eq!(ids["items"][59], "SKU-00059");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("models/codes/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["item_ids"][5], "SKU-00005");

    // Recommendations for two customers named by key, in keys.
    fs::write(cwd.join("customers.csv"), "user\nC-000004\nC-000010\n").unwrap();
    ok(ember(
        &[
            "recommend",
            "--model",
            "models/codes",
            "--users",
            "customers.csv",
            "--k",
            "3",
            "--out",
            "recs.csv",
            "--no-progress",
        ],
        cwd,
    ));
    let recs = csv(&cwd.join("recs.csv"));
    assert_eq!(recs.len(), 6);
    let users: HashSet<&str> = recs.iter().map(|r| r["user"].as_str()).collect();
    assert_eq!(users, HashSet::from(["C-000004", "C-000010"]));
    assert!(recs.iter().all(|r| is_product(&r["item"])), "{recs:?}");

    // A campaign for one product, backtested on the run's held-out interactions.
    ok(ember(
        &[
            "campaign",
            "--model",
            "models/codes",
            "--item",
            "SKU-00005",
            "--budget",
            "40",
            "--control",
            "0.25",
            "--run",
            "runs/codes",
            "--out",
            "campaign",
            "--no-progress",
        ],
        cwd,
    ));
    let audience = csv(&cwd.join("campaign/audience.csv"));
    assert_eq!(audience.len(), 40);
    assert!(audience.iter().all(|r| is_customer(&r["customer"])));

    // Segments and next best actions, whose action lists name products by key.
    ok(ember(
        &[
            "segments",
            "--model",
            "models/codes",
            "--k",
            "3",
            "--out",
            "segments",
            "--no-progress",
        ],
        cwd,
    ));
    let assigned = csv(&cwd.join("segments/assignments.csv"));
    assert_eq!(assigned.len() as u64, USERS);
    assert!(assigned.iter().all(|r| is_customer(&r["customer"])));
    fs::write(
        cwd.join("actions.csv"),
        "id,items,value\nfirst,SKU-00001;SKU-00002,10\nthird,SKU-00041;SKU-00042,10\n",
    )
    .unwrap();
    ok(ember(
        &[
            "nba",
            "--model",
            "models/codes",
            "--actions",
            "actions.csv",
            "--today",
            "2026-12-01",
            "--out",
            "nba.csv",
            "--no-progress",
        ],
        cwd,
    ));
    let actions = csv(&cwd.join("nba.csv"));
    assert!(!actions.is_empty());
    assert!(actions.iter().all(|r| is_customer(&r["customer"])));

    // The report's tables speak the keys.
    ok(ember(
        &[
            "report",
            "runs/codes",
            "--campaign",
            "campaign",
            "--segments",
            "segments",
            "--out",
            "report.html",
        ],
        cwd,
    ));
    let html = fs::read_to_string(cwd.join("report.html")).unwrap();
    assert!(html.contains("SKU-00005"), "the campaign's product by key");
}
