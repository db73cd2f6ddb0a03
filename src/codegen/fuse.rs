//! Kernel formation: turns a tensor-IR function into a [`Program`].
//!
//! Each value gets one of three fates:
//! - a *view* (parameter, broadcast, transpose, reshape, slice or reverse
//!   of stored data): no code, just a base offset and strides into an
//!   existing slot (`view`);
//! - *inlined* into its single consumer's loop body (elementwise ops, one_hot,
//!   random draws used once by an elementwise op or a reduction);
//! - *materialised* into a slot by a kernel (matmul, reductions, values used
//!   more than once, results, operands of view ops).
//!
//! Afterwards elementwise kernels over the same domain are merged when the
//! later one only reads the earlier one's outputs at the same index, so e.g.
//! an Adam update of `m`, `v` and the parameter runs as one loop; then each
//! row reduction joins the elementwise kernel whose outputs it reduces, so a
//! softmax over attention scores is three passes over a row (scale and mask
//! with the max, exp with the sum, the division) and a layer norm's mean and
//! variance each ride on the pass that writes their operand.

use super::axes::simplify;
use super::kernel::*;
use super::merge::{drop_dead_stores, merge_reductions, merge_siblings};
use super::moves::{MoveKernel, MoveOp};
use super::view::{self, offset};
use super::window::{Descriptor, WindowOp};
use crate::ir::{DType, Dim, Func, Op, OpKind, UnaryOp, Value};
use std::collections::HashMap;

/// Kernels with fewer domain points than this stay on one thread: waking a
/// rayon worker cost more than it saved for the 100K-element Adam update of
/// the MLP (batch-32 step 0.30 ms on 2 threads vs 0.21 ms on 1).
const PAR_MIN_POINTS: usize = 1 << 17;
/// GEMMs with fewer multiply-adds than this stay on one thread: splitting
/// the 12.8M-MAC products of the batch-128 MLP step over two threads made
/// the step 10-25 % slower (`cargo bench --bench mlp_step t2`, 2 vCPUs).
const PAR_MIN_GEMM: usize = 1 << 24;

#[derive(Clone, Debug)]
enum Class {
    /// Not yet processed (only transiently).
    Unset,
    Const(f32),
    Inline,
    /// In memory: read through this access.
    Stored(Access),
}

fn known_dims(f: &Func, v: Value) -> Result<Vec<usize>, String> {
    f.ty(v)
        .shape
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Ok(*n),
            Dim::Sym(s) => Err(format!("codegen: {v} has symbolic dim {s}; specialise the function first")),
        })
        .collect()
}

struct Former<'a> {
    f: &'a Func,
    dims: Vec<Vec<usize>>,
    class: Vec<Class>,
    /// Defining instruction index of each value.
    def: Vec<Option<usize>>,
    /// Slot reserved for a value that is returned (written in place).
    out_slot: Vec<Option<Slot>>,
    slots: Vec<SlotInfo>,
    kernels: Vec<Kernel>,
    threads: usize,
    /// The kernel of each sibling group of scans (`ir::scan`) so far.
    scans: Vec<(std::sync::Arc<crate::ir::scan::Scan>, Vec<Value>, usize)>,
    /// Where a value's producer should write it so that its one reader
    /// needs no copy ([`Former::plan_places`]); producers that cannot
    /// write through strides ignore it, and the reader then copies.
    dest: Vec<Option<Access>>,
}

/// Form the kernel program of `f`. Each `(param, result)` pair in `inplace`
/// writes that result over that parameter's buffer: directly by the kernel
/// computing it when `direct[j]`, else by a copy after every other kernel.
pub fn form(f: &Func, threads: usize, inplace: &[(usize, usize)], direct: &[bool]) -> Result<Program, String> {
    crate::ir::verify(f)?;
    let n = f.types.len();
    let mut dims = Vec::with_capacity(n);
    for i in 0..n {
        dims.push(known_dims(f, Value(i as u32))?);
    }
    let mut def = vec![None; n];
    for (i, inst) in f.insts.iter().enumerate() {
        def[inst.result.index()] = Some(i);
    }
    // Count consuming instructions (an instruction using a value twice counts
    // once: the fused body evaluates it once) and find values that need memory.
    let mut uses = vec![0usize; n];
    let mut need_storage = vec![false; n];
    let mut fusable_consumer = vec![false; n];
    for inst in &f.insts {
        let mut seen: Vec<Value> = Vec::new();
        for &a in &inst.args {
            if !seen.contains(&a) {
                seen.push(a);
                uses[a.index()] += 1;
            }
            // Views, GEMMs and index ops read their operand through
            // strides of their own; elementwise ops and reductions can take
            // it as an inlined expression.
            match inst.op.kind() {
                OpKind::View | OpKind::Contraction | OpKind::Index | OpKind::Loop => need_storage[a.index()] = true,
                OpKind::Elementwise | OpKind::Reduction => fusable_consumer[a.index()] = true,
                OpKind::Source => {}
            }
        }
    }
    for &r in &f.results {
        need_storage[r.index()] = true;
    }

    let mut slots = Vec::new();
    let mut class = vec![Class::Unset; n];
    for (i, &p) in f.params.iter().enumerate() {
        let len = dims[p.index()].iter().product();
        slots.push(SlotInfo {
            kind: SlotKind::Param(i),
            len,
        });
        class[p.index()] = Class::Stored(Access::contiguous(i, &dims[p.index()]));
    }
    let mut out_slot = vec![None; n];
    let mut result_slots = Vec::new();
    for (j, &(p, r)) in inplace.iter().enumerate() {
        let (pv, rv) = (f.params.get(p), f.results.get(r));
        let ok = pv.zip(rv).is_some_and(|(&pv, &rv)| f.ty(pv) == f.ty(rv));
        let unique = inplace.iter().enumerate().all(|(k, &(p2, r2))| k == j || (p2 != p && r2 != r));
        if !ok || !unique {
            return Err(format!(
                "codegen: in-place pair (param {p}, result {r}) is out of range, repeated or of different types"
            ));
        }
    }
    let mut fallback = Vec::new();
    for (i, &r) in f.results.iter().enumerate() {
        let len = dims[r.index()].iter().product();
        let s = slots.len();
        let pair = inplace.iter().position(|&(_, ri)| ri == i);
        let kind = match pair {
            Some(j) => SlotKind::Alias { param: inplace[j].0 },
            None => SlotKind::Output(i),
        };
        slots.push(SlotInfo { kind, len });
        result_slots.push(s);
        if let Some(j) = pair {
            if !direct[j] {
                fallback.push(i);
                continue;
            }
        }
        // Computed values are written straight into the caller's buffer.
        let computed = def[r.index()].is_some_and(|d| computes_its_value(&f.insts[d].op));
        if computed && out_slot[r.index()].is_none() {
            out_slot[r.index()] = Some(s);
        }
    }

    let mut fm = Former {
        f,
        dims,
        class,
        def,
        out_slot: out_slot.clone(),
        slots,
        kernels: Vec::new(),
        threads,
        scans: Vec::new(),
        dest: vec![None; n],
    };
    fm.plan_places(&uses);
    for inst in &f.insts {
        let v = inst.result;
        match &inst.op {
            Op::Const(x) => fm.class[v.index()] = Class::Const(*x as f32),
            Op::Broadcast { .. } => fm.view(v, View::Broadcast, inst.args[0]),
            Op::Reshape { .. } => fm.view(v, View::Reshape, inst.args[0]),
            Op::Transpose { perm } => fm.view(v, View::Transpose(perm), inst.args[0]),
            Op::MatMul => fm.matmul(v, inst.args[0], inst.args[1]),
            Op::Im2col { window } => fm.window(v, WindowOp::Im2col, window, &inst.args),
            Op::Col2im { window, .. } => fm.window(v, WindowOp::Col2im, window, &inst.args),
            Op::MaxPool { window } => fm.window(v, WindowOp::MaxPool, window, &inst.args),
            Op::MaxPoolGrad { window } => fm.window(v, WindowOp::MaxPoolGrad, window, &inst.args),
            Op::ReduceSum { axes, .. } => fm.reduce(v, ReduceKind::Sum, axes, inst.args[0]),
            Op::ReduceMax { axes, .. } => fm.reduce(v, ReduceKind::Max, axes, inst.args[0]),
            Op::Slice { start, stride, .. } => fm.view(v, View::Slice { start, stride }, inst.args[0]),
            Op::Reverse { axes } => fm.view(v, View::Reverse(axes), inst.args[0]),
            // Moved by a host function (`moves`).
            Op::Pad { low, interior, .. } => fm.pad(v, low, interior, inst.args[0]),
            Op::Concat { axis } => fm.concat(v, *axis, &inst.args),
            Op::Gather { axis } => fm.take(v, *axis, inst.args[0], inst.args[1]),
            Op::ScatterAdd { axis, .. } => fm.take_adjoint(v, *axis, inst.args[0], inst.args[1]),
            Op::Scan { scan, output } => fm.scan(v, scan, *output, &inst.args),
            // The identity at run time (it only cuts the backward pass): a
            // stored or constant operand is read where it is, no copy.
            Op::Unary(UnaryOp::StopGradient)
                if out_slot[v.index()].is_none() && matches!(fm.class[inst.args[0].index()], Class::Stored(_) | Class::Const(_)) =>
            {
                fm.class[v.index()] = fm.class[inst.args[0].index()].clone();
            }
            // Computed per element by a loop body (`expr_op`): inlined into
            // its one consumer, or a loop of its own.
            Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::Cast { .. }
            | Op::OneHot { .. }
            | Op::RandomUniform { .. }
            | Op::RandomNormal { .. }
            | Op::Iota { .. } => {
                if uses[v.index()] == 1 && !need_storage[v.index()] && fusable_consumer[v.index()] {
                    fm.class[v.index()] = Class::Inline;
                } else {
                    fm.elementwise(v);
                }
            }
        }
    }
    // Results not computed in place: views, constants, parameters, repeats.
    // In-place results that could not be written directly go through a temp
    // first, so no copy overwrites a parameter another copy still reads.
    let mut late = Vec::new();
    for (i, &r) in f.results.iter().enumerate() {
        if out_slot[r.index()] == Some(result_slots[i]) {
            continue;
        }
        if fallback.contains(&i) {
            late.push((i, fm.storage_copy(r)));
            continue;
        }
        let d = fm.dims[r.index()].clone();
        let mut nodes = Vec::new();
        let src = fm.leaf(r, &mut nodes);
        let out = Access::contiguous(result_slots[i], &d);
        fm.push_loop(LoopKernel::store(d, nodes, src, out, format!("copy {r} to result {i}")));
    }
    for (i, copy) in late {
        let d = fm.dims[f.results[i].index()].clone();
        let mut nodes = Vec::new();
        let out = Access::new(result_slots[i], copy.strides.clone());
        let src = push_node(&mut nodes, Node::Load(copy));
        fm.push_loop(LoopKernel {
            pinned: true,
            ..LoopKernel::store(d, nodes, src, out, format!("result {i} in place"))
        });
    }
    let mut prog = Program {
        slots: fm.slots,
        kernels: fm.kernels,
    };
    merge_siblings(&mut prog);
    drop_dead_stores(&mut prog);
    for k in &mut prog.kernels {
        if let Kernel::Loop(l) = k {
            simplify(l);
        }
    }
    merge_reductions(&mut prog);
    for k in &mut prog.kernels {
        if let Kernel::Loop(l) = k {
            l.parallel = parallel_ok(l, threads);
        }
    }
    Ok(prog)
}

impl Former<'_> {
    /// Choose, before any kernel is formed, where some values are written
    /// so that the op reading them moves nothing: each operand of a concat
    /// in its block of the result (the adjoints of Q, K and V into one
    /// `[b, t, 3d]` gradient; an unrolled scan's stacked states), and the
    /// operand of a reshape that merges transposed axes (`merge_heads`) in
    /// the layout that makes the reshape a view. Only for an operand read
    /// by nothing else and not returned; the walk is backwards, so a
    /// concat's block is known before its operands (nested concats, the
    /// transposes under a reshape) are placed in it.
    fn plan_places(&mut self, uses: &[usize]) {
        let f = self.f;
        let returned = |v: Value| f.results.contains(&v);
        let def = self.def.clone();
        let only_reader = |a: Value, args: &[Value]| {
            uses[a.index()] == 1 && args.iter().filter(|&&x| x == a).count() == 1 && !returned(a) && def[a.index()].is_some()
        };
        let mut dest = std::mem::take(&mut self.dest);
        for inst in f.insts.iter().rev() {
            let v = inst.result;
            let vd = self.dims[v.index()].clone();
            if let Op::Concat { axis } = &inst.op {
                if returned(v) {
                    continue;
                }
                let d = match dest[v.index()].clone() {
                    Some(d) => d,
                    None => self.fresh(&vd),
                };
                dest[v.index()] = Some(d.clone());
                let mut at = vec![0; vd.len()];
                for &a in &inst.args {
                    if only_reader(a, &inst.args) {
                        dest[a.index()] = Some(at_offset(&d, &at));
                    }
                    at[*axis] += self.dims[a.index()][*axis];
                }
            } else if let Op::Reshape { .. } = &inst.op {
                let a = inst.args[0];
                let wanted = dest[v.index()].is_some() || (!returned(v) && self.transposed_product(a, uses));
                if !only_reader(a, &inst.args) || !wanted {
                    continue;
                }
                let d = match dest[v.index()].clone() {
                    Some(d) => d,
                    None => self.fresh(&vd),
                };
                dest[v.index()] = Some(d.clone());
                dest[a.index()] = view::reshape(&d, &vd, &self.dims[a.index()]);
            } else if let Op::Transpose { perm } = &inst.op {
                let a = inst.args[0];
                if let (Some(d), true) = (&dest[v.index()], only_reader(a, &inst.args)) {
                    let mut strides = vec![0; perm.len()];
                    for (i, &p) in perm.iter().enumerate() {
                        strides[p] = d.strides[i];
                    }
                    dest[a.index()] = Some(Access { strides, ..d.clone() });
                }
            }
        }
        self.dest = dest;
    }

    /// Whether `a` is a transpose, read once, of a product or an
    /// elementwise value read once: a kernel that can write it transposed.
    fn transposed_product(&self, a: Value, uses: &[usize]) -> bool {
        let Some(t) = self.def[a.index()].map(|i| &self.f.insts[i]) else {
            return false;
        };
        let Op::Transpose { .. } = t.op else {
            return false;
        };
        let g = t.args[0];
        let computed = self.def[g.index()].is_some_and(|i| matches!(self.f.insts[i].op.kind(), OpKind::Elementwise | OpKind::Contraction));
        computed && uses[g.index()] == 1 && !self.f.results.contains(&g)
    }

    /// A new temp slot holding a row-major array of shape `dims`.
    fn fresh(&mut self, dims: &[usize]) -> Access {
        self.slots.push(SlotInfo {
            kind: SlotKind::Temp,
            len: dims.iter().product(),
        });
        Access::contiguous(self.slots.len() - 1, dims)
    }

    /// Where the kernel computing `v` writes it: its planned place, or a
    /// slot of its own (the caller's buffer for a result).
    fn place(&mut self, v: Value) -> Access {
        match self.dest[v.index()].take() {
            Some(d) => d,
            None => Access::contiguous(self.new_slot(v), &self.dims[v.index()]),
        }
    }

    fn new_slot(&mut self, v: Value) -> Slot {
        if let Some(s) = self.out_slot[v.index()].take() {
            return s;
        }
        let len = self.dims[v.index()].iter().product();
        self.slots.push(SlotInfo { kind: SlotKind::Temp, len });
        self.slots.len() - 1
    }

    /// Where `v` is in memory, materialising it (constants, inlined values)
    /// when it is not.
    fn storage(&mut self, v: Value) -> Access {
        if let Class::Stored(a) = &self.class[v.index()] {
            return a.clone();
        }
        let out = self.place(v);
        self.copy_to(v, out, format!("materialise {v}"))
    }

    /// A loop writing `v` contiguously into `slot`.
    fn copy_into(&mut self, v: Value, slot: Slot, label: String) -> Access {
        let out = Access::contiguous(slot, &self.dims[v.index()]);
        self.copy_to(v, out, label)
    }

    /// A loop writing `v` to `out`.
    fn copy_to(&mut self, v: Value, out: Access, label: String) -> Access {
        let d = self.dims[v.index()].clone();
        let mut nodes = Vec::new();
        let src = self.leaf(v, &mut nodes);
        self.push_loop(LoopKernel::store(d, nodes, src, out.clone(), label));
        out
    }

    /// A fresh contiguous copy of `v` in a new temp slot.
    fn storage_copy(&mut self, v: Value) -> Access {
        let len = self.dims[v.index()].iter().product();
        self.slots.push(SlotInfo { kind: SlotKind::Temp, len });
        let slot = self.slots.len() - 1;
        self.copy_into(v, slot, format!("copy {v} before in-place results"))
    }

    fn view(&mut self, v: Value, op: View, a: Value) {
        if let Class::Const(c) = self.class[a.index()] {
            self.class[v.index()] = Class::Const(c);
            return;
        }
        let s = self.storage(a);
        let (ad, vd) = (&self.dims[a.index()], &self.dims[v.index()]);
        let access = match op {
            View::Broadcast => view::broadcast(&s, ad, vd),
            View::Transpose(perm) => view::transpose(&s, perm),
            View::Slice { start, stride } => view::slice(&s, start, stride),
            View::Reverse(axes) => view::reverse(&s, ad, axes),
            View::Reshape => match view::reshape(&s, ad, vd) {
                Some(r) => r,
                None => {
                    // Row-major order differs from the operand's layout:
                    // copy it out in the result's order (into its planned
                    // place when it has one), then reshape for free.
                    let (ad, vd) = (ad.clone(), vd.clone());
                    let placed = self.dest[v.index()].take().and_then(|d| Some((view::reshape(&d, &vd, &ad)?, d)));
                    let (out, result) = placed.unwrap_or_else(|| {
                        let fresh = self.fresh(&ad);
                        let result = Access::contiguous(fresh.slot, &vd);
                        (fresh, result)
                    });
                    let mut nodes = Vec::new();
                    let src = push_node(&mut nodes, Node::Load(s));
                    self.push_loop(LoopKernel::store(ad, nodes, src, out, format!("contiguous copy of {a} for {v}")));
                    result
                }
            },
        };
        self.class[v.index()] = Class::Stored(access);
    }

    /// An operand of a product as gemm reads it: any base and strides but
    /// negative ones (a reversed view is copied out first).
    fn gemm_operand(&mut self, v: Value) -> Access {
        let a = self.storage(v);
        if a.strides.iter().all(|&s| s >= 0) {
            return a;
        }
        let len = self.dims[v.index()].iter().product();
        self.slots.push(SlotInfo { kind: SlotKind::Temp, len });
        let copy = self.slots.len() - 1;
        self.copy_into(v, copy, format!("forward copy of {v} for a product"))
    }

    fn matmul(&mut self, v: Value, a: Value, b: Value) {
        let (ta, tb) = (self.gemm_operand(a), self.gemm_operand(b));
        let vd = self.dims[v.index()].clone();
        let r = vd.len();
        let (m, n, k) = (vd[r - 2], vd[r - 1], self.dims[a.index()][r - 1]);
        let batch = vd[..r - 2].to_vec();
        if k == 0 {
            // An empty inner product is zero; gemm is not asked about it.
            self.class[v.index()] = Class::Const(0.0);
            self.class[v.index()] = Class::Stored(self.storage(v));
            return;
        }
        let tc = self.place(v);
        let work = batch.iter().product::<usize>() * m * n * k;
        let threads = if self.threads > 1 && work >= PAR_MIN_GEMM {
            self.threads
        } else {
            1
        };
        self.kernels.push(Kernel::Gemm(GemmKernel {
            batch,
            m,
            n,
            k,
            a: Matrix::of(&ta),
            b: Matrix::of(&tb),
            c: Matrix::of(&tc),
            threads,
            label: format!("{v} = matmul {a}, {b}"),
        }));
        self.class[v.index()] = Class::Stored(tc);
    }

    /// Output `output` of a scan: a slot written by the kernel of its
    /// sibling group, formed at the first sibling (same scan, same
    /// operands; the siblings run once).
    fn scan(&mut self, v: Value, scan: &std::sync::Arc<crate::ir::scan::Scan>, output: usize, args: &[Value]) {
        let known = self
            .scans
            .iter()
            .find(|(s, a, _)| a.as_slice() == args && (std::sync::Arc::ptr_eq(s, scan) || **s == **scan))
            .map(|&(_, _, k)| k);
        let k = match known {
            Some(k) => k,
            None => {
                let operands = args.iter().map(|&a| self.contiguous(a)).collect();
                let names: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                self.kernels.push(Kernel::Scan(super::scan::ScanKernel {
                    scan: scan.clone(),
                    operands,
                    outputs: vec![None; scan.outputs()],
                    label: format!("scan of {} steps over {}", scan.steps, names.join(", ")),
                }));
                self.scans.push((scan.clone(), args.to_vec(), self.kernels.len() - 1));
                self.kernels.len() - 1
            }
        };
        let slot = self.new_slot(v);
        if let Kernel::Scan(sk) = &mut self.kernels[k] {
            sk.outputs[output] = Some(slot);
        }
        self.class[v.index()] = Class::Stored(Access::contiguous(slot, &self.dims[v.index()]));
    }

    /// A window op: a call on contiguous operands (`codegen::window`).
    fn window(&mut self, v: Value, op: WindowOp, window: &crate::ir::Window, args: &[Value]) {
        // The image side: the operand, or the result of col2im.
        let image = if op == WindowOp::Col2im { v } else { args[0] };
        let d = self.dims[image.index()].clone();
        let geometry =
            crate::ir::window::Geometry::new(window, d[0], d[1], [d[2], d[3]]).expect("the verifier checked that the window fits");
        let src = self.contiguous(args[0]);
        let aux = args.get(1).map(|&a| self.contiguous(a));
        let dst = self.new_slot(v);
        let desc = Descriptor::new(op, window.clone(), geometry, self.threads);
        let operands: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.kernels.push(Kernel::Window(WindowKernel {
            desc,
            src,
            aux,
            dst,
            label: format!("{v} = {op:?} {}", operands.join(", ")),
        }));
        self.class[v.index()] = Class::Stored(Access::contiguous(dst, &self.dims[v.index()]));
    }

    fn reduce(&mut self, v: Value, kind: ReduceKind, axes: &[usize], a: Value) {
        let ad = self.dims[a.index()].clone();
        let mut nodes = Vec::new();
        let src = self.expr(a, &mut nodes, &mut HashMap::new());
        let slot = self.new_slot(v);
        // Output strides over the operand's domain: 0 on reduced axes.
        let kept: Vec<usize> = (0..ad.len()).filter(|i| !axes.contains(i)).map(|i| ad[i]).collect();
        let ks = contiguous_strides(&kept);
        let mut strides = Vec::new();
        let mut j = 0;
        for i in 0..ad.len() {
            if axes.contains(&i) {
                strides.push(0);
            } else {
                strides.push(ks[j]);
                j += 1;
            }
        }
        let red: Vec<bool> = (0..ad.len()).map(|i| axes.contains(&i)).collect();
        let out = Access::new(slot, strides);
        let mut k = LoopKernel {
            dims: ad,
            nodes,
            outputs: vec![(src, out)],
            reduce: Some((kind, red)),
            parallel: false,
            pinned: false,
            label: format!("{v} = reduce {kind:?} {a} over {axes:?}"),
        };
        simplify(&mut k);
        let vd = self.dims[v.index()].clone();
        let fill = |label: String| {
            let mut nodes = Vec::new();
            let c = push_node(&mut nodes, Node::Const(kind.identity()));
            LoopKernel::store(vd.clone(), nodes, c, Access::contiguous(slot, &vd), label)
        };
        if k.dims.contains(&0) {
            self.push_loop(fill(format!("{v} = empty reduction")));
        } else {
            let copy = k.reduce.as_ref().is_some_and(|(_, r)| r.iter().all(|x| !x));
            if !k.direct_reduce() && !copy {
                self.push_loop(fill(format!("{v} = identity before reduction")));
            }
            if k.reduce.as_ref().is_some_and(|(_, r)| r.iter().all(|x| !x)) {
                // A reduction over nothing but size-1 axes is a copy.
                k.reduce = None;
            }
            self.push_loop(k);
        }
        self.class[v.index()] = Class::Stored(Access::contiguous(slot, &vd));
    }

    /// `v` as a whole slot in row-major order (copied when it is a view
    /// of part of one or in another order), for the host-function kernels
    /// that take slots (gathers, windows, scans).
    fn contiguous(&mut self, v: Value) -> Slot {
        let a = self.storage(v);
        if a.is_dense(&self.dims[v.index()]) {
            return a.slot;
        }
        let len = self.dims[v.index()].iter().product();
        self.slots.push(SlotInfo { kind: SlotKind::Temp, len });
        let copy = self.slots.len() - 1;
        self.copy_into(v, copy, format!("contiguous copy of {v}"));
        copy
    }

    /// Store `v` in a new slot by the host-function kernels `calls` (`moves`).
    fn push_moves(&mut self, v: Value, what: &str, args: &[Value], calls: Vec<(MoveOp, Vec<Slot>)>) {
        let label = format!("{v} = {what} {}", args.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "));
        let dst = self.new_slot(v);
        if !self.dims[v.index()].contains(&0) {
            for (op, srcs) in calls {
                self.kernels.push(Kernel::Move(MoveKernel {
                    op,
                    srcs,
                    dst,
                    label: label.clone(),
                }));
            }
        }
        self.class[v.index()] = Class::Stored(Access::contiguous(dst, &self.dims[v.index()]));
    }

    fn pad(&mut self, v: Value, low: &[usize], interior: &[usize], a: Value) {
        let s = self.storage(a);
        let vd = &self.dims[v.index()];
        let out = contiguous_strides(vd);
        let spread = out.iter().zip(interior).map(|(&x, &k)| x * (k as isize + 1)).collect();
        let c = copy(
            s.base,
            s.strides,
            offset(low, &out),
            spread,
            self.dims[a.index()].clone(),
            vd.iter().product(),
        );
        self.push_moves(v, "pad", &[a], vec![(c, vec![s.slot])]);
    }

    /// Each operand copied into its block of the result, unless its
    /// kernel already wrote it there (`plan_places`).
    fn concat(&mut self, v: Value, axis: usize, args: &[Value]) {
        let out = self.place(v);
        let mut at = vec![0; out.strides.len()];
        let label = format!("{v} = concat {}", args.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "));
        for &a in args {
            let s = self.storage(a);
            let block = at_offset(&out, &at);
            let ad = self.dims[a.index()].clone();
            at[axis] += ad[axis];
            if s == block || ad.contains(&0) {
                continue;
            }
            self.kernels.push(Kernel::Move(MoveKernel {
                op: copy(s.base, s.strides, block.base, block.strides, ad, 0),
                srcs: vec![s.slot],
                dst: out.slot,
                label: label.clone(),
            }));
        }
        self.class[v.index()] = Class::Stored(out);
    }

    fn take(&mut self, v: Value, axis: usize, x: Value, ids: Value) {
        let (xs, is) = (self.contiguous(x), self.contiguous(ids));
        let xd = &self.dims[x.index()];
        let (outer, n, inner) = (xd[..axis].iter().product(), xd[axis], xd[axis + 1..].iter().product());
        let k = self.dims[ids.index()].iter().product();
        self.push_moves(v, "gather", &[x, ids], vec![(MoveOp::Take { outer, n, inner, k }, vec![is, xs])]);
    }

    fn take_adjoint(&mut self, v: Value, axis: usize, ids: Value, updates: Value) {
        let (is, us) = (self.contiguous(ids), self.contiguous(updates));
        let vd = &self.dims[v.index()];
        let (outer, n, inner) = (vd[..axis].iter().product(), vd[axis], vd[axis + 1..].iter().product());
        let k = self.dims[ids.index()].iter().product();
        let op = MoveOp::TakeAdjoint { outer, n, inner, k };
        self.push_moves(v, "scatter_add", &[ids, updates], vec![(op, vec![is, us])]);
    }

    fn elementwise(&mut self, v: Value) {
        let d = self.dims[v.index()].clone();
        let mut nodes = Vec::new();
        let src = self.expr_op(v, &mut nodes, &mut HashMap::new());
        let out = self.place(v);
        self.push_loop(LoopKernel::store(d, nodes, src, out.clone(), format!("{v}")));
        self.class[v.index()] = Class::Stored(out);
    }

    /// Queue a loop kernel; axes are simplified only after sibling merging,
    /// which compares domains in their IR shape.
    fn push_loop(&mut self, k: LoopKernel) {
        if k.dims.contains(&0) {
            return;
        }
        self.kernels.push(Kernel::Loop(k));
    }

    /// A node reading `v` without computing it (constant or stored).
    fn leaf(&mut self, v: Value, nodes: &mut Vec<Node>) -> usize {
        match self.class[v.index()].clone() {
            Class::Const(c) => push_node(nodes, Node::Const(c)),
            Class::Stored(a) => push_node(nodes, Node::Load(a)),
            Class::Inline | Class::Unset => self.expr_op(v, nodes, &mut HashMap::new()),
        }
    }

    /// The node computing `v` over a domain equal to `v`'s shape.
    fn expr(&mut self, v: Value, nodes: &mut Vec<Node>, memo: &mut HashMap<Value, usize>) -> usize {
        if let Some(&n) = memo.get(&v) {
            return n;
        }
        let n = match &self.class[v.index()] {
            Class::Inline => self.expr_op(v, nodes, memo),
            _ => self.leaf(v, nodes),
        };
        memo.insert(v, n);
        n
    }

    fn expr_op(&mut self, v: Value, nodes: &mut Vec<Node>, memo: &mut HashMap<Value, usize>) -> usize {
        let inst = &self.f.insts[self.def[v.index()].expect("computed value has a definition")];
        let args = inst.args.clone();
        let node = match &inst.op {
            Op::Unary(u) => Node::Unary(*u, self.expr(args[0], nodes, memo)),
            Op::Binary(b) => {
                let x = self.expr(args[0], nodes, memo);
                Node::Binary(*b, x, self.expr(args[1], nodes, memo))
            }
            Op::Compare(c) => {
                let x = self.expr(args[0], nodes, memo);
                Node::Compare(*c, x, self.expr(args[1], nodes, memo))
            }
            Op::Select => {
                let c = self.expr(args[0], nodes, memo);
                let x = self.expr(args[1], nodes, memo);
                Node::Select(c, x, self.expr(args[2], nodes, memo))
            }
            Op::Cast { to } => {
                let x = self.expr(args[0], nodes, memo);
                if *to == DType::I32 && self.f.ty(args[0]).dtype == DType::F32 {
                    Node::Trunc(x)
                } else {
                    return x;
                }
            }
            Op::OneHot { .. } => {
                let r = self.dims[v.index()].len();
                let label = match self.class[args[0].index()].clone() {
                    Class::Const(c) => push_node(nodes, Node::Const(c)),
                    _ => {
                        let mut a = self.storage(args[0]);
                        a.strides.push(0);
                        push_node(nodes, Node::Load(a))
                    }
                };
                let mut is = vec![0isize; r];
                is[r - 1] = 1;
                let idx = push_node(nodes, Node::Index(is));
                Node::Compare(crate::ir::CmpOp::Eq, label, idx)
            }
            Op::Iota { axis, .. } => {
                let mut is = vec![0isize; self.dims[v.index()].len()];
                is[*axis] = 1;
                Node::Index(is)
            }
            Op::RandomUniform { seed, .. } | Op::RandomNormal { seed, .. } => {
                // A constant key folds into the seed; otherwise the scalar
                // key is read at every point of the domain.
                let (seed, key) = match self.class[args[0].index()].clone() {
                    Class::Const(c) => (crate::ir::keyed_seed(*seed, f64::from(c)), None),
                    _ => {
                        let key = Access {
                            strides: vec![0; self.dims[v.index()].len()],
                            ..self.storage(args[0])
                        };
                        (*seed, Some(push_node(nodes, Node::Load(key))))
                    }
                };
                Node::Random {
                    seed,
                    key,
                    strides: contiguous_strides(&self.dims[v.index()]),
                    normal: matches!(inst.op, Op::RandomNormal { .. }),
                }
            }
            // Not computed per element: read from where they were stored.
            Op::Const(_)
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::MatMul
            | Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Reverse { .. }
            | Op::Concat { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::MaxPool { .. }
            | Op::MaxPoolGrad { .. }
            | Op::Scan { .. } => return self.leaf(v, nodes),
        };
        push_node(nodes, node)
    }
}

/// Whether a result defined by `op` is computed by a kernel (and so can be
/// written straight into the caller's buffer) rather than being a constant
/// or a view of other storage.
fn computes_its_value(op: &Op) -> bool {
    match op.kind() {
        OpKind::View => false,
        OpKind::Source => !matches!(op, Op::Const(_)),
        OpKind::Elementwise | OpKind::Reduction | OpKind::Contraction | OpKind::Index | OpKind::Loop => true,
    }
}

/// The view ops, as [`Former::view`] builds their accesses (`view`).
enum View<'a> {
    Broadcast,
    Reshape,
    Transpose(&'a [usize]),
    Slice { start: &'a [usize], stride: &'a [usize] },
    Reverse(&'a [usize]),
}

/// `a` moved to the multi-index `at`: a block of the array it addresses.
fn at_offset(a: &Access, at: &[usize]) -> Access {
    Access {
        base: a.base + offset(at, &a.strides),
        ..a.clone()
    }
}

fn copy(src_base: isize, src_strides: Vec<isize>, dst_base: isize, dst_strides: Vec<isize>, dims: Vec<usize>, zero: usize) -> MoveOp {
    MoveOp::Copy {
        src_base,
        src_strides,
        dst_base,
        dst_strides,
        dims,
        zero,
    }
}

/// Append `n`, reusing an identical load or constant already in the body.
pub fn push_node(nodes: &mut Vec<Node>, n: Node) -> usize {
    if matches!(n, Node::Load(_) | Node::Const(_) | Node::Index(_)) {
        if let Some(i) = nodes.iter().position(|m| *m == n) {
            return i;
        }
    }
    nodes.push(n);
    nodes.len() - 1
}

fn parallel_ok(k: &LoopKernel, threads: usize) -> bool {
    let points: usize = k.dims.iter().product();
    let axis0_reduced = k.reduce.as_ref().is_some_and(|(_, r)| r[0]);
    let has_random = k.nodes.iter().any(|n| matches!(n, Node::Random { .. }));
    threads > 1 && !k.dims.is_empty() && k.dims[0] >= 2 && points >= PAR_MIN_POINTS && !axis0_reduced && !has_random
}

/// Indices of `inplace` pairs whose direct write would clobber the parameter
/// before a kernel reads it: every read of the parameter's slot must come
/// before the first kernel writing the result, or be in that kernel at the
/// very element it writes (loads precede stores in a loop body).
pub fn unsafe_inplace(p: &Program, inplace: &[(usize, usize)]) -> Vec<usize> {
    let mut bad = Vec::new();
    for (j, &(param, _)) in inplace.iter().enumerate() {
        let Some(alias) = p.slots.iter().position(|s| s.kind == SlotKind::Alias { param }) else {
            continue;
        };
        let Some(w) = p.kernels.iter().position(|k| k.writes().contains(&alias)) else {
            continue;
        };
        let late_read = p.kernels.iter().enumerate().skip(w + 1).any(|(_, k)| k.reads().contains(&param));
        let same = match &p.kernels[w] {
            Kernel::Loop(k) => {
                let out = k.outputs.iter().find(|(_, a)| a.slot == alias).map(|(_, a)| a);
                k.reduce.is_none()
                    && k.nodes.iter().all(|n| match n {
                        Node::Load(a) => a.slot != param || out.is_some_and(|o| (o.base, &o.strides) == (a.base, &a.strides)),
                        _ => true,
                    })
            }
            Kernel::Gemm(g) => g.a.slot != param && g.b.slot != param,
            Kernel::Move(m) => !m.srcs.contains(&param),
            Kernel::Window(k) => k.src != param && k.aux != Some(param),
            // Steps read operands after earlier steps wrote outputs.
            Kernel::Scan(s) => !s.operands.contains(&param),
        };
        if late_read || !same {
            bad.push(j);
        }
    }
    bad
}
