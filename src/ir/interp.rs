//! Reference interpreter (ndarray, f64): the oracle for the JIT and for gradients.
//!
//! Every value is an `ArrayD<f64>`, whatever its IR dtype: `i32` values are
//! held as integral f64s, so labels and indices survive exactly. Computing in
//! f64 rather than f32 keeps finite-difference gradient checks accurate; the
//! JIT is compared against it with an f32 tolerance.
//!
//! Elementwise ops compute with [`super::scalar`], the one definition of
//! their values (`sign(0) = 0`, NaN-propagating `max`/`min`, saturating
//! casts). Semantics chosen here where the type rules leave room (the JIT
//! must match):
//! - `one_hot` of a label outside `0..depth` is an all-zero row (as in
//!   TensorFlow and JAX), so padding labels such as -1 contribute nothing.
//! - `reduce_max` over an empty axis gives -inf.
//!
//! After each instruction the result's shape is checked against its declared
//! type (with symbols bound), so the interpreter also catches IR whose types
//! lie about the data.

use super::window::{self as win, Geometry};
use super::{scalar, BinaryOp, DType, Dim, Func, Inst, Op, Type, Window};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayD, ArrayView2, Axis, Ix2, IxDyn};
use std::borrow::Cow;
use std::collections::HashMap;

mod kernels;
mod moves;

pub type Tensor = ArrayD<f64>;

/// Sizes of the symbolic dims, bound from the argument shapes.
type Bindings = HashMap<String, usize>;

/// Run `f` on `args` (one per param). Symbolic dims are bound from the argument shapes
/// (checked consistent); wrong arg count/rank/shape → Err with a clear message naming the param.
pub fn run(f: &Func, args: &[Tensor]) -> Result<Vec<Tensor>, String> {
    if args.len() != f.params.len() {
        return Err(format!("@{} takes {} arguments, got {}", f.name, f.params.len(), args.len()));
    }
    // Checking types first means `eval` can index operands without fear:
    // malformed IR is an `Err`, never a panic.
    super::verify(f).map_err(|e| format!("@{}: invalid IR: {e}", f.name))?;
    let bind = bind_params(f, args)?;
    // Parameters are borrowed, instruction results owned: no copy of the
    // (possibly large) inputs.
    let mut env: Vec<Option<Cow<'_, Tensor>>> = vec![None; f.types.len()];
    for (&p, a) in f.params.iter().zip(args) {
        env[p.index()] = Some(Cow::Borrowed(a));
    }
    let last_use = last_uses(f);
    // Every output of a scan, by (scan, operands): siblings run it once.
    let mut scans: Vec<(&super::scan::Scan, &[super::Value], Vec<Tensor>)> = vec![];
    for (i, inst) in f.insts.iter().enumerate() {
        let operands: Vec<&Tensor> = inst
            .args
            .iter()
            .map(|a| {
                env[a.index()]
                    .as_deref()
                    .ok_or_else(|| format!("{} uses {a}, which has no value", inst.result))
            })
            .collect::<Result<_, _>>()?;
        let out = if let Op::Scan { scan, output } = &inst.op {
            let known = scans
                .iter()
                .position(|(s, a, _)| std::ptr::eq(*s, &**scan) && *a == inst.args.as_slice());
            let at = match known {
                Some(at) => at,
                None => {
                    let outs = run_scan(scan, &operands).map_err(|e| format!("@{}: {}: {e}", f.name, inst.result))?;
                    scans.push((scan, &inst.args, outs));
                    scans.len() - 1
                }
            };
            scans[at].2[*output].clone()
        } else {
            eval(inst, &operands, &bind).map_err(|e| format!("@{}: {}: {e}", f.name, inst.result))?
        };
        check_shape(&out, f.ty(inst.result), &bind).map_err(|e| format!("@{}: {}: {e}", f.name, inst.result))?;
        env[inst.result.index()] = Some(Cow::Owned(out));
        // Free operands nobody reads any more: a training step's activations
        // would otherwise all stay alive until the end.
        for a in &inst.args {
            if last_use[a.index()] == Some(i) {
                env[a.index()] = None;
            }
        }
    }
    take_results(f, env)
}

/// Move the results out of `env` (cloning only a value returned twice or a
/// borrowed argument), in row-major layout: callers expect plain arrays
/// (e.g. for `as_slice`), even when a value is a lazily transposed view.
fn take_results(f: &Func, mut env: Vec<Option<Cow<'_, Tensor>>>) -> Result<Vec<Tensor>, String> {
    let mut out = Vec::with_capacity(f.results.len());
    for (j, r) in f.results.iter().enumerate() {
        let slot = &mut env[r.index()];
        let value = if f.results[j + 1..].contains(r) {
            slot.clone()
        } else {
            slot.take()
        };
        let t = value.ok_or_else(|| format!("@{}: result {r} has no value", f.name))?.into_owned();
        out.push(if t.is_standard_layout() {
            t
        } else {
            t.as_standard_layout().into_owned()
        });
    }
    Ok(out)
}

/// Check every argument against its param's type and bind the symbols.
fn bind_params(f: &Func, args: &[Tensor]) -> Result<Bindings, String> {
    let mut bind = Bindings::new();
    for (i, (&p, a)) in f.params.iter().zip(args).enumerate() {
        let name = f.param_names.get(i).map_or("?", String::as_str);
        let ty = f.ty(p);
        let what = || format!("argument {i} (`{name}`, declared {ty}) has shape {:?}", a.shape());
        if a.ndim() != ty.rank() {
            return Err(format!("{}: rank {} instead of {}", what(), a.ndim(), ty.rank()));
        }
        for (axis, (d, &n)) in ty.shape.iter().zip(a.shape()).enumerate() {
            match d {
                Dim::Known(k) if *k != n => return Err(format!("{}: dim {axis} should be {k}", what())),
                Dim::Sym(s) => match bind.get(s) {
                    Some(&b) if b != n => {
                        return Err(format!("{}: dim {axis} is `{s}`, already bound to {b}", what()));
                    }
                    _ => {
                        bind.insert(s.clone(), n);
                    }
                },
                _ => {}
            }
        }
        if ty.dtype == DType::I32 && a.iter().any(|x| x.fract() != 0.0) {
            return Err(format!("argument {i} (`{name}`) is i32 but holds a non-integer value"));
        }
    }
    Ok(bind)
}

/// For each value, the index of the last instruction reading it; `None` for
/// values never read and for results (which must survive to the end).
fn last_uses(f: &Func) -> Vec<Option<usize>> {
    let mut last = vec![None; f.types.len()];
    for (i, inst) in f.insts.iter().enumerate() {
        for a in &inst.args {
            last[a.index()] = Some(i);
        }
    }
    for r in &f.results {
        last[r.index()] = None;
    }
    last
}

fn resolve(shape: &[Dim], bind: &Bindings) -> Result<Vec<usize>, String> {
    shape
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Ok(*n),
            Dim::Sym(s) => bind
                .get(s)
                .copied()
                .ok_or_else(|| format!("symbol `{s}` is not bound by any argument")),
        })
        .collect()
}

fn check_shape(t: &Tensor, ty: &Type, bind: &Bindings) -> Result<(), String> {
    let want = resolve(&ty.shape, bind)?;
    if t.shape() != want.as_slice() {
        return Err(format!("internal error: computed shape {:?}, declared {ty} = {want:?}", t.shape()));
    }
    Ok(())
}

fn eval(inst: &Inst, x: &[&Tensor], bind: &Bindings) -> Result<Tensor, String> {
    Ok(match &inst.op {
        Op::Const(c) => ArrayD::from_elem(IxDyn(&[]), *c),
        Op::Unary(u) => kernels::map1(x[0], |v| scalar::unary(*u, v)),
        Op::Binary(op) => zip2(x[0], x[1], |a, b| scalar::binary(*op, a, b))?,
        Op::Compare(op) => zip2(x[0], x[1], |a, b| if scalar::compare(*op, a, b) { 1.0 } else { 0.0 })?,
        Op::Select => select(x[0], x[1], x[2])?,
        Op::Broadcast { shape } => broadcast(x[0], &resolve(shape, bind)?)?,
        Op::ReduceSum { axes, keep } => reduce(x[0], axes, *keep, 0.0, |acc, v| acc + v)?,
        Op::ReduceMax { axes, keep } => reduce(x[0], axes, *keep, f64::NEG_INFINITY, |a, b| scalar::binary(BinaryOp::Max, a, b))?,
        Op::Reshape { shape } => {
            let shape = resolve(shape, bind)?;
            let view = x[0].to_shape(IxDyn(&shape)).map_err(|e| format!("reshape: {e}"))?;
            view.into_owned()
        }
        // A transposed view is cheap; later ops read it through its strides.
        Op::Transpose { perm } => x[0].clone().permuted_axes(IxDyn(perm)),
        Op::MatMul => matmul(x[0], x[1])?,
        Op::OneHot { depth } => one_hot(x[0], *depth),
        Op::Cast { to: DType::I32 } => kernels::map1(x[0], scalar::to_i32),
        Op::Cast { to: DType::F32 } => x[0].clone(),
        Op::RandomUniform { shape, seed } => random(&resolve(shape, bind)?, keyed(*seed, x[0]), super::random_uniform),
        Op::RandomNormal { shape, seed } => random(&resolve(shape, bind)?, keyed(*seed, x[0]), super::random_normal),
        Op::Slice { start, stride, shape } => moves::slice(x[0], start, stride, &resolve(shape, bind)?)?,
        Op::Pad { low, high, interior } => moves::pad(x[0], low, high, interior)?,
        Op::Reverse { axes } => moves::reverse(x[0], axes)?,
        Op::Concat { axis } => moves::concat(x[0], x[1], *axis)?,
        Op::Gather { axis } => moves::gather(x[0], x[1], *axis)?,
        Op::ScatterAdd { axis, shape } => moves::scatter_add(x[0], x[1], *axis, &resolve(shape, bind)?)?,
        Op::Iota { shape, axis } => moves::iota(&resolve(shape, bind)?, *axis)?,
        Op::Im2col { window } => im2col(window, x[0])?,
        Op::Col2im { window, size } => col2im(window, *size, x[0])?,
        Op::MaxPool { window } => max_pool(window, x[0])?,
        Op::MaxPoolGrad { window } => max_pool_grad(window, x[0], x[1])?,
        Op::Scan { scan, output } => run_scan(scan, x)?.swap_remove(*output),
    })
}

/// Every output of `scan` on operands `x`: the body run once per step.
fn run_scan(scan: &super::scan::Scan, x: &[&Tensor]) -> Result<Vec<Tensor>, String> {
    let (k, m) = (scan.carries, scan.seqs);
    let mut carry: Vec<Tensor> = x[..k].iter().map(|&t| t.clone()).collect();
    let mut ys: Vec<Vec<Tensor>> = vec![Vec::with_capacity(scan.steps); scan.ys()];
    for i in 0..scan.steps {
        let t = scan.position(i);
        let mut args = std::mem::take(&mut carry);
        for seq in &x[k..k + m] {
            args.push(seq.index_axis(Axis(0), t).to_owned());
        }
        args.extend(x[k + m..].iter().map(|&t| t.clone()));
        let mut outs = run(&scan.body, &args).map_err(|e| format!("scan step {t}: {e}"))?;
        let step_ys = outs.split_off(k);
        carry = outs;
        for (j, y) in step_ys.into_iter().enumerate() {
            ys[j].push(y);
        }
    }
    let mut outs = carry;
    for mut steps in ys {
        if scan.reverse {
            steps.reverse();
        }
        let views: Vec<_> = steps.iter().map(|s| s.view()).collect();
        outs.push(ndarray::stack(Axis(0), &views).map_err(|e| format!("scan: stacking steps: {e}"))?);
    }
    Ok(outs)
}

fn same_shape(a: &Tensor, b: &Tensor) -> Result<(), String> {
    if a.shape() != b.shape() {
        return Err(format!("operand shapes differ: {:?} vs {:?}", a.shape(), b.shape()));
    }
    Ok(())
}

fn zip2(a: &Tensor, b: &Tensor, f: impl Fn(f64, f64) -> f64) -> Result<Tensor, String> {
    same_shape(a, b)?;
    Ok(kernels::map2(a, b, f))
}

fn select(c: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    same_shape(c, a)?;
    same_shape(a, b)?;
    Ok(kernels::select(c, a, b))
}

fn broadcast(x: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    // ndarray's check implements exactly the NumPy rule the IR uses.
    if x.broadcast(IxDyn(shape)).is_none() {
        return Err(format!("cannot broadcast {:?} to {shape:?}", x.shape()));
    }
    Ok(kernels::broadcast(x, shape))
}

fn reduce(x: &Tensor, axes: &[usize], keep: bool, init: f64, f: fn(f64, f64) -> f64) -> Result<Tensor, String> {
    if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= x.ndim()) {
        return Err(format!("bad reduce axes {axes:?} for shape {:?}", x.shape()));
    }
    Ok(kernels::reduce(x, axes, keep, init, f))
}

/// `[..., m, k] @ [..., k, n]`: one GEMM per leading index. Rank 2 goes
/// straight to ndarray's blocked `dot`, which dominates training time.
fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let r = a.ndim();
    if r < 2 || b.ndim() != r || a.shape()[..r - 2] != b.shape()[..r - 2] || a.shape()[r - 1] != b.shape()[r - 2] {
        return Err(format!("matmul of incompatible shapes {:?} and {:?}", a.shape(), b.shape()));
    }
    if r == 2 {
        // Views, not copies: a lazily transposed operand (the backward
        // pass's aᵀ @ g) goes to the GEMM as strides.
        let a2 = a.view().into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
        let b2 = b.view().into_dimensionality::<Ix2>().map_err(|e| e.to_string())?;
        return Ok(a2.dot(&b2).into_dyn());
    }
    let (m, k, n) = (a.shape()[r - 2], a.shape()[r - 1], b.shape()[r - 1]);
    let batch: usize = a.shape()[..r - 2].iter().product();
    let a3 = a.to_shape((batch, m, k)).map_err(|e| e.to_string())?;
    let b3 = b.to_shape((batch, k, n)).map_err(|e| e.to_string())?;
    let mut out = ndarray::Array3::<f64>::zeros((batch, m, n));
    for i in 0..batch {
        let ai: ArrayView2<f64> = a3.index_axis(Axis(0), i);
        let bi: ArrayView2<f64> = b3.index_axis(Axis(0), i);
        general_mat_mul(1.0, &ai, &bi, 0.0, &mut out.index_axis_mut(Axis(0), i));
    }
    let mut shape = a.shape()[..r - 1].to_vec();
    shape.push(n);
    out.into_shape_with_order(IxDyn(&shape)).map_err(|e| e.to_string())
}

// The window ops run the loops compiled code calls too (`ir::window`).

/// A row-major copy of `t`'s data, and its `[n, c, h, w]` geometry under `w`.
fn image(w: &Window, t: &Tensor, n: usize, c: usize, hw: [usize; 2]) -> Result<(Vec<f64>, Geometry), String> {
    let g = Geometry::new(w, n, c, hw).ok_or_else(|| format!("window {w:?} does not fit {:?}", t.shape()))?;
    Ok((t.iter().copied().collect(), g))
}

fn shaped(shape: &[usize], v: Vec<f64>) -> Result<Tensor, String> {
    ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| e.to_string())
}

fn im2col(w: &Window, x: &Tensor) -> Result<Tensor, String> {
    let s = x.shape();
    let (data, g) = image(w, x, s[0], s[1], [s[2], s[3]])?;
    let mut cols = vec![0.0; g.cols_len(w)];
    win::im2col(w, &g, &data, &mut cols, 0, g.n);
    shaped(&[g.n, g.out[0], g.out[1], g.c, w.kernel[0], w.kernel[1]], cols)
}

fn col2im(w: &Window, size: [usize; 2], cols: &Tensor) -> Result<Tensor, String> {
    let s = cols.shape();
    let (data, g) = image(w, cols, s[0], s[3], size)?;
    let mut img = vec![0.0; g.image_len()];
    win::col2im(w, &g, &data, &mut img, 0, g.n);
    shaped(&[g.n, g.c, size[0], size[1]], img)
}

fn max_pool(w: &Window, x: &Tensor) -> Result<Tensor, String> {
    let s = x.shape();
    let (data, g) = image(w, x, s[0], s[1], [s[2], s[3]])?;
    let mut y = vec![0.0; g.pooled_len()];
    win::max_pool(w, &g, &data, &mut y, 0, g.n * g.c);
    shaped(&[g.n, g.c, g.out[0], g.out[1]], y)
}

fn max_pool_grad(w: &Window, x: &Tensor, dy: &Tensor) -> Result<Tensor, String> {
    let s = x.shape();
    let (data, g) = image(w, x, s[0], s[1], [s[2], s[3]])?;
    let dy: Vec<f64> = dy.iter().copied().collect();
    let mut dx = vec![0.0; g.image_len()];
    win::max_pool_grad(w, &g, &data, &dy, &mut dx, 0, g.n * g.c);
    shaped(s, dx)
}

fn one_hot(labels: &Tensor, depth: usize) -> Tensor {
    let mut shape = labels.shape().to_vec();
    shape.push(depth);
    let mut out = ArrayD::<f64>::zeros(IxDyn(&shape));
    let flat = out.as_slice_mut().expect("fresh zeros are row-major");
    // `iter` visits labels in logical row-major order, matching row `i`.
    for (i, &l) in labels.iter().enumerate() {
        if l >= 0.0 && l < depth as f64 {
            flat[i * depth + l as usize] = 1.0;
        }
    }
    out
}

/// A draw's seed under the key tensor (a scalar), read as f32 as compiled code reads it.
fn keyed(seed: u64, key: &Tensor) -> u64 {
    let k = key.iter().next().copied().unwrap_or(0.0) as f32;
    super::keyed_seed(seed, f64::from(k))
}

fn random(shape: &[usize], seed: u64, draw: fn(u64, u64) -> f64) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n as u64).map(|i| draw(seed, i)).collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("length matches the shape")
}
