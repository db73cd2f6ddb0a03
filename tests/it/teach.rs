//! Tools for learners: `nnc explain --grad`, `nnc trace`, `nnc plot`,
//! `nnc tune` and `nnc run --set`, as a user runs them, with their bad input.

use nnc::teach::{derivatives, overrides, search};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NNC_DATA")
        .output()
        .expect("run nnc")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 0 and the standard output.
fn ok(args: &[&str]) -> String {
    let o = nnc(args);
    assert_eq!(o.status.code(), Some(0), "nnc {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

/// Exit 1 with `code` in the standard error, which is returned.
fn fails_with(args: &[&str], code: &str) -> String {
    let o = nnc(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "nnc {args:?}: expected exit 1\nstdout:\n{}\nstderr:\n{err}",
        stdout(&o)
    );
    assert!(err.contains(code), "nnc {args:?}: expected {code} in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-teach-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn plan_of(text: &str) -> nnc::sema::TrainPlan {
    let c = nnc::driver::compile("t.nn", text);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    c.analysis.plans.into_iter().next().expect("a train block")
}

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)).unwrap()
}

// ---- explain --grad -------------------------------------------------------

#[test]
fn explain_grad_xor_text() {
    insta::assert_snapshot!(ok(&["explain", "--grad", "examples/xor.nn"]));
}

#[test]
fn explain_grad_mnist_mlp_text() {
    insta::assert_snapshot!(ok(&["explain", "--grad", "examples/mnist_mlp.nn"]));
}

#[test]
fn explain_grad_xor_latex() {
    insta::assert_snapshot!(ok(&["explain", "--grad", "examples/xor.nn", "--format", "latex"]));
}

#[test]
fn explain_grad_digits_markdown() {
    insta::assert_snapshot!(ok(&["explain", "--grad", "examples/digits.nn", "--format", "markdown"]));
}

#[test]
fn explain_grad_walks_every_layer_from_the_loss_to_the_input() {
    let plan = plan_of(&example("mnist_mlp.nn"));
    let d = nnc::teach::backward::derive(&plan);
    let text = |e: &nnc::teach::notation::Expr| nnc::teach::notation::render(e, nnc::teach::notation::Format::Text);
    let lines: Vec<String> = d
        .backward
        .iter()
        .map(|(_, e)| format!("{} = {}", text(&e.lhs), text(&e.rhs)))
        .collect();
    // Every trained parameter gets its gradient, in the textbook's form.
    for l in ["¹", "²", "³"] {
        assert!(lines.iter().any(|x| x.starts_with(&format!("∂L/∂W{l} = "))), "{lines:#?}");
        assert!(lines.contains(&format!("∂L/∂b{l} = Σ_batch δ{l}")), "{lines:#?}");
    }
    assert!(lines.contains(&"δ¹ = ∂L/∂a¹ ⊙ relu'(z¹)".to_string()), "{lines:#?}");
    assert!(lines.contains(&"∂L/∂a¹ = δ² · W²ᵀ".to_string()), "{lines:#?}");
    assert!(lines.contains(&"∂L/∂W² = a¹ᵀ · δ²".to_string()), "{lines:#?}");
    // Sections run from the loss back to the input.
    let sections: Vec<_> = d.backward.iter().map(|(s, _)| *s).collect();
    let mut sorted = sections.clone();
    sorted.sort_by_key(|s| std::cmp::Reverse(*s));
    assert_eq!(sections, sorted);
}

#[test]
fn explain_grad_lenet5_text() {
    insta::assert_snapshot!(ok(&["explain", "--grad", "examples/lenet5.nn"]));
}

/// The equations of a derivation, as printed in text.
fn backward_lines(file: &str) -> (Vec<String>, Vec<String>) {
    derivation_lines(&example(file))
}

fn derivation_lines(text: &str) -> (Vec<String>, Vec<String>) {
    let plan = plan_of(text);
    let d = nnc::teach::backward::derive(&plan);
    let text = |e: &nnc::teach::notation::Expr| nnc::teach::notation::render(e, nnc::teach::notation::Format::Text);
    let lines = |eqs: &[(nnc::teach::backward::Section, nnc::teach::backward::Equation)]| -> Vec<String> {
        eqs.iter().map(|(_, e)| format!("{} = {}", text(&e.lhs), text(&e.rhs))).collect()
    };
    (lines(&d.forward), lines(&d.backward))
}

/// Convolution and pooling read as the textbook writes them, whatever
/// the window (stride, padding, groups): the forms come from the IR that
/// autodiff produced for each call (col2im of a product, im2col in a
/// product, the pooling gradients), so they hold for every layout.
#[test]
fn explain_grad_of_convolution_and_pooling_is_the_textbooks() {
    let text = "model P(x: [batch, 64]) -> [batch, 10] {
    let c1 = Conv2d(1 -> 4, tanh, kernel: 3, stride: 2, pad: 1)
    let p = AvgPool2d(2)
    let c2 = Conv2d(4 -> 4, kernel: 3, pad: 1, groups: 2)
    let m = MaxPool2d(2)
    return reshape(x, [batch, 1, 8, 8]) |> c1 |> p |> c2 |> m |> flatten |> Dense(4 -> 10)
}
train P {
    data = csv(\"data/digits.csv\", label: 64, scale: 1/16)
    loss = cross_entropy(model(x), y)
    optimizer = adam(lr: 0.003)
}
";
    let (forward, backward) = derivation_lines(text);
    let has = |lines: &[String], l: &str| assert!(lines.iter().any(|x| x == l), "{l} not in {lines:#?}");
    // The bias's reshape to [c, 1, 1] is broadcasting, left implicit.
    has(&forward, "z³ = conv2d(z², W³) + b³");
    has(&backward, "∂L/∂b³ = Σ_batch,2,2 δ³");
    has(&backward, "δ³ = unpool_max(δ⁴)");
    has(&backward, "∂L/∂W³ = Σ_batch (z² ⋆ δ³)");
    has(&backward, "δ² = δ³ ∗ rot180(W³)");
    has(&backward, "∂L/∂a¹ = unpool_mean(δ²)");
    has(&backward, "∂L/∂W¹ = Σ_batch (reshape(x) ⋆ δ¹)");
    assert!(
        !backward
            .iter()
            .any(|l| l.contains(")ᵀ ") || l.contains("∂conv2d") || l.contains("pool2d")),
        "{backward:#?}"
    );
}

/// A recurrence reads as backpropagation through time, written once for a
/// generic step `t`: the steps' equations fold where their structure
/// repeats (`steps::fold`), and the first and last steps, which read the
/// initial state and feed no later step, keep equations of their own.
#[test]
fn explain_grad_of_a_recurrence_is_backpropagation_through_time() {
    let (forward, backward) = backward_lines("rnn_mnist.nn");
    let has = |lines: &[String], l: &str| assert!(lines.iter().any(|x| x == l), "{l} not in {lines:#?}");
    has(&forward, "z₁¹ = x[:, 0, :] · Wx¹ + zeros() · Wh¹ + b¹");
    has(&forward, "zₜ¹ = x[:, t-1, :] · Wx¹ + hₜ₋₁¹ · Wh¹ + b¹");
    has(&forward, "hₜ¹ = tanh(zₜ¹)");
    has(&forward, "z¹ = concat(h₁¹, …, h₂₈¹)");
    has(&backward, "∂L/∂h₂₈¹ = δ¹[:, 27, :]");
    has(&backward, "∂L/∂hₜ¹ = δ¹[:, t-1, :] + δₜ₊₁¹ · Wh¹ᵀ");
    has(&backward, "δₜ¹ = ∂L/∂hₜ¹ ⊙ tanh'(zₜ¹)");
    has(&backward, "∂L/∂Wh¹ = Σ_t=2…28 (hₜ₋₁¹ᵀ · δₜ¹) + zeros()ᵀ · δ₁¹");
    has(&backward, "∂L/∂Wx¹ = Σ_t=1…28 (x[:, t-1, :]ᵀ · δₜ¹)");
    has(&backward, "∂L/∂b¹ = Σ_t=1…28 (Σ_batch δₜ¹)");
    // The textbook's order within a step, and no step written out.
    let at = |lines: &[String], l: &str| lines.iter().position(|x| x == l).unwrap();
    assert!(at(&forward, "zₜ¹ = x[:, t-1, :] · Wx¹ + hₜ₋₁¹ · Wh¹ + b¹") < at(&forward, "hₜ¹ = tanh(zₜ¹)"));
    assert!(at(&backward, "∂L/∂hₜ¹ = δ¹[:, t-1, :] + δₜ₊₁¹ · Wh¹ᵀ") < at(&backward, "δₜ¹ = ∂L/∂hₜ¹ ⊙ tanh'(zₜ¹)"));
    assert!(forward.len() + backward.len() < 20, "{forward:#?} {backward:#?}");
    // The steps each line stands for are shown with its shape.
    let plan = plan_of(&example("rnn_mnist.nn"));
    let d = nnc::teach::backward::derive(&plan);
    let shapes: Vec<&str> = d.backward.iter().map(|(_, e)| e.shape.as_str()).collect();
    assert!(
        shapes.contains(&"[batch, 128]  (t=1…27)") && shapes.contains(&"[batch, 128]  (t=1…28)"),
        "{shapes:?}"
    );
}

/// Three steps make a pattern; two are written out. The layer is the
/// file's own, so nothing about the stdlib's recurrent layers is assumed.
#[test]
fn recurrence_steps_fold_from_three_steps() {
    let text = "layer Cell(n: int) {
    param W: [n, n] = orthogonal()
    fn forward(xs: [b, steps, n]) = scan x in xs along 1 from h = zeros([b, n]) { h = tanh(x + h @ W) }
}
model R(x: [batch, 3, 2]) -> [batch, 2] = x |> Cell(2) |> last
train R {
    data = tensors(x: [[[1, 2], [1, 2], [1, 2]]], y: [[0, 1]])
    loss = mse(model(x), y)
    optimizer = sgd(lr: 0.1)
}
";
    let folded = |text: &str| -> Vec<String> {
        let (f, b) = derivation_lines(text);
        f.into_iter().chain(b).filter(|l| l.contains('ₜ')).collect()
    };
    let three = folded(text);
    assert!(
        three.contains(&"hₜ¹ = tanh(zₜ¹)".to_string()) && three.contains(&"δₜ¹ = ∂L/∂hₜ¹ ⊙ tanh'(zₜ¹)".to_string()),
        "{three:#?}"
    );
    let two = text
        .replace("[batch, 3, 2]", "[batch, 2, 2]")
        .replace("[[[1, 2], [1, 2], [1, 2]]]", "[[[1, 2], [1, 2]]]");
    assert_eq!(folded(&two), Vec::<String>::new());
}

/// The LSTM's gates and cell read as the textbook's equations, forward and
/// backward; attention reads in the names of its `.nn` definition (q, k, v)
/// with slices written as ranges, and every equation stays short.
#[test]
fn explain_grad_of_lstm_and_attention_uses_the_sources_names() {
    let (forward, backward) = backward_lines("lstm_mnist.nn");
    let has = |lines: &[String], l: &str| assert!(lines.iter().any(|x| x == l), "{l} not in {lines:#?}");
    has(&forward, "cₜ¹ = fₜ¹ ⊙ cₜ₋₁¹ + iₜ¹ ⊙ gₜ¹");
    has(&forward, "hₜ¹ = oₜ¹ ⊙ tanh(cₜ¹)");
    has(&forward, "fₜ¹ = sigmoid(uₜ¹[:, 128:256])");
    has(&backward, "∂L/∂cₜ¹ = ∂L/∂cₜ₊₁¹ ⊙ fₜ₊₁¹ + ∂L/∂hₜ¹ ⊙ oₜ¹ ⊙ tanh'(cₜ¹)");
    has(&backward, "∂L/∂fₜ¹ = ∂L/∂cₜ¹ ⊙ cₜ₋₁¹");
    has(&backward, "∂L/∂hₜ¹ = δ¹[:, t-1, :] + ∂L/∂uₜ₊₁¹ · Wh¹ᵀ");
    let (forward_gru, backward_gru) = backward_lines("gru_mnist.nn");
    assert!(
        forward_gru.iter().chain(&backward_gru).filter(|l| l.contains('ₜ')).count() >= 5,
        "{forward_gru:#?}"
    );
    let (forward, backward) = backward_lines("transformer_mnist.nn");
    has(&forward, "q⁴ = split_heads(qkv⁴[:, :, 0:64])");
    has(&forward, "v⁴ = split_heads(qkv⁴[:, :, 128:192])");
    has(&backward, "∂L/∂W_qkv⁴ = Σ_batch (z²ᵀ · ∂L/∂qkv⁴)");
    let longest = forward.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest < 120, "a forward equation of {longest} characters");
}

/// Every closed-form derivative printed in a "where" line agrees with
/// autodiff of the function itself.
#[test]
fn every_known_derivative_matches_autodiff() {
    use nnc::ir::{interp, Dim, Type};
    let (n, c) = (3, 4);
    let mut ok = 0;
    for k in derivatives::KNOWN {
        let sig = |name: &str, types: &[Type]| {
            nnc::driver::lower_function(k.check, name, types).unwrap_or_else(|e| panic!("{}: {e:?}", k.callee))
        };
        let f32 = |dims: &[usize]| Type::f32(dims.iter().map(|&d| Dim::Known(d)).collect());
        let i32 = |dims: &[usize]| Type {
            dtype: nnc::ir::DType::I32,
            shape: dims.iter().map(|&d| Dim::Known(d)).collect(),
        };
        let data = |shape: &[usize], seed: u64, lo: f64, hi: f64| {
            let len: usize = shape.iter().product();
            let v: Vec<f64> = (0..len).map(|i| lo + (hi - lo) * nnc::ir::random_uniform(seed, i as u64)).collect();
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).unwrap()
        };
        // Away from kinks (0 for relu), inside domains (0 < p < 1).
        let z = data(&[n, c], 1, 0.05, 0.95).mapv(|x| {
            if nnc::ir::random_uniform(5, (x * 1e6) as u64) < 0.5 {
                -x * 3.0
            } else {
                x * 3.0
            }
        });
        let (fun, expected, args): (nnc::ir::Func, nnc::ir::Func, Vec<ndarray::ArrayD<f64>>) = match k.callee {
            "cross_entropy" => {
                let labels = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), vec![0.0, 3.0, 1.0]).unwrap();
                (
                    sig(k.callee, &[f32(&[n, c]), i32(&[n])]),
                    sig("d", &[f32(&[n, c]), i32(&[n])]),
                    vec![z, labels],
                )
            }
            "categorical_cross_entropy" | "binary_cross_entropy" | "mse" | "mae" => {
                let p = if k.callee == "binary_cross_entropy" {
                    data(&[n, c], 2, 0.1, 0.9)
                } else {
                    z
                };
                let t = data(&[n, c], 3, 0.0, 1.0);
                (
                    sig(k.callee, &[f32(&[n, c]), f32(&[n, c])]),
                    sig("d", &[f32(&[n, c]), f32(&[n, c])]),
                    vec![p, t],
                )
            }
            "softmax" | "log_softmax" => {
                let g = data(&[n, c], 4, -1.0, 1.0);
                // The vector-Jacobian product of f at z with g is the
                // gradient of sum(f(z) * g).
                let f = sig(k.callee, &[f32(&[n, c])]);
                let mut b = nnc::ir::Builder::new("fg");
                let zp = b.param("z", f.ty(f.params[0]).clone());
                let gp = b.param("g", f.ty(f.params[0]).clone());
                let y = b.inline(&f, &[zp])[0];
                let m = b.mul(y, gp);
                let s = b.reduce_sum(m, vec![0, 1], false);
                (b.finish(&[s]), sig("d", &[f32(&[n, c]), f32(&[n, c])]), vec![z, g])
            }
            "sqrt" => (sig(k.callee, &[f32(&[n, c])]), sig("d", &[f32(&[n, c])]), vec![z.mapv(f64::abs)]),
            _ => (sig(k.callee, &[f32(&[n, c])]), sig("d", &[f32(&[n, c])]), vec![z]),
        };
        // Elementwise functions: the gradient of sum(f(z)).
        let scalar = if fun.ty(fun.results[0]).rank() == 0 {
            fun
        } else {
            let mut b = nnc::ir::Builder::from_func(fun.clone());
            let s = b.reduce_sum(fun.results[0], vec![0, 1], false);
            b.finish(&[s])
        };
        let grad = nnc::autodiff::grad_func(&scalar, &[0]);
        let got = &interp::run(&grad, &args).unwrap()[1];
        let want = &interp::run(&expected, &args).unwrap()[0];
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                "{}: autodiff {g}, closed form {w}",
                k.callee
            );
        }
        ok += 1;
    }
    assert_eq!(ok, derivatives::KNOWN.len());
}

#[test]
fn explain_grad_bad_model_is_coded_with_a_suggestion() {
    let err = fails_with(&["explain", "--grad", "examples/xor.nn", "--model", "Xr"], "E0801");
    assert!(err.contains("did you mean `Xor`?"), "{err}");
    let dir = temp_dir("notrain");
    let f = dir.join("m.nn");
    std::fs::write(&f, "model M(x: [b, 2]) -> [b, 1] = x |> Dense(2 -> 1)\n").unwrap();
    fails_with(&["explain", "--grad", f.to_str().unwrap()], "E0805");
}

// ---- trace ------------------------------------------------------------------

#[test]
fn trace_xor_text() {
    insta::assert_snapshot!(ok(&["trace", "examples/xor.nn"]));
}

#[test]
fn trace_xor_one_sample_at_step_3_json() {
    let out = ok(&["trace", "examples/xor.nn", "--sample", "2", "--step", "3", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["step"], 3);
    assert_eq!(v["samples"], serde_json::json!([2]));
    let names: Vec<&str> = v["nodes"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    for want in ["x", "z¹", "a¹", "z²", "a²", "L", "δ²", "δ¹", "∂L/∂W¹", "∂L/∂b²", "W¹ (new)"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for phase in ["forward", "backward", "update"] {
        assert!(v["nodes"].as_array().unwrap().iter().any(|n| n["phase"] == phase));
    }
    assert_eq!(v["changes"].as_array().unwrap().len(), 4);
}

/// The traced step is the step `nnc run` takes: after it, the parameters
/// are those of one epoch of XOR (four samples, one batch) in the JIT.
#[test]
fn trace_matches_the_compiled_training_step() {
    use nnc::runtime::{backend::BackendKind, load, train};
    let plan = plan_of(&example("xor.nn"));
    let splits = load::load_splits(&plan, Path::new("examples"), None).unwrap();
    for step in [1usize, 2] {
        let t = nnc::teach::trace::trace(&plan, &splits.train, &nnc::teach::trace::TraceRequest { step, sample: None }).unwrap();
        let mut opts = train::TrainOptions::new(BackendKind::Jit { threads: 1 });
        opts.epochs = Some(step);
        struct Quiet;
        impl train::Observer for Quiet {}
        let out = train::train_with(&plan, &splits, &opts, &mut Quiet).unwrap();
        for (c, w) in t.changes.iter().zip(&out.weights.params) {
            let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / w.len() as f64;
            let max = w.iter().map(|&x| f64::from(x)).fold(f64::NEG_INFINITY, f64::max);
            assert!(
                (c.after.mean - mean).abs() < 1e-5,
                "{} step {step}: {} vs {mean}",
                c.param,
                c.after.mean
            );
            assert!(
                (c.after.max - max).abs() < 1e-5,
                "{} step {step}: {} vs {max}",
                c.param,
                c.after.max
            );
            for (a, b) in c.after.first.iter().zip(w.iter()) {
                assert!((a - f64::from(*b)).abs() < 1e-5, "{} step {step}: {a} vs {b}", c.param);
            }
        }
    }
}

#[test]
fn trace_past_the_data_is_coded() {
    let err = fails_with(&["trace", "examples/xor.nn", "--step", "301"], "E0803");
    assert!(err.contains("300 steps"), "{err}");
    let err = fails_with(&["trace", "examples/xor.nn", "--sample", "4"], "E0803");
    assert!(err.contains("4 samples"), "{err}");
    fails_with(&["trace", "examples/xor.nn", "--step", "0"], "E0803");
}

// ---- plot -------------------------------------------------------------------

#[test]
fn plot_writes_the_activation_figure() {
    let dir = temp_dir("plot");
    let svg = dir.join("act.svg");
    let out = ok(&["plot", "sigmoid", "tanh", "relu", "--derivative", "--out", svg.to_str().unwrap()]);
    assert!(out.contains("wrote"), "{out}");
    let text = std::fs::read_to_string(&svg).unwrap();
    for label in ["sigmoid&apos;", "tanh&apos;", "relu&apos;"] {
        assert!(text.contains(label), "{label} not in the legend");
    }
    let png = dir.join("act.png");
    ok(&["plot", "leaky_relu", "--out", png.to_str().unwrap()]);
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
}

#[test]
fn plotted_derivative_is_autodiffs() {
    let f = nnc::driver::lower_function("", "sigmoid", &[nnc::teach::plot::input_type(5)]).unwrap();
    let xs = [-4.0, -1.0, 0.0, 0.5, 3.0];
    let d = nnc::teach::plot::sample(&nnc::teach::plot::derivative(&f), &xs).unwrap();
    for (x, g) in xs.iter().zip(d) {
        let s = 1.0 / (1.0 + (-x).exp());
        assert!((g - s * (1.0 - s)).abs() < 1e-12, "{x}: {g}");
    }
}

#[test]
fn plot_in_the_terminal_and_from_a_file() {
    let dir = temp_dir("plotfile");
    let f = dir.join("act.nn");
    std::fs::write(&f, "/// A smooth ReLU.\nfn softplus(x) = log(1 + exp(x))\n").unwrap();
    let out = ok(&["plot", "softplus", "--file", f.to_str().unwrap(), "--derivative", "--terminal"]);
    assert!(out.contains("softplus'") && out.contains('│'), "{out}");
}

#[test]
fn plot_bad_functions_are_coded() {
    let err = fails_with(&["plot", "mse"], "E0804");
    assert!(err.contains("2 arguments"), "{err}");
    fails_with(&["plot", "softmax"], "E0804");
    fails_with(&["plot", "Dense"], "E0804");
    let err = fails_with(&["plot", "sigmoud"], "E0801");
    assert!(err.contains("did you mean `sigmoid`?"), "{err}");
    fails_with(&["plot", "relu", "--from", "1", "--to", "-1"], "E0802");
}

#[test]
fn plot_run_curves_in_the_terminal() {
    let dir = temp_dir("curves");
    ok(&["run", "examples/xor.nn", "--epochs", "5", "--quiet", "--out", dir.to_str().unwrap()]);
    let out = ok(&["plot", "--run", dir.to_str().unwrap()]);
    assert!(out.contains("loss per epoch") && out.contains("accuracy per epoch"), "{out}");
    let err = fails_with_any(&["plot", "--run", "no/such/dir"]);
    assert!(err.contains("metrics.jsonl"), "{err}");
}

fn fails_with_any(args: &[&str]) -> String {
    let o = nnc(args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    stderr(&o)
}

// ---- run --set ----------------------------------------------------------------

#[test]
fn overrides_edit_the_train_block_and_the_optimizer() {
    let text = example("xor.nn");
    let c = nnc::driver::compile("xor.nn", &text);
    let set = |pairs: &[(&str, &str)]| {
        let o: Vec<overrides::Override> = pairs
            .iter()
            .map(|(n, v)| overrides::Override {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect();
        overrides::apply(&text, &c.module, &c.analysis.globals, None, &o)
    };
    let edited = set(&[("lr", "0.1"), ("batch_size", "2"), ("beta1", "0.8"), ("warmup", "3")]).unwrap();
    assert!(edited.contains("adam(lr: 0.1, beta1: 0.8)"), "{edited}");
    assert!(
        edited.contains("batch_size = 2\n") && edited.contains("    warmup = 3\n}"),
        "{edited}"
    );
    let plan = plan_of(&edited);
    assert_eq!(plan.steps[0].lr, Some(0.1));
    assert_eq!(plan.settings.batch_size, 2);
    assert_eq!(plan.settings.warmup, 3);
    match set(&[("lrr", "0.1")]) {
        Err(overrides::OverrideError::Unknown { known, .. }) => assert!(known.contains(&"lr".to_string())),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        set(&[("batch_size", "2.5")]),
        Err(overrides::OverrideError::BadValue { .. })
    ));
}

#[test]
fn run_set_trains_with_the_value_and_rejects_unknown_names() {
    let dir = temp_dir("set");
    ok(&[
        "run",
        "examples/xor.nn",
        "--set",
        "epochs=3",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 4, "{metrics}");
    let err = fails_with(&["run", "examples/xor.nn", "--set", "lrr=0.1"], "E0801");
    assert!(err.contains("did you mean `lr`?"), "{err}");
    fails_with(&["run", "examples/xor.nn", "--set", "lr"], "E0802");
}

/// `examples/digits.nn` with its hidden width as a named size.
fn digits_with_width() -> String {
    let text = example("digits.nn");
    let wide = text.replace(
        "model Digits(x: [batch, 64]) -> [batch, 10] =\n    x |> Dense(64 -> 64, relu)\n      |> Dense(64 -> 10)\n",
        "model Digits(x: [batch, 64]) -> [batch, 10] {\n    let hidden = 64\n    return x |> Dense(64 -> hidden, relu) |> Dense(hidden -> 10)\n}\n",
    );
    assert_ne!(wide, text, "digits.nn changed: update the replacement");
    wide
}

#[test]
fn named_sizes_of_models_are_hyper_parameters() {
    let text = digits_with_width();
    let c = nnc::driver::compile("digits.nn", &text);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let set = |text: &str, c: &nnc::driver::Compilation, name: &str, value: &str| {
        let o = [overrides::Override {
            name: name.into(),
            value: value.into(),
        }];
        overrides::apply(text, &c.module, &c.analysis.globals, None, &o)
    };
    let edited = set(&text, &c, "hidden", "16").unwrap();
    assert!(edited.contains("let hidden = 16\n"), "{edited}");
    let plan = plan_of(&edited);
    let w = plan.params.iter().find(|p| p.name == "dense1.W").expect("dense1.W");
    assert_eq!(nnc::ir::shape_to_string(&w.ty.shape), "[64, 16]");
    assert!(matches!(
        set(&text, &c, "hidden", "2.5"),
        Err(overrides::OverrideError::BadValue { .. })
    ));
    // A size written as a decimal takes decimals; one named in two models
    // is qualified by the model.
    let two = "model A(x: [batch, 4]) -> [batch, 2] {\n    let hidden = 8\n    let p = 0.5\n    return x |> Dense(4 -> hidden, relu) |> dropout(rate: p) |> Dense(hidden -> 2)\n}\n\
        model B(x: [batch, 4]) -> [batch, 2] {\n    let hidden = 3\n    return x |> Dense(4 -> hidden) |> Dense(hidden -> 2)\n}\n\
        train A {\n    data = tensors(x: [[1, 2, 3, 4]], y: [[0, 1]])\n    loss = mse(model(x) + B(x), y)\n    optimizer = sgd(lr: 0.1)\n}\n";
    let c2 = nnc::driver::compile("two.nn", two);
    assert!(!c2.has_errors(), "{:?}", c2.diagnostics());
    let known = overrides::tunable(&c2.module, &c2.analysis.globals, None);
    for name in ["A.hidden", "B.hidden", "p", "lr", "epochs"] {
        assert!(known.contains(&name.to_string()), "{name} in {known:?}");
    }
    assert!(!known.contains(&"hidden".to_string()), "{known:?}");
    assert!(set(two, &c2, "p", "0.25").unwrap().contains("let p = 0.25\n"));
    let b = set(two, &c2, "B.hidden", "5").unwrap();
    assert!(b.contains("let hidden = 5\n") && b.contains("let hidden = 8\n"), "{b}");
    assert!(matches!(
        set(two, &c2, "hidden", "5"),
        Err(overrides::OverrideError::Unknown { .. })
    ));
}

#[test]
fn tune_searches_layer_widths_and_refuses_widths_that_do_not_fit() {
    let dir = temp_dir("widths");
    let file = dir.join("digits.nn");
    std::fs::write(&file, digits_with_width()).unwrap();
    let f = file.to_str().unwrap();
    let study = dir.join("study");
    let out = ok(&[
        "tune",
        f,
        "--grid",
        "hidden=8,32",
        "--epochs",
        "2",
        "--limit",
        "300",
        "--prune",
        "none",
        "--data-dir",
        "examples",
        "--study",
        study.to_str().unwrap(),
    ]);
    assert!(out.contains("2 trials, 0 done before") && out.contains("--set hidden="), "{out}");
    let csv = std::fs::read_to_string(study.join("results.csv")).unwrap();
    assert!(csv.starts_with("trial,status,hidden,"), "{csv}");
    // Each trial trained a model of its width.
    for (t, width) in [(1, 8), (2, 32)] {
        let row = csv.lines().nth(t).unwrap();
        assert!(row.starts_with(&format!("{t},complete,{width},")), "{csv}");
        let weights = std::fs::read(study.join(format!("trial-{t:03}/weights.safetensors"))).unwrap();
        let header = String::from_utf8_lossy(&weights[8..]);
        assert!(
            header.contains(&format!("\"shape\":[64,{width}]")),
            "{}",
            &header[..200.min(header.len())]
        );
    }
    // --set and the grid on a name that does not exist: did-you-mean.
    let e = fails_with(&["run", f, "--set", "hiden=16", "--data-dir", "examples"], "E0801");
    assert!(e.contains("did you mean `hidden`?"), "{e}");
    let e = fails_with(&["tune", f, "--grid", "hiddn=8,16", "--data-dir", "examples"], "E0801");
    assert!(e.contains("did you mean `hidden`?"), "{e}");
    fails_with(&["tune", f, "--grid", "hidden=8,12.5", "--data-dir", "examples"], "E0802");
    // A width the next layer does not fit is the shape checker's error, at
    // the layer, before any trial runs.
    std::fs::write(&file, digits_with_width().replace("Dense(hidden -> 10)", "Dense(64 -> 10)")).unwrap();
    let e = fails_with(&["run", f, "--set", "hidden=16", "--data-dir", "examples"], "E0301");
    assert!(e.contains("checked with `--set hidden=16`"), "{e}");
    let fresh = dir.join("fresh");
    let e = fails_with(
        &[
            "tune",
            f,
            "--grid",
            "hidden=64,16",
            "--data-dir",
            "examples",
            "--study",
            fresh.to_str().unwrap(),
        ],
        "E0301",
    );
    assert!(e.contains("checked with `--set hidden=16`"), "{e}");
    assert!(!fresh.exists(), "no study is started");
}

// ---- tune ---------------------------------------------------------------------

#[test]
fn search_spaces_expand_deterministically() {
    let axes = vec![
        search::parse_axis("lr=log:1e-4..1e-1/4", true).unwrap(),
        search::parse_axis("batch_size=1..4", false).unwrap(),
        search::parse_axis("beta1=log:0.5..0.99", false).unwrap(),
    ];
    let t = search::trials(&axes, 3, 7);
    assert_eq!(t.len(), 12);
    assert_eq!(t, search::trials(&axes, 3, 7));
    let lrs: Vec<&str> = t.iter().step_by(3).map(|c| c[0].1.as_str()).collect();
    assert_eq!(lrs, ["0.0001", "0.001", "0.01", "0.1"]);
    for c in &t {
        let bs: i64 = c[1].1.parse().unwrap();
        let b1: f64 = c[2].1.parse().unwrap();
        assert!((1..=4).contains(&bs) && (0.5..=0.99).contains(&b1), "{c:?}");
    }
}

#[test]
fn median_rule_prunes_only_the_trials_behind() {
    let others = vec![vec![1.0, 0.5, 0.4], vec![1.0, 0.6, 0.5], vec![1.0, 0.7, 0.6]];
    assert!(!search::should_prune(&[2.0], &others, 1, false), "warm-up epoch");
    assert!(search::should_prune(&[2.0, 0.9], &others, 2, false));
    assert!(!search::should_prune(&[2.0, 0.55], &others, 2, false));
    assert!(
        !search::should_prune(&[2.0, 0.9], &others[..2], 2, false),
        "too few trials to judge"
    );
    assert!(search::should_prune(
        &[0.2, 0.3],
        &[vec![0.5, 0.9], vec![0.5, 0.8], vec![0.5, 0.7]],
        2,
        true
    ));
}

#[test]
fn tune_runs_trials_writes_results_and_continues() {
    let study = temp_dir("tune");
    let s = study.to_str().unwrap();
    let args = [
        "tune",
        "examples/xor.nn",
        "--grid",
        "lr=0.02,0.1",
        "--random",
        "batch_size=2,4",
        "--trials",
        "2",
        "--epochs",
        "20",
        "--prune",
        "none",
        "--study",
        s,
    ];
    let out = ok(&args);
    assert!(out.contains("4 trials, 0 done before"), "{out}");
    assert!(
        out.contains("best: trial") && out.contains("reproduce: nnc run examples/xor.nn --set lr="),
        "{out}"
    );
    let csv = std::fs::read_to_string(study.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("trial,status,lr,batch_size,train_loss,epochs,seconds\n"), "{csv}");
    for t in 1..=4 {
        let dir = study.join(format!("trial-{t:03}"));
        assert!(dir.join("weights.safetensors").is_file() && dir.join("trial.json").is_file());
    }
    assert!(std::fs::read_to_string(study.join("tune.svg")).unwrap().contains("<svg"));
    // Again: nothing left to run, the same table.
    let again = ok(&args);
    assert!(again.contains("4 trials, 4 done before"), "{again}");
    assert!(!again.contains("trial   1/4"), "{again}");
    // Another space in the same study is refused.
    let mut other = args.to_vec();
    other[3] = "lr=0.5";
    fails_with(&other, "E0802");
}

#[test]
fn tune_bad_spaces_are_coded() {
    let e = fails_with(&["tune", "examples/xor.nn"], "E0802");
    assert!(e.contains("search space is empty"), "{e}");
    let e = fails_with(&["tune", "examples/xor.nn", "--grid", "lrr=0.1,0.2"], "E0801");
    assert!(e.contains("did you mean `lr`?"), "{e}");
    fails_with(
        &["tune", "examples/xor.nn", "--grid", "lr=0.1", "--random", "lr=log:1e-3..1e-1"],
        "E0802",
    );
    fails_with(&["tune", "examples/xor.nn", "--random", "lr=log:0..1"], "E0802");
    fails_with(&["tune", "examples/xor.nn", "--random", "lr=0.5..0.1"], "E0802");
    fails_with(&["tune", "examples/xor.nn", "--grid", "lr=1e-3..1e-1"], "E0802");
    fails_with(&["tune", "examples/xor.nn", "--grid", "batch_size=2.5"], "E0802");
    fails_with(&["tune", "examples/xor.nn", "--grid", "lr="], "E0802");
    let e = fails_with(&["tune", "examples/xor.nn", "--grid", "lr=0.1", "--metric", "val_acc"], "E0801");
    assert!(e.contains("train_accuracy") || e.contains("did you mean"), "{e}");
}

#[test]
fn tune_reads_the_search_space_of_the_train_block() {
    let dir = temp_dir("tuneblock");
    let text = example("xor.nn").replace(
        "    seed = 7\n",
        "    seed = 7\n    search = space(lr: log_uniform(0.01, 0.2), batch_size: [2, 4], trials: 2)\n",
    );
    let file = dir.join("xor.nn");
    std::fs::write(&file, &text).unwrap();
    // The setting is part of the language: the file still checks.
    ok(&["check", file.to_str().unwrap()]);
    let study = dir.join("study");
    let out = ok(&["tune", file.to_str().unwrap(), "--epochs", "5", "--study", study.to_str().unwrap()]);
    assert!(out.contains("4 trials, 0 done before"), "{out}");
    let csv = std::fs::read_to_string(study.join("results.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let lr: f64 = line.split(',').nth(2).unwrap().parse().unwrap();
        assert!((0.01..=0.2).contains(&lr), "{line}");
    }
    // A bad space is an error on the file, at the axis.
    let bad = text.replace("batch_size: [2, 4]", "batch_sise: [2, 4]");
    std::fs::write(&file, bad).unwrap();
    let e = fails_with(&["tune", file.to_str().unwrap(), "--study", study.to_str().unwrap()], "E0801");
    assert!(e.contains("did you mean `batch_size`?") && e.contains("xor.nn"), "{e}");
    let bad = text.replace("log_uniform(0.01, 0.2)", "log_uniform(0.2, 0.01)");
    std::fs::write(&file, bad).unwrap();
    fails_with(&["tune", file.to_str().unwrap(), "--study", study.to_str().unwrap()], "E0802");
}
