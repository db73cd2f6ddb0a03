//! The op set, and every fact about an op that the passes share.
//!
//! Each fact is one exhaustive method here — [`Op::name`] and its inverse
//! [`Op::from_name`], [`Op::arity`], [`Op::kind`], [`Op::attrs`],
//! [`Op::differentiable_args`], [`Op::shapes_mut`] — so adding a variant is a
//! compile error at every place that must decide something about it, never a
//! wildcard that silently guesses. Type rules are in `verify.rs`, the value of
//! each elementwise op on one number in `scalar.rs`. `tests/it/tidy.rs` keeps
//! `ir`, `autodiff`, `opt` and `codegen` free of wildcard arms over ops.

use super::{DType, Dim, Shape, Window};
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Tanh,
    Abs,
    /// -1, 0 or 1; its derivative is zero.
    Sign,
    Sin,
    Cos,
    /// The error function (exact GELU is `x (1 + erf(x / √2)) / 2`).
    Erf,
    /// The identity whose gradient is zero: nothing flows back through it.
    StopGradient,
}

impl UnaryOp {
    /// Every unary op (the tidy test checks this lists each variant).
    pub const ALL: [UnaryOp; 11] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Tanh,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Erf,
        UnaryOp::StopGradient,
    ];

    /// The name in IR text.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Erf => "erf",
            UnaryOp::StopGradient => "stop_gradient",
        }
    }

    /// Whether the result depends differentiably on the operand (`sign` is
    /// piecewise constant: its gradient is zero, so it stops activity).
    pub fn is_differentiable(self) -> bool {
        match self {
            UnaryOp::Neg
            | UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Tanh
            | UnaryOp::Abs
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Erf => true,
            UnaryOp::Sign | UnaryOp::StopGradient => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Max,
        BinaryOp::Min,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
        }
    }

    /// Operands can be swapped without changing any result bit. `max` and
    /// `min` are not: which operand wins for NaN or for `0.0` vs `-0.0` is a
    /// backend convention, not something to rely on.
    pub fn is_commutative(self) -> bool {
        match self {
            BinaryOp::Add | BinaryOp::Mul => true,
            BinaryOp::Sub | BinaryOp::Div | BinaryOp::Pow | BinaryOp::Max | BinaryOp::Min => false,
        }
    }
}

/// Comparisons produce 1.0 where true and 0.0 where false (dtype f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne];

    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
        }
    }

    pub fn is_commutative(self) -> bool {
        match self {
            CmpOp::Eq | CmpOp::Ne => true,
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A scalar f32 constant (shape `[]`).
    Const(f64),
    Unary(UnaryOp),
    /// Operands of identical shape.
    Binary(BinaryOp),
    /// Operands of identical shape; result f32 0/1 of that shape.
    Compare(CmpOp),
    /// `select c, a, b`: `a` where `c != 0`, else `b`; all of one shape.
    Select,
    /// NumPy broadcast of the operand to `shape` (operand dims align to the
    /// right; each is 1 or equal to the target dim).
    Broadcast {
        shape: Shape,
    },
    /// Sum over `axes` (sorted, distinct). `keep` keeps them as size 1.
    ReduceSum {
        axes: Vec<usize>,
        keep: bool,
    },
    /// Max over `axes`. Its gradient flows to every position equal to the max.
    ReduceMax {
        axes: Vec<usize>,
        keep: bool,
    },
    /// Same element count, row-major order.
    Reshape {
        shape: Shape,
    },
    /// Result dim `i` is operand dim `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// `[..., m, k] @ [..., k, n] -> [..., m, n]`; leading dims identical.
    MatMul,
    /// `i32[...]` labels to `f32[..., depth]` one-hot rows.
    OneHot {
        depth: usize,
    },
    /// Convert between dtypes (i32 -> f32 exactly; f32 -> i32 truncates).
    Cast {
        to: DType,
    },
    /// Counter-based uniform draws in [0, 1): element `i` is a pure function
    /// of (`keyed_seed(seed, key)`, `i`), so every backend draws the same
    /// numbers. The one operand is the key, an f32 scalar holding a whole
    /// number (a training step's count: fresh draws every step).
    RandomUniform {
        shape: Shape,
        seed: u64,
    },
    /// Standard normal draws, Box–Muller over the same counter stream; the
    /// same key operand.
    RandomNormal {
        shape: Shape,
        seed: u64,
    },
    /// Element `start[i] + stride[i] * j` of each axis `i`, `shape[i]` of
    /// them (`stride >= 1`; a dim known only at run time is taken whole).
    Slice {
        start: Vec<usize>,
        stride: Vec<usize>,
        shape: Shape,
    },
    /// Zeros around the operand: `low[i]` before and `high[i]` after axis
    /// `i`, `interior[i]` between neighbours (the adjoint of a slice).
    Pad {
        low: Vec<usize>,
        high: Vec<usize>,
        interior: Vec<usize>,
    },
    /// The operand with the order along `axes` (sorted, distinct) reversed.
    Reverse {
        axes: Vec<usize>,
    },
    /// Two operands joined along `axis`; every other dim equal.
    Concat {
        axis: usize,
    },
    /// `gather x, ids`: `x` with axis `axis` replaced by the dims of the
    /// i32 `ids`, each id picking a slice; an id outside the axis reads NaN
    /// (JAX's `take`), so a bad id shows as a non-finite loss.
    Gather {
        axis: usize,
    },
    /// `scatter_add ids, updates`: zeros of `shape` with each slice of
    /// `updates` added at the position its id names along `axis` (ids
    /// outside the axis are dropped): the adjoint of `gather`.
    ScatterAdd {
        axis: usize,
        shape: Shape,
    },
    /// Each element's position along `axis`, as f32.
    Iota {
        shape: Shape,
        axis: usize,
    },
    /// `f32[n, c, h, w]` → `f32[n, oh, ow, c, kh, kw]`: every window of the
    /// image, zeros where it covers padding (`window::im2col`). A
    /// convolution is this, a reshape and one matrix product.
    Im2col {
        window: Window,
    },
    /// The adjoint of `im2col` back to `f32[n, c, h, w]`, `size = [h, w]`
    /// (several input sizes give one output size, so it is an attribute).
    Col2im {
        window: Window,
        size: [usize; 2],
    },
    /// `f32[n, c, h, w]` → `f32[n, c, oh, ow]`: the maximum of each window.
    MaxPool {
        window: Window,
    },
    /// `max_pool_grad x, dy`: `dy` (`[n, c, oh, ow]`) routed to the first
    /// maximum of each window of `x` (`[n, c, h, w]`), PyTorch's tie rule.
    MaxPoolGrad {
        window: Window,
    },
    /// Output `output` of a loop whose body is an IR function run once per
    /// step (`ir::scan`: operands, outputs and the sibling convention).
    Scan {
        scan: Arc<super::scan::Scan>,
        output: usize,
    },
}

/// How an op's result elements relate to its operands' elements; the code
/// generator forms kernels by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// No operands: constants and random draws.
    Source,
    /// Result element `i` is a function of operand elements `i` (all
    /// operands and the result have one shape, up to dtype).
    Elementwise,
    /// The operand's elements rearranged or repeated, none computed: a
    /// strided view of its storage.
    View,
    /// Folds some axes of the operand away.
    Reduction,
    /// A sum of products over a shared axis (matrix products).
    Contraction,
    /// Result elements computed from operand elements at positions derived
    /// from the result index (`one_hot`; gathers and concatenation belong here).
    Index,
    /// A loop running an IR function per step (`scan`).
    Loop,
}

/// An attribute value as printed in IR text.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// Dims, printed `[B, 784]`.
    Shape(Shape),
    /// Axis numbers, printed `[0, 1]`.
    Axes(Vec<usize>),
    Bool(bool),
    Int(u64),
    DType(DType),
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, xs: &[T]) -> fmt::Result {
            let items: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
            write!(f, "[{}]", items.join(", "))
        }
        match self {
            Attr::Shape(s) => list(f, s),
            Attr::Axes(a) => list(f, a),
            Attr::Bool(b) => write!(f, "{b}"),
            Attr::Int(n) => write!(f, "{n}"),
            Attr::DType(d) => write!(f, "{d}"),
        }
    }
}

/// Where [`Op::from_name`] reads attributes: the IR text parser implements
/// it over `{key=value, ...}`. Each call takes the attribute out, so the
/// reader can reject leftovers.
pub trait AttrReader {
    fn shape(&mut self, key: &str) -> Result<Shape, String>;
    fn axes(&mut self, key: &str) -> Result<Vec<usize>, String>;
    fn bool(&mut self, key: &str) -> Result<bool, String>;
    fn int(&mut self, key: &str) -> Result<u64, String>;
    fn dtype(&mut self, key: &str) -> Result<DType, String>;
}

/// Names of the ops that are not a `Unary`, `Binary` or `Compare` family
/// member, in declaration order ([`Op::names`] adds the families).
const STRUCTURAL_NAMES: &[&str] = &[
    "const",
    "select",
    "broadcast",
    "reduce_sum",
    "reduce_max",
    "reshape",
    "transpose",
    "matmul",
    "one_hot",
    "cast",
    "random_uniform",
    "random_normal",
    "slice",
    "pad",
    "reverse",
    "concat",
    "gather",
    "scatter_add",
    "iota",
    "im2col",
    "col2im",
    "max_pool",
    "max_pool_grad",
    "scan",
];

impl Op {
    /// The name in IR text.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Const(_) => "const",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::Broadcast { .. } => "broadcast",
            Op::ReduceSum { .. } => "reduce_sum",
            Op::ReduceMax { .. } => "reduce_max",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::MatMul => "matmul",
            Op::OneHot { .. } => "one_hot",
            Op::Cast { .. } => "cast",
            Op::RandomUniform { .. } => "random_uniform",
            Op::RandomNormal { .. } => "random_normal",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Reverse { .. } => "reverse",
            Op::Concat { .. } => "concat",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Iota { .. } => "iota",
            Op::Im2col { .. } => "im2col",
            Op::Col2im { .. } => "col2im",
            Op::MaxPool { .. } => "max_pool",
            Op::MaxPoolGrad { .. } => "max_pool_grad",
            Op::Scan { .. } => "scan",
        }
    }

    /// Every op name, each once.
    pub fn names() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = UnaryOp::ALL.iter().map(|u| u.name()).collect();
        out.extend(BinaryOp::ALL.iter().map(|b| b.name()));
        out.extend(CmpOp::ALL.iter().map(|c| c.name()));
        out.extend_from_slice(STRUCTURAL_NAMES);
        out
    }

    /// The op called `name`, reading its attributes from `a`: the inverse of
    /// [`Op::name`] with [`Op::attrs`]. `const` carries its value inline in
    /// IR text, not as an attribute, so it is built by the parser itself.
    pub fn from_name(name: &str, a: &mut dyn AttrReader) -> Result<Op, String> {
        if let Some(&u) = UnaryOp::ALL.iter().find(|u| u.name() == name) {
            return Ok(Op::Unary(u));
        }
        if let Some(&b) = BinaryOp::ALL.iter().find(|b| b.name() == name) {
            return Ok(Op::Binary(b));
        }
        if let Some(&c) = CmpOp::ALL.iter().find(|c| c.name() == name) {
            return Ok(Op::Compare(c));
        }
        Ok(match name {
            "select" => Op::Select,
            "matmul" => Op::MatMul,
            "broadcast" => Op::Broadcast { shape: a.shape("shape")? },
            "reshape" => Op::Reshape { shape: a.shape("shape")? },
            "reduce_sum" => Op::ReduceSum {
                axes: a.axes("axes")?,
                keep: a.bool("keep")?,
            },
            "reduce_max" => Op::ReduceMax {
                axes: a.axes("axes")?,
                keep: a.bool("keep")?,
            },
            "transpose" => Op::Transpose { perm: a.axes("perm")? },
            "one_hot" => Op::OneHot {
                depth: a.int("depth")? as usize,
            },
            "cast" => Op::Cast { to: a.dtype("to")? },
            "random_uniform" => Op::RandomUniform {
                shape: a.shape("shape")?,
                seed: a.int("seed")?,
            },
            "random_normal" => Op::RandomNormal {
                shape: a.shape("shape")?,
                seed: a.int("seed")?,
            },
            "slice" => Op::Slice {
                start: a.axes("start")?,
                stride: a.axes("stride")?,
                shape: a.shape("shape")?,
            },
            "pad" => Op::Pad {
                low: a.axes("low")?,
                high: a.axes("high")?,
                interior: a.axes("interior")?,
            },
            "reverse" => Op::Reverse { axes: a.axes("axes")? },
            "concat" => Op::Concat {
                axis: a.int("axis")? as usize,
            },
            "gather" => Op::Gather {
                axis: a.int("axis")? as usize,
            },
            "scatter_add" => Op::ScatterAdd {
                axis: a.int("axis")? as usize,
                shape: a.shape("shape")?,
            },
            "iota" => Op::Iota {
                shape: a.shape("shape")?,
                axis: a.int("axis")? as usize,
            },
            "im2col" => Op::Im2col { window: read_window(a)? },
            "col2im" => Op::Col2im {
                window: read_window(a)?,
                size: fixed(a, "size")?,
            },
            "max_pool" => Op::MaxPool { window: read_window(a)? },
            "max_pool_grad" => Op::MaxPoolGrad { window: read_window(a)? },
            "const" => return Err("`const` takes its value inline: `const 1.5`".into()),
            "scan" => return Err("a `scan` body is an IR function, which IR text cannot spell".into()),
            _ => return Err(format!("unknown op `{name}`")),
        })
    }

    /// Number of operands.
    pub fn arity(&self) -> usize {
        match self {
            Op::Const(_) | Op::Iota { .. } => 0,
            // A random draw's one operand is its key (see `ir::keyed_seed`).
            Op::RandomUniform { .. } | Op::RandomNormal { .. } => 1,
            Op::Slice { .. } | Op::Pad { .. } | Op::Reverse { .. } => 1,
            Op::Concat { .. } | Op::Gather { .. } | Op::ScatterAdd { .. } => 2,
            Op::Unary(_)
            | Op::Broadcast { .. }
            | Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::OneHot { .. }
            | Op::Cast { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::MaxPool { .. } => 1,
            Op::Binary(_) | Op::Compare(_) | Op::MatMul | Op::MaxPoolGrad { .. } => 2,
            Op::Select => 3,
            Op::Scan { scan, .. } => scan.body.params.len(),
        }
    }

    pub fn kind(&self) -> OpKind {
        match self {
            Op::Const(_) | Op::RandomUniform { .. } | Op::RandomNormal { .. } | Op::Iota { .. } => OpKind::Source,
            // A strided window of the operand's storage.
            Op::Slice { .. } | Op::Reverse { .. } => OpKind::View,
            Op::Pad { .. } | Op::Concat { .. } | Op::Gather { .. } | Op::ScatterAdd { .. } => OpKind::Index,
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast { .. } => OpKind::Elementwise,
            Op::Broadcast { .. } | Op::Reshape { .. } | Op::Transpose { .. } => OpKind::View,
            Op::ReduceSum { .. } | Op::ReduceMax { .. } => OpKind::Reduction,
            Op::MatMul => OpKind::Contraction,
            Op::OneHot { .. } | Op::Im2col { .. } | Op::Col2im { .. } | Op::MaxPool { .. } | Op::MaxPoolGrad { .. } => OpKind::Index,
            Op::Scan { .. } => OpKind::Loop,
        }
    }

    /// Attributes in printing order (`const`'s value is not one: see
    /// [`Op::from_name`]).
    pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
        match self {
            Op::Const(_) | Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::MatMul => vec![],
            Op::Broadcast { shape } | Op::Reshape { shape } => vec![("shape", Attr::Shape(shape.clone()))],
            Op::ReduceSum { axes, keep } | Op::ReduceMax { axes, keep } => {
                vec![("axes", Attr::Axes(axes.clone())), ("keep", Attr::Bool(*keep))]
            }
            Op::Transpose { perm } => vec![("perm", Attr::Axes(perm.clone()))],
            Op::OneHot { depth } => vec![("depth", Attr::Int(*depth as u64))],
            Op::Cast { to } => vec![("to", Attr::DType(*to))],
            Op::RandomUniform { shape, seed } | Op::RandomNormal { shape, seed } => {
                vec![("shape", Attr::Shape(shape.clone())), ("seed", Attr::Int(*seed))]
            }
            Op::Slice { start, stride, shape } => vec![
                ("start", Attr::Axes(start.clone())),
                ("stride", Attr::Axes(stride.clone())),
                ("shape", Attr::Shape(shape.clone())),
            ],
            Op::Pad { low, high, interior } => vec![
                ("low", Attr::Axes(low.clone())),
                ("high", Attr::Axes(high.clone())),
                ("interior", Attr::Axes(interior.clone())),
            ],
            Op::Reverse { axes } => vec![("axes", Attr::Axes(axes.clone()))],
            Op::Concat { axis } | Op::Gather { axis } => vec![("axis", Attr::Int(*axis as u64))],
            Op::ScatterAdd { axis, shape } => vec![("axis", Attr::Int(*axis as u64)), ("shape", Attr::Shape(shape.clone()))],
            Op::Iota { shape, axis } => vec![("shape", Attr::Shape(shape.clone())), ("axis", Attr::Int(*axis as u64))],
            Op::Im2col { window } | Op::MaxPool { window } | Op::MaxPoolGrad { window } => window_attrs(window),
            Op::Col2im { window, size } => {
                let mut a = window_attrs(window);
                a.push(("size", Attr::Axes(size.to_vec())));
                a
            }
            // The body is printed after the instruction (`print_func`).
            Op::Scan { scan, output } => vec![
                ("carries", Attr::Int(scan.carries as u64)),
                ("seqs", Attr::Int(scan.seqs as u64)),
                ("steps", Attr::Int(scan.steps as u64)),
                ("reverse", Attr::Bool(scan.reverse)),
                ("output", Attr::Int(*output as u64)),
            ],
        }
    }

    /// The shapes among the attributes, for rewriting symbolic dims
    /// ([`super::Func::specialize`]).
    pub fn shapes_mut(&mut self) -> Vec<&mut Vec<Dim>> {
        match self {
            Op::Broadcast { shape } | Op::Reshape { shape } => vec![shape],
            Op::RandomUniform { shape, .. } | Op::RandomNormal { shape, .. } => vec![shape],
            Op::Slice { shape, .. } | Op::ScatterAdd { shape, .. } | Op::Iota { shape, .. } => vec![shape],
            Op::Pad { .. } | Op::Reverse { .. } | Op::Concat { .. } | Op::Gather { .. } => vec![],
            Op::Const(_)
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::Transpose { .. }
            | Op::MatMul
            | Op::OneHot { .. }
            | Op::Cast { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::MaxPool { .. }
            | Op::MaxPoolGrad { .. } => vec![],
            // The body's shapes are specialised with it (`Func::specialize`).
            Op::Scan { .. } => vec![],
        }
    }

    /// Operand positions through which the result depends differentiably on
    /// the operands. Ops with none (sign, compare, one_hot, constants, random
    /// draws, casts to i32) stop both activity and gradients.
    pub fn differentiable_args(&self) -> &'static [usize] {
        match self {
            Op::Unary(u) if u.is_differentiable() => &[0],
            Op::Unary(_) => &[],
            Op::Binary(_) | Op::MatMul => &[0, 1],
            // The condition only routes the gradient.
            Op::Select => &[1, 2],
            Op::Broadcast { .. } | Op::ReduceSum { .. } | Op::ReduceMax { .. } | Op::Reshape { .. } | Op::Transpose { .. } => &[0],
            Op::Slice { .. } | Op::Pad { .. } | Op::Reverse { .. } => &[0],
            Op::Concat { .. } => &[0, 1],
            // The ids only route values.
            Op::Gather { .. } => &[0],
            Op::ScatterAdd { .. } => &[1],
            Op::Iota { .. } => &[],
            Op::Im2col { .. } | Op::Col2im { .. } | Op::MaxPool { .. } => &[0],
            // f32 -> f32 is the identity; i32 -> f32 has no f32 operand to reach.
            Op::Cast { to: DType::F32 } => &[0],
            // Linear in `dy`, but its own adjoint (a gather at each window's
            // maximum) has no op: nothing differentiates a gradient twice.
            Op::Cast { to: DType::I32 }
            | Op::Compare(_)
            | Op::OneHot { .. }
            | Op::Const(_)
            | Op::RandomUniform { .. }
            | Op::RandomNormal { .. }
            | Op::MaxPoolGrad { .. } => &[],
            // Every operand may reach an output (the rule in `autodiff`
            // differentiates the body to find out which do).
            Op::Scan { scan, .. } => &ALL_OPERANDS[..scan.body.params.len().min(super::scan::MAX_OPERANDS)],
        }
    }

    /// Operands can be swapped without changing any result bit (for CSE).
    pub fn is_commutative(&self) -> bool {
        match self {
            Op::Binary(b) => b.is_commutative(),
            Op::Compare(c) => c.is_commutative(),
            Op::Const(_)
            | Op::Unary(_)
            | Op::Select
            | Op::Broadcast { .. }
            | Op::ReduceSum { .. }
            | Op::ReduceMax { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::MatMul
            | Op::OneHot { .. }
            | Op::Cast { .. }
            | Op::RandomUniform { .. }
            | Op::RandomNormal { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Reverse { .. }
            | Op::Concat { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::Iota { .. }
            | Op::Im2col { .. }
            | Op::Col2im { .. }
            | Op::MaxPool { .. }
            | Op::MaxPoolGrad { .. }
            | Op::Scan { .. } => false,
        }
    }
}

/// Operand positions `0..n`, for variadic ops' `differentiable_args`.
const ALL_OPERANDS: [usize; super::scan::MAX_OPERANDS] = {
    let mut a = [0; super::scan::MAX_OPERANDS];
    let mut i = 0;
    while i < a.len() {
        a[i] = i;
        i += 1;
    }
    a
};

/// `kernel=[kh, kw], stride=[..], dilation=[..], pad=[top, bottom, left, right]`.
fn window_attrs(w: &Window) -> Vec<(&'static str, Attr)> {
    vec![
        ("kernel", Attr::Axes(w.kernel.to_vec())),
        ("stride", Attr::Axes(w.stride.to_vec())),
        ("dilation", Attr::Axes(w.dilation.to_vec())),
        ("pad", Attr::Axes(vec![w.pad_lo[0], w.pad_hi[0], w.pad_lo[1], w.pad_hi[1]])),
    ]
}

/// A list of exactly `N` integers.
fn fixed<const N: usize>(a: &mut dyn AttrReader, key: &str) -> Result<[usize; N], String> {
    let v = a.axes(key)?;
    v.try_into()
        .map_err(|v: Vec<usize>| format!("attribute `{key}` must list {N} integers, got {}", v.len()))
}

/// The inverse of [`window_attrs`].
fn read_window(a: &mut dyn AttrReader) -> Result<Window, String> {
    let kernel = fixed(a, "kernel")?;
    let stride = fixed(a, "stride")?;
    let dilation = fixed(a, "dilation")?;
    let pad: [usize; 4] = fixed(a, "pad")?;
    Ok(Window {
        kernel,
        stride,
        dilation,
        pad_lo: [pad[0], pad[2]],
        pad_hi: [pad[1], pad[3]],
    })
}
