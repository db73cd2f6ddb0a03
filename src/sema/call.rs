//! Calls in the elaborator: binding arguments to parameters, checking
//! annotated shapes (binding their dim names), and inlining bodies.

use super::elab::{ArgVal, Elab, Mismatch};
use super::value::{CallRecord, Callable, Env, OptimizerInst, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::{suggest, Diagnostic};
use crate::ir::{DType, Dim};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

const MAX_DEPTH: usize = 64;

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
        let out = self.call_inner(f, args, span, callee_span);
        self.frames.pop();
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
                }))
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
        let mut env = Env {
            vars: HashMap::new(),
            parent: Some(Rc::new(outer.clone())),
        };
        for (p, slot) in params.iter().zip(slots) {
            let val = match slot {
                Some(a) => {
                    let v = self.check_param(p, a, &mut env, callee);
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
                    let d = Diagnostic::error(
                        "E0203",
                        format!("argument `{}` of `{callee}` must be a function", p.name.name),
                        a.span,
                        format!("this is {}", v.kind()),
                    )
                    .with_secondary(*s, "declared as fn here");
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
            },
            None => Env::default(),
        };
        let Some(mut env) = self.bind(&decl.params, args, &decl.name.name, span, &outer) else {
            return Val::Error;
        };
        let out = self.eval_body(&decl.body, &mut env);
        self.check_return(decl.ret.as_ref(), &out, &decl.body, &mut env, &decl.name.name);
        out
    }

    /// Check a body's result against the declared `-> type`.
    pub(super) fn check_return(&mut self, ret: Option<&TypeExpr>, out: &Val, body: &Body, env: &mut Env, name: &str) {
        let (Some(TypeExpr::Tensor { dims, span, .. }), Val::Tensor(t)) = (ret, out) else {
            return;
        };
        if let Err(m) = self.match_pattern(dims, &t.ty, env) {
            let at = result_span(body);
            let d = Diagnostic::error(
                "E0305",
                format!("`{name}` returns {}, but its declaration says {}", t.ty, self.pattern_text(dims)),
                at,
                format!("this has shape {}", t.ty),
            )
            .with_secondary(*span, "declared here")
            .with_note(format!("expected dim {}, found {}", m.expected, m.found));
            self.report(d);
        }
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
                Stmt::State { span, .. } | Stmt::Assign { span, .. } => {
                    let d = Diagnostic::error("E0110", "`state` and assignments belong in an optimizer", *span, "not allowed here")
                        .with_help("use `let name = value` to name a value");
                    self.report(d);
                }
            }
        }
        last
    }

    pub fn eval_let(&mut self, name: &Ident, value: &Expr, env: &mut Env) -> Val {
        if let ExprKind::Call { .. } = &value.kind {
            self.pending_name = Some(name.name.clone());
        }
        let v = self.eval(value, env);
        self.pending_name = None;
        v
    }
}

/// The span of the expression a body returns.
fn result_span(body: &Body) -> Span {
    match body {
        Body::Expr(e) => e.span,
        Body::Block(b) => b
            .stmts
            .iter()
            .rev()
            .find_map(|s| match s {
                Stmt::Return { value, .. } => Some(value.span),
                Stmt::Expr(e) => Some(e.span),
                _ => None,
            })
            .unwrap_or(b.span),
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
