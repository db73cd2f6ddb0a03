//! One vector-Jacobian product per primitive op.
//!
//! Each rule receives the adjoint `g` of an instruction's result (same type
//! as the result) and returns, for each operand it was asked for (`want`),
//! that operand's adjoint contribution. Operands not wanted get no code.

use super::Ctx;
use crate::ir::{BinaryOp, CmpOp, Dim, Inst, Op, Shape, UnaryOp, Value};

pub(super) fn vjp(cx: &mut Ctx, inst: &Inst, g: Value, want: &[bool]) -> Vec<Option<Value>> {
    // Only differentiable operand positions can receive a gradient, however
    // active the others are (e.g. the condition of a select).
    let mut want = want.to_vec();
    for (i, w) in want.iter_mut().enumerate() {
        *w &= inst.op.differentiable_args().contains(&i);
    }
    let (x, y) = (&inst.args, inst.result);
    match &inst.op {
        Op::Unary(op) => vec![unary(cx, *op, x[0], y, g)],
        Op::Binary(op) => binary(cx, *op, x[0], x[1], y, g, &want),
        Op::Select => {
            let zeros = zeros_of(cx, g);
            let ga = want[1].then(|| cx.b.select(x[0], g, zeros));
            let gb = want[2].then(|| cx.b.select(x[0], zeros, g));
            vec![None, ga, gb]
        }
        Op::Broadcast { .. } => vec![Some(unbroadcast(cx, g, &cx.b.shape(x[0])))],
        Op::ReduceSum { axes, keep } => {
            let shape = cx.b.shape(x[0]);
            let kept = keep_dims(cx, g, axes, *keep);
            vec![Some(cx.b.broadcast(kept, &shape))]
        }
        Op::ReduceMax { axes, keep } => vec![Some(reduce_max(cx, x[0], y, g, axes, *keep))],
        Op::Reshape { .. } => {
            let shape = cx.b.shape(x[0]);
            vec![Some(cx.b.reshape(g, &shape))]
        }
        Op::Transpose { perm } => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            vec![Some(cx.b.transpose(g, inverse))]
        }
        Op::MatMul => {
            // y = a @ b: da = g @ bᵀ, db = aᵀ @ g (per leading index).
            let ga = want[0].then(|| {
                let bt = swap_last_two(cx, x[1]);
                cx.b.matmul(g, bt)
            });
            let gb = want[1].then(|| {
                let at = swap_last_two(cx, x[0]);
                cx.b.matmul(at, g)
            });
            vec![ga, gb]
        }
        // f32 -> f32 cast is the identity (the only differentiable cast).
        Op::Cast { .. } => vec![want[0].then_some(g)],
        // A slice's adjoint puts `g` back where the elements came from.
        Op::Slice { start, stride, .. } => {
            let shape = cx.b.shape(x[0]);
            let gshape = cx.b.shape(g);
            let mut high = vec![0; shape.len()];
            for a in 0..shape.len() {
                if let (Some(n), Some(len)) = (shape[a].known(), gshape[a].known()) {
                    high[a] = n - (start[a] + stride[a] * (len - 1)) - 1;
                }
            }
            let interior = stride.iter().map(|s| s - 1).collect();
            vec![Some(cx.b.push(
                Op::Pad {
                    low: start.clone(),
                    high,
                    interior,
                },
                &[g],
            ))]
        }
        Op::Pad { low, interior, .. } => {
            let shape = cx.b.shape(x[0]);
            let stride = interior.iter().map(|i| i + 1).collect();
            vec![Some(cx.b.slice(g, low.clone(), stride, &shape))]
        }
        Op::Reverse { axes } => vec![Some(cx.b.reverse(g, axes.clone()))],
        Op::Concat { axis } => {
            let gshape = cx.b.shape(g);
            let first = cx.b.shape(x[0]);
            let n = first[*axis].known().expect("concat axes are known");
            let mut parts = vec![];
            for (k, &arg) in x.iter().enumerate() {
                let shape = cx.b.shape(arg);
                let mut start = vec![0; gshape.len()];
                if k == 1 {
                    start[*axis] = n;
                }
                parts.push(want[k].then(|| cx.b.slice(g, start, vec![1; gshape.len()], &shape)));
            }
            parts
        }
        // Each id's row of `g` is added back to the row it was read from.
        Op::Gather { axis } => {
            let shape = cx.b.shape(x[0]);
            let back = cx.b.push(Op::ScatterAdd { axis: *axis, shape }, &[x[1], g]);
            vec![Some(back), None]
        }
        Op::ScatterAdd { axis, .. } => vec![None, want[1].then(|| cx.b.gather(g, x[0], *axis))],
        // im2col and col2im are linear and each other's adjoint.
        Op::Im2col { window } => {
            let shape = cx.b.shape(x[0]);
            let size = [2, 3].map(|i| shape[i].known().expect("im2col images have known h and w"));
            let op = Op::Col2im {
                window: window.clone(),
                size,
            };
            vec![Some(cx.b.push(op, &[g]))]
        }
        Op::Col2im { window, .. } => vec![Some(cx.b.push(Op::Im2col { window: window.clone() }, &[g]))],
        Op::MaxPool { window } => vec![Some(cx.b.push(Op::MaxPoolGrad { window: window.clone() }, &[x[0], g]))],
        Op::Scan { scan, output } => super::scan::vjp(cx, scan, *output, x, g, &want),
        Op::Const(_)
        | Op::Compare(_)
        | Op::OneHot { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. }
        | Op::Iota { .. }
        | Op::MaxPoolGrad { .. } => {
            vec![None; x.len()]
        }
    }
}

fn unary(cx: &mut Ctx, op: UnaryOp, x: Value, y: Value, g: Value) -> Option<Value> {
    let shape = cx.b.shape(x);
    Some(match op {
        UnaryOp::Neg => cx.b.neg(g),
        UnaryOp::Exp => cx.b.mul(g, y),
        UnaryOp::Log => cx.b.div(g, x),
        // d sqrt(x) = 1 / (2 sqrt(x)), reusing the forward result.
        UnaryOp::Sqrt => {
            let two = cx.fill(2.0, &shape);
            let denom = cx.b.mul(two, y);
            cx.b.div(g, denom)
        }
        // d tanh(x) = 1 - tanh(x)².
        UnaryOp::Tanh => {
            let one = cx.fill(1.0, &shape);
            let y2 = cx.b.mul(y, y);
            let d = cx.b.sub(one, y2);
            cx.b.mul(g, d)
        }
        // d |x| = sign(x), which is 0 at 0 (a subgradient).
        UnaryOp::Abs => {
            let s = cx.b.unary(UnaryOp::Sign, x);
            cx.b.mul(g, s)
        }
        UnaryOp::Sin => {
            let c = cx.b.unary(UnaryOp::Cos, x);
            cx.b.mul(g, c)
        }
        UnaryOp::Cos => {
            let sn = cx.b.unary(UnaryOp::Sin, x);
            let m = cx.b.mul(g, sn);
            cx.b.neg(m)
        }
        // d erf(x) = 2/√π · exp(-x²).
        UnaryOp::Erf => {
            let x2 = cx.b.mul(x, x);
            let nx2 = cx.b.neg(x2);
            let e = cx.b.unary(UnaryOp::Exp, nx2);
            let k = cx.fill(std::f64::consts::FRAC_2_SQRT_PI, &shape);
            let d = cx.b.mul(k, e);
            cx.b.mul(g, d)
        }
        UnaryOp::Sign | UnaryOp::StopGradient => return None,
    })
}

fn binary(cx: &mut Ctx, op: BinaryOp, a: Value, bv: Value, y: Value, g: Value, want: &[bool]) -> Vec<Option<Value>> {
    let (wa, wb) = (want[0], want[1]);
    let (ga, gb) = match op {
        BinaryOp::Add => (wa.then_some(g), wb.then_some(g)),
        BinaryOp::Sub => (wa.then_some(g), wb.then(|| cx.b.neg(g))),
        BinaryOp::Mul => (wa.then(|| cx.b.mul(g, bv)), wb.then(|| cx.b.mul(g, a))),
        // d(a/b)/db = -a/b² = -y/b.
        BinaryOp::Div => {
            let ga = wa.then(|| cx.b.div(g, bv));
            let gb = wb.then(|| {
                let gy = cx.b.mul(g, y);
                let q = cx.b.div(gy, bv);
                cx.b.neg(q)
            });
            (ga, gb)
        }
        BinaryOp::Pow => (wa.then(|| pow_base(cx, a, bv, g)), wb.then(|| pow_exponent(cx, a, y, g))),
        BinaryOp::Max => min_max(cx, CmpOp::Ge, a, bv, g, want),
        BinaryOp::Min => min_max(cx, CmpOp::Le, a, bv, g, want),
    };
    vec![ga, gb]
}

/// d(aᵇ)/da = b·a^(b-1), computed with `pow` (not y·b/a) so a = 0 works.
fn pow_base(cx: &mut Ctx, a: Value, e: Value, g: Value) -> Value {
    let one = cx.fill(1.0, &cx.b.shape(e));
    let e1 = cx.b.sub(e, one);
    let p = cx.b.binary(BinaryOp::Pow, a, e1);
    let d = cx.b.mul(e, p);
    cx.b.mul(g, d)
}

/// d(aᵇ)/db = aᵇ·ln a. Where a = 0 the power is 0 (or 1 for b = 0) and
/// 0·ln 0 would be NaN; following JAX, ln is taken of 1 there, giving 0.
fn pow_exponent(cx: &mut Ctx, a: Value, y: Value, g: Value) -> Value {
    let shape = cx.b.shape(a);
    let (zero, one) = (cx.fill(0.0, &shape), cx.fill(1.0, &shape));
    let is_zero = cx.b.compare(CmpOp::Eq, a, zero);
    let safe = cx.b.select(is_zero, one, a);
    let ln = cx.b.unary(UnaryOp::Log, safe);
    let d = cx.b.mul(y, ln);
    cx.b.mul(g, d)
}

/// `max` (`pick_a` = ge) or `min` (le): the gradient goes to the operand that
/// was chosen, the first one on ties, so relu = max(x, 0) has slope 1 at 0.
fn min_max(cx: &mut Ctx, pick_a: CmpOp, a: Value, b: Value, g: Value, want: &[bool]) -> (Option<Value>, Option<Value>) {
    let chose_a = cx.b.compare(pick_a, a, b);
    let zeros = zeros_of(cx, g);
    let ga = want[0].then(|| cx.b.select(chose_a, g, zeros));
    let gb = want[1].then(|| cx.b.select(chose_a, zeros, g));
    (ga, gb)
}

/// The VJP of broadcast, and the only unbroadcast logic: sum `g` over the
/// axes the broadcast added (leading ones) or stretched (size 1 → n), then
/// reshape to restore the size-1 dims.
fn unbroadcast(cx: &mut Ctx, g: Value, to: &[Dim]) -> Value {
    let from = cx.b.shape(g);
    let offset = from.len() - to.len();
    let stretched = to
        .iter()
        .enumerate()
        .filter(|&(i, d)| *d == Dim::Known(1) && from[offset + i] != Dim::Known(1));
    let axes: Vec<usize> = (0..offset).chain(stretched.map(|(i, _)| offset + i)).collect();
    let summed = cx.b.reduce_sum(g, axes, false);
    cx.b.reshape(summed, to)
}

/// `g` reshaped so the reduced `axes` are present as size-1 dims, ready to
/// broadcast back over the operand. Reduced leading axes need no reshape:
/// broadcasting aligns dims to the right and adds them back by itself.
fn keep_dims(cx: &mut Ctx, g: Value, axes: &[usize], keep: bool) -> Value {
    if keep || axes.iter().enumerate().all(|(i, &ax)| i == ax) {
        return g;
    }
    let mut shape: Shape = cx.b.shape(g);
    for &ax in axes {
        shape.insert(ax, Dim::Known(1));
    }
    cx.b.reshape(g, &shape)
}

/// The gradient flows, in full, to every position equal to the max (the
/// rule the IR documents); a finite difference only agrees without ties.
fn reduce_max(cx: &mut Ctx, x: Value, y: Value, g: Value, axes: &[usize], keep: bool) -> Value {
    let shape = cx.b.shape(x);
    let y_kept = keep_dims(cx, y, axes, keep);
    let y_full = cx.b.broadcast(y_kept, &shape);
    let is_max = cx.b.compare(CmpOp::Eq, x, y_full);
    let g_kept = keep_dims(cx, g, axes, keep);
    let g_full = cx.b.broadcast(g_kept, &shape);
    let zeros = cx.fill(0.0, &shape);
    cx.b.select(is_max, g_full, zeros)
}

fn swap_last_two(cx: &mut Ctx, v: Value) -> Value {
    let r = cx.b.ty(v).rank();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    cx.b.transpose(v, perm)
}

fn zeros_of(cx: &mut Ctx, v: Value) -> Value {
    let shape = cx.b.shape(v);
    cx.fill(0.0, &shape)
}
