//! Text data and character models: `text(...)` windows and their targets,
//! E0605/E0606 with line and column (at load and at `nnc check`), the
//! sampler's draws, `nnc sample` continuing a pattern a model has learnt,
//! and `examples/char_lm.nn` / `examples/char_transformer.nn` learning on a
//! subset of Genesis.

use nnc::runtime::generate::pick;
use nnc::runtime::text::load_text;
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

fn fails(args: &[&str]) -> String {
    let o = nnc(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "nnc {args:?}\nstderr:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-text-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn text_becomes_windows_of_code_points_with_the_next_character_as_target() {
    let dir = temp_dir("windows");
    let f = dir.join("t.txt");
    std::fs::write(&f, "abcdefghijk").unwrap();
    let ds = load_text(&f, 3, 128).unwrap();
    // 11 characters: (11 - 1) / 3 = 3 windows; the last target is 'j'.
    let ids = |s: &str| s.chars().map(|c| c as u32 as f32).collect::<Vec<f32>>();
    assert_eq!(ds.x.shape(), &[3, 3]);
    assert_eq!(ds.x.iter().copied().collect::<Vec<_>>(), ids("abcdefghi"));
    assert_eq!(ds.y.iter().copied().collect::<Vec<_>>(), ids("bcdefghij"));
    assert!(ds.y_is_class);
    assert_eq!(ds.num_classes, Some(128));
}

#[test]
fn a_character_outside_the_vocabulary_is_e0605_at_its_line_and_column() {
    let dir = temp_dir("vocab");
    let f = dir.join("t.txt");
    std::fs::write(&f, "ab\ncdé f").unwrap();
    let e = load_text(&f, 2, 128).unwrap_err();
    assert_eq!(e.code, "E0605");
    assert!(
        e.message.contains("line 2, column 3") && e.message.contains("U+00E9"),
        "{}",
        e.message
    );
    // With room for it, the same file loads.
    assert!(load_text(&f, 2, 256).is_ok());
}

#[test]
fn a_file_that_is_not_utf8_is_e0606_at_the_first_bad_byte() {
    let dir = temp_dir("utf8");
    let f = dir.join("t.txt");
    std::fs::write(&f, b"ok\nna\xefve\n").unwrap();
    let e = load_text(&f, 2, 256).unwrap_err();
    assert_eq!(e.code, "E0606");
    assert!(
        e.message.contains("line 2, column 3") && e.message.contains("0xEF"),
        "{}",
        e.message
    );
}

#[test]
fn text_too_short_for_one_window_is_an_error_not_an_empty_dataset() {
    let dir = temp_dir("short");
    let f = dir.join("t.txt");
    std::fs::write(&f, "abc").unwrap();
    let e = load_text(&f, 3, 128).unwrap_err();
    assert!(e.message.contains("too few"), "{}", e.message);
}

#[test]
fn sampling_draws_by_the_inverse_cdf_and_temperature_zero_is_the_argmax() {
    let logits = [0.0f32, (3f32).ln(), 0.0];
    // Probabilities 1/5, 3/5, 1/5: the draw u falls in [0, .2), [.2, .8), [.8, 1).
    assert_eq!(pick(&logits, 1.0, 0.1), 0);
    assert_eq!(pick(&logits, 1.0, 0.5), 1);
    assert_eq!(pick(&logits, 1.0, 0.9), 2);
    for u in [0.0, 0.5, 0.999] {
        assert_eq!(pick(&logits, 0.0, u), 1);
    }
    // A very high temperature flattens the distribution to uniform.
    assert_eq!(pick(&logits, 1e9, 0.34), 1);
    assert_eq!(pick(&logits, 1e9, 0.1), 0);
}

/// A model and a file of `abcabc...`: after training, `nnc sample` at
/// temperature 0 continues the cycle exactly.
#[test]
fn a_trained_char_model_continues_the_pattern_it_learnt() {
    let dir = temp_dir("cycle");
    std::fs::write(dir.join("cycle.txt"), "abc".repeat(400)).unwrap();
    let model = dir.join("cycle.nn");
    std::fs::write(
        &model,
        "model Cycle(x: i32[batch, 12]) -> [batch, 12, 100] =\n\
         \x20   x |> Embedding(100 -> 8) |> Lstm(8 -> 16) |> Dense(16 -> 100)\n\
         train Cycle {\n\
         \x20   data = text(\"cycle.txt\", steps: 12, vocab: 100)\n\
         \x20   loss = sequence_cross_entropy(model(x), y)\n\
         \x20   optimizer = adam(lr: 0.02)\n\
         \x20   clip_norm = 1.0\n\
         \x20   epochs = 12\n\
         \x20   batch_size = 16\n\
         \x20   validation = 0.1\n\
         \x20   metrics = [accuracy, perplexity]\n\
         \x20   seed = 3\n\
         }\n",
    )
    .unwrap();
    let out = dir.join("run");
    let report = ok(&["run", s(&model), "--quiet", "--out", s(&out)]);
    assert!(report.contains("perplexity"), "{report}");
    let weights = out.join("weights.safetensors");
    let w = s(&weights);
    let text = ok(&[
        "sample",
        s(&model),
        "--weights",
        w,
        "--prompt",
        "ab",
        "--length",
        "30",
        "--temperature",
        "0",
    ]);
    assert_eq!(text.trim_end_matches('\n'), format!("ab{}", &"cab".repeat(10)), "{report}");
    // A seed gives the same text every time; another seed may not.
    let draw = |seed: &str| {
        ok(&[
            "sample",
            s(&model),
            "--weights",
            w,
            "--prompt",
            "a",
            "--length",
            "50",
            "--seed",
            seed,
        ])
    };
    assert_eq!(draw("5"), draw("5"));
    // Characters outside the vocabulary are refused in the prompt as in the data.
    let err = fails(&["sample", s(&model), "--weights", w, "--prompt", "é"]);
    assert!(err.contains("E0605") && err.contains("U+00E9"), "{err}");
    let err = fails(&["sample", s(&model), "--weights", w, "--temperature=-1"]);
    assert!(err.contains("temperature"), "{err}");
}

#[test]
fn nnc_check_reports_a_character_outside_the_vocabulary_at_the_data_source() {
    let dir = temp_dir("check");
    std::fs::write(dir.join("t.txt"), "plain\ncafé\n").unwrap();
    let model = dir.join("m.nn");
    std::fs::write(
        &model,
        "model M(x: i32[batch, 4]) -> [batch, 4, 128] = x |> Embedding(128 -> 4) |> Dense(4 -> 128)\n\
         train M {\n    data = text(\"t.txt\", steps: 4)\n    loss = sequence_cross_entropy(model(x), y)\n    optimizer = adam\n}\n",
    )
    .unwrap();
    let o = nnc(&["check", s(&model)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("E0605") && out.contains("line 2, column 4"), "{out}");
    let err = fails(&["run", s(&model), "--out", s(&dir.join("run"))]);
    assert!(err.contains("E0605") && err.contains("line 2, column 4"), "{err}");
}

/// The value of `name` on the test report (`  perplexity 7.1234`).
fn value(report: &str, name: &str) -> f64 {
    let line = report
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{report}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `nnc run FILE` on the first `limit` windows of Genesis for `epochs`;
/// the test perplexity, then a sample of the trained model.
fn learn_genesis(file: &str, name: &str, limit: &str, epochs: &str) -> (f64, String) {
    let dir = temp_dir(name);
    let out = dir.join("run");
    let report = ok(&["run", file, "--quiet", "--limit", limit, "--epochs", epochs, "--out", s(&out)]);
    let ppl = value(&report, "perplexity");
    let weights = out.join("weights.safetensors");
    let text = ok(&[
        "sample",
        file,
        "--weights",
        s(&weights),
        "--prompt",
        "And God",
        "--length",
        "80",
        "--temperature",
        "0.5",
    ]);
    (ppl, text)
}

#[test]
fn the_lstm_char_model_learns_genesis_from_a_subset() {
    // A uniform guess over the 60 characters of the text is perplexity 60
    // (128 over the whole vocabulary); common letters alone give about 20.
    let (ppl, text) = learn_genesis("examples/char_lm.nn", "lstm", "640", "2");
    assert!(ppl < 14.0, "test perplexity {ppl}\n{text}");
    assert!(text.starts_with("And God") && text.chars().count() >= 87, "{text}");
}

/// The causal mask holds in the character Transformer as written in the
/// example: changing a later character leaves every earlier position's
/// logits bit-identical (compiled code, initial weights).
#[test]
fn the_char_transformer_never_looks_ahead() {
    use ndarray::{ArrayD, IxDyn};
    use nnc::runtime::backend::{runner, BackendKind};
    let src = std::fs::read_to_string("examples/char_transformer.nn").unwrap();
    let c = nnc::driver::compile("examples/char_transformer.nn", &src);
    assert!(!c.has_errors(), "{:?}", c.diagnostics());
    let plan = &c.analysis.plans[0];
    let w = nnc::runtime::train::initial_weights(plan).unwrap();
    let predict = &plan.evaluation().unwrap().predict;
    let mut run = runner(BackendKind::Jit { threads: 1 }, predict);
    let text: Vec<f32> = "In the beginning God created the heaven and the earth. And the ea"
        .chars()
        .take(64)
        .map(|c| c as u32 as f32)
        .collect();
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 64]), text).unwrap();
    let mut logits = |x: &ArrayD<f32>| {
        let mut args = vec![x];
        args.extend(w.params.iter());
        run.call(&args).unwrap().remove(0)
    };
    let before = logits(&x);
    for changed in [63, 40, 5] {
        let mut y = x.clone();
        y[[0, changed]] = 'Z' as u32 as f32;
        let after = logits(&y);
        for t in 0..64 {
            let same = (0..128).all(|v| before[[0, t, v]].to_bits() == after[[0, t, v]].to_bits());
            if t < changed {
                assert!(same, "position {t} changed when character {changed} did");
            } else if t == changed {
                assert!(!same, "position {changed} ignored its own character");
            }
        }
    }
}

#[test]
fn the_causal_transformer_char_model_learns_genesis_from_a_subset() {
    let (ppl, text) = learn_genesis("examples/char_transformer.nn", "transformer", "640", "2");
    assert!(ppl < 20.0, "test perplexity {ppl}\n{text}");
    assert!(text.starts_with("And God") && text.chars().count() >= 87, "{text}");
}
