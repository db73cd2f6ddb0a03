//! Compiler diagnostics as LSP diagnostics: the same code, message and
//! primary range as `nnc check`; secondary labels become related
//! information; the primary label, help and notes follow the message.

use super::document::Snapshot;
use super::Locator;
use crate::diag::{self, Severity};
use lsp_types::{Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, NumberOrString, Range, Url};

pub fn to_lsp(snap: &Snapshot, uri: &Url, loc: &Locator) -> Vec<Diagnostic> {
    snap.comp.diagnostics().iter().map(|d| convert(snap, uri, loc, d)).collect()
}

/// One diagnostic, as a code action lists the diagnostics it fixes (related
/// information is left out: it needs the stdlib's location).
pub fn to_lsp_one(snap: &Snapshot, uri: &Url, d: &diag::Diagnostic) -> Vec<Diagnostic> {
    let mut one = convert(snap, uri, &Locator { stdlib_dir: None }, d);
    one.related_information = None;
    vec![one]
}

fn convert(snap: &Snapshot, uri: &Url, loc: &Locator, d: &diag::Diagnostic) -> Diagnostic {
    let root = snap.comp.root;
    let mut message = d.message.clone();
    // A primary label in another file (the stdlib) cannot be underlined
    // here: show it at the file's start and say where it is.
    let range = if d.primary.span.file == root {
        snap.lines
            .range(&snap.text, d.primary.span.start as usize, d.primary.span.end as usize)
    } else {
        let (line, col) = snap.comp.db.line_col(d.primary.span.file, d.primary.span.start as usize);
        message.push_str(&format!("\nat {}:{line}:{col}", snap.comp.db.file(d.primary.span.file).name));
        Range::default()
    };
    if !d.primary.message.is_empty() {
        message.push_str(&format!("\n{}", d.primary.message));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    for note in &d.notes {
        message.push_str(&format!("\nnote: {note}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|l| {
            Some(DiagnosticRelatedInformation {
                location: loc.location(snap, uri, l.span)?,
                message: l.message.clone(),
            })
        })
        .collect();
    Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("nnc".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Default::default()
    }
}
