//! What the language knows about a name or a position, shared by hover,
//! completion and inlay hints: signatures, doc comments, types.

use super::document::Snapshot;
use crate::base::{SourceDb, Span};
use crate::sema::builtin_table::Builtin;
use crate::sema::scope::Global;
use crate::syntax::ast::Param;

/// What a name refers to at the top level.
pub struct NameInfo {
    pub signature: String,
    pub doc: Option<String>,
    /// Each parameter's name and declaration (`lr = 0.001`, `x: [..., n]`).
    pub params: Vec<(String, String)>,
    pub kind: &'static str,
}

fn params_text(db: &SourceDb, params: &[Param]) -> String {
    params.iter().map(|p| compact(db.text(p.span))).collect::<Vec<_>>().join(", ")
}

/// Source text on one line with single spaces (a parameter may span lines).
fn compact(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn ret_text(db: &SourceDb, ret: Option<&crate::syntax::ast::TypeExpr>) -> String {
    ret.map_or(String::new(), |t| format!(" -> {}", compact(db.text(t.span()))))
}

pub fn global_info(db: &SourceDb, g: &Global) -> NameInfo {
    let names = |ps: &[Param]| {
        ps.iter()
            .map(|p| (p.name.name.clone(), compact(db.text(p.span))))
            .collect::<Vec<_>>()
    };
    let (kind, keyword, name, params, ret, doc) = match g {
        Global::Fn(d) => ("function", "fn", &d.name.name, &d.params, d.ret.as_ref(), &d.doc),
        Global::Layer(d) => ("layer", "layer", &d.name.name, &d.params, None, &d.doc),
        Global::Model(d) => ("model", "model", &d.name.name, &d.inputs, d.ret.as_ref(), &d.doc),
        Global::Optimizer(d) => ("optimizer", "optimizer", &d.name.name, &d.params, None, &d.doc),
    };
    NameInfo {
        signature: format!("{keyword} {name}({}){}", params_text(db, params), ret_text(db, ret)),
        doc: doc.clone(),
        params: names(params),
        kind,
    }
}

/// A primitive's signature and documentation, from the builtin table.
pub fn builtin_info(name: &str) -> Option<NameInfo> {
    let info = Builtin::from_name(name)?.info();
    Some(NameInfo {
        signature: format!("fn {}({}) (primitive)", info.name, info.params.join(", ")),
        doc: Some(info.doc.to_string()),
        params: info.params.iter().map(|p| (p.to_string(), p.to_string())).collect(),
        kind: "primitive",
    })
}

/// A top-level name of the file or the stdlib, or a primitive.
pub fn name_info(snap: &Snapshot, name: &str) -> Option<NameInfo> {
    match snap.comp.analysis.globals.get(name) {
        Some(g) => Some(global_info(&snap.comp.db, g)),
        None => builtin_info(name),
    }
}

/// The distinct types recorded for exactly `span` (a definition checked
/// in several contexts has several), joined with ` | `.
pub fn type_of_span(snap: &Snapshot, span: Span) -> Option<String> {
    let mut tys: Vec<&str> = vec![];
    for (s, t) in &snap.comp.analysis.types {
        if s.start == span.start && s.end == span.end && !tys.contains(&t.as_str()) {
            tys.push(t);
        }
    }
    // A definition checked on its own has unknown shapes (`[...]`); once
    // a model has used it, the concrete shapes say more.
    if tys.iter().any(|t| !is_unknown(t)) {
        tys.retain(|t| !is_unknown(t));
    }
    (!tys.is_empty()).then(|| tys.join(" | "))
}

fn is_unknown(ty: &str) -> bool {
    ty.trim_start_matches(|c: char| c.is_ascii_alphanumeric()) == "[...]"
}

/// The smallest typed span containing `offset`, with its type(s).
pub fn type_at(snap: &Snapshot, offset: usize) -> Option<(Span, String)> {
    let best = snap
        .comp
        .analysis
        .types
        .iter()
        .filter(|(s, _)| s.file == snap.comp.root && s.start as usize <= offset && offset <= s.end as usize)
        .min_by_key(|(s, _)| s.len())?
        .0;
    Some((best, type_of_span(snap, best)?))
}
