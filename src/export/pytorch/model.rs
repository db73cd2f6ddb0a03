//! `.nn` declarations as Python: functions become `def`s, layers and models
//! `nn.Module` classes whose attributes carry the `.nn` names, so the
//! module's state dict names follow the file (`fc1.weight` for `fc1.W`).
//!
//! This is a source-to-source translation of the syntax tree, not of the
//! IR: the IR is flat (every call inlined), while a readable PyTorch
//! project keeps the file's functions, layers and pipelines. Compile-time
//! values (sizes, activations) are ordinary Python values, so a call such
//! as `Dense(784 -> 128, relu)` stays one constructor call. Layers that a
//! model body constructs inline (`x |> Dense(64 -> 10)`) are created in
//! `__init__` under the name nnc gave them (`dense2`), read from the
//! checker's layer records by the call's span.

use super::super::Unsupported;
use crate::base::Span;
use crate::sema::builtin_table::Builtin;
use crate::sema::scope::{Global, Globals};
use crate::sema::value::LayerRecord;
use crate::syntax::ast::*;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Stdlib functions written as their PyTorch equivalents (same arguments,
/// same meaning) instead of being translated from their `.nn` source.
const TORCH_FNS: &[(&str, &str)] = &[
    ("relu", "torch.relu"),
    ("sigmoid", "torch.sigmoid"),
    ("cross_entropy", "F.cross_entropy"),
];

/// Stdlib layers written as PyTorch modules: the `.nn` layer, its Python
/// source, and the stdlib functions that source uses.
const TORCH_LAYERS: &[(&str, &str, &[&str])] = &[(
    "Dense",
    r#"class Dense(nn.Linear):
    """nnc's Dense, activation(x @ W + b), as an nn.Linear: `weight` is W
    transposed ([outputs, inputs]) and `bias` is b."""

    def __init__(self, inputs, outputs, activation=identity):
        self.activation = activation
        super().__init__(inputs, outputs)

    def reset_parameters(self):
        # nnc initialises W with glorot_uniform and b with zeros.
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        return self.activation(super().forward(x))
"#,
    &["identity"],
)];

/// Whether a stdlib layer is exported as a PyTorch layer whose `weight` is
/// the transpose of nnc's `W` (see `runtime::checkpoint::pytorch_alias`).
pub fn is_torch_layer(name: &str) -> bool {
    TORCH_LAYERS.iter().any(|(n, _, _)| *n == name)
}

const PY_RESERVED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
    "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
    "while", "with", "yield", "self", "torch", "nn", "F", "ops", "math",
];

/// A Python identifier for a `.nn` name.
pub fn py_name(name: &str) -> String {
    if PY_RESERVED.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// What becomes of the last expression of a block of statements.
enum Tail {
    /// A function body: it is returned.
    Return,
    /// An `if` branch: it is assigned to this temporary.
    Assign(String),
    /// A `scan` body: statements only (its value is the carried variables).
    Step,
}

/// Where an expression is being translated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// A function body, or a constructor (`__init__`) of a layer.
    Plain,
    /// A model's `forward`: layer constructions are hoisted to `__init__`.
    ModelForward,
}

/// Names visible while translating one body.
#[derive(Clone, Default)]
struct Scope {
    locals: HashSet<String>,
    /// Names reached as `self.NAME` (layer arguments, parameters, sublayers).
    attrs: HashSet<String>,
    /// The layer's buffers (among `attrs`), which a method may write.
    buffers: HashSet<String>,
    /// Inside a layer's or model's method, where `training` is `self.training`.
    method: bool,
    /// Inside a `scan` body: its carried variables, which it assigns.
    carries: HashSet<String>,
}

pub struct Translator<'a> {
    globals: &'a Globals,
    is_stdlib: &'a dyn Fn(Span) -> bool,
    /// The layers of the model being exported, by the span of the call that built them.
    records: HashMap<Span, &'a LayerRecord>,
    /// Python definitions, dependencies first, with the names they define.
    defs: Vec<(String, String)>,
    done: HashSet<String>,
    /// Lines of the model's `__init__` collected while translating `forward`.
    hoisted: Vec<String>,
    /// Layers (record names) exported as PyTorch layers, e.g. `fc1` as a `Dense`.
    pub torch_layers: Vec<String>,
    /// Statements that the expression being translated needs first (an
    /// `if training { ... }` becomes an `if` statement assigning a
    /// temporary), indented relative to that expression's statement.
    pre: Vec<String>,
    temps: usize,
    /// Whether the translation reads the mode outside a method
    /// (`ops.is_training()`) or writes a buffer: the model's `forward` then
    /// runs inside `ops.mode(self)`.
    pub uses_mode: bool,
    /// `G.` while translating a model of a block of steps: its layer
    /// records are named as the store names them (`G.dense1`), its
    /// attributes without the prefix (`self.dense1`).
    pub layer_prefix: String,
}

fn unsupported(what: String) -> Unsupported {
    Unsupported::new(what)
}

impl<'a> Translator<'a> {
    pub fn new(globals: &'a Globals, records: &'a [LayerRecord], is_stdlib: &'a dyn Fn(Span) -> bool) -> Translator<'a> {
        Translator {
            globals,
            is_stdlib,
            records: records.iter().map(|r| (r.span, r)).collect(),
            defs: vec![],
            done: HashSet::new(),
            hoisted: vec![],
            torch_layers: vec![],
            pre: vec![],
            temps: 0,
            uses_mode: false,
            layer_prefix: String::new(),
        }
    }

    /// The definitions emitted so far, in order: (Python name, source).
    pub fn defs(&self) -> &[(String, String)] {
        &self.defs
    }

    fn is_std(&self, name: &str) -> bool {
        self.globals.def_span(name).is_some_and(|s| (self.is_stdlib)(s))
    }

    // ---- declarations ----------------------------------------------------

    /// Emit the definition of global `name` (and what it uses) once.
    fn ensure(&mut self, name: &str) -> Result<(), Unsupported> {
        if self.done.contains(name) {
            return Ok(());
        }
        self.done.insert(name.to_string());
        let Some(g) = self.globals.get(name).cloned() else {
            return Ok(());
        };
        let saved = std::mem::take(&mut self.pre);
        let result = self.define(name, g);
        let stray = std::mem::replace(&mut self.pre, saved);
        if !stray.is_empty() {
            return Err(unsupported(format!("an `if` where `{name}` needs a plain value")));
        }
        result
    }

    fn define(&mut self, name: &str, g: Global) -> Result<(), Unsupported> {
        match g {
            Global::Fn(f) => {
                let text = self.function(&f)?;
                self.defs.push((py_name(name), text));
            }
            Global::Layer(l) => {
                if self.is_std(name) {
                    if let Some((_, src, deps)) = TORCH_LAYERS.iter().find(|(n, _, _)| *n == name) {
                        for d in *deps {
                            self.ensure(d)?;
                        }
                        self.defs.push((py_name(name), (*src).to_string()));
                        return Ok(());
                    }
                }
                let text = self.layer(&l)?;
                self.defs.push((py_name(name), text));
            }
            Global::Model(m) => return Err(unsupported(format!("the model `{}` used inside another model", m.name.name))),
            Global::Optimizer(o) => return Err(unsupported(format!("the optimizer `{}` used as a value", o.name.name))),
        }
        Ok(())
    }

    fn docstring(doc: &Option<String>, indent: &str) -> String {
        match doc {
            Some(d) => format!(
                "{indent}\"\"\"{}\"\"\"\n",
                d.trim().replace("\"\"\"", "'''").replace('\n', &format!("\n{indent}"))
            ),
            None => String::new(),
        }
    }

    /// Python parameters `a, b=default` (defaults translated in `scope`).
    /// A default that uses an earlier parameter (`stride = kernel`) cannot
    /// be a Python default: it becomes `None`, and the returned statements
    /// (to put first in the body) fill it in.
    fn params(&mut self, params: &[Param], scope: &Scope, indent: &str) -> Result<(Vec<String>, String), Unsupported> {
        let (mut sig, mut late) = (vec![], String::new());
        let mut earlier = scope.clone();
        for p in params {
            let n = py_name(&p.name.name);
            match &p.default {
                Some(d) => {
                    let mut names = HashSet::new();
                    mentioned_in(d, &mut names);
                    if names.iter().any(|m| earlier.locals.contains(m) && !scope.locals.contains(m)) {
                        let value = self.expr(d, &earlier, Ctx::Plain)?;
                        sig.push(format!("{n}=None"));
                        let _ = writeln!(late, "{indent}if {n} is None:\n{indent}    {n} = {value}");
                    } else {
                        sig.push(format!("{n}={}", self.expr(d, scope, Ctx::Plain)?));
                    }
                }
                None => sig.push(n),
            }
            earlier.locals.insert(p.name.name.clone());
        }
        Ok((sig, late))
    }

    /// `n = x.shape[0]` for each dim name a tensor parameter's annotation
    /// binds and the body uses.
    fn shape_bindings(params: &[Param], scope: &mut Scope, body_names: &HashSet<String>, indent: &str) -> String {
        let mut out = String::new();
        for p in params {
            let Some(TypeExpr::Tensor { dims, .. }) = &p.ty else { continue };
            let ellipsis = dims.iter().position(|d| matches!(d, DimExpr::Ellipsis(_)));
            for (i, d) in dims.iter().enumerate() {
                let DimExpr::Name(id) = d else { continue };
                if scope.locals.contains(&id.name) || scope.attrs.contains(&id.name) || !body_names.contains(&id.name) {
                    continue;
                }
                let index = match ellipsis {
                    Some(e) if i > e => format!("{}", i as i64 - dims.len() as i64),
                    _ => i.to_string(),
                };
                let _ = writeln!(out, "{indent}{} = {}.shape[{index}]", py_name(&id.name), py_name(&p.name.name));
                scope.locals.insert(id.name.clone());
            }
        }
        out
    }

    /// The statements of a body, ending in `return`.
    fn body(&mut self, body: &Body, scope: &mut Scope, ctx: Ctx, indent: &str) -> Result<String, Unsupported> {
        match body {
            Body::Expr(e) => {
                let v = self.expr(e, scope, ctx)?;
                let mut out = self.take_pre(indent);
                let _ = writeln!(out, "{indent}return {v}");
                Ok(out)
            }
            Body::Block(b) => {
                let mut lines = vec![];
                self.stmts(&b.stmts, scope, ctx, Tail::Return, &mut lines)?;
                Ok(lines.iter().map(|l| format!("{indent}{l}\n")).collect())
            }
        }
    }

    /// The pending statements of the last expression, at `indent`.
    fn take_pre(&mut self, indent: &str) -> String {
        std::mem::take(&mut self.pre).iter().map(|l| format!("{indent}{l}\n")).collect()
    }

    /// `e` translated after the statements it needs, which go to `lines`.
    fn expr_into(&mut self, e: &Expr, scope: &Scope, ctx: Ctx, lines: &mut Vec<String>) -> Result<String, Unsupported> {
        let saved = std::mem::take(&mut self.pre);
        let v = self.expr(e, scope, ctx);
        lines.append(&mut self.pre);
        self.pre = saved;
        v
    }

    /// The statements of a block as lines (without indentation); the last
    /// expression is returned or assigned as `tail` says.
    fn stmts(&mut self, stmts: &[Stmt], scope: &mut Scope, ctx: Ctx, tail: Tail, lines: &mut Vec<String>) -> Result<(), Unsupported> {
        let n = stmts.len();
        for (i, s) in stmts.iter().enumerate() {
            match s {
                Stmt::Let { name, value, .. } => {
                    if ctx == Ctx::ModelForward && self.is_layer_construction(value) {
                        // `let fc1 = Dense(...)`: a sublayer, built in `__init__`.
                        let module = self.expr_into(value, scope, ctx, lines)?;
                        let attr = module.strip_prefix("self.").unwrap_or(&module).to_string();
                        if attr == name.name {
                            scope.attrs.insert(name.name.clone());
                        } else {
                            lines.push(format!("{} = {module}", py_name(&name.name)));
                            scope.locals.insert(name.name.clone());
                        }
                        continue;
                    }
                    if !matches!(tail, Tail::Return) {
                        // A branch's or step's `let` is local to its block in
                        // nnc; in Python it would overwrite the outer variable.
                        if scope.locals.contains(&name.name) || scope.attrs.contains(&name.name) {
                            let block = if matches!(tail, Tail::Step) {
                                "a `scan` body"
                            } else {
                                "an `if` branch"
                            };
                            return Err(unsupported(format!(
                                "a `let {}` inside {block} that hides an outer `{}`",
                                name.name, name.name
                            )));
                        }
                    }
                    let v = self.expr_into(value, scope, ctx, lines)?;
                    lines.push(format!("{} = {v}", py_name(&name.name)));
                    scope.locals.insert(name.name.clone());
                }
                Stmt::Return { value, .. } => {
                    let v = self.expr_into(value, scope, ctx, lines)?;
                    match &tail {
                        Tail::Return => lines.push(format!("return {v}")),
                        Tail::Assign(_) => return Err(unsupported("`return` inside an `if` branch".into())),
                        Tail::Step => return Err(unsupported("`return` inside a `scan` body".into())),
                    }
                }
                Stmt::Expr(e) => {
                    let v = self.expr_into(e, scope, ctx, lines)?;
                    match (&tail, i + 1 == n) {
                        (Tail::Return, true) => lines.push(format!("return {v}")),
                        (Tail::Assign(t), true) => lines.push(format!("{t} = {v}")),
                        (Tail::Step, true) => lines.push(v),
                        (_, false) => lines.push(v),
                    }
                }
                // `running_mean = ...` in a layer method: a buffer write,
                // applied when the model's forward ends (reads in the same
                // forward see the old value, as in nnc).
                Stmt::Assign {
                    target,
                    op: AssignOp::Set,
                    value,
                    ..
                } if scope.method && scope.buffers.contains(&target.name) => {
                    let v = self.expr_into(value, scope, ctx, lines)?;
                    lines.push(format!("ops.write_buffer(self, {:?}, {v})", py_name(&target.name)));
                    self.uses_mode = true;
                }
                // A carried variable's value for the next step.
                Stmt::Assign {
                    target,
                    op: AssignOp::Set,
                    value,
                    ..
                } if scope.carries.contains(&target.name) => {
                    let v = self.expr_into(value, scope, ctx, lines)?;
                    lines.push(format!("{} = {v}", py_name(&target.name)));
                }
                Stmt::State { .. } | Stmt::Assign { .. } => {
                    return Err(unsupported("`state` or an assignment outside an optimizer".into()));
                }
            }
        }
        Ok(())
    }

    /// `if c { ... } else { ... }` as an expression: an `if` statement
    /// (pending in `self.pre`) that assigns a temporary, which is the value.
    fn if_expr(&mut self, cond: &Expr, then: &Block, otherwise: &Block, scope: &Scope, ctx: Ctx) -> Result<String, Unsupported> {
        let c = self.expr(cond, scope, ctx)?;
        self.temps += 1;
        let t = format!("_branch{}", self.temps);
        let mut lines = vec![format!("if {c}:")];
        for (k, b) in [then, otherwise].into_iter().enumerate() {
            if k == 1 {
                lines.push("else:".into());
            }
            let mut inner = scope.clone();
            let mut body = vec![];
            self.stmts(&b.stmts, &mut inner, ctx, Tail::Assign(t.clone()), &mut body)?;
            if !matches!(b.stmts.last(), Some(Stmt::Expr(_))) {
                return Err(unsupported("an `if` branch that does not end in a value".into()));
            }
            lines.extend(body.into_iter().map(|l| format!("    {l}")));
        }
        self.pre.extend(lines);
        Ok(t)
    }

    /// `scan x in xs along a from h = h0 { ... }` as a Python loop over
    /// `torch.unbind(xs, a)` (pending in `self.pre`) that appends the first
    /// carried variable after every step; the value is those states stacked
    /// along the same axis, as in nnc. Assignments in the body run in order,
    /// so a later one sees the earlier ones' new values, as in nnc.
    fn scan(&mut self, sc: &Scan, scope: &Scope, ctx: Ctx) -> Result<String, Unsupported> {
        let axis = match &sc.axis {
            Some(a) => self.expr(a, scope, ctx)?,
            None => "1".to_string(),
        };
        let mut lines = vec![];
        let mut inner = scope.clone();
        let step_names = sc.seqs.iter().map(|(x, _)| x).chain(sc.carries.iter().map(|(h, _)| h));
        for id in step_names {
            // The loop's names would overwrite an outer variable in Python.
            if scope.locals.contains(&id.name) || scope.attrs.contains(&id.name) {
                return Err(unsupported(format!("a `scan` whose `{}` hides an outer `{}`", id.name, id.name)));
            }
        }
        for (h, h0) in &sc.carries {
            let v = self.expr_into(h0, scope, ctx, &mut lines)?;
            lines.push(format!("{} = {v}", py_name(&h.name)));
        }
        let mut seqs = vec![];
        for (_, xs) in &sc.seqs {
            let v = self.expr_into(xs, scope, ctx, &mut lines)?;
            seqs.push(format!("torch.unbind({v}, {axis})"));
        }
        let vars: Vec<String> = sc.seqs.iter().map(|(x, _)| py_name(&x.name)).collect();
        for (id, _) in sc.seqs.iter().chain(&sc.carries) {
            inner.locals.insert(id.name.clone());
        }
        inner.carries = sc.carries.iter().map(|(h, _)| h.name.clone()).collect();
        self.temps += 1;
        let states = format!("_states{}", self.temps);
        lines.push(format!("{states} = []"));
        let (vars, seqs) = match seqs.len() {
            1 => (vars[0].clone(), seqs.remove(0)),
            _ => (vars.join(", "), format!("zip({})", seqs.join(", "))),
        };
        lines.push(format!("for {vars} in {seqs}:"));
        let mut body = vec![];
        self.stmts(&sc.body.stmts, &mut inner, ctx, Tail::Step, &mut body)?;
        let first = py_name(
            &sc.carries
                .first()
                .ok_or_else(|| unsupported("a `scan` without carried variables".into()))?
                .0
                .name,
        );
        body.push(format!("{states}.append({first})"));
        lines.extend(body.into_iter().map(|l| format!("    {l}")));
        self.pre.extend(lines);
        Ok(format!("torch.stack({states}, {axis})"))
    }

    fn function(&mut self, f: &FnDecl) -> Result<String, Unsupported> {
        let mut scope = Scope::default();
        let (params, late) = self.params(&f.params, &scope, "    ")?;
        for p in &f.params {
            scope.locals.insert(p.name.name.clone());
        }
        let names = mentioned(&f.body);
        let mut out = format!("def {}({}):\n", py_name(&f.name.name), params.join(", "));
        out.push_str(&Self::docstring(&f.doc, "    "));
        out.push_str(&late);
        out.push_str(&Self::shape_bindings(&f.params, &mut scope, &names, "    "));
        out.push_str(&self.body(&f.body, &mut scope, Ctx::Plain, "    ")?);
        Ok(out)
    }

    /// The shape of a parameter declaration as a Python list.
    fn shape(&mut self, ty: &TypeExpr, scope: &Scope) -> Result<String, Unsupported> {
        let TypeExpr::Tensor { dims, .. } = ty else {
            return Err(unsupported("a parameter declared without a tensor shape".into()));
        };
        let dims: Result<Vec<String>, Unsupported> = dims.iter().map(|d| self.dim(d, scope)).collect();
        Ok(format!("[{}]", dims?.join(", ")))
    }

    fn dim(&mut self, d: &DimExpr, scope: &Scope) -> Result<String, Unsupported> {
        Ok(match d {
            DimExpr::Int(n, _) => n.to_string(),
            DimExpr::Name(id) => self.name(&id.name, scope)?,
            DimExpr::Ellipsis(_) => return Err(unsupported("`...` in a parameter's shape".into())),
            DimExpr::Bin(op, a, b, _) => {
                let sym = match op {
                    DimOp::Add => "+",
                    DimOp::Sub => "-",
                    DimOp::Mul => "*",
                    DimOp::Div => "//",
                };
                format!("({} {sym} {})", self.dim(a, scope)?, self.dim(b, scope)?)
            }
        })
    }

    /// `init(shape, args...)`: an initializer called with the parameter's shape first.
    /// A parameter's initializer with its declared shape, passed first as
    /// sema does (`sema::train::init`): only to a function whose first
    /// parameter is `shape` and when the call does not name it; any other
    /// value (`concat([...])`, a number) is the parameter's value itself.
    fn initializer(&mut self, init: &Expr, shape: String, scope: &Scope) -> Result<String, Unsupported> {
        let (callee, args) = match &init.kind {
            ExprKind::Call { callee, args } => (callee.as_ref(), Some(args)),
            _ => (init, None),
        };
        let takes_shape = match &callee.kind {
            ExprKind::Name(id) if !scope.locals.contains(&id.name) => match self.globals.get(&id.name) {
                Some(Global::Fn(decl)) => Some(decl.params.first().is_some_and(|p| p.name.name == "shape")),
                Some(_) => None,
                None => Builtin::from_name(&id.name).map(|b| b.params().first() == Some(&"shape")),
            },
            _ => None,
        };
        let given_shape = args.is_some_and(|a| a.iter().any(|x| x.name.as_ref().is_some_and(|n| n.name == "shape")));
        match takes_shape {
            Some(takes) => {
                let f = self.expr(callee, scope, Ctx::Plain)?;
                let mut all = if takes && !given_shape { vec![shape] } else { vec![] };
                if let Some(args) = args {
                    all.extend(self.args(args, scope, Ctx::Plain)?);
                }
                Ok(format!("{f}({})", all.join(", ")))
            }
            // A number fills the shape, as in nnc.
            None if args.is_none() && is_number(init) => Ok(format!("ops.full({shape}, {})", self.expr(init, scope, Ctx::Plain)?)),
            None => self.expr(init, scope, Ctx::Plain),
        }
    }

    fn layer(&mut self, l: &LayerDecl) -> Result<String, Unsupported> {
        let mut init_scope = Scope::default();
        let (params, late) = self.params(&l.params, &init_scope, "        ")?;
        let mut out = format!("class {}(nn.Module):\n", py_name(&l.name.name));
        out.push_str(&Self::docstring(&l.doc, "    "));
        let _ = writeln!(
            out,
            "\n    def __init__(self{}):",
            params.iter().map(|p| format!(", {p}")).collect::<String>()
        );
        out.push_str("        super().__init__()\n");
        out.push_str(&late);
        let (mut attrs, mut buffers) = (HashSet::new(), HashSet::new());
        for p in &l.params {
            init_scope.locals.insert(p.name.name.clone());
            attrs.insert(p.name.name.clone());
            let n = py_name(&p.name.name);
            if matches!(p.ty, Some(TypeExpr::Fn(_))) {
                // A layer given as an argument belongs to whoever built it
                // (nnc names its parameters there): call it, do not own it.
                let _ = writeln!(out, "        self.{n} = ops.borrow({n})");
            } else {
                let _ = writeln!(out, "        self.{n} = {n}");
            }
        }
        let mut forward = None;
        for m in &l.members {
            match m {
                LayerMember::Param(t) | LayerMember::Buffer(t) => {
                    let shape = self.shape(&t.ty, &init_scope)?;
                    let value = self.initializer(&t.init, shape, &init_scope)?;
                    let n = py_name(&t.name.name);
                    if matches!(m, LayerMember::Param(_)) {
                        let _ = writeln!(out, "        self.{n} = nn.Parameter({value})");
                    } else {
                        let _ = writeln!(out, "        self.register_buffer(\"{n}\", {value})");
                        buffers.insert(t.name.name.clone());
                    }
                    attrs.insert(t.name.name.clone());
                }
                LayerMember::Let { name, value, .. } => {
                    let v = self.expr(value, &init_scope, Ctx::Plain)?;
                    let n = py_name(&name.name);
                    // A compile-time `if` (ResidualBlock's shortcut) leaves
                    // its branches pending: they belong in `__init__` too.
                    out.push_str(&self.take_pre("        "));
                    let _ = writeln!(out, "        self.{n} = {v}");
                    init_scope.locals.remove(&name.name);
                    // Later members refer to it as an attribute.
                    let _ = writeln!(out, "        {n} = self.{n}");
                    init_scope.locals.insert(name.name.clone());
                    attrs.insert(name.name.clone());
                }
                LayerMember::Fn(f) if f.name.name == "forward" => forward = Some(f),
                LayerMember::Fn(f) => {
                    return Err(unsupported(format!(
                        "the method `{}` of layer `{}` (only `forward` is translated)",
                        f.name.name, l.name.name
                    )))
                }
            }
        }
        let Some(f) = forward else {
            return Err(unsupported(format!("the layer `{}` without `forward`", l.name.name)));
        };
        let mut scope = Scope {
            locals: HashSet::new(),
            attrs,
            buffers,
            method: true,
            carries: HashSet::new(),
        };
        let (fparams, late) = self.params(&f.params, &scope, "        ")?;
        for p in &f.params {
            scope.locals.insert(p.name.name.clone());
        }
        let names = mentioned(&f.body);
        let _ = writeln!(out, "\n    def forward(self, {}):", fparams.join(", "));
        out.push_str(&late);
        out.push_str(&Self::shape_bindings(&f.params, &mut scope, &names, "        "));
        out.push_str(&self.body(&f.body, &mut scope, Ctx::Plain, "        ")?);
        Ok(out)
    }

    /// The `nn.Module` of model `m`: its layers built in `__init__`, its body as `forward`.
    pub fn model(&mut self, m: &ModelDecl) -> Result<String, Unsupported> {
        let mut scope = Scope {
            method: true,
            ..Scope::default()
        };
        for p in &m.inputs {
            scope.locals.insert(p.name.name.clone());
        }
        let names = mentioned(&m.body);
        let inputs: Vec<String> = m.inputs.iter().map(|p| py_name(&p.name.name)).collect();
        let bindings = Self::shape_bindings(&m.inputs, &mut scope, &names, "        ");
        self.hoisted.clear();
        let mut body = self.body(&m.body, &mut scope, Ctx::ModelForward, "        ")?;
        if self.uses_mode {
            // Functions read the mode from `ops`, and buffer writes are
            // applied when the outermost model's forward ends.
            let inner: String = body.lines().map(|l| format!("    {l}\n")).collect();
            body = format!("        with ops.mode(self):\n{inner}");
        }
        if !std::mem::take(&mut self.pre).is_empty() {
            return Err(unsupported(format!(
                "an `if` where the model `{}` needs a plain value",
                m.name.name
            )));
        }
        let mut out = format!("class {}(nn.Module):\n", py_name(&m.name.name));
        out.push_str(&Self::docstring(&m.doc, "    "));
        out.push_str("\n    def __init__(self):\n        super().__init__()\n");
        for line in &self.hoisted {
            let _ = writeln!(out, "        {line}");
        }
        let _ = writeln!(out, "\n    def forward(self, {}):", inputs.join(", "));
        out.push_str(&bindings);
        out.push_str(&body);
        Ok(out)
    }

    // ---- expressions -----------------------------------------------------

    fn is_layer_construction(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Call { callee, .. } => match &callee.kind {
                ExprKind::Name(id) => matches!(self.globals.get(&id.name), Some(Global::Layer(_))),
                _ => false,
            },
            _ => false,
        }
    }

    fn name(&mut self, name: &str, scope: &Scope) -> Result<String, Unsupported> {
        if scope.locals.contains(name) {
            return Ok(py_name(name));
        }
        // The mode: a module's own flag in its methods; elsewhere (a
        // function such as `dropout`) the flag of the model running it.
        if name == "training" && !scope.attrs.contains(name) && self.globals.get(name).is_none() {
            if scope.method {
                return Ok("self.training".into());
            }
            self.uses_mode = true;
            return Ok("ops.is_training()".into());
        }
        if scope.attrs.contains(name) {
            return Ok(format!("self.{}", py_name(name)));
        }
        if self.is_std(name) {
            if let Some((_, torch)) = TORCH_FNS.iter().find(|(n, _)| *n == name) {
                return Ok((*torch).to_string());
            }
        }
        if self.globals.get(name).is_some() {
            self.ensure(name)?;
            return Ok(py_name(name));
        }
        if Builtin::from_name(name).is_some() {
            return Ok(format!("ops.{name}"));
        }
        Err(unsupported(format!("the name `{name}`")))
    }

    fn args(&mut self, args: &[Arg], scope: &Scope, ctx: Ctx) -> Result<Vec<String>, Unsupported> {
        let mut out = vec![];
        for a in args {
            let v = self.expr(&a.value, scope, ctx)?;
            match &a.name {
                Some(n) => out.push(format!("{}={v}", py_name(&n.name))),
                None => out.push(v),
            }
            if let Some(to) = &a.arrow_to {
                out.push(self.expr(to, scope, ctx)?);
            }
        }
        Ok(out)
    }

    /// The arguments of a layer built by a model body, with the layers among
    /// them hoisted to attributes of the model.
    fn layer_args(&mut self, args: &[Arg]) -> Result<Vec<String>, Unsupported> {
        let mut out = vec![];
        for a in args {
            let v = match &a.value.kind {
                ExprKind::Call { callee, args: inner }
                    if self.is_layer_construction(&a.value) && self.records.contains_key(&a.value.span) =>
                {
                    let ExprKind::Name(id) = &callee.kind else {
                        unreachable!("a layer construction names its layer")
                    };
                    self.hoist_layer(&id.name, inner, a.value.span)?
                }
                _ => self.expr(&a.value, &Scope::default(), Ctx::Plain)?,
            };
            match &a.name {
                Some(n) => out.push(format!("{}={v}", py_name(&n.name))),
                None => out.push(v),
            }
            if let Some(to) = &a.arrow_to {
                out.push(self.expr(to, &Scope::default(), Ctx::Plain)?);
            }
        }
        Ok(out)
    }

    /// A layer built by a model body: `self.NAME`, created in `__init__`.
    fn hoist_layer(&mut self, callee: &str, args: &[Arg], span: Span) -> Result<String, Unsupported> {
        let Some(record) = self.records.get(&span).copied() else {
            return Err(unsupported(format!(
                "a `{callee}` layer built outside the model's own body (inside a function)"
            )));
        };
        // Arguments are compile-time values: evaluate them where `__init__`
        // can. A layer built as an argument (`Bidirectional(Lstm(...), ...)`)
        // is the model's own attribute first, under the name nnc gave it.
        let saved = std::mem::take(&mut self.pre);
        let args = self.layer_args(args);
        let branches = std::mem::replace(&mut self.pre, saved);
        if !branches.is_empty() {
            return Err(unsupported(format!("an `if` in the arguments of a `{callee}` layer")));
        }
        let args = args?;
        let class = self.name(callee, &Scope::default())?;
        if self.is_std(callee) && is_torch_layer(callee) {
            self.torch_layers.push(record.name.clone());
        }
        let attr = py_name(record.name.strip_prefix(&self.layer_prefix).unwrap_or(&record.name));
        self.hoisted.push(format!("self.{attr} = {class}({})", args.join(", ")));
        Ok(format!("self.{attr}"))
    }

    fn call(
        &mut self,
        callee: &Expr,
        args: &[Arg],
        span: Span,
        first: Option<String>,
        scope: &Scope,
        ctx: Ctx,
    ) -> Result<String, Unsupported> {
        if let ExprKind::Name(id) = &callee.kind {
            let local = scope.locals.contains(&id.name) || scope.attrs.contains(&id.name);
            // `repeat(n, Layer(...))` builds the layer n times: a list comprehension.
            if !local && self.globals.get(&id.name).is_none() && Builtin::from_name(&id.name) == Some(Builtin::Repeat) {
                let [n, body] = args else {
                    return Err(unsupported("`repeat` without a count and a layer".into()));
                };
                if ctx == Ctx::ModelForward || first.is_some() {
                    return Err(unsupported("`repeat` in a model body (build the stack in a layer)".into()));
                }
                let n = self.expr(&n.value, scope, ctx)?;
                let body = self.expr(&body.value, scope, ctx)?;
                return Ok(format!("ops.Repeat([{body} for _ in range({n})])"));
            }
            if !local && matches!(self.globals.get(&id.name), Some(Global::Layer(_))) {
                // A layer construction; in a pipe the new layer is applied to the input.
                let module = if ctx == Ctx::ModelForward {
                    self.hoist_layer(&id.name, args, span)?
                } else {
                    let class = self.name(&id.name, scope)?;
                    format!("{class}({})", self.args(args, scope, ctx)?.join(", "))
                };
                if ctx != Ctx::ModelForward && first.is_some() {
                    return Err(unsupported(format!("a `{}` layer built inside a function or layer body", id.name)));
                }
                return Ok(match first {
                    Some(x) => format!("{module}({x})"),
                    None => module,
                });
            }
        }
        let f = self.expr(callee, scope, ctx)?;
        let mut all: Vec<String> = first.into_iter().collect();
        all.extend(self.args(args, scope, ctx)?);
        Ok(format!("{f}({})", all.join(", ")))
    }

    fn expr(&mut self, e: &Expr, scope: &Scope, ctx: Ctx) -> Result<String, Unsupported> {
        Ok(match &e.kind {
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Float(x) => {
                let s = format!("{x:?}");
                if s.contains(['.', 'e', 'E']) || s.contains("inf") || s.contains("NaN") {
                    s
                } else {
                    format!("{s}.0")
                }
            }
            ExprKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            ExprKind::Str(s) => format!("{s:?}"),
            ExprKind::Name(id) => self.name(&id.name, scope)?,
            ExprKind::List(items) => {
                let items: Result<Vec<String>, Unsupported> = items.iter().map(|i| self.expr(i, scope, ctx)).collect();
                format!("[{}]", items?.join(", "))
            }
            ExprKind::Neg(x) => format!("-{}", self.operand(x, NEG, false, scope, ctx)?),
            ExprKind::Binary(op, a, b) => {
                // Inside `ops.compare(...)` the comparison binds loosest.
                let p = match precedence(*op) {
                    COMPARE => 1,
                    p => p,
                };
                let (a, b) = (self.operand(a, p, false, scope, ctx)?, self.operand(b, p, true, scope, ctx)?);
                match op {
                    BinOp::Add => format!("{a} + {b}"),
                    BinOp::Sub => format!("{a} - {b}"),
                    BinOp::Mul => format!("{a} * {b}"),
                    BinOp::Div => format!("{a} / {b}"),
                    BinOp::Rem => format!("{a} % {b}"),
                    BinOp::MatMul => format!("{a} @ {b}"),
                    BinOp::Pow => format!("{a} ** {b}"),
                    BinOp::Lt => format!("ops.compare({a} < {b})"),
                    BinOp::Le => format!("ops.compare({a} <= {b})"),
                    BinOp::Gt => format!("ops.compare({a} > {b})"),
                    BinOp::Ge => format!("ops.compare({a} >= {b})"),
                    BinOp::Eq => format!("ops.compare({a} == {b})"),
                    BinOp::Ne => format!("ops.compare({a} != {b})"),
                }
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, None, scope, ctx)?,
            ExprKind::Pipe(lhs, rhs) => {
                let x = self.expr(lhs, scope, ctx)?;
                match &rhs.kind {
                    ExprKind::Call { callee, args } => self.call(callee, args, rhs.span, Some(x), scope, ctx)?,
                    _ => format!("{}({x})", self.expr(rhs, scope, ctx)?),
                }
            }
            // NumPy's basic indexing is Python's; only reversal differs:
            // torch has no negative steps, so `::-1` is a `flip` of the
            // axis it leaves in the result.
            ExprKind::Index { base, items } => {
                let b = self.operand(base, ATOM, false, scope, ctx)?;
                let mut parts = vec![];
                let mut flips = vec![];
                let mut kept_axes = 0usize;
                let has_ellipsis = items.iter().any(|it| matches!(it, IndexItem::Ellipsis(_)));
                for it in items {
                    parts.push(match it {
                        IndexItem::At(e) => self.expr(e, scope, ctx)?,
                        IndexItem::Ellipsis(_) => "...".to_string(),
                        IndexItem::Slice { start, end, step, .. } => {
                            let mut part = |e: &Option<Expr>| -> Result<String, Unsupported> {
                                e.as_ref().map_or(Ok(String::new()), |e| self.expr(e, scope, ctx))
                            };
                            let (a, z) = (part(start)?, part(end)?);
                            kept_axes += 1;
                            match step {
                                Some(st) if matches!(st.kind, ExprKind::Neg(_)) || matches!(st.kind, ExprKind::Int(n) if n < 0) => {
                                    let whole_reversed =
                                        a.is_empty() && z.is_empty() && part(step)?.trim_start_matches('(').trim_end_matches(')') == "-1";
                                    if !whole_reversed || has_ellipsis {
                                        return Err(unsupported("a slice with a negative step other than `x[::-1]`".into()));
                                    }
                                    flips.push(kept_axes - 1);
                                    ":".to_string()
                                }
                                Some(_) => format!("{a}:{z}:{}", part(step)?),
                                None => format!("{a}:{z}"),
                            }
                        }
                    });
                }
                let indexed = format!("{b}[{}]", parts.join(", "));
                if flips.is_empty() {
                    indexed
                } else {
                    let dims: Vec<String> = flips.iter().map(|d| d.to_string()).collect();
                    format!("{indexed}.flip({},)", dims.join(", "))
                }
            }
            ExprKind::Scan(sc) => self.scan(sc, scope, ctx)?,
            ExprKind::Field { field, .. } => return Err(unsupported(format!("the member access `.{}`", field.name))),
            ExprKind::Error => return Err(unsupported("a syntax error".into())),
            ExprKind::If { cond, then, otherwise } => self.if_expr(cond, then, otherwise, scope, ctx)?,
        })
    }

    /// An operand of an operator of precedence `parent`, parenthesised
    /// where Python would otherwise group it differently.
    fn operand(&mut self, e: &Expr, parent: u8, right: bool, scope: &Scope, ctx: Ctx) -> Result<String, Unsupported> {
        let s = self.expr(e, scope, ctx)?;
        let own = match &e.kind {
            ExprKind::Binary(op, ..) => precedence(*op),
            ExprKind::Neg(_) => NEG,
            ExprKind::Int(n) if *n < 0 => NEG,
            ExprKind::Float(x) if *x < 0.0 => NEG,
            _ => ATOM,
        };
        // `**` groups to the right, the others to the left; a negation
        // under `**` must be bracketed on its left (`(-x) ** 2`).
        let wrap = own < parent || (own == parent && own != ATOM && (right != (parent == POW))) || (own == NEG && parent == POW && !right);
        Ok(if wrap { format!("({s})") } else { s })
    }
}

/// A number literal, possibly negated.
fn is_number(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) => true,
        ExprKind::Neg(inner) => is_number(inner),
        _ => false,
    }
}

/// Python's binding strengths for the operators the translation writes.
const COMPARE: u8 = 9;
const ADD: u8 = 2;
const MUL: u8 = 3;
const NEG: u8 = 4;
const POW: u8 = 5;
const ATOM: u8 = 10;

fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Add | BinOp::Sub => ADD,
        BinOp::Mul | BinOp::Div | BinOp::Rem | BinOp::MatMul => MUL,
        BinOp::Pow => POW,
        // Written as a call, `ops.compare(a < b)`: atomic from outside.
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => COMPARE,
    }
}

/// Every name an expression of `body` mentions.
/// Every name an expression uses.
fn mentioned_in(e: &Expr, out: &mut HashSet<String>) {
    let walk = mentioned_in;
    match &e.kind {
        ExprKind::Name(id) => {
            out.insert(id.name.clone());
        }
        ExprKind::List(xs) => xs.iter().for_each(|x| walk(x, out)),
        ExprKind::Neg(x) => walk(x, out),
        ExprKind::Index { base, items } => {
            walk(base, out);
            for it in items {
                match it {
                    IndexItem::At(e) => walk(e, out),
                    IndexItem::Slice { start, end, step, .. } => {
                        [start, end, step].into_iter().flatten().for_each(|e| walk(e, out));
                    }
                    IndexItem::Ellipsis(_) => {}
                }
            }
        }
        ExprKind::Field { base, .. } => walk(base, out),
        ExprKind::Scan(s) => {
            for (_, x) in s.seqs.iter().chain(&s.carries) {
                walk(x, out);
            }
            for st in &s.body.stmts {
                match st {
                    Stmt::Let { value, .. } | Stmt::Return { value, .. } | Stmt::State { value, .. } | Stmt::Assign { value, .. } => {
                        walk(value, out)
                    }
                    Stmt::Expr(x) => walk(x, out),
                }
            }
        }
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
            walk(a, out);
            walk(b, out);
        }
        ExprKind::Call { callee, args } => {
            walk(callee, out);
            for a in args {
                walk(&a.value, out);
                if let Some(t) = &a.arrow_to {
                    walk(t, out);
                }
            }
        }
        ExprKind::If { cond, then, otherwise } => {
            walk(cond, out);
            for b in [then, otherwise] {
                for st in &b.stmts {
                    match st {
                        Stmt::Let { value, .. } | Stmt::Return { value, .. } | Stmt::State { value, .. } | Stmt::Assign { value, .. } => {
                            walk(value, out)
                        }
                        Stmt::Expr(x) => walk(x, out),
                    }
                }
            }
        }
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Str(_) | ExprKind::Error => {}
    }
}

fn mentioned(body: &Body) -> HashSet<String> {
    let walk = mentioned_in;
    let mut out = HashSet::new();
    match body {
        Body::Expr(e) => walk(e, &mut out),
        Body::Block(b) => {
            for s in &b.stmts {
                match s {
                    Stmt::Let { value, .. } | Stmt::Return { value, .. } | Stmt::State { value, .. } | Stmt::Assign { value, .. } => {
                        walk(value, &mut out)
                    }
                    Stmt::Expr(e) => walk(e, &mut out),
                }
            }
        }
    }
    out
}

/// A `step` of a `train` block as `def NAME_loss(model, x, y)`: its
/// `let`s and its `loss`, with each of `models` bound to `model.NAME` and
/// `batch` to the batch's size. The body's `every = k` is the step's, not code.
pub fn step_loss(t: &mut Translator, name: &str, body: &Block, models: &[String]) -> Result<String, Unsupported> {
    let mut scope = Scope::default();
    for n in ["model", "x", "y", "batch"] {
        scope.locals.insert(n.to_string());
    }
    let mut lines = vec!["batch = x.shape[0]".to_string()];
    for m in models {
        lines.push(format!("{} = model.{}", py_name(m), py_name(m)));
        scope.locals.insert(m.clone());
    }
    let mut loss = None;
    for st in &body.stmts {
        match st {
            Stmt::Assign { target, value, .. } if target.name == "loss" => {
                let v = t.expr_into(value, &scope, Ctx::Plain, &mut lines)?;
                loss = Some(v);
            }
            Stmt::Assign { target, .. } if target.name == "every" => {}
            Stmt::Let { .. } => t.stmts(std::slice::from_ref(st), &mut scope, Ctx::Plain, Tail::Return, &mut lines)?,
            _ => {
                return Err(unsupported(format!(
                    "a statement of step `{name}` other than `let`, `loss =` and `every =`"
                )))
            }
        }
    }
    let loss = loss.ok_or_else(|| unsupported(format!("step `{name}` without `loss =`")))?;
    if mentioned(&Body::Block(body.clone())).contains("params") {
        return Err(unsupported("`params` in a loss (a weight penalty)".into()));
    }
    lines.push(format!("return {loss}"));
    let body: String = lines.iter().map(|l| format!("    {l}\n")).collect();
    Ok(format!(
        "def {}_loss(model, x, y):\n    \"\"\"The loss of `step {name}`; `model` holds the block's models.\"\"\"\n{body}",
        py_name(name)
    ))
}

/// Translate the expression of a `train` block's `loss`, with `model`,
/// `x` and `y` bound to Python variables of those names.
pub fn loss_expr(t: &mut Translator, e: &Expr) -> Result<String, Unsupported> {
    let mut scope = Scope::default();
    for n in ["model", "x", "y"] {
        scope.locals.insert(n.to_string());
    }
    if mentioned(&Body::Expr(e.clone())).contains("params") {
        return Err(unsupported("`params` in a loss (a weight penalty)".into()));
    }
    let v = t.expr(e, &scope, Ctx::Plain)?;
    if !std::mem::take(&mut t.pre).is_empty() {
        return Err(unsupported("an `if` in a train block's loss".into()));
    }
    Ok(v)
}
