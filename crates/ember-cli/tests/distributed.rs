//! Data-parallel training over MPI (`mpirun -np 2 ember train`), with the `mpi` feature:
//! every rank ends each epoch with the same weights, two ranks with half a batch each train what
//! one process with the whole batch trains, sharded evaluation equals single-process
//! evaluation, a killed rank ends the job with an error, and a stopped distributed run resumes
//! bit for bit. The tests are named `mpi_*` (`.ci/run` selects them); they need Open MPI's
//! `mpirun` (skipped with a message without it, a failure where EMBER_REQUIRE_TEST_INPUTS is set).
//! Without the feature, one test checks that a run started by mpirun is refused.
#![cfg_attr(not(feature = "mpi"), allow(dead_code, unused_imports))]

/// Without MPI compiled in, a process that a launcher started as one of several ranks would
/// train the whole model alone and write its own run directory: it is refused, and says how
/// to build with MPI.
#[cfg(not(feature = "mpi"))]
#[test]
fn without_the_mpi_feature_a_run_started_as_one_of_several_ranks_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["train", "--no-progress"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "started as one of 2 MPI ranks, but this ember was built without MPI: build it with `cargo build --release --features ember-cli/mpi`"
        ),
        "{stderr}"
    );
}

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const EMBER: &str = env!("CARGO_BIN_EXE_ember");

/// `mpirun`, or `None` (after saying why) when it is not installed.
#[allow(dead_code)]
fn mpirun() -> Option<Command> {
    let found = Command::new("mpirun")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let reason = "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)";
        assert!(
            std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
            "{reason}; EMBER_REQUIRE_TEST_INPUTS is set"
        );
        eprintln!("skipped: {reason}");
        return None;
    }
    let mut cmd = Command::new("mpirun");
    cmd.args(["--oversubscribe", "-np", "2"])
        // CI runs as root; containers often forbid the cross-memory attach Open MPI tries.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        // Two ranks on two cores: one thread each.
        .args(["-x", "RAYON_NUM_THREADS=1"])
        .arg(EMBER);
    Some(cmd)
}

fn ember() -> Command {
    Command::new(EMBER)
}

fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A config for `model` (a `[model]` table's body) on the built-in synthetic data, writing its
/// runs under `dir/runs`.
fn config(dir: &Path, name: &str, model: &str, train: &str) -> PathBuf {
    let text = format!(
        r#"
name = "{name}"
seed = 11
output_dir = "{}"
[data]
format = "synthetic"
[data.synthetic]
users = 400
items = 250
interactions_per_user = 25
[model]
{model}
[train]
{train}
[eval]
ks = [5, 10]
"#,
        dir.join("runs").display()
    );
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, text).unwrap();
    path
}

fn train_args(path: &Path) -> [&str; 4] {
    ["train", "--config", path.to_str().unwrap(), "--no-progress"]
}

fn metrics(run_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(run_dir.join("metrics.json")).unwrap()).unwrap()
}

/// The run's exported f32 weights by tensor name (read from the safetensors file: an 8-byte
/// header length, a JSON header, then the data).
fn weights(run_dir: &Path) -> BTreeMap<String, Vec<f32>> {
    let out = run_dir.with_extension("export");
    check(
        ember()
            .args(["export", "--run", run_dir.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap(), "--no-check"])
            .output()
            .unwrap(),
        "export",
    );
    let bytes = fs::read(out.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(name, info)| name != "__metadata__" && info["dtype"] == "F32")
        .map(|(name, info)| {
            let (a, b) = (
                info["data_offsets"][0].as_u64().unwrap() as usize,
                info["data_offsets"][1].as_u64().unwrap() as usize,
            );
            let values = data[a..b]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, values)
        })
        .collect()
}

/// `ember recommend` under `mpirun -np 2`: each rank scores its share of the customers and
/// writes its own part file; the parts, in order, are the single-process output.
#[test]
fn mpi_recommend_ranks_write_part_files_that_make_the_whole() {
    let Some(mut mpirun) = mpirun() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "rec",
        "kind = \"mf\"\nfactors = 4",
        "epochs = 1",
    );
    check(ember().args(train_args(&path)).output().unwrap(), "train");
    let run = dir.path().join("runs/rec");
    let export = dir.path().join("export");
    check(
        ember()
            .args(["export", "--run", run.to_str().unwrap()])
            .args(["--out", export.to_str().unwrap(), "--no-check"])
            .output()
            .unwrap(),
        "export",
    );
    let recommend = |cmd: &mut Command, out: &Path| {
        cmd.args(["recommend", "--model", export.to_str().unwrap(), "--k", "3"])
            .args(["--no-progress", "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let whole = dir.path().join("all.csv");
    check(recommend(&mut ember(), &whole), "one process");
    let parts = dir.path().join("parts.csv");
    check(recommend(&mut mpirun, &parts), "two ranks");
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    let (first, second) = (read("parts.part-1-of-2.csv"), read("parts.part-2-of-2.csv"));
    let header = first.lines().next().unwrap();
    assert_eq!(second.lines().next().unwrap(), header);
    let joined: Vec<&str> = first.lines().chain(second.lines().skip(1)).collect();
    assert_eq!(joined, read("all.csv").lines().collect::<Vec<_>>());
    assert!(!parts.exists(), "no whole file from the ranks");
}

#[cfg(feature = "mpi")]
mod with_mpi {
    use super::*;
    /// Two ranks with half of each batch against one process with the whole batch: after an
    /// epoch (37 Adam steps) every weight agrees within 1e-5 of its tensor's largest value, and
    /// the ranks report identical weights.
    fn two_ranks_train_what_one_process_trains(model: &str) {
        let Some(mut mpirun) = mpirun() else { return };
        let dir = tempfile::tempdir().unwrap();
        // One epoch: 37 Adam steps.
        let train = "epochs = 1\nbatch_size = 256\nnegatives = 4";
        let one = config(dir.path(), "one", model, train);
        check(ember().args(train_args(&one)).output().unwrap(), "one rank");
        let two = config(dir.path(), "two", model, train);
        let out = check(mpirun.args(train_args(&two)).output().unwrap(), "two ranks");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.matches("run directory:").count(),
            1,
            "rank 0 alone reports: {stdout}"
        );
        let (one, two) = (dir.path().join("runs/one"), dir.path().join("runs/two"));
        let log = fs::read_to_string(two.join("log.txt")).unwrap();
        assert_eq!(
            log.matches("weights identical on all 2 ranks").count(),
            1,
            "{log}"
        );
        assert!(log.contains("gradient sync:"), "{log}");
        assert!(
            !dir.path().join("runs").read_dir().unwrap().any(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.contains("partial") || name == "two-1"
            }),
            "rank 0 alone writes the run directory"
        );

        let (w1, w2) = (weights(&one), weights(&two));
        assert_eq!(w1.keys().collect::<Vec<_>>(), w2.keys().collect::<Vec<_>>());
        let (mut moved, mut worst) = (0, 0.0f64);
        for (name, a) in &w1 {
            let b = &w2[name];
            // The relative error of the tensor, ‖a − b‖ / ‖a‖.
            let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
            let error = norm(&mut a.iter().zip(b).map(|(x, y)| (x - y) as f64))
                / norm(&mut a.iter().map(|&x| x as f64));
            assert!(error <= 1e-5, "{name}: relative error {error:e}");
            worst = worst.max(error);
            moved += (a != b) as usize;
        }
        eprintln!(
            "{moved} of {} tensors differ in their last bits; largest relative error {worst:e}",
            w1.len()
        );
    }

    /// `ember eval` of one run in one process and under `mpirun -np 2` (each rank scoring half of
    /// the users' batches, the per-user values put together in order): the same report, to the
    /// last bit, for the sampled and the full-ranking protocols.
    #[test]
    fn mpi_sharded_evaluation_equals_one_process() {
        let Some(_) = mpirun() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "ev",
            "kind = \"neumf\"\nfactors = 8\nlayers = [16, 8]",
            "epochs = 2",
        );
        check(ember().args(train_args(&path)).output().unwrap(), "train");
        let run = dir.path().join("runs/ev");
        for protocol in ["sampled:50", "full"] {
            let eval = |cmd: &mut Command| {
                let out = check(
                    cmd.args(["eval", "--run", run.to_str().unwrap(), "--json"])
                        .args(["--protocol", protocol])
                        // The same threads as each rank: the same scores.
                        .env("RAYON_NUM_THREADS", "1")
                        .output()
                        .unwrap(),
                    "eval",
                );
                String::from_utf8(out.stdout).unwrap()
            };
            let one = eval(&mut ember());
            let two = eval(&mut mpirun().unwrap());
            assert!(one.contains("NDCG@10"), "{one}");
            assert_eq!(two, one, "{protocol}: two ranks against one process");
        }
    }

    #[test]
    fn mpi_mf_two_ranks_half_batches_equal_one_process_whole_batches() {
        two_ranks_train_what_one_process_trains("kind = \"mf\"\nfactors = 16");
    }

    #[test]
    fn mpi_neumf_two_ranks_half_batches_equal_one_process_whole_batches() {
        two_ranks_train_what_one_process_trains(
            "kind = \"neumf\"\nfactors = 8\nlayers = [32, 16, 8]",
        );
    }

    /// A 2-rank NeuMF on the NCF MovieLens-100K split reaches the test HR@10 of one process within
    /// 0.01 (the runs differ only in the order of float additions).
    #[test]
    fn mpi_neumf_on_ncf_ml100k_matches_one_process() {
        let Some(mut mpirun) = mpirun() else { return };
        let shared =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/ncf-ml-100k");
        if !shared.join("ml-100k.train.rating").is_file() {
            let reason = format!("{} is absent", shared.display());
            assert!(
                std::env::var_os("EMBER_REQUIRE_TEST_INPUTS").is_none(),
                "{reason}; EMBER_REQUIRE_TEST_INPUTS is set"
            );
            eprintln!("skipped: {reason}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| {
            let text = format!(
                r#"
name = "{name}"
seed = 42
output_dir = "{}"
[data]
format = "ncf"
prefix = "{}"
[split]
kind = "fixed"
[model]
kind = "neumf"
factors = 16
layers = [64, 32, 16]
init_std = 0.1
[train]
epochs = 6
batch_size = 256
negatives = 4
patience = 6
[eval]
protocol = {{ kind = "fixed_negatives" }}
ks = [10]
monitor = "NDCG@10"
"#,
                dir.path().join("runs").display(),
                shared.join("ml-100k").display()
            );
            let path = dir.path().join(format!("{name}.toml"));
            fs::write(&path, text).unwrap();
            path
        };
        let one = write("one");
        check(ember().args(train_args(&one)).output().unwrap(), "one rank");
        let two = write("two");
        check(mpirun.args(train_args(&two)).output().unwrap(), "two ranks");
        let hr = |name: &str| {
            let m = metrics(&dir.path().join("runs").join(name));
            let pairs = m["test"]["metrics"].as_array().unwrap().clone();
            pairs.iter().find(|p| p[0] == "HR@10").unwrap()[1]
                .as_f64()
                .unwrap()
        };
        let (one, two) = (hr("one"), hr("two"));
        eprintln!("test HR@10: one process {one:.4}, two ranks {two:.4}");
        assert!(one > 0.5, "a trained NeuMF (HR@10 {one})");
        assert!(
            (one - two).abs() <= 0.01,
            "one process {one}, two ranks {two}"
        );
    }

    /// The ranks of the `mpirun` with process id `mpirun`, by rank, once both have started.
    fn ranks_of(mpirun: u32) -> BTreeMap<usize, u32> {
        let mut ranks = BTreeMap::new();
        let Ok(tasks) = fs::read_dir(format!("/proc/{mpirun}/task")) else {
            return ranks;
        };
        for task in tasks.flatten() {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
            {
                let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let rank = environ
                    .split(|&b| b == 0)
                    .find_map(|v| v.strip_prefix(b"OMPI_COMM_WORLD_RANK="))
                    .and_then(|r| std::str::from_utf8(r).ok()?.parse().ok());
                if let Some(rank) = rank {
                    ranks.insert(rank, pid);
                }
            }
        }
        ranks
    }

    /// The hidden directory of the run in progress under `dir/runs`, once it holds a checkpoint.
    fn checkpointed(dir: &Path) -> Option<PathBuf> {
        fs::read_dir(dir.join("runs")).ok()?.find_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_string_lossy().into_owned();
            (name.contains(".partial-") && path.join("checkpoints").is_dir()).then_some(path)
        })
    }

    /// Starts `job` (mpirun) training with the config at `path` (its stderr piped), and waits
    /// until the run under `dir` has a checkpoint and both ranks are found: the job, the run's
    /// directory and the ranks' process ids.
    fn start_until_checkpoint(
        mut job: Command,
        path: &Path,
        dir: &Path,
    ) -> (Child, PathBuf, BTreeMap<usize, u32>) {
        let mut child = job
            .args(train_args(path))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let partial = wait_until(&mut child, "a checkpoint", || checkpointed(dir));
        let pid = child.id();
        let ranks = wait_until(&mut child, "both ranks", || {
            let r = ranks_of(pid);
            (r.len() == 2).then_some(r)
        });
        (child, partial, ranks)
    }

    /// Sends `signal` (`-KILL`, `-TERM`) to process `pid`.
    fn signal(signal: &str, pid: u32) {
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
    }

    fn wait_until<T>(child: &mut Child, what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if let Some(v) = ready() {
                return v;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the run ended ({status}) before {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("not {what} within two minutes");
    }

    /// Rank 1 killed (SIGKILL) in the middle of a run: `mpirun` ends the job with an error within
    /// seconds, not a hang; rank 0's checkpoint stands, and `mpirun -np 2 ember train --resume`
    /// from it ends with the weights and metrics of an uninterrupted 2-rank run, bit for bit.
    #[test]
    fn mpi_killed_rank_ends_the_job_and_the_run_resumes_bit_identically() {
        let Some(mut mpirun) = mpirun() else { return };
        // Six stages (GMF and MLP pre-training, NeuMF, each refit): every stage's model is new
        // to the gradient sync, and the ranks compare weights after every epoch.
        let model = "kind = \"neumf\"\nfactors = 8\nlayers = [16, 8]\npretrain = true";
        let train = "epochs = 2\nbatch_size = 32\ncheckpoint_every = 20\nrefit = true";
        let whole = tempfile::tempdir().unwrap();
        let path = config(whole.path(), "run", model, train);
        check(
            mpirun.args(train_args(&path)).output().unwrap(),
            "uninterrupted",
        );
        let expected_dir = whole.path().join("runs/run");
        let expected = (
            metrics(&expected_dir)["test"].clone(),
            weights(&expected_dir),
        );

        let cut = tempfile::tempdir().unwrap();
        let path = config(cut.path(), "run", model, train);
        let (mut child, partial, ranks) =
            start_until_checkpoint(self::mpirun().unwrap(), &path, cut.path());
        let killed = Instant::now();
        signal("-KILL", ranks[&1]);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "the job still runs a minute after rank 1 died"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        eprintln!(
            "the job ended {:.1} s after rank 1 was killed: {status}",
            killed.elapsed().as_secs_f64()
        );
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains("signal 9") || stderr.contains("Killed"),
            "mpirun names the dead rank: {stderr}"
        );
        // Rank 0 was ended by mpirun: its directory and checkpoint stand.
        assert!(partial.join("checkpoints").is_dir());
        let mut resume = self::mpirun().unwrap();
        check(
            resume
                .args([
                    "train",
                    "--resume",
                    partial.to_str().unwrap(),
                    "--no-progress",
                ])
                .output()
                .unwrap(),
            "resume with two ranks",
        );
        let resumed_dir = cut.path().join("runs/run");
        let resumed = (metrics(&resumed_dir)["test"].clone(), weights(&resumed_dir));
        assert_eq!(resumed.0, expected.0, "test metrics after the resume");
        assert!(resumed.1 == expected.1, "weights after the resume differ");
    }

    /// SIGTERM to the ranks (what Slurm's `scancel` sends every task): they stop at the same batch,
    /// write one checkpoint, rank 0 prints the `--resume` command, and the job exits 130.
    #[test]
    fn mpi_sigterm_to_the_ranks_stops_them_together_with_a_checkpoint() {
        let Some(job) = mpirun() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "term",
            "kind = \"neumf\"\nfactors = 8\nlayers = [16, 8]",
            "epochs = 50\nbatch_size = 32",
        );
        let (mut child, partial, ranks) = start_until_checkpoint(job, &path, dir.path());
        for &rank in ranks.values() {
            signal("-TERM", rank);
        }
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(130), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "continue with `ember train --resume {}`",
                partial.display()
            )),
            "{stderr}"
        );
        assert_eq!(
            stderr.matches("error:").count(),
            1,
            "rank 0 alone: {stderr}"
        );
    }

    /// Without the `mpi` feature a run started by mpirun is refused (each rank would train alone);
    /// with it, a run outside mpirun is one process, as before. This checks the latter.
    #[test]
    fn mpi_build_trains_alone_outside_mpirun() {
        let dir = tempfile::tempdir().unwrap();
        let path = config(
            dir.path(),
            "alone",
            "kind = \"mf\"\nfactors = 4",
            "epochs = 1",
        );
        let out = check(ember().args(train_args(&path)).output().unwrap(), "alone");
        assert!(String::from_utf8_lossy(&out.stdout).contains("run directory:"));
        let log = fs::read_to_string(dir.path().join("runs/alone/log.txt")).unwrap();
        assert!(!log.contains("ranks"), "{log}");
    }
}
