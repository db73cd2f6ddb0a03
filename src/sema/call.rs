//! Calls in the elaborator: binding arguments to parameters, checking
//! annotated shapes (binding their dim names), and inlining bodies.

use super::elab::{ArgVal, Elab, Mismatch};
use super::value::{CallRecord, Callable, Env, OptimizerInst, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::{suggest, Diagnostic, Edit, Fix};
use crate::ir::{DType, Dim};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

const MAX_DEPTH: usize = 64;

/// Standard-library functions whose results are probabilities.
const PROBABILITY_FNS: &[&str] = &["softmax", "sigmoid"];

/// The standard-library function a layer without an activation applies:
/// its result is a raw score (any real number).
const SCORE_FN: &str = "identity";

impl Elab<'_> {
    // ---- calls ------------------------------------------------------------

    pub fn call(&mut self, f: Val, args: Vec<ArgVal>, span: Span, callee_span: Span) -> Val {
        if self.frames.len() > MAX_DEPTH {
            let d = Diagnostic::error("E0106", "calls nest too deeply (is a function recursive?)", span, "this call");
            self.report(d);
            return Val::Error;
        }
        let record = self.lowering.then(|| call_head(&f, &args));
        let (start, depth) = (self.b.func().insts.len(), self.frames.len());
        self.frames.push(span);
        // Only a callee passed in as an argument (an activation) has an
        // origin; a call written in the user's file is its own site.
        let callee_origin = if callee_span.file == self.root {
            None
        } else {
            self.origins.get(&callee_span).copied()
        };
        self.callee_origins.push(callee_origin);
        let out = self.call_inner(f, args, span, callee_span);
        self.frames.pop();
        self.callee_origins.pop();
        if let (Some(Some((callee, layer, args))), Val::Tensor(Tensor { ir: Some(result), .. })) = (record, &out) {
            let end = self.b.func().insts.len();
            self.calls.push(CallRecord {
                callee,
                layer,
                args,
                result: *result,
                insts: start..end,
                depth,
            });
        }
        out
    }

    pub(super) fn call_inner(&mut self, f: Val, args: Vec<ArgVal>, span: Span, callee_span: Span) -> Val {
        match f {
            Val::Fn(c) => self.call_callable(c, args, span, callee_span),
            Val::LayerCtor(decl) => self.construct_layer(decl, args, span),
            Val::Layer(inst) => self.apply_layer(&inst, args, span),
            Val::Model(decl) => self.apply_model(decl, args, span),
            Val::OptimizerCtor(decl) => {
                let params = decl.params.clone();
                let name = decl.name.name.clone();
                let Some(bound) = self.bind(&params, args, &name, span, &Env::default()) else {
                    return Val::Error;
                };
                Val::Optimizer(Rc::new(OptimizerInst {
                    decl,
                    args: bound.vars.into_iter().collect(),
                    origins: bound.origins,
                }))
            }
            Val::List(items) if !items.is_empty() && items.iter().all(|v| matches!(v, Val::Layer(_))) => {
                self.apply_stack(items, args, span)
            }
            Val::Any => Val::Any,
            Val::Error => Val::Error,
            other => {
                let d = Diagnostic::error(
                    "E0106",
                    format!("{} cannot be called", other.kind()),
                    callee_span,
                    "not a function, layer or model",
                );
                self.report(d);
                Val::Error
            }
        }
    }

    pub(super) fn call_callable(&mut self, c: Callable, mut args: Vec<ArgVal>, span: Span, callee_span: Span) -> Val {
        match c {
            Callable::Builtin(name) => super::builtins::call(self, name, args, span, callee_span),
            Callable::Partial { base, args: fixed } => {
                for (name, val) in fixed {
                    args.push(ArgVal {
                        name: name.map(|n| Ident { name: n, span }),
                        val,
                        span,
                    });
                }
                self.call_callable(*base, args, span, callee_span)
            }
            Callable::Decl { decl, env } => self.call_fn(&decl, env, args, span),
        }
    }

    /// Bind arguments to parameters: positional, then by name, then
    /// defaults; annotated parameters are checked and their dim names bound.
    pub fn bind(&mut self, params: &[Param], args: Vec<ArgVal>, callee: &str, span: Span, outer: &Env) -> Option<Env> {
        let mut slots: Vec<Option<ArgVal>> = vec![None; params.len()];
        let mut ok = true;
        let mut positional = 0;
        for a in args {
            match &a.name {
                None => {
                    if positional >= params.len() {
                        let d = Diagnostic::error(
                            "E0103",
                            format!(
                                "`{callee}` takes {} argument{}, but more were given",
                                params.len(),
                                if params.len() == 1 { "" } else { "s" }
                            ),
                            a.span,
                            "unexpected argument",
                        );
                        self.report(d);
                        ok = false;
                        // One report per call, at the first extra argument.
                        break;
                    }
                    slots[positional] = Some(a);
                    positional += 1;
                }
                Some(n) => match params.iter().position(|p| p.name.name == n.name) {
                    Some(i) if slots[i].is_some() => {
                        let d = Diagnostic::error(
                            "E0105",
                            format!("argument `{}` of `{callee}` is given twice", n.name),
                            n.span,
                            "given again here",
                        );
                        self.report(d);
                        ok = false;
                    }
                    Some(i) => slots[i] = Some(a),
                    None => {
                        let mut d = Diagnostic::error(
                            "E0104",
                            format!("`{callee}` has no parameter `{}`", n.name),
                            n.span,
                            "unknown argument name",
                        );
                        d = d.with_help(match suggest(&n.name, params.iter().map(|p| p.name.name.as_str())) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!(
                                "the parameters of `{callee}` are: {}",
                                params.iter().map(|p| p.name.name.as_str()).collect::<Vec<_>>().join(", ")
                            ),
                        });
                        self.report(d);
                        ok = false;
                    }
                },
            }
        }
        if self.spread_list(params, &mut slots, callee) {
            ok = false;
        }
        let mut env = Env {
            vars: HashMap::new(),
            parent: Some(Rc::new(outer.clone())),
            ..Default::default()
        };
        for (p, slot) in params.iter().zip(slots) {
            let val = match slot {
                Some(a) => {
                    if let Some(o) = self.user_text(a.span) {
                        env.origins.insert(p.name.name.clone(), o);
                    }
                    let arg_span = a.span;
                    let v = self.check_param(p, a, &mut env, callee);
                    self.check_logits(p, &v, arg_span, callee);
                    self.check_probs(p, &v, arg_span, span, callee);
                    if matches!(v, Val::Error) {
                        ok = false;
                    }
                    v
                }
                None => match &p.default {
                    Some(def) => {
                        let mut denv = env.clone();
                        self.eval(def, &mut denv)
                    }
                    None => {
                        let d = Diagnostic::error(
                            "E0103",
                            format!("`{callee}` is missing argument `{}`", p.name.name),
                            span,
                            format!("`{}` not given", p.name.name),
                        )
                        .with_secondary(p.span, "declared here");
                        self.report(d);
                        ok = false;
                        Val::Error
                    }
                },
            };
            env.vars.insert(p.name.name.clone(), val);
        }
        ok.then_some(env)
    }

    /// `Dense([4, 3])`: a list of whole numbers given for an `int`
    /// parameter whose next parameters, also `int`, are not given: the
    /// sizes were meant as separate arguments. One error at the list (not
    /// one per parameter), with the arguments written out (`4 -> 3`, the
    /// form of a layer's sizes); the parameters it covers become poison.
    fn spread_list(&mut self, params: &[Param], slots: &mut [Option<ArgVal>], callee: &str) -> bool {
        let is_int = |p: &Param| matches!(&p.ty, Some(TypeExpr::Named(n)) if n.name == "int");
        for i in 0..params.len() {
            let Some(a) = &slots[i] else { continue };
            let Val::List(items) = &a.val else { continue };
            let ints: Option<Vec<i64>> = items.iter().map(|v| if let Val::Int(k) = v { Some(*k) } else { None }).collect();
            let Some(ints) = ints else { continue };
            let k = ints.len();
            let covers = i + k <= params.len() && (i..i + k).all(|j| is_int(&params[j])) && (i + 1..i + k).all(|j| slots[j].is_none());
            if k < 2 || !is_int(&params[i]) || !covers {
                continue;
            }
            let span = a.span;
            let written: Vec<String> = ints.iter().map(|v| v.to_string()).collect();
            let replacement = if k == 2 { written.join(" -> ") } else { written.join(", ") };
            let names: Vec<&str> = params[i..i + k].iter().map(|p| p.name.name.as_str()).collect();
            let d = Diagnostic::error(
                "E0203",
                format!(
                    "`{callee}` takes {} as separate arguments, not one list",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ")
                ),
                span,
                format!("this is a list of {k} numbers"),
            )
            .with_fix(format!("write them as `{replacement}`"), Fix::replace(span, replacement));
            self.report(d);
            for slot in &mut slots[i..i + k] {
                *slot = Some(ArgVal {
                    name: None,
                    val: Val::Error,
                    span,
                });
            }
            return true;
        }
        false
    }

    /// Check an argument against its parameter's annotation.
    pub(super) fn check_param(&mut self, p: &Param, a: ArgVal, env: &mut Env, callee: &str) -> Val {
        let Some(ty) = &p.ty else { return a.val };
        if a.val.is_poison() {
            if let (TypeExpr::Tensor { dims, .. }, Val::Any) = (ty, &a.val) {
                self.bind_pattern_unknown(dims, env);
            }
            return a.val;
        }
        match ty {
            TypeExpr::Named(n) => match (n.name.as_str(), &a.val) {
                ("int", Val::Int(_) | Val::Dim(_)) => a.val,
                ("float", Val::Int(i)) => Val::Float(*i as f64),
                ("float", Val::Float(_)) => a.val,
                ("bool", Val::Bool(_)) => a.val,
                ("str", Val::Str(_)) => a.val,
                ("int", Val::Float(x)) if x.fract() == 0.0 && x.abs() < 1e15 && a.span.file == self.root => {
                    // `Dense(1e3 -> 10)`: a whole number written as a float.
                    let whole = *x as i64;
                    let d = Diagnostic::error(
                        "E0203",
                        format!("argument `{}` of `{callee}` must be a compile-time int", p.name.name),
                        a.span,
                        format!("this is the number {x}, a float"),
                    )
                    .with_secondary(n.span, format!("`{}` declared as int here", p.name.name))
                    .with_fix(
                        format!("write it as an integer: `{whole}`"),
                        Fix::replace(a.span, whole.to_string()),
                    );
                    self.report(d);
                    Val::Error
                }
                ("int" | "float" | "bool" | "str", v) => {
                    let d = Diagnostic::error(
                        if matches!(v, Val::Tensor(_)) { "E0202" } else { "E0203" },
                        format!("argument `{}` of `{callee}` must be a compile-time {}", p.name.name, n.name),
                        a.span,
                        format!("this is {}", v.kind()),
                    )
                    .with_secondary(n.span, format!("`{}` declared as {} here", p.name.name, n.name));
                    let d = if n.name == "int" { self.with_rounding_fix(d, v, a.span) } else { d };
                    self.report(d);
                    Val::Error
                }
                _ => a.val,
            },
            TypeExpr::Fn(s) => match &a.val {
                Val::Fn(_) | Val::LayerCtor(_) | Val::Layer(_) | Val::Model(_) => a.val,
                v => {
                    // `"relu"`: the function's name written as a string.
                    let named = match v {
                        Val::Str(name) if a.span.file == self.root => {
                            let known = self.globals.get(name).is_some() || super::builtin_table::Builtin::from_name(name).is_some();
                            known.then(|| name.clone())
                        }
                        _ => None,
                    };
                    let d = Diagnostic::error(
                        "E0203",
                        format!("argument `{}` of `{callee}` must be a function", p.name.name),
                        a.span,
                        format!("this is {}", v.kind()),
                    )
                    .with_secondary(*s, "declared as fn here");
                    let d = match named {
                        Some(name) => d.with_fix(format!("name the function without quotes: `{name}`"), Fix::replace(a.span, name)),
                        None => d,
                    };
                    self.report(d);
                    Val::Error
                }
            },
            TypeExpr::Tensor { dtype, dims, span } => {
                let Some(t) = self.as_tensor(&a.val, a.span, &format!("argument `{}` of `{callee}`", p.name.name)) else {
                    return Val::Error;
                };
                let want = match dtype.as_ref().map(|d| d.name.as_str()) {
                    Some("i32") => DType::I32,
                    _ => DType::F32,
                };
                if t.ty.dtype != want {
                    let d = Diagnostic::error(
                        "E0201",
                        format!("argument `{}` of `{callee}` must be {want}, found {}", p.name.name, t.ty.dtype),
                        a.span,
                        format!("this is {}", t.ty),
                    )
                    .with_secondary(*span, format!("declared {want} here"));
                    self.report(d);
                    return Val::Error;
                }
                match self.match_pattern(dims, &t.ty, env) {
                    Ok(()) => Val::Tensor(t),
                    Err(m) => {
                        let d = Diagnostic::error(
                            "E0301",
                            format!(
                                "argument `{}` of `{callee}` must have shape {}, found {}",
                                p.name.name,
                                self.pattern_text(dims),
                                t.ty
                            ),
                            a.span,
                            format!("this has shape {}", t.ty),
                        )
                        .with_secondary(*span, format!("expected {} here", self.pattern_text(dims)))
                        .with_note(format!("expected dim {}, found {}", m.expected, m.found));
                        self.report(d);
                        Val::Error
                    }
                }
            }
        }
    }

    pub fn pattern_text(&self, dims: &[DimExpr]) -> String {
        let parts: Vec<&str> = dims.iter().map(|d| self.text(d.span())).collect();
        format!("[{}]", parts.join(", "))
    }

    /// Bind every name in a shape pattern to "unknown" (checking alone).
    pub(super) fn bind_pattern_unknown(&mut self, dims: &[DimExpr], env: &mut Env) {
        for d in dims {
            if let DimExpr::Name(n) = d {
                if env.get(&n.name).is_none() {
                    env.vars.insert(n.name.clone(), Val::Any);
                }
            }
        }
    }

    /// Match a shape annotation against a type, binding unbound dim names.
    pub(super) fn match_pattern(&mut self, dims: &[DimExpr], ty: &TensorTy, env: &mut Env) -> Result<(), Mismatch> {
        let Some(shape) = &ty.shape else {
            self.bind_pattern_unknown(dims, env);
            return Ok(());
        };
        let ell = dims.iter().position(|d| matches!(d, DimExpr::Ellipsis(_)));
        let fixed = dims.len() - usize::from(ell.is_some());
        let rank_ok = if ell.is_some() {
            shape.len() >= fixed
        } else {
            shape.len() == fixed
        };
        if !rank_ok {
            return Err(Mismatch {
                name: None,
                expected: format!("rank {}{}", fixed, if ell.is_some() { " or more" } else { "" }),
                found: format!("rank {}", shape.len()),
                at: None,
            });
        }
        // Pair each pattern dim with its actual dim.
        let mut pairs: Vec<(&DimExpr, &Dim)> = vec![];
        match ell {
            None => pairs.extend(dims.iter().zip(shape.iter())),
            Some(e) => {
                pairs.extend(dims[..e].iter().zip(shape.iter()));
                let tail = dims.len() - e - 1;
                pairs.extend(dims[e + 1..].iter().zip(shape[shape.len() - tail..].iter()));
            }
        }
        for (pd, actual) in pairs {
            match pd {
                DimExpr::Name(n) if env.get(&n.name).is_none() => {
                    let v = match actual {
                        Dim::Known(k) => Val::Int(*k as i64),
                        Dim::Sym(s) => Val::Dim(s.clone()),
                    };
                    env.vars.insert(n.name.clone(), v);
                }
                _ => {
                    let want = self.eval_dim(pd, env);
                    match want {
                        Some(Some(w)) if &w != actual => {
                            return Err(Mismatch {
                                name: if let DimExpr::Name(n) = pd { Some(n.name.clone()) } else { None },
                                expected: w.to_string(),
                                found: actual.to_string(),
                                at: Some(pd.span()),
                            })
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Evaluate a dim expression: `Some(Some(d))` a dim, `Some(None)`
    /// unknown (checking alone), `None` an error already reported.
    pub fn eval_dim(&mut self, d: &DimExpr, env: &Env) -> Option<Option<Dim>> {
        match d {
            DimExpr::Int(k, s) => {
                if *k < 0 {
                    self.report(Diagnostic::error("E0204", "dimensions cannot be negative", *s, "negative"));
                    return None;
                }
                Some(Some(Dim::Known(*k as usize)))
            }
            DimExpr::Ellipsis(_) => Some(None),
            DimExpr::Name(n) => match env.get(&n.name).cloned().or_else(|| self.globals.get(&n.name).map(|_| Val::Error)) {
                Some(Val::Int(k)) if k >= 0 => Some(Some(Dim::Known(k as usize))),
                Some(Val::Dim(s)) => Some(Some(Dim::Sym(s))),
                Some(Val::Any) => Some(None),
                Some(Val::Error) => None,
                Some(v) => {
                    let d = Diagnostic::error(
                        "E0202",
                        format!("dimension `{}` must be a non-negative integer", n.name),
                        n.span,
                        format!("`{}` is {}", n.name, v.kind()),
                    );
                    self.report(d);
                    None
                }
                // An unbound name in a shape is a fresh symbol (`batch`).
                None => Some(Some(Dim::Sym(n.name.clone()))),
            },
            DimExpr::Bin(op, l, r, s) => {
                let a = self.eval_dim(l, env)?;
                let b = self.eval_dim(r, env)?;
                let (Some(a), Some(b)) = (a, b) else { return Some(None) };
                match (&a, &b) {
                    (Dim::Known(x), Dim::Known(y)) => {
                        let (x, y) = (*x as i64, *y as i64);
                        let v = match op {
                            DimOp::Add => x.checked_add(y),
                            DimOp::Sub => x.checked_sub(y),
                            DimOp::Mul => x.checked_mul(y),
                            DimOp::Div => x.checked_div(y),
                        };
                        match v {
                            Some(v) if v >= 0 => Some(Some(Dim::Known(v as usize))),
                            _ => {
                                self.report(Diagnostic::error(
                                    "E0204",
                                    "dimension arithmetic overflows, divides by zero or goes negative",
                                    *s,
                                    format!("with {a} and {b}"),
                                ));
                                None
                            }
                        }
                    }
                    _ => {
                        let sym = match op {
                            DimOp::Add => "+",
                            DimOp::Sub => "-",
                            DimOp::Mul => "*",
                            DimOp::Div => "/",
                        };
                        let text = format!("({a}{sym}{b})");
                        if text.len() > super::guard::MAX_SYM_DIM {
                            self.report(Diagnostic::error(
                                "E0204",
                                "symbolic dimension expression is too long",
                                *s,
                                format!("more than {} characters", super::guard::MAX_SYM_DIM),
                            ));
                            return None;
                        }
                        Some(Some(Dim::Sym(text)))
                    }
                }
            }
        }
    }

    /// The shape a type annotation describes in `env` (`None`: unknown).
    pub fn eval_shape(&mut self, ty: &TypeExpr, env: &Env) -> Option<Option<Vec<Dim>>> {
        let TypeExpr::Tensor { dims, .. } = ty else { return Some(None) };
        let mut out = vec![];
        for d in dims {
            match self.eval_dim(d, env)? {
                Some(d) => out.push(d),
                None => return Some(None),
            }
        }
        Some(Some(out))
    }

    pub(super) fn call_fn(&mut self, decl: &Rc<FnDecl>, captured: Option<Rc<Env>>, args: Vec<ArgVal>, span: Span) -> Val {
        let instance = captured.as_ref().map_or(0, |e| Rc::as_ptr(e) as usize);
        // Default arguments are evaluated while binding: they count as
        // part of the body (`fn f(x, y = f(1))` recurses).
        if !self.enter(super::guard::key(decl, instance), &decl.name.name, span) {
            return Val::Error;
        }
        let out = self.call_fn_entered(decl, captured, args, span);
        self.leave();
        out
    }

    fn call_fn_entered(&mut self, decl: &Rc<FnDecl>, captured: Option<Rc<Env>>, args: Vec<ArgVal>, span: Span) -> Val {
        let outer = match &captured {
            Some(e) => Env {
                vars: HashMap::new(),
                parent: Some(e.clone()),
                ..Default::default()
            },
            None => Env::default(),
        };
        let Some(mut env) = self.bind(&decl.params, args, &decl.name.name, span, &outer) else {
            return Val::Error;
        };
        let out = self.eval_body(&decl.body, &mut env);
        if !self.check_return(decl.ret.as_ref(), &out, &decl.body, &mut env, &decl.name.name) {
            return Val::Error;
        }
        if let Val::Tensor(Tensor { ir: Some(v), .. }) = &out {
            let name = decl.name.name.as_str();
            if self.db.file(decl.span.file).builtin {
                if PROBABILITY_FNS.contains(&name) {
                    let at = self.user_place(span);
                    self.probabilities.insert(*v, at);
                } else if name == SCORE_FN {
                    let at = self.user_place(span);
                    self.scores.insert(*v, at);
                }
            }
        }
        out
    }

    /// W0002: a loss parameter named `logits` given probabilities (the
    /// output of `softmax` or `sigmoid`): the loss squashes them again.
    fn check_logits(&mut self, p: &Param, v: &Val, arg: Span, callee: &str) {
        let Val::Tensor(Tensor { ir: Some(value), .. }) = v else { return };
        if p.name.name != "logits" {
            return;
        }
        let Some(&site) = self.probabilities.get(value) else { return };
        let mut d = Diagnostic::error(
            "W0002",
            format!("`{callee}` expects logits, but this is already a probability"),
            site,
            "this turns logits into probabilities",
        )
        .with_note(format!(
            "`{callee}` applies {} itself: drop the softmax or sigmoid and give it the raw scores",
            if callee.starts_with("binary_") {
                "the sigmoid"
            } else {
                "log_softmax"
            }
        ));
        if let Some(a) = self.user_text(arg) {
            if a != site {
                d = d.with_secondary(a, format!("given to `{callee}` here"));
            }
        }
        if let Some(fix) = self.drop_squash_fix(site) {
            d = d.with_fix("give the loss the raw scores (logits)", fix);
        }
        self.report(d);
    }

    /// W0003: a loss parameter named `probs` given raw scores (the output
    /// of a layer without an activation): the loss takes `log(p)` of
    /// numbers that may be negative or above 1.
    fn check_probs(&mut self, p: &Param, v: &Val, arg: Span, call: Span, callee: &str) {
        let Val::Tensor(Tensor { ir: Some(value), .. }) = v else { return };
        if p.name.name != "probs" {
            return;
        }
        let Some(&site) = self.scores.get(value) else { return };
        let logits_loss = format!("{callee}_with_logits");
        let mut d = Diagnostic::error(
            "W0003",
            format!("`{callee}` expects probabilities, but this gives raw scores"),
            site,
            "no activation here: these are raw scores, any real number",
        )
        .with_note(format!(
            "`{callee}` computes log({0}) and log(1 - {0}): for a score outside (0, 1) one of them is not a number",
            p.name.name
        ));
        if let Some(a) = self.user_text(arg) {
            if a != site {
                d = d.with_secondary(a, format!("given to `{callee}` here"));
            }
        }
        let has_logits_loss = self.globals.get(&logits_loss).is_some();
        d = d.with_help(if has_logits_loss {
            format!("give the layer a `sigmoid` activation, or keep the scores and use `{logits_loss}`, which applies the sigmoid itself")
        } else {
            "give the layer a `sigmoid` activation".to_string()
        });
        if has_logits_loss && call.file == self.root && self.text(call).starts_with(callee) {
            let name = Span::new(call.file, call.start as usize, call.start as usize + callee.len());
            d.fixes.push(Fix::replace(name, logits_loss.clone()));
        }
        if let Some(fix) = self.add_sigmoid_fix(site) {
            d.fixes.push(fix);
        }
        self.report(d);
    }

    /// Give the layer the user wrote at `site` a sigmoid activation:
    /// `Dense(8 -> 1)` becomes `Dense(8 -> 1, sigmoid)`, and an explicit
    /// `identity` becomes `sigmoid`.
    fn add_sigmoid_fix(&self, site: Span) -> Option<Fix> {
        if site.file != self.root {
            return None;
        }
        if self.text(site) == SCORE_FN {
            return Some(Fix::replace(site, "sigmoid"));
        }
        if !self.text(site).ends_with(')') {
            return None;
        }
        let close = site.end as usize - 1;
        Some(Fix {
            title: "Add a `sigmoid` activation".to_string(),
            edits: vec![Edit {
                span: Span::new(site.file, close, close),
                replacement: ", sigmoid".to_string(),
            }],
        })
    }

    /// Remove the probability step the user wrote at `site`: an activation
    /// argument (`, softmax`), a pipeline stage (`|> softmax`), or a call
    /// around the logits (`softmax(model(x))` becomes `model(x)`).
    fn drop_squash_fix(&self, site: Span) -> Option<Fix> {
        if site.file != self.root {
            return None;
        }
        let text = &self.db.file(self.root).text;
        let before = text[..site.start as usize].trim_end();
        let s = self.text(site);
        if let Some(open) = s.find('(') {
            let inner = s[open + 1..].strip_suffix(')')?;
            return Some(Fix::replace(site, inner.trim().to_string()));
        }
        for sep in [",", "|>"] {
            if let Some(rest) = before.strip_suffix(sep) {
                let start = rest.trim_end().len();
                return Some(Fix {
                    title: format!("Remove `{s}`"),
                    edits: vec![Edit {
                        span: Span::new(site.file, start, site.end as usize),
                        replacement: String::new(),
                    }],
                });
            }
        }
        None
    }

    /// Check a body's result against the declared `-> type`.
    /// False after reporting a mismatch (the caller's result is then an
    /// error, so its users report nothing more).
    pub(super) fn check_return(&mut self, ret: Option<&TypeExpr>, out: &Val, body: &Body, env: &mut Env, name: &str) -> bool {
        let (Some(TypeExpr::Tensor { dims, span, .. }), Val::Tensor(t)) = (ret, out) else {
            return true;
        };
        if let Err(m) = self.match_pattern(dims, &t.ty, env) {
            // The stage that produced the result is what to change, with
            // the declaration beside it.
            let Some(stage) = result_stage(body) else { return false };
            let mut d = Diagnostic::error(
                "E0305",
                format!("`{name}` returns {}, but its declaration says {}", t.ty, self.pattern_text(dims)),
                stage.span,
                format!("this has shape {}", t.ty),
            )
            .with_secondary(*span, "declared here")
            .with_note(format!("expected dim {}, found {}", m.expected, m.found));
            let mut fixes = reduction_axis_fixes(stage);
            if let Some(axis) = fixes.first().map(|(_, f)| f.edits[0].span) {
                // A reduction over the wrong axis: the axis is what to change.
                d.secondary.insert(
                    0,
                    crate::diag::Label {
                        span: d.primary.span,
                        message: d.primary.message.clone(),
                    },
                );
                d.primary = crate::diag::Label {
                    span: axis,
                    message: "reduces over this axis".into(),
                };
            }
            fixes.extend(self.return_fixes(body, stage, &m, &t.ty, env));
            if let Some((help, _)) = fixes.first() {
                d.help = Some(help.clone());
            }
            d.fixes = fixes.into_iter().map(|(_, f)| f).collect();
            self.report(d);
            return false;
        }
        true
    }

    /// Changes that could make a body's result match its declaration, best
    /// first; the driver keeps the ones that check.
    fn return_fixes(&mut self, body: &Body, stage: &Expr, m: &Mismatch, found: &TensorTy, env: &Env) -> Vec<(String, Fix)> {
        let mut out = vec![];
        let (Ok(want), Ok(have)) = (m.expected.parse::<i64>(), m.found.parse::<i64>()) else {
            // Ranks differ: an image that was never flattened.
            if let (Some(shape), Some(first)) = (&found.shape, first_stage(body)) {
                if shape.len() > 2 && first.span.file == self.root {
                    let at = Span {
                        end: first.span.start,
                        ..first.span
                    };
                    out.push((
                        "the result still has the image's dims; insert `flatten` before the layers".to_string(),
                        Fix {
                            title: "Insert `flatten |>`".into(),
                            edits: vec![Edit {
                                span: at,
                                replacement: "flatten |> ".into(),
                            }],
                        },
                    ));
                }
            }
            return out;
        };
        // The size argument of the last layer that made `have`.
        if let Some(arg) = self.layer_literal(stage, have, env) {
            let fixed = self.text_with(stage.span, arg, &want.to_string());
            out.push((
                format!(
                    "the last stage makes {have} where the declaration says {want}; write `{}`",
                    one_line(&fixed)
                ),
                Fix::replace(arg, want.to_string()),
            ));
        }
        // Or the declaration was wrong.
        if let Some(at) = m.at.filter(|s| s.file == self.root && self.text(*s).parse::<i64>().is_ok()) {
            out.push((format!("or declare {have} there"), Fix::replace(at, have.to_string())));
        }
        // Or a last layer is missing.
        if found.shape.as_ref().is_some_and(|s| s.len() == 2) && stage.span.file == self.root {
            let end = result_end(body);
            out.push((
                format!("or add a layer from {have} to {want}"),
                Fix {
                    title: format!("Append `|> Dense({have} -> {want})`"),
                    edits: vec![Edit {
                        span: Span { start: end.end, ..end },
                        replacement: format!(" |> Dense({have} -> {want})"),
                    }],
                },
            ));
        }
        out
    }

    /// The integer literal argument equal to `value` of the layer applied by
    /// `stage` (`Dense(64 -> 1)`, or `out` / `out(h)` for `let out = Dense(...)`).
    pub(super) fn layer_literal(&mut self, stage: &Expr, value: i64, env: &Env) -> Option<Span> {
        let literal_among = |this: &Self, spans: Vec<Span>| {
            spans
                .into_iter()
                .filter(|s| s.file == this.root && this.text(*s).trim().parse::<i64>() == Ok(value))
                .max_by_key(|s| s.start)
        };
        match &stage.kind {
            ExprKind::Call { callee, args } => {
                let named = match &callee.kind {
                    ExprKind::Name(n) => env.get(&n.name).cloned(),
                    _ => None,
                };
                if let Some(Val::Layer(inst)) = named {
                    return literal_among(self, inst.arg_spans.values().copied().collect());
                }
                let mut spans = vec![];
                for a in args {
                    spans.push(a.value.span);
                    if let Some(to) = &a.arrow_to {
                        spans.push(to.span);
                    }
                }
                literal_among(self, spans)
            }
            ExprKind::Name(n) => match env.get(&n.name) {
                Some(Val::Layer(inst)) => {
                    let inst = inst.clone();
                    literal_among(self, inst.arg_spans.values().copied().collect())
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The text of `whole` with `part` (inside it) replaced.
    pub(super) fn text_with(&self, whole: Span, part: Span, replacement: &str) -> String {
        if part.file != whole.file || part.start < whole.start || part.end > whole.end {
            return replacement.to_string();
        }
        let mut t = self.text(whole).to_string();
        t.replace_range((part.start - whole.start) as usize..(part.end - whole.start) as usize, replacement);
        t
    }

    pub fn eval_body(&mut self, body: &Body, env: &mut Env) -> Val {
        match body {
            Body::Expr(e) => self.eval(e, env),
            Body::Block(b) => self.eval_block(b, env),
        }
    }

    pub(super) fn eval_block(&mut self, b: &Block, env: &mut Env) -> Val {
        let mut last = Val::Any;
        for s in &b.stmts {
            match s {
                Stmt::Let { name, ty, value, .. } => {
                    let v = self.eval_let(name, value, env);
                    if let (Some(TypeExpr::Tensor { dims, span, .. }), Val::Tensor(t)) = (ty, &v) {
                        {
                            if let Err(m) = self.match_pattern(dims, &t.ty, env) {
                                let d = Diagnostic::error(
                                    "E0301",
                                    format!("`{}` is declared {}, but its value is {}", name.name, self.pattern_text(dims), t.ty),
                                    value.span,
                                    format!("this has shape {}", t.ty),
                                )
                                .with_secondary(*span, "declared here")
                                .with_note(format!("expected dim {}, found {}", m.expected, m.found));
                                self.report(d);
                            }
                        }
                    }
                    self.record(name.span, &v);
                    env.vars.insert(name.name.clone(), v);
                }
                Stmt::Return { value, .. } => return self.eval(value, env),
                Stmt::Expr(e) => last = self.eval(e, env),
                Stmt::Assign {
                    target,
                    op: AssignOp::Set,
                    value,
                    ..
                } if env.is_buffer(&target.name) => self.write_buffer(target, value, target.span.to(value.span), env),
                Stmt::State { span, .. } | Stmt::Assign { span, .. } => {
                    let d = Diagnostic::error("E0110", "`state` and assignments belong in an optimizer", *span, "not allowed here")
                        .with_help("use `let name = value` to name a value; a layer's `buffer` can be assigned in training mode");
                    self.report(d);
                }
            }
        }
        last
    }

    /// `mean = ...` in a layer method: the buffer's value after this
    /// training step. Reads in the same step still see the value before.
    fn write_buffer(&mut self, target: &Ident, value: &Expr, span: Span, env: &mut Env) {
        let new = self.eval(value, env);
        if self.training == Some(false) {
            let d = Diagnostic::error(
                "E0111",
                format!("buffer `{}` is written in evaluation mode", target.name),
                span,
                "written here when not training",
            )
            .with_help(format!("write it only while training: `if training {{ {} = ... }}`", target.name));
            self.report(d);
            return;
        }
        let Some(Val::Tensor(old)) = env.get(&target.name).cloned() else {
            return;
        };
        let new = match &new {
            Val::Tensor(t) if t.ty.shape.is_some() && old.ty.shape.is_some() && t.ty.shape != old.ty.shape => {
                let d = Diagnostic::error(
                    "E0301",
                    format!("buffer `{}` is {}, but the new value is {}", target.name, old.ty, t.ty),
                    value.span,
                    format!("this has shape {}", t.ty),
                );
                self.report(d);
                return;
            }
            Val::Tensor(t) => t.clone(),
            Val::Int(_) | Val::Float(_) => match self.as_tensor(&new, value.span, "buffer") {
                Some(t) => self.broadcast_to(&t, old.ty.shape.as_deref().unwrap_or(&[])),
                None => return,
            },
            Val::Error | Val::Any => return,
            other => {
                let d = Diagnostic::error(
                    "E0203",
                    format!("buffer `{}` must be given a tensor, found {}", target.name, other.kind()),
                    value.span,
                    "not a tensor",
                );
                self.report(d);
                return;
            }
        };
        if let (Some(buffer), Some(value)) = (old.ir, new.ir) {
            if self.training == Some(true) {
                self.buffer_writes.push(super::elab::BufferWrite { buffer, value, span });
            }
        }
    }

    pub fn eval_let(&mut self, name: &Ident, value: &Expr, env: &mut Env) -> Val {
        // `let shortcut = if keeps_shape { identity } else { ConvBn(...) }`
        // names the layer its branch builds, as a direct call would.
        if matches!(&value.kind, ExprKind::Call { .. } | ExprKind::If { .. }) {
            self.pending_name = Some(name.name.clone());
        }
        let v = self.eval(value, env);
        self.pending_name = None;
        self.name_value(&name.name, &v);
        v
    }

    /// Remember that the source calls `v` `name` (see `value_names`).
    pub(super) fn name_value(&mut self, name: &str, v: &Val) {
        if let (true, Val::Tensor(Tensor { ir: Some(r), .. })) = (self.lowering, v) {
            self.value_names.push((*r, name.to_string()));
        }
    }
}

/// The expression a body returns.
pub(super) fn result_expr(body: &Body) -> Option<&Expr> {
    match body {
        Body::Expr(e) => Some(e),
        Body::Block(b) => b.stmts.iter().rev().find_map(|s| match s {
            Stmt::Return { value, .. } => Some(value),
            Stmt::Expr(e) => Some(e),
            _ => None,
        }),
    }
}

/// What a call record says about the callee and tensor arguments, taken
/// before the call consumes them; None for values that are not calls of
/// tensor code (constructors, optimizers).
fn call_head(f: &Val, args: &[ArgVal]) -> Option<(String, Option<String>, Vec<crate::ir::Value>)> {
    fn name(c: &Callable) -> String {
        match c {
            Callable::Decl { decl, .. } => decl.name.name.clone(),
            Callable::Builtin(b) => b.name().to_string(),
            Callable::Partial { base, .. } => name(base),
        }
    }
    let (callee, layer) = match f {
        Val::Fn(c) => (name(c), None),
        Val::Layer(inst) => (inst.decl.name.name.clone(), Some(inst.name.clone())),
        Val::Model(decl) => (decl.name.name.clone(), None),
        _ => return None,
    };
    let tensors = args
        .iter()
        .filter_map(|a| {
            if let Val::Tensor(Tensor { ir: Some(v), .. }) = &a.val {
                Some(*v)
            } else {
                None
            }
        })
        .collect();
    Some((callee, layer, tensors))
}

/// The span of the whole result (the end of the body's value).
fn result_end(body: &Body) -> Span {
    result_expr(body).map_or(body.span(), |e| e.span)
}

/// The last stage of the result: `Dense(64 -> 10)` of `x |> ... |> Dense(64 -> 10)`.
pub(super) fn result_stage(body: &Body) -> Option<&Expr> {
    let mut e = result_expr(body)?;
    while let ExprKind::Pipe(_, rhs) = &e.kind {
        e = rhs;
    }
    Some(e)
}

/// For each `mean`/`sum`/`max`/`min` call in `e` with a literal `axis:`,
/// the other axes to try (the driver keeps the ones that check).
fn reduction_axis_fixes(e: &Expr) -> Vec<(String, Fix)> {
    let mut out = vec![];
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Call { callee, args } => {
                let reduction = matches!(&callee.kind, ExprKind::Name(n) if ["mean", "sum", "max", "min"].contains(&n.name.as_str()));
                for a in args {
                    let axis = a.name.as_ref().is_some_and(|n| n.name == "axis");
                    let literal = match &a.value.kind {
                        ExprKind::Int(i) => Some(*i),
                        ExprKind::Neg(x) => match x.kind {
                            ExprKind::Int(i) => Some(-i),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let (true, true, Some(now)) = (reduction, axis, literal) {
                        for other in [-1i64, 1, 0, 2] {
                            if other != now {
                                out.push((
                                    format!("reduce over axis {other}: `axis: {other}`"),
                                    Fix::replace(a.value.span, other.to_string()),
                                ));
                            }
                        }
                    }
                    stack.push(&a.value);
                }
            }
            ExprKind::Pipe(l, r) | ExprKind::Binary(_, l, r) => {
                stack.push(l);
                stack.push(r);
            }
            ExprKind::Neg(x) => stack.push(x),
            _ => {}
        }
    }
    out
}

/// The first stage applied to the input: `flatten` of `x |> flatten |> ...`.
fn first_stage(body: &Body) -> Option<&Expr> {
    let mut e = result_expr(body)?;
    let mut first = None;
    while let ExprKind::Pipe(lhs, rhs) = &e.kind {
        first = Some(&**rhs);
        e = lhs;
    }
    first
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
