//! The typed SSA tensor IR: op set, types, functions and a builder.
//!
//! Every value has a static type: a dtype and a shape whose dims are either
//! known integers or named symbols (`B`, the batch). Broadcasting is explicit:
//! elementwise binary ops require identical operand shapes, and the `broadcast`
//! op (NumPy rules) is the only way shapes grow. Scalars are rank-0 tensors.

mod builder;
pub mod interp;
pub mod parse;
mod print;
mod verify;

pub use builder::Builder;
pub use parse::parse_func;
pub use print::{op_attrs, op_name, print_func};
pub use verify::{reduce_shape, verify};

use std::fmt;

/// Element type. `I32` holds class labels and indices; everything
/// differentiable is `F32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    I32,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
        })
    }
}

/// One dimension of a shape: known, or a symbol bound when the function is
/// specialised to concrete inputs (the batch size).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(usize),
    Sym(String),
}

impl Dim {
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

pub type Shape = Vec<Dim>;

/// Format a shape in surface syntax: `[B, 784]`.
pub fn shape_to_string(shape: &[Dim]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Type {
    pub dtype: DType,
    pub shape: Shape,
}

impl Type {
    pub fn f32(shape: Shape) -> Type {
        Type { dtype: DType::F32, shape }
    }
    pub fn scalar() -> Type {
        Type::f32(vec![])
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, shape_to_string(&self.shape))
    }
}

/// An SSA value: an index into [`Func::types`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub u32);

impl Value {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

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
    /// of (`seed`, `i`), so every backend draws the same numbers.
    RandomUniform {
        shape: Shape,
        seed: u64,
    },
    /// Standard normal draws, Box–Muller over the same counter stream.
    RandomNormal {
        shape: Shape,
        seed: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub result: Value,
    pub op: Op,
    pub args: Vec<Value>,
}

/// A function: parameters are values `0..params.len()`, instructions define
/// the rest in order, `results` lists the returned values.
#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    pub name: String,
    /// Parameter names (for printing and for the runtime to bind by name).
    pub param_names: Vec<String>,
    pub params: Vec<Value>,
    pub insts: Vec<Inst>,
    pub results: Vec<Value>,
    /// Type of every value, indexed by `Value`.
    pub types: Vec<Type>,
}

impl Func {
    pub fn ty(&self, v: Value) -> &Type {
        &self.types[v.index()]
    }
    /// The instruction defining `v`, if it is not a parameter.
    pub fn def(&self, v: Value) -> Option<&Inst> {
        self.insts.iter().find(|i| i.result == v)
    }
    /// The symbols that appear in any type, in first-seen order.
    pub fn symbols(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in &self.types {
            for d in &t.shape {
                if let Dim::Sym(s) = d {
                    if !out.contains(s) {
                        out.push(s.clone());
                    }
                }
            }
        }
        out
    }
    /// Replace symbolic dims by the given sizes everywhere (types and
    /// attributes), e.g. to specialise a step for one batch size.
    pub fn specialize(&self, bind: &dyn Fn(&str) -> Option<usize>) -> Func {
        let sub = |shape: &Shape| -> Shape {
            shape
                .iter()
                .map(|d| match d {
                    Dim::Sym(s) => bind(s).map_or_else(|| d.clone(), Dim::Known),
                    k => k.clone(),
                })
                .collect()
        };
        let mut f = self.clone();
        for t in &mut f.types {
            t.shape = sub(&t.shape);
        }
        for inst in &mut f.insts {
            match &mut inst.op {
                Op::Broadcast { shape } | Op::Reshape { shape } => *shape = sub(shape),
                Op::RandomUniform { shape, .. } | Op::RandomNormal { shape, .. } => *shape = sub(shape),
                _ => {}
            }
        }
        f
    }
}

/// A counter-based generator: a pure hash of (seed, index). Shared by the
/// interpreter, the JIT and parameter initialisation so all agree bit for bit.
pub fn random_bits(seed: u64, index: u64) -> u64 {
    // SplitMix64 finaliser over a mixed key.
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) with 24 bits, exactly representable in f32.
pub fn random_uniform(seed: u64, index: u64) -> f64 {
    (random_bits(seed, index) >> 40) as f64 / (1u64 << 24) as f64
}

/// Standard normal via Box–Muller on two uniform draws of one counter.
pub fn random_normal(seed: u64, index: u64) -> f64 {
    let bits = random_bits(seed, index);
    let u1 = ((bits >> 40) as f64 + 1.0) / ((1u64 << 24) as f64 + 1.0);
    let u2 = ((bits & 0xFF_FFFF) as f64) / (1u64 << 24) as f64;
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
