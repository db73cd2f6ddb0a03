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
        Op::RandomUniform { shape, .. } | Op::RandomNormal { shape, .. } => Ok(Type::f32(shape.clone())),
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
    }
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
