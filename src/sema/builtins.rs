//! Primitive functions the compiler knows: each checks its arguments and
//! emits IR. Everything else (activations, losses, layers, optimizers) is
//! written in `.nn` in the stdlib on top of these. Their names, parameters
//! and documentation are the table in [`super::builtin_table`].

use super::builtin_table::Builtin;
use super::elab::{ArgVal, Elab};
use super::shape;
use super::value::{Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::{self, DType, Dim, UnaryOp};

/// Arguments matched to a builtin's parameter names.
pub(super) struct Args {
    vals: Vec<Option<(Val, Span)>>,
}

impl Args {
    pub(super) fn get(&self, i: usize) -> Option<&(Val, Span)> {
        self.vals.get(i).and_then(|v| v.as_ref())
    }
}

fn bind(e: &mut Elab, b: Builtin, args: Vec<ArgVal>, span: Span) -> Option<Args> {
    let (name, params) = (b.name(), b.params());
    let mut vals: Vec<Option<(Val, Span)>> = vec![None; params.len()];
    let mut pos = 0;
    for a in args {
        let i = match &a.name {
            None => {
                // `max(x, axis: 1)` has no `b`: keywords skip positional slots.
                let i = pos;
                pos += 1;
                i
            }
            Some(n) => match params.iter().position(|p| *p == n.name) {
                Some(i) => i,
                None => {
                    let mut d = Diagnostic::error(
                        "E0104",
                        format!("`{name}` has no parameter `{}`", n.name),
                        n.span,
                        "unknown argument name",
                    );
                    if let Some(s) = crate::diag::suggest(&n.name, params.iter().copied()) {
                        d = d.with_help(format!("did you mean `{s}`?"));
                    }
                    e.report(d);
                    return None;
                }
            },
        };
        if i >= params.len() {
            let d = Diagnostic::error(
                "E0103",
                format!("`{name}` takes at most {} arguments", params.len()),
                a.span,
                "unexpected argument",
            );
            e.report(d);
            return None;
        }
        if vals[i].is_some() {
            let d = Diagnostic::error(
                "E0105",
                format!("argument `{}` of `{name}` is given twice", params[i]),
                a.span,
                "given again here",
            );
            e.report(d);
            return None;
        }
        if matches!(a.val, Val::Error) {
            return None;
        }
        vals[i] = Some((a.val, a.span));
    }
    let _ = span;
    Some(Args { vals })
}

pub(super) fn missing(e: &mut Elab, name: &str, param: &str, span: Span) -> Val {
    let d = Diagnostic::error(
        "E0103",
        format!("`{name}` is missing argument `{param}`"),
        span,
        format!("`{param}` not given"),
    );
    e.report(d);
    Val::Error
}

/// A compile-time integer argument (an axis, a class count).
pub(super) fn int_arg(e: &mut Elab, v: &Val, span: Span, what: &str) -> Option<i64> {
    match v {
        Val::Int(i) => Some(*i),
        Val::Error | Val::Any => None,
        other => {
            let d = Diagnostic::error(
                "E0202",
                format!("{what} must be a compile-time integer"),
                span,
                format!("this is {}", other.kind()),
            );
            let d = e.with_rounding_fix(d, other, span);
            e.report(d);
            None
        }
    }
}

/// A shape argument: a list of integers and symbolic dims (`[batch, 64]`).
/// `Ok(None)` means unknown (checking alone).
fn shape_arg(e: &mut Elab, v: &Val, span: Span, allow_infer: bool) -> Result<Option<Vec<i64OrDim>>, ()> {
    let Val::List(items) = v else {
        if v.is_poison() {
            return Ok(None);
        }
        let d = Diagnostic::error(
            "E0203",
            "a shape must be a list of dims, like `[batch, 64]`",
            span,
            format!("this is {}", v.kind()),
        );
        e.report(d);
        return Err(());
    };
    let mut out = vec![];
    for it in items {
        match it {
            Val::Int(-1) if allow_infer => out.push(i64OrDim::Infer),
            Val::Int(k) if *k >= 0 => out.push(i64OrDim::Dim(Dim::Known(*k as usize))),
            Val::Dim(s) => out.push(i64OrDim::Dim(Dim::Sym(s.clone()))),
            Val::Any => return Ok(None),
            Val::Error => return Err(()),
            other => {
                let d = Diagnostic::error(
                    "E0202",
                    "shape entries must be non-negative compile-time integers",
                    span,
                    format!("contains {}", other.kind()),
                );
                e.report(d);
                return Err(());
            }
        }
    }
    Ok(Some(out))
}

#[allow(non_camel_case_types)]
#[derive(Clone, Debug)]
enum i64OrDim {
    Dim(Dim),
    Infer,
}

fn concrete(dims: Vec<i64OrDim>) -> Vec<Dim> {
    dims.into_iter()
        .map(|d| match d {
            i64OrDim::Dim(d) => d,
            i64OrDim::Infer => Dim::Known(0),
        })
        .collect()
}

/// Axes from an `axis:` argument (an int or a list), normalised and sorted;
/// `None` means every axis.
fn axes_arg(e: &mut Elab, v: Option<&(Val, Span)>, rank: usize) -> Result<Vec<usize>, ()> {
    let Some((v, span)) = v else { return Ok((0..rank).collect()) };
    let raw: Vec<i64> = match v {
        Val::Int(i) => vec![*i],
        Val::List(items) => {
            let mut out = vec![];
            for it in items {
                out.push(int_arg(e, it, *span, "an axis").ok_or(())?);
            }
            out
        }
        other => {
            int_arg(e, other, *span, "`axis`").ok_or(())?;
            return Err(());
        }
    };
    let mut axes = vec![];
    for a in raw {
        match shape::axis(a, rank) {
            Some(x) => axes.push(x),
            None => {
                let mut d = Diagnostic::error(
                    "E0306",
                    format!("axis {a} is out of range for a tensor of rank {rank}"),
                    *span,
                    format!("valid axes are {} to {}", -(rank as i64), rank as i64 - 1),
                );
                axis_fix(e, &mut d, *span, a, rank);
                e.report(d);
                return Err(());
            }
        }
    }
    axes.sort();
    axes.dedup();
    Ok(axes)
}

/// An axis past the end most often meant the last one.
fn axis_fix(e: &Elab, d: &mut Diagnostic, at: Span, bad: i64, rank: usize) {
    let Some(user) = e.user_text(at) else { return };
    let text = e.text(user).trim().to_string();
    if rank == 0 {
        return;
    }
    let want = if bad >= 0 { rank as i64 - 1 } else { -(rank as i64) };
    if text.parse::<i64>() == Ok(bad) {
        *d = d.clone().with_fix(
            format!("the last axis is {want}"),
            crate::diag::Fix::replace(user, want.to_string()),
        );
    } else if let Some(i) = text.find(&bad.to_string()) {
        // One axis of a list (`[1, 2]`).
        let s = user.start as usize + i;
        let span = Span::new(user.file, s, s + bad.to_string().len());
        *d = d.clone().with_fix(
            format!("the last axis is {want}"),
            crate::diag::Fix::replace(span, want.to_string()),
        );
        d.primary.span = span;
    }
}

fn bool_arg(v: Option<&(Val, Span)>) -> bool {
    matches!(v, Some((Val::Bool(true), _)))
}

pub(super) fn tensor_of(e: &mut Elab, a: &(Val, Span), what: &str) -> Option<Tensor> {
    e.as_tensor(&a.0, a.1, what)
}

pub fn call(e: &mut Elab, builtin: Builtin, args: Vec<ArgVal>, span: Span, _callee: Span) -> Val {
    let name = builtin.name();
    let Some(a) = bind(e, builtin, args, span) else { return Val::Error };
    let x = match a.get(0) {
        Some(x) => x.clone(),
        None => return missing(e, name, builtin.params()[0], span),
    };
    // Tensor lists map elementwise: `sum(params^2)` sums every parameter.
    let unary = |e: &mut Elab, op: UnaryOp| map_list(e, &x.0, x.1, &|e, v, s| e.unary(op, v, s, name));
    match builtin {
        Builtin::Exp => unary(e, UnaryOp::Exp),
        Builtin::Log => unary(e, UnaryOp::Log),
        Builtin::Sqrt => unary(e, UnaryOp::Sqrt),
        Builtin::Tanh => unary(e, UnaryOp::Tanh),
        Builtin::Abs => unary(e, UnaryOp::Abs),
        Builtin::Sign => {
            let before = e.blockers.len();
            let out = unary(e, UnaryOp::Sign);
            // A `sign` blocks gradients at the call the user wrote.
            let at = e.user_place(span);
            for b in &mut e.blockers[before..] {
                b.1 = at;
            }
            out
        }
        Builtin::Sin => unary(e, UnaryOp::Sin),
        Builtin::Cos => unary(e, UnaryOp::Cos),
        Builtin::Erf => unary(e, UnaryOp::Erf),
        Builtin::StopGradient => unary(e, UnaryOp::StopGradient),
        Builtin::Max | Builtin::Min => match a.get(1) {
            Some(b) => {
                let (l, r) = (x.clone(), b.clone());
                elementwise_minmax(e, builtin == Builtin::Max, &l, &r, span)
            }
            None => {
                if builtin == Builtin::Min {
                    // min along axes is -max(-x).
                    let neg = e.unary(UnaryOp::Neg, &x.0, x.1, "-");
                    let m = reduce(e, "max", &(neg, x.1), a.get(2), bool_arg(a.get(3)));
                    return e.unary(UnaryOp::Neg, &m, span, "-");
                }
                reduce(e, "max", &x, a.get(2), bool_arg(a.get(3)))
            }
        },
        Builtin::Sum | Builtin::Mean => {
            if let Val::List(items) = &x.0 {
                return sum_list(e, items, x.1, builtin == Builtin::Mean);
            }
            reduce(e, name, &x, a.get(1), bool_arg(a.get(2)))
        }
        Builtin::Where => {
            let (Some(b), Some(c)) = (a.get(1).cloned(), a.get(2).cloned()) else {
                return missing(e, name, if a.get(1).is_none() { "a" } else { "b" }, span);
            };
            select(e, &x, &b, &c, span)
        }
        Builtin::Reshape => {
            let Some(s) = a.get(1).cloned() else {
                return missing(e, name, "shape", span);
            };
            reshape(e, &x, &s)
        }
        Builtin::Transpose => {
            let Some(t) = tensor_of(e, &x, "`transpose`") else {
                return Val::Error;
            };
            let Some(shape) = t.ty.shape.clone() else {
                return e.tensor(t.ty, None);
            };
            let rank = shape.len();
            let mut ax = [-2i64, -1];
            for (k, slot) in [(1, 0), (2, 1)] {
                if let Some((v, s)) = a.get(k) {
                    let Some(i) = int_arg(e, v, *s, "an axis") else { return Val::Error };
                    ax[slot] = i;
                }
            }
            let mut norm = [0usize; 2];
            for (k, &raw) in ax.iter().enumerate() {
                match shape::axis(raw, rank) {
                    Some(v) => norm[k] = v,
                    None => {
                        let at = a.get(k + 1).map_or(span, |v| v.1);
                        let mut d = Diagnostic::error(
                            "E0306",
                            format!("axis {raw} is out of range for a tensor of rank {rank}"),
                            at,
                            format!("the tensor is {}", t.ty),
                        );
                        axis_fix(e, &mut d, at, raw, rank);
                        e.report(d);
                        return Val::Error;
                    }
                }
            }
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.swap(norm[0], norm[1]);
            let out: Vec<Dim> = perm.iter().map(|&p| shape[p].clone()).collect();
            let ir = t.ir.map(|v| e.b.transpose(v, perm));
            e.tensor(
                TensorTy {
                    dtype: t.ty.dtype,
                    shape: Some(out),
                },
                ir,
            )
        }
        Builtin::OneHot => {
            let Some(t) = tensor_of(e, &x, "`one_hot`") else {
                return Val::Error;
            };
            let Some((cv, cs)) = a.get(1).cloned() else {
                return missing(e, name, "classes", span);
            };
            let Some(n) = int_arg(e, &cv, cs, "the number of classes") else {
                return Val::Error;
            };
            if t.ty.dtype != DType::I32 {
                let d = Diagnostic::error("E0201", "`one_hot` needs i32 labels", x.1, format!("this is {}", t.ty));
                e.report(d);
                return Val::Error;
            }
            let Some(mut shape) = t.ty.shape.clone() else {
                return e.tensor(TensorTy::unknown(), None);
            };
            shape.push(Dim::Known(n.max(0) as usize));
            let ir = t.ir.map(|v| e.b.push(ir::Op::OneHot { depth: n.max(0) as usize }, &[v]));
            e.tensor(TensorTy::f32(shape), ir)
        }
        Builtin::Float => {
            let Some(t) = tensor_of(e, &x, "`float`") else { return Val::Error };
            let ir = t.ir.map(|v| e.b.cast(v, DType::F32));
            e.tensor(
                TensorTy {
                    dtype: DType::F32,
                    shape: t.ty.shape,
                },
                ir,
            )
        }
        Builtin::Zeros | Builtin::Ones | Builtin::Full => {
            let value = match builtin {
                Builtin::Zeros => 0.0,
                Builtin::Ones => 1.0,
                _ => match a.get(1) {
                    Some((Val::Int(i), _)) => *i as f64,
                    Some((Val::Float(f), _)) => *f,
                    Some((v, s)) => {
                        let d = Diagnostic::error("E0202", "`full` needs a compile-time number", *s, format!("this is {}", v.kind()));
                        e.report(d);
                        return Val::Error;
                    }
                    None => return missing(e, name, "value", span),
                },
            };
            let Ok(shape) = shape_arg(e, &x.0, x.1, false) else {
                return Val::Error;
            };
            let Some(shape) = shape.map(concrete) else {
                return e.tensor(TensorTy::unknown(), None);
            };
            let ir = Some(e.b.fill(value, &shape));
            e.tensor(TensorTy::f32(shape), ir)
        }
        Builtin::ZerosLike | Builtin::OnesLike => {
            let Some(t) = tensor_of(e, &x, name) else { return Val::Error };
            let Some(shape) = t.ty.shape.clone() else {
                return e.tensor(TensorTy::unknown(), None);
            };
            let ir = Some(e.b.fill(if builtin == Builtin::ZerosLike { 0.0 } else { 1.0 }, &shape));
            e.tensor(TensorTy::f32(shape), ir)
        }
        Builtin::Uniform | Builtin::Normal => {
            let Ok(shape) = shape_arg(e, &x.0, x.1, false) else {
                return Val::Error;
            };
            let Some(shape) = shape.map(concrete) else {
                return e.tensor(TensorTy::unknown(), None);
            };
            // uniform(low = 0, high = 1); normal(mean = 0, std = 1).
            let p1 = number(e, a.get(1), 0.0);
            let p2 = number(e, a.get(2), 1.0);
            let (Some(p1), Some(p2)) = (p1, p2) else { return Val::Error };
            e.seed += 1;
            let seed = e.seed;
            let raw = if builtin == Builtin::Uniform {
                ir::Op::RandomUniform {
                    shape: shape.clone(),
                    seed,
                }
            } else {
                ir::Op::RandomNormal {
                    shape: shape.clone(),
                    seed,
                }
            };
            // Inside a training step the key is the step's count (fresh
            // draws every step); elsewhere key 0 leaves the seed as is.
            let key = match e.rng_key {
                Some(k) => k,
                None => e.b.constant(0.0),
            };
            let r = e.b.push(raw, &[key]);
            // uniform: low + (high - low) * u; normal: mean + std * z.
            let (scale, offset) = if builtin == Builtin::Uniform { (p2 - p1, p1) } else { (p2, p1) };
            let s = e.b.fill(scale, &shape);
            let o = e.b.fill(offset, &shape);
            let m = e.b.mul(r, s);
            let v = e.b.add(m, o);
            e.tensor(TensorTy::f32(shape), Some(v))
        }
        Builtin::FanIn | Builtin::FanOut => {
            let Ok(shape) = shape_arg(e, &x.0, x.1, false) else {
                return Val::Error;
            };
            let Some(shape) = shape.map(concrete) else { return Val::Any };
            let dims: Vec<i64> = shape.iter().map(|d| d.known().unwrap_or(1) as i64).collect();
            let v = match dims.as_slice() {
                [] => 1,
                [n] => *n,
                [i, o] => {
                    if builtin == Builtin::FanIn {
                        *i
                    } else {
                        *o
                    }
                }
                [o, i, rest @ ..] => {
                    let k: i64 = rest.iter().product();
                    if builtin == Builtin::FanIn {
                        i * k
                    } else {
                        o * k
                    }
                }
            };
            Val::Int(v)
        }
        Builtin::Size => {
            let Some(t) = tensor_of(e, &x, "`size`") else { return Val::Error };
            let Some((av, aspan)) = a.get(1).cloned() else {
                return missing(e, name, "axis", span);
            };
            let Some(ax) = int_arg(e, &av, aspan, "an axis") else {
                return Val::Error;
            };
            let Some(shape) = t.ty.shape else { return Val::Any };
            match shape::axis(ax, shape.len()) {
                Some(i) => match &shape[i] {
                    Dim::Known(k) => Val::Int(*k as i64),
                    Dim::Sym(s) => Val::Dim(s.clone()),
                },
                None => {
                    let d = Diagnostic::error(
                        "E0306",
                        format!("axis {ax} is out of range for a tensor of rank {}", shape.len()),
                        aspan,
                        "out of range",
                    );
                    e.report(d);
                    Val::Error
                }
            }
        }
        Builtin::Floor | Builtin::Ceil => round_number(e, name, &x),
        Builtin::Conv2d | Builtin::MaxPool2d | Builtin::AvgPool2d => super::conv::call(e, name, &a, span),
        Builtin::Concat | Builtin::Stack => {
            let Some((axis, axis_span)) = axis_or_zero(e, a.get(1), span) else {
                return Val::Error;
            };
            e.concat(&x, axis, axis_span, builtin == Builtin::Stack)
        }
        Builtin::Split | Builtin::Chunk => {
            let Some(sizes) = a.get(1).cloned() else {
                return missing(e, name, builtin.params()[1], span);
            };
            let Some((axis, axis_span)) = axis_or_zero(e, a.get(2), span) else {
                return Val::Error;
            };
            e.split(&x, &sizes, axis, axis_span, builtin == Builtin::Chunk)
        }
        Builtin::Gather => {
            let Some(ids) = a.get(1).cloned() else {
                return missing(e, name, "ids", span);
            };
            let Some((axis, axis_span)) = axis_or_zero(e, a.get(2), span) else {
                return Val::Error;
            };
            e.gather(&x, &ids, axis, axis_span)
        }
        Builtin::Pad => {
            let Some(widths) = a.get(1).cloned() else {
                return missing(e, name, "widths", span);
            };
            let Some(value) = number(e, a.get(2), 0.0) else { return Val::Error };
            e.pad(&x, &widths, value)
        }
        Builtin::Arange => {
            // arange(stop), or arange(start, stop, step = 1).
            let first = number(e, Some(&x), 0.0);
            let (start, stop) = match a.get(1) {
                Some(s) => (first, number(e, Some(s), 0.0)),
                None => (Some(0.0), first),
            };
            let step = number(e, a.get(2), 1.0);
            let (Some(start), Some(stop), Some(step)) = (start, stop, step) else {
                return Val::Error;
            };
            // Checked on its own, any unknown bound makes the length unknown.
            if [Some(&x), a.get(1), a.get(2)].iter().any(|v| matches!(v, Some((Val::Any, _)))) {
                return Val::Any;
            }
            e.arange(start, stop, step, span)
        }
        Builtin::SplitHeads => {
            let Some((h, hs)) = a.get(1).cloned() else {
                return missing(e, name, "heads", span);
            };
            let Some(heads) = int_arg(e, &h, hs, "the number of heads") else {
                return Val::Error;
            };
            e.split_heads(&x, heads, hs)
        }
        Builtin::MergeHeads => e.merge_heads(&x),
        Builtin::Positions => {
            let Some(seq) = a.get(1).cloned() else {
                return missing(e, name, "x", span);
            };
            e.positions(&x, &seq)
        }
        // `elab` evaluates a direct call itself (see `Elab::repeat`); this is
        // `repeat` passed around as a value and called later.
        Builtin::Repeat => {
            let d = Diagnostic::error(
                "E0203",
                "`repeat` must be called by name, `repeat(n, Layer(...))`",
                span,
                "`repeat` called indirectly",
            );
            e.report(d);
            Val::Error
        }
        Builtin::Masked => {
            let Some(m) = a.get(1).cloned() else {
                return missing(e, name, "mask", span);
            };
            let Some(fill) = number(e, a.get(2), super::attention::MASK_FILL) else {
                return Val::Error;
            };
            e.masked(&x, &m, fill)
        }
        Builtin::Shape => {
            let Some(t) = tensor_of(e, &x, "`shape`") else { return Val::Error };
            let Some(shape) = t.ty.shape else { return Val::Any };
            Val::List(
                shape
                    .iter()
                    .map(|d| match d {
                        Dim::Known(k) => Val::Int(*k as i64),
                        Dim::Sym(s) => Val::Dim(s.clone()),
                    })
                    .collect(),
            )
        }
        Builtin::Check => {
            let message = match a.get(1) {
                Some((Val::Str(m), _)) => m.clone(),
                _ => "a requirement of this call is not met".to_string(),
            };
            match &x.0 {
                Val::Bool(true) | Val::Any | Val::Error => Val::Any,
                // Checking a definition alone: the condition is not known yet.
                Val::Tensor(t) if t.ir.is_none() => Val::Any,
                Val::Bool(false) => {
                    e.report(Diagnostic::error("E0207", message, x.1, "this requirement is false"));
                    Val::Error
                }
                other => {
                    let d = Diagnostic::error(
                        "E0202",
                        format!("`check` needs a condition known when compiling, found {}", other.kind()),
                        x.1,
                        "not a compile-time boolean",
                    );
                    e.report(d);
                    Val::Error
                }
            }
        }
    }
}

/// An `axis:` argument, 0 when not given.
fn axis_or_zero(e: &mut Elab, v: Option<&(Val, Span)>, span: Span) -> Option<(i64, Span)> {
    match v {
        None => Some((0, span)),
        Some((v, s)) => int_arg(e, v, *s, "an axis").map(|a| (a, *s)),
    }
}

/// `floor(x)`, `ceil(x)` of a compile-time number: an integer. Quotients
/// of integers below 2^52 are exact in f64, so `floor(a / b)` is exact for
/// every size a model can have.
fn round_number(e: &mut Elab, name: &str, x: &(Val, Span)) -> Val {
    let f = match &x.0 {
        Val::Int(i) => return Val::Int(*i),
        Val::Float(f) => *f,
        Val::Any | Val::Dim(_) => return Val::Any,
        Val::Error => return Val::Error,
        other => {
            let d = Diagnostic::error(
                "E0202",
                format!("`{name}` rounds a compile-time number"),
                x.1,
                format!("this is {}", other.kind()),
            );
            e.report(d);
            return Val::Error;
        }
    };
    let r = if name == "floor" { f.floor() } else { f.ceil() };
    // i64::MAX as f64 rounds up to 2^63, so compare with < on 2^63.
    if r.is_finite() && r >= -(2f64.powi(63)) && r < 2f64.powi(63) {
        Val::Int(r as i64)
    } else {
        let d = Diagnostic::error(
            "E0204",
            format!("`{name}` of {f} does not fit a 64-bit integer"),
            x.1,
            format!("this is {}", x.0.kind()),
        );
        e.report(d);
        Val::Error
    }
}

fn number(e: &mut Elab, v: Option<&(Val, Span)>, default: f64) -> Option<f64> {
    match v {
        None => Some(default),
        Some((Val::Int(i), _)) => Some(*i as f64),
        Some((Val::Float(f), _)) => Some(*f),
        Some((Val::Any, _)) => Some(default),
        Some((Val::Error, _)) => None,
        Some((other, s)) => {
            let d = Diagnostic::error(
                "E0202",
                "this argument must be a compile-time number",
                *s,
                format!("this is {}", other.kind()),
            );
            e.report(d);
            None
        }
    }
}

/// Apply `f` to a value, or to each tensor of a list.
fn map_list(e: &mut Elab, v: &Val, span: Span, f: &dyn Fn(&mut Elab, &Val, Span) -> Val) -> Val {
    match v {
        Val::List(items) => Val::List(items.iter().map(|i| map_list(e, i, span, f)).collect()),
        _ => f(e, v, span),
    }
}

fn sum_list(e: &mut Elab, items: &[Val], span: Span, mean: bool) -> Val {
    let mut total: Option<Tensor> = None;
    let mut count = 0usize;
    for it in items {
        let Some(t) = e.as_tensor(it, span, "`sum`") else {
            return Val::Error;
        };
        let n =
            t.ty.shape
                .as_ref()
                .map_or(1, |s| s.iter().map(|d| d.known().unwrap_or(1)).product::<usize>());
        count += n;
        let s = reduce(e, "sum", &(Val::Tensor(t), span), None, false);
        let Val::Tensor(s) = s else { return s };
        total = Some(match total {
            None => s,
            Some(acc) => {
                let ir = match (acc.ir, s.ir) {
                    (Some(a), Some(b)) => Some(e.b.add(a, b)),
                    _ => None,
                };
                Tensor {
                    ty: TensorTy::f32(vec![]),
                    ir,
                }
            }
        });
    }
    let Some(mut t) = total else {
        let z = e.scalar(0.0);
        return Val::Tensor(z);
    };
    if mean && count > 0 {
        let c = e.scalar(count as f64);
        t.ir = t.ir.map(|v| e.b.div(v, c.ir.expect("const")));
    }
    Val::Tensor(t)
}

fn reduce(e: &mut Elab, kind: &str, x: &(Val, Span), axis: Option<&(Val, Span)>, keep: bool) -> Val {
    let Some(t) = tensor_of(e, x, &format!("`{kind}`")) else {
        return Val::Error;
    };
    if t.ty.dtype != DType::F32 {
        let d = Diagnostic::error("E0201", format!("`{kind}` needs f32 values"), x.1, format!("this is {}", t.ty))
            .with_help("convert with `float(x)`");
        e.report(d);
        return Val::Error;
    }
    let Some(shape) = t.ty.shape.clone() else {
        return e.tensor(TensorTy::unknown(), None);
    };
    let Ok(axes) = axes_arg(e, axis, shape.len()) else {
        return Val::Error;
    };
    let out = ir::reduce_shape(&ir::Type::f32(shape.clone()), &axes, keep).expect("axes checked");
    let ir = t.ir.map(|v| {
        let r = if kind == "max" {
            e.b.reduce_max(v, axes.clone(), keep)
        } else {
            e.b.reduce_sum(v, axes.clone(), keep)
        };
        if kind == "mean" {
            let n: Vec<Dim> = axes.iter().map(|&a| shape[a].clone()).collect();
            match n.iter().map(|d| d.known()).collect::<Option<Vec<usize>>>() {
                Some(ks) => {
                    let c = e.b.fill(ks.iter().product::<usize>() as f64, &out);
                    e.b.div(r, c)
                }
                None => {
                    // A mean over a symbolic dim (the batch) divides by its
                    // runtime size: the sum of ones over the same axes.
                    let ones = e.b.fill(1.0, &shape);
                    let cnt = e.b.reduce_sum(ones, axes.clone(), keep);
                    e.b.div(r, cnt)
                }
            }
        } else {
            r
        }
    });
    e.tensor(TensorTy::f32(out), ir)
}

fn elementwise_minmax(e: &mut Elab, is_max: bool, l: &(Val, Span), r: &(Val, Span), span: Span) -> Val {
    if let (Val::List(_), _) | (_, Val::List(_)) = (&l.0, &r.0) {
        let d = Diagnostic::error("E0203", "`max`/`min` of lists is not supported", span, "a list here");
        e.report(d);
        return Val::Error;
    }
    if let (Some(a), Some(b)) = (num(&l.0), num(&r.0)) {
        return Val::Float(if is_max { a.max(b) } else { a.min(b) });
    }
    let (Some(a), Some(b)) = (e.as_tensor(&l.0, l.1, "`max`"), e.as_tensor(&r.0, r.1, "`max`")) else {
        return Val::Error;
    };
    let what = if is_max { "`max`" } else { "`min`" };
    if !(e.require_f32(&a, l.1, what) && e.require_f32(&b, r.1, what)) {
        return Val::Error;
    }
    let Some((a, b, shape)) = e.broadcast_pair(&a, &b, if is_max { "max" } else { "min" }, l.1, r.1, span) else {
        return Val::Error;
    };
    let ir = match (a.ir, b.ir) {
        (Some(x), Some(y)) => Some(e.b.binary(if is_max { ir::BinaryOp::Max } else { ir::BinaryOp::Min }, x, y)),
        _ => None,
    };
    e.tensor(TensorTy { dtype: DType::F32, shape }, ir)
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}

fn select(e: &mut Elab, c: &(Val, Span), a: &(Val, Span), b: &(Val, Span), span: Span) -> Val {
    let (Some(tc), Some(ta), Some(tb)) = (
        e.as_tensor(&c.0, c.1, "`where`"),
        e.as_tensor(&a.0, a.1, "`where`"),
        e.as_tensor(&b.0, b.1, "`where`"),
    ) else {
        return Val::Error;
    };
    // The condition may be a comparison or labels (nonzero is true); the
    // values chosen between are f32 like every other arithmetic.
    if !(e.require_f32(&ta, a.1, "`where`") && e.require_f32(&tb, b.1, "`where`")) {
        return Val::Error;
    }
    let Some((ta, tb, _)) = e.broadcast_pair(&ta, &tb, "where", a.1, b.1, span) else {
        return Val::Error;
    };
    let Some((tc, ta, shape)) = e.broadcast_pair(&tc, &ta, "where", c.1, a.1, span) else {
        return Val::Error;
    };
    let tb = match &shape {
        Some(s) => e.broadcast_to(&tb, s),
        None => tb,
    };
    let ir = match (tc.ir, ta.ir, tb.ir) {
        (Some(x), Some(y), Some(z)) => {
            let x = e.b.cast(x, DType::F32);
            Some(e.b.select(x, y, z))
        }
        _ => None,
    };
    e.tensor(TensorTy { dtype: DType::F32, shape }, ir)
}

/// A target shape whose element count is off: the one number in the list
/// that, changed, makes the counts agree (`748` for `784`); the primary
/// label moves to it.
fn reshape_fix(e: &Elab, d: &mut Diagnostic, list: Span, old_n: i64, new_n: i64) {
    let Some(user) = e.user_text(list) else { return };
    let text = e.text(user).to_string();
    let mut candidates = vec![];
    let mut start = 0;
    for part in text.trim_start_matches('[').trim_end_matches(']').split(',') {
        let at = text[start..].find(part).map_or(start, |i| start + i);
        start = at + part.len();
        let Ok(k) = part.trim().parse::<i64>() else { continue };
        if k <= 0 {
            continue;
        }
        let rest = new_n / k;
        if rest > 0 && old_n % rest == 0 {
            let lead = part.len() - part.trim_start().len();
            let s = user.start as usize + at + lead;
            candidates.push((Span::new(user.file, s, s + part.trim().len()), old_n / rest));
        }
    }
    if let [(span, want)] = candidates[..] {
        d.secondary.insert(
            0,
            crate::diag::Label {
                span: d.primary.span,
                message: d.primary.message.clone(),
            },
        );
        d.primary = crate::diag::Label {
            span,
            message: format!("this makes {new_n} elements per sample, not {old_n}"),
        };
        *d = d
            .clone()
            .with_fix(format!("write {want}"), crate::diag::Fix::replace(span, want.to_string()));
    }
}

fn reshape(e: &mut Elab, x: &(Val, Span), s: &(Val, Span)) -> Val {
    let Some(t) = tensor_of(e, x, "`reshape`") else { return Val::Error };
    let Ok(target) = shape_arg(e, &s.0, s.1, true) else {
        return Val::Error;
    };
    let (Some(target), Some(old)) = (target, t.ty.shape.clone()) else {
        return e.tensor(
            TensorTy {
                dtype: t.ty.dtype,
                shape: None,
            },
            None,
        );
    };
    let (old_n, old_syms) = shape::element_count(&old);
    let infer_at: Vec<usize> = target
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d, i64OrDim::Infer))
        .map(|(i, _)| i)
        .collect();
    if infer_at.len() > 1 {
        let d = Diagnostic::error("E0307", "`reshape` can infer only one dim (-1)", s.1, "more than one -1");
        e.report(d);
        return Val::Error;
    }
    let mut dims = concrete(target.clone());
    let known: Vec<Dim> = target
        .iter()
        .filter_map(|d| if let i64OrDim::Dim(d) = d { Some(d.clone()) } else { None })
        .collect();
    let (new_n, mut new_syms) = shape::element_count(&known);
    let mut ok = true;
    if let Some(&i) = infer_at.first() {
        // Symbols must cancel; the rest divides.
        let mut rest = old_syms.clone();
        for sname in &new_syms {
            match rest.iter().position(|r| r == sname) {
                Some(p) => {
                    rest.remove(p);
                }
                None => ok = false,
            }
        }
        if ok && rest.is_empty() && new_n > 0 && old_n % new_n == 0 {
            dims[i] = Dim::Known((old_n / new_n) as usize);
        } else if ok && rest.len() == 1 && new_n > 0 && old_n % new_n == 0 && old_n / new_n == 1 {
            dims[i] = Dim::Sym(rest[0].clone());
        } else {
            ok = false;
        }
        new_syms = old_syms.clone();
    } else {
        ok = new_n == old_n && new_syms == old_syms;
    }
    if !ok {
        let mut d = Diagnostic::error(
            "E0307",
            format!("cannot reshape {} to {}", t.ty, shape::shape_str(&dims)),
            s.1,
            format!("{} elements cannot fill this shape", old_n),
        )
        .with_secondary(x.1, format!("this has shape {}", t.ty));
        if infer_at.is_empty() && new_syms == old_syms {
            reshape_fix(e, &mut d, s.1, old_n, new_n);
        }
        e.report(d);
        return Val::Error;
    }
    let _ = new_syms;
    let ir = t.ir.map(|v| e.b.reshape(v, &dims));
    e.tensor(
        TensorTy {
            dtype: t.ty.dtype,
            shape: Some(dims),
        },
        ir,
    )
}
