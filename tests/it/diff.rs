//! The differential suite at the language level: every test program (the
//! examples, `tests/ui/ok`, one program per stdlib optimizer and one using
//! every stdlib initializer) and every stdlib function, run by the f64
//! reference interpreter and by compiled f32 code exactly as `nnc run` runs
//! them (`runtime::backend`), on random inputs at batch 1 and at odd sizes
//! that are not multiples of the vector width; plus the compiled gradients
//! of each example's loss against central differences.
//!
//! Tolerance as in `jit.rs`: |jit − interp| ≤ 1e-5 · k · max(1, |interp|),
//! k = 8 for values that are long f32 sums (products, whole steps).

use crate::common::scalarize;
use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver::{self, lower_function};
use nnc::ir::{self, Builder, DType, Dim, Func, Type};
use nnc::runtime::backend::{runner, step_runner, BackendKind};
use nnc::runtime::step::step_function;
use nnc::runtime::train::initial_weights;
use nnc::sema::TrainPlan;
use std::path::Path;

const TOL: f64 = 1e-5;
const LONG: f64 = 8.0;
const JIT: BackendKind = BackendKind::Jit { threads: 1 };
const INTERP: BackendKind = BackendKind::Interp;
/// Batch 1, and odd sizes: not multiples of the 4 lanes of a vector.
const BATCHES: [usize; 3] = [1, 7, 13];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn assert_close(what: &str, want: &ArrayD<f32>, got: &ArrayD<f32>, k: f64) {
    assert_eq!(want.shape(), got.shape(), "{what}: shapes");
    for (i, (&w, &g)) in want.iter().zip(got.iter()).enumerate() {
        let (w, g) = (f64::from(w), f64::from(g));
        let same_special = (w.is_nan() && g.is_nan()) || (w.is_infinite() && w == g);
        assert!(
            same_special || (g - w).abs() <= TOL * k * w.abs().max(1.0),
            "{what}[{i}]: compiled {g}, interpreter {w}"
        );
    }
}

/// Uniform in [lo, hi), the same numbers on every run.
fn uniform(dims: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f32> {
    let n: usize = dims.iter().product();
    let v = (0..n as u64)
        .map(|i| (lo + (hi - lo) * ir::random_uniform(seed, i)) as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(dims), v).unwrap()
}

/// Class ids in `0..classes`.
fn labels(n: usize, classes: usize, seed: u64) -> ArrayD<f32> {
    let v = (0..n as u64).map(|i| (ir::random_bits(seed, i) % classes as u64) as f32).collect();
    ArrayD::from_shape_vec(IxDyn(&[n]), v).unwrap()
}

fn dims(ty: &Type, batch: usize) -> Vec<usize> {
    ty.shape
        .iter()
        .map(|d| match d {
            Dim::Known(n) => *n,
            Dim::Sym(_) => batch,
        })
        .collect()
}

fn classes(plan: &TrainPlan) -> usize {
    // A block of steps with no model (a GAN) ignores the labels.
    let Some(ev) = &plan.eval else { return 10 };
    let out = ev.predict.ty(ev.predict.results[0]);
    out.shape.last().and_then(Dim::known).unwrap_or(1).max(1)
}

/// A batch of random samples for `plan`: features in [-1, 1), labels valid
/// for its loss (class ids, or 0/1 targets).
fn batch(plan: &TrainPlan, b: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let x = match plan.input.dtype {
        // Token ids (a character model's input): valid for any table.
        DType::I32 => uniform(&dims(&plan.input, b), seed, 0.0, 4.0).mapv(f32::floor),
        DType::F32 => uniform(&dims(&plan.input, b), seed, -1.0, 1.0),
    };
    let ys = dims(&plan.label, b);
    let y = match plan.label.dtype {
        // A class per sample, or per position of a sequence ([b, steps]).
        DType::I32 => labels(ys.iter().product(), classes(plan), seed + 1)
            .into_shape_with_order(IxDyn(&ys))
            .unwrap(),
        DType::F32 => uniform(&ys, seed + 1, 0.0, 1.0).mapv(f32::round),
    };
    (x, y)
}

/// Initialisation, prediction, loss and two whole training steps, each on
/// both backends.
fn check_plan(name: &str, plan: &TrainPlan) {
    let mut init = [runner(INTERP, &plan.init), runner(JIT, &plan.init)];
    let inits: Vec<Vec<ArrayD<f32>>> = init.iter_mut().map(|r| r.call(&[]).unwrap()).collect();
    for (i, (w, g)) in inits[0].iter().zip(&inits[1]).enumerate() {
        assert_close(&format!("{name}: init {i}"), w, g, 1.0);
    }
    let w = initial_weights(plan).unwrap();
    let per_step = plan.states_per_step();
    for b in BATCHES {
        let (x, y) = batch(plan, b, 100 + b as u64);
        if let Some(ev) = &plan.eval {
            let mut args = vec![&x];
            args.extend(w.params.iter());
            let want = runner(INTERP, &ev.predict).call(&args).unwrap();
            let got = runner(JIT, &ev.predict).call(&args).unwrap();
            assert_close(&format!("{name}: predict, batch {b}"), &want[0], &got[0], LONG);
            args.insert(1, &y);
            let want = runner(INTERP, &ev.loss).call(&args).unwrap();
            let got = runner(JIT, &ev.loss).call(&args).unwrap();
            for (r, (w, g)) in want.iter().zip(&got).enumerate() {
                assert_close(&format!("{name}: loss result {r}, batch {b}"), w, g, LONG);
            }
        }
        for (k, &count) in per_step.iter().enumerate() {
            let step_fn = step_function(plan, k).0;
            let first: usize = per_step[..k].iter().sum();
            // Optimizer state as in mid-training (positive, of order 1), not the
            // initial zeros: with zero second moments Adam divides a gradient by
            // its own magnitude, so a gradient that is a sum cancelling to ~1e-8
            // would turn f32 rounding into a visible change of the weight.
            let states = w.states[first..first + count]
                .iter()
                .enumerate()
                .map(|(i, s)| uniform(s.shape(), 200 + i as u64, 0.5, 1.5));
            let mut weights: Vec<Vec<ArrayD<f32>>> = vec![w.params.iter().cloned().chain(states).collect(); 2];
            let mut steps = [step_runner(INTERP, &step_fn), step_runner(JIT, &step_fn)];
            // Two steps, so the second runs on updated weights and state.
            for t in 5..=6 {
                let stepv = ArrayD::from_elem(IxDyn(&[]), t as f32);
                let lr = ArrayD::from_elem(IxDyn(&[]), 0.01f32);
                let mut outs = vec![];
                for (s, ws) in steps.iter_mut().zip(weights.iter_mut()) {
                    outs.push(s.step([x.view(), y.view(), stepv.view(), lr.view()], ws).unwrap());
                }
                let what = format!("{name}: step {k} run {t}, batch {b}");
                assert_close(
                    &format!("{what}, loss"),
                    &ArrayD::from_elem(IxDyn(&[]), outs[0].0),
                    &ArrayD::from_elem(IxDyn(&[]), outs[1].0),
                    LONG,
                );
                assert_close(&format!("{what}, output"), &outs[0].1, &outs[1].1, LONG);
                for (i, (w, g)) in weights[0].iter().zip(&weights[1]).enumerate() {
                    assert_close(&format!("{what}, weight {i}"), w, g, LONG);
                }
                // Both continue from the oracle's weights, so one step's error
                // is compared, not two steps' accumulated through Adam.
                weights[1] = weights[0].clone();
            }
        }
    }
}

fn compile_plans(name: &str, src: &str) -> Vec<TrainPlan> {
    let c = driver::compile(name, src);
    assert!(!c.has_errors(), "{name}: {:?}", c.diagnostics());
    c.analysis.plans.clone()
}

/// Every weight here is uniform in ±1 (not an initialiser's scale), so
/// values grow with each product in the chain, and so does their f32
/// rounding: beyond the MLP's three products, each adds one long sum's
/// allowance (LeNet-5 has five, with outputs near 20).
fn chain_tolerance(f: &Func) -> f64 {
    let products = f.insts.iter().filter(|i| i.op == ir::Op::MatMul).count();
    LONG * products.saturating_sub(2).max(1) as f64
}

/// A model's forward function on random inputs (symbolic dims at `b`).
fn check_model(name: &str, f: &Func) {
    for b in BATCHES {
        let args: Vec<ArrayD<f32>> = f
            .params
            .iter()
            .enumerate()
            .map(|(i, &p)| match f.ty(p).dtype {
                // Ids (token inputs): positions 0..4, valid for any table.
                DType::I32 => uniform(&dims(f.ty(p), b), 300 + i as u64, 0.0, 4.0).mapv(f32::floor),
                // Weight matrices scaled as an initialiser would (by
                // 1/sqrt(rows)): a recurrence of 28 steps through [-1, 1)
                // weights is chaotic and amplifies f32 rounding without
                // bound, which would be no disagreement of the backends.
                DType::F32 if i > 0 && f.ty(p).rank() == 2 => {
                    let d = dims(f.ty(p), b);
                    uniform(&d, 300 + i as u64, -1.0, 1.0) / (d[0] as f32).sqrt()
                }
                DType::F32 => uniform(&dims(f.ty(p), b), 300 + i as u64, -1.0, 1.0),
            })
            .collect();
        let refs: Vec<&ArrayD<f32>> = args.iter().collect();
        let want = runner(INTERP, f).call(&refs).unwrap();
        let got = runner(JIT, f).call(&refs).unwrap();
        for (r, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_close(&format!("{name}: model result {r}, batch {b}"), w, g, chain_tolerance(f));
        }
    }
}

/// The names declared by `keyword` (`fn`, `optimizer`) in the stdlib.
fn stdlib_names(keyword: &str) -> Vec<String> {
    let mut names = vec![];
    for entry in std::fs::read_dir(root().join("stdlib")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(keyword).and_then(|r| r.strip_prefix(' ')) {
                names.push(rest.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap().to_string());
            }
        }
    }
    names.sort();
    names
}

/// A small classifier trained with `optimizer`.
fn optimizer_program(optimizer: &str) -> String {
    format!(
        "model M(x: [batch, 5]) -> [batch, 3] = x |> Dense(5 -> 6, tanh) |> Dense(6 -> 3)\n\
         train M {{\n data = tensors(x: [[0, 0, 0, 0, 0]], y: [[0, 1, 0]])\n loss = mse(model(x), y)\n optimizer = {optimizer}()\n}}\n"
    )
}

/// Initializers: every stdlib `fn` taking a `shape`.
fn initializers() -> Vec<String> {
    let mut out = vec![];
    for entry in std::fs::read_dir(root().join("stdlib")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("fn ").filter(|r| r.contains("(shape")) {
                out.push(rest.split('(').next().unwrap().to_string());
            }
        }
    }
    out
}

/// A layer with one parameter per initializer, so `init` draws from each.
fn initializer_program(inits: &[String]) -> String {
    let params: String = inits.iter().map(|i| format!("    param {i}_w: [5, 3] = {i}()\n")).collect();
    let sum = inits.iter().map(|i| format!("{i}_w")).collect::<Vec<_>>().join(" + ");
    format!(
        "layer Inits() {{\n{params}    fn forward(x: [..., 5]) -> [..., 3] = x @ ({sum})\n}}\n\
         model M(x: [batch, 5]) -> [batch, 3] = x |> Inits()\n\
         train M {{\n data = tensors(x: [[0, 0, 0, 0, 0]], y: [[0, 1, 0]])\n loss = mse(model(x), y)\n optimizer = sgd(lr: 0.1)\n}}\n"
    )
}

#[test]
fn every_test_program_agrees() {
    let mut files = vec![];
    for dir in ["examples", "tests/ui/ok"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "nn") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    for p in &files {
        let name = p.strip_prefix(root()).unwrap().display().to_string();
        let c = driver::compile(&name, &std::fs::read_to_string(p).unwrap());
        assert!(!c.has_errors(), "{name}: {:?}", c.diagnostics());
        for (model, f) in &c.analysis.model_funcs {
            check_model(&format!("{name}: {model}"), f);
        }
        for plan in &c.analysis.plans {
            check_plan(&name, plan);
        }
    }
}

#[test]
fn every_stdlib_optimizer_and_initializer_agrees() {
    let optimizers = stdlib_names("optimizer");
    assert!(optimizers.len() >= 7, "{optimizers:?}");
    for o in &optimizers {
        for plan in compile_plans(o, &optimizer_program(o)) {
            check_plan(&format!("optimizer {o}"), &plan);
        }
    }
    let inits = initializers();
    assert!(inits.len() >= 8, "{inits:?}");
    for plan in compile_plans("initializers", &initializer_program(&inits)) {
        check_plan("initializers", &plan);
    }
}

fn f32t(dims: &[usize]) -> Type {
    Type::f32(dims.iter().map(|&d| Dim::Known(d)).collect())
}

fn i32t(n: usize) -> Type {
    Type {
        dtype: DType::I32,
        shape: vec![Dim::Known(n)],
    }
}

/// Run `f` and the gradient of `scalarize(f)` on both backends.
fn check_function(name: &str, types: &[Type], args: &[ArrayD<f32>]) {
    let f = lower_function("", name, types).unwrap_or_else(|d| panic!("{name}: {d:?}"));
    check_lowered(name, &f, types, args);
}

/// `check_function` for a function of `src`, in training or evaluation mode.
fn check_function_in(src: &str, name: &str, training: bool, types: &[Type], args: &[ArrayD<f32>]) {
    let f = nnc::driver::lower_function_in_mode(src, name, types, training).unwrap_or_else(|d| panic!("{name}: {d:?}"));
    check_lowered(&format!("{name} (training: {training})"), &f, types, args);
}

fn check_lowered(name: &str, f: &Func, types: &[Type], args: &[ArrayD<f32>]) {
    let wrt: Vec<usize> = (0..types.len()).filter(|&i| types[i].dtype == DType::F32).collect();
    let g = grad_func(&scalarize(f), &wrt);
    let refs: Vec<&ArrayD<f32>> = args.iter().collect();
    for (what, func) in [("value", f), ("gradient", &g)] {
        let want = runner(INTERP, func).call(&refs).unwrap();
        let got = runner(JIT, func).call(&refs).unwrap();
        for (r, (w, c)) in want.iter().zip(&got).enumerate() {
            assert_close(&format!("{name} {what} {r} at {:?}", args[0].shape()), w, c, LONG);
        }
    }
}

#[test]
fn every_stdlib_function_agrees() {
    let inits = initializers();
    let mut covered: Vec<String> = inits.clone();
    for (rows, cols) in [(1, 1), (1, 5), (7, 13), (13, 3)] {
        let s = [rows, cols];
        let x = uniform(&s, 1, -2.0, 2.0);
        for name in [
            "identity",
            "step",
            "sigmoid",
            "softplus",
            "relu",
            "leaky_relu",
            "logsumexp",
            "log_softmax",
            "softmax",
            "l1",
            "l2",
        ] {
            check_function(name, &[f32t(&s)], std::slice::from_ref(&x));
            covered.push(name.into());
        }
        let t = uniform(&s, 2, -1.0, 1.0);
        for name in ["mse", "mae"] {
            check_function(name, &[f32t(&s), f32t(&s)], &[x.clone(), t.clone()]);
            covered.push(name.into());
        }
        let probs = uniform(&s, 3, 0.05, 0.95);
        check_function("categorical_cross_entropy", &[f32t(&s), f32t(&s)], &[x.clone(), probs.clone()]);
        let targets = uniform(&s, 4, 0.0, 1.0).mapv(f32::round);
        check_function("binary_cross_entropy", &[f32t(&s), f32t(&s)], &[probs, targets.clone()]);
        check_function("binary_cross_entropy_with_logits", &[f32t(&s), f32t(&s)], &[x.clone(), targets]);
        let y = labels(rows, cols, 5);
        for name in ["cross_entropy", "pick"] {
            check_function(name, &[f32t(&s), i32t(rows)], &[x.clone(), y.clone()]);
        }
        // A class at each of 3 positions; the mask drops the last.
        let x3 = uniform(&[rows, 3, cols], 6, -1.0, 1.0);
        let y3 = labels(rows * 3, cols, 8).into_shape_with_order(IxDyn(&[rows, 3])).unwrap();
        let y3t = Type {
            dtype: DType::I32,
            shape: vec![Dim::Known(rows), Dim::Known(3)],
        };
        check_function(
            "sequence_cross_entropy",
            &[f32t(&[rows, 3, cols]), y3t.clone()],
            &[x3.clone(), y3.clone()],
        );
        let m3 = ArrayD::from_shape_fn(IxDyn(&[rows, 3]), |i| if i[1] < 2 { 1.0 } else { 0.0 });
        check_function(
            "masked_sequence_cross_entropy",
            &[f32t(&[rows, 3, cols]), y3t, f32t(&[rows, 3])],
            &[x3.clone(), y3, m3.clone()],
        );
        let old = uniform(&[rows, 3, cols], 12, -1.0, 1.0);
        let m31 = m3.clone().into_shape_with_order(IxDyn(&[rows, 3, 1])).unwrap();
        check_function(
            "keep_masked",
            &[f32t(&[rows, 3, 1]), f32t(&[rows, 3, cols]), f32t(&[rows, 3, cols])],
            &[m31, x3.clone(), old],
        );
        check_function("flatten", &[f32t(&[rows, 3, cols])], std::slice::from_ref(&x3));
        for name in ["last", "reverse_steps"] {
            check_function(name, &[f32t(&[rows, 3, cols])], std::slice::from_ref(&x3));
        }
    }
    // Attention: several heads, masks, positions (odd sizes).
    for n in [1, 3] {
        let x = uniform(&[n, 5, 6], 7, -1.0, 1.0);
        let kv = uniform(&[n, 7, 6], 8, -1.0, 1.0);
        check_function(
            "attention",
            &[f32t(&[n, 5, 6]), f32t(&[n, 7, 6]), f32t(&[n, 7, 6])],
            &[x.clone(), kv.clone(), kv],
        );
        for name in ["gelu", "gelu_tanh", "positional_encoding"] {
            check_function(name, &[f32t(&[n, 5, 6])], std::slice::from_ref(&x));
        }
        let ids = uniform(&[n, 5], 9, 0.0, 3.0).mapv(f32::floor);
        let ids_t = Type {
            dtype: DType::I32,
            shape: vec![Dim::Known(n), Dim::Known(5)],
        };
        check_function("padding_mask", &[ids_t], &[ids]);
        let lengths = uniform(&[n], 11, 0.0, 6.0).mapv(f32::floor);
        let lengths_t = Type {
            dtype: DType::I32,
            shape: vec![Dim::Known(n)],
        };
        let src = "fn lengths_to_mask(lengths: i32[n]) = length_mask(lengths, 5)";
        let f = lower_function(src, "lengths_to_mask", &[lengths_t]).unwrap();
        let refs = [&lengths];
        let want = runner(INTERP, &f).call(&refs).unwrap();
        let got = runner(JIT, &f).call(&refs).unwrap();
        assert_close("length_mask", &want[0], &got[0], LONG);
    }
    for t in [1, 5] {
        let one = uniform(&[1], 10, 0.0, 1.0);
        let src = format!("fn tables(x: [1]) = x * concat([causal_mask({t}), sinusoidal_positions({t}, {t} + 1)], axis: -1)");
        let f = lower_function(&src, "tables", &[f32t(&[1])]).unwrap();
        let refs = [&one];
        let want = runner(INTERP, &f).call(&refs).unwrap();
        let got = runner(JIT, &f).call(&refs).unwrap();
        assert_close(&format!("causal_mask and sinusoidal_positions at {t}"), &want[0], &got[0], LONG);
    }
    covered.extend(
        [
            "attention",
            "gelu",
            "gelu_tanh",
            "positional_encoding",
            "padding_mask",
            "length_mask",
            "keep_masked",
            "sequence_cross_entropy",
            "masked_sequence_cross_entropy",
            "causal_mask",
            "sinusoidal_positions",
            "categorical_cross_entropy",
            "binary_cross_entropy",
            "binary_cross_entropy_with_logits",
            "cross_entropy",
            "pick",
            "flatten",
            "last",
            "reverse_steps",
        ]
        .map(String::from),
    );
    // Dropout in both modes (training: a fixed key's mask; evaluation: the identity).
    for training in [true, false] {
        let x = uniform(&[6, 9], 7, -2.0, 2.0);
        let src = "fn dropout_third(x) = dropout(x, 0.3)";
        check_function_in(src, "dropout_third", training, &[f32t(&[6, 9])], &[x]);
    }
    covered.push("dropout".into());
    // A stdlib function added without a case here fails this test.
    for name in stdlib_names("fn") {
        assert!(covered.contains(&name), "stdlib fn `{name}` has no differential case");
    }
}

/// The compiled gradient of each example's loss with respect to every
/// parameter, against f64 central differences of the interpreter's loss.
#[test]
fn compiled_gradients_match_finite_differences() {
    for file in [
        "examples/xor.nn",
        "examples/digits.nn",
        "examples/neuron.nn",
        "tests/ui/ok/moving_ops.nn",
    ] {
        let src = std::fs::read_to_string(root().join(file)).unwrap();
        for plan in compile_plans(file, &src) {
            let b = 3;
            let f = plan.evaluation().unwrap().loss.specialize(&|_| Some(b));
            // The loss alone (`plan.loss` also returns the model's output).
            let mut bld = Builder::new("loss_only");
            let ps: Vec<_> = f.params.iter().map(|&p| bld.param("p", f.ty(p).clone())).collect();
            let l = bld.inline(&f, &ps)[0];
            let loss = bld.finish(&[l]);
            let wrt: Vec<usize> = (2..loss.params.len()).collect();
            let g = grad_func(&loss, &wrt);
            let (x, y) = batch(&plan, b, 7);
            let w = initial_weights(&plan).unwrap();
            let mut args: Vec<ArrayD<f32>> = vec![x, y];
            args.extend(w.params.iter().cloned());
            let refs: Vec<&ArrayD<f32>> = args.iter().collect();
            let grads = runner(JIT, &g).call(&refs).unwrap();
            let f64args: Vec<ir::interp::Tensor> = args.iter().map(|a| a.mapv(f64::from)).collect();
            let at = |a: &[ir::interp::Tensor]| ir::interp::run(&loss, a).unwrap()[0].iter().next().copied().unwrap();
            let h = 1e-5;
            for (k, &i) in wrt.iter().enumerate() {
                // Up to 12 entries of each parameter, spread over it.
                let n = args[i].len();
                for j in (0..n).step_by(n.div_ceil(12)) {
                    let (mut plus, mut minus) = (f64args.clone(), f64args.clone());
                    plus[i].as_slice_mut().unwrap()[j] += h;
                    minus[i].as_slice_mut().unwrap()[j] -= h;
                    let numeric = (at(&plus) - at(&minus)) / (2.0 * h);
                    let compiled = f64::from(grads[1 + k].as_slice().unwrap()[j]);
                    assert!(
                        (compiled - numeric).abs() <= 1e-4 * numeric.abs().max(1.0),
                        "{file}: d loss / d param {k}[{j}]: compiled {compiled}, finite differences {numeric}"
                    );
                }
            }
        }
    }
}
