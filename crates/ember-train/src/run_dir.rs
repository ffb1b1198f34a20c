//! The run directory: everything about a run in one place, written under a temporary name and
//! renamed when the run completes, so that a failed run leaves nothing half-written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// A run directory being written.
#[derive(Debug)]
pub struct RunDir {
    partial: PathBuf,
    target: PathBuf,
    log: fs::File,
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
        let partial = output_dir.join(format!(".{file_name}.partial-{}", std::process::id()));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(TrainError::io(&partial))?;
        }
        fs::create_dir_all(&partial).map_err(TrainError::io(&partial))?;
        let log_path = partial.join("log.txt");
        let log = fs::File::create(&log_path).map_err(TrainError::io(&log_path))?;
        Ok(Self {
            partial,
            target,
            log,
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
            keep: false,
            scratch: true,
        })
    }

    /// Continues writing the partial directory `partial` of a stopped run, whose finished
    /// directory was to be `target` (or `target-1`, … when that exists now).
    pub fn reopen(partial: &Path, target: PathBuf) -> Result<Self, TrainError> {
        let log = open_log(&partial)?;
        Ok(Self {
            partial: partial.to_owned(),
            target,
            log,
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

    /// Writes a whole file.
    pub fn write(&self, file: &str, content: &str) -> Result<(), TrainError> {
        let path = self.path(file);
        fs::write(&path, content).map_err(TrainError::io(path))
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
    /// name appeared meanwhile), without its checkpoints.
    pub fn finish(mut self) -> Result<PathBuf, TrainError> {
        if self.scratch {
            return Ok(self.target.clone()); // removed on drop
        }
        for dir in [crate::checkpoint::DIR, crate::checkpoint::STAGES] {
            let path = self.partial.join(dir);
            if path.exists() {
                fs::remove_dir_all(&path).map_err(TrainError::io(&path))?;
            }
        }
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
        let mut n = 0;
        while self.target.exists() {
            n += 1;
            self.target = parent.join(format!("{name}-{n}"));
        }
        fs::rename(&self.partial, &self.target).map_err(TrainError::io(&self.target))?;
        self.keep = true; // nothing left at the partial name
        Ok(self.target.clone())
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
