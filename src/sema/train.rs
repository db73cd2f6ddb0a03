//! `train` blocks: settings, the data source, and the IR functions a run
//! needs (parameter initialisation, loss, prediction, optimizer updates).

use super::elab::{ArgVal, Elab, ParamInfo};
use super::scope::{Global, Globals};
use super::value::{Callable, Env, OptimizerInst, Tensor, TensorTy, Val};
use crate::base::{FileId, SourceDb, Span};
use crate::diag::{suggest, Diagnostic, Diagnostics};
use crate::ir::{self, DType, Dim, Func};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

/// Where the training data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// The four MNIST IDX files in a directory.
    Mnist { dir: String },
    /// A CSV file: features and a label column, which holds class ids, or
    /// regression targets with `target:` (`regression`).
    Csv {
        path: String,
        label: CsvLabel,
        scale: Option<f64>,
        regression: bool,
    },
    /// An IDX image file and an IDX label file.
    Idx { images: String, labels: String },
    /// Small tensors written in the file (logic gates).
    Inline { x: Vec<Vec<f64>>, y: Vec<Vec<f64>> },
}

/// The label column of a CSV file: `label: 64` (negative counts from the
/// end) or `label: "species"` (a header name).
#[derive(Clone, Debug, PartialEq)]
pub enum CsvLabel {
    Index(i64),
    Name(String),
}

#[derive(Clone, Debug)]
pub struct DataSpec {
    pub source: DataSource,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub epochs: usize,
    pub batch_size: usize,
    pub validation: f64,
    pub test: f64,
    pub metrics: Vec<String>,
    pub seed: u64,
    /// `early_stop = patience(3, monitor: val_loss)`.
    pub early_stop: Option<EarlyStop>,
    /// `schedule = cosine()`: how the learning rate changes over the run.
    pub schedule: Schedule,
    /// `warmup = 500`: steps of linear learning-rate warm-up before the schedule.
    pub warmup: usize,
    /// `standardize = true`: scale every feature to mean 0 and variance 1,
    /// with statistics of the training split.
    pub standardize: bool,
}

/// Stop when `monitor` has not improved for `patience` epochs, and keep the
/// weights of the best epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStop {
    pub patience: usize,
    /// `val_loss`, `val_accuracy`, `loss`, `accuracy`, or another metric with
    /// an optional `val_` prefix. Losses and errors improve downwards.
    pub monitor: String,
}

/// A learning-rate schedule: the factor applied to the optimizer's `lr`.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Multiply by `factor` every `every` epochs.
    StepDecay {
        every: usize,
        factor: f64,
    },
    /// Multiply by `rate` every epoch.
    Exponential {
        rate: f64,
    },
    /// Half a cosine from `lr` down to `min_lr` over the whole run.
    Cosine {
        min_lr: f64,
    },
    /// Triangle waves between `min_lr` and `lr`, `period` epochs each.
    Cyclic {
        min_lr: f64,
        period: usize,
    },
    /// Up from `lr / 25` to `max_lr` over the first 30 % of steps, then down
    /// to `lr / 1e4` (Smith's one-cycle policy).
    OneCycle {
        max_lr: f64,
    },
}

#[derive(Clone, Debug)]
pub struct ParamMeta {
    pub name: String,
    pub ty: ir::Type,
    pub trainable: bool,
}

/// Everything a run needs, as IR functions over named values.
///
/// - `init() -> (params..., states...)`
/// - `loss(x, y, params...) -> (loss, output)` (params in `params` order)
/// - `predict(x, params...) -> output`
/// - `updates[i](param, grad, step, lr, states_i...) -> (param', states_i'...)`
#[derive(Clone, Debug)]
pub struct TrainPlan {
    pub model: String,
    pub data: DataSpec,
    pub settings: Settings,
    pub input: ir::Type,
    pub label: ir::Type,
    pub params: Vec<ParamMeta>,
    /// Optimizer state per trainable parameter: (param index, state names, types).
    pub states: Vec<(usize, Vec<(String, ir::Type)>)>,
    pub init: Func,
    pub loss: Func,
    /// The calls inlined into `loss` (layers, activations, the loss
    /// function), for tools that show it as written (`nnc explain --grad`).
    pub loss_calls: Vec<super::value::CallRecord>,
    pub predict: Func,
    pub updates: Vec<(usize, Func)>,
    pub optimizer: String,
    /// The optimizer's `lr`, a runtime input of the updates (so schedules
    /// can change it); `None` when the optimizer has no `lr`.
    pub lr: Option<f64>,
    pub span: Span,
    /// Where the model's number of outputs is written (its declared result
    /// and its last layer), for fixes that change it.
    pub output_spans: Vec<Span>,
    /// The declared result of the model.
    pub output_decl: Option<Span>,
    /// The largest tensor of the forward pass and loss written in the
    /// user's file: (elements per sample, where).
    pub largest_value: Option<(u128, Span)>,
    /// Values of `loss` made by ops with a zero derivative, and where the
    /// user asked for them (see `Elab::blockers`).
    pub blockers: Vec<(ir::Value, Span)>,
}

/// The settings of a `train` block (the language reference lists each).
pub const FIELDS: &[&str] = &[
    "data",
    "loss",
    "optimizer",
    "epochs",
    "batch_size",
    "validation",
    "test",
    "metrics",
    "seed",
    "early_stop",
    "schedule",
    "warmup",
    "standardize",
    // Read by `nnc tune` (`teach::search::from_train_block`), not by training.
    "search",
];
/// The data sources of `data =` with their parameters (the language
/// reference lists each).
pub const DATA_SOURCES: &[(&str, &[&str])] = &[
    ("mnist", &["dir"]),
    ("csv", &["path", "label", "scale", "target"]),
    ("idx", &["images", "labels"]),
    ("tensors", &["x", "y"]),
];
pub const METRICS: &[&str] = &["accuracy", "precision", "recall", "f1", "mse", "mae", "r2"];

pub fn plan(
    db: &SourceDb,
    globals: &Globals,
    root: FileId,
    t: &TrainDecl,
    diags: &mut Diagnostics,
    types: &mut Vec<(Span, String)>,
) -> Option<TrainPlan> {
    let model = match globals.get(&t.model.name) {
        Some(Global::Model(m)) => m.clone(),
        Some(g) => {
            diags.push(Diagnostic::error(
                "E0109",
                format!("`train` needs a model, but `{}` is a {}", t.model.name, g.kind()),
                t.model.span,
                format!("this is a {}", g.kind()),
            ));
            return None;
        }
        None => {
            let mut d = Diagnostic::error(
                "E0101",
                format!("unknown model `{}`", t.model.name),
                t.model.span,
                "no model with this name",
            );
            let models: Vec<String> = globals
                .iter()
                .filter(|(_, g, _)| matches!(g, Global::Model(_)))
                .map(|(n, _, _)| n.clone())
                .collect();
            if let Some(s) = suggest(&t.model.name, models.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            return None;
        }
    };
    let mut fields: HashMap<&str, &TrainField> = HashMap::new();
    let mut ok = true;
    for f in &t.fields {
        if !FIELDS.contains(&f.name.name.as_str()) {
            let mut d = Diagnostic::error(
                "E0107",
                format!("unknown training setting `{}`", f.name.name),
                f.name.span,
                "not a setting",
            );
            if let Some(s) = suggest(&f.name.name, FIELDS.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            } else {
                d = d.with_help(format!("settings are: {}", FIELDS.join(", ")));
            }
            diags.push(d);
            ok = false;
        } else if fields.insert(f.name.name.as_str(), f).is_some() {
            diags.push(Diagnostic::error(
                "E0102",
                format!("setting `{}` is given twice", f.name.name),
                f.name.span,
                "given again here",
            ));
            ok = false;
        }
    }
    for req in ["data", "loss", "optimizer"] {
        if !fields.contains_key(req) {
            diags.push(
                Diagnostic::error(
                    "E0107",
                    format!("`train {}` is missing the `{req}` setting", t.model.name),
                    t.model.span,
                    format!("no `{req} = ...` in this block"),
                )
                .with_help(match req {
                    "data" => "add e.g. `data = csv(\"data/digits.csv\", label: 64)`",
                    "loss" => "add e.g. `loss = cross_entropy(model(x), y)`",
                    _ => "add e.g. `optimizer = adam(lr: 0.001)`",
                }),
            );
            ok = false;
        }
    }
    let settings = settings(&fields, diags)?;
    let data = fields.get("data").and_then(|f| data_source(&f.value, diags));
    if !ok {
        return None;
    }
    let data = data?;

    // ---- the loss function: (x, y, params...) -> (loss, output) ----------
    let mut e = Elab::new(db, globals, root, "loss");
    e.trained_model = Some(model.name.name.clone());
    let inputs = e.model_inputs(&model);
    let Some(inputs) = inputs else {
        diags.extend(std::mem::take(&mut e.diags));
        return None;
    };
    if inputs.len() != 1 {
        diags.push(Diagnostic::error(
            "E0501",
            "training supports models with exactly one input for now",
            model.name.span,
            format!("this model has {} inputs", inputs.len()),
        ));
        return None;
    }
    let input = inputs[0].1.clone();
    let batch = input.shape.first().cloned().unwrap_or(Dim::Known(1));
    let label = label_type(&data.source, &batch);
    let x = e.param_tensor("x", &input);
    let y = e.param_tensor("y", &label);
    let out = e.apply_model(
        model.clone(),
        vec![ArgVal {
            name: None,
            val: x.clone(),
            span: t.model.span,
        }],
        t.model.span,
    );
    let mut env = Env::default();
    env.vars.insert("model".into(), Val::Model(model.clone()));
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
    let loss_field = fields["loss"];
    let loss = e.eval(&loss_field.value, &mut env);
    let loss_t = match &loss {
        Val::Tensor(t) if t.ty.shape.as_ref().is_some_and(|s| s.is_empty()) => Some(t.clone()),
        Val::Tensor(t) => {
            e.report(
                Diagnostic::error(
                    "E0304",
                    format!("the loss must be a scalar, found {}", t.ty),
                    loss_field.value.span,
                    format!("this has shape {}", t.ty),
                )
                .with_fix(
                    "reduce it to one number: the mean over the batch",
                    crate::diag::Fix::replace(loss_field.value.span, format!("mean({})", db.text(loss_field.value.span))),
                ),
            );
            None
        }
        Val::Error => None,
        other => {
            e.report(Diagnostic::error(
                "E0304",
                format!("the loss must be a scalar tensor, found {}", other.kind()),
                loss_field.value.span,
                "not a tensor",
            ));
            None
        }
    };
    let out_t = match out {
        Val::Tensor(t) => Some(t),
        _ => None,
    };
    if loss_t.as_ref().is_some_and(|l| l.ty.dtype != DType::F32) {
        e.report(Diagnostic::error(
            "E0401",
            "the loss is not differentiable: it is an integer",
            loss_field.value.span,
            "i32 here",
        ));
    }

    // ---- the optimizer ----------------------------------------------------
    let opt_field = fields["optimizer"];
    let mut oenv = Env::default();
    let opt = match e.eval(&opt_field.value, &mut oenv) {
        Val::Optimizer(o) => Some(o),
        Val::OptimizerCtor(decl) => {
            // `optimizer = sgd` with every hyperparameter defaulted.
            let name = decl.name.name.clone();
            let params = decl.params.clone();
            e.bind(&params, vec![], &name, opt_field.value.span, &Env::default()).map(|env| {
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
                    format!("`optimizer =` needs an optimizer, found {}", other.kind()),
                    opt_field.value.span,
                    "not an optimizer",
                )
                .with_help("e.g. `optimizer = adam(lr: 0.001)`"),
            );
            None
        }
    };
    types.append(&mut e.types);
    let output_spans = std::mem::take(&mut e.output_spans);
    let largest_value = e.largest;
    let blockers = std::mem::take(&mut e.blockers);
    let params_info = std::mem::take(&mut e.params);
    let loss_diags = std::mem::take(&mut e.diags);
    let has_errors = loss_diags.has_errors();
    diags.extend(loss_diags);
    let (Some(loss_t), Some(out_t), Some(opt)) = (loss_t, out_t, opt) else {
        return None;
    };
    if has_errors {
        return None;
    }
    let loss_calls = std::mem::take(&mut e.calls);
    let loss_func = e.b.finish(&[loss_t.ir?, out_t.ir?]);
    debug_assert!(ir::verify(&loss_func).is_ok(), "{:?}", ir::verify(&loss_func));

    // ---- prediction: (x, params...) -> output -----------------------------
    let mut p = Elab::new(db, globals, root, "predict");
    let x = p.param_tensor("x", &input);
    let out = p.apply_model(
        model.clone(),
        vec![ArgVal {
            name: None,
            val: x,
            span: t.model.span,
        }],
        t.model.span,
    );
    let Val::Tensor(pt) = out else { return None };
    let predict = p.b.finish(&[pt.ir?]);

    // ---- initialisation and optimizer updates ----------------------------
    let mut init = Elab::new(db, globals, root, "init");
    init.seed = settings.seed.wrapping_mul(1_000_003);
    let mut init_values = vec![];
    for info in &params_info {
        // An initializer's errors are the reason the block cannot run.
        let Some(v) = init_param(&mut init, info) else {
            diags.extend(std::mem::take(&mut init.diags));
            return None;
        };
        init_values.push(v);
    }
    let mut states = vec![];
    let mut updates = vec![];
    let mut state_values = vec![];
    for (i, info) in params_info.iter().enumerate() {
        if !info.trainable {
            continue;
        }
        let Some((names, svals)) = optimizer_states(&mut init, &opt, &info.ty, init_values[i]) else {
            diags.extend(std::mem::take(&mut init.diags));
            return None;
        };
        let update = optimizer_update(db, globals, root, &opt, info, &names, diags)?;
        states.push((i, names.iter().map(|n| (format!("{}/{}", info.name, n.0), n.1.clone())).collect()));
        state_values.extend(svals);
        updates.push((i, update));
    }
    if init.diags.has_errors() {
        diags.extend(std::mem::take(&mut init.diags));
        return None;
    }
    let mut results = init_values.clone();
    results.extend(state_values);
    let init_func = init.b.finish(&results);

    let lr = opt.args.iter().find(|(k, _)| k == "lr").and_then(|(_, v)| match v {
        Val::Float(f) => Some(*f),
        Val::Int(i) => Some(*i as f64),
        _ => None,
    });
    if let Some(rate) = lr.filter(|r| *r <= 0.0) {
        // A negative rate climbs the loss; zero never moves.
        let at = opt.origins.get("lr").copied().unwrap_or(opt_field.value.span);
        let mut d = Diagnostic::error(
            "E0203",
            format!("the learning rate must be positive, found {rate}"),
            at,
            if rate < 0.0 {
                "a negative rate makes the loss grow"
            } else {
                "a zero rate never changes the weights"
            },
        );
        if rate < 0.0 && at.file == root {
            d = d.with_fix(format!("write `{}`", -rate), crate::diag::Fix::replace(at, format!("{}", -rate)));
        }
        diags.push(d);
        return None;
    }
    if lr.is_none() && (settings.schedule != Schedule::Constant || settings.warmup > 0) {
        diags.push(
            Diagnostic::error(
                "E0203",
                format!(
                    "a learning-rate schedule needs an optimizer with a numeric `lr`; `{}` has none",
                    opt.decl.name.name
                ),
                opt_field.value.span,
                "no `lr` here",
            )
            .with_help("give the optimizer an `lr` parameter, or remove `schedule` and `warmup`"),
        );
        return None;
    }
    Some(TrainPlan {
        model: model.name.name.clone(),
        data,
        settings,
        input,
        label,
        params: params_info
            .iter()
            .map(|p| ParamMeta {
                name: p.name.clone(),
                ty: p.ty.clone(),
                trainable: p.trainable,
            })
            .collect(),
        states,
        init: init_func,
        loss: loss_func,
        loss_calls,
        predict,
        updates,
        optimizer: opt.decl.name.name.clone(),
        lr,
        span: t.span,
        output_spans,
        output_decl: model.ret.as_ref().map(|r| r.span()),
        largest_value,
        blockers,
    })
}

fn label_type(source: &DataSource, batch: &Dim) -> ir::Type {
    match source {
        DataSource::Inline { y, .. } => {
            let cols = y.first().map_or(1, Vec::len);
            ir::Type::f32(vec![batch.clone(), Dim::Known(cols)])
        }
        // One number per sample, like a class label.
        DataSource::Csv { regression: true, .. } => ir::Type::f32(vec![batch.clone()]),
        _ => ir::Type {
            dtype: DType::I32,
            shape: vec![batch.clone()],
        },
    }
}

/// Evaluate a parameter's initializer with its declared shape passed as
/// the `shape` argument: `glorot_uniform()` means `glorot_uniform([in, out])`.
fn init_param(e: &mut Elab, info: &ParamInfo) -> Option<ir::Value> {
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

/// Names and types of an optimizer's states for one parameter, and their initial values.
type StateInit = (Vec<(String, ir::Type)>, Vec<ir::Value>);

/// The optimizer's `state` declarations for one parameter, evaluated in the
/// init function with `param` bound to the parameter's initial value.
fn optimizer_states(e: &mut Elab, opt: &OptimizerInst, ty: &ir::Type, param: ir::Value) -> Option<StateInit> {
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
fn optimizer_update(
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
                        (Some(os), Some(ns)) if os != ns => match super::shape::broadcast(ns, os) {
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

fn settings(fields: &HashMap<&str, &TrainField>, diags: &mut Diagnostics) -> Option<Settings> {
    let mut s = Settings {
        epochs: 10,
        batch_size: 32,
        validation: 0.0,
        test: 0.0,
        metrics: vec!["accuracy".into()],
        seed: 0,
        early_stop: None,
        schedule: Schedule::Constant,
        warmup: 0,
        standardize: false,
    };
    let mut ok = true;
    let int = |name: &str, diags: &mut Diagnostics, min: i64| -> Option<Option<i64>> {
        let Some(f) = fields.get(name) else { return Some(None) };
        match f.value.kind {
            ExprKind::Int(i) if i >= min => Some(Some(i)),
            _ => {
                diags.push(Diagnostic::error(
                    "E0203",
                    format!("`{name}` must be an integer of at least {min}"),
                    f.value.span,
                    "not a valid value",
                ));
                None
            }
        }
    };
    let frac = |name: &str, diags: &mut Diagnostics| -> Option<Option<f64>> {
        let Some(f) = fields.get(name) else { return Some(None) };
        match f.value.kind {
            ExprKind::Float(x) if (0.0..1.0).contains(&x) => Some(Some(x)),
            ExprKind::Int(0) => Some(Some(0.0)),
            ref k => {
                let d = Diagnostic::error(
                    "E0203",
                    format!("`{name}` must be a fraction in [0, 1)"),
                    f.value.span,
                    "not a fraction",
                );
                // `validation = 20` meant 20 %.
                let percent = match k {
                    ExprKind::Int(i) if (1..100).contains(i) => Some(*i as f64),
                    ExprKind::Float(x) if (1.0..100.0).contains(x) => Some(*x),
                    _ => None,
                };
                diags.push(match percent {
                    Some(p) => d.with_fix(
                        format!("a share is a fraction: {p} % is `{}`", p / 100.0),
                        crate::diag::Fix::replace(f.value.span, format!("{}", p / 100.0)),
                    ),
                    None => d.with_help(format!("e.g. `{name} = 0.2`")),
                });
                None
            }
        }
    };
    match int("epochs", diags, 1) {
        Some(v) => s.epochs = v.map_or(s.epochs, |v| v as usize),
        None => ok = false,
    }
    match int("batch_size", diags, 1) {
        Some(v) => s.batch_size = v.map_or(s.batch_size, |v| v as usize),
        None => ok = false,
    }
    match int("seed", diags, 0) {
        Some(v) => s.seed = v.map_or(s.seed, |v| v as u64),
        None => ok = false,
    }
    match int("warmup", diags, 0) {
        Some(v) => s.warmup = v.map_or(0, |v| v as usize),
        None => ok = false,
    }
    if let Some(f) = fields.get("standardize") {
        match f.value.kind {
            ExprKind::Bool(b) => s.standardize = b,
            _ => {
                diags.push(Diagnostic::error(
                    "E0203",
                    "`standardize` must be `true` or `false`",
                    f.value.span,
                    "not a boolean",
                ));
                ok = false;
            }
        }
    }
    if let Some(f) = fields.get("early_stop") {
        match early_stop(&f.value, diags) {
            Some(e) => s.early_stop = Some(e),
            None => ok = false,
        }
    }
    if let Some(f) = fields.get("schedule") {
        match schedule(&f.value, diags) {
            Some(v) => s.schedule = v,
            None => ok = false,
        }
    }
    match frac("validation", diags) {
        Some(v) => s.validation = v.unwrap_or(0.0),
        None => ok = false,
    }
    match frac("test", diags) {
        Some(v) => s.test = v.unwrap_or(0.0),
        None => ok = false,
    }
    // Validation comes out of what the test split leaves: together they
    // must leave something to train on.
    if ok && s.validation + s.test >= 1.0 && s.validation > 0.0 {
        if let (Some(v), Some(t)) = (fields.get("validation"), fields.get("test")) {
            diags.push(
                Diagnostic::error(
                    "E0203",
                    format!(
                        "`validation` and `test` take {} of the data, leaving nothing to train on",
                        s.validation + s.test
                    ),
                    t.value.span,
                    "too large together",
                )
                .with_secondary(v.value.span, "and this")
                .with_help("the shares of the held-out splits must add up to less than 1, e.g. `validation = 0.2` and `test = 0.2`"),
            );
            ok = false;
        }
    }
    if let Some(f) = fields.get("metrics") {
        match &f.value.kind {
            ExprKind::List(items) => {
                s.metrics.clear();
                for it in items {
                    match &it.kind {
                        ExprKind::Name(n) if METRICS.contains(&n.name.as_str()) => s.metrics.push(n.name.clone()),
                        _ => {
                            let text = if let ExprKind::Name(n) = &it.kind {
                                n.name.clone()
                            } else {
                                String::new()
                            };
                            let mut d = Diagnostic::error("E0101", "unknown metric", it.span, "not a metric")
                                .with_help(format!("metrics are: {}", METRICS.join(", ")));
                            if let Some(sug) = suggest(&text, METRICS.iter().copied()) {
                                d = d.with_help(format!("did you mean `{sug}`?"));
                            }
                            diags.push(d);
                            ok = false;
                        }
                    }
                }
            }
            _ => {
                diags.push(Diagnostic::error(
                    "E0203",
                    "`metrics` must be a list, like `[accuracy]`",
                    f.value.span,
                    "not a list",
                ));
                ok = false;
            }
        }
    }
    ok.then_some(s)
}

fn str_arg(a: &Arg, diags: &mut Diagnostics, what: &str) -> Option<String> {
    match &a.value.kind {
        ExprKind::Str(s) => Some(s.clone()),
        _ => {
            diags.push(Diagnostic::error(
                "E0203",
                format!("{what} must be a string"),
                a.value.span,
                "not a string",
            ));
            None
        }
    }
}

fn matrix(e: &Expr, diags: &mut Diagnostics) -> Option<Vec<Vec<f64>>> {
    let num = |x: &Expr| match x.kind {
        ExprKind::Int(i) => Some(i as f64),
        ExprKind::Float(f) => Some(f),
        _ => None,
    };
    let ExprKind::List(rows) = &e.kind else {
        diags.push(Diagnostic::error(
            "E0203",
            "expected a list of rows, like `[[0, 1], [1, 0]]`",
            e.span,
            "not a list",
        ));
        return None;
    };
    let mut out = vec![];
    for r in rows {
        let row = match &r.kind {
            ExprKind::List(items) => items.iter().map(num).collect::<Option<Vec<f64>>>(),
            _ => num(r).map(|x| vec![x]),
        };
        let Some(row) = row else {
            diags.push(Diagnostic::error("E0203", "rows must hold numbers", r.span, "not a row of numbers"));
            return None;
        };
        if out.first().is_some_and(|f: &Vec<f64>| f.len() != row.len()) {
            diags.push(Diagnostic::error(
                "E0309",
                "all rows must have the same length",
                r.span,
                format!("this row has {} values", row.len()),
            ));
            return None;
        }
        out.push(row);
    }
    Some(out)
}

fn data_source(e: &Expr, diags: &mut Diagnostics) -> Option<DataSpec> {
    let ExprKind::Call { callee, args } = &e.kind else {
        diags.push(
            Diagnostic::error("E0109", "`data =` needs a data source", e.span, "not a data source")
                .with_help("use mnist(\"dir\"), csv(\"file.csv\", label: 64), idx(\"images\", \"labels\") or tensors(x: [...], y: [...])"),
        );
        return None;
    };
    let ExprKind::Name(name) = &callee.kind else {
        diags.push(Diagnostic::error(
            "E0109",
            "`data =` needs a data source",
            callee.span,
            "not a data source",
        ));
        return None;
    };
    let get = |n: &str, pos: usize| -> Option<&Arg> {
        args.iter()
            .find(|a| a.name.as_ref().is_some_and(|x| x.name == n))
            .or_else(|| args.iter().filter(|a| a.name.is_none()).nth(pos))
    };
    let known: &[&str] = match DATA_SOURCES.iter().find(|(n, _)| *n == name.name) {
        Some((_, params)) => params,
        None => {
            let mut d = Diagnostic::error(
                "E0101",
                format!("unknown data source `{}`", name.name),
                name.span,
                "not a data source",
            )
            .with_help("data sources are mnist, csv, idx and tensors");
            if let Some(s) = suggest(&name.name, DATA_SOURCES.iter().map(|(n, _)| *n)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            return None;
        }
    };
    for a in args {
        if let Some(n) = &a.name {
            if !known.contains(&n.name.as_str()) {
                diags.push(unknown_argument(&name.name, n, known));
                return None;
            }
        }
    }
    let need = |n: &str, pos: usize, diags: &mut Diagnostics| -> Option<&Arg> {
        let a = get(n, pos);
        if a.is_none() {
            diags.push(Diagnostic::error(
                "E0103",
                format!("`{}` is missing argument `{n}`", name.name),
                e.span,
                format!("`{n}` not given"),
            ));
        }
        a
    };
    let source = match name.name.as_str() {
        "mnist" => DataSource::Mnist {
            dir: str_arg(need("dir", 0, diags)?, diags, "the MNIST directory")?,
        },
        "csv" => {
            let path = str_arg(need("path", 0, diags)?, diags, "the CSV path")?;
            // `target:` names a column of regression targets; `label:` one of class ids.
            let target = args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == "target"));
            if let (Some(t), Some(l)) = (target, args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == "label"))) {
                diags.push(
                    Diagnostic::error(
                        "E0105",
                        "`csv` takes either `label:` (class ids) or `target:` (numbers to predict), not both",
                        t.span,
                        "given as well",
                    )
                    .with_secondary(l.span, "the label column"),
                );
                return None;
            }
            let regression = target.is_some();
            let label = match target.or_else(|| get("label", 1)).map(|a| &a.value.kind) {
                None => CsvLabel::Index(-1),
                Some(ExprKind::Int(i)) => CsvLabel::Index(*i),
                Some(ExprKind::Neg(x)) if matches!(x.kind, ExprKind::Int(_)) => CsvLabel::Index(-number(x)? as i64),
                Some(ExprKind::Str(name)) => CsvLabel::Name(name.clone()),
                Some(_) => {
                    diags.push(Diagnostic::error(
                        "E0203",
                        "the label column must be a column index (negative counts from the end) or a header name",
                        target.or_else(|| get("label", 1))?.value.span,
                        "not an integer",
                    ));
                    return None;
                }
            };
            let scale = match get("scale", 2).map(|a| &a.value) {
                None => None,
                Some(v) => match v.kind {
                    ExprKind::Float(f) => Some(f),
                    ExprKind::Int(i) => Some(i as f64),
                    ExprKind::Binary(BinOp::Div, ref a, ref b) => match (&a.kind, &b.kind) {
                        (ExprKind::Int(x), ExprKind::Int(y)) if *y != 0 => Some(*x as f64 / *y as f64),
                        _ => None,
                    },
                    _ => {
                        diags.push(Diagnostic::error("E0203", "`scale` must be a number", v.span, "not a number"));
                        return None;
                    }
                },
            };
            DataSource::Csv {
                path,
                label,
                scale,
                regression,
            }
        }
        "idx" => DataSource::Idx {
            images: str_arg(need("images", 0, diags)?, diags, "the image file")?,
            labels: str_arg(need("labels", 1, diags)?, diags, "the label file")?,
        },
        _ => {
            let x = matrix(&need("x", 0, diags)?.value, diags)?;
            let y = matrix(&need("y", 1, diags)?.value, diags)?;
            if x.len() != y.len() {
                diags.push(Diagnostic::error(
                    "E0308",
                    format!("`x` has {} rows but `y` has {}", x.len(), y.len()),
                    get("y", 1)?.value.span,
                    format!("{} rows", y.len()),
                ));
                return None;
            }
            DataSource::Inline { x, y }
        }
    };
    Some(DataSpec { source, span: e.span })
}

/// A number literal (`0.5`, `3`, `1/10`).
fn number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Float(f) => Some(*f),
        ExprKind::Int(i) => Some(*i as f64),
        ExprKind::Binary(BinOp::Div, a, b) => Some(number(a)? / number(b).filter(|d| *d != 0.0)?),
        ExprKind::Neg(a) => number(a).map(|x| -x),
        _ => None,
    }
}

/// The callee name and arguments of `name(args)` or a bare `name`.
fn call_parts(e: &Expr) -> Option<(&Ident, &[Arg])> {
    match &e.kind {
        ExprKind::Name(n) => Some((n, &[])),
        ExprKind::Call { callee, args } => match &callee.kind {
            ExprKind::Name(n) => Some((n, args.as_slice())),
            _ => None,
        },
        _ => None,
    }
}

/// Named-or-positional numeric arguments of a settings call, checked
/// against `params` (name, default); `None` after reporting a problem.
fn numeric_args(name: &Ident, args: &[Arg], params: &[(&str, Option<f64>)], diags: &mut Diagnostics) -> Option<Vec<f64>> {
    let mut out: Vec<Option<f64>> = params.iter().map(|p| p.1).collect();
    let mut pos = 0;
    for a in args {
        let i = match &a.name {
            Some(n) => match params.iter().position(|p| p.0 == n.name) {
                Some(i) => i,
                None => {
                    let names: Vec<&str> = params.iter().map(|p| p.0).collect();
                    diags.push(unknown_argument(&name.name, n, &names));
                    return None;
                }
            },
            None => {
                pos += 1;
                pos - 1
            }
        };
        if i >= params.len() {
            diags.push(Diagnostic::error(
                "E0103",
                format!("`{}` takes {} arguments", name.name, params.len()),
                a.value.span,
                "one too many",
            ));
            return None;
        }
        match number(&a.value) {
            Some(v) => out[i] = Some(v),
            None => {
                diags.push(Diagnostic::error(
                    "E0203",
                    format!("`{}` must be a number", params[i].0),
                    a.value.span,
                    "not a number",
                ));
                return None;
            }
        }
    }
    for (i, v) in out.iter().enumerate() {
        if v.is_none() {
            diags.push(Diagnostic::error(
                "E0103",
                format!("`{}` is missing argument `{}`", name.name, params[i].0),
                name.span,
                format!("`{}` not given", params[i].0),
            ));
            return None;
        }
    }
    Some(out.into_iter().flatten().collect())
}

pub const SCHEDULES: &[&str] = &["constant", "step_decay", "exponential", "cosine", "cyclic", "one_cycle"];

/// `schedule = step_decay(every: 3, factor: 0.5)`, `exponential(rate: 0.9)`,
/// `cosine(min_lr: 0)`, `cyclic(min_lr: 1e-4, period: 2)`, `one_cycle(max_lr: 0.01)`.
fn schedule(e: &Expr, diags: &mut Diagnostics) -> Option<Schedule> {
    let Some((name, args)) = call_parts(e) else {
        diags.push(
            Diagnostic::error("E0203", "`schedule` must name a schedule", e.span, "not a schedule")
                .with_help(format!("schedules are: {}", SCHEDULES.join(", "))),
        );
        return None;
    };
    let positive_int = |v: f64, what: &str, diags: &mut Diagnostics| {
        if v >= 1.0 && v.fract() == 0.0 {
            Some(v as usize)
        } else {
            diags.push(Diagnostic::error(
                "E0203",
                format!("`{what}` must be a whole number of epochs, at least 1"),
                e.span,
                "not a valid value",
            ));
            None
        }
    };
    Some(match name.name.as_str() {
        "constant" => {
            numeric_args(name, args, &[], diags)?;
            Schedule::Constant
        }
        "step_decay" => {
            let v = numeric_args(name, args, &[("every", None), ("factor", Some(0.1))], diags)?;
            Schedule::StepDecay {
                every: positive_int(v[0], "every", diags)?,
                factor: v[1],
            }
        }
        "exponential" => Schedule::Exponential {
            rate: numeric_args(name, args, &[("rate", None)], diags)?[0],
        },
        "cosine" => Schedule::Cosine {
            min_lr: numeric_args(name, args, &[("min_lr", Some(0.0))], diags)?[0],
        },
        "cyclic" => {
            let v = numeric_args(name, args, &[("min_lr", None), ("period", Some(2.0))], diags)?;
            Schedule::Cyclic {
                min_lr: v[0],
                period: positive_int(v[1], "period", diags)?,
            }
        }
        "one_cycle" => Schedule::OneCycle {
            max_lr: numeric_args(name, args, &[("max_lr", None)], diags)?[0],
        },
        _ => {
            let mut d = Diagnostic::error("E0101", format!("unknown schedule `{}`", name.name), name.span, "not a schedule")
                .with_help(format!("schedules are: {}", SCHEDULES.join(", ")));
            if let Some(s) = suggest(&name.name, SCHEDULES.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            return None;
        }
    })
}

/// `early_stop = patience(3)` or `patience(3, monitor: val_accuracy)`.
fn early_stop(e: &Expr, diags: &mut Diagnostics) -> Option<EarlyStop> {
    let bad = |diags: &mut Diagnostics| {
        diags.push(
            Diagnostic::error("E0203", "`early_stop` needs a patience", e.span, "not a patience")
                .with_help("e.g. `early_stop = patience(3, monitor: val_loss)`"),
        );
    };
    let Some((name, args)) = call_parts(e).filter(|(n, _)| n.name == "patience") else {
        bad(diags);
        return None;
    };
    let mut patience = None;
    let mut monitor = "val_loss".to_string();
    for a in args {
        match (a.name.as_ref().map(|n| n.name.as_str()), &a.value.kind) {
            (None | Some("epochs"), ExprKind::Int(i)) if *i >= 1 => patience = Some(*i as usize),
            (Some("monitor"), ExprKind::Name(m)) => {
                let base = m.name.strip_prefix("val_").unwrap_or(&m.name);
                if base != "loss" && !METRICS.contains(&base) {
                    let monitors: Vec<String> = std::iter::once("loss")
                        .chain(METRICS.iter().copied())
                        .flat_map(|k| [k.to_string(), format!("val_{k}")])
                        .collect();
                    let d = Diagnostic::error("E0101", format!("unknown metric `{}`", m.name), m.span, "not a metric");
                    diags.push(match suggest(&m.name, monitors.iter().map(String::as_str)) {
                        Some(s) => d.with_fix(format!("did you mean `{s}`?"), crate::diag::Fix::replace(m.span, s)),
                        None => d.with_help(format!(
                            "monitor `loss` or one of {}, with an optional `val_` prefix",
                            METRICS.join(", ")
                        )),
                    });
                    return None;
                }
                monitor = m.name.clone();
            }
            _ => {
                bad(diags);
                return None;
            }
        }
    }
    let Some(patience) = patience else {
        diags.push(
            Diagnostic::error("E0103", "`patience` is missing the number of epochs", name.span, "how many epochs?")
                .with_help("e.g. `patience(3)`"),
        );
        return None;
    };
    Some(EarlyStop { patience, monitor })
}

/// E0104 for a keyword a data source or train setting does not take.
fn unknown_argument(callee: &str, arg: &Ident, known: &[&str]) -> Diagnostic {
    Diagnostic::error(
        "E0104",
        format!("`{callee}` has no parameter `{}`", arg.name),
        arg.span,
        "unknown argument name",
    )
    .with_help(format!("its parameters are: {}", known.join(", ")))
}
