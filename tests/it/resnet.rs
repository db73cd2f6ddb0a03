//! The stdlib's ResNet basic block (`ResidualBlock` in stdlib/conv.nn) in
//! a small probe model, in training mode (batch statistics, running
//! averages updated): its gradients against central differences, and the
//! whole training-mode step (loss, logits, gradients, running statistics)
//! plus the evaluation-mode logits against a torchvision-style BasicBlock
//! written in `tests/torch/resnet_oracle.py`, on the same weights, both in
//! f64. Without PyTorch the test fails saying so. The shortcut is checked
//! both ways: a projection in the first block (stride 2, 1 -> 4 channels),
//! the identity in the second.

use crate::export_onnx::{python, require_python, scratch, write_tensors};
use crate::export_pytorch::read_f64;
use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver;
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, Builder, Func};
use nnc::plan::TrainPlan;
use nnc::runtime::train::initial_weights;
use safetensors::SafeTensors;
use std::path::Path;
use std::process::Command;

const PROBE: &str = "
model Probe(x: [batch, 1, 28, 28]) -> [batch, 10] {
    let block1 = ResidualBlock(1 -> 4, stride: 2)
    let block2 = ResidualBlock(4 -> 4)
    let out = Dense(4 -> 10)
    return x |> avg_pool2d(4) |> block1 |> block2 |> GlobalAvgPool() |> out
}
train Probe {
    data       = mnist(\"mnist\")
    loss       = cross_entropy(model(x), y)
    optimizer  = adam(lr: 0.001)
    batch_size = 4
}
";

const BATCH: usize = 3;

fn plan() -> TrainPlan {
    let c = driver::compile("probe.nn", PROBE);
    let msgs: Vec<String> = c.diagnostics().iter().map(|d| format!("{} {}", d.code, d.message)).collect();
    assert!(msgs.is_empty(), "{msgs:?}");
    c.analysis.plans[0].clone()
}

fn uniform(dims: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let n: usize = dims.iter().product();
    let v = (0..n as u64)
        .map(|i| f64::from((lo + (hi - lo) * ir::random_uniform(seed, i)) as f32))
        .collect();
    ArrayD::from_shape_vec(IxDyn(dims), v).unwrap()
}

/// (x, y, key, params and buffers...) for the step's loss: weights away
/// from their initial values (so every term matters), running variances
/// positive, all rounded to f32 so PyTorch reads the same numbers.
fn arguments(plan: &TrainPlan) -> Vec<Tensor> {
    let w = initial_weights(plan).unwrap();
    let x = uniform(&[BATCH, 1, 28, 28], 1, 0.0, 1.0);
    let y = ArrayD::from_shape_vec(IxDyn(&[BATCH]), (0..BATCH).map(|i| ((i * 7 + 3) % 10) as f64).collect()).unwrap();
    let mut args = vec![x, y, ArrayD::from_elem(IxDyn(&[]), 3.0)];
    for (i, (p, meta)) in w.params.iter().zip(&plan.params).enumerate() {
        let seed = 40 + i as u64;
        let v = if meta.name.ends_with("running_var") {
            uniform(p.shape(), seed, 0.5, 1.5)
        } else if meta.name.ends_with("running_mean") {
            uniform(p.shape(), seed, -0.5, 0.5)
        } else {
            let p = p.mapv(f64::from) + uniform(p.shape(), seed, -0.5, 0.5);
            p.mapv(|v| f64::from(v as f32))
        };
        args.push(v);
    }
    args
}

/// The first result of `f` alone.
fn first_result(f: &Func) -> Func {
    let mut b = Builder::new("loss_only");
    let ps: Vec<_> = f.params.iter().map(|&p| b.param("p", f.ty(p).clone())).collect();
    let l = b.inline(f, &ps)[0];
    b.finish(&[l])
}

#[test]
fn the_blocks_have_a_projection_shortcut_only_where_the_shape_changes() {
    let names: Vec<String> = plan().params.iter().map(|p| p.name.clone()).collect();
    for want in [
        "block1.conv1.W",
        "block1.conv2.bn.gamma",
        "block1.shortcut.W",
        "block1.shortcut.bn.running_var",
    ] {
        assert!(names.iter().any(|n| n == want), "no `{want}` in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("block2.shortcut")), "{names:?}");
    // No bias before a batch norm: conv1, conv2 and the shortcut have only W.
    assert!(!names.iter().any(|n| n.starts_with("block") && n.ends_with(".b")), "{names:?}");
}

#[test]
fn residual_block_gradients_match_finite_differences_in_training_mode() {
    let plan = plan();
    let loss = first_result(&plan.steps[0].loss.specialize(&|_| Some(BATCH)));
    let args = arguments(&plan);
    let wrt: Vec<usize> = std::iter::once(0)
        .chain((3..loss.params.len()).filter(|&i| plan.params[i - 3].trainable))
        .collect();
    let g = grad_func(&loss, &wrt);
    ir::verify(&g).unwrap();
    let out = run(&g, &args).unwrap();
    let at = |a: &[Tensor]| run(&loss, a).unwrap()[0].iter().next().copied().unwrap();
    let h = 1e-6;
    for (k, &i) in wrt.iter().enumerate() {
        let what = if i == 0 { "x".to_string() } else { plan.params[i - 3].name.clone() };
        // Every entry of the block's weights; up to 40 of the image.
        let n = args[i].len();
        let step = if i == 0 { n.div_ceil(40) } else { 1 };
        for j in (0..n).step_by(step) {
            let (mut plus, mut minus) = (args.clone(), args.clone());
            plus[i].as_slice_mut().unwrap()[j] += h;
            minus[i].as_slice_mut().unwrap()[j] -= h;
            let numeric = (at(&plus) - at(&minus)) / (2.0 * h);
            let analytic = out[1 + k].as_slice().unwrap()[j];
            assert!(
                (analytic - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                "d loss / d {what}[{j}]: analytic {analytic} vs numeric {numeric}"
            );
        }
    }
}

/// PyTorch's state-dict name for an nnc parameter of the probe, and
/// whether nnc stores it transposed (only the dense layer's matrix).
fn torch_name(nnc: &str) -> (String, bool) {
    let parts: Vec<&str> = nnc.split('.').collect();
    fn bn(b: &str) -> &str {
        match b {
            "gamma" => "weight",
            "beta" => "bias",
            other => other,
        }
    }
    let name = match parts[..] {
        ["out", "W"] => return ("fc.weight".into(), true),
        ["out", "b"] => "fc.bias".into(),
        [block, "conv1", "W"] => format!("{block}.conv1.weight"),
        [block, "conv2", "W"] => format!("{block}.conv2.weight"),
        [block, "conv1", "bn", b] => format!("{block}.bn1.{}", bn(b)),
        [block, "conv2", "bn", b] => format!("{block}.bn2.{}", bn(b)),
        [block, "shortcut", "W"] => format!("{block}.downsample.0.weight"),
        [block, "shortcut", "bn", b] => format!("{block}.downsample.1.{}", bn(b)),
        _ => panic!("no PyTorch name for `{nnc}`"),
    };
    (name, false)
}

/// |got - want| <= 1e-9 * max(1, largest |want|).
fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!((g - w).abs() <= 1e-9 * scale, "{what}[{i}]: PyTorch {g}, nnc {w}");
    }
}

#[test]
fn residual_blocks_match_a_torchvision_basic_block_in_both_modes() {
    require_python(&["torch", "safetensors"]);
    let plan = plan();
    let step = &plan.steps[0];
    let f = step.loss.specialize(&|_| Some(BATCH));
    let args = arguments(&plan);
    // nnc, training mode: (loss, logits, running statistics'...) and the
    // gradients of the loss.
    let results = run(&f, &args).unwrap();
    let loss = first_result(&f);
    let wrt: Vec<usize> = std::iter::once(0)
        .chain((3..f.params.len()).filter(|&i| plan.params[i - 3].trainable))
        .collect();
    let grads = run(&grad_func(&loss, &wrt), &args).unwrap();
    // Evaluation mode: (x, params...) -> logits.
    let predict = plan.evaluation().unwrap().predict.specialize(&|_| Some(BATCH));
    let mut eval_args = vec![args[0].clone()];
    eval_args.extend(args[3..].iter().cloned());
    let eval_out = run(&predict, &eval_args).unwrap().remove(0);

    let f32s = |a: &Tensor| a.mapv(|v| v as f32);
    let mut tensors = vec![("x".to_string(), f32s(&args[0])), ("y".to_string(), f32s(&args[1]))];
    for (meta, a) in plan.params.iter().zip(&args[3..]) {
        let (t, transposed) = torch_name(&meta.name);
        let a = if transposed {
            a.t().as_standard_layout().to_owned()
        } else {
            a.clone()
        };
        tensors.push((format!("p/{t}"), f32s(&a)));
    }
    let dir = scratch("torch-resnet");
    let (inputs, result) = (dir.join("inputs.safetensors"), dir.join("torch.safetensors"));
    write_tensors(&inputs, &tensors);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch/resnet_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&inputs)
        .arg(&result)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&result).unwrap();
    let torch = SafeTensors::deserialize(&bytes).unwrap();

    assert_close("loss", &read_f64(&torch, "loss"), &results[0]);
    assert_close("training-mode logits", &read_f64(&torch, "out"), &results[1]);
    assert_close("d loss / d x", &read_f64(&torch, "grad/x"), &grads[1]);
    // grads: (loss, d/dx, d/d each trainable parameter...).
    for (k, meta) in (2..).zip(plan.params.iter().filter(|p| p.trainable)) {
        let (t, transposed) = torch_name(&meta.name);
        let got = read_f64(&torch, &format!("grad/{t}"));
        let got = if transposed { got.t().as_standard_layout().to_owned() } else { got };
        assert_close(&format!("d loss / d {}", meta.name), &got, &grads[k]);
    }
    assert_eq!(step.writes.len(), 2 * 5, "running mean and variance of five batch norms");
    for (r, &store) in step.writes.iter().enumerate() {
        let name = &plan.params[store].name;
        let (t, _) = torch_name(name);
        assert_close(
            &format!("{name} after the step"),
            &read_f64(&torch, &format!("after/{t}")),
            &results[2 + r],
        );
    }
    assert_close("evaluation-mode logits", &read_f64(&torch, "eval_out"), &eval_out);
}
