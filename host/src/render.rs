//! The chart of `GET /render/image`: a query's groups drawn as Heroic's
//! renderer drew them (its `RenderUtils`), into a PNG.
//!
//! - point groups are lines (blue; a highlighted group red and thicker);
//! - spread groups are a light green band from min to max with their mean
//!   as a green line;
//! - `threshold` is a red horizontal line, `height / 20` pixels thick
//!   (1 to 6);
//! - the value axis does not have to include zero.
//!
//! Text (the title, the axis labels) needs a font. None is shipped: the
//! first of [`FONT_FILES`] that exists is used, and without one the chart
//! is drawn without text rather than not at all.

use std::ops::Range;
use std::sync::OnceLock;

use heroic_query::aggregation::{MetricValues, ResultGroup};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Fonts looked for, in this order (Debian's, then other common places).
pub const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// The largest image drawn, in pixels (4096 × 4096): the RGB buffer of one
/// is 48 MiB.
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// The largest width or height.
pub const MAX_SIDE: u32 = 8192;

/// What to draw besides the groups.
#[derive(Debug, Clone, Default)]
pub struct ChartSpec {
    pub title: Option<String>,
    pub width: u32,
    pub height: u32,
    /// A value marked by a red horizontal line.
    pub threshold: Option<f64>,
    /// Groups whose tags have every one of these values are drawn in red.
    pub highlight: Vec<(String, String)>,
    /// The query's range (ms), the time axis when no group has data.
    pub range: Range<i64>,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("image size {width}x{height} is out of bounds: each side 1 to {MAX_SIDE}, at most {MAX_PIXELS} pixels")]
    Size { width: u32, height: u32 },
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(#[from] png::EncodingError),
}

/// Registers the first font found as plotters' "sans-serif", once; whether
/// there is one.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for path in FONT_FILES {
            let Ok(bytes) = std::fs::read(path) else { continue };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                tracing::debug!(font = path, "charts use this font");
                return true;
            }
        }
        tracing::warn!(looked_in = ?FONT_FILES, "no font found: charts are drawn without text");
        false
    })
}

/// Checks an image size before anything is allocated for it.
pub fn check_size(width: u32, height: u32) -> Result<(), RenderError> {
    let ok = (1..=MAX_SIDE).contains(&width)
        && (1..=MAX_SIDE).contains(&height)
        && u64::from(width) * u64::from(height) <= MAX_PIXELS;
    if ok {
        Ok(())
    } else {
        Err(RenderError::Size { width, height })
    }
}

/// Draws `groups` as a PNG (with text when a font is available).
pub fn render_png(groups: &[ResultGroup], spec: &ChartSpec) -> Result<Vec<u8>, RenderError> {
    render_png_with(groups, spec, font_available())
}

fn draw_error<E: std::fmt::Debug>(e: E) -> RenderError {
    RenderError::Draw(format!("{e:?}"))
}

/// The extent of the data: times and values (spreads count with min and
/// max; the threshold is kept in view).
fn extent(groups: &[ResultGroup], spec: &ChartSpec) -> (Range<i64>, Range<f64>) {
    let (mut t0, mut t1, mut v0, mut v1) = (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY);
    let mut see = |t: i64, lo: f64, hi: f64| {
        t0 = t0.min(t);
        t1 = t1.max(t);
        if lo.is_finite() && hi.is_finite() {
            v0 = v0.min(lo);
            v1 = v1.max(hi);
        }
    };
    for g in groups {
        match &g.values {
            MetricValues::Points(p) => p.iter().for_each(|&(t, v)| see(t, v, v)),
            MetricValues::Spreads(s) => s.iter().for_each(|(t, s)| see(*t, s.min, s.max)),
            _ => {}
        }
    }
    if t0 > t1 {
        (t0, t1) = (spec.range.start, spec.range.end);
    }
    if t0 >= t1 {
        t1 = t0.saturating_add(1);
    }
    if let Some(th) = spec.threshold.filter(|t| t.is_finite()) {
        v0 = v0.min(th);
        v1 = v1.max(th);
    }
    if !(v0.is_finite() && v1.is_finite()) {
        (v0, v1) = (0.0, 1.0);
    }
    // A margin, as JFreeChart leaves, and some height for a flat line.
    let pad = if v1 > v0 { (v1 - v0) * 0.05 } else { v0.abs().max(1.0) * 0.05 };
    (t0..t1, (v0 - pad)..(v1 + pad))
}

fn highlighted(group: &ResultGroup, highlight: &[(String, String)]) -> bool {
    !highlight.is_empty() && highlight.iter().all(|(k, v)| group.key.get(k) == Some(v))
}

/// Times on the time axis: the date when the range spans days, else the time.
fn time_label(ms: i64, span_ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else { return String::new() };
    let format = match span_ms {
        s if s > 2 * 86_400_000 => "%Y-%m-%d",
        s if s > 600_000 => "%H:%M",
        _ => "%H:%M:%S",
    };
    t.format(format).to_string()
}

fn render_png_with(groups: &[ResultGroup], spec: &ChartSpec, text: bool) -> Result<Vec<u8>, RenderError> {
    check_size(spec.width, spec.height)?;
    let (w, h) = (spec.width, spec.height);
    let mut buffer = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (times, values) = extent(groups, spec);
        let mut builder = ChartBuilder::on(&root);
        // More on the right: the last time label is centred on the edge.
        builder.margin(8).margin_right(24);
        if text {
            if let Some(title) = spec.title.as_deref().filter(|t| !t.is_empty()) {
                builder.caption(title, ("sans-serif", 18));
            }
            builder.x_label_area_size(24).y_label_area_size(56);
        }
        let mut chart = builder.build_cartesian_2d(times.clone(), values.clone()).map_err(draw_error)?;
        if text {
            let span = times.end - times.start;
            chart
                .configure_mesh()
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(200, 200, 200))
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|ms| time_label(*ms, span))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(draw_error)?;
        }
        let band = RGBColor(200, 255, 200);
        for group in groups {
            match &group.values {
                MetricValues::Points(points) => {
                    let (color, width) = if highlighted(group, &spec.highlight) { (RED, 3) } else { (BLUE, 2) };
                    let line = LineSeries::new(points.iter().copied(), color.stroke_width(width));
                    chart.draw_series(line).map_err(draw_error)?;
                }
                MetricValues::Spreads(spreads) if !spreads.is_empty() => {
                    let upper = spreads.iter().map(|(t, s)| (*t, s.max));
                    let lower = spreads.iter().rev().map(|(t, s)| (*t, s.min));
                    let outline: Vec<(i64, f64)> = upper.chain(lower).collect();
                    chart.draw_series(std::iter::once(Polygon::new(outline, band.filled()))).map_err(draw_error)?;
                    let mean = spreads.iter().filter(|(_, s)| s.count > 0).map(|(t, s)| (*t, s.sum / s.count as f64));
                    chart.draw_series(LineSeries::new(mean, GREEN.stroke_width(2))).map_err(draw_error)?;
                }
                // Distributions and groups have no line to draw (Heroic drew
                // only points and spreads).
                _ => {}
            }
        }
        if let Some(th) = spec.threshold.filter(|t| t.is_finite()) {
            let thickness = (h / 20).clamp(1, 6);
            let line = LineSeries::new([(times.start, th), (times.end, th)], RED.stroke_width(thickness));
            chart.draw_series(line).map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&buffer)?;
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heroic_query::aggregation::SpreadValue;

    fn group(tags: &[(&str, &str)], values: MetricValues) -> ResultGroup {
        ResultGroup {
            key: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            series: Vec::new(),
            cadence: 0,
            values,
        }
    }

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn count(rgb: &[u8], pixel: impl Fn(u8, u8, u8) -> bool) -> usize {
        rgb.chunks(3).filter(|p| pixel(p[0], p[1], p[2])).count()
    }

    fn spec(width: u32, height: u32) -> ChartSpec {
        ChartSpec { width, height, range: 0..10_000, ..ChartSpec::default() }
    }

    #[test]
    fn points_spreads_threshold_and_highlight_are_drawn() {
        let points = group(&[("host", "a")], MetricValues::Points((0..10).map(|i| (i * 1000, i as f64)).collect()));
        let other =
            group(&[("host", "b")], MetricValues::Points((0..10).map(|i| (i * 1000, 9.0 - i as f64)).collect()));
        let spread = SpreadValue { count: 2, sum: 10.0, sum2: 52.0, min: 4.0, max: 6.0 };
        let spreads = group(&[], MetricValues::Spreads((0..10).map(|i| (i * 1000, spread)).collect()));
        // With text when this machine has a font (Debian's DejaVu is looked for first).
        for text in [false, font_available()] {
            let (w, h, rgb) = decode(
                &render_png_with(
                    &[points.clone(), spreads.clone()],
                    &ChartSpec { threshold: Some(20.0), ..spec(300, 200) },
                    text,
                )
                .unwrap(),
            );
            assert_eq!((w, h), (300, 200));
            assert!(count(&rgb, |r, g, b| b > 200 && r < 80 && g < 80) > 100, "a blue line (text: {text})");
            assert!(count(&rgb, |r, g, b| (r, g, b) == (200, 255, 200)) > 500, "a green band (text: {text})");
            // 200 / 20 = 10, clamped to 6 rows of red across the plot.
            assert!(count(&rgb, |r, g, b| r > 200 && g < 60 && b < 60) > 600, "the threshold (text: {text})");
        }
        let highlight = vec![("host".to_string(), "b".to_string())];
        let (_, _, rgb) =
            decode(&render_png_with(&[points, other], &ChartSpec { highlight, ..spec(300, 200) }, false).unwrap());
        assert!(count(&rgb, |r, g, b| r > 200 && g < 60 && b < 60) > 100, "host b in red");
        assert!(count(&rgb, |r, g, b| b > 200 && r < 80 && g < 80) > 100, "host a still blue");
    }

    #[test]
    fn no_data_is_an_empty_chart_and_sizes_are_bounded() {
        let (w, h, rgb) = decode(&render_png_with(&[], &spec(64, 32), false).unwrap());
        assert_eq!((w, h), (64, 32));
        assert!(rgb.iter().all(|&b| b == 255), "white");
        for (w, h) in [(0, 10), (10, 0), (MAX_SIDE + 1, 1), (4097, 4096)] {
            assert!(matches!(render_png_with(&[], &spec(w, h), false), Err(RenderError::Size { .. })), "{w}x{h}");
        }
        // One flat point, and non-finite values, still draw.
        let flat = group(&[], MetricValues::Points(vec![(5, 1.0), (6, f64::NAN)]));
        assert!(render_png_with(&[flat], &spec(50, 50), font_available()).is_ok());
    }
}
