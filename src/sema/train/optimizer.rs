//! Optimizers: their state for one parameter, and the update function
//! elaborated once per trained parameter.

use crate::base::{FileId, SourceDb};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{self, Func};
use crate::sema::elab::{Elab, ParamInfo};
use crate::sema::scope::Globals;
use crate::sema::value::{Env, OptimizerInst, Tensor, TensorTy, Val};
use crate::syntax::ast::*;

/// Names and types of an optimizer's states for one parameter, and their initial values.
type StateInit = (Vec<(String, ir::Type)>, Vec<ir::Value>);

/// The optimizer's `state` declarations for one parameter, evaluated in the
/// init function with `param` bound to the parameter's initial value.
pub(super) fn optimizer_states(e: &mut Elab, opt: &OptimizerInst, ty: &ir::Type, param: ir::Value) -> Option<StateInit> {
    let mut env = opt_env(opt);
    env.vars.insert(
        "param".into(),
        Val::Tensor(Tensor {
            ty: TensorTy::f32(ty.shape.clone()),
            ir: Some(param),
        }),
    );
    let mut names = vec![];
    let mut vals = vec![];
    for s in &opt.decl.body.stmts {
        if let Stmt::State { name, value, .. } = s {
            let v = e.eval(value, &mut env);
            let t = match v {
                Val::Tensor(t) => t,
                Val::Int(_) | Val::Float(_) => e.as_tensor(&v, value.span, "state")?,
                Val::Error => return None,
                other => {
                    e.report(Diagnostic::error(
                        "E0203",
                        format!("state `{}` must be a tensor", name.name),
                        value.span,
                        format!("this is {}", other.kind()),
                    ));
                    return None;
                }
            };
            let shape = t.ty.shape.clone()?;
            names.push((name.name.clone(), ir::Type::f32(shape)));
            vals.push(t.ir?);
            env.vars.insert(name.name.clone(), Val::Tensor(t));
        }
    }
    Some((names, vals))
}

fn opt_env(opt: &OptimizerInst) -> Env {
    let mut env = Env::default();
    for (k, v) in &opt.args {
        env.vars.insert(k.clone(), v.clone());
    }
    env.origins = opt.origins.clone();
    env
}

/// `update(param, grad, step, lr, states...) -> (param', states'...)`.
///
/// `lr` is an input rather than the folded hyperparameter so that a
/// schedule can change it each step without recompiling.
pub(super) fn optimizer_update(
    db: &SourceDb,
    globals: &Globals,
    root: FileId,
    opt: &OptimizerInst,
    info: &ParamInfo,
    states: &[(String, ir::Type)],
    diags: &mut Diagnostics,
) -> Option<Func> {
    let mut e = Elab::new(db, globals, root, &format!("update.{}", info.name));
    let shape = info.ty.shape.clone();
    let t = |v| {
        Val::Tensor(Tensor {
            ty: TensorTy::f32(shape.clone()),
            ir: Some(v),
        })
    };
    let mut env = opt_env(opt);
    let p = e.b.param("param", info.ty.clone());
    let g = e.b.param("grad", info.ty.clone());
    let s = e.b.param("step", ir::Type::scalar());
    env.vars.insert("param".into(), t(p));
    env.vars.insert("grad".into(), t(g));
    env.vars.insert(
        "step".into(),
        Val::Tensor(Tensor {
            ty: TensorTy::f32(vec![]),
            ir: Some(s),
        }),
    );
    let lr = e.b.param("lr", ir::Type::scalar());
    if matches!(env.vars.get("lr"), Some(Val::Float(_) | Val::Int(_))) {
        env.vars.insert(
            "lr".into(),
            Val::Tensor(Tensor {
                ty: TensorTy::f32(vec![]),
                ir: Some(lr),
            }),
        );
    }
    for (n, ty) in states {
        let v = e.b.param(n.clone(), ty.clone());
        env.vars.insert(
            n.clone(),
            Val::Tensor(Tensor {
                ty: TensorTy::f32(ty.shape.clone()),
                ir: Some(v),
            }),
        );
    }
    run_optimizer_body(&mut e, &opt.decl.body, &mut env);
    let has_errors = e.diags.has_errors();
    diags.extend(std::mem::take(&mut e.diags));
    if has_errors {
        return None;
    }
    let mut results = vec![];
    for name in std::iter::once("param").chain(states.iter().map(|s| s.0.as_str())) {
        match env.vars.get(name) {
            Some(Val::Tensor(t)) => results.push(t.ir?),
            _ => return None,
        }
    }
    Some(e.b.finish(&results))
}

/// Execute an optimizer's statements: `state` declarations are already
/// bound; assignments update `param` or a state, keeping its shape.
pub fn run_optimizer_body(e: &mut Elab, body: &Block, env: &mut Env) {
    for st in &body.stmts {
        match st {
            Stmt::State { .. } => {}
            Stmt::Let { name, value, .. } => {
                let v = e.eval(value, env);
                env.vars.insert(name.name.clone(), v);
            }
            Stmt::Assign { target, op, value, .. } => {
                let Some(old) = env.vars.get(&target.name).cloned() else {
                    let d = Diagnostic::error(
                        "E0110",
                        format!("`{}` is not `param` or a `state` of this optimizer", target.name),
                        target.span,
                        "unknown variable",
                    )
                    .with_help(format!("declare it first: `state {} = zeros_like(param)`", target.name));
                    e.report(d);
                    continue;
                };
                let rhs = e.eval(value, env);
                let new = match op {
                    AssignOp::Set => rhs,
                    AssignOp::Add => e.binary(BinOp::Add, &old, &rhs, target.span, value.span, st.span()),
                    AssignOp::Sub => e.binary(BinOp::Sub, &old, &rhs, target.span, value.span, st.span()),
                    AssignOp::Mul => e.binary(BinOp::Mul, &old, &rhs, target.span, value.span, st.span()),
                    AssignOp::Div => e.binary(BinOp::Div, &old, &rhs, target.span, value.span, st.span()),
                };
                // The new value must keep the variable's shape.
                let new = match (&old, &new) {
                    (Val::Tensor(o), Val::Tensor(n)) => match (&o.ty.shape, &n.ty.shape) {
                        (Some(os), Some(ns)) if os != ns => match crate::sema::shape::broadcast(ns, os) {
                            Ok(b) if &b == os => Val::Tensor(e.broadcast_to(n, os)),
                            _ => {
                                let d = Diagnostic::error(
                                    "E0301",
                                    format!("`{}` has shape {}, but the new value is {}", target.name, o.ty, n.ty),
                                    value.span,
                                    format!("this has shape {}", n.ty),
                                );
                                e.report(d);
                                Val::Error
                            }
                        },
                        _ => new,
                    },
                    (Val::Tensor(o), Val::Int(_) | Val::Float(_)) => match e.as_tensor(&new, value.span, "assignment") {
                        Some(t) => Val::Tensor(e.broadcast_to(&t, o.ty.shape.as_deref().unwrap_or(&[]))),
                        None => Val::Error,
                    },
                    _ => new,
                };
                env.vars.insert(target.name.clone(), new);
            }
            Stmt::Return { span, .. } => {
                e.report(Diagnostic::error(
                    "E0110",
                    "an optimizer updates `param`; it does not return",
                    *span,
                    "not allowed here",
                ));
            }
            Stmt::Expr(x) => {
                e.eval(x, env);
            }
        }
    }
}
