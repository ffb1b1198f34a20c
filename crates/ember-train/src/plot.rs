//! Learning curves as a standalone SVG (`curves.svg` in the run directory): training loss and
//! the monitored validation metric per epoch, one line per training stage.

use std::fmt::Write;

/// One epoch of one stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochPoint {
    /// Stage label (`neumf`, `gmf`, …).
    pub stage: String,
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// The monitored validation metric, when validation ran.
    pub valid: Option<f64>,
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 260.0;
const MARGIN: f64 = 50.0;

/// Renders the two panels side by side.
pub fn learning_curves(points: &[EpochPoint], monitor: &str) -> String {
    let mut stages: Vec<&str> = Vec::new();
    for p in points {
        if !stages.contains(&p.stage.as_str()) {
            stages.push(&p.stage);
        }
    }
    let width = 2.0 * (PANEL_W + MARGIN) + MARGIN;
    let height = PANEL_H + 2.0 * MARGIN + 20.0 * stages.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let loss: Vec<(usize, usize, f64)> = points
        .iter()
        .map(|p| (stage_index(&stages, &p.stage), p.epoch, p.loss))
        .collect();
    let valid: Vec<(usize, usize, f64)> = points
        .iter()
        .filter_map(|p| {
            p.valid
                .map(|v| (stage_index(&stages, &p.stage), p.epoch, v))
        })
        .collect();
    panel(&mut svg, MARGIN, "training loss", &loss, stages.len());
    panel(
        &mut svg,
        2.0 * MARGIN + PANEL_W,
        &format!("validation {monitor}"),
        &valid,
        stages.len(),
    );
    for (i, stage) in stages.iter().enumerate() {
        let y = PANEL_H + 1.6 * MARGIN + 20.0 * i as f64;
        let _ = writeln!(
            svg,
            "<line x1=\"{MARGIN}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{stage}</text>",
            MARGIN + 24.0,
            COLORS[i % COLORS.len()],
            MARGIN + 30.0,
            y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn stage_index(stages: &[&str], stage: &str) -> usize {
    stages.iter().position(|s| *s == stage).unwrap_or(0)
}

/// One panel: axes, min/max labels, a polyline per stage.
fn panel(
    svg: &mut String,
    left: f64,
    title: &str,
    series: &[(usize, usize, f64)],
    n_stages: usize,
) {
    let top = MARGIN;
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{title}</text>",
        left,
        top - 12.0
    );
    let _ = writeln!(
        svg,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#888\"/>"
    );
    let finite: Vec<&(usize, usize, f64)> = series.iter().filter(|s| s.2.is_finite()).collect();
    if finite.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\">no data</text>",
            left + 10.0,
            top + 20.0
        );
        return;
    }
    let max_epoch = finite.iter().map(|s| s.1).max().unwrap_or(1).max(2) as f64;
    let lo = finite.iter().map(|s| s.2).fold(f64::INFINITY, f64::min);
    let hi = finite.iter().map(|s| s.2).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |epoch: usize| left + (epoch as f64 - 1.0) / (max_epoch - 1.0) * PANEL_W;
    let y = |v: f64| top + PANEL_H - (v - lo) / span * PANEL_H;
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{hi:.4}</text>",
        left - 4.0,
        top + 4.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{lo:.4}</text>",
        left - 4.0,
        top + PANEL_H
    );
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{}\">1</text>",
        top + PANEL_H + 16.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">epoch {max_epoch}</text>",
        left + PANEL_W,
        top + PANEL_H + 16.0
    );
    for stage in 0..n_stages {
        let coords: Vec<String> = finite
            .iter()
            .filter(|s| s.0 == stage)
            .map(|s| format!("{:.1},{:.1}", x(s.1), y(s.2)))
            .collect();
        if !coords.is_empty() {
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                COLORS[stage % COLORS.len()],
                coords.join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_polyline_per_stage_and_panel() {
        let mut points = Vec::new();
        for (stage, n) in [("gmf", 3), ("neumf", 4)] {
            for epoch in 1..=n {
                points.push(EpochPoint {
                    stage: stage.into(),
                    epoch,
                    loss: 1.0 / epoch as f64,
                    valid: Some(epoch as f64),
                });
            }
        }
        let svg = learning_curves(&points, "NDCG@10");
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(
            svg.contains("validation NDCG@10") && svg.contains(">gmf<") && svg.contains(">neumf<")
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
