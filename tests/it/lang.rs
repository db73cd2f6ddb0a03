//! Language features end to end (issue 9): compile-time arithmetic that
//! stays exact, and a layer's weights by name inside the loss.

use nnc::autodiff::grad_func;
use nnc::driver;
use nnc::ir::interp::run;
use nnc::ir::{Builder, Dim};
use nnc::runtime::train::initial_weights;

/// The output shape of `model` in `src`, which must check clean.
fn output_shape(src: &str, model: &str) -> Vec<Dim> {
    let c = driver::compile("t.nn", src);
    assert!(!c.has_errors(), "{src}\n{:?}", c.diagnostics());
    let (_, f) = c.analysis.model_funcs.iter().find(|(n, _)| n == model).expect("model lowered");
    f.ty(f.results[0]).shape.clone()
}

/// The diagnostic codes `src` produces.
fn codes(src: &str) -> Vec<&'static str> {
    driver::compile("t.nn", src).diagnostics().iter().map(|d| d.code).collect()
}

/// The output width `Dense(4 -> size)` gets for a size expression.
fn size_of(expr: &str) -> usize {
    let src = format!("model M(x: [batch, 4]) = x |> Dense(4 -> {expr})");
    output_shape(&src, "M")[1].known().expect("known width")
}

#[test]
fn compile_time_integers_are_exact() {
    // The textbook's convolution size formula.
    assert_eq!(size_of("floor((28 + 2*0 - 3) / 2) + 1"), 13);
    assert_eq!(size_of("(28 - 4) / 2"), 12, "an exact quotient is an integer");
    assert_eq!(size_of("ceil(25 / 2)"), 13);
    assert_eq!(size_of("7 % 3 + 1"), 2);
    assert_eq!(size_of("-7 % 3"), 2, "the remainder has the sign of the divisor");
    assert_eq!(size_of("floor(-7 / 2) + 6"), 2, "floor rounds toward -inf");
    assert_eq!(size_of("2^62 / 2^60"), 4);
    assert_eq!(size_of("3 * (1 + 1)"), 6);
}

#[test]
fn compile_time_overflow_and_division_by_zero_are_errors() {
    let dense = |e: &str| format!("model M(x: [batch, 4]) = x |> Dense(4 -> {e})");
    for bad in [
        "2^40 * 2^40",
        "2^63",
        "2^62 + 2^62",
        "-(2^62) - 2^62 - 2^62",
        "8 / 0",
        "8 % 0",
        "floor(1.0e300)",
    ] {
        assert_eq!(codes(&dense(bad)), vec!["E0204"], "{bad}");
    }
    // A quotient that is not whole is not a size; the help rounds it.
    let c = driver::compile("t.nn", &dense("(28 - 5) / 2 + 1"));
    let d = &c.diagnostics()[0];
    assert_eq!(d.code, "E0203");
    assert!(
        d.help.as_deref().unwrap_or("").contains("write `floor((28 - 5) / 2 + 1)`"),
        "{:?}",
        d.help
    );
    // Floats still compute in floating point: 1/16 is not 0.
    assert!(codes("model M(x: [batch, 4]) = x * (1/16) * 2.0^100").is_empty());
}

const WEIGHT_DECAY: &str = "
model M(x: [batch, 2]) -> [batch, 2] {
    let fc1 = Dense(2 -> 3, relu)
    return x |> fc1 |> Dense(3 -> 2)
}
train M {
    data = tensors(x: [[1, 2], [3, 4]], y: [[0, 1], [1, 0]])
    loss = l2(fc1.W) + l2(model.dense1.b) + 0 * mse(model(x), y)
    optimizer = sgd
}
";

#[test]
fn a_loss_regularises_layer_weights_by_name() {
    let c = driver::compile("t.nn", WEIGHT_DECAY);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let plan = &c.analysis.plans[0];
    let names: Vec<&str> = plan.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["fc1.W", "fc1.b", "dense1.W", "dense1.b"]);
    // The loss alone, differentiated with respect to every parameter.
    let mut b = Builder::new("loss_only");
    let loss = &plan.evaluation().unwrap().loss;
    let ps: Vec<_> = loss.params.iter().map(|&p| b.param("p", loss.ty(p).clone())).collect();
    let l = b.inline(loss, &ps)[0];
    let loss = b.finish(&[l]);
    let wrt: Vec<usize> = (2..loss.params.len()).collect();
    let g = grad_func(&loss, &wrt);
    let w = initial_weights(plan).unwrap();
    let x = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let y = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    let mut args = vec![x, y];
    args.extend(w.params.iter().map(|p| p.mapv(f64::from)));
    let out = run(&g, &args).unwrap();
    // d/dW sum(W²) = 2W for the named weights; the others get nothing.
    for (k, (grad, param)) in out[1..].iter().zip(&args[2..]).enumerate() {
        let want = if k == 0 || k == 3 {
            param.mapv(|v| 2.0 * v)
        } else {
            param.mapv(|_| 0.0)
        };
        assert_eq!(grad, &want, "gradient of {}", names[k]);
    }
}

#[test]
fn an_unknown_member_suggests_the_right_one() {
    let src = WEIGHT_DECAY.replace("l2(fc1.W)", "l2(fc1.w)");
    let c = driver::compile("t.nn", &src);
    let d = &c.diagnostics()[0];
    assert_eq!((d.code, d.help.as_deref()), ("E0114", Some("did you mean `W`?")));
    let src = WEIGHT_DECAY.replace("l2(fc1.W)", "l2(fc3.W)");
    let codes: Vec<_> = driver::compile("t.nn", &src).diagnostics().iter().map(|d| d.code).collect();
    assert_eq!(codes, ["E0101"], "an unknown layer is an unknown name");
}

/// Run model `name` of `src` on one input, on the interpreter and the JIT.
fn both_backends(src: &str, name: &str, x: ndarray::ArrayD<f32>) -> [ndarray::ArrayD<f32>; 2] {
    use nnc::runtime::backend::{runner, BackendKind};
    let c = driver::compile("t.nn", src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let (_, f) = c.analysis.model_funcs.iter().find(|(n, _)| n == name).expect("model");
    let run = |k| runner(k, f).call(&[&x]).unwrap().remove(0);
    [run(BackendKind::Interp), run(BackendKind::Jit { threads: 1 })]
}

#[test]
fn slicing_means_what_numpy_means() {
    // x[b, i, j] = 100 b + 10 i + j; x[:, 1::2, ::-2] takes i = 1, 3 and j = 4, 2, 0.
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[2, 4, 5]), |ix| (100 * ix[0] + 10 * ix[1] + ix[2]) as f32);
    let src = "model M(x: [batch, 4, 5]) -> [batch, 2, 3] = x[:, 1::2, ::-2]";
    for out in both_backends(src, "M", x) {
        let got: Vec<f32> = out.iter().copied().collect();
        assert_eq!(got, [14., 12., 10., 34., 32., 30., 114., 112., 110., 134., 132., 130.]);
    }
    let src = "model L(x: [batch, 4, 5]) -> [batch, 5] = x[..., -1, :] + x[:, 0, :] * 0";
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[1, 4, 5]), |ix| (10 * ix[1] + ix[2]) as f32);
    for out in both_backends(src, "L", x) {
        assert_eq!(out.iter().copied().collect::<Vec<f32>>(), [30., 31., 32., 33., 34.]);
    }
}

#[test]
fn a_gather_id_outside_the_table_reads_nan_on_both_backends() {
    let src = "model E(ids: i32[batch, 2]) -> [batch, 2, 2] = gather(ones([3, 2]), ids)";
    let ids = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 2]), vec![2.0, 3.0]).unwrap();
    for out in both_backends(src, "E", ids) {
        let v: Vec<f32> = out.iter().copied().collect();
        assert_eq!(&v[..2], [1.0, 1.0]);
        assert!(v[2..].iter().all(|x| x.is_nan()), "{v:?}");
    }
}

#[test]
fn stop_gradient_blocks_the_gradient() {
    use nnc::ir::{Type, UnaryOp};
    let mut b = Builder::new("f");
    let x = b.param("x", Type::f32(vec![Dim::Known(3)]));
    let s = b.unary(UnaryOp::StopGradient, x);
    let y = b.mul(s, x);
    let l = b.reduce_sum(y, vec![0], false);
    let f = b.finish(&[l]);
    let g = grad_func(&f, &[0]);
    let xs = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[3]), vec![1.0, -2.0, 3.0]).unwrap();
    let out = run(&g, std::slice::from_ref(&xs)).unwrap();
    // d/dx (sg(x) x) = sg(x) = x, not 2x.
    assert_eq!(out[1], xs);
}
