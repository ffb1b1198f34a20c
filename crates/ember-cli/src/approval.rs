//! Approval before sending: a campaign directory is a proposal. `ember campaign approve DIR
//! --by NAME` appends who approved which audience (the SHA-256 of `audience.csv`, the model's
//! run fingerprint, the time, a note) to `approvals.jsonl`; `ember campaign send-list DIR
//! --out FILE` writes the target customers for the CRM only when as many distinct people as
//! the campaign needs (`--approvals-needed`, recorded in `campaign.json`) approved the
//! audience exactly as it stands. An audience edited after its approval needs approving again.

use anyhow::{Context, Result, bail};
use clap::Args;
use ember_decide::campaign::{self, Arm};
use ember_decide::{AtomicFile, Destination, OutputKind};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The append-only record of approvals, in the campaign directory.
const APPROVALS: &str = "approvals.jsonl";

#[derive(Args)]
pub struct ApproveArgs {
    /// The campaign directory (`ember campaign … --out DIR`).
    dir: PathBuf,
    /// Who approves (a name or an e-mail address).
    #[arg(long)]
    by: String,
    /// Why, or on what condition.
    #[arg(long)]
    note: Option<String>,
}

#[derive(Args)]
pub struct SendListArgs {
    /// The campaign directory.
    dir: PathBuf,
    /// The CSV file to write: the target customers (`customer`), for the CRM.
    #[arg(long)]
    out: PathBuf,
    /// Replace `--out` if it exists (never an input).
    #[arg(long)]
    force: bool,
}

/// One line of `approvals.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved.
    pub by: String,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// What was approved: the SHA-256 of `audience.csv` as it stood.
    pub audience_sha256: String,
    /// The target customers it held.
    pub target_customers: usize,
    /// The run the model that chose the audience came from.
    pub run_fingerprint: String,
    /// The approver's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The campaign's audience as it stands: its hash and its target customers.
struct Standing {
    sha256: String,
    targets: Vec<ember_decide::Key>,
    run_fingerprint: String,
    needed: u32,
}

/// A hash as messages show it: its first 12 hex digits.
fn short(sha256: &str) -> &str {
    let hex = sha256.strip_prefix("sha256:").unwrap_or(sha256);
    &hex[..hex.len().min(12)]
}

fn standing(dir: &Path) -> Result<Standing> {
    let summary = crate::campaign::read_summary(dir)?;
    let path = dir.join("audience.csv");
    let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
    let kind = campaign::audience_key_kind(&path)?;
    let targets = campaign::read_audience(&path, kind)?
        .into_iter()
        .filter(|r| r.arm == Arm::Target)
        .map(|r| r.customer)
        .collect();
    Ok(Standing {
        sha256: ember_decide::sha256(&bytes),
        targets,
        run_fingerprint: summary.model.run_fingerprint,
        needed: summary.approvals_needed,
    })
}

/// The approvals recorded in `dir` (none when there is no record yet).
fn approvals(dir: &Path) -> Result<Vec<Approval>> {
    let path = dir.join(APPROVALS);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not an approval record", path.display(), n + 1))
        })
        .collect()
}

/// The distinct approvers of the audience as it stands.
fn approvers<'a>(records: &'a [Approval], now: &Standing) -> Vec<&'a str> {
    let mut names: Vec<&str> = records
        .iter()
        .filter(|a| a.audience_sha256 == now.sha256 && a.run_fingerprint == now.run_fingerprint)
        .map(|a| a.by.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The campaign's approval state in a sentence, for the report: who approved the audience as
/// it stands, against how many approvals it needs.
pub fn state(dir: &Path) -> Result<String> {
    let now = standing(dir)?;
    let records = approvals(dir)?;
    let valid = approvers(&records, &now);
    let stale = records.len()
        - records
            .iter()
            .filter(|a| a.audience_sha256 == now.sha256)
            .count();
    let changed = match stale {
        0 => String::new(),
        _ => " (earlier approvals were of an audience since changed)".into(),
    };
    Ok(if valid.len() >= now.needed as usize {
        format!(
            "Approved for sending by {} ({} of {} needed){changed}.",
            valid.join(", "),
            valid.len(),
            now.needed
        )
    } else {
        format!(
            "Not yet approved: {} of the {} approvals it needs{changed}. No send list can be \
             written before then.",
            valid.len(),
            now.needed
        )
    })
}

/// `ember campaign approve`.
pub fn approve(args: &ApproveArgs) -> Result<()> {
    let by = args.by.trim();
    if by.is_empty() {
        bail!("--by: name who approves");
    }
    let now = standing(&args.dir)?;
    let records = approvals(&args.dir)?;
    if approvers(&records, &now).contains(&by) {
        bail!(
            "{by} already approved this audience ({} target customers, sha256 {}): approvals \
             count distinct people",
            now.targets.len(),
            short(&now.sha256)
        );
    }
    let record = Approval {
        by: by.into(),
        at: now_utc(),
        audience_sha256: now.sha256.clone(),
        target_customers: now.targets.len(),
        run_fingerprint: now.run_fingerprint.clone(),
        note: args.note.clone(),
    };
    let path = args.dir.join(APPROVALS);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| path.display().to_string())?;
    let line = format!("{}\n", serde_json::to_string(&record)?);
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_all())
        .with_context(|| path.display().to_string())?;
    let count = approvers(&records, &now).len() + 1;
    println!(
        "approved by {by}: {} target customers (audience sha256 {}); {count} of the {} \
         approvals the campaign needs",
        now.targets.len(),
        short(&now.sha256),
        now.needed
    );
    Ok(())
}

/// `ember campaign send-list`.
pub fn send_list(args: &SendListArgs) -> Result<()> {
    let audience = args.dir.join("audience.csv");
    let destination = Destination::check(
        "--out",
        &args.out,
        OutputKind::CSV,
        &[args.dir.as_path(), audience.as_path()],
        args.force,
    )?;
    let now = standing(&args.dir)?;
    let records = approvals(&args.dir)?;
    let valid = approvers(&records, &now);
    if valid.len() < now.needed as usize {
        let stale = records
            .iter()
            .filter(|a| a.audience_sha256 != now.sha256 || a.run_fingerprint != now.run_fingerprint)
            .count();
        let changed = match stale {
            0 => String::new(),
            n => format!(
                "; {n} earlier approval(s) were of another audience: audience.csv changed since \
                 (now sha256 {}), so it must be approved again",
                short(&now.sha256)
            ),
        };
        bail!(
            "{}: the audience has {} of the {} approvals it needs{changed} (`ember campaign \
             approve {} --by NAME`)",
            args.dir.display(),
            valid.len(),
            now.needed,
            args.dir.display()
        );
    }
    let mut file = AtomicFile::at(&destination)?;
    file.write_row(&["customer"])?;
    for customer in &now.targets {
        file.write_row(&[customer.to_string()])?;
    }
    file.commit()?;
    println!(
        "wrote {} target customers to {} (approved by {})",
        now.targets.len(),
        args.out.display(),
        valid.join(", ")
    );
    Ok(())
}

/// Now, UTC, as RFC 3339 (`2026-12-08T03:20:00Z`).
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = ember_decide::format_day((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!(
        "{day}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}
