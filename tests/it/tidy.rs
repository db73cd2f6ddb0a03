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
    ("plan", &["base", "ir"]),
    ("sema", &["base", "diag", "syntax", "ir", "plan"]),
    (
        "runtime",
        &["base", "diag", "syntax", "ir", "plan", "sema", "autodiff", "opt", "codegen"],
    ),
    ("export", &["base", "diag", "syntax", "ir", "plan", "sema", "opt", "runtime"]),
    (
        "teach",
        &["base", "diag", "syntax", "ir", "sema", "autodiff", "opt", "codegen", "runtime"],
    ),
    (
        "driver",
        &[
            "base", "diag", "syntax", "ir", "plan", "sema", "autodiff", "opt", "codegen", "runtime",
        ],
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

/// The source with comments, string and char literals blanked out (same
/// length, so byte offsets and line numbers survive).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = text[i..].find('\n').map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j.min(b.len()));
            i = j + 1;
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x' or '\n'); a lone quote is a lifetime.
            let end = text[i + 1..].find('\'').map_or(b.len(), |n| i + 1 + n);
            blank(&mut out, i + 1, end);
            i = end + 1;
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8")
}

/// Index just past the bracket closing the one opening at `open`.
fn close_of(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// The patterns (guards stripped) of the arms of the match body `body`
/// (the text between its braces).
fn arm_patterns(body: &str) -> Vec<String> {
    let b = body.as_bytes();
    let mut pats = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // Pattern: up to `=>` at depth 0.
        let start = i;
        let mut depth = 0i32;
        while i < b.len() && !(depth == 0 && b[i..].starts_with(b"=>")) {
            match b[i] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ => {}
            }
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let pat = body[start..i].trim().trim_start_matches('|').trim();
        let pat = pat.split(" if ").next().unwrap_or(pat).trim();
        pats.push(pat.to_string());
        i += 2;
        // Arm body: a block (rustfmt writes no comma after one), or an
        // expression up to a comma at depth 0.
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i = close_of(b, i);
        } else {
            let mut depth = 0i32;
            while i < b.len() && !(depth == 0 && b[i] == b',') {
                match b[i] {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
        }
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
    }
    pats
}

/// A pattern that matches anything: `_`, a binding, or a tuple of those.
fn is_catch_all(pat: &str) -> bool {
    !pat.is_empty()
        && pat
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_ ,()[]&.".contains(c))
        && !pat
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w.starts_with(|c: char| c.is_ascii_digit()))
}

/// The violations of the op-table rule in one file's code.
fn wildcard_op_matches(code: &str) -> Vec<(usize, String)> {
    let b = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let word_at = |at: usize, w: &str| {
        code[at..].starts_with(w)
            && (at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_'))
            && b.get(at + w.len())
                .is_some_and(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'!'))
    };
    let mut out = Vec::new();
    for (at, _) in code.match_indices("match") {
        if !word_at(at, "match") {
            continue;
        }
        // The body is the first brace at bracket depth 0 after the scrutinee.
        let mut k = at + 5;
        let mut depth = 0i32;
        while k < b.len() && !(depth == 0 && b[k] == b'{') {
            match b[k] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                _ => {}
            }
            k += 1;
        }
        if k >= b.len() {
            continue;
        }
        let end = close_of(b, k);
        let pats = arm_patterns(&code[k + 1..end - 1]);
        if pats.iter().any(|p| p.contains("Op::")) {
            if let Some(p) = pats.iter().find(|p| is_catch_all(p)) {
                out.push((line_of(at), format!("`{p} =>` in a match over ops")));
            }
        }
    }
    for (at, _) in code.match_indices("matches!(") {
        let end = close_of(b, at + 8);
        let inner = &code[at + 9..end - 1];
        // A set of ops written as a list silently leaves out a new op; one
        // op asked about by name (`matches!(op, Op::Const(_))`) is fine.
        let pattern = inner.split_once(',').map_or("", |(_, p)| p);
        if pattern.contains("Op::") && pattern.contains('|') {
            out.push((line_of(at), "`matches!` over a list of ops".to_string()));
        }
    }
    out
}

/// Every op fact is an exhaustive method of `ir::Op` (or a match that
/// lists every op): `ir`, `autodiff`, `opt`, `codegen` and `runtime` have no wildcard
/// arm over ops, so a new op is a compile error wherever something must be
/// decided about it. `_ => ...` over ops, a catch-all binding, and
/// `matches!` over a list of ops are refused.
#[test]
fn no_wildcard_arms_over_ops() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = vec![];
    for module in ["ir", "autodiff", "opt", "codegen", "runtime"] {
        let mut files = vec![];
        rust_files(&src.join(module), &mut files);
        for f in files {
            let code = code_only(&std::fs::read_to_string(&f).expect("read"));
            for (line, what) in wildcard_op_matches(&code) {
                violations.push(format!("{}:{line}: {what}", f.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "list every op instead (or ask `Op::kind()` etc.):\n{}",
        violations.join("\n")
    );
}

/// The lint itself catches what it is for, and passes exhaustive matches.
#[test]
fn wildcard_lint_sees_wildcards() {
    let bad = [
        "match op { Op::Const(_) => 0, _ => 1 }",
        "match op { Op::Const(_) => 0, other => f(other) }",
        "match (a, b) { (Op::Const(_), x) => 0, (_, _) => 1 }",
        "match u { UnaryOp::Neg => { x } _ if y => { 2 } }",
        "let a = matches!(op, Op::MatMul | Op::Reshape { .. });",
    ];
    for text in bad {
        assert_eq!(wildcard_op_matches(&code_only(text)).len(), 1, "{text}");
    }
    let good = [
        "match op { Op::Const(_) => 0, Op::Unary(u) => match u { UnaryOp::Neg => 1, UnaryOp::Exp => 2 }, Op::MatMul => { 3 } }",
        "match x { Some(v) => v, _ => 0 }",
        "let a = matches!(op, Op::Const(_));",
        "match op { Op::A { x, .. } if x > 0 => 1, Op::A { .. } => 2 } // _ => 3",
        "match s { \"_ => Op::A\" => 1, _ => 2 }",
    ];
    for text in good {
        assert_eq!(wildcard_op_matches(&code_only(text)), vec![], "{text}");
    }
}

/// The `ALL` list of each op family names every variant, and `Op::names`
/// has one name per op (three families plus one per other variant).
#[test]
fn op_lists_name_every_variant() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ir/op.rs");
    let code = code_only(&std::fs::read_to_string(path).expect("read op.rs"));
    let variants = |name: &str| -> usize {
        let at = code.find(&format!("pub enum {name} {{")).unwrap_or_else(|| panic!("enum {name}"));
        let open = at + code[at..].find('{').unwrap();
        let body = &code[open + 1..close_of(code.as_bytes(), open) - 1];
        // Variants are the capitalised words at brace depth 0 that start an item.
        let mut depth = 0;
        let mut n = 0;
        let mut item_start = true;
        for c in body.chars() {
            match c {
                '{' | '(' | '[' => depth += 1,
                '}' | ')' | ']' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if depth == 0 && item_start && c.is_ascii_uppercase() => {
                    n += 1;
                    item_start = false;
                }
                // `#[derive]`-style attributes inside are bracketed: skipped.
                c if !c.is_whitespace() && depth == 0 && c != '#' => item_start = false,
                _ => {}
            }
        }
        n
    };
    use nnc::ir::{BinaryOp, CmpOp, Op, UnaryOp};
    assert_eq!(variants("UnaryOp"), UnaryOp::ALL.len(), "UnaryOp::ALL");
    assert_eq!(variants("BinaryOp"), BinaryOp::ALL.len(), "BinaryOp::ALL");
    assert_eq!(variants("CmpOp"), CmpOp::ALL.len(), "CmpOp::ALL");
    let names = Op::names();
    let families = UnaryOp::ALL.len() + BinaryOp::ALL.len() + CmpOp::ALL.len();
    assert_eq!(names.len(), families + variants("Op") - 3, "Op::names misses an op");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "an op name is repeated");
}
