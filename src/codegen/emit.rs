//! Cranelift loop nests for [`LoopKernel`]s.
//!
//! A kernel becomes `fn(ptrs: *const *mut f32, lo: i64, hi: i64)` running
//! the outermost axis over `lo..hi` (so threads can split it). Every node is
//! evaluated at the shallowest loop level where it varies: values that do not
//! depend on the inner axis are computed once per row and splatted. The
//! innermost axis runs four lanes at a time (`f32x4`; Cranelift's x86 backend
//! has no 256-bit vectors) with a scalar tail.

use super::exp::{self, Lanes};
use super::kernel::{LoopKernel, Node, ReduceKind};
use crate::ir::{BinaryOp, CmpOp, UnaryOp};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I64};
use cranelift_codegen::ir::{Block, FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::FunctionBuilder;

const W: i64 = 4;

/// A counted loop under construction: `loop_begin` leaves the builder in
/// the body, `loop_end` closes it and continues after the loop.
pub struct Frame {
    header: Block,
    exit: Block,
    i: Value,
    step: i64,
}

impl Frame {
    /// The loop index inside the body.
    pub fn index(&self) -> Value {
        self.i
    }
}

/// Start `for i in (lo..hi).step_by(step)` while `i + step <= hi`, carrying
/// `carried` values; returns the body's `i` and carried values.
pub fn loop_begin(b: &mut FunctionBuilder, lo: Value, hi: Value, step: i64, carried: &[Value]) -> (Frame, Vec<Value>) {
    let header = b.create_block();
    let body = b.create_block();
    let exit = b.create_block();
    let tys: Vec<_> = std::iter::once(I64)
        .chain(carried.iter().map(|&v| b.func.dfg.value_type(v)))
        .collect();
    for &t in &tys {
        b.append_block_param(header, t);
        b.append_block_param(body, t);
        b.append_block_param(exit, t);
    }
    let args: Vec<_> = std::iter::once(lo)
        .chain(carried.iter().copied())
        .map(Into::into)
        .collect::<Vec<_>>();
    b.ins().jump(header, &args);
    b.switch_to_block(header);
    let hp: Vec<Value> = b.block_params(header).to_vec();
    let next = b.ins().iadd_imm_s(hp[0], step);
    let go = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, hi);
    let pass: Vec<_> = hp.iter().map(|&v| v.into()).collect();
    b.ins().brif(go, body, &pass, exit, &pass);
    b.switch_to_block(body);
    let bp = b.block_params(body).to_vec();
    (
        Frame {
            header,
            exit,
            i: bp[0],
            step,
        },
        bp[1..].to_vec(),
    )
}

/// Close the loop with the body's new carried values; returns the final `i`
/// and carried values.
pub fn loop_end(b: &mut FunctionBuilder, f: Frame, carried: &[Value]) -> (Value, Vec<Value>) {
    let next = b.ins().iadd_imm_s(f.i, f.step);
    let args: Vec<_> = std::iter::once(next)
        .chain(carried.iter().copied())
        .map(Into::into)
        .collect::<Vec<_>>();
    b.ins().jump(f.header, &args);
    b.switch_to_block(f.exit);
    let ep = b.block_params(f.exit).to_vec();
    (ep[0], ep[1..].to_vec())
}

/// Plain data read or written with no alignment promise (rows of odd length
/// start anywhere); never traps because the runtime checked every length.
fn data_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

struct Emitter<'k, 'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    k: &'k LoopKernel,
    fma: bool,
    normal: Option<FuncRef>,
    /// Stride vectors: one per load/index/random node, then one per output.
    svs: Vec<Vec<isize>>,
    /// Slot of each stride vector that addresses memory.
    sv_slot: Vec<Option<usize>>,
    node_sv: Vec<Option<usize>>,
    out_sv: Vec<usize>,
    /// Loop level at which each node varies (-1: invariant).
    level: Vec<i32>,
    /// Scalar value of nodes evaluated at outer levels.
    scalar: Vec<Option<Value>>,
    /// Base pointer of every slot used.
    base: Vec<Option<Value>>,
    ptrs: Value,
    lo: Value,
    hi: Value,
    vectorize: bool,
    /// Vector reciprocal of the divisor of each loop-invariant division,
    /// while emitting the vector body.
    recip: Vec<Option<Value>>,
}

/// Emit the body of a kernel function whose entry block has been created
/// with params `(ptrs, lo, hi)` and is current. `normal` is the imported
/// `nnc_random_normal` when the kernel draws normals.
pub fn emit_kernel(b: &mut FunctionBuilder, k: &LoopKernel, params: [Value; 3], fma: bool, normal: Option<FuncRef>) {
    let mut svs = Vec::new();
    let mut sv_slot = Vec::new();
    // Where each stride vector starts: a view's base offset for memory,
    // 0 for the index of `Index` and `Random`.
    let mut sv_base = Vec::new();
    let mut node_sv = Vec::new();
    for n in &k.nodes {
        match n {
            Node::Load(a) => {
                node_sv.push(Some(svs.len()));
                svs.push(a.strides.clone());
                sv_slot.push(Some(a.slot));
                sv_base.push(a.base);
            }
            Node::Index(s) | Node::Random { strides: s, .. } => {
                node_sv.push(Some(svs.len()));
                svs.push(s.clone());
                sv_slot.push(None);
                sv_base.push(0);
            }
            _ => node_sv.push(None),
        }
    }
    let mut out_sv = Vec::new();
    for (_, a) in &k.outputs {
        out_sv.push(svs.len());
        svs.push(a.strides.clone());
        sv_slot.push(Some(a.slot));
        sv_base.push(a.base);
    }
    let deepest = |s: &[isize]| s.iter().rposition(|&x| x != 0).map_or(-1, |p| p as i32);
    let mut level = Vec::with_capacity(k.nodes.len());
    for (i, n) in k.nodes.iter().enumerate() {
        let l = match n {
            Node::Const(_) => -1,
            Node::Load(_) | Node::Index(_) | Node::Random { .. } => deepest(&svs[node_sv[i].unwrap()]),
            Node::Unary(_, x) | Node::Trunc(x) => level[*x],
            Node::Binary(_, x, y) | Node::Compare(_, x, y) => level[*x].max(level[*y]),
            Node::Select(c, x, y) => level[*c].max(level[*x]).max(level[*y]),
        };
        level.push(l);
    }
    let r = k.dims.len() as i32;
    // Random draws use 64-bit integer hashing, kept scalar.
    let vectorize = !k
        .nodes
        .iter()
        .enumerate()
        .any(|(i, n)| matches!(n, Node::Random { .. }) && level[i] == r - 1);
    let nslots = sv_slot.iter().flatten().max().map_or(0, |&m| m + 1);
    let mut e = Emitter {
        b,
        k,
        fma,
        normal,
        svs,
        sv_slot,
        node_sv,
        out_sv,
        level,
        scalar: vec![None; k.nodes.len()],
        base: vec![None; nslots],
        ptrs: params[0],
        lo: params[1],
        hi: params[2],
        vectorize,
        recip: vec![None; k.nodes.len()],
    };
    e.load_bases();
    let offs: Vec<Value> = sv_base.iter().map(|&o| e.b.ins().iconst(I64, o as i64)).collect();
    e.eval_level(-1, &offs);
    if k.dims.is_empty() {
        for (o, &(src, _)) in k.outputs.iter().enumerate() {
            let v = e.scalar[src].unwrap();
            let p = e.addr(e.out_sv[o], &offs);
            e.b.ins().store(data_flags(), v, p, 0);
        }
    } else {
        e.nest(0, offs);
    }
    e.b.ins().return_(&[]);
}

impl Emitter<'_, '_, '_> {
    fn load_bases(&mut self) {
        let flags = MemFlagsData::trusted().with_readonly();
        for s in self.sv_slot.clone().into_iter().flatten() {
            if self.base[s].is_none() {
                self.base[s] = Some(self.b.ins().load(I64, flags, self.ptrs, (s * 8) as i32));
            }
        }
    }

    /// Byte address of stride vector `sv` at element offset `offs[sv]`.
    fn addr(&mut self, sv: usize, offs: &[Value]) -> Value {
        let base = self.base[self.sv_slot[sv].unwrap()].unwrap();
        let bytes = self.b.ins().ishl_imm_s(offs[sv], 2);
        self.b.ins().iadd(base, bytes)
    }

    /// Evaluate (as scalars) every node whose level is exactly `lvl`, at the
    /// element offsets `offs`.
    fn eval_level(&mut self, lvl: i32, offs: &[Value]) {
        let l = Lanes { vec: false, fma: self.fma };
        for n in 0..self.k.nodes.len() {
            if self.level[n] == lvl {
                let v = self.node(l, n, offs, &|e, x| e.scalar[x].unwrap());
                self.scalar[n] = Some(v);
            }
        }
    }

    fn nest(&mut self, lvl: usize, offs: Vec<Value>) {
        let r = self.k.dims.len();
        if lvl == r - 1 {
            return self.inner(offs);
        }
        let (lo, hi) = self.range(lvl);
        let (f, _) = loop_begin(self.b, lo, hi, 1, &[]);
        let offs = self.advance(lvl, &offs, f.i);
        self.eval_level(lvl as i32, &offs);
        self.nest(lvl + 1, offs);
        loop_end(self.b, f, &[]);
    }

    fn range(&mut self, lvl: usize) -> (Value, Value) {
        if lvl == 0 {
            (self.lo, self.hi)
        } else {
            let lo = self.b.ins().iconst(I64, 0);
            let hi = self.b.ins().iconst(I64, self.k.dims[lvl] as i64);
            (lo, hi)
        }
    }

    /// Offsets after adding `i * stride[lvl]` to every stride vector.
    fn advance(&mut self, lvl: usize, offs: &[Value], i: Value) -> Vec<Value> {
        (0..self.svs.len())
            .map(|s| match self.svs[s][lvl] {
                0 => offs[s],
                st => {
                    let t = self.b.ins().imul_imm_s(i, st as i64);
                    self.b.ins().iadd(offs[s], t)
                }
            })
            .collect()
    }

    fn inner(&mut self, offs: Vec<Value>) {
        let r = self.k.dims.len();
        let lvl = r - 1;
        let (lo, hi) = self.range(lvl);
        let reduce = self.k.reduce.clone();
        // An innermost reduced axis accumulates in registers; `direct` means
        // it is the only reduced axis, so the result is stored, not combined.
        let direct = self.k.direct_reduce();
        let inner_red = reduce.as_ref().is_some_and(|(_, r)| r[lvl]);
        let kind = reduce.as_ref().map(|(k, _)| *k);
        let sl = Lanes { vec: false, fma: self.fma };
        let vl = Lanes { vec: true, fma: self.fma };
        // Outer values used by the vector body are splatted once and, with
        // the reciprocals of loop-invariant divisors, parked in a stack slot
        // and reloaded in the loop (a cheap L1 load): Cranelift's egraph
        // would otherwise sink the pure splats and divisions back into the
        // loop body, and block params passed unchanged are removed.
        let mut splat: Vec<Option<Value>> = vec![None; self.k.nodes.len()];
        let mut start = lo;
        let mut acc_s = None;
        if self.vectorize {
            let mut inv: Vec<(usize, Value)> = Vec::new();
            for (n, sp) in splat.iter_mut().enumerate() {
                if self.level[n] < lvl as i32 && self.used_inner(n) {
                    let v = self.b.ins().splat(F32X4, self.scalar[n].unwrap());
                    *sp = Some(v);
                    inv.push((n, v));
                }
            }
            let mut recips: Vec<(usize, Value)> = Vec::new();
            for n in 0..self.k.nodes.len() {
                if let Node::Binary(BinaryOp::Div, _, y) = self.k.nodes[n] {
                    if self.level[n] == lvl as i32 && self.level[y] < lvl as i32 {
                        let one = vl.f(self.b, 1.0);
                        recips.push((n, self.b.ins().fdiv(one, splat[y].unwrap())));
                    }
                }
            }
            let parked = inv.len() + recips.len();
            let slot = (parked > 0).then(|| {
                let data = StackSlotData::new(StackSlotKind::ExplicitSlot, 16 * parked as u32, 4);
                self.b.create_sized_stack_slot(data)
            });
            for (j, &(_, v)) in inv.iter().chain(&recips).enumerate() {
                self.b.ins().stack_store(I64, v, slot.unwrap(), 16 * j as i32);
            }
            let init: Vec<Value> = match (inner_red, kind) {
                (true, Some(k)) => vec![vl.f(self.b, k.identity())],
                _ => vec![],
            };
            let (f, carried) = loop_begin(self.b, lo, hi, W, &init);
            let mut vals: Vec<Option<Value>> = vec![None; self.k.nodes.len()];
            for (j, &(n, _)) in inv.iter().enumerate() {
                vals[n] = Some(self.b.ins().stack_load(I64, F32X4, slot.unwrap(), 16 * j as i32));
            }
            for (j, &(n, _)) in recips.iter().enumerate() {
                let off = 16 * (inv.len() + j) as i32;
                self.recip[n] = Some(self.b.ins().stack_load(I64, F32X4, slot.unwrap(), off));
            }
            let offs_i = self.advance(lvl, &offs, f.i);
            for n in 0..self.k.nodes.len() {
                if self.level[n] == lvl as i32 {
                    let snapshot = vals.clone();
                    let v = self.node(vl, n, &offs_i, &|_, x| snapshot[x].unwrap());
                    vals[n] = Some(v);
                }
            }
            self.recip.iter_mut().for_each(|r| *r = None);
            let get = |x: usize| vals[x].unwrap();
            let new_carried = self.outputs(vl, &offs_i, kind, inner_red, &carried, &get);
            let (i_end, acc) = loop_end(self.b, f, &new_carried);
            start = i_end;
            if let (true, Some(k)) = (inner_red, kind) {
                // Horizontal combine of the four partial results.
                let a = acc[0];
                let l: Vec<Value> = (0..4).map(|j| self.b.ins().extractlane(a, j as u8)).collect();
                let x = combine(self.b, k, l[0], l[1]);
                let y = combine(self.b, k, l[2], l[3]);
                acc_s = Some(combine(self.b, k, x, y));
            }
        }
        if let (true, Some(k), None) = (inner_red, kind, acc_s) {
            acc_s = Some(sl.f(self.b, k.identity()));
        }
        let init: Vec<Value> = acc_s.into_iter().collect();
        let (f, carried) = loop_begin(self.b, start, hi, 1, &init);
        let offs_i = self.advance(lvl, &offs, f.i);
        let mut vals: Vec<Option<Value>> = self.scalar.clone();
        for n in 0..self.k.nodes.len() {
            if self.level[n] == lvl as i32 {
                let snapshot = vals.clone();
                let v = self.node(sl, n, &offs_i, &|_, x| snapshot[x].unwrap());
                vals[n] = Some(v);
            }
        }
        let get = |x: usize| vals[x].unwrap();
        let new_carried = self.outputs(sl, &offs_i, kind, inner_red, &carried, &get);
        let (_, acc) = loop_end(self.b, f, &new_carried);
        if let (true, Some(k)) = (inner_red, kind) {
            // The output does not move along the reduced inner axis.
            let p = self.addr(self.out_sv[0], &offs);
            let v = if direct {
                acc[0]
            } else {
                let old = self.b.ins().load(F32, data_flags(), p, 0);
                combine(self.b, k, old, acc[0])
            };
            self.b.ins().store(data_flags(), v, p, 0);
        }
    }

    fn used_inner(&self, n: usize) -> bool {
        let lvl = self.k.dims.len() as i32 - 1;
        let used_by_node = self.k.nodes.iter().enumerate().any(|(m, node)| {
            self.level[m] == lvl
                && match node {
                    Node::Unary(_, x) | Node::Trunc(x) => *x == n,
                    Node::Binary(_, x, y) | Node::Compare(_, x, y) => *x == n || *y == n,
                    Node::Select(c, x, y) => *c == n || *x == n || *y == n,
                    _ => false,
                }
        });
        used_by_node || self.k.outputs.iter().any(|(s, _)| *s == n)
    }

    /// Store or accumulate every output; returns the new carried accumulator
    /// when the inner axis is reduced (`in_regs`).
    fn outputs(
        &mut self,
        l: Lanes,
        offs: &[Value],
        kind: Option<ReduceKind>,
        in_regs: bool,
        carried: &[Value],
        get: &dyn Fn(usize) -> Value,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        for o in 0..self.k.outputs.len() {
            let v = get(self.k.outputs[o].0);
            let sv = self.out_sv[o];
            // Only output 0 is reduced; the others are plain stores.
            let kind = kind.filter(|_| o == 0);
            match (kind, in_regs) {
                (Some(k), true) => out.push(combine(self.b, k, carried[0], v)),
                (Some(k), false) => {
                    let old = self.load(l, sv, offs);
                    let nv = combine(self.b, k, old, v);
                    self.store(l, sv, offs, nv);
                }
                (None, _) => self.store(l, sv, offs, v),
            }
        }
        out
    }

    fn inner_stride(&self, sv: usize) -> isize {
        *self.svs[sv].last().unwrap_or(&0)
    }

    fn load(&mut self, l: Lanes, sv: usize, offs: &[Value]) -> Value {
        let p = self.addr(sv, offs);
        let st = self.inner_stride(sv);
        if !l.vec {
            return self.b.ins().load(F32, data_flags(), p, 0);
        }
        if st == 1 {
            return self.b.ins().load(F32X4, data_flags(), p, 0);
        }
        // A strided row (a transposed view): gather lane by lane.
        let x0 = self.b.ins().load(F32, data_flags(), p, 0);
        let mut v = self.b.ins().splat(F32X4, x0);
        for j in 1..4 {
            let x = self.b.ins().load(F32, data_flags(), p, (j as isize * st * 4) as i32);
            v = self.b.ins().insertlane(v, x, j as u8);
        }
        v
    }

    fn store(&mut self, l: Lanes, sv: usize, offs: &[Value], v: Value) {
        let p = self.addr(sv, offs);
        let st = self.inner_stride(sv);
        if !l.vec || st == 1 {
            self.b.ins().store(data_flags(), v, p, 0);
            return;
        }
        for j in 0..4 {
            let x = self.b.ins().extractlane(v, j as u8);
            self.b.ins().store(data_flags(), x, p, (j as isize * st * 4) as i32);
        }
    }

    /// Code for node `n` with operands from `get`; `offs` are element offsets
    /// of the current point (lane 0 when `l` is a vector).
    fn node(&mut self, l: Lanes, n: usize, offs: &[Value], get: &dyn Fn(&Self, usize) -> Value) -> Value {
        let node = self.k.nodes[n].clone();
        let b = &mut *self.b;
        match node {
            Node::Const(c) => l.f(b, c),
            Node::Load(_) => self.load(l, self.node_sv[n].unwrap(), offs),
            Node::Index(s) => {
                let off = offs[self.node_sv[n].unwrap()];
                let x = b.ins().fcvt_from_sint(F32, off);
                if !l.vec {
                    return x;
                }
                let st = *s.last().unwrap_or(&0) as f32;
                let base = b.ins().splat(F32X4, x);
                let mut lanes = l.f(b, 0.0);
                for j in 1..4 {
                    let c = b.ins().f32const(j as f32 * st);
                    lanes = b.ins().insertlane(lanes, c, j as u8);
                }
                b.ins().fadd(base, lanes)
            }
            Node::Random { seed, key, normal, .. } => {
                let off = offs[self.node_sv[n].unwrap()];
                let key = key.map(|k| get(self, k));
                let b = &mut *self.b;
                let s = match key {
                    Some(key) => keyed_seed(b, seed, key),
                    None => b.ins().iconst(I64, seed as i64),
                };
                if normal {
                    let f = self.normal.expect("normal draws import nnc_random_normal");
                    let call = b.ins().call(f, &[s, off]);
                    b.inst_results(call)[0]
                } else {
                    let bits = random_bits(b, s, off);
                    let top = b.ins().ushr_imm_s(bits, 40);
                    let x = b.ins().fcvt_from_uint(F32, top);
                    let scale = b.ins().f32const(1.0 / (1u64 << 24) as f32);
                    b.ins().fmul(x, scale)
                }
            }
            Node::Unary(u, x) => {
                let x = get(self, x);
                let b = &mut *self.b;
                match u {
                    UnaryOp::Neg => b.ins().fneg(x),
                    UnaryOp::Exp => exp::exp(l, b, x),
                    UnaryOp::Log => exp::log(l, b, x),
                    UnaryOp::Sqrt => b.ins().sqrt(x),
                    UnaryOp::Tanh => exp::tanh(l, b, x),
                    UnaryOp::Abs => b.ins().fabs(x),
                    UnaryOp::Sin => exp::sin(l, b, x),
                    UnaryOp::Cos => exp::cos(l, b, x),
                    UnaryOp::Erf => exp::erf(l, b, x),
                    UnaryOp::StopGradient => x,
                    UnaryOp::Sign => {
                        let zero = l.f(b, 0.0);
                        let one = l.f(b, 1.0);
                        let mone = l.f(b, -1.0);
                        let gt = l.cmp(b, FloatCC::GreaterThan, x, zero);
                        let lt = l.cmp(b, FloatCC::LessThan, x, zero);
                        let neg = l.sel(b, lt, mone, zero);
                        let r = l.sel(b, gt, one, neg);
                        // sign(NaN) = NaN, as in the interpreter.
                        let nan = l.cmp(b, FloatCC::Unordered, x, x);
                        l.sel(b, nan, x, r)
                    }
                }
            }
            Node::Trunc(x) => {
                // Saturating, NaN -> 0: Rust's `as i32`, like the interpreter.
                let x = get(self, x);
                let i = self.b.ins().fcvt_to_sint_sat(l.ity(), x);
                self.b.ins().fcvt_from_sint(l.fty(), i)
            }
            Node::Binary(op, x, y) => {
                let const_y = match self.k.nodes[y] {
                    Node::Const(c) => Some(c),
                    _ => None,
                };
                let invariant_y = self.level[y] < self.level[n];
                let recip = if l.vec { self.recip[n] } else { None };
                let (x, y) = (get(self, x), get(self, y));
                let b = &mut *self.b;
                match op {
                    BinaryOp::Add => b.ins().fadd(x, y),
                    BinaryOp::Sub => b.ins().fsub(x, y),
                    BinaryOp::Mul => b.ins().fmul(x, y),
                    // Dividing by a loop-invariant value: one reciprocal
                    // (hoisted by Cranelift's LICM) and a multiply per
                    // element; division throughput bounds e.g. Adam.
                    // Dividing by a loop-invariant value: one reciprocal
                    // and a multiply per element; division throughput
                    // bounds e.g. Adam.
                    BinaryOp::Div => match (recip, invariant_y) {
                        (Some(r), _) => b.ins().fmul(x, r),
                        (None, true) => {
                            let one = l.f(b, 1.0);
                            let r = b.ins().fdiv(one, y);
                            b.ins().fmul(x, r)
                        }
                        (None, false) => b.ins().fdiv(x, y),
                    },
                    BinaryOp::Max => b.ins().fmax(x, y),
                    BinaryOp::Min => b.ins().fmin(x, y),
                    BinaryOp::Pow => match const_y {
                        // Small integer powers are exact products.
                        Some(1.0) => x,
                        Some(2.0) => b.ins().fmul(x, x),
                        Some(3.0) => {
                            let x2 = b.ins().fmul(x, x);
                            b.ins().fmul(x2, x)
                        }
                        Some(0.5) => b.ins().sqrt(x),
                        _ => exp::pow(l, b, x, y),
                    },
                }
            }
            Node::Compare(c, x, y) => {
                let (x, y) = (get(self, x), get(self, y));
                let b = &mut *self.b;
                let cc = match c {
                    CmpOp::Lt => FloatCC::LessThan,
                    CmpOp::Le => FloatCC::LessThanOrEqual,
                    CmpOp::Gt => FloatCC::GreaterThan,
                    CmpOp::Ge => FloatCC::GreaterThanOrEqual,
                    CmpOp::Eq => FloatCC::Equal,
                    CmpOp::Ne => FloatCC::NotEqual,
                };
                let m = l.cmp(b, cc, x, y);
                let one = l.f(b, 1.0);
                let zero = l.f(b, 0.0);
                l.sel(b, m, one, zero)
            }
            Node::Select(c, x, y) => {
                let (c, x, y) = (get(self, c), get(self, x), get(self, y));
                let b = &mut *self.b;
                let zero = l.f(b, 0.0);
                let m = l.cmp(b, FloatCC::NotEqual, c, zero);
                l.sel(b, m, x, y)
            }
        }
    }
}

fn combine(b: &mut FunctionBuilder, k: ReduceKind, x: Value, y: Value) -> Value {
    match k {
        ReduceKind::Sum => b.ins().fadd(x, y),
        ReduceKind::Max => b.ins().fmax(x, y),
    }
}

/// `ir::random_bits(seed, index)` in Cranelift (SplitMix64 finaliser).
/// `ir::keyed_seed(seed, key)` for an f32 `key`: the seed for key 0, else
/// `random_bits(seed, key)`.
fn keyed_seed(b: &mut FunctionBuilder, seed: u64, key: Value) -> Value {
    let k = b.ins().fcvt_to_uint_sat(I64, key);
    let s = b.ins().iconst(I64, seed as i64);
    let mixed = random_bits(b, s, k);
    let zero = b.ins().icmp_imm_u(IntCC::Equal, k, 0);
    b.ins().select(zero, s, mixed)
}

/// `ir::random_bits(seed, index)`: SplitMix64's finaliser over the mixed key.
fn random_bits(b: &mut FunctionBuilder, seed: Value, index: Value) -> Value {
    let k = b.ins().imul_imm_s(seed, 0x9E37_79B9_7F4A_7C15_u64 as i64);
    let t = b.ins().iadd_imm_s(index, 0x6A09_E667_F3BC_C909_u64 as i64);
    let z = b.ins().bxor(t, k);
    let s = b.ins().ushr_imm_s(z, 30);
    let z = b.ins().bxor(z, s);
    let z = b.ins().imul_imm_s(z, 0xBF58_476D_1CE4_E5B9_u64 as i64);
    let s = b.ins().ushr_imm_s(z, 27);
    let z = b.ins().bxor(z, s);
    let z = b.ins().imul_imm_s(z, 0x94D0_49BB_1331_11EB_u64 as i64);
    let s = b.ins().ushr_imm_s(z, 31);
    b.ins().bxor(z, s)
}
