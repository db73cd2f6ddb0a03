//! The elaborator: checks a program and lowers it to IR in one pass.
//!
//! It is a staged interpreter over the AST. Compile-time values (sizes,
//! hyperparameters, functions, layers) are evaluated; tensor operations are
//! shape-checked and emitted as IR instructions. Calls are inlined, so a
//! layer such as `Dense(784 -> 128)` is checked with its arguments
//! substituted. Errors are reported once, at the closest span in the file
//! being checked, and the failing value becomes `Val::Error`, which every
//! later check accepts silently (no cascades).
//!
//! The elaborator's methods are split by job: `ops` (tensor arithmetic),
//! `call` (argument binding, shape patterns, inlining), `layer` (layers
//! and models); this file holds its state, diagnostics and expressions.

use super::scope::{Global, Globals};
use super::value::{CallRecord, Callable, Env, LayerInst, LayerRecord, Tensor, Val};
use crate::base::{FileId, SourceDb, Span};
use crate::diag::{suggest, Diagnostic, Diagnostics};
use crate::ir::{self, Builder, UnaryOp};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

/// An argument after evaluation.
#[derive(Clone, Debug)]
pub struct ArgVal {
    pub name: Option<Ident>,
    pub val: Val,
    pub span: Span,
}

/// A trainable parameter or buffer created while elaborating a model.
#[derive(Clone, Debug)]
pub struct ParamInfo {
    pub name: String,
    pub ty: ir::Type,
    pub value: ir::Value,
    /// The initializer and the layer scope it is evaluated in.
    pub init: Expr,
    pub env: Rc<Env>,
    pub trainable: bool,
    /// The model whose body created it (what `on MODEL` trains).
    pub model: Option<String>,
    pub span: Span,
    /// The declared shape (`[inputs, outputs]`).
    pub shape_span: Span,
}

/// A buffer written while elaborating in training mode: `mean = ...`.
#[derive(Clone, Debug)]
pub struct BufferWrite {
    /// The buffer's parameter value.
    pub buffer: ir::Value,
    /// Its value after the step.
    pub value: ir::Value,
    pub span: Span,
}

/// Why an argument did not fit a declared shape.
pub(super) struct Mismatch {
    /// The dim name in the annotation that disagreed, if it was a name.
    pub name: Option<String>,
    pub expected: String,
    pub found: String,
    /// The pattern dim that disagreed (`None`: the ranks differ).
    pub at: Option<Span>,
}

pub struct Elab<'a> {
    pub db: &'a SourceDb,
    pub globals: &'a Globals,
    /// The file being checked: diagnostics are placed in it when possible.
    pub root: FileId,
    pub diags: Diagnostics,
    pub b: Builder,
    /// Call sites of the functions being inlined, outermost first.
    pub(super) frames: Vec<Span>,
    /// For each frame, the user's text the callee came from when it was
    /// passed in as an argument (`step` in `Dense(2 -> 4, step)`).
    pub(super) callee_origins: Vec<Option<Span>>,
    /// Stdlib expressions whose value was written by the user, from their
    /// latest evaluation (a name bound to a user argument): see `user_text`.
    pub(super) origins: HashMap<Span, Span>,
    /// Model parameters in creation order.
    pub params: Vec<ParamInfo>,
    /// Layers constructed inside a model body, by call path, so a model
    /// applied twice shares its weights.
    pub(super) layer_cache: HashMap<Vec<Span>, Rc<LayerInst>>,
    /// The `repeat(n, ...)` bodies being evaluated and the copy each is
    /// on: part of the layer cache's key, so every copy is a new layer.
    pub(super) repeats: Vec<(Span, u32)>,
    /// Where the current model body's call path starts in `frames`.
    pub(super) model_base: usize,
    pub(super) name_counts: HashMap<String, usize>,
    /// `let fc1 = Dense(...)` names the layer `fc1`.
    pub(super) pending_name: Option<String>,
    /// Layer-name prefix while constructing sublayers.
    pub(super) prefix: Vec<String>,
    /// Type of every expression in the root file (hover, inlay hints, `--stage typed`).
    pub types: Vec<(Span, String)>,
    /// Counter for seeds of random draws, so every draw differs.
    pub seed: u64,
    /// Outputs of the trained model seen while elaborating a loss.
    pub model_outputs: Vec<Tensor>,
    pub trained_model: Option<String>,
    /// Values computed by an op whose derivative is zero (comparisons,
    /// `sign`), with the user's text that made them (`step` of
    /// `Dense(2 -> 4, step)`): what a "no gradient" error points at.
    pub blockers: Vec<(ir::Value, Span)>,
    /// Values that are probabilities (outputs of `softmax`, `sigmoid`) and
    /// where the user asked for them: a loss parameter named `logits`
    /// given one is a double softmax.
    pub probabilities: HashMap<ir::Value, Span>,
    /// Values that are raw scores (the output of a layer without an
    /// activation: the stdlib's `identity`) and the user's text that made
    /// them: a loss parameter named `probs` given one takes the log of
    /// numbers that may be negative.
    pub scores: HashMap<ir::Value, Span>,
    /// The labels `y` when they are class ids read by `csv(..., label:)`,
    /// and that `label` keyword: used as numbers, they were meant as a
    /// regression `target`.
    pub class_labels: Option<(ir::Value, Span)>,
    /// The largest tensor written in the user's file (elements per sample)
    /// and where: what a memory warning points at.
    pub largest: Option<(u128, Span)>,
    /// Where the trained model's number of outputs is written (see
    /// `output_size_spans`): what a label-count fix changes.
    pub output_spans: Vec<Span>,
    /// Whether params get IR values (false while checking a definition alone).
    pub lowering: bool,
    /// Layer instances created, by name (for `nnc summary` and hover).
    pub layers: Vec<LayerRecord>,
    pub(super) model_memo: HashMap<(String, Vec<ir::Value>), Val>,
    /// Every layer instance created, in order, for `fc1.W` and `model.fc1`.
    pub instances: Vec<Rc<LayerInst>>,
    /// Every call inlined while lowering, innermost first (a call is
    /// recorded when it returns).
    pub calls: Vec<CallRecord>,
    /// Values the source names (`let q = ...`, a scan's `h = ...`), in the
    /// order they were lowered, for tools that print the IR in the user's
    /// names (`nnc explain --grad`).
    pub value_names: Vec<(ir::Value, String)>,
    /// Declarations being inlined, innermost last (`guard`).
    pub(super) active: Vec<(super::guard::DefKey, String)>,
    /// Layer declarations whose instances are being applied (`guard`).
    pub(super) applying: Vec<super::guard::DefKey>,
    /// Definitions already reported as recursive.
    pub(super) recursive: Vec<super::guard::DefKey>,
    /// The item spans of each list written out, by the list's span, so a
    /// `concat([a, b])` error can point at the item that does not fit.
    pub(super) list_items: HashMap<Span, Vec<Span>>,
    /// What a convolution or pooling did to the spatial size, by its result
    /// ("the 5×5 convolution without padding takes 28 to 24"), so a later
    /// size error can explain where the size came from.
    pub(super) shape_notes: HashMap<ir::Value, String>,
    /// Training or evaluation mode, what `training` is in a layer; `None`
    /// while a definition is checked on its own (both branches are checked).
    pub training: Option<bool>,
    /// The per-step key of random draws (`None`: a fixed key, as in
    /// initialisation and evaluation).
    pub rng_key: Option<ir::Value>,
    /// Buffers written in training mode, in order.
    pub buffer_writes: Vec<BufferWrite>,
    /// Models being applied, innermost last: their parameters' owners.
    pub(super) model_stack: Vec<String>,
}

impl<'a> Elab<'a> {
    pub fn new(db: &'a SourceDb, globals: &'a Globals, root: FileId, func_name: &str) -> Elab<'a> {
        Elab {
            db,
            globals,
            root,
            diags: Diagnostics::default(),
            b: Builder::new(func_name),
            frames: vec![],
            callee_origins: vec![],
            origins: HashMap::new(),
            params: vec![],
            layer_cache: HashMap::new(),
            repeats: vec![],
            model_base: 0,
            name_counts: HashMap::new(),
            pending_name: None,
            prefix: vec![],
            types: vec![],
            seed: 0,
            model_outputs: vec![],
            trained_model: None,
            output_spans: vec![],
            largest: None,
            blockers: vec![],
            probabilities: HashMap::new(),
            scores: HashMap::new(),
            class_labels: None,
            lowering: true,
            layers: vec![],
            model_memo: HashMap::new(),
            instances: vec![],
            calls: vec![],
            value_names: vec![],
            active: vec![],
            applying: vec![],
            recursive: vec![],
            list_items: HashMap::new(),
            shape_notes: HashMap::new(),
            training: None,
            rng_key: None,
            buffer_writes: vec![],
            model_stack: vec![],
        }
    }

    /// A new parameter of the function being built, as a tensor value.
    pub fn param_tensor(&mut self, name: impl Into<String>, ty: &ir::Type) -> Val {
        let v = self.b.param(name, ty.clone());
        Val::Tensor(Tensor {
            ty: super::value::TensorTy {
                dtype: ty.dtype,
                shape: Some(ty.shape.clone()),
            },
            ir: Some(v),
        })
    }

    // ---- diagnostics ------------------------------------------------------

    /// Report `d`. A primary label inside another file (the stdlib) moves
    /// to the user's text that caused it: the argument whose value the
    /// failing operand is (`"0.001"` of `adam(lr: "0.001")`, keeping the
    /// label that says what it is), else the innermost call in the user's
    /// file; the stdlib place stays as a secondary label.
    pub fn report(&mut self, mut d: Diagnostic) {
        if d.primary.span.file != self.root {
            let inner = d.primary.clone();
            if let Some(arg) = self.origins.get(&inner.span).copied() {
                let var = self.text(inner.span).to_string();
                let what = if var.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    format!("`{var}`")
                } else {
                    "this argument".to_string()
                };
                // A value of the wrong kind: say which argument it was.
                if matches!(d.code, "E0201" | "E0202" | "E0203") {
                    d.message = format!("{what} is used where {}", d.message);
                }
                // A number written as a string (`lr: "0.001"`).
                let written = self.text(arg);
                if let Some(number) = written.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    if d.code == "E0203" && number.trim().parse::<f64>().is_ok() {
                        let number = number.trim().to_string();
                        d = d.with_fix(
                            format!("write the number without quotes: `{number}`"),
                            crate::diag::Fix::replace(arg, number),
                        );
                    }
                }
                d.primary.span = arg;
                d.secondary.insert(
                    0,
                    crate::diag::Label {
                        span: inner.span,
                        message: "where the value is used".into(),
                    },
                );
            } else if let Some(site) = self.user_site() {
                d.primary.span = site;
                d.primary.message = format!("in this call: {}", inner.message);
                d.secondary.insert(
                    0,
                    crate::diag::Label {
                        span: inner.span,
                        message: "the operation that failed".into(),
                    },
                );
            }
        }
        // A mistake inside a layer or function shows the use that reached
        // it; the same mistake reached from other uses merges into this
        // one (`Diagnostics::push`), each use a label.
        if self.lowering && d.primary.span.file == self.root {
            let p = d.primary.span;
            if let Some(&site) = self
                .frames
                .iter()
                .find(|s| s.file == self.root && (s.end <= p.start || s.start >= p.end))
            {
                if !d.secondary.iter().any(|l| l.span == site) {
                    d.secondary.push(crate::diag::Label {
                        span: site,
                        message: "in this use".into(),
                    });
                }
            }
        }
        self.diags.push(d);
    }

    /// The user's text behind an operation at `span`: itself in the root
    /// file, else the innermost user place on the call path.
    pub(super) fn user_place(&self, span: Span) -> Span {
        if span.file == self.root {
            span
        } else {
            self.user_site().unwrap_or(span)
        }
    }

    /// The user's text a value at `span` stands for: `span` itself in the
    /// root file, or the argument it was bound from.
    pub(super) fn user_text(&self, span: Span) -> Option<Span> {
        if span.file == self.root {
            Some(span)
        } else {
            self.origins.get(&span).copied()
        }
    }

    /// The innermost place in the user's file on the current call path: a
    /// call written there, or a function the user passed in (an activation)
    /// that is running now.
    pub(super) fn user_site(&self) -> Option<Span> {
        for (i, s) in self.frames.iter().enumerate().rev() {
            if let Some(Some(o)) = self.callee_origins.get(i) {
                return Some(*o);
            }
            if s.file == self.root {
                return Some(*s);
            }
        }
        None
    }

    pub(super) fn text(&self, span: Span) -> &str {
        self.db.text(span)
    }

    /// Add to a "must be an integer" error about `v` at `span` the fix for
    /// a quotient that did not divide exactly: `floor(...)` of the same text.
    pub(super) fn with_rounding_fix(&self, d: Diagnostic, v: &Val, span: Span) -> Diagnostic {
        match v {
            Val::Float(x) if x.is_finite() && span.file == self.root && self.text(span).contains('/') => {
                let text = self.text(span).split_whitespace().collect::<Vec<_>>().join(" ");
                d.with_help(format!("`/` divides exactly, giving {x} here; to round down write `floor({text})`"))
            }
            _ => d,
        }
    }

    pub(super) fn record(&mut self, span: Span, v: &Val) {
        if span.file == self.root {
            if let Val::Tensor(t) = v {
                self.types.push((span, t.ty.to_string()));
                if let Some(shape) = &t.ty.shape {
                    // Elements per sample: symbolic dims (the batch) count 1.
                    let n = shape
                        .iter()
                        .fold(1u128, |n, d| n.saturating_mul(d.known().map_or(1, |k| k as u128)));
                    if self.largest.is_none_or(|(m, _)| n > m) {
                        self.largest = Some((n, span));
                    }
                }
            }
        }
    }

    // ---- expressions ------------------------------------------------------

    pub fn eval(&mut self, e: &Expr, env: &mut Env) -> Val {
        if !self.tick(e.span) {
            return Val::Error;
        }
        let v = self.eval_inner(e, env);
        if let Val::Tensor(Tensor {
            ty: super::value::TensorTy { shape: Some(s), .. },
            ..
        }) = &v
        {
            if !self.check_size(s, e.span, "tensor") {
                return Val::Error;
            }
        }
        self.record(e.span, &v);
        v
    }

    pub(super) fn eval_inner(&mut self, e: &Expr, env: &mut Env) -> Val {
        match &e.kind {
            ExprKind::Int(i) => Val::Int(*i),
            ExprKind::Float(x) => {
                if x.is_finite() {
                    Val::Float(*x)
                } else {
                    self.report(Diagnostic::error(
                        "E0002",
                        "number literal is too large",
                        e.span,
                        "not a finite f64",
                    ));
                    Val::Error
                }
            }
            ExprKind::Bool(b) => Val::Bool(*b),
            ExprKind::Str(s) => Val::Str(s.clone()),
            ExprKind::Error => {
                self.report(Diagnostic::error(
                    "E0002",
                    "number literal is too large",
                    e.span,
                    "does not fit in 64 bits",
                ));
                Val::Error
            }
            ExprKind::Name(id) => {
                // Remember which user text this stdlib name stands for now.
                if e.span.file != self.root {
                    match env.origin(&id.name) {
                        Some(o) => self.origins.insert(e.span, o),
                        None => self.origins.remove(&e.span),
                    };
                }
                self.lookup(id, env)
            }
            ExprKind::List(items) => {
                self.list_items.insert(e.span, items.iter().map(|i| i.span).collect());
                let items: Vec<Val> = items.iter().map(|i| self.eval(i, env)).collect();
                // Lists are copied by value: nested lists built from one
                // another can double at each step without evaluating more.
                let values = items.iter().map(Val::deep_len).fold(0usize, usize::saturating_add);
                if values > super::guard::MAX_LIST_VALUES {
                    self.report(Diagnostic::error(
                        "E0502",
                        format!("this list holds more than {} values", super::guard::MAX_LIST_VALUES),
                        e.span,
                        "too large to check",
                    ));
                    return Val::Error;
                }
                if !self.charge(values, e.span) {
                    return Val::Error;
                }
                Val::List(items)
            }
            ExprKind::Neg(x) => {
                let v = self.eval(x, env);
                self.unary(UnaryOp::Neg, &v, x.span, "-")
            }
            ExprKind::Binary(op, l, r) => {
                let lv = self.eval(l, env);
                let rv = self.eval(r, env);
                self.binary(*op, &lv, &rv, l.span, r.span, e.span)
            }
            ExprKind::Call { callee, args } => {
                let f = self.eval_callee(callee, args, env);
                if let Val::Fn(Callable::Builtin(super::builtin_table::Builtin::Repeat)) = f {
                    return self.repeat(args, env, e.span);
                }
                let args = self.eval_args(args, env);
                self.call(f, args, e.span, callee.span)
            }
            ExprKind::Field { base, field } => {
                let v = self.eval(base, env);
                self.member(&v, field, base.span)
            }
            ExprKind::Index { base, items } => {
                let v = self.eval(base, env);
                self.index(v, base.span, items, env, e.span)
            }
            ExprKind::If { cond, then, otherwise } => {
                // A `let`'s name goes to a layer that a branch builds as its
                // only expression, not to calls in the condition.
                let pending = self.pending_name.take();
                let c = self.eval(cond, env);
                let branch = |e: &mut Self, b: &Block| {
                    if let [Stmt::Expr(x)] = &b.stmts[..] {
                        if matches!(x.kind, ExprKind::Call { .. } | ExprKind::If { .. }) {
                            e.pending_name = pending.clone();
                        }
                    }
                    let mut inner = Env::child(Rc::new(env.clone()));
                    let v = e.eval_block(b, &mut inner);
                    e.pending_name = None;
                    v
                };
                match c {
                    Val::Bool(true) => branch(self, then),
                    Val::Bool(false) => branch(self, otherwise),
                    // Checking a definition alone: both branches must check.
                    Val::Any => {
                        branch(self, then);
                        branch(self, otherwise);
                        Val::Any
                    }
                    Val::Error => Val::Error,
                    other => {
                        let d = Diagnostic::error(
                            "E0203",
                            format!(
                                "`if` needs a condition known when compiling, such as `training`; found {}",
                                other.kind()
                            ),
                            cond.span,
                            "not a compile-time boolean",
                        )
                        .with_help("to choose per element, use `where(condition, a, b)`");
                        self.report(d);
                        Val::Error
                    }
                }
            }
            ExprKind::Scan(s) => self.scan(s, e.span, env),
            ExprKind::Pipe(lhs, rhs) => {
                let x = self.eval(lhs, env);
                let arg = ArgVal {
                    name: None,
                    val: x,
                    span: lhs.span,
                };
                // `x |> f(a)` passes `x` first when `f` is a function; when
                // `f(a)` builds a layer, the layer is applied to `x`.
                if let ExprKind::Call { callee, args } = &rhs.kind {
                    let f = self.eval_callee(callee, args, env);
                    if matches!(f, Val::Fn(_)) {
                        let mut all = vec![arg];
                        all.extend(self.eval_args(args, env));
                        return self.call(f, all, rhs.span, callee.span);
                    }
                    let args = self.eval_args(args, env);
                    let stage = self.call(f, args, rhs.span, callee.span);
                    return self.call(stage, vec![arg], rhs.span, rhs.span);
                }
                let f = self.eval(rhs, env);
                self.call(f, vec![arg], rhs.span, rhs.span)
            }
        }
    }

    /// Evaluate a callee; a layer constructed directly under `let NAME =`
    /// takes NAME.
    pub(super) fn eval_callee(&mut self, callee: &Expr, _args: &[Arg], env: &mut Env) -> Val {
        let pending = self.pending_name.take();
        let f = self.eval(callee, env);
        // The `let` name goes to the layer built (`repeat` numbers it).
        if matches!(
            f,
            Val::LayerCtor(_) | Val::Fn(Callable::Builtin(super::builtin_table::Builtin::Repeat))
        ) {
            self.pending_name = pending;
        }
        f
    }

    pub(super) fn eval_args(&mut self, args: &[Arg], env: &mut Env) -> Vec<ArgVal> {
        let mut out = vec![];
        for a in args {
            let v = self.eval(&a.value, env);
            out.push(ArgVal {
                name: a.name.clone(),
                val: v,
                span: a.value.span,
            });
            if let Some(to) = &a.arrow_to {
                let v = self.eval(to, env);
                out.push(ArgVal {
                    name: None,
                    val: v,
                    span: to.span,
                });
            }
        }
        out
    }

    /// `layer.name`: a parameter, buffer, argument or method of a layer
    /// instance; `model.name`: a layer the model created.
    pub(super) fn member(&mut self, v: &Val, field: &Ident, base_span: Span) -> Val {
        let (found, owner, candidates): (Option<Val>, String, Vec<String>) = match v {
            Val::Layer(inst) => (
                inst.env.get(&field.name).cloned(),
                format!("layer `{}` ({})", inst.name, inst.decl.name.name),
                inst.env.names(),
            ),
            Val::Model(m) => {
                let top = |i: &&Rc<LayerInst>| !i.name.contains('.');
                let hit = self.instances.iter().filter(top).find(|i| i.name == field.name).cloned();
                (
                    hit.map(Val::Layer),
                    format!("model `{}`", m.name.name),
                    self.instances.iter().filter(top).map(|i| i.name.clone()).collect(),
                )
            }
            Val::Any => return Val::Any,
            Val::Error => return Val::Error,
            other => {
                let d = Diagnostic::error(
                    "E0203",
                    format!("`.{}` reads a member of a layer or a model", field.name),
                    base_span,
                    format!("this is {}", other.kind()),
                );
                self.report(d);
                return Val::Error;
            }
        };
        if let Some(v) = found {
            return v;
        }
        let mut d = Diagnostic::error(
            "E0114",
            format!("{owner} has no member `{}`", field.name),
            field.span,
            "no such member",
        );
        d = match suggest(&field.name, candidates.iter().map(String::as_str)) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None if candidates.is_empty() => d,
            None => {
                let mut names = candidates.clone();
                names.sort();
                names.dedup();
                d.with_help(format!("its members are: {}", names.join(", ")))
            }
        };
        self.report(d);
        Val::Error
    }

    pub fn lookup(&mut self, id: &Ident, env: &Env) -> Val {
        if let Some(v) = env.get(&id.name) {
            return v.clone();
        }
        if let Some(g) = self.globals.get(&id.name) {
            return match g {
                Global::Fn(d) => Val::Fn(Callable::Decl {
                    decl: d.clone(),
                    env: None,
                }),
                Global::Layer(d) => Val::LayerCtor(d.clone()),
                Global::Model(d) => Val::Model(d.clone()),
                Global::Optimizer(d) => Val::OptimizerCtor(d.clone()),
            };
        }
        if id.name == "training" {
            return self.training.map_or(Val::Any, Val::Bool);
        }
        if let Some(b) = super::builtin_table::Builtin::from_name(&id.name) {
            return Val::Fn(Callable::Builtin(b));
        }
        let mut candidates: Vec<String> = env.names();
        candidates.extend(self.globals.names());
        candidates.extend(super::builtin_table::Builtin::ALL.iter().map(|b| b.name().to_string()));
        let mut d = Diagnostic::error("E0101", format!("unknown name `{}`", id.name), id.span, "not found in this scope");
        if let Some(s) = suggest(&id.name, candidates.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
        Val::Error
    }
}
