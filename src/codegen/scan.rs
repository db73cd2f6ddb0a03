//! Scans in compiled code: the body compiled once as a function of its
//! own, run once per step by a host loop.
//!
//! The step code calls [`nnc_scan`] with a [`ScanRunner`] that the
//! `Compiled` function owns. Per step the runner points the body's
//! parameter slots at the incoming carries, at step `t` of each sequence
//! (sequences are contiguous with the steps axis first, so a step is an
//! offset) and at the invariants, and its result slots at the next carry
//! buffers and at step `t` of each stacked output: nothing is copied but
//! the body's own results. Carries alternate between two buffers; the last
//! step writes them straight into the outputs that are read.

use super::kernel::Slot;
use super::{Compiled, Options};
use crate::ir::scan::Scan;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, FuncRef, InstBuilder, Signature, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use std::cell::UnsafeCell;
use std::sync::Arc;

/// Symbol name under which [`nnc_scan`] is registered with the JIT.
pub const SYMBOL: &str = "nnc_scan";

/// One sibling group of scan instructions: the scan, the slots of its
/// operands (contiguous) and of each output that some instruction reads.
#[derive(Clone, Debug)]
pub struct ScanKernel {
    pub scan: Arc<Scan>,
    pub operands: Vec<Slot>,
    pub outputs: Vec<Option<Slot>>,
    pub label: String,
}

/// A compiled body and the buffers of one scan, at a stable address.
pub struct ScanRunner {
    body: Compiled,
    carries: usize,
    seqs: usize,
    steps: usize,
    reverse: bool,
    operands: Vec<Slot>,
    outputs: Vec<Option<Slot>>,
    /// Elements of one step of each sequence.
    seq_step: Vec<usize>,
    /// Elements of one step of each per-step output.
    y_len: Vec<usize>,
    /// Two buffers per carry.
    carry_bufs: Vec<[Vec<f32>; 2]>,
    /// Where per-step outputs that nobody reads go.
    y_scratch: Vec<Vec<f32>>,
}

impl ScanRunner {
    pub fn new(k: &ScanKernel, opts: &Options) -> Result<ScanRunner, String> {
        let scan = &k.scan;
        let body = Compiled::compile(&scan.body, opts).map_err(|e| format!("scan body: {e}"))?;
        let len = |v: crate::ir::Value| -> usize { scan.body.ty(v).shape.iter().map(|d| d.known().unwrap_or(0)).product() };
        let (nc, ns) = (scan.carries, scan.seqs);
        let seq_step = scan.body.params[nc..nc + ns].iter().map(|&p| len(p)).collect();
        let y_len: Vec<usize> = scan.body.results[nc..].iter().map(|&r| len(r)).collect();
        let carry_bufs = scan.body.results[..nc]
            .iter()
            .map(|&r| [vec![0.0; len(r)], vec![0.0; len(r)]])
            .collect();
        let y_scratch = y_len
            .iter()
            .enumerate()
            .map(|(j, &n)| if k.outputs[nc + j].is_some() { vec![] } else { vec![0.0; n] })
            .collect();
        Ok(ScanRunner {
            body,
            carries: nc,
            seqs: ns,
            steps: scan.steps,
            reverse: scan.reverse,
            operands: k.operands.clone(),
            outputs: k.outputs.clone(),
            seq_step,
            y_len,
            carry_bufs,
            y_scratch,
        })
    }

    pub fn clif_text(&self) -> String {
        self.body.clif_text()
    }
    pub fn asm_text(&self) -> String {
        self.body.asm_text()
    }
    pub fn kernels_text(&self) -> String {
        self.body.kernels_text()
    }

    /// # Safety
    /// `table` is the pointer table of the program this scan was formed
    /// for, every slot this kernel names holding a buffer of its planned
    /// length; no one else uses `self` meanwhile.
    unsafe fn run(&mut self, table: *const usize) {
        let at = |s: Slot| unsafe { *table.add(s) };
        let (k, m) = (self.carries, self.seqs);
        let np = self.body.param_lens.len();
        let mut carry: Vec<usize> = self.operands[..k].iter().map(|&s| at(s)).collect();
        for i in 0..self.steps {
            let t = if self.reverse { self.steps - 1 - i } else { i };
            let last = i + 1 == self.steps;
            let bt = &mut self.body.table;
            bt[..k].copy_from_slice(&carry);
            for s in 0..m {
                bt[k + s] = at(self.operands[k + s]) + t * self.seq_step[s] * 4;
            }
            for (slot, &s) in bt[k + m..np].iter_mut().zip(&self.operands[k + m..]) {
                *slot = at(s);
            }
            for (j, c) in carry.iter_mut().enumerate() {
                let dst = match self.outputs[j] {
                    Some(s) if last => at(s),
                    _ => self.carry_bufs[j][i % 2].as_mut_ptr() as usize,
                };
                bt[np + j] = dst;
                *c = dst;
            }
            for (j, &n) in self.y_len.iter().enumerate() {
                bt[np + k + j] = match self.outputs[k + j] {
                    Some(s) => at(s) + t * n * 4,
                    None => self.y_scratch[j].as_mut_ptr() as usize,
                };
            }
            // SAFETY: the body's table now points at buffers of the lengths
            // its params and results have (the step's slices of the
            // sequences and outputs, the carry buffers, the invariants);
            // its intermediates are in its own arena.
            unsafe {
                let step: extern "C" fn(*const usize) = std::mem::transmute(self.body.entry);
                step(self.body.table.as_ptr());
            }
        }
    }
}

/// The host function compiled code calls: run the scan at `runner`.
///
/// # Safety
/// `runner` points to a live [`ScanRunner`] of the running function (which
/// holds `&mut` of it for the call) and `table` to that function's pointer
/// table.
pub unsafe extern "C" fn nnc_scan(runner: *const UnsafeCell<ScanRunner>, table: *const usize) {
    unsafe { (*(*runner).get()).run(table) }
}

pub fn signature(cc: CallConv) -> Signature {
    let mut s = Signature::new(cc);
    s.params.push(AbiParam::new(I64));
    s.params.push(AbiParam::new(I64));
    s
}

/// Emit the call for the scan whose runner lives at `runner`.
pub fn emit_call(b: &mut FunctionBuilder, runner: usize, ptrs: Value, f: FuncRef) {
    let r = b.ins().iconst(I64, runner as i64);
    b.ins().call(f, &[r, ptrs]);
}
