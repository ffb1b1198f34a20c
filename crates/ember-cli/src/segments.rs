//! `ember segments`: customer segments from the model's user vectors (k-means++, k chosen by
//! silhouette over a range), a 2-D map, profiles and outliers.

use anyhow::{Context, Result, bail};
use clap::Args;
use ember_charts::ScatterChart;
use ember_decide::segments::{MAX_K, MAX_K_VALUES, SegmentOptions, Segmentation, segment};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::output::{PartialDir, spinner};

#[derive(Args)]
pub struct SegmentsArgs {
    /// An exported model directory (`ember export`).
    #[arg(long)]
    model: PathBuf,
    /// Exactly this many segments.
    #[arg(long, conflicts_with = "k_range")]
    k: Option<usize>,
    /// Try every k of this range, e.g. 2..12 (inclusive), and keep the one with the best mean
    /// silhouette (default 2..8). At most 50 values, k ≤ 1000 and k ≤ half the customers.
    #[arg(long, value_name = "FROM..TO")]
    k_range: Option<String>,
    /// Seed of the k-means restarts and the silhouette's sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Top items listed per segment.
    #[arg(long, default_value_t = 10)]
    top_items: usize,
    /// Output directory (must not exist): map.png, segments.csv, assignments.csv,
    /// segments.json.
    #[arg(long)]
    out: PathBuf,
    /// Hide the progress spinner.
    #[arg(long)]
    no_progress: bool,
}

/// What `segments.json` holds, for people and for `ember report`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SegmentsSummary {
    /// Which model the segments come from (checked by `ember report`).
    pub model: crate::campaign::Provenance,
    pub k: usize,
    pub customers: usize,
    /// `(k, mean silhouette)` for each k tried.
    pub silhouettes: Vec<(usize, f64)>,
    /// The map's two components' shares of the variance.
    pub explained: [f64; 2],
    pub segments: Vec<SegmentSummary>,
    /// The names of the items in `segments`, by key as text, when the model names its items.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub item_names: BTreeMap<String, String>,
}

impl SegmentsSummary {
    /// How a summary shows `item`: with its name when it has one ([`ember_decide::label`]).
    pub fn item_label(&self, item: &ember_decide::Key) -> String {
        let name = self.item_names.get(&item.to_string());
        ember_decide::label(item, name.map(String::as_str))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SegmentSummary {
    pub id: usize,
    /// An automatic label from its most distinctive items (absent in summaries written
    /// before labels existed).
    #[serde(default)]
    pub label: Option<String>,
    pub size: usize,
    pub share: f64,
    /// `(item, share of the segment's customers who have it)`, most held first; the item key
    /// is a JSON number or string as the model's keys are.
    pub top_items: Vec<(ember_decide::Key, f64)>,
}

fn parse_range(text: &str) -> Result<(usize, usize)> {
    let parsed = text.split_once("..").and_then(|(a, b)| {
        Some((
            a.trim().parse().ok()?,
            b.trim_start_matches('=').trim().parse().ok()?,
        ))
    });
    let (a, b) = match parsed {
        Some((a, b)) if a >= 2 && b >= a => (a, b),
        _ => bail!("--k-range `{text}`: expected FROM..TO with 2 ≤ FROM ≤ TO, e.g. 2..12"),
    };
    if b - a >= MAX_K_VALUES || b > MAX_K {
        bail!(
            "--k-range `{text}` holds {} values of k: at most {MAX_K_VALUES} (each k is a k-means \
             fit with restarts) and k ≤ {MAX_K}, e.g. 2..12",
            b - a + 1
        );
    }
    Ok((a, b))
}

/// The k range to try for `customers` customers: the one asked for (`flag` names it), whose
/// k may be at most half the customers (a segment of fewer than 2 customers on average says
/// nothing), or the default 2..8 cut to that.
fn k_range_for(asked: Option<(usize, usize, String)>, customers: usize) -> Result<(usize, usize)> {
    let half = customers / 2;
    match asked {
        Some((_, k_max, flag)) if k_max > half => bail!(
            "{flag}: k may be at most half the customers ({customers} customers: k ≤ {half}), so \
             that a segment holds 2 customers on average"
        ),
        Some((k_min, k_max, _)) => Ok((k_min, k_max)),
        None => Ok((2, half.clamp(2, 8))),
    }
}

pub fn run(args: SegmentsArgs) -> Result<()> {
    let asked = match (args.k, &args.k_range) {
        (Some(k), _) if k < 2 => bail!("--k must be at least 2"),
        (Some(k), _) if k > MAX_K => bail!("--k {k}: at most {MAX_K} segments"),
        (Some(k), _) => Some((k, k, format!("--k {k}"))),
        (None, Some(range)) => {
            let (k_min, k_max) = parse_range(range)?;
            Some((k_min, k_max, format!("--k-range `{range}`")))
        }
        (None, None) => None,
    };
    let dir = PartialDir::create("--out", &args.out, &[&args.model])?;
    let model = crate::output::load_model(&args.model)?;
    let (k_min, k_max) = k_range_for(asked, model.manifest().user_ids.len())?;
    let options = SegmentOptions {
        k_min,
        k_max,
        seed: args.seed,
        top_items: args.top_items,
        ..SegmentOptions::default()
    };
    let show = !args.no_progress && std::io::stderr().is_terminal();
    let bar = spinner(
        format!(
            "segmenting {} customers, k = {k_min}..={k_max}",
            model.user_ids().len()
        ),
        show,
    );
    let segmentation = segment(&model, None, &options)?;
    bar.finish_and_clear();
    if k_max > k_min {
        println!("mean silhouette per k (higher is better):");
        for (k, s) in &segmentation.silhouettes {
            let mark = if *k == segmentation.k {
                "  ← chosen"
            } else {
                ""
            };
            println!("  k = {k:>2}: {s:.4}{mark}");
        }
    }
    segmentation.write_profiles_csv(&dir.path("segments.csv"))?;
    segmentation.write_assignments_csv(&dir.path("assignments.csv"))?;
    dir.write("map.png", &map_chart(&segmentation)?)?;
    let summary = summarise(
        &segmentation,
        crate::campaign::Provenance::of(&model, &args.model),
    );
    dir.write(
        "segments.json",
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!(
        "{} segments of {} customers:",
        segmentation.k, summary.customers
    );
    for s in &summary.segments {
        let items: Vec<String> = s
            .top_items
            .iter()
            .take(5)
            .map(|(item, share)| format!("{} ({:.0}%)", summary.item_label(item), share * 100.0))
            .collect();
        println!(
            "  segment {} ({}): {} customers ({:.1}%), most held: {}",
            s.id,
            s.label.as_deref().unwrap_or("unlabelled"),
            s.size,
            s.share * 100.0,
            items.join(", ")
        );
    }
    let written = dir.commit()?;
    println!(
        "wrote {}/ (map.png, segments.csv, assignments.csv, segments.json)",
        written.display()
    );
    Ok(())
}

fn summarise(s: &Segmentation, model: crate::campaign::Provenance) -> SegmentsSummary {
    SegmentsSummary {
        model,
        k: s.k,
        customers: s.assignments.len(),
        silhouettes: s.silhouettes.clone(),
        explained: s.explained,
        segments: s
            .segments
            .iter()
            .map(|seg| SegmentSummary {
                id: seg.id,
                label: Some(seg.label()),
                size: seg.size,
                share: seg.share,
                top_items: seg
                    .top_items
                    .iter()
                    .map(|i| (i.item.clone(), i.penetration))
                    .collect(),
            })
            .collect(),
        item_names: s
            .segments
            .iter()
            .flat_map(|seg| &seg.top_items)
            .filter_map(|i| Some((i.item.to_string(), i.name.clone()?)))
            .collect(),
    }
}

/// The map: each customer at their two principal components, coloured by segment.
fn map_chart(s: &Segmentation) -> Result<Vec<u8>> {
    let groups = s
        .segments
        .iter()
        .map(|seg| {
            let points = s
                .assignments
                .iter()
                .filter(|a| a.segment == seg.id)
                .map(|a| (a.x, a.y))
                .collect();
            (
                format!("segment {} ({} customers)", seg.id, seg.size),
                points,
            )
        })
        .collect();
    let chart = ScatterChart {
        title: if s.silhouettes.len() > 1 {
            format!("{} customer segments (k chosen by silhouette)", s.k)
        } else {
            format!("{} customer segments", s.k)
        },
        x_label: format!(
            "component 1 ({:.0}% of the variance)",
            s.explained[0] * 100.0
        ),
        y_label: format!(
            "component 2 ({:.0}% of the variance)",
            s.explained[1] * 100.0
        ),
        groups,
    };
    Ok(ember_charts::scatter(&chart, 1000, 720)?)
}

/// Reads a segments directory's `segments.json`.
pub fn read_summary(dir: &Path) -> Result<SegmentsSummary> {
    let path = dir.join("segments.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a segments summary written by `ember segments`",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_ranges_are_capped() {
        assert_eq!(parse_range("2..12").unwrap(), (2, 12));
        assert_eq!(parse_range("2..=51").unwrap(), (2, 51));
        assert_eq!(
            parse_range("2..2000").unwrap_err().to_string(),
            "--k-range `2..2000` holds 1999 values of k: at most 50 (each k is a k-means fit \
             with restarts) and k ≤ 1000, e.g. 2..12"
        );
        assert!(parse_range("990..1001").is_err());
        assert!(parse_range("1..4").is_err());
        let asked = |k_max| Some((2, k_max, "--k-range `2..x`".to_string()));
        assert_eq!(k_range_for(asked(50), 100).unwrap(), (2, 50));
        assert_eq!(
            k_range_for(asked(51), 100).unwrap_err().to_string(),
            "--k-range `2..x`: k may be at most half the customers (100 customers: k ≤ 50), so \
             that a segment holds 2 customers on average"
        );
        assert_eq!(k_range_for(None, 1000).unwrap(), (2, 8));
        assert_eq!(k_range_for(None, 11).unwrap(), (2, 5));
        assert_eq!(k_range_for(None, 3).unwrap(), (2, 2));
    }
}
