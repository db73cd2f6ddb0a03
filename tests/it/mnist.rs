//! The MNIST examples on the real data (`NNC_DATA`, or `../shared/data`
//! beside the checkout as in CI), in short runs of the `nnc` binary: one
//! epoch on the first 10,000 training images, evaluated on the 10,000
//! test images.
//!
//! They run as child processes: a whole MNIST in memory would disturb the
//! tests in this binary that measure the process's own memory.

use nnc::runtime::history;
use std::path::{Path, PathBuf};
use std::process::Command;

fn data_dir() -> PathBuf {
    crate::common::data_dir("mnist")
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-mnist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `nnc run FILE --quiet ...` on MNIST; returns stdout.
fn run(file: &str, out: &Path, extra: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(["run", file, "--out", out.to_str().unwrap()])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nnc");
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    stdout.into_owned()
}

/// The test accuracy from the final report (`  accuracy   0.9312`).
fn accuracy(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("accuracy "))
        .unwrap_or_else(|| panic!("{report}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn mnist_mlp_reaches_90_percent_after_one_epoch_on_10000_images() {
    let out = run("examples/mnist_mlp.nn", &out_dir("mlp"), &["--limit", "10000", "--epochs", "1"]);
    // The real dataset: 60,000 images less 20 % for validation; 10,000 to test.
    assert!(
        out.contains("training MnistMlp on 10000 samples (12000 validation, 10000 test)"),
        "{out}"
    );
    assert!(out.contains("MnistMlp on the test set (10000 samples)"), "{out}");
    let acc = accuracy(&out);
    assert!(acc >= 0.90, "test accuracy {acc}\n{out}");
}

#[test]
fn mnist_sgd_momentum_reaches_90_percent_after_one_epoch_on_10000_images() {
    let out = run(
        "examples/mnist_sgd.nn",
        &out_dir("sgd"),
        &["--limit", "10000", "--epochs", "1", "--quiet"],
    );
    let acc = accuracy(&out);
    assert!(acc >= 0.90, "test accuracy {acc}\n{out}");
}

#[test]
fn mnist_on_the_interpreter_learns_from_2000_images() {
    // The oracle backend, on a run short enough for a debug build: 63 steps
    // with the rate decaying to 0 land far above chance (10 %), well short
    // of a full run.
    let out = run(
        "examples/mnist_mlp.nn",
        &out_dir("interp"),
        &["--backend", "interp", "--limit", "2000", "--epochs", "1", "--quiet"],
    );
    let acc = accuracy(&out);
    assert!(acc >= 0.70, "test accuracy {acc}\n{out}");
}

/// Every tensor of a safetensors file, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    out.sort();
    out
}

#[test]
fn the_same_seed_gives_bit_identical_weights_and_metrics() {
    // The compiled backend with two threads, where a parallel reduction in
    // a varying order would show up; the interpreter is sequential.
    let backend = "jit";
    {
        let args = ["--backend", backend, "--limit", "1000", "--epochs", "2", "--quiet"];
        let (a, b) = (out_dir(&format!("same-a-{backend}")), out_dir(&format!("same-b-{backend}")));
        let (ra, rb) = (run("examples/mnist_mlp.nn", &a, &args), run("examples/mnist_mlp.nn", &b, &args));
        let wa = tensors(&a.join("weights.safetensors"));
        assert_eq!(wa.len(), 6 + 12, "parameters and Adam's two states each");
        assert!(wa == tensors(&b.join("weights.safetensors")), "{backend}: weights differ");
        // Metrics too, everything but the wall-clock seconds.
        let metrics = |d: &Path| {
            let h = history::from_jsonl(&std::fs::read_to_string(d.join("metrics.jsonl")).unwrap()).unwrap();
            h.into_iter().map(|r| (r.epoch, r.lr, r.train, r.validation)).collect::<Vec<_>>()
        };
        assert_eq!(metrics(&a), metrics(&b), "{backend}");
        assert_eq!(ra, rb, "{backend}: test reports differ");
        // Another seed gives other weights: the seed is really used.
        let src = std::fs::read_to_string("examples/mnist_mlp.nn")
            .unwrap()
            .replace("seed       = 42", "seed       = 43");
        let other = out_dir(&format!("seed43-{backend}"));
        std::fs::create_dir_all(&other).unwrap();
        let file = other.join("mnist_seed43.nn");
        std::fs::write(&file, src).unwrap();
        run(file.to_str().unwrap(), &other, &args);
        assert!(tensors(&other.join("weights.safetensors")) != wa, "{backend}: seed ignored");
    }
}
