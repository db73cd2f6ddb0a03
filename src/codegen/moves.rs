//! The ops that move elements (slice, pad, reverse, concat, gather,
//! scatter-add), called from compiled code as one host function.
//!
//! They compute nothing, so a rustc-compiled copy loop runs them at memory
//! speed; the point of this module is that they are correct and simple.
//! (Folding slices into the strides of the kernels that read them, with a
//! base offset, is the faster way and is left for later: see `kernel::Access`.)
//! Each call gets a descriptor that the `Compiled` function owns; its
//! address is a constant in the step code. Operands and the result are
//! contiguous row-major f32 slots; i32 ids are held as integral f32s.

use super::kernel::Slot;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, FuncRef, InstBuilder, Signature, Value};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;

/// Symbol name under which [`nnc_move`] is registered with the JIT.
pub const SYMBOL: &str = "nnc_move";

/// What one call does.
#[derive(Clone, Debug, PartialEq)]
pub enum MoveOp {
    /// For every index `i` of `dims` (row-major), write the element at
    /// `src_base + Σ src_strides[d]·i_d` to `dst_base + Σ dst_strides[d]·i_d`,
    /// after zeroing the first `zero` elements of the result. Slices (start
    /// and stride per axis), reversals (negative strides), padding (zeroed,
    /// written strided) and each half of a concatenation are all this.
    Copy {
        src_base: isize,
        src_strides: Vec<isize>,
        dst_base: isize,
        dst_strides: Vec<isize>,
        dims: Vec<usize>,
        zero: usize,
    },
    /// The operand seen as `[outer, n, inner]`, the result as
    /// `[outer, k, inner]`: row `ids[j]` of each block, NaN for an id
    /// outside `0..n`.
    Take { outer: usize, n: usize, inner: usize, k: usize },
    /// The adjoint of `Take`: zeros `[outer, n, inner]` plus each update
    /// row `[outer, k, inner]` added at `ids[j]` (outside ids dropped).
    TakeAdjoint { outer: usize, n: usize, inner: usize, k: usize },
}

/// One call: the op, the slots it reads (ids first for the take ops) and
/// the slot it writes; the compiled function keeps it at a stable address.
#[derive(Clone, Debug)]
pub struct MoveKernel {
    pub op: MoveOp,
    pub srcs: Vec<Slot>,
    pub dst: Slot,
    pub label: String,
}

/// Visit every index of `dims` in row-major order with the two offsets it
/// maps to (`a` and `b` strided), calling `f(a_offset, b_offset)`.
fn walk(dims: &[usize], a_base: isize, a: &[isize], b_base: isize, b: &[isize], f: &mut dyn FnMut(isize, isize)) {
    if dims.contains(&0) {
        return;
    }
    let r = dims.len();
    let mut idx = vec![0usize; r];
    let (mut oa, mut ob) = (a_base, b_base);
    loop {
        f(oa, ob);
        // Odometer increment, updating the offsets incrementally.
        let mut d = r;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            oa += a[d];
            ob += b[d];
            if idx[d] < dims[d] {
                break;
            }
            oa -= a[d] * dims[d] as isize;
            ob -= b[d] * dims[d] as isize;
            idx[d] = 0;
        }
    }
}

/// An id held as f32, as a position in `0..n`.
fn position(id: f32, n: usize) -> Option<usize> {
    (id >= 0.0 && id < n as f32).then_some(id as usize)
}

impl MoveKernel {
    /// Run on the buffers in the pointer table.
    ///
    /// # Safety
    /// `table` holds valid pointers to f32 buffers of the lengths the
    /// program planned for every slot this kernel names.
    unsafe fn run(&self, table: *const usize) {
        let ptr = |s: Slot| unsafe { *table.add(s) as *mut f32 };
        let dst = ptr(self.dst);
        match &self.op {
            MoveOp::Copy {
                src_base,
                src_strides,
                dst_base,
                dst_strides,
                dims,
                zero,
            } => {
                let src = ptr(self.srcs[0]);
                if *zero > 0 {
                    unsafe { std::ptr::write_bytes(dst, 0, *zero) };
                }
                let r = dims.len();
                if r > 0 && src_strides[r - 1] == 1 && dst_strides[r - 1] == 1 {
                    // Rows contiguous on both sides (chunks of the last
                    // axis, concat halves): one block copy per row.
                    let n = dims[r - 1];
                    walk(
                        &dims[..r - 1],
                        *src_base,
                        &src_strides[..r - 1],
                        *dst_base,
                        &dst_strides[..r - 1],
                        &mut |s, d| unsafe { std::ptr::copy(src.offset(s), dst.offset(d), n) },
                    );
                } else {
                    walk(dims, *src_base, src_strides, *dst_base, dst_strides, &mut |s, d| unsafe {
                        *dst.offset(d) = *src.offset(s)
                    });
                }
            }
            MoveOp::Take { outer, n, inner, k } => {
                let (ids, x) = (ptr(self.srcs[0]), ptr(self.srcs[1]));
                for o in 0..*outer {
                    for j in 0..*k {
                        let to = unsafe { dst.add((o * k + j) * inner) };
                        match position(unsafe { *ids.add(j) }, *n) {
                            Some(p) => unsafe { std::ptr::copy_nonoverlapping(x.add((o * n + p) * inner), to, *inner) },
                            None => (0..*inner).for_each(|i| unsafe { *to.add(i) = f32::NAN }),
                        }
                    }
                }
            }
            MoveOp::TakeAdjoint { outer, n, inner, k } => {
                let (ids, u) = (ptr(self.srcs[0]), ptr(self.srcs[1]));
                unsafe { std::ptr::write_bytes(dst, 0, outer * n * inner) };
                for o in 0..*outer {
                    for j in 0..*k {
                        if let Some(p) = position(unsafe { *ids.add(j) }, *n) {
                            let (to, from) = unsafe { (dst.add((o * n + p) * inner), u.add((o * k + j) * inner)) };
                            (0..*inner).for_each(|i| unsafe { *to.add(i) += *from.add(i) });
                        }
                    }
                }
            }
        }
    }
}

/// The host function compiled code calls: run the kernel at `desc`.
///
/// # Safety
/// `desc` points to a live [`MoveKernel`] and `table` to the pointer table
/// of the program it was formed for.
pub unsafe extern "C" fn nnc_move(desc: *const MoveKernel, table: *const usize) {
    unsafe { (*desc).run(table) }
}

pub fn signature(cc: CallConv) -> Signature {
    let mut s = Signature::new(cc);
    s.params.push(AbiParam::new(I64));
    s.params.push(AbiParam::new(I64));
    s
}

/// Emit the call for the kernel whose boxed descriptor lives at `desc`.
pub fn emit_call(b: &mut FunctionBuilder, desc: usize, ptrs: Value, f: FuncRef) {
    let d = b.ins().iconst(I64, desc as i64);
    b.ins().call(f, &[d, ptrs]);
}
