//! The backward pass of a scan: a reverse scan (JAX's scan transpose).
//!
//! The forward scan keeps each step's incoming carries (its stacked
//! per-step outputs when the body returns every new carry among them, as
//! `sema::scan` arranges; otherwise a second scan that does) and, as extra
//! per-step outputs, its products that depend on a carry (`h @ Wh`: the
//! residuals, [`with_residuals`]). The backward scan runs the steps last to
//! first; its body is the forward body followed by that body's own backward
//! pass (`autodiff::vjp`), with the stored products read instead of
//! recomputed, so only the elementwise work after them is recomputed. It
//! carries the adjoint of each carry and one accumulator per differentiated
//! invariant read other than as a product's right factor, and outputs each
//! step's sequence adjoints; a right factor's gradient (a weight's) is one
//! product over all steps outside the loop.

use super::Ctx;
use crate::ir::scan::{self as ir_scan, Scan};
use crate::ir::{Builder, Dim, Op, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) fn vjp(cx: &mut Ctx, scan: &Arc<Scan>, output: usize, x: &[Value], g: Value, want: &[bool]) -> Vec<Option<Value>> {
    let (k, m, steps) = (scan.carries, scan.seqs, scan.steps);
    let invariants: Vec<usize> = (k + m..x.len()).filter(|&i| want[i]).collect();
    let seqs: Vec<usize> = (k..k + m).filter(|&i| want[i]).collect();
    let carries_wanted = (0..k).any(|i| want[i]);
    if invariants.is_empty() && seqs.is_empty() && !carries_wanted {
        return vec![None; x.len()];
    }
    let (scan, residuals) = with_residuals(cx, scan);
    let scan = &scan;
    let body = &scan.body;
    let stacked = stacked_carries(cx, scan, x);
    // Each step's incoming carry, in position order.
    let mut carry_in = vec![];
    for (i, &stack) in stacked.iter().enumerate() {
        let shape = cx.b.shape(x[i]);
        let mut one = vec![Dim::Known(1)];
        one.extend(shape.iter().cloned());
        let init = cx.b.reshape(x[i], &one);
        if steps == 1 {
            carry_in.push(init);
            continue;
        }
        let mut rest = vec![Dim::Known(steps - 1)];
        rest.extend(shape.iter().cloned());
        let mut start = vec![0; rest.len()];
        let strides = vec![1; rest.len()];
        let v = if scan.reverse {
            start[0] = 1;
            let later = cx.b.slice(stack, start, strides, &rest);
            cx.b.concat(&[later, init], 0)
        } else {
            let earlier = cx.b.slice(stack, start, strides, &rest);
            cx.b.concat(&[init, earlier], 0)
        };
        carry_in.push(v);
    }

    // Weights read only as `a @ W` get their gradient outside the loop, as
    // one product over the stacked `a` and adjoints of `a @ W` (a per-step
    // output each); the others get an accumulator carried through the steps.
    let products: Vec<usize> = invariants
        .iter()
        .copied()
        .filter(|&i| only_right_factor(body, body.params[i]))
        .collect();
    let accumulated: Vec<usize> = invariants.iter().copied().filter(|i| !products.contains(i)).collect();

    // The backward body.
    let mut bb = Builder::new(format!("{}.vjp", body.name));
    let ty = |v: Value| body.ty(v).clone();
    let dcarry: Vec<Value> = (0..k).map(|i| bb.param(format!("d_carry{i}"), ty(body.results[i]))).collect();
    let dacc: Vec<Value> = accumulated
        .iter()
        .map(|&i| bb.param(format!("d_inv{i}"), ty(body.params[i])))
        .collect();
    let prev: Vec<Value> = (0..k).map(|i| bb.param(format!("carry{i}"), ty(body.params[i]))).collect();
    let xs: Vec<Value> = (k..k + m).map(|i| bb.param(format!("x{i}"), ty(body.params[i]))).collect();
    let dy = (output >= k).then(|| bb.param("d_y", ty(body.results[output])));
    let stored: Vec<Value> = residuals.iter().map(|&(v, _)| bb.param(format!("residual_{v}"), ty(v))).collect();
    let invs: Vec<Value> = (k + m..x.len()).map(|i| bb.param(format!("inv{i}"), ty(body.params[i]))).collect();
    let mut fmap: HashMap<Value, Value> = HashMap::new();
    for (&p, &a) in body.params.iter().zip(prev.iter().chain(&xs).chain(&invs)) {
        fmap.insert(p, a);
    }
    for inst in &body.insts {
        let a: Vec<Value> = inst.args.iter().map(|v| fmap[v]).collect();
        let v = bb.push(inst.op.clone(), &a);
        fmap.insert(inst.result, v);
    }
    let results: Vec<Value> = body.results.iter().map(|r| fmap[r]).collect();
    let mut seeds: Vec<(Value, Value)> = (0..k).map(|i| (results[i], dcarry[i])).collect();
    if let Some(dy) = dy {
        seeds.push((results[output], dy));
    }
    let mut wrt = prev.clone();
    wrt.extend(seqs.iter().map(|&i| xs[i - k]));
    wrt.extend(invariants.iter().map(|&i| invs[i - k - m]));
    let (grads, adj) = super::vjp_with_adjoints(&mut bb, &seeds, &wrt);
    let mut back_results = grads[..k].to_vec();
    for (j, &acc) in dacc.iter().enumerate() {
        let at = invariants
            .iter()
            .position(|&i| i == accumulated[j])
            .expect("an accumulated invariant is wanted");
        let step = grads[k + seqs.len() + at];
        back_results.push(bb.add(acc, step));
    }
    back_results.extend_from_slice(&grads[k..k + seqs.len()]);
    // Per product: the per-step outputs holding the left factor and the
    // adjoint of the product. A value output already is not output again
    // (`x @ Wx + h @ Wh` gives both products one adjoint).
    let first_output = k + accumulated.len();
    let output_of = |back_results: &mut Vec<Value>, v: Value| match back_results[first_output..].iter().position(|&r| r == v) {
        Some(j) => first_output + j,
        None => {
            back_results.push(v);
            back_results.len() - 1
        }
    };
    let mut factors: Vec<(usize, usize, usize)> = vec![];
    for &i in &products {
        for inst in body
            .insts
            .iter()
            .filter(|inst| matches!(inst.op, Op::MatMul) && inst.args[1] == body.params[i])
        {
            if let Some(&g) = adj.get(&fmap[&inst.result]) {
                let a = output_of(&mut back_results, fmap[&inst.args[0]]);
                let g = output_of(&mut back_results, g);
                factors.push((i, a, g));
            }
        }
    }
    // The residuals' products leave the body (their adjoint code, which
    // reads only their operands, stays); their readers read the stored
    // values.
    let replaced: Vec<(Value, Value)> = residuals.iter().zip(&stored).map(|(&(v, _), &p)| (fmap[&v], p)).collect();
    let back_body = ir_scan::replace_by_params(&bb.finish(&back_results), &replaced);
    let back = Arc::new(Scan {
        body: back_body,
        carries: k + accumulated.len(),
        seqs: k + m + usize::from(dy.is_some()) + residuals.len(),
        steps,
        reverse: !scan.reverse,
    });

    // Operands: the adjoints of the final carries (only `output`'s is
    // nonzero), zero accumulators, the residuals and sequences, the
    // invariants.
    let mut operands = vec![];
    for (i, &init) in x[..k].iter().enumerate() {
        operands.push(if i == output { g } else { cx.zeros_like(init) });
    }
    for &i in &accumulated {
        operands.push(cx.zeros_like(x[i]));
    }
    operands.extend(&carry_in);
    operands.extend(&x[k..k + m]);
    if dy.is_some() {
        operands.push(g);
    }
    for &(_, o) in &residuals {
        operands.push(cx.b.push(ir_scan::op(scan, o), x));
    }
    operands.extend(&x[k + m..]);
    let mut out = vec![None; x.len()];
    for i in (0..k).filter(|&i| want[i]) {
        out[i] = Some(cx.b.push(ir_scan::op(&back, i), &operands));
    }
    for (j, &i) in accumulated.iter().enumerate() {
        out[i] = Some(cx.b.push(ir_scan::op(&back, k + j), &operands));
    }
    for (j, &i) in seqs.iter().enumerate() {
        out[i] = Some(cx.b.push(ir_scan::op(&back, k + accumulated.len() + j), &operands));
    }
    // dW = the sum over steps and products of aᵀ @ g: one batched product
    // over the steps and a sum (`opt::batch_fold` makes them one GEMM).
    for &i in &products {
        let mut total = None;
        for &(_, a, g) in factors.iter().filter(|&&(w, _, _)| w == i) {
            let a = cx.b.push(ir_scan::op(&back, a), &operands);
            let g = cx.b.push(ir_scan::op(&back, g), &operands);
            let at_ = cx.b.transpose(a, vec![0, 2, 1]);
            let per_step = cx.b.matmul(at_, g);
            let sum = cx.b.reduce_sum(per_step, vec![0], false);
            total = Some(match total {
                Some(t) => cx.b.add(t, sum),
                None => sum,
            });
        }
        out[i] = Some(total.unwrap_or_else(|| cx.zeros_like(x[i])));
    }
    out
}

/// A forward scan and the same scan widened by its residuals.
pub(super) struct Widened {
    narrow: Arc<Scan>,
    wide: Arc<Scan>,
    /// Each residual: its value in the body, its output of `wide`.
    residuals: Vec<(Value, usize)>,
}

/// The forward scan with the per-step values its backward pass stores
/// rather than recomputes (JAX's residuals) as extra per-step outputs, and
/// those values with their output indices. The residuals are the body's
/// products that depend on a carry (`h @ Wh`): the one costly part of a
/// step to recompute, while the elementwise gate math after them is
/// recomputed in the backward body, where it fuses with its adjoint code.
/// Products of a step's inputs alone are left to `hoist_projections`,
/// which makes them one product over all steps, shared by both passes.
/// The forward instructions are pointed at the widened scan, so it still
/// runs once.
fn with_residuals(cx: &mut Ctx, scan: &Arc<Scan>) -> (Arc<Scan>, Vec<(Value, usize)>) {
    if let Some(w) = cx
        .widened
        .iter()
        .find(|w| Arc::ptr_eq(&w.narrow, scan) || Arc::ptr_eq(&w.wide, scan))
    {
        return (w.wide.clone(), w.residuals.clone());
    }
    let body = &scan.body;
    let mut on_carry = vec![false; body.types.len()];
    for &p in &body.params[..scan.carries] {
        on_carry[p.index()] = true;
    }
    let mut products = vec![];
    for inst in &body.insts {
        let depends = inst.args.iter().any(|a| on_carry[a.index()]);
        on_carry[inst.result.index()] = depends;
        if depends && matches!(inst.op, Op::MatMul) {
            products.push(inst.result);
        }
    }
    if products.is_empty() {
        return (scan.clone(), vec![]);
    }
    let mut wide = (**scan).clone();
    let first = wide.body.results.len();
    wide.body.results.extend(&products);
    let wide = Arc::new(wide);
    cx.b.replace_scan(scan, &wide);
    let residuals: Vec<(Value, usize)> = products.into_iter().zip(first..).collect();
    cx.widened.push(Widened {
        narrow: scan.clone(),
        wide: wide.clone(),
        residuals: residuals.clone(),
    });
    (wide, residuals)
}

/// Whether `w` is read only as the right factor of rank-2 products.
fn only_right_factor(body: &crate::ir::Func, w: Value) -> bool {
    let mut uses = 0;
    for inst in &body.insts {
        for (j, &a) in inst.args.iter().enumerate() {
            if a != w {
                continue;
            }
            let product = matches!(inst.op, Op::MatMul) && j == 1 && inst.args[0] != w;
            if !product || body.ty(inst.args[0]).rank() != 2 || body.ty(w).rank() != 2 {
                return false;
            }
            uses += 1;
        }
    }
    uses > 0 && !body.results.contains(&w)
}

/// Every carry after every step, stacked (position order): the forward
/// scan's own outputs when its body returns each new carry as a per-step
/// output too, else the outputs of a copy of the scan that does.
fn stacked_carries(cx: &mut Ctx, scan: &Arc<Scan>, x: &[Value]) -> Vec<Value> {
    let k = scan.carries;
    let body = &scan.body;
    let found: Option<Vec<usize>> = (0..k)
        .map(|i| (k..body.results.len()).find(|&j| body.results[j] == body.results[i]))
        .collect();
    if let Some(outs) = found {
        return outs.iter().map(|&o| cx.b.push(ir_scan::op(scan, o), x)).collect();
    }
    let mut body = body.clone();
    let first = body.results.len();
    let carries: Vec<Value> = body.results[..k].to_vec();
    body.results.extend(carries);
    let wider = Arc::new(Scan {
        body,
        carries: k,
        seqs: scan.seqs,
        steps: scan.steps,
        reverse: scan.reverse,
    });
    (0..k).map(|i| cx.b.push(ir_scan::op(&wider, first + i), x)).collect()
}
