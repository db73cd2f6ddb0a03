//! Sequences: `scan` and the recurrent stdlib layers. Backpropagation
//! through time against f64 central differences through 1, 2 and 7 steps,
//! the compiled gradient against the interpreter's, the initialisers
//! (orthogonal recurrent weights, forget-gate bias 1), a scan of several
//! hundred steps, and LSTM/GRU on MNIST rows.

use ndarray::{ArrayD, Ix2, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver;
use nnc::ir::{self, Builder, Func};
use nnc::runtime::backend::{runner, BackendKind};
use nnc::runtime::train::initial_weights;
use nnc::sema::TrainPlan;
use std::process::Command;

const JIT: BackendKind = BackendKind::Jit { threads: 1 };

fn plans(name: &str, src: &str) -> Vec<TrainPlan> {
    let c = driver::compile(name, src);
    assert!(!c.has_errors(), "{name}: {:?}\n{src}", c.diagnostics());
    c.analysis.plans.clone()
}

fn uniform(dims: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f32> {
    let n: usize = dims.iter().product();
    let v = (0..n as u64)
        .map(|i| (lo + (hi - lo) * ir::random_uniform(seed, i)) as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(dims), v).unwrap()
}

/// A model of `steps` steps of 3 features through `layer` (`hidden`
/// features out), read at the last step or at every step, into 2 outputs.
fn program(layer: &str, hidden: usize, steps: usize, all_states: bool) -> String {
    program_of(layer, 3, hidden, steps, all_states)
}

/// `program` with `inputs` features per step.
fn program_of(layer: &str, inputs: usize, hidden: usize, steps: usize, all_states: bool) -> String {
    let head = if all_states {
        format!("|> flatten |> Dense({} -> 2)", steps * hidden)
    } else {
        format!("|> last |> Dense({hidden} -> 2)")
    };
    let zeros = vec!["0"; steps * inputs].join(", ");
    format!(
        "model M(x: [batch, {steps}, {inputs}]) -> [batch, 2] = x |> {layer} {head}\n\
         train M {{\n data = tensors(x: [[{zeros}]], y: [[0, 1]])\n loss = mse(model(x), y)\n optimizer = sgd\n}}\n"
    )
}

/// The loss alone of `plan` (it also returns the model's output) at batch `b`.
fn loss_only(plan: &TrainPlan, b: usize) -> Func {
    let f = plan.evaluation().unwrap().loss.specialize(&|_| Some(b));
    let mut bld = Builder::new("loss_only");
    let ps: Vec<_> = f.params.iter().map(|&p| bld.param("p", f.ty(p).clone())).collect();
    let l = bld.inline(&f, &ps)[0];
    bld.finish(&[l])
}

/// The gradient of the loss with respect to every parameter, from the f64
/// interpreter, against central differences of the interpreter's loss;
/// and the compiled (f32) gradient against the interpreter's.
fn check_bptt(what: &str, src: &str) {
    for plan in plans(what, src) {
        let b = 2;
        let loss = loss_only(&plan, b);
        let wrt: Vec<usize> = (2..loss.params.len()).collect();
        let g = grad_func(&loss, &wrt);
        let dims: Vec<usize> = plan.input.shape.iter().map(|d| d.known().unwrap_or(b)).collect();
        let x = match plan.input.dtype {
            // Token ids, in range for a table of 6 rows.
            ir::DType::I32 => uniform(&dims, 11, 0.0, 6.0).mapv(f32::floor),
            ir::DType::F32 => uniform(&dims, 11, -1.0, 1.0),
        };
        let y = uniform(&[b, 2], 12, 0.0, 1.0);
        let w = initial_weights(&plan).unwrap();
        let mut args: Vec<ArrayD<f32>> = vec![x, y];
        args.extend(w.params.iter().cloned());
        let f64args: Vec<ir::interp::Tensor> = args.iter().map(|a| a.mapv(f64::from)).collect();
        let exact = ir::interp::run(&g, &f64args).unwrap();
        let at = |a: &[ir::interp::Tensor]| ir::interp::run(&loss, a).unwrap()[0].iter().next().copied().unwrap();
        let h = 1e-6;
        for (k, &i) in wrt.iter().enumerate() {
            let n = args[i].len();
            for j in (0..n).step_by(n.div_ceil(24)) {
                let (mut plus, mut minus) = (f64args.clone(), f64args.clone());
                plus[i].as_slice_mut().unwrap()[j] += h;
                minus[i].as_slice_mut().unwrap()[j] -= h;
                let numeric = (at(&plus) - at(&minus)) / (2.0 * h);
                let analytic = exact[1 + k].as_slice().unwrap()[j];
                assert!(
                    (analytic - numeric).abs() <= 1e-6 * numeric.abs().max(1.0),
                    "{what}: d loss / d {}[{j}]: autodiff {analytic}, finite differences {numeric}",
                    plan.params[k].name
                );
            }
        }
        let refs: Vec<&ArrayD<f32>> = args.iter().collect();
        let compiled = runner(JIT, &g).call(&refs).unwrap();
        for (k, (c, e)) in compiled.iter().zip(&exact).enumerate() {
            for (&c, &e) in c.iter().zip(e.iter()) {
                assert!(
                    (f64::from(c) - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{what}: result {k} of the gradient: compiled {c}, interpreter {e}"
                );
            }
        }
    }
}

#[test]
fn backpropagation_through_1_2_7_and_40_steps_matches_finite_differences() {
    for (layer, hidden) in [
        ("Rnn(3 -> 4)", 4),
        ("Lstm(3 -> 4)", 4),
        ("Gru(3 -> 4)", 4),
        ("Lstm(3 -> 3) |> Gru(3 -> 2)", 2),
        ("Bidirectional(Lstm(3 -> 2), Gru(3 -> 2))", 4),
    ] {
        // 1, 2 and 7 steps are unrolled, 40 a `scan` op of the IR.
        for steps in [1, 2, 7, 40] {
            for all_states in [false, true] {
                let src = program(layer, hidden, steps, all_states);
                check_bptt(&format!("{layer}, {steps} steps, all states {all_states}"), &src);
            }
        }
    }
}

#[test]
fn embedding_gradient_is_a_scatter_add_that_matches_finite_differences() {
    let src = "model M(x: i32[batch, 5]) -> [batch, 2] = x |> Embedding(6 -> 3) |> Lstm(3 -> 2) |> last |> Dense(2 -> 2)\n\
         train M {\n data = tensors(x: [[0, 1, 2, 3, 4]], y: [[0, 1]])\n loss = mse(model(x), y)\n optimizer = sgd\n}\n";
    let c = driver::compile("embedding", src);
    if c.has_errors() {
        panic!("{:?}", c.diagnostics());
    }
    let p = &c.analysis.plans[0];
    let g = ir::print_func(&grad_func(&loss_only(p, 2), &[2]));
    assert!(g.contains("scatter_add"), "{g}");
    assert!(!g.contains("one_hot"), "{g}");
    check_bptt("embedding", src);
}

/// The initial value of parameter `name` of the first plan of `src`.
fn initial(src: &str, name: &str) -> ArrayD<f32> {
    let plan = &plans("init", src)[0];
    let w = initial_weights(plan).unwrap();
    let i = plan
        .params
        .iter()
        .position(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    w.params[i].clone()
}

/// max |A Aᵀ − I| over the smaller side of `a`.
fn orthogonality_error(a: &ArrayD<f32>) -> f64 {
    let a = a.clone().into_dimensionality::<Ix2>().unwrap().mapv(f64::from);
    let (r, c) = a.dim();
    let g = if r <= c { a.dot(&a.t()) } else { a.t().dot(&a) };
    let n = r.min(c);
    let mut worst = 0f64;
    for i in 0..n {
        for j in 0..n {
            let want = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((g[[i, j]] - want).abs());
        }
    }
    worst
}

#[test]
fn recurrent_weights_start_orthogonal_and_the_forget_gate_open() {
    for (layer, name) in [
        ("Rnn(28 -> 128)", "rnn1.Wh"),
        ("Lstm(28 -> 128)", "lstm1.Wh"),
        ("Gru(28 -> 64)", "gru1.Wh"),
        ("Rnn(3 -> 2)", "rnn1.Wh"),
    ] {
        let sizes: Vec<usize> = layer
            .trim_end_matches(')')
            .split('(')
            .nth(1)
            .unwrap()
            .split(" -> ")
            .map(|n| n.parse().unwrap())
            .collect();
        let src = program_of(layer, sizes[0], sizes[1], 2, false);
        let wh = initial(&src, name);
        let err = orthogonality_error(&wh);
        assert!(err < 1e-4, "{layer}: {name} is {err} from orthogonal");
        // Orthogonal, not merely scaled: its entries are not all equal.
        assert!(wh.iter().any(|&v| (v - wh[[0, 0]]).abs() > 1e-3), "{layer}");
    }
    let b = initial(&program("Lstm(3 -> 4)", 4, 2, false), "lstm1.b");
    let want: Vec<f32> = [0.0; 4].into_iter().chain([1.0; 4]).chain([0.0; 8]).collect();
    assert_eq!(b.iter().copied().collect::<Vec<_>>(), want);
}

#[test]
fn scans_of_400_and_1000_steps_compile_and_train() {
    // The JIT's loss and training step agree with the interpreter's loss.
    for steps in [400, 1000] {
        let src = program("Rnn(3 -> 8)", 8, steps, false);
        let plan = &plans("long", &src)[0];
        let b = 4;
        let x = uniform(&[b, steps, 3], 21, -1.0, 1.0);
        let y = uniform(&[b, 2], 22, 0.0, 1.0);
        let w = initial_weights(plan).unwrap();
        let mut args = vec![&x, &y];
        args.extend(w.params.iter());
        let want = runner(BackendKind::Interp, &plan.evaluation().unwrap().loss).call(&args).unwrap();
        let got = runner(JIT, &plan.evaluation().unwrap().loss).call(&args).unwrap();
        let (w0, g0) = (want[0].iter().next().unwrap(), got[0].iter().next().unwrap());
        assert!((w0 - g0).abs() <= 1e-4 * w0.abs().max(1.0), "{steps} steps: {w0} vs {g0}");
        let step = nnc::runtime::step::training_step(plan).0;
        let mut jit = nnc::runtime::backend::step_runner(JIT, &step);
        let mut weights: Vec<ArrayD<f32>> = w.params.iter().cloned().chain(w.states.iter().cloned()).collect();
        let one = ArrayD::from_elem(IxDyn(&[]), 1f32);
        let lr = ArrayD::from_elem(IxDyn(&[]), 0.1f32);
        let (loss, _) = jit.step([x.view(), y.view(), one.view(), lr.view()], &mut weights).unwrap();
        assert!(
            loss.is_finite() && (loss - g0).abs() <= 1e-4 * g0.abs().max(1.0),
            "{steps} steps: {loss} vs {g0}"
        );
    }
}

/// The machine code of the training step of an LSTM over `steps` steps
/// (`nnc ir --stage clif`), and whether its IR holds a `scan` op.
fn step_code(steps: usize) -> (String, bool) {
    let src = program_of("Lstm(28 -> 16)", 28, 16, steps, false);
    let plan = &plans("code", &src)[0];
    let (f, _) = nnc::driver::training_step(plan);
    let f = nnc::opt::optimize(&f.specialize(&|_| Some(8)));
    let looped = f.insts.iter().any(|i| matches!(i.op, ir::Op::Scan { .. }));
    let weights = plan.params.len() + plan.states_per_step()[0];
    let (code, _) = nnc::runtime::backend::compile_step(&f, weights, &nnc::codegen::Options::threads(1)).unwrap();
    (code.clif_text(), looped)
}

#[test]
fn a_long_scan_is_one_loop_whose_code_does_not_grow_with_the_steps() {
    let (short, looped_short) = step_code(40);
    let (long, looped_long) = step_code(1000);
    assert!(looped_short && looped_long, "the scans are `scan` ops, not unrolled");
    let ratio = long.len() as f64 / short.len() as f64;
    assert!(ratio < 1.05, "1000 steps: {} bytes of CLIF, 40 steps: {}", long.len(), short.len());
    // Unrolled, the code grows with the steps.
    let (unrolled, looped) = step_code(28);
    assert!(!looped && unrolled.len() > short.len(), "28 steps are unrolled");
}

/// `nnc run FILE --quiet ...` on MNIST; returns stdout.
fn run_mnist(file: &str, name: &str, extra: &[&str]) -> String {
    let out = std::env::temp_dir().join(format!("nnc-seq-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["run", file, "--quiet", "--out", out.to_str().unwrap()])
        .args(extra)
        .arg("--data-dir")
        .arg(crate::common::data_dir("mnist"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nnc");
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let _ = std::fs::remove_dir_all(&out);
    stdout.into_owned()
}

fn test_accuracy(report: &str) -> f64 {
    let line = report
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("accuracy "))
        .unwrap_or_else(|| panic!("{report}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn lstm_and_gru_learn_mnist_rows_from_3000_images() {
    // One epoch of 47 steps: 54 % and 55 % measured (chance is 10 %).
    for (file, floor) in [("examples/lstm_mnist.nn", 0.40), ("examples/gru_mnist.nn", 0.40)] {
        let out = run_mnist(file, "rows", &["--limit", "3000", "--epochs", "1"]);
        let acc = test_accuracy(&out);
        assert!(acc >= floor, "{file}: test accuracy {acc}\n{out}");
    }
}
