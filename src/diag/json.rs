//! Diagnostics as JSON for tools (`nnc check --format json`): code,
//! severity, message, labelled spans with line/column and byte offsets,
//! notes, and fixes as edits.

use super::{Diagnostic, Fix, Label, Severity};
use crate::base::{SourceDb, Span};
use serde_json::{json, Value};

fn position(db: &SourceDb, span: Span, offset: u32) -> Value {
    let (line, column) = db.line_col(span.file, offset as usize);
    json!({ "line": line, "column": column, "offset": offset })
}

fn span(db: &SourceDb, s: Span) -> Value {
    json!({
        "file": db.file(s.file).name,
        "start": position(db, s, s.start),
        "end": position(db, s, s.end),
    })
}

fn label(db: &SourceDb, l: &Label) -> Value {
    let mut v = span(db, l.span);
    v["message"] = json!(l.message);
    v
}

fn fix(db: &SourceDb, f: &Fix) -> Value {
    let edits: Vec<Value> = f
        .edits
        .iter()
        .map(|e| {
            let mut v = span(db, e.span);
            v["replacement"] = json!(e.replacement);
            v
        })
        .collect();
    json!({ "title": f.title, "edits": edits })
}

/// One diagnostic; `fixes` are the ones that were checked to work.
pub fn to_json(d: &Diagnostic, db: &SourceDb, fixes: &[Fix]) -> Value {
    json!({
        "code": d.code,
        "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "message": d.message,
        "primary": label(db, &d.primary),
        "secondary": d.secondary.iter().map(|l| label(db, l)).collect::<Vec<_>>(),
        "help": d.help,
        "notes": d.notes,
        "fixes": fixes.iter().map(|f| fix(db, f)).collect::<Vec<_>>(),
    })
}
