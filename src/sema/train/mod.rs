//! `train` blocks to [`TrainPlan`]s: the checker's half of the plan.
//!
//! The block's settings and data source become data (`settings`, `data`);
//! each step's loss is elaborated in training mode (`step`); evaluation
//! and `sample =` in evaluation mode; then every function is rewritten
//! over one parameter store (the union of the parameters the functions
//! use, in first-use order), and the optimizer of each step is elaborated
//! for the parameters that step trains (`optimizer`, `init`).

mod data;
mod init;
mod optimizer;
mod settings;
mod step;

use super::elab::{Elab, ParamInfo};
use super::scope::{Global, Globals};
use crate::base::{FileId, SourceDb, Span};
use crate::diag::{suggest, Diagnostic, Diagnostics};
use crate::ir::{self, Builder, Dim, Func};
use crate::plan::{Evaluation, ModelPredict, ParamMeta, Schedule, StepPlan, TrainPlan, Update};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

pub use data::DATA_SOURCES;
pub use optimizer::run_optimizer_body;
pub use settings::{METRICS, SCHEDULES};
use step::{Elaborated, StepBody, StepSource};

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
    "clip_norm",
    "freeze",
    "sample",
    // Read by `nnc tune` (`teach::search::from_train_block`), not by training.
    "search",
];

/// What the block trains and names its run after: a model, or (for a block
/// of `step`s) just a name.
struct Target {
    model: Option<Rc<ModelDecl>>,
    name: String,
}

pub fn plan(
    db: &SourceDb,
    globals: &Globals,
    root: FileId,
    t: &TrainDecl,
    diags: &mut Diagnostics,
    types: &mut Vec<(Span, String)>,
) -> Option<TrainPlan> {
    let target = target(globals, t, diags)?;
    let fields = fields(t, diags)?;
    let settings = settings::settings(&fields, diags);
    let data = fields.get("data").and_then(|f| data::data_source(&f.value, diags));
    let (settings, data) = (settings?, data?);
    if !t.steps.is_empty() {
        for f in ["validation", "test"] {
            if let Some(field) = fields.get(f).filter(|_| target.model.is_none()) {
                diags.push(
                    Diagnostic::error(
                        "E0107",
                        format!("`{f}` needs a model to evaluate, and `train {}` names none", target.name),
                        field.name.span,
                        "nothing to evaluate",
                    )
                    .with_help("remove it, or name a model after `train`"),
                );
                return None;
            }
        }
    }

    // ---- the input and label types -----------------------------------------
    let input = match &target.model {
        Some(m) => {
            let mut e = Elab::new(db, globals, root, "inputs");
            let inputs = e.model_inputs(m);
            diags.extend(std::mem::take(&mut e.diags));
            let inputs = inputs?;
            if inputs.len() != 1 {
                diags.push(Diagnostic::error(
                    "E0501",
                    "training supports models with exactly one input for now",
                    m.name.span,
                    format!("this model has {} inputs", inputs.len()),
                ));
                return None;
            }
            inputs[0].1.clone()
        }
        None => match data::input_type(&data.source) {
            Some(ty) => ty,
            None => {
                diags.push(
                    Diagnostic::error(
                        "E0109",
                        format!("`train {}` names no model, so the shape of `x` is unknown", target.name),
                        t.model.span,
                        "not a model",
                    )
                    .with_help("name the model that reads the data, or use `mnist(...)` or `tensors(...)`, whose shapes are known"),
                );
                return None;
            }
        },
    };
    let batch = input.shape.first().cloned().unwrap_or(Dim::Known(1));
    let label = data::label_type(&data.source, &batch);
    let cx = step::Context {
        db,
        globals,
        root,
        target: target.model.clone(),
        input: input.clone(),
        label: label.clone(),
        class_label_keyword: fields.get("data").and_then(|f| data::class_label_keyword(&f.value)),
        seed: settings.seed,
    };

    // ---- every step in training mode ---------------------------------------
    let sources: Vec<StepSource> = if t.steps.is_empty() {
        let missing: Vec<&str> = ["loss", "optimizer"].into_iter().filter(|r| !fields.contains_key(r)).collect();
        for req in &missing {
            diags.push(
                Diagnostic::error(
                    "E0107",
                    format!("`train {}` is missing the `{req}` setting", t.model.name),
                    t.model.span,
                    format!("no `{req} = ...` in this block"),
                )
                .with_help(match *req {
                    "loss" => "add e.g. `loss = cross_entropy(model(x), y)`",
                    _ => "add e.g. `optimizer = adam(lr: 0.001)`",
                }),
            );
        }
        if !missing.is_empty() {
            return None;
        }
        vec![StepSource {
            name: "train".into(),
            optimizer: &fields["optimizer"].value,
            on: None,
            body: StepBody::Loss(&fields["loss"].value),
            span: t.span,
        }]
    } else {
        for f in ["loss", "optimizer"] {
            if let Some(field) = fields.get(f) {
                diags.push(
                    Diagnostic::error(
                        "E0107",
                        format!("`{f}` belongs in each `step` of a block with steps"),
                        field.name.span,
                        "outside every step",
                    )
                    .with_help("move it into the steps: `step NAME with OPTIMIZER on MODEL { loss = ... }`"),
                );
                return None;
            }
        }
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for s in &t.steps {
            if let Some(first) = seen.insert(&s.name.name, s.name.span) {
                diags.push(
                    Diagnostic::error(
                        "E0102",
                        format!("step `{}` is defined twice", s.name.name),
                        s.name.span,
                        "defined again here",
                    )
                    .with_secondary(first, "first defined here"),
                );
                return None;
            }
        }
        t.steps
            .iter()
            .map(|s| StepSource {
                name: s.name.name.clone(),
                optimizer: &s.optimizer,
                on: Some(&s.model),
                body: StepBody::Block(&s.body),
                span: s.span,
            })
            .collect()
    };
    let mut elaborated = vec![];
    for (k, src) in sources.iter().enumerate() {
        let first = k == 0;
        elaborated.push(step::elaborate(&cx, src, k, diags, if first { Some(&mut *types) } else { None }));
    }
    let elaborated: Vec<Elaborated> = elaborated.into_iter().collect::<Option<_>>()?;

    // ---- evaluation mode -----------------------------------------------------
    let eval = match (&target.model, &sources[0].body, t.steps.is_empty()) {
        (Some(_), StepBody::Loss(loss), true) => Some(step::evaluation(&cx, loss, diags)?),
        _ => None,
    };
    let sample = match fields.get("sample") {
        Some(f) => Some(step::sample(&cx, &f.value, diags)?),
        None => None,
    };
    // A block of steps without a model of its own: each model a step trains,
    // alone in evaluation mode, for export (`nnc export --model G`).
    let mut models: Vec<(String, (Func, Vec<ParamInfo>))> = vec![];
    if eval.is_none() {
        for s in &t.steps {
            if models.iter().any(|(n, _)| *n == s.model.name) {
                continue;
            }
            if let Some(Global::Model(m)) = globals.get(&s.model.name) {
                models.push((s.model.name.clone(), step::model_predict(&cx, m, diags)?));
            }
        }
    }
    // The model `sample = G(...)` calls: the generator, exported by default.
    let sample_model = fields.get("sample").and_then(|f| match &f.value.kind {
        ExprKind::Call { callee, .. } => match &callee.kind {
            ExprKind::Name(id) if models.iter().any(|(n, _)| *n == id.name) => Some(id.name.clone()),
            _ => None,
        },
        _ => None,
    });

    // ---- one parameter store ---------------------------------------------------
    let mut store: Vec<ParamInfo> = vec![];
    let locals = elaborated
        .iter()
        .map(|s| &s.params)
        .chain(eval.iter().flat_map(|ev| [&ev.loss.1, &ev.predict.1]))
        .chain(sample.iter().map(|(_, p)| p))
        .chain(models.iter().map(|(_, (_, p))| p));
    for ps in locals {
        for p in ps {
            if !store.iter().any(|q| q.name == p.name) {
                store.push(p.clone());
            }
        }
    }
    let index = |name: &str| store.iter().position(|p| p.name == name).expect("every local is in the store");

    // ---- what each step trains ----------------------------------------------------
    let frozen = match fields.get("freeze") {
        Some(f) => freeze_list(&f.value, &store, diags)?,
        None => vec![],
    };
    let mut trained_by: HashMap<usize, (String, Span)> = HashMap::new();
    let mut trains: Vec<Vec<usize>> = vec![];
    for s in &elaborated {
        let mut mine = vec![];
        for p in s.params.iter().filter(|p| p.trainable) {
            let i = index(&p.name);
            let owned = match &s.on {
                Some((m, _)) => p.model.as_deref() == Some(m.as_str()),
                None => true,
            };
            if owned && !frozen.contains(&i) && !mine.contains(&i) {
                mine.push(i);
            }
        }
        mine.sort_unstable();
        let span = s.on.as_ref().map_or(s.span, |o| o.1);
        for &i in &mine {
            if let Some((other, other_span)) = trained_by.insert(i, (s.name.clone(), span)) {
                diags.push(
                    Diagnostic::error(
                        "E0112",
                        format!("`{}` is trained by both step `{other}` and step `{}`", store[i].name, s.name),
                        span,
                        format!("step `{}` trains it here", s.name),
                    )
                    .with_secondary(other_span, format!("step `{other}` trains it here"))
                    .with_help("each parameter is updated by one step; train it in one of them"),
                );
                return None;
            }
        }
        // A model without parameters (a fixed function) has nothing to
        // train; only a loss that misses what exists is an error.
        let nothing_to_train = t.steps.is_empty() && !store.iter().any(|p| p.trainable);
        if !nothing_to_train && !depends_on_any(&s.loss, &mine.iter().map(|&i| local_value(s, &store[i].name)).collect::<Vec<_>>()) {
            let what = match &s.on {
                Some((m, _)) => format!("the parameters of `{m}`"),
                None => "any trained parameter".into(),
            };
            diags.push(
                Diagnostic::error(
                    "E0402",
                    format!("the loss of step `{}` does not depend on {what}", s.name),
                    s.loss_span,
                    "this loss has no gradient for them",
                )
                .with_help("use the model the step trains in its loss"),
            );
            return None;
        }
        trains.push(mine);
    }

    // ---- initialisation and optimizer updates ----------------------------------------
    let mut init = Elab::new(db, globals, root, "init");
    init.seed = settings.seed.wrapping_mul(1_000_003);
    let mut init_values = vec![];
    for info in &store {
        // An initializer's errors are the reason the block cannot run.
        let Some(v) = init::init_param(&mut init, info) else {
            diags.extend(std::mem::take(&mut init.diags));
            return None;
        };
        init_values.push(v);
    }
    let mut steps: Vec<StepPlan> = vec![];
    let mut state_values = vec![];
    for ((s, mine), src) in elaborated.iter().zip(&trains).zip(&sources) {
        let mut updates = vec![];
        for &i in mine {
            let info = &store[i];
            let Some((names, svals)) = optimizer::optimizer_states(&mut init, &s.opt, &info.ty, init_values[i]) else {
                diags.extend(std::mem::take(&mut init.diags));
                return None;
            };
            let func = optimizer::optimizer_update(db, globals, root, &s.opt, info, &names, diags)?;
            state_values.extend(svals);
            updates.push(Update {
                param: i,
                states: names.iter().map(|n| (format!("{}/{}", info.name, n.0), n.1.clone())).collect(),
                func,
            });
        }
        let lr = s.opt.args.iter().find(|(k, _)| k == "lr").and_then(|(_, v)| match v {
            super::value::Val::Float(f) => Some(*f),
            super::value::Val::Int(i) => Some(*i as f64),
            _ => None,
        });
        if let Some(rate) = lr.filter(|r| *r <= 0.0) {
            // A negative rate climbs the loss; zero never moves.
            let at = s.opt.origins.get("lr").copied().unwrap_or(src.optimizer.span);
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
                        s.opt.decl.name.name
                    ),
                    src.optimizer.span,
                    "no `lr` here",
                )
                .with_help("give the optimizer an `lr` parameter, or remove `schedule` and `warmup`"),
            );
            return None;
        }
        let (loss, map) = over_store_mapped(&s.loss, 3, &s.params, &store);
        steps.push(StepPlan {
            name: s.name.clone(),
            loss,
            blockers: s.blockers.iter().map(|&(v, at)| (map[v.index()], at)).collect(),
            writes: s.writes.iter().map(|&l| index(&s.params[l].name)).collect(),
            updates,
            optimizer: s.opt.decl.name.name.clone(),
            lr,
            every: s.every,
            clip_norm: s.clip_norm.or(settings.clip_norm),
            span: s.span,
        });
    }
    if init.diags.has_errors() {
        diags.extend(std::mem::take(&mut init.diags));
        return None;
    }
    let mut results = init_values;
    results.extend(state_values);
    let init_func = init.b.finish(&results);
    debug_assert!(steps.iter().all(|s| ir::verify(&s.loss).is_ok()));
    Some(TrainPlan {
        model: target.name,
        data,
        settings,
        input,
        label,
        params: store
            .iter()
            .map(|p| ParamMeta {
                name: p.name.clone(),
                ty: p.ty.clone(),
                trainable: p.trainable,
            })
            .collect(),
        init: init_func,
        steps,
        eval: eval.map(|ev| {
            let (loss, map) = over_store_mapped(&ev.loss.0, 2, &ev.loss.1, &store);
            // The calls' values renamed into the function over the store (its
            // instructions are the same, in the same order).
            let calls = ev
                .calls
                .iter()
                .map(|c| crate::plan::CallRecord {
                    args: c.args.iter().map(|a| map[a.index()]).collect(),
                    result: map[c.result.index()],
                    ..c.clone()
                })
                .collect();
            let value_names = ev.value_names.iter().map(|(v, n)| (map[v.index()], n.clone())).collect();
            Evaluation {
                loss,
                predict: over_store(&ev.predict.0, 1, &ev.predict.1, &store),
                calls,
                value_names,
            }
        }),
        sample: sample.map(|(f, params)| over_store(&f, 0, &params, &store)),
        models: models
            .iter()
            .map(|(name, (f, params))| ModelPredict {
                name: name.clone(),
                predict: over_store(f, 1, params, &store),
            })
            .collect(),
        sample_model,
        span: t.span,
        output_spans: elaborated[0].output_spans.clone(),
        output_decl: target.model.as_ref().and_then(|m| m.ret.as_ref().map(|r| r.span())),
        largest_value: elaborated.iter().filter_map(|s| s.largest_value).max_by_key(|l| l.0),
    })
}

/// The model a block trains; a block of steps may instead name its run.
fn target(globals: &Globals, t: &TrainDecl, diags: &mut Diagnostics) -> Option<Target> {
    let name = t.model.name.clone();
    match globals.get(&name) {
        Some(Global::Model(m)) => Some(Target {
            model: Some(m.clone()),
            name,
        }),
        Some(g) => {
            diags.push(Diagnostic::error(
                "E0109",
                format!("`train` needs a model, but `{name}` is a {}", g.kind()),
                t.model.span,
                format!("this is a {}", g.kind()),
            ));
            None
        }
        None if !t.steps.is_empty() => Some(Target { model: None, name }),
        None => {
            diags.push(unknown_model(globals, &t.model));
            None
        }
    }
}

/// E0101 for a name that should be a model, with the closest model's name.
pub(super) fn unknown_model(globals: &Globals, id: &Ident) -> Diagnostic {
    let mut d = Diagnostic::error("E0101", format!("unknown model `{}`", id.name), id.span, "no model with this name");
    let models: Vec<String> = globals
        .iter()
        .filter(|(_, g, _)| matches!(g, Global::Model(_)))
        .map(|(n, _, _)| n.clone())
        .collect();
    if let Some(s) = suggest(&id.name, models.iter().map(String::as_str)) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d
}

/// The block's settings by name; `None` after reporting unknown or repeated ones.
fn fields<'t>(t: &'t TrainDecl, diags: &mut Diagnostics) -> Option<HashMap<&'t str, &'t TrainField>> {
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
    if !fields.contains_key("data") {
        diags.push(
            Diagnostic::error(
                "E0107",
                format!("`train {}` is missing the `data` setting", t.model.name),
                t.model.span,
                "no `data = ...` in this block",
            )
            .with_help("add e.g. `data = csv(\"data/digits.csv\", label: 64)`"),
        );
        ok = false;
    }
    ok.then_some(fields)
}

/// `freeze = [fc1, "fc2.W"]`: store indices of the named parameters, or of
/// every parameter of the named layers.
fn freeze_list(e: &Expr, store: &[ParamInfo], diags: &mut Diagnostics) -> Option<Vec<usize>> {
    let ExprKind::List(items) = &e.kind else {
        diags.push(
            Diagnostic::error("E0203", "`freeze` must be a list of layers or parameters", e.span, "not a list")
                .with_help("e.g. `freeze = [fc1, \"fc2.W\"]`"),
        );
        return None;
    };
    let mut out = vec![];
    for it in items {
        let name = match &it.kind {
            ExprKind::Name(n) => n.name.clone(),
            ExprKind::Str(s) => s.clone(),
            _ => {
                diags.push(Diagnostic::error(
                    "E0203",
                    "name a layer or parameter to freeze",
                    it.span,
                    "not a name",
                ));
                return None;
            }
        };
        let hits: Vec<usize> = store
            .iter()
            .enumerate()
            .filter(|(_, p)| p.name == name || p.name.starts_with(&format!("{name}.")))
            .map(|(i, _)| i)
            .collect();
        if hits.is_empty() {
            let mut d = Diagnostic::error("E0101", format!("no layer or parameter `{name}` to freeze"), it.span, "not found");
            let layers: Vec<String> = store
                .iter()
                .flat_map(|p| [p.name.clone(), p.name.rsplit_once('.').map_or(String::new(), |x| x.0.to_string())])
                .collect();
            if let Some(s) = suggest(&name, layers.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            return None;
        }
        out.extend(hits);
    }
    Some(out)
}

/// The value of the store parameter `name` in a step's own loss function.
fn local_value(s: &Elaborated, name: &str) -> ir::Value {
    let i = s
        .params
        .iter()
        .position(|p| p.name == name)
        .expect("trained parameters are the step's own");
    s.loss.params[3 + i]
}

/// Whether the first result of `f` (the loss) depends on any of `params`.
fn depends_on_any(f: &Func, params: &[ir::Value]) -> bool {
    let mut live = vec![false; f.types.len()];
    live[f.results[0].index()] = true;
    for inst in f.insts.iter().rev() {
        if live[inst.result.index()] {
            for a in &inst.args {
                live[a.index()] = true;
            }
        }
    }
    params.iter().any(|p| live[p.index()])
}

/// `f(fixed..., locals...)` rewritten as `f(fixed..., store...)`: the same
/// body over every parameter of the plan, in store order.
fn over_store(f: &Func, fixed: usize, locals: &[ParamInfo], store: &[ParamInfo]) -> Func {
    over_store_mapped(f, fixed, locals, store).0
}

/// `over_store`, and the new value of every value of `f`.
fn over_store_mapped(f: &Func, fixed: usize, locals: &[ParamInfo], store: &[ParamInfo]) -> (Func, Vec<ir::Value>) {
    assert_eq!(
        f.params.len(),
        fixed + locals.len(),
        "internal error: {} has unexpected parameters",
        f.name
    );
    let mut b = Builder::new(f.name.clone());
    let mut args: Vec<ir::Value> = (0..fixed)
        .map(|i| b.param(f.param_names[i].clone(), f.ty(f.params[i]).clone()))
        .collect();
    let all: Vec<ir::Value> = store.iter().map(|p| b.param(p.name.clone(), p.ty.clone())).collect();
    for p in locals {
        let i = store.iter().position(|q| q.name == p.name).expect("every local is in the store");
        args.push(all[i]);
    }
    let out = b.inline(f, &args);
    let g = b.finish(&out);
    // `inline` copies the instructions in order, so instruction k of `f`
    // defines the result of instruction k of `g`.
    let mut map = vec![ir::Value(0); f.types.len()];
    for (&p, &a) in f.params.iter().zip(&args) {
        map[p.index()] = a;
    }
    for (old, new) in f.insts.iter().zip(&g.insts) {
        map[old.result.index()] = new.result;
    }
    (g, map)
}
