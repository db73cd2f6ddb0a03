//! Which call the cursor is in, read from the tokens (so it works while
//! the text does not parse): the callee and the argument being typed.

use crate::syntax::lexer::{Tok, Token};

/// Where the cursor is inside a call: the callee and which argument.
pub struct CallSite {
    pub callee: String,
    /// Arguments before the cursor's (separators at the call's depth).
    pub position: usize,
    /// The keyword the cursor's argument starts with (`lr:`), if any.
    pub keyword: Option<String>,
    /// `x |> f(..)`: the pipeline supplies the first argument.
    pub piped: bool,
}

/// Scan back from `offset` over balanced brackets to the unclosed `(` of a
/// call, counting the separators at its depth on the way.
pub fn call_site(tokens: &[Token], text: &str, offset: usize) -> Option<CallSite> {
    let end = tokens.partition_point(|t| t.end <= offset);
    let sig: Vec<&Token> = tokens[..end].iter().filter(|t| !t.kind.is_trivia()).collect();
    let mut depth = 0usize;
    let mut position = 0;
    // The tokens of the cursor's argument, first to last.
    let mut current_start = sig.len();
    for (i, t) in sig.iter().enumerate().rev() {
        if t.kind.is_close() {
            depth += 1;
        } else if t.kind.is_open() {
            if depth == 0 {
                if t.kind != Tok::LParen || i == 0 {
                    return None;
                }
                let name = sig[i - 1];
                // `fn f(` declares parameters; it calls nothing.
                let declares = i >= 2 && matches!(sig[i - 2].kind, Tok::Fn | Tok::Layer | Tok::Model | Tok::Optimizer);
                if declares || !(name.kind == Tok::Ident || name.kind.is_contextual()) {
                    return None;
                }
                let arg = &sig[current_start.min(sig.len())..];
                let keyword = match arg {
                    [k, colon, ..] if k.kind == Tok::Ident && colon.kind == Tok::Colon => Some(k.text(text).to_string()),
                    _ => None,
                };
                return Some(CallSite {
                    callee: name.text(text).to_string(),
                    position,
                    keyword,
                    piped: i >= 2 && sig[i - 2].kind == Tok::Pipe,
                });
            }
            depth -= 1;
        } else if depth == 0 && matches!(t.kind, Tok::Comma | Tok::Arrow) {
            if position == 0 {
                current_start = i + 1;
            }
            position += 1;
        }
        if depth == 0 && position == 0 {
            current_start = i;
        }
    }
    None
}
