//! `scan x in xs along 1 from h = h0 { h = f(x, h) }`: the loop over time
//! of recurrent layers, checked, and lowered to a `scan` op of the IR or
//! unrolled.
//!
//! Each step binds `x` to step `t` of `xs` (a slice with the axis dropped)
//! and the carried variables to their values after step `t - 1`, then runs
//! the body; the scan's value is the first carried variable after every
//! step, stacked along the axis. Every carried variable must keep its
//! shape and dtype (E0325), every sequence must have the same, known, non-
//! zero number of steps (E0326, E0324). Scans longer than
//! [`UNROLL_MAX_STEPS`] elaborate the body once and cut it out as the body
//! function of one `ir::scan` op; shorter ones are unrolled, which makes
//! backpropagation through time autodiff's ordinary work. The crate doc
//! gives the measurements behind the bound.

use super::elab::Elab;
use super::layout::axis_of;
use super::value::{Env, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::{self, Dim};
use crate::syntax::ast::*;
use std::rc::Rc;

/// The axis a scan runs along when `along` is not written: the one after
/// the batch, as in `[batch, steps, features]`.
const DEFAULT_AXIS: i64 = 1;

/// Scans of at most this many steps are unrolled; longer ones become one
/// `scan` op of the IR (see the crate doc for the measurements).
pub const UNROLL_MAX_STEPS: usize = 32;

/// The unrolling bound: `UNROLL_MAX_STEPS`, or the environment's
/// `NNC_UNROLL_STEPS` (a whole number) to compare both lowerings.
fn unroll_max_steps() -> usize {
    std::env::var("NNC_UNROLL_STEPS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(UNROLL_MAX_STEPS)
}

/// What `scan_loop` made of a scan.
enum Looped {
    Done(Val),
    /// A body the loop cannot express (random draws, which must differ
    /// per step): unroll it instead.
    Unroll,
}

/// A scan body cut out of the function being built.
struct Body {
    func: ir::Func,
    /// The outer values the body reads, in param order after the carries
    /// and sequence elements.
    invariants: Vec<ir::Value>,
}

/// The instructions from `mark` on that depend on `stand_ins` (the carries'
/// and sequence elements' stand-in values, in that order), as a function of
/// the stand-ins and of the outer values they read, returning `news` (the
/// new carries) twice: as carries and as per-step outputs (the stacked
/// states the scan's value and its backward pass read). None when the body
/// draws random numbers, which would be drawn once for every step.
fn extract_body(f: &ir::Func, mark: usize, stand_ins: &[ir::Value], news: &[ir::Value]) -> Option<Body> {
    let range = &f.insts[mark..];
    let mut dep = vec![false; f.types.len()];
    for &v in stand_ins {
        dep[v.index()] = true;
    }
    let mut def = std::collections::HashMap::new();
    for inst in range {
        if matches!(inst.op, ir::Op::RandomUniform { .. }) || matches!(inst.op, ir::Op::RandomNormal { .. }) {
            return None;
        }
        def.insert(inst.result, inst);
        if !stand_ins.contains(&inst.result) && inst.args.iter().any(|a| dep[a.index()]) {
            dep[inst.result.index()] = true;
        }
    }
    // What the body reads from outside: invariants, except that constants
    // and views computed in the range are copied into the body, where they
    // cost nothing (a splat, strides) instead of a buffer read every step.
    let mut copied = vec![false; f.types.len()];
    let mut invariants: Vec<ir::Value> = vec![];
    fn need(
        v: ir::Value,
        dep: &[bool],
        def: &std::collections::HashMap<ir::Value, &ir::Inst>,
        copied: &mut [bool],
        invariants: &mut Vec<ir::Value>,
    ) {
        if dep[v.index()] || copied[v.index()] || invariants.contains(&v) {
            return;
        }
        let free = def.get(&v).filter(|i| {
            matches!(i.op, ir::Op::Const(_))
                || matches!(i.op, ir::Op::Broadcast { .. })
                || matches!(i.op, ir::Op::Reshape { .. })
                || matches!(i.op, ir::Op::Transpose { .. })
        });
        match free {
            Some(inst) => {
                copied[v.index()] = true;
                for &a in &inst.args {
                    need(a, dep, def, copied, invariants);
                }
            }
            None => invariants.push(v),
        }
    }
    for inst in range.iter().filter(|i| dep[i.result.index()] && !stand_ins.contains(&i.result)) {
        for &a in &inst.args {
            need(a, &dep, &def, &mut copied, &mut invariants);
        }
    }
    for &v in news {
        need(v, &dep, &def, &mut copied, &mut invariants);
    }
    let inner: Vec<&ir::Inst> = range
        .iter()
        .filter(|i| !stand_ins.contains(&i.result) && (dep[i.result.index()] || copied[i.result.index()]))
        .collect();
    if stand_ins.len() + invariants.len() > ir::scan::MAX_OPERANDS {
        return None;
    }
    let mut b = ir::Builder::new(format!("{}.scan{mark}", f.name));
    let mut map: std::collections::HashMap<ir::Value, ir::Value> = std::collections::HashMap::new();
    for (i, &v) in stand_ins.iter().chain(&invariants).enumerate() {
        map.insert(v, b.param(format!("p{i}"), f.ty(v).clone()));
    }
    for inst in inner {
        let args: Vec<ir::Value> = inst.args.iter().map(|a| map[a]).collect();
        let v = b.push(inst.op.clone(), &args);
        map.insert(inst.result, v);
    }
    let mut results: Vec<ir::Value> = news.iter().map(|v| map[v]).collect();
    results.extend(news.iter().map(|v| map[v]));
    Some(Body {
        func: b.finish(&results),
        invariants,
    })
}

impl Elab<'_> {
    pub(super) fn scan(&mut self, s: &Scan, span: Span, env: &mut Env) -> Val {
        let seqs: Vec<(Val, Span)> = s.seqs.iter().map(|(_, e)| (self.eval(e, env), e.span)).collect();
        let axis = match &s.axis {
            Some(a) => match self.eval(a, env) {
                Val::Int(i) => Some((i, a.span)),
                Val::Error | Val::Any => None,
                other => {
                    let d = Diagnostic::error(
                        "E0202",
                        "the axis of a `scan` must be a compile-time integer",
                        a.span,
                        format!("this is {}", other.kind()),
                    );
                    self.report(d);
                    return Val::Error;
                }
            },
            None => Some((DEFAULT_AXIS, s.keyword)),
        };
        let inits: Vec<Val> = s.carries.iter().map(|(_, e)| self.eval(e, env)).collect();
        if seqs.iter().any(|(v, _)| matches!(v, Val::Error)) || inits.iter().any(|v| matches!(v, Val::Error)) {
            return Val::Error;
        }
        let mut tensors = vec![];
        for (v, sp) in &seqs {
            let Some(t) = self.as_tensor(v, *sp, "`scan ... in`") else {
                return Val::Error;
            };
            tensors.push(t);
        }
        let mut carried = vec![];
        for ((name, e), v) in s.carries.iter().zip(&inits) {
            match v {
                Val::Tensor(t) => carried.push(t.clone()),
                Val::Int(_) | Val::Float(_) | Val::Any => {
                    let Some(t) = self.as_tensor(v, e.span, "a carried value") else {
                        return Val::Error;
                    };
                    carried.push(t);
                }
                other => {
                    let d = Diagnostic::error(
                        "E0203",
                        format!("the carried variable `{}` of a `scan` must start as a tensor", name.name),
                        e.span,
                        format!("this is {}", other.kind()),
                    )
                    .with_help("start it from a tensor of the state's shape, e.g. `zeros([batch, hidden])`");
                    self.report(d);
                    return Val::Error;
                }
            }
        }
        // Checking a definition on its own: shapes unknown, run the body
        // once for its names and return an unknown tensor.
        let Some(axis) = axis else {
            return self.scan_generic(s, &tensors, &carried, env);
        };
        if tensors.iter().any(|t| t.ty.shape.is_none()) || carried.iter().any(|t| t.ty.shape.is_none()) {
            return self.scan_generic(s, &tensors, &carried, env);
        }
        // The number of steps, the same for every sequence.
        let mut steps: Option<(usize, usize)> = None;
        let mut axes = vec![];
        for (i, (t, (_, sp))) in tensors.iter().zip(&seqs).enumerate() {
            let shape = t.ty.shape.as_ref().expect("known");
            let Some(ax) = axis_of(self, axis.0, shape.len(), if s.axis.is_some() { axis.1 } else { *sp }) else {
                return Val::Error;
            };
            axes.push(ax);
            let n = match &shape[ax] {
                Dim::Known(n) => *n,
                Dim::Sym(d) => {
                    let diag = Diagnostic::error(
                        "E0324",
                        format!("`scan` along an axis of size `{d}`, known only when the model runs"),
                        *sp,
                        format!("this has shape {}; axis {ax} is `{d}`", t.ty),
                    )
                    .with_help("scan along the steps axis: `along 1` for `[batch, steps, features]`");
                    self.report(diag);
                    return Val::Error;
                }
            };
            if n == 0 {
                let diag = Diagnostic::error(
                    "E0326",
                    "`scan` over a sequence with no steps",
                    *sp,
                    format!("this has shape {}: axis {ax} is 0", t.ty),
                );
                self.report(diag);
                return Val::Error;
            }
            match steps {
                Some((m, first)) if m != n => {
                    let diag = Diagnostic::error(
                        "E0326",
                        format!("the sequences of a `scan` have different numbers of steps: {m} and {n}"),
                        *sp,
                        format!("this has {n} steps (shape {})", t.ty),
                    )
                    .with_secondary(seqs[first].1, format!("this has {m} steps"));
                    self.report(diag);
                    return Val::Error;
                }
                Some(_) => {}
                None => steps = Some((n, i)),
            }
        }
        let Some((steps, _)) = steps else {
            return Val::Error;
        };
        let parent = Rc::new(env.clone());
        if steps > unroll_max_steps() {
            match self.scan_loop(s, &tensors, &axes, &carried, &parent, steps, span) {
                Looped::Done(v) => return v,
                Looped::Unroll => {}
            }
        }
        let mut state = carried.clone();
        let mut outputs: Vec<Tensor> = vec![];
        let errors_before = self.diags.errors_pushed;
        for t in 0..steps {
            let mut step_env = Env {
                parent: Some(parent.clone()),
                ..Env::default()
            };
            for (((name, _), seq), &ax) in s.seqs.iter().zip(&tensors).zip(&axes) {
                let x = self.step_of(seq, ax, t);
                step_env.vars.insert(name.name.clone(), Val::Tensor(x));
            }
            for ((name, _), v) in s.carries.iter().zip(&state) {
                step_env.vars.insert(name.name.clone(), Val::Tensor(v.clone()));
            }
            let Some(after) = self.one_step(s, &mut step_env, &carried) else {
                return Val::Error;
            };
            state = after;
            // A mistake in the body is reported at the first step; the
            // others would repeat it.
            if self.diags.errors_pushed > errors_before {
                return Val::Error;
            }
            outputs.push(state[0].clone());
        }
        self.stack_steps(&outputs, axes[0], span)
    }

    /// Run the body in `step_env` (the step's sequence elements and carries
    /// bound) and check the carried variables after it: their new values,
    /// or None after an error.
    fn one_step(&mut self, s: &Scan, step_env: &mut Env, carried: &[Tensor]) -> Option<Vec<Tensor>> {
        if !self.scan_body(s, step_env) {
            return None;
        }
        let mut state = vec![];
        for (i, (name, init)) in s.carries.iter().enumerate() {
            let after = step_env.vars.get(&name.name).cloned().unwrap_or(Val::Error);
            let Val::Tensor(after) = after else {
                if !after.is_poison() {
                    let d = Diagnostic::error(
                        "E0325",
                        format!("the carried variable `{}` must stay a tensor", name.name),
                        self.assigned_span(s, &name.name).unwrap_or(init.span),
                        format!("this is {}", after.kind()),
                    );
                    self.report(d);
                }
                return None;
            };
            if after.ty != carried[i].ty {
                let at = self.assigned_span(s, &name.name).unwrap_or(s.keyword);
                let d = Diagnostic::error(
                    "E0325",
                    format!(
                        "the carried variable `{}` changes from {} to {} in one step of the `scan`",
                        name.name, carried[i].ty, after.ty
                    ),
                    at,
                    format!("this has shape {}", after.ty),
                )
                .with_secondary(init.span, format!("`{}` starts as {}", name.name, carried[i].ty))
                .with_note("a carried variable keeps its shape and dtype from step to step, so every step can run the same body");
                self.report(d);
                return None;
            }
            state.push(after);
        }
        Some(state)
    }

    /// The scan as one `scan` op of the IR: the body is elaborated once, on
    /// fresh values standing for a step's elements and carries, and the
    /// instructions that depend on them become the op's body function;
    /// everything else the body computed (weights' views, bias broadcasts)
    /// stays outside, computed once, and enters as an invariant operand.
    #[allow(clippy::too_many_arguments)]
    fn scan_loop(
        &mut self,
        s: &Scan,
        seqs: &[Tensor],
        axes: &[usize],
        carried: &[Tensor],
        parent: &Rc<Env>,
        steps: usize,
        span: Span,
    ) -> Looped {
        let (Some(seq_irs), Some(init_irs)) = (
            seqs.iter().map(|t| t.ir).collect::<Option<Vec<_>>>(),
            carried.iter().map(|t| t.ir).collect::<Option<Vec<_>>>(),
        ) else {
            return Looped::Unroll;
        };
        let mark = self.b.func().insts.len();
        let errors_before = self.diags.errors_pushed;
        let mut step_env = Env {
            parent: Some(parent.clone()),
            ..Env::default()
        };
        let mut stand_ins = vec![];
        for (i, init) in carried.iter().enumerate() {
            let shape = init.ty.shape.clone().expect("known");
            // A fresh value (a reshape to its own shape), never shared with
            // code outside the body.
            let v = self.b.push(ir::Op::Reshape { shape }, &[init_irs[i]]);
            stand_ins.push(v);
            let t = Tensor {
                ty: init.ty.clone(),
                ir: Some(v),
            };
            step_env.vars.insert(s.carries[i].0.name.clone(), Val::Tensor(t));
        }
        for (((name, _), seq), &ax) in s.seqs.iter().zip(seqs).zip(axes) {
            let x = self.step_of(seq, ax, 0);
            stand_ins.push(x.ir.expect("a sequence with IR has steps with IR"));
            step_env.vars.insert(name.name.clone(), Val::Tensor(x));
        }
        let Some(after) = self.one_step(s, &mut step_env, carried) else {
            return Looped::Done(Val::Error);
        };
        if self.diags.errors_pushed > errors_before {
            return Looped::Done(Val::Error);
        }
        let Some(news) = after.iter().map(|t| t.ir).collect::<Option<Vec<_>>>() else {
            return Looped::Unroll;
        };
        let Some(body) = extract_body(self.b.func(), mark, &stand_ins, &news) else {
            return Looped::Unroll;
        };
        // Operands: initial carries, sequences with the steps axis first,
        // invariants.
        let mut operands = init_irs.clone();
        for (&v, &ax) in seq_irs.iter().zip(axes) {
            let rank = self.b.ty(v).rank();
            let mut perm = vec![ax];
            perm.extend((0..rank).filter(|&d| d != ax));
            operands.push(self.b.transpose(v, perm));
        }
        operands.extend(&body.invariants);
        let scan = std::sync::Arc::new(ir::scan::Scan {
            body: body.func,
            carries: carried.len(),
            seqs: seqs.len(),
            steps,
            reverse: false,
        });
        // Per-step output 0 is the first carry after each step.
        let stacked = self.b.push(ir::scan::op(&scan, carried.len()), &operands);
        let mut shape = carried[0].ty.shape.clone().expect("known");
        let axis = axes[0].min(shape.len());
        let rank = shape.len() + 1;
        let perm: Vec<usize> = (0..rank)
            .map(|d| match d.cmp(&axis) {
                std::cmp::Ordering::Less => d + 1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => d,
            })
            .collect();
        let v = self.b.transpose(stacked, perm);
        shape.insert(axis, Dim::Known(steps));
        let ty = TensorTy {
            dtype: carried[0].ty.dtype,
            shape: Some(shape),
        };
        if !self.check_size(ty.shape.as_ref().expect("known"), span, "tensor") {
            return Looped::Done(Val::Error);
        }
        Looped::Done(self.tensor(ty, Some(v)))
    }

    /// Step `t` of `seq` along `axis`, the axis dropped.
    fn step_of(&mut self, seq: &Tensor, axis: usize, t: usize) -> Tensor {
        let shape = seq.ty.shape.clone().expect("known");
        let mut start = vec![0; shape.len()];
        start[axis] = t;
        let mut one = shape.clone();
        one[axis] = Dim::Known(1);
        let mut dropped = shape.clone();
        dropped.remove(axis);
        let ir = seq.ir.map(|v| {
            let sl = self.b.slice(v, start, vec![1; shape.len()], &one);
            self.b.reshape(sl, &dropped)
        });
        Tensor {
            ty: TensorTy {
                dtype: seq.ty.dtype,
                shape: Some(dropped),
            },
            ir,
        }
    }

    /// The states of every step stacked along `axis`.
    fn stack_steps(&mut self, outputs: &[Tensor], axis: usize, span: Span) -> Val {
        let first = &outputs[0];
        let mut shape = first.ty.shape.clone().expect("known");
        let axis = axis.min(shape.len());
        let mut one = shape.clone();
        one.insert(axis, Dim::Known(1));
        shape.insert(axis, Dim::Known(outputs.len()));
        let irs: Option<Vec<_>> = outputs.iter().map(|o| o.ir).collect();
        let ir = irs.map(|vs| {
            let parts: Vec<_> = vs.iter().map(|&v| self.b.reshape(v, &one)).collect();
            self.b.concat(&parts, axis)
        });
        let ty = TensorTy {
            dtype: first.ty.dtype,
            shape: Some(shape),
        };
        if !self.check_size(ty.shape.as_ref().expect("known"), span, "tensor") {
            return Val::Error;
        }
        self.tensor(ty, ir)
    }

    /// The body once, with unknown shapes: names and kinds are checked,
    /// the result is an unknown tensor.
    fn scan_generic(&mut self, s: &Scan, seqs: &[Tensor], carried: &[Tensor], env: &mut Env) -> Val {
        let mut step_env = Env {
            parent: Some(Rc::new(env.clone())),
            ..Env::default()
        };
        let named = s.seqs.iter().zip(seqs).chain(s.carries.iter().zip(carried));
        for ((name, _), t) in named {
            step_env.vars.insert(
                name.name.clone(),
                self.tensor(
                    TensorTy {
                        dtype: t.ty.dtype,
                        shape: None,
                    },
                    None,
                ),
            );
        }
        self.scan_body(s, &mut step_env);
        let dtype = carried.first().map_or(crate::ir::DType::F32, |t| t.ty.dtype);
        self.tensor(TensorTy { dtype, shape: None }, None)
    }

    /// Run the statements of the body once in `env`; false after an error
    /// that makes the step meaningless.
    fn scan_body(&mut self, s: &Scan, env: &mut Env) -> bool {
        for st in &s.body.stmts {
            match st {
                Stmt::Let { name, value, .. } => {
                    let v = self.eval_let(name, value, env);
                    self.record(name.span, &v);
                    env.vars.insert(name.name.clone(), v);
                }
                Stmt::Assign { target, op, value, span } => {
                    if !s.carries.iter().any(|(c, _)| c.name == target.name) {
                        let mut d = Diagnostic::error(
                            "E0110",
                            format!("`{}` is not carried by this `scan`", target.name),
                            target.span,
                            "not a carried variable",
                        );
                        d = if s.carries.is_empty() {
                            d
                        } else {
                            let names: Vec<String> = s.carries.iter().map(|(c, _)| format!("`{}`", c.name)).collect();
                            d.with_help(format!(
                                "a step assigns its carried variables ({}); name other values with `let`",
                                names.join(", ")
                            ))
                        };
                        self.report(d);
                        return false;
                    }
                    let rhs = self.eval(value, env);
                    let v = match op {
                        AssignOp::Set => rhs,
                        AssignOp::Add | AssignOp::Sub | AssignOp::Mul | AssignOp::Div => {
                            let old = env.vars.get(&target.name).cloned().unwrap_or(Val::Error);
                            let bop = match op {
                                AssignOp::Add => BinOp::Add,
                                AssignOp::Sub => BinOp::Sub,
                                AssignOp::Mul => BinOp::Mul,
                                AssignOp::Div | AssignOp::Set => BinOp::Div,
                            };
                            self.binary(bop, &old, &rhs, target.span, value.span, *span)
                        }
                    };
                    self.name_value(&target.name, &v);
                    env.vars.insert(target.name.clone(), v);
                }
                Stmt::Expr(e) => {
                    self.eval(e, env);
                }
                Stmt::Return { span, .. } | Stmt::State { span, .. } => {
                    let d = Diagnostic::error(
                        "E0110",
                        "a `scan` step assigns its carried variables; it has no `return` or `state`",
                        *span,
                        "not allowed here",
                    )
                    .with_help("write `h = ...` for each carried variable; the scan's value is the first one after every step");
                    self.report(d);
                    return false;
                }
            }
        }
        true
    }

    /// The value of the last assignment to `name` in the body.
    fn assigned_span(&self, s: &Scan, name: &str) -> Option<Span> {
        s.body.stmts.iter().rev().find_map(|st| match st {
            Stmt::Assign { target, value, .. } if target.name == name => Some(value.span),
            _ => None,
        })
    }
}
