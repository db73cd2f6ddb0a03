//! The `nnc` binary as a user runs it: exit codes, messages, no panics.

use std::path::Path;
use std::process::{Command, Output};

fn nnc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nnc")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn check_clean_files_exits_zero() {
    let o = nnc(&["check", "examples/xor.nn", "examples/digits.nn", "stdlib/layers.nn"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("checked 3 files: no errors"), "{out}");
}

#[test]
fn check_reports_shape_error_with_fix_and_exits_one() {
    let o = nnc(&["check", "tests/ui/shapes/dense_input.nn"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("E0301") && err.contains("write `Dense(128 -> 64, relu)`"), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let o = nnc(&["check", "no/such/file.nn"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("no/such/file.nn"), "{err}");
}

#[test]
fn explain_knows_every_code() {
    for c in nnc::diag::CODES {
        let o = nnc(&["explain", c.code]);
        let (out, _) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{}", c.code);
        assert!(out.contains(c.title) && out.len() > 60, "{}: {out}", c.code);
    }
    assert_eq!(nnc(&["explain", "E9999"]).status.code(), Some(1));
}

#[test]
fn run_trains_xor_to_full_accuracy() {
    let o = nnc(&["run", "examples/xor.nn", "--quiet"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        out.contains("Xor on the training set") && out.contains("accuracy   1.0000"),
        "{out}"
    );
}

#[test]
fn run_with_missing_data_names_the_file() {
    let src = "model M(x: [batch, 4]) -> [batch, 3] = x |> Dense(4 -> 3)\n\
               train M { data = csv(\"missing-data.csv\", label: 4)\n loss = cross_entropy(model(x), y)\n optimizer = sgd }\n";
    let p = temp_file("missing_data.nn", src.as_bytes());
    let o = nnc(&["run", p.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("missing-data.csv") && err.contains("not found"), "{err}");
}

#[test]
fn every_ir_stage_prints() {
    for stage in ["ast", "typed", "ir", "grad", "opt", "fused", "clif", "asm"] {
        let o = nnc(&["ir", "examples/xor.nn", "--stage", stage]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{stage}: {err}");
        assert!(!out.trim().is_empty(), "{stage}");
    }
    // The machine code is x86-64 or AArch64 assembly of every kernel and
    // of the step that calls them.
    let (asm, _) = text(&nnc(&["ir", "examples/xor.nn", "--stage", "asm"]));
    assert!(asm.contains("; step") && asm.contains("ret"), "{asm}");
}

/// `nnc bench` measures every figure on random data without a dataset; its
/// JSON has one entry per (batch, threads) and an epoch time. (What the
/// times are is not checked: speed belongs to benchmarks, not tests.)
#[test]
fn bench_reports_every_figure() {
    let o = nnc(&[
        "bench",
        "examples/xor.nn",
        "--json",
        "--batch",
        "4,7",
        "--threads",
        "1,2",
        "--infer-batch",
        "5",
        "--samples",
        "50",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["model"], "Xor");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{out}");
    assert!(steps.iter().all(|s| s["ms"].as_f64().is_some_and(|ms| ms > 0.0)), "{out}");
    assert_eq!(v["inference"].as_array().unwrap().len(), 2);
    assert_eq!(v["epochs"][0]["samples"], 50);
    for key in ["compile_ms", "first_step_ms", "interp_ms"] {
        assert!(v[key].as_f64().is_some_and(|x| x >= 0.0), "{key}: {out}");
    }
    // The text form names each figure.
    let (out, err) = text(&nnc(&[
        "bench",
        "examples/xor.nn",
        "--batch",
        "4",
        "--threads",
        "1",
        "--samples",
        "0",
    ]));
    assert!(
        out.contains("train step") && out.contains("interpreter") && !out.contains("epoch"),
        "{out}{err}"
    );
    // Bad requests are errors, not panics.
    for args in [
        vec!["bench", "examples/xor.nn", "--batch", "0"],
        vec!["bench", "examples/xor.nn", "--threads", "0"],
        vec!["bench", "examples/xor.nn", "--batch", "1000000000000"],
        vec!["bench", "tests/ui/ok/attention.nn"],
        vec!["bench", "no-such-file.nn"],
    ] {
        let o = nnc(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o).1);
    }
}

#[test]
fn hostile_input_never_panics() {
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("empty.nn", vec![], 1),
        ("bytes.nn", vec![0xff, 0xfe, 0x00, 0x41], 1),
        (
            "deep.nn",
            format!("fn f(x) = {}x{}", "(".repeat(10_000), ")".repeat(10_000)).into_bytes(),
            1,
        ),
        ("long.nn", format!("fn f(x) = x{}", " + x".repeat(20_000)).into_bytes(), 0),
        ("recursive.nn", b"fn f(x) = f(x)\nmodel M(x: [b, 2]) -> [b, 2] = f(x)\n".to_vec(), 1),
    ];
    for (name, bytes, code) in cases {
        let p = temp_file(name, &bytes);
        let o = nnc(&["check", p.to_str().unwrap()]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_nnc")).exists());
}

#[test]
fn use_loads_a_file_beside_the_model() {
    let dir = std::env::temp_dir().join(format!("nnc-use-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("blocks.nn"), "/// Doubles its input.\nfn twice(x: [b, n]) = x + x\n").unwrap();
    std::fs::write(
        dir.join("main.nn"),
        "use blocks\nmodel M(x: [batch, 4]) -> [batch, 4] = x |> twice\n",
    )
    .unwrap();
    let o = nnc(&["check", dir.join("main.nn").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    std::fs::write(
        dir.join("main.nn"),
        "use blocks\nmodel M(x: [batch, 4]) -> [batch, 5] = x |> twice\n",
    )
    .unwrap();
    let o = nnc(&["check", dir.join("main.nn").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("E0305"), "{:?}", text(&o));
}

/// The GAN quality figures (`nnc predict --summary`): a classifier trained
/// by nnc is confident on real digits spread over all classes (mean top
/// probability ≥ 0.9, class-histogram entropy ≥ 2.0 nats, the issue's
/// thresholds), and the entropy exposes a collapsed generator (one digit
/// over and over).
#[test]
fn predict_summary_scores_confidence_and_variety() {
    let dir = std::env::temp_dir().join(format!("nnc-cli-summary-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("run");
    let o = nnc(&[
        "run",
        "examples/digits.nn",
        "--epochs",
        "15",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let weights = out.join("weights.safetensors");
    let rows: Vec<String> = std::fs::read_to_string("examples/data/digits.csv")
        .unwrap()
        .lines()
        .rev()
        .take(300)
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect();
    let figures = |rows: &[String]| -> (f64, f64) {
        let input = temp_file("samples.csv", rows.join("\n").as_bytes());
        let o = nnc(&[
            "predict",
            "examples/digits.nn",
            "--weights",
            weights.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--summary",
        ]);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stderr}");
        let value = |label: &str| -> f64 {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("{label}: {stdout}"));
            line[label.len()..].split_whitespace().next().unwrap().parse().unwrap()
        };
        (value("mean top-class probability:"), value("class histogram entropy:"))
    };
    let (confidence, entropy) = figures(&rows);
    assert!(confidence >= 0.9 && entropy >= 2.0, "real digits: {confidence} {entropy}");
    let collapsed = vec![rows[0].clone(); 300];
    let (confidence, entropy) = figures(&collapsed);
    assert!(confidence >= 0.5 && entropy == 0.0, "one digit repeated: {confidence} {entropy}");
    let _ = std::fs::remove_dir_all(&dir);
}
