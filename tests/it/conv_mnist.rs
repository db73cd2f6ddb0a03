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

#[test]
fn resnet_learns_mnist_in_one_epoch_on_3000_images_and_evaluates_with_running_statistics() {
    let out = out_dir("resnet");
    let o = out.to_str().unwrap();
    let run = nnc(&[
        "run",
        "examples/resnet_mnist.nn",
        "--out",
        o,
        "--limit",
        "3000",
        "--epochs",
        "1",
        "--quiet",
    ]);
    // The test report is in evaluation mode: batch norm with the running
    // averages of 47 steps (batch 64, the rate decaying to 0): 62.5 % when
    // measured, far from the 10 % of statistics that do not fit (the full
    // run in the README reaches 99 %).
    let acc = accuracy(&run);
    assert!(acc >= 0.45, "test accuracy {acc}\n{run}");
    let weights = Path::new(o).join("weights.safetensors");
    let eval = nnc(&["eval", "examples/resnet_mnist.nn", "--weights", weights.to_str().unwrap()]);
    assert_eq!(
        test_report(&eval),
        test_report(&run),
        "eval of the saved weights differs from the run's report"
    );
}

/// `nnc ARGS` that must fail with exit status 1: its stderr.
fn nnc_fails(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nnc"));
    cmd.args(args);
    if args[0] != "predict" {
        cmd.arg("--data-dir").arg(data_dir());
    }
    let o = cmd.current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run nnc");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "nnc {args:?}\nstderr:\n{stderr}");
    stderr
}

#[test]
fn conv_weights_of_the_wrong_shape_are_e0704_naming_the_parameter_both_shapes_and_the_file() {
    // LeNet-5 with a 3×3 first convolution (padded by 1, so every later
    // shape is the same): its weights saved, then given to the 5×5 model.
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lenet5.nn")).unwrap();
    let narrow = src.replace("Conv2d(1 -> 6, relu, kernel: 5, pad: 2)", "Conv2d(1 -> 6, relu, kernel: 3, pad: 1)");
    assert_ne!(narrow, src);
    let c = nnc::driver::compile("lenet5-3x3.nn", &narrow);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let plan = &c.analysis.plans[0];
    let w = nnc::runtime::train::initial_weights(plan).unwrap();
    let dir = out_dir("wrong-shape");
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("weights.safetensors");
    nnc::runtime::checkpoint::save(&weights, plan, &w, None).unwrap();
    let file = weights.to_str().unwrap();
    let images = data_dir().join("mnist/t10k-images-idx3-ubyte.gz");
    let images = images.to_str().unwrap();
    for (what, args) in [
        ("eval", vec!["eval", "examples/lenet5.nn", "--weights", file]),
        (
            "predict",
            vec!["predict", "examples/lenet5.nn", "--weights", file, "--input", images],
        ),
        (
            "resume",
            vec!["run", "examples/lenet5.nn", "--resume", dir.to_str().unwrap(), "--quiet"],
        ),
    ] {
        let err = nnc_fails(&args);
        assert!(
            err.contains("error[E0704]")
                && err.contains("weights.safetensors")
                && err.contains("`c1.W` has shape [6, 1, 3, 3] in the file, but the model declares [6, 1, 5, 5]"),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    // A file that is not safetensors at all.
    std::fs::write(&weights, b"not weights").unwrap();
    let err = nnc_fails(&["eval", "examples/lenet5.nn", "--weights", file]);
    assert!(err.contains("error[E0607]") && err.contains("weights.safetensors"), "{err}");
}
