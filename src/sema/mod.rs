//! Semantic analysis: names, the stdlib, dtypes, symbolic shapes — and, in
//! the same pass, lowering to IR (see `elab`).

mod attention;
pub mod builtin_table;
pub mod builtins;
mod call;
mod conv;
pub mod elab;
mod guard;
mod index;
mod layer;
mod layout;
mod ops;
mod scan;
pub mod scope;
pub mod shape;
pub mod train;
pub mod value;

use crate::base::{FileId, SourceDb, Span};
use crate::diag::{Diagnostic, Diagnostics};
pub use crate::plan::{CsvLabel, DataSource, DataSpec, EarlyStop, Schedule, Settings, TrainPlan};
use crate::syntax::ast::{Item, Module, TypeExpr};
use elab::{ArgVal, Elab};
use scope::{Global, Globals};
use value::{Env, Tensor, TensorTy, Val};

/// The stdlib, compiled into the binary so nnc works from any directory.
pub const STDLIB: &[(&str, &str)] = &[
    ("activations", include_str!("../../stdlib/activations.nn")),
    ("losses", include_str!("../../stdlib/losses.nn")),
    ("init", include_str!("../../stdlib/init.nn")),
    ("layers", include_str!("../../stdlib/layers.nn")),
    ("conv", include_str!("../../stdlib/conv.nn")),
    ("recurrent", include_str!("../../stdlib/recurrent.nn")),
    ("optimizers", include_str!("../../stdlib/optimizers.nn")),
    ("attention", include_str!("../../stdlib/attention.nn")),
];

/// Whether `use target` names a stdlib module (`losses`, `std.losses`).
pub fn is_stdlib_module(target: &str) -> bool {
    let name = target.trim_end_matches(".nn");
    let name = name.strip_prefix("std.").unwrap_or(name);
    STDLIB.iter().any(|(n, _)| *n == name)
}

/// What checking a file produced.
#[derive(Debug, Default)]
pub struct Analysis {
    pub diags: Diagnostics,
    /// The type of expressions in the root file, by span.
    pub types: Vec<(Span, String)>,
    pub plans: Vec<TrainPlan>,
    pub globals: Globals,
    /// Layers of each model: (model, [(layer name, span, [(param, type)])]).
    pub model_layers: Vec<(String, Vec<value::LayerRecord>)>,
    /// Each model's forward function (x, params...) -> output, with symbolic batch.
    pub model_funcs: Vec<(String, crate::ir::Func)>,
}

/// Check `root` (already parsed) against the stdlib modules and lower its
/// train blocks. Never fails: problems are diagnostics.
/// `imported` holds the modules loaded for the root's `use` lines, by target.
pub fn analyze(
    db: &SourceDb,
    root: FileId,
    module: &Module,
    stdlib: &'static [(FileId, Module)],
    imported: &[(String, FileId, Module)],
) -> Analysis {
    let mut diags = Diagnostics::default();
    let mut globals = Globals::default();
    globals.add_stdlib(stdlib, &mut diags);
    for (_, _, m) in imported {
        globals.add_module(m, false, &mut diags);
    }
    globals.add_module(module, true, &mut diags);
    check_uses(module, imported, &mut diags);
    let mut a = Analysis {
        diags,
        ..Default::default()
    };

    // Models are concrete: elaborate each fully.
    for name in globals.root_items.clone() {
        if let Some(Global::Model(m)) = globals.get(&name) {
            let mut e = Elab::new(db, &globals, root, &name);
            e.trained_model = Some(name.clone());
            e.training = Some(false);
            let Some(inputs) = e.model_inputs(m) else {
                a.diags.extend(e.diags);
                continue;
            };
            let args: Vec<ArgVal> = inputs
                .iter()
                .map(|(n, ty)| ArgVal {
                    name: None,
                    val: e.param_tensor(n.clone(), ty),
                    span: m.name.span,
                })
                .collect();
            let out = e.apply_model(m.clone(), args, m.name.span);
            a.types.append(&mut e.types);
            a.model_layers.push((name.clone(), std::mem::take(&mut e.layers)));
            let ok = !e.diags.has_errors();
            a.diags.extend(std::mem::take(&mut e.diags));
            if let (true, Val::Tensor(Tensor { ir: Some(v), .. })) = (ok, out) {
                a.model_funcs.push((name.clone(), e.b.finish(&[v])));
            }
        }
    }
    // Other definitions are checked on their own, with unknown shapes
    // where no annotation gives one.
    for name in globals.root_items.clone() {
        let mut e = Elab::new(db, &globals, root, &name);
        e.lowering = false;
        match globals.get(&name) {
            Some(Global::Fn(f)) => {
                let args = generic_args(&mut e, &f.params);
                e.call(
                    Val::Fn(value::Callable::Decl {
                        decl: f.clone(),
                        env: None,
                    }),
                    args,
                    f.name.span,
                    f.name.span,
                );
            }
            Some(Global::Layer(l)) => {
                let args = generic_args(&mut e, &l.params);
                let inst = e.call(Val::LayerCtor(l.clone()), args, l.name.span, l.name.span);
                if let Val::Layer(inst) = &inst {
                    if let Some(Val::Fn(value::Callable::Decl { decl, env })) = inst.env.vars.get("forward").cloned() {
                        let args = generic_args(&mut e, &decl.params);
                        e.call(Val::Fn(value::Callable::Decl { decl, env }), args, l.name.span, l.name.span);
                    }
                }
            }
            Some(Global::Optimizer(o)) => {
                let mut env = Env::default();
                for p in &o.params {
                    let v = match &p.default {
                        Some(d) => e.eval(d, &mut env),
                        None => Val::Any,
                    };
                    env.vars.insert(p.name.name.clone(), v);
                }
                for n in ["param", "grad", "step"] {
                    env.vars.insert(
                        n.into(),
                        Val::Tensor(Tensor {
                            ty: TensorTy::unknown(),
                            ir: None,
                        }),
                    );
                }
                for s in &o.body.stmts {
                    if let crate::syntax::ast::Stmt::State { name, value, .. } = s {
                        let v = e.eval(value, &mut env);
                        env.vars.insert(name.name.clone(), v);
                    }
                }
                train::run_optimizer_body(&mut e, &o.body, &mut env);
            }
            _ => continue,
        }
        a.types.append(&mut e.types);
        a.diags.extend(e.diags);
    }
    for t in globals.trains.clone() {
        let errors = a.diags.errors_pushed;
        match train::plan(db, &globals, root, &t, &mut a.diags, &mut a.types) {
            Some(p) => a.plans.push(p),
            // A block that cannot run says why; it never just disappears.
            None if a.diags.errors_pushed == errors => {
                a.diags.push(
                    Diagnostic::error(
                        "E0504",
                        format!("the `train {}` block cannot be prepared", t.model.name),
                        t.model.span,
                        "no training step could be built for this block",
                    )
                    .with_note(
                        "the loss, the model's output or an optimizer state has no value to compute (it depends on something unknown)",
                    ),
                );
            }
            None => {}
        }
    }
    a.globals = globals;
    a
}

/// Arguments for checking a definition alone: unknown values, or tensors
/// with unknown shapes when the parameter is annotated as a tensor.
fn generic_args(e: &mut Elab, params: &[crate::syntax::ast::Param]) -> Vec<ArgVal> {
    params
        .iter()
        .filter(|p| p.default.is_none())
        .map(|p| {
            let val = match &p.ty {
                Some(TypeExpr::Tensor { dtype, .. }) => {
                    let dt = if dtype.as_ref().is_some_and(|d| d.name == "i32") {
                        crate::ir::DType::I32
                    } else {
                        crate::ir::DType::F32
                    };
                    Val::Tensor(Tensor {
                        ty: TensorTy { dtype: dt, shape: None },
                        ir: None,
                    })
                }
                _ => Val::Any,
            };
            let _ = &e;
            ArgVal {
                name: None,
                val,
                span: p.span,
            }
        })
        .collect()
}

/// `use NAME` must name a stdlib module (all are loaded already) or a file
/// the driver loaded.
fn check_uses(m: &Module, imported: &[(String, FileId, Module)], diags: &mut Diagnostics) {
    for item in &m.items {
        if let Item::Use(u) = item {
            let name = u.target.trim_end_matches(".nn");
            let name = name.strip_prefix("std.").unwrap_or(name);
            if !is_stdlib_module(&u.target) && !imported.iter().any(|(t, _, _)| *t == u.target) {
                let mut d = Diagnostic::error("E0108", format!("module `{}` not found", u.target), u.target_span, "no such module");
                if let Some(s) = crate::diag::suggest(name, STDLIB.iter().map(|(n, _)| *n)) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                } else {
                    d = d.with_help(format!(
                        "the stdlib modules are: {}",
                        STDLIB.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ));
                }
                diags.push(d);
            }
        }
    }
}

/// Lower the function `name` of a checked file for concrete argument
/// types: `(args...) -> result`, in training or evaluation mode (`None`:
/// neither, so code that branches on `training` has no IR). Used by tests
/// (gradient checks of stdlib functions) and tools.
pub fn lower_function(
    db: &SourceDb,
    root: FileId,
    module: &Module,
    stdlib: &'static [(FileId, Module)],
    name: &str,
    args: &[crate::ir::Type],
    training: Option<bool>,
) -> Result<crate::ir::Func, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut globals = Globals::default();
    globals.add_stdlib(stdlib, &mut diags);
    globals.add_module(module, true, &mut diags);
    let mut e = Elab::new(db, &globals, root, name);
    e.training = training;
    let f = e.lookup(
        &crate::syntax::ast::Ident {
            name: name.into(),
            span: Span::new(root, 0, 0),
        },
        &Env::default(),
    );
    let argv: Vec<ArgVal> = args
        .iter()
        .enumerate()
        .map(|(i, t)| ArgVal {
            name: None,
            val: e.param_tensor(format!("a{i}"), t),
            span: Span::new(root, 0, 0),
        })
        .collect();
    let out = e.call(f, argv, Span::new(root, 0, 0), Span::new(root, 0, 0));
    diags.extend(std::mem::take(&mut e.diags));
    match out {
        Val::Tensor(Tensor { ir: Some(v), .. }) if !diags.has_errors() => Ok(e.b.finish(&[v])),
        _ => Err(diags),
    }
}
