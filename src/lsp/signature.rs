//! Signature help: inside the parentheses of a call, the callee's
//! signature with the argument being typed highlighted — by position
//! (`,` and the `->` of `Dense(784 -> 128)` separate arguments), or by
//! name for a keyword argument (`adam(lr: 0.01, beta2: |)`).

use super::call::call_site;
use super::document::Snapshot;
use super::info::{builtin_info, global_info, NameInfo};
use crate::sema::scope::Global;
use lsp_types::{Documentation, MarkupContent, MarkupKind, ParameterInformation, ParameterLabel, SignatureHelp, SignatureInformation};

/// `current` gives the text being typed; `good` the names (the last text
/// that parsed).
pub fn signature_help(current: &Snapshot, good: &Snapshot, offset: usize) -> Option<SignatureHelp> {
    let site = call_site(&current.tokens, &current.text, offset)?;
    let (info, is_fn) = match good.comp.analysis.globals.get(&site.callee) {
        Some(g) => (global_info(&good.comp.db, g), matches!(g, Global::Fn(_))),
        None => (builtin_info(&site.callee)?, true),
    };
    // Layers take their own arguments in the call; a piped value is the
    // first argument only of a function.
    let shift = usize::from(site.piped && is_fn);
    let active = match &site.keyword {
        Some(k) => info.params.iter().position(|(name, _)| name == k)?,
        None => site.position + shift,
    };
    Some(SignatureHelp {
        signatures: vec![signature(info)],
        active_signature: Some(0),
        active_parameter: Some(active as u32),
    })
}

fn signature(info: NameInfo) -> SignatureInformation {
    SignatureInformation {
        label: info.signature,
        documentation: info.doc.map(|d| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: d,
            })
        }),
        parameters: Some(
            info.params
                .into_iter()
                .map(|(_, decl)| ParameterInformation {
                    label: ParameterLabel::Simple(decl),
                    documentation: None,
                })
                .collect(),
        ),
        active_parameter: None,
    }
}
