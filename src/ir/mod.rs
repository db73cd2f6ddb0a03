//! The typed SSA tensor IR: op set, types, functions and a builder.
//!
//! Every value has a static type: a dtype and a shape whose dims are either
//! known integers or named symbols (`B`, the batch). Broadcasting is explicit:
//! elementwise binary ops require identical operand shapes, and the `broadcast`
//! op (NumPy rules) is the only way shapes grow. Scalars are rank-0 tensors.

mod builder;
pub mod interp;
mod op;
pub mod parse;
mod print;
pub mod scalar;
pub mod scan;
mod verify;
pub mod window;

pub use builder::Builder;
pub use op::{Attr, AttrReader, BinaryOp, CmpOp, Op, OpKind, UnaryOp};
pub use parse::parse_func;
pub use print::{op_attrs, print_func};
pub use verify::{reduce_shape, verify};
pub use window::Window;

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
        // Siblings share one scan before and after (`ir::scan`).
        let mut scans: Vec<(std::sync::Arc<scan::Scan>, std::sync::Arc<scan::Scan>)> = vec![];
        for inst in &mut f.insts {
            for shape in inst.op.shapes_mut() {
                *shape = sub(shape);
            }
            if let Op::Scan { scan, .. } = &mut inst.op {
                let done = scans
                    .iter()
                    .find(|(old, _)| std::sync::Arc::ptr_eq(old, scan))
                    .map(|(_, new)| new.clone());
                let new = done.unwrap_or_else(|| {
                    let mut s = (**scan).clone();
                    s.body = scan.body.specialize(bind);
                    let new = std::sync::Arc::new(s);
                    scans.push((scan.clone(), new.clone()));
                    new
                });
                *scan = new;
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

/// The seed of a draw under a runtime key: the compile-time seed itself for
/// key 0 (initialisation, evaluation), else a hash of both. The key is an
/// f32 holding a whole number; it is truncated and saturated like
/// `fcvt_to_uint_sat`, as compiled code reads it.
pub fn keyed_seed(seed: u64, key: f64) -> u64 {
    let k = if key.is_nan() || key <= 0.0 { 0 } else { key as u64 };
    if k == 0 {
        seed
    } else {
        random_bits(seed, k)
    }
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
