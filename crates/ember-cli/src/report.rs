//! `ember report`: one self-contained HTML file about a run, for a marketing director: the
//! data, the learning curves, the metrics with the protocol behind each, and when given the
//! campaigns' gains and lift with their headline numbers and the segment map. Images are
//! inlined as `data:` URIs and the style sheet is inline: the file fetches nothing, opens
//! offline and prints.

use anyhow::{Context, Result};
use clap::Args;
use ember_charts::EpochPoint;
use ember_decide::{Destination, OutputKind};
use ember_metrics::MetricsReport;
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::campaign::{self, CampaignSummary};
use crate::output::write_file;
use crate::segments::{self, SegmentsSummary};

#[derive(Args)]
pub struct ReportArgs {
    /// A run directory written by `ember train`.
    run: PathBuf,
    /// A campaign directory written by `ember campaign` (repeat for several campaigns).
    #[arg(long)]
    campaign: Vec<PathBuf>,
    /// A segments directory written by `ember segments`.
    #[arg(long)]
    segments: Option<PathBuf>,
    /// A field test's measurement, written by `ember campaign measure --out DIR` (repeat for
    /// several).
    #[arg(long)]
    measure: Vec<PathBuf>,
    /// The HTML file to write (`.html`).
    #[arg(long)]
    out: PathBuf,
    /// Replace `--out` if it exists (never an input, nor a file inside a run or model
    /// directory).
    #[arg(long)]
    force: bool,
}

/// `metrics.json` of a run.
#[derive(Deserialize)]
struct RunMetrics {
    model: String,
    best_epoch: usize,
    monitor: String,
    #[serde(default)]
    refit: bool,
    validation: MetricsReport,
    test: MetricsReport,
    popularity_test: MetricsReport,
    #[serde(default)]
    extra_protocols: Vec<ExtraProtocol>,
}

#[derive(Deserialize)]
struct ExtraProtocol {
    test: MetricsReport,
    popularity_test: MetricsReport,
}

/// One line of `metrics.jsonl`.
#[derive(Deserialize)]
struct EpochLine {
    stage: String,
    epoch: usize,
    loss: f64,
    #[serde(default)]
    valid: Option<serde_json::Map<String, Value>>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| format!("{}: unexpected content", path.display()))
}

pub fn run(args: ReportArgs) -> Result<()> {
    let mut inputs: Vec<&Path> = vec![&args.run];
    inputs.extend(args.campaign.iter().map(PathBuf::as_path));
    inputs.extend(args.segments.as_deref());
    inputs.extend(args.measure.iter().map(PathBuf::as_path));
    let destination =
        Destination::check("--out", &args.out, OutputKind::HTML, &inputs, args.force)?;
    let mut html = render(&args.run, &args.campaign, args.segments.as_deref())?;
    let mut measured = String::new();
    for dir in &args.measure {
        measure_section(&mut measured, dir)?;
    }
    // The field tests go before the closing note.
    let at = html
        .rfind("<p class=\"note\">Written by")
        .unwrap_or(html.len());
    html.insert_str(at, &measured);
    write_file(&destination, html.as_bytes())?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// HTML-escapes text.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Standard base64 (RFC 4648) of `bytes`, for `data:` URIs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn image(png: &[u8], alt: &str) -> String {
    format!(
        "<img src=\"data:image/png;base64,{}\" alt=\"{}\">",
        base64(png),
        esc(alt)
    )
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        group(x as i64)
    } else {
        format!("{x:.2}")
    }
}

/// An integer with thousands separators.
fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif; color: #1a1a1a;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #0072b2; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
.lead { color: #444; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.95em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f5f8; }
.headline { display: flex; flex-wrap: wrap; gap: 1em; margin: 1em 0; }
.figure { border: 1px solid #ccd; border-radius: 6px; padding: 0.6em 1em; min-width: 11em; }
.figure b { display: block; font-size: 1.5em; color: #0072b2; }
.note { color: #555; font-size: 0.9em; }
.warning { color: #8a1c1c; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
@media print {
  body { max-width: none; margin: 0; }
  h2 { page-break-before: auto; page-break-after: avoid; }
  img, table, .headline { page-break-inside: avoid; }
  .charts { grid-template-columns: 1fr; }
}
";

/// Renders the whole report.
pub fn render(run: &Path, campaigns: &[PathBuf], segments: Option<&Path>) -> Result<String> {
    let metrics: RunMetrics = read_json(&run.join(ember_train::files::METRICS))?;
    let data: Value = read_json(&run.join(ember_train::files::DATA))?;
    let name = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run.display().to_string());
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>ember report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&name)
    );
    let _ = write!(
        h,
        "<h1>Recommendation model report: {}</h1>\n<p class=\"lead\">Model <b>{}</b>, \
         epoch {} chosen on validation {}{}. Every figure below names the data and the \
         protocol that produced it.</p>\n",
        esc(&name),
        esc(&metrics.model),
        metrics.best_epoch,
        esc(&metrics.monitor),
        if metrics.refit {
            ", then trained again on training + validation data"
        } else {
            ""
        }
    );
    summary_section(&mut h, &metrics, campaigns)?;
    data_section(&mut h, &data);
    curves_section(&mut h, run, &metrics.monitor)?;
    metrics_section(&mut h, &metrics);
    for dir in campaigns {
        campaign_section(&mut h, dir, run)?;
    }
    if let Some(dir) = segments {
        segments_section(&mut h, dir, run)?;
    }
    h.push_str(
        "<p class=\"note\">Written by <code>ember report</code>. This file is self-contained: \
         its charts are embedded and it loads nothing from the network.</p>\n</body>\n</html>\n",
    );
    Ok(h)
}

/// The decision first, for a reader with a minute: how much better than the best sellers the
/// model ranks, and for each campaign whom to send it to, what held-out data says it finds, and
/// whether it is approved; then what to do next. The evidence follows below.
fn summary_section(h: &mut String, m: &RunMetrics, campaigns: &[PathBuf]) -> Result<()> {
    h.push_str("<h2>In short</h2>\n<ul>\n");
    if let (Some(model), Some(best_sellers)) =
        (m.test.get(&m.monitor), m.popularity_test.get(&m.monitor))
    {
        let figures = format!("{} {model:.3} against {best_sellers:.3}", esc(&m.monitor));
        let _ = if model >= best_sellers {
            let against = match best_sellers > 0.0 {
                true => format!("{:.2} times", model / best_sellers),
                false => "far".into(),
            };
            writeln!(
                h,
                "<li>On customers' later choices it did not see, the model ranks {against} as \
                 well as recommending the best sellers to everyone ({figures}).</li>"
            )
        } else {
            writeln!(
                h,
                "<li class=\"warning\">On customers' later choices it did not see, the model \
                 ranks <b>worse</b> than recommending the best sellers to everyone ({figures}): \
                 do not base a campaign on it before it beats them.</li>"
            )
        };
    }
    for dir in campaigns {
        let c: CampaignSummary = campaign::read_summary(dir)?;
        let item = ember_decide::label(&c.item, c.item_name.as_deref());
        let found = match &c.evaluation {
            Some(e) => match e.lift_interval {
                Some((low, high)) => format!(
                    " On held-out purchases, the customers it picks buy {:.2} times as often as \
                     customers picked at random (95% interval {low:.2} to {high:.2}).",
                    e.lift
                ),
                None => " No held-out purchase of the item was there to check the choice.".into(),
            },
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<li><b>{}</b>: send to the {} customers the model chose, keeping {} more, drawn at \
             random, as a control group that proves the effect.{found} {}</li>",
            esc(&item),
            group(c.target as i64),
            group(c.control as i64),
            esc(&crate::approval::state(dir)?)
        );
    }
    h.push_str(
        "<li>Next: once approved, send the list; after the campaign, compare the customers who \
         were contacted with the control group: that difference, not the figures above, is the \
         campaign's effect.</li>\n</ul>\n",
    );
    Ok(())
}

fn data_section(h: &mut String, data: &Value) {
    h.push_str("<h2>The data</h2>\n");
    if let Some(source) = data.get("source").and_then(Value::as_str) {
        let _ = writeln!(h, "<p>Source: {}</p>", esc(source));
    }
    if let Some(Value::Object(stats)) = data.get("dataset") {
        h.push_str(
            "<table><tr><th>customers</th><th>items</th><th>training interactions</th>\
                    <th>validation</th><th>test</th><th>density</th></tr><tr>",
        );
        let get = |k: &str| stats.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}%</td>",
            number(get("users")),
            number(get("items")),
            number(get("train")),
            number(get("valid")),
            number(get("test")),
            get("density") * 100.0
        );
        h.push_str("</tr></table>\n");
    }
    if let Some(Value::Object(prep)) = data.get("preprocess") {
        h.push_str("<table><tr><th>preparation step</th><th>count</th></tr>");
        for (key, value) in prep {
            let shown = match value {
                Value::Number(n) => number(n.as_f64().unwrap_or(f64::NAN)),
                Value::Null => "–".into(),
                other => esc(&other.to_string()),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{shown}</td></tr>",
                esc(&key.replace('_', " "))
            );
        }
        h.push_str("</table>\n");
    }
}

fn curves_section(h: &mut String, run: &Path, monitor: &str) -> Result<()> {
    h.push_str("<h2>How the model learned</h2>\n");
    let path = run.join(ember_train::files::EPOCHS);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut points = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let e: EpochLine = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not an epoch line", path.display(), n + 1))?;
        points.push(EpochPoint {
            stage: e.stage,
            epoch: e.epoch,
            loss: e.loss,
            valid: e
                .valid
                .as_ref()
                .and_then(|v| v.get(monitor))
                .and_then(Value::as_f64),
        });
    }
    let png = ember_charts::learning_curves(&points, monitor)?;
    h.push_str(&image(
        &png,
        "learning curves: training loss and validation metric per epoch",
    ));
    let _ = writeln!(
        h,
        "<p class=\"note\">Left: the training loss per epoch (lower is a better fit to the \
         training data). Right: {} on the validation interactions, which the model did not \
         train on; the epoch with the best value was kept.</p>",
        esc(monitor)
    );
    Ok(())
}

fn metrics_table(h: &mut String, columns: &[(&str, &MetricsReport)]) {
    h.push_str("<table><tr><th>metric</th>");
    for (name, _) in columns {
        let _ = write!(h, "<th>{}</th>", esc(name));
    }
    h.push_str("</tr>\n");
    for (metric, _) in &columns[0].1.metrics {
        let _ = write!(h, "<tr><td>{}</td>", esc(metric));
        for (_, report) in columns {
            match report.get(metric) {
                Some(v) => {
                    let _ = write!(h, "<td>{v:.4}</td>");
                }
                None => h.push_str("<td>–</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    group_table(h, columns);
    h.push_str("<p class=\"note\">");
    for (name, report) in columns {
        let _ = write!(
            h,
            "<b>{}</b>: {} ({} customers).<br>",
            esc(name),
            esc(&report.protocol),
            group(report.users as i64)
        );
    }
    h.push_str("</p>\n");
}

/// The test metrics by training activity, where the reports break them down: where a model
/// is weakest (customers with little history, as a rule).
fn group_table(h: &mut String, columns: &[(&str, &MetricsReport)]) {
    let Some(groups) = crate::eval::GroupRows::of(columns) else {
        return;
    };
    let _ = write!(
        h,
        "<p>By how much history a customer had in training ({}):</p>\n<table><tr><th>customers</th><th>count</th>",
        esc(&groups.metrics.join(", "))
    );
    for name in &groups.reports {
        for metric in &groups.metrics {
            let _ = write!(h, "<th>{} {}</th>", esc(name), esc(metric));
        }
    }
    h.push_str("</tr>\n");
    for (band, users, values) in &groups.rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td>",
            esc(band),
            group(*users as i64)
        );
        for value in values {
            match value {
                Some(v) => {
                    let _ = write!(h, "<td>{v:.4}</td>");
                }
                None => h.push_str("<td>–</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn metrics_section(h: &mut String, m: &RunMetrics) {
    h.push_str("<h2>How good the recommendations are</h2>\n");
    h.push_str(
        "<p>Each held-out interaction is ranked among candidate items; higher is better for \
         every metric but RMSE and MAE. The popularity column is the baseline of recommending \
         the best sellers to everyone.</p>\n",
    );
    metrics_table(
        h,
        &[
            ("validation", &m.validation),
            ("test", &m.test),
            ("popularity (test)", &m.popularity_test),
        ],
    );
    for extra in &m.extra_protocols {
        metrics_table(
            h,
            &[
                ("test", &extra.test),
                ("popularity (test)", &extra.popularity_test),
            ],
        );
    }
}

fn headline(h: &mut String, figures: &[(String, String)]) {
    h.push_str("<div class=\"headline\">");
    for (value, label) in figures {
        let _ = write!(
            h,
            "<div class=\"figure\"><b>{}</b>{}</div>",
            esc(value),
            esc(label)
        );
    }
    h.push_str("</div>\n");
}

/// Refuses an output (`flag DIR`) made with a model of another run than `run`.
fn check_belongs(flag: &str, dir: &Path, model: &campaign::Provenance, run: &Path) -> Result<()> {
    if let Some(fingerprint) = model.other_run(run)? {
        anyhow::bail!(
            "{flag} {}: made with the model {}, exported from another run (fingerprint {}) \
             than {} (fingerprint {}): a report puts together the artefacts of one run only",
            dir.display(),
            model.dir,
            model.shown_fingerprint(),
            run.display(),
            fingerprint
        );
    }
    Ok(())
}

fn campaign_section(h: &mut String, dir: &Path, run: &Path) -> Result<()> {
    let c: CampaignSummary = campaign::read_summary(dir)?;
    check_belongs("--campaign", dir, &c.model, run)?;
    let item = ember_decide::label(&c.item, c.item_name.as_deref());
    let _ = writeln!(h, "<h2>Campaign for {}</h2>", esc(&item));
    let _ = writeln!(h, "<p><b>{}</b></p>", esc(&crate::approval::state(dir)?));
    let _ = writeln!(
        h,
        "<p>Budget: {} customers, chosen by the model among the {} who do not have the item; \
         {} of them ({}) are held out at random as a control group (seed {}) to prove the \
         effect in the field.</p>",
        group(c.budget as i64),
        group(c.eligible as i64),
        group(c.control as i64),
        pct(c.control_share),
        c.seed
    );
    if let Some(e) = &c.evaluation {
        headline(
            h,
            &[
                (
                    format!("{:.2}×", e.lift),
                    match e.lift_interval {
                        Some((low, high)) => format!(
                            "targeting accuracy on held-out interactions: lift over random \
                             targeting (95% interval {low:.2}× to {high:.2}×); not yet the \
                             campaign's effect, which the control group will show"
                        ),
                        None => "lift over random targeting (held-out interactions)".into(),
                    },
                ),
                (
                    format!("{:.1}", e.at_budget.conversions),
                    format!(
                        "conversions from {} contacts",
                        group(e.at_budget.contacted as i64)
                    ),
                ),
                (
                    pct(e.captured),
                    format!(
                        "of all conversions, with {} of the customers",
                        pct(e.at_budget.contacted as f64 / e.eligible.max(1) as f64)
                    ),
                ),
            ],
        );
        let _ = writeln!(
            h,
            "<p>{}.</p>",
            esc(&campaign::mass_send_sentence(
                e.converters,
                (e.at_budget.contacted, e.at_budget.conversions),
                (e.everyone.contacted, e.everyone.conversions),
            ))
        );
        h.push_str(
            "<table><tr><th></th><th>contacted</th><th>conversions</th><th>rate</th>\
             <th>value</th><th>net value</th></tr>\n",
        );
        for (name, o) in [
            ("targeted by the model", &e.at_budget),
            ("the same number at random", &e.random),
            ("everyone (mass send)", &e.everyone),
        ] {
            let _ = writeln!(
                h,
                "<tr><td>{name}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                group(o.contacted as i64),
                o.conversions,
                pct(o.rate),
                o.value,
                o.net_value
            );
        }
        h.push_str("</table>\n");
        let _ = writeln!(
            h,
            "<p class=\"note\">Measured on interactions the model never saw: {}; {} of the {} \
             eligible customers converted. Values: {}. Random targeting's figures are expected \
             values.</p>",
            esc(&e.held_out),
            group(e.converters as i64),
            group(e.eligible as i64),
            esc(&e.value_basis)
        );
        h.push_str("<div class=\"charts\">");
        for (file, alt) in [
            ("gains.png", "cumulative gains chart"),
            ("lift.png", "lift chart"),
        ] {
            let path = dir.join(file);
            let png = std::fs::read(&path).with_context(|| path.display().to_string())?;
            h.push_str(&image(&png, alt));
        }
        h.push_str(
            "</div>\n<p class=\"note\">Gains: the share of all conversions reached when \
                    contacting the model's best customers first, against random choice (the \
                    diagonal). Lift: how many times the random conversion rate the best \
                    customers convert at.</p>\n",
        );
    } else {
        h.push_str(
            "<p class=\"note\">No held-out interactions were given, so there are no gains or \
             lift figures for this campaign.</p>\n",
        );
    }
    let p = &c.power;
    let _ = writeln!(
        h,
        "<h3>Proving it in the field</h3><p>To tell a conversion rate of {} without contact \
         from {} with it (95% confidence, 80% power), each group needs {} customers. \
         Baseline: {}. Expected: {}.</p>",
        pct(p.baseline),
        pct(p.expected),
        group(p.per_group as i64),
        esc(&p.baseline_source),
        esc(&p.expected_source)
    );
    if let Some(w) = &p.warning {
        let _ = writeln!(h, "<p class=\"warning\">Warning: {}.</p>", esc(w));
    }
    Ok(())
}

/// A field test: the two groups' rates with their intervals and the verdict, as `ember
/// campaign measure` wrote them.
fn measure_section(h: &mut String, dir: &Path) -> Result<()> {
    let m: crate::campaign::MeasureSummary = read_json(&dir.join("measure.json"))?;
    h.push_str("<h2>Field test: what the campaign did</h2>\n");
    let _ = writeln!(h, "<p><b>{}</b></p>", esc(&m.verdict));
    let path = dir.join("rates.png");
    let png = std::fs::read(&path).with_context(|| path.display().to_string())?;
    h.push_str(&image(
        &png,
        "conversion rates of the target and control groups",
    ));
    h.push_str("<table><tr><th>group</th><th>customers</th><th>conversions</th><th>rate</th><th>95% interval</th></tr>\n");
    for g in &m.groups {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} to {}</td></tr>",
            esc(&g.group),
            group(g.customers as i64),
            group(g.conversions as i64),
            pct(g.rate),
            pct(g.interval.0),
            pct(g.interval.1)
        );
    }
    let (low, high) = m.difference_interval_points;
    let _ = writeln!(
        h,
        "</table>\n<p class=\"note\">The difference between the groups is the campaign's \
         incremental effect, because chance alone chose who was contacted: {:+.2} points (95% \
         interval {low:+.2} to {high:+.2}).</p>",
        m.difference_points
    );
    Ok(())
}

fn segments_section(h: &mut String, dir: &Path, run: &Path) -> Result<()> {
    let s: SegmentsSummary = segments::read_summary(dir)?;
    check_belongs("--segments", dir, &s.model, run)?;
    h.push_str("<h2>Customer segments</h2>\n");
    let chosen = if s.silhouettes.len() > 1 {
        let tried: Vec<String> = s
            .silhouettes
            .iter()
            .map(|(k, v)| format!("{k}: {v:.3}"))
            .collect();
        format!(
            " The number of segments was chosen by the mean silhouette (how much closer \
             customers are to their own segment than to the next), tried for k = {}.",
            tried.join(", ")
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        h,
        "<p>{} customers grouped into {} segments by the model's view of their tastes.{}</p>",
        group(s.customers as i64),
        s.k,
        esc(&chosen)
    );
    let path = dir.join("map.png");
    let png = std::fs::read(&path).with_context(|| path.display().to_string())?;
    h.push_str(&image(&png, "segment map"));
    let _ = writeln!(
        h,
        "<p class=\"note\">Each dot is a customer, placed by the two directions in which \
         customers' tastes differ most ({} and {} of the differences).</p>",
        pct(s.explained[0]),
        pct(s.explained[1])
    );
    h.push_str("<table><tr><th>segment</th><th>customers</th><th>share</th><th>most held items (share of the segment)</th></tr>\n");
    for seg in &s.segments {
        let items: Vec<String> = seg
            .top_items
            .iter()
            .take(6)
            .map(|(item, share)| format!("{} ({})", s.item_label(item), pct(*share)))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(&match &seg.label {
                Some(label) => format!("{}: {label}", seg.id),
                None => seg.id.to_string(),
            }),
            group(seg.size as i64),
            pct(seg.share),
            esc(&items.join(", "))
        );
    }
    h.push_str("</table>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_examples() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(-950), "-950");
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
