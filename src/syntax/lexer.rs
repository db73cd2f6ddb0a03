//! The token stream of a `.nn` file for tools (the formatter, semantic
//! highlighting, completion). The parser uses the pest grammar; these tokens
//! keep what the parser throws away — whitespace, newlines and comments — so
//! a tool can rewrite text without losing anything.
//!
//! Lexing never fails: a character no token matches becomes [`Tok::Error`].

use logos::Logos;

#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tok {
    #[regex(r"[ \t]+")]
    Space,
    #[regex(r"\r?\n")]
    Newline,
    /// `/// text`: documentation of the declaration below.
    #[regex(r"///[^\n]*", allow_greedy = true)]
    DocComment,
    #[regex(r"//[^\n]*", allow_greedy = true)]
    LineComment,
    /// `/* ... */`, possibly over several lines (an unclosed one runs to the end).
    #[regex(r"/\*([^*]|\*+[^*/])*\*+/")]
    #[regex(r"/\*([^*]|\*+[^*/])*\**", priority = 1)]
    BlockComment,

    // Keywords: the words the grammar spells out. `param`, `buffer` and
    // `state` are keywords only where a declaration may start, so a tool
    // checks the context before treating them as keywords (see
    // [`Tok::is_contextual`]).
    #[token("fn")]
    Fn,
    #[token("let")]
    Let,
    #[token("return")]
    Return,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("use")]
    Use,
    #[token("layer")]
    Layer,
    #[token("model")]
    Model,
    #[token("optimizer")]
    Optimizer,
    #[token("train")]
    Train,
    #[token("param")]
    Param,
    #[token("buffer")]
    Buffer,
    #[token("state")]
    State,
    /// `f32`, `f64`, `i32`, `bool`: element types.
    #[token("f32")]
    #[token("f64")]
    #[token("i32")]
    #[token("bool")]
    DType,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    #[regex(r"[0-9]+")]
    Int,
    #[regex(r"[0-9]+(\.[0-9]+([eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)")]
    Float,
    #[regex(r#""[^"\n]*""#)]
    Str,

    #[token("|>")]
    Pipe,
    #[token("->")]
    Arrow,
    #[token("...")]
    Ellipsis,
    #[token("+=")]
    #[token("-=")]
    #[token("*=")]
    #[token("/=")]
    AssignOp,
    #[token("==")]
    #[token("!=")]
    #[token("<=")]
    #[token(">=")]
    #[token("<")]
    #[token(">")]
    Compare,
    #[token("=")]
    Eq,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("@")]
    At,
    #[token("^")]
    Caret,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token(".")]
    Dot,
    /// Anything else (a stray `$`, an unclosed string).
    Error,
}

/// Keywords as the grammar spells them, for tools that list them
/// (completion, the editor grammars' test).
pub const KEYWORDS: &[&str] = &[
    "fn",
    "let",
    "return",
    "true",
    "false",
    "use",
    "layer",
    "model",
    "optimizer",
    "train",
    "param",
    "buffer",
    "state",
    "if",
    "else",
    "step",
    "with",
    "on",
    "scan",
    "in",
    "along",
    "from",
];

/// Element types, spelled as in `f32[batch, 10]`.
pub const DTYPES: &[&str] = &["f32", "f64", "i32", "bool"];

impl Tok {
    /// Whitespace, newlines and comments: text the parser skips.
    pub fn is_trivia(self) -> bool {
        matches!(
            self,
            Tok::Space | Tok::Newline | Tok::LineComment | Tok::DocComment | Tok::BlockComment
        )
    }
    pub fn is_comment(self) -> bool {
        matches!(self, Tok::LineComment | Tok::DocComment | Tok::BlockComment)
    }
    pub fn is_keyword(self) -> bool {
        matches!(
            self,
            Tok::Fn
                | Tok::Let
                | Tok::Return
                | Tok::If
                | Tok::Else
                | Tok::True
                | Tok::False
                | Tok::Use
                | Tok::Layer
                | Tok::Model
                | Tok::Optimizer
                | Tok::Train
                | Tok::Param
                | Tok::Buffer
                | Tok::State
        )
    }
    /// Declaration words that are also ordinary names elsewhere (`model(x)`
    /// in a train block, the optimizer's `param`).
    pub fn is_contextual(self) -> bool {
        matches!(
            self,
            Tok::Layer | Tok::Model | Tok::Optimizer | Tok::Train | Tok::Param | Tok::Buffer | Tok::State | Tok::Use
        )
    }
    /// A word: a keyword, a dtype or a name.
    pub fn is_word(self) -> bool {
        self == Tok::Ident || self == Tok::DType || self.is_keyword()
    }
    pub fn is_open(self) -> bool {
        matches!(self, Tok::LParen | Tok::LBracket | Tok::LBrace)
    }
    pub fn is_close(self) -> bool {
        matches!(self, Tok::RParen | Tok::RBracket | Tok::RBrace)
    }
}

/// One token: its kind and byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text(self, src: &str) -> &str {
        &src[self.start..self.end]
    }
}

/// All tokens of `src`, trivia included; their ranges cover `src` exactly.
pub fn lex(src: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut lexer = Tok::lexer(src);
    while let Some(r) = lexer.next() {
        let span = lexer.span();
        let kind = r.unwrap_or(Tok::Error);
        // Merge adjacent error characters into one token.
        if let (Tok::Error, Some(last)) = (kind, out.last_mut()) {
            if last.kind == Tok::Error && last.end == span.start {
                last.end = span.end;
                continue;
            }
        }
        out.push(Token {
            kind,
            start: span.start,
            end: span.end,
        });
    }
    out
}

/// The word token covering `offset` (or ending at it, so a cursor just
/// after a name still finds the name).
pub fn word_at(tokens: &[Token], offset: usize) -> Option<Token> {
    let i = tokens.partition_point(|t| t.end < offset);
    tokens[i..]
        .iter()
        .take(2)
        .find(|t| t.kind.is_word() && t.start <= offset && offset <= t.end)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).into_iter().filter(|t| !t.kind.is_trivia()).map(|t| t.kind).collect()
    }

    #[test]
    fn covers_the_source() {
        let src = "model M(x: [b, 4]) -> [b, 2] = x |> Dense(4 -> 2) // hi\n/* a\n b */ let $ = 1.5e-3";
        let toks = lex(src);
        let mut at = 0;
        for t in &toks {
            assert_eq!(t.start, at);
            at = t.end;
        }
        assert_eq!(at, src.len());
    }

    #[test]
    fn distinguishes_numbers_keywords_and_operators() {
        use Tok::*;
        assert_eq!(
            kinds("fn f(x: f32[n]) = x |> g(1, 2.5) -> 3 ... += == = -1e3"),
            vec![
                Fn, Ident, LParen, Ident, Colon, DType, LBracket, Ident, RBracket, RParen, Eq, Ident, Pipe, Ident, LParen, Int, Comma,
                Float, RParen, Arrow, Int, Ellipsis, AssignOp, Compare, Eq, Minus, Float
            ]
        );
        assert_eq!(kinds("layers f32x"), vec![Ident, Ident]);
        assert_eq!(kinds("/// doc\n// c"), vec![]);
        assert_eq!(lex("/// doc")[0].kind, DocComment);
        assert_eq!(lex("/* open")[0].kind, BlockComment);
    }
}
