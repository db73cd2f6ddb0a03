//! The interpreter's ops that move elements: slice, pad, reverse, concat,
//! gather, scatter-add and iota. They are written with ndarray's own
//! slicing (not the index arithmetic the JIT's host loops use), so the two
//! backends are independent implementations checked against each other.

use super::Tensor;
use ndarray::{ArrayD, Axis, IxDyn, Slice};

/// Element `start[i] + stride[i] * j` along every axis `i`, `len[i]` of them.
pub(super) fn slice(x: &Tensor, start: &[usize], stride: &[usize], len: &[usize]) -> Result<Tensor, String> {
    if start.len() != x.ndim() || stride.len() != x.ndim() || len.len() != x.ndim() {
        return Err(format!("slice attributes do not match rank {}", x.ndim()));
    }
    let mut v = x.view();
    for ax in 0..x.ndim() {
        if len[ax] == 0 {
            v.slice_axis_inplace(Axis(ax), Slice::new(0, Some(0), 1));
            continue;
        }
        let end = start[ax] + stride[ax] * (len[ax] - 1) + 1;
        if end > x.shape()[ax] || stride[ax] == 0 {
            return Err(format!("slice of axis {ax} (size {}) out of range", x.shape()[ax]));
        }
        v.slice_axis_inplace(Axis(ax), Slice::new(start[ax] as isize, Some(end as isize), stride[ax] as isize));
    }
    Ok(v.to_owned())
}

/// Zeros around and between the elements: `low`/`high` before/after each
/// axis, `interior` between neighbours (the adjoint of a strided slice).
pub(super) fn pad(x: &Tensor, low: &[usize], high: &[usize], interior: &[usize]) -> Result<Tensor, String> {
    let r = x.ndim();
    if low.len() != r || high.len() != r || interior.len() != r {
        return Err(format!("pad attributes do not match rank {r}"));
    }
    let shape: Vec<usize> = (0..r)
        .map(|a| {
            let n = x.shape()[a];
            low[a] + high[a] + n + interior[a] * n.saturating_sub(1)
        })
        .collect();
    let mut out = ArrayD::<f64>::zeros(IxDyn(&shape));
    if x.is_empty() {
        return Ok(out);
    }
    let mut dst = out.view_mut();
    for a in 0..r {
        let n = x.shape()[a];
        let end = low[a] + (interior[a] + 1) * (n - 1) + 1;
        dst.slice_axis_inplace(Axis(a), Slice::new(low[a] as isize, Some(end as isize), (interior[a] + 1) as isize));
    }
    dst.assign(x);
    Ok(out)
}

pub(super) fn reverse(x: &Tensor, axes: &[usize]) -> Result<Tensor, String> {
    let mut v = x.view();
    for &a in axes {
        if a >= x.ndim() {
            return Err(format!("reverse axis {a} out of range for rank {}", x.ndim()));
        }
        v.invert_axis(Axis(a));
    }
    Ok(v.to_owned())
}

pub(super) fn concat(a: &Tensor, b: &Tensor, axis: usize) -> Result<Tensor, String> {
    ndarray::concatenate(Axis(axis), &[a.view(), b.view()]).map_err(|e| format!("concat: {e}"))
}

/// The integer an id holds, when it names a position in `0..n`.
fn position(id: f64, n: usize) -> Option<usize> {
    (id >= 0.0 && id < n as f64).then_some(id as usize)
}

/// `x` with axis `axis` replaced by the positions in `ids`; an id outside
/// the axis reads NaN (JAX's `take` with its default `fill` mode).
pub(super) fn gather(x: &Tensor, ids: &Tensor, axis: usize) -> Result<Tensor, String> {
    if axis >= x.ndim() {
        return Err(format!("gather axis {axis} out of range for rank {}", x.ndim()));
    }
    let n = x.shape()[axis];
    let mut shape = x.shape()[..axis].to_vec();
    shape.extend_from_slice(ids.shape());
    shape.extend_from_slice(&x.shape()[axis + 1..]);
    let mut out = ArrayD::<f64>::zeros(IxDyn(&shape));
    // View the result as [outer, ids, inner] and copy one slice per id.
    let outer: usize = x.shape()[..axis].iter().product();
    let inner: usize = x.shape()[axis + 1..].iter().product();
    let k = ids.len();
    let x3 = x.to_shape((outer, n, inner)).map_err(|e| e.to_string())?;
    {
        let mut o3 = out.view_mut().into_shape_with_order((outer, k, inner)).map_err(|e| e.to_string())?;
        for (j, &id) in ids.iter().enumerate() {
            let mut dst = o3.index_axis_mut(Axis(1), j);
            match position(id, n) {
                Some(p) => dst.assign(&x3.index_axis(Axis(1), p)),
                None => dst.fill(f64::NAN),
            }
        }
    }
    Ok(out)
}

/// Zeros of `shape`, with each slice of `updates` added at the position its
/// id names along `axis` (ids outside the axis are dropped): the adjoint of
/// `gather`.
pub(super) fn scatter_add(ids: &Tensor, updates: &Tensor, axis: usize, shape: &[usize]) -> Result<Tensor, String> {
    if axis >= shape.len() {
        return Err(format!("scatter_add axis {axis} out of range for rank {}", shape.len()));
    }
    let n = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let k = ids.len();
    if updates.len() != outer * k * inner {
        return Err(format!(
            "scatter_add updates {:?} do not fit {shape:?} with ids {:?}",
            updates.shape(),
            ids.shape()
        ));
    }
    let mut out = ArrayD::<f64>::zeros(IxDyn(shape));
    let u3 = updates.to_shape((outer, k, inner)).map_err(|e| e.to_string())?;
    {
        let mut o3 = out.view_mut().into_shape_with_order((outer, n, inner)).map_err(|e| e.to_string())?;
        for (j, &id) in ids.iter().enumerate() {
            if let Some(p) = position(id, n) {
                let mut dst = o3.index_axis_mut(Axis(1), p);
                dst += &u3.index_axis(Axis(1), j);
            }
        }
    }
    Ok(out)
}

/// Each element's position along `axis`.
pub(super) fn iota(shape: &[usize], axis: usize) -> Result<Tensor, String> {
    if axis >= shape.len() {
        return Err(format!("iota axis {axis} out of range for rank {}", shape.len()));
    }
    Ok(ArrayD::from_shape_fn(IxDyn(shape), |ix| ix[axis] as f64))
}
