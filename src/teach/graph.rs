//! The flat loss IR regrouped into what the user wrote: layers, and the
//! calls inside them (`relu(z)`, `cross_entropy(logits, y)`) as single
//! nodes, with the primitive ops between them (`x @ W + b`) kept as they
//! are. The regrouping reads `sema`'s call records; it changes nothing in
//! the IR, so the derivation below follows the same function the step runs.

use crate::ir::{DType, Func, Op, OpKind, Value};
use crate::sema::value::CallRecord;
use std::collections::HashSet;

/// How a collapsed call differentiates, judged from the IR it emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallClass {
    /// One tensor in, same shape out, only elementwise ops: `g ⊙ f'(z)`.
    Elementwise,
    /// A scalar result (a loss or penalty): `∂f/∂p` for each input.
    Scalar,
    /// Only reshapes (`flatten`): the adjoint is reshaped back.
    Reshape,
    /// Anything else (`softmax`): a transposed Jacobian times `g`.
    Vector,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A primitive op written directly (`@`, `+`), outside any collapsed call.
    Prim(Op),
    Call {
        callee: String,
        class: CallClass,
    },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: NodeKind,
    /// The values it reads, defined outside it (for calls: the arguments as
    /// written, then anything else its body read, such as `params`).
    pub args: Vec<Value>,
    pub result: Value,
    /// Index into `Graph::layers` of the innermost layer it belongs to.
    pub layer: Option<usize>,
    /// The instructions of the loss function it stands for.
    pub body: std::ops::Range<usize>,
}

#[derive(Clone, Debug)]
pub struct LayerApp {
    /// `fc1`, `dense1`.
    pub name: String,
    /// `Dense`.
    pub kind: String,
    pub output: Value,
    insts: std::ops::Range<usize>,
}

#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub layers: Vec<LayerApp>,
}

/// Ops that act on each element independently (broadcasts only of scalars,
/// such as the `0` of `max(x, 0)`), read from the op's kind so that a new op
/// is classified where its semantics live.
pub fn elementwise(f: &Func, op: &Op, args: &[Value]) -> bool {
    match (op, op.kind()) {
        (Op::Const(_), _) | (_, OpKind::Elementwise) => true,
        (Op::Broadcast { .. }, _) => args.iter().all(|a| f.ty(*a).rank() == 0),
        (_, OpKind::Source | OpKind::View | OpKind::Reduction | OpKind::Contraction | OpKind::Index | OpKind::Loop) => false,
    }
}

fn classify(f: &Func, call: &CallRecord, inputs: &[Value]) -> CallClass {
    let body = &f.insts[call.insts.clone()];
    let f32_inputs: Vec<&Value> = inputs.iter().filter(|v| f.ty(**v).dtype == DType::F32).collect();
    if f.ty(call.result).rank() == 0 {
        CallClass::Scalar
    } else if body.iter().all(|i| matches!(i.op, Op::Reshape { .. })) {
        CallClass::Reshape
    } else if f32_inputs.len() == 1
        && f.ty(*f32_inputs[0]).shape == f.ty(call.result).shape
        && body.iter().all(|i| elementwise(f, &i.op, &i.args))
    {
        CallClass::Elementwise
    } else {
        CallClass::Vector
    }
}

/// Regroup `loss` (the train plan's loss function) by its call records.
pub fn regroup(f: &Func, calls: &[CallRecord]) -> Graph {
    let contains = |outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>| {
        outer.start <= inner.start && inner.end <= outer.end && outer != inner
    };
    let mut layers: Vec<LayerApp> = calls
        .iter()
        .filter(|c| c.layer.is_some() && !c.insts.is_empty())
        .map(|c| LayerApp {
            name: c.layer.clone().unwrap_or_default(),
            kind: c.callee.clone(),
            output: c.result,
            insts: c.insts.clone(),
        })
        .collect();
    layers.sort_by_key(|l| l.insts.start);
    let is_model = |c: &CallRecord| c.layer.is_none() && calls.iter().any(|o| o.layer.is_some() && contains(&c.insts, &o.insts));
    // Calls that become one node: not layers, holding no layer, not inside
    // another such call, and emitting code (`identity` emits none).
    let candidates: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.layer.is_none() && !c.insts.is_empty() && !is_model(c))
        .collect();
    let mut collapsed: Vec<&CallRecord> = candidates
        .iter()
        .filter(|c| !candidates.iter().any(|o| contains(&o.insts, &c.insts)))
        .copied()
        .collect();
    // `relu(x) = max(x, 0)` emits exactly what its `max` emits: of calls
    // over the same instructions, the outermost (the one written) stays.
    collapsed.sort_by_key(|c| (c.insts.start, c.depth));
    collapsed.dedup_by_key(|c| c.insts.clone());

    let layer_of = |i: usize| {
        layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.insts.contains(&i))
            .max_by_key(|(_, l)| l.insts.start)
            .map(|(k, _)| k)
    };
    let mut nodes = vec![];
    let mut i = 0;
    while i < f.insts.len() {
        if let Some(c) = collapsed.iter().find(|c| c.insts.start == i) {
            let body = &f.insts[c.insts.clone()];
            let inside: HashSet<Value> = body.iter().map(|x| x.result).collect();
            let mut args: Vec<Value> = c.args.clone();
            for inst in body {
                for a in &inst.args {
                    if !inside.contains(a) && !args.contains(a) {
                        args.push(*a);
                    }
                }
            }
            let class = classify(f, c, &args);
            nodes.push(Node {
                kind: NodeKind::Call {
                    callee: c.callee.clone(),
                    class,
                },
                args,
                result: c.result,
                layer: layer_of(i),
                body: c.insts.clone(),
            });
            i = c.insts.end;
            continue;
        }
        let inst = &f.insts[i];
        nodes.push(Node {
            kind: NodeKind::Prim(inst.op.clone()),
            args: inst.args.clone(),
            result: inst.result,
            layer: layer_of(i),
            body: i..i + 1,
        });
        i += 1;
    }
    Graph { nodes, layers }
}
