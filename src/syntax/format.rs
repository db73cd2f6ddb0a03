//! The formatter behind `nnc fmt` and the language server's formatting.
//!
//! It is deliberately conservative: it works on the logos token stream line
//! by line and never moves a token to another line, so comments (which the
//! parser drops) stay where they are, and the layout choices of the stdlib
//! and the examples — pipelines aligned on `|>`, `=` aligned in train
//! blocks, `1/16` written tight — survive. What it normalises:
//!
//! - indentation: four spaces per open bracket; a line that continues an
//!   expression (after `=`, `|>` or an operator, or starting with `|>`) is
//!   indented at least one level deeper, keeping any deeper alignment, and
//!   a line starting with `|>` lines up with the `|>` of the line above;
//! - spacing inside a line: none just inside `(` `[` or before `,` `:` `)`,
//!   one after `,` `:` and between words, at least one around `=`, `->`,
//!   `|>` and comparisons (more is kept: train blocks align their `=`);
//!   other spacing (around arithmetic) is the author's;
//! - trailing whitespace, runs of blank lines, the final newline.
//!
//! Text with syntax errors is not formatted: the token stream alone cannot
//! tell what a broken construct meant.

use super::lexer::{lex, Tok, Token};
use crate::base::FileId;

/// Why a text was not formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The text does not parse; the messages of its syntax errors.
    Syntax(Vec<String>),
    /// The formatter would have changed the tokens (a bug, never expected).
    Internal(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Syntax(msgs) => write!(f, "syntax errors: {}", msgs.join("; ")),
            FormatError::Internal(m) => write!(f, "internal formatter error: {m}"),
        }
    }
}

const INDENT: usize = 4;

/// Format a whole file.
pub fn format(src: &str) -> Result<String, FormatError> {
    let (_, diags) = super::parse(FileId(0), src);
    if !diags.is_empty() {
        return Err(FormatError::Syntax(diags.into_iter().map(|d| d.message).collect()));
    }
    format_parsed(src)
}

/// [`format`] of a file the caller has already parsed without syntax
/// errors (a compilation whose `parses` is true).
pub fn format_parsed(src: &str) -> Result<String, FormatError> {
    let tokens = lex(src);
    if let Some(t) = tokens.iter().find(|t| t.kind == Tok::Error) {
        return Err(FormatError::Syntax(vec![format!("unexpected `{}`", t.text(src))]));
    }
    let out = layout(src, &tokens);
    // The formatter may only change trivia; check it did.
    let before: Vec<&str> = significant(src, &tokens);
    let after_tokens = lex(&out);
    let after: Vec<&str> = significant(&out, &after_tokens);
    if before != after {
        let i = before
            .iter()
            .zip(&after)
            .position(|(a, b)| a != b)
            .unwrap_or(before.len().min(after.len()));
        return Err(FormatError::Internal(format!("token {i} changed")));
    }
    Ok(out)
}

fn significant<'a>(src: &'a str, tokens: &[Token]) -> Vec<&'a str> {
    tokens
        .iter()
        .filter(|t| !matches!(t.kind, Tok::Space | Tok::Newline))
        .map(|t| t.text(src).trim_end())
        .collect()
}

/// One source line: its tokens without the newline.
struct Line<'t> {
    tokens: &'t [Token],
}

impl Line<'_> {
    /// Tokens other than spaces.
    fn solid(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.kind != Tok::Space)
    }
    fn is_blank(&self) -> bool {
        self.solid().next().is_none()
    }
    fn is_comment_only(&self) -> bool {
        !self.is_blank() && self.solid().all(|t| t.kind.is_comment())
    }
    fn first_code(&self) -> Option<Tok> {
        self.solid().find(|t| !t.kind.is_comment()).map(|t| t.kind)
    }
    fn last_code(&self) -> Option<Tok> {
        self.solid().filter(|t| !t.kind.is_comment()).last().map(|t| t.kind)
    }
    /// Width of the leading whitespace, tabs counted as one indent.
    fn indent(&self, src: &str) -> usize {
        match self.tokens.first() {
            Some(t) if t.kind == Tok::Space => t.text(src).chars().map(|c| if c == '\t' { INDENT } else { 1 }).sum(),
            _ => 0,
        }
    }
}

fn split_lines(tokens: &[Token]) -> Vec<Line<'_>> {
    let mut lines = vec![];
    let mut start = 0;
    for (i, t) in tokens.iter().enumerate() {
        if t.kind == Tok::Newline {
            lines.push(Line { tokens: &tokens[start..i] });
            start = i + 1;
        }
    }
    lines.push(Line { tokens: &tokens[start..] });
    lines
}

/// A token after which an expression must continue on the next line.
fn ends_incomplete(t: Tok) -> bool {
    matches!(
        t,
        Tok::Eq
            | Tok::Pipe
            | Tok::Arrow
            | Tok::Plus
            | Tok::Minus
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::At
            | Tok::Caret
            | Tok::Compare
            | Tok::AssignOp
    )
}

/// A token that can only continue the expression of the line before.
fn starts_continuation(t: Tok) -> bool {
    matches!(
        t,
        Tok::Pipe | Tok::Arrow | Tok::Plus | Tok::Star | Tok::Slash | Tok::Percent | Tok::At | Tok::Caret | Tok::Compare
    )
}

fn layout(src: &str, tokens: &[Token]) -> String {
    let lines = split_lines(tokens);
    // Indentation of every code line first: comment lines take the
    // indentation of the code they precede.
    let mut indents: Vec<Option<usize>> = vec![None; lines.len()];
    let mut continuation = vec![false; lines.len()];
    let mut depth: usize = 0;
    let mut prev_last: Option<Tok> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.is_blank() || line.is_comment_only() {
            continue;
        }
        let closers = line.solid().take_while(|t| t.kind.is_close()).count();
        let base = INDENT * depth.saturating_sub(closers);
        let cont = prev_last.is_some_and(ends_incomplete) || line.first_code().is_some_and(starts_continuation);
        continuation[i] = cont;
        indents[i] = Some(if cont { line.indent(src).max(base + INDENT) } else { base });
        for t in line.tokens {
            if t.kind.is_open() {
                depth += 1;
            } else if t.kind.is_close() {
                depth = depth.saturating_sub(1);
            }
        }
        prev_last = line.last_code().or(prev_last);
    }
    // Comment-only lines: like the next code line when it continues an
    // expression, otherwise at the depth where they stand.
    let mut depth: usize = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.is_comment_only() {
            let next = (i + 1..lines.len()).find(|&j| indents[j].is_some());
            indents[i] = Some(match next {
                Some(j) if continuation[j] => indents[j].unwrap_or(0),
                _ => INDENT * depth,
            });
        }
        for t in line.tokens {
            if t.kind.is_open() {
                depth += 1;
            } else if t.kind.is_close() {
                depth = depth.saturating_sub(1);
            }
        }
    }

    let mut out = String::with_capacity(src.len());
    let mut prev_sig: Option<Tok> = None;
    let mut blank_run = 0;
    // The previous code line as written out, for aligning `|>` under `|>`.
    let mut prev_code_out = String::new();
    // For each open bracket, whether it indexes (`x[...]`), where `:`
    // separates slice bounds instead of starting a type or an argument.
    let mut brackets: Vec<bool> = vec![];
    for (i, line) in lines.iter().enumerate() {
        if line.is_blank() {
            blank_run += 1;
            continue;
        }
        // At most one blank line in a row, none at the start of the file.
        if blank_run > 0 && !out.is_empty() {
            out.push('\n');
        }
        blank_run = 0;
        let line_start = out.len();
        let mut indent = indents[i].unwrap_or(0);
        if continuation[i] && line.first_code() == Some(Tok::Pipe) {
            if let Some(col) = prev_code_out.find("|>") {
                indent = col;
            }
        }
        out.push_str(&" ".repeat(indent));
        let solid: Vec<(usize, &Token)> = line.tokens.iter().enumerate().filter(|(_, t)| t.kind != Tok::Space).collect();
        for (k, &(idx, t)) in solid.iter().enumerate() {
            if k > 0 {
                let (pidx, p) = solid[k - 1];
                let existing: String = line.tokens[pidx + 1..idx].iter().map(|s| s.text(src)).collect();
                let unary = p.kind == Tok::Minus && is_unary_position(prev_before(&solid, k - 1, prev_sig));
                let in_index = brackets.last().copied().unwrap_or(false);
                out.push_str(&gap(p.kind, t.kind, unary, in_index, &existing));
            }
            out.push_str(t.text(src).trim_end_matches('\r'));
            if t.kind.is_open() {
                let before = prev_before(&solid, k, prev_sig);
                brackets.push(t.kind == Tok::LBracket && before.is_some_and(ends_operand));
            } else if t.kind.is_close() {
                brackets.pop();
            }
        }
        for &(_, t) in &solid {
            if !t.kind.is_comment() {
                prev_sig = Some(t.kind);
            }
        }
        if !line.is_comment_only() {
            prev_code_out = out[line_start..].to_string();
        }
        out.push('\n');
    }
    out
}

/// The code token before `solid[k]`, looking back past comments and into
/// the previous lines when needed.
fn prev_before(solid: &[(usize, &Token)], k: usize, before_line: Option<Tok>) -> Option<Tok> {
    solid[..k]
        .iter()
        .rev()
        .find(|(_, t)| !t.kind.is_comment())
        .map(|(_, t)| t.kind)
        .or(before_line)
}

/// `-` after these is a negation, not a subtraction.
fn is_unary_position(prev: Option<Tok>) -> bool {
    match prev {
        None => true,
        Some(t) => {
            // After an operator an operand must follow, as after these.
            t.is_open() || ends_incomplete(t) || matches!(t, Tok::Comma | Tok::Colon | Tok::Semi | Tok::Return)
        }
    }
}

/// A token that ends an operand, so a `[` after it indexes.
fn ends_operand(t: Tok) -> bool {
    matches!(t, Tok::Ident | Tok::RParen | Tok::RBracket) || t.is_contextual()
}

/// The whitespace to put between two tokens on one line, given what the
/// author wrote (`existing`); `in_index` when inside `x[...]`.
fn gap(prev: Tok, next: Tok, prev_is_unary_minus: bool, in_index: bool, existing: &str) -> String {
    const NONE: &str = "";
    let at_least_one = || {
        if existing.is_empty() || existing.contains('\t') {
            " ".to_string()
        } else {
            existing.to_string()
        }
    };
    let keep = || existing.replace('\t', " ");
    if next.is_comment() || prev.is_comment() {
        return at_least_one();
    }
    if matches!(prev, Tok::LParen | Tok::LBracket) || matches!(next, Tok::RParen | Tok::RBracket) {
        return NONE.into();
    }
    // Slice bounds: `x[0:64]` or `x[a + 1 : b]`, as the author spaced them.
    if in_index && (prev == Tok::Colon || next == Tok::Colon) {
        return keep();
    }
    // Indexing: `x[t]`, `f(x)[0]`.
    if next == Tok::LBracket && ends_operand(prev) {
        return NONE.into();
    }
    // `1 .s` must not become `1.s`: a digit then `.` lexes as a float.
    if prev == Tok::Int && next == Tok::Dot {
        return " ".into();
    }
    if matches!(next, Tok::Comma | Tok::Semi | Tok::Colon | Tok::Dot) || prev == Tok::Dot {
        return NONE.into();
    }
    if matches!(prev, Tok::Comma | Tok::Semi | Tok::Colon) {
        return " ".into();
    }
    if prev_is_unary_minus {
        return NONE.into();
    }
    // A call: `f(x)`, `Dense(4 -> 2)`, `model(x)`; a dtype: `f32[n]`.
    let callee = prev == Tok::Ident || prev == Tok::RParen || prev.is_contextual();
    if (next == Tok::LParen && callee) || (next == Tok::LBracket && prev == Tok::DType) {
        return NONE.into();
    }
    if prev.is_word() && next.is_word() {
        return " ".into();
    }
    let spaced = |t: Tok| {
        matches!(
            t,
            Tok::Eq | Tok::Pipe | Tok::Arrow | Tok::Compare | Tok::AssignOp | Tok::LBrace | Tok::RBrace
        )
    };
    if spaced(prev) || spaced(next) || prev.is_keyword() {
        return at_least_one();
    }
    keep()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        format(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn normalises_spacing_and_indentation() {
        let src =
            "fn f( x ,y )=x+y\nlayer L(n: int) {\n  param W:[n, n]=zeros()\n\t\tfn forward(x) = x @ W // keep\n}\n\n\n\nfn g(x) = -x\n";
        assert_eq!(
            fmt(src),
            "fn f(x, y) = x+y\nlayer L(n: int) {\n    param W: [n, n] = zeros()\n    fn forward(x) = x @ W // keep\n}\n\nfn g(x) = -x\n"
        );
    }

    #[test]
    fn keeps_aligned_continuations_and_is_idempotent() {
        let src = "model M(x: [b, 4]) -> [b, 2] =\n  x |> Dense(4 -> 8)\n      |> Dense(8 -> 2)\n\ntrain M {\n    data   = tensors(\n x: [[1, 2, 3, 4]],\n  y: [[0, 1]],\n )\n    /* block\n   comment */ epochs = 1\n}";
        let once = fmt(src);
        assert_eq!(
            once,
            "model M(x: [b, 4]) -> [b, 2] =\n    x |> Dense(4 -> 8)\n      |> Dense(8 -> 2)\n\ntrain M {\n    data   = tensors(\n        x: [[1, 2, 3, 4]],\n        y: [[0, 1]],\n    )\n    /* block\n   comment */ epochs = 1\n}\n"
        );
        assert_eq!(fmt(&once), once);
    }

    #[test]
    fn indexing_is_tight_and_slices_keep_their_spacing() {
        assert_eq!(
            fmt("fn f(x) = x [1, 0:4, ::-1] + g(x) [a + 1 : b]\nfn g(l) = l.W [0] % 3\n"),
            "fn f(x) = x[1, 0:4, ::-1] + g(x)[a + 1 : b]\nfn g(l) = l.W[0] % 3\n"
        );
        // A list after `=` or `:` is not an index.
        assert_eq!(fmt("fn f(x: [n]) = [x, x]\n"), "fn f(x: [n]) = [x, x]\n");
    }

    #[test]
    fn refuses_broken_text() {
        assert!(matches!(format("fn f(x) = (x"), Err(FormatError::Syntax(_))));
    }
}
