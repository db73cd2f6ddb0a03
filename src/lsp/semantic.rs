//! Semantic tokens from the logos token stream, with names classified by
//! what they refer to: layers and models as classes, functions (the file's,
//! the stdlib's, primitives) as functions, keyword-argument names as
//! parameters.

use super::document::Snapshot;
use crate::sema::builtin_table::Builtin;
use crate::sema::scope::Global;
use crate::syntax::lexer::Tok;
use lsp_types::{SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokensLegend};

pub const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::KEYWORD,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::CLASS,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::NUMBER,
    SemanticTokenType::STRING,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
    SemanticTokenType::TYPE,
];
const KEYWORD: u32 = 0;
const FUNCTION: u32 = 1;
const CLASS: u32 = 2;
const PARAMETER: u32 = 3;
const VARIABLE: u32 = 4;
const NUMBER: u32 = 5;
const STRING: u32 = 6;
const COMMENT: u32 = 7;
const OPERATOR: u32 = 8;
const TYPE: u32 = 9;

pub const MODIFIERS: &[SemanticTokenModifier] = &[SemanticTokenModifier::DOCUMENTATION];

pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: MODIFIERS.to_vec(),
    }
}

/// Delta-encoded tokens of the current text; names are classified with the
/// `good` analysis's declarations.
pub fn tokens(current: &Snapshot, good: &Snapshot) -> Vec<SemanticToken> {
    let src = &current.text;
    let toks = &current.tokens;
    let next_sig = |i: usize| toks[i + 1..].iter().find(|t| !t.kind.is_trivia()).map(|t| t.kind);
    let mut out = vec![];
    let (mut last_line, mut last_col) = (0u32, 0u32);
    for (i, t) in toks.iter().enumerate() {
        let (ty, modifiers) = match t.kind {
            Tok::LineComment | Tok::BlockComment => (COMMENT, 0),
            Tok::DocComment => (COMMENT, 1),
            Tok::Int | Tok::Float => (NUMBER, 0),
            Tok::Str => (STRING, 0),
            Tok::DType => (TYPE, 0),
            // Declaration words are names unless a name follows them.
            k if k.is_contextual() && next_sig(i) != Some(Tok::Ident) => (VARIABLE, 0),
            k if k.is_keyword() => (KEYWORD, 0),
            Tok::Ident => {
                let name = t.text(src);
                match good.comp.analysis.globals.get(name) {
                    Some(Global::Layer(_) | Global::Model(_)) => (CLASS, 0),
                    Some(Global::Fn(_) | Global::Optimizer(_)) => (FUNCTION, 0),
                    None if next_sig(i) == Some(Tok::Colon) => (PARAMETER, 0),
                    None if Builtin::from_name(name).is_some() => (FUNCTION, 0),
                    None if matches!(name, "int" | "float" | "str") => (TYPE, 0),
                    None => (VARIABLE, 0),
                }
            }
            Tok::Pipe
            | Tok::Arrow
            | Tok::AssignOp
            | Tok::Compare
            | Tok::Plus
            | Tok::Minus
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::At
            | Tok::Caret => (OPERATOR, 0),
            _ => continue,
        };
        // Clients need single-line tokens: split a block comment by line.
        let mut start = t.start;
        for piece in src[t.start..t.end].split_inclusive('\n') {
            let text = piece.trim_end_matches(['\n', '\r']);
            if !text.is_empty() {
                let pos = current.lines.position(src, start);
                let len: usize = text.chars().map(char::len_utf16).sum();
                let delta_line = pos.line - last_line;
                let delta_start = if delta_line == 0 { pos.character - last_col } else { pos.character };
                out.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length: len as u32,
                    token_type: ty,
                    token_modifiers_bitset: modifiers,
                });
                (last_line, last_col) = (pos.line, pos.character);
            }
            start += piece.len();
        }
    }
    out
}
