//! `ir::scalar` is the one definition of each elementwise op's value: the
//! checker's compile-time numbers, constant folding and both backends
//! agree with it. `sign(0)` used to fold to 1 at compile time (`f64::signum`)
//! while the interpreter and the JIT gave 0.

use ndarray::{ArrayD, IxDyn};
use nnc::ir::{self, interp, scalar, BinaryOp, CmpOp, UnaryOp};

#[test]
fn sign_of_zero_is_zero() {
    assert_eq!(scalar::unary(UnaryOp::Sign, 0.0).to_bits(), 0.0f64.to_bits());
    assert_eq!(scalar::unary(UnaryOp::Sign, -0.0).to_bits(), 0.0f64.to_bits());
    assert_eq!(scalar::unary(UnaryOp::Sign, -3.0), -1.0);
    assert_eq!(scalar::unary(UnaryOp::Sign, 1e-30), 1.0);
    assert!(scalar::unary(UnaryOp::Sign, f64::NAN).is_nan());
    assert_eq!(scalar::fold_unary(UnaryOp::Sign, 0.0), Some(0.0));
}

/// A compile-time `sign(0)` in a model is 0, so `x * sign(0)` is zero.
#[test]
fn checker_folds_sign_of_zero_to_zero() {
    let f = nnc::driver::lower_function(
        "fn f(x: [n]) = x * sign(0) + sign(-0.0) + sign(2) * 0.5",
        "f",
        &[ir::Type::f32(vec![ir::Dim::Known(3)])],
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let x = ArrayD::from_elem(IxDyn(&[3]), 7.0);
    let out = interp::run(&f, &[x]).unwrap();
    assert_eq!(out[0].iter().copied().collect::<Vec<_>>(), vec![0.5; 3], "{}", ir::print_func(&f));
}

/// Constant folding of `sign` over a constant 0 gives what the interpreter
/// computes without folding.
#[test]
fn folding_sign_of_zero_matches_the_interpreter() {
    let text = "func @f() -> f32[2] {\n    v0 = const 0.0 : f32[]\n    v1 = broadcast v0 {shape=[2]} : f32[2]\n    v2 = sign v1 : f32[2]\n    return v2\n}\n";
    let f = ir::parse_func(text).unwrap();
    let folded = nnc::opt::optimize(&f);
    assert!(
        !ir::print_func(&folded).contains("sign"),
        "sign of a constant folds:\n{}",
        ir::print_func(&folded)
    );
    let want = interp::run(&f, &[]).unwrap();
    let got = interp::run(&folded, &[]).unwrap();
    assert_eq!(want, got);
    assert_eq!(want[0].iter().copied().collect::<Vec<_>>(), vec![0.0, 0.0]);
}

/// `max`/`min` propagate NaN and order -0 below +0, whichever operand
/// comes first.
#[test]
fn max_min_conventions() {
    let max = |a, b| scalar::binary(BinaryOp::Max, a, b);
    let min = |a, b| scalar::binary(BinaryOp::Min, a, b);
    assert!(max(f64::NAN, 1.0).is_nan() && max(1.0, f64::NAN).is_nan());
    assert!(min(f64::NAN, 1.0).is_nan() && min(1.0, f64::NAN).is_nan());
    assert_eq!(max(-0.0, 0.0).to_bits(), 0.0f64.to_bits());
    assert_eq!(max(0.0, -0.0).to_bits(), 0.0f64.to_bits());
    assert_eq!(min(-0.0, 0.0).to_bits(), (-0.0f64).to_bits());
    assert_eq!(min(0.0, -0.0).to_bits(), (-0.0f64).to_bits());
    assert!(scalar::compare(CmpOp::Ne, f64::NAN, f64::NAN));
    assert_eq!(scalar::to_i32(-2.7), -2.0);
    assert_eq!(scalar::to_i32(f64::NAN), 0.0);
    assert_eq!(scalar::to_i32(1e20), f64::from(i32::MAX));
}
