//! The structured loop: `scan`, whose body is an IR function run once per
//! step (JAX's `lax.scan`).
//!
//! A [`Scan`] is shared (`Arc`) by the instructions that read its outputs:
//! the IR has one result per instruction, so output `o` of a scan is the
//! instruction `scan {output=o}` with the same scan and operands. They are
//! pure, so evaluating each alone is correct; backends run the sibling group
//! once (the JIT forms one kernel for all of them).
//!
//! Conventions (`k` carries, `m` sequences, `p` invariants, `q` per-step
//! outputs):
//! - body params: `k` carries, then one step of each of `m` sequences (the
//!   sequence's type without its leading steps axis), then `p` invariants;
//! - body results: `k` new carries (same types as the carry params), then
//!   `q` per-step outputs;
//! - operands: `k` initial carries, `m` sequences `[steps, ...]`, `p`
//!   invariants (the body's params in order);
//! - output `o < k` is carry `o` after the last step; output `k + j` is the
//!   per-step output `j` of every step stacked along a new leading axis.
//!
//! With `reverse`, step `i` runs at position `steps - 1 - i`: it reads the
//! sequences there and writes its outputs there (the backward pass of a
//! forward scan, without reversing any array).

use super::{Builder, Dim, Func, Op, Type, Value};
use std::sync::Arc;

/// The most operands a scan takes (`Op::differentiable_args` lists them).
pub const MAX_OPERANDS: usize = 64;

#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub body: Func,
    pub carries: usize,
    pub seqs: usize,
    pub steps: usize,
    pub reverse: bool,
}

impl Scan {
    pub fn invariants(&self) -> usize {
        self.body.params.len() - self.carries - self.seqs
    }
    /// The number of per-step outputs.
    pub fn ys(&self) -> usize {
        self.body.results.len() - self.carries
    }
    pub fn outputs(&self) -> usize {
        self.body.results.len()
    }
    /// The position of step `i` along the steps axis.
    pub fn position(&self, i: usize) -> usize {
        if self.reverse {
            self.steps - 1 - i
        } else {
            i
        }
    }

    /// The type of output `o`.
    pub fn output_type(&self, o: usize) -> Result<Type, String> {
        let r = *self
            .body
            .results
            .get(o)
            .ok_or_else(|| format!("scan output {o} out of range ({} outputs)", self.outputs()))?;
        let t = self.body.ty(r).clone();
        if o < self.carries {
            return Ok(t);
        }
        let mut shape = vec![Dim::Known(self.steps)];
        shape.extend(t.shape);
        Ok(Type { dtype: t.dtype, shape })
    }

    /// The type rule: operands against the body's params, carries kept.
    pub fn check(&self, args: &[&Type]) -> Result<(), String> {
        let b = &self.body;
        if self.carries + self.seqs > b.params.len() || self.carries > b.results.len() {
            return Err("scan: more carries and sequences than body params".into());
        }
        if b.params.len() > MAX_OPERANDS {
            return Err(format!("scan: {} operands, at most {MAX_OPERANDS}", b.params.len()));
        }
        if self.steps == 0 {
            return Err("scan: zero steps".into());
        }
        if args.len() != b.params.len() {
            return Err(format!("scan takes {} operands, got {}", b.params.len(), args.len()));
        }
        for i in 0..self.carries {
            let (p, r) = (b.ty(b.params[i]), b.ty(b.results[i]));
            if p != r || p != args[i] {
                return Err(format!("scan: carry {i} is {} in, {r} out of the body, {} as operand", p, args[i]));
            }
        }
        for j in 0..self.seqs {
            let (a, p) = (args[self.carries + j], b.ty(b.params[self.carries + j]));
            let ok = a.dtype == p.dtype && a.shape.first() == Some(&Dim::Known(self.steps)) && a.shape[1..] == p.shape[..];
            if !ok {
                return Err(format!(
                    "scan: sequence {j} is {a}, the body reads steps of {p} ({} steps)",
                    self.steps
                ));
            }
        }
        for i in self.carries + self.seqs..args.len() {
            if args[i] != b.ty(b.params[i]) {
                return Err(format!(
                    "scan: invariant operand {i} is {}, the body param {}",
                    args[i],
                    b.ty(b.params[i])
                ));
            }
        }
        super::verify(b).map_err(|e| format!("scan body: {e}"))
    }
}

/// The scan op reading output `output` of `scan`.
pub fn op(scan: &Arc<Scan>, output: usize) -> Op {
    Op::Scan {
        scan: scan.clone(),
        output,
    }
}

/// Append every output of `scan` over `args` to `b` (one sibling
/// instruction each).
pub fn push_all(b: &mut Builder, scan: &Arc<Scan>, args: &[Value]) -> Vec<Value> {
    (0..scan.outputs()).map(|o| b.push(op(scan, o), args)).collect()
}

/// A builder for a rewrite of `f` with `f`'s parameters, and the map from
/// `f`'s values to the rewrite's (parameters filled in).
fn rebuild_params(f: &Func) -> (Builder, Vec<Option<Value>>) {
    let mut b = Builder::new(f.name.clone());
    let mut map: Vec<Option<Value>> = vec![None; f.types.len()];
    for (&p, name) in f.params.iter().zip(&f.param_names) {
        map[p.index()] = Some(b.param(name.clone(), f.ty(p).clone()));
    }
    (b, map)
}

/// `f` with the values some instructions define replaced by others (`with`:
/// (defined value, parameter)): those instructions go and their readers
/// read the parameter. A backward body reads a forward product stored by
/// the forward scan (a residual) this way instead of recomputing it.
pub fn replace_by_params(f: &Func, with: &[(Value, Value)]) -> Func {
    let (mut b, mut map) = rebuild_params(f);
    for &(v, p) in with {
        map[v.index()] = map[p.index()];
    }
    for inst in &f.insts {
        if with.iter().any(|&(v, _)| v == inst.result) {
            continue;
        }
        let args: Vec<Value> = inst.args.iter().map(|&a| map[a.index()].expect("operands precede users")).collect();
        map[inst.result.index()] = Some(b.push(inst.op.clone(), &args));
    }
    let results: Vec<Value> = f.results.iter().map(|&r| map[r.index()].expect("results are defined")).collect();
    b.finish(&results)
}

/// Replace every scan by its body inlined once per step (slices of the
/// sequences in, a concat of the steps' outputs out): the same function
/// without loops, for backends and exporters that have none. Bodies are
/// unrolled first, so nested scans go too.
pub fn unroll(f: &Func) -> Func {
    if !f.insts.iter().any(|i| matches!(i.op, Op::Scan { .. })) {
        return f.clone();
    }
    let (mut b, mut map) = rebuild_params(f);
    let get = |map: &Vec<Option<Value>>, v: Value| map[v.index()].expect("operands precede users");
    // The outputs of each sibling group, unrolled once.
    let mut done: Vec<(Arc<Scan>, Vec<Value>, Vec<Value>)> = vec![];
    for inst in &f.insts {
        let args: Vec<Value> = inst.args.iter().map(|&a| get(&map, a)).collect();
        let v = if let Op::Scan { scan, output } = &inst.op {
            let found = done.iter().find(|(s, a, _)| Arc::ptr_eq(s, scan) && *a == args);
            let outs = match found {
                Some((_, _, outs)) => outs.clone(),
                None => {
                    let outs = unroll_one(&mut b, scan, &args);
                    done.push((scan.clone(), args.clone(), outs.clone()));
                    outs
                }
            };
            outs[*output]
        } else {
            b.push(inst.op.clone(), &args)
        };
        map[inst.result.index()] = Some(v);
    }
    let results: Vec<Value> = f.results.iter().map(|&r| get(&map, r)).collect();
    b.finish(&results)
}

fn unroll_one(b: &mut Builder, scan: &Scan, args: &[Value]) -> Vec<Value> {
    let body = unroll(&scan.body);
    let (k, m) = (scan.carries, scan.seqs);
    let mut carry: Vec<Value> = args[..k].to_vec();
    let mut ys: Vec<Vec<Value>> = vec![vec![]; scan.ys()];
    for i in 0..scan.steps {
        let t = scan.position(i);
        let mut step_args = carry.clone();
        for &seq in &args[k..k + m] {
            let shape = b.shape(seq);
            let mut start = vec![0; shape.len()];
            start[0] = t;
            let mut one = shape.clone();
            one[0] = Dim::Known(1);
            let sl = b.slice(seq, start, vec![1; shape.len()], &one);
            step_args.push(b.reshape(sl, &shape[1..]));
        }
        step_args.extend_from_slice(&args[k + m..]);
        let outs = b.inline(&body, &step_args);
        carry = outs[..k].to_vec();
        for (j, &y) in outs[k..].iter().enumerate() {
            let mut one = vec![Dim::Known(1)];
            one.extend(b.shape(y));
            ys[j].push(b.reshape(y, &one));
        }
    }
    let mut outs = carry;
    for mut parts in ys {
        if scan.reverse {
            parts.reverse();
        }
        outs.push(b.concat(&parts, 0));
    }
    outs
}

/// A sibling group's scan after a rewrite, with its new operands.
type Rewritten = (Arc<Scan>, Vec<Value>);

/// Products of a step of a sequence by an invariant in a scan body
/// (`x_t @ W`, a recurrent layer's input projection), taken out of the
/// loop: `xs @ broadcast(W)` over all steps is a new sequence the body
/// reads instead (`opt::batch_fold` makes it one product, and its weight
/// gradient another, once the batch is known). Transposed invariants that
/// only products read become invariants of their own (computed once, so
/// contiguous). Sequence and invariant operands the body no longer reads
/// are dropped.
pub fn hoist_projections(f: &Func) -> Func {
    if !f.insts.iter().any(|i| matches!(i.op, Op::Scan { .. })) {
        return f.clone();
    }
    let (mut b, mut map) = rebuild_params(f);
    let get = |map: &Vec<Option<Value>>, v: Value| map[v.index()].expect("operands precede users");
    // Each sibling group's rewritten scan and operands.
    let mut done: Vec<(Arc<Scan>, Vec<Value>, Rewritten)> = vec![];
    for inst in &f.insts {
        let args: Vec<Value> = inst.args.iter().map(|&a| get(&map, a)).collect();
        let v = if let Op::Scan { scan, output } = &inst.op {
            let found = done.iter().find(|(s, a, _)| Arc::ptr_eq(s, scan) && *a == args);
            let (new, new_args) = match found {
                Some((_, _, rewritten)) => rewritten.clone(),
                None => {
                    let (n, a) = hoist_one(&mut b, scan, &args);
                    done.push((scan.clone(), args.clone(), (n.clone(), a.clone())));
                    (n, a)
                }
            };
            b.push(op(&new, *output), &new_args)
        } else {
            b.push(inst.op.clone(), &args)
        };
        map[inst.result.index()] = Some(v);
    }
    let results: Vec<Value> = f.results.iter().map(|&r| get(&map, r)).collect();
    b.finish(&results)
}

/// `scan` over `args` with its input projections hoisted into `b`: the new
/// scan and its operands (the old ones when nothing changes).
fn hoist_one(b: &mut Builder, scan: &Arc<Scan>, args: &[Value]) -> (Arc<Scan>, Vec<Value>) {
    let body = &scan.body;
    let (k, m) = (scan.carries, scan.seqs);
    let index = |v: Value| body.params.iter().position(|&p| p == v);
    // (instruction, sequence index, invariant index) of each x_t @ W.
    let mut hoisted: Vec<(usize, usize, usize)> = vec![];
    for (n, inst) in body.insts.iter().enumerate() {
        if !matches!(inst.op, Op::MatMul) {
            continue;
        }
        let (Some(x), Some(w)) = (index(inst.args[0]), index(inst.args[1])) else {
            continue;
        };
        if (k..k + m).contains(&x) && x != w && w >= k + m && body.ty(inst.args[0]).rank() == 2 && body.ty(inst.args[1]).rank() == 2 {
            hoisted.push((n, x, w));
        }
    }
    // (instruction, invariant index) of each transposed invariant that only
    // products read (`g @ transpose(W)`, the backward pass of `h @ W`):
    // materialised outside, once per call, gemm reads it contiguous rather
    // than through a column stride at every step (2.6x slower at 64 x 128
    // x 512 here).
    let mut transposed: Vec<(usize, usize)> = vec![];
    for (n, inst) in body.insts.iter().enumerate() {
        let Op::Transpose { .. } = inst.op else {
            continue;
        };
        let Some(w) = index(inst.args[0]).filter(|&w| w >= k + m) else {
            continue;
        };
        let mut readers = body.insts.iter().filter(|i| i.args.contains(&inst.result)).peekable();
        let products_only = readers.peek().is_some() && readers.all(|i| matches!(i.op, Op::MatMul));
        if products_only && !body.results.contains(&inst.result) {
            transposed.push((n, w));
        }
    }
    let moved = |n: usize| hoisted.iter().any(|&(h, _, _)| h == n) || transposed.iter().any(|&(t, _)| t == n);
    // Params still read once the hoisted products are gone.
    let mut used = vec![false; body.params.len()];
    for (n, inst) in body.insts.iter().enumerate() {
        if moved(n) {
            continue;
        }
        for &a in &inst.args {
            if let Some(i) = index(a) {
                used[i] = true;
            }
        }
    }
    for &r in &body.results {
        if let Some(i) = index(r) {
            used[i] = true;
        }
    }
    let dropped = (k..body.params.len()).any(|i| !used[i]);
    if hoisted.is_empty() && transposed.is_empty() && !dropped {
        return (scan.clone(), args.to_vec());
    }
    if hoisted.len() + transposed.len() + body.params.len() > MAX_OPERANDS {
        return (scan.clone(), args.to_vec());
    }
    let mut nb = Builder::new(body.name.clone());
    let mut bmap: std::collections::HashMap<Value, Value> = std::collections::HashMap::new();
    let mut operands = vec![];
    let mut keep = |nb: &mut Builder, i: usize, operands: &mut Vec<Value>| {
        let p = body.params[i];
        bmap.insert(p, nb.param(body.param_names[i].clone(), body.ty(p).clone()));
        operands.push(args[i]);
    };
    for i in 0..k {
        keep(&mut nb, i, &mut operands);
    }
    for i in (k..k + m).filter(|&i| used[i]) {
        keep(&mut nb, i, &mut operands);
    }
    let mut projected = vec![];
    for &(n, x, w) in &hoisted {
        let inst = &body.insts[n];
        let xs = args[x];
        let mut wshape = vec![Dim::Known(scan.steps)];
        wshape.extend(b.shape(args[w]));
        let wb = b.broadcast(args[w], &wshape);
        operands.push(b.matmul(xs, wb));
        projected.push((
            inst.result,
            nb.param(format!("{}_projected", body.param_names[x]), body.ty(inst.result).clone()),
        ));
    }
    let seqs = operands.len() - k;
    for i in (k + m..body.params.len()).filter(|&i| used[i]) {
        keep(&mut nb, i, &mut operands);
    }
    for &(n, w) in &transposed {
        let inst = &body.insts[n];
        operands.push(b.push(inst.op.clone(), &[args[w]]));
        projected.push((
            inst.result,
            nb.param(format!("{}_transposed", body.param_names[w]), body.ty(inst.result).clone()),
        ));
    }
    bmap.extend(projected);
    for (n, inst) in body.insts.iter().enumerate() {
        if moved(n) {
            continue;
        }
        let a: Vec<Value> = inst.args.iter().map(|x| bmap[x]).collect();
        let v = nb.push(inst.op.clone(), &a);
        bmap.insert(inst.result, v);
    }
    let results: Vec<Value> = body.results.iter().map(|r| bmap[r]).collect();
    let new = Scan {
        body: nb.finish(&results),
        carries: k,
        seqs,
        steps: scan.steps,
        reverse: scan.reverse,
    };
    (Arc::new(new), operands)
}
