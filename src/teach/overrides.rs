//! Hyper-parameters set from outside the file (`nnc run --set lr=0.01`,
//! every trial of `nnc tune`), applied as edits of the source text: the
//! value replaces the literal in the `train` block or the optimizer call,
//! or is added when the file leaves it at its default. Editing the text
//! (not the checked plan) means every setting that shapes the compiled
//! step — `momentum`, `beta1` — works like one written by hand, and the
//! trial's diagnostics point at real text.
//!
//! A model's named sizes are tunable too: `let hidden = 128` at the top of
//! a model's body (a number literal, so the value has one place) is set by
//! `--set hidden=256`. The edited file is checked again, so a width the
//! rest of the model does not fit is the shape checker's error, at the
//! layer that no longer fits. A name that several models use is qualified
//! with the model (`G.hidden`).

use crate::sema::scope::{Global, Globals};
use crate::syntax::ast::{Body, Expr, ExprKind, Item, Module, Stmt, TrainDecl};

/// Numeric settings of a `train` block.
pub const TRAIN_SETTINGS: &[&str] = &["epochs", "batch_size", "validation", "test", "seed", "warmup"];

/// Settings whose values are whole numbers.
pub const INTEGER_SETTINGS: &[&str] = &["epochs", "batch_size", "seed", "warmup"];

#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub name: String,
    /// The value as written (`0.01`, `64`).
    pub value: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OverrideError {
    /// No setting or optimizer parameter of this name; the names that exist.
    Unknown { name: String, known: Vec<String> },
    /// Not a number, or not a whole number for an integer setting.
    BadValue { name: String, value: String, why: String },
    /// The file has no `train` block for the model.
    NoTrain,
}

fn train_decl<'m>(module: &'m Module, model: Option<&str>) -> Option<&'m TrainDecl> {
    module.items.iter().find_map(|i| match i {
        Item::Train(t) if model.is_none_or(|m| t.model.name == m) => Some(t),
        _ => None,
    })
}

/// The optimizer call of a train block: its name and (when it is a call) its arguments.
fn optimizer_of(t: &TrainDecl) -> Option<(&crate::syntax::ast::TrainField, String)> {
    let f = t.fields.iter().find(|f| f.name.name == "optimizer")?;
    let name = match &f.value.kind {
        ExprKind::Call { callee, .. } => match &callee.kind {
            ExprKind::Name(n) => n.name.clone(),
            _ => return None,
        },
        ExprKind::Name(n) => n.name.clone(),
        _ => return None,
    };
    Some((f, name))
}

/// A model's `let NAME = <number>` at the top of its body.
pub struct NamedSize<'m> {
    /// `hidden`, or `G.hidden` when another model has a size of that name.
    pub name: String,
    /// The literal to replace.
    pub value: &'m Expr,
    /// Written as a whole number, so only whole numbers replace it.
    pub integer: bool,
}

fn number_literal(e: &Expr) -> Option<bool> {
    match &e.kind {
        ExprKind::Int(_) => Some(true),
        ExprKind::Float(_) => Some(false),
        ExprKind::Neg(x) => number_literal(x),
        _ => None,
    }
}

/// Every model's named sizes, qualified where a name is in several models.
pub fn named_sizes(module: &Module) -> Vec<NamedSize<'_>> {
    let mut found: Vec<(&str, &str, &Expr, bool)> = vec![];
    for item in &module.items {
        let Item::Model(m) = item else { continue };
        let Body::Block(b) = &m.body else { continue };
        for st in &b.stmts {
            if let Stmt::Let { name, value, ty: None, .. } = st {
                if let Some(integer) = number_literal(value) {
                    found.push((&m.name.name, &name.name, value, integer));
                }
            }
        }
    }
    let models_with = |n: &str| found.iter().filter(|f| f.1 == n).count();
    found
        .iter()
        .map(|&(model, name, value, integer)| NamedSize {
            name: if models_with(name) > 1 {
                format!("{model}.{name}")
            } else {
                name.to_string()
            },
            value,
            integer,
        })
        .collect()
}

/// The names `apply` accepts for this file: the numeric train settings,
/// the optimizer's parameters and the models' named sizes (a size named
/// like a setting is left to the setting).
pub fn tunable(module: &Module, globals: &Globals, model: Option<&str>) -> Vec<String> {
    let mut out = settings(module, globals, model);
    for s in named_sizes(module) {
        if !out.contains(&s.name) {
            out.push(s.name);
        }
    }
    out
}

/// The train settings and the optimizer's parameters.
fn settings(module: &Module, globals: &Globals, model: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = TRAIN_SETTINGS.iter().map(|s| s.to_string()).collect();
    if let Some((_, opt)) = train_decl(module, model).and_then(optimizer_of) {
        if let Some(Global::Optimizer(o)) = globals.get(&opt) {
            out.extend(o.params.iter().map(|p| p.name.name.clone()));
        }
    }
    out
}

/// The names of `tunable` whose values must be whole numbers.
pub fn integer_names(module: &Module) -> Vec<String> {
    let mut out: Vec<String> = INTEGER_SETTINGS.iter().map(|s| s.to_string()).collect();
    out.extend(named_sizes(module).into_iter().filter(|s| s.integer).map(|s| s.name));
    out
}

/// Check a value for `name`: a finite number, whole for integer settings
/// (`integers`, from `integer_names`).
pub fn check_value(name: &str, value: &str, integers: &[String]) -> Result<f64, OverrideError> {
    let bad = |why: &str| OverrideError::BadValue {
        name: name.into(),
        value: value.into(),
        why: why.into(),
    };
    let x: f64 = value.trim().parse().map_err(|_| bad("not a number"))?;
    if !x.is_finite() {
        return Err(bad("not a finite number"));
    }
    if integers.iter().any(|i| i == name) && (x.fract() != 0.0 || x < 0.0) {
        return Err(bad("a whole number is needed"));
    }
    if (name == "batch_size" || name == "epochs") && x < 1.0 {
        return Err(bad("at least 1 is needed"));
    }
    Ok(x)
}

/// `text` (the source of `module`) with each override applied.
pub fn apply(text: &str, module: &Module, globals: &Globals, model: Option<&str>, overrides: &[Override]) -> Result<String, OverrideError> {
    let t = train_decl(module, model).ok_or(OverrideError::NoTrain)?;
    let known = tunable(module, globals, model);
    let integers = integer_names(module);
    let settings = settings(module, globals, model);
    let sizes = named_sizes(module);
    // (start, end, replacement), applied from the end so offsets hold.
    let mut edits: Vec<(usize, usize, String)> = vec![];
    for o in overrides {
        if !known.contains(&o.name) {
            return Err(OverrideError::Unknown {
                name: o.name.clone(),
                known,
            });
        }
        check_value(&o.name, &o.value, &integers)?;
        let value = o.value.trim().to_string();
        if !settings.contains(&o.name) {
            if let Some(s) = sizes.iter().find(|s| s.name == o.name) {
                edits.push((s.value.span.start as usize, s.value.span.end as usize, value));
                continue;
            }
        }
        if TRAIN_SETTINGS.contains(&o.name.as_str()) {
            match t.fields.iter().find(|f| f.name.name == o.name) {
                Some(f) => edits.push((f.value.span.start as usize, f.value.span.end as usize, value)),
                None => {
                    // Before the block's closing brace, on a line of its own.
                    let close = t.span.end as usize - 1;
                    edits.push((close, close, format!("    {} = {value}\n", o.name)));
                }
            }
            continue;
        }
        let (field, opt) = optimizer_of(t).ok_or(OverrideError::NoTrain)?;
        let position = match globals.get(&opt) {
            Some(Global::Optimizer(decl)) => decl.params.iter().position(|p| p.name.name == o.name),
            _ => None,
        };
        match &field.value.kind {
            ExprKind::Call { args, .. } => {
                let named = args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == o.name));
                let positional = position.and_then(|i| args.iter().filter(|a| a.name.is_none()).nth(i));
                match named.or(positional) {
                    Some(a) => edits.push((a.value.span.start as usize, a.value.span.end as usize, value)),
                    None => {
                        let close = field.value.span.end as usize - 1;
                        let sep = if args.is_empty() { "" } else { ", " };
                        edits.push((close, close, format!("{sep}{}: {value}", o.name)));
                    }
                }
            }
            _ => {
                let end = field.value.span.end as usize;
                edits.push((end, end, format!("({}: {value})", o.name)));
            }
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    let mut out = text.to_string();
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    Ok(out)
}
