//! Inlay hints: the shape of every `let` binding (after its name) and of
//! every pipeline stage (after the stage).

use super::document::Snapshot;
use super::info::type_of_span;
use super::walk;
use crate::syntax::ast::ExprKind;
use lsp_types::{InlayHint, InlayHintKind, InlayHintLabel};

pub fn hints(snap: &Snapshot, from: usize, to: usize) -> Vec<InlayHint> {
    let mut found: Vec<(usize, String)> = vec![];
    let mut push = |at: usize, label: String| {
        if from <= at && at <= to {
            found.push((at, label));
        }
    };
    for item in &snap.comp.module.items {
        for b in walk::binders(item) {
            if b.kind == walk::BinderKind::Let {
                if let Some(ty) = type_of_span(snap, b.name.span) {
                    push(b.name.span.end as usize, format!(": {ty}"));
                }
            }
        }
    }
    walk::exprs(&snap.comp.module, &mut |e| {
        if let ExprKind::Pipe(_, stage) = &e.kind {
            if let Some(ty) = type_of_span(snap, e.span) {
                push(stage.span.end as usize, format!(" {ty}"));
            }
        }
    });
    found.sort();
    found.dedup();
    found
        .into_iter()
        .map(|(at, label)| InlayHint {
            position: snap.lines.position(&snap.text, at),
            label: InlayHintLabel::String(label),
            kind: Some(InlayHintKind::TYPE),
            text_edits: None,
            tooltip: None,
            padding_left: None,
            padding_right: None,
            data: None,
        })
        .collect()
}
