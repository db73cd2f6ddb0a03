//! The window ops (im2col, col2im, max pooling and its gradient), called
//! from compiled code as one host function.
//!
//! These are gathers and scatters, bound by memory traffic, not FLOPs; the
//! loops in `ir::window` (the interpreter's too, so both backends share
//! every index rule) compiled by rustc run them at memory speed, which a
//! Cranelift loop with 128-bit vectors would not beat. Each call gets a
//! descriptor (op, window, sizes, threads) that the `Compiled` function
//! owns; its address is a constant in the step code.

use super::kernel::WindowKernel;
use crate::ir::window::{self as win, Geometry};
use crate::ir::Window;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, FuncRef, InstBuilder, MemFlagsData, Signature, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

/// Symbol name under which [`nnc_window`] is registered with the JIT.
pub const SYMBOL: &str = "nnc_window";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowOp {
    Im2col,
    Col2im,
    MaxPool,
    MaxPoolGrad,
}

/// What one call computes (the compiled function owns it; its address is
/// a constant in the code).
#[derive(Clone, Debug)]
pub struct Descriptor {
    pub op: WindowOp,
    pub window: Window,
    pub geometry: Geometry,
    pub threads: usize,
}

/// Work (elements moved) below which a window op stays on one thread.
const PAR_MIN_ELEMS: usize = 1 << 16;

impl Descriptor {
    pub fn new(op: WindowOp, window: Window, geometry: Geometry, threads: usize) -> Descriptor {
        let work = match op {
            WindowOp::Im2col | WindowOp::Col2im => geometry.cols_len(&window),
            WindowOp::MaxPool | WindowOp::MaxPoolGrad => geometry.image_len(),
        };
        let threads = if work >= PAR_MIN_ELEMS { threads.max(1) } else { 1 };
        Descriptor {
            op,
            window,
            geometry,
            threads,
        }
    }

    /// Input, auxiliary input and output lengths in f32 elements.
    pub fn lens(&self) -> (usize, usize, usize) {
        let g = &self.geometry;
        let (img, cols, pooled) = (g.image_len(), g.cols_len(&self.window), g.pooled_len());
        match self.op {
            WindowOp::Im2col => (img, 0, cols),
            WindowOp::Col2im => (cols, 0, img),
            WindowOp::MaxPool => (img, 0, pooled),
            WindowOp::MaxPoolGrad => (img, pooled, img),
        }
    }

    /// Rows `a..b` of the op's outer loop (images, or image planes for pooling).
    fn run(&self, src: &[f32], aux: &[f32], dst: &mut [f32], a: usize, b: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.run_avx2(src, aux, dst, a, b) };
        }
        self.run_loops(src, aux, dst, a, b)
    }

    /// [`Self::run_loops`] compiled for AVX2: the loops of `ir::window` are
    /// inlined here, so the kernel-wide copies of `im2col` and the sums of
    /// `col2im` use 256-bit vectors (`col2im` of LeNet-5's second layer took
    /// 0.47–0.69 ms instead of 0.85–0.98 ms in a loaded microbenchmark).
    /// The results are the same bits either way: the same operations in the
    /// same order (Rust never contracts `a * b + c` into an FMA).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, src: &[f32], aux: &[f32], dst: &mut [f32], a: usize, b: usize) {
        self.run_loops(src, aux, dst, a, b)
    }

    #[inline(always)]
    fn run_loops(&self, src: &[f32], aux: &[f32], dst: &mut [f32], a: usize, b: usize) {
        let (w, g) = (&self.window, &self.geometry);
        match self.op {
            WindowOp::Im2col => win::im2col(w, g, src, dst, a, b),
            WindowOp::Col2im => win::col2im(w, g, src, dst, a, b),
            WindowOp::MaxPool => win::max_pool(w, g, src, dst, a, b),
            WindowOp::MaxPoolGrad => win::max_pool_grad(w, g, src, aux, dst, a, b),
        }
    }

    fn outer(&self) -> usize {
        match self.op {
            WindowOp::Im2col | WindowOp::Col2im => self.geometry.n,
            WindowOp::MaxPool | WindowOp::MaxPoolGrad => self.geometry.n * self.geometry.c,
        }
    }

    /// Elements of `dst` per outer row.
    fn dst_row(&self) -> usize {
        let (_, _, d) = self.lens();
        d / self.outer().max(1)
    }
}

/// Run the op described at `desc` from `src` (and `aux`) into `dst`.
pub(super) extern "C" fn nnc_window(desc: usize, src: *const f32, aux: *const f32, dst: *mut f32) {
    // SAFETY: `desc` is the address of a `Descriptor` owned by the
    // `Compiled` function whose code calls this (alive while it runs); the
    // slots were planned with exactly the lengths `lens` gives (`fuse`
    // checks them against the IR types) and the output never overlaps an
    // input (it gets its own slot).
    let d = unsafe { &*(desc as *const Descriptor) };
    let (ls, la, ld) = d.lens();
    let src = unsafe { std::slice::from_raw_parts(src, ls) };
    let aux: &[f32] = if la == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(aux, la) }
    };
    let dst = unsafe { std::slice::from_raw_parts_mut(dst, ld) };
    let n = d.outer();
    let t = d.threads.min(n).max(1);
    if t == 1 {
        d.run(src, aux, dst, 0, n);
        return;
    }
    // Threads take contiguous blocks of outer rows; each writes only its
    // own rows of `dst` (im2col/col2im/pooling rows are independent).
    let per = n.div_ceil(t);
    let row = d.dst_row();
    rayon::scope(|s| {
        let mut rest = dst;
        let mut a = 0;
        while a < n {
            let b = (a + per).min(n);
            let (mine, tail) = rest.split_at_mut((b - a) * row);
            rest = tail;
            // Each worker sees a `dst` that starts at row `a`: offset the
            // loops by presenting a window of the full buffer.
            let run = move |mine: &mut [f32]| {
                let _ftz = super::fpenv::FlushSubnormals::new();
                d.run_rows(src, aux, mine, a, b);
            };
            if b == n {
                run(mine);
            } else {
                s.spawn(move |_| run(mine));
            }
            a = b;
        }
    });
}

impl Descriptor {
    /// Like `run`, with `dst` holding only rows `a..b`.
    fn run_rows(&self, src: &[f32], aux: &[f32], dst: &mut [f32], a: usize, b: usize) {
        let row = self.dst_row();
        // The loops index `dst` by absolute row; shift by building a
        // geometry whose batch starts at row `a` (same strides per row).
        let mut g = self.geometry;
        let (src_row, aux_row) = {
            let (ls, la, _) = self.lens();
            let n = self.outer().max(1);
            (ls / n, la / n)
        };
        let src = &src[a * src_row..b * src_row];
        let aux = if aux.is_empty() { aux } else { &aux[a * aux_row..b * aux_row] };
        match self.op {
            WindowOp::Im2col | WindowOp::Col2im => g.n = b - a,
            WindowOp::MaxPool | WindowOp::MaxPoolGrad => {
                // Planes are independent: treat the block as b - a images of one channel.
                g.n = b - a;
                g.c = 1;
            }
        }
        debug_assert_eq!(dst.len(), (b - a) * row);
        let sub = Descriptor {
            geometry: g,
            ..self.clone()
        };
        sub.run(src, aux, dst, 0, b - a);
    }
}

/// The Cranelift signature of [`nnc_window`]: four 64-bit integers.
pub fn signature(cc: CallConv) -> Signature {
    let mut sig = Signature::new(cc);
    for _ in 0..4 {
        sig.params.push(AbiParam::new(I64));
    }
    sig
}

/// Emit the call for `k`, whose descriptor lives at `desc`.
pub fn emit_call(b: &mut FunctionBuilder, k: &WindowKernel, desc: usize, ptrs: Value, callee: FuncRef) {
    let flags = MemFlagsData::trusted().with_readonly();
    let load = |b: &mut FunctionBuilder, slot: usize| b.ins().load(I64, flags, ptrs, (slot * 8) as i32);
    let d = b.ins().iconst(I64, desc as i64);
    let src = load(b, k.src);
    let aux = match k.aux {
        Some(s) => load(b, s),
        None => b.ins().iconst(I64, 0),
    };
    let dst = load(b, k.dst);
    b.ins().call(callee, &[d, src, aux, dst]);
}
