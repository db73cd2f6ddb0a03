//! Algebraic simplification and constant folding.
//!
//! Contract: a rewrite never changes any result bit for any input that is
//! not NaN — including the sign of zero, which division and `sign` can
//! observe. (NaN stays NaN; only its payload may differ.) Concretely:
//!
//! - Constants are `f32` values (`Const` stores an `f64`, but every value in
//!   the IR is `f32`), so folding computes in `f32` with IEEE operations that
//!   round exactly once: `+ - * /`, `sqrt`, `neg`, `abs`, comparisons, and
//!   `max`/`min`/`sign` only where no NaN or signed-zero convention is
//!   involved. Transcendentals (`exp`, `log`, `tanh`, `pow`) are not folded:
//!   their result depends on the backend's approximation, and folding would
//!   make optimised and unoptimised programs disagree.
//! - `x * 1`, `1 * x`, `x / 1`, `x - 0`, `x + (-0)`, `neg(neg x)`,
//!   `pow(x, 1)` are exact for every input. `x + 0` is *not*: `-0 + 0` is
//!   `+0`. It is folded only when `x` provably is never `-0` (an `exp`,
//!   `abs`, comparison, ... see [`Simplifier::may_be_neg_zero`]); likewise
//!   `x - (-0)`.
//! - The sum of an integer constant over known dims is folded to constant
//!   times count, exact in both precisions below 2^24.
//! - `x * 0 -> 0` is never applied: `inf * 0` and `NaN * 0` are NaN, and
//!   `-3 * 0` is `-0`, so it is wrong even for finite inputs.
//! - `pow(x, 2) -> x * x`: the product is the correctly rounded square, which
//!   is what an exact `pow` returns (and it agrees on inf, -0 and NaN).
//! - Shape ops compose: broadcast of broadcast, reshape of reshape, transpose
//!   of transpose (perms composed), and identities (same shape, identity
//!   perm, reduction over no axes, cast to the same dtype) disappear. A
//!   reshape or transpose of a broadcast constant is that constant broadcast
//!   to the new shape (every element is the same). A reduction over no axes
//!   is its operand, which is bit-exact when backends sum from `-0.0` (the
//!   IEEE additive identity) or from the first element, not from `+0.0`.
//! - A slice taking all of its operand is the operand; a slice of a
//!   `concat` inside one operand slices that operand.
//! - `select` with a constant non-NaN condition picks its branch;
//!   `select c, a, a` is `a`.
//!
//! The pass walks the input once. Each instruction's operands are already
//! simplified, and a rewrite that builds new instructions sends them through
//! the same rules, so chains (`neg(neg(neg(neg x)))`, nested broadcasts)
//! collapse in one run. Instructions made dead are left for DCE.

use super::Rebuild;
use crate::ir::{scalar, BinaryOp, DType, Dim, Func, Op, UnaryOp, Value};

/// How far [`Simplifier::may_be_neg_zero`] looks back; deeper means unknown.
const SIGN_DEPTH: u32 = 8;

pub fn simplify(f: &Func) -> Func {
    let mut s = Simplifier {
        rb: Rebuild::new(f),
        defs: vec![],
    };
    for inst in &f.insts {
        let args = s.rb.args(&inst.args);
        let v = s.emit(inst.op.clone(), args);
        // Every rule must keep the type; catching it here names the culprit.
        assert_eq!(
            s.rb.b.ty(v),
            f.ty(inst.result),
            "internal error: simplify changed the type of {}",
            inst.result
        );
        s.rb.map[inst.result.index()] = Some(v);
    }
    s.rb.finish(f, "simplify")
}

struct Simplifier {
    rb: Rebuild,
    /// New value -> index of its defining instruction in the builder.
    defs: Vec<Option<usize>>,
}

/// `s` holds exactly the f32 `want` (bitwise, so `0.0` and `-0.0` differ).
fn is(s: Option<f32>, want: f32) -> bool {
    s.is_some_and(|c| c.to_bits() == want.to_bits())
}

impl Simplifier {
    fn push(&mut self, op: Op, args: &[Value]) -> Value {
        let idx = self.rb.b.func().insts.len();
        let v = self.rb.b.push(op, args);
        if self.defs.len() <= v.index() {
            self.defs.resize(v.index() + 1, None);
        }
        self.defs[v.index()] = Some(idx);
        v
    }

    /// Add `op args` to the output, simplified.
    fn emit(&mut self, op: Op, args: Vec<Value>) -> Value {
        match self.rewrite(&op, &args) {
            Some(v) => v,
            None => self.push(op, &args),
        }
    }

    /// The op and operands defining `v` in the output (None for params).
    fn def(&self, v: Value) -> Option<(Op, Vec<Value>)> {
        let i = (*self.defs.get(v.index())?)?;
        let inst = &self.rb.b.func().insts[i];
        Some((inst.op.clone(), inst.args.clone()))
    }

    fn shape(&self, v: Value) -> Vec<Dim> {
        self.rb.b.shape(v)
    }

    /// If every element of `v` is one constant: the scalar `const` value and
    /// its f32 value. Broadcasts of broadcasts are already collapsed, so one
    /// level suffices.
    fn splat(&self, v: Value) -> Option<(Value, f32)> {
        let (op, args) = self.def(v)?;
        if let Op::Const(c) = op {
            return Some((v, c as f32));
        }
        if let Op::Broadcast { .. } = op {
            if let (Op::Const(c), _) = self.def(args[0])? {
                return Some((args[0], c as f32));
            }
        }
        None
    }

    /// Scalar `s` broadcast to `shape` (just `s` for a scalar shape).
    fn spread(&mut self, s: Value, shape: &[Dim]) -> Value {
        if shape.is_empty() {
            s
        } else {
            self.push(Op::Broadcast { shape: shape.to_vec() }, &[s])
        }
    }

    /// A fresh constant `x` broadcast to `shape`.
    fn fold(&mut self, x: f32, shape: &[Dim]) -> Value {
        let c = self.push(Op::Const(x as f64), &[]);
        self.spread(c, shape)
    }

    /// A value equal to `op args`, or None to emit it unchanged.
    fn rewrite(&mut self, op: &Op, args: &[Value]) -> Option<Value> {
        match op {
            Op::Unary(u) => self.unary(*u, args[0]),
            Op::Binary(b) => self.binary(*b, args[0], args[1]),
            Op::Compare(c) => {
                let ((_, a), (_, b)) = (self.splat(args[0])?, self.splat(args[1])?);
                let r = scalar::compare(*c, f64::from(a), f64::from(b));
                let shape = self.shape(args[0]);
                Some(self.fold(if r { 1.0 } else { 0.0 }, &shape))
            }
            Op::Select => {
                let (c, a, b) = (args[0], args[1], args[2]);
                if a == b {
                    return Some(a);
                }
                // A NaN condition is left alone: "c != 0" is true for NaN
                // under IEEE, but that is a convention worth not baking in.
                let (_, k) = self.splat(c).filter(|(_, k)| !k.is_nan())?;
                Some(if k != 0.0 { a } else { b })
            }
            Op::Broadcast { shape } => {
                let x = args[0];
                if self.shape(x) == *shape {
                    return Some(x);
                }
                let (Op::Broadcast { .. }, inner) = self.def(x)? else {
                    return None;
                };
                Some(self.emit(op.clone(), vec![inner[0]]))
            }
            Op::Reshape { shape } => {
                let x = args[0];
                if self.shape(x) == *shape {
                    return Some(x);
                }
                if let Some((s, _)) = self.splat(x) {
                    return Some(self.spread(s, shape));
                }
                let (Op::Reshape { .. }, inner) = self.def(x)? else {
                    return None;
                };
                Some(self.emit(op.clone(), vec![inner[0]]))
            }
            Op::Transpose { perm } => {
                let x = args[0];
                if perm.iter().enumerate().all(|(i, &p)| i == p) {
                    return Some(x);
                }
                if let Some((s, _)) = self.splat(x) {
                    let from = self.shape(x);
                    let shape: Vec<Dim> = perm.iter().map(|&p| from[p].clone()).collect();
                    return Some(self.spread(s, &shape));
                }
                // Result dim i is inner's dim perm[i], which is the
                // source's dim inner_perm[perm[i]].
                let (Op::Transpose { perm: inner_perm }, inner) = self.def(x)? else {
                    return None;
                };
                let composed = perm.iter().map(|&p| inner_perm[p]).collect();
                Some(self.emit(Op::Transpose { perm: composed }, vec![inner[0]]))
            }
            Op::ReduceSum { axes, .. } | Op::ReduceMax { axes, .. } if axes.is_empty() => Some(args[0]),
            Op::ReduceSum { axes, keep } => {
                // A sum of an integer constant over known sizes (the element
                // count of a `mean` once the batch size is fixed) is exact in
                // f32 below 2^24, whatever the order of the additions.
                let (_, c) = self.splat(args[0])?;
                let shape = self.shape(args[0]);
                let n = axes.iter().map(|&a| shape[a].known()).product::<Option<usize>>()?;
                let total = f64::from(c) * n as f64;
                if c.fract() != 0.0 || total.abs() >= f64::from(1u32 << 24) {
                    return None;
                }
                let out = crate::ir::reduce_shape(self.rb.b.ty(args[0]), axes, *keep).ok()?;
                Some(self.fold(total as f32, &out))
            }
            Op::Slice { start, stride, shape } => self.slice(args[0], start, stride, shape),
            Op::Cast { to } if self.rb.b.ty(args[0]).dtype == *to => Some(args[0]),
            Op::Cast { .. }
            | Op::ReduceMax { .. }
            | Op::Const(_)
            | Op::MatMul
            | Op::OneHot { .. }
            | Op::RandomUniform { .. }
            | Op::RandomNormal { .. }
            | Op::Pad { .. }
            | Op::Reverse { .. }
            | Op::Concat { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::Iota { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::MaxPool { .. }
            | Op::MaxPoolGrad { .. }
            | Op::Scan { .. } => None,
        }
    }

    /// A slice that takes everything is its operand; a slice of a concat
    /// that lies inside one operand is a slice of that operand (the last
    /// state of a `scan`'s stacked states is the last step's state).
    fn slice(&mut self, x: Value, start: &[usize], stride: &[usize], shape: &[Dim]) -> Option<Value> {
        if self.shape(x) == shape && start.iter().all(|&s| s == 0) {
            return Some(x);
        }
        let (Op::Concat { axis }, parts) = self.def(x)? else {
            return None;
        };
        let first = self.shape(parts[0])[axis].known()?;
        let len = shape[axis].known()?;
        let (lo, hi) = (start[axis], start[axis] + stride[axis] * (len - 1));
        let (part, offset) = if hi < first {
            (parts[0], 0)
        } else if lo >= first {
            (parts[1], first)
        } else {
            return None;
        };
        let mut start = start.to_vec();
        start[axis] -= offset;
        let op = Op::Slice {
            start,
            stride: stride.to_vec(),
            shape: shape.to_vec(),
        };
        Some(self.emit(op, vec![part]))
    }

    fn unary(&mut self, u: UnaryOp, x: Value) -> Option<Value> {
        if u == UnaryOp::Neg {
            if let Some((Op::Unary(UnaryOp::Neg), inner)) = self.def(x) {
                return Some(inner[0]);
            }
        }
        let (_, c) = self.splat(x)?;
        let r = scalar::fold_unary(u, c)?;
        let shape = self.shape(x);
        Some(self.fold(r, &shape))
    }

    fn binary(&mut self, op: BinaryOp, x: Value, y: Value) -> Option<Value> {
        let sx = self.splat(x).map(|s| s.1);
        let sy = self.splat(y).map(|s| s.1);
        if let (Some(a), Some(b)) = (sx, sy) {
            if let Some(r) = scalar::fold_binary(op, a, b) {
                let shape = self.shape(x);
                return Some(self.fold(r, &shape));
            }
        }
        match op {
            BinaryOp::Add => {
                if is(sy, -0.0) || (is(sy, 0.0) && !self.may_be_neg_zero(x, SIGN_DEPTH)) {
                    return Some(x);
                }
                if is(sx, -0.0) || (is(sx, 0.0) && !self.may_be_neg_zero(y, SIGN_DEPTH)) {
                    return Some(y);
                }
            }
            // x - 0 is x + (-0); x - (-0) is x + 0.
            BinaryOp::Sub if is(sy, 0.0) || (is(sy, -0.0) && !self.may_be_neg_zero(x, SIGN_DEPTH)) => {
                return Some(x);
            }
            BinaryOp::Mul => {
                if is(sy, 1.0) {
                    return Some(x);
                }
                if is(sx, 1.0) {
                    return Some(y);
                }
            }
            BinaryOp::Div if is(sy, 1.0) => return Some(x),
            BinaryOp::Pow if is(sy, 1.0) => return Some(x),
            BinaryOp::Pow if is(sy, 2.0) => return Some(self.emit(Op::Binary(BinaryOp::Mul), vec![x, x])),
            BinaryOp::Sub | BinaryOp::Div | BinaryOp::Pow | BinaryOp::Max | BinaryOp::Min => {}
        }
        None
    }

    /// False only when `v` is certainly never `-0.0` (true = unknown).
    /// Under round-to-nearest, `a + b` is `-0` only if both are, `a - b` only
    /// if `a` is; `exp`, `abs`, comparisons, one-hot rows, uniform draws and
    /// integer casts never produce it; shape ops and `sqrt` keep it.
    fn may_be_neg_zero(&self, v: Value, depth: u32) -> bool {
        if depth == 0 {
            return true;
        }
        let Some((op, args)) = self.def(v) else {
            return true; // a param: anything
        };
        let rec = |a: Value| self.may_be_neg_zero(a, depth - 1);
        match op {
            Op::Const(c) => (c as f32).to_bits() == (-0.0f32).to_bits(),
            Op::Compare(_) | Op::OneHot { .. } | Op::RandomUniform { .. } | Op::Iota { .. } => false,
            Op::Unary(u) => match u {
                UnaryOp::Exp | UnaryOp::Abs | UnaryOp::Sign => false,
                UnaryOp::Sqrt | UnaryOp::StopGradient => rec(args[0]),
                UnaryOp::Neg | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Erf => true,
            },
            Op::Cast { .. } if self.rb.b.ty(args[0]).dtype == DType::I32 => false,
            Op::Binary(b) => match b {
                BinaryOp::Add => rec(args[0]) && rec(args[1]),
                BinaryOp::Sub => rec(args[0]),
                BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow | BinaryOp::Max | BinaryOp::Min => true,
            },
            Op::Broadcast { .. } | Op::Reshape { .. } | Op::Transpose { .. } => rec(args[0]),
            // Moved elements keep their sign; padding adds +0.
            Op::Slice { .. } | Op::Pad { .. } | Op::Reverse { .. } | Op::Gather { .. } => rec(args[0]),
            Op::Concat { .. } => rec(args[0]) || rec(args[1]),
            Op::ScatterAdd { .. } => true,
            Op::Select => rec(args[1]) || rec(args[2]),
            // Pooling and im2col copy values (-0 among them); sums may be -0.
            Op::Cast { .. }
            | Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::MatMul
            | Op::RandomNormal { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::MaxPool { .. }
            | Op::MaxPoolGrad { .. }
            | Op::Scan { .. } => true,
        }
    }
}
