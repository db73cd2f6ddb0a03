//! Convolution and pooling against PyTorch (`tests/torch/conv_oracle.py`):
//! forward outputs and the gradients of `sum(y * r)` on fixed cases, in
//! float64 on both sides. Without PyTorch the test fails and says how to
//! install it (`.ci/run` does).

use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver::lower_function;
use nnc::ir::interp::{run, Tensor};
use nnc::ir::{self, Dim, Type};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

fn f32t(dims: &[usize]) -> Type {
    Type::f32(dims.iter().map(|&d| Dim::Known(d)).collect())
}

fn data(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    ArrayD::from_shape_vec(IxDyn(dims), (0..n as u64).map(|i| ir::random_normal(seed, i)).collect()).unwrap()
}

fn as_json(t: &Tensor) -> Value {
    json!({ "shape": t.shape(), "data": t.iter().copied().collect::<Vec<f64>>() })
}

/// One case: nnc arguments text, PyTorch's arguments, input shapes.
struct Case {
    op: &'static str,
    x: [usize; 4],
    /// The conv weight's shape, or the pooling kernel.
    w: [usize; 4],
    nn_args: &'static str,
    torch: Value,
}

fn cases() -> Vec<Case> {
    let conv = |x, w, nn_args, stride: [usize; 2], pad: [usize; 2], dilation: [usize; 2], groups: usize| Case {
        op: "conv2d",
        x,
        w,
        nn_args,
        torch: json!({ "stride": stride, "pad": pad, "dilation": dilation, "groups": groups }),
    };
    let pool = |op, x, k: [usize; 2], nn_args, stride: [usize; 2], pad: [usize; 2]| Case {
        op,
        x,
        w: [0, 0, k[0], k[1]],
        nn_args,
        torch: json!({ "kernel": k, "stride": stride, "pad": pad }),
    };
    vec![
        conv([2, 3, 9, 8], [4, 3, 3, 3], "", [1, 1], [0, 0], [1, 1], 1),
        conv([1, 3, 9, 7], [6, 3, 5, 3], ", stride: 2, pad: [2, 1]", [2, 2], [2, 1], [1, 1], 1),
        conv(
            [2, 4, 10, 10],
            [4, 2, 3, 3],
            ", stride: [1, 2], pad: 2, dilation: 2, groups: 2",
            [1, 2],
            [2, 2],
            [2, 2],
            2,
        ),
        conv([1, 4, 7, 7], [8, 1, 3, 3], ", pad: 1, groups: 4", [1, 1], [1, 1], [1, 1], 4),
        pool("max_pool2d", [2, 3, 8, 8], [2, 2], "2", [2, 2], [0, 0]),
        pool("max_pool2d", [1, 2, 9, 7], [3, 3], "3, stride: 2, pad: 1", [2, 2], [1, 1]),
        pool("avg_pool2d", [2, 2, 7, 9], [3, 3], "3, stride: 2, pad: 1", [2, 2], [1, 1]),
    ]
}

fn torch_results(request: &Value) -> Vec<Value> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import torch"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the PyTorch oracle test needs torch: install it with `{python} -m pip install torch` \
         (the CPU wheel is enough; .ci/run installs it)"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/torch/conv_oracle.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("oracle JSON")
}

fn assert_close(what: &str, want: &Value, got: &Tensor) {
    let want: Vec<f64> = want.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(want.len(), got.len(), "{what}: lengths");
    for (i, (w, g)) in want.iter().zip(got.iter()).enumerate() {
        assert!((w - g).abs() <= 1e-9 * w.abs().max(1.0), "{what}[{i}]: nnc {g}, PyTorch {w}");
    }
}

#[test]
fn conv2d_and_pooling_match_pytorch_forward_and_backward() {
    let mut request = Vec::new();
    let mut ours = Vec::new();
    for (i, c) in cases().iter().enumerate() {
        let is_conv = c.op == "conv2d";
        let x = data(&c.x, 10 + i as u64);
        let w = data(&c.w, 20 + i as u64);
        let (src, mut types, mut args) = if is_conv {
            (
                format!("fn f(x, w) = conv2d(x, w{})\nfn l(x, w, r) = sum(f(x, w) * r)", c.nn_args),
                vec![f32t(&c.x), f32t(&c.w)],
                vec![x.clone(), w.clone()],
            )
        } else {
            (
                format!("fn f(x) = {}(x, {})\nfn l(x, r) = sum(f(x) * r)", c.op, c.nn_args),
                vec![f32t(&c.x)],
                vec![x.clone()],
            )
        };
        let f = lower_function(&src, "f", &types).unwrap_or_else(|d| panic!("{d:?}"));
        let y = run(&f, &args).unwrap().remove(0);
        let r = data(y.shape(), 30 + i as u64);
        types.push(f32t(y.shape()));
        args.push(r.clone());
        let l = lower_function(&src, "l", &types).unwrap_or_else(|d| panic!("{d:?}"));
        let wrt: Vec<usize> = (0..args.len() - 1).collect();
        let g = run(&grad_func(&l, &wrt), &args).unwrap();
        let mut case = c.torch.clone();
        case["op"] = json!(c.op);
        case["x"] = as_json(&x);
        if is_conv {
            case["w"] = as_json(&w);
        }
        case["r"] = json!(r.iter().copied().collect::<Vec<f64>>());
        request.push(case);
        ours.push((format!("{} {}", c.op, c.nn_args), y, g[1..].to_vec()));
    }
    let theirs = torch_results(&Value::Array(request));
    for ((what, y, grads), t) in ours.iter().zip(&theirs) {
        assert_close(&format!("{what}: y"), &t["y"], y);
        for (k, g) in grads.iter().enumerate() {
            assert_close(&format!("{what}: grad {k}"), &t["grads"][k], g);
        }
    }
}

#[test]
fn max_pool_ties_match_pytorch() {
    // Rounded inputs make many windows tie; the gradient must pick the same
    // (first) position as PyTorch.
    let x = data(&[1, 2, 6, 6], 40).mapv(|v| (v * 1.5).round());
    let src = "fn l(x, r) = sum(max_pool2d(x, 2, stride: 1) * r)";
    let r = data(&[1, 2, 5, 5], 41);
    let l = lower_function(src, "l", &[f32t(&[1, 2, 6, 6]), f32t(&[1, 2, 5, 5])]).unwrap();
    let g = run(&grad_func(&l, &[0]), &[x.clone(), r.clone()]).unwrap();
    let request = json!([{ "op": "max_pool2d", "kernel": [2, 2], "stride": [1, 1], "pad": [0, 0],
        "x": as_json(&x), "r": r.iter().copied().collect::<Vec<f64>>() }]);
    let theirs = torch_results(&request);
    assert_close("tied max_pool2d gradient", &theirs[0]["grads"][0], &g[1]);
}
