//! End-to-end tests of the `ember` binary: a real run on tiny data, and one clear error (with a
//! non-zero exit, no panic, and no run directory) for each kind of bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{ember, ember_bounded, http, refused, serve, stderr, train_and_export};

/// Runs ember expecting failure; checks that it failed cleanly and left no run directory.
fn fails(dir: &Path, config: &str) -> String {
    let path = dir.join("config.toml");
    fs::write(&path, config).unwrap();
    let out = ember(
        &["train", "--config", path.to_str().unwrap(), "--no-progress"],
        dir,
    );
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
    assert!(err.contains("error: "), "{err}");
    let runs = dir.join("runs");
    let leftovers: Vec<PathBuf> = if runs.exists() {
        fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    } else {
        vec![]
    };
    assert!(leftovers.is_empty(), "a failed run left {leftovers:?}");
    err
}

const TINY: &str = r#"
name = "tiny"
[data]
format = "synthetic"
[data.synthetic]
users = 60
items = 40
interactions_per_user = 10
[model]
kind = "gmf"
factors = 8
[train]
epochs = 2
[eval]
ks = [5]
monitor = "HR@5"
protocol = { kind = "sampled", negatives = 20 }
"#;

#[test]
fn train_then_eval() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    let out = ember(
        &["train", "--config", "c.toml", "--no-progress"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The log goes to a pipe here: no colour codes in it.
    assert!(
        stderr(&out).contains("INFO") && !stderr(&out).contains('\x1b'),
        "{}",
        stderr(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("HR@5") && stdout.contains("popularity"),
        "{stdout}"
    );
    assert!(
        stdout.contains("vs 20 uniform negatives"),
        "the protocol is named: {stdout}"
    );
    let run = dir.path().join("runs/tiny");
    for f in [
        "config.toml",
        "id_maps.json",
        "data.json",
        "metrics.jsonl",
        "metrics.json",
        "model.bpk",
        "log.txt",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let epochs = fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(epochs.lines().count(), 2);
    // Test metrics broken down by training activity: the groups hold every test user, and
    // their averages weighted by their users give the overall average.
    assert!(
        stdout.contains("test metrics by training activity (NDCG@5, Recall@5)"),
        "{stdout}"
    );
    let metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    for report in [&metrics["test"], &metrics["popularity_test"]] {
        let groups = report["groups"].as_array().unwrap();
        let names: Vec<&str> = groups
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "cold (no training interactions)",
                "1–5 training interactions",
                "6–20 training interactions",
                "21+ training interactions"
            ]
        );
        let users: u64 = groups.iter().map(|g| g["users"].as_u64().unwrap()).sum();
        assert_eq!(users, report["users"].as_u64().unwrap());
        // A group without users has no metrics.
        let value = |metrics: &serde_json::Value| {
            let pairs = metrics.as_array().unwrap();
            let pair = pairs.iter().find(|p| p[0] == "NDCG@5");
            pair.map_or(0.0, |p| p[1].as_f64().unwrap())
        };
        let weighted: f64 = groups
            .iter()
            .map(|g| g["users"].as_f64().unwrap() * value(&g["metrics"]))
            .sum();
        let overall = value(&report["metrics"]) * users as f64;
        assert!((weighted - overall).abs() < 1e-9, "{weighted} vs {overall}");
    }
    let out = ember(
        &["eval", "--run", "runs/tiny", "--protocol", "full"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("full ranking"));
    let out = ember(
        &[
            "export",
            "--run",
            "runs/tiny",
            "--out",
            "models/tiny",
            "--precision",
            "int8",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = fs::read_to_string(dir.path().join("models/tiny/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"precision\": \"int8\"") && manifest.contains("\"kind\": \"gmf\""),
        "{manifest}"
    );
    assert!(dir.path().join("models/tiny/model.safetensors").is_file());
    let out = ember(
        &[
            "export",
            "--run",
            "runs/tiny",
            "--out",
            "models/x",
            "--precision",
            "int4",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "error: invalid value 'int4' for '--precision <PRECISION>'\n  \
             [possible values: f32, f16, int8]"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("models/x").exists());
}

/// The typed options are parsed by clap before anything runs: a bad value names the option
/// and what it takes, and exits 1 like any other bad input.
#[test]
fn typed_options_refuse_unknown_values() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["bench", "train", "--size", "huge"],
            "invalid value 'huge' for '--size <SIZE>'\n  [possible values: probe, ml20m, games]",
        ),
        (
            &["bench", "train", "--embedding-gradient", "sparse"],
            "invalid value 'sparse' for '--embedding-gradient <EMBEDDING_GRADIENT>'\n  \
             [possible values: auto, burn, segmented]",
        ),
        (
            &["bench", "train", "--gradient-exchange", "sparse"],
            "invalid value 'sparse' for '--gradient-exchange <GRADIENT_EXCHANGE>'\n  \
             [possible values: auto, dense]",
        ),
        (
            &["eval", "--run", "runs/none", "--protocol", "top:5"],
            "invalid value 'top:5' for '--protocol <PROTOCOL>': unknown protocol `top:5`: use \
             full, sampled:N, popularity:N or fixed",
        ),
        (
            &["eval", "--run", "runs/none", "--protocol", "sampled:x"],
            "invalid value 'sampled:x' for '--protocol <PROTOCOL>': `x` is not a number of \
             negatives: invalid digit found in string",
        ),
        (
            &["eval", "--run", "runs/none", "--protocol", "popularity:0"],
            "invalid value 'popularity:0' for '--protocol <PROTOCOL>': a sampled protocol needs \
             at least one negative per user, got 0",
        ),
    ];
    for (args, message) in cases {
        let out = ember(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error: {message}")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(dir.path(), &TINY.replace("epochs = 2", "epoch = 2"));
    assert!(
        err.contains("config.toml") && err.contains("did you mean `epochs`?"),
        "{err}"
    );
}

#[test]
fn output_dir_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("runs_file"), "").unwrap();
    let config = TINY.replace(
        "name = \"tiny\"",
        "name = \"tiny\"\noutput_dir = \"runs_file\"",
    );
    let err = fails(dir.path(), &config);
    assert!(
        err.contains(
            "runs_file: this is a file: output_dir (or --output-dir) must name a directory"
        ),
        "{err}"
    );
}

#[test]
fn missing_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = TINY.replace(
        "format = \"synthetic\"\n[data.synthetic]\nusers = 60\nitems = 40\ninteractions_per_user = 10",
        "format = \"movielens100k\"\npath = \"nope.data\"",
    );
    let err = fails(dir.path(), &config);
    assert!(
        err.contains("nope.data: No such file or directory"),
        "{err}"
    );
}

#[test]
fn more_sampled_negatives_than_items() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(
        dir.path(),
        &TINY.replace("negatives = 20", "negatives = 5000"),
    );
    assert!(
        err.contains("asks for 5000 negatives per user, but the catalogue has")
            && err.contains("use fewer than"),
        "{err}"
    );
}

/// `user,item,timestamp` lines: 60 users with 10 items each.
fn small_csv() -> String {
    let mut text = String::from("user,item,timestamp\n");
    for user in 0..60 {
        for k in 0..10 {
            let item = (user * 7 + k * k * 3 + k) % 40;
            text.push_str(&format!("{user},{item},{}\n", 100 + k));
        }
    }
    text
}

#[test]
fn runs_read_their_data_from_anywhere_and_refuse_changed_data() {
    let dir = tempfile::tempdir().unwrap();
    let trained_in = dir.path().join("project");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(trained_in.join("data")).unwrap();
    fs::create_dir_all(elsewhere.join("data")).unwrap();
    fs::write(trained_in.join("data/events.csv"), small_csv()).unwrap();
    let config = TINY.replace(
        "format = \"synthetic\"\n[data.synthetic]\nusers = 60\nitems = 40\ninteractions_per_user = 10",
        "format = \"delimited\"\npath = \"data/events.csv\"\nuser = \"user\"\nitem = \"item\"\ntimestamp = \"timestamp\"",
    );
    assert!(config.contains("data/events.csv"));
    fs::write(trained_in.join("c.toml"), config).unwrap();
    let out = ember(
        &["train", "--config", "c.toml", "--no-progress"],
        &trained_in,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let run = trained_in.join("runs/tiny");
    let inputs = fs::read_to_string(run.join("inputs.json")).unwrap();
    assert!(
        inputs.contains("events.csv") && inputs.contains("fnv1a64:"),
        "{inputs}"
    );
    // From another directory, where a different file sits at the same relative path.
    let mut other = small_csv();
    other.push_str("0,39,200\n1,38,200\n");
    fs::write(elsewhere.join("data/events.csv"), &other).unwrap();
    let run_arg = run.to_str().unwrap();
    let here = ember(&["eval", "--run", run_arg], &trained_in);
    let there = ember(&["eval", "--run", run_arg], &elsewhere);
    assert!(
        here.status.success() && there.status.success(),
        "{}",
        stderr(&there)
    );
    assert_eq!(here.stdout, there.stdout, "the same data, the same metrics");
    // The training file itself changed: eval, export and resume refuse.
    fs::write(trained_in.join("data/events.csv"), &other).unwrap();
    let out = ember(&["eval", "--run", run_arg], &elsewhere);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("events.csv: the data changed since the run was trained (then ")
            && err.contains("restore the file, or train a new run on the new data"),
        "{err}"
    );
    let out = ember(
        &["export", "--run", run_arg, "--out", "models/x"],
        &elsewhere,
    );
    assert!(stderr(&out).contains("the data changed since the run was trained"));
    assert!(!elsewhere.join("models/x").exists(), "nothing exported");
}

#[test]
fn invalid_values_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(dir.path(), &TINY.replace("ks = [5]", "ks = [0]"));
    assert!(err.contains("eval.ks"), "{err}");
    let err = fails(
        dir.path(),
        &TINY.replace("epochs = 2", "epochs = 2\nbatch_size = 0"),
    );
    assert!(err.contains("train.batch_size must be at least 1"), "{err}");
}

#[test]
fn malformed_data_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("u.data"),
        "1\t2\t5\t10\n1\t3\t4\t11\n2\t3\n",
    )
    .unwrap();
    let err = fails(
        dir.path(),
        "[data]\nformat = \"movielens100k\"\npath = \"u.data\"\n",
    );
    assert!(err.contains("u.data:3: expected 4 fields"), "{err}");
}

#[test]
fn bad_csv_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = |name: &str, content: &str| fs::write(dir.path().join(name), content).unwrap();
    let config = |file: &str| {
        format!(
            "[data]\nformat = \"delimited\"\npath = \"{file}\"\nuser = \"user\"\nitem = \"item\"\n"
        )
    };
    // Undeclared keys may be strings; declared integer keys may not.
    csv("ids.csv", "user,item\n1,2\nbob,3\n");
    let err = fails(
        dir.path(),
        &format!("{}key_type = \"integer\"\n", config("ids.csv")),
    );
    assert!(
        err.contains(
            "ids.csv:3: user `bob` is not an integer id; the keys are declared integers \
             (key_type = \"integer\"): set key_type = \"string\" for keys such as `C-000123`"
        ),
        "{err}"
    );
    csv("cols.csv", "uid,item\n1,2\n");
    let err = fails(dir.path(), &config("cols.csv"));
    assert!(err.contains("no column `user`"), "{err}");
    csv("empty.csv", "");
    let err = fails(dir.path(), &config("empty.csv"));
    assert!(err.contains("empty.csv"), "{err}");
}

#[test]
fn backend_not_compiled_in_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    let out = ember(
        &["train", "--config", "c.toml", "--device", "metal"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown backend `metal`; choose one of"),
        "{}",
        stderr(&out)
    );
    #[cfg(not(feature = "vulkan"))]
    {
        let out = ember(
            &["train", "--config", "c.toml", "--device", "vulkan"],
            dir.path(),
        );
        assert!(
            stderr(&out).contains("cargo feature `vulkan`"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn data_split_writes_three_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    let out = ember(
        &["data", "split", "--config", "c.toml", "--out", "split"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let test = fs::read_to_string(dir.path().join("split/test.tsv")).unwrap();
    assert_eq!(
        test.lines().count(),
        61,
        "a header and one test item per user"
    );
    let out = ember(&["data", "stats", "--config", "c.toml"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"users\": 60"));
}

#[test]
fn serve_answers_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    train_and_export(dir.path(), "c.toml", "tiny", "models/tiny");
    // A training run is not an export: say what to do.
    let out = ember(&["serve", "--model", "runs/tiny"], dir.path());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("runs/tiny: this is a training run directory, not an exported model: export it first (`ember export --run runs/tiny --out models/NAME`)"),
        "{}",
        stderr(&out)
    );
    let (mut child, addr) = serve(dir.path(), "models/tiny", &[]);

    let (status, body) = http(&addr, "GET", "/healthz", "");
    assert_eq!(status, 200, "{body}");
    // A body over the limit is refused as too large (413), not cut and parsed.
    {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST /v1/recommend HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n{{\"user\": 1"
        )
        .unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        assert!(response.contains("over 1048576 bytes"), "{response}");
    }
    assert!(
        body.contains("\"gmf\"") && body.contains("\"users\":60"),
        "{body}"
    );
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/recommend",
        r#"{"user": 1, "k": 5, "exclude": [1, 2]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    let items = reply["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(
        items.iter().all(|i| i["id"] != 1 && i["id"] != 2),
        "excluded items came back: {body}"
    );
    let (status, body) = http(&addr, "POST", "/v1/audience", r#"{"item": 3, "k": 4}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["users"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // Bad requests: 4xx with a message.
    let (status, body) = http(&addr, "POST", "/v1/recommend", r#"{"user": 999999}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown user id 999999"), "{body}");
    let (status, body) = http(&addr, "POST", "/v1/recommend", r#"{"user": 1, "k": 0}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(&addr, "POST", "/v1/recommend", "not json");
    assert_eq!(status, 400);
    assert!(body.contains("invalid JSON"), "{body}");
    assert_eq!(http(&addr, "GET", "/v1/recommend", "").0, 405);
    // A customer GMF was not trained on, given by their items, is folded in: their items
    // never come back; a query with neither a user nor a history is refused.
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/recommend",
        r#"{"history": [1, 2], "k": 3}"#,
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<i64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.len() == 3 && !ids.contains(&1) && !ids.contains(&2),
        "{body}"
    );
    let (status, body) = http(&addr, "POST", "/v1/recommend", r#"{"k": 3}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("exactly one of"), "{body}");
    assert_eq!(http(&addr, "GET", "/nowhere", "").0, 404);
    let (status, body) = http(&addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(
        body.contains("ember_requests_total{route=\"recommend\",status=\"200\"} 2"),
        "{body}"
    );
    assert!(body.contains("ember_request_seconds_count"), "{body}");

    // Known items: left out by default, ranked with the rest when asked; explanations name
    // only the user's own items.
    let ids = |body: &str| -> Vec<i64> {
        let reply: serde_json::Value = serde_json::from_str(body).unwrap();
        reply["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let (_, body) = http(&addr, "POST", "/v1/recommend", r#"{"user": 1, "k": 40}"#);
    let unknown = ids(&body);
    let everything = r#"{"user": 1, "k": 40, "include_known": true}"#;
    let (_, body) = http(&addr, "POST", "/v1/recommend", everything);
    let all = ids(&body);
    let known: Vec<i64> = all
        .iter()
        .filter(|i| !unknown.contains(i))
        .copied()
        .collect();
    assert!(!known.is_empty() && all.len() == unknown.len() + known.len());
    // The exclusion policy: "none" is what include_known asked for, and every reply names the
    // policy it applied.
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/recommend",
        r#"{"user": 1, "k": 40, "exclude_known": "none"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), all);
    assert!(body.contains(r#""excluded":"none""#), "{body}");
    let (_, body) = http(&addr, "POST", "/v1/recommend", r#"{"user": 1, "k": 40}"#);
    assert!(
        body.contains(r#""excluded":"all known interactions""#),
        "{body}"
    );
    let (_, body) = http(&addr, "POST", "/v1/audience", r#"{"item": 3, "k": 4}"#);
    assert!(
        body.contains(r#""excluded":"all known interactions""#),
        "{body}"
    );
    // Bad policies, and a date on an export without days (synthetic data has no dates).
    for (request, message) in [
        (
            r#"{"user": 1, "exclude_known": "sometimes"}"#,
            "`exclude_known`: `sometimes` is not an exclusion policy: use all, none or since:YYYY-MM-DD",
        ),
        (
            r#"{"user": 1, "exclude_known": true}"#,
            "`exclude_known` must be \"all\", \"none\" or \"since:YYYY-MM-DD\", got true",
        ),
        (
            r#"{"user": 1, "exclude_known": "none", "include_known": true}"#,
            "give `exclude_known` or its older alias `include_known`, not both",
        ),
        (
            r#"{"user": 1, "exclude_known": "since:1998-03-01"}"#,
            "leaving out known items since a date needs the day of each known interaction \
             (tensor `known.days`), and this export has none: its data had no timestamps that \
             are dates (or it was exported before they were stored); use all or none",
        ),
    ] {
        let (status, body) = http(&addr, "POST", "/v1/recommend", request);
        assert_eq!(status, 400, "{request}: {body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["error"], message, "{request}");
    }
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/recommend",
        r#"{"user": 1, "k": 3, "explain": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    for item in reply["items"].as_array().unwrap() {
        let because = item["because"].as_array().unwrap();
        assert!(!because.is_empty(), "{body}");
        for b in because {
            assert!(known.contains(&b["item"].as_i64().unwrap()), "{body}");
        }
    }
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/recommend",
        r#"{"user": 1, "explain": 99}"#,
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("`explain` must be true, false or a number of items from 0 to 50, got 99"),
        "{body}"
    );

    // SIGINT: the server stops and exits 0.
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGINT: {status:?}");
}

#[test]
fn sequence_model_trains_exports_and_serves_histories() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
name = "seq"
[data]
format = "synthetic"
[data.synthetic]
users = 60
items = 40
interactions_per_user = 10
sequential = 0.5
[model]
kind = "sasrec"
hidden = 16
blocks = 1
max_len = 8
[train]
epochs = 2
batch_size = 16
[eval]
ks = [5]
monitor = "HR@5"
protocol = { kind = "sampled", negatives = 20 }
extra_protocols = [{ kind = "full_ranking" }]
"#;
    fs::write(dir.path().join("c.toml"), config).unwrap();
    let stdout = train_and_export(dir.path(), "c.toml", "seq", "models/seq");
    // Both protocols are reported, each named.
    assert!(stdout.contains("20 uniform negatives"), "{stdout}");
    assert!(stdout.contains("full ranking over all items"), "{stdout}");
    let metrics = fs::read_to_string(dir.path().join("runs/seq/metrics.json")).unwrap();
    assert!(metrics.contains("extra_protocols"), "{metrics}");
    let (mut child, addr) = serve(dir.path(), "models/seq", &[]);
    let (status, body) = http(&addr, "GET", "/healthz", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sasrec\""), "{body}");
    // A user given by a history (oldest first), and a known user.
    for query in [
        r#"{"history": [3, 7, 1], "k": 5, "exclude": [3, 7, 1]}"#,
        r#"{"user": 1, "k": 5}"#,
    ] {
        let (status, body) = http(&addr, "POST", "/v1/recommend", query);
        assert_eq!(status, 200, "{query}: {body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reply["items"].as_array().unwrap().len(), 5, "{body}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// How one keep-alive client's requests ended during a drain.
#[derive(Debug, Default)]
struct DrainTally {
    /// Requests fully written before SIGTERM was sent, and how many got a complete response.
    sent_before: usize,
    answered_before: usize,
    /// Requests written after it, and how many got a complete response (the others found
    /// their connection closed before any byte of a response).
    sent_after: usize,
    answered_after: usize,
    /// Responses cut off partway, or answered with another status than 200.
    broken: Vec<String>,
}

/// Reads one response from a keep-alive connection: `Ok(Some(close))` when complete (with
/// whether it said `Connection: close`), `Ok(None)` when the connection closed before any byte
/// of it, `Err` when it broke partway or was not a 200.
fn read_response(reader: &mut impl std::io::BufRead) -> Result<Option<bool>, String> {
    let mut status = String::new();
    match reader.read_line(&mut status) {
        Ok(0) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
        Err(e) => return Err(format!("status line: {e}")),
        Ok(_) => {}
    }
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("status line {status:?}"));
    }
    let (mut length, mut close) = (None, false);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the connection closed in the response head".into()),
            Err(e) => return Err(format!("response head: {e}")),
            Ok(_) => {}
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("content-length:") {
            length = n.trim().parse::<usize>().ok();
        }
        close |= line == "connection: close";
    }
    let mut body = vec![0u8; length.ok_or("no content-length")?];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("response body: {e}"))?;
    Ok(Some(close))
}

/// A client that sends recommendations one after the other on one keep-alive connection until
/// the server closes it or says `Connection: close`.
fn keep_alive_client(
    addr: &str,
    user: usize,
    signalled: &std::sync::atomic::AtomicBool,
    answered: &std::sync::atomic::AtomicUsize,
) -> DrainTally {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let stream = std::net::TcpStream::connect(addr).expect("server reachable");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(40)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let body = format!(r#"{{"user": {user}, "k": 10}}"#);
    let request = format!(
        "POST /v1/recommend HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tally = DrainTally::default();
    loop {
        let written = writer.write_all(request.as_bytes()).is_ok();
        // Read after the write returned: false means SIGTERM had not been sent yet.
        let before = !signalled.load(Ordering::SeqCst);
        if before {
            tally.sent_before += 1;
        } else {
            tally.sent_after += 1;
        }
        if !written {
            if before {
                tally.broken.push("a write failed before SIGTERM".into());
            }
            return tally;
        }
        match read_response(&mut reader) {
            Ok(Some(close)) => {
                if before {
                    tally.answered_before += 1;
                } else {
                    tally.answered_after += 1;
                }
                answered.fetch_add(1, Ordering::SeqCst);
                if close {
                    return tally;
                }
            }
            Ok(None) => return tally,
            Err(e) => {
                tally.broken.push(e);
                return tally;
            }
        }
    }
}

/// A keep-alive connection that has had one answer: its stream and a reader on it.
struct KeptAlive {
    stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl KeptAlive {
    fn open(addr: &str) -> Self {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(40)))
            .unwrap();
        let reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut kept = Self { stream, reader };
        kept.send();
        assert_eq!(read_response(&mut kept.reader), Ok(Some(false)));
        kept
    }

    fn send(&mut self) {
        use std::io::Write;
        let body = r#"{"user": 1}"#;
        write!(
            self.stream,
            "POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    }
}

/// Sends `ember serve` (process `pid`) the signal `name` (`-TERM`).
fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {name}");
}

/// Waits for `child` to exit, at most 40 s after `since`.
fn exit_within_40_s(
    child: &mut std::process::Child,
    since: std::time::Instant,
) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if since.elapsed() > std::time::Duration::from_secs(40) {
            child.kill().unwrap();
            panic!("ember serve still running 40 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn serve_drains_what_it_accepted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    train_and_export(dir.path(), "c.toml", "tiny", "models/tiny");
    let (mut child, addr) = serve(dir.path(), "models/tiny", &[]);
    let pid = child.id();

    // Keep-alive connections that stay silent, and others that will send a second request.
    let idle: Vec<KeptAlive> = (0..4).map(|_| KeptAlive::open(&addr)).collect();
    let mut parked: Vec<KeptAlive> = (0..48).map(|_| KeptAlive::open(&addr)).collect();
    let signalled = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let (addr, signalled, answered) = (addr.clone(), signalled.clone(), answered.clone());
            std::thread::spawn(move || keep_alive_client(&addr, 1 + i, &signalled, &answered))
        })
        .collect();
    // Under load: every client has had answers.
    let start = Instant::now();
    while answered.load(Ordering::SeqCst) < 16 * 20 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Stopped, the server reads nothing while the loaded clients and the parked connections
    // send their next request: SIGTERM finds them all sent and unread, as it finds some
    // under load (the race made certain).
    signal(pid, "-STOP");
    std::thread::sleep(Duration::from_millis(100));
    for connection in &mut parked {
        connection.send();
    }
    std::thread::sleep(Duration::from_millis(100));
    signalled.store(true, Ordering::SeqCst);
    let signal_at = Instant::now();
    signal(pid, "-TERM");
    signal(pid, "-CONT");
    let exit = exit_within_40_s(&mut child, signal_at);
    let exit_secs = signal_at.elapsed().as_secs_f64();

    let tallies: Vec<DrainTally> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let sum = |f: fn(&DrainTally) -> usize| tallies.iter().map(f).sum::<usize>();
    let mut broken: Vec<String> = tallies.iter().flat_map(|t| t.broken.clone()).collect();
    let mut parked_answered = 0;
    for mut connection in parked {
        match read_response(&mut connection.reader) {
            Ok(Some(_)) => parked_answered += 1,
            Ok(None) => {}
            Err(e) => broken.push(e),
        }
    }
    let sent_before = sum(|t| t.sent_before) + 48;
    let answered_before = sum(|t| t.answered_before) + parked_answered;
    println!(
        "drain: {sent_before} requests written before SIGTERM, {answered_before} answered \
         ({parked_answered} of 48 parked); {} written after, {} answered; exit {exit:?} after \
         {exit_secs:.3} s",
        sum(|t| t.sent_after),
        sum(|t| t.answered_after)
    );
    assert!(broken.is_empty(), "broken responses: {broken:?}");
    assert_eq!(
        answered_before,
        sent_before,
        "{} requests written before SIGTERM got no response",
        sent_before - answered_before
    );
    // The idle connections are closed cleanly: end of stream, no reset.
    for mut connection in idle {
        let read = std::io::Read::read_to_end(&mut connection.reader, &mut Vec::new());
        assert!(
            matches!(read, Ok(0)),
            "an idle connection saw {read:?}, not a clean close"
        );
    }
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    assert!(
        exit_secs < 10.0,
        "the drain took {exit_secs:.1} s: it waits for idle connections"
    );
}

/// A run on `events` (`user,item,timestamp` lines) with a GMF model, ks [5] and `protocol`;
/// returns its stdout and `metrics.json`.
fn train_on(dir: &Path, events: &str, protocol: &str) -> (String, serde_json::Value) {
    fs::write(dir.join("events.csv"), events).unwrap();
    let config = format!(
        "name = \"r\"\n[data]\nformat = \"delimited\"\npath = \"events.csv\"\nuser = \"user\"\n\
         item = \"item\"\ntimestamp = \"timestamp\"\n[model]\nkind = \"gmf\"\nfactors = 4\n\
         [train]\nepochs = 1\n[eval]\nks = [5]\nmonitor = \"HR@5\"\nprotocol = {protocol}\n"
    );
    fs::write(dir.join("c.toml"), config).unwrap();
    let out = ember(&["train", "--config", "c.toml", "--no-progress"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = fs::read_to_string(dir.join("runs/r/metrics.json")).unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        serde_json::from_str(&metrics).unwrap(),
    )
}

#[test]
fn a_one_user_evaluation_says_it_proves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // One user with every item of the catalogue: test has no item they did not see.
    let events: String = std::iter::once("user,item,timestamp\n".to_string())
        .chain((0..10).map(|i| format!("7,{i},{}\n", 100 + i)))
        .collect();
    let (stdout, metrics) = train_on(
        dir.path(),
        &events,
        r#"{ kind = "sampled", negatives = 3 }"#,
    );
    let test_label = "sampled: held-out items vs 0 uniform negatives (3 asked for: no user had that many unseen items)";
    assert!(
        stdout.contains(&format!("test: {test_label} (1 users)")),
        "{stdout}"
    );
    let all = "warning (validation, test, popularity (test)): ";
    let both = "warning (test, popularity (test)): ";
    for (reports, warning) in [
        (
            all,
            "only 1 user scored: these figures have no statistical weight (fewer than 30 users)",
        ),
        (
            both,
            "every user had fewer than 3 items they never interacted with: ranked against 0 negatives (mean 0.0) instead of 3, which makes their lists easier",
        ),
        (
            both,
            "no user had a candidate besides their held-out items: every model gets these figures by construction",
        ),
    ] {
        assert!(
            stdout.contains(&format!("{reports}{warning}\n")),
            "{stdout}"
        );
        for report in ["test", "popularity_test"] {
            let listed = metrics[report]["warnings"].as_array().unwrap();
            assert!(listed.iter().any(|w| w == warning), "{report}: {listed:?}");
        }
    }
    // Validation may rank the test item: one negative, two candidates, and k = 5 holds both.
    assert!(
        stdout.contains("warning (validation): every user had fewer than 3 items they never interacted with: ranked against 1 negative (mean 1.0) instead of 3")
            && stdout.contains("warning (validation): every user had at most 2 candidates: HR, Precision and Recall at k = 5 are the same for every model"),
        "{stdout}"
    );
    // What the warnings are about: the model and popularity both score 1.
    for report in ["test", "popularity_test"] {
        assert_eq!(
            metrics[report]["metrics"][0],
            serde_json::json!(["HR@5", 1.0])
        );
        assert_eq!(metrics[report]["protocol"], test_label);
        assert_eq!(
            metrics[report]["negatives"],
            serde_json::json!({"asked": 3, "fewer_than_asked": 1, "min": 0, "max": 0,
                "mean": 0.0, "fewer_max": 0, "fewer_mean": 0.0, "most_candidates": 1})
        );
    }
    // `ember eval` prints the same warnings under its table.
    let out = ember(&["eval", "--run", "runs/r"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{both}only 1 user scored")),
        "{stdout}"
    );
}

#[test]
fn sampled_labels_say_how_many_negatives_were_drawn() {
    let dir = tempfile::tempdir().unwrap();
    // 40 items. Users 0-29 see 10 items (30 unseen); users 30-39 see 16 to 25 (24 to 15 unseen).
    let mut events = String::from("user,item,timestamp\n");
    for user in 0..40 {
        let (seen, step) = if user < 30 { (10, 4) } else { (user - 14, 1) };
        for k in 0..seen {
            events.push_str(&format!("{user},{},{}\n", (user + step * k) % 40, 100 + k));
        }
    }
    let (stdout, metrics) = train_on(
        dir.path(),
        &events,
        r#"{ kind = "sampled", negatives = 25 }"#,
    );
    // Test negatives: 25 for users 0-29, 15 to 24 for users 30-39 (mean 19.5); overall
    // (30 × 25 + 195) / 40 = 23.625.
    let label = "sampled: held-out items vs 25 uniform negatives (fewer for 10 of 40 users: 15 to 24, mean 19.5)";
    assert!(
        stdout.contains(&format!("test: {label} (40 users)")),
        "{stdout}"
    );
    assert_eq!(metrics["test"]["protocol"], label);
    assert_eq!(
        metrics["test"]["negatives"],
        serde_json::json!({"asked": 25, "fewer_than_asked": 10, "min": 15, "max": 25,
            "mean": 23.625, "fewer_max": 24, "fewer_mean": 19.5, "most_candidates": 26})
    );
    assert!(
        stdout.contains("warning (test, popularity (test)): 10 of 40 users had fewer than 25 items they never interacted with: ranked against 15 to 24 negatives (mean 19.5) instead of 25, which makes their lists easier\n"),
        "{stdout}"
    );
    // Validation negatives avoid training and validation items only: one more each, so 9 users
    // (17 to 25 items seen) are short, with 24 to 16.
    assert!(
        stdout.contains("validation: sampled: held-out items vs 25 uniform negatives (fewer for 9 of 40 users: 16 to 24, mean 20.0) (40 users)"),
        "{stdout}"
    );
    // Asked for 35, every user is short: the label gives the range drawn, 15 to 30, mean
    // (30 × 30 + 195) / 40 = 27.375.
    let out = ember(
        &[
            "eval",
            "--run",
            "runs/r",
            "--protocol",
            "sampled:35",
            "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["test"]["protocol"],
        "sampled: held-out items vs 15 to 30 uniform negatives (35 asked for: no user had that many unseen items; mean 27.4)"
    );
    assert_eq!(json["baseline"]["negatives"]["fewer_than_asked"], 40);
}

#[test]
fn bounded_runs_fit_in_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    let args = ["train", "--config", "c.toml", "--no-progress"];
    let Some(out) = ember_bounded(&args, dir.path(), &[]) else {
        return;
    };
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn data_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    fs::create_dir(dir.path().join("folder")).unwrap();
    for (path, kind) in [
        ("/dev/zero", "a character device"),
        ("folder", "a directory"),
        ("pipe", "a named pipe (FIFO)"),
    ] {
        let config = format!("[data]\nformat = \"movielens100k\"\npath = \"{path}\"\n");
        fs::write(dir.path().join("c.toml"), config).unwrap();
        let args = ["train", "--config", "c.toml", "--no-progress"];
        let Some(out) = ember_bounded(&args, dir.path(), &[]) else {
            return;
        };
        let err = refused(&out);
        assert!(
            err.contains(&format!(
                "{path}: this is {kind}, not a regular file: ember reads its data from a file, \
                 more than once (to fingerprint it, to parse it, and later to check that it is \
                 unchanged)"
            )),
            "{err}"
        );
        assert!(!dir.path().join("runs").exists());
    }
    // A config is read as every text input is (it once grew until memory ran out).
    let args = ["train", "--config", "/dev/zero", "--no-progress"];
    let err = refused(&ember_bounded(&args, dir.path(), &[]).unwrap());
    assert!(
        err.contains(
            "/dev/zero: line 1: a NUL byte: this is not a text file (expected lines of text)"
        ),
        "{err}"
    );
    // `data stats` reads the data once, without a fingerprint: /dev/zero's first byte stops it.
    fs::write(
        dir.path().join("c.toml"),
        "[data]\nformat = \"movielens100k\"\npath = \"/dev/zero\"\n",
    )
    .unwrap();
    let out = ember_bounded(&["data", "stats", "--config", "c.toml"], dir.path(), &[]).unwrap();
    let err = refused(&out);
    assert!(
        err.contains("/dev/zero:1: a NUL byte: this is not a text file (expected lines of text)"),
        "{err}"
    );
}

#[test]
fn a_line_longer_than_the_limit_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // Line 3 runs 2 MiB without a line break, as a binary or corrupt file would.
    let long = format!("user,item\n1,2\n3,{}\n", "4".repeat(2 << 20));
    fs::write(dir.path().join("long.csv"), &long).unwrap();
    let config =
        "[data]\nformat = \"delimited\"\npath = \"long.csv\"\nuser = \"user\"\nitem = \"item\"\n";
    fs::write(dir.path().join("c.toml"), config).unwrap();
    let args = ["train", "--config", "c.toml", "--no-progress"];
    let Some(out) = ember_bounded(&args, dir.path(), &[]) else {
        return;
    };
    let err = refused(&out);
    assert!(
        err.contains(
            "long.csv:3: a line longer than 1048576 bytes (the limit is data.max_line_bytes): \
             is this a text file?"
        ),
        "{err}"
    );
    // The limit is a setting: raised, the file is read (and its id, too large, refused).
    let raised = format!("{config}max_line_bytes = 4194304\n");
    fs::write(dir.path().join("c.toml"), raised).unwrap();
    let err = refused(&ember_bounded(&args, dir.path(), &[]).unwrap());
    assert!(err.contains("long.csv:3: item `4444"), "{err}");
    // Preset formats take it from EMBER_MAX_LINE_BYTES (which the config's lines, 24 bytes at
    // most, also obey).
    let long_line = format!("1\t3\t4\t11\t{}", "9".repeat(30));
    fs::write(
        dir.path().join("u.data"),
        format!("1\t2\t5\t10\n{long_line}\n"),
    )
    .unwrap();
    let preset = "[data]\nformat = \"movielens100k\"\npath = \"u.data\"\n";
    fs::write(dir.path().join("c.toml"), preset).unwrap();
    let env = [("EMBER_MAX_LINE_BYTES", "30")];
    let err = refused(&ember_bounded(&args, dir.path(), &env).unwrap());
    assert!(
        err.contains(
            "u.data:2: a line longer than 30 bytes (the limit is EMBER_MAX_LINE_BYTES): is this \
             a text file?"
        ),
        "{err}"
    );
}

#[test]
fn models_too_large_for_memory_are_refused_before_they_are_built() {
    let dir = tempfile::tempdir().unwrap();
    // factors = 1e9 aborted on an 800 GB allocation; 1e6 grew to 18.5 GB before it was killed.
    let huge = TINY.replace("factors = 8", "factors = 1000000000");
    fs::write(dir.path().join("huge.toml"), huge).unwrap();
    let args = ["train", "--config", "huge.toml", "--no-progress"];
    let Some(out) = ember_bounded(&args, dir.path(), &[]) else {
        return;
    };
    let err = refused(&out);
    assert!(
        err.contains(
            "model and optimiser need about 33727.4 GiB (gmf: 101.0 billion parameters × 4 B × \
             9 copies, and 30341.1 GiB of batch activations); this process may use "
        ),
        "{err}"
    );
    assert!(!dir.path().join("runs").exists());
    let large = TINY.replace("factors = 8", "factors = 1000000");
    fs::write(dir.path().join("large.toml"), large).unwrap();
    // Without --max-memory the limit is the smallest of the cgroup's, MemAvailable and the
    // address space prlimit leaves (4 GiB here).
    let args = ["train", "--config", "large.toml", "--no-progress"];
    let err = refused(&ember_bounded(&args, dir.path(), &[]).unwrap());
    assert!(
        err.contains("model and optimiser need about 33.7 GiB")
            && err.contains("make the model smaller, or give it more memory"),
        "{err}"
    );
    let args = ["train", "--config", "large.toml", "--max-memory", "1G"];
    let err = refused(&ember_bounded(&args, dir.path(), &[]).unwrap());
    assert!(
        err.contains(
            "model and optimiser need about 33.7 GiB (gmf: 101.0 million parameters × 4 B × 9 \
             copies, and 30.3 GiB of batch activations); this process may use "
        ) && err.contains(
            "MiB more (--max-memory, less what it holds now): make the model smaller, or raise \
             --max-memory"
        ),
        "{err}"
    );
}

/// Issue 29: a byte that is not UTF-8 in a column ember reads is named once, with its line,
/// its column and the setting that reads Latin-1; in a column ember does not read (a title) it
/// passes. With `encoding = "latin1"` the byte is é.
#[test]
fn a_latin1_byte_is_named_with_its_line_and_the_encoding_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"user,item,title\n".to_vec();
    for user in 1..=3 {
        for item in 10..=12 {
            bytes.extend(format!("{user},{item},Caf").as_bytes());
            bytes.extend(b"\xe9\n");
        }
    }
    fs::write(dir.path().join("l.csv"), &bytes).unwrap();
    let config =
        "[data]\nformat = \"delimited\"\npath = \"l.csv\"\nuser = \"user\"\nitem = \"item\"\n";
    fs::write(dir.path().join("c.toml"), config).unwrap();
    let stats = || ember(&["data", "stats", "--config", "c.toml"], dir.path());
    let out = stats();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"users\": 3"));
    bytes.extend(b"4,1\xe93,x\n");
    fs::write(dir.path().join("l.csv"), &bytes).unwrap();
    let out = stats();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "l.csv:11: not valid UTF-8 (byte 0xE9 at column 4, in the item field); if the \
             file is Latin-1, set encoding = \"latin1\" in [data]\n"
        ),
        "{err}"
    );
    assert_eq!(err.matches("UTF-8").count(), 1, "{err}");
    fs::write(
        dir.path().join("c.toml"),
        format!("{config}encoding = \"latin1\"\n"),
    )
    .unwrap();
    // Read as Latin-1, `1é3` is a fourth item, with a string key.
    let out = stats();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"items\": 4"));
}

/// Trains `TINY` with `model` (a `[model]` table) and `weights` (a `[weights]` table) and
/// returns its log and `metrics.json`.
fn weighted_run(dir: &Path, model: &str, weights: &str) -> (String, serde_json::Value) {
    let config = TINY.replace("[model]\nkind = \"gmf\"\nfactors = 8\n", model) + weights;
    fs::write(dir.join("c.toml"), config).unwrap();
    let out = ember(&["train", "--config", "c.toml", "--no-progress"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = fs::read_to_string(dir.join("runs/tiny/metrics.json")).unwrap();
    (stderr(&out), serde_json::from_str(&metrics).unwrap())
}

#[test]
fn weighted_runs_say_what_each_model_makes_of_the_weights() {
    let weights =
        "[weights]\nfrom = \"rating\"\nconfidence = \"log\"\nalpha = 0.5\nepsilon = 2.0\n";
    let cases = [
        (
            "[model]\nkind = \"gmf\"\nfactors = 8\n",
            "weights from the ratings, confidence 1 + 0.5·ln(1 + w/2), each positive's loss term times its confidence (confidences averaging 1 over the training interactions)",
        ),
        (
            "[model]\nkind = \"mult_dae\"\nhidden = [8]\n",
            "weights from the ratings, confidence 1 + 0.5·ln(1 + w/2): the counts of each user's row (input and multinomial target); the confidence is not used",
        ),
        (
            "[model]\nkind = \"item_knn\"\nneighbours = 5\n",
            "ignored by item_knn",
        ),
    ];
    for (model, note) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (log, metrics) = weighted_run(dir.path(), model, weights);
        assert!(log.contains(&format!("weights: {note}")), "{log}");
        assert_eq!(metrics["weights"], note, "{metrics}");
        let test = metrics["test"]["metrics"].to_string();
        assert!(!test.contains("NaN") && !test.contains("null"), "{test}");
    }
    // Without [weights], nothing about them.
    let dir = tempfile::tempdir().unwrap();
    let (log, metrics) = weighted_run(dir.path(), "[model]\nkind = \"gmf\"\nfactors = 8\n", "");
    assert!(
        !log.contains("weights:") && metrics.get("weights").is_none(),
        "{log}"
    );
}

#[test]
fn weights_with_nothing_to_read_them_from_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(dir.path(), &format!("{TINY}[weights]\nalpha = 2.0\n"));
    assert!(
        err.contains("error: synthetic (60 users, 40 items, seed 42): [weights] needs weights: name the column with data.weight (a delimited, Parquet or PostgreSQL source), or set weights.from = \"rating\""),
        "{err}"
    );
    let err = fails(
        dir.path(),
        &format!("{TINY}[weights]\nfrom = \"rating\"\nalpha = -1.0\n"),
    );
    assert!(
        err.contains("error: weights.alpha must be a finite number, 0 or more, got -1"),
        "{err}"
    );
}

/// `ember recommend --new-customers`: customers GMF was not trained on, given by their items,
/// are folded in; their own items never come back, and a known customer, a repeated one or
/// one without items is refused with its line.
#[test]
fn recommend_folds_in_new_customers() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), TINY).unwrap();
    train_and_export(dir.path(), "c.toml", "tiny", "models/tiny");
    fs::write(
        dir.path().join("new.csv"),
        "customer,items\n9001,1;2\n9002, 3 \n",
    )
    .unwrap();
    let args = |input: &str, out: &str| {
        let list = [
            "recommend",
            "--model",
            "models/tiny",
            "--new-customers",
            input,
            "--k",
            "4",
            "--out",
            out,
        ];
        list.map(String::from)
    };
    let run = |input: &str, out: &str| {
        let args = args(input, out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ember(&args, dir.path())
    };
    let out = run("new.csv", "new-recs.csv");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = common::csv(&dir.path().join("new-recs.csv"));
    assert_eq!(rows.len(), 8, "{rows:?}");
    for (customer, own) in [("9001", ["1", "2"].as_slice()), ("9002", &["3"])] {
        let items: Vec<&str> = rows
            .iter()
            .filter(|r| r["user"] == customer)
            .map(|r| r["item"].as_str())
            .collect();
        assert_eq!(items.len(), 4, "{customer}: {rows:?}");
        assert!(
            items.iter().all(|i| !own.contains(i)),
            "{customer}: {items:?}"
        );
    }
    for (text, message) in [
        (
            "customer,items\n1,2;3\n",
            "new.csv:2: column `customer`: 1 is a customer of the model, not a new one: \
             recommend for them with --users",
        ),
        (
            "customer,items\n9001,2\n9001,3\n",
            "new.csv:3: column `customer`: 9001 is listed twice",
        ),
        (
            "customer,items\n9001,\n",
            "new.csv:2: column `items`: empty, expected item keys separated by `;`",
        ),
        (
            "customer,items\n9001,2;x\n",
            "new.csv:2: column `items`: expected item keys separated by `;`: `x` is not an \
             integer key: the model's items have integer keys",
        ),
    ] {
        fs::write(dir.path().join("new.csv"), text).unwrap();
        let out = run("new.csv", "bad.csv");
        assert_eq!(
            refused(&out).trim_end(),
            format!("error: {message}"),
            "{text}"
        );
        assert!(!dir.path().join("bad.csv").exists());
    }
}

/// An attribute table is an input like the interactions: `inputs.json` fingerprints it, and
/// once it changes `eval` and `export` refuse the run.
#[test]
fn a_changed_attribute_table_is_refused_by_eval_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    fs::write(cwd.join("events.csv"), small_csv()).unwrap();
    let mut items = String::from("item,title\n");
    for item in 0..40 {
        items.push_str(&format!("{item},Product {item}\n"));
    }
    fs::write(cwd.join("items.csv"), &items).unwrap();
    let config = TINY.replace(
        "format = \"synthetic\"\n[data.synthetic]\nusers = 60\nitems = 40\ninteractions_per_user = 10",
        "format = \"delimited\"\npath = \"events.csv\"\nuser = \"user\"\nitem = \"item\"\n\
         timestamp = \"timestamp\"\n[data.items]\nformat = \"delimited\"\npath = \"items.csv\"\n\
         key = \"item\"\ncolumns = [{ column = \"title\", type = \"name\" }]",
    );
    fs::write(cwd.join("c.toml"), config).unwrap();
    let out = ember(&["train", "--config", "c.toml", "--no-progress"], cwd);
    assert!(out.status.success(), "{}", stderr(&out));
    let inputs = fs::read_to_string(cwd.join("runs/tiny/inputs.json")).unwrap();
    assert!(inputs.contains("items.csv"), "{inputs}");
    assert!(ember(&["eval", "--run", "runs/tiny"], cwd).status.success());
    fs::write(
        cwd.join("items.csv"),
        items.replace("Product 7", "Product Seven"),
    )
    .unwrap();
    let err = stderr(&ember(&["eval", "--run", "runs/tiny"], cwd));
    assert!(
        err.contains("items.csv: the data changed since the run was trained (then "),
        "{err}"
    );
    let out = ember(&["export", "--run", "runs/tiny", "--out", "m"], cwd);
    assert!(stderr(&out).contains("the data changed since the run was trained"));
    assert!(!cwd.join("m").exists(), "nothing exported");
}
