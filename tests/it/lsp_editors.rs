//! The editor integrations stay in step with the language: every word the
//! pest grammar spells out is highlighted by the TextMate grammar (VS Code)
//! and the Neovim syntax, and is a keyword or dtype of the logos lexer; the
//! VS Code manifest points at files that exist.

use nnc::syntax::lexer::{DTYPES, KEYWORDS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Word-like string literals of the pest grammar: its keywords and dtypes.
fn pest_words() -> BTreeSet<String> {
    let text = read("grammar/nn.pest");
    let mut words = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, piece) in code.split('"').enumerate() {
            // Two letters at least: `"e"` is the exponent of a float.
            if i % 2 == 1
                && piece.len() > 1
                && piece.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && piece.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                words.insert(piece.to_string());
            }
        }
    }
    words
}

/// Words in `\b(a|b|c)\b`-style alternations of a TextMate grammar's
/// keyword-like scopes.
fn textmate_words(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(re)) = m.get("match") {
                let scopes = v.to_string();
                if ["keyword", "storage", "constant.language", "support.type"]
                    .iter()
                    .any(|s| scopes.contains(s))
                {
                    for group in re.split('(').skip(1) {
                        let alt = group.split(')').next().unwrap_or("");
                        if alt
                            .split('|')
                            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                        {
                            out.extend(alt.split('|').map(String::from));
                        }
                    }
                }
            }
            m.values().for_each(|x| textmate_words(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| textmate_words(x, out)),
        _ => {}
    }
}

#[test]
fn editor_grammars_keep_the_pest_keywords() {
    let pest = pest_words();
    for w in [
        "fn",
        "layer",
        "model",
        "optimizer",
        "train",
        "use",
        "let",
        "return",
        "param",
        "buffer",
        "state",
        "true",
        "false",
        "f32",
    ] {
        assert!(pest.contains(w), "pest keyword scan lost `{w}`: {pest:?}");
    }

    let lexer: BTreeSet<String> = KEYWORDS.iter().chain(DTYPES).map(|s| s.to_string()).collect();
    assert_eq!(lexer, pest, "src/syntax/lexer.rs KEYWORDS + DTYPES vs grammar/nn.pest");

    let tm: Value = serde_json::from_str(&read("editors/vscode/syntaxes/nn.tmLanguage.json")).expect("TextMate grammar is JSON");
    let mut tm_words = BTreeSet::new();
    textmate_words(&tm, &mut tm_words);
    let missing: Vec<_> = pest.difference(&tm_words).collect();
    assert!(missing.is_empty(), "nn.tmLanguage.json does not highlight {missing:?}");
    let extra: Vec<_> = tm_words
        .difference(&pest)
        .filter(|w| !["int", "float", "str"].contains(&w.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "nn.tmLanguage.json highlights words that are not keywords: {extra:?}"
    );

    let vim = read("editors/nvim/syntax/nn.lua");
    let vim_words: BTreeSet<String> = vim
        .lines()
        .filter_map(|l| l.trim().strip_prefix("syntax keyword "))
        .flat_map(|rest| {
            rest.split_whitespace()
                .skip(1)
                .filter(|w| !w.contains('='))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let missing: Vec<_> = pest.difference(&vim_words).collect();
    assert!(missing.is_empty(), "editors/nvim/syntax/nn.lua does not highlight {missing:?}");
}

#[test]
fn vscode_manifest_points_at_its_files() {
    let pkg: Value = serde_json::from_str(&read("editors/vscode/package.json")).expect("package.json");
    let lang = &pkg["contributes"]["languages"][0];
    assert_eq!(lang["id"], "nn");
    assert_eq!(lang["extensions"][0], ".nn");
    let grammar = &pkg["contributes"]["grammars"][0];
    assert_eq!(grammar["language"], "nn");
    for rel in [lang["configuration"].as_str(), grammar["path"].as_str(), pkg["main"].as_str()] {
        let rel = rel.expect("path").trim_start_matches("./");
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode").join(rel).is_file(),
            "missing {rel}"
        );
    }
    let conf: Value = serde_json::from_str(&read("editors/vscode/language-configuration.json")).expect("language configuration");
    assert_eq!(conf["comments"]["lineComment"], "//");
    assert_eq!(conf["comments"]["blockComment"], serde_json::json!(["/*", "*/"]));
    let js = read("editors/vscode/extension.js");
    assert!(js.contains("args: [\"lsp\"]"), "the extension starts `nnc lsp`");
    assert!(read("editors/vscode/README.md").contains("npx @vscode/vsce package"));
    let helix = read("editors/helix/languages.toml");
    assert!(helix.contains("command = \"nnc\"") && helix.contains("args = [\"lsp\"]"));
}
