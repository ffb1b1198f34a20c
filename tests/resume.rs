//! Runs that survive a crash: a training run killed with SIGKILL in the middle of an epoch (or
//! stopped with Ctrl-C) and resumed from its checkpoint ends with the metrics and weights of an
//! uninterrupted run with the same seed, bit for bit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ember() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ember"))
}

fn run(args: &[&str]) -> Output {
    let out = ember().args(args).output().expect("ember runs");
    assert!(
        out.status.success(),
        "ember {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A config for `model` (a `[model]` table's body) writing its runs under `dir`.
fn config(dir: &Path, name: &str, model: &str, train: &str) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
seed = 7
output_dir = "{}"
[data]
format = "synthetic"
[data.synthetic]
users = 500
items = 300
interactions_per_user = 30
sequential = 0.3
[model]
{model}
[train]
{train}
[eval]
ks = [10]
"#,
        dir.join("runs").display()
    );
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, text).unwrap();
    path
}

/// Starts training with the config at `path` in the background (stdout discarded).
fn spawn_training(path: &Path, stderr: Stdio) -> Child {
    ember()
        .args(["train", "--config", path.to_str().unwrap(), "--no-progress"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// The hidden directory of a run in progress under `dir`, once it exists.
fn partial_dir(dir: &Path) -> Option<PathBuf> {
    fs::read_dir(dir.join("runs")).ok()?.find_map(|e| {
        let path = e.ok()?.path();
        let name = path.file_name()?.to_string_lossy().into_owned();
        name.contains(".partial-").then_some(path)
    })
}

/// The state of the latest checkpoint of the run in progress under `dir`.
fn latest_state(dir: &Path) -> Option<serde_json::Value> {
    let checkpoints = partial_dir(dir)?.join("checkpoints");
    let mut numbered: Vec<PathBuf> = fs::read_dir(checkpoints)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    numbered.sort();
    let text = fs::read_to_string(numbered.pop()?.join("state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Waits until the run's latest checkpoint satisfies `ready`, then returns; panics after a
/// minute or when the run ends first.
fn wait_for(child: &mut Child, dir: &Path, ready: &dyn Fn(&serde_json::Value) -> bool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(state) = latest_state(dir)
            && ready(&state)
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before the checkpoint it was to be stopped at");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no such checkpoint within a minute");
}

/// The finished run directory under `dir`.
fn finished(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join("runs").join(name);
    assert!(
        path.join("metrics.json").is_file(),
        "{} unfinished",
        path.display()
    );
    path
}

/// The run's test metrics and its exported weights (f32 safetensors bytes: burn's own weight
/// file also records parameter ids, which differ between processes).
fn outcome(run_dir: &Path) -> (serde_json::Value, Vec<u8>) {
    let metrics: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("metrics.json")).unwrap()).unwrap();
    let out = run_dir.with_extension("export");
    run(&[
        "export",
        "--run",
        run_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-check",
    ]);
    let weights = fs::read(out.join("model.safetensors")).unwrap();
    let summary = serde_json::json!({
        "test": metrics["test"],
        "validation": metrics["validation"],
        "best_epoch": metrics["best_epoch"],
    });
    (summary, weights)
}

/// Trains `model` without interruption and again killed (SIGKILL) at the first checkpoint
/// `kill_at` accepts, then resumed; both must end alike.
fn killed_and_resumed_ends_alike(
    model: &str,
    train: &str,
    kill_at: &dyn Fn(&serde_json::Value) -> bool,
) {
    let whole = tempfile::tempdir().unwrap();
    let path = config(whole.path(), "whole", model, train);
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let expected = outcome(&finished(whole.path(), "whole"));

    let cut = tempfile::tempdir().unwrap();
    let path = config(cut.path(), "whole", model, train);
    let mut child = spawn_training(&path, Stdio::null());
    wait_for(&mut child, cut.path(), kill_at);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = partial_dir(cut.path()).expect("the killed run keeps its directory");
    let out = run(&[
        "train",
        "--resume",
        partial.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("best epoch"));
    let resumed = outcome(&finished(cut.path(), "whole"));
    assert_eq!(resumed.0, expected.0, "metrics after the resume");
    assert!(resumed.1 == expected.1, "weights after the resume differ");
}

#[test]
fn gmf_killed_mid_epoch_resumes_bit_identically() {
    killed_and_resumed_ends_alike(
        "kind = \"gmf\"\nfactors = 8",
        "epochs = 4\nbatch_size = 64\ncheckpoint_every = 30",
        // In the middle of the second epoch.
        &|s| s["epoch"] == 1 && s["progress"]["batch"].as_u64() > Some(0),
    );
}

#[test]
fn neumf_killed_during_pretraining_resumes_bit_identically() {
    killed_and_resumed_ends_alike(
        "kind = \"neumf\"\nfactors = 8\nlayers = [16, 8]\npretrain = true",
        "epochs = 3\nbatch_size = 64\ncheckpoint_every = 30\nrefit = true",
        // The MLP pre-training stage, mid-epoch.
        &|s| s["stage"] == 1 && s["progress"]["batch"].as_u64() > Some(0),
    );
}

#[test]
fn sasrec_with_dropout_killed_mid_epoch_resumes_bit_identically() {
    killed_and_resumed_ends_alike(
        "kind = \"sasrec\"\nhidden = 16\nblocks = 1\nheads = 1\nmax_len = 12\ndropout = 0.3",
        "epochs = 3\nbatch_size = 16\ncheckpoint_every = 10",
        &|s| s["epoch"] == 1 && s["progress"]["batch"].as_u64() > Some(0),
    );
}

/// Ctrl-C (SIGINT) stops after the current batch with a checkpoint, says how to resume, and
/// exits 130; the resumed run ends as an uninterrupted one.
#[test]
fn ctrl_c_checkpoints_says_how_to_resume_and_exits_130() {
    let model = "kind = \"mf\"\nfactors = 8";
    let train = "epochs = 3\nbatch_size = 32";
    let whole = tempfile::tempdir().unwrap();
    let path = config(whole.path(), "run", model, train);
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let expected = outcome(&finished(whole.path(), "run"));

    let cut = tempfile::tempdir().unwrap();
    let path = config(cut.path(), "run", model, train);
    let mut child = spawn_training(&path, Stdio::piped());
    wait_for(&mut child, cut.path(), &|s| s["epoch"] == 1);
    let interrupt = |child: &Child| {
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
    };
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("ember train --resume"), "{err}");
    let partial = partial_dir(cut.path()).expect("kept");
    run(&[
        "train",
        "--resume",
        partial.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(outcome(&finished(cut.path(), "run")).0, expected.0);

    // A second Ctrl-C exits at once, without waiting for the batch.
    let again = tempfile::tempdir().unwrap();
    let path = config(again.path(), "run", model, "epochs = 50\nbatch_size = 32");
    let mut child = spawn_training(&path, Stdio::piped());
    wait_for(&mut child, again.path(), &|s| s["epoch"] == 1);
    interrupt(&child);
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
}

#[test]
fn a_finished_run_or_one_without_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "done", "kind = \"mf\"", "epochs = 1");
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let out = ember()
        .args(["train", "--resume"])
        .arg(finished(dir.path(), "done"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the run is complete"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unmounts a test's tmpfs when the test ends.
struct Mounted(PathBuf);

/// Mounts a tmpfs with `options` on `dir`, or says why the case is skipped: it takes root with
/// mount rights, which a container may deny even to root (not an input CI can install).
fn mount_tmpfs(dir: &Path, options: &str) -> Option<Mounted> {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (it takes root and CAP_SYS_ADMIN)");
        return None;
    }
    Some(Mounted(dir.to_owned()))
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A disk that fills up mid-run: the run stops with one clear error and keeps its last
/// complete checkpoint, from which it resumes once there is space again.
#[test]
fn a_full_disk_stops_the_run_and_keeps_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mounted) = mount_tmpfs(dir.path(), "size=8m") else {
        return;
    };
    let path = config(
        dir.path(),
        "full",
        "kind = \"gmf\"\nfactors = 8",
        "epochs = 60\npatience = 60\nbatch_size = 64\ncheckpoint_every = 30",
    );
    let mut child = spawn_training(&path, Stdio::piped());
    wait_for(&mut child, dir.path(), &|s| s["epoch"].as_u64() >= Some(1));
    // Fill the disk to the last byte.
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut file = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run went on: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("error: ") && err.contains("No space left on device"),
        "{err}"
    );
    assert!(
        err.contains("training failed; its last checkpoint is in ")
            && err.contains("once the cause below is fixed, continue with `ember train --resume "),
        "{err}"
    );
    eprintln!("the full disk's message: {err}");
    let partial = partial_dir(dir.path()).expect("the stopped run keeps its directory");
    let state = latest_state(dir.path()).expect("its last complete checkpoint");
    assert!(state["epoch"].as_u64() >= Some(1));
    fs::remove_file(&filler).unwrap();
    run(&[
        "train",
        "--resume",
        partial.to_str().unwrap(),
        "--no-progress",
    ]);
    finished(dir.path(), "full");
}

/// An output directory that cannot be written (a read-only file system here: root may write
/// anywhere else) is one clear error before any training.
#[test]
fn an_unwritable_output_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("ro");
    fs::create_dir(&read_only).unwrap();
    let Some(_mounted) = mount_tmpfs(&read_only, "size=1m,ro") else {
        return;
    };
    let path = config(
        dir.path(),
        "ro",
        "kind = \"gmf\"\nfactors = 8",
        "epochs = 1",
    );
    let text = fs::read_to_string(&path).unwrap();
    let runs = dir.path().join("runs").display().to_string();
    let redirected = text.replace(&runs, &read_only.join("runs").display().to_string());
    assert_ne!(text, redirected);
    fs::write(&path, redirected).unwrap();
    let out = ember()
        .args(["train", "--config", path.to_str().unwrap(), "--no-progress"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(
        err.contains(&format!("error: {}", read_only.join("runs").display()))
            && err.contains("Read-only file system"),
        "{err}"
    );
}
