//! The run directory: everything about a run in one place, written under a temporary name and
//! renamed when the run completes, so that a failed run leaves nothing half-written.
//!
//! The partial directory is `.<name>.partial-<pid>` beside where the run will be, and holds a
//! lock while a process trains it. Once its results are written it is renamed, and only then
//! loses what a partial run needs (checkpoints, finished stages, the lock): a failure at any
//! point leaves a run that `ember train --resume` can continue or finish.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::TrainError;

/// The lock file of a partial run directory.
const LOCK: &str = "lock";
/// What a partial directory's name holds between the run's name and the process id.
const PARTIAL: &str = ".partial-";

/// An exclusive lock on a partial run directory, held while a process trains it, so that a
/// second process refuses to train the same run. The kernel releases it when the holder ends,
/// however it ends: a killed run leaves no stale lock.
#[derive(Debug)]
pub struct RunLock {
    /// Holds the lock while open (`None` on a file system without locks).
    _file: Option<fs::File>,
}

impl RunLock {
    /// Locks the partial directory `dir`, or says which process holds it.
    pub fn take(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join(LOCK);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false) // the holder's pid, if there is one, is read below
            .open(&path)
            .map_err(TrainError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder writes its pid just after locking: it may not be there yet.
                let _ = file.read_to_string(&mut holder);
                let pid = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(TrainError::Resume {
                    run_dir: dir.to_owned(),
                    message: format!("another ember process{pid} is training this run"),
                });
            }
            // Some network file systems have no locks: a run there goes unguarded rather
            // than not at all.
            Err(fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                return Ok(Self { _file: None });
            }
            Err(fs::TryLockError::Error(e)) => return Err(TrainError::io(&path)(e)),
        }
        file.set_len(0).map_err(TrainError::io(&path))?;
        write!(file, "{}", std::process::id()).map_err(TrainError::io(&path))?;
        Ok(Self { _file: Some(file) })
    }
}

/// Whether `dir` is named as a partial run directory (`.<name>.partial-<pid>`); a finished
/// run's name never starts with a dot.
pub(crate) fn is_partial(dir: &Path) -> bool {
    partial_run_name(dir).is_some()
}

/// The name of the run a partial directory `dir` was to finish as.
pub(crate) fn partial_run_name(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?.strip_prefix('.')?;
    let (run, _) = name.rsplit_once(PARTIAL)?;
    (!run.is_empty()).then(|| run.to_string())
}

/// A run directory being written.
#[derive(Debug)]
pub struct RunDir {
    partial: PathBuf,
    target: PathBuf,
    log: fs::File,
    /// Held by the process that writes the directory (`None` for a rank's scratch directory).
    _lock: Option<RunLock>,
    /// Keep the partial directory if the run fails: it holds a checkpoint to resume from.
    keep: bool,
    /// A rank other than 0 of a distributed run: its directory is private and removed at the
    /// end, and it logs to its file only.
    scratch: bool,
}

impl RunDir {
    /// Starts `<output_dir>/<name>`; when that exists, `<name>-1`, `<name>-2`, … is used.
    pub fn create(output_dir: &Path, name: &str) -> Result<Self, TrainError> {
        if output_dir.exists() && !output_dir.is_dir() {
            // Otherwise the OS says only "File exists".
            return Err(TrainError::io(output_dir)(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "this is a file: output_dir (or --output-dir) must name a directory, where run \
                 directories are written",
            )));
        }
        fs::create_dir_all(output_dir).map_err(TrainError::io(output_dir))?;
        let mut target = output_dir.join(name);
        let mut n = 0;
        while target.exists() {
            n += 1;
            target = output_dir.join(format!("{name}-{n}"));
        }
        let file_name = target
            .file_name()
            .expect("has a name")
            .to_string_lossy()
            .into_owned();
        let stem = format!(".{file_name}{PARTIAL}{}", std::process::id());
        let mut partial = output_dir.join(&stem);
        let mut n = 0;
        // One of this name is left by a killed run whose process id came round again: it may
        // hold a checkpoint to resume, so it stays, and this run takes another name.
        while let Err(e) = fs::create_dir(&partial) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(TrainError::io(&partial)(e));
            }
            n += 1;
            partial = output_dir.join(format!("{stem}-{n}"));
        }
        let lock = RunLock::take(&partial)?;
        let log_path = partial.join("log.txt");
        let log = fs::File::create(&log_path).map_err(TrainError::io(&log_path))?;
        Ok(Self {
            partial,
            target,
            log,
            _lock: Some(lock),
            keep: false,
            scratch: false,
        })
    }

    /// A private directory for rank `rank` of a distributed run, which writes what rank 0
    /// writes but its checkpoints (its stage models are read back like rank 0's) and keeps none
    /// of it: removed when the run ends. With `from`, it starts with that directory's stage
    /// models (a resumed run).
    pub fn scratch(rank: usize, from: Option<&Path>) -> Result<Self, TrainError> {
        let partial = std::env::temp_dir().join(format!("ember-rank{rank}-{}", std::process::id()));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(TrainError::io(&partial))?;
        }
        fs::create_dir_all(&partial).map_err(TrainError::io(&partial))?;
        if let Some(stages) = from
            .map(|from| from.join(crate::checkpoint::STAGES))
            .filter(|stages| stages.is_dir())
        {
            copy_dir(&stages, &partial.join(crate::checkpoint::STAGES))?;
        }
        let log = open_log(&partial)?;
        Ok(Self {
            target: partial.clone(),
            partial,
            log,
            _lock: None,
            keep: false,
            scratch: true,
        })
    }

    /// Continues writing the partial directory `partial` of a stopped run, locked by `lock`,
    /// whose finished directory is to be `target` (or `target-1`, … when that exists then).
    pub fn reopen(partial: &Path, target: PathBuf, lock: RunLock) -> Result<Self, TrainError> {
        let log = open_log(partial)?;
        Ok(Self {
            partial: partial.to_owned(),
            target,
            log,
            _lock: Some(lock),
            keep: true,
            scratch: false,
        })
    }

    /// The (partial) directory being written.
    pub fn dir(&self) -> &Path {
        &self.partial
    }

    /// Keeps the directory when the run fails from now on: it holds a checkpoint.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Keeps the first `lines` lines of a file (a resumed run drops what came after its
    /// checkpoint).
    pub fn truncate_lines(&self, file: &str, lines: usize) -> Result<(), TrainError> {
        let path = self.path(file);
        if !path.exists() {
            return Ok(());
        }
        let text = fs::read_to_string(&path).map_err(TrainError::io(&path))?;
        let kept: String = text.lines().take(lines).map(|l| format!("{l}\n")).collect();
        if kept.len() != text.len() {
            fs::write(&path, kept).map_err(TrainError::io(path))?;
        }
        Ok(())
    }

    /// Where the run will be once finished.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// A file inside the (partial) directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.partial.join(file)
    }

    /// Writes a whole file, under a temporary name first: a file present is complete (a resume
    /// takes a run with `metrics.json` for one whose results are all written).
    pub fn write(&self, file: &str, content: &str) -> Result<(), TrainError> {
        let (path, writing) = (self.path(file), self.path(&format!(".{file}.writing")));
        fs::write(&writing, content).map_err(TrainError::io(&writing))?;
        fs::rename(&writing, &path).map_err(TrainError::io(path))
    }

    /// Writes a whole binary file (a chart).
    pub fn write_bytes(&self, file: &str, content: &[u8]) -> Result<(), TrainError> {
        let path = self.path(file);
        fs::write(&path, content).map_err(TrainError::io(path))
    }

    /// Appends a line to a file (e.g. JSON lines).
    pub fn append_line(&self, file: &str, line: &str) -> Result<(), TrainError> {
        let path = self.path(file);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(TrainError::io(&path))?;
        writeln!(f, "{line}").map_err(TrainError::io(path))
    }

    /// Logs a line to the run's `log.txt` and to the tracing subscriber.
    pub fn log(&mut self, line: &str) {
        if !self.scratch {
            tracing::info!("{line}");
        }
        // The log is best effort: a failed write must not stop training.
        let _ = writeln!(self.log, "{line}");
    }

    /// Renames the directory to its final name (with a number added when a directory of that
    /// name appeared meanwhile), then removes what only a partial run needs: its checkpoints,
    /// finished stages and lock. A failed rename leaves the partial directory whole, for
    /// `ember train --resume` to finish.
    pub fn finish(mut self) -> Result<PathBuf, TrainError> {
        if self.scratch {
            return Ok(self.target.clone()); // removed on drop
        }
        // The directory holds a whole run from here on: it stays, whatever fails.
        self.keep = true;
        let (parent, name) = (
            self.target
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            self.target
                .file_name()
                .expect("has a name")
                .to_string_lossy()
                .into_owned(),
        );
        let mut target = self.target.clone();
        let mut n = 0;
        // Taken by anything, a dangling link too (onto which a directory cannot be renamed).
        while fs::symlink_metadata(&target).is_ok() {
            n += 1;
            target = parent.join(format!("{name}-{n}"));
        }
        fs::rename(&self.partial, &target).map_err(|source| TrainError::Unrenamed {
            run_dir: self.partial.clone(),
            target: target.clone(),
            source,
        })?;
        for leftover in [crate::checkpoint::DIR, crate::checkpoint::STAGES, LOCK] {
            let path = target.join(leftover);
            let removed = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
                Ok(_) => fs::remove_file(&path),
                Err(_) => Ok(()),
            };
            // The run is finished and in place: what is left over only takes space.
            if let Err(e) = removed {
                tracing::warn!(
                    "{}: {e}; the run is finished, this can be deleted",
                    path.display()
                );
            }
        }
        Ok(target)
    }
}

/// The log of the run directory `dir`, opened to append.
fn open_log(dir: &Path) -> Result<fs::File, TrainError> {
    let path = dir.join("log.txt");
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(TrainError::io(&path))
}

/// Copies the directory tree `from` to `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), TrainError> {
    fs::create_dir_all(to).map_err(TrainError::io(to))?;
    for entry in fs::read_dir(from).map_err(TrainError::io(from))? {
        let entry = entry.map_err(TrainError::io(from))?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &dest)?;
        } else {
            fs::copy(&source, &dest).map_err(TrainError::io(&source))?;
        }
    }
    Ok(())
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Reached with the partial directory still present only when the run failed: without a
        // checkpoint there is nothing to keep.
        if (self.scratch || !self.keep) && self.partial.exists() {
            let _ = fs::remove_dir_all(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_directory_names_its_run() {
        let name = |dir: &str| partial_run_name(Path::new(dir));
        assert_eq!(name("runs/.whole.partial-12").as_deref(), Some("whole"));
        assert_eq!(
            name(".a.partial-b.partial-3-1").as_deref(),
            Some("a.partial-b")
        );
        assert_eq!(name("runs/whole"), None);
        assert_eq!(name("runs/.partial-3"), None);
        assert!(!is_partial(Path::new("runs/whole.partial-3")));
    }

    /// flock locks belong to an open file, so a second open in the same process contends as
    /// another process would.
    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::take(dir.path()).unwrap();
        let err = RunLock::take(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot resume {}: another ember process (pid {}) is training this run",
                dir.path().display(),
                std::process::id()
            )
        );
        drop(first);
        RunLock::take(dir.path()).unwrap();
    }

    /// A partial directory of this process's id is a killed run's whose id came round again:
    /// it may hold a checkpoint, and is left alone.
    #[test]
    fn a_new_run_leaves_an_old_partial_directory_of_its_pid_alone() {
        let out = tempfile::tempdir().unwrap();
        let old = out
            .path()
            .join(format!(".x.partial-{}", std::process::id()));
        fs::create_dir_all(old.join("checkpoints")).unwrap();
        let run = RunDir::create(out.path(), "x").unwrap();
        assert_eq!(
            run.dir(),
            out.path()
                .join(format!(".x.partial-{}-1", std::process::id()))
        );
        assert!(old.join("checkpoints").is_dir());
        assert_eq!(partial_run_name(run.dir()).as_deref(), Some("x"));
    }
}
