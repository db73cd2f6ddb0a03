//! The elaborator: checks a program and lowers it to IR in one pass.
//!
//! It is a staged interpreter over the AST. Compile-time values (sizes,
//! hyperparameters, functions, layers) are evaluated; tensor operations are
//! shape-checked and emitted as IR instructions. Calls are inlined, so a
//! layer such as `Dense(784 -> 128)` is checked with its arguments
//! substituted. Errors are reported once, at the closest span in the file
//! being checked, and the failing value becomes `Val::Error`, which every
//! later check accepts silently (no cascades).

use super::scope::{Global, Globals};
use super::shape;
use super::value::{Callable, Env, LayerInst, LayerRecord, OptimizerInst, Tensor, TensorTy, Val};
use crate::base::{FileId, SourceDb, Span};
use crate::diag::{suggest, Diagnostic, Diagnostics};
use crate::ir::{self, BinaryOp, Builder, CmpOp, DType, Dim, UnaryOp};
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
    pub span: Span,
}

/// Why an argument did not fit a declared shape.
struct Mismatch {
    /// The dim name in the annotation that disagreed, if it was a name.
    name: Option<String>,
    expected: String,
    found: String,
}

const MAX_DEPTH: usize = 64;

pub struct Elab<'a> {
    pub db: &'a SourceDb,
    pub globals: &'a Globals,
    /// The file being checked: diagnostics are placed in it when possible.
    pub root: FileId,
    pub diags: Diagnostics,
    pub b: Builder,
    /// Call sites of the functions being inlined, outermost first.
    frames: Vec<Span>,
    /// Model parameters in creation order.
    pub params: Vec<ParamInfo>,
    /// Layers constructed inside a model body, by call path, so a model
    /// applied twice shares its weights.
    layer_cache: HashMap<Vec<Span>, Rc<LayerInst>>,
    /// Where the current model body's call path starts in `frames`.
    model_base: usize,
    name_counts: HashMap<String, usize>,
    /// `let fc1 = Dense(...)` names the layer `fc1`.
    pending_name: Option<String>,
    /// Layer-name prefix while constructing sublayers.
    prefix: Vec<String>,
    /// Type of every expression in the root file (hover, inlay hints, `--stage typed`).
    pub types: Vec<(Span, String)>,
    /// Counter for seeds of random draws, so every draw differs.
    pub seed: u64,
    /// Outputs of the trained model seen while elaborating a loss.
    pub model_outputs: Vec<Tensor>,
    pub trained_model: Option<String>,
    /// Whether params get IR values (false while checking a definition alone).
    pub lowering: bool,
    /// Layer instances created, by name (for `nnc summary` and hover).
    pub layers: Vec<LayerRecord>,
    model_memo: HashMap<(String, Vec<ir::Value>), Val>,
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
            params: vec![],
            layer_cache: HashMap::new(),
            model_base: 0,
            name_counts: HashMap::new(),
            pending_name: None,
            prefix: vec![],
            types: vec![],
            seed: 0,
            model_outputs: vec![],
            trained_model: None,
            lowering: true,
            layers: vec![],
            model_memo: HashMap::new(),
        }
    }

    // ---- diagnostics ------------------------------------------------------

    /// Report `d`, moving its primary label to the innermost call site in
    /// the root file when it points into another file (the stdlib).
    pub fn report(&mut self, mut d: Diagnostic) {
        if d.primary.span.file != self.root {
            if let Some(&site) = self.frames.iter().rev().find(|s| s.file == self.root) {
                let inner = d.primary.clone();
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
        self.diags.push(d);
    }

    fn text(&self, span: Span) -> &str {
        self.db.text(span)
    }

    fn record(&mut self, span: Span, v: &Val) {
        if span.file == self.root {
            if let Val::Tensor(t) = v {
                self.types.push((span, t.ty.to_string()));
            }
        }
    }

    // ---- tensors ----------------------------------------------------------

    pub fn tensor(&self, ty: TensorTy, ir: Option<ir::Value>) -> Val {
        Val::Tensor(Tensor { ty, ir })
    }

    /// A compile-time number as a scalar tensor.
    pub fn scalar(&mut self, x: f64) -> Tensor {
        let v = self.b.constant(x);
        Tensor {
            ty: TensorTy::f32(vec![]),
            ir: Some(v),
        }
    }

    /// View a value as a tensor for arithmetic; numbers become constants.
    pub fn as_tensor(&mut self, v: &Val, span: Span, what: &str) -> Option<Tensor> {
        match v {
            Val::Tensor(t) => Some(t.clone()),
            Val::Int(i) => Some(self.scalar(*i as f64)),
            Val::Float(x) => Some(self.scalar(*x)),
            Val::Bool(b) => Some(self.scalar(if *b { 1.0 } else { 0.0 })),
            Val::Any | Val::Dim(_) => Some(Tensor {
                ty: TensorTy::unknown(),
                ir: None,
            }),
            Val::Error => None,
            other => {
                let d = Diagnostic::error(
                    "E0203",
                    format!("{what} needs a tensor or a number"),
                    span,
                    format!("this is {}", other.kind()),
                );
                self.report(d);
                None
            }
        }
    }

    fn require_f32(&mut self, t: &Tensor, span: Span, what: &str) -> bool {
        if t.ty.dtype == DType::F32 {
            return true;
        }
        let d = Diagnostic::error(
            "E0201",
            format!("{what} needs f32 values, found {}", t.ty.dtype),
            span,
            format!("this is {}", t.ty),
        )
        .with_help("convert integer labels with `float(x)`, or one-hot encode them with `one_hot(x, classes)`");
        self.report(d);
        false
    }

    /// Broadcast two tensors to a common shape (NumPy rules), emitting the
    /// explicit broadcasts. Reports E0302 on incompatible shapes.
    pub fn broadcast_pair(
        &mut self,
        a: &Tensor,
        b: &Tensor,
        op: &str,
        sa: Span,
        sb: Span,
        whole: Span,
    ) -> Option<(Tensor, Tensor, Option<Vec<Dim>>)> {
        let (Some(x), Some(y)) = (&a.ty.shape, &b.ty.shape) else {
            return Some((a.clone(), b.clone(), None));
        };
        match shape::broadcast(x, y) {
            Ok(out) => {
                let ca = self.broadcast_to(a, &out);
                let cb = self.broadcast_to(b, &out);
                Some((ca, cb, Some(out)))
            }
            Err(i) => {
                let da = x.len().checked_sub(i + 1).map(|j| x[j].to_string()).unwrap_or_default();
                let db = y.len().checked_sub(i + 1).map(|j| y[j].to_string()).unwrap_or_default();
                let d = Diagnostic::error(
                    "E0302",
                    format!("shapes {} and {} cannot be broadcast for `{op}`", a.ty, b.ty),
                    sb,
                    format!("this has shape {}", b.ty),
                )
                .with_secondary(sa, format!("this has shape {}", a.ty))
                .with_note(format!("dim {da} and dim {db} differ and neither is 1 (aligned from the right)"));
                let _ = whole;
                self.report(d);
                None
            }
        }
    }

    pub fn broadcast_to(&mut self, t: &Tensor, shape: &[Dim]) -> Tensor {
        let ir = t.ir.map(|v| self.b.broadcast(v, shape));
        Tensor {
            ty: TensorTy {
                dtype: t.ty.dtype,
                shape: Some(shape.to_vec()),
            },
            ir,
        }
    }

    /// Elementwise binary op on tensors or numbers, with broadcasting.
    pub fn binary(&mut self, op: BinOp, l: &Val, r: &Val, sl: Span, sr: Span, whole: Span) -> Val {
        // Lists of tensors map elementwise (`params^2`), like JAX's tree_map.
        if let (Val::List(items), other) | (other, Val::List(items)) = (l, r) {
            let left_is_list = matches!(l, Val::List(_));
            let items = items.clone();
            let other = other.clone();
            return Val::List(
                items
                    .iter()
                    .map(|it| {
                        if left_is_list {
                            self.binary(op, it, &other, sl, sr, whole)
                        } else {
                            self.binary(op, &other, it, sl, sr, whole)
                        }
                    })
                    .collect(),
            );
        }
        // Compile-time arithmetic folds.
        if let Some(v) = fold_numbers(op, l, r) {
            return v;
        }
        if matches!(l, Val::Error) || matches!(r, Val::Error) {
            return Val::Error;
        }
        let sym = op.symbol();
        let (Some(a), Some(b)) = (
            self.as_tensor(l, sl, &format!("`{sym}`")),
            self.as_tensor(r, sr, &format!("`{sym}`")),
        ) else {
            return Val::Error;
        };
        if op == BinOp::MatMul {
            return self.matmul(&a, &b, sl, sr);
        }
        let is_cmp = matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne);
        let f32_operands = is_cmp || (self.require_f32(&a, sl, &format!("`{sym}`")) && self.require_f32(&b, sr, &format!("`{sym}`")));
        if !f32_operands {
            return Val::Error;
        }
        if is_cmp && a.ty.dtype != b.ty.dtype {
            // Compare labels with numbers: compare in f32.
        }
        let Some((a, b, shape)) = self.broadcast_pair(&a, &b, sym, sl, sr, whole) else {
            return Val::Error;
        };
        let ty = TensorTy { dtype: DType::F32, shape };
        let ir = match (a.ir, b.ir) {
            (Some(x), Some(y)) => {
                let x = self.b.cast(x, DType::F32);
                let y = self.b.cast(y, DType::F32);
                Some(match op {
                    BinOp::Add => self.b.binary(BinaryOp::Add, x, y),
                    BinOp::Sub => self.b.binary(BinaryOp::Sub, x, y),
                    BinOp::Mul => self.b.binary(BinaryOp::Mul, x, y),
                    BinOp::Div => self.b.binary(BinaryOp::Div, x, y),
                    BinOp::Pow => self.pow(x, y),
                    BinOp::Lt => self.b.compare(CmpOp::Lt, x, y),
                    BinOp::Le => self.b.compare(CmpOp::Le, x, y),
                    BinOp::Gt => self.b.compare(CmpOp::Gt, x, y),
                    BinOp::Ge => self.b.compare(CmpOp::Ge, x, y),
                    BinOp::Eq => self.b.compare(CmpOp::Eq, x, y),
                    BinOp::Ne => self.b.compare(CmpOp::Ne, x, y),
                    BinOp::MatMul => unreachable!(),
                })
            }
            _ => None,
        };
        self.tensor(ty, ir)
    }

    /// `x ^ y`; squares become a multiplication (exact and cheaper).
    fn pow(&mut self, x: ir::Value, y: ir::Value) -> ir::Value {
        let exponent = self.constant_of(y);
        match exponent {
            Some(2.0) => self.b.mul(x, x),
            Some(1.0) => x,
            _ => self.b.binary(BinaryOp::Pow, x, y),
        }
    }

    /// The scalar constant behind `v` (through broadcasts), if any.
    fn constant_of(&self, v: ir::Value) -> Option<f64> {
        let inst = self.b.func().def(v)?;
        match &inst.op {
            ir::Op::Const(c) => Some(*c),
            ir::Op::Broadcast { .. } => self.constant_of(inst.args[0]),
            _ => None,
        }
    }

    fn matmul(&mut self, a: &Tensor, b: &Tensor, sa: Span, sb: Span) -> Val {
        if !(self.require_f32(a, sa, "`@`") && self.require_f32(b, sb, "`@`")) {
            return Val::Error;
        }
        let (Some(x), Some(y)) = (a.ty.shape.clone(), b.ty.shape.clone()) else {
            return self.tensor(TensorTy::unknown(), None);
        };
        if x.is_empty() || y.is_empty() {
            let (s, t) = if x.is_empty() { (sa, a) } else { (sb, b) };
            let d = Diagnostic::error(
                "E0309",
                "`@` needs tensors of rank 1 or more",
                s,
                format!("this is a scalar {}", t.ty),
            )
            .with_help("use `*` to multiply by a scalar");
            self.report(d);
            return Val::Error;
        }
        // Vectors are promoted to matrices as in NumPy and squeezed after.
        let (x2, squeeze_a) = if x.len() == 1 {
            (vec![Dim::Known(1), x[0].clone()], true)
        } else {
            (x.clone(), false)
        };
        let (y2, squeeze_b) = if y.len() == 1 {
            (vec![y[0].clone(), Dim::Known(1)], true)
        } else {
            (y.clone(), false)
        };
        let k_a = &x2[x2.len() - 1];
        let k_b = &y2[y2.len() - 2];
        if k_a != k_b {
            let d = Diagnostic::error(
                "E0303",
                format!("matrix product `{} @ {}` needs equal inner dims, found {k_a} and {k_b}", a.ty, b.ty),
                sb,
                format!("this has shape {}, its first dim must be {k_a}", b.ty),
            )
            .with_secondary(sa, format!("this has shape {}", a.ty));
            self.report(d);
            return Val::Error;
        }
        let lead_a = &x2[..x2.len() - 2];
        let lead_b = &y2[..y2.len() - 2];
        let Ok(lead) = shape::broadcast(lead_a, lead_b) else {
            let d = Diagnostic::error(
                "E0303",
                format!("matrix product `{} @ {}`: leading dims cannot be broadcast", a.ty, b.ty),
                sb,
                format!("this has shape {}", b.ty),
            )
            .with_secondary(sa, format!("this has shape {}", a.ty));
            self.report(d);
            return Val::Error;
        };
        let m = x2[x2.len() - 2].clone();
        let n = y2[y2.len() - 1].clone();
        let mut out: Vec<Dim> = lead.clone();
        out.push(m.clone());
        out.push(n.clone());
        let ir = match (a.ir, b.ir) {
            (Some(va), Some(vb)) => {
                let va = self.b.reshape(va, &x2);
                let vb = self.b.reshape(vb, &y2);
                let mut sa_full = lead.clone();
                sa_full.extend([m.clone(), k_a.clone()]);
                let mut sb_full = lead.clone();
                sb_full.extend([k_b.clone(), n.clone()]);
                let va = self.b.broadcast(va, &sa_full);
                let vb = self.b.broadcast(vb, &sb_full);
                Some(self.b.matmul(va, vb))
            }
            _ => None,
        };
        let mut final_shape = out.clone();
        if squeeze_b {
            final_shape.pop();
        }
        if squeeze_a {
            let l = final_shape.len();
            final_shape.remove(l - if squeeze_b { 1 } else { 2 });
        }
        let ir = ir.map(|v| self.b.reshape(v, &final_shape));
        self.tensor(TensorTy::f32(final_shape), ir)
    }

    pub fn unary(&mut self, op: UnaryOp, v: &Val, span: Span, name: &str) -> Val {
        match v {
            Val::Int(_) | Val::Float(_) => {
                let x = match v {
                    Val::Int(i) => *i as f64,
                    Val::Float(f) => *f,
                    _ => unreachable!(),
                };
                let r = match op {
                    UnaryOp::Neg => -x,
                    UnaryOp::Exp => x.exp(),
                    UnaryOp::Log => x.ln(),
                    UnaryOp::Sqrt => x.sqrt(),
                    UnaryOp::Tanh => x.tanh(),
                    UnaryOp::Abs => x.abs(),
                    UnaryOp::Sign => x.signum(),
                };
                if op == UnaryOp::Neg {
                    if let Val::Int(i) = v {
                        return Val::Int(-i);
                    }
                }
                if op == UnaryOp::Abs {
                    if let Val::Int(i) = v {
                        return Val::Int(i.abs());
                    }
                }
                Val::Float(r)
            }
            _ => {
                let Some(t) = self.as_tensor(v, span, &format!("`{name}`")) else {
                    return Val::Error;
                };
                if !self.require_f32(&t, span, &format!("`{name}`")) {
                    return Val::Error;
                }
                let ir = t.ir.map(|x| self.b.unary(op, x));
                self.tensor(t.ty, ir)
            }
        }
    }

    // ---- expressions ------------------------------------------------------

    pub fn eval(&mut self, e: &Expr, env: &mut Env) -> Val {
        let v = self.eval_inner(e, env);
        self.record(e.span, &v);
        v
    }

    fn eval_inner(&mut self, e: &Expr, env: &mut Env) -> Val {
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
            ExprKind::Name(id) => self.lookup(id, env),
            ExprKind::List(items) => Val::List(items.iter().map(|i| self.eval(i, env)).collect()),
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
                let args = self.eval_args(args, env);
                self.call(f, args, e.span, callee.span)
            }
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
    fn eval_callee(&mut self, callee: &Expr, _args: &[Arg], env: &mut Env) -> Val {
        let pending = self.pending_name.take();
        let f = self.eval(callee, env);
        if matches!(f, Val::LayerCtor(_)) {
            self.pending_name = pending;
        }
        f
    }

    fn eval_args(&mut self, args: &[Arg], env: &mut Env) -> Vec<ArgVal> {
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
        if let Some(b) = super::builtins::lookup(&id.name) {
            return Val::Fn(Callable::Builtin(b));
        }
        let mut candidates: Vec<String> = env.names();
        candidates.extend(self.globals.names());
        candidates.extend(super::builtins::NAMES.iter().map(|s| s.to_string()));
        let mut d = Diagnostic::error("E0101", format!("unknown name `{}`", id.name), id.span, "not found in this scope");
        if let Some(s) = suggest(&id.name, candidates.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.report(d);
        Val::Error
    }

    // ---- calls ------------------------------------------------------------

    pub fn call(&mut self, f: Val, args: Vec<ArgVal>, span: Span, callee_span: Span) -> Val {
        if self.frames.len() > MAX_DEPTH {
            let d = Diagnostic::error("E0106", "calls nest too deeply (is a function recursive?)", span, "this call");
            self.report(d);
            return Val::Error;
        }
        self.frames.push(span);
        let out = self.call_inner(f, args, span, callee_span);
        self.frames.pop();
        out
    }

    fn call_inner(&mut self, f: Val, args: Vec<ArgVal>, span: Span, callee_span: Span) -> Val {
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

    fn call_callable(&mut self, c: Callable, mut args: Vec<ArgVal>, span: Span, callee_span: Span) -> Val {
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
    fn check_param(&mut self, p: &Param, a: ArgVal, env: &mut Env, callee: &str) -> Val {
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
    fn bind_pattern_unknown(&mut self, dims: &[DimExpr], env: &mut Env) {
        for d in dims {
            if let DimExpr::Name(n) = d {
                if env.get(&n.name).is_none() {
                    env.vars.insert(n.name.clone(), Val::Any);
                }
            }
        }
    }

    /// Match a shape annotation against a type, binding unbound dim names.
    fn match_pattern(&mut self, dims: &[DimExpr], ty: &TensorTy, env: &mut Env) -> Result<(), Mismatch> {
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
                        Some(Some(Dim::Sym(format!("({a}{sym}{b})"))))
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

    fn call_fn(&mut self, decl: &Rc<FnDecl>, captured: Option<Rc<Env>>, args: Vec<ArgVal>, span: Span) -> Val {
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
    fn check_return(&mut self, ret: Option<&TypeExpr>, out: &Val, body: &Body, env: &mut Env, name: &str) {
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

    fn eval_block(&mut self, b: &Block, env: &mut Env) -> Val {
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

    // ---- layers and models ------------------------------------------------

    fn fresh_layer_name(&mut self, decl: &LayerDecl) -> String {
        if let Some(n) = self.pending_name.take() {
            return n;
        }
        let base = decl.name.name.to_lowercase();
        let c = self.name_counts.entry(base.clone()).or_insert(0);
        *c += 1;
        format!("{base}{c}")
    }

    fn construct_layer(&mut self, decl: Rc<LayerDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        // The call path since the model body began identifies this layer.
        let key: Vec<Span> = self.frames[self.model_base.min(self.frames.len())..].to_vec();
        if let Some(inst) = self.layer_cache.get(&key) {
            self.pending_name = None;
            return Val::Layer(inst.clone());
        }
        let local = self.fresh_layer_name(&decl);
        let name = if self.prefix.is_empty() {
            local.clone()
        } else {
            format!("{}.{local}", self.prefix.join("."))
        };
        let mut arg_spans = HashMap::new();
        for (p, a) in decl.params.iter().zip(args.iter().filter(|a| a.name.is_none())) {
            arg_spans.insert(p.name.name.clone(), a.span);
        }
        for a in &args {
            if let Some(n) = &a.name {
                arg_spans.insert(n.name.clone(), a.span);
            }
        }
        let Some(mut env) = self.bind(&decl.params, args, &decl.name.name, span, &Env::default()) else {
            return Val::Error;
        };
        self.prefix.push(local);
        let mut created = vec![];
        for m in &decl.members {
            match m {
                LayerMember::Param(t) | LayerMember::Buffer(t) => {
                    let trainable = matches!(m, LayerMember::Param(_));
                    let v = self.create_param(&name, t, &env, trainable);
                    if let Val::Tensor(tv) = &v {
                        if let Some(shape) = &tv.ty.shape {
                            created.push((t.name.name.clone(), ir::Type::f32(shape.clone())));
                        }
                    }
                    env.vars.insert(t.name.name.clone(), v);
                }
                LayerMember::Let { name: n, value, .. } => {
                    let v = self.eval_let(n, value, &mut env);
                    env.vars.insert(n.name.clone(), v);
                }
                LayerMember::Fn(_) => {}
            }
        }
        self.prefix.pop();
        let env = Rc::new(env);
        // Methods see the finished layer scope.
        let mut with_methods = Env {
            vars: HashMap::new(),
            parent: Some(env.clone()),
        };
        for m in &decl.members {
            if let LayerMember::Fn(f) = m {
                with_methods.vars.insert(
                    f.name.name.clone(),
                    Val::Fn(Callable::Decl {
                        decl: Rc::new(f.clone()),
                        env: Some(env.clone()),
                    }),
                );
            }
        }
        let inst = Rc::new(LayerInst {
            decl: decl.clone(),
            name: name.clone(),
            env: Rc::new(with_methods),
            call_span: span,
            arg_spans,
        });
        self.layers.push(LayerRecord {
            name,
            span,
            params: created,
        });
        self.layer_cache.insert(key, inst.clone());
        Val::Layer(inst)
    }

    fn create_param(&mut self, layer: &str, t: &TensorDecl, env: &Env, trainable: bool) -> Val {
        let Some(shape) = self.eval_shape(&t.ty, env) else {
            return Val::Error;
        };
        let Some(shape) = shape else {
            return self.tensor(TensorTy::unknown(), None);
        };
        let ty = ir::Type::f32(shape.clone());
        let name = format!("{layer}.{}", t.name.name);
        if !self.lowering {
            return self.tensor(TensorTy::f32(shape), None);
        }
        let v = self.b.param(name.clone(), ty.clone());
        self.params.push(ParamInfo {
            name,
            ty,
            value: v,
            init: t.init.clone(),
            env: Rc::new(env.clone()),
            trainable,
            span: t.span,
        });
        self.tensor(TensorTy::f32(shape), Some(v))
    }

    fn apply_layer(&mut self, inst: &Rc<LayerInst>, args: Vec<ArgVal>, span: Span) -> Val {
        let Some(Val::Fn(Callable::Decl { decl, env })) = inst.env.vars.get("forward").cloned() else {
            let d = Diagnostic::error(
                "E0109",
                format!("layer `{}` has no `forward` function", inst.decl.name.name),
                span,
                "applied here",
            )
            .with_secondary(inst.decl.name.span, "declared here");
            self.report(d);
            return Val::Error;
        };
        // Check the input shape here so the error names the layer and
        // suggests arguments that fit.
        if let (Some(p), Some(a)) = (decl.params.first(), args.first()) {
            if let (Some(TypeExpr::Tensor { dims, span: pspan, .. }), Val::Tensor(t)) = (&p.ty, &a.val) {
                let mut probe = Env {
                    vars: HashMap::new(),
                    parent: env.clone(),
                };
                if let Err(m) = self.match_pattern(dims, &t.ty, &mut probe) {
                    self.layer_input_error(inst, &decl.name.name, dims, *pspan, t, &m, a.span, span);
                    return Val::Error;
                }
            }
        }
        self.call_fn(&decl, env, args, span)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer_input_error(
        &mut self,
        inst: &LayerInst,
        _method: &str,
        dims: &[DimExpr],
        pspan: Span,
        t: &Tensor,
        m: &Mismatch,
        arg_span: Span,
        span: Span,
    ) {
        let call_span = if inst.call_span.file == span.file { inst.call_span } else { span };
        let call_text = self.text(call_span).to_string();
        let lname = &inst.decl.name.name;
        let mut d = Diagnostic::error(
            "E0301",
            format!(
                "{} expects input {}, found {}",
                one_line(&call_text),
                self.pattern_text_in(dims, &inst.env),
                t.ty
            ),
            call_span,
            format!("input here is {}", t.ty),
        );
        if arg_span != call_span && arg_span.file == call_span.file && (arg_span.end <= call_span.start || arg_span.start >= call_span.end)
        {
            d = d.with_secondary(arg_span, format!("this has shape {}", t.ty));
        }
        if pspan.file != call_span.file {
            d = d.with_secondary(pspan, format!("{lname} declares its input as {}", self.pattern_text(dims)));
        }
        // Suggest the argument that would fit, when it was a literal.
        if let Some(name) = &m.name {
            if let Some(&arg) = inst.arg_spans.get(name) {
                if arg.file == call_span.file {
                    let lit = self.text(arg).to_string();
                    if lit.parse::<i64>().is_ok() && m.found.parse::<i64>().is_ok() {
                        let rel = (arg.start - call_span.start) as usize..(arg.end - call_span.start) as usize;
                        let mut fixed = call_text.clone();
                        fixed.replace_range(rel, &m.found);
                        d = d.with_help(format!(
                            "the input has {} where {lname} expects {}; write `{}`",
                            m.found,
                            m.expected,
                            one_line(&fixed)
                        ));
                    }
                }
            }
        }
        self.report(d);
    }

    /// A pattern with the layer's arguments substituted: `[..., 784]`.
    fn pattern_text_in(&mut self, dims: &[DimExpr], env: &Env) -> String {
        let parts: Vec<String> = dims
            .iter()
            .map(|d| match d {
                DimExpr::Ellipsis(_) => "...".to_string(),
                _ => match self.eval_dim(d, env) {
                    Some(Some(x)) => x.to_string(),
                    _ => self.text(d.span()).to_string(),
                },
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }

    /// Apply a model: its inputs are checked against their declared shapes,
    /// its layers are created once and shared by every application.
    pub fn apply_model(&mut self, decl: Rc<ModelDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        // The same model on the same inputs is the same value: `model(x)`
        // in a loss reuses the forward pass already built for metrics.
        let key: Option<Vec<ir::Value>> = args.iter().map(|a| if let Val::Tensor(t) = &a.val { t.ir } else { None }).collect();
        let memo_key = key.map(|k| (decl.name.name.clone(), k));
        if let Some(k) = &memo_key {
            if let Some(v) = self.model_memo.get(k) {
                return v.clone();
            }
        }
        let out = self.apply_model_uncached(decl, args, span);
        if let Some(k) = memo_key {
            self.model_memo.insert(k, out.clone());
        }
        out
    }

    fn apply_model_uncached(&mut self, decl: Rc<ModelDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        let saved_base = self.model_base;
        self.model_base = self.frames.len();
        let saved_prefix = std::mem::take(&mut self.prefix);
        let out = match self.bind(&decl.inputs, args, &decl.name.name, span, &Env::default()) {
            Some(mut env) => {
                let out = self.eval_body(&decl.body, &mut env);
                self.check_return(decl.ret.as_ref(), &out, &decl.body, &mut env, &decl.name.name);
                out
            }
            None => Val::Error,
        };
        self.prefix = saved_prefix;
        self.model_base = saved_base;
        if self.trained_model.as_deref() == Some(decl.name.name.as_str()) {
            if let Val::Tensor(t) = &out {
                self.model_outputs.push(t.clone());
            }
        }
        out
    }

    /// Inputs of a model as tensors of their declared types (symbolic dims
    /// stay symbols), made parameters of the function being built.
    pub fn model_inputs(&mut self, decl: &ModelDecl) -> Option<Vec<(String, ir::Type)>> {
        let mut out = vec![];
        let env = Env::default();
        for p in &decl.inputs {
            let Some(TypeExpr::Tensor { dtype, .. }) = &p.ty else {
                let d = Diagnostic::error(
                    "E0309",
                    format!("model input `{}` needs a tensor type", p.name.name),
                    p.span,
                    "no shape given",
                )
                .with_help(format!("declare its shape, e.g. `{}: [batch, 784]`", p.name.name));
                self.report(d);
                return None;
            };
            let shape = self.eval_shape(p.ty.as_ref().expect("checked"), &env)??;
            let dtype = if dtype.as_ref().is_some_and(|d| d.name == "i32") {
                DType::I32
            } else {
                DType::F32
            };
            out.push((p.name.name.clone(), ir::Type { dtype, shape }));
        }
        Some(out)
    }
}

fn fold_numbers(op: BinOp, l: &Val, r: &Val) -> Option<Val> {
    use Val::*;
    let as_f = |v: &Val| match v {
        Int(i) => Some(*i as f64),
        Float(f) => Some(*f),
        _ => None,
    };
    if let (Int(a), Int(b)) = (l, r) {
        let v = match op {
            BinOp::Add => a.checked_add(*b).map(Int),
            BinOp::Sub => a.checked_sub(*b).map(Int),
            BinOp::Mul => a.checked_mul(*b).map(Int),
            BinOp::Div => return Some(Float(*a as f64 / *b as f64)),
            BinOp::Pow if *b >= 0 && *b < 64 => a.checked_pow(*b as u32).map(Int),
            _ => None,
        };
        if v.is_some() {
            return v;
        }
    }
    let (a, b) = (as_f(l)?, as_f(r)?);
    Some(match op {
        BinOp::Add => Float(a + b),
        BinOp::Sub => Float(a - b),
        BinOp::Mul => Float(a * b),
        BinOp::Div => Float(a / b),
        BinOp::Pow => Float(a.powf(b)),
        BinOp::Lt => Bool(a < b),
        BinOp::Le => Bool(a <= b),
        BinOp::Gt => Bool(a > b),
        BinOp::Ge => Bool(a >= b),
        BinOp::Eq => Bool(a == b),
        BinOp::Ne => Bool(a != b),
        BinOp::MatMul => return None,
    })
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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
