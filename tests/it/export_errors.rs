//! `nnc export` on bad input: each a coded error, and nothing written.

use crate::export_onnx::{nnc, scratch, write_tensors};
use ndarray::{ArrayD, IxDyn};
use std::path::Path;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn stderr_of(args: &[&str]) -> String {
    let out = nnc(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The directory's entries, to check that a failed export left none behind.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn an_output_path_that_cannot_be_written_is_e0703() {
    let dir = scratch("errors-path");
    let xor = example("xor.nn");
    let missing = dir.join("no/such/dir/xor.onnx");
    let err = stderr_of(&["export", &xor, "--onnx", missing.to_str().unwrap()]);
    assert!(err.contains("error[E0703]") && err.contains("does not exist"), "{err}");
    let err = stderr_of(&["export", &xor, "--pytorch", dir.join("no/such/project").to_str().unwrap()]);
    assert!(err.contains("error[E0703]"), "{err}");
    // A directory where the file should go.
    let err = stderr_of(&["export", &xor, "--onnx", dir.to_str().unwrap()]);
    assert!(err.contains("error[E0703]") && err.contains("is a directory"), "{err}");
    assert!(entries(&dir).is_empty(), "left behind: {:?}", entries(&dir));
    // /proc refuses new files even to root, like a read-only mount.
    let err = stderr_of(&["export", &xor, "--onnx", "/proc/nnc-export-test.onnx"]);
    assert!(
        err.contains("error[E0703]") && err.contains("cannot write /proc/nnc-export-test.onnx"),
        "{err}"
    );
    let err = stderr_of(&["export", &xor, "--pytorch", "/proc/nnc-export-test"]);
    assert!(err.contains("error[E0703]"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weights_of_another_model_are_e0704_listing_the_mismatches() {
    let dir = scratch("errors-weights");
    let digits = example("digits.nn");
    // A state dict with other shapes and names, and no model name to go by.
    let w = dir.join("other.safetensors");
    write_tensors(
        &w,
        &[
            ("dense1.weight".into(), ArrayD::zeros(IxDyn(&[32, 64]))),
            ("dense1.bias".into(), ArrayD::zeros(IxDyn(&[32]))),
            ("head.weight".into(), ArrayD::zeros(IxDyn(&[10, 32]))),
        ],
    );
    let out = dir.join("digits.onnx");
    let err = stderr_of(&["export", &digits, "--onnx", out.to_str().unwrap(), "--weights", w.to_str().unwrap()]);
    assert!(err.contains("error[E0704]") && err.contains("does not fit model `Digits`"), "{err}");
    assert!(
        err.contains("`dense1.weight` has shape [32, 64] in the file, but the model declares [64, 64]"),
        "{err}"
    );
    assert!(err.contains("`dense1.bias` has shape [32]"), "{err}");
    assert!(err.contains("no tensor `dense2.W` [64, 10]") && err.contains("and 1 more"), "{err}");
    // The same file is refused by `nnc eval` and `nnc predict`.
    let err = stderr_of(&["eval", &digits, "--weights", w.to_str().unwrap()]);
    assert!(err.contains("error[E0704]") && err.contains("does not fit model `Digits`"), "{err}");
    assert_eq!(entries(&dir), ["other.safetensors"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_op_without_an_onnx_equivalent_is_e0701_naming_it() {
    let dir = scratch("errors-op");
    let file = dir.join("noisy.nn");
    std::fs::write(
        &file,
        "model Noisy(x: [batch, 2]) -> [batch, 2] = x + uniform([2], 0, 1)\n\ntrain Noisy {\n    data = tensors(x: [[0, 0], [1, 1]], y: [[0, 0], [1, 1]])\n    loss = mse(model(x), y)\n    optimizer = sgd(lr: 0.1)\n}\n",
    )
    .unwrap();
    let out = dir.join("noisy.onnx");
    let err = stderr_of(&["export", file.to_str().unwrap(), "--onnx", out.to_str().unwrap()]);
    assert!(
        err.contains("E0701") && err.contains("`random_uniform` has no ONNX equivalent"),
        "{err}"
    );
    assert!(err.contains("the model `Noisy` uses `random_uniform`"), "{err}");
    assert!(!out.exists());
    assert!(nnc(&["explain", "E0701"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_user_defined_optimizer_has_no_pytorch_translation_yet_e0702() {
    let dir = scratch("errors-optimizer");
    let file = dir.join("mine.nn");
    std::fs::write(
        &file,
        "optimizer mine(lr = 0.1) {\n    param -= lr * grad\n}\n\nmodel M(x: [batch, 2]) -> [batch, 1] = x |> Dense(2 -> 1)\n\ntrain M {\n    data = tensors(x: [[0, 0], [1, 1]], y: [[0], [1]])\n    loss = mse(model(x), y)\n    optimizer = mine(lr: 0.5)\n}\n",
    )
    .unwrap();
    let project = dir.join("project");
    let err = stderr_of(&["export", file.to_str().unwrap(), "--pytorch", project.to_str().unwrap()]);
    assert!(err.contains("E0702") && err.contains("the user-defined optimizer `mine`"), "{err}");
    assert!(!project.exists());
    assert_eq!(entries(&dir), ["mine.nn"]);
    let _ = std::fs::remove_dir_all(&dir);
}
