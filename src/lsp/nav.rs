//! Go to definition and the document outline.

use super::document::Snapshot;
use super::walk::{binders, item_at, BinderKind};
use super::Locator;
use crate::syntax::ast::Item;
use crate::syntax::lexer::word_at;
use lsp_types::{DocumentSymbol, Location, SymbolKind, Url};

/// Where the name under the cursor is defined: a parameter or `let` of the
/// enclosing declaration (the nearest one before the cursor), else a
/// declaration of the file or the stdlib.
pub fn definition(snap: &Snapshot, uri: &Url, loc: &Locator, offset: usize) -> Option<Location> {
    let word = word_at(&snap.tokens, offset)?;
    let name = word.text(&snap.text);
    if let Some(item) = item_at(&snap.comp.module, offset) {
        let local = binders(item)
            .into_iter()
            .rev()
            .find(|b| b.name.name == name && b.kind != BinderKind::Method && (b.name.span.start as usize) <= word.start);
        if let Some(b) = local {
            return loc.location(snap, uri, b.name.span);
        }
    }
    // Inside `train M { ... }`, `model` is M.
    let name = match item_at(&snap.comp.module, offset) {
        Some(Item::Train(t)) if name == "model" => t.model.name.as_str(),
        _ => name,
    };
    let span = snap.comp.analysis.globals.def_span(name)?;
    loc.location(snap, uri, span)
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must still be given
fn symbol(
    snap: &Snapshot,
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    span: crate::base::Span,
    name_span: crate::base::Span,
) -> DocumentSymbol {
    let range = snap.lines.range(&snap.text, span.start as usize, span.end as usize);
    let mut selection = snap.lines.range(&snap.text, name_span.start as usize, name_span.end as usize);
    // The selection must lie inside the range.
    if selection.start < range.start || selection.end > range.end {
        selection = range;
    }
    DocumentSymbol {
        name,
        detail,
        kind,
        tags: None,
        deprecated: None,
        range,
        selection_range: selection,
        children: None,
    }
}

/// Declarations with their parameters, members and `let`s as children.
pub fn document_symbols(snap: &Snapshot) -> Vec<DocumentSymbol> {
    let mut out = vec![];
    for item in &snap.comp.module.items {
        let (kind, detail) = match item {
            Item::Use(_) => continue,
            Item::Fn(_) => (SymbolKind::FUNCTION, "fn"),
            Item::Layer(_) => (SymbolKind::CLASS, "layer"),
            Item::Model(_) => (SymbolKind::MODULE, "model"),
            Item::Optimizer(_) => (SymbolKind::OBJECT, "optimizer"),
            Item::Train(_) => (SymbolKind::EVENT, "train"),
        };
        let Some(name) = item.name() else { continue };
        let mut s = symbol(snap, name.name.clone(), Some(detail.into()), kind, item.span(), name.span);
        let children: Vec<DocumentSymbol> = binders(item)
            .into_iter()
            .filter(|b| b.kind != BinderKind::Param)
            .map(|b| {
                let kind = match b.kind {
                    BinderKind::Tensor => SymbolKind::FIELD,
                    BinderKind::Method => SymbolKind::METHOD,
                    _ => SymbolKind::VARIABLE,
                };
                let detail = super::info::type_of_span(snap, b.name.span);
                symbol(snap, b.name.name.clone(), detail, kind, b.span, b.name.span)
            })
            .collect();
        if !children.is_empty() {
            s.children = Some(children);
        }
        out.push(s);
    }
    out
}
