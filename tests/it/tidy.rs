//! Keeps the module dependency table of `src/lib.rs` true: each pipeline
//! stage uses only the stages below it.

use std::path::Path;

/// Which top-level modules each module may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("diag", &["base"]),
    ("syntax", &["base", "diag"]),
    ("ir", &["base", "diag"]),
    ("autodiff", &["base", "diag", "ir"]),
    ("opt", &["base", "diag", "ir"]),
    ("codegen", &["base", "diag", "ir", "opt"]),
    ("sema", &["base", "diag", "syntax", "ir"]),
    ("runtime", &["base", "diag", "syntax", "ir", "sema", "autodiff", "opt", "codegen"]),
    (
        "teach",
        &["base", "diag", "syntax", "ir", "sema", "autodiff", "opt", "codegen", "runtime"],
    ),
    (
        "driver",
        &["base", "diag", "syntax", "ir", "sema", "autodiff", "opt", "codegen", "runtime"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn module_dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = vec![];
    for (module, allowed) in ALLOWED {
        let mut files = vec![];
        rust_files(&src.join(module), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            for (i, line) in text.lines().enumerate() {
                let mut rest = line;
                while let Some(pos) = rest.find("crate::") {
                    let after = &rest[pos + 7..];
                    let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != *module && !allowed.contains(&name.as_str()) {
                        violations.push(format!("{}:{}: `{module}` uses `{name}`", f.display(), i + 1));
                    }
                    rest = after;
                }
            }
        }
    }
    assert!(violations.is_empty(), "dependency violations:\n{}", violations.join("\n"));
}
