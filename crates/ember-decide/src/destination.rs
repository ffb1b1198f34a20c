//! Where a command may write: the one rule every output of ember follows.
//!
//! - An output is written under a temporary name beside its target and renamed into place once
//!   complete (files: [`crate::AtomicFile`]; directories: the caller's partial directory), so a
//!   reader never sees half of it.
//! - An existing file is refused unless the command was given `--force`; an existing directory
//!   is always refused (a directory can hold anything, and ember never deletes one).
//! - Never, even with `--force`, a path that is one of the command's inputs (the same file by
//!   any name: links are followed, hard links compared by inode), one that lies inside an
//!   input directory, or one that lies inside a run directory or an exported model directory:
//!   those are written by `ember train` and `ember export` alone.
//! - A file's extension must name the format that is written (`--out report.json` for an HTML
//!   report is refused).
//!
//! [`Destination::check`] applies the rule before any work is done; the rename at the end
//! refuses to replace a file that appeared meanwhile unless replacing was allowed.

use std::path::{Component, Path, PathBuf};

use crate::DecideError;

/// What a command writes at a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A file of a format, named by its accepted extensions (lower case, without the dot).
    File {
        /// The format, as a person names it (`CSV`, `HTML`).
        format: &'static str,
        /// The extensions that name it; the first is the one suggested.
        extensions: &'static [&'static str],
    },
    /// A new directory.
    Directory,
}

impl OutputKind {
    /// A CSV file.
    pub const CSV: OutputKind = OutputKind::File {
        format: "CSV",
        extensions: &["csv"],
    };
    /// An HTML file.
    pub const HTML: OutputKind = OutputKind::File {
        format: "HTML",
        extensions: &["html", "htm"],
    };
    /// A Parquet file.
    pub const PARQUET: OutputKind = OutputKind::File {
        format: "Parquet",
        extensions: &["parquet"],
    };
}

/// A checked place to write an output: see the module's rule.
#[derive(Debug, Clone)]
pub struct Destination {
    path: PathBuf,
    replace: bool,
}

/// Which of ember's own directories a path lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Artefact {
    Run,
    Model,
}

impl Artefact {
    /// Whether `dir` is one of ember's run or model directories, by the files only they hold.
    fn of(dir: &Path) -> Option<Self> {
        let has = |file: &str| dir.join(file).exists();
        if has("manifest.json") && has("model.safetensors") {
            Some(Artefact::Model)
        } else if has("config.toml")
            && (has("metrics.json") || has("inputs.json") || has("checkpoints"))
        {
            Some(Artefact::Run)
        } else {
            None
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Artefact::Run => "a training run directory (written by `ember train` alone)",
            Artefact::Model => "an exported model directory (written by `ember export` alone)",
        }
    }
}

/// `path` made absolute, with links resolved as far as it exists: the longest existing
/// ancestor is canonicalised and the rest appended, `..` taken lexically after it.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut out = canonical;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalise(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return normalise(&absolute),
        }
    }
}

/// `path` with `.` and `..` taken lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether two existing paths are the same file (hard links included).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

impl Destination {
    /// Checks that `path`, given with `flag` (e.g. `--out`), may receive `kind` from a command
    /// that reads `inputs` (files or directories; those that do not exist are ignored), and
    /// whether an existing file may be replaced (`force`). Nothing is written.
    pub fn check(
        flag: &str,
        path: &Path,
        kind: OutputKind,
        inputs: &[&Path],
        force: bool,
    ) -> Result<Self, DecideError> {
        let refuse =
            |why: String| DecideError::Invalid(format!("{flag} {}: {why}", path.display()));
        if let OutputKind::File { format, extensions } = kind {
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if !extension.is_some_and(|e| extensions.contains(&e.as_str())) {
                return Err(refuse(format!(
                    "this command writes {format}: name a .{} file",
                    extensions.join(" or .")
                )));
            }
        }
        let target = resolve(path);
        for input in inputs.iter().filter(|i| i.exists()) {
            let input_resolved = resolve(input);
            if target == input_resolved || same_file(&target, input) {
                return Err(refuse(format!(
                    "this is one of the command's inputs ({}); outputs never overwrite an input, \
                     even with --force",
                    input.display()
                )));
            }
            if input.is_dir() && target.starts_with(&input_resolved) {
                return Err(refuse(format!(
                    "this lies inside the input directory {}; write outputs elsewhere",
                    input.display()
                )));
            }
        }
        // The target itself may be a run or model directory, or lie inside one.
        let mut ancestor = Some(target.as_path());
        while let Some(dir) = ancestor {
            if let Some(artefact) = Artefact::of(dir) {
                return Err(refuse(format!(
                    "{} is {}; write outputs elsewhere, even with --force",
                    dir.display(),
                    artefact.describe()
                )));
            }
            ancestor = dir.parent();
        }
        match (std::fs::symlink_metadata(&target), kind) {
            (Err(_), _) => {}
            (Ok(_), OutputKind::Directory) => {
                return Err(refuse(
                    "already exists; choose a new directory (ember never replaces or deletes a \
                     directory)"
                        .into(),
                ));
            }
            (Ok(meta), OutputKind::File { .. }) if meta.is_dir() => {
                return Err(refuse("is a directory: name a file".into()));
            }
            (Ok(_), OutputKind::File { .. }) if !force => {
                return Err(refuse(
                    "already exists; choose a new name, or give --force to replace it".into(),
                ));
            }
            (Ok(_), OutputKind::File { .. }) => {}
        }
        Ok(Self {
            path: path.to_owned(),
            replace: force,
        })
    }

    /// A destination inside a new directory this command is writing (its partial directory):
    /// nothing there can be an input.
    pub fn fresh(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            replace: false,
        }
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an existing file there may be replaced.
    pub fn replace(&self) -> bool {
        self.replace
    }

    /// The temporary name the output is written under: `.NAME.partial-PID` beside it.
    pub fn partial(&self) -> PathBuf {
        partial_name(&self.path)
    }

    /// Moves the complete output at `partial` into place: a rename when replacing is allowed,
    /// else a link that fails when a file appeared there meanwhile (then `partial` is removed
    /// and nothing is replaced).
    pub fn place(&self, partial: &Path) -> Result<(), DecideError> {
        let result = if self.replace {
            std::fs::rename(partial, &self.path)
        } else {
            place_new(partial, &self.path)
        };
        result.map_err(|source| {
            let _ = std::fs::remove_file(partial);
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                DecideError::Invalid(format!(
                    "{}: a file appeared there while this command ran; nothing was replaced \
                     (give --force to replace it)",
                    self.path.display()
                ))
            } else {
                DecideError::Io {
                    path: self.path.clone(),
                    source,
                }
            }
        })
    }
}

/// The temporary name of `path` while it is written: `.NAME.partial-PID` beside it.
pub fn partial_name(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Renames `from` to `to` only if `to` does not exist: a hard link (atomic, fails with
/// `AlreadyExists`), then the temporary name removed. File systems without hard links get a
/// check and a rename.
fn place_new(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if to.exists() => Err(std::io::ErrorKind::AlreadyExists.into()),
        Err(_) => std::fs::rename(from, to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<Destination, DecideError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn an_existing_file_needs_force_and_an_input_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("u.csv");
        std::fs::write(&data, "user\n1\n").unwrap();
        let out = dir.path().join("recs.csv");
        Destination::check("--out", &out, OutputKind::CSV, &[&data], false).unwrap();
        std::fs::write(&out, "old").unwrap();
        assert_eq!(
            message(Destination::check(
                "--out",
                &out,
                OutputKind::CSV,
                &[&data],
                false
            )),
            format!(
                "--out {}: already exists; choose a new name, or give --force to replace it",
                out.display()
            )
        );
        assert!(Destination::check("--out", &out, OutputKind::CSV, &[&data], true).is_ok());
        for force in [false, true] {
            let m = message(Destination::check(
                "--out",
                &data,
                OutputKind::CSV,
                &[&data],
                force,
            ));
            assert!(m.contains("this is one of the command's inputs"), "{m}");
        }
        // The same file by another name: through `..`, and through a hard link.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let dotted = sub.join("../u.csv");
        let m = message(Destination::check(
            "--out",
            &dotted,
            OutputKind::CSV,
            &[&data],
            true,
        ));
        assert!(m.contains("one of the command's inputs"), "{m}");
        let linked = dir.path().join("linked.csv");
        std::fs::hard_link(&data, &linked).unwrap();
        let m = message(Destination::check(
            "--out",
            &linked,
            OutputKind::CSV,
            &[&data],
            true,
        ));
        assert!(m.contains("one of the command's inputs"), "{m}");
    }

    #[test]
    fn run_and_model_directories_are_never_written_into() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("runs/r");
        std::fs::create_dir_all(&run).unwrap();
        for file in ["config.toml", "metrics.json"] {
            std::fs::write(run.join(file), "").unwrap();
        }
        let model = dir.path().join("models/m");
        std::fs::create_dir_all(&model).unwrap();
        for file in ["manifest.json", "model.safetensors"] {
            std::fs::write(model.join(file), "").unwrap();
        }
        let m = message(Destination::check(
            "--out",
            &run.join("metrics.html"),
            OutputKind::HTML,
            &[],
            true,
        ));
        assert!(m.contains("is a training run directory"), "{m}");
        let m = message(Destination::check(
            "--out",
            &model.join("new/audience"),
            OutputKind::Directory,
            &[],
            false,
        ));
        assert!(m.contains("is an exported model directory"), "{m}");
    }

    #[test]
    fn the_extension_must_name_the_format() {
        let m = message(Destination::check(
            "--out",
            Path::new("runs/r/metrics.json"),
            OutputKind::HTML,
            &[],
            false,
        ));
        assert_eq!(
            m,
            "--out runs/r/metrics.json: this command writes HTML: name a .html or .htm file"
        );
        assert!(
            Destination::check("--out", Path::new("x/R.HTML"), OutputKind::HTML, &[], false)
                .is_ok()
        );
    }

    #[test]
    fn directories_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        for force in [false, true] {
            let m = message(Destination::check(
                "--out",
                dir.path(),
                OutputKind::Directory,
                &[],
                force,
            ));
            assert!(m.contains("already exists; choose a new directory"), "{m}");
        }
    }

    #[test]
    fn placing_never_replaces_a_file_that_appeared_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.csv");
        let destination = Destination::check("--out", &out, OutputKind::CSV, &[], false).unwrap();
        std::fs::write(&out, "someone else's").unwrap();
        let partial = destination.partial();
        std::fs::write(&partial, "ours").unwrap();
        let m = destination.place(&partial).unwrap_err().to_string();
        assert!(
            m.contains("a file appeared there while this command ran"),
            "{m}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "someone else's");
        assert!(!partial.exists());
        let forced = Destination::check("--out", &out, OutputKind::CSV, &[], true).unwrap();
        std::fs::write(&partial, "ours").unwrap();
        forced.place(&partial).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ours");
    }
}
