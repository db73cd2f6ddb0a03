//! Hover: the type of the expression under the cursor, and the signature
//! and doc comment of the layer or function named there.

use super::document::Snapshot;
use super::info::{name_info, type_at};
use super::walk;
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
    if range.is_none() {
        if let Some((text, span)) = declared(snap, offset) {
            parts.push(format!("```nn\n{text}\n```"));
            range = Some(snap.lines.range(&snap.text, span.start as usize, span.end as usize));
        }
    }
    if let Some((text, w)) = keyword_argument(snap, offset) {
        parts.push(format!("```nn\n{text}\n```"));
        range = Some(snap.lines.range(&snap.text, w.start, w.end));
    } else if let Some(w) = word.filter(|w| w.kind == Tok::Ident || w.kind.is_contextual()) {
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

/// A parameter under the cursor, where no expression was typed: its
/// declaration as written (`x: [batch, 28, 28]`, `lr = 0.001`).
fn declared(snap: &Snapshot, offset: usize) -> Option<(String, crate::base::Span)> {
    let w = word_at(&snap.tokens, offset)?;
    let item = walk::item_at(&snap.comp.module, offset)?;
    let b = walk::binders(item)
        .into_iter()
        .find(|b| b.kind == walk::BinderKind::Param && b.name.span.start as usize == w.start)?;
    let text = snap.text[b.span.range()].split_whitespace().collect::<Vec<_>>().join(" ");
    Some((text, b.name.span))
}

/// The name of a keyword argument (`lr` in `adam(lr: 0.01)`): the
/// parameter's declaration in the callee (`adam: lr = 0.001`).
fn keyword_argument(snap: &Snapshot, offset: usize) -> Option<(String, crate::syntax::lexer::Token)> {
    let w = word_at(&snap.tokens, offset).filter(|w| w.kind == Tok::Ident)?;
    let after = snap.tokens.iter().skip_while(|t| t.start < w.end).find(|t| !t.kind.is_trivia())?;
    if after.kind != Tok::Colon {
        return None;
    }
    let callee = super::call::call_site(&snap.tokens, &snap.text, w.start)?.callee;
    let info = name_info(snap, &callee)?;
    let (_, decl) = info.params.into_iter().find(|(n, _)| n == w.text(&snap.text))?;
    Some((format!("{callee}: {decl}"), w))
}
