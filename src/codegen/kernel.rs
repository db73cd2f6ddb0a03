//! The kernel program: what `fuse` produces and `emit` turns into machine code.
//!
//! A program is a list of kernels run in order over a table of buffer
//! pointers ("slots"). Every tensor that is materialised lives in one slot as a
//! row-major f32 buffer; views (broadcast, transpose, reshape, slice,
//! reverse) are not copies but strided accesses, from a base offset, to the
//! slot of the value they view (`codegen::view`).

use crate::ir::{BinaryOp, CmpOp, UnaryOp};

/// Index into the pointer table passed to the compiled step.
pub type Slot = usize;

/// A strided read or write: element `(i_0, .., i_{r-1})` of the kernel's
/// domain is at `slot[base + Σ strides[d] * i_d]` (in elements; strides may
/// be 0 or negative). A slice of a `[B, T, 3D]` buffer is the buffer's
/// slot with the slice's start as `base`, so it needs no copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    pub slot: Slot,
    pub base: isize,
    pub strides: Vec<isize>,
}

impl Access {
    /// `slot` from its first element with `strides`.
    pub fn new(slot: Slot, strides: Vec<isize>) -> Access {
        Access { slot, base: 0, strides }
    }

    /// The whole of `slot` as a row-major array of shape `dims`.
    pub fn contiguous(slot: Slot, dims: &[usize]) -> Access {
        Access::new(slot, contiguous_strides(dims))
    }

    /// Whether this walks `slot` from its start in row-major order over
    /// `dims` (the layout the host functions take). A size-1 axis is never
    /// stepped along, so its stride does not matter.
    pub fn is_dense(&self, dims: &[usize]) -> bool {
        self.base == 0
            && dims
                .iter()
                .zip(&self.strides)
                .zip(contiguous_strides(dims))
                .all(|((&n, &x), c)| n == 1 || x == c)
    }
}

/// One scalar operation of a fused kernel body; operands are indices of
/// earlier nodes of the same kernel (the body is a DAG in topological order).
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Load(Access),
    Const(f32),
    /// The integer `Σ strides[d] * i_d` as f32 (the class index of one_hot).
    Index(Vec<isize>),
    /// `ir::random_uniform/normal(ir::keyed_seed(seed, key), Σ strides[d] * i_d)`,
    /// `key` the node of the (scalar, loop-invariant) key; `None` when the
    /// key was a constant, already folded into `seed`.
    Random {
        seed: u64,
        key: Option<usize>,
        strides: Vec<isize>,
        normal: bool,
    },
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    Compare(CmpOp, usize, usize),
    Select(usize, usize, usize),
    /// f32 -> i32 conversion (truncation toward zero, result kept as f32).
    Trunc(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Max,
}

impl ReduceKind {
    pub fn identity(self) -> f32 {
        match self {
            ReduceKind::Sum => 0.0,
            ReduceKind::Max => f32::NEG_INFINITY,
        }
    }
}

/// A loop nest over `dims`. Without `reduce`, every output node is stored at
/// its access for every domain point. With `reduce`, output 0 is combined
/// into its access (strides 0 on the reduced axes); when only the innermost
/// axis is reduced the result is stored directly, otherwise the output must
/// have been filled with the identity by an earlier kernel. A direct
/// reduction may have further outputs, stored at every point like an
/// elementwise kernel's (`merge::merge_reductions`: a row written and summed
/// in one pass).
#[derive(Clone, Debug)]
pub struct LoopKernel {
    pub dims: Vec<usize>,
    pub nodes: Vec<Node>,
    pub outputs: Vec<(usize, Access)>,
    pub reduce: Option<(ReduceKind, Vec<bool>)>,
    /// Split the outermost axis across threads (set by `fuse` for large,
    /// race-free kernels).
    pub parallel: bool,
    /// Never moved earlier by sibling merging (the copies that write
    /// in-place results after every read of the old values).
    pub pinned: bool,
    /// IR values this kernel computes, for `kernels_text`.
    pub label: String,
}

impl LoopKernel {
    /// A loop storing node `src` of `nodes` at `out` for every point of
    /// `dims`: no reduction, one thread, free to merge.
    pub fn store(dims: Vec<usize>, nodes: Vec<Node>, src: usize, out: Access, label: String) -> LoopKernel {
        LoopKernel {
            dims,
            nodes,
            outputs: vec![(src, out)],
            reduce: None,
            parallel: false,
            pinned: false,
            label,
        }
    }

    /// True when the reduction is over the innermost axis only, so the
    /// accumulator lives in registers and the result is stored once.
    pub fn direct_reduce(&self) -> bool {
        match &self.reduce {
            Some((_, red)) => {
                let r = red.len();
                r > 0 && red[r - 1] && red[..r - 1].iter().all(|x| !x)
            }
            None => false,
        }
    }
}

/// One operand or the result of a (batched) matrix product.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub slot: Slot,
    /// Element offset of the first matrix in the slot (a slice's start).
    pub base: isize,
    /// Strides of the leading (batch) dims, in elements.
    pub batch_strides: Vec<isize>,
    pub rs: isize,
    pub cs: isize,
}

impl Matrix {
    /// A (batch of) matrices read through `a`: the last two axes are rows
    /// and columns, the others the batch.
    pub fn of(a: &Access) -> Matrix {
        let r = a.strides.len();
        Matrix {
            slot: a.slot,
            base: a.base,
            batch_strides: a.strides[..r - 2].to_vec(),
            rs: a.strides[r - 2],
            cs: a.strides[r - 1],
        }
    }
}

/// `c[b] = a[b] @ b[b]` for every batch index, through the `gemm` crate.
#[derive(Clone, Debug)]
pub struct GemmKernel {
    pub batch: Vec<usize>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Matrix,
    pub b: Matrix,
    pub c: Matrix,
    /// Threads handed to gemm (1 = no parallelism).
    pub threads: usize,
    pub label: String,
}

/// A window op (im2col, col2im, pooling) over contiguous slots, run by a
/// host function (`codegen::window`).
#[derive(Clone, Debug)]
pub struct WindowKernel {
    pub desc: super::window::Descriptor,
    pub src: Slot,
    /// The pooled gradient of `max_pool_grad`.
    pub aux: Option<Slot>,
    pub dst: Slot,
    pub label: String,
}

#[derive(Clone, Debug)]
pub enum Kernel {
    Loop(LoopKernel),
    Gemm(GemmKernel),
    /// Elements moved by a host function (`codegen::moves`).
    Move(super::moves::MoveKernel),
    Window(WindowKernel),
    /// A loop calling a compiled body per step (`codegen::scan`).
    Scan(super::scan::ScanKernel),
}

impl Kernel {
    /// Slots this kernel reads.
    pub fn reads(&self) -> Vec<Slot> {
        match self {
            Kernel::Loop(k) => {
                let mut out: Vec<Slot> = k
                    .nodes
                    .iter()
                    .filter_map(|n| match n {
                        Node::Load(a) => Some(a.slot),
                        _ => None,
                    })
                    .collect();
                if k.reduce.is_some() && !k.direct_reduce() {
                    out.extend(k.outputs.iter().map(|(_, a)| a.slot));
                }
                out
            }
            Kernel::Gemm(g) => vec![g.a.slot, g.b.slot],
            Kernel::Move(m) => m.srcs.clone(),
            Kernel::Window(w) => std::iter::once(w.src).chain(w.aux).collect(),
            Kernel::Scan(s) => s.operands.clone(),
        }
    }
    /// Slots this kernel writes.
    pub fn writes(&self) -> Vec<Slot> {
        match self {
            Kernel::Loop(k) => k.outputs.iter().map(|(_, a)| a.slot).collect(),
            Kernel::Gemm(g) => vec![g.c.slot],
            Kernel::Move(m) => vec![m.dst],
            Kernel::Window(w) => vec![w.dst],
            Kernel::Scan(s) => s.outputs.iter().flatten().copied().collect(),
        }
    }
}

/// Where a slot's memory comes from at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    Param(usize),
    Output(usize),
    /// An intermediate; its offset in the arena is chosen by `plan`.
    Temp,
    /// A result written over the buffer of parameter `param` (same
    /// pointer at run time; a separate slot so reads of the old value and of
    /// the new one can be told apart).
    Alias {
        param: usize,
    },
}

#[derive(Clone, Debug)]
pub struct SlotInfo {
    pub kind: SlotKind,
    /// Length in f32 elements.
    pub len: usize,
}

#[derive(Clone, Debug)]
pub struct Program {
    pub slots: Vec<SlotInfo>,
    pub kernels: Vec<Kernel>,
}

/// Row-major strides of a shape.
pub fn contiguous_strides(dims: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; dims.len()];
    let mut acc = 1isize;
    for i in (0..dims.len()).rev() {
        s[i] = acc;
        acc *= dims[i] as isize;
    }
    s
}
