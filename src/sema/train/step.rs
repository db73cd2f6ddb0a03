//! One step of a `train` block elaborated in training mode, and the
//! evaluation-mode functions (validation loss, prediction, `sample =`).

use crate::base::{FileId, SourceDb, Span};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{self, DType, Dim, Func};
use crate::sema::elab::{ArgVal, Elab, ParamInfo};
use crate::sema::scope::{Global, Globals};
use crate::sema::value::{Env, OptimizerInst, Tensor, TensorTy, Val};
use crate::syntax::ast::*;
use std::rc::Rc;

/// What every step of one block shares.
pub(super) struct Context<'a> {
    pub db: &'a SourceDb,
    pub globals: &'a Globals,
    pub root: FileId,
    /// The model the block trains, bound to `model` in losses.
    pub target: Option<Rc<ModelDecl>>,
    pub input: ir::Type,
    pub label: ir::Type,
    /// The `label` keyword of a `csv` source, when the labels are class ids
    /// read from a named column (see `Elab::class_labels`).
    pub class_label_keyword: Option<Span>,
    pub seed: u64,
}

pub(super) enum StepBody<'a> {
    /// `loss = ...` of a block without steps.
    Loss(&'a Expr),
    /// `step NAME ... { let ...; loss = ...; every = 5 }`.
    Block(&'a Block),
}

pub(super) struct StepSource<'a> {
    pub name: String,
    pub optimizer: &'a Expr,
    /// `on MODEL`; `None` trains every parameter the loss uses.
    pub on: Option<&'a Ident>,
    pub body: StepBody<'a>,
    pub span: Span,
}

/// A step's loss over its own parameters, before the plan puts it over
/// the whole store.
pub(super) struct Elaborated {
    pub name: String,
    pub span: Span,
    pub loss_span: Span,
    /// `(x, y, key, params...) -> (loss, output, buffers'...)`, `params` in
    /// the order of `Elaborated::params`.
    pub loss: Func,
    pub params: Vec<ParamInfo>,
    /// Indices into `params` of the buffers written, in result order.
    pub writes: Vec<usize>,
    pub opt: Rc<OptimizerInst>,
    /// `on MODEL` and its span.
    pub on: Option<(String, Span)>,
    pub every: usize,
    /// The step's own `clip_norm = c`, which overrides the block's.
    pub clip_norm: Option<f64>,
    /// Values of `loss` made by ops with a zero derivative, and where the
    /// user asked for them (see `Elab::blockers`).
    pub blockers: Vec<(ir::Value, Span)>,
    /// The largest tensor of the forward pass and loss written in the
    /// user's file: (elements per sample, where).
    pub largest_value: Option<(u128, Span)>,
    /// Where the trained model's number of outputs is written.
    pub output_spans: Vec<Span>,
}

/// Where a step's random draws start: distinct per step and per run seed,
/// so a discriminator's dropout and a generator's noise never coincide.
fn draw_base(seed: u64, step: usize) -> u64 {
    seed.wrapping_mul(1_000_003) ^ ((step as u64 + 1) << 40)
}

/// The names every loss sees: `model`, `x`, `y`, `params`, `batch`.
fn loss_env(e: &mut Elab, cx: &Context, x: &Val, y: Val) -> (Env, Option<Val>) {
    let mut env = Env::default();
    let out = cx.target.as_ref().map(|m| {
        env.vars.insert("model".into(), Val::Model(m.clone()));
        let span = m.name.span;
        e.apply_model(
            m.clone(),
            vec![ArgVal {
                name: None,
                val: x.clone(),
                span,
            }],
            span,
        )
    });
    env.vars.insert("x".into(), x.clone());
    env.vars.insert("y".into(), y);
    let trainable: Vec<Val> = e
        .params
        .iter()
        .filter(|p| p.trainable)
        .map(|p| {
            Val::Tensor(Tensor {
                ty: TensorTy::f32(p.ty.shape.clone()),
                ir: Some(p.value),
            })
        })
        .collect();
    env.vars.insert("params".into(), Val::List(trainable));
    // The model's layers by name, so a loss can regularise some weights:
    // `1e-4 * l2(fc1.W)`.
    for inst in &e.instances {
        if !inst.name.contains('.') && !env.vars.contains_key(&inst.name) {
            env.vars.insert(inst.name.clone(), Val::Layer(inst.clone()));
        }
    }
    if let Some(Dim::Sym(b)) = cx.input.shape.first() {
        env.vars.insert(b.clone(), Val::Dim(b.clone()));
    }
    (env, out)
}

/// The loss value as a scalar f32 tensor, or a report of why not.
fn scalar_loss(e: &mut Elab, db: &SourceDb, loss: &Val, span: Span) -> Option<Tensor> {
    match loss {
        Val::Tensor(t) if t.ty.shape.as_ref().is_some_and(|s| s.is_empty()) => {
            if t.ty.dtype != DType::F32 {
                e.report(Diagnostic::error(
                    "E0401",
                    "the loss is not differentiable: it is an integer",
                    span,
                    "i32 here",
                ));
                return None;
            }
            Some(t.clone())
        }
        Val::Tensor(t) => {
            e.report(
                Diagnostic::error(
                    "E0304",
                    format!("the loss must be a scalar, found {}", t.ty),
                    span,
                    format!("this has shape {}", t.ty),
                )
                .with_fix(
                    "reduce it to one number: the mean over the batch",
                    crate::diag::Fix::replace(span, format!("mean({})", db.text(span))),
                ),
            );
            None
        }
        Val::Error => None,
        other => {
            e.report(Diagnostic::error(
                "E0304",
                format!("the loss must be a scalar tensor, found {}", other.kind()),
                span,
                "not a tensor",
            ));
            None
        }
    }
}

/// `optimizer = adam(lr: 0.001)` or `with sgd`, bound.
fn optimizer(e: &mut Elab, expr: &Expr) -> Option<Rc<OptimizerInst>> {
    let mut oenv = Env::default();
    match e.eval(expr, &mut oenv) {
        Val::Optimizer(o) => Some(o),
        Val::OptimizerCtor(decl) => {
            // `optimizer = sgd` with every hyperparameter defaulted.
            let name = decl.name.name.clone();
            let params = decl.params.clone();
            e.bind(&params, vec![], &name, expr.span, &Env::default()).map(|env| {
                Rc::new(OptimizerInst {
                    decl,
                    args: env.vars.into_iter().collect(),
                    origins: env.origins,
                })
            })
        }
        Val::Error => None,
        other => {
            e.report(
                Diagnostic::error(
                    "E0109",
                    format!("an optimizer is needed here, found {}", other.kind()),
                    expr.span,
                    "not an optimizer",
                )
                .with_help("e.g. `adam(lr: 0.001)`"),
            );
            None
        }
    }
}

/// What a `step` block sets besides its `let`s.
struct StepSettings {
    loss: Val,
    loss_span: Span,
    every: usize,
    clip_norm: Option<f64>,
}

/// The statements of a `step` block: `let`s, `loss = ...`, `every = k` and `clip_norm = c`.
fn step_block(e: &mut Elab, b: &Block, env: &mut Env, at: Span) -> Option<StepSettings> {
    let mut loss = None;
    let mut every = 1;
    let mut clip_norm = None;
    for st in &b.stmts {
        match st {
            Stmt::Let { name, value, .. } => {
                let v = e.eval_let(name, value, env);
                env.vars.insert(name.name.clone(), v);
            }
            Stmt::Assign {
                target,
                op: AssignOp::Set,
                value,
                ..
            } if target.name == "loss" => loss = Some((e.eval(value, env), value.span)),
            Stmt::Assign {
                target,
                op: AssignOp::Set,
                value,
                ..
            } if target.name == "every" => match value.kind {
                ExprKind::Int(k) if k >= 1 => every = k as usize,
                _ => {
                    e.report(Diagnostic::error(
                        "E0203",
                        "`every` must be an integer of at least 1",
                        value.span,
                        "not a valid value",
                    ));
                    return None;
                }
            },
            Stmt::Assign {
                target,
                op: AssignOp::Set,
                value,
                ..
            } if target.name == "clip_norm" => {
                let mut diags = Diagnostics::default();
                clip_norm = super::settings::clip_norm(value, &mut diags);
                if clip_norm.is_none() {
                    for d in diags.items {
                        e.report(d);
                    }
                    return None;
                }
            }
            Stmt::Assign { target, value, .. } => {
                e.report(
                    Diagnostic::error(
                        "E0113",
                        format!("`{}` is not a step setting", target.name),
                        target.span.to(value.span),
                        "not a step setting",
                    )
                    .with_help("a step holds `let`s, `loss = ...`, `every = k` and `clip_norm = c`; the block's other settings go outside its steps"),
                );
                return None;
            }
            other => {
                e.report(
                    Diagnostic::error(
                        "E0113",
                        "a step holds `let`s, `loss = ...`, `every = k` and `clip_norm = c`",
                        other.span(),
                        "not allowed in a step",
                    )
                    .with_help("e.g. `step generator with adam(lr: 2e-4) on G { loss = ... }`"),
                );
                return None;
            }
        }
    }
    match loss {
        Some((loss, loss_span)) => Some(StepSettings {
            loss,
            loss_span,
            every,
            clip_norm,
        }),
        None => {
            e.report(
                Diagnostic::error("E0113", "this step has no `loss = ...`", at, "no loss in this step")
                    .with_help("add e.g. `loss = binary_cross_entropy(D(x), 1)`"),
            );
            None
        }
    }
}

/// Elaborate step `index` in training mode. `types` collects the type of
/// each expression for hover (from the first step only, to avoid repeats).
pub(super) fn elaborate(
    cx: &Context,
    src: &StepSource,
    index: usize,
    diags: &mut Diagnostics,
    types: Option<&mut Vec<(Span, String)>>,
) -> Option<Elaborated> {
    let on = match src.on {
        Some(id) => match cx.globals.get(&id.name) {
            Some(Global::Model(_)) => Some((id.name.clone(), id.span)),
            Some(g) => {
                diags.push(Diagnostic::error(
                    "E0109",
                    format!("`on` names the model a step trains, but `{}` is a {}", id.name, g.kind()),
                    id.span,
                    format!("this is a {}", g.kind()),
                ));
                return None;
            }
            None => {
                diags.push(super::unknown_model(cx.globals, id));
                return None;
            }
        },
        None => None,
    };
    let mut e = Elab::new(cx.db, cx.globals, cx.root, "loss");
    e.training = Some(true);
    e.seed = draw_base(cx.seed, index);
    e.trained_model = cx.target.as_ref().map(|m| m.name.name.clone());
    let x = e.param_tensor("x", &cx.input);
    let y = e.param_tensor("y", &cx.label);
    e.note_class_labels(&y, cx.class_label_keyword);
    let key = e.b.param("key", ir::Type::scalar());
    e.rng_key = Some(key);
    let (mut env, out) = loss_env(&mut e, cx, &x, y);
    let (loss, loss_span, every, clip_norm) = match src.body {
        StepBody::Loss(expr) => (e.eval(expr, &mut env), expr.span, 1, None),
        StepBody::Block(b) => match step_block(&mut e, b, &mut env, src.span) {
            Some(r) => (r.loss, r.loss_span, r.every, r.clip_norm),
            None => {
                diags.extend(std::mem::take(&mut e.diags));
                return None;
            }
        },
    };
    let loss = scalar_loss(&mut e, cx.db, &loss, loss_span);
    let opt = optimizer(&mut e, src.optimizer);
    if let Some(types) = types {
        types.append(&mut e.types);
    }
    let params = std::mem::take(&mut e.params);
    let writes = std::mem::take(&mut e.buffer_writes);
    let blockers = std::mem::take(&mut e.blockers);
    let largest_value = e.largest;
    let output_spans = std::mem::take(&mut e.output_spans);
    let has_errors = e.diags.has_errors();
    diags.extend(std::mem::take(&mut e.diags));
    let (Some(loss), Some(opt)) = (loss, opt) else { return None };
    if has_errors {
        return None;
    }
    let loss_v = loss.ir?;
    let out_v = match out {
        Some(Val::Tensor(t)) => t.ir?,
        Some(_) => return None,
        // A block of steps with no model: the loss stands in for the output.
        None => loss_v,
    };
    let mut results = vec![loss_v, out_v];
    let mut written = vec![];
    for w in &writes {
        let Some(i) = params.iter().position(|p| p.value == w.buffer) else {
            continue;
        };
        // The last write of a buffer in a step is the one kept.
        if let Some(k) = written.iter().position(|&j| j == i) {
            written.remove(k);
            results.remove(2 + k);
        }
        written.push(i);
        results.push(w.value);
    }
    let loss = e.b.finish(&results);
    debug_assert!(ir::verify(&loss).is_ok(), "{:?}", ir::verify(&loss));
    Some(Elaborated {
        name: src.name.clone(),
        span: src.span,
        loss_span,
        loss,
        params,
        writes: written,
        opt,
        on,
        every,
        clip_norm,
        blockers,
        largest_value,
        output_spans,
    })
}

/// The evaluation-mode functions: `(x, y, params...) -> (loss, output)`
/// and `(x, params...) -> output`, each with its own parameters.
pub(super) struct EvalFuncs {
    pub loss: (Func, Vec<ParamInfo>),
    pub predict: (Func, Vec<ParamInfo>),
    /// The calls inlined into `loss`, for tools that show it as written.
    pub calls: Vec<crate::plan::CallRecord>,
    /// The values of `loss` the source names (`Elab::value_names`).
    pub value_names: Vec<(crate::ir::Value, String)>,
}

pub(super) fn evaluation(cx: &Context, loss: &Expr, diags: &mut Diagnostics) -> Option<EvalFuncs> {
    let mut e = Elab::new(cx.db, cx.globals, cx.root, "loss");
    e.training = Some(false);
    e.trained_model = cx.target.as_ref().map(|m| m.name.name.clone());
    let x = e.param_tensor("x", &cx.input);
    let y = e.param_tensor("y", &cx.label);
    e.note_class_labels(&y, cx.class_label_keyword);
    let (mut env, out) = loss_env(&mut e, cx, &x, y);
    let l = e.eval(loss, &mut env);
    let l = scalar_loss(&mut e, cx.db, &l, loss.span);
    let has_errors = e.diags.has_errors();
    diags.extend(std::mem::take(&mut e.diags));
    let (Some(l), Some(Val::Tensor(out))) = (l, out) else { return None };
    if has_errors {
        return None;
    }
    let params = std::mem::take(&mut e.params);
    let calls = std::mem::take(&mut e.calls);
    let value_names = std::mem::take(&mut e.value_names);
    let loss_f = e.b.finish(&[l.ir?, out.ir?]);

    let mut p = Elab::new(cx.db, cx.globals, cx.root, "predict");
    p.training = Some(false);
    p.trained_model = cx.target.as_ref().map(|m| m.name.name.clone());
    let x = p.param_tensor("x", &cx.input);
    let m = cx.target.clone()?;
    let span = m.name.span;
    let out = p.apply_model(m, vec![ArgVal { name: None, val: x, span }], span);
    let Val::Tensor(pt) = out else { return None };
    let pparams = std::mem::take(&mut p.params);
    let predict = p.b.finish(&[pt.ir?]);
    Some(EvalFuncs {
        loss: (loss_f, params),
        predict: (predict, pparams),
        calls,
        value_names,
    })
}

/// Model `m` alone in evaluation mode, `(input, params...) -> output`, its
/// parameters named as the steps name them: what a block of steps exports
/// (a GAN's generator), since it has no single model to predict with.
pub(super) fn model_predict(cx: &Context, m: &Rc<ModelDecl>, diags: &mut Diagnostics) -> Option<(Func, Vec<ParamInfo>)> {
    let mut p = Elab::new(cx.db, cx.globals, cx.root, "predict");
    p.training = Some(false);
    p.trained_model = cx.target.as_ref().map(|m| m.name.name.clone());
    let inputs = p.model_inputs(m);
    let (input, has_errors) = match inputs.as_deref() {
        Some([(_, ty)]) => (Some(ty.clone()), false),
        _ => (None, true),
    };
    let x = p.param_tensor("x", &input?);
    let span = m.name.span;
    let out = p.apply_model(m.clone(), vec![ArgVal { name: None, val: x, span }], span);
    let errors = has_errors || p.diags.has_errors();
    diags.extend(std::mem::take(&mut p.diags));
    let Val::Tensor(t) = out else { return None };
    if errors {
        return None;
    }
    let params = std::mem::take(&mut p.params);
    Some((p.b.finish(&[t.ir?]), params))
}

/// `sample = G(noise([64, 100]))`: `(params...) -> images` in evaluation mode.
pub(super) fn sample(cx: &Context, expr: &Expr, diags: &mut Diagnostics) -> Option<(Func, Vec<ParamInfo>)> {
    let mut e = Elab::new(cx.db, cx.globals, cx.root, "sample");
    e.training = Some(false);
    e.trained_model = cx.target.as_ref().map(|m| m.name.name.clone());
    e.seed = draw_base(cx.seed, usize::MAX >> 24);
    let mut env = Env::default();
    let v = e.eval(expr, &mut env);
    let t = match v {
        Val::Tensor(t)
            if t.ty
                .shape
                .as_ref()
                .is_some_and(|s| s.len() >= 2 && s.iter().all(|d| d.known().is_some())) =>
        {
            t
        }
        Val::Error => {
            diags.extend(std::mem::take(&mut e.diags));
            return None;
        }
        other => {
            e.report(
                Diagnostic::error(
                    "E0203",
                    format!("`sample` must give a batch of images of known size, found {}", other.kind()),
                    expr.span,
                    "not a batch of images",
                )
                .with_help("e.g. `sample = G(noise([64, 100]))`"),
            );
            diags.extend(std::mem::take(&mut e.diags));
            return None;
        }
    };
    let has_errors = e.diags.has_errors();
    diags.extend(std::mem::take(&mut e.diags));
    if has_errors {
        return None;
    }
    let params = std::mem::take(&mut e.params);
    Some((e.b.finish(&[t.ir?]), params))
}
