//! Finite-difference gradient checks of every differentiable stdlib
//! function, lowered from its `.nn` source exactly as a model uses it.

use crate::common::scalarize;
use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver::lower_function;
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, DType, Dim, Type};

pub(crate) fn f32t(dims: &[usize]) -> Type {
    Type::f32(dims.iter().map(|&d| Dim::Known(d)).collect())
}

pub(crate) fn data(dims: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let n: usize = dims.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(dims),
        (0..n as u64).map(|i| lo + (hi - lo) * ir::random_uniform(seed, i)).collect(),
    )
    .unwrap()
}

/// Compare the gradient w.r.t. every f32 argument with central differences.
fn check(name: &str, types: &[Type], inputs: Vec<Tensor>) {
    check_src("", name, types, inputs)
}

pub(crate) fn check_src(src: &str, name: &str, types: &[Type], inputs: Vec<Tensor>) {
    let f = lower_function(src, name, types).unwrap_or_else(|d| panic!("{name}: {d:?}"));
    let loss = scalarize(&f);
    ir::verify(&loss).unwrap();
    let wrt: Vec<usize> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| t.dtype == DType::F32)
        .map(|(i, _)| i)
        .collect();
    let g = grad_func(&loss, &wrt);
    ir::verify(&g).unwrap();
    let out = run(&g, &inputs).unwrap();
    let h = 1e-6;
    for (k, &i) in wrt.iter().enumerate() {
        let analytic = &out[1 + k];
        for j in 0..inputs[i].len() {
            let mut plus = inputs.clone();
            let mut minus = inputs.clone();
            plus[i].as_slice_mut().unwrap()[j] += h;
            minus[i].as_slice_mut().unwrap()[j] -= h;
            let fp = run(&loss, &plus).unwrap()[0].iter().next().copied().unwrap();
            let fm = run(&loss, &minus).unwrap()[0].iter().next().copied().unwrap();
            let numeric = (fp - fm) / (2.0 * h);
            let a = analytic.as_slice().unwrap()[j];
            assert!(
                (a - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                "{name}: d/d arg{i}[{j}] analytic {a} vs numeric {numeric}"
            );
        }
    }
}

fn labels(n: usize, classes: usize) -> Tensor {
    ArrayD::from_shape_vec(IxDyn(&[n]), (0..n).map(|i| ((i * 7 + 3) % classes) as f64).collect()).unwrap()
}

#[test]
fn activations() {
    // Away from relu's kink at 0.
    let x = data(&[3, 5], 1, -2.0, 2.0).mapv(|v| if v.abs() < 0.1 { v + 0.3 } else { v });
    for name in [
        "identity",
        "sigmoid",
        "relu",
        "leaky_relu",
        "softmax",
        "log_softmax",
        "logsumexp",
        "tanh",
    ] {
        check(name, &[f32t(&[3, 5])], vec![x.clone()]);
    }
}

#[test]
fn step_has_zero_gradient() {
    let f = lower_function("", "step", &[f32t(&[4])]).unwrap();
    let g = grad_func(&scalarize(&f), &[0]);
    let out = run(&g, &[data(&[4], 2, -1.0, 1.0)]).unwrap();
    assert!(out[1].iter().all(|&v| v == 0.0));
}

#[test]
fn losses() {
    let p = data(&[4, 3], 3, -1.0, 1.0);
    let t = data(&[4, 3], 4, -1.0, 1.0);
    check("mse", &[f32t(&[4, 3]), f32t(&[4, 3])], vec![p.clone(), t.clone()]);
    check("mae", &[f32t(&[4, 3]), f32t(&[4, 3])], vec![p.clone(), t.clone()]);
    check(
        "categorical_cross_entropy",
        &[f32t(&[4, 3]), f32t(&[4, 3])],
        vec![p.clone(), data(&[4, 3], 5, 0.0, 1.0)],
    );
    let probs = data(&[4, 1], 6, 0.1, 0.9);
    let targets = data(&[4, 1], 7, 0.0, 1.0).mapv(f64::round);
    check("binary_cross_entropy", &[f32t(&[4, 1]), f32t(&[4, 1])], vec![probs, targets]);
    let lt = Type {
        dtype: DType::I32,
        shape: vec![Dim::Known(4)],
    };
    check("cross_entropy", &[f32t(&[4, 3]), lt.clone()], vec![p.clone(), labels(4, 3)]);
    check("pick", &[f32t(&[4, 3]), lt], vec![p, labels(4, 3)]);
}

#[test]
fn penalties() {
    let w = data(&[3, 2], 8, -1.0, 1.0).mapv(|v| if v.abs() < 0.1 { v + 0.3 } else { v });
    check("l1", &[f32t(&[3, 2])], vec![w.clone()]);
    check("l2", &[f32t(&[3, 2])], vec![w]);
}

#[test]
fn dense_layer_and_loss_composed() {
    // A dense relu layer and a softmax cross-entropy, as a model uses them.
    let src = "fn net(x: [b, 3], w: [3, 2], c: [2], y: i32[b]) = cross_entropy(relu(x @ w + c), y)";
    let lt = Type {
        dtype: DType::I32,
        shape: vec![Dim::Known(4)],
    };
    let types = [f32t(&[4, 3]), f32t(&[3, 2]), f32t(&[2]), lt];
    let inputs = vec![
        data(&[4, 3], 9, -1.0, 1.0),
        data(&[3, 2], 10, -1.0, 1.0),
        data(&[2], 11, 0.5, 1.0),
        labels(4, 2),
    ];
    check_src(src, "net", &types, inputs);
}

/// The gradient of `sum(f(x))` at `xs`, in the interpreter (f64) and in
/// compiled code (f32).
fn saturated_gradients(src: &str, xs: &[f64]) -> (Vec<f64>, Vec<f32>) {
    let f = lower_function(src, "f", &[f32t(&[xs.len()])]).unwrap_or_else(|d| panic!("{d:?}"));
    let g = grad_func(&f, &[0]);
    ir::verify(&g).unwrap();
    let x = ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.to_vec()).unwrap();
    let interp = run(&g, &[x]).unwrap()[1].iter().copied().collect();
    let mut c = nnc::codegen::Compiled::compile(&g, &nnc::codegen::Options::threads(1)).unwrap();
    let x32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
    let (mut loss, mut grad) = (vec![f32::NAN], vec![f32::NAN; xs.len()]);
    c.run(&[&x32], &mut [&mut loss, &mut grad]).unwrap();
    (interp, grad)
}

fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

#[test]
fn sigmoid_keeps_a_finite_gradient_when_saturated() {
    // 1 / (1 + exp(-x)) has the gradient 0 * inf = NaN once exp(-x)
    // overflows (x < -88 in f32, x < -709 in f64): a discriminator that
    // rejects a sample confidently then poisons the whole step with NaN.
    let xs = [-1000.0, -100.0, -89.0, -50.0, -3.0, 0.0, 3.0, 50.0, 100.0, 1000.0];
    let (interp, jit) = saturated_gradients("fn f(x: [n]) = sum(sigmoid(x))", &xs);
    for (i, &x) in xs.iter().enumerate() {
        let want = logistic(x) * (1.0 - logistic(x));
        assert!((interp[i] - want).abs() <= 1e-12, "interp d sigmoid({x}) = {} vs {want}", interp[i]);
        assert!((jit[i] as f64 - want).abs() <= 1e-6, "jit d sigmoid({x}) = {} vs {want}", jit[i]);
    }
}

#[test]
fn binary_cross_entropy_on_logits_keeps_its_gradient_when_saturated() {
    // On probabilities, a sample the discriminator rejects (logit -30)
    // gives the generator's non-saturating loss -log(sigmoid(z) + eps) a
    // gradient of about sigmoid(z) / eps ~ 1e-6 instead of -1: the
    // generator stops learning exactly when it is worst. On logits the
    // gradient of the mean is sigmoid(z) - target over n, as in PyTorch's
    // BCEWithLogits.
    let xs = [-1000.0, -100.0, -30.0, -3.0, 0.0, 3.0, 30.0, 100.0, 1000.0];
    let n = xs.len() as f64;
    for (target, src) in [
        (1.0, "fn f(z: [n]) = binary_cross_entropy_with_logits(z, 1)"),
        (0.0, "fn f(z: [n]) = binary_cross_entropy_with_logits(z, 0)"),
    ] {
        let (interp, jit) = saturated_gradients(src, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let want = (logistic(x) - target) / n;
            assert!(
                (interp[i] - want).abs() <= 1e-12,
                "interp target {target} at {x}: {} vs {want}",
                interp[i]
            );
            assert!(
                (jit[i] as f64 - want).abs() <= 1e-6,
                "jit target {target} at {x}: {} vs {want}",
                jit[i]
            );
        }
    }
    let (on_probs, _) = saturated_gradients("fn f(z: [n]) = binary_cross_entropy(sigmoid(z), 1)", &[-30.0]);
    assert!(on_probs[0].abs() < 1e-3, "the probability form saturates: {}", on_probs[0]);
}

#[test]
fn logit_losses_match_finite_differences() {
    let z = data(&[4, 1], 9, -3.0, 3.0);
    let t = data(&[4, 1], 10, 0.0, 1.0);
    let two = [f32t(&[4, 1]), f32t(&[4, 1])];
    check("binary_cross_entropy_with_logits", &two, vec![z.clone(), t]);
    check("softplus", &[f32t(&[4, 1])], vec![z]);
}
