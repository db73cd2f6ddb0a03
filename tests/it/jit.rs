//! Differential tests: the JIT (`codegen::Compiled`, f32) against the
//! reference interpreter (`ir::interp`, f64) on every op and on composite
//! programs up to a full MLP training step, at odd sizes.
//!
//! Tolerance: |jit - interp| <= TOL * k * max(1, |interp|) with TOL = 1e-5
//! (a few f32 ulps) and k = 1 for elementwise ops; k = 8 where a value is a
//! long f32 sum (matmul, reductions, whole training steps), whose rounding
//! error grows with the number of terms.

#[path = "../../benches/common/mlp.rs"]
#[allow(dead_code)]
mod mlp;

use ndarray::{ArrayD, IxDyn};
use nnc::codegen::{Compiled, Options};
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, BinaryOp, Builder, CmpOp, DType, Dim, Func, Op, Type, UnaryOp, Value};

const TOL: f64 = 1e-5;
const LONG: f64 = 8.0;

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

/// Deterministic inputs for every param: normal f32 data rounded to f32
/// (so both backends see identical numbers), or labels in -1..depth+1 for
/// i32 params (out-of-range labels exercise one_hot's zero rows).
fn inputs(f: &Func, seed: u64) -> Vec<Tensor> {
    f.params
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let ty = f.ty(p);
            let dims: Vec<usize> = ty.shape.iter().map(|d| d.known().unwrap()).collect();
            let n: usize = dims.iter().product();
            let data = (0..n as u64)
                .map(|j| match ty.dtype {
                    DType::I32 => (ir::random_bits(seed + i as u64, j) % 6) as f64 - 1.0,
                    DType::F32 => ir::random_normal(seed * 31 + i as u64, j) as f32 as f64,
                })
                .collect();
            ArrayD::from_shape_vec(IxDyn(&dims), data).unwrap()
        })
        .collect()
}

fn run_jit(f: &Func, args: &[Tensor], threads: usize) -> Vec<Vec<f32>> {
    let mut c = Compiled::compile(f, &Options::threads(threads)).unwrap_or_else(|e| panic!("{e}\n{}", ir::print_func(f)));
    let a32: Vec<Vec<f32>> = args.iter().map(|t| t.iter().map(|&x| x as f32).collect()).collect();
    let arg_refs: Vec<&[f32]> = a32.iter().map(|v| v.as_slice()).collect();
    let mut outs: Vec<Vec<f32>> = f
        .results
        .iter()
        .map(|&r| vec![f32::NAN; f.ty(r).shape.iter().map(|d| d.known().unwrap()).product()])
        .collect();
    let mut out_refs: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
    c.run(&arg_refs, &mut out_refs).unwrap();
    outs
}

/// Run `f` on both backends with `args` and compare every result.
fn check_with(f: &Func, args: &[Tensor], kfac: f64, threads: usize) {
    ir::verify(f).unwrap();
    let want = run(f, args).unwrap();
    let got = run_jit(f, args, threads);
    for (r, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w.len(), g.len(), "result {r} length");
        for (i, (&w, &g)) in w.iter().zip(g).enumerate() {
            let g = g as f64;
            // The JIT computes in f32: an f64 result beyond f32 range is inf.
            let w = w as f32 as f64;
            let same_special = (w.is_nan() && g.is_nan()) || (w.is_infinite() && w == g);
            let ok = same_special || (g - w).abs() <= TOL * kfac * w.abs().max(1.0);
            if !ok {
                let c = Compiled::compile(f, &Options::threads(threads)).unwrap();
                panic!(
                    "@{} result {r}[{i}]: jit {g}, interp {w}\n{}\n{}",
                    f.name,
                    ir::print_func(f),
                    c.kernels_text()
                );
            }
        }
    }
}

fn check(f: &Func, kfac: f64) {
    let args = inputs(f, 7);
    check_with(f, &args, kfac, 1);
}

fn func(name: &str, params: &[Type], body: impl FnOnce(&mut Builder, &[Value]) -> Vec<Value>) -> Func {
    let mut b = Builder::new(name);
    let ps: Vec<Value> = params
        .iter()
        .enumerate()
        .map(|(i, t)| b.param(format!("p{i}"), t.clone()))
        .collect();
    let rs = body(&mut b, &ps);
    b.finish(&rs)
}

const SHAPES: [&[usize]; 5] = [&[1], &[3], &[7, 17], &[33, 130], &[3, 1, 7]];

#[test]
fn jit_unary_ops() {
    for op in [UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Tanh, UnaryOp::Abs, UnaryOp::Sign] {
        for s in SHAPES {
            check(&func("u", &[f32t(s)], |b, p| vec![b.unary(op, p[0])]), 1.0);
        }
    }
    // log and sqrt on positive inputs (|x| + small), and on special values.
    for op in [UnaryOp::Log, UnaryOp::Sqrt] {
        for s in SHAPES {
            check(
                &func("u", &[f32t(s)], |b, p| {
                    let a = b.unary(UnaryOp::Abs, p[0]);
                    let sh = b.shape(a);
                    let eps = b.fill(1e-3, &sh);
                    let x = b.add(a, eps);
                    vec![b.unary(op, x)]
                }),
                1.0,
            );
        }
    }
}

#[test]
fn jit_special_values() {
    let vals = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1e-30,
        1e30,
        -1e30,
        88.0,
        89.0,
        -88.0,
        -104.0,
        -200.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        0.5,
        2.5,
        -3.0,
    ];
    let x = ArrayD::from_shape_vec(IxDyn(&[vals.len()]), vals.to_vec()).unwrap();
    for op in [
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Tanh,
        UnaryOp::Sign,
        UnaryOp::Abs,
    ] {
        let f = func("special", &[f32t(&[vals.len()])], |b, p| vec![b.unary(op, p[0])]);
        check_with(&f, std::slice::from_ref(&x), 1.0, 1);
    }
    let f = func("cast", &[f32t(&[vals.len()])], |b, p| {
        let i = b.cast(p[0], DType::I32);
        vec![b.cast(i, DType::F32)]
    });
    check_with(&f, std::slice::from_ref(&x), 1.0, 1);
}

#[test]
fn jit_exp_log_range() {
    // A dense sweep: polynomial accuracy over the whole range.
    let n = 4001;
    let xs: Vec<f64> = (0..n).map(|i| (-90.0 + 180.0 * i as f64 / (n - 1) as f64) as f32 as f64).collect();
    let x = ArrayD::from_shape_vec(IxDyn(&[n]), xs.clone()).unwrap();
    let f = func("exp", &[f32t(&[n])], |b, p| {
        vec![b.unary(UnaryOp::Exp, p[0]), b.unary(UnaryOp::Tanh, p[0])]
    });
    check_with(&f, std::slice::from_ref(&x), 1.0, 1);
    let pos: Vec<f64> = (0..n)
        .map(|i| (1e-30f64 * 10f64.powf(60.0 * i as f64 / (n - 1) as f64)) as f32 as f64)
        .collect();
    let x = ArrayD::from_shape_vec(IxDyn(&[n]), pos).unwrap();
    let f = func("log", &[f32t(&[n])], |b, p| vec![b.unary(UnaryOp::Log, p[0])]);
    check_with(&f, std::slice::from_ref(&x), 1.0, 1);
}

#[test]
fn jit_binary_compare_select() {
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ] {
        for s in SHAPES {
            check(&func("b", &[f32t(s), f32t(s)], |b, p| vec![b.binary(op, p[0], p[1])]), 1.0);
        }
    }
    for c in [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq, CmpOp::Ne] {
        for s in SHAPES {
            // Compare x with itself too, so equality is exercised.
            check(
                &func("c", &[f32t(s), f32t(s)], |b, p| {
                    vec![b.compare(c, p[0], p[1]), b.compare(c, p[0], p[0])]
                }),
                1.0,
            );
        }
    }
    for s in SHAPES {
        check(
            &func("sel", &[f32t(s), f32t(s), f32t(s)], |b, p| {
                let c = b.compare(CmpOp::Gt, p[0], p[1]);
                vec![b.select(c, p[1], p[2]), b.select(p[0], p[1], p[2])]
            }),
            1.0,
        );
    }
}

#[test]
fn jit_pow() {
    for s in SHAPES {
        // Positive base, any exponent; negative base with integer exponents.
        check(
            &func("pow", &[f32t(s), f32t(s)], |b, p| {
                let a = b.unary(UnaryOp::Abs, p[0]);
                let r1 = b.binary(BinaryOp::Pow, a, p[1]);
                let sh = b.shape(a);
                let two = b.fill(2.0, &sh);
                let three = b.fill(3.0, &sh);
                let r2 = b.binary(BinaryOp::Pow, p[0], two);
                let r3 = b.binary(BinaryOp::Pow, p[0], three);
                let r4 = b.binary(BinaryOp::Pow, p[0], b.func().params[1]);
                let n = b.cast(p[1], DType::I32);
                let nf = b.cast(n, DType::F32);
                let r5 = b.binary(BinaryOp::Pow, p[0], nf);
                vec![r1, r2, r3, r4, r5]
            }),
            4.0,
        );
    }
}

#[test]
fn jit_broadcast_reshape_transpose() {
    check(
        &func("bc", &[f32t(&[7]), f32t(&[3, 7])], |b, p| {
            let x = b.broadcast(p[0], &k(&[3, 7]));
            vec![b.add(x, p[1])]
        }),
        1.0,
    );
    check(
        &func("bc", &[f32t(&[3, 1]), f32t(&[3, 7])], |b, p| {
            let x = b.broadcast(p[0], &k(&[3, 7]));
            vec![b.mul(x, p[1]), x]
        }),
        1.0,
    );
    check(
        &func("bc", &[f32t(&[]), f32t(&[17, 33])], |b, p| {
            let x = b.broadcast(p[0], &k(&[17, 33]));
            let e = b.unary(UnaryOp::Exp, p[0]);
            let eb = b.broadcast(e, &k(&[17, 33]));
            let y = b.sub(x, p[1]);
            vec![b.mul(y, eb)]
        }),
        1.0,
    );
    check(
        &func("bc3", &[f32t(&[5, 1, 3])], |b, p| vec![b.broadcast(p[0], &k(&[2, 5, 7, 3]))]),
        1.0,
    );
    check(
        &func("tr", &[f32t(&[7, 17])], |b, p| {
            let t = b.transpose(p[0], vec![1, 0]);
            let e = b.unary(UnaryOp::Exp, t);
            vec![e, t]
        }),
        1.0,
    );
    check(
        &func("tr3", &[f32t(&[3, 5, 7])], |b, p| {
            let t = b.transpose(p[0], vec![2, 0, 1]);
            let n = b.neg(t);
            let r = b.reshape(n, &k(&[7, 15]));
            let t2 = b.transpose(r, vec![1, 0]);
            // Reshape of a transposed view needs a contiguous copy.
            let r2 = b.reshape(t, &k(&[105]));
            vec![t2, r2]
        }),
        1.0,
    );
    check(
        &func("rs", &[f32t(&[6, 5])], |b, p| {
            let r = b.reshape(p[0], &k(&[2, 3, 5]));
            let s = b.reduce_sum(r, vec![1], false);
            vec![s, r]
        }),
        LONG,
    );
}

#[test]
fn jit_reductions() {
    let dims = [3usize, 7, 5];
    let axes_sets: [&[usize]; 7] = [&[0], &[1], &[2], &[0, 1], &[1, 2], &[0, 2], &[0, 1, 2]];
    for axes in axes_sets {
        for keep in [false, true] {
            for max in [false, true] {
                let f = func("red", &[f32t(&dims)], |b, p| {
                    let e = b.unary(UnaryOp::Exp, p[0]);
                    vec![if max {
                        b.reduce_max(e, axes.to_vec(), keep)
                    } else {
                        b.reduce_sum(e, axes.to_vec(), keep)
                    }]
                });
                check(&f, LONG);
            }
        }
    }
    for s in [&[1usize][..], &[130], &[33, 130], &[130, 17], &[1, 33]] {
        let all: Vec<usize> = (0..s.len()).collect();
        check(
            &func("red", &[f32t(s)], |b, p| {
                vec![b.reduce_sum(p[0], all.clone(), false), b.reduce_max(p[0], all.clone(), true)]
            }),
            LONG,
        );
        check(&func("red0", &[f32t(s)], |b, p| vec![b.reduce_sum(p[0], vec![0], false)]), LONG);
    }
}

#[test]
fn jit_matmul() {
    let cases: [(&[usize], &[usize]); 6] = [
        (&[1, 7], &[7, 3]),
        (&[33, 17], &[17, 130]),
        (&[3, 1], &[1, 7]),
        (&[130, 33], &[33, 1]),
        (&[3, 5, 7], &[3, 7, 2]),
        (&[2, 3, 4, 5], &[2, 3, 5, 6]),
    ];
    for (a, bd) in cases {
        check(&func("mm", &[f32t(a), f32t(bd)], |b, p| vec![b.matmul(p[0], p[1])]), LONG);
    }
    // Transposed operands become strides, not copies.
    check(
        &func("mmt", &[f32t(&[17, 33]), f32t(&[7, 17])], |b, p| {
            let at = b.transpose(p[0], vec![1, 0]);
            let bt = b.transpose(p[1], vec![1, 0]);
            vec![b.matmul(at, bt)]
        }),
        LONG,
    );
    check(
        &func("mmbt", &[f32t(&[3, 5, 7]), f32t(&[3, 2, 7])], |b, p| {
            let bt = b.transpose(p[1], vec![0, 2, 1]);
            vec![b.matmul(p[0], bt)]
        }),
        LONG,
    );
    // Computed operands and an empty inner dim.
    check(
        &func("mme", &[f32t(&[3, 7]), f32t(&[7, 5])], |b, p| {
            let e = b.unary(UnaryOp::Tanh, p[0]);
            let z = b.fill(0.5, &k(&[7, 5]));
            let w = b.add(p[1], z);
            vec![b.matmul(e, w), b.matmul(e, z)]
        }),
        LONG,
    );
    check(
        &func("mm0", &[f32t(&[3, 0]), f32t(&[0, 5])], |b, p| vec![b.matmul(p[0], p[1])]),
        1.0,
    );
}

#[test]
fn jit_one_hot_cast_const() {
    check(
        &func("oh", &[i32t(&[7])], |b, p| vec![b.push(Op::OneHot { depth: 3 }, &[p[0]])]),
        1.0,
    );
    check(
        &func("oh2", &[i32t(&[3, 5])], |b, p| {
            let o = b.push(Op::OneHot { depth: 4 }, &[p[0]]);
            let f = b.cast(p[0], DType::F32);
            vec![o, f]
        }),
        1.0,
    );
    check(
        &func("const", &[], |b, _| {
            let c = b.constant(2.5);
            let f = b.fill(-1.0, &k(&[3, 7]));
            vec![c, f, c]
        }),
        1.0,
    );
    check(
        &func("param_out", &[f32t(&[3, 7])], |b, p| {
            let n = b.neg(p[0]);
            vec![p[0], n, n]
        }),
        1.0,
    );
}

#[test]
fn jit_random_matches_interpreter() {
    let f = func("rand", &[], |b, _| {
        let key = b.constant(0.0);
        let u = b.push(
            Op::RandomUniform {
                shape: k(&[17, 33]),
                seed: 42,
            },
            &[key],
        );
        let key = b.constant(0.0);
        let n = b.push(
            Op::RandomNormal {
                shape: k(&[7, 3]),
                seed: 9,
            },
            &[key],
        );
        let key = b.constant(0.0);
        let u2 = b.push(Op::RandomUniform { shape: k(&[130]), seed: 5 }, &[key]);
        let half = b.fill(0.5, &k(&[130]));
        let drop = b.compare(CmpOp::Lt, u2, half);
        vec![u, n, drop]
    });
    let want = run(&f, &[]).unwrap();
    let got = run_jit(&f, &[], 1);
    // Uniform draws have 24 bits and are exact in f32: bit-identical.
    for (w, g) in want[0].iter().zip(&got[0]) {
        assert_eq!(*w as f32, *g);
    }
    for (w, g) in want[1].iter().zip(&got[1]) {
        assert_eq!(*w as f32, *g);
    }
    for (w, g) in want[2].iter().zip(&got[2]) {
        assert_eq!(*w as f32, *g);
    }
}

/// dense + relu + softmax cross-entropy, as the model zoo writes it.
#[test]
fn jit_dense_relu_softmax_xent() {
    for batch in [1, 3, 33] {
        let f = func("xent", &[f32t(&[batch, 17]), f32t(&[17, 7]), f32t(&[7]), i32t(&[batch])], |b, p| {
            let z = b.matmul(p[0], p[1]);
            let bias = b.broadcast(p[2], &k(&[batch, 7]));
            let h = b.add(z, bias);
            let zero = b.fill(0.0, &k(&[batch, 7]));
            let r = b.binary(BinaryOp::Max, h, zero);
            let mx = b.reduce_max(r, vec![1], true);
            let mxb = b.broadcast(mx, &k(&[batch, 7]));
            let zz = b.sub(r, mxb);
            let e = b.unary(UnaryOp::Exp, zz);
            let s = b.reduce_sum(e, vec![1], true);
            let l = b.unary(UnaryOp::Log, s);
            let lb = b.broadcast(l, &k(&[batch, 7]));
            let logp = b.sub(zz, lb);
            let oh = b.push(Op::OneHot { depth: 7 }, &[p[3]]);
            let m = b.mul(oh, logp);
            let tot = b.reduce_sum(m, vec![0, 1], false);
            let loss = b.neg(tot);
            vec![loss, logp]
        });
        check(&f, LONG);
    }
}

/// A full training step: forward, autodiff backward, Adam, at odd sizes.
#[test]
fn jit_mlp_training_step() {
    for (batch, sizes) in [(1, [17, 33, 7, 3]), (7, [17, 33, 7, 3]), (130, [33, 17, 7, 5])] {
        let f = mlp::mlp_step(batch, &sizes);
        check(&f, LONG);
        let g = mlp::mlp_infer(batch, &sizes);
        check(&g, LONG);
    }
}

/// Threads split large kernels and GEMMs; results must not change.
#[test]
fn jit_threads_agree() {
    // Sizes above the thresholds, so both a gemm and loop kernels (incl.
    // row reductions and the Adam update) are split across threads.
    let f = mlp::mlp_step(130, &[600, 257, 7, 3]);
    let kt = Compiled::compile(&f, &Options::threads(2)).unwrap().kernels_text();
    assert!(kt.contains("threads=2") && kt.contains(" parallel"), "{kt}");
    let args = inputs(&f, 3);
    check_with(&f, &args, LONG, 2);
    let g = func("big", &[f32t(&[1025, 130]), f32t(&[130])], |b, p| {
        let bb = b.broadcast(p[1], &k(&[1025, 130]));
        let e = b.unary(UnaryOp::Exp, p[0]);
        let m = b.mul(e, bb);
        vec![m, b.reduce_sum(m, vec![1], false), b.reduce_sum(m, vec![0], false)]
    });
    let kt = Compiled::compile(&g, &Options::threads(2)).unwrap().kernels_text();
    assert!(kt.contains("reduce=Sum over=[false, true] parallel"), "{kt}");
    let args = inputs(&g, 4);
    check_with(&g, &args, LONG, 2);
}

/// A row reduction joins the elementwise kernel whose outputs it reduces
/// (`merge_reductions`): softmax's scale + max, exp + sum, and a layer
/// norm's residual sum + mean each run as one pass that stores the row and
/// reduces it. Rows and row lengths of odd sizes (vector tails), one and two
/// threads; a reduction reading its operand transposed must not join.
#[test]
fn jit_row_reductions_join_their_elementwise_kernels() {
    for dims in [[5usize, 3, 7], [2, 130, 1030]] {
        let d = k(&dims);
        let f = func("rows", &[f32t(&dims), f32t(&dims)], |b, p| {
            let c = b.constant(0.37);
            let cb = b.broadcast(c, &d);
            let s = b.mul(p[0], cb);
            let m = b.reduce_max(s, vec![2], true);
            let mb = b.broadcast(m, &d);
            let x = b.sub(s, mb);
            let e = b.unary(UnaryOp::Exp, x);
            let z = b.reduce_sum(e, vec![2], true);
            let zb = b.broadcast(z, &d);
            let soft = b.div(e, zb);
            // Layer-norm shape: a residual sum, its mean, the centred row.
            let r = b.add(soft, p[1]);
            let mu = b.reduce_sum(r, vec![2], true);
            let mub = b.broadcast(mu, &d);
            let centred = b.sub(r, mub);
            let sq = b.mul(centred, centred);
            let var = b.reduce_sum(sq, vec![2], false);
            // Reduced along another axis than it was written: no join.
            let t = b.transpose(e, vec![0, 2, 1]);
            let across = b.reduce_sum(t, vec![2], false);
            vec![soft, centred, var, across]
        });
        for threads in [1, 2] {
            let kt = Compiled::compile(&f, &Options::threads(threads)).unwrap().kernels_text();
            let joined = kt
                .split("kernel ")
                .filter(|k| k.contains(" reduce=") && k.contains("    store "))
                .count();
            assert!(joined >= 3, "expected the max, the exp sum and the residual sum joined:\n{kt}");
            let args = inputs(&f, 5);
            check_with(&f, &args, LONG, threads);
        }
    }
}

#[test]
fn jit_rejects_wrong_arguments() {
    let f = func("add", &[f32t(&[3, 7]), f32t(&[3, 7])], |b, p| vec![b.add(p[0], p[1])]);
    let mut c = Compiled::compile(&f, &Options::threads(1)).unwrap();
    let a = vec![1.0f32; 21];
    let short = vec![1.0f32; 20];
    let mut out = vec![0.0f32; 21];
    let mut out_short = vec![0.0f32; 7];
    assert!(c.run(&[&a, &short], &mut [&mut out]).is_err());
    assert!(c.run(&[&a], &mut [&mut out]).is_err());
    assert!(c.run(&[&a, &a, &a], &mut [&mut out]).is_err());
    assert!(c.run(&[&a, &a], &mut [&mut out_short]).is_err());
    assert!(c.run(&[&a, &a], &mut []).is_err());
    c.run(&[&a, &a], &mut [&mut out]).unwrap();
    assert!(out.iter().all(|&x| x == 2.0));
}

#[test]
fn jit_rejects_symbolic_dims() {
    let mut b = Builder::new("sym");
    let x = b.param("x", Type::f32(vec![Dim::Sym("B".into()), Dim::Known(3)]));
    let y = b.neg(x);
    let f = b.finish(&[y]);
    assert!(Compiled::compile(&f, &Options::threads(1)).is_err());
    let s = f.specialize(&|_| Some(5));
    assert!(Compiled::compile(&s, &Options::threads(1)).is_ok());
}

/// KiB of anonymous executable mappings: where JIT code lives. (Process
/// RSS would also count what tests running in parallel allocate.)
fn jit_code_kb() -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let mut total = 0;
    for line in maps.lines() {
        let mut it = line.split_whitespace();
        let (range, perms) = (it.next()?, it.next()?);
        let path = it.nth(3);
        if perms.starts_with("r-x") && path.is_none() {
            let (lo, hi) = range.split_once('-')?;
            total += usize::from_str_radix(hi, 16).ok()? - usize::from_str_radix(lo, 16).ok()?;
        }
    }
    Some(total / 1024)
}

#[test]
fn jit_compile_and_drop_does_not_leak() {
    let f = mlp::mlp_step(3, &[17, 9, 5, 3]);
    let once = |_: usize| {
        let c = Compiled::compile(&f, &Options::threads(1)).unwrap();
        assert!(!c.clif_text().is_empty() && !c.kernels_text().is_empty());
    };
    (0..20).for_each(once);
    let before = jit_code_kb();
    (0..200).for_each(once);
    let after = jit_code_kb();
    if let (Some(b), Some(a)) = (before, after) {
        // Measured over 200 compiles: +3.2 MiB when the code pages are not
        // freed, +0 when they are.
        assert!(a < b + 1024, "JIT code mappings grew from {b} KiB to {a} KiB over 200 compiles");
    }
}

#[test]
fn jit_texts_describe_kernels() {
    let f = mlp::mlp_step(7, &[17, 9, 5, 3]);
    let c = Compiled::compile(&f, &Options::threads(1)).unwrap();
    let kt = c.kernels_text();
    assert!(kt.contains("gemm"), "{kt}");
    assert!(kt.contains("reduce=Max"), "{kt}");
    assert!(c.clif_text().contains("function"), "{}", c.clif_text());
}

/// The runtime's cheap parameter update: the buffers a step writes are the
/// arguments of the next step and vice versa (ping-pong, no copies). Two
/// steps must match two interpreter steps.
#[test]
fn jit_two_steps_ping_pong() {
    let sizes = [17, 9, 5, 3];
    let f = mlp::mlp_step(7, &sizes);
    let n_params = 2 * (sizes.len() - 1);
    // Param layout: x, weights/biases, y, m..., v..., t. Results: loss,
    // new params, new m, new v.
    let state_arg = |i: usize| if i < n_params { 1 + i } else { 2 + i };
    let mut args = inputs(&f, 11);
    for a in args.iter_mut().skip(2 + n_params).take(2 * n_params) {
        a.fill(0.0);
    }
    let t_idx = args.len() - 1;
    args[t_idx].fill(1.0);
    let mut c = Compiled::compile(&f, &Options::threads(1)).unwrap();
    let mut ping: Vec<Vec<f32>> = args.iter().map(|t| t.iter().map(|&x| x as f32).collect()).collect();
    let mut pong: Vec<Vec<f32>> = f
        .results
        .iter()
        .map(|&r| vec![0.0; f.ty(r).shape.iter().map(|d| d.known().unwrap()).product()])
        .collect();
    let mut want = args.clone();
    for step in 1..=2 {
        ping[t_idx][0] = step as f32;
        want[t_idx].fill(step as f64);
        let arg_refs: Vec<&[f32]> = ping.iter().map(|v| v.as_slice()).collect();
        let mut out_refs: Vec<&mut [f32]> = pong.iter_mut().map(|v| v.as_mut_slice()).collect();
        c.run(&arg_refs, &mut out_refs).unwrap();
        let outs = run(&f, &want).unwrap();
        // Swap: each result buffer becomes the matching argument.
        for r in 1..f.results.len() {
            std::mem::swap(&mut ping[state_arg(r - 1)], &mut pong[r]);
            want[state_arg(r - 1)] = outs[r].clone();
        }
        let loss = outs[0].iter().next().copied().unwrap();
        assert!((pong[0][0] as f64 - loss).abs() <= TOL * LONG * loss.abs().max(1.0));
    }
    for (i, (g, w)) in ping.iter().zip(&want).enumerate() {
        for (&g, &w) in g.iter().zip(w.iter()) {
            assert!(
                (g as f64 - w).abs() <= TOL * LONG * w.abs().max(1.0),
                "arg {i}: jit {g}, interp {w}"
            );
        }
    }
}

/// A tiny deterministic generator for the random-program test.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 = ir::random_bits(self.0, 1);
        (self.0 % n as u64) as usize
    }
}

/// Random programs mixing elementwise chains, broadcasts of reductions
/// (softmax-like), transposes, reshapes and products, so fusion, sibling
/// merging, axis merging and buffer reuse meet shapes no hand-written test
/// has. Values are squashed with tanh so f32 and f64 stay comparable.
#[test]
fn jit_random_programs() {
    let dims_pool = [1usize, 3, 7, 17];
    for seed in 0..200u64 {
        let mut rng = Rng(seed + 1);
        let mut b = Builder::new(format!("rand{seed}"));
        let mut pool: Vec<Value> = Vec::new();
        for i in 0..3 {
            let rank = 1 + rng.next(3);
            let dims: Vec<usize> = (0..rank).map(|_| dims_pool[rng.next(4)]).collect();
            pool.push(b.param(format!("p{i}"), f32t(&dims)));
        }
        for _ in 0..14 {
            let a = pool[rng.next(pool.len())];
            let sh = b.shape(a);
            let r = sh.len();
            let v = match rng.next(7) {
                0 => {
                    let op = [UnaryOp::Neg, UnaryOp::Tanh, UnaryOp::Abs, UnaryOp::Exp, UnaryOp::Sign][rng.next(5)];
                    let t = b.unary(UnaryOp::Tanh, a);
                    b.unary(op, t)
                }
                1 | 2 => {
                    // Same-shape partner: another value, or a reduction of
                    // one broadcast back (keep dims), or a scalar.
                    let same: Vec<Value> = pool.iter().copied().filter(|&v| b.shape(v) == sh).collect();
                    let other = match rng.next(3) {
                        0 => same[rng.next(same.len())],
                        1 if r > 0 => {
                            let axes: Vec<usize> = (0..r).filter(|_| rng.next(2) == 0).collect();
                            let red = if rng.next(2) == 0 {
                                b.reduce_max(a, axes, true)
                            } else {
                                b.reduce_sum(a, axes, true)
                            };
                            let t = b.unary(UnaryOp::Tanh, red);
                            b.broadcast(t, &sh)
                        }
                        _ => b.fill(0.5, &sh),
                    };
                    let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Max, BinaryOp::Min][rng.next(5)];
                    if rng.next(4) == 0 {
                        let c = b.compare(CmpOp::Gt, a, other);
                        b.select(c, a, other)
                    } else {
                        b.binary(op, a, other)
                    }
                }
                3 if r >= 2 => {
                    let mut perm: Vec<usize> = (0..r).collect();
                    perm.swap(rng.next(r), rng.next(r));
                    b.transpose(a, perm)
                }
                4 if r >= 1 => {
                    let n: usize = sh.iter().map(|d| d.known().unwrap()).product();
                    b.reshape(a, &k(&[n]))
                }
                5 if r == 2 => {
                    let at = b.transpose(a, vec![1, 0]);
                    let m = b.matmul(at, a);
                    b.unary(UnaryOp::Tanh, m)
                }
                _ if r >= 1 => {
                    let axes: Vec<usize> = (0..r).filter(|_| rng.next(2) == 0).collect();
                    let red = b.reduce_sum(a, axes, rng.next(2) == 0);
                    b.unary(UnaryOp::Tanh, red)
                }
                _ => b.neg(a),
            };
            pool.push(v);
        }
        let n = pool.len();
        let results = [pool[n - 1], pool[n - 2], pool[3 + rng.next(n - 3)]];
        let f = b.finish(&results);
        let args = inputs(&f, seed);
        check_with(&f, &args, LONG, 1 + (seed % 2) as usize);
    }
}

/// The runtime may move a compiled step to a worker thread.
#[test]
fn jit_compiled_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let f = func("neg", &[f32t(&[3])], |b, p| vec![b.neg(p[0])]);
    let c = Compiled::compile(&f, &Options::threads(1)).unwrap();
    is_send(&c);
    let mut c = std::thread::spawn(move || c).join().unwrap();
    let mut out = vec![0.0f32; 3];
    c.run(&[&[1.0, 2.0, 3.0]], &mut [&mut out]).unwrap();
    assert_eq!(out, [-1.0, -2.0, -3.0]);
}

/// Buffers tagged with their parameter index.
type Numbered = Vec<(usize, Vec<f32>)>;

/// In-place training: parameters and Adam moments are updated in their own
/// buffers (`compile_inplace`); two steps must match two interpreter steps,
/// and the update kernels must write directly (no fallback copy).
#[test]
fn jit_two_steps_in_place() {
    let sizes = [17, 9, 5, 3];
    let f = mlp::mlp_step(7, &sizes);
    let n_params = 2 * (sizes.len() - 1);
    let state_arg = |i: usize| if i < n_params { 1 + i } else { 2 + i };
    let pairs: Vec<(usize, usize)> = (0..3 * n_params).map(|i| (state_arg(i), 1 + i)).collect();
    let mut args = inputs(&f, 13);
    for a in args.iter_mut().skip(2 + n_params).take(2 * n_params) {
        a.fill(0.0);
    }
    let t_idx = args.len() - 1;
    let mut c = Compiled::compile_inplace(&f, &Options::threads(1), &pairs, Some(0)).unwrap();
    assert!(!c.kernels_text().contains("in place"), "{}", c.kernels_text());
    let mut bufs: Vec<Vec<f32>> = args.iter().map(|t| t.iter().map(|&x| x as f32).collect()).collect();
    let mut want = args.clone();
    let mut loss = vec![0.0f32];
    for step in 1..=2 {
        bufs[t_idx][0] = step as f32;
        want[t_idx].fill(step as f64);
        let (state, rest): (Numbered, Numbered) = std::mem::take(&mut bufs)
            .into_iter()
            .enumerate()
            .partition(|(i, _)| pairs.iter().any(|&(p, _)| p == *i));
        let mut state: Numbered = state;
        // State buffers in pair order (pairs are sorted by param here).
        let arg_refs: Vec<&[f32]> = rest.iter().map(|(_, v)| v.as_slice()).collect();
        let mut state_refs: Vec<&mut [f32]> = state.iter_mut().map(|(_, v)| v.as_mut_slice()).collect();
        c.run_inplace(&arg_refs, &mut state_refs, &mut [&mut loss]).unwrap();
        let mut all: Vec<(usize, Vec<f32>)> = rest.into_iter().chain(state).collect();
        all.sort_by_key(|(i, _)| *i);
        bufs = all.into_iter().map(|(_, v)| v).collect();
        let outs = run(&f, &want).unwrap();
        for &(p, r) in &pairs {
            want[p] = outs[r].clone();
        }
        let l = outs[0].iter().next().copied().unwrap();
        assert!((loss[0] as f64 - l).abs() <= TOL * LONG * l.abs().max(1.0));
    }
    for (i, (g, w)) in bufs.iter().zip(&want).enumerate() {
        for (&g, &w) in g.iter().zip(w.iter()) {
            assert!(
                (g as f64 - w).abs() <= TOL * LONG * w.abs().max(1.0),
                "arg {i}: jit {g}, interp {w}"
            );
        }
    }
    // A plain `run` on an in-place compilation is refused.
    let a: Vec<&[f32]> = bufs.iter().map(|v| v.as_slice()).collect();
    assert!(c.run(&a, &mut []).is_err());

    // A non-finite loss (an infinite input) returns before any update is
    // written: parameters and moments keep their values bit for bit.
    let (mut state, rest): (Numbered, Numbered) = bufs.into_iter().enumerate().partition(|(i, _)| pairs.iter().any(|&(p, _)| p == *i));
    let before = state.clone();
    let mut rest = rest;
    rest[0].1[3] = f32::INFINITY;
    let arg_refs: Vec<&[f32]> = rest.iter().map(|(_, v)| v.as_slice()).collect();
    let mut state_refs: Vec<&mut [f32]> = state.iter_mut().map(|(_, v)| v.as_mut_slice()).collect();
    c.run_inplace(&arg_refs, &mut state_refs, &mut [&mut loss]).unwrap();
    assert!(!loss[0].is_finite(), "loss {}", loss[0]);
    assert_eq!(state, before);
}

/// In-place results that cannot be written directly (transposed reads, a
/// later reader of the old value, swapped parameters) fall back to copies
/// and still give the right answer.
#[test]
fn jit_in_place_fallbacks() {
    let f = func("hazards", &[f32t(&[3, 3]), f32t(&[3, 3]), f32t(&[3, 3])], |b, p| {
        let t = b.transpose(p[0], vec![1, 0]);
        let two = b.fill(2.0, &k(&[3, 3]));
        let r0 = b.mul(t, two);
        let e = b.unary(UnaryOp::Exp, p[1]);
        let s = b.reduce_sum(p[1], vec![0, 1], false);
        vec![r0, e, s, p[2], p[1]]
    });
    // r0 over p0 (transposed read), r1 over p1 (p1 read later by the sum),
    // r3 = p2 over p2 (a view), r4 = p1 over... p0 is taken; keep it out.
    let pairs = [(0, 0), (1, 1), (2, 3)];
    let args = inputs(&f, 5);
    let want = run(&f, &args).unwrap();
    let mut c = Compiled::compile_inplace(&f, &Options::threads(1), &pairs, None).unwrap();
    let mut state: Vec<Vec<f32>> = args.iter().map(|t| t.iter().map(|&x| x as f32).collect()).collect();
    let mut s_out = vec![0.0f32];
    let mut p1_out = vec![0.0f32; 9];
    let mut refs: Vec<&mut [f32]> = state.iter_mut().map(|v| v.as_mut_slice()).collect();
    c.run_inplace(&[], &mut refs, &mut [&mut s_out, &mut p1_out]).unwrap();
    let got = [&state[0], &state[1], &s_out, &state[2], &p1_out];
    for (r, (w, g)) in want.iter().zip(got).enumerate() {
        for (&w, &g) in w.iter().zip(g.iter()) {
            assert!(
                (g as f64 - w).abs() <= TOL * LONG * w.abs().max(1.0),
                "result {r}: jit {g}, interp {w}\n{}",
                c.kernels_text()
            );
        }
    }
    // Swapping two parameters through each other's buffers.
    let g = func("swap", &[f32t(&[7]), f32t(&[7])], |_, p| vec![p[1], p[0]]);
    let mut c = Compiled::compile_inplace(&g, &Options::threads(1), &[(0, 0), (1, 1)], None).unwrap();
    let (mut a, mut b) = (vec![1.0f32; 7], vec![2.0f32; 7]);
    c.run_inplace(&[], &mut [&mut a, &mut b], &mut []).unwrap();
    assert_eq!((a[0], b[6]), (2.0, 1.0));
    // Bad pairs and counts are errors.
    assert!(Compiled::compile_inplace(&g, &Options::threads(1), &[(0, 0), (0, 1)], None).is_err());
    assert!(Compiled::compile_inplace(&g, &Options::threads(1), &[(5, 0)], None).is_err());
    assert!(c.run_inplace(&[], &mut [&mut a], &mut []).is_err());
}

/// A step whose loss is computed from an updated weight cannot return
/// before the update; the runner then keeps a copy and restores it, so a
/// non-finite loss still leaves the weights unchanged on both backends.
#[test]
fn step_runner_restores_weights_when_it_cannot_return_early() {
    use nnc::runtime::backend::{compile_step, step_runner, BackendKind};
    let f = func(
        "late_loss",
        &[f32t(&[2, 3]), f32t(&[2]), f32t(&[]), f32t(&[]), f32t(&[4])],
        |b, p| {
            let two = b.fill(2.0, &k(&[4]));
            let w2 = b.mul(p[4], two);
            let loss = b.reduce_sum(w2, vec![0], false);
            vec![loss, p[0], w2]
        },
    );
    let (_, backup) = compile_step(&f, 1, &Options::threads(1)).unwrap();
    assert!(backup, "the loss needs the new weight, so no early return is possible");
    let arr = |dims: &[usize], v: Vec<f32>| ArrayD::from_shape_vec(IxDyn(dims), v).unwrap();
    let x = arr(&[2, 3], vec![1.0; 6]);
    let y = arr(&[2], vec![0.0; 2]);
    let s = arr(&[], vec![1.0]);
    for kind in [BackendKind::Interp, BackendKind::Jit { threads: 1 }] {
        let mut r = step_runner(kind, &f);
        let mut w = vec![arr(&[4], vec![1.0, 2.0, 3.0, 4.0])];
        let (loss, out) = r.step([x.view(), y.view(), s.view(), s.view()], &mut w).unwrap();
        assert_eq!((loss, out.shape()), (20.0, &[2, 3][..]));
        assert_eq!(w[0].as_slice().unwrap(), &[2.0, 4.0, 6.0, 8.0]);
        w[0][[1]] = f32::INFINITY;
        let before = w.clone();
        let (loss, _) = r.step([x.view(), y.view(), s.view(), s.view()], &mut w).unwrap();
        assert!(!loss.is_finite());
        assert_eq!(w, before, "{kind:?}");
    }
}
