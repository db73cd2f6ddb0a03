//! The backward pass of a train plan's loss, derived on the regrouped graph
//! (`graph`) with the vector-Jacobian rules of `autodiff::rules` written
//! as equations: `x · W` sends `g · Wᵀ` to `x` and `xᵀ · g` to `W`, a
//! broadcast sends `Σ g` back, a call `f(z)` of an elementwise function
//! sends `g ⊙ f'(z)`. The same rules, one level up: where `autodiff` sees
//! `max(z, 0)`, this sees `relu(z)`.
//!
//! Naming follows the textbook: layer `l`'s parameters `W[l]`, `b[l]`; the
//! input of its final activation `z[l]` and its output `a[l]` (a layer with
//! no activation outputs `z[l]`); the loss `L`; `δ[l] = ∂L/∂z[l]`. Other
//! intermediate values have no name and are written out where they are used.
//! Each named value's adjoint is printed once, in the section of the layer
//! that computed the value, so a section reads from `∂L/∂a[l]` to `δ[l]` to
//! the parameters' gradients.

use super::graph::{regroup, CallClass, Graph, Node, NodeKind};
use super::notation::{hadamard, Expr, Name};
use super::windows;
use crate::ir::{self, DType, Dim, Func, Op, UnaryOp, Value};
use crate::sema::TrainPlan;
use std::collections::HashMap;

/// Where an equation is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// Code before the first layer (`flatten`), and the input's gradient.
    Input,
    /// Layer `l` (1-based).
    Layer(usize),
    /// Code after the last layer: the loss.
    Loss,
}

#[derive(Clone, Debug)]
pub struct Equation {
    /// `Var(z¹)` in the forward pass, `Adj(z¹)` (`δ¹`) in the backward pass.
    pub lhs: Expr,
    pub rhs: Expr,
    pub shape: String,
    /// Why the step does not compute it (the input's gradient).
    pub unused: bool,
}

#[derive(Clone, Debug)]
pub struct LayerInfo {
    /// `fc1`.
    pub name: String,
    /// `Dense`.
    pub kind: String,
}

#[derive(Clone, Debug)]
pub struct Derivation {
    pub model: String,
    /// Names used for the model's parameters: (`W¹`, `fc1.W`, shape).
    pub symbols: Vec<(Name, String, String)>,
    pub layers: Vec<LayerInfo>,
    pub forward: Vec<(Section, Equation)>,
    /// From the loss back to the input.
    pub backward: Vec<(Section, Equation)>,
    /// The name of each named value of the plan's loss function.
    pub names: HashMap<Value, Name>,
    /// Functions whose derivative appears (`relu`, `cross_entropy`), in
    /// order of appearance, with the class that decides the form.
    pub functions: Vec<String>,
    /// What the window forms mean (`⋆`, `unpool_max`), as (text, LaTeX), in
    /// order of appearance.
    pub notes: Vec<(String, String)>,
}

/// The adjoint of a tree of concatenations, an inner node's offset along
/// the axis, and the tree's shape.
type ConcatBase = (Expr, usize, Vec<Dim>);

struct Cx<'a> {
    f: &'a Func,
    g: &'a Graph,
    names: HashMap<Value, Name>,
    producer: HashMap<Value, usize>,
    /// Depends on a parameter or the input (so it has a gradient to show).
    active: Vec<bool>,
    /// Depends on a trained parameter (so the step computes its adjoint).
    trained: Vec<bool>,
    functions: Vec<String>,
    notes: Vec<(String, String)>,
    /// For an inner node of a tree of concatenations: the tree's adjoint,
    /// where the node starts in it, and the tree's shape.
    concat_base: std::cell::RefCell<HashMap<Value, ConcatBase>>,
}

/// Derive the backward pass of `plan`'s loss.
pub fn derive(plan: &TrainPlan) -> Derivation {
    // Callers check that the block has one loss (`plan.evaluation()`).
    let ev = plan.eval.as_ref().expect("a train block with one loss");
    let f = &ev.loss;
    let g = regroup(f, &ev.calls);
    let mut names: HashMap<Value, Name> = HashMap::new();
    let mut symbols = vec![];
    // The longest layer name that prefixes the parameter (`enc.fc1.W`).
    for (&v, pname) in f.params.iter().zip(&f.param_names) {
        let owner = g
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| pname.strip_prefix(&l.name).is_some_and(|r| r.starts_with('.')))
            .max_by_key(|(_, l)| l.name.len());
        let name = match owner {
            Some((k, l)) => Name::of_layer(&pname[l.name.len() + 1..], k + 1),
            None => Name::plain(pname.clone()),
        };
        if owner.is_some() {
            symbols.push((name.clone(), pname.clone(), ir::shape_to_string(&f.ty(v).shape)));
        }
        names.insert(v, name);
    }
    let producer: HashMap<Value, usize> = g.nodes.iter().enumerate().map(|(i, n)| (n.result, i)).collect();
    for (k, layer) in g.layers.iter().enumerate() {
        let l = k + 1;
        let activation = producer.get(&layer.output).map(|&i| &g.nodes[i]).and_then(|n| match &n.kind {
            NodeKind::Call {
                class: CallClass::Elementwise,
                ..
            } => n.args.iter().find(|a| f.ty(**a).dtype == DType::F32).copied(),
            _ => None,
        });
        match activation {
            Some(z) if !names.contains_key(&z) => {
                names.insert(z, Name::of_layer("z", l));
                names.insert(layer.output, Name::of_layer("a", l));
            }
            _ => {
                names.entry(layer.output).or_insert(Name::of_layer("z", l));
            }
        }
    }
    let loss = f.results[0];
    names.insert(loss, Name::plain("L"));

    let trainable: Vec<Value> = plan
        .params
        .iter()
        .zip(&f.params[2..])
        .filter(|(p, _)| p.trainable)
        .map(|(_, v)| *v)
        .collect();
    let mut from_input = trainable.clone();
    from_input.push(f.params[0]);
    name_source_values(&mut names, &g, &producer, &ev.value_names);
    let mut cx = Cx {
        f,
        g: &g,
        names,
        producer,
        active: activity(f, &from_input),
        trained: activity(f, &trainable),
        functions: vec![],
        notes: vec![],
        concat_base: Default::default(),
    };
    cx.name_intermediates();
    let section_of = |cx: &Cx, v: Value| -> Section {
        match cx.producer.get(&v) {
            Some(&i) => cx.section_of_node(i),
            None => match cx.names.get(&v).and_then(|n| n.layer) {
                Some(l) => Section::Layer(l),
                None => Section::Input,
            },
        }
    };

    // ---- forward: every named value, in order --------------------------
    let mut forward = vec![];
    for node in &g.nodes {
        if let Some(n) = cx.names.get(&node.result).cloned() {
            let rhs = cx.node_expr(node);
            forward.push((
                section_of(&cx, node.result),
                Equation {
                    lhs: Expr::Var(n),
                    rhs,
                    shape: ir::shape_to_string(&f.ty(node.result).shape),
                    unused: false,
                },
            ));
        }
    }

    // ---- backward: reverse order, adjoints summed per value -------------
    let mut adj: HashMap<Value, Vec<Expr>> = HashMap::new();
    adj.insert(loss, vec![Expr::Num(1.0)]);
    let mut backward = vec![];
    let emit = |cx: &Cx, v: Value, contributions: Vec<Expr>, backward: &mut Vec<(Section, Equation)>| -> Expr {
        let rhs = sum(contributions);
        match cx.names.get(&v) {
            Some(n) if v != loss => {
                backward.push((
                    section_of(cx, v),
                    Equation {
                        lhs: Expr::Adj(n.clone()),
                        rhs,
                        shape: ir::shape_to_string(&cx.f.ty(v).shape),
                        unused: !cx.trained[v.index()],
                    },
                ));
                Expr::Adj(n.clone())
            }
            _ => rhs,
        }
    };
    for i in (0..g.nodes.len()).rev() {
        let node = &g.nodes[i];
        let Some(contributions) = adj.remove(&node.result) else {
            continue;
        };
        let gexpr = emit(&cx, node.result, contributions, &mut backward);
        for (arg, c) in cx.vjp(node, gexpr) {
            if cx.active[arg.index()] && f.ty(arg).dtype == DType::F32 {
                adj.entry(arg).or_default().push(c);
            }
        }
    }
    // Parameters and the input: after their layer's other equations, in
    // declaration order.
    let mut leaves: Vec<(Section, Equation)> = vec![];
    for &p in &f.params {
        if let Some(contributions) = adj.remove(&p) {
            emit(&cx, p, contributions, &mut leaves);
        }
    }
    // Stable: within a section, values keep the order they were completed.
    let order = |s: &Section| std::cmp::Reverse(*s);
    backward.extend(leaves);
    backward.sort_by_key(|(s, _)| order(s));

    Derivation {
        model: plan.model.clone(),
        symbols,
        layers: g
            .layers
            .iter()
            .map(|l| LayerInfo {
                name: l.name.clone(),
                kind: l.kind.clone(),
            })
            .collect(),
        // A recurrence's steps, once for a generic step `t`.
        forward: super::steps::fold(forward),
        backward: super::steps::fold(backward),
        functions: std::mem::take(&mut cx.functions),
        notes: std::mem::take(&mut cx.notes),
        names: cx.names,
    }
}

/// Names the source gives (`let q = ...`, a scan's `h = ...`) to values the
/// layers did not name. A name given to several values of one layer (one
/// per step of a recurrence) gets the step as a subscript: `h₁ … h₂₈`.
fn name_source_values(names: &mut HashMap<Value, Name>, g: &Graph, producer: &HashMap<Value, usize>, given: &[(Value, String)]) {
    let layer_of = |v: &Value| producer.get(v).and_then(|&i| g.nodes[i].layer).map(|k| k + 1);
    let mut fresh: Vec<(Value, String, Option<usize>)> = vec![];
    for (v, n) in given {
        if producer.contains_key(v) && !names.contains_key(v) && !fresh.iter().any(|(w, ..)| w == v) {
            fresh.push((*v, n.clone(), layer_of(v)));
        }
    }
    let taken: std::collections::HashSet<Name> = names.values().cloned().collect();
    let mut seen: HashMap<(String, Option<usize>), usize> = HashMap::new();
    for (v, base, layer) in &fresh {
        let repeats = fresh.iter().filter(|(_, b, l)| b == base && l == layer).count();
        let k = seen.entry((base.clone(), *layer)).or_default();
        *k += 1;
        let name = Name {
            base: base.clone(),
            layer: *layer,
            index: (repeats > 1).then_some(*k),
            step: None,
        };
        if !taken.contains(&name) {
            names.insert(*v, name);
        }
    }
}

/// Unnamed values at most this long are written out where they are used;
/// longer ones, and any used twice, get a name of their own (`u₁`).
const INLINE_SIZE: usize = 12;

fn sum(mut terms: Vec<Expr>) -> Expr {
    if terms.len() == 1 {
        terms.remove(0)
    } else {
        Expr::Sum(terms)
    }
}

/// Values that depend differentiably on any of `from`.
fn activity(f: &Func, from: &[Value]) -> Vec<bool> {
    let mut active = vec![false; f.types.len()];
    for v in from {
        active[v.index()] = true;
    }
    for inst in &f.insts {
        let hit = inst.op.differentiable_args().iter().any(|&i| active[inst.args[i].index()]);
        active[inst.result.index()] |= hit && f.ty(inst.result).dtype == DType::F32;
    }
    active
}

impl Cx<'_> {
    fn section_of_node(&self, i: usize) -> Section {
        if let Some(l) = self.g.nodes[i].layer {
            return Section::Layer(l + 1);
        }
        let after_layers = self.g.nodes[..i].iter().any(|n| n.layer.is_some());
        if after_layers {
            Section::Loss
        } else {
            Section::Input
        }
    }

    /// Name the unnamed values that are used more than once or read too
    /// long to write out (`u¹₁`, numbered per layer), in forward order, so
    /// that every equation stays short and the output grows linearly with
    /// the model rather than with the number of paths through it.
    fn name_intermediates(&mut self) {
        let mut uses = vec![0usize; self.f.types.len()];
        for node in &self.g.nodes {
            for a in &node.args {
                uses[a.index()] += 1;
            }
        }
        // A step's activation `h₃ = tanh(…)` names its input `z₃`, so the
        // step's adjoint reads `δ₃`, as the textbook writes a recurrence.
        // Only where a step has one such activation: an LSTM's four gates
        // would all claim `z₃`.
        let taken: std::collections::HashSet<Name> = self.names.values().cloned().collect();
        let mut claims: Vec<(Value, Name)> = vec![];
        for node in &self.g.nodes {
            let NodeKind::Call {
                class: CallClass::Elementwise,
                ..
            } = node.kind
            else {
                continue;
            };
            let Some(out) = self.names.get(&node.result).filter(|n| n.index.is_some()).cloned() else {
                continue;
            };
            let Some(&z) = node.args.iter().find(|a| self.f.ty(**a).dtype == DType::F32) else {
                continue;
            };
            let z_name = Name { base: "z".into(), ..out };
            let inline = self.producer.get(&z).map(|&i| self.node_expr(&self.g.nodes[i]).size());
            if !self.names.contains_key(&z) && inline.is_some_and(|n| n > 3) && !taken.contains(&z_name) {
                claims.push((z, z_name));
            }
        }
        for (z, name) in &claims {
            if claims.iter().filter(|(_, n)| n == name).count() == 1 {
                self.names.insert(*z, name.clone());
            }
        }
        let mut count: HashMap<Option<usize>, usize> = HashMap::new();
        for node in &self.g.nodes {
            if self.names.contains_key(&node.result) || self.inner_concat(node.result) {
                continue;
            }
            let size = self.node_expr(node).size();
            if size > INLINE_SIZE || (uses[node.result.index()] > 1 && size > 3) {
                let layer = node.layer.map(|k| k + 1);
                let k = count.entry(layer).or_default();
                *k += 1;
                let name = Name {
                    base: "u".into(),
                    layer,
                    index: Some(*k),
                    step: None,
                };
                self.names.insert(node.result, name);
            }
        }
    }

    /// The concat axis of `v`'s node, when it is an unnamed concatenation.
    fn concat_axis(&self, v: Value) -> Option<usize> {
        let node = &self.g.nodes[*self.producer.get(&v)?];
        match node.kind {
            NodeKind::Prim(Op::Concat { axis }) if !self.names.contains_key(&v) => Some(axis),
            _ => None,
        }
    }

    /// A concatenation read only by concatenations along the same axis: an
    /// inner node of the tree an unrolled scan stacks its steps with, which
    /// reads as one concatenation of all the parts.
    fn inner_concat(&self, v: Value) -> bool {
        let Some(&i) = self.producer.get(&v) else { return false };
        let NodeKind::Prim(Op::Concat { axis }) = self.g.nodes[i].kind else {
            return false;
        };
        let mut users = self.g.nodes.iter().filter(|n| n.args.contains(&v)).peekable();
        users.peek().is_some() && users.all(|n| n.kind == NodeKind::Prim(Op::Concat { axis }))
    }

    /// The parts of a concatenation along `axis`, nested ones flattened.
    fn concat_parts(&self, node: &Node, axis: usize, out: &mut Vec<Value>) {
        for &a in &node.args {
            match self.producer.get(&a) {
                Some(&i) if self.inner_concat(a) && self.concat_axis(a) == Some(axis) => self.concat_parts(&self.g.nodes[i], axis, out),
                _ => out.push(a),
            }
        }
    }

    fn note_function(&mut self, callee: &str) {
        if !self.functions.iter().any(|f| f == callee) {
            self.functions.push(callee.to_string());
        }
    }

    /// The forward expression of `v`: its name, or how it was computed.
    fn expr(&self, v: Value) -> Expr {
        if let Some(n) = self.names.get(&v) {
            return Expr::Var(n.clone());
        }
        match self.producer.get(&v) {
            Some(&i) => self.node_expr(&self.g.nodes[i]),
            None => Expr::Var(Name::plain(v.to_string())),
        }
    }

    fn node_expr(&self, node: &Node) -> Expr {
        let a: Vec<Expr> = node.args.iter().map(|&v| self.expr(v)).collect();
        let arg = |i: usize| Box::new(a[i].clone());
        let apply = |name: &str| Expr::Apply(name.into(), a.clone());
        match &node.kind {
            NodeKind::Call {
                class: CallClass::Reshape, ..
            } if self.unit_reshape(node) => a[0].clone(),
            NodeKind::Call { callee, .. } => apply(callee),
            NodeKind::Prim(op) => match op {
                Op::Const(x) => Expr::Num(*x),
                Op::Unary(UnaryOp::Neg) => Expr::Neg(arg(0)),
                Op::Unary(u) => apply(unary_name(*u)),
                Op::Binary(ir::BinaryOp::Add) => Expr::Sum(vec![a[0].clone(), a[1].clone()]),
                Op::Binary(ir::BinaryOp::Sub) => Expr::Sub(arg(0), arg(1)),
                Op::Binary(ir::BinaryOp::Mul) => Expr::Hadamard(arg(0), arg(1)),
                Op::Binary(ir::BinaryOp::Div) => Expr::Div(arg(0), arg(1)),
                Op::Binary(ir::BinaryOp::Pow) => Expr::Pow(arg(0), arg(1)),
                Op::Binary(ir::BinaryOp::Max) => apply("max"),
                Op::Binary(ir::BinaryOp::Min) => apply("min"),
                Op::Compare(c) => apply(compare_name(*c)),
                Op::Select => apply("where"),
                // Broadcasting is implicit in the notation, as in the source.
                Op::Broadcast { .. } | Op::Cast { .. } => a[0].clone(),
                Op::ReduceSum { .. } => apply("sum"),
                Op::ReduceMax { .. } => apply("max"),
                // Adding or dropping axes of size 1 is broadcasting, also implicit.
                Op::Reshape { .. } if only_unit_axes(&self.f.ty(node.args[0]).shape, &self.f.ty(node.result).shape) => a[0].clone(),
                Op::Reshape { .. } => apply("reshape"),
                Op::Transpose { perm } if perm.len() == 2 => Expr::Transpose(arg(0)),
                Op::Transpose { .. } => apply("transpose"),
                Op::MatMul => Expr::MatMul(arg(0), arg(1)),
                Op::OneHot { .. } => apply("one_hot"),
                Op::RandomUniform { .. } => apply("uniform"),
                Op::RandomNormal { .. } => apply("normal"),
                Op::Slice { start, stride, shape } => {
                    let from = &self.f.ty(node.args[0]).shape;
                    Expr::Index(arg(0), slice_ranges(start, stride, shape, from))
                }
                Op::Pad { .. } => apply("pad"),
                Op::Reverse { .. } => apply("reverse"),
                Op::Concat { axis } => {
                    let mut parts = vec![];
                    self.concat_parts(node, *axis, &mut parts);
                    Expr::Apply("concat".into(), parts.iter().map(|&v| self.expr(v)).collect())
                }
                Op::Gather { .. } => apply("gather"),
                Op::ScatterAdd { .. } => apply("scatter_add"),
                Op::Iota { .. } => apply("arange"),
                Op::Im2col { .. } => apply("im2col"),
                Op::Col2im { .. } => apply("col2im"),
                Op::MaxPool { .. } => apply("max_pool2d"),
                Op::MaxPoolGrad { .. } => apply("max_pool_grad"),
                Op::Scan { .. } => apply("scan"),
            },
        }
    }

    /// Each operand's share of the adjoint `g` of `node`'s result; notes
    /// the functions whose derivatives it writes.
    fn vjp(&mut self, node: &Node, g: Expr) -> Vec<(Value, Expr)> {
        if let Some(forms) = self.window_forms(node, &g) {
            return forms;
        }
        match &node.kind {
            NodeKind::Call { .. } if self.unit_reshape(node) => {}
            NodeKind::Call { callee, .. } => self.note_function(callee),
            NodeKind::Prim(Op::Unary(u @ (UnaryOp::Sqrt | UnaryOp::Tanh))) => self.note_function(unary_name(*u)),
            NodeKind::Prim(_) => {}
        }
        self.rules(node, g)
    }

    /// A reshape call (`reshape(b, [c, 1, 1])`) that only adds or drops
    /// axes of size 1: broadcasting, which the notation leaves implicit.
    fn unit_reshape(&self, node: &Node) -> bool {
        matches!(
            node.kind,
            NodeKind::Call {
                class: CallClass::Reshape,
                ..
            }
        ) && node
            .args
            .iter()
            .filter(|a| self.f.ty(**a).dtype == DType::F32)
            .all(|a| only_unit_axes(&self.f.ty(*a).shape, &self.f.ty(node.result).shape))
    }

    /// A convolution's or pooling's adjoints in closed form, when autodiff's
    /// backward pass of the call matches one for every operand (`windows`).
    fn window_forms(&mut self, node: &Node, g: &Expr) -> Option<Vec<(Value, Expr)>> {
        let NodeKind::Call {
            class: CallClass::Vector, ..
        } = node.kind
        else {
            return None;
        };
        let wanted: Vec<Value> = node
            .args
            .iter()
            .copied()
            .filter(|v| self.active[v.index()] && self.f.ty(*v).dtype == DType::F32)
            .collect();
        let forms: Vec<(Value, windows::Form)> = wanted
            .iter()
            .map(|&v| windows::closed_form(self.f, node.body.clone(), &node.args, node.result, v).map(|form| (v, form)))
            .collect::<Option<_>>()?;
        let bx = |e: Expr| Box::new(e);
        let mut out = vec![];
        for (v, form) in forms {
            // The window itself is in the layer's heading (`kernel: 5, pad: 2`).
            let (e, note) = match form {
                windows::Form::ConvInput { kernel, .. } => (
                    Expr::Convolve(bx(g.clone()), bx(Expr::Rot180(bx(self.expr(kernel))))),
                    (
                        "δ ∗ rot180(W) = the full convolution of δ with the kernel turned by 180°: conv2d's transpose, col2im(δ · W)",
                        r"\delta \ast \mathrm{rot180}(W):\ \text{full convolution with the flipped kernel, i.e. } \mathrm{col2im}(\delta \cdot W)",
                    ),
                ),
                windows::Form::ConvKernel { input, .. } => {
                    let batch = self.f.ty(input).shape.first().map(|d| d.to_string()).unwrap_or_default();
                    (
                        Expr::SumOver(vec![batch], bx(Expr::Correlate(bx(self.expr(input)), bx(g.clone())))),
                        (
                            "x ⋆ δ = the cross-correlation of the input with δ over conv2d's windows: im2col(x)ᵀ · δ",
                            r"x \star \delta:\ \text{cross-correlation of the input with } \delta \text{ over the windows, i.e. } \mathrm{im2col}(x)^{\top} \delta",
                        ),
                    )
                }
                windows::Form::MaxPoolInput { .. } => (
                    Expr::Apply("unpool_max".into(), vec![g.clone()]),
                    (
                        "unpool_max(g) = each window's g at the position of its maximum (the argmax), 0 elsewhere",
                        r"\mathrm{unpool\_max}(g):\ \text{each window's } g \text{ at its argmax, 0 elsewhere}",
                    ),
                ),
                windows::Form::AvgPoolInput { .. } => (
                    Expr::Apply("unpool_mean".into(), vec![g.clone()]),
                    (
                        "unpool_mean(g) = each window's g spread evenly, g / (window size) at each of its positions",
                        r"\mathrm{unpool\_mean}(g):\ \text{each window's } g / |\text{window}| \text{ at each of its positions}",
                    ),
                ),
            };
            let note = (note.0.to_string(), note.1.to_string());
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
            out.push((v, e));
        }
        Some(out)
    }

    fn rules(&self, node: &Node, g: Expr) -> Vec<(Value, Expr)> {
        let a: Vec<Expr> = node.args.iter().map(|&v| self.expr(v)).collect();
        let bx = |e: &Expr| Box::new(e.clone());
        let shape_of = |v: Value| ir::shape_to_string(&self.f.ty(v).shape);
        let to = |i: usize, e: Expr| (node.args[i], e);
        match &node.kind {
            NodeKind::Call { callee, class } => {
                let f = Expr::Apply(callee.clone(), a.clone());
                node.args
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| self.active[v.index()])
                    .map(|(i, &v)| {
                        let e = match class {
                            CallClass::Elementwise => hadamard(g.clone(), Expr::Deriv(callee.clone(), bx(&a[i]))),
                            CallClass::Scalar => hadamard(g.clone(), Expr::Partial(bx(&f), bx(&a[i]))),
                            CallClass::Reshape if only_unit_axes(&self.f.ty(v).shape, &self.f.ty(node.result).shape) => g.clone(),
                            CallClass::Reshape => Expr::Apply("reshape".into(), vec![g.clone(), Expr::Var(Name::plain(shape_of(v)))]),
                            CallClass::Vector => Expr::JacT {
                                f: bx(&f),
                                wrt: bx(&a[i]),
                                g: bx(&g),
                            },
                        };
                        (v, e)
                    })
                    .collect()
            }
            NodeKind::Prim(op) => {
                let generic = |i: usize| hadamard(g.clone(), Expr::Partial(Box::new(self.node_expr(node)), bx(&a[i])));
                let positions = op.differentiable_args();
                let all = match op {
                    Op::Unary(UnaryOp::Neg) => vec![to(0, Expr::Neg(bx(&g)))],
                    Op::Unary(UnaryOp::Exp) => vec![to(0, hadamard(g.clone(), Expr::Apply("exp".into(), vec![a[0].clone()])))],
                    Op::Unary(UnaryOp::Log) => vec![to(0, Expr::Div(bx(&g), bx(&a[0])))],
                    Op::Unary(UnaryOp::Abs) => vec![to(0, hadamard(g.clone(), Expr::Apply("sign".into(), vec![a[0].clone()])))],
                    Op::Unary(u @ (UnaryOp::Sqrt | UnaryOp::Tanh)) => {
                        vec![to(0, hadamard(g.clone(), Expr::Deriv(unary_name(*u).into(), bx(&a[0]))))]
                    }
                    Op::Binary(ir::BinaryOp::Add) => vec![to(0, g.clone()), to(1, g.clone())],
                    Op::Binary(ir::BinaryOp::Sub) => vec![to(0, g.clone()), to(1, Expr::Neg(bx(&g)))],
                    Op::Binary(ir::BinaryOp::Mul) => {
                        vec![to(0, hadamard(g.clone(), a[1].clone())), to(1, hadamard(g.clone(), a[0].clone()))]
                    }
                    Op::Binary(ir::BinaryOp::Div) => vec![
                        to(0, Expr::Div(bx(&g), bx(&a[1]))),
                        to(
                            1,
                            Expr::Neg(Box::new(Expr::Div(
                                Box::new(hadamard(g.clone(), a[0].clone())),
                                Box::new(Expr::Pow(bx(&a[1]), Box::new(Expr::Num(2.0)))),
                            ))),
                        ),
                    ],
                    // Moves, and functions without a short rule here: ∂f/∂x.
                    Op::Binary(_)
                    | Op::Select
                    | Op::ReduceMax { .. }
                    | Op::Unary(UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Erf)
                    | Op::Pad { .. }
                    | Op::Reverse { .. }
                    | Op::Gather { .. }
                    | Op::ScatterAdd { .. }
                    | Op::Im2col { .. }
                    | Op::Col2im { .. }
                    | Op::MaxPool { .. }
                    | Op::Scan { .. } => positions.iter().map(|&i| to(i, generic(i))).collect(),
                    // A slice's adjoint is `g` placed back at its ranges in zeros.
                    Op::Slice { start, stride, shape } => {
                        let from = &self.f.ty(node.args[0]).shape;
                        let at = format!("[{}]", slice_ranges(start, stride, shape, from));
                        vec![to(0, Expr::Apply("pad".into(), vec![g, Expr::Var(Name::plain(at))]))]
                    }
                    // Each part of a concatenation gets its own range of `g`.
                    // Inside a tree of concatenations, the range of the
                    // tree's adjoint (`δ[:, 26, :]`, not a slice of a slice).
                    Op::Concat { axis } => {
                        let own = (g.clone(), 0, self.f.ty(node.result).shape.clone());
                        let (base, mut offset, out) = self.concat_base.borrow().get(&node.result).cloned().unwrap_or(own);
                        node.args
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| {
                                let part = &self.f.ty(v).shape;
                                let n = part[*axis].known().unwrap_or(0);
                                let mut start = vec![0; out.len()];
                                start[*axis] = offset;
                                if self.inner_concat(v) && self.concat_axis(v) == Some(*axis) {
                                    self.concat_base.borrow_mut().insert(v, (base.clone(), offset, out.clone()));
                                }
                                offset += n;
                                let ranges = slice_ranges(&start, &vec![1; out.len()], part, &out);
                                to(i, Expr::Index(bx(&base), ranges))
                            })
                            .collect()
                    }
                    Op::Broadcast { shape } => {
                        let from = &self.f.ty(node.args[0]).shape;
                        vec![to(0, sum_over_broadcast(g, from, shape))]
                    }
                    Op::ReduceSum { .. } => vec![to(0, Expr::Spread(bx(&g), shape_of(node.args[0])))],
                    Op::Reshape { .. } if only_unit_axes(&self.f.ty(node.args[0]).shape, &self.f.ty(node.result).shape) => vec![to(0, g)],
                    Op::Reshape { .. } => vec![to(
                        0,
                        Expr::Apply("reshape".into(), vec![g, Expr::Var(Name::plain(shape_of(node.args[0])))]),
                    )],
                    Op::Transpose { perm } if perm.len() == 2 => vec![to(0, Expr::Transpose(bx(&g)))],
                    Op::Transpose { perm } => {
                        let mut inverse = vec![0; perm.len()];
                        for (i, &p) in perm.iter().enumerate() {
                            inverse[p] = i;
                        }
                        let text = format!("{inverse:?}");
                        vec![to(0, Expr::Apply("transpose".into(), vec![g, Expr::Var(Name::plain(text))]))]
                    }
                    Op::MatMul => vec![
                        to(0, Expr::MatMul(bx(&g), Box::new(Expr::Transpose(bx(&a[1]))))),
                        to(1, Expr::MatMul(Box::new(Expr::Transpose(bx(&a[0]))), bx(&g))),
                    ],
                    Op::Cast { .. } => vec![to(0, g)],
                    Op::Unary(UnaryOp::Sign | UnaryOp::StopGradient)
                    | Op::Iota { .. }
                    | Op::Const(_)
                    | Op::Compare(_)
                    | Op::OneHot { .. }
                    | Op::RandomUniform { .. }
                    | Op::RandomNormal { .. }
                    | Op::MaxPoolGrad { .. } => vec![],
                };
                all.into_iter()
                    .filter(|(v, _)| positions.iter().any(|&i| node.args[i] == *v))
                    .collect()
            }
        }
    }
}

/// Two shapes that differ only in axes of size 1 (`[6]` and `[6, 1, 1]`).
fn only_unit_axes(a: &[Dim], b: &[Dim]) -> bool {
    let big = |s: &[Dim]| s.iter().filter(|d| **d != Dim::Known(1)).cloned().collect::<Vec<_>>();
    big(a) == big(b)
}

/// The adjoint of a broadcast from `from` to `to`: `g` summed over the
/// axes the broadcast added or stretched, named by their dims (`Σ_batch`).
fn sum_over_broadcast(g: Expr, from: &[Dim], to: &[Dim]) -> Expr {
    let offset = to.len() - from.len();
    let axes: Vec<String> = to
        .iter()
        .enumerate()
        .filter(|&(i, d)| i < offset || (from[i - offset] == Dim::Known(1) && *d != Dim::Known(1)))
        .map(|(_, d)| d.to_string())
        .collect();
    if axes.is_empty() {
        g
    } else {
        Expr::SumOver(axes, Box::new(g))
    }
}

/// `:, 0:64` for a slice: `:` for an axis taken whole, `a:b` (or `a:b:s`)
/// for a range, `a` for one index of an axis the slice keeps at size 1.
fn slice_ranges(start: &[usize], stride: &[usize], shape: &[Dim], from: &[Dim]) -> String {
    let axes: Vec<String> = (0..start.len())
        .map(|i| {
            let n = shape.get(i).and_then(Dim::known);
            let whole = start[i] == 0 && stride[i] == 1 && shape.get(i) == from.get(i);
            match n {
                _ if whole => ":".to_string(),
                Some(1) => start[i].to_string(),
                Some(n) if stride[i] == 1 => format!("{}:{}", start[i], start[i] + n),
                Some(n) => format!("{}:{}:{}", start[i], start[i] + (n - 1) * stride[i] + 1, stride[i]),
                None => format!("{}:", start[i]),
            }
        })
        .collect();
    axes.join(", ")
}

fn unary_name(u: UnaryOp) -> &'static str {
    match u {
        UnaryOp::Neg => "neg",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "log",
        UnaryOp::Sqrt => "sqrt",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Abs => "abs",
        UnaryOp::Sign => "sign",
        UnaryOp::Sin => "sin",
        UnaryOp::Cos => "cos",
        UnaryOp::Erf => "erf",
        UnaryOp::StopGradient => "stop_gradient",
    }
}

fn compare_name(c: ir::CmpOp) -> &'static str {
    match c {
        ir::CmpOp::Lt => "lt",
        ir::CmpOp::Le => "le",
        ir::CmpOp::Gt => "gt",
        ir::CmpOp::Ge => "ge",
        ir::CmpOp::Eq => "eq",
        ir::CmpOp::Ne => "ne",
    }
}
