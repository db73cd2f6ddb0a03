//! Generated images (a GAN's `sample =`): a PNG grid to look at, and an
//! IDX file of every sample for `nnc predict` to classify.

use ndarray::ArrayD;
use plotters::prelude::*;
use std::path::Path;

/// `[n, h, w]`, `[n, 1, h, w]` or `[n, d]` with `d` a square, as `n` grey
/// images of `h × w` pixels in [0, 1]. Outputs in [-1, 1] (a tanh
/// generator) are mapped to [0, 1]; values outside are clamped.
pub fn as_images(x: &ArrayD<f32>) -> Result<(usize, usize, usize, Vec<f32>), String> {
    let s = x.shape();
    let (n, h, w) = match s {
        [n, h, w] | [n, 1, h, w] => (*n, *h, *w),
        [n, d] => {
            let side = (*d as f64).sqrt().round() as usize;
            if side * side != *d {
                return Err(format!("a sample of {d} values is not a square image"));
            }
            (*n, side, side)
        }
        _ => return Err(format!("samples of shape {s:?} are not grey images")),
    };
    let flat: Vec<f32> = x.iter().copied().collect();
    let signed = flat.iter().any(|&v| v < -1e-3);
    let px = flat
        .into_iter()
        .map(|v| if signed { (v + 1.0) / 2.0 } else { v })
        .map(|v| if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 })
        .collect();
    Ok((n, h, w, px))
}

/// The first `cols × cols` images side by side, scaled up `zoom` times.
pub fn write_grid(path: &Path, x: &ArrayD<f32>, cols: usize, zoom: u32) -> Result<(), String> {
    let (n, h, w, px) = as_images(x)?;
    let shown = n.min(cols * cols);
    let rows = shown.div_ceil(cols);
    let gap = 2u32;
    let cell = |d: usize| d as u32 * zoom + gap;
    let size = (cols as u32 * cell(w) + gap, rows as u32 * cell(h) + gap);
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&RGBColor(40, 40, 40)).map_err(|e| e.to_string())?;
        for k in 0..shown {
            let (r, c) = (k / cols, k % cols);
            let (x0, y0) = (gap + c as u32 * cell(w), gap + r as u32 * cell(h));
            for i in 0..h {
                for j in 0..w {
                    let v = (px[(k * h + i) * w + j] * 255.0).round() as u8;
                    for dy in 0..zoom {
                        for dx in 0..zoom {
                            let at = ((x0 + j as u32 * zoom + dx) as i32, (y0 + i as u32 * zoom + dy) as i32);
                            root.draw_pixel(at, &RGBColor(v, v, v)).map_err(|e| e.to_string())?;
                        }
                    }
                }
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: cannot replace: {e}", path.display()))
}

/// The images as an uncompressed IDX file of bytes (`[n, h, w]`), the
/// format of MNIST's images, so `nnc predict --input` reads them.
pub fn idx_bytes(x: &ArrayD<f32>) -> Result<Vec<u8>, String> {
    let (n, h, w, px) = as_images(x)?;
    let mut out = vec![0, 0, 0x08, 3];
    for d in [n, h, w] {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend(px.iter().map(|v| (v * 255.0).round() as u8));
    Ok(out)
}
