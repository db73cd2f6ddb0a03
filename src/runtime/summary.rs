//! The Keras-style summary of a model, from the checker alone: per layer
//! its output shape, parameter count and forward FLOPs per sample.
//!
//! Layers come from `Analysis::model_layers`; shapes and FLOPs from the
//! model's forward IR, where each instruction belongs to the latest layer
//! whose parameters it depends on (so `relu(x @ W + b)` is all `fc1`).

use crate::ir::{Dim, Func, Op, Type};
use crate::sema::value::LayerRecord;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `fc1`, or `input` for work done before the first layer.
    pub name: String,
    pub output: String,
    pub params: usize,
    /// Values of buffers (batch norm's running statistics): saved, not trained.
    pub buffers: usize,
    pub flops: u64,
    /// f32 values of the layer's output for one sample.
    pub activations: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub rows: Vec<Row>,
    pub params: usize,
    pub buffers: usize,
    pub flops: u64,
    /// f32 values a forward pass of one sample produces (layer outputs).
    pub activations: usize,
}

/// Elements of a type, with symbolic dims (the batch) counted as 1. The
/// checker bounds every tensor (E0503), so this cannot overflow on a
/// checked model; it saturates rather than wrap if it ever did.
fn numel(t: &Type) -> u64 {
    t.shape
        .iter()
        .map(|d| if let Dim::Known(k) = d { *k as u64 } else { 1 })
        .fold(1, u64::saturating_mul)
}

/// Floating-point operations of one instruction for one sample: 2·m·k·n
/// for a matrix product, one per result element for arithmetic, one per
/// input element for a reduction; data movement is free.
fn flops(f: &Func, op: &Op, args: &[crate::ir::Value], result: &Type) -> u64 {
    match op {
        Op::MatMul => {
            let a = &f.ty(args[0]).shape;
            let k = a.last().and_then(Dim::known).unwrap_or(1) as u64;
            k.saturating_mul(2).saturating_mul(numel(result))
        }
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select => numel(result),
        Op::ReduceSum { .. } | Op::ReduceMax { .. } => numel(f.ty(args[0])),
        // Data movement, constants, conversions and draws count as free;
        // listed so that a new op has to be placed here.
        Op::Const(_)
        | Op::Broadcast { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::OneHot { .. }
        | Op::Cast { .. }
        | Op::RandomUniform { .. }
        | Op::RandomNormal { .. }
        | Op::Slice { .. }
        | Op::Pad { .. }
        | Op::Reverse { .. }
        | Op::Concat { .. }
        | Op::Gather { .. }
        | Op::ScatterAdd { .. }
        | Op::Iota { .. }
        | Op::Im2col { .. }
        | Op::Col2im { .. } => 0,
        // One comparison per window element (the gradient: one add per output).
        Op::MaxPool { window } => numel(result) * (window.kernel[0] * window.kernel[1]) as u64,
        Op::MaxPoolGrad { .. } => numel(f.ty(args[1])),
        // The body's work once per step, counted on the first sibling only.
        Op::Scan { scan, output } => {
            if *output > 0 {
                return 0;
            }
            let body = &scan.body;
            let per_step = body
                .insts
                .iter()
                .map(|i| flops(body, &i.op, &i.args, body.ty(i.result)))
                .fold(0, u64::saturating_add);
            per_step.saturating_mul(scan.steps as u64)
        }
    }
}

pub fn summarize(f: &Func, layers: &[LayerRecord]) -> Summary {
    // Which layer each function parameter belongs to (None: the input),
    // by a map: a search per parameter was quadratic in the layer count.
    let layer_of_param: HashMap<String, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.params.iter().map(move |(p, _)| (format!("{}.{p}", l.name), i)))
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; f.types.len()];
    for (v, name) in f.params.iter().zip(&f.param_names) {
        owner[v.index()] = layer_of_param.get(name).copied();
    }
    let mut rows: Vec<Row> = std::iter::once("input".to_string())
        .chain(layers.iter().map(|l| l.name.clone()))
        .map(|name| Row {
            name,
            output: String::new(),
            params: 0,
            buffers: 0,
            flops: 0,
            activations: 0,
        })
        .collect();
    // The innermost layer application containing each instruction (layers
    // without parameters, like pooling, own their work this way).
    let applied_owner = |i: usize| {
        layers
            .iter()
            .enumerate()
            .flat_map(|(l, r)| r.applied.iter().map(move |&(a, b)| (l, a, b)))
            .filter(|&(_, a, b)| a <= i && i < b)
            .min_by_key(|&(_, a, b)| b - a)
            .map(|(l, _, _)| l)
    };
    if let Some(x) = f.params.first() {
        rows[0].output = crate::ir::shape_to_string(&f.ty(*x).shape);
    }
    let mut outputs: Vec<Option<crate::ir::Value>> = vec![None; rows.len()];
    // Only values computed from the input are layer outputs; constants
    // (the 0 of relu) are not.
    let mut from_input = vec![false; f.types.len()];
    if let Some(x) = f.params.first() {
        from_input[x.index()] = true;
    }
    for (i, inst) in f.insts.iter().enumerate() {
        let inside = applied_owner(i);
        let o = inside.or_else(|| inst.args.iter().filter_map(|a| owner[a.index()]).max());
        owner[inst.result.index()] = o;
        let row = o.map_or(0, |i| i + 1);
        rows[row].flops = rows[row].flops.saturating_add(flops(f, &inst.op, &inst.args, f.ty(inst.result)));
        if inst.args.iter().any(|a| from_input[a.index()]) {
            from_input[inst.result.index()] = true;
            // A layer's output is the last value its own application built
            // (a flatten after it, outside the layer, does not change it).
            let applied = o.is_some_and(|l| !layers[l].applied.is_empty());
            if inside.is_some() || !applied {
                outputs[row] = Some(inst.result);
            }
        }
    }
    let mut activations = 0;
    for (row, out) in rows.iter_mut().zip(&outputs) {
        if let Some(v) = out {
            row.output = crate::ir::shape_to_string(&f.ty(*v).shape);
            row.activations = numel(f.ty(*v)) as usize;
            activations = row.activations.saturating_add(activations);
        }
    }
    for (row, l) in rows.iter_mut().skip(1).zip(layers) {
        let (trained, buffers) = l.params.split_at(l.params.len() - l.buffers);
        let count = |ts: &[(String, crate::ir::Type)]| ts.iter().map(|(_, t)| numel(t) as usize).fold(0, usize::saturating_add);
        row.params = count(trained);
        row.buffers = count(buffers);
        // What the layer returned, as the checker saw it: a function
        // applied after it (a reshape, a mean) is not the layer's output.
        if let Some(out) = &l.output {
            row.output = out.clone();
        }
    }
    // An input row with no work of its own (no flatten) says nothing.
    if rows[0].flops == 0 && outputs[0].is_none() {
        rows.remove(0);
    }
    Summary {
        params: rows.iter().map(|r| r.params).fold(0, usize::saturating_add),
        buffers: rows.iter().map(|r| r.buffers).fold(0, usize::saturating_add),
        flops: rows.iter().map(|r| r.flops).fold(0, u64::saturating_add),
        activations,
        rows,
    }
}

/// `109386` → `109,386`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as `427.3 KiB`.
pub fn bytes(n: usize) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
