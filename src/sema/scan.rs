//! `scan x in xs along 1 from h = h0 { h = f(x, h) }`: the loop over time
//! of recurrent layers, checked and lowered by unrolling.
//!
//! Each step binds `x` to step `t` of `xs` (a slice with the axis dropped)
//! and the carried variables to their values after step `t - 1`, then runs
//! the body; the scan's value is the first carried variable after every
//! step, stacked along the axis. Every carried variable must keep its
//! shape and dtype (E0325), every sequence must have the same, known, non-
//! zero number of steps (E0326, E0324). Unrolling makes the backward pass
//! (backpropagation through time) autodiff's ordinary work; see the crate
//! doc for why it is unrolled rather than a loop in the IR.

use super::elab::Elab;
use super::layout::axis_of;
use super::value::{Env, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::Dim;
use crate::syntax::ast::*;
use std::rc::Rc;

/// The axis a scan runs along when `along` is not written: the one after
/// the batch, as in `[batch, steps, features]`.
const DEFAULT_AXIS: i64 = 1;

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
            if !self.scan_body(s, &mut step_env) {
                return Val::Error;
            }
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
                    return Val::Error;
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
                    return Val::Error;
                }
                state[i] = after;
            }
            // A mistake in the body is reported at the first step; the
            // others would repeat it.
            if self.diags.errors_pushed > errors_before {
                return Val::Error;
            }
            outputs.push(state[0].clone());
        }
        self.stack_steps(&outputs, axes[0], span)
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
        for ((name, _), t) in s.seqs.iter().zip(seqs) {
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
        for ((name, _), t) in s.carries.iter().zip(carried) {
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
