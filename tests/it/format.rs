//! The formatter leaves the repository's own `.nn` files as they are (they
//! are its style reference), is idempotent on them, and `nnc fmt --check`
//! reports what it would change.

use nnc::syntax::format::{format, FormatError};
use std::path::{Path, PathBuf};
use std::process::Command;

fn nn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            nn_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "nn") {
            out.push(p);
        }
    }
}

#[test]
fn format_leaves_stdlib_examples_and_ui_tests_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    for dir in ["stdlib", "examples", "tests/ui"] {
        nn_files(&root.join(dir), &mut files);
    }
    let (mut checked, mut failures) = (0, vec![]);
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue }; // not_utf8.nn
        match format(&text) {
            Ok(out) => {
                checked += 1;
                if out != text {
                    let line = text.lines().zip(out.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
                    failures.push(format!("{}: changed at line {line}", f.display()));
                }
            }
            // Files with syntax errors are the only ones it may refuse.
            Err(FormatError::Syntax(_)) if f.to_string_lossy().contains("/syntax/") => {}
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    assert!(checked >= 40, "only {checked} files formatted");
    assert!(failures.is_empty(), "formatter changed files:\n{}", failures.join("\n"));
}

#[test]
fn format_is_idempotent_on_messy_input() {
    let messy = "// header\nfn   f( a,b:[n ,  4] )->[n,4]=a+b\n\n\n/// doc\nlayer  L(n:int){\nparam W:[n,n]=zeros()\n        fn forward(x)=x@W|>relu\n}\nmodel M(x:[b,4])->[b,4]=\nx|>L(4)\n  |>f(x)\n";
    let once = format(messy).expect("formats");
    assert_eq!(format(&once).expect("formats again"), once);
    assert!(once.contains("fn f(a, b: [n, 4]) -> [n, 4] = a+b\n"), "{once}");
    assert!(once.contains("    param W: [n, n] = zeros()\n"), "{once}");
    assert!(once.contains("    x |> L(4)\n      |> f(x)\n"), "{once}");
    assert!(once.contains("// header\n") && once.contains("/// doc\n"), "comments kept: {once}");
}

#[test]
fn fmt_check_reports_and_fmt_rewrites() {
    let dir = std::env::temp_dir().join(format!("nnc-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("m.nn");
    std::fs::write(&file, "fn f(x)=x\n").expect("write");
    let nnc = env!("CARGO_BIN_EXE_nnc");
    let check = Command::new(nnc).args(["fmt", "--check"]).arg(&file).output().expect("run nnc");
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("m.nn"), "{check:?}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "fn f(x)=x\n",
        "--check must not write"
    );
    let run = Command::new(nnc).arg("fmt").arg(&file).output().expect("run nnc");
    assert!(run.status.success(), "{run:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "fn f(x) = x\n");
    let again = Command::new(nnc).args(["fmt", "--check"]).arg(&file).output().expect("run nnc");
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    std::fs::write(&file, "fn f(x) = (x\n").expect("write");
    let broken = Command::new(nnc).arg("fmt").arg(&file).output().expect("run nnc");
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "fn f(x) = (x\n",
        "broken files are left alone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by `nnc fuzz sources` (seed 3000): `x + 1 .s` (a field of an
/// integer, across a comment and a newline) was formatted as `1.`, which
/// lexes as a float, so the formatted text no longer parsed.
#[test]
fn an_integer_before_a_dot_keeps_its_space() {
    let src = "fn f(x) = x + 1 .// note\ns\n";
    let (_, errors) = nnc::syntax::parse(nnc::base::FileId(0), src);
    assert!(errors.is_empty(), "{errors:?}");
    let formatted = nnc::syntax::format::format(src).expect("it parses, so it formats");
    let (_, errors) = nnc::syntax::parse(nnc::base::FileId(0), &formatted);
    assert!(errors.is_empty(), "formatted text does not parse:\n{formatted}");
    assert!(formatted.contains("1 ."), "{formatted}");
}
