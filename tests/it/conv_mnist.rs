//! The convolutional examples on real MNIST, in short runs of the `nnc`
//! binary (child processes, as in `mnist.rs`): LeNet-5 for one epoch on the
//! first 10,000 training images, then its saved weights reloaded by
//! `nnc eval` and `nnc predict` with identical results.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data_dir() -> PathBuf {
    crate::common::data_dir("mnist")
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-conv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `nnc ARGS` (with `--data-dir` for the commands that read the dataset).
fn nnc(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnc"));
    cmd.args(args);
    if args[0] != "predict" {
        cmd.arg("--data-dir").arg(data_dir());
    }
    let o = cmd.current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run nnc");
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "nnc {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout.into_owned()
}

fn accuracy(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with("accuracy "))
        .unwrap_or_else(|| panic!("{report}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The report from the line naming the test set on (the part `eval` repeats).
fn test_report(out: &str) -> String {
    let start = out.find("on the test set").unwrap_or_else(|| panic!("{out}"));
    out[start..].to_string()
}

#[test]
fn lenet5_learns_mnist_in_one_epoch_and_reloads_for_eval_and_predict() {
    let out = out_dir("lenet5");
    let o = out.to_str().unwrap();
    let run = nnc(&[
        "run",
        "examples/lenet5.nn",
        "--out",
        o,
        "--limit",
        "10000",
        "--epochs",
        "1",
        "--quiet",
    ]);
    let acc = accuracy(&run);
    // 156 steps of batch 64 with the rate decaying to 0: about 91 % (the
    // full run in the README reaches 99 %).
    assert!(acc >= 0.88, "test accuracy {acc}\n{run}");
    let weights = Path::new(o).join("weights.safetensors");
    let w = weights.to_str().unwrap();
    let eval = nnc(&["eval", "examples/lenet5.nn", "--weights", w]);
    assert_eq!(
        test_report(&eval),
        test_report(&run),
        "eval of the saved weights differs from the run's report"
    );
    let images = data_dir().join("mnist");
    let images = ["t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"]
        .iter()
        .map(|f| images.join(f))
        .find(|p| p.exists())
        .expect("MNIST test images");
    let predict = |_: ()| nnc(&["predict", "examples/lenet5.nn", "--weights", w, "--input", images.to_str().unwrap()]);
    let (p1, p2) = (predict(()), predict(()));
    assert_eq!(p1, p2);
    assert!(p1.lines().count() >= 10_000, "{}", &p1[..p1.len().min(500)]);
}
