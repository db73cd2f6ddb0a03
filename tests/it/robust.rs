//! The checker never panics: every example and UI file, mutated many ways
//! (truncated, digits changed, characters deleted or inserted), compiles to
//! diagnostics or to IR that verifies.

use nnc::driver;
use std::panic;
use std::path::Path;

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![];
    let mut dirs = vec![root.join("examples"), root.join("tests/ui"), root.join("stdlib")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "nn") {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    out.push((p.display().to_string(), t));
                }
            }
        }
    }
    out.sort();
    out
}

/// Deterministic variants of `text`.
fn mutations(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut out = vec![];
    let step = (n / 12).max(1);
    for i in (0..n).step_by(step) {
        out.push(chars[..i].iter().collect());
        let mut del = chars.clone();
        del.remove(i);
        out.push(del.into_iter().collect());
        for ins in [")", ",", "|>", "[", "x"] {
            let mut v: String = chars[..i].iter().collect();
            v.push_str(ins);
            v.extend(&chars[i..]);
            out.push(v);
        }
    }
    // Every digit changed: shapes and sizes that disagree.
    for (i, c) in chars.iter().enumerate().filter(|(_, c)| c.is_ascii_digit()).take(30) {
        if let Some(d) = c.to_digit(10) {
            for r in [0, (d + 1) % 10] {
                let mut v = chars.clone();
                v[i] = char::from_digit(r, 10).unwrap();
                out.push(v.into_iter().collect());
            }
        }
    }
    out
}

#[test]
fn mutated_sources_never_panic() {
    let mut failures = vec![];
    let mut count = 0;
    for (name, text) in sources() {
        for m in mutations(&text) {
            count += 1;
            let result = panic::catch_unwind(|| {
                let c = driver::compile(&name, &m);
                if !c.has_errors() {
                    for p in &c.analysis.plans {
                        let (step, _) = driver::training_step(p);
                        nnc::ir::verify(&step).expect("step verifies");
                        nnc::ir::verify(&nnc::opt::optimize(&step)).expect("optimized step verifies");
                    }
                }
            });
            if result.is_err() {
                failures.push(format!("{name}: panicked on\n{m}\n"));
            }
        }
    }
    assert!(count > 3000, "only {count} mutations");
    assert!(
        failures.is_empty(),
        "{} of {count} mutations panicked; first:\n{}",
        failures.len(),
        failures[0]
    );
}

// ---- regressions of issue 11 ------------------------------------------------

fn codes(c: &driver::Compilation) -> Vec<&'static str> {
    c.diagnostics().iter().map(|d| d.code).collect()
}

/// Run `f` on a stack as large as `nnc check`'s: thousands of pipeline
/// stages nest as deeply in the syntax tree.
fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(nnc::lsp::STACK_SIZE)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn a_diagnostic_past_column_65535_renders() {
    let text = format!("{}model", " ".repeat(70_000));
    let c = driver::compile("long.nn", &text);
    assert!(c.has_errors());
    for d in c.diagnostics() {
        let out = nnc::diag::render_plain(d, &c.db);
        assert!(out.contains(d.code), "{out}");
        // The 70,000 spaces are not all printed.
        assert!(out.len() < 2_000, "{} bytes rendered", out.len());
    }
}

#[test]
fn an_exponential_call_tree_ends_in_one_budget_error() {
    // Not recursive, but f24 inlines f0 2^24 times.
    let mut text = String::from("fn f0(x) = x + 1\n");
    for i in 1..=24 {
        text.push_str(&format!("fn f{i}(x) = f{}(x) + f{}(x)\n", i - 1, i - 1));
    }
    text.push_str("model M(x: [batch, 2]) = f24(x)\n");
    let c = driver::compile("exp.nn", &text);
    let found = codes(&c);
    assert_eq!(found.iter().filter(|c| **c == "E0502").count(), 1, "{found:?}");
}

/// Found by `nnc fuzz sources` (seed 1000): nested unclosed indexes
/// (`y: [[0], [1 [1 [1 ...`) were parsed twice per level, as a slice and
/// then as an expression, so checking took time exponential in the depth
/// (20 levels 3.3 s; the 164 of the reproducer never ended). At 200 levels
/// this ends only if parsing is linear; closed ones still index.
#[test]
fn nested_unclosed_indexes_end_in_a_syntax_error() {
    let open = "[1 ".repeat(200);
    let c = driver::compile("idx.nn", &format!("model M(x: [batch, 2]) = x\nfn f(y) = [{open}[1]]\n"));
    assert!(codes(&c).iter().any(|c| c.starts_with("E000")), "{:?}", codes(&c));
    let closed = "x[0]".to_string() + &"[0]".repeat(2) + "[:, ::-1][..., 1:]";
    let c = driver::compile(
        "idx.nn",
        &format!("model M(x: [batch, 3, 4, 5]) = x |> Dense(5 -> 2)\nfn g(x) = {closed}\n"),
    );
    assert!(!c.has_errors(), "{:?}", codes(&c));
}

/// A layer's name keys its parameters (`fc1.W`), so two layers under one
/// name are an error, not one store entry of the wrong shape (this once
/// panicked in the train plan); a generated name steps over a `let` name.
#[test]
fn two_layers_under_one_name_are_an_error_and_generated_names_avoid_let_names() {
    let train = "train M { data = tensors(x: [[1,2,3,4,5,6,7,8,9,10,11,12]], y: [[0, 1, 0, 1, 0]])\n\
                 loss = mse(model(x), y) + l2(fc1.b)\n optimizer = sgd }\n";
    let shadowed = "model M(x: [batch, 12]) -> [batch, 5] {\n let fc1 = Dense(4 -> 8, relu)\n \
                    let fc1 = Dense(12 -> 5)\n x |> fc1\n}\n";
    let c = driver::compile("shadow.nn", &format!("{shadowed}{train}"));
    assert_eq!(codes(&c), ["E0102"]);
    let d = &c.diagnostics()[0];
    assert_eq!(
        &shadowed[d.primary.span.start as usize..d.primary.span.end as usize],
        "Dense(12 -> 5)"
    );

    // A function called twice builds its `let` layer twice.
    let twice = "fn block(x: [batch, 12]) -> [batch, 12] {\n let fc1 = Dense(12 -> 12, relu)\n x |> fc1\n}\n\
                 model M(x: [batch, 12]) -> [batch, 5] = x |> block |> block |> Dense(12 -> 5)\n";
    let c = driver::compile("twice.nn", &format!("{twice}{train}"));
    assert_eq!(codes(&c), ["E0102"]);

    // `dense1` is taken by the `let`, so the unnamed Dense becomes `dense2`.
    let generated = "model M(x: [batch, 12]) -> [batch, 5] {\n let dense1 = Dense(8 -> 5)\n \
                     x |> Dense(12 -> 8, relu) |> dense1\n}\n";
    let c = driver::compile(
        "auto.nn",
        &format!("{generated}{}", train.replace(" + l2(fc1.b)", " + l2(dense2.W)")),
    );
    assert!(!c.has_errors(), "{:?}", codes(&c));
}

#[test]
fn lists_that_double_end_in_an_error() {
    let mut text = String::from("fn l0(x) = [x, x]\n");
    for i in 1..=40 {
        text.push_str(&format!("fn l{i}(x) = [l{}(x), l{}(x)]\n", i - 1, i - 1));
    }
    let c = driver::compile("lists.nn", &text);
    assert!(codes(&c).contains(&"E0502"), "{:?}", codes(&c));
}

#[test]
fn long_pipelines_and_many_errors_check() {
    // 8,000 stages that each fail: each is reported once (deduplication was
    // quadratic in the number of diagnostics).
    let mut text = String::from("model M(x: [batch, 2]) = x");
    for _ in 0..8000 {
        text.push_str(" |> x");
    }
    text.push('\n');
    on_big_stack(move || {
        let c = driver::compile("pipe.nn", &text);
        assert!(codes(&c).iter().all(|c| *c == "E0106"), "{:?}", &codes(&c)[..3]);
        assert_eq!(c.diagnostics().len(), 8000);
    });
}

#[test]
fn summary_of_ten_thousand_layers() {
    let mut text = String::from("model M(x: [batch, 2]) = x");
    for _ in 0..10_000 {
        text.push_str(" |> Dense(2 -> 2)");
    }
    text.push('\n');
    on_big_stack(move || {
        let c = driver::compile("deep.nn", &text);
        assert!(!c.has_errors(), "{:?}", codes(&c));
        let (model, func) = &c.analysis.model_funcs[0];
        let layers = &c.analysis.model_layers.iter().find(|(m, _)| m == model).unwrap().1;
        let s = nnc::runtime::summary::summarize(func, layers);
        assert_eq!(s.rows.len(), 10_000);
        assert_eq!(s.params, 10_000 * 6);
        assert_eq!(s.flops, 10_000 * (8 + 2));
    });
}

#[test]
fn summary_counts_never_wrap() {
    // Refused by the checker; the summary of a shape near the limit stays exact.
    let c = driver::compile("big.nn", "model M(x: [batch, 2]) = x |> Dense(2 -> 1000000000)\n");
    assert!(!c.has_errors(), "{:?}", codes(&c));
    let (_, func) = &c.analysis.model_funcs[0];
    let s = nnc::runtime::summary::summarize(func, &c.analysis.model_layers[0].1);
    assert_eq!(s.params, 3_000_000_000);
}

#[test]
fn recursion_does_not_freeze_the_language_server() {
    let mut client = crate::lsp::Client::start();
    client.notify(
        "textDocument/didOpen",
        serde_json::json!({ "textDocument": { "uri": "file:///tmp/nnc-rec/r.nn", "languageId": "nn", "version": 1,
            "text": "fn f(x, y = f(f(1))) = x + y\nfn g(x) = g(x) + g(x)\n" } }),
    );
    let hover = client.request_raw(
        "textDocument/hover",
        serde_json::json!({ "textDocument": { "uri": "file:///tmp/nnc-rec/r.nn" }, "position": { "line": 1, "character": 10 } }),
    );
    assert!(hover.error.is_none(), "{hover:?}");
}

#[test]
fn requests_after_shutdown_get_an_error_and_exit_ends_the_server() {
    let mut client = crate::lsp::Client::start();
    let r = client.request_raw("shutdown", serde_json::Value::Null);
    assert!(r.error.is_none(), "{r:?}");
    let r = client.request_raw("textDocument/hover", serde_json::json!({}));
    let e = r.error.expect("an error after shutdown");
    assert_eq!(e.code, lsp_server::ErrorCode::InvalidRequest as i32, "{e:?}");
    // Dropping sends `exit` and joins the server thread.
    drop(client);
}

#[test]
fn weights_files_are_byte_identical_for_the_same_tensors() {
    let c = driver::compile(
        "xor.nn",
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/xor.nn")).unwrap(),
    );
    let plan = &c.analysis.plans[0];
    let w = nnc::runtime::train::initial_weights(plan).unwrap();
    let first = nnc::runtime::checkpoint::to_bytes(&plan.model, &w, None).unwrap();
    // Each call hashes its metadata with a fresh random seed.
    for _ in 0..20 {
        assert_eq!(nnc::runtime::checkpoint::to_bytes(&plan.model, &w, None).unwrap(), first);
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&first).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta.get("model").map(String::as_str), Some("Xor"));
    assert_eq!(meta.get("format").map(String::as_str), Some("nnc"));
    safetensors::SafeTensors::deserialize(&first).unwrap();
}

// ---- data and files, as a user runs them ------------------------------------

fn nnc_cmd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nnc"))
        .args(args)
        .env_remove("NNC_DATA")
        .output()
        .expect("run nnc")
}

/// Exit code 1, no panic; stderr.
fn fails(args: &[&str]) -> String {
    let o = nnc_cmd(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "nnc {args:?}\nstdout:\n{}\nstderr:\n{err}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A 2-feature classifier on `data.csv` beside it.
fn csv_model(dir: &Path, rows: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("data.csv"), rows).unwrap();
    let nn = dir.join("m.nn");
    std::fs::write(
        &nn,
        format!(
            "model M(x: [batch, 2]) -> [batch, 3] = x |> Dense(2 -> 3)\n\ntrain M {{\n    data = csv(\"data.csv\", label: 2, scale: 10)\n    loss = cross_entropy(model(x), y)\n    optimizer = sgd\n    epochs = 1\n    batch_size = 1\n{extra}}}\n"
        ),
    )
    .unwrap();
    nn
}

#[test]
fn data_values_are_checked_when_loaded_with_file_line_and_column() {
    let dir = scratch("values");
    let out = dir.join("run");
    let nn = csv_model(&dir, "0,1,0\n1,0,16777216\n", "");
    let err = fails(&["run", s(&nn), "--out", s(&out)]);
    assert!(
        err.contains("data.csv") && err.contains("line 2, column 3") && err.contains("16777216"),
        "{err}"
    );

    let nn = csv_model(&dir, "0,1,0\n3e38,0,1\n", "");
    let err = fails(&["run", s(&nn), "--out", s(&out)]);
    assert!(err.contains("line 2, column 1") && err.contains("scale"), "{err}");

    // One row and a test split of 0.2: an error before training, not after.
    let nn = csv_model(&dir, "0,1,0\n", "    test = 0.2\n");
    let err = fails(&["run", s(&nn), "--out", s(&out)]);
    assert!(err.contains("test split empty") && !err.contains("epoch"), "{err}");
    assert!(!out.join("weights.safetensors").exists());
}

#[test]
fn predict_refuses_non_finite_inputs() {
    let dir = scratch("predict");
    let out = dir.join("run");
    let nn = csv_model(&dir, "0,1,0\n1,0,1\n0,0,2\n1,1,0\n", "");
    let o = nnc_cmd(&["run", s(&nn), "--out", s(&out), "--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let weights = out.join("weights.safetensors");
    for (rows, want) in [
        ("1,NaN\n", "line 1, column 2"),
        ("inf,0\n", "line 1, column 1"),
        ("0,1\n3e38,1\n", "line 2, column 1"),
    ] {
        let input = dir.join("x.csv");
        std::fs::write(&input, rows).unwrap();
        let err = fails(&["predict", s(&nn), "--weights", s(&weights), "--input", s(&input)]);
        assert!(err.contains(want) && err.contains("x.csv"), "{rows:?}: {err}");
    }
}

#[test]
fn a_loss_that_diverges_in_the_first_epoch_still_leaves_weights() {
    let dir = scratch("diverge");
    let out = dir.join("run");
    let nn = dir.join("d.nn");
    std::fs::write(
        &nn,
        "model M(x: [batch, 2]) -> [batch, 1] = x |> Dense(2 -> 1)\n\ntrain M {\n    data = tensors(x: [[1, 2], [3, 4], [5, 6], [7, 8]], y: [[1], [2], [3], [4]])\n    loss = mse(model(x), y)\n    optimizer = sgd(lr: 1e30)\n    epochs = 1\n    batch_size = 1\n}\n",
    )
    .unwrap();
    let err = fails(&["run", s(&nn), "--out", s(&out)]);
    assert!(err.contains("the last finite weights are in"), "{err}");
    let bytes = std::fs::read(out.join("weights.safetensors")).expect("weights written");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, t) in st.tensors() {
        let finite = t
            .data()
            .chunks_exact(4)
            .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite());
        assert!(finite, "{name} is not finite");
    }
}

/// `nnc ARGS` with files limited to `blocks` KiB and SIGXFSZ ignored, so
/// a write past the limit fails with EFBIG like a full disk.
fn with_file_limit(blocks: u32, args: &[&str]) -> std::process::Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec '{}' {}",
            env!("CARGO_BIN_EXE_nnc"),
            quoted.join(" ")
        ))
        .output()
        .expect("run bash")
}

#[test]
fn a_full_disk_leaves_no_partial_file() {
    let dir = scratch("full");
    // `nnc fmt` rewrites the source: a failed write must keep it intact.
    let src = dir.join("wide.nn");
    let mut text = String::from("model M(x: [batch, 2]) =\n    x");
    for _ in 0..300 {
        text.push_str("\n |>  relu(  x )");
    }
    text.push('\n');
    std::fs::write(&src, &text).unwrap();
    let o = with_file_limit(1, &["fmt", s(&src)]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&src).unwrap(), text, "the source was changed");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "files left behind: {left:?}");

    // `nnc run` writing weights larger than the limit.
    let nn = dir.join("big.nn");
    std::fs::write(
        &nn,
        "model M(x: [batch, 2]) -> [batch, 1] = x |> Dense(2 -> 512) |> Dense(512 -> 1)\n\ntrain M {\n    data = tensors(x: [[1, 2], [3, 4]], y: [[1], [2]])\n    loss = mse(model(x), y)\n    optimizer = adam\n    epochs = 1\n}\n",
    )
    .unwrap();
    let out = dir.join("run");
    std::fs::create_dir_all(&out).unwrap();
    let o = with_file_limit(4, &["run", s(&nn), "--out", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("weights.safetensors") && err.contains("cannot write"), "{err}");
    let tmp: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}
