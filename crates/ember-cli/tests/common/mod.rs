//! What the `ember` binary's test files share: running it, and running it bounded; `ember
//! serve` and a minimal HTTP client for it.

// Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output};

use serde_json::Value;

/// Runs ember in `cwd`.
pub fn ember(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("ember runs")
}

/// What a run wrote on its standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Trains the config file `config` in `cwd`, then exports its run `runs/<run>` to `model`,
/// each of which must succeed; what training printed on its standard output.
pub fn train_and_export(cwd: &Path, config: &str, run: &str, model: &str) -> String {
    let trained = ember(&["train", "--config", config, "--no-progress"], cwd);
    assert!(
        trained.status.success(),
        "ember train: {}",
        stderr(&trained)
    );
    let run_dir = format!("runs/{run}");
    let exported = ember(&["export", "--run", &run_dir, "--out", model], cwd);
    assert!(
        exported.status.success(),
        "ember export: {}",
        stderr(&exported)
    );
    String::from_utf8_lossy(&trained.stdout).into_owned()
}

/// The address space a run fed an endless or absurd input may take: a regression that reads or
/// allocates without bound then fails its test (an error, or `timeout`'s exit 124) instead of
/// taking the machine down. ember itself starts and trains within it
/// (`bounded_runs_fit_in_the_limit`).
pub const ADDRESS_SPACE: u64 = 4 << 30;

/// Runs ember under `prlimit --as=ADDRESS_SPACE` and a 60-second `timeout` that sends SIGKILL
/// (ember takes SIGTERM as "checkpoint and stop", which a run still reading its data never
/// reaches), with `env` set and backtraces on (so that a panic would show); `None` (after
/// saying why) where `prlimit` or `timeout` is missing, a failure when
/// `EMBER_REQUIRE_TEST_INPUTS` is set.
pub fn ember_bounded(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Option<Output> {
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

/// Checks that a bounded run was refused cleanly (exit 1, one error, no panic, no backtrace,
/// no failed allocation) and returns its stderr.
pub fn refused(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for crash in ["panicked", "backtrace", "memory allocation of"] {
        assert!(!err.contains(crash), "{crash}: {err}");
    }
    err
}

/// The standard output of a run that must succeed (its stderr in the failure message).
pub fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ember failed: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Rows of a CSV file as maps from header to field (quoted fields as ember writes them).
pub fn csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = fields(lines.next().unwrap());
    lines
        .map(|line| header.iter().cloned().zip(fields(line)).collect())
        .collect()
}

/// The fields of one CSV line as ember writes them: a field with a comma or a quote is quoted,
/// with `""` for a quote inside.
fn fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// A minimal HTTP/1.1 client: returns (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("server reachable");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// [`http`]'s POST, the body read as JSON.
pub fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, body) = http(addr, "POST", path, body);
    (status, serde_json::from_str(&body).expect("a JSON body"))
}

/// Starts `ember serve` on `model` with `extra` arguments; returns it and its address.
pub fn serve(dir: &Path, model: &str, extra: &[&str]) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args([
            "serve",
            "--model",
            model,
            "--addr",
            "127.0.0.1:0",
            "--threads",
            "2",
        ])
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .expect("address line")
        .to_string();
    (child, addr)
}
