//! `docs/reference.md` against the compiler: the primitives table is
//! exactly what the builtin table generates, and every `train` setting,
//! metric, schedule, data source and standard-library definition is named.
//! `NNC_UPDATE_REFERENCE=1` rewrites the generated table.

use nnc::sema::builtin_table::{reference_markdown, Builtin};
use nnc::sema::train::{DATA_SOURCES, FIELDS, METRICS, SCHEDULES};
use std::path::Path;

const BEGIN: &str = "<!-- primitives: generated from src/sema/builtin_table.rs -->\n";
const END: &str = "<!-- primitives: end -->";

fn reference() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md")).expect("docs/reference.md")
}

#[test]
fn primitives_table_is_generated_from_the_builtin_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let text = reference();
    let start = text.find(BEGIN).expect("the primitives begin marker") + BEGIN.len();
    let end = text.find(END).expect("the primitives end marker");
    let want = reference_markdown();
    if std::env::var_os("NNC_UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    assert_eq!(
        &text[start..end],
        want,
        "docs/reference.md is out of date: run NNC_UPDATE_REFERENCE=1 cargo test --test it reference"
    );
}

#[test]
fn builtin_table_is_consistent() {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sema/builtin_table.rs")).unwrap();
    let body = &src[src.find("pub enum Builtin {").unwrap()..];
    let body = &body[..body.find('}').unwrap()];
    let variants = body.lines().filter(|l| l.trim().ends_with(',')).count();
    assert_eq!(variants, Builtin::ALL.len(), "Builtin::ALL lists every variant once");
    for (i, b) in Builtin::ALL.iter().enumerate() {
        assert_eq!(Builtin::from_name(b.name()), Some(*b), "from_name inverts name");
        assert!(!Builtin::ALL[..i].contains(b), "{b:?} listed twice");
        let info = b.info();
        assert!(!info.params.is_empty() && !info.doc.is_empty() && !info.shapes.is_empty(), "{b:?}");
    }
}

/// Every name the compiler accepts in a `train` block, and every stdlib
/// definition, appears in the reference.
#[test]
fn reference_names_every_setting_source_and_library_definition() {
    let text = reference();
    let mut missing = vec![];
    for f in FIELDS {
        if !text.contains(&format!("| `{f}` |")) {
            missing.push(format!("setting `{f}`"));
        }
    }
    for m in METRICS.iter().chain(SCHEDULES) {
        if !text.contains(&format!("`{m}")) {
            missing.push(format!("`{m}`"));
        }
    }
    for (s, params) in DATA_SOURCES {
        if !text.contains(&format!("`{s}(")) {
            missing.push(format!("data source `{s}`"));
        }
        for p in *params {
            if !text.contains(p) {
                missing.push(format!("parameter `{p}` of `{s}`"));
            }
        }
    }
    for (module, src) in nnc::sema::STDLIB {
        for line in src.lines() {
            let Some(rest) = ["fn ", "layer ", "optimizer "].iter().find_map(|k| line.strip_prefix(k)) else {
                continue;
            };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !text.contains(&format!("`{name}")) {
                missing.push(format!("stdlib `{name}` ({module})"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/reference.md does not mention: {missing:?}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("(docs/reference.md)"), "README links the reference");
}
