//! Quick fixes: every fix a diagnostic proposes (a structured fix, or the
//! replacement its help text names) is offered only after
//! `driver::verify_fixes` has compiled the file with it applied and found
//! the error gone without a new one.

use super::document::Snapshot;
use crate::driver::{self, Resolver};
use lsp_types::{CodeAction, CodeActionKind, TextEdit, Url, WorkspaceEdit};
use std::collections::HashMap;

pub fn quick_fixes(snap: &Snapshot, uri: &Url, name: &str, resolve: Resolver, from: usize, to: usize) -> Vec<CodeAction> {
    let root = snap.comp.root;
    let mut out = vec![];
    for d in snap.comp.diagnostics() {
        let span = d.primary.span;
        if span.file != root || (span.end as usize) < from || (span.start as usize) > to {
            continue;
        }
        for fix in driver::verify_fixes(&snap.comp, d, &|text| driver::compile_with(name, text, resolve)) {
            let edits = fix
                .edits
                .iter()
                .map(|e| {
                    TextEdit::new(
                        snap.lines.range(&snap.text, e.span.start as usize, e.span.end as usize),
                        e.replacement.clone(),
                    )
                })
                .collect();
            out.push(CodeAction {
                title: fix.title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(super::diagnostics::to_lsp_one(snap, uri, d)),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(uri.clone(), edits)])),
                    ..Default::default()
                }),
                is_preferred: Some(true),
                ..Default::default()
            });
        }
    }
    out
}
