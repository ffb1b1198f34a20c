//! End-to-end tests of the decision commands (`recommend`, `campaign`, `campaign measure`,
//! `segments`, `nba`, `report`) on a model trained and exported by the `ember` binary.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn ember(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("ember runs")
}

fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ember failed: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

/// Rows of a CSV file as maps from header to field (no quoting in these files).
fn csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split(',').map(String::from))
                .collect()
        })
        .collect()
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
    ok(ember(
        &["train", "--config", "shop.toml", "--no-progress"],
        cwd,
    ));
    ok(ember(
        &["export", "--run", "runs/shop", "--out", "models/shop"],
        cwd,
    ));
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

/// The address space a decision command fed an endless or absurd input may take: a regression
/// that reads without bound then fails its test instead of taking the machine down.
const ADDRESS_SPACE: u64 = 4 << 30;

/// Runs ember under `prlimit --as=ADDRESS_SPACE` and a 60-second `timeout` that sends SIGKILL
/// (SIGTERM may be caught), with `env` set and backtraces on; `None` (after saying why) where
/// `prlimit` or `timeout` is missing, a failure when `EMBER_REQUIRE_TEST_INPUTS` is set.
fn ember_bounded(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Option<Output> {
    let found = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if !found("prlimit") || !found("timeout") {
        let reason = "prlimit or timeout not found: the bounded runs cannot be limited";
        assert!(
            std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
            "{reason}; EMBER_REQUIRE_TEST_INPUTS is set"
        );
        eprintln!("skipped: {reason}");
        return None;
    }
    let output = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .args([
            "timeout",
            "--signal=KILL",
            "60",
            env!("CARGO_BIN_EXE_ember"),
        ])
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "1")
        // Each thread reserves address space (a stack, a malloc arena): two of each pool keep
        // the limit's meaning the same on a machine of any size.
        .env("RAYON_NUM_THREADS", "2")
        .env("POLARS_MAX_THREADS", "2")
        .current_dir(cwd)
        .output()
        .expect("prlimit runs");
    Some(output)
}

/// Checks that a bounded run was refused cleanly (exit 1, one error, no panic, no backtrace)
/// and returns its stderr.
fn refused(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for crash in ["panicked", "backtrace", "memory allocation of"] {
        assert!(!err.contains(crash), "{crash}: {err}");
    }
    err
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
    ok(ember(
        &["train", "--config", "shop.toml", "--no-progress"],
        cwd,
    ));
    ok(ember(
        &["export", "--run", "runs/shop", "--out", "models/shop"],
        cwd,
    ));
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
