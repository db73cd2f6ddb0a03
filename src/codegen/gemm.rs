//! Matrix products through the `gemm` crate, called from compiled code.
//!
//! Cranelift's x86 backend stops at 128-bit vectors, which caps a
//! Cranelift-generated GEMM at about half the FMA peak; the `gemm` crate
//! reaches the peak and takes arbitrary strides, so transposed operands (the
//! backward products) need no copies.

use super::emit::{loop_begin, loop_end};
use super::kernel::{GemmKernel, Matrix};
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, FuncRef, InstBuilder, MemFlagsData, Signature, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

/// Symbol name under which [`nnc_gemm`] is registered with the JIT.
pub const SYMBOL: &str = "nnc_gemm";

/// `dst = lhs @ rhs` for one `m x k` by `k x n` product; strides in elements.
#[allow(clippy::too_many_arguments)]
pub(super) extern "C" fn nnc_gemm(
    m: i64,
    n: i64,
    k: i64,
    dst: *mut f32,
    dst_rs: i64,
    dst_cs: i64,
    lhs: *const f32,
    lhs_rs: i64,
    lhs_cs: i64,
    rhs: *const f32,
    rhs_rs: i64,
    rhs_cs: i64,
    threads: i64,
) {
    let p = Product {
        n,
        k,
        dst: (dst as usize, dst_rs, dst_cs),
        lhs: (lhs as usize, lhs_rs, lhs_cs),
        rhs: (rhs as usize, rhs_rs, rhs_cs),
    };
    if threads <= 1 || m < 4 * ROW_BLOCK {
        p.rows(0, m);
        return;
    }
    // Threads take contiguous blocks of output rows (the batch rows of a
    // forward product): each packs only its own part of `lhs`, and nothing
    // synchronises inside the product.
    let t = threads.min(m / (2 * ROW_BLOCK));
    // i64 has no stable div_ceil.
    let per = ((m + t - 1) / t + ROW_BLOCK - 1) / ROW_BLOCK * ROW_BLOCK;
    rayon::scope(|s| {
        for c in 1..t {
            s.spawn(move |_| {
                // Workers run with the caller's floating-point mode.
                let _ftz = super::fpenv::FlushSubnormals::new();
                p.rows((c * per).min(m), ((c + 1) * per).min(m));
            });
        }
        p.rows(0, per.min(m));
    });
}

/// Rows per thread's block are a multiple of this (a vector of f32 rows)
/// and at least twice it.
const ROW_BLOCK: i64 = 16;

/// One product's operands: (address, row stride, column stride) each.
#[derive(Clone, Copy)]
struct Product {
    n: i64,
    k: i64,
    dst: (usize, i64, i64),
    lhs: (usize, i64, i64),
    rhs: (usize, i64, i64),
}

impl Product {
    /// Rows `r0..r1` of the result, on this thread.
    fn rows(self, r0: i64, r1: i64) {
        if r0 >= r1 {
            return;
        }
        let (dst, drs, dcs) = self.dst;
        let (lhs, lrs, lcs) = self.lhs;
        let (rhs, rrs, rcs) = self.rhs;
        // SAFETY: compiled code passes pointers into buffers whose lengths
        // the runtime checked against the kernel plan (`Compiled::run`) or
        // into the arena sized by `plan`, with the strides `fuse` derived
        // from the IR shapes, so every element gemm touches is in bounds;
        // `dst` never overlaps `lhs`/`rhs` (matmul results get a fresh
        // slot), and the row blocks of concurrent calls are disjoint.
        unsafe {
            gemm::gemm(
                (r1 - r0) as usize,
                self.n as usize,
                self.k as usize,
                (dst as *mut f32).offset((r0 * drs) as isize),
                dcs as isize,
                drs as isize,
                false,
                (lhs as *const f32).offset((r0 * lrs) as isize),
                lcs as isize,
                lrs as isize,
                rhs as *const f32,
                rcs as isize,
                rrs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }
}

/// The Cranelift signature of [`nnc_gemm`]: thirteen 64-bit integers.
pub fn signature(cc: CallConv) -> Signature {
    let mut sig = Signature::new(cc);
    for _ in 0..13 {
        sig.params.push(AbiParam::new(I64));
    }
    sig
}

/// Emit the call(s) for `g` into the step function.
pub fn emit_call(b: &mut FunctionBuilder, g: &GemmKernel, ptrs: Value, callee: FuncRef) {
    let flags = MemFlagsData::trusted().with_readonly();
    // The slot's address plus the view's first element.
    let base = |b: &mut FunctionBuilder, m: &Matrix| {
        let p = b.ins().load(I64, flags, ptrs, (m.slot * 8) as i32);
        b.ins().iadd_imm_s(p, m.base as i64 * 4)
    };
    let (pa, pb, pc) = (base(b, &g.a), base(b, &g.b), base(b, &g.c));
    let nb: usize = g.batch.iter().product();
    let call = |b: &mut FunctionBuilder, t: Option<Value>| {
        let ptr = |b: &mut FunctionBuilder, p: Value, m: &Matrix| match t {
            None => p,
            Some(t) => {
                // Element offset of batch index t (row-major over g.batch).
                let mut off = b.ins().iconst(I64, 0);
                let mut inner = 1usize;
                for d in (0..g.batch.len()).rev() {
                    let q = b.ins().udiv_imm_s(t, inner as i64);
                    let i = b.ins().urem_imm_s(q, g.batch[d] as i64);
                    let s = b.ins().imul_imm_s(i, m.batch_strides[d] as i64 * 4);
                    off = b.ins().iadd(off, s);
                    inner *= g.batch[d];
                }
                b.ins().iadd(p, off)
            }
        };
        let (a, bb, c) = (ptr(b, pa, &g.a), ptr(b, pb, &g.b), ptr(b, pc, &g.c));
        let ints = [g.m, g.n, g.k].map(|x| x as i64);
        let mut args: Vec<Value> = ints.iter().map(|&x| b.ins().iconst(I64, x)).collect();
        for (p, m) in [(c, &g.c), (a, &g.a), (bb, &g.b)] {
            args.push(p);
            args.push(b.ins().iconst(I64, m.rs as i64));
            args.push(b.ins().iconst(I64, m.cs as i64));
        }
        args.push(b.ins().iconst(I64, g.threads as i64));
        b.ins().call(callee, &args);
    };
    if g.batch.is_empty() {
        call(b, None);
    } else {
        let lo = b.ins().iconst(I64, 0);
        let hi = b.ins().iconst(I64, nb as i64);
        let (f, _) = loop_begin(b, lo, hi, 1, &[]);
        call(b, Some(f.index()));
        loop_end(b, f, &[]);
    }
}
