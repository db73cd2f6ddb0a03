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
