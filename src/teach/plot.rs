//! `nnc plot`: functions of one tensor and their derivatives (the
//! textbook's activation-function figure) as SVG or PNG, and a run's
//! learning curves as a chart of characters for the terminal.
//!
//! A function is sampled by lowering it for an input `[n]` and running it in
//! the interpreter; its derivative is `autodiff` of `sum(f(x))`, which for
//! a function that maps each element on its own is `f'` at every point.

use super::graph::elementwise;
use crate::ir::{interp, Builder, Dim, Func, Type};
use crate::runtime::curves::{register_font, FONT};
use ndarray::{ArrayD, IxDyn};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The input type a plotted function is lowered for.
pub fn input_type(n: usize) -> Type {
    Type::f32(vec![Dim::Known(n)])
}

/// Whether `f` (lowered for one `[n]` input) maps each element on its own.
pub fn is_pointwise(f: &Func) -> bool {
    f.params.len() == 1
        && f.results.len() == 1
        && f.ty(f.results[0]) == f.ty(f.params[0])
        && f.insts.iter().all(|i| elementwise(f, &i.op, &i.args))
}

/// `x -> f'(x)` for a pointwise `f`: the gradient of `sum(f(x))`.
pub fn derivative(f: &Func) -> Func {
    let mut b = Builder::from_func(f.clone());
    let y = f.results[0];
    let total = b.reduce_sum(y, vec![0], false);
    let g = crate::autodiff::grad(&mut b, total, &[f.params[0]]);
    let mut out = b.finish(&g);
    out.name = format!("{}'", f.name);
    out
}

/// `f` at each of `xs` (f64, the interpreter).
pub fn sample(f: &Func, xs: &[f64]) -> Result<Vec<f64>, String> {
    let x = ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.to_vec()).map_err(|e| e.to_string())?;
    let out = interp::run(f, &[x])?;
    Ok(out[0].iter().copied().collect())
}

/// `n` evenly spaced points from `lo` to `hi`.
pub fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1).max(1) as f64).collect()
}

pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Derivatives are drawn dashed in the colour of their function.
    pub dashed: bool,
    /// Index into the palette: a function and its derivative share one.
    pub color: usize,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn bounds(curves: &[Curve]) -> ((f64, f64), (f64, f64)) {
    let pts = curves.iter().flat_map(|c| c.points.iter()).filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 >= x1 || !x0.is_finite() {
        (x0, x1) = (-1.0, 1.0);
    }
    if y0 >= y1 || !y0.is_finite() {
        (y0, y1) = (y0.min(0.0) - 1.0, y1.max(0.0) + 1.0);
    }
    let pad = (y1 - y0) * 0.06;
    ((x0, x1), (y0 - pad, y1 + pad))
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, curves: &[Curve], title: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ((x0, x1), (y0, y1)) = bounds(curves);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("x")
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for c in curves {
        let color = PALETTE[c.color % PALETTE.len()];
        let pts: Vec<(f64, f64)> = c.points.iter().copied().filter(|p| p.1.is_finite()).collect();
        let style = color.stroke_width(2);
        let series = if c.dashed {
            chart.draw_series(DashedLineSeries::new(pts, 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(pts, style))
        };
        series
            .map_err(|e| e.to_string())?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Write the curves to `path`: SVG, or PNG when the name ends in `.png`.
pub fn write_image(path: &Path, curves: &[Curve], title: &str) -> Result<(), String> {
    register_font();
    let size = (800, 500);
    let png = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let r = if png {
        draw(BitMapBackend::new(path, size).into_drawing_area(), curves, title)
    } else {
        draw(SVGBackend::new(path, size).into_drawing_area(), curves, title)
    };
    r.map_err(|e| format!("{}: {e}", path.display()))
}

/// A chart of characters: each curve's points as its marker on a
/// `width × height` grid, with the y range on the left and a legend.
/// A named series drawn with one character.
pub type CharSeries = (String, char, Vec<(f64, f64)>);

pub fn terminal_chart(title: &str, curves: &[CharSeries], width: usize, height: usize) -> String {
    let pts = curves.iter().flat_map(|c| c.2.iter()).filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 || !x0.is_finite() {
        return format!("{title}: no values\n");
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    if y0 == y1 {
        y1 = y0 + 1e-9_f64.max(y0.abs() * 1e-3);
    }
    let mut grid = vec![vec![' '; width]; height];
    for (_, mark, points) in curves {
        for &(x, y) in points.iter().filter(|p| p.1.is_finite()) {
            let col = (((x - x0) / (x1 - x0)) * (width - 1) as f64).round() as usize;
            let row = (((y1 - y) / (y1 - y0)) * (height - 1) as f64).round() as usize;
            grid[row.min(height - 1)][col.min(width - 1)] = *mark;
        }
    }
    let label = |y: f64| format!("{y:>9.4}");
    let mut out = format!("{title}\n");
    for (r, line) in grid.iter().enumerate() {
        let axis = if r == 0 {
            label(y1)
        } else if r == height - 1 {
            label(y0)
        } else {
            " ".repeat(9)
        };
        out.push_str(&format!("{axis} │{}\n", line.iter().collect::<String>().trim_end()));
    }
    out.push_str(&format!("{} └{}\n", " ".repeat(9), "─".repeat(width)));
    let left = format!("{x0}");
    let right = format!("{x1}");
    out.push_str(&format!(
        "{}  {left}{}{right}\n",
        " ".repeat(9),
        " ".repeat(width.saturating_sub(left.len() + right.len()))
    ));
    let legend: Vec<String> = curves.iter().map(|(name, mark, _)| format!("{mark} {name}")).collect();
    out.push_str(&format!("{}  {}\n", " ".repeat(9), legend.join("   ")));
    out
}

/// One panel: a metric against one hyper-parameter, a point per trial.
pub struct Scatter {
    pub x_name: String,
    pub log_x: bool,
    /// (value, metric, pruned).
    pub points: Vec<(f64, f64, bool)>,
}

fn scatter_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Scatter, metric: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let finite: Vec<(f64, f64, bool)> = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    let fold = |f: fn(&(f64, f64, bool)) -> f64| {
        finite
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
    };
    let (mut x0, mut x1) = fold(|p| p.0);
    let (mut y0, mut y1) = fold(|p| p.1);
    if finite.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let spread = |lo: f64, hi: f64, log: bool| -> (f64, f64) {
        if log {
            let (a, b) = (lo.max(1e-300), hi.max(1e-300));
            if a == b {
                (a / 2.0, b * 2.0)
            } else {
                (a / 1.3, b * 1.3)
            }
        } else if lo == hi {
            (lo - 0.5_f64.max(lo.abs() * 0.1), hi + 0.5_f64.max(hi.abs() * 0.1))
        } else {
            let pad = (hi - lo) * 0.06;
            (lo - pad, hi + pad)
        }
    };
    let (x0, x1) = spread(x0, x1, s.log_x);
    let (y0, y1) = spread(y0, y1, false);
    let caption = format!("{metric} vs {}", s.x_name);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60);
    let blue = RGBColor(31, 119, 180);
    let grey = RGBColor(160, 160, 160);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(s.x_name.as_str())
                .y_desc(metric)
                .label_style((FONT, 13))
                .draw()
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(finite.iter().map(|&(x, y, pruned)| {
                    let color = if pruned { grey } else { blue };
                    Circle::new((x, y), 4, color.filled())
                }))
                .map_err(|e| e.to_string())?;
        }};
    }
    if s.log_x {
        finish!(builder
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(|e| e.to_string())?);
    } else {
        finish!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(|e| e.to_string())?);
    }
    Ok(())
}

fn draw_scatters<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, panels: &[Scatter], metric: &str) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, s) in areas.iter().zip(panels) {
        scatter_panel(area, s, metric)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// The metric against each hyper-parameter, side by side (pruned trials grey).
pub fn write_scatters(path: &Path, panels: &[Scatter], metric: &str) -> Result<(), String> {
    register_font();
    let size = (440 * panels.len().max(1) as u32, 400);
    draw_scatters(SVGBackend::new(path, size).into_drawing_area(), panels, metric).map_err(|e| format!("{}: {e}", path.display()))
}
