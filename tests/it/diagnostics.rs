//! Diagnostics as a learner meets them through the `nnc` binary: the JSON
//! report with its checked fixes, mistakes caught before a run, regression
//! targets from CSV, plain output when stdout is not a terminal, and
//! summaries with functions between layers.

use std::path::{Path, PathBuf};
use std::process::Command;

fn nnc(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nnc");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-diag-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn json_report_has_spans_and_fixes_that_check() {
    let (ok, out, _) = nnc(&["check", "--format", "json", "tests/ui/fixes/missing_flatten_pipe.nn"]);
    assert!(!ok, "an error exits non-zero");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON document on stdout");
    assert_eq!(v["errors"], 1);
    let d = &v["files"][0]["diagnostics"][0];
    assert_eq!(d["code"], "E0301");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["primary"]["start"]["line"], 3);
    assert_eq!(d["primary"]["start"]["column"], 10);
    let edit = &d["fixes"][0]["edits"][0];
    assert_eq!(edit["replacement"], "flatten |> ");
    // The edit, applied, gives a file without errors.
    let text = std::fs::read_to_string("tests/ui/fixes/missing_flatten_pipe.nn").unwrap();
    let at = edit["start"]["offset"].as_u64().unwrap() as usize;
    let end = edit["end"]["offset"].as_u64().unwrap() as usize;
    let fixed = format!("{}{}{}", &text[..at], "flatten |> ", &text[end..]);
    let dir = temp_dir("json");
    let file = dir.join("fixed.nn");
    std::fs::write(&file, fixed).unwrap();
    let (ok, out, err) = nnc(&["check", s(&file)]);
    assert!(ok && out.contains("no errors"), "{out}{err}");
}

#[test]
fn text_report_drops_a_help_whose_fix_does_not_check() {
    // `reshape(x, [batch, 100])` of a [batch, 28, 28] input: writing 784
    // would fix the reshape but break the declared result, so it is not
    // offered.
    let (ok, _, err) = nnc(&["check", "tests/ui/shapes/reshape.nn"]);
    assert!(!ok);
    assert!(err.contains("E0307") && !err.contains("help: write 784"), "{err}");
}

#[test]
fn labels_beyond_the_outputs_stop_a_run_before_training() {
    let (ok, out, err) = nnc(&["run", "tests/ui/silent/labels_exceed_outputs.nn", "--out", "/dev/null/never"]);
    assert!(!ok, "{out}");
    assert!(err.contains("E0602") && err.contains("4 classes"), "{err}");
    assert!(!out.contains("epoch"), "nothing trained: {out}");
}

#[test]
fn regression_targets_from_csv_train_and_report_mse() {
    let dir = temp_dir("regression");
    std::fs::copy("tests/ui/silent/houses.csv", dir.join("houses.csv")).unwrap();
    let file = dir.join("price.nn");
    std::fs::write(
        &file,
        "model Price(x: [batch, 3]) -> [batch] = reshape(x |> Dense(3 -> 1), [batch])\n\
         train Price {\n    data = csv(\"houses.csv\", target: \"price\")\n    loss = mse(model(x), y)\n    \
         optimizer = adam(lr: 0.01)\n    epochs = 3\n    batch_size = 8\n    standardize = true\n    test = 0.25\n    metrics = [mse]\n}\n",
    )
    .unwrap();
    let (ok, out, err) = nnc(&["run", s(&file), "--out", s(&dir.join("out"))]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("mse"), "{out}");
    // Stdout is a pipe here: one line per epoch, no progress fragments.
    let epoch_lines = out.lines().filter(|l| l.starts_with("epoch")).count();
    assert_eq!(epoch_lines, 3, "{out}");
    assert!(!out.contains('%'), "{out}");
}

#[test]
fn summary_shows_a_layer_output_when_a_function_follows_it() {
    let dir = temp_dir("summary");
    let file = dir.join("m.nn");
    std::fs::write(
        &file,
        "model M(x: [batch, 8]) -> [batch, 2] =\n    x |> Dense(8 -> 6, relu) |> reshape([batch, 2, 3]) |> mean(axis: -1)\n",
    )
    .unwrap();
    let (ok, out, err) = nnc(&["summary", s(&file)]);
    assert!(ok, "{out}{err}");
    let dense = out.lines().find(|l| l.starts_with("dense1")).expect("a dense1 row");
    assert!(dense.contains("[batch, 6]"), "the layer's own output: {out}");
}
