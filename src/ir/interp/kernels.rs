//! Loops behind the interpreter's elementwise, broadcast and reduce ops.
//!
//! Tests run unoptimised builds, where ndarray's generic `Zip` and
//! `fold_axis` cost tens of nanoseconds per element; the flat loops over
//! row-major slices here are several times faster there (and no slower in
//! release). Each falls back to the general ndarray path for strided inputs
//! such as lazily transposed values.

use super::Tensor;
use ndarray::{ArrayD, Axis, IxDyn, Zip};

fn from_vec(shape: &[usize], data: Vec<f64>) -> Tensor {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("kernel output length matches its shape")
}

pub(super) fn map1(a: &Tensor, f: impl Fn(f64) -> f64) -> Tensor {
    match a.as_slice() {
        Some(sa) => from_vec(a.shape(), sa.iter().map(|&x| f(x)).collect()),
        None => a.mapv(f),
    }
}

/// Operand shapes must already be equal.
pub(super) fn map2(a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Tensor {
    match (a.as_slice(), b.as_slice()) {
        (Some(sa), Some(sb)) => {
            let mut out = Vec::with_capacity(sa.len());
            for (&x, &y) in sa.iter().zip(sb) {
                out.push(f(x, y));
            }
            from_vec(a.shape(), out)
        }
        _ => Zip::from(a).and(b).map_collect(|&x, &y| f(x, y)),
    }
}

/// `a` where `c != 0`, else `b`; shapes must already be equal.
pub(super) fn select(c: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
    match (c.as_slice(), a.as_slice(), b.as_slice()) {
        (Some(sc), Some(sa), Some(sb)) => {
            let mut out = Vec::with_capacity(sa.len());
            for ((&c, &x), &y) in sc.iter().zip(sa).zip(sb) {
                out.push(if c != 0.0 { x } else { y });
            }
            from_vec(a.shape(), out)
        }
        _ => Zip::from(c).and(a).and(b).map_collect(|&c, &x, &y| if c != 0.0 { x } else { y }),
    }
}

/// NumPy broadcast of `x` to `target` (already checked compatible).
///
/// The output is written as a sequence of blocks, one per index of the
/// leading "outer" dims: either a copy of a contiguous run of the source
/// (when trailing dims match: a bias row) or one source value repeated (when
/// trailing dims are stretched: a per-row statistic). An odometer tracks the
/// source offset of each block, so no per-element index arithmetic is done.
pub(super) fn broadcast(x: &Tensor, target: &[usize]) -> Tensor {
    let src = x.as_standard_layout();
    let data = src.as_slice().expect("standard layout is contiguous");
    let r = target.len();
    let mut s = vec![1; r - x.ndim()];
    s.extend_from_slice(x.shape());
    let mut split = r;
    while split > 0 && s[split - 1] == target[split - 1] {
        split -= 1;
    }
    let copy = split < r;
    if !copy {
        while split > 0 && s[split - 1] == 1 {
            split -= 1;
        }
    }
    let block: usize = target[split..].iter().product();
    let src_block = if copy { block } else { 1 };
    // Source stride of each outer dim, in blocks; 0 where it is stretched.
    let mut stride = vec![0; split];
    let mut acc = 1;
    for i in (0..split).rev() {
        stride[i] = if s[i] == 1 { 0 } else { acc };
        acc *= s[i];
    }
    let outer: usize = target[..split].iter().product();
    let mut out = Vec::with_capacity(outer * block);
    let mut idx = vec![0; split];
    let mut off = 0;
    for _ in 0..outer {
        let start = off * src_block;
        if copy {
            out.extend_from_slice(&data[start..start + block]);
        } else {
            out.resize(out.len() + block, data[start]);
        }
        for i in (0..split).rev() {
            idx[i] += 1;
            off += stride[i];
            if idx[i] < target[i] {
                break;
            }
            off -= stride[i] * target[i];
            idx[i] = 0;
        }
    }
    from_vec(target, out)
}

/// Fold away the sorted, distinct `axes` with `f` from `init`; with `keep`
/// they stay as size-1 dims. Each run of adjacent axes is one pass over a
/// `[outer, mid, inner]` view of a row-major array, folding `mid`.
pub(super) fn reduce(x: &Tensor, axes: &[usize], keep: bool, init: f64, f: fn(f64, f64) -> f64) -> Tensor {
    let mut shape = x.shape().to_vec();
    let mut cur = x.as_standard_layout().into_owned();
    // Highest run first, so lower axis numbers stay valid; reduced axes are
    // kept as size 1 until the end, which keeps the numbering simple.
    let mut end = axes.len();
    while end > 0 {
        let mut start = end - 1;
        while start > 0 && axes[start - 1] + 1 == axes[start] {
            start -= 1;
        }
        let (lo, hi) = (axes[start], axes[end - 1] + 1);
        let outer: usize = shape[..lo].iter().product();
        let mid: usize = shape[lo..hi].iter().product();
        let inner: usize = shape[hi..].iter().product();
        let data = cur.as_slice().expect("row-major");
        let out = fold_mid(data, outer, mid, inner, init, f);
        for d in &mut shape[lo..hi] {
            *d = 1;
        }
        cur = from_vec(&shape, out);
        end = start;
    }
    if !keep {
        for &ax in axes.iter().rev() {
            cur.index_axis_inplace(Axis(ax), 0);
        }
    }
    cur
}

fn fold_mid(data: &[f64], outer: usize, mid: usize, inner: usize, init: f64, f: fn(f64, f64) -> f64) -> Vec<f64> {
    if inner == 1 {
        // Reducing trailing axes: each output is a fold over one contiguous run.
        if mid == 0 {
            return vec![init; outer];
        }
        return data.chunks_exact(mid).map(|run| run.iter().fold(init, |a, &v| f(a, v))).collect();
    }
    let mut out = vec![init; outer * inner];
    for o in 0..outer {
        let dst = &mut out[o * inner..(o + 1) * inner];
        for m in 0..mid {
            let src = &data[(o * mid + m) * inner..][..inner];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = f(*d, v);
            }
        }
    }
    out
}
