//! Completion: layer, function, model and optimizer names with their
//! signatures; inside a call, that callee's keyword arguments first; names
//! bound in the enclosing declaration; keywords.

use super::call::call_site;
use super::document::Snapshot;
use super::info::{builtin_info, global_info, NameInfo};
use super::walk::{binders, item_at};
use crate::sema::builtin_table::Builtin;
use crate::sema::scope::Global;
use crate::syntax::lexer::KEYWORDS;
use lsp_types::{CompletionItem, CompletionItemKind, CompletionItemLabelDetails, Documentation, MarkupContent, MarkupKind};

/// `current` gives the cursor's context (the text being typed); `good` the
/// names (the last text that parsed).
pub fn complete(current: &Snapshot, good: &Snapshot, offset: usize) -> Vec<CompletionItem> {
    let mut items = vec![];
    if let Some(callee) = call_site(&current.tokens, &current.text, offset).map(|s| s.callee) {
        let info = match good.comp.analysis.globals.get(&callee) {
            Some(g) => Some(global_info(&good.comp.db, g)),
            None => builtin_info(&callee),
        };
        for (p, _) in info.map(|i| i.params).unwrap_or_default() {
            items.push(CompletionItem {
                label: format!("{p}:"),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(format!("keyword argument of {callee}")),
                insert_text: Some(format!("{p}: ")),
                sort_text: Some(format!("0{p}")),
                ..Default::default()
            });
        }
    }
    let mut globals: Vec<(&String, &Global)> = good.comp.analysis.globals.iter().map(|(n, g, _)| (n, g)).collect();
    globals.sort_by(|a, b| a.0.cmp(b.0));
    for (name, g) in globals {
        let kind = match g {
            Global::Fn(_) => CompletionItemKind::FUNCTION,
            Global::Layer(_) => CompletionItemKind::CLASS,
            Global::Model(_) => CompletionItemKind::MODULE,
            Global::Optimizer(_) => CompletionItemKind::CONSTRUCTOR,
        };
        items.push(name_item(name, kind, global_info(&good.comp.db, g)));
    }
    for name in Builtin::ALL.map(Builtin::name) {
        if good.comp.analysis.globals.get(name).is_none() {
            if let Some(info) = builtin_info(name) {
                items.push(name_item(name, CompletionItemKind::FUNCTION, info));
            }
        }
    }
    if let Some(item) = item_at(&good.comp.module, offset) {
        let mut seen = vec![];
        for b in binders(item) {
            if !seen.contains(&b.name.name) {
                seen.push(b.name.name.clone());
                items.push(CompletionItem {
                    label: b.name.name.clone(),
                    kind: Some(CompletionItemKind::VARIABLE),
                    detail: super::info::type_of_span(good, b.name.span),
                    sort_text: Some(format!("1{}", b.name.name)),
                    ..Default::default()
                });
            }
        }
    }
    for k in KEYWORDS {
        items.push(CompletionItem {
            label: k.to_string(),
            kind: Some(CompletionItemKind::KEYWORD),
            sort_text: Some(format!("3{k}")),
            ..Default::default()
        });
    }
    items
}

fn name_item(name: &str, kind: CompletionItemKind, info: NameInfo) -> CompletionItem {
    CompletionItem {
        label: name.to_string(),
        kind: Some(kind),
        label_details: Some(CompletionItemLabelDetails {
            detail: Some(info.signature.split_once('(').map_or(String::new(), |(_, rest)| format!("({rest}"))),
            description: Some(info.kind.to_string()),
        }),
        detail: Some(info.signature),
        documentation: info.doc.map(|d| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: d,
            })
        }),
        sort_text: Some(format!("2{name}")),
        ..Default::default()
    }
}
