//! `nnc run`, `eval`, `predict` and `summary` as a user runs them: the
//! files a run leaves behind, resuming, using saved weights, and clear
//! errors that name the file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NNC_DATA")
        .output()
        .expect("run nnc")
}

fn ok(args: &[&str]) -> String {
    let o = nnc(args);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "nnc {args:?}\nstdout:\n{out}\nstderr:\n{err}");
    out.into_owned()
}

/// Exit code 1 and stderr.
fn fails(args: &[&str]) -> String {
    let o = nnc(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "nnc {args:?}\nstderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-cli-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The value of `name` in a report line like `  accuracy   0.9722`.
fn value(report: &str, name: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{report}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn run_writes_weights_metrics_and_curves_then_resumes_evals_and_predicts() {
    let dir = temp_dir("digits");
    let out = dir.join("run");
    let report = ok(&[
        "run",
        "examples/digits.nn",
        "--backend",
        "interp",
        "--epochs",
        "2",
        "--out",
        s(&out),
    ]);
    // Not a terminal: plain per-epoch lines, then the test report.
    assert!(report.contains("epoch  1/2  loss") && report.contains("| val loss"), "{report}");
    assert!(report.contains("confusion matrix") && report.contains("true\\pred"), "{report}");
    let acc = value(&report, "accuracy");
    assert!(value(&report, "f1") > 0.0 && value(&report, "precision") > 0.0);
    for f in [
        "weights.safetensors",
        "metrics.csv",
        "metrics.jsonl",
        "curves.svg",
        "curves.png",
        "test.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.starts_with("epoch,lr,seconds,train_loss,train_accuracy,val_loss,val_accuracy"),
        "{csv}"
    );
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("validation") && svg.contains("accuracy"));
    let png = std::fs::read(out.join("curves.png")).unwrap();
    assert_eq!(png[..8], [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']);
    let test_json = std::fs::read_to_string(out.join("test.json")).unwrap();
    assert!(
        test_json.contains(&format!("\"accuracy\":{acc}").chars().take(16).collect::<String>()),
        "{test_json}"
    );

    // `eval` on the saved weights reproduces the run's test report.
    let weights = out.join("weights.safetensors");
    let ev = ok(&["eval", "examples/digits.nn", "--backend", "interp", "--weights", s(&weights)]);
    assert_eq!(value(&ev, "accuracy"), acc);

    // `--resume` continues to epoch 3 and appends to the history.
    let resumed = ok(&[
        "run",
        "examples/digits.nn",
        "--backend",
        "interp",
        "--epochs",
        "3",
        "--resume",
        s(&out),
    ]);
    assert!(
        resumed.contains("resuming after epoch 2") && resumed.contains("epoch  3/3"),
        "{resumed}"
    );
    assert!(!resumed.contains("epoch  1/3"), "{resumed}");
    assert_eq!(std::fs::read_to_string(out.join("metrics.csv")).unwrap().lines().count(), 4);

    // `predict` on three rows of features (the label column dropped).
    let rows: Vec<String> = std::fs::read_to_string("examples/data/digits.csv")
        .unwrap()
        .lines()
        .take(3)
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect();
    let input = dir.join("three.csv");
    std::fs::write(&input, rows.join("\n")).unwrap();
    let pred = ok(&[
        "predict",
        "examples/digits.nn",
        "--backend",
        "interp",
        "--weights",
        s(&weights),
        "--input",
        s(&input),
        "--probabilities",
    ]);
    let lines: Vec<&str> = pred.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{pred}");
    for l in lines {
        let class: usize = l.split_whitespace().nth(1).unwrap().parse().unwrap();
        let p: f64 = l.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(class < 10 && p > 0.1 && p <= 1.0, "{l}");
        assert!(l.matches(" ").count() > 10, "all ten probabilities: {l}");
    }

    // Weights of another model are refused, naming the file.
    let err = fails(&["eval", "examples/xor.nn", "--backend", "interp", "--weights", s(&weights)]);
    assert!(err.contains("weights.safetensors") && err.contains("Digits"), "{err}");
}

#[test]
fn summary_prints_the_keras_table() {
    let out = ok(&["summary", "examples/mnist_mlp.nn"]);
    assert!(out.contains("total params:       109,386"), "{out}");
    let fc1 = out.lines().find(|l| l.starts_with("fc1 ")).unwrap();
    assert!(
        fc1.contains("Dense(784 -> 128, relu)") && fc1.contains("[batch, 128]") && fc1.contains("100,480"),
        "{fc1}"
    );
    // 2 · 784 · 128 multiply-adds, then the bias and relu on 128 values.
    assert!(fc1.contains("200,960"), "{fc1}");
    assert!(out.lines().any(|l| l.starts_with("input") && l.contains("[batch, 784]")), "{out}");
    let sgd = ok(&["summary", "examples/mnist_sgd.nn"]);
    assert!(sgd.contains("109,386"), "{sgd}");
}

#[test]
fn check_reports_data_that_does_not_fit_the_model() {
    let err = fails(&["check", "tests/ui/data/shape_mismatch.nn"]);
    assert!(
        err.contains("E0308") && err.contains("64 values") && err.contains("[batch, 784]"),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_errors_that_name_the_file() {
    let dir = temp_dir("bad");
    // A truncated IDX image file as the data of a run.
    let images = dir.join("images.idx");
    std::fs::write(&images, [0u8, 0, 8, 3, 0, 0]).unwrap();
    let labels = dir.join("labels.idx");
    std::fs::write(&labels, [0u8, 0, 8, 1, 0, 0, 0, 1, 1]).unwrap();
    let src = format!(
        "model M(x: [batch, 4]) -> [batch, 2] = x |> Dense(4 -> 2)\n\
         train M {{ data = idx(\"{}\", \"{}\")\n loss = cross_entropy(model(x), y)\n optimizer = sgd }}\n",
        s(&images),
        s(&labels)
    );
    let file = dir.join("m.nn");
    std::fs::write(&file, src).unwrap();
    let err = fails(&["run", s(&file), "--out", s(&dir.join("out"))]);
    assert!(err.contains("images.idx") && err.contains("truncated"), "{err}");

    // A wrong magic number, counts that disagree, a non-numeric CSV field,
    // a missing file: each names its file.
    let run_with = |data: &str, name: &str| {
        let src = format!(
            "model M(x: [batch, 2]) -> [batch, 2] = x |> Dense(2 -> 2)\n\
             train M {{ data = {data}\n loss = cross_entropy(model(x), y)\n optimizer = sgd }}\n"
        );
        let file = dir.join(format!("{name}.nn"));
        std::fs::write(&file, src).unwrap();
        fails(&["run", s(&file), "--out", s(&dir.join(name))])
    };
    let magic = dir.join("magic.idx");
    std::fs::write(&magic, [1u8, 2, 8, 1, 0, 0, 0, 1, 7]).unwrap();
    let err = run_with(&format!("idx(\"{}\", \"{}\")", s(&magic), s(&labels)), "magic");
    assert!(err.contains("magic.idx") && err.contains("magic number"), "{err}");
    let two = dir.join("two.idx");
    std::fs::write(&two, [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4]).unwrap();
    let err = run_with(&format!("idx(\"{}\", \"{}\")", s(&two), s(&labels)), "counts");
    assert!(
        err.contains("labels.idx") && err.contains("1 labels") && err.contains("2 images"),
        "{err}"
    );
    let words = dir.join("words.csv");
    std::fs::write(&words, "1,2,0\n3,x,1\n").unwrap();
    let err = run_with(&format!("csv(\"{}\", label: 2)", s(&words)), "words");
    assert!(
        err.contains("words.csv") && err.contains("line 2") && err.contains("`x` is not a number"),
        "{err}"
    );
    let err = run_with("csv(\"absent.csv\", label: 2)", "absent");
    assert!(err.contains("absent.csv") && err.contains("not found"), "{err}");

    // `predict` with rows of the wrong width, and with a missing file.
    let weights = dir.join("w.safetensors");
    let w_out = dir.join("xor");
    ok(&[
        "run",
        "examples/xor.nn",
        "--backend",
        "interp",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        s(&w_out),
    ]);
    std::fs::copy(w_out.join("weights.safetensors"), &weights).unwrap();
    let csv = dir.join("wide.csv");
    std::fs::write(&csv, "1,2,3\n4,5,6\n").unwrap();
    let err = fails(&["predict", "examples/xor.nn", "--weights", s(&weights), "--input", s(&csv)]);
    assert!(err.contains("wide.csv") && err.contains("3 values"), "{err}");
    let ragged = dir.join("ragged.csv");
    std::fs::write(&ragged, "1,2\n4\n").unwrap();
    let err = fails(&["predict", "examples/xor.nn", "--weights", s(&weights), "--input", s(&ragged)]);
    assert!(err.contains("ragged.csv:2"), "{err}");
    let err = fails(&["eval", "examples/xor.nn", "--weights", s(&dir.join("nope.safetensors"))]);
    assert!(err.contains("nope.safetensors"), "{err}");
    let err = fails(&["run", "examples/xor.nn", "--resume", s(&dir.join("no-run"))]);
    assert!(err.contains("no-run"), "{err}");
}

#[test]
fn regression_runs_report_mse_mae_and_r2() {
    let dir = temp_dir("regression");
    let file = dir.join("line.nn");
    std::fs::write(
        &file,
        "model Line(x: [batch, 1]) -> [batch, 1] = x |> Dense(1 -> 1)\n\
         train Line {\n data = tensors(x: [[0], [1], [2], [3]], y: [[0.5], [1.5], [2.5], [3.5]])\n\
         loss = mse(model(x), y)\n optimizer = sgd(lr: 0.05)\n epochs = 200\n batch_size = 4\n metrics = [mse, mae, r2]\n}\n",
    )
    .unwrap();
    let out = ok(&["run", s(&file), "--backend", "interp", "--quiet", "--out", s(&dir.join("out"))]);
    // y = x + 0.5 is learnt exactly; no accuracy or confusion matrix.
    assert!(
        value(&out, "mse") < 1e-4 && value(&out, "mae") < 1e-2 && value(&out, "r2") > 0.999,
        "{out}"
    );
    assert!(!out.contains("accuracy") && !out.contains("confusion"), "{out}");
    let csv = std::fs::read_to_string(dir.join("out/metrics.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,lr,seconds,train_loss,train_mse,train_mae,train_r2\n"),
        "{csv}"
    );
}

/// With `early_stop`, the best epoch's weights are saved beside the last
/// ones, and a resumed run that stops early ends on them.
#[test]
fn early_stopping_saves_the_best_weights_for_a_resume() {
    let dir = temp_dir("best");
    let file = dir.join("digits_stop.nn");
    let src = std::fs::read_to_string("examples/digits.nn")
        .unwrap()
        .replace(
            "optimizer  = adam(lr: 0.003)",
            "optimizer  = adam(lr: 0.05)\n    early_stop = patience(2, monitor: val_loss)",
        )
        .replace("batch_size = 32", "batch_size = 16");
    assert!(src.contains("early_stop"), "{src}");
    std::fs::write(&file, src).unwrap();
    let out = dir.join("run");
    let common = ["--data-dir", "examples", "--backend", "interp", "--out", s(&out)];
    let mut args = vec!["run", s(&file), "--epochs", "2"];
    args.extend(common);
    ok(&args);
    assert!(out.join("best.safetensors").is_file());
    let mut args = vec!["run", s(&file), "--epochs", "60", "--resume", s(&out)];
    args.extend(["--data-dir", "examples", "--backend", "interp"]);
    let report = ok(&args);
    assert!(
        report.contains("early stop:") && report.contains("kept the weights of epoch"),
        "{report}"
    );
}

/// `tensors(...)` with nested samples: a sequence dataset written in the
/// file (`x: [steps, features]` per sample) trains a recurrent model, and a
/// ragged sample is E0309 at the row.
#[test]
fn inline_sequence_samples_train_a_recurrent_model() {
    let dir = temp_dir("inline-seq");
    let file = dir.join("order.nn");
    std::fs::write(
        &file,
        "model Order(x: [batch, 2, 1]) -> [batch, 1] =\n    x |> Rnn(1 -> 8) |> last |> Dense(8 -> 1)\n\n\
         train Order {\n    data = tensors(\n        x: [[[0], [1]], [[1], [0]], [[0.2], [0.9]], [[0.8], [0.1]]],\n        y: [[1], [0], [1], [0]],\n    )\n\
         \x20   loss = mse(model(x), y)\n    optimizer = adam(lr: 0.05)\n    epochs = 200\n    batch_size = 4\n}\n",
    )
    .unwrap();
    let report = ok(&["run", s(&file), "--out", s(&dir.join("run"))]);
    assert!(value(&report, "loss") < 0.01, "{report}");
    assert_eq!(value(&report, "accuracy"), 1.0, "{report}");

    let ragged = dir.join("ragged.nn");
    std::fs::write(
        &ragged,
        "model M(x: [batch, 2, 1]) = x\ntrain M {\n    data = tensors(x: [[[0], [1]], [[1], [0], [2]]], y: [1, 2])\n    loss = mean(model(x))\n    optimizer = sgd(lr: 0.1)\n}\n",
    )
    .unwrap();
    let err = fails(&["check", s(&ragged)]);
    assert!(
        err.contains("E0309") && err.contains("this row is [3, 1], the first is [2, 1]"),
        "{err}"
    );
}
