//! Gradient checks: every primitive's VJP (`autodiff::grad_func`, run in the
//! interpreter) against central finite differences in f64, plus the
//! interpreter itself on small hand-computed examples.

use ndarray::{array, ArrayD, IxDyn};
use nnc::autodiff::{grad, grad_func};
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, BinaryOp, Builder, CmpOp, DType, Dim, Func, Op, Type, UnaryOp, Value};

// ---------------------------------------------------------------- helpers

fn k(dims: &[usize]) -> Vec<Dim> {
    dims.iter().map(|&d| Dim::Known(d)).collect()
}

fn f32t(dims: &[usize]) -> Type {
    Type::f32(k(dims))
}

fn i32t(dims: &[usize]) -> Type {
    Type {
        dtype: DType::I32,
        shape: k(dims),
    }
}

/// Deterministic standard-normal test data (no RNG dependency needed).
fn normal(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let data = (0..n as u64).map(|i| ir::random_normal(seed, i)).collect();
    ArrayD::from_shape_vec(IxDyn(dims), data).unwrap()
}

/// Values in [lo, hi): for ops only defined (or only smooth) on a range.
fn uniform(dims: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let n: usize = dims.iter().product();
    let data = (0..n as u64).map(|i| lo + (hi - lo) * ir::random_uniform(seed, i)).collect();
    ArrayD::from_shape_vec(IxDyn(dims), data).unwrap()
}

/// Normal draws pushed at least 0.2 away from zero, where abs/sign kink.
fn away_from_zero(dims: &[usize], seed: u64) -> Tensor {
    normal(dims, seed).mapv(|v| if v >= 0.0 { v + 0.2 } else { v - 0.2 })
}

/// Build `sum(body(params) * r)` with `r` a fixed random_normal in the IR:
/// a scalar loss whose gradient exercises every element of `body`'s result.
fn loss_fn(name: &str, params: &[Type], body: impl FnOnce(&mut Builder, &[Value]) -> Value) -> Func {
    let mut b = Builder::new(name);
    let ps: Vec<Value> = params
        .iter()
        .enumerate()
        .map(|(i, t)| b.param(format!("p{i}"), t.clone()))
        .collect();
    let v = body(&mut b, &ps);
    let shape = b.shape(v);
    let key = b.constant(0.0);
    let r = b.push(
        Op::RandomNormal {
            shape: shape.clone(),
            seed: 1234,
        },
        &[key],
    );
    let prod = b.mul(v, r);
    let loss = b.reduce_sum(prod, (0..shape.len()).collect(), false);
    let f = b.finish(&[loss]);
    ir::verify(&f).unwrap();
    f
}

fn scalar_of(f: &Func, args: &[Tensor]) -> f64 {
    let out = run(f, args).unwrap();
    assert_eq!(out[0].ndim(), 0, "loss must be a scalar");
    out[0].iter().copied().next().unwrap()
}

/// Compare `grad_func(f, wrt)` in the interpreter with central differences
/// `(f(x+h) - f(x-h)) / 2h` for every element of every `wrt` argument.
fn check_grad(f: &Func, args: &[Tensor], wrt: &[usize]) {
    let vjp = grad_func(f, wrt);
    ir::verify(&vjp).unwrap_or_else(|e| panic!("{e}\n{}", ir::print_func(&vjp)));
    assert_eq!(vjp.name, format!("{}.vjp", f.name));
    let out = run(&vjp, args).unwrap();
    assert_eq!(out.len(), 1 + wrt.len());
    let loss = scalar_of(f, args);
    assert!((out[0].sum() - loss).abs() <= 1e-12 * loss.abs().max(1.0), "vjp changed the loss");
    let h = 1e-6;
    for (slot, &p) in wrt.iter().enumerate() {
        let analytic = &out[1 + slot];
        assert_eq!(analytic.shape(), args[p].shape(), "gradient of param {p} has the wrong shape");
        let mut shifted = args.to_vec();
        for idx in 0..args[p].len() {
            let x0 = args[p].as_slice().unwrap()[idx];
            shifted[p].as_slice_mut().unwrap()[idx] = x0 + h;
            let plus = scalar_of(f, &shifted);
            shifted[p].as_slice_mut().unwrap()[idx] = x0 - h;
            let minus = scalar_of(f, &shifted);
            shifted[p].as_slice_mut().unwrap()[idx] = x0;
            let numeric = (plus - minus) / (2.0 * h);
            let got = analytic.as_slice().unwrap()[idx];
            let tol = 1e-6 * numeric.abs().max(got.abs()).max(1.0);
            assert!(
                (got - numeric).abs() <= tol,
                "@{}: d/d p{p}[{idx}]: autodiff {got}, finite difference {numeric}\n{}",
                f.name,
                ir::print_func(&vjp)
            );
        }
    }
}

fn check_unary(op: UnaryOp, x: Tensor) {
    let dims = x.shape().to_vec();
    let f = loss_fn(&format!("{op:?}"), &[f32t(&dims)], |b, p| b.unary(op, p[0]));
    check_grad(&f, &[x], &[0]);
}

fn check_binary(op: BinaryOp, a: Tensor, bx: Tensor) {
    let dims = a.shape().to_vec();
    let f = loss_fn(&format!("{op:?}"), &[f32t(&dims), f32t(&dims)], |b, p| b.binary(op, p[0], p[1]));
    check_grad(&f, &[a.clone(), bx.clone()], &[0, 1]);
    // Each operand alone too: exercises the inactive-operand paths.
    check_grad(&f, &[a.clone(), bx.clone()], &[0]);
    check_grad(&f, &[a, bx], &[1]);
}

fn run1(f: &Func, args: &[Tensor]) -> Tensor {
    run(f, args).unwrap().remove(0)
}

/// A one-instruction function `op(params)` for interpreter tests.
fn single(op: Op, params: &[Type]) -> Func {
    let mut b = Builder::new("single");
    let ps: Vec<Value> = params
        .iter()
        .enumerate()
        .map(|(i, t)| b.param(format!("p{i}"), t.clone()))
        .collect();
    let v = b.push(op, &ps);
    b.finish(&[v])
}

// ---------------------------------------------------------------- unary

#[test]
fn grad_neg() {
    check_unary(UnaryOp::Neg, normal(&[3, 4], 1));
}

#[test]
fn grad_exp() {
    check_unary(UnaryOp::Exp, normal(&[3, 4], 2));
}

#[test]
fn grad_log() {
    check_unary(UnaryOp::Log, uniform(&[3, 4], 3, 0.3, 3.0));
}

#[test]
fn grad_sqrt() {
    check_unary(UnaryOp::Sqrt, uniform(&[3, 4], 4, 0.3, 3.0));
}

#[test]
fn grad_tanh() {
    check_unary(UnaryOp::Tanh, normal(&[3, 4], 5));
}

#[test]
fn grad_abs() {
    check_unary(UnaryOp::Abs, away_from_zero(&[3, 4], 6));
}

#[test]
fn grad_sign_is_zero() {
    let f = loss_fn("sign", &[f32t(&[3, 4])], |b, p| {
        let s = b.unary(UnaryOp::Sign, p[0]);
        b.add(s, p[0])
    });
    check_grad(&f, &[away_from_zero(&[3, 4], 7)], &[0]);
}

// ---------------------------------------------------------------- binary

#[test]
fn grad_add() {
    check_binary(BinaryOp::Add, normal(&[2, 3], 10), normal(&[2, 3], 11));
}

#[test]
fn grad_sub() {
    check_binary(BinaryOp::Sub, normal(&[2, 3], 12), normal(&[2, 3], 13));
}

#[test]
fn grad_mul() {
    check_binary(BinaryOp::Mul, normal(&[2, 3], 14), normal(&[2, 3], 15));
}

#[test]
fn grad_div() {
    check_binary(BinaryOp::Div, normal(&[2, 3], 16), away_from_zero(&[2, 3], 17));
}

#[test]
fn grad_pow() {
    check_binary(BinaryOp::Pow, uniform(&[2, 3], 18, 0.3, 2.0), normal(&[2, 3], 19));
}

#[test]
fn grad_pow_at_zero_base_is_finite() {
    // d(0^b)/db is taken as 0 and d(0^2)/da = 0; neither may be NaN.
    let f = loss_fn("pow0", &[f32t(&[2]), f32t(&[2])], |b, p| b.binary(BinaryOp::Pow, p[0], p[1]));
    let vjp = grad_func(&f, &[0, 1]);
    let out = run(&vjp, &[array![0.0, 0.0].into_dyn(), array![2.0, 3.0].into_dyn()]).unwrap();
    assert_eq!(out[1], array![0.0, 0.0].into_dyn());
    assert_eq!(out[2], array![0.0, 0.0].into_dyn());
}

/// Operands differing by at least 0.1 everywhere, so max/min have no ties
/// within the finite-difference step.
fn untied(seed: u64) -> (Tensor, Tensor) {
    let a = normal(&[3, 4], seed);
    let gap = away_from_zero(&[3, 4], seed + 1).mapv(|g| g * 0.5);
    let b = &a + &gap;
    (a, b)
}

#[test]
fn grad_max() {
    let (a, b) = untied(20);
    check_binary(BinaryOp::Max, a, b);
}

#[test]
fn grad_min() {
    let (a, b) = untied(22);
    check_binary(BinaryOp::Min, a, b);
}

#[test]
fn grad_max_tie_goes_to_first_operand() {
    // A plain sum (no random weights) so the raw gradient is readable.
    let mut b = Builder::new("tie");
    let x = b.param("x", f32t(&[3]));
    let y = b.param("y", f32t(&[3]));
    let m = b.binary(BinaryOp::Max, x, y);
    let s = b.reduce_sum(m, vec![0], false);
    let f = b.finish(&[s]);
    let out = run(
        &grad_func(&f, &[0, 1]),
        &[array![1.0, 2.0, 3.0].into_dyn(), array![0.0, 2.0, 4.0].into_dyn()],
    )
    .unwrap();
    assert_eq!(out[1], array![1.0, 1.0, 0.0].into_dyn());
    assert_eq!(out[2], array![0.0, 0.0, 1.0].into_dyn());
}

// ---------------------------------------------------------------- compare / select

#[test]
fn grad_compare_is_zero() {
    for op in [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne] {
        let (a, bx) = untied(30);
        let f = loss_fn("cmp", &[f32t(&[3, 4]), f32t(&[3, 4])], |b, p| {
            let c = b.compare(op, p[0], p[1]);
            let ab = b.mul(p[0], p[1]);
            b.add(c, ab)
        });
        check_grad(&f, &[a, bx], &[0, 1]);
    }
}

#[test]
fn grad_select() {
    // The condition depends on the differentiated inputs themselves.
    let (a, bx) = untied(31);
    let f = loss_fn("select", &[f32t(&[3, 4]), f32t(&[3, 4])], |b, p| {
        let c = b.compare(CmpOp::Gt, p[0], p[1]);
        let ea = b.unary(UnaryOp::Exp, p[0]);
        let tb = b.unary(UnaryOp::Tanh, p[1]);
        b.select(c, ea, tb)
    });
    check_grad(&f, &[a, bx], &[0, 1]);
}

#[test]
fn grad_select_with_given_mask() {
    let mask = uniform(&[2, 5], 32, 0.0, 1.0).mapv(|u| if u < 0.5 { 0.0 } else { 1.0 });
    let f = loss_fn("select_mask", &[f32t(&[2, 5]), f32t(&[2, 5]), f32t(&[2, 5])], |b, p| {
        b.select(p[0], p[1], p[2])
    });
    check_grad(&f, &[mask, normal(&[2, 5], 33), normal(&[2, 5], 34)], &[1, 2]);
}

// ---------------------------------------------------------------- shapes

fn check_broadcast(from: &[usize], to: &[usize], seed: u64) {
    let f = loss_fn("broadcast", &[f32t(from)], |b, p| {
        let e = b.unary(UnaryOp::Exp, p[0]); // non-linear, so fd is meaningful
        b.broadcast(e, &k(to))
    });
    check_grad(&f, &[normal(from, seed)], &[0]);
}

#[test]
fn grad_broadcast() {
    check_broadcast(&[3], &[2, 4, 3], 40);
    check_broadcast(&[2, 1, 3], &[4, 2, 5, 3], 41);
    check_broadcast(&[], &[2, 3], 42);
    check_broadcast(&[3, 1], &[2, 3, 4], 43);
    check_broadcast(&[1, 1], &[1, 4], 44);
}

#[test]
fn grad_broadcast_symbolic_batch() {
    let mut b = Builder::new("bias");
    let x = b.param("x", Type::f32(vec![Dim::Sym("B".into()), Dim::Known(3)]));
    let bias = b.param("bias", f32t(&[3]));
    let shape = b.shape(x);
    let bb = b.broadcast(bias, &shape);
    let y = b.add(x, bb);
    let t = b.unary(UnaryOp::Tanh, y);
    let loss = b.reduce_sum(t, vec![0, 1], false);
    let f = b.finish(&[loss]);
    check_grad(&f, &[normal(&[5, 3], 45), normal(&[3], 46)], &[0, 1]);
}

fn check_reduce(max: bool, dims: &[usize], axes: Vec<usize>, keep: bool, seed: u64) {
    let f = loss_fn("reduce", &[f32t(dims)], |b, p| {
        let sq = b.mul(p[0], p[0]);
        if max {
            b.reduce_max(sq, axes, keep)
        } else {
            b.reduce_sum(sq, axes, keep)
        }
    });
    check_grad(&f, &[normal(dims, seed)], &[0]);
}

#[test]
fn grad_reduce_sum() {
    check_reduce(false, &[2, 3, 4], vec![1], false, 50);
    check_reduce(false, &[2, 3, 4], vec![0, 2], true, 51);
    check_reduce(false, &[2, 3, 4], vec![0, 1, 2], false, 52);
    check_reduce(false, &[2, 3, 4], vec![2], true, 53);
    check_reduce(false, &[2, 3, 4], vec![0, 1], false, 58);
}

#[test]
fn grad_reduce_max() {
    // Random normal draws (squared) are distinct: no ties.
    check_reduce(true, &[2, 3, 4], vec![1], false, 54);
    check_reduce(true, &[2, 3, 4], vec![0, 2], true, 55);
    check_reduce(true, &[2, 3, 4], vec![0, 1, 2], false, 56);
    check_reduce(true, &[2, 3, 4], vec![2], true, 57);
    check_reduce(true, &[2, 3, 4], vec![0, 1], false, 59);
}

#[test]
fn grad_reduce_max_ties_all_get_gradient() {
    let mut b = Builder::new("ties");
    let x = b.param("x", f32t(&[4]));
    let m = b.reduce_max(x, vec![0], false);
    let f = b.finish(&[m]);
    let out = run(&grad_func(&f, &[0]), &[array![1.0, 3.0, 3.0, 2.0].into_dyn()]).unwrap();
    assert_eq!(out[1], array![0.0, 1.0, 1.0, 0.0].into_dyn());
}

#[test]
fn grad_reshape() {
    for (from, to) in [(vec![2, 3, 4], vec![6, 4]), (vec![4, 6], vec![2, 2, 6]), (vec![5], vec![1, 5, 1])] {
        let f = loss_fn("reshape", &[f32t(&from)], |b, p| {
            let e = b.unary(UnaryOp::Tanh, p[0]);
            b.reshape(e, &k(&to))
        });
        check_grad(&f, &[normal(&from, 60)], &[0]);
    }
}

#[test]
fn grad_transpose() {
    for perm in [vec![2, 0, 1], vec![1, 0, 2], vec![2, 1, 0]] {
        let f = loss_fn("transpose", &[f32t(&[2, 3, 4])], |b, p| {
            let e = b.mul(p[0], p[0]);
            b.transpose(e, perm)
        });
        check_grad(&f, &[normal(&[2, 3, 4], 61)], &[0]);
    }
}

fn check_matmul(a: &[usize], bd: &[usize], seed: u64) {
    let f = loss_fn("matmul", &[f32t(a), f32t(bd)], |b, p| b.matmul(p[0], p[1]));
    let args = [normal(a, seed), normal(bd, seed + 1)];
    check_grad(&f, &args, &[0, 1]);
    check_grad(&f, &args, &[1]);
}

#[test]
fn grad_matmul() {
    check_matmul(&[3, 4], &[4, 5], 70);
    check_matmul(&[1, 4], &[4, 1], 72);
}

#[test]
fn grad_matmul_batched() {
    check_matmul(&[2, 3, 4], &[2, 4, 5], 74);
    check_matmul(&[2, 2, 3, 2], &[2, 2, 2, 3], 76);
}

#[test]
fn grad_matmul_same_operand_twice() {
    // x @ x: both operand adjoints land on one value and must be summed.
    let f = loss_fn("square_matrix", &[f32t(&[3, 3])], |b, p| b.matmul(p[0], p[0]));
    check_grad(&f, &[normal(&[3, 3], 78)], &[0]);
}

// ---------------------------------------------------------------- no-gradient ops

#[test]
fn grad_one_hot_routes_to_the_labelled_column() {
    let f = loss_fn("one_hot", &[i32t(&[4]), f32t(&[4, 3])], |b, p| {
        let oh = b.push(Op::OneHot { depth: 3 }, &[p[0]]);
        let e = b.unary(UnaryOp::Exp, p[1]);
        b.mul(oh, e)
    });
    let labels = array![2.0, 0.0, 1.0, 2.0].into_dyn();
    check_grad(&f, &[labels.clone(), normal(&[4, 3], 80)], &[1]);
    // The labels themselves are i32: their "gradient" is zeros of type i32.
    let vjp = grad_func(&f, &[0]);
    assert_eq!(vjp.ty(vjp.results[1]), &i32t(&[4]));
    assert_eq!(run(&vjp, &[labels, normal(&[4, 3], 80)]).unwrap()[1], Tensor::zeros(IxDyn(&[4])));
}

#[test]
fn grad_cast_roundtrip_is_piecewise_constant() {
    // x * f32(i32(x)): the truncation has zero derivative off the integers.
    let f = loss_fn("cast", &[f32t(&[3, 4])], |b, p| {
        let i = b.cast(p[0], DType::I32);
        let back = b.cast(i, DType::F32);
        b.mul(p[0], back)
    });
    let x = normal(&[3, 4], 81).mapv(|v| 3.0 * v);
    assert!(x.iter().all(|v| (v - v.round()).abs() > 1e-3), "test input too close to an integer");
    check_grad(&f, &[x], &[0]);
}

#[test]
fn grad_identity_cast_passes_through() {
    let f = loss_fn("cast_f32", &[f32t(&[3])], |b, p| {
        let e = b.unary(UnaryOp::Exp, p[0]);
        b.push(Op::Cast { to: DType::F32 }, &[e])
    });
    check_grad(&f, &[normal(&[3], 82)], &[0]);
}

#[test]
fn grad_random_and_const() {
    let f = loss_fn("random", &[f32t(&[3, 4])], |b, p| {
        let key = b.constant(0.0);
        let u = b.push(
            Op::RandomUniform {
                shape: k(&[3, 4]),
                seed: 7,
            },
            &[key],
        );
        let key = b.constant(0.0);
        let n = b.push(
            Op::RandomNormal {
                shape: k(&[3, 4]),
                seed: 8,
            },
            &[key],
        );
        let c = b.fill(2.5, &k(&[3, 4]));
        let xu = b.mul(p[0], u);
        let xx = b.mul(p[0], p[0]);
        let xxn = b.mul(xx, n);
        let s = b.add(xu, xxn);
        b.mul(s, c)
    });
    check_grad(&f, &[normal(&[3, 4], 83)], &[0]);
}

// ---------------------------------------------------------------- whole programs

#[test]
fn grad_value_used_many_times() {
    let f = loss_fn("reuse", &[f32t(&[5])], |b, p| {
        let x = p[0];
        let xx = b.mul(x, x);
        let e = b.unary(UnaryOp::Exp, x);
        let t = b.add(xx, e);
        let tx = b.div(t, x);
        b.sub(tx, x)
    });
    check_grad(&f, &[away_from_zero(&[5], 90)], &[0]);
}

/// relu(x @ w1 + b1) @ w2 + b2, squared error against `y`: every param.
fn mlp() -> Func {
    let bsym = || Dim::Sym("B".into());
    let mut b = Builder::new("mlp");
    let x = b.param("x", Type::f32(vec![bsym(), Dim::Known(3)]));
    let y = b.param("y", Type::f32(vec![bsym(), Dim::Known(2)]));
    let w1 = b.param("w1", f32t(&[3, 8]));
    let b1 = b.param("b1", f32t(&[8]));
    let w2 = b.param("w2", f32t(&[8, 2]));
    let b2 = b.param("b2", f32t(&[2]));
    let dense = |b: &mut Builder, x: Value, w: Value, bias: Value| {
        let m = b.matmul(x, w);
        let shape = b.shape(m);
        let bb = b.broadcast(bias, &shape);
        b.add(m, bb)
    };
    let h = dense(&mut b, x, w1, b1);
    let zero = b.fill(0.0, &b.shape(h));
    let h = b.binary(BinaryOp::Max, h, zero);
    let o = dense(&mut b, h, w2, b2);
    let d = b.sub(o, y);
    let d2 = b.mul(d, d);
    let loss = b.reduce_sum(d2, vec![0, 1], false);
    b.finish(&[loss])
}

fn mlp_params(seed: u64) -> Vec<Tensor> {
    vec![
        normal(&[3, 8], seed),
        normal(&[8], seed + 1).mapv(|v| v * 0.1),
        normal(&[8, 2], seed + 2),
        normal(&[2], seed + 3),
    ]
}

#[test]
fn grad_mlp_all_params() {
    let mut args = vec![normal(&[6, 3], 100), normal(&[6, 2], 101)];
    args.extend(mlp_params(102));
    check_grad(&mlp(), &args, &[0, 2, 3, 4, 5]);
}

#[test]
fn interp_trains_an_mlp() {
    // 1,800 samples of y = (sin-free) smooth target; gradient descent through
    // grad_func must cut the loss substantially.
    let n = 1800;
    let x = uniform(&[n, 3], 110, -1.0, 1.0);
    let mut y = ArrayD::zeros(IxDyn(&[n, 2]));
    for i in 0..n {
        let (a, b, c) = (x[[i, 0]], x[[i, 1]], x[[i, 2]]);
        y[[i, 0]] = a * b + c;
        y[[i, 1]] = (a - c).abs();
    }
    let f = mlp();
    let vjp = grad_func(&f, &[2, 3, 4, 5]);
    let mut params = mlp_params(111).into_iter().map(|p| p * 0.5).collect::<Vec<_>>();
    let lr = 0.2 / n as f64;
    let mut losses = vec![];
    for _ in 0..150 {
        let mut args = vec![x.clone(), y.clone()];
        args.extend(params.iter().cloned());
        let out = run(&vjp, &args).unwrap();
        losses.push(out[0].sum());
        for (p, g) in params.iter_mut().zip(&out[1..]) {
            p.scaled_add(-lr, g);
        }
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.3 * first, "loss went from {first} to {last}");
}

#[test]
fn wrt_not_used_gets_zeros() {
    let f = loss_fn("unused", &[f32t(&[3]), f32t(&[2, 2])], |b, p| b.unary(UnaryOp::Exp, p[0]));
    check_grad(&f, &[normal(&[3], 120), normal(&[2, 2], 121)], &[0, 1]);
    let out = run(&grad_func(&f, &[1]), &[normal(&[3], 120), normal(&[2, 2], 121)]).unwrap();
    assert_eq!(out[1], Tensor::zeros(IxDyn(&[2, 2])));
}

#[test]
fn inactive_values_get_no_adjoint_code() {
    // loss = sum(x * r) + sum(tanh(tanh(y))): d/dx must not touch the tanh chain.
    let mut b = Builder::new("activity");
    let x = b.param("x", f32t(&[3]));
    let y = b.param("y", f32t(&[3]));
    let t1 = b.unary(UnaryOp::Tanh, y);
    let t2 = b.unary(UnaryOp::Tanh, t1);
    let s = b.add(x, t2);
    let loss = b.reduce_sum(s, vec![0], false);
    let f = b.finish(&[loss]);
    let reads_tanh = |g: &Func| g.insts[f.insts.len()..].iter().any(|i| i.args.iter().any(|a| *a == t1 || *a == t2));
    let only_x = grad_func(&f, &[0]);
    let both = grad_func(&f, &[0, 1]);
    assert!(!reads_tanh(&only_x), "{}", ir::print_func(&only_x));
    assert!(reads_tanh(&both), "{}", ir::print_func(&both));
    check_grad(&f, &[normal(&[3], 130), normal(&[3], 131)], &[0, 1]);
}

#[test]
fn grad_on_builder_returns_gradient_of_intermediate() {
    // grad w.r.t. an intermediate value h = exp(x): d sum(h*h) / dh = 2h.
    let mut b = Builder::new("mid");
    let x = b.param("x", f32t(&[3]));
    let h = b.unary(UnaryOp::Exp, x);
    let hh = b.mul(h, h);
    let loss = b.reduce_sum(hh, vec![0], false);
    let g = grad(&mut b, loss, &[h, x]);
    let f = b.finish(&[g[0], g[1], h]);
    ir::verify(&f).unwrap();
    let out = run(&f, &[array![0.0, 1.0, -1.0].into_dyn()]).unwrap();
    let two_h = out[2].mapv(|v| 2.0 * v);
    assert!((&out[0] - &two_h).iter().all(|d| d.abs() < 1e-12));
    // d/dx = 2h * h.
    assert!((&out[1] - &(&two_h * &out[2])).iter().all(|d| d.abs() < 1e-12));
}

// ---------------------------------------------------------------- interpreter

#[test]
fn interp_broadcast() {
    let f = single(Op::Broadcast { shape: k(&[2, 3]) }, &[f32t(&[2, 1])]);
    assert_eq!(
        run1(&f, &[array![[1.0], [2.0]].into_dyn()]),
        array![[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]].into_dyn()
    );
    let f = single(Op::Broadcast { shape: k(&[2, 3]) }, &[f32t(&[3])]);
    assert_eq!(
        run1(&f, &[array![1.0, 2.0, 3.0].into_dyn()]),
        array![[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]].into_dyn()
    );
}

#[test]
fn interp_reduce() {
    let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
    let sum_keep = single(Op::ReduceSum { axes: vec![1], keep: true }, &[f32t(&[2, 3])]);
    assert_eq!(run1(&sum_keep, std::slice::from_ref(&x)), array![[6.0], [15.0]].into_dyn());
    let sum0 = single(
        Op::ReduceSum {
            axes: vec![0],
            keep: false,
        },
        &[f32t(&[2, 3])],
    );
    assert_eq!(run1(&sum0, std::slice::from_ref(&x)), array![5.0, 7.0, 9.0].into_dyn());
    let max_all = single(
        Op::ReduceMax {
            axes: vec![0, 1],
            keep: true,
        },
        &[f32t(&[2, 3])],
    );
    assert_eq!(run1(&max_all, std::slice::from_ref(&x)), array![[6.0]].into_dyn());
    let max1 = single(
        Op::ReduceMax {
            axes: vec![1],
            keep: false,
        },
        &[f32t(&[2, 3])],
    );
    assert_eq!(run1(&max1, &[-x]), array![-1.0, -4.0].into_dyn());
}

#[test]
fn interp_transpose_and_reshape_order() {
    let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
    let mut b = Builder::new("t");
    let p = b.param("x", f32t(&[2, 3]));
    let t = b.transpose(p, vec![1, 0]);
    let r = b.reshape(t, &k(&[6]));
    let f = b.finish(&[t, r]);
    let out = run(&f, &[x]).unwrap();
    assert_eq!(out[0], array![[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]].into_dyn());
    // Reshape reads the transposed value in its logical row-major order.
    assert_eq!(out[1], array![1.0, 4.0, 2.0, 5.0, 3.0, 6.0].into_dyn());
    assert!(out[0].is_standard_layout());

    let x3 = normal(&[2, 3, 4], 140);
    let f = single(Op::Transpose { perm: vec![1, 2, 0] }, &[f32t(&[2, 3, 4])]);
    let y = run1(&f, std::slice::from_ref(&x3));
    assert_eq!(y.shape(), &[3, 4, 2]);
    for (i, j, l) in [(0, 0, 0), (2, 3, 1), (1, 2, 0)] {
        assert_eq!(y[[i, j, l]], x3[[l, i, j]]);
    }
}

#[test]
fn interp_matmul_batched() {
    let a = array![[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]].into_dyn();
    let b = array![[[5.0, 6.0], [7.0, 8.0]], [[2.0, 3.0], [4.0, 5.0]]].into_dyn();
    let f = single(Op::MatMul, &[f32t(&[2, 2, 2]), f32t(&[2, 2, 2])]);
    let want = array![[[19.0, 22.0], [43.0, 50.0]], [[4.0, 5.0], [2.0, 3.0]]].into_dyn();
    assert_eq!(run1(&f, &[a, b]), want);
    let f = single(Op::MatMul, &[f32t(&[1, 3]), f32t(&[3, 2])]);
    let out = run1(
        &f,
        &[
            array![[1.0, 2.0, 3.0]].into_dyn(),
            array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]].into_dyn(),
        ],
    );
    assert_eq!(out, array![[4.0, 5.0]].into_dyn());
}

#[test]
fn interp_one_hot() {
    let f = single(Op::OneHot { depth: 3 }, &[i32t(&[2, 2])]);
    let out = run1(&f, &[array![[0.0, 2.0], [1.0, 5.0]].into_dyn()]);
    let want = array![[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]].into_dyn();
    assert_eq!(out, want);
    // Negative labels (padding) are all-zero rows too.
    let f = single(Op::OneHot { depth: 2 }, &[i32t(&[1])]);
    assert_eq!(run1(&f, &[array![-1.0].into_dyn()]), array![[0.0, 0.0]].into_dyn());
}

#[test]
fn interp_random_is_deterministic() {
    let key = |k: f64| ArrayD::from_elem(IxDyn(&[]), k);
    let scalar = Type::scalar();
    let u = single(
        Op::RandomUniform {
            shape: k(&[4, 5]),
            seed: 3,
        },
        std::slice::from_ref(&scalar),
    );
    let a = run1(&u, &[key(0.0)]);
    assert_eq!(a, run1(&u, &[key(0.0)]));
    for (i, &v) in a.iter().enumerate() {
        assert_eq!(v, ir::random_uniform(3, i as u64));
        assert!((0.0..1.0).contains(&v));
    }
    // Another key, another stream (and the same one again for that key).
    let keyed = run1(&u, &[key(7.0)]);
    assert_ne!(a, keyed);
    assert_eq!(keyed, run1(&u, &[key(7.0)]));
    assert_eq!(keyed[[0, 1]], ir::random_uniform(ir::keyed_seed(3, 7.0), 1));
    let other = single(
        Op::RandomUniform {
            shape: k(&[4, 5]),
            seed: 4,
        },
        std::slice::from_ref(&scalar),
    );
    assert_ne!(a, run1(&other, &[key(0.0)]));
    let n = single(
        Op::RandomNormal {
            shape: k(&[100, 100]),
            seed: 5,
        },
        std::slice::from_ref(&scalar),
    );
    let z = run1(&n, &[key(0.0)]);
    assert_eq!(z[[1, 2]], ir::random_normal(5, 102));
    let mean = z.mean().unwrap();
    let var = z.mapv(|v| (v - mean) * (v - mean)).mean().unwrap();
    assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "mean {mean}, var {var}");
}

#[test]
fn interp_elementwise_semantics() {
    let x = array![-1.7, 0.0, 1.7, 2.0].into_dyn();
    let sign = single(Op::Unary(UnaryOp::Sign), &[f32t(&[4])]);
    assert_eq!(run1(&sign, std::slice::from_ref(&x)), array![-1.0, 0.0, 1.0, 1.0].into_dyn());
    let cast = single(Op::Cast { to: DType::I32 }, &[f32t(&[4])]);
    assert_eq!(run1(&cast, std::slice::from_ref(&x)), array![-1.0, 0.0, 1.0, 2.0].into_dyn());
    let lt = single(Op::Compare(CmpOp::Lt), &[f32t(&[4]), f32t(&[4])]);
    assert_eq!(
        run1(&lt, &[x.clone(), array![0.0, 0.0, 2.0, 2.0].into_dyn()]),
        array![1.0, 0.0, 1.0, 0.0].into_dyn()
    );
    let sel = single(Op::Select, &[f32t(&[4]), f32t(&[4]), f32t(&[4])]);
    let out = run1(&sel, &[array![1.0, 0.0, -2.0, 0.0].into_dyn(), x.clone(), -&x]);
    assert_eq!(out, array![-1.7, 0.0, 1.7, -2.0].into_dyn());
    let pow = single(Op::Binary(BinaryOp::Pow), &[f32t(&[2]), f32t(&[2])]);
    assert_eq!(
        run1(&pow, &[array![2.0, 9.0].into_dyn(), array![3.0, 0.5].into_dyn()]),
        array![8.0, 3.0].into_dyn()
    );
    let max = single(Op::Binary(BinaryOp::Max), &[f32t(&[2]), f32t(&[2])]);
    let m = run1(&max, &[array![1.0, f64::NAN].into_dyn(), array![2.0, 0.0].into_dyn()]);
    assert_eq!(m[0], 2.0);
    assert!(m[1].is_nan(), "max propagates NaN");
}

#[test]
fn interp_binds_symbols_and_reports_bad_args() {
    let mut b = Builder::new("sym");
    let x = b.param("x", Type::f32(vec![Dim::Sym("B".into()), Dim::Known(2)]));
    let y = b.param(
        "labels",
        Type {
            dtype: DType::I32,
            shape: vec![Dim::Sym("B".into())],
        },
    );
    let key = b.constant(0.0);
    let r = b.push(
        Op::RandomUniform {
            shape: vec![Dim::Sym("B".into()), Dim::Known(2)],
            seed: 1,
        },
        &[key],
    );
    let s = b.add(x, r);
    let f = b.finish(&[s, y]);
    let out = run(&f, &[normal(&[3, 2], 1), array![0.0, 1.0, 2.0].into_dyn()]).unwrap();
    assert_eq!(out[0].shape(), &[3, 2]);

    let err = |args: &[Tensor]| run(&f, args).unwrap_err();
    assert!(err(&[normal(&[3, 2], 1)]).contains("takes 2 arguments"));
    let e = err(&[normal(&[3], 1), array![0.0, 1.0, 2.0].into_dyn()]);
    assert!(e.contains("`x`") && e.contains("rank"), "{e}");
    let e = err(&[normal(&[3, 4], 1), array![0.0, 1.0, 2.0].into_dyn()]);
    assert!(e.contains("`x`") && e.contains("should be 2"), "{e}");
    let e = err(&[normal(&[3, 2], 1), array![0.0, 1.0].into_dyn()]);
    assert!(e.contains("`labels`") && e.contains("`B`, already bound to 3"), "{e}");
    let e = err(&[normal(&[3, 2], 1), array![0.0, 1.5, 2.0].into_dyn()]);
    assert!(e.contains("`labels`") && e.contains("non-integer"), "{e}");
}

/// The interpreter's broadcast loops against ndarray's own broadcasting.
#[test]
fn interp_broadcast_matches_ndarray() {
    // The last two cases need three non-stretched outer dims for the
    // odometer to carry across more than one dim.
    let cases: [(&[usize], &[usize]); 10] = [
        (&[3], &[4, 3]),
        (&[2, 1], &[2, 5]),
        (&[2, 1, 3], &[4, 2, 5, 3]),
        (&[1, 3, 1], &[2, 3, 4]),
        (&[], &[2, 3]),
        (&[1], &[1]),
        (&[3, 1, 1], &[2, 3, 2, 2]),
        (&[1, 4], &[0, 4]),
        (&[2, 2, 2, 1], &[2, 2, 2, 3]),
        (&[2, 2, 1, 3], &[2, 2, 2, 3]),
    ];
    for (seed, (from, to)) in cases.into_iter().enumerate() {
        let x = normal(from, 150 + seed as u64);
        let f = single(Op::Broadcast { shape: k(to) }, &[f32t(from)]);
        let want = x.broadcast(IxDyn(to)).unwrap().to_owned();
        assert_eq!(run1(&f, &[x]), want, "broadcast {from:?} -> {to:?}");
    }
}

/// Sum and max over every subset of axes, with and without `keep`, on a
/// row-major and on a transposed (strided) operand, against ndarray folds.
#[test]
fn interp_reduce_matches_ndarray() {
    let dims = [2, 3, 4, 5];
    let x = normal(&dims, 160);
    for mask in 1..16u32 {
        let axes: Vec<usize> = (0..4).filter(|a| mask & (1 << a) != 0).collect();
        for keep in [false, true] {
            for max in [false, true] {
                let mut want = x.clone();
                for &ax in axes.iter().rev() {
                    want = if max {
                        want.fold_axis(ndarray::Axis(ax), f64::NEG_INFINITY, |a, &v| a.max(v))
                    } else {
                        want.sum_axis(ndarray::Axis(ax))
                    };
                }
                if keep {
                    for &ax in &axes {
                        want.insert_axis_inplace(ndarray::Axis(ax));
                    }
                }
                let op = if max {
                    Op::ReduceMax { axes: axes.clone(), keep }
                } else {
                    Op::ReduceSum { axes: axes.clone(), keep }
                };
                let got = run1(&single(op.clone(), &[f32t(&dims)]), std::slice::from_ref(&x));
                assert_eq!(got.shape(), want.shape());
                let close = |g: &Tensor| g.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12);
                assert!(close(&got), "{op:?}");
                // The same reduction reading a transposed operand.
                let mut b = Builder::new("t");
                let p = b.param("x", f32t(&[5, 4, 3, 2]));
                let t = b.transpose(p, vec![3, 2, 1, 0]);
                let r = b.push(op.clone(), &[t]);
                let f = b.finish(&[r]);
                let xt = x.clone().permuted_axes(IxDyn(&[3, 2, 1, 0])).as_standard_layout().into_owned();
                assert!(close(&run1(&f, &[xt])), "{op:?} of a transposed value");
            }
        }
    }
}

#[test]
fn interp_elementwise_on_transposed_operand() {
    let mut b = Builder::new("t");
    let p = b.param("x", f32t(&[2, 3]));
    let q = b.param("y", f32t(&[3, 2]));
    let t = b.transpose(p, vec![1, 0]);
    let s = b.sub(t, q);
    let e = b.unary(UnaryOp::Neg, t);
    let c = b.compare(CmpOp::Gt, t, q);
    let sel = b.select(c, t, q);
    let f = b.finish(&[s, e, sel]);
    let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
    let y = array![[0.0, 9.0], [9.0, 0.0], [0.0, 0.0]].into_dyn();
    let out = run(&f, &[x, y]).unwrap();
    assert_eq!(out[0], array![[1.0, -5.0], [-7.0, 5.0], [3.0, 6.0]].into_dyn());
    assert_eq!(out[1], array![[-1.0, -4.0], [-2.0, -5.0], [-3.0, -6.0]].into_dyn());
    assert_eq!(out[2], array![[1.0, 9.0], [9.0, 5.0], [3.0, 6.0]].into_dyn());
}

#[test]
fn interp_results_may_repeat_and_include_params() {
    let mut b = Builder::new("dup");
    let p = b.param("x", f32t(&[2, 3]));
    let t = b.transpose(p, vec![1, 0]);
    let f = b.finish(&[t, p, t]);
    let x = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
    let out = run(&f, std::slice::from_ref(&x)).unwrap();
    let xt = array![[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]].into_dyn();
    assert_eq!(out, vec![xt.clone(), x, xt]);
    assert!(out.iter().all(|t| t.is_standard_layout()));
}

#[test]
fn interp_rejects_invalid_ir() {
    let mut f = single(Op::Unary(UnaryOp::Exp), &[f32t(&[2])]);
    f.insts[0].args.clear();
    let e = run(&f, &[array![1.0, 2.0].into_dyn()]).unwrap_err();
    assert!(e.contains("invalid IR"), "{e}");
}
