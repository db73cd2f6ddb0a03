//! A `train` block's settings: epochs, batches, splits, metrics, early
//! stopping and learning-rate schedules, checked and turned into data.

use crate::diag::{suggest, Diagnostic, Diagnostics};
use crate::plan::{EarlyStop, Schedule, Settings};
use crate::syntax::ast::*;
use std::collections::HashMap;

pub const METRICS: &[&str] = &["accuracy", "precision", "recall", "f1", "mse", "mae", "r2", "perplexity"];

pub(super) fn settings(fields: &HashMap<&str, &TrainField>, diags: &mut Diagnostics) -> Option<Settings> {
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
        clip_norm: None,
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
    if let Some(f) = fields.get("clip_norm") {
        match clip_norm(&f.value, diags) {
            Some(c) => s.clip_norm = Some(c),
            None => ok = false,
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

/// A number literal (`0.5`, `3`, `1/10`).
pub(super) fn number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Float(f) => Some(*f),
        ExprKind::Int(i) => Some(*i as f64),
        ExprKind::Binary(BinOp::Div, a, b) => Some(number(a)? / number(b).filter(|d| *d != 0.0)?),
        ExprKind::Neg(a) => number(a).map(|x| -x),
        _ => None,
    }
}

/// The callee name and arguments of `name(args)` or a bare `name`.
pub(super) fn call_parts(e: &Expr) -> Option<(&Ident, &[Arg])> {
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
pub(super) fn unknown_argument(callee: &str, arg: &Ident, known: &[&str]) -> Diagnostic {
    Diagnostic::error(
        "E0104",
        format!("`{callee}` has no parameter `{}`", arg.name),
        arg.span,
        "unknown argument name",
    )
    .with_help(format!("its parameters are: {}", known.join(", ")))
}

/// `clip_norm = 1.0`: a positive number, the largest global gradient norm
/// (a block setting, and a setting of each `step`).
pub(super) fn clip_norm(e: &Expr, diags: &mut Diagnostics) -> Option<f64> {
    let v = number(e);
    match v {
        Some(c) if c > 0.0 && c.is_finite() => Some(c),
        _ => {
            let (message, label) = match v {
                Some(c) => (format!("`clip_norm` must be a positive number, found {c}"), "not positive"),
                None => ("`clip_norm` must be a positive number".to_string(), "not a number"),
            };
            diags.push(
                Diagnostic::error("E0203", message, e.span, label)
                    .with_help("the gradients are scaled down when their global norm exceeds this, e.g. `clip_norm = 1.0`"),
            );
            None
        }
    }
}
