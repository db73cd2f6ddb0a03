//! The value of every elementwise op on one number: the single definition
//! the interpreter computes with, constant folding (`opt::simplify`) folds
//! with and the checker (`sema`) evaluates compile-time numbers with. The
//! JIT's emitted code (`codegen::emit`) must agree with it; the
//! differential tests compare the two.
//!
//! Conventions where IEEE or libm leave room:
//! - `sign(±0) = +0`, `sign(NaN) = NaN`, else ±1.
//! - `max`/`min` propagate NaN and order `-0 < +0` (Cranelift's `fmax`/`fmin`).
//! - a cast to i32 truncates toward zero and saturates at the i32 range;
//!   NaN becomes 0 (Rust's `as i32`, Cranelift's `fcvt_to_sint_sat`).
//!
//! Folding is narrower than evaluation: [`fold_unary`] and [`fold_binary`]
//! answer only where every backend gives the same f32 bits, so an optimised
//! program never differs from an unoptimised one.

use super::{BinaryOp, CmpOp, UnaryOp};

pub fn unary(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Sign => sign(x),
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Erf => libm::erf(x),
        UnaryOp::StopGradient => x,
    }
}

/// `f64::signum` maps ±0 to ±1; the op maps them to 0.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else if x.is_nan() {
        x
    } else {
        0.0
    }
}

pub fn binary(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => max(a, b),
        BinaryOp::Min => min(a, b),
    }
}

fn max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        // Equal values differ only in the sign of zero: +0 is the larger.
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else {
        a.max(b)
    }
}

fn min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else {
        a.min(b)
    }
}

pub fn compare(op: CmpOp, a: f64, b: f64) -> bool {
    match op {
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
    }
}

/// A cast from f32 to i32, as the integral f64 that holds it.
pub fn to_i32(x: f64) -> f64 {
    (x as i32) as f64
}

/// `op(x)` on an f32 constant, when every backend computes it exactly
/// (correctly rounded). Transcendentals are left alone: each backend has
/// its own approximation.
pub fn fold_unary(op: UnaryOp, x: f32) -> Option<f32> {
    match op {
        // An f64 square root of an f32 rounds to the correctly rounded f32 one.
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sqrt | UnaryOp::Sign | UnaryOp::StopGradient => Some(unary(op, f64::from(x)) as f32),
        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Erf => None,
    }
}

/// `a op b` on f32 constants, when every backend computes it bit-exactly.
/// An f64 `+ - * /` of two f32s rounded to f32 is the correctly rounded f32
/// result (53 ≥ 2·24 + 2 bits), so the four arithmetic ops fold.
pub fn fold_binary(op: BinaryOp, a: f32, b: f32) -> Option<f32> {
    let (x, y) = (f64::from(a), f64::from(b));
    match op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => Some(binary(op, x, y) as f32),
        // NaN and signed-zero handling of max/min is left to the backends'
        // instructions rather than baked in at compile time.
        BinaryOp::Max | BinaryOp::Min if a.is_nan() || b.is_nan() || (a == 0.0 && b == 0.0) => None,
        BinaryOp::Max | BinaryOp::Min => Some(binary(op, x, y) as f32),
        BinaryOp::Pow => None,
    }
}
