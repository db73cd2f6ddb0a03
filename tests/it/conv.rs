//! Convolution and pooling: finite-difference gradients over a grid of
//! stride / padding / dilation / groups (odd sizes, batch 1), hand-computed
//! values, PyTorch's tie rule for max pooling, the compiled code against
//! the interpreter, and the batch folding of the products.

use crate::common::scalarize;
use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::codegen::{Compiled, Options};
use nnc::driver::lower_function;
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, Dim, Func, Type};

fn f32t(dims: &[usize]) -> Type {
    Type::f32(dims.iter().map(|&d| Dim::Known(d)).collect())
}

/// Distinct values (no ties, so max pooling is differentiable here).
fn data(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(dims),
        (0..n as u64).map(|i| -1.0 + 2.0 * ir::random_uniform(seed, i)).collect(),
    )
    .unwrap()
}

fn lower(src: &str, name: &str, types: &[Type]) -> Func {
    lower_function(src, name, types).unwrap_or_else(|d| panic!("{name}: {d:?}\n{src}"))
}

/// Every gradient of `sum(f(args) * r)` against central differences.
fn check_grad(f: &Func, inputs: &[Tensor]) {
    let loss = scalarize(f);
    let wrt: Vec<usize> = (0..inputs.len()).collect();
    let g = grad_func(&loss, &wrt);
    ir::verify(&g).unwrap();
    let out = run(&g, inputs).unwrap();
    let value = |args: &[Tensor]| run(&loss, args).unwrap()[0].iter().next().copied().unwrap();
    let h = 1e-6;
    for (k, &i) in wrt.iter().enumerate() {
        let analytic = &out[1 + k];
        assert_eq!(analytic.shape(), inputs[i].shape());
        for j in 0..inputs[i].len() {
            let mut plus = inputs.to_vec();
            let mut minus = inputs.to_vec();
            plus[i].as_slice_mut().unwrap()[j] += h;
            minus[i].as_slice_mut().unwrap()[j] -= h;
            let numeric = (value(&plus) - value(&minus)) / (2.0 * h);
            let a = analytic.as_slice().unwrap()[j];
            assert!(
                (a - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "@{}: d/d arg{i}[{j}]: autodiff {a}, finite difference {numeric}",
                f.name
            );
        }
    }
}

/// Compiled f32 against the f64 interpreter, at 1 and 2 threads.
fn check_jit(f: &Func, inputs: &[Tensor]) {
    let want = run(f, inputs).unwrap();
    for threads in [1, 2] {
        let mut c = Compiled::compile(f, &Options::threads(threads)).unwrap_or_else(|e| panic!("{e}\n{}", ir::print_func(f)));
        let a32: Vec<Vec<f32>> = inputs.iter().map(|t| t.iter().map(|&x| x as f32).collect()).collect();
        let args: Vec<&[f32]> = a32.iter().map(|v| v.as_slice()).collect();
        let mut outs: Vec<Vec<f32>> = want.iter().map(|w| vec![0.0; w.len()]).collect();
        let mut refs: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
        c.run(&args, &mut refs).unwrap();
        for (r, (w, g)) in want.iter().zip(&outs).enumerate() {
            for (i, (&w, &g)) in w.iter().zip(g).enumerate() {
                assert!(
                    (f64::from(g) - w).abs() <= 8e-5 * w.abs().max(1.0),
                    "@{} result {r}[{i}] on {threads} threads: compiled {g}, interpreter {w}",
                    f.name
                );
            }
        }
    }
}

/// One convolution case: `conv2d(x: [n, c, h, w], w: [o, c / g, k, k], ...)`.
struct Case {
    n: usize,
    c: usize,
    hw: [usize; 2],
    o: usize,
    k: [usize; 2],
    args: &'static str,
    groups: usize,
}

fn conv_func(case: &Case) -> (Func, Vec<Tensor>) {
    let src = format!("fn f(x, w) = conv2d(x, w{})", case.args);
    let xd = [case.n, case.c, case.hw[0], case.hw[1]];
    let wd = [case.o, case.c / case.groups, case.k[0], case.k[1]];
    let f = lower(&src, "f", &[f32t(&xd), f32t(&wd)]);
    (f, vec![data(&xd, 1), data(&wd, 2)])
}

fn grid() -> Vec<Case> {
    let c = |n, c, hw, o, k, args, groups| Case {
        n,
        c,
        hw,
        o,
        k,
        args,
        groups,
    };
    vec![
        c(1, 1, [5, 5], 1, [3, 3], "", 1),
        c(2, 3, [5, 7], 2, [3, 3], ", pad: 1", 1),
        c(1, 2, [7, 6], 3, [3, 2], ", stride: 2", 1),
        c(2, 2, [6, 7], 2, [3, 3], ", stride: [2, 1], pad: [1, 2]", 1),
        c(1, 2, [7, 7], 2, [3, 3], ", dilation: 2", 1),
        c(1, 3, [8, 9], 2, [2, 3], ", stride: 2, pad: 1, dilation: [2, 1]", 1),
        c(2, 4, [5, 5], 6, [3, 3], ", pad: 1, groups: 2", 2),
        c(1, 3, [6, 5], 3, [3, 3], ", stride: 2, pad: 1, groups: 3", 3),
        c(1, 2, [6, 6], 2, [2, 2], ", pad: \"same\"", 1),
        c(1, 2, [7, 5], 3, [3, 3], ", stride: 2, pad: \"same\"", 1),
        c(1, 1, [4, 4], 2, [5, 5], ", pad: 2", 1),
    ]
}

#[test]
fn conv2d_gradients_match_finite_differences_over_stride_padding_dilation_and_groups() {
    for case in grid() {
        let (f, inputs) = conv_func(&case);
        check_grad(&f, &inputs);
    }
}

#[test]
fn conv2d_compiled_agrees_with_the_interpreter_with_gradients() {
    for case in grid() {
        let (f, inputs) = conv_func(&case);
        check_jit(&f, &inputs);
        let loss = scalarize(&f);
        check_jit(&grad_func(&loss, &[0, 1]), &inputs);
    }
}

fn pool_cases() -> Vec<(&'static str, [usize; 4], &'static str)> {
    vec![
        ("max_pool2d", [1, 1, 4, 4], "2"),
        ("max_pool2d", [2, 3, 6, 4], "2"),
        ("max_pool2d", [1, 2, 7, 7], "3, stride: 2"),
        ("max_pool2d", [1, 2, 5, 5], "3, stride: 2, pad: 1"),
        ("max_pool2d", [1, 1, 6, 9], "[2, 3]"),
        ("avg_pool2d", [1, 1, 4, 4], "2"),
        ("avg_pool2d", [2, 3, 7, 5], "3, stride: [2, 1], pad: 1"),
        ("avg_pool2d", [1, 2, 6, 6], "[3, 2], stride: [3, 2]"),
    ]
}

#[test]
fn pooling_gradients_match_finite_differences() {
    for (op, dims, args) in pool_cases() {
        let f = lower(&format!("fn f(x) = {op}(x, {args})"), "f", &[f32t(&dims)]);
        check_grad(&f, &[data(&dims, 3)]);
    }
}

#[test]
fn pooling_compiled_agrees_with_the_interpreter_with_gradients() {
    for (op, dims, args) in pool_cases() {
        let f = lower(&format!("fn f(x) = {op}(x, {args})"), "f", &[f32t(&dims)]);
        let inputs = [data(&dims, 3)];
        check_jit(&f, &inputs);
        check_jit(&grad_func(&scalarize(&f), &[0]), &inputs);
    }
}

#[test]
fn global_average_pooling_and_1d_convolution_have_gradients() {
    let x = [2, 3, 3, 5];
    let f = lower("fn f(x) = GlobalAvgPool()(x)", "f", &[f32t(&x)]);
    check_grad(&f, &[data(&x, 4)]);
    // Conv1d's parameters are created with the layer; check its input gradient
    // and compare with the 2-D form it is written in.
    let src = "fn f(x, w) = reshape(conv2d(reshape(x, [2, 3, 1, 9]), w, stride: [1, 2], pad: [0, 1]), [2, 4, 5])";
    let f = lower(src, "f", &[f32t(&[2, 3, 9]), f32t(&[4, 3, 1, 3])]);
    check_grad(&f, &[data(&[2, 3, 9], 5), data(&[4, 3, 1, 3], 6)]);
}

fn tensor(dims: &[usize], v: Vec<f64>) -> Tensor {
    ArrayD::from_shape_vec(IxDyn(dims), v).unwrap()
}

#[test]
fn conv2d_and_pooling_compute_hand_checked_values() {
    // 3×3 image 1..9, 2×2 kernel [[1, 0], [0, -1]]: each output is x[i][j] − x[i+1][j+1] = −4.
    let x = tensor(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let w = tensor(&[1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0]);
    let f = lower("fn f(x, w) = conv2d(x, w)", "f", &[f32t(&[1, 1, 3, 3]), f32t(&[1, 1, 2, 2])]);
    assert_eq!(run(&f, &[x.clone(), w.clone()]).unwrap()[0].as_slice().unwrap(), &[-4.0; 4]);
    // Padding 1 adds zeros: the corner output is 0·1 − x[0][0] = −1, and the far corner x[2][2] = 9.
    let f = lower(
        "fn f(x, w) = conv2d(x, w, pad: 1)",
        "f",
        &[f32t(&[1, 1, 3, 3]), f32t(&[1, 1, 2, 2])],
    );
    let y = run(&f, &[x.clone(), w]).unwrap().remove(0);
    assert_eq!(y.shape(), &[1, 1, 4, 4]);
    assert_eq!(y[[0, 0, 0, 0]], -1.0);
    assert_eq!(y[[0, 0, 3, 3]], 9.0);
    let f = lower("fn f(x) = max_pool2d(x, 2, stride: 1)", "f", &[f32t(&[1, 1, 3, 3])]);
    assert_eq!(
        run(&f, std::slice::from_ref(&x)).unwrap()[0].as_slice().unwrap(),
        &[5.0, 6.0, 8.0, 9.0]
    );
    let f = lower("fn f(x) = avg_pool2d(x, 3, stride: 1, pad: 1)", "f", &[f32t(&[1, 1, 3, 3])]);
    // 3×3 windows over the zero-padded 5×5: the corner one holds 1, 2, 4, 5
    // and five zeros (padding counts), the centre one all of 1..9.
    let y = run(&f, &[x]).unwrap().remove(0);
    assert_eq!(y[[0, 0, 0, 0]], 12.0 / 9.0);
    assert_eq!(y[[0, 0, 1, 1]], 5.0);
}

#[test]
fn max_pool_gradient_goes_to_the_first_maximum_as_in_pytorch() {
    // Every window is a tie; the gradient goes to its top-left element only.
    let dims = [1, 1, 4, 4];
    let f = lower("fn f(x) = sum(max_pool2d(x, 2))", "f", &[f32t(&dims)]);
    let g = grad_func(&f, &[0]);
    let x = tensor(&dims, vec![1.0; 16]);
    let want: Vec<f64> = (0..16).map(|i| if (i / 4) % 2 == 0 && i % 2 == 0 { 1.0 } else { 0.0 }).collect();
    let got = run(&g, std::slice::from_ref(&x)).unwrap().remove(1);
    assert_eq!(got.as_slice().unwrap(), want.as_slice());
    // Compiled code follows the same rule.
    let mut c = Compiled::compile(&g, &Options::threads(1)).unwrap();
    let x32 = vec![1.0f32; 16];
    let (mut loss, mut dx) = (vec![0.0f32], vec![0.0f32; 16]);
    c.run(&[&x32], &mut [&mut loss, &mut dx]).unwrap();
    assert_eq!(dx.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), want);
    // Overlapping windows (stride 1) that share the maximum add up there.
    let f = lower("fn f(x) = sum(max_pool2d(x, 2, stride: 1))", "f", &[f32t(&[1, 1, 2, 3])]);
    let g = grad_func(&f, &[0]);
    let got = run(&g, &[tensor(&[1, 1, 2, 3], vec![0.0, 5.0, 0.0, 0.0, 0.0, 0.0])])
        .unwrap()
        .remove(1);
    assert_eq!(got.as_slice().unwrap(), &[0.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn vector_pooling_rows_choose_as_the_reference_rows_do() {
    // The f32 rows of 2×2 pooling run four windows at a time with masks;
    // the reference rows (generic, scalar) define the rule. Values from
    // three levels make most windows tie, and some NaNs (which win, the
    // first of them) are mixed in; every row length up to 13 windows
    // exercises the vector part and the scalar tail.
    use nnc::ir::window::{pool_grad_row_2x2, pool_row_2x2, Elem};
    for len in 0..14usize {
        for seed in 0..20u64 {
            let v = |row: u64, i: usize| {
                let u = ir::random_uniform(seed * 31 + row, i as u64);
                if u < 0.05 {
                    f32::NAN
                } else {
                    (u * 3.0).floor() as f32 - 1.0
                }
            };
            let r0: Vec<f32> = (0..2 * len).map(|i| v(0, i)).collect();
            let r1: Vec<f32> = (0..2 * len).map(|i| v(1, i)).collect();
            let g: Vec<f32> = (0..len)
                .map(|i| 1.0 + i as f32 + ir::random_uniform(seed, i as u64) as f32)
                .collect();
            let (mut fast, mut slow) = (vec![0.0f32; len], vec![0.0f32; len]);
            <f32 as Elem>::pool_row_2x2(&r0, &r1, &mut fast);
            pool_row_2x2(&r0, &r1, &mut slow);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&slow), "pooled row, {len} windows, seed {seed}");
            let mut fd = [vec![7.0f32; 2 * len], vec![7.0f32; 2 * len]];
            let mut sd = [vec![7.0f32; 2 * len], vec![7.0f32; 2 * len]];
            let [f0, f1] = &mut fd;
            <f32 as Elem>::pool_grad_row_2x2(&r0, &r1, &g, f0, f1);
            let [s0, s1] = &mut sd;
            pool_grad_row_2x2(&r0, &r1, &g, s0, s1);
            assert_eq!(bits(&fd[0]), bits(&sd[0]), "gradient upper row, {len} windows, seed {seed}");
            assert_eq!(bits(&fd[1]), bits(&sd[1]), "gradient lower row, {len} windows, seed {seed}");
            // One position per window gets its gradient (no NaN in g here).
            for i in 0..len {
                let four = [fd[0][2 * i], fd[0][2 * i + 1], fd[1][2 * i], fd[1][2 * i + 1]];
                assert_eq!(four.iter().filter(|&&x| x != 0.0).count(), 1, "window {i}: {four:?}");
                assert_eq!(four.iter().sum::<f32>(), g[i], "window {i}: {four:?}");
            }
        }
    }
}

#[test]
fn compiled_pooling_with_ties_agrees_with_the_interpreter() {
    // Planes 10 wide give 5 2×2 windows a row (a vector of four and a tail);
    // rounded values tie often. Forward values and the gradient, compiled
    // against the interpreter, for the tiled 2×2 window and a general one.
    for (call, dims) in [
        ("max_pool2d(x, 2)", [2, 3, 8, 10]),
        ("max_pool2d(x, 3, stride: 2, pad: 1)", [2, 3, 9, 9]),
    ] {
        let f = lower(&format!("fn f(x) = sum({call} * {call})"), "f", &[f32t(&dims)]);
        let g = grad_func(&f, &[0]);
        let n: usize = dims.iter().product();
        let xs: Vec<f64> = (0..n as u64).map(|i| (ir::random_uniform(5, i) * 4.0).floor() - 2.0).collect();
        let want = run(&g, &[tensor(&dims, xs.clone())]).unwrap();
        let mut c = Compiled::compile(&g, &Options::threads(1)).unwrap();
        let x32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
        let (mut loss, mut dx) = (vec![0.0f32], vec![0.0f32; n]);
        c.run(&[&x32], &mut [&mut loss, &mut dx]).unwrap();
        assert_eq!(f64::from(loss[0]), want[0].iter().next().copied().unwrap(), "{call}");
        assert_eq!(
            dx.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            want[1].as_slice().unwrap(),
            "{call}"
        );
    }
}

#[test]
fn specialised_convolutions_fold_the_batch_into_one_product() {
    // At a known batch size the per-image products become one GEMM each
    // (forward, input gradient, weight gradient): no batched matmul is left.
    let f = lower(
        "fn f(x, w) = conv2d(x, w, pad: 1)",
        "f",
        &[f32t(&[4, 3, 6, 6]), f32t(&[5, 3, 3, 3])],
    );
    let g = nnc::opt::optimize(&grad_func(&scalarize(&f), &[0, 1]));
    let matmuls: Vec<&ir::Inst> = g.insts.iter().filter(|i| i.op == ir::Op::MatMul).collect();
    assert_eq!(matmuls.len(), 3, "{}", ir::print_func(&g));
    for m in matmuls {
        assert_eq!(g.ty(m.result).rank(), 2, "{}", ir::print_func(&g));
    }
    let inputs = [data(&[4, 3, 6, 6], 7), data(&[5, 3, 3, 3], 8)];
    let before = run(&grad_func(&scalarize(&f), &[0, 1]), &inputs).unwrap();
    let after = run(&g, &inputs).unwrap();
    for (b, a) in before.iter().zip(&after) {
        for (x, y) in b.iter().zip(a.iter()) {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0));
        }
    }
}
