//! Type rules of every op (shared by the builder) and the IR verifier.

use super::{DType, Dim, Func, Op, Type};

fn same_shape(a: &Type, b: &Type, what: &str) -> Result<(), String> {
    if a.shape != b.shape {
        return Err(format!("{what}: operand shapes differ ({a} vs {b})"));
    }
    Ok(())
}

/// The shape after reducing `axes` (kept as size 1 when `keep`).
pub fn reduce_shape(t: &Type, axes: &[usize], keep: bool) -> Result<Vec<Dim>, String> {
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("reduce axes {axes:?} are not sorted and distinct"));
    }
    if let Some(a) = axes.iter().find(|&&a| a >= t.rank()) {
        return Err(format!("reduce axis {a} out of range for {t}"));
    }
    Ok(t.shape
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            if !axes.contains(&i) {
                Some(d.clone())
            } else if keep {
                Some(Dim::Known(1))
            } else {
                None
            }
        })
        .collect())
}

/// Element count when every dim is known, and the product of known dims with
/// the multiset of symbols otherwise (so `[B, 784]` and `[B, 28, 28]` match).
/// A count past `usize` saturates: the checker refuses such shapes (E0503)
/// before any IR is built, so this only keeps the verifier from panicking.
fn element_count(shape: &[Dim]) -> (usize, Vec<String>) {
    let mut n: usize = 1;
    let mut syms = Vec::new();
    for d in shape {
        match d {
            Dim::Known(k) => n = n.saturating_mul(*k),
            Dim::Sym(s) => syms.push(s.clone()),
        }
    }
    syms.sort();
    (n, syms)
}

/// The result type of `op` applied to operands of the given types.
pub fn infer(op: &Op, args: &[&Type]) -> Result<Type, String> {
    let arity = op.arity();
    if args.len() != arity {
        return Err(format!("{} takes {arity} operands, got {}", op.name(), args.len()));
    }
    let f32_only = |t: &Type| -> Result<(), String> {
        if t.dtype != DType::F32 {
            return Err(format!("{} needs f32 operands, got {t}", op.name()));
        }
        Ok(())
    };
    match op {
        Op::Const(_) => Ok(Type::scalar()),
        Op::RandomUniform { shape, .. } | Op::RandomNormal { shape, .. } => {
            f32_only(args[0])?;
            if !args[0].shape.is_empty() {
                return Err(format!("the key of {op:?} must be a scalar, got {}", args[0]));
            }
            Ok(Type::f32(shape.clone()))
        }
        Op::Unary(_) => {
            f32_only(args[0])?;
            Ok(args[0].clone())
        }
        Op::Binary(_) => {
            f32_only(args[0])?;
            f32_only(args[1])?;
            same_shape(args[0], args[1], "binary op")?;
            Ok(args[0].clone())
        }
        Op::Compare(_) => {
            same_shape(args[0], args[1], "compare")?;
            if args[0].dtype != args[1].dtype {
                return Err("compare: dtypes differ".into());
            }
            Ok(Type::f32(args[0].shape.clone()))
        }
        Op::Select => {
            same_shape(args[0], args[1], "select")?;
            same_shape(args[1], args[2], "select")?;
            f32_only(args[1])?;
            f32_only(args[2])?;
            Ok(args[1].clone())
        }
        Op::Broadcast { shape } => {
            let t = args[0];
            if t.rank() > shape.len() {
                return Err(format!("broadcast of {t} to lower rank {}", shape.len()));
            }
            let offset = shape.len() - t.rank();
            for (i, d) in t.shape.iter().enumerate() {
                let target = &shape[offset + i];
                if d != target && *d != Dim::Known(1) {
                    return Err(format!(
                        "broadcast of {t} to {}: dim {i} incompatible",
                        super::shape_to_string(shape)
                    ));
                }
            }
            Ok(Type {
                dtype: t.dtype,
                shape: shape.clone(),
            })
        }
        Op::ReduceSum { axes, keep } | Op::ReduceMax { axes, keep } => {
            f32_only(args[0])?;
            Ok(Type::f32(reduce_shape(args[0], axes, *keep)?))
        }
        Op::Reshape { shape } => {
            if element_count(shape) != element_count(&args[0].shape) {
                return Err(format!(
                    "reshape of {} to {}: element counts differ",
                    args[0],
                    super::shape_to_string(shape)
                ));
            }
            Ok(Type {
                dtype: args[0].dtype,
                shape: shape.clone(),
            })
        }
        Op::Transpose { perm } => {
            let t = args[0];
            let mut seen = perm.clone();
            seen.sort();
            if seen != (0..t.rank()).collect::<Vec<_>>() {
                return Err(format!("transpose perm {perm:?} is not a permutation of {} axes", t.rank()));
            }
            Ok(Type {
                dtype: t.dtype,
                shape: perm.iter().map(|&p| t.shape[p].clone()).collect(),
            })
        }
        Op::MatMul => {
            let (a, b) = (args[0], args[1]);
            f32_only(a)?;
            f32_only(b)?;
            if a.rank() < 2 || a.rank() != b.rank() {
                return Err(format!("matmul needs equal ranks >= 2, got {a} and {b}"));
            }
            let r = a.rank();
            if a.shape[..r - 2] != b.shape[..r - 2] {
                return Err(format!("matmul leading dims differ: {a} and {b}"));
            }
            if a.shape[r - 1] != b.shape[r - 2] {
                return Err(format!("matmul inner dims differ: {a} and {b}"));
            }
            let mut shape = a.shape[..r - 1].to_vec();
            shape.push(b.shape[r - 1].clone());
            Ok(Type::f32(shape))
        }
        Op::OneHot { depth } => {
            if args[0].dtype != DType::I32 {
                return Err(format!("one_hot needs i32 labels, got {}", args[0]));
            }
            let mut shape = args[0].shape.clone();
            shape.push(Dim::Known(*depth));
            Ok(Type::f32(shape))
        }
        Op::Cast { to } => Ok(Type {
            dtype: *to,
            shape: args[0].shape.clone(),
        }),
        Op::Slice { start, stride, shape } => slice_type(args[0], start, stride, shape),
        Op::Pad { low, high, interior } => pad_type(args[0], low, high, interior),
        Op::Reverse { axes } => {
            if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= args[0].rank()) {
                return Err(format!("reverse axes {axes:?} are not sorted, distinct axes of {}", args[0]));
            }
            Ok(args[0].clone())
        }
        Op::Concat { axis } => concat_type(args[0], args[1], *axis),
        Op::Gather { axis } => {
            if args[1].dtype != DType::I32 {
                return Err(format!("gather needs i32 ids, got {}", args[1]));
            }
            if *axis >= args[0].rank() {
                return Err(format!("gather axis {axis} out of range for {}", args[0]));
            }
            Ok(Type {
                dtype: args[0].dtype,
                shape: gathered(&args[0].shape, *axis, &args[1].shape),
            })
        }
        Op::ScatterAdd { axis, shape } => {
            f32_only(args[1])?;
            if args[0].dtype != DType::I32 {
                return Err(format!("scatter_add needs i32 ids, got {}", args[0]));
            }
            if *axis >= shape.len() {
                return Err(format!("scatter_add axis {axis} out of range for {shape:?}"));
            }
            if args[1].shape != gathered(shape, *axis, &args[0].shape) {
                return Err(format!("scatter_add updates {} do not fit {shape:?} with ids {}", args[1], args[0]));
            }
            Ok(Type::f32(shape.clone()))
        }
        Op::Iota { shape, axis } => {
            if *axis >= shape.len() {
                return Err(format!("iota axis {axis} out of range for {shape:?}"));
            }
            Ok(Type::f32(shape.clone()))
        }
        Op::Im2col { window } => {
            let (n, c, hw) = image(op, args[0])?;
            let [oh, ow] = window_out(window, hw)?;
            let [kh, kw] = window.kernel.map(Dim::Known);
            Ok(Type::f32(vec![n, Dim::Known(oh), Dim::Known(ow), c, kh, kw]))
        }
        Op::Col2im { window, size } => {
            let t = args[0];
            f32_only(t)?;
            let [oh, ow] = window_out(window, *size)?;
            let k = window.kernel.map(Dim::Known);
            let want_tail = [Dim::Known(oh), Dim::Known(ow)];
            if t.rank() != 6 || t.shape[1..3] != want_tail || t.shape[4..6] != k {
                return Err(format!("col2im of {t}: expected [n, {oh}, {ow}, c, {}, {}]", k[0], k[1]));
            }
            Ok(Type::f32(vec![
                t.shape[0].clone(),
                t.shape[3].clone(),
                Dim::Known(size[0]),
                Dim::Known(size[1]),
            ]))
        }
        Op::MaxPool { window } => {
            let (n, c, hw) = image(op, args[0])?;
            let [oh, ow] = window_out(window, hw)?;
            Ok(Type::f32(vec![n, c, Dim::Known(oh), Dim::Known(ow)]))
        }
        Op::MaxPoolGrad { window } => {
            let (n, c, hw) = image(op, args[0])?;
            let [oh, ow] = window_out(window, hw)?;
            let want = Type::f32(vec![n, c, Dim::Known(oh), Dim::Known(ow)]);
            if args[1] != &want {
                return Err(format!("max_pool_grad: the gradient is {}, the pooled shape is {want}", args[1]));
            }
            Ok(args[0].clone())
        }
        Op::Scan { scan, output } => {
            scan.check(args)?;
            scan.output_type(*output)
        }
    }
}

/// `x`'s shape with axis `axis` replaced by the ids' dims.
fn gathered(x: &[Dim], axis: usize, ids: &[Dim]) -> Vec<Dim> {
    let mut out = x[..axis].to_vec();
    out.extend_from_slice(ids);
    out.extend_from_slice(&x[axis + 1..]);
    out
}

fn slice_type(t: &Type, start: &[usize], stride: &[usize], shape: &[Dim]) -> Result<Type, String> {
    let r = t.rank();
    if start.len() != r || stride.len() != r || shape.len() != r {
        return Err(format!("slice of {t} needs {r} starts, strides and dims"));
    }
    for a in 0..r {
        let ok = match (&t.shape[a], &shape[a]) {
            // Nothing taken (of a zero-size axis) fits anywhere.
            (Dim::Known(_), Dim::Known(0)) => true,
            (Dim::Known(n), Dim::Known(len)) => stride[a] >= 1 && start[a] + stride[a] * (len - 1) < *n,
            // A dim known only at run time is taken whole.
            (d, len) => d == len && start[a] == 0 && stride[a] == 1,
        };
        if !ok {
            return Err(format!(
                "slice axis {a} of {t}: start {}, stride {}, {} elements do not fit",
                start[a], stride[a], shape[a]
            ));
        }
    }
    Ok(Type {
        dtype: t.dtype,
        shape: shape.to_vec(),
    })
}

fn pad_type(t: &Type, low: &[usize], high: &[usize], interior: &[usize]) -> Result<Type, String> {
    let r = t.rank();
    if low.len() != r || high.len() != r || interior.len() != r {
        return Err(format!("pad of {t} needs {r} low, high and interior widths"));
    }
    let mut shape = Vec::with_capacity(r);
    for a in 0..r {
        shape.push(match &t.shape[a] {
            Dim::Known(n) => Dim::Known(low[a] + high[a] + n + interior[a] * n.saturating_sub(1)),
            d if low[a] == 0 && high[a] == 0 && interior[a] == 0 => d.clone(),
            d => return Err(format!("pad axis {a} of {t}: the size {d} is known only at run time")),
        });
    }
    Ok(Type { dtype: t.dtype, shape })
}

fn concat_type(a: &Type, b: &Type, axis: usize) -> Result<Type, String> {
    if a.dtype != b.dtype || a.rank() != b.rank() || axis >= a.rank() {
        return Err(format!("concat of {a} and {b} along axis {axis}"));
    }
    let mut shape = a.shape.clone();
    for (i, (x, y)) in a.shape.iter().zip(&b.shape).enumerate() {
        if i == axis {
            match (x, y) {
                (Dim::Known(m), Dim::Known(n)) => shape[i] = Dim::Known(m + n),
                _ => return Err(format!("concat of {a} and {b}: axis {axis} must be known")),
            }
        } else if x != y {
            return Err(format!("concat of {a} and {b}: dim {i} differs"));
        }
    }
    Ok(Type { dtype: a.dtype, shape })
}

/// An f32 `[n, c, h, w]` image with known `h` and `w`.
fn image(op: &Op, t: &Type) -> Result<(Dim, Dim, [usize; 2]), String> {
    let hw = match t.shape.as_slice() {
        [_, _, h, w] if t.dtype == DType::F32 => h.known().zip(w.known()),
        _ => None,
    };
    let (h, w) = hw.ok_or_else(|| format!("{op:?} needs an f32 [n, c, h, w] image with known h and w, got {t}"))?;
    Ok((t.shape[0].clone(), t.shape[1].clone(), [h, w]))
}

fn window_out(w: &super::Window, hw: [usize; 2]) -> Result<[usize; 2], String> {
    w.out_hw(hw)
        .ok_or_else(|| format!("window {w:?} does not fit an image of {}x{}", hw[0], hw[1]))
}

/// Check SSA form (each value defined once, before use) and every type.
pub fn verify(f: &Func) -> Result<(), String> {
    let mut defined = vec![false; f.types.len()];
    if f.param_names.len() != f.params.len() {
        return Err("param_names and params differ in length".into());
    }
    for &p in &f.params {
        let slot = defined.get_mut(p.index()).ok_or_else(|| format!("param {p} has no type"))?;
        if *slot {
            return Err(format!("{p} defined twice"));
        }
        *slot = true;
    }
    for inst in &f.insts {
        let mut tys = Vec::new();
        for &a in &inst.args {
            if !defined.get(a.index()).copied().unwrap_or(false) {
                return Err(format!("{} uses {a} before its definition", inst.result));
            }
            tys.push(&f.types[a.index()]);
        }
        let ty = infer(&inst.op, &tys).map_err(|e| format!("{}: {e}", inst.result))?;
        let declared = f
            .types
            .get(inst.result.index())
            .ok_or_else(|| format!("{} has no type", inst.result))?;
        if &ty != declared {
            return Err(format!("{}: declared {declared}, op gives {ty}", inst.result));
        }
        let slot = &mut defined[inst.result.index()];
        if *slot {
            return Err(format!("{} defined twice", inst.result));
        }
        *slot = true;
    }
    for &r in &f.results {
        if !defined.get(r.index()).copied().unwrap_or(false) {
            return Err(format!("result {r} is not defined"));
        }
    }
    Ok(())
}
