//! IR pass tests as data: each `tests/ir/<pass>/*.nnir` file is an input
//! function whose first line names the pass (`// pass: cse`). The pass's
//! printed output is snapshotted as `ir_passes__<pass>__<file stem>`, so a
//! new case is a new file plus `cargo insta review`.
//!
//! Beyond the snapshot, every case checks what holds for every pass: the
//! input parses and verifies, the output verifies, keeps the signature
//! (name, param types, result types), and survives a text round trip.

use nnc::ir::{self, Func};
use std::path::{Path, PathBuf};

fn run_pass(pass: &str, f: &Func) -> Func {
    match pass {
        "cse" => nnc::opt::cse(f),
        "dce" => nnc::opt::dce(f),
        "simplify" => nnc::opt::simplify(f),
        "optimize" => nnc::opt::optimize(f),
        other => panic!("unknown pass `{other}`"),
    }
}

/// `(name, param types, result types)`: what no pass may change.
fn signature(f: &Func) -> (String, Vec<ir::Type>, Vec<ir::Type>) {
    let tys = |vs: &[ir::Value]| vs.iter().map(|&v| f.ty(v).clone()).collect();
    (f.name.clone(), tys(&f.params), tys(&f.results))
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/ir exists") {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "nnir") {
                out.push(file);
            }
        }
    }
    // Sorted so failures and snapshot writes come in a stable order.
    out.sort();
    out
}

/// The pass named by the `// pass: NAME` header, which must agree with
/// the directory the file sits in (a misplaced file is a mistake).
fn header_pass(path: &Path, text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let pass = first
        .strip_prefix("// pass:")
        .unwrap_or_else(|| panic!("{}: first line must be `// pass: NAME`", path.display()))
        .trim()
        .to_string();
    let dir = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str());
    assert_eq!(
        Some(pass.as_str()),
        dir,
        "{}: header names a different pass than its directory",
        path.display()
    );
    pass
}

#[test]
fn nnir_cases() {
    let cases = cases();
    // Each pass needs cases that fire and cases that must not.
    for pass in ["cse", "dce", "simplify", "optimize"] {
        let n = cases
            .iter()
            .filter(|c| c.parent().unwrap().ends_with(pass))
            .count();
        assert!(n >= 4, "only {n} cases for {pass}");
    }
    for path in cases {
        let text = std::fs::read_to_string(&path).unwrap();
        let pass = header_pass(&path, &text);
        let shown = path.display();
        let input = ir::parse_func(&text).unwrap_or_else(|e| panic!("{shown}: {e}"));
        ir::verify(&input).unwrap_or_else(|e| panic!("{shown}: input does not verify: {e}"));
        let output = run_pass(&pass, &input);
        ir::verify(&output).unwrap_or_else(|e| panic!("{shown}: output does not verify: {e}"));
        assert_eq!(
            signature(&output),
            signature(&input),
            "{shown}: the pass changed the signature"
        );
        let printed = ir::print_func(&output);
        let reparsed = ir::parse_func(&printed)
            .unwrap_or_else(|e| panic!("{shown}: output does not parse: {e}"));
        assert_eq!(
            ir::print_func(&reparsed),
            printed,
            "{shown}: output does not round-trip"
        );
        // DCE and CSE finish in one run, and optimize runs to a fixed point,
        // so running any of them again must change nothing.
        if pass != "simplify" {
            let again = ir::print_func(&run_pass(&pass, &output));
            assert_eq!(again, printed, "{shown}: {pass} is not idempotent");
        }
        let stem = path.file_stem().unwrap().to_str().unwrap();
        insta::with_settings!({ description => format!("tests/ir/{pass}/{stem}.nnir"), omit_expression => true }, {
            insta::assert_snapshot!(format!("{pass}__{stem}"), printed);
        });
    }
}
