//! Hover: the type of the expression under the cursor, and the signature
//! and doc comment of the layer or function named there.

use super::document::Snapshot;
use super::info::{name_info, type_at};
use crate::syntax::lexer::{word_at, Tok};
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind};

pub fn hover(snap: &Snapshot, offset: usize) -> Option<Hover> {
    let word = word_at(&snap.tokens, offset);
    let mut parts = vec![];
    let mut range = None;
    if let Some((span, ty)) = type_at(snap, offset) {
        let text: String = snap.text[span.range()].split_whitespace().collect::<Vec<_>>().join(" ");
        let text = if text.chars().count() > 60 {
            format!("{}…", text.chars().take(59).collect::<String>())
        } else {
            text
        };
        parts.push(format!("```nn\n{text} : {ty}\n```"));
        range = Some(snap.lines.range(&snap.text, span.start as usize, span.end as usize));
    }
    if let Some(w) = word.filter(|w| w.kind == Tok::Ident || w.kind.is_contextual()) {
        if let Some(info) = name_info(snap, w.text(&snap.text)) {
            parts.push(format!("```nn\n{}\n```", info.signature));
            if let Some(doc) = info.doc {
                parts.push(doc);
            }
            range = Some(snap.lines.range(&snap.text, w.start, w.end));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: parts.join("\n\n---\n\n"),
        }),
        range,
    })
}
