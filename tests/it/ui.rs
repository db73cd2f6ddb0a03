//! UI tests as data: every `tests/ui/**/*.nn` file is checked; each
//! diagnostic must sit on a line annotated `//~ CODE` (or `//~^ CODE` for
//! the line above), every annotation must be matched, and the rendered
//! diagnostics are snapshotted.

use nnc::diag::render_plain;
use nnc::driver;
use std::path::{Path, PathBuf};

fn ui_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/ui")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            ui_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "nn") {
            out.push(p);
        }
    }
}

/// (line, code) pairs from `//~ CODE` annotations; lines are 1-based.
fn annotations(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if let Some(pos) = line.find("//~") {
            let rest = &line[pos + 3..];
            let up = rest.chars().take_while(|c| *c == '^').count();
            for code in rest[up..]
                .split_whitespace()
                .take_while(|w| w.starts_with('E') || w.starts_with('W'))
            {
                out.push((i + 1 - up, code.to_string()));
            }
        }
    }
    out
}

/// The lines of `after` that differ from `before` (common leading and
/// trailing lines dropped).
fn changed_lines<'a>(before: &str, after: &'a str) -> Vec<&'a str> {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    b[head..b.len() - tail].to_vec()
}

#[test]
fn ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    ui_files(&root.join("tests/ui"), &mut files);
    assert!(files.len() >= 30, "expected at least 30 UI cases, found {}", files.len());
    let mut failures = vec![];
    for path in &files {
        let rel = path.strip_prefix(root).expect("relative").display().to_string();
        let bytes = std::fs::read(path).expect("read");
        // Data shapes and labels are checked from the files next to the case.
        let dir = path.parent().expect("in tests/ui");
        let with_data = |mut c: driver::Compilation| {
            driver::check_data(&mut c, &|src| nnc::runtime::load::feature_shape(src, dir, None));
            driver::check_labels(&mut c, &|src| nnc::runtime::load::label_summary(src, dir, None));
            // A fixed machine, so the snapshots do not depend on this one.
            driver::check_memory(&mut c, 8 << 30);
            c
        };
        let c = with_data(driver::compile_bytes(&rel, &bytes));
        let recheck = |text: &str| with_data(driver::compile(&rel, text));
        let text = &c.db.file(c.root).text;
        let mut expected = annotations(text);
        let mut rendered = String::new();
        for d in c.diagnostics() {
            let (line, _) = c.db.line_col(d.primary.span.file, d.primary.span.start as usize);
            match expected.iter().position(|(l, code)| *l == line && code == d.code) {
                Some(i) => {
                    expected.remove(i);
                }
                None => failures.push(format!("{rel}:{line}: unexpected {} {}", d.code, d.message)),
            }
            if d.primary.span.file != c.root {
                failures.push(format!("{rel}: {} points outside the file", d.code));
            }
            rendered.push_str(&render_plain(d, &c.db));
            // Every proposed fix is shown with the lines it changes, and
            // whether it was checked to work (the only ones nnc offers).
            let checked = driver::verify_fixes(&c, d, &recheck);
            for f in d.proposed_fixes() {
                let ok = checked.contains(&f);
                rendered.push_str(&format!("fix ({}): {}\n", if ok { "checked" } else { "rejected" }, f.title));
                for line in changed_lines(text, &f.apply(text)) {
                    rendered.push_str(&format!("  | {line}\n"));
                }
            }
            rendered.push('\n');
        }
        for (line, code) in expected {
            failures.push(format!("{rel}:{line}: expected {code}, not reported"));
        }
        // A program without errors also shows what it compiles to.
        if c.diagnostics().is_empty() {
            rendered.push_str("----- IR\n");
            for (_, f) in &c.analysis.model_funcs {
                rendered.push_str(&nnc::ir::print_func(f));
            }
            for p in &c.analysis.plans {
                rendered.push_str("----- GRAD (optimized training step)\n");
                let (step, _) = driver::training_step(p);
                nnc::ir::verify(&step).unwrap_or_else(|e| panic!("{rel}: step does not verify: {e}"));
                let opt = nnc::opt::optimize(&step);
                rendered.push_str(&nnc::ir::print_func(&opt));
                // Fusion, in-place updates and arena sharing, as `nnc run`
                // compiles the step (at a fixed batch size).
                rendered.push_str("----- KERNELS (the compiled training step at batch 4)\n");
                let weights = p.params.len() + p.states_per_step()[0];
                let fixed = nnc::opt::optimize(&opt.specialize(&|_| Some(4)));
                let (code, _) = nnc::runtime::backend::compile_step(&fixed, weights, &nnc::codegen::Options::threads(1))
                    .unwrap_or_else(|e| panic!("{rel}: {e}"));
                rendered.push_str(&code.kernels_text());
            }
        }
        let name = rel.trim_start_matches("tests/ui/").trim_end_matches(".nn").replace('/', "__");
        insta::with_settings!({ snapshot_path => root.join("tests/ui/snapshots"), prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!(name, if rendered.starts_with("-----") { rendered.clone() } else { format!("----- DIAGNOSTICS\n{rendered}") });
        });
    }
    assert!(failures.is_empty(), "UI test failures:\n{}", failures.join("\n"));
}

/// Every code of the registry is exercised: by a UI case (`//~ CODE` under
/// `tests/ui/`), or, for codes only the command line reaches (saved
/// weights, exports, `trace`/`tune`/`plot`), by an integration test that
/// asserts it. A new code without either fails here.
#[test]
fn every_registered_code_has_a_case() {
    // A fallback for a `train` block that fails without any other error:
    // no known program reaches it (each failure it guards reports its own
    // code first), so there is no case to write.
    const UNREACHED: &[&str] = &["E0504"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ui = vec![];
    ui_files(&root.join("tests/ui"), &mut ui);
    let annotated: String = ui
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .flat_map(|t| annotations(&t).into_iter().map(|(_, c)| c).collect::<Vec<_>>())
        .collect::<Vec<_>>()
        .join(" ");
    let mut asserted = String::new();
    for e in std::fs::read_dir(root.join("tests/it")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("ui.rs") {
            asserted.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    let missing: Vec<&str> = nnc::diag::CODES
        .iter()
        .map(|c| c.code)
        .filter(|c| {
            let quoted = [format!("\"{c}\""), format!("contains(\"{c}"), format!("[{c}]")];
            !annotated.contains(c) && !quoted.iter().any(|q| asserted.contains(q.as_str()))
        })
        .filter(|c| !UNREACHED.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes with no UI case and no test asserting them: {missing:?}");
}
