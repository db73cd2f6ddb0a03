//! Parameter initialisation: each parameter's initializer evaluated with
//! its declared shape.

use crate::diag::Diagnostic;
use crate::ir::{self, Dim};
use crate::sema::elab::{ArgVal, Elab, ParamInfo};
use crate::sema::value::{Callable, Env, Tensor, TensorTy, Val};
use crate::syntax::ast::*;
use std::collections::HashMap;

/// Evaluate a parameter's initializer with its declared shape passed as
/// the `shape` argument: `glorot_uniform()` means `glorot_uniform([in, out])`.
pub(super) fn init_param(e: &mut Elab, info: &ParamInfo) -> Option<ir::Value> {
    let shape = info.ty.shape.clone();
    let shape_val = Val::List(
        shape
            .iter()
            .map(|d| {
                if let Dim::Known(k) = d {
                    Val::Int(*k as i64)
                } else {
                    Val::Dim(d.to_string())
                }
            })
            .collect(),
    );
    if shape.iter().any(|d| d.known().is_none()) {
        e.report(Diagnostic::error(
            "E0309",
            format!(
                "parameter `{}` must have a known shape, found {}",
                info.name,
                ir::shape_to_string(&shape)
            ),
            info.span,
            "shape depends on the input size",
        ));
        return None;
    }
    let mut env = Env {
        vars: HashMap::new(),
        parent: Some(info.env.clone()),
        ..Default::default()
    };
    let init = &info.init;
    let (callee, args) = match &init.kind {
        ExprKind::Call { callee, args } => (e.eval(callee, &mut env), Some(args)),
        _ => (e.eval(init, &mut env), None),
    };
    let takes_shape = match &callee {
        Val::Fn(Callable::Builtin(b)) => b.params().first() == Some(&"shape"),
        Val::Fn(Callable::Decl { decl, .. }) => decl.params.first().is_some_and(|p| p.name.name == "shape"),
        _ => false,
    };
    let v = if matches!(callee, Val::Fn(_)) {
        let mut argv = vec![];
        let given_shape = args.is_some_and(|a| a.iter().any(|x| x.name.as_ref().is_some_and(|n| n.name == "shape")));
        // The shape goes first, by position, so the initializer's own
        // positional arguments fill the parameters after it (`full(0.1)`).
        if takes_shape && !given_shape {
            argv.push(ArgVal {
                name: None,
                val: shape_val,
                span: init.span,
            });
        }
        if let Some(args) = args {
            for a in args {
                let v = e.eval(&a.value, &mut env);
                argv.push(ArgVal {
                    name: a.name.clone(),
                    val: v,
                    span: a.value.span,
                });
            }
        }
        e.call(callee, argv, init.span, init.span)
    } else if args.is_some() {
        e.eval(init, &mut env)
    } else {
        callee
    };
    let t = match v {
        Val::Int(_) | Val::Float(_) => {
            let x = if let Val::Int(i) = v {
                i as f64
            } else if let Val::Float(f) = v {
                f
            } else {
                0.0
            };
            Tensor {
                ty: TensorTy::f32(shape.clone()),
                ir: Some(e.b.fill(x, &shape)),
            }
        }
        Val::Tensor(t) => t,
        Val::Error => return None,
        other => {
            e.report(Diagnostic::error(
                "E0203",
                format!("the initializer of `{}` must give a tensor", info.name),
                init.span,
                format!("this is {}", other.kind()),
            ));
            return None;
        }
    };
    if t.ty.shape.as_ref() != Some(&shape) {
        e.report(Diagnostic::error(
            "E0301",
            format!(
                "the initializer of `{}` gives {}, but the parameter is {}",
                info.name,
                t.ty,
                ir::shape_to_string(&shape)
            ),
            init.span,
            format!("this has shape {}", t.ty),
        ));
        return None;
    }
    t.ir
}
