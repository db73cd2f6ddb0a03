//! The stdlib's `Lstm` and `Gru` against PyTorch's `torch.nn.LSTM` and
//! `torch.nn.GRU` on the same weights (gates in PyTorch's order, so
//! `weight_ih` is `Wx` transposed): every step's state, the loss and the
//! gradient of every parameter, both sides in float64. Needs Python with
//! torch, safetensors and numpy (CI's `.ci/run` installs them); fails
//! saying so otherwise.

use crate::export_onnx::{python, require_python, scratch, write_tensors};
use ndarray::{ArrayD, IxDyn};
use nnc::driver;
use nnc::ir::interp;
use safetensors::{Dtype, SafeTensors};
use std::path::Path;
use std::process::Command;

const STEPS: usize = 6;
const INPUTS: usize = 3;
const HIDDEN: usize = 4;
const BATCH: usize = 5;

fn uniform(dims: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f32> {
    let n: usize = dims.iter().product();
    let v = (0..n as u64)
        .map(|i| (lo + (hi - lo) * nnc::ir::random_uniform(seed, i)) as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(dims), v).unwrap()
}

fn read_f64(st: &SafeTensors, name: &str) -> ArrayD<f64> {
    let t = st.tensor(name).unwrap_or_else(|_| panic!("no tensor `{name}`"));
    assert_eq!(t.dtype(), Dtype::F64, "{name}");
    let v: Vec<f64> = t
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(t.shape()), v).unwrap()
}

fn assert_close(what: &str, torch: &ArrayD<f64>, nnc: &ArrayD<f64>) {
    assert_eq!(torch.shape(), nnc.shape(), "{what}: shapes");
    for (i, (t, n)) in torch.iter().zip(nnc).enumerate() {
        assert!((t - n).abs() <= 1e-10 * n.abs().max(1.0), "{what}[{i}]: PyTorch {t}, nnc {n}");
    }
}

/// `layer` over `STEPS` steps, every state compared, in nnc's f64
/// interpreter and in PyTorch (`kind`: lstm or gru).
fn agree(kind: &str, layer: &str) {
    let out = STEPS * HIDDEN;
    let src = format!(
        "model M(x: [batch, {STEPS}, {INPUTS}]) -> [batch, {out}] = x |> {layer} |> flatten\n\
         train M {{\n data = tensors(x: [[{}]], y: [[{}]])\n loss = mse(model(x), y)\n optimizer = sgd\n}}\n",
        vec!["0"; STEPS * INPUTS].join(", "),
        vec!["0"; out].join(", ")
    );
    let c = driver::compile(kind, &src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let plan = &c.analysis.plans[0];
    let x = uniform(&[BATCH, STEPS, INPUTS], 1, -1.0, 1.0);
    let y = uniform(&[BATCH, out], 2, -0.5, 0.5);
    // Random weights, biases included, rather than the initial zeros.
    let weights: Vec<ArrayD<f32>> = plan
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let dims: Vec<usize> = p.ty.shape.iter().map(|d| d.known().unwrap()).collect();
            uniform(&dims, 10 + i as u64, -0.6, 0.6)
        })
        .collect();
    let short = |name: &str| name.rsplit('.').next().unwrap().to_string();
    let mut cases = vec![("x".to_string(), x.clone()), ("y".to_string(), y.clone())];
    cases.extend(plan.params.iter().zip(&weights).map(|(p, w)| (short(&p.name), w.clone())));
    let dir = scratch(&format!("seq-torch-{kind}"));
    let cases_path = dir.join("cases.safetensors");
    write_tensors(&cases_path, &cases);
    let result = dir.join("torch.safetensors");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seq/torch_rnn.py");
    let run = Command::new(python())
        .arg(&script)
        .arg(kind)
        .arg(&cases_path)
        .arg(&result)
        .output()
        .expect("python");
    assert!(run.status.success(), "{kind}: {}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&result).unwrap();
    let torch = SafeTensors::deserialize(&bytes).unwrap();

    let w64: Vec<ArrayD<f64>> = weights.iter().map(|w| w.mapv(f64::from)).collect();
    let mut args = vec![x.mapv(f64::from)];
    args.extend(w64.iter().cloned());
    let states = interp::run(&plan.evaluation().unwrap().predict, &args).unwrap().remove(0);
    assert_close(&format!("{kind}: states"), &read_f64(&torch, "output"), &states);
    let mut loss_only = plan.evaluation().unwrap().loss.clone();
    loss_only.results.truncate(1);
    let wrt: Vec<usize> = (2..loss_only.params.len()).collect();
    let grad = nnc::autodiff::grad_func(&loss_only, &wrt);
    let mut args = vec![x.mapv(f64::from), y.mapv(f64::from)];
    args.extend(w64);
    let results = interp::run(&grad, &args).unwrap();
    assert_close(&format!("{kind}: loss"), &read_f64(&torch, "loss"), &results[0]);
    for (i, p) in plan.params.iter().enumerate() {
        let name = format!("grad/{}", short(&p.name));
        assert_close(&format!("{kind}: {name}"), &read_f64(&torch, &name), &results[1 + i]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lstm_states_and_gradients_equal_torch_nn_lstm() {
    require_python(&["torch", "safetensors", "numpy"]);
    agree("lstm", &format!("Lstm({INPUTS} -> {HIDDEN})"));
}

#[test]
fn gru_states_and_gradients_equal_torch_nn_gru() {
    require_python(&["torch", "safetensors", "numpy"]);
    agree("gru", &format!("Gru({INPUTS} -> {HIDDEN})"));
}
