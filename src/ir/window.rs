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

/// Along one spatial axis, for every output position: the window offsets
/// `k0..k1` whose source lies inside the input, and the source of `k0`
/// (later offsets step by the dilation). Computed once per call, so the
/// loops below do no padding arithmetic per element.
struct Taps {
    k0: Vec<usize>,
    k1: Vec<usize>,
    first: Vec<usize>,
    dilation: usize,
}

impl Taps {
    fn new(w: &Window, axis: usize, out: usize, len: usize) -> Taps {
        let mut t = Taps {
            k0: Vec::with_capacity(out),
            k1: Vec::with_capacity(out),
            first: Vec::with_capacity(out),
            dilation: w.dilation[axis],
        };
        for o in 0..out {
            let (k0, k1) = w.valid_k(axis, o, len);
            t.k0.push(k0);
            t.k1.push(k1);
            t.first.push(if k0 < k1 { w.source(axis, o, k0, len).unwrap_or(0) } else { 0 });
        }
        t
    }

    /// The source of offset `k` at output `o`, inside `k0[o]..k1[o]`.
    fn at(&self, o: usize, k: usize) -> usize {
        self.first[o] + (k - self.k0[o]) * self.dilation
    }
}

/// One image's planes `[c, h, w]` with the window's padding written out as
/// zeros, `[c, ph, pw]`: every window lies inside it, so the gathers below
/// have no padding logic at all (the row copies are as wide as the kernel).
struct Padded {
    lo: [usize; 2],
    hw: [usize; 2],
    /// `[ph, pw]`.
    dims: [usize; 2],
}

impl Padded {
    fn new(w: &Window, g: &Geometry) -> Padded {
        let [h, wd] = g.hw;
        Padded {
            lo: w.pad_lo,
            hw: g.hw,
            dims: [h + w.pad_lo[0] + w.pad_hi[0], wd + w.pad_lo[1] + w.pad_hi[1]],
        }
    }

    fn len(&self, c: usize) -> usize {
        c * self.dims[0] * self.dims[1]
    }

    /// The flat offset of padded row `y` of plane `c`.
    fn row(&self, c: usize, y: usize) -> usize {
        (c * self.dims[0] + y) * self.dims[1]
    }

    /// Copy image `img` (`[c, h, w]`) into the interior of `pad`.
    fn fill<T: Elem>(&self, img: &[T], pad: &mut [T]) {
        let [h, wd] = self.hw;
        if wd == 0 {
            return;
        }
        for (i, src) in img.chunks_exact(wd).enumerate() {
            let (c, y) = (i / h, i % h);
            pad[self.row(c, y + self.lo[0]) + self.lo[1]..][..wd].copy_from_slice(src);
        }
    }

    /// Copy the interior of `pad` out to image `img`.
    fn extract<T: Elem>(&self, pad: &[T], img: &mut [T]) {
        let [h, wd] = self.hw;
        if wd == 0 {
            return;
        }
        for (i, dst) in img.chunks_exact_mut(wd).enumerate() {
            let (c, y) = (i / h, i % h);
            dst.copy_from_slice(&pad[self.row(c, y + self.lo[0]) + self.lo[1]..][..wd]);
        }
    }
}

/// `cols[n, oy, ox, c, ky, kx] = x[n, c, oy·s + ky·d − pad, ...]` (0 outside),
/// rows `n0..n1` of the batch only (threads take disjoint row ranges).
/// Each image is first copied into a zero-padded buffer; then each output
/// position's column row is written in order, one kernel-wide copy per
/// (channel, kernel row). The usual kernel widths get a loop specialised
/// for their width (a fixed-size copy, no per-element branch).
pub fn im2col<T: Elem>(w: &Window, g: &Geometry, x: &[T], cols: &mut [T], n0: usize, n1: usize) {
    match (w.kernel[1], w.dilation[1]) {
        (1, _) => gather::<T, 1>(w, g, x, cols, n0, n1),
        (2, 1) => gather::<T, 2>(w, g, x, cols, n0, n1),
        (3, 1) => gather::<T, 3>(w, g, x, cols, n0, n1),
        (5, 1) => gather::<T, 5>(w, g, x, cols, n0, n1),
        (7, 1) => gather::<T, 7>(w, g, x, cols, n0, n1),
        _ => gather::<T, 0>(w, g, x, cols, n0, n1),
    }
}

/// [`im2col`] for kernel width `K` at dilation 1 along the width, or any
/// width and dilation when `K` is 0.
fn gather<T: Elem, const K: usize>(w: &Window, g: &Geometry, x: &[T], cols: &mut [T], n0: usize, n1: usize) {
    let [h, wd] = g.hw;
    let [oh, ow] = g.out;
    let [kh, kw] = w.kernel;
    let ([sy, sx], [dy, dx]) = (w.stride, w.dilation);
    let row = g.c * kh * kw;
    if row == 0 {
        // No channels: nothing to move (and no rows to chunk).
        return;
    }
    let p = Padded::new(w, g);
    let mut pad = vec![T::ZERO; p.len(g.c)];
    let image = g.c * h * wd;
    for n in n0..n1 {
        p.fill(&x[n * image..][..image], &mut pad);
        let out = &mut cols[n * oh * ow * row..][..oh * ow * row];
        for (pos, dst) in out.chunks_exact_mut(row).enumerate() {
            let (oy, ox) = (pos / ow, pos % ow);
            for (i, d) in dst.chunks_exact_mut(kw).enumerate() {
                let (c, ky) = (i / kh, i % kh);
                let src = &pad[p.row(c, oy * sy + ky * dy) + ox * sx..];
                if K > 0 {
                    let (Ok(d), Ok(s)) = (<&mut [T; K]>::try_from(d), <&[T; K]>::try_from(&src[..K])) else {
                        unreachable!("rows of the kernel width")
                    };
                    *d = *s;
                } else {
                    for (kx, v) in d.iter_mut().enumerate() {
                        *v = src[kx * dx];
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: `x[n, c, iy, ix] = Σ cols` over every window
/// entry that read it, rows `n0..n1` of `x`. Summed into a zero-padded
/// buffer in the order `im2col` wrote the columns, then its interior is
/// copied out (the padding's sums are dropped).
pub fn col2im<T: Elem>(w: &Window, g: &Geometry, cols: &[T], x: &mut [T], n0: usize, n1: usize) {
    match (w.kernel[1], w.dilation[1]) {
        (1, _) => scatter::<T, 1>(w, g, cols, x, n0, n1),
        (2, 1) => scatter::<T, 2>(w, g, cols, x, n0, n1),
        (3, 1) => scatter::<T, 3>(w, g, cols, x, n0, n1),
        (5, 1) => scatter::<T, 5>(w, g, cols, x, n0, n1),
        (7, 1) => scatter::<T, 7>(w, g, cols, x, n0, n1),
        _ => scatter::<T, 0>(w, g, cols, x, n0, n1),
    }
}

/// [`col2im`] for kernel width `K` (see [`gather`]).
fn scatter<T: Elem, const K: usize>(w: &Window, g: &Geometry, cols: &[T], x: &mut [T], n0: usize, n1: usize) {
    let [h, wd] = g.hw;
    let [oh, ow] = g.out;
    let [kh, kw] = w.kernel;
    let ([sy, sx], [dy, dx]) = (w.stride, w.dilation);
    let row = g.c * kh * kw;
    if row == 0 {
        // No channels: nothing to move (and no rows to chunk).
        return;
    }
    let p = Padded::new(w, g);
    let mut pad = vec![T::ZERO; p.len(g.c)];
    let image = g.c * h * wd;
    for n in n0..n1 {
        pad.fill(T::ZERO);
        let block = &cols[n * oh * ow * row..][..oh * ow * row];
        for (pos, s) in block.chunks_exact(row).enumerate() {
            let (oy, ox) = (pos / ow, pos % ow);
            for (i, s) in s.chunks_exact(kw).enumerate() {
                let (c, ky) = (i / kh, i % kh);
                let dst = &mut pad[p.row(c, oy * sy + ky * dy) + ox * sx..];
                if K > 0 {
                    let (Ok(d), Ok(s)) = (<&mut [T; K]>::try_from(&mut dst[..K]), <&[T; K]>::try_from(s)) else {
                        unreachable!("rows of the kernel width")
                    };
                    for k in 0..K {
                        d[k] = d[k] + s[k];
                    }
                } else {
                    for (kx, &v) in s.iter().enumerate() {
                        dst[kx * dx] = dst[kx * dx] + v;
                    }
                }
            }
        }
        p.extract(&pad, &mut x[n * image..][..image]);
    }
}

/// The flat index (into the `[h, w]` plane) of the first maximum of the
/// window at `(oy, ox)` in row-major window order, or `None` when every
/// entry is padding. Strictly greater replaces, so ties keep the first; a
/// NaN replaces a number and then is never replaced.
#[inline(always)]
fn argmax<T: Elem>(ys: &Taps, xs: &Taps, wd: usize, plane: &[T], oy: usize, ox: usize) -> Option<usize> {
    let (ky0, ky1, kx0, kx1) = (ys.k0[oy], ys.k1[oy], xs.k0[ox], xs.k1[ox]);
    if ky0 >= ky1 || kx0 >= kx1 {
        return None;
    }
    let mut at = ys.first[oy] * wd + xs.first[ox];
    let mut best = plane[at];
    for ky in ky0..ky1 {
        let r = &plane[ys.at(oy, ky) * wd..][..wd];
        for kx in kx0..kx1 {
            let ix = xs.at(ox, kx);
            let v = r[ix];
            if !best.is_nan() && (v > best || v.is_nan()) {
                best = v;
                at = ys.at(oy, ky) * wd + ix;
            }
        }
    }
    Some(at)
}

/// The 2×2, stride-2 window without padding (nearly every CNN's pooling):
/// [`argmax`] over four known positions, in the same order.
#[inline(always)]
fn argmax_2x2<T: Elem>(wd: usize, plane: &[T], oy: usize, ox: usize) -> usize {
    let i = 2 * oy * wd + 2 * ox;
    let mut at = i;
    let mut best = plane[i];
    for j in [i + 1, i + wd, i + wd + 1] {
        let v = plane[j];
        if !best.is_nan() && (v > best || v.is_nan()) {
            best = v;
            at = j;
        }
    }
    at
}

fn is_2x2(w: &Window) -> bool {
    w.kernel == [2, 2] && w.stride == [2, 2] && w.dilation == [1, 1] && w.pad_lo == [0, 0] && w.pad_hi == [0, 0]
}

/// `y[n, c, oy, ox]` = the window's maximum (−∞ for a window of padding
/// only, which the shape checks rule out). Planes `p0..p1` of `n·c`.
pub fn max_pool<T: Elem>(w: &Window, g: &Geometry, x: &[T], y: &mut [T], p0: usize, p1: usize) {
    let (hw, ohw) = (g.hw[0] * g.hw[1], g.out[0] * g.out[1]);
    let (ys, xs) = (Taps::new(w, 0, g.out[0], g.hw[0]), Taps::new(w, 1, g.out[1], g.hw[1]));
    let tiled = is_2x2(w);
    for p in p0..p1 {
        let plane = &x[p * hw..][..hw];
        let out = &mut y[p * ohw..][..ohw];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                let i = if tiled {
                    Some(argmax_2x2(g.hw[1], plane, oy, ox))
                } else {
                    argmax(&ys, &xs, g.hw[1], plane, oy, ox)
                };
                out[oy * g.out[1] + ox] = i.map_or(T::NEG_INF, |i| plane[i]);
            }
        }
    }
}

/// `dx` = each output gradient added at its window's first maximum of `x`.
/// Planes `p0..p1` of `dx` are zeroed and then summed.
pub fn max_pool_grad<T: Elem>(w: &Window, g: &Geometry, x: &[T], dy: &[T], dx: &mut [T], p0: usize, p1: usize) {
    let (hw, ohw) = (g.hw[0] * g.hw[1], g.out[0] * g.out[1]);
    let (ys, xs) = (Taps::new(w, 0, g.out[0], g.hw[0]), Taps::new(w, 1, g.out[1], g.hw[1]));
    let tiled = is_2x2(w);
    dx[p0 * hw..p1 * hw].fill(T::ZERO);
    for p in p0..p1 {
        let plane = &x[p * hw..][..hw];
        let d = &mut dx[p * hw..][..hw];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                let i = if tiled {
                    Some(argmax_2x2(g.hw[1], plane, oy, ox))
                } else {
                    argmax(&ys, &xs, g.hw[1], plane, oy, ox)
                };
                if let Some(i) = i {
                    d[i] = d[i] + dy[p * ohw + oy * g.out[1] + ox];
                }
            }
        }
    }
}
