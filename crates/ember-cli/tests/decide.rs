//! End-to-end tests of the decision commands (`recommend`, `campaign`, `campaign measure`,
//! `segments`, `nba`, `report`) on a model trained and exported by the `ember` binary.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{csv, ember, ember_bounded, ok, refused, train_and_export};

fn fails(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure: {err}");
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    err
}

fn is_png(path: &Path) -> bool {
    fs::read(path)
        .map(|bytes| bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
        .unwrap_or(false)
}

const USERS: u64 = 150;
const ITEMS: u64 = 60;
const PER_USER: u64 = 12;

/// Interactions with taste groups (users of group g prefer items of group g) and popular items,
/// so that a model has something to learn; returns each user's items in time order.
fn write_data(path: &Path) -> HashMap<u64, Vec<u64>> {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut histories = HashMap::new();
    let mut text = String::from("user,item,timestamp\n");
    for user in 0..USERS {
        let group = user % 3;
        let mut items = Vec::new();
        while (items.len() as u64) < PER_USER {
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
            text.push_str(&format!("{user},{item},{}\n", 1000 + t));
        }
        histories.insert(user, items);
    }
    fs::write(path, text).unwrap();
    histories
}

const CONFIG: &str = r#"
name = "shop"
seed = 3
[data]
format = "delimited"
path = "interactions.csv"
separator = ","
header = true
user = "user"
item = "item"
timestamp = "timestamp"
[split]
kind = "leave_one_out"
[model]
kind = "gmf"
factors = 8
[train]
epochs = 4
batch_size = 128
learning_rate = 0.01
[eval]
ks = [10]
monitor = "HR@10"
protocol = { kind = "sampled", negatives = 30 }
"#;

#[test]
fn decisions_from_an_exported_model() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let histories = write_data(&cwd.join("interactions.csv"));
    fs::write(cwd.join("shop.toml"), CONFIG).unwrap();
    train_and_export(cwd, "shop.toml", "shop", "models/shop");
    // Leave-one-out holds out each user's last two items; everything before is known.
    let known = |user: u64| -> HashSet<u64> {
        let items = &histories[&user];
        items[..items.len() - 2].iter().copied().collect()
    };

    // Batch recommendations leave out what each customer has, and the suppressed item.
    fs::write(cwd.join("suppress.csv"), "item\n0\n20\n").unwrap();
    ok(ember(
        &[
            "recommend",
            "--model",
            "models/shop",
            "--k",
            "5",
            "--suppress",
            "suppress.csv",
            "--out",
            "recs.csv",
            "--no-progress",
        ],
        cwd,
    ));
    let recs = csv(&cwd.join("recs.csv"));
    assert_eq!(recs.len() as u64, USERS * 5, "5 rows for every customer");
    for row in &recs {
        let user: u64 = row["user"].parse().unwrap();
        let item: u64 = row["item"].parse().unwrap();
        assert!(
            !known(user).contains(&item),
            "user {user} already has {item}"
        );
        assert!(
            item != 0 && item != 20,
            "suppressed item {item} recommended"
        );
    }
    let err = fails(ember(
        &["recommend", "--model", "models/shop", "--out", "recs.txt"],
        cwd,
    ));
    assert!(err.contains("name a .csv or a .parquet file"), "{err}");

    // A campaign for item 5: an audience of 60 who do not have it, a fifth of it held out.
    let item = 5u64;
    let out = ok(ember(
        &[
            "campaign",
            "--model",
            "models/shop",
            "--item",
            "5",
            "--budget",
            "60",
            "--control",
            "0.2",
            "--run",
            "runs/shop",
            "--out",
            "campaign",
            "--no-progress",
        ],
        cwd,
    ));
    assert!(out.contains("lift"), "{out}");
    let audience = csv(&cwd.join("campaign/audience.csv"));
    assert_eq!(audience.len(), 60);
    let control: Vec<_> = audience
        .iter()
        .filter(|r| r["group"] == "control")
        .collect();
    assert_eq!(control.len(), 12, "a fifth of 60 held out");
    for row in &audience {
        let user: u64 = row["customer"].parse().unwrap();
        assert!(
            !known(user).contains(&item),
            "user {user} already has item {item}"
        );
    }
    let scores: Vec<f64> = audience
        .iter()
        .map(|r| r["score"].parse().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "ranked by score");
    assert!(is_png(&cwd.join("campaign/gains.png")));
    assert!(is_png(&cwd.join("campaign/lift.png")));

    // The field test: every target converted, no control did.
    let mut outcomes = String::from("customer,converted\n");
    for row in &audience {
        let converted = u8::from(row["group"] == "target");
        outcomes.push_str(&format!("{},{converted}\n", row["customer"]));
    }
    fs::write(cwd.join("outcomes.csv"), outcomes).unwrap();
    let out = ok(ember(
        &[
            "campaign",
            "measure",
            "--audience",
            "campaign/audience.csv",
            "--outcomes",
            "outcomes.csv",
        ],
        cwd,
    ));
    assert!(
        out.contains("100.00%") && out.contains("0.00%") && out.contains("p = 0.0000"),
        "{out}"
    );
    // No values were given: no value column, no value added. A customer reported twice is
    // said. With --out, the measurement is kept for the report.
    assert!(!out.contains("value"), "{out}");
    let first = &audience[0]["customer"];
    let twice = format!(
        "{}{first},{}\n",
        fs::read_to_string(cwd.join("outcomes.csv")).unwrap(),
        u8::from(audience[0]["group"] == "target")
    );
    fs::write(cwd.join("outcomes.csv"), twice).unwrap();
    let measure = |out_dir: &str| {
        let args = [
            "campaign",
            "measure",
            "--audience",
            "campaign/audience.csv",
            "--outcomes",
            "outcomes.csv",
            "--out",
            out_dir,
        ];
        ember(&args, cwd)
    };
    let out = ok(measure("measured"));
    assert!(
        out.contains(
            "(1 customers have several outcome rows: each counts once, converted if a row says so)"
        ),
        "{out}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("measured/measure.json")).unwrap())
            .unwrap();
    assert_eq!(summary["groups"][0]["group"], "target");
    assert_eq!(summary["groups"][0]["rate"], 1.0);
    assert_eq!(summary["groups"][1]["conversions"], 0);
    assert!(summary["groups"][0]["value"].is_null() && summary["incremental_value"].is_null());
    assert_eq!(summary["repeated_customers"], 1);
    assert!(
        summary["verdict"]
            .as_str()
            .unwrap()
            .starts_with("Verdict: the campaign worked.")
    );
    assert!(is_png(&cwd.join("measured/rates.png")));
    // The directory is not replaced.
    let err = fails(measure("measured"));
    assert!(err.contains("already exists"), "{err}");
    // The report carries the field test.
    ok(ember(
        &[
            "report",
            "runs/shop",
            "--measure",
            "measured",
            "--out",
            "measured.html",
        ],
        cwd,
    ));
    let html = fs::read_to_string(cwd.join("measured.html")).unwrap();
    assert!(html.contains("<h2>Field test: what the campaign did</h2>"));
    assert!(html.contains("Verdict: the campaign worked."));

    // Segments: k chosen from a range, every customer assigned once.
    ok(ember(
        &[
            "segments",
            "--model",
            "models/shop",
            "--k-range",
            "2..4",
            "--out",
            "segments",
            "--no-progress",
        ],
        cwd,
    ));
    assert!(is_png(&cwd.join("segments/map.png")));
    let assigned = csv(&cwd.join("segments/assignments.csv"));
    let customers: HashSet<&String> = assigned.iter().map(|r| &r["customer"]).collect();
    assert_eq!(customers.len() as u64, USERS);
    assert_eq!(assigned.len() as u64, USERS);

    // Next best action: one action per taste group, each customer gets a best action.
    fs::write(
        cwd.join("actions.csv"),
        "id,items,value\nfirst,1;2;3,10\nsecond,21;22;23,10\nthird,41;42;43,10\n",
    )
    .unwrap();
    ok(ember(
        &[
            "nba",
            "--model",
            "models/shop",
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
    let best: Vec<_> = csv(&cwd.join("nba.csv"))
        .into_iter()
        .filter(|r| r["rank"] == "1")
        .collect();
    assert_eq!(best.len() as u64, USERS);

    // The report holds the charts inline: one file to send.
    ok(ember(
        &[
            "report",
            "runs/shop",
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
    assert!(
        html.matches("data:image/png;base64,").count() >= 4,
        "charts inline"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network fetches"
    );
    open_in_chromium(&cwd.join("report.html"), &html);
}

/// Opens the report in headless Chromium: no console error, every image decoded, and a
/// screenshot taken. Without Chromium it says so and passes, unless CI requires it.
fn open_in_chromium(path: &Path, html: &str) {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
    else {
        let reason = "headless Chromium not found: the report was not opened in a browser";
        assert!(
            std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
            "{reason}; EMBER_REQUIRE_TEST_INPUTS is set"
        );
        eprintln!("skipped: {reason}");
        return;
    };
    // A copy that writes, once loaded, how many images decoded into its title.
    let checked = path.with_file_name("report-checked.html");
    let probe = "<script>window.addEventListener('load', () => { const images = \
                 [...document.images]; const bad = images.filter(i => !(i.complete && \
                 i.naturalWidth > 0)).length; document.title = 'images ' + images.length + \
                 ' broken ' + bad; });</script>";
    assert!(html.contains("</body>"));
    fs::write(
        &checked,
        html.replacen("</body>", &format!("{probe}</body>"), 1),
    )
    .unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ];
    let dom = Command::new(chromium)
        .args(common)
        .arg("--dump-dom")
        .arg(format!("file://{}", checked.display()))
        .output()
        .unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {log}");
    let title = dom_text
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or("");
    assert!(
        title.ends_with(" broken 0"),
        "images not all decoded: {title:?}"
    );
    let images: usize = title
        .strip_prefix("images ")
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(images >= 4, "{title:?}");
    for line in log.lines() {
        assert!(
            !(line.contains(":CONSOLE") || line.contains("Uncaught")),
            "console message: {line}"
        );
    }
    let shot = path.with_file_name("report.png");
    let out = Command::new(chromium)
        .args(common)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,2400")
        .arg(format!("file://{}", path.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_png(&shot), "a screenshot of the report");
}

/// Trains the shop data as run `name` (with `seed`) and exports it to `models/<name>`.
fn trained_and_exported(cwd: &Path, name: &str, seed: u64) {
    let config = CONFIG
        .replace("name = \"shop\"", &format!("name = \"{name}\""))
        .replace("seed = 3", &format!("seed = {seed}"));
    fs::write(cwd.join(format!("{name}.toml")), config).unwrap();
    ok(ember(
        &[
            "train",
            "--config",
            &format!("{name}.toml"),
            "--no-progress",
        ],
        cwd,
    ));
    ok(ember(
        &[
            "export",
            "--run",
            &format!("runs/{name}"),
            "--out",
            &format!("models/{name}"),
            "--no-check",
        ],
        cwd,
    ));
}

/// The one output rule (`crates/ember-decide/src/destination.rs`), through every command that
/// writes a file: an input is never overwritten, even with `--force`; nothing is written into
/// a run or model directory; an existing file needs `--force`; the extension names the format.
#[test]
fn outputs_never_overwrite_inputs_or_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_data(&cwd.join("interactions.csv"));
    trained_and_exported(cwd, "shop", 3);
    let data_before = fs::read(cwd.join("interactions.csv")).unwrap();
    let metrics_before = fs::read(cwd.join("runs/shop/metrics.json")).unwrap();
    fs::write(cwd.join("customers.csv"), "user\n1\n2\n").unwrap();
    let actions = "id,items,value\nfirst,1;2;3,10\nsecond,21;22;23,10\n";
    fs::write(cwd.join("a.csv"), actions).unwrap();

    // `recommend --out` naming its own input (the customer list), with and without --force.
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec![
            "recommend",
            "--model",
            "models/shop",
            "--users",
            "customers.csv",
            "--out",
            "customers.csv",
        ];
        args.extend(force);
        let err = fails(ember(&args, cwd));
        assert!(
            err.contains("--out customers.csv: this is one of the command's inputs"),
            "{err}"
        );
    }
    assert_eq!(
        fs::read_to_string(cwd.join("customers.csv")).unwrap(),
        "user\n1\n2\n"
    );
    // `nba --actions a.csv --out a.csv`.
    let err = fails(ember(
        &[
            "nba",
            "--model",
            "models/shop",
            "--actions",
            "a.csv",
            "--out",
            "a.csv",
            "--force",
        ],
        cwd,
    ));
    assert!(
        err.contains("--out a.csv: this is one of the command's inputs"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(cwd.join("a.csv")).unwrap(), actions);
    // `report runs/R --out runs/R/metrics.json`: the format first, then the run directory.
    let err = fails(ember(
        &[
            "report",
            "runs/shop",
            "--out",
            "runs/shop/metrics.json",
            "--force",
        ],
        cwd,
    ));
    assert!(
        err.contains(
            "--out runs/shop/metrics.json: this command writes HTML: name a .html or .htm file"
        ),
        "{err}"
    );
    let err = fails(ember(
        &[
            "report",
            "runs/shop",
            "--out",
            "runs/shop/report.html",
            "--force",
        ],
        cwd,
    ));
    assert!(
        err.contains("this lies inside the input directory runs/shop"),
        "{err}"
    );
    // The training data, a file the command does not read, inside no run: a CSV output
    // needs --force, and a model directory is refused even with it.
    let err = fails(ember(
        &[
            "recommend",
            "--model",
            "models/shop",
            "--out",
            "interactions.csv",
        ],
        cwd,
    ));
    assert!(
        err.contains("--out interactions.csv: already exists; choose a new name, or give --force to replace it"),
        "{err}"
    );
    assert_eq!(fs::read(cwd.join("interactions.csv")).unwrap(), data_before);
    let err = fails(ember(
        &[
            "recommend",
            "--model",
            "models/shop",
            "--out",
            "models/shop/recs.csv",
            "--force",
        ],
        cwd,
    ));
    assert!(
        err.contains("this lies inside the input directory models/shop"),
        "{err}"
    );
    fs::create_dir_all(cwd.join("other")).unwrap();
    let err = fails(ember(
        &[
            "nba",
            "--model",
            "models/shop",
            "--actions",
            "a.csv",
            "--out",
            "runs/shop/nba.csv",
        ],
        cwd,
    ));
    assert!(
        err.contains("is a training run directory (written by `ember train` alone)"),
        "{err}"
    );
    // Directory outputs: an existing one is refused, --force or not.
    let err = fails(ember(
        &[
            "segments",
            "--model",
            "models/shop",
            "--k",
            "2",
            "--out",
            "other",
        ],
        cwd,
    ));
    assert!(
        err.contains("--out other: already exists; choose a new directory"),
        "{err}"
    );
    let err = fails(ember(
        &["export", "--run", "runs/shop", "--out", "runs/shop/model"],
        cwd,
    ));
    assert!(
        err.contains("this lies inside the input directory runs/shop"),
        "{err}"
    );
    assert_eq!(
        fs::read(cwd.join("runs/shop/metrics.json")).unwrap(),
        metrics_before
    );
    // With --force an earlier output is replaced, whole.
    let recommend = |force: bool| {
        let mut args = vec![
            "recommend",
            "--model",
            "models/shop",
            "--k",
            "2",
            "--out",
            "recs.csv",
        ];
        if force {
            args.push("--force");
        }
        ember(&args, cwd)
    };
    ok(recommend(false));
    fs::write(cwd.join("recs.csv"), "stale").unwrap();
    fails(recommend(false));
    assert_eq!(fs::read_to_string(cwd.join("recs.csv")).unwrap(), "stale");
    ok(recommend(true));
    assert_eq!(csv(&cwd.join("recs.csv")).len() as u64, USERS * 2);
    // Nothing half-written is left beside the outputs.
    let leftovers: Vec<_> = fs::read_dir(cwd)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Artefacts that belong together are proven to: a campaign scored against another run's
/// test split, a report mixing one run with another model's campaign or segments, conflicting
/// outcome rows, NaN amounts and a cap of 0 are refused by name; an empty hold-out says so.
#[test]
fn artefacts_of_another_run_and_bad_amounts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_data(&cwd.join("interactions.csv"));
    trained_and_exported(cwd, "shop", 3);
    trained_and_exported(cwd, "other", 4);
    let campaign = |model: &str, run: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "campaign",
            "--model",
            model,
            "--item",
            "5",
            "--budget",
            "30",
            "--run",
            run,
            "--out",
            out,
            "--no-progress",
        ];
        args.extend(extra);
        ember(&args, cwd)
    };
    let err = fails(campaign("models/shop", "runs/other", "c1", &[]));
    assert!(
        err.contains(
            "--run runs/other: this is not the run the model models/shop was exported from"
        ),
        "{err}"
    );
    assert!(!cwd.join("c1").exists());
    ok(campaign("models/other", "runs/other", "c-other", &[]));
    ok(ember(
        &[
            "segments",
            "--model",
            "models/other",
            "--k",
            "2",
            "--out",
            "s-other",
            "--no-progress",
        ],
        cwd,
    ));
    for (flag, dir) in [("--campaign", "c-other"), ("--segments", "s-other")] {
        let err = fails(ember(
            &["report", "runs/shop", flag, dir, "--out", "r.html"],
            cwd,
        ));
        assert!(
            err.contains(&format!(
                "{flag} {dir}: made with the model models/other, exported from another run"
            )),
            "{err}"
        );
    }
    assert!(!cwd.join("r.html").exists());
    ok(ember(
        &[
            "report",
            "runs/other",
            "--campaign",
            "c-other",
            "--segments",
            "s-other",
            "--out",
            "r.html",
        ],
        cwd,
    ));
    // Amounts that are not numbers.
    for (flag, value) in [("--value", "NaN"), ("--cost", "NaN"), ("--value", "-1")] {
        let given = format!("{flag}={value}");
        let err = fails(campaign("models/shop", "runs/shop", "c2", &[&given]));
        assert!(
            err.contains(&format!("{flag} must be a finite amount of 0 or more")),
            "{err}"
        );
    }
    // Conflicting outcome rows of one customer.
    let audience = csv(&cwd.join("c-other/audience.csv"));
    let first = &audience[0]["customer"];
    let mut outcomes = format!("customer,converted\n{first},1\n");
    for row in &audience[1..] {
        outcomes.push_str(&format!("{},0\n", row["customer"]));
    }
    outcomes.push_str(&format!("{first},0\n"));
    fs::write(cwd.join("outcomes.csv"), &outcomes).unwrap();
    let err = fails(ember(
        &[
            "campaign",
            "measure",
            "--audience",
            "c-other/audience.csv",
            "--outcomes",
            "outcomes.csv",
        ],
        cwd,
    ));
    let line = audience.len() + 2;
    assert!(
        err.contains(&format!(
            "outcomes.csv:{line}: column `converted`: customer {first} is not converted here but converted at line 2"
        )),
        "{err}"
    );
    // An action that could never be offered.
    fs::write(
        cwd.join("capped.csv"),
        "id,items,value,cap\nfirst,1;2,10,0\n",
    )
    .unwrap();
    let err = fails(ember(
        &[
            "nba",
            "--model",
            "models/shop",
            "--actions",
            "capped.csv",
            "--out",
            "n.csv",
        ],
        cwd,
    ));
    assert!(
        err.contains("capped.csv:2: column `cap`: 0 contacts would never offer the action"),
        "{err}"
    );
    // A hold-out without a single conversion of the item: said in words, never "inf×".
    fs::write(cwd.join("holdout.csv"), "customer,item\n1,7\n2,8\n").unwrap();
    let out = ok(ember(
        &[
            "campaign",
            "--model",
            "models/shop",
            "--item",
            "5",
            "--budget",
            "30",
            "--holdout",
            "holdout.csv",
            "--out",
            "c3",
            "--no-progress",
        ],
        cwd,
    ));
    assert!(
        out.contains("no held-out conversions: nobody eligible took the item"),
        "{out}"
    );
    assert!(!out.contains("inf"), "{out}");
}

/// Users of [`write_rated`] and its catalogue.
const RATED_USERS: usize = 40;
const RATED_ITEMS: usize = 15;
/// Day 10,000 (1997-05-19) of the first interaction of every user.
const FIRST_DAY: i64 = 10_000;

/// User `u`'s items rated 5, at days 10,000 to 10,005: `(u + 2j) mod 15`, j < 6.
fn liked(u: usize) -> Vec<usize> {
    (0..6).map(|j| (u + 2 * j) % RATED_ITEMS).collect()
}

/// User `u`'s one item rated 1, the latest, at day 10,010: `(u + 1) mod 15`, none of the liked.
fn disliked(u: usize) -> usize {
    (u + 1) % RATED_ITEMS
}

/// Rated interactions with Unix-second timestamps (noon of each day).
fn write_rated(path: &Path) {
    let mut text = String::from("user,item,rating,timestamp\n");
    for u in 0..RATED_USERS {
        for (j, item) in liked(u).into_iter().enumerate() {
            let t = (FIRST_DAY + j as i64) * 86_400 + 43_200;
            text.push_str(&format!("{u},{item},5,{t}\n"));
        }
        let t = (FIRST_DAY + 10) * 86_400 + 43_200;
        text.push_str(&format!("{u},{},1,{t}\n", disliked(u)));
    }
    fs::write(path, text).unwrap();
}

const RATED_CONFIG: &str = r#"
name = "rated"
seed = 3
[data]
format = "delimited"
path = "rated.csv"
user = "user"
item = "item"
rating = "rating"
timestamp = "timestamp"
[preprocess]
implicit_threshold = 4
[split]
kind = "leave_one_out"
[model]
kind = "gmf"
factors = 4
[train]
epochs = 2
batch_size = 64
[eval]
ks = [5]
monitor = "HR@5"
protocol = { kind = "sampled", negatives = 5 }
"#;

/// Each customer's recommended items in `path`.
fn recommended(path: &Path) -> HashMap<usize, HashSet<usize>> {
    let mut out: HashMap<usize, HashSet<usize>> = HashMap::new();
    for row in csv(path) {
        out.entry(row["user"].parse().unwrap())
            .or_default()
            .insert(row["item"].parse().unwrap());
    }
    out
}

#[test]
fn known_items_are_every_rated_item_and_their_exclusion_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_rated(&cwd.join("rated.csv"));
    fs::write(cwd.join("rated.toml"), RATED_CONFIG).unwrap();
    train_and_export(cwd, "rated.toml", "rated", "m");
    let k = RATED_ITEMS.to_string();
    let recommend = |policy: &[&str], out: &str| {
        let mut args = vec!["recommend", "--model", "m", "--k", &k, "--out", out];
        args.extend_from_slice(policy);
        ok(ember(&args, cwd))
    };

    // Every item the customer rated, 1 included, is left out by default: 15 − 7 left.
    let out = recommend(&[], "all.csv");
    assert!(out.contains("excluded: all known interactions\n"), "{out}");
    for (u, items) in recommended(&cwd.join("all.csv")) {
        let mut expected: HashSet<usize> = (0..RATED_ITEMS).collect();
        for i in liked(u).into_iter().chain([disliked(u)]) {
            expected.remove(&i);
        }
        assert_eq!(items, expected, "user {u}");
    }
    // none: the whole catalogue, the disliked item included (and so with --include-known).
    for (policy, file) in [
        (&["--exclude-known", "none"][..], "none.csv"),
        (&["--include-known"][..], "include.csv"),
    ] {
        let out = recommend(policy, file);
        assert!(out.contains("excluded: none\n"), "{out}");
        let recs = recommended(&cwd.join(file));
        assert_eq!(recs.len(), RATED_USERS);
        assert!(recs.values().all(|items| items.len() == RATED_ITEMS));
    }
    // since 1997-05-22 (day 10,003): the liked items of days 10,003–10,005 and the disliked
    // one (10,010) are left out; those of days 10,000–10,002 come back.
    let out = recommend(&["--exclude-known", "since:1997-05-22"], "since.csv");
    assert!(
        out.contains("excluded: known interactions since 1997-05-22\n"),
        "{out}"
    );
    for (u, items) in recommended(&cwd.join("since.csv")) {
        let liked = liked(u);
        let mut expected: HashSet<usize> = (0..RATED_ITEMS).collect();
        for i in liked[3..].iter().copied().chain([disliked(u)]) {
            expected.remove(&i);
        }
        assert_eq!(items, expected, "user {u}");
    }

    // A campaign for item 3 leaves out everyone who rated it, however low.
    let has_3 = |u: &usize| liked(*u).contains(&3) || disliked(*u) == 3;
    let campaign = |policy: &str, out: &str| {
        ok(ember(
            &[
                "campaign",
                "--model",
                "m",
                "--item",
                "3",
                "--budget",
                "100",
                "--exclude-known",
                policy,
                "--out",
                out,
                "--no-progress",
            ],
            cwd,
        ))
    };
    let out = campaign("all", "c-all");
    assert!(out.contains("excluded: all known interactions\n"), "{out}");
    let audience: HashSet<usize> = csv(&cwd.join("c-all/audience.csv"))
        .iter()
        .map(|r| r["customer"].parse().unwrap())
        .collect();
    let without: HashSet<usize> = (0..RATED_USERS).filter(|u| !has_3(u)).collect();
    assert!(without.len() < RATED_USERS && (0..RATED_USERS).any(|u| disliked(u) == 3));
    assert_eq!(audience, without);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("c-all/campaign.json")).unwrap())
            .unwrap();
    assert_eq!(summary["excluded"], "all known interactions");
    assert_eq!(summary["eligible"], without.len());
    campaign("none", "c-none");
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("c-none/campaign.json")).unwrap())
            .unwrap();
    assert_eq!(summary["excluded"], "none");
    assert_eq!(summary["eligible"], RATED_USERS);

    // Next best action for item 1, which customer 0 rated 1: not offered under all, offered
    // under none.
    fs::write(cwd.join("actions.csv"), "id,items,value\npromote,1,10\n").unwrap();
    let nba = |policy: &str, out: &str| {
        let args = [
            "nba",
            "--model",
            "m",
            "--actions",
            "actions.csv",
            "--today",
            "1998-01-01",
            "--exclude-known",
            policy,
            "--out",
            out,
            "--no-progress",
        ];
        let stdout = ok(ember(&args, cwd));
        let offered: HashSet<String> = csv(&cwd.join(out))
            .iter()
            .map(|r| r["customer"].clone())
            .collect();
        (stdout, offered)
    };
    assert_eq!(disliked(0), 1);
    let (stdout, offered) = nba("all", "nba-all.csv");
    assert!(
        stdout.contains("excluded: all known interactions\n"),
        "{stdout}"
    );
    assert!(!offered.contains("0"));
    let (stdout, offered) = nba("none", "nba-none.csv");
    assert!(stdout.contains("excluded: none\n"), "{stdout}");
    assert!(offered.contains("0") && offered.len() == RATED_USERS);

    // Bad policies: the value and what to write instead.
    let err = fails(ember(
        &[
            "recommend",
            "--model",
            "m",
            "--exclude-known",
            "sometimes",
            "--out",
            "x.csv",
        ],
        cwd,
    ));
    assert_eq!(
        err.trim_end(),
        "error: --exclude-known: `sometimes` is not an exclusion policy: use all, none or since:YYYY-MM-DD"
    );
    let err = fails(ember(
        &[
            "campaign",
            "--model",
            "m",
            "--item",
            "3",
            "--budget",
            "5",
            "--exclude-known",
            "since:1997-02-30",
            "--out",
            "bad",
        ],
        cwd,
    ));
    assert_eq!(
        err.trim_end(),
        "error: --exclude-known: `since:1997-02-30`: `1997-02-30` is not a date; write since:YYYY-MM-DD"
    );
    assert!(!cwd.join("x.csv").exists() && !cwd.join("bad").exists());
}

/// An export changed after `ember export` is refused by every command that loads it: a flipped
/// mantissa bit in the weights, and a manifest whose user ids were reversed (which once gave
/// every customer another customer's recommendations).
#[test]
fn edited_exports_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_data(&cwd.join("interactions.csv"));
    trained_and_exported(cwd, "shop", 3);
    let copy = |name: &str| {
        let to = cwd.join("models").join(name);
        fs::create_dir_all(&to).unwrap();
        for file in ["manifest.json", "model.safetensors"] {
            fs::copy(cwd.join("models/shop").join(file), to.join(file)).unwrap();
        }
        to
    };
    let flipped = copy("flipped");
    let mut weights = fs::read(flipped.join("model.safetensors")).unwrap();
    let last = weights.len() - 1; // a byte of the last tensor's data
    weights[last] ^= 1;
    fs::write(flipped.join("model.safetensors"), weights).unwrap();
    let reversed = copy("reversed");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(reversed.join("manifest.json")).unwrap()).unwrap();
    manifest["user_ids"].as_array_mut().unwrap().reverse();
    fs::write(reversed.join("manifest.json"), manifest.to_string()).unwrap();
    for command in [
        &["recommend", "--k", "3", "--out", "r.csv"][..],
        &["segments", "--k", "2", "--out", "s"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--model", "models/flipped"]);
        let err = fails(ember(&args, cwd));
        assert!(
            err.contains("models/flipped/model.safetensors: the checksum of model.safetensors does not match the manifest"),
            "{err}"
        );
        let mut args = command.to_vec();
        args.extend(["--model", "models/reversed"]);
        let err = fails(ember(&args, cwd));
        assert!(
            err.contains("user_ids are not in the order of the run's id maps"),
            "{err}"
        );
    }
    assert!(!cwd.join("r.csv").exists() && !cwd.join("s").exists());
}

#[test]
fn endless_and_oversized_decision_inputs_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    fs::write(
        cwd.join("audience.csv"),
        "customer,group\n1,target\n2,control\n",
    )
    .unwrap();
    let measure = |outcomes: &str, env: &[(&str, &str)]| {
        let args = [
            "campaign",
            "measure",
            "--audience",
            "audience.csv",
            "--outcomes",
            outcomes,
        ];
        ember_bounded(&args, cwd, env)
    };
    let Some(out) = measure("/dev/zero", &[]) else {
        return;
    };
    let err = refused(&out);
    assert!(
        err.contains("/dev/zero:1: a NUL byte: this is not a text file (expected lines of text)"),
        "{err}"
    );
    let note = "x".repeat(2 << 20);
    fs::write(
        cwd.join("outcomes.csv"),
        format!("customer,converted\n1,1\n2,0{note}\n"),
    )
    .unwrap();
    let err = refused(&measure("outcomes.csv", &[]).unwrap());
    assert!(
        err.contains(
            "outcomes.csv:3: a line longer than 1048576 bytes (the limit is \
             EMBER_MAX_LINE_BYTES): is this a text file?"
        ),
        "{err}"
    );
    // The audience's lines (14 bytes at most) and the outcomes' header (18) fit in 20.
    let err = refused(&measure("outcomes.csv", &[("EMBER_MAX_LINE_BYTES", "20")]).unwrap());
    assert!(
        err.contains(
            "outcomes.csv:3: a line longer than 20 bytes (the limit is EMBER_MAX_LINE_BYTES)"
        ),
        "{err}"
    );
    let err = refused(&measure("outcomes.csv", &[("EMBER_MAX_LINE_BYTES", "1M")]).unwrap());
    assert!(
        err.contains(
            "EMBER_MAX_LINE_BYTES = `1M`: expected a positive number of bytes, e.g. 4194304"
        ),
        "{err}"
    );
    // Raised, the limit lets the line through, and its value is refused for what it is.
    let raised = [("EMBER_MAX_LINE_BYTES", "4194304")];
    let err = refused(&measure("outcomes.csv", &raised).unwrap());
    assert!(err.contains("outcomes.csv:3: column `converted`"), "{err}");
    // A k range is capped before the model is even read.
    let args = [
        "segments",
        "--model",
        "none",
        "--k-range",
        "2..2000",
        "--out",
        "seg",
    ];
    let err = refused(&ember_bounded(&args, cwd, &[]).unwrap());
    assert!(
        err.contains(
            "--k-range `2..2000` holds 1999 values of k: at most 50 (each k is a k-means fit \
             with restarts) and k ≤ 1000, e.g. 2..12"
        ),
        "{err}"
    );
}

#[test]
fn a_model_refuses_endless_customer_lists_and_segments_of_one_customer() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_data(&cwd.join("interactions.csv"));
    fs::write(
        cwd.join("shop.toml"),
        CONFIG.replace("epochs = 4", "epochs = 1"),
    )
    .unwrap();
    train_and_export(cwd, "shop.toml", "shop", "models/shop");
    let args = [
        "recommend",
        "--model",
        "models/shop",
        "--users",
        "/dev/zero",
        "--out",
        "recs.csv",
    ];
    let Some(out) = ember_bounded(&args, cwd, &[]) else {
        return;
    };
    let err = refused(&out);
    assert!(
        err.contains("/dev/zero:1: a NUL byte: this is not a text file (expected lines of text)"),
        "{err}"
    );
    assert!(!cwd.join("recs.csv").exists());
    // 150 customers: at most 75 segments, by --k or by --k-range.
    for (flag, value) in [("--k", "76"), ("--k-range", "60..80")] {
        let args = [
            "segments",
            "--model",
            "models/shop",
            flag,
            value,
            "--out",
            "seg",
        ];
        let err = refused(&ember_bounded(&args, cwd, &[]).unwrap());
        let shown = if flag == "--k" {
            format!("--k {value}")
        } else {
            format!("--k-range `{value}`")
        };
        assert!(
            err.contains(&format!(
                "{shown}: k may be at most half the customers (150 customers: k ≤ 75), so that \
                 a segment holds 2 customers on average"
            )),
            "{err}"
        );
        assert!(!cwd.join("seg").exists());
    }
}

/// A backtest: `campaign --run` on a time-split run. [`write_rated`]'s users like items on days
/// 10,000–10,005 and rate one item low on day 10,010; cut at day 10,005 (1997-05-24) with a
/// 2-day window, each user's test item is their last liked one, `(u + 10) mod 15`. For item 3
/// the converters are users 8, 23 and 38; those who had it before the cutoff, the users with
/// `u mod 15` in {1, 3, 10, 12, 14} (12 of 40), are not scored; users 2, 17 and 32, who rated
/// it low only after the cutoff, did not have it then, so they are: 28 eligible.
#[test]
fn a_campaign_on_a_time_split_run_scores_who_took_the_item_after_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_rated(&cwd.join("rated.csv"));
    let config = RATED_CONFIG.replace(
        "kind = \"leave_one_out\"",
        "kind = \"time\"\ncutoff = \"1997-05-24\"\nvalid_days = 2",
    );
    fs::write(cwd.join("rated.toml"), config).unwrap();
    let out = train_and_export(cwd, "rated.toml", "rated", "m");
    assert!(out.contains("(40 users)"), "{out}");
    let args = [
        "campaign",
        "--model",
        "m",
        "--item",
        "3",
        "--budget",
        "10",
        "--run",
        "runs/rated",
        "--out",
        "c",
        "--no-progress",
    ];
    let out = ok(ember(&args, cwd));
    assert!(
        out.contains("3 of the 28 eligible customers converted"),
        "{out}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("c/campaign.json")).unwrap()).unwrap();
    assert_eq!(summary["evaluation"]["eligible"], 28);
    assert_eq!(summary["evaluation"]["converters"], 3);
    // The audience is drawn from the same 28: the export knows what was had at the cutoff.
    assert!(
        out.contains("campaign for item 3: 10 customers of the 28 who do not have it"),
        "{out}"
    );
    assert_eq!(summary["eligible"], 28);
}

/// The export of a time-split run stands at the cutoff (1997-05-24, day 10,005): each user's
/// known items are the liked ones of days 10,000–10,004 ([`liked`]`(u)[..5]`); the last liked
/// one (day 10,005, the test item) and the disliked one (day 10,010) came after, and are what a
/// backtest predicts, so recommendations may hold them. Under full ranking the labels say
/// what is masked: what each user had before the validation window (1997-05-22) for
/// validation, before the cutoff for test.
#[test]
fn a_time_split_export_knows_what_came_before_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_rated(&cwd.join("rated.csv"));
    let config = RATED_CONFIG
        .replace(
            "kind = \"leave_one_out\"",
            "kind = \"time\"\ncutoff = \"1997-05-24\"\nvalid_days = 2",
        )
        .replace(
            "protocol = { kind = \"sampled\", negatives = 5 }",
            "protocol = { kind = \"full_ranking\" }",
        );
    fs::write(cwd.join("rated.toml"), config).unwrap();
    train_and_export(cwd, "rated.toml", "rated", "m");
    let metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cwd.join("runs/rated/metrics.json")).unwrap())
            .unwrap();
    let masked = "full ranking over all items, each user's items from before";
    assert_eq!(
        metrics["test"]["protocol"],
        format!("{masked} the cutoff (1997-05-24T00:00:00Z) masked")
    );
    assert_eq!(
        metrics["validation"]["protocol"],
        format!("{masked} the validation window (1997-05-22T00:00:00Z) masked")
    );
    let k = RATED_ITEMS.to_string();
    let recommend = |policy: &[&str], out: &str| {
        let mut args = vec!["recommend", "--model", "m", "--k", &k, "--out", out];
        args.extend_from_slice(policy);
        ok(ember(&args, cwd));
        recommended(&cwd.join(out))
    };
    let all: HashSet<usize> = (0..RATED_ITEMS).collect();
    let recs = recommend(&[], "all.csv");
    assert_eq!(recs.len(), RATED_USERS);
    for (u, items) in recs {
        let had: HashSet<usize> = liked(u)[..5].iter().copied().collect();
        assert_eq!(items, &all - &had, "user {u}");
    }
    // since 1997-05-21 (day 10,002): the liked items of days 10,002-10,004, as last had
    // before the cutoff.
    for (u, items) in recommend(&["--exclude-known", "since:1997-05-21"], "since.csv") {
        let had: HashSet<usize> = liked(u)[2..5].iter().copied().collect();
        assert_eq!(items, &all - &had, "user {u}");
    }
}

/// A campaign is a proposal: `send-list` writes the target customers only once as many
/// distinct people as the campaign needs approved its audience as it stands. A second approval
/// by the same person does not count; an audience edited after its approval must be approved
/// again.
#[test]
fn a_send_list_needs_approvals_of_the_audience_as_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    write_data(&cwd.join("interactions.csv"));
    trained_and_exported(cwd, "shop", 3);
    let campaign = [
        "campaign",
        "--model",
        "models/shop",
        "--item",
        "3",
        "--budget",
        "40",
        "--approvals-needed",
        "2",
        "--out",
        "proposal",
        "--no-progress",
    ];
    ok(ember(&campaign, cwd));
    let send = |out: &str| ember(&["campaign", "send-list", "proposal", "--out", out], cwd);
    let approve = |by: &str| ember(&["campaign", "approve", "proposal", "--by", by], cwd);
    assert_eq!(
        refused(&send("crm.csv")).trim_end(),
        "error: proposal: the audience has 0 of the 2 approvals it needs (`ember campaign \
         approve proposal --by NAME`)"
    );
    let said = ok(approve("ann@example.com"));
    assert!(
        said.contains("1 of the 2 approvals the campaign needs"),
        "{said}"
    );
    let err = refused(&approve("ann@example.com"));
    assert!(
        err.contains("ann@example.com already approved this audience"),
        "{err}"
    );
    assert!(refused(&send("crm.csv")).contains("has 1 of the 2 approvals"));
    // The audience is edited after Ann approved it: her approval no longer counts.
    let audience = cwd.join("proposal/audience.csv");
    let text = fs::read_to_string(&audience).unwrap();
    let trimmed: Vec<&str> = text.lines().take(text.lines().count() - 1).collect();
    fs::write(&audience, trimmed.join("\n") + "\n").unwrap();
    ok(approve("bob@example.com"));
    let err = refused(&send("crm.csv"));
    assert!(
        err.contains(
            "has 1 of the 2 approvals it needs; 1 earlier approval(s) were of another \
                      audience: audience.csv changed since"
        ),
        "{err}"
    );
    assert!(!cwd.join("crm.csv").exists());
    ok(approve("ann@example.com"));
    let said = ok(send("crm.csv"));
    assert!(
        said.contains("approved by ann@example.com, bob@example.com"),
        "{said}"
    );
    let targets: Vec<String> = csv(&audience)
        .into_iter()
        .filter(|r| r["group"] == "target")
        .map(|r| r["customer"].clone())
        .collect();
    let sent: Vec<String> = csv(&cwd.join("crm.csv"))
        .into_iter()
        .map(|r| r["customer"].clone())
        .collect();
    assert_eq!(sent, targets);
    // Three lines, appended in order.
    let records = fs::read_to_string(cwd.join("proposal/approvals.jsonl")).unwrap();
    let by: Vec<String> = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["by"].to_string())
        .collect();
    assert_eq!(
        by,
        [
            "\"ann@example.com\"",
            "\"bob@example.com\"",
            "\"ann@example.com\""
        ]
    );
    // The report says so.
    ok(ember(
        &[
            "report",
            "runs/shop",
            "--campaign",
            "proposal",
            "--out",
            "r.html",
        ],
        cwd,
    ));
    let html = fs::read_to_string(cwd.join("r.html")).unwrap();
    assert!(
        html.contains(
            "Approved for sending by ann@example.com, bob@example.com (2 of 2 needed) (earlier \
             approvals were of an audience since changed)."
        ),
        "approval state in the report"
    );
    // The summary leads, in plain words.
    let start = html.find("<h2>In short</h2>").unwrap();
    let summary = &html[start..html.find("<h2>The data</h2>").unwrap()];
    assert!(
        summary.contains("recommending the best sellers to everyone"),
        "{summary}"
    );
    assert!(summary.contains("send to the "), "{summary}");
    assert!(
        summary.contains("Approved for sending by ann@example.com"),
        "{summary}"
    );
    assert!(
        !summary.contains("ember ") && !summary.contains("--"),
        "{summary}"
    );
}
