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

    /// One row of 2×2, stride-2 max pooling: `out[i]` is the first maximum
    /// of `r0[2i], r0[2i+1], r1[2i], r1[2i+1]` ([`pool_row_2x2`]; f32
    /// overrides it with a vector version that gives the same bits).
    fn pool_row_2x2(r0: &[Self], r1: &[Self], out: &mut [Self]) {
        pool_row_2x2(r0, r1, out)
    }

    /// The gradient of [`Elem::pool_row_2x2`]: `g[i]` goes to the window's
    /// first maximum in `d0`/`d1` (the rows under `r0`/`r1`), 0 to the
    /// other three ([`pool_grad_row_2x2`]; f32 overrides it likewise).
    fn pool_grad_row_2x2(r0: &[Self], r1: &[Self], g: &[Self], d0: &mut [Self], d1: &mut [Self]) {
        pool_grad_row_2x2(r0, r1, g, d0, d1)
    }
}

impl Elem for f32 {
    const ZERO: f32 = 0.0;
    const NEG_INF: f32 = f32::NEG_INFINITY;
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn pool_row_2x2(r0: &[f32], r1: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        let done = sse2::pool_row_2x2(r0, r1, out);
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        pool_row_2x2(&r0[2 * done..], &r1[2 * done..], &mut out[done..]);
    }
    fn pool_grad_row_2x2(r0: &[f32], r1: &[f32], g: &[f32], d0: &mut [f32], d1: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        let done = sse2::pool_grad_row_2x2(r0, r1, g, d0, d1);
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        let t = 2 * done;
        pool_grad_row_2x2(&r0[t..], &r1[t..], &g[done..], &mut d0[t..], &mut d1[t..]);
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
#[inline(always)]
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
#[inline(always)]
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
#[inline(always)]
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
#[inline(always)]
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
/// the position (0..4, row-major) and value of the first maximum of `a, b`
/// (upper row) and `c, d` (lower row), by [`argmax`]'s rule.
#[inline(always)]
fn first_max_of_4<T: Elem>(a: T, b: T, c: T, d: T) -> (usize, T) {
    let (mut at, mut best) = (0, a);
    for (k, v) in [(1, b), (2, c), (3, d)] {
        if !best.is_nan() && (v > best || v.is_nan()) {
            (at, best) = (k, v);
        }
    }
    (at, best)
}

/// The reference [`Elem::pool_row_2x2`] (and the tail of the vector one).
pub fn pool_row_2x2<T: Elem>(r0: &[T], r1: &[T], out: &mut [T]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = first_max_of_4(r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1]).1;
    }
}

/// The reference [`Elem::pool_grad_row_2x2`].
pub fn pool_grad_row_2x2<T: Elem>(r0: &[T], r1: &[T], g: &[T], d0: &mut [T], d1: &mut [T]) {
    for (i, &gv) in g.iter().enumerate() {
        let (at, _) = first_max_of_4(r0[2 * i], r0[2 * i + 1], r1[2 * i], r1[2 * i + 1]);
        let put = |k: usize| if at == k { gv } else { T::ZERO };
        (d0[2 * i], d0[2 * i + 1], d1[2 * i], d1[2 * i + 1]) = (put(0), put(1), put(2), put(3));
    }
}

/// SSE2 (every x86-64 has it) versions of the 2×2 pooling rows, four
/// windows at a time. Why by hand: each comparison of a window is a coin
/// flip on real activations, and LLVM turns the scalar selects into
/// branches (the baseline target has no blend), which mispredicted so often
/// that the pooling gradient ran ten times slower than its memory traffic.
/// Masks make the same choices as [`first_max_of_4`]: a candidate replaces
/// the best when the best is not NaN and the candidate is greater or NaN.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// The first maximum of four windows (value) and which of the four
    /// positions won (one all-ones mask per position).
    /// SAFETY (callers): `r0` and `r1` hold 8 floats from `at`.
    #[inline(always)]
    unsafe fn windows(r0: &[f32], r1: &[f32], at: usize) -> (__m128, [__m128; 4]) {
        let (p0, p1) = (r0[at..at + 8].as_ptr(), r1[at..at + 8].as_ptr());
        let (u0, u1) = (_mm_loadu_ps(p0), _mm_loadu_ps(p0.add(4)));
        let (l0, l1) = (_mm_loadu_ps(p1), _mm_loadu_ps(p1.add(4)));
        // Even lanes are each window's left column, odd lanes its right.
        let a = _mm_shuffle_ps::<0b10_00_10_00>(u0, u1);
        let b = _mm_shuffle_ps::<0b11_01_11_01>(u0, u1);
        let c = _mm_shuffle_ps::<0b10_00_10_00>(l0, l1);
        let d = _mm_shuffle_ps::<0b11_01_11_01>(l0, l1);
        let mut best = a;
        let mut won = [
            _mm_castsi128_ps(_mm_set1_epi32(-1)),
            _mm_setzero_ps(),
            _mm_setzero_ps(),
            _mm_setzero_ps(),
        ];
        for (k, v) in [(1, b), (2, c), (3, d)] {
            let best_is_number = _mm_cmpord_ps(best, best);
            let take = _mm_and_ps(best_is_number, _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v)));
            best = _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, best));
            for w in &mut won[..k] {
                *w = _mm_andnot_ps(take, *w);
            }
            won[k] = take;
        }
        (best, won)
    }

    /// Windows `0..4·⌊out.len() / 4⌋` of [`super::pool_row_2x2`]; returns
    /// how many it did.
    pub fn pool_row_2x2(r0: &[f32], r1: &[f32], out: &mut [f32]) -> usize {
        let n = out.len() / 4 * 4;
        for i in (0..n).step_by(4) {
            // SAFETY: 2i + 8 <= 2n <= r0.len(), r1.len() (the slices are
            // bounds-checked inside) and out has 4 floats from i.
            unsafe {
                let (best, _) = windows(r0, r1, 2 * i);
                _mm_storeu_ps(out[i..i + 4].as_mut_ptr(), best);
            }
        }
        n
    }

    /// Windows `0..4·⌊g.len() / 4⌋` of [`super::pool_grad_row_2x2`];
    /// returns how many it did.
    pub fn pool_grad_row_2x2(r0: &[f32], r1: &[f32], g: &[f32], d0: &mut [f32], d1: &mut [f32]) -> usize {
        let n = g.len() / 4 * 4;
        for i in (0..n).step_by(4) {
            // SAFETY: as in `pool_row_2x2`; d0 and d1 have 8 floats from 2i.
            unsafe {
                let (_, [w0, w1, w2, w3]) = windows(r0, r1, 2 * i);
                let gv = _mm_loadu_ps(g[i..i + 4].as_ptr());
                // A losing position gets +0 (all bits clear), as `put` gives.
                let (o0, o1, o2, o3) = (_mm_and_ps(w0, gv), _mm_and_ps(w1, gv), _mm_and_ps(w2, gv), _mm_and_ps(w3, gv));
                let (u, l) = (d0[2 * i..2 * i + 8].as_mut_ptr(), d1[2 * i..2 * i + 8].as_mut_ptr());
                _mm_storeu_ps(u, _mm_unpacklo_ps(o0, o1));
                _mm_storeu_ps(u.add(4), _mm_unpackhi_ps(o0, o1));
                _mm_storeu_ps(l, _mm_unpacklo_ps(o2, o3));
                _mm_storeu_ps(l.add(4), _mm_unpackhi_ps(o2, o3));
            }
        }
        n
    }
}

/// [`max_pool`] for the 2×2, stride-2 window: one pass over pairs of rows.
#[inline(always)]
fn max_pool_2x2<T: Elem>(g: &Geometry, x: &[T], y: &mut [T], p0: usize, p1: usize) {
    let ([h, wd], [oh, ow]) = (g.hw, g.out);
    for p in p0..p1 {
        let plane = &x[p * h * wd..][..h * wd];
        let out = &mut y[p * oh * ow..][..oh * ow];
        for (oy, o) in out.chunks_exact_mut(ow).enumerate() {
            let (r0, r1) = (&plane[2 * oy * wd..][..2 * ow], &plane[(2 * oy + 1) * wd..][..2 * ow]);
            T::pool_row_2x2(r0, r1, o);
        }
    }
}

/// [`max_pool_grad`] for the 2×2, stride-2 window. The windows tile the
/// plane without overlapping, so every input pixel gets exactly one value
/// (the gradient or 0) and nothing needs zeroing or summing first; the
/// pixels a window does not cover (an odd last row or column) are zeroed.
#[inline(always)]
fn max_pool_grad_2x2<T: Elem>(g: &Geometry, x: &[T], dy: &[T], dx: &mut [T], p0: usize, p1: usize) {
    let ([h, wd], [oh, ow]) = (g.hw, g.out);
    if 2 * oh != h || 2 * ow != wd {
        dx[p0 * h * wd..p1 * h * wd].fill(T::ZERO);
    }
    for p in p0..p1 {
        let plane = &x[p * h * wd..][..h * wd];
        let d = &mut dx[p * h * wd..][..h * wd];
        let grad = &dy[p * oh * ow..][..oh * ow];
        for (oy, gy) in grad.chunks_exact(ow).enumerate() {
            let (r0, r1) = (&plane[2 * oy * wd..][..2 * ow], &plane[(2 * oy + 1) * wd..][..2 * ow]);
            let (d0, d1) = d[2 * oy * wd..].split_at_mut(wd);
            T::pool_grad_row_2x2(r0, r1, gy, &mut d0[..2 * ow], &mut d1[..2 * ow]);
        }
    }
}

fn is_2x2(w: &Window) -> bool {
    w.kernel == [2, 2] && w.stride == [2, 2] && w.dilation == [1, 1] && w.pad_lo == [0, 0] && w.pad_hi == [0, 0]
}

/// `y[n, c, oy, ox]` = the window's maximum (−∞ for a window of padding
/// only, which the shape checks rule out). Planes `p0..p1` of `n·c`.
#[inline(always)]
pub fn max_pool<T: Elem>(w: &Window, g: &Geometry, x: &[T], y: &mut [T], p0: usize, p1: usize) {
    if is_2x2(w) {
        return max_pool_2x2(g, x, y, p0, p1);
    }
    let (hw, ohw) = (g.hw[0] * g.hw[1], g.out[0] * g.out[1]);
    let (ys, xs) = (Taps::new(w, 0, g.out[0], g.hw[0]), Taps::new(w, 1, g.out[1], g.hw[1]));
    for p in p0..p1 {
        let plane = &x[p * hw..][..hw];
        let out = &mut y[p * ohw..][..ohw];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                let i = argmax(&ys, &xs, g.hw[1], plane, oy, ox);
                out[oy * g.out[1] + ox] = i.map_or(T::NEG_INF, |i| plane[i]);
            }
        }
    }
}

/// `dx` = each output gradient added at its window's first maximum of `x`.
/// Planes `p0..p1` of `dx` are zeroed and then summed.
#[inline(always)]
pub fn max_pool_grad<T: Elem>(w: &Window, g: &Geometry, x: &[T], dy: &[T], dx: &mut [T], p0: usize, p1: usize) {
    if is_2x2(w) {
        return max_pool_grad_2x2(g, x, dy, dx, p0, p1);
    }
    let (hw, ohw) = (g.hw[0] * g.hw[1], g.out[0] * g.out[1]);
    let (ys, xs) = (Taps::new(w, 0, g.out[0], g.hw[0]), Taps::new(w, 1, g.out[1], g.hw[1]));
    dx[p0 * hw..p1 * hw].fill(T::ZERO);
    for p in p0..p1 {
        let plane = &x[p * hw..][..hw];
        let d = &mut dx[p * hw..][..hw];
        for oy in 0..g.out[0] {
            for ox in 0..g.out[1] {
                if let Some(i) = argmax(&ys, &xs, g.hw[1], plane, oy, ox) {
                    d[i] = d[i] + dy[p * ohw + oy * g.out[1] + ox];
                }
            }
        }
    }
}
