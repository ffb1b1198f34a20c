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

/// The synthetic data most tests train on.
const SYNTHETIC: &str = "format = \"synthetic\"
[data.synthetic]
users = 500
items = 300
interactions_per_user = 30
sequential = 0.3";

/// A config for `model` (a `[model]` table's body) writing its runs under `dir`.
fn config(dir: &Path, name: &str, model: &str, train: &str) -> PathBuf {
    config_on(dir, name, SYNTHETIC, model, train)
}

/// A config reading `data` (a `[data]` table's body).
fn config_on(dir: &Path, name: &str, data: &str, model: &str, train: &str) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
seed = 7
output_dir = "{}"
[data]
{data}
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

/// The latest complete checkpoint of the partial directory `partial`.
fn latest_in(partial: &Path) -> Option<PathBuf> {
    let mut numbered: Vec<PathBuf> = fs::read_dir(partial.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    numbered.sort();
    numbered.pop()
}

/// The latest checkpoint of a stopped run's partial directory.
fn latest_checkpoint(partial: &Path) -> PathBuf {
    latest_in(partial).expect("a checkpoint")
}

/// The state of the latest checkpoint of the run in progress under `dir`.
fn latest_state(dir: &Path) -> Option<serde_json::Value> {
    let text = fs::read_to_string(latest_in(&partial_dir(dir)?)?.join("state.json")).ok()?;
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
    let partial = killed_at(&path, cut.path(), kill_at);
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

/// NeuMF's pre-trained start competes as epoch 0; a learning rate that wrecks it makes that
/// start the best epoch. Killed in the first epoch of fine-tuning, the resumed run keeps the
/// start it had validated (the checkpoint's best), not the half-trained model it resumes.
#[test]
fn neumf_killed_in_its_first_fine_tuning_epoch_keeps_its_pretrained_start() {
    killed_and_resumed_ends_alike(
        "kind = \"neumf\"\nfactors = 8\nlayers = [16, 8]\npretrain = true",
        "epochs = 2\nbatch_size = 64\ncheckpoint_every = 20\nfinetune_learning_rate = 1.0",
        &|s| s["stage"] == 2 && s["epoch"] == 0 && s["progress"]["batch"].as_u64() > Some(0),
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

/// Trains with the config at `path` and kills the run (SIGKILL) at the first checkpoint
/// `kill_at` accepts; returns its partial directory.
fn killed_at(path: &Path, dir: &Path, kill_at: &dyn Fn(&serde_json::Value) -> bool) -> PathBuf {
    let mut child = spawn_training(path, Stdio::null());
    wait_for(&mut child, dir, kill_at);
    child.kill().unwrap();
    child.wait().unwrap();
    partial_dir(dir).expect("the killed run keeps its directory")
}

/// In the middle of the second epoch.
fn mid_second_epoch(s: &serde_json::Value) -> bool {
    s["epoch"] == 1 && s["progress"]["batch"].as_u64() > Some(0)
}

/// GMF's model and training settings in these tests.
const GMF: (&str, &str) = (
    "kind = \"gmf\"\nfactors = 8",
    "epochs = 4\nbatch_size = 64\ncheckpoint_every = 30",
);

/// `ember train --resume <partial> <more>`, which must fail with exit 1 and no panic; its
/// stderr.
fn resume_refused(partial: &Path, more: &[&str]) -> String {
    let out = ember()
        .args(["train", "--no-progress", "--resume"])
        .arg(partial)
        .args(more)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Replaces the one line of `file` that starts with `key = ` by `key = value`; returns the
/// line it replaced.
fn set_key(file: &Path, key: &str, value: &str) -> String {
    let text = fs::read_to_string(file).unwrap();
    let prefix = format!("{key} = ");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "one `{key}` line in {text}");
    let old = lines[0].to_string();
    fs::write(file, text.replace(&old, &format!("{prefix}{value}"))).unwrap();
    old
}

/// Resumes `partial` to the end; its stderr.
fn resumed(partial: &Path) -> String {
    let out = run(&[
        "train",
        "--resume",
        partial.to_str().unwrap(),
        "--no-progress",
    ]);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_edited_learning_rate_is_refused_naming_the_key_and_both_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "lr", GMF.0, GMF.1);
    let partial = killed_at(&path, dir.path(), &|_| true);
    let config = partial.join("config.toml");
    let checkpoint = latest_checkpoint(&partial);
    assert_eq!(
        set_key(&config, "learning_rate", "0.01"),
        "learning_rate = 0.001"
    );
    let err = resume_refused(&partial, &[]);
    assert!(
        err.contains(&format!(
            "error: cannot resume {}: config.toml was edited after the run started: \
             train.learning_rate was 0.001, now 0.01: resume refuses a run whose config changed \
             (start a new run, or put the values back)",
            partial.display()
        )),
        "{err}"
    );
    // Refused before training: the run's checkpoint is where it was.
    assert_eq!(latest_checkpoint(&partial), checkpoint);
}

/// Two ML-100K-shaped files of `users` users with 20 items each, alike but for which items.
fn same_shaped_files(dir: &Path, users: u32) -> (PathBuf, PathBuf) {
    let write = |name: &str, shift: u32| {
        let mut text = String::new();
        for user in 1..=users {
            for k in 0..20 {
                // 7 is prime to 150: a user's 20 items are distinct.
                let item = (user * 3 + k * 7 + shift) % 150 + 1;
                text.push_str(&format!("{user}\t{item}\t4\t{}\n", 1000 + k));
            }
        }
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    };
    (write("a.data", 0), write("b.data", 1))
}

/// The issue's case: the same config on another file of the same shape trained a run on two
/// different splits (test HR@10 0.3252 against 0.1301).
#[test]
fn another_data_file_of_the_same_shape_is_refused_naming_data_path() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = same_shaped_files(dir.path(), 200);
    assert_eq!(
        fs::metadata(&a).unwrap().len(),
        fs::metadata(&b).unwrap().len()
    );
    let data = format!("format = \"movielens100k\"\npath = \"{}\"", a.display());
    let path = config_on(dir.path(), "data", &data, GMF.0, GMF.1);
    let partial = killed_at(&path, dir.path(), &|_| true);
    let config = partial.join("config.toml");
    let line = set_key(&config, "path", &format!("\"{}\"", b.display()));
    let err = resume_refused(&partial, &[]);
    assert!(
        err.contains(&format!(
            "config.toml was edited after the run started: data.path was \"{}\", now \"{}\": \
             resume refuses",
            a.display(),
            b.display()
        )),
        "{err}"
    );
    fs::write(
        &config,
        fs::read_to_string(&config)
            .unwrap()
            .replace(&format!("path = \"{}\"", b.display()), &line),
    )
    .unwrap();
    // The list of inputs the finished run keeps must stay the run's.
    let inputs = partial.join("inputs.json");
    let listed = fs::read_to_string(&inputs).unwrap();
    fs::write(&inputs, listed.replace("fnv1a64:", "fnv1a64:0")).unwrap();
    let err = resume_refused(&partial, &[]);
    assert!(
        err.contains(&format!(
            "error: cannot resume {}: inputs.json was edited after the run started (it no \
             longer lists the files the run was started on): put it back, or start a new run",
            partial.display()
        )),
        "{err}"
    );
    fs::write(&inputs, listed).unwrap();
    // The same path with other contents.
    fs::copy(&b, &a).unwrap();
    let err = resume_refused(&partial, &[]);
    assert!(
        err.contains(&format!(
            "error: {}: the data changed since the run was trained",
            a.display()
        )),
        "{err}"
    );
}

/// `--device` may not move a run to another backend, and a checkpoint written before the
/// config was recorded is refused with a clear message; neither harms the run.
#[test]
fn another_device_or_an_older_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "dev", GMF.0, GMF.1);
    let partial = killed_at(&path, dir.path(), &|_| true);
    let err = resume_refused(&partial, &["--device", "ndarray"]);
    assert!(
        err.contains(&format!(
            "error: cannot resume {}: the run was started on device `flex`, and --device asks \
             for `ndarray`: a run resumes on the backend it started on, as results are \
             bit-identical only on one (leave out --device, or start a new run)",
            partial.display()
        )),
        "{err}"
    );
    let state = latest_checkpoint(&partial).join("state.json");
    let text = fs::read_to_string(&state).unwrap();
    fs::write(&state, text.replace("\"version\": 2", "\"version\": 1")).unwrap();
    let err = resume_refused(&partial, &[]);
    assert!(
        err.contains(&format!(
            "error: {}: written with checkpoint version 1, and this build reads version 2, which \
             records the run's config to check a resume against: finish the run with the ember \
             that started it, or start a new run",
            state.display()
        )),
        "{err}"
    );
    fs::write(&state, text).unwrap();
    resumed(&partial);
    finished(dir.path(), "dev");
}

/// Keys that cannot change a result may be edited: the run ends as an uninterrupted one, under
/// the name it started with.
#[test]
fn an_edited_name_or_checkpoint_every_is_accepted_and_ends_bit_identically() {
    let whole = tempfile::tempdir().unwrap();
    let path = config(whole.path(), "whole", GMF.0, GMF.1);
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let expected = outcome(&finished(whole.path(), "whole"));

    let cut = tempfile::tempdir().unwrap();
    let path = config(cut.path(), "whole", GMF.0, GMF.1);
    let partial = killed_at(&path, cut.path(), &mid_second_epoch);
    let config = partial.join("config.toml");
    set_key(&config, "name", "\"renamed\"");
    set_key(&config, "checkpoint_every", "7");
    resumed(&partial);
    let resumed = outcome(&finished(cut.path(), "whole"));
    assert_eq!(resumed.0, expected.0, "metrics after the resume");
    assert!(resumed.1 == expected.1, "weights after the resume differ");
}

/// The issue's case: a partial directory moved (its old parent gone) once trained to the end,
/// deleted its checkpoints and failed on the old path. It finishes beside itself now.
#[test]
fn a_moved_partial_directory_finishes_beside_itself_bit_identically() {
    let whole = tempfile::tempdir().unwrap();
    let path = config(whole.path(), "whole", GMF.0, GMF.1);
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let expected = outcome(&finished(whole.path(), "whole"));

    let cut = tempfile::tempdir().unwrap();
    let path = config(cut.path(), "whole", GMF.0, GMF.1);
    let partial = killed_at(&path, cut.path(), &mid_second_epoch);
    let moved = cut.path().join("moved");
    fs::rename(cut.path().join("runs"), &moved).unwrap();
    let partial = moved.join(partial.file_name().unwrap());
    let err = resumed(&partial);
    assert!(
        err.contains(&format!(
            "the run was moved from {}",
            fs::canonicalize(cut.path())
                .unwrap()
                .join("runs")
                .join(partial.file_name().unwrap())
                .display()
        )),
        "{err}"
    );
    assert!(!cut.path().join("runs").exists());
    assert!(!partial.exists());
    let done = moved.join("whole");
    assert!(!done.join("checkpoints").exists() && !done.join("lock").exists());
    let resumed = outcome(&done);
    assert_eq!(resumed.0, expected.0, "metrics after the resume");
    assert!(resumed.1 == expected.1, "weights after the resume differ");
}

/// A crash after `metrics.json` was written and before the rename left a complete run under
/// its partial name, which `--resume` once called complete and left stranded. Such
/// directories are made by hand here: a finished run given its partial name back (no
/// checkpoints), and a killed run's partial directory given the finished run's results (its
/// checkpoints still there, as the run now removes them only after the rename).
#[test]
fn a_complete_run_that_was_never_renamed_is_finished_by_resume() {
    let whole = tempfile::tempdir().unwrap();
    let path = config(whole.path(), "whole", GMF.0, GMF.1);
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let done = finished(whole.path(), "whole");
    let metrics = fs::read(done.join("metrics.json")).unwrap();

    let unrenamed = whole.path().join("runs").join(".whole.partial-4242");
    fs::rename(&done, &unrenamed).unwrap();
    let weights = unrenamed.join("model.bpk");
    fs::rename(&weights, unrenamed.join("model.bak")).unwrap();
    let err = resume_refused(&unrenamed, &[]);
    assert!(
        err.contains(&format!(
            "error: cannot resume {}: it holds metrics.json but no model.bpk: the run is \
             incomplete and cannot be finished (start a new run)",
            unrenamed.display()
        )),
        "{err}"
    );
    fs::rename(unrenamed.join("model.bak"), &weights).unwrap();
    let out = run(&[
        "train",
        "--resume",
        unrenamed.to_str().unwrap(),
        "--no-progress",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the run was complete but not yet renamed"),
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("best epoch"), "{stdout}");
    assert!(!unrenamed.exists());
    assert_eq!(
        fs::read(finished(whole.path(), "whole").join("metrics.json")).unwrap(),
        metrics
    );

    let cut = tempfile::tempdir().unwrap();
    let path = config(cut.path(), "whole", GMF.0, GMF.1);
    let partial = killed_at(&path, cut.path(), &|_| true);
    for file in ["metrics.json", "model.bpk", "curves.png"] {
        fs::copy(
            whole.path().join("runs/whole").join(file),
            partial.join(file),
        )
        .unwrap();
    }
    let config = partial.join("config.toml");
    let line = set_key(&config, "learning_rate", "0.01");
    let err = resume_refused(&partial, &[]);
    assert!(
        err.contains("train.learning_rate was 0.001, now 0.01"),
        "{err}"
    );
    set_key(
        &config,
        "learning_rate",
        line.trim_start_matches("learning_rate = "),
    );
    resumed(&partial);
    let done = finished(cut.path(), "whole");
    assert_eq!(fs::read(done.join("metrics.json")).unwrap(), metrics);
    assert!(!done.join("checkpoints").exists() && !done.join("stages").exists());
    assert!(!done.join("lock").exists() && !partial.exists());
}

/// Waits until the lock file of `partial` names `pid`.
fn wait_for_lock(partial: &Path, pid: u32) {
    let started = Instant::now();
    while fs::read_to_string(partial.join("lock")).ok() != Some(pid.to_string()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "pid {pid} never took the lock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A run is trained by one process at a time: a resume is refused while the run's own process
/// trains it, and while another resume does.
#[test]
fn a_second_process_on_the_same_run_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "busy",
        GMF.0,
        "epochs = 50\npatience = 50\nbatch_size = 64\ncheckpoint_every = 30",
    );
    let mut training = spawn_training(&path, Stdio::null());
    wait_for(&mut training, dir.path(), &|_| true);
    let partial = partial_dir(dir.path()).unwrap();
    let refused = |pid: u32| {
        let err = resume_refused(&partial, &[]);
        let expected = format!(
            "error: cannot resume {}: another ember process (pid {pid}) is training this run",
            partial.display()
        );
        assert!(err.contains(&expected), "{err}");
    };
    refused(training.id());
    training.kill().unwrap();
    training.wait().unwrap();

    let mut first = ember()
        .args(["train", "--no-progress", "--resume"])
        .arg(&partial)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock(&partial, first.id());
    refused(first.id());
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first resume went on training"
    );
    first.kill().unwrap();
    first.wait().unwrap();
}

/// Clears the immutable attribute of a test's directory when the test ends.
struct Immutable(PathBuf);

/// Makes `dir` immutable (`chattr +i`: nothing in it can be renamed, even by root), or says
/// why the case is skipped: it takes root with CAP_LINUX_IMMUTABLE on a file system with the
/// attribute, which a container or CI may deny (not an input CI can install).
fn make_immutable(dir: &Path) -> Option<Immutable> {
    let done = Command::new("chattr")
        .arg("+i")
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !done {
        eprintln!("skipped: cannot make a directory immutable here (chattr +i)");
        return None;
    }
    Some(Immutable(dir.to_owned()))
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// The final rename failing (here: the runs directory made immutable) once left a run whose
/// checkpoints were already deleted; now it leaves the partial directory whole, says how to
/// finish it, and `--resume` does once the cause is gone.
#[test]
fn a_failed_final_rename_leaves_a_run_that_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "whole", GMF.0, "epochs = 1");
    run(&["train", "--config", path.to_str().unwrap(), "--no-progress"]);
    let runs = dir.path().join("runs");
    let unrenamed = runs.join(".whole.partial-4242");
    fs::rename(runs.join("whole"), &unrenamed).unwrap();
    let Some(immutable) = make_immutable(&runs) else {
        return;
    };
    let err = resume_refused(&unrenamed, &[]);
    assert!(
        err.contains(&format!(
            "error: the run is complete in {0}, but renaming it to {1} failed: once the cause \
             below is fixed, `ember train --resume {0}` finishes it: Operation not permitted",
            unrenamed.display(),
            fs::canonicalize(&runs).unwrap().join("whole").display()
        )),
        "{err}"
    );
    assert!(unrenamed.join("metrics.json").is_file() && unrenamed.join("model.bpk").is_file());
    drop(immutable);
    resumed(&unrenamed);
    assert!(!unrenamed.exists());
    finished(dir.path(), "whole");
}
