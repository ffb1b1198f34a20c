//! ember's charts as PNG images: the learning curves of a run (`curves.png`), a campaign's
//! cumulative gains and lift, a segment map, and the report that shows them all.
//!
//! Drawn with plotters on an RGB bitmap (its bitmap backend, no image crate) and encoded with
//! the `png` crate. Text is set in DejaVu Sans, compiled into the binary
//! (`fonts/DejaVuSans.ttf`, licence in `fonts/LICENSE-DejaVu.txt`) and handed to plotters'
//! ab_glyph renderer, so a chart looks the same on every machine and needs no system font.
//!
//! Charts are described by plain data ([`LineChart`], [`ScatterChart`]): the callers (the
//! trainer, the campaign and segments commands, the report) say what to show, this crate how.

#![deny(missing_docs)]

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::OnceLock;

/// DejaVu Sans, the one font of every chart.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
/// The family name charts ask plotters for.
const SANS: &str = "sans-serif";

/// Why a chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The built-in font could not be read (a corrupt build).
    #[error("the built-in chart font could not be loaded")]
    Font,
    /// plotters failed to draw.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// The bitmap could not be encoded as PNG.
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
    /// The chart was asked for with an unusable size.
    #[error("a chart needs a size of at least 200 × 150 pixels, got {0} × {1}")]
    Size(u32, u32),
}

fn draw_error(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Registers the built-in font with plotters, once per process.
fn font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

/// Colours of the data series, in order: Okabe & Ito's palette, told apart by readers with
/// any common form of colour blindness and in greyscale print by lightness.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];
/// Reference lines (random targeting, a lift of 1) are dashed and grey.
const REFERENCE: RGBColor = RGBColor(110, 110, 110);
/// A marked position (the budget) is a dark red vertical line.
const MARKER: RGBColor = RGBColor(160, 20, 40);

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// A solid line in the next colour of [`PALETTE`]: the data.
    Data,
    /// A dashed grey line: what the data is compared with.
    Reference,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// The points, in drawing order (non-finite ones are skipped).
    pub points: Vec<(f64, f64)>,
    /// Data or reference.
    pub stroke: Stroke,
}

/// A vertical line marking a position on the x axis, e.g. the campaign's budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Where.
    pub x: f64,
    /// The legend's text.
    pub label: String,
}

/// Where a legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Corner {
    /// Top right.
    #[default]
    UpperRight,
    /// Bottom right.
    LowerRight,
    /// Top left.
    UpperLeft,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// The title above the plot.
    pub title: String,
    /// The x axis' description.
    pub x_label: String,
    /// The y axis' description.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// A vertical marker.
    pub marker: Option<Marker>,
    /// The legend's corner.
    pub legend: Corner,
    /// Start the y axis at 0 (for shares and counts) rather than at the data's minimum.
    pub y_from_zero: bool,
    /// The x values are whole numbers (epochs): ticks at whole numbers only.
    pub whole_x: bool,
}

/// A scatter plot of groups of points, each group in its colour.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScatterChart {
    /// The title above the plot.
    pub title: String,
    /// The x axis' description.
    pub x_label: String,
    /// The y axis' description.
    pub y_label: String,
    /// `(legend text, points)` per group.
    pub groups: Vec<(String, Vec<(f64, f64)>)>,
}

/// Renders `charts` side by side into one PNG of `width × height` pixels.
pub fn line_charts(charts: &[LineChart], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    render(width, height, |root| {
        let areas = root.split_evenly((1, charts.len().max(1)));
        for (area, chart) in areas.iter().zip(charts) {
            draw_line_chart(area, chart)?;
        }
        Ok(())
    })
}

/// Renders a scatter plot into a PNG of `width × height` pixels.
pub fn scatter(chart: &ScatterChart, width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    render(width, height, |root| draw_scatter(root, chart))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws on a white RGB bitmap, then encodes it.
fn render(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area<'_>) -> Result<(), ChartError>,
) -> Result<Vec<u8>, ChartError> {
    if width < 200 || height < 150 {
        return Err(ChartError::Size(width, height));
    }
    font()?;
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    encode_png(&pixels, width, height)
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    let encode = |e: png::EncodingError| ChartError::Encode(e.to_string());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(rgb).map_err(encode)?;
    writer.finish().map_err(encode)?;
    Ok(out)
}

/// The bounds of the finite values of `values`, widened so that a flat series still spans
/// an axis; `None` without finite values.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    if hi > lo {
        Some((lo, hi))
    } else {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        Some((lo - pad, hi + pad))
    }
}

/// A tick label with as many decimals as the axis' span needs.
fn tick(value: f64, span: f64) -> String {
    let decimals = if span >= 50.0 {
        0
    } else if span >= 5.0 {
        1
    } else if span >= 0.5 {
        2
    } else if span >= 0.05 {
        3
    } else {
        4
    };
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text.trim_matches(['-', '0', '.']).is_empty() {
        text[1..].to_string() // no "-0.00"
    } else {
        text
    }
}

fn title_font() -> TextStyle<'static> {
    (SANS, 22).into_font().color(&BLACK)
}

fn no_data(area: &Area<'_>, title: &str) -> Result<(), ChartError> {
    area.titled(title, title_font()).map_err(draw_error)?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        "no data",
        (w as i32 / 2 - 30, h as i32 / 2),
        (SANS, 18).into_font().color(&REFERENCE),
    ))
    .map_err(draw_error)
}

fn draw_line_chart(area: &Area<'_>, chart: &LineChart) -> Result<(), ChartError> {
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let xs = points()
        .map(|p| p.0)
        .chain(chart.marker.iter().map(|m| m.x));
    let (Some((x0, x1)), Some((mut y0, mut y1))) = (bounds(xs), bounds(points().map(|p| p.1)))
    else {
        return no_data(area, &chart.title);
    };
    if chart.y_from_zero {
        y0 = y0.min(0.0);
    }
    let pad = (y1 - y0) * 0.05;
    y1 += pad;
    if !chart.y_from_zero || y0 < 0.0 {
        y0 -= pad;
    }
    let (x_span, y_span) = (x1 - x0, y1 - y0);
    let mut plot = ChartBuilder::on(area)
        .caption(&chart.title, title_font())
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_error)?;
    let x_ticks = if chart.whole_x {
        (x_span.round() as usize + 1).clamp(2, 10)
    } else {
        10
    };
    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_labels(x_ticks)
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(222, 222, 222))
        .x_label_formatter(&|v| {
            if chart.whole_x {
                format!("{v:.0}")
            } else {
                tick(*v, x_span)
            }
        })
        .y_label_formatter(&|v| tick(*v, y_span))
        .draw()
        .map_err(draw_error)?;
    let mut colour = 0;
    for series in &chart.series {
        let finite: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        match series.stroke {
            Stroke::Data => {
                let style = PALETTE[colour % PALETTE.len()].stroke_width(3);
                colour += 1;
                let single = finite.len() == 1;
                let drawn = plot
                    .draw_series(LineSeries::new(finite.clone(), style))
                    .map_err(draw_error)?;
                drawn
                    .label(series.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
                if single {
                    // A one-point line draws nothing: show the point.
                    plot.draw_series(finite.iter().map(|&p| Circle::new(p, 4, style.filled())))
                        .map_err(draw_error)?;
                }
            }
            Stroke::Reference => {
                let style = REFERENCE.stroke_width(2);
                plot.draw_series(DashedLineSeries::new(finite, 9, 6, style))
                    .map_err(draw_error)?
                    .label(series.label.as_str())
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (9, 0)], style)
                            + PathElement::new(vec![(15, 0), (24, 0)], style)
                    });
            }
        }
    }
    if let Some(marker) = &chart.marker {
        let style = MARKER.stroke_width(2);
        plot.draw_series(LineSeries::new([(marker.x, y0), (marker.x, y1)], style))
            .map_err(draw_error)?
            .label(marker.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x + 12, y - 7), (x + 12, y + 7)], style));
    }
    let position = match chart.legend {
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
        Corner::LowerRight => SeriesLabelPosition::LowerRight,
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
    };
    plot.configure_series_labels()
        .position(position)
        .margin(12)
        .label_font((SANS, 15))
        .background_style(WHITE.mix(0.92))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(draw_error)
}

/// Most points a scatter draws per group; beyond it every n-th point, so that a map of a
/// million customers stays readable and quick (the legend says how many are shown).
pub const SCATTER_POINTS: usize = 20_000;

fn draw_scatter(area: &Area<'_>, chart: &ScatterChart) -> Result<(), ChartError> {
    let points = || chart.groups.iter().flat_map(|g| g.1.iter());
    let (Some((x0, x1)), Some((y0, y1))) =
        (bounds(points().map(|p| p.0)), bounds(points().map(|p| p.1)))
    else {
        return no_data(area, &chart.title);
    };
    let (xp, yp) = ((x1 - x0) * 0.04, (y1 - y0) * 0.04);
    let (x_span, y_span) = (x1 - x0, y1 - y0);
    let mut plot = ChartBuilder::on(area)
        .caption(&chart.title, title_font())
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0 - xp..x1 + xp, y0 - yp..y1 + yp)
        .map_err(draw_error)?;
    plot.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(222, 222, 222))
        .x_label_formatter(&|v| tick(*v, x_span))
        .y_label_formatter(&|v| tick(*v, y_span))
        .draw()
        .map_err(draw_error)?;
    for (k, (label, group)) in chart.groups.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let step = group.len().div_ceil(SCATTER_POINTS).max(1);
        let shown: Vec<(f64, f64)> = group
            .iter()
            .step_by(step)
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let label = if step > 1 {
            format!("{label} ({} of {} shown)", shown.len(), group.len())
        } else {
            label.clone()
        };
        plot.draw_series(
            shown
                .iter()
                .map(|&p| Circle::new(p, 3, colour.mix(0.55).filled())),
        )
        .map_err(draw_error)?
        .label(label)
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
    }
    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(12)
        .label_font((SANS, 15))
        .background_style(WHITE.mix(0.92))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(draw_error)
}

/// One epoch of one training stage, as the learning curves show it (and checkpoints keep it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochPoint {
    /// Stage label (`neumf`, `gmf`, `refit neumf`, …).
    pub stage: String,
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// The monitored validation metric, when validation ran.
    pub valid: Option<f64>,
}

/// A run's learning curves (`curves.png`): training loss and the monitored validation metric
/// per epoch, side by side, one line per stage, 1200 × 460 pixels.
pub fn learning_curves(points: &[EpochPoint], monitor: &str) -> Result<Vec<u8>, ChartError> {
    let mut stages: Vec<&str> = Vec::new();
    for p in points {
        if !stages.contains(&p.stage.as_str()) {
            stages.push(&p.stage);
        }
    }
    let panel =
        |title: String, y_label: &str, value: &dyn Fn(&EpochPoint) -> Option<f64>| LineChart {
            title,
            x_label: "epoch".into(),
            y_label: y_label.into(),
            series: stages
                .iter()
                .map(|stage| Series {
                    label: stage.to_string(),
                    points: points
                        .iter()
                        .filter(|p| p.stage == *stage)
                        .filter_map(|p| value(p).map(|v| (p.epoch as f64, v)))
                        .collect(),
                    stroke: Stroke::Data,
                })
                .filter(|s| !s.points.is_empty())
                .collect(),
            marker: None,
            legend: Corner::UpperRight,
            y_from_zero: false,
            whole_x: true,
        };
    let loss = panel("Training loss".into(), "mean loss", &|p| Some(p.loss));
    // The validation metric rises to its best epoch: its legend goes below the curves.
    let mut valid = panel(format!("Validation {monitor}"), monitor, &|p| p.valid);
    valid.legend = Corner::LowerRight;
    line_charts(&[loss, valid], 1200, 460)
}

/// The width and height of a PNG image, read from its header; `None` when `bytes` is not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    Some((word(16), word(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a PNG back to RGB pixels.
    fn pixels(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn has_colour(rgb: &[u8], colour: RGBColor) -> bool {
        rgb.chunks(3).any(|p| p == [colour.0, colour.1, colour.2])
    }

    #[test]
    fn learning_curves_draw_each_stage_in_its_colour_with_text() {
        let mut points = Vec::new();
        for (stage, n) in [("gmf", 3), ("neumf", 4)] {
            for epoch in 1..=n {
                points.push(EpochPoint {
                    stage: stage.into(),
                    epoch,
                    loss: 1.0 / epoch as f64,
                    valid: (epoch % 2 == 0).then_some(epoch as f64 / 10.0),
                });
            }
        }
        let png = learning_curves(&points, "NDCG@10").unwrap();
        assert_eq!(png_size(&png), Some((1200, 460)));
        let (info, rgb) = pixels(&png);
        assert_eq!((info.width, info.height), (1200, 460));
        // One colour per stage, and text: dark anti-aliased pixels that are neither.
        assert!(has_colour(&rgb, PALETTE[0]) && has_colour(&rgb, PALETTE[1]));
        assert!(!has_colour(&rgb, PALETTE[2]), "two stages, two colours");
        let dark = rgb.chunks(3).filter(|p| p.iter().all(|&c| c < 80)).count();
        assert!(dark > 500, "text is drawn: {dark} dark pixels");
    }

    #[test]
    fn reference_lines_markers_and_empty_charts() {
        let chart = LineChart {
            title: "Cumulative gains".into(),
            x_label: "% contacted".into(),
            y_label: "% of conversions".into(),
            series: vec![
                Series {
                    label: "model".into(),
                    points: vec![(0.0, 0.0), (10.0, 40.0), (100.0, 100.0)],
                    stroke: Stroke::Data,
                },
                Series {
                    label: "random".into(),
                    points: vec![(0.0, 0.0), (100.0, 100.0)],
                    stroke: Stroke::Reference,
                },
            ],
            marker: Some(Marker {
                x: 10.0,
                label: "budget".into(),
            }),
            legend: Corner::LowerRight,
            y_from_zero: true,
            whole_x: false,
        };
        let png = line_charts(&[chart], 900, 540).unwrap();
        let (_, rgb) = pixels(&png);
        assert!(has_colour(&rgb, PALETTE[0]));
        assert!(has_colour(&rgb, REFERENCE) && has_colour(&rgb, MARKER));
        let empty = LineChart {
            title: "nothing".into(),
            ..LineChart::default()
        };
        assert_eq!(
            png_size(&line_charts(&[empty], 400, 300).unwrap()),
            Some((400, 300))
        );
        assert!(matches!(
            line_charts(&[], 10, 10),
            Err(ChartError::Size(10, 10))
        ));
    }

    #[test]
    fn scatter_colours_each_group() {
        let groups = (0..3)
            .map(|g| {
                let points = (0..50)
                    .map(|k| (g as f64 * 5.0 + (k % 7) as f64 * 0.1, (k / 7) as f64))
                    .collect();
                (format!("segment {g}"), points)
            })
            .collect();
        let chart = ScatterChart {
            title: "map".into(),
            x_label: "PC 1".into(),
            y_label: "PC 2".into(),
            groups,
        };
        let png = scatter(&chart, 800, 600).unwrap();
        let (_, rgb) = pixels(&png);
        for colour in &PALETTE[..3] {
            assert!(has_colour(&rgb, *colour), "{colour:?}");
        }
    }

    #[test]
    fn ticks_have_the_decimals_their_span_needs() {
        assert_eq!(tick(12.0, 100.0), "12");
        assert_eq!(tick(0.25, 1.0), "0.25");
        assert_eq!(tick(-0.0001, 1.0), "0.00");
        assert_eq!(tick(0.0123, 0.02), "0.0123");
    }
}
