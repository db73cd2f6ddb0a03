//! Mutations of `.nn` text at the byte level and the token level.
//!
//! Byte mutations find what the lexer and parser never expect (invalid
//! UTF-8, cut tokens, stray brackets, very long lines); token mutations
//! keep the text mostly well-formed, so they reach the checker and
//! lowering with odd but parseable programs (a size replaced by 2^62, a
//! name replaced by another, an argument dropped).

use super::rng::Rng;
use crate::syntax::lexer::{self, Tok};

/// Fragments worth inserting: operators, brackets, keywords, numbers at
/// the edges of every integer width and of f32, odd Unicode.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    "|>",
    "->",
    "...",
    "=",
    ":",
    ";",
    "@",
    "^",
    "-",
    "+",
    "*",
    "/",
    "%",
    ".",
    "<",
    ">=",
    "==",
    "fn",
    "let",
    "return",
    "layer",
    "model",
    "optimizer",
    "train",
    "param",
    "buffer",
    "state",
    "use",
    "i32",
    "f32",
    "x",
    "y",
    "batch",
    "relu",
    "Dense",
    "flatten",
    "reshape",
    "sum",
    "mean",
    "max",
    "where",
    "one_hot",
    "softmax",
    "cross_entropy",
    "zeros",
    "ones",
    "normal",
    "transpose",
    "training",
    "if",
    "else",
    "step",
    "every",
    "with",
    "on",
    "0",
    "1",
    "-1",
    "2",
    "255",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "1e38",
    "3.4e38",
    "1e39",
    "1e-45",
    "0.0",
    "-0.0",
    "1e308",
    "1e309",
    "\"\"",
    "\"data.csv\"",
    "//",
    "/*",
    "*/",
    "///",
    "\n",
    "\t",
    " ",
    "\r\n",
    "é",
    "∀",
    "\u{feff}",
    "\u{1F600}",
    "\u{0}",
];

/// Integers and floats a size or hyperparameter could become.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-2",
    "7",
    "64",
    "255",
    "1000",
    "65536",
    "1048576",
    "2147483647",
    "2147483648",
    "4294967296",
    "1099511627776",
    "4611686018427387904",
    "9223372036854775807",
    "99999999999999999999",
    "0.5",
    "1e-8",
    "1e30",
    "3e38",
    "1e39",
    "0.0",
    "1e400",
];

/// A mutated copy of `text`; `other` is another corpus file to splice from.
pub fn mutate(rng: &mut Rng, text: &str, other: &str) -> Vec<u8> {
    let rounds = 1 + rng.below(4);
    let mut cur: Vec<u8> = text.as_bytes().to_vec();
    for _ in 0..rounds {
        cur = if rng.one_in(2) {
            match String::from_utf8(cur) {
                Ok(s) => token_mutation(rng, &s, other).into_bytes(),
                Err(e) => byte_mutation(rng, e.into_bytes(), other),
            }
        } else {
            byte_mutation(rng, cur, other)
        };
    }
    cur
}

fn byte_mutation(rng: &mut Rng, mut b: Vec<u8>, other: &str) -> Vec<u8> {
    let n = b.len();
    let at = if n == 0 { 0 } else { rng.below(n + 1) };
    match rng.below(10) {
        // Truncate.
        0 => b.truncate(at),
        // Delete a short range.
        1 => {
            let len = rng.range(1, 8).min(n - at.min(n));
            b.drain(at..at + len);
        }
        // Insert a fragment.
        2 | 3 => {
            let f = rng.pick(FRAGMENTS).as_bytes();
            b.splice(at..at, f.iter().copied());
        }
        // Flip a bit, or write a random byte (invalid UTF-8 included).
        4 => {
            if at < n {
                if rng.one_in(2) {
                    b[at] ^= 1 << rng.below(8);
                } else {
                    b[at] = rng.below(256) as u8;
                }
            }
        }
        // Duplicate a range, sometimes many times (deep nesting, long lines).
        5 => {
            let len = rng.range(1, 32).min(n - at.min(n));
            let chunk = b[at..at + len].to_vec();
            let times = if rng.one_in(8) { rng.range(50, 2000) } else { rng.range(1, 4) };
            for _ in 0..times {
                b.splice(at..at, chunk.iter().copied());
            }
        }
        // Splice in a line of another file.
        6 => {
            let lines: Vec<&str> = other.lines().collect();
            if !lines.is_empty() {
                let l = format!("{}\n", rng.pick(&lines));
                b.splice(at..at, l.bytes());
            }
        }
        // Swap two ranges' bytes.
        7 => {
            if n >= 2 {
                let j = rng.below(n);
                b.swap(at.min(n - 1), j);
            }
        }
        // A very long line: spaces before the rest.
        8 => {
            let pad = if rng.one_in(4) { 70_000 } else { rng.range(1, 300) };
            b.splice(at..at, std::iter::repeat_n(b' ', pad));
        }
        // Nest: wrap the rest of a line in many brackets.
        _ => {
            let most = if rng.one_in(8) { 3000 } else { 20 };
            let depth = rng.range(1, most);
            let (open, close) = *rng.pick(&[("(", ")"), ("[", "]"), ("{", "}")]);
            let end = b[at..].iter().position(|&c| c == b'\n').map_or(n, |p| at + p);
            b.splice(end..end, close.repeat(depth).into_bytes());
            b.splice(at..at, open.repeat(depth).into_bytes());
        }
    }
    b
}

fn token_mutation(rng: &mut Rng, text: &str, other: &str) -> String {
    let toks: Vec<_> = lexer::lex(text).into_iter().filter(|t| !t.kind.is_trivia()).collect();
    if toks.is_empty() {
        return format!("{text}{}", rng.pick(FRAGMENTS));
    }
    let i = rng.below(toks.len());
    let t = toks[i];
    let mut words: Vec<&str> = toks.iter().filter(|t| t.kind == Tok::Ident).map(|t| t.text(text)).collect();
    words.extend(
        lexer::lex(other)
            .into_iter()
            .filter(|t| t.kind == Tok::Ident)
            .map(|t| t.text(other)),
    );
    let replace = |with: &str| format!("{}{with}{}", &text[..t.start], &text[t.end..]);
    match rng.below(8) {
        // Delete the token.
        0 => replace(""),
        // Duplicate it.
        1 => replace(&format!("{} {}", t.text(text), t.text(text))),
        // A number becomes an extreme one; anything else a number.
        2 | 3 => {
            let n = rng.pick(NUMBERS);
            if matches!(t.kind, Tok::Int | Tok::Float) || rng.one_in(3) {
                replace(n)
            } else {
                replace(t.text(text))
            }
        }
        // A name becomes another name (of this file, the other, the stdlib).
        4 => match words.is_empty() {
            true => replace("x"),
            false => replace(words[rng.below(words.len())]),
        },
        // Swap with another token.
        5 => {
            let j = rng.below(toks.len());
            let u = toks[j];
            if u.start == t.start {
                text.to_string()
            } else {
                let (a, b) = if t.start < u.start { (t, u) } else { (u, t) };
                format!(
                    "{}{}{}{}{}",
                    &text[..a.start],
                    b.text(text),
                    &text[a.end..b.start],
                    a.text(text),
                    &text[b.end..]
                )
            }
        }
        // Insert a fragment after the token.
        6 => replace(&format!("{} {}", t.text(text), rng.pick(FRAGMENTS))),
        // Repeat a token range (a pipeline stage, an argument) many times.
        _ => {
            let j = (i + rng.range(1, 6)).min(toks.len() - 1);
            let chunk = &text[t.start..toks[j].end];
            let times = if rng.one_in(6) { rng.range(100, 3000) } else { rng.range(2, 5) };
            format!("{}{}{}", &text[..t.start], chunk.repeat(times), &text[toks[j].end..])
        }
    }
}
