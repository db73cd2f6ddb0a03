//! Learning curves: loss and accuracy per epoch, training against
//! validation, side by side, as SVG and PNG. Text is drawn with a font
//! compiled into the binary (DejaVu Sans), so no system fonts are needed.

use super::history::column;
use super::train::EpochReport;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The family name every chart uses (registered by `register_font`).
pub const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 420);

pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans parses with ab_glyph; a failure would only lose text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// One panel: `metric` for train (blue) and validation (orange).
fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, h: &[EpochReport], metric: &str, title: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    type Series<'s> = (&'s str, RGBColor, Vec<(f64, f64)>);
    let series: Vec<Series> = [("train", RGBColor(31, 119, 180)), ("validation", RGBColor(255, 127, 14))]
        .into_iter()
        .map(|(name, color)| {
            let col = if name == "train" {
                format!("train_{metric}")
            } else {
                format!("val_{metric}")
            };
            let pts = h
                .iter()
                .filter_map(|r| column(r, &col).filter(|v| v.is_finite()).map(|v| (r.epoch as f64, v)))
                .collect();
            (name, color, pts)
        })
        .filter(|(_, _, p): &(_, _, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    let all: Vec<f64> = series.iter().flat_map(|s| s.2.iter().map(|p| p.1)).collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if all.is_empty() {
        (0.0, 1.0)
    } else {
        let pad = ((hi - lo) * 0.08).max(1e-3);
        (lo - pad, hi + pad)
    };
    let last = h.iter().map(|r| r.epoch).max().unwrap_or(1).max(2) as f64;
    let first = h.iter().map(|r| r.epoch).min().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(first..last, lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(metric)
        .x_labels(((last - first) as usize + 1).min(12))
        // Epochs are whole numbers: label only those.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.3}"))
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (name, color, pts) in series {
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, h: &[EpochReport], model: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    // A block of steps (a GAN): one loss curve per step, side by side.
    let step_losses: Vec<String> = h
        .first()
        .map(|r| {
            r.train
                .metrics
                .iter()
                .map(|m| m.0.clone())
                .filter(|m| m.ends_with("_loss"))
                .collect()
        })
        .unwrap_or_default();
    if !step_losses.is_empty() {
        let areas = root.split_evenly((1, step_losses.len()));
        for (area, m) in areas.iter().zip(&step_losses) {
            let step = m.trim_end_matches("_loss");
            panel(area, h, m, &format!("{model}: {step} loss"))?;
        }
        return root.present().map_err(|e| e.to_string());
    }
    let has_accuracy = h.iter().any(|r| r.train.accuracy.is_some());
    let areas = if has_accuracy {
        root.split_evenly((1, 2))
    } else {
        vec![root.clone()]
    };
    panel(&areas[0], h, "loss", &format!("{model}: loss"))?;
    if has_accuracy {
        panel(&areas[1], h, "accuracy", &format!("{model}: accuracy"))?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Write `curves.svg` and `curves.png` into `dir`.
pub fn write(dir: &Path, h: &[EpochReport], model: &str) -> Result<(), String> {
    register_font();
    let svg = dir.join("curves.svg");
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), h, model).map_err(|e| format!("{}: {e}", svg.display()))?;
    let png = dir.join("curves.png");
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), h, model).map_err(|e| format!("{}: {e}", png.display()))
}
