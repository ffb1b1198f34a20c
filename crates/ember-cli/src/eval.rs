//! `ember eval`: evaluate a finished run on its test split, and the metrics table that `ember
//! train` prints too.

use anyhow::Result;
use clap::Args;
use ember_metrics::{MetricsReport, NegativeSampling, Protocol};
use ember_train::Backend;
use std::io::Write;
use std::path::PathBuf;

use crate::ranks;

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory written by `ember train`.
    #[arg(long)]
    run: PathBuf,
    /// Backend.
    #[arg(long, default_value = "flex")]
    device: Backend,
    /// Protocol: `full`, `sampled:N`, `popularity:N` or `fixed` (default: the run's own).
    #[arg(long, value_parser = parse_protocol)]
    protocol: Option<Protocol>,
    /// Print the reports as JSON (`{"test": …, "baseline": …}`) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--protocol`'s value: `full`, `sampled:N`, `popularity:N` or `fixed`. The message of a bad
/// one is clap's `invalid value` line's tail, so it says the cause too.
fn parse_protocol(text: &str) -> Result<Protocol, String> {
    let sampled = |n: &str, sampling| -> Result<Protocol, String> {
        let negatives = n
            .parse()
            .map_err(|e| format!("`{n}` is not a number of negatives: {e}"))?;
        let p = Protocol::Sampled {
            negatives,
            sampling,
        };
        p.validate().map_err(|e| e.to_string())?;
        Ok(p)
    };
    match text.split_once(':') {
        None if text == "full" => Ok(Protocol::FullRanking),
        None if text == "fixed" => Ok(Protocol::FixedNegatives),
        Some(("sampled", n)) => sampled(n, NegativeSampling::Uniform),
        Some(("popularity", n)) => sampled(n, NegativeSampling::Popularity),
        _ => Err(format!(
            "unknown protocol `{text}`: use full, sampled:N, popularity:N or fixed"
        )),
    }
}

/// `ember eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    // Under mpirun the ranks share the users to score (with the `mpi` feature).
    let ranks = ranks::Ranks::join()?;
    let (test, popularity) =
        match ember_train::evaluate_run(&args.run, args.device, args.protocol, &ranks.group) {
            Ok(reports) => reports,
            Err(e) => {
                ranks.end_job(1);
                return Err(e.into());
            }
        };
    if !ranks.is_root() {
        return Ok(());
    }
    if args.json {
        let json = serde_json::json!({"test": test, "baseline": popularity});
        println!("{json}");
    } else {
        print_table(&[("test", &test), (baseline_label(&popularity), &popularity)]);
    }
    Ok(())
}

/// The baseline column's name: popularity for ranking runs, item means for rating runs.
pub(crate) fn baseline_label(baseline: &MetricsReport) -> &'static str {
    if baseline.is_rating() {
        "item means (test)"
    } else {
        "popularity (test)"
    }
}

/// One row per metric, one column per report; each report's protocol is listed under the table.
pub(crate) fn print_table(reports: &[(&str, &MetricsReport)]) {
    let mut out = String::new();
    let width = reports[0]
        .1
        .metrics
        .iter()
        .map(|(m, _)| m.chars().count() + 2)
        .max()
        .unwrap_or(16)
        .max(16);
    out.push_str(&format!("{:<width$}", "metric"));
    for (name, _) in reports {
        out.push_str(&format!("{name:>20}"));
    }
    out.push('\n');
    for (metric, _) in &reports[0].1.metrics {
        out.push_str(&format!("{metric:<width$}"));
        for (_, report) in reports {
            match report.get(metric) {
                Some(v) => out.push_str(&format!("{v:>20.4}")),
                None => out.push_str(&format!("{:>20}", "-")),
            }
        }
        out.push('\n');
    }
    for (name, report) in reports {
        out.push_str(&format!(
            "{name}: {} ({} users)\n",
            report.protocol, report.users
        ));
    }
    out.push_str(&group_table(reports));
    // Reports scored on the same candidates share their warnings: each is said once.
    let mut warnings: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, report) in reports {
        for warning in &report.warnings {
            match warnings.iter_mut().find(|(w, _)| *w == warning.as_str()) {
                Some((_, names)) => names.push(*name),
                None => warnings.push((warning.as_str(), vec![*name])),
            }
        }
    }
    for (warning, names) in warnings {
        out.push_str(&format!("warning ({}): {warning}\n", names.join(", ")));
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// The test metrics by group of users (training activity) of several reports side by side:
/// the metrics shown (NDCG and Recall at 10 when the run computes it, else at its first
/// cut-off), and one row per group that has users, with each report's values in turn.
pub(crate) struct GroupRows {
    /// The reports that break their metrics down, by name.
    pub reports: Vec<String>,
    pub metrics: Vec<String>,
    /// `(group, users, values)`: the values report by report, metric by metric.
    pub rows: Vec<(String, usize, Vec<Option<f64>>)>,
}

impl GroupRows {
    /// The breakdown of `reports`; `None` when they break nothing down.
    pub(crate) fn of(reports: &[(&str, &MetricsReport)]) -> Option<Self> {
        let reports: Vec<&(&str, &MetricsReport)> = reports
            .iter()
            .filter(|(_, r)| !r.groups.is_empty())
            .collect();
        let (_, first) = reports.first()?;
        let names: Vec<&str> = first
            .groups
            .iter()
            .find(|g| g.users > 0)?
            .metrics
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let k = match names.contains(&"NDCG@10") {
            true => "10",
            false => names.iter().find_map(|n| n.strip_prefix("NDCG@"))?,
        };
        let metrics = vec![format!("NDCG@{k}"), format!("Recall@{k}")];
        let rows = first
            .groups
            .iter()
            .enumerate()
            .filter(|(_, group)| group.users > 0)
            .map(|(g, group)| {
                let values = reports
                    .iter()
                    .flat_map(|(_, report)| {
                        metrics.iter().map(move |metric| {
                            let group = report.groups.get(g)?;
                            group
                                .metrics
                                .iter()
                                .find(|(n, _)| n == metric)
                                .map(|(_, v)| *v)
                        })
                    })
                    .collect();
                (group.group.clone(), group.users, values)
            })
            .collect();
        let reports = reports.iter().map(|(name, _)| name.to_string()).collect();
        Some(Self {
            reports,
            metrics,
            rows,
        })
    }
}

/// [`GroupRows`] as a text table; empty when the reports break nothing down.
fn group_table(reports: &[(&str, &MetricsReport)]) -> String {
    let Some(groups) = GroupRows::of(reports) else {
        return String::new();
    };
    let mut out = format!(
        "test metrics by training activity ({}):\n",
        groups.metrics.join(", ")
    );
    out.push_str(&format!("{:<34}{:>8}", "users", "count"));
    for name in &groups.reports {
        for metric in &groups.metrics {
            out.push_str(&format!("{:>28}", format!("{name} {metric}")));
        }
    }
    out.push('\n');
    for (group, users, values) in &groups.rows {
        out.push_str(&format!("{group:<34}{users:>8}"));
        for value in values {
            match value {
                Some(v) => out.push_str(&format!("{v:>28.4}")),
                None => out.push_str(&format!("{:>28}", "-")),
            }
        }
        out.push('\n');
    }
    out
}
