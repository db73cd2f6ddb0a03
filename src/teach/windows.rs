//! Closed forms for the backward pass of the window ops (`conv2d`,
//! `max_pool2d`, `avg_pool2d`), read from what autodiff makes of the call.
//!
//! The call's instructions are copied into a function of their own,
//! `autodiff::vjp` derives their backward pass from a stand-in adjoint `g`,
//! and the instructions that compute each operand's adjoint are matched
//! against the textbook's forms:
//! - `col2im(g · W…)`: the adjoint of the input of a convolution, the full
//!   convolution of `δ` with the flipped kernel, `δ ∗ rot180(W)`;
//! - `im2col(x)ᵀ · g` (no `col2im`): the kernel's adjoint, the
//!   cross-correlation of the input with `δ` summed over the batch;
//! - `max_pool_grad`: each window's adjoint routed to its maximum;
//! - `col2im` of `g` spread without a product: average pooling's adjoint,
//!   each window's share spread evenly over it.
//!
//! A call whose backward pass matches none of these keeps the transposed
//! Jacobian, so a new way of lowering `conv2d` cannot print a wrong form.

use crate::ir::{self, Builder, Func, Op, Value, Window};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

#[derive(Clone, Debug, PartialEq)]
pub enum Form {
    /// `∂L/∂x = δ ∗ rot180(W)`, `W` the operand given.
    ConvInput {
        kernel: Value,
        window: Window,
    },
    /// `∂L/∂W = Σ_batch x ⋆ δ`, `x` the operand given.
    ConvKernel {
        input: Value,
        window: Window,
    },
    MaxPoolInput {
        window: Window,
    },
    AvgPoolInput {
        window: Window,
    },
}

/// The closed form of the adjoint that the call over `body` of `f` (reading
/// `args`, defined outside it, and giving `result`) sends to `wrt`.
pub fn closed_form(f: &Func, body: Range<usize>, args: &[Value], result: Value, wrt: Value) -> Option<Form> {
    let insts = &f.insts[body];
    if !insts
        .iter()
        .any(|i| matches!(i.op, Op::Im2col { .. }) || matches!(i.op, Op::MaxPool { .. }))
    {
        return None;
    }
    // The call as a function of its operands.
    let mut b = Builder::new("call");
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (k, &a) in args.iter().enumerate() {
        map.insert(a, b.param(format!("a{k}"), f.ty(a).clone()));
    }
    for inst in insts {
        let xs: Option<Vec<Value>> = inst.args.iter().map(|a| map.get(a).copied()).collect();
        map.insert(inst.result, b.push(inst.op.clone(), &xs?));
    }
    let out = *map.get(&result)?;
    let g = b.param("g", f.ty(result).clone());
    let forward_end = b.func().insts.len();
    let wrt_local = *map.get(&wrt)?;
    let adjoint = crate::autodiff::vjp(&mut b, &[(out, g)], &[wrt_local])[0];
    let func = b.func();
    let back = &func.insts[forward_end..];
    // The backward instructions the adjoint reads, and the forward values
    // they read.
    let producer: HashMap<Value, usize> = back.iter().enumerate().map(|(i, x)| (x.result, i)).collect();
    let mut used: HashSet<usize> = HashSet::new();
    let mut reads: HashSet<Value> = HashSet::new();
    let mut stack = vec![adjoint];
    while let Some(v) = stack.pop() {
        match producer.get(&v) {
            Some(&i) if used.insert(i) => stack.extend(back[i].args.iter().copied()),
            Some(_) => {}
            None => {
                reads.insert(v);
            }
        }
    }
    let ops: Vec<&Op> = used.iter().map(|&i| &back[i].op).collect();
    let local_to_outer = |v: Value| -> Option<Value> { args.iter().copied().find(|a| map.get(a) == Some(&v)) };
    // The operand (outside the call) a forward value was computed from by
    // views alone: the kernel `W` behind `transpose(reshape(W))`.
    let forward_producer: HashMap<Value, &ir::Inst> = func.insts[..forward_end].iter().map(|x| (x.result, x)).collect();
    let origin = |mut v: Value| -> Option<Value> {
        loop {
            if let Some(o) = local_to_outer(v) {
                return Some(o);
            }
            let inst = forward_producer.get(&v)?;
            match inst.op {
                Op::Reshape { .. } | Op::Transpose { .. } | Op::Broadcast { .. } => v = inst.args[0],
                _ => return None,
            }
        }
    };
    let from_im2col = |v: Value| -> Option<(Value, Window)> {
        let mut v = v;
        loop {
            let inst = forward_producer.get(&v)?;
            match &inst.op {
                Op::Im2col { window } => return Some((local_to_outer(inst.args[0])?, window.clone())),
                Op::Reshape { .. } | Op::Transpose { .. } => v = inst.args[0],
                _ => return None,
            }
        }
    };
    let window_of = |pick: fn(&Op) -> Option<&Window>| ops.iter().find_map(|op| pick(op)).cloned();
    if let Some(window) = window_of(|op| if let Op::MaxPoolGrad { window } = op { Some(window) } else { None }) {
        return Some(Form::MaxPoolInput { window });
    }
    let has_product = ops.iter().any(|op| matches!(op, Op::MatMul));
    if let Some(window) = window_of(|op| if let Op::Col2im { window, .. } = op { Some(window) } else { None }) {
        if !has_product {
            return Some(Form::AvgPoolInput { window });
        }
        let kernel = reads.iter().find_map(|&v| origin(v).filter(|&o| o != wrt))?;
        return Some(Form::ConvInput { kernel, window });
    }
    if has_product {
        let (input, window) = reads.iter().find_map(|&v| from_im2col(v))?;
        return Some(Form::ConvKernel { input, window });
    }
    None
}
