//! The stdlib's attention layers against PyTorch's on the same weights:
//! `MultiHeadAttention` against `nn.MultiheadAttention`, and the encoder
//! layers against `nn.TransformerEncoder` (post- and pre-norm), outputs and
//! the gradients of `sum(out * r)` with respect to the input and every
//! weight. Both sides run in f64 (nnc on its reference interpreter), so
//! they agree to rounding. Without PyTorch the test fails saying so.

use crate::export_onnx::{python, require_python, scratch, write_tensors};
use crate::export_pytorch::read_f64;
use crate::stdlib_grad::data;
use ndarray::{ArrayD, IxDyn};
use nnc::autodiff::grad_func;
use nnc::driver;
use nnc::ir::interp::run;
use nnc::ir::{self, Builder, Dim, Func};
use safetensors::SafeTensors;
use std::path::Path;
use std::process::Command;

const BATCH: usize = 3;
const T: usize = 7;
const D: usize = 16;
const HEADS: usize = 4;
const D_FF: usize = 24;

/// PyTorch's name for an nnc parameter of these layers, and whether the
/// matrix is stored transposed there (`nn.Linear` keeps [out, in]).
fn torch_name(nnc: &str) -> (String, bool) {
    let mut parts: Vec<&str> = nnc.split('.').collect();
    // `enc.blocks.0.mha.W_qkv`: layer 0 of the stack `enc`.
    let layer_prefix = match parts[..] {
        ["enc", "blocks", i, ..] => {
            let prefix = format!("layers.{i}.");
            parts.drain(..3);
            prefix
        }
        _ => String::new(),
    };
    let (name, transposed) = match parts[..] {
        ["mha", "W_qkv"] => ("self_attn.in_proj_weight", true),
        ["mha", "b_qkv"] => ("self_attn.in_proj_bias", false),
        ["mha", "W_o"] => ("self_attn.out_proj.weight", true),
        ["mha", "b_o"] => ("self_attn.out_proj.bias", false),
        ["ff", "fc1", "W"] => ("linear1.weight", true),
        ["ff", "fc1", "b"] => ("linear1.bias", false),
        ["ff", "fc2", "W"] => ("linear2.weight", true),
        ["ff", "fc2", "b"] => ("linear2.bias", false),
        ["norm1", "gamma"] => ("norm1.weight", false),
        ["norm1", "beta"] => ("norm1.bias", false),
        ["norm2", "gamma"] => ("norm2.weight", false),
        ["norm2", "beta"] => ("norm2.bias", false),
        _ => panic!("no PyTorch name for `{nnc}`"),
    };
    let name = if layer_prefix.is_empty() && nnc.starts_with("mha.") {
        // A bare nn.MultiheadAttention has no `self_attn.` prefix.
        name.trim_start_matches("self_attn.").to_string()
    } else {
        format!("{layer_prefix}{name}")
    };
    (name, transposed)
}

/// |got - want| <= 1e-9 * max(1, largest |want|).
fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!((g - w).abs() <= 1e-9 * scale, "{what}[{i}]: PyTorch {g}, nnc {w}");
    }
}

/// `sum(f(x, weights...) * r)`, with `r` the last parameter.
fn weighted_sum(f: &Func) -> Func {
    let mut b = Builder::new("weighted_sum");
    let ps: Vec<_> = f.params.iter().map(|&p| b.param("p", f.ty(p).clone())).collect();
    let out = b.inline(f, &ps)[0];
    let shape = b.shape(out);
    let r = b.param("r", ir::Type::f32(shape.clone()));
    let m = b.mul(out, r);
    let s = b.reduce_sum(m, (0..shape.len()).collect(), false);
    b.finish(&[s])
}

fn compare(name: &str, src: &str, config: &str) {
    let c = driver::compile(&format!("{name}.nn"), src);
    assert!(!c.has_errors(), "{name}: {:?}", c.diagnostics());
    let (_, f) = &c.analysis.model_funcs[0];
    let f = f.specialize(&|_| Some(BATCH));
    // Inputs and weights, rounded to f32 so both sides read the same numbers.
    let dims = |i: usize| -> Vec<usize> {
        f.ty(f.params[i])
            .shape
            .iter()
            .map(|d| if let Dim::Known(k) = d { *k } else { BATCH })
            .collect()
    };
    let args: Vec<ArrayD<f64>> = (0..f.params.len())
        .map(|i| {
            let scale = if i == 0 { 1.0 } else { 0.4 };
            data(&dims(i), 70 + i as u64, -scale, scale).mapv(|v| f64::from(v as f32))
        })
        .collect();
    let r = data(&[BATCH, T, D], 69, -1.0, 1.0).mapv(|v| f64::from(v as f32));
    let out = run(&f, &args).unwrap().remove(0);
    let loss = weighted_sum(&f);
    let g = grad_func(&loss, &(0..f.params.len()).collect::<Vec<_>>());
    let mut all = args.clone();
    all.push(r.clone());
    let grads = run(&g, &all).unwrap();

    let dir = scratch(&format!("torch-{name}"));
    let f32s = |a: &ArrayD<f64>| a.mapv(|v| v as f32);
    let mut tensors = vec![("x".to_string(), f32s(&args[0])), ("r".to_string(), f32s(&r))];
    let mut torch_names = vec![];
    for i in 1..f.params.len() {
        let (t, transposed) = torch_name(&f.param_names[i]);
        let w = if transposed { args[i].t().to_owned() } else { args[i].clone() };
        tensors.push((format!("p/{t}"), f32s(&w.as_standard_layout().to_owned())));
        torch_names.push((t, transposed));
    }
    let inputs = dir.join("inputs.safetensors");
    let result = dir.join("torch.safetensors");
    write_tensors(&inputs, &tensors);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attention/check_torch.py");
    let run = Command::new(python())
        .arg(&script)
        .arg(config)
        .arg(&inputs)
        .arg(&result)
        .output()
        .expect("python");
    assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&result).unwrap();
    let torch = SafeTensors::deserialize(&bytes).unwrap();
    assert_close(&format!("{name} output"), &read_f64(&torch, "out"), &out);
    assert_close(&format!("{name} d/dx"), &read_f64(&torch, "grad/x"), &grads[1]);
    for (i, (t, transposed)) in torch_names.iter().enumerate() {
        let want = &grads[2 + i];
        let got = read_f64(&torch, &format!("grad/{t}"));
        let got = if *transposed { got.t().to_owned() } else { got };
        assert_close(
            &format!("{name} d/d{}", f.param_names[1 + i]),
            &got.as_standard_layout().to_owned(),
            want,
        );
    }
    let _ = IxDyn(&[0]);
}

#[test]
fn multi_head_attention_matches_pytorch_with_and_without_the_causal_mask() {
    require_python(&["torch", "safetensors"]);
    for causal in [false, true] {
        let call = if causal {
            format!("mha(x, causal_mask({T}))")
        } else {
            "mha(x)".into()
        };
        let src = format!(
            "model Mha(x: [batch, {T}, {D}]) -> [batch, {T}, {D}] {{\n    let mha = MultiHeadAttention({D}, {HEADS})\n    return {call}\n}}\n"
        );
        let config = format!(r#"{{"kind": "mha", "d_model": {D}, "heads": {HEADS}, "causal": {causal}}}"#);
        compare(&format!("mha-causal-{causal}"), &src, &config);
    }
}

#[test]
fn encoder_stacks_match_pytorch_post_and_pre_norm_with_and_without_the_causal_mask() {
    require_python(&["torch", "safetensors"]);
    for (norm_first, activation) in [(false, "relu"), (true, "gelu")] {
        for causal in [false, true] {
            let mask = if causal { format!(", causal_mask({T})") } else { String::new() };
            let src = format!(
                "model Enc(x: [batch, {T}, {D}]) -> [batch, {T}, {D}] {{\n    let enc = TransformerEncoder(2, {D}, {HEADS}, {D_FF}, rate: 0.0, norm_first: {norm_first}, activation: {activation})\n    return enc(x{mask})\n}}\n"
            );
            let config = format!(
                r#"{{"kind": "encoder", "d_model": {D}, "heads": {HEADS}, "d_ff": {D_FF}, "layers": 2, "norm_first": {}, "activation": "{activation}", "causal": {causal}}}"#,
                if norm_first { "true" } else { "false" }
            );
            compare(&format!("encoder-norm-first-{norm_first}-causal-{causal}"), &src, &config);
        }
    }
}
