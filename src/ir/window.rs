//! Sliding windows over `[n, c, h, w]` images: the geometry shared by the
//! convolution and pooling ops, and the loops that implement them.
//!
//! The loops are generic over the element type so the f64 reference
//! interpreter and the f32 compiled code (which calls them as host
//! functions) run the same code: one place for every index rule (padding,
//! dilation, the first-maximum tie rule of max pooling).
//!
//! Layouts:
//! - `im2col`: `[n, c, h, w]` → `[n, oh, ow, c, kh, kw]`, zeros where the
//!   window hangs over the padding. Reshaped to `[n·oh·ow, c·kh·kw]`, one
//!   GEMM with the `[c·kh·kw, out]` weights is the whole convolution.
//! - `col2im`: the adjoint of `im2col` (sums every column entry back into
//!   the pixel it was copied from).
//! - `max_pool`: `[n, c, h, w]` → `[n, c, oh, ow]`; padding never wins.
//! - `max_pool_grad`: routes each output's gradient to the *first* maximum
//!   of its window in row-major window order (PyTorch's rule: a later equal
//!   value does not replace it; a NaN does).

use std::ops::{Add, Mul};

/// A 2-D window: sizes, strides, dilations and padding (low/high side) per
/// spatial axis (index 0 = height, 1 = width).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad_lo: [usize; 2],
    pub pad_hi: [usize; 2],
}

impl Window {
    /// The output length along `axis` for input length `len`, or `None` when
    /// the (dilated) window is larger than the padded input or a stride or
    /// dilation is 0.
    pub fn out_len(&self, axis: usize, len: usize) -> Option<usize> {
        let (k, s, d) = (self.kernel[axis], self.stride[axis], self.dilation[axis]);
        if k == 0 || s == 0 || d == 0 {
            return None;
        }
        let padded = len + self.pad_lo[axis] + self.pad_hi[axis];
        let span = d * (k - 1) + 1;
        (padded >= span).then(|| (padded - span) / s + 1)
    }

    /// `[oh, ow]` for an `[h, w]` input.
    pub fn out_hw(&self, hw: [usize; 2]) -> Option<[usize; 2]> {
        Some([self.out_len(0, hw[0])?, self.out_len(1, hw[1])?])
    }

    /// Input coordinate along `axis` read by output position `o` at window
    /// offset `k`, or `None` in the padding.
    fn source(&self, axis: usize, o: usize, k: usize, len: usize) -> Option<usize> {
        let p = (o * self.stride[axis] + k * self.dilation[axis]) as isize - self.pad_lo[axis] as isize;
        (p >= 0 && (p as usize) < len).then_some(p as usize)
    }

    /// For one output column `ox`, the range of window offsets `kx` whose
    /// source lies inside the image (dilation makes it a strided set, so it
    /// is returned as the first and one-past-last valid `kx`).
    fn valid_k(&self, axis: usize, o: usize, len: usize) -> (usize, usize) {
        let k = self.kernel[axis];
        let lo = (0..k).find(|&kk| self.source(axis, o, kk, len).is_some()).unwrap_or(k);
        // Sources grow with the offset, so the valid offsets are contiguous.
        let hi = (lo..k)
            .rev()
            .find(|&kk| self.source(axis, o, kk, len).is_some())
            .map_or(lo, |x| x + 1);
        (lo, hi)
    }
}

/// The element types the loops run on (f64 in the interpreter, f32 compiled).
pub trait Elem: Copy + PartialOrd + Add<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    const NEG_INF: Self;
    fn is_nan(self) -> bool;
}

impl Elem for f32 {
    const ZERO: f32 = 0.0;
    const NEG_INF: f32 = f32::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Elem for f64 {
    const ZERO: f64 = 0.0;
    const NEG_INF: f64 = f64::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Image sizes `[n, c, h, w]` and the window's output `[oh, ow]`.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub n: usize,
    pub c: usize,
    pub hw: [usize; 2],
    pub out: [usize; 2],
}

impl Geometry {
    pub fn new(w: &Window, n: usize, c: usize, hw: [usize; 2]) -> Option<Geometry> {
        Some(Geometry {
            n,
            c,
            hw,
            out: w.out_hw(hw)?,
        })
    }
    pub fn image_len(&self) -> usize {
        self.n * self.c * self.hw[0] * self.hw[1]
    }
    pub fn pooled_len(&self) -> usize {
        self.n * self.c * self.out[0] * self.out[1]
    }
    pub fn cols_len(&self, w: &Window) -> usize {
        self.n * self.out[0] * self.out[1] * self.c * w.kernel[0] * w.kernel[1]
    }
}

/// `cols[n, oy, ox, c, ky, kx] = x[n, c, oy·s + ky·d − pad, ...]` (0 outside).
/// The loop runs over the column layout in order, so writes are sequential;
/// rows `n0..n1` of the batch only (threads take disjoint row ranges).
pub fn im2col<T: Elem>(w: &Window, g: &Geometry, x: &[T], cols: &mut [T], n0: usize, n1: usize) {
    let [h, wd] = g.hw;
    let [oh, ow] = g.out;
    let [kh, kw] = w.kernel;
    let row = g.c * kh * kw;
    for n in n0..n1 {
        for oy in 0..oh {
            for ox in 0..ow {
                let base = ((n * oh + oy) * ow + ox) * row;
                let dst = &mut cols[base..base + row];
                let (kx0, kx1) = w.valid_k(1, ox, wd);
                for c in 0..g.c {
                    let img = &x[(n * g.c + c) * h * wd..][..h * wd];
                    for ky in 0..kh {
                        let d = &mut dst[(c * kh + ky) * kw..][..kw];
                        let Some(iy) = w.source(0, oy, ky, h) else {
                            d.fill(T::ZERO);
                            continue;
                        };
                        d[..kx0].fill(T::ZERO);
                        d[kx1..].fill(T::ZERO);
                        if kx0 == kx1 {
                            continue;
                        }
                        let src = &img[iy * wd..][..wd];
                        let x0 = ox * w.stride[1] + kx0 * w.dilation[1] - w.pad_lo[1];
                        for (j, v) in d[kx0..kx1].iter_mut().enumerate() {
                            *v = src[x0 + j * w.dilation[1]];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: `x[n, c, iy, ix] = Σ cols` over every window
/// entry that read it. Rows `n0..n1` of `x` are zeroed and then summed.
pub fn col2im<T: Elem>(w: &Window, g: &Geometry, cols: &[T], x: &mut [T], n0: usize, n1: usize) {
    let [h, wd] = g.hw;
    let [oh, ow] = g.out;
    let [kh, kw] = w.kernel;
    let row = g.c * kh * kw;
    x[n0 * g.c * h * wd..n1 * g.c * h * wd].fill(T::ZERO);
    for n in n0..n1 {
        for oy in 0..oh {
            for ox in 0..ow {
                let base = ((n * oh + oy) * ow + ox) * row;
                let src = &cols[base..base + row];
                let (kx0, kx1) = w.valid_k(1, ox, wd);
                for c in 0..g.c {
                    let img = &mut x[(n * g.c + c) * h * wd..][..h * wd];
                    for ky in 0..kh {
                        let Some(iy) = w.source(0, oy, ky, h) else { continue };
                        if kx0 == kx1 {
                            continue;
                        }
                        let s = &src[(c * kh + ky) * kw..][..kw];
                        let dst = &mut img[iy * wd..][..wd];
                        let x0 = ox * w.stride[1] + kx0 * w.dilation[1] - w.pad_lo[1];
                        for (j, &v) in s[kx0..kx1].iter().enumerate() {
                            let p = x0 + j * w.dilation[1];
                            dst[p] = dst[p] + v;
                        }
                    }
                }
            }
        }
    }
}

/// The flat index (into the `[h, w]` plane) of the first maximum of the
/// window at `(oy, ox)`, or `None` when every entry is padding.
fn argmax<T: Elem>(w: &Window, g: &Geometry, plane: &[T], oy: usize, ox: usize) -> Option<usize> {
    let [h, wd] = g.hw;
    let mut best: Option<(usize, T)> = None;
    for ky in 0..w.kernel[0] {
        let Some(iy) = w.source(0, oy, ky, h) else { continue };
        for kx in 0..w.kernel[1] {
            let Some(ix) = w.source(1, ox, kx, wd) else { continue };
            let v = plane[iy * wd + ix];
            let better = match best {
                None => true,
                // Strictly greater replaces, so ties keep the first; NaN
                // replaces a number and then is never replaced.
                Some((_, b)) => !b.is_nan() && (v > b || v.is_nan()),
            };
            if better {
                best = Some((iy * wd + ix, v));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// `y[n, c, oy, ox]` = the window's maximum (−∞ for a window of padding
/// only, which the shape checks rule out). Planes `p0..p1` of `n·c`.
pub fn max_pool<T: Elem>(w: &Window, g: &Geometry, x: &[T], y: &mut [T], p0: usize, p1: usize) {
    let (hw, ohw) = (g.hw[0] * g.hw[1], g.out[0] * g.out[1]);
    for p in p0..p1 {
        let plane = &x[p * hw..][..hw];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                let i = argmax(w, g, plane, oy, ox);
                y[p * ohw + oy * g.out[1] + ox] = i.map_or(T::NEG_INF, |i| plane[i]);
            }
        }
    }
}

/// `dx` = each output gradient added at its window's first maximum of `x`.
/// Planes `p0..p1` of `dx` are zeroed and then summed.
pub fn max_pool_grad<T: Elem>(w: &Window, g: &Geometry, x: &[T], dy: &[T], dx: &mut [T], p0: usize, p1: usize) {
    let (hw, ohw) = (g.hw[0] * g.hw[1], g.out[0] * g.out[1]);
    dx[p0 * hw..p1 * hw].fill(T::ZERO);
    for p in p0..p1 {
        let plane = &x[p * hw..][..hw];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                if let Some(i) = argmax(w, g, plane, oy, ox) {
                    let d = &mut dx[p * hw + i];
                    *d = *d + dy[p * ohw + oy * g.out[1] + ox];
                }
            }
        }
    }
}
