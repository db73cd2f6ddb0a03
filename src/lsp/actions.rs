//! Quick fixes: a diagnostic whose help says "did you mean `relu`?" or
//! "write `Dense(128 -> 64, relu)`" names a replacement for its primary
//! span. The fix is offered only when the file, with it applied, no longer
//! has that error and has fewer errors in all (it is compiled to check), so
//! a help text that was not meant as a replacement never becomes an edit.

use super::document::Snapshot;
use crate::diag::Diagnostic;
use crate::driver::{self, Resolver};
use lsp_types::{CodeAction, CodeActionKind, TextEdit, Url, WorkspaceEdit};
use std::collections::HashMap;

/// The replacement a help text proposes for the primary span.
fn proposed(help: &str) -> Option<&str> {
    let rest = ["did you mean `", "write `"]
        .iter()
        .find_map(|p| help.split_once(p).map(|(_, r)| r))?;
    rest.split_once('`').map(|(code, _)| code)
}

pub fn quick_fixes(snap: &Snapshot, uri: &Url, name: &str, resolve: Resolver, from: usize, to: usize) -> Vec<CodeAction> {
    let root = snap.comp.root;
    let errors = snap.comp.diagnostics().iter().filter(|d| d.is_error()).count();
    let mut out = vec![];
    for d in snap.comp.diagnostics() {
        let span = d.primary.span;
        if span.file != root || (span.end as usize) < from || (span.start as usize) > to {
            continue;
        }
        let Some(fix) = d.help.as_deref().and_then(proposed) else {
            continue;
        };
        let mut fixed = snap.text.clone();
        fixed.replace_range(span.range(), fix);
        if !fixes(&driver::compile_with(name, &fixed, resolve), d, errors) {
            continue;
        }
        let edit = TextEdit::new(
            snap.lines.range(&snap.text, span.start as usize, span.end as usize),
            fix.to_string(),
        );
        out.push(CodeAction {
            title: format!("Replace with `{fix}`"),
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(super::diagnostics::to_lsp_one(snap, uri, d)),
            edit: Some(WorkspaceEdit {
                changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
                ..Default::default()
            }),
            is_preferred: Some(true),
            ..Default::default()
        });
    }
    out
}

/// Did the change remove `d` (same code where it started) and reduce the
/// number of errors?
fn fixes(after: &driver::Compilation, d: &Diagnostic, errors_before: usize) -> bool {
    let same = after
        .diagnostics()
        .iter()
        .any(|a| a.code == d.code && a.primary.span.start == d.primary.span.start);
    let errors = after.diagnostics().iter().filter(|a| a.is_error()).count();
    !same && errors < errors_before
}
