//! Snapshots of the IR text of a small model and of its gradient function:
//! they show at a glance what autodiff emits, and catch unintended changes.

use nnc::autodiff::grad_func;
use nnc::ir::{self, BinaryOp, Builder, Dim, Func, Type};

/// `0.5 * sum((relu(x @ w + b) - y)²)` over a symbolic batch `B`.
fn dense_relu_sse() -> Func {
    let batch = Dim::Sym("B".into());
    let mut b = Builder::new("dense_relu_sse");
    let x = b.param("x", Type::f32(vec![batch.clone(), Dim::Known(4)]));
    let w = b.param("w", Type::f32(vec![Dim::Known(4), Dim::Known(3)]));
    let bias = b.param("b", Type::f32(vec![Dim::Known(3)]));
    let y = b.param("y", Type::f32(vec![batch.clone(), Dim::Known(3)]));
    let m = b.matmul(x, w);
    let shape = b.shape(m);
    let bb = b.broadcast(bias, &shape);
    let z = b.add(m, bb);
    let zero = b.fill(0.0, &shape);
    let h = b.binary(BinaryOp::Max, z, zero);
    let d = b.sub(h, y);
    let d2 = b.mul(d, d);
    let sum = b.reduce_sum(d2, vec![0, 1], false);
    let half = b.constant(0.5);
    let loss = b.mul(half, sum);
    let f = b.finish(&[loss]);
    ir::verify(&f).unwrap();
    f
}

#[test]
fn snapshot_dense_relu_sse() {
    insta::assert_snapshot!(ir::print_func(&dense_relu_sse()));
}

#[test]
fn snapshot_dense_relu_sse_vjp() {
    // Gradients for the weights and bias only: x and y get no adjoint code.
    let g = grad_func(&dense_relu_sse(), &[1, 2]);
    ir::verify(&g).unwrap();
    insta::assert_snapshot!(ir::print_func(&g));
}
