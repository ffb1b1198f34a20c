//! What the decision commands write: files and directories that appear whole (written under a
//! temporary name, renamed into place once complete, removed on failure), and progress bars.

use anyhow::{Context, Result, bail};
use ember_decide::destination::partial_name;
use ember_decide::{Destination, OutputKind};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};

/// The parent directory of `path`, created if needed ("." for a bare name).
fn parent(path: &Path) -> Result<PathBuf> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&parent).with_context(|| parent.display().to_string())?;
    Ok(parent)
}

/// Writes `bytes` at a checked destination, under a temporary name moved into place.
pub fn write_file(destination: &Destination, bytes: &[u8]) -> Result<()> {
    parent(destination.path())?;
    let partial = destination.partial();
    std::fs::write(&partial, bytes).with_context(|| partial.display().to_string())?;
    destination.place(&partial)?;
    Ok(())
}

/// An output directory written under a temporary name and renamed into place by
/// [`Self::commit`]; dropped uncommitted (an error), it is removed.
pub struct PartialDir {
    partial: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl PartialDir {
    /// Starts writing the new directory `target`, given with `flag`, after checking it
    /// against the output rule ([`Destination::check`]) for a command reading `inputs`.
    pub fn create(flag: &str, target: &Path, inputs: &[&Path]) -> Result<Self> {
        Destination::check(flag, target, OutputKind::Directory, inputs, false)?;
        parent(target)?;
        let partial = partial_name(target);
        std::fs::create_dir_all(&partial).with_context(|| partial.display().to_string())?;
        Ok(Self {
            partial,
            target: target.to_owned(),
            committed: false,
        })
    }

    /// Where `file` is written meanwhile.
    pub fn path(&self, file: &str) -> PathBuf {
        self.partial.join(file)
    }

    /// Writes `file`.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(file);
        std::fs::write(&path, bytes).with_context(|| path.display().to_string())
    }

    /// Renames the directory into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.partial, &self.target)
            .with_context(|| self.target.display().to_string())?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }
}

/// A progress bar over `total` customers on stderr, hidden when `show` is false or stderr is
/// not a terminal.
pub fn progress(total: u64, what: &str, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{human_pos}}/{{human_len}} customers, {{per_sec}}, eta {{eta}}"
        ))
        .expect("a valid template"),
    );
    bar
}

/// A spinner for a step with no countable progress.
pub fn spinner(message: String, show: bool) -> ProgressBar {
    let bar = if show {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// Today as days since 1970-01-01 (UTC), the day number decisions count contacts in.
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 86_400) as i64
}

/// A day as the user gives it (`YYYY-MM-DD` or a day number), named by `flag` in the error.
pub fn parse_day(text: &str, flag: &str) -> Result<i64> {
    ember_decide::parse_day(text)
        .with_context(|| format!("{flag} `{text}`: expected a date YYYY-MM-DD or a day number"))
}

/// The exclusion policy of `--exclude-known` (`all` when not given), checked against `model`
/// (`since:` needs an export with each known interaction's day) before anything is written.
pub fn exclusion(
    text: Option<&str>,
    model: &ember_decide::ExportedModel,
) -> Result<ember_decide::Known> {
    let Some(text) = text else {
        return Ok(ember_decide::Known::Exclude);
    };
    let policy = ember_decide::parse_exclusion(text).context("--exclude-known")?;
    model
        .check_exclusion(policy)
        .with_context(|| format!("--exclude-known {text}"))?;
    Ok(policy)
}

/// Loads the exported model in `dir`, saying what to do when `dir` is a training run (which
/// has weights but no `manifest.json`) rather than an export.
pub fn load_model(dir: &Path) -> Result<ember_decide::ExportedModel> {
    if !dir.join("manifest.json").exists() && dir.join("metrics.json").exists() {
        bail!(
            "{}: this is a training run directory, not an exported model: export it first \
             (`ember export --run {} --out models/NAME`), then use models/NAME",
            dir.display(),
            dir.display()
        );
    }
    ember_decide::ExportedModel::load(dir)
        .with_context(|| format!("loading the model {}", dir.display()))
}
