//! Reverse-mode automatic differentiation as an IR → IR transformation.
//!
//! `grad` walks the forward instructions backwards and appends, for each one,
//! its vector-Jacobian product (one rule per primitive op, in `rules.rs`) to
//! the same function. Work is limited by activity analysis: an instruction
//! gets adjoint code only if it depends on a `wrt` value (forward activity)
//! and the output depends on it (it received an adjoint on the way back).
//! A value used several times sums its adjoint contributions.
//!
//! Choices at non-differentiable points (documented in `rules.rs`): binary
//! `max`/`min` send the whole gradient to the first operand on ties;
//! `reduce_max` sends the full gradient to every position equal to the max;
//! `pow`'s exponent gradient is 0 where the base is 0.

mod rules;
mod scan;

use crate::ir::{self, Builder, DType, Dim, Op, Shape, Type, Value};
use std::collections::HashMap;

/// Append to `b` the backward pass of scalar `output` (type f32[]) and return, for each
/// value in `wrt`, a value holding d output / d wrt (same type as that value).
/// Values that do not depend on any `wrt` get no adjoint work (activity analysis);
/// a `wrt` the output does not depend on gets zeros.
pub fn grad(b: &mut Builder, output: Value, wrt: &[Value]) -> Vec<Value> {
    grad_with_adjoints(b, output, wrt).0
}

/// `grad`, also returning the adjoint of every forward value that got one
/// (d output / d value), so tools can show the backward pass by name.
pub fn grad_with_adjoints(b: &mut Builder, output: Value, wrt: &[Value]) -> (Vec<Value>, HashMap<Value, Value>) {
    assert_eq!(b.ty(output), &Type::scalar(), "internal error: grad of a non-scalar output");
    backward(b, wrt, |cx| {
        let one = cx.constant(1.0);
        vec![(output, one)]
    })
}

/// The vector-Jacobian product: append to `b` the adjoints of `wrt` given
/// the adjoint `seed` of each value in `seeds` (same type as the value; a
/// value listed twice gets the sum). A scan body's backward pass is this.
pub fn vjp(b: &mut Builder, seeds: &[(Value, Value)], wrt: &[Value]) -> Vec<Value> {
    vjp_with_adjoints(b, seeds, wrt).0
}

/// `vjp`, also returning the adjoint of every value that got one.
pub fn vjp_with_adjoints(b: &mut Builder, seeds: &[(Value, Value)], wrt: &[Value]) -> (Vec<Value>, HashMap<Value, Value>) {
    backward(b, wrt, |_| seeds.to_vec())
}

/// The backward sweep from the adjoints `seeds` makes (after the forward
/// code, before any adjoint code).
fn backward(b: &mut Builder, wrt: &[Value], seeds: impl FnOnce(&mut Ctx) -> Vec<(Value, Value)>) -> (Vec<Value>, HashMap<Value, Value>) {
    let forward = b.func().insts.clone();
    let active = activity(b, &forward, wrt);
    let mut cx = Ctx {
        b,
        adj: HashMap::new(),
        fills: HashMap::new(),
        widened: vec![],
    };
    for (v, g) in seeds(&mut cx) {
        if active[v.index()] {
            cx.accumulate(v, g);
        }
    }
    for inst in forward.iter().rev() {
        let Some(&g) = cx.adj.get(&inst.result) else {
            continue;
        };
        let want: Vec<bool> = inst.args.iter().map(|a| active[a.index()]).collect();
        let contributions = rules::vjp(&mut cx, inst, g, &want);
        for (&arg, contribution) in inst.args.iter().zip(contributions) {
            if let Some(c) = contribution {
                cx.accumulate(arg, c);
            }
        }
    }
    let grads = wrt
        .iter()
        .map(|&w| cx.adj.get(&w).copied().unwrap_or_else(|| cx.zeros_like(w)))
        .collect();
    (grads, cx.adj)
}

/// `@{f.name}.vjp`: same params as `f` (which must return one f32[] scalar), returns the
/// scalar followed by its gradient with respect to the params listed in `wrt` (param indices).
pub fn grad_func(f: &ir::Func, wrt: &[usize]) -> ir::Func {
    assert_eq!(f.results.len(), 1, "internal error: grad_func of @{} needs one result", f.name);
    let output = f.results[0];
    let wrt: Vec<Value> = wrt.iter().map(|&i| f.params[i]).collect();
    let mut func = f.clone();
    func.name = format!("{}.vjp", f.name);
    func.results.clear();
    let mut b = Builder::from_func(func);
    let grads = grad(&mut b, output, &wrt);
    let mut results = vec![output];
    results.extend(grads);
    let out = b.finish(&results);
    debug_assert_eq!(ir::verify(&out), Ok(()), "autodiff produced invalid IR");
    out
}

/// Forward activity: a value is active when it is an f32 `wrt` value or an
/// f32 result depending differentiably on an active value.
fn activity(b: &Builder, forward: &[ir::Inst], wrt: &[Value]) -> Vec<bool> {
    let f = b.func();
    let is_f32 = |v: Value| f.ty(v).dtype == DType::F32;
    let mut active = vec![false; f.types.len()];
    for &w in wrt {
        active[w.index()] = is_f32(w);
    }
    for inst in forward {
        let from_args = inst.op.differentiable_args().iter().any(|&i| active[inst.args[i].index()]);
        active[inst.result.index()] |= from_args && is_f32(inst.result);
    }
    active
}

/// State of one backward pass: the builder being appended to, the adjoint of
/// each value reached so far, and a cache of constant fills so each
/// `(constant, shape)` is materialised once.
pub(crate) struct Ctx<'b> {
    pub(crate) b: &'b mut Builder,
    adj: HashMap<Value, Value>,
    fills: HashMap<(u64, Shape), Value>,
    /// Forward scans widened by their residuals (`scan::with_residuals`).
    widened: Vec<scan::Widened>,
}

impl Ctx<'_> {
    fn accumulate(&mut self, v: Value, contribution: Value) {
        let total = match self.adj.get(&v) {
            Some(&prev) => self.join_pads(prev, contribution).unwrap_or_else(|| self.b.add(prev, contribution)),
            None => contribution,
        };
        self.adj.insert(v, total);
    }

    /// The sum of the adjoints of two adjacent slices along one axis (the
    /// gates of a `chunk`: zero-padded pieces) as one padded concat of the
    /// pieces: each element is then copied once instead of the whole value
    /// being zeroed and summed per piece. None when `a` and `b` are not
    /// such pads.
    fn join_pads(&mut self, a: Value, b: Value) -> Option<Value> {
        // Builders number results in instruction order: a binary search
        // finds the definition (a miss only means no join).
        let def = |v: Value| {
            let insts = &self.b.func().insts;
            let at = insts.binary_search_by_key(&v.index(), |i| i.result.index()).ok()?;
            Some(insts[at].clone())
        };
        let (da, db) = (def(a)?, def(b)?);
        let (
            Op::Pad {
                low: la,
                high: ha,
                interior: ia,
            },
            Op::Pad {
                low: lb,
                high: hb,
                interior: ib,
            },
        ) = (&da.op, &db.op)
        else {
            return None;
        };
        if ia.iter().chain(ib).any(|&i| i != 0) {
            return None;
        }
        // The one axis along which the pieces lie; zero padding elsewhere.
        let axis = (0..la.len()).find(|&x| la[x] + ha[x] + lb[x] + hb[x] > 0)?;
        if (0..la.len()).any(|x| x != axis && la[x] + ha[x] + lb[x] + hb[x] > 0) {
            return None;
        }
        let n = self.b.shape(a)[axis].known()?;
        let (first, second, low, high) = if n - ha[axis] == lb[axis] {
            (&da, &db, la[axis], hb[axis])
        } else if n - hb[axis] == la[axis] {
            (&db, &da, lb[axis], ha[axis])
        } else {
            return None;
        };
        // Pieces joined earlier are taken apart and all joined as one
        // balanced tree, so no piece is copied once per later piece.
        let mut parts = vec![];
        let mut todo = vec![second.args[0], first.args[0]];
        while let Some(piece) = todo.pop() {
            match def(piece) {
                Some(d) if d.op == (Op::Concat { axis }) => todo.extend(d.args.iter().rev()),
                _ => parts.push(piece),
            }
        }
        let joined = self.b.concat(&parts, axis);
        let mut lows = vec![0; la.len()];
        let mut highs = vec![0; la.len()];
        lows[axis] = low;
        highs[axis] = high;
        Some(self.b.pad(joined, lows, highs))
    }

    pub(crate) fn constant(&mut self, x: f64) -> Value {
        self.fill(x, &[])
    }

    /// `x` broadcast to `shape`, shared by every rule that needs it.
    pub(crate) fn fill(&mut self, x: f64, shape: &[Dim]) -> Value {
        let key = (x.to_bits(), shape.to_vec());
        if let Some(&v) = self.fills.get(&key) {
            return v;
        }
        let v = self.b.fill(x, shape);
        self.fills.insert(key, v);
        v
    }

    pub(crate) fn zeros_like(&mut self, v: Value) -> Value {
        let ty = self.b.ty(v).clone();
        let zeros = self.fill(0.0, &ty.shape);
        // An i32 `wrt` is never active but still gets a gradient of its type.
        self.b.cast(zeros, ty.dtype)
    }
}
