//! One open document: its text and the analyses the features read.

use super::convert::LineIndex;
use crate::driver::{self, Compilation};
use crate::syntax::lexer::{self, Token};
use std::rc::Rc;

/// A text and everything derived from it, immutable once built.
pub struct Snapshot {
    pub text: String,
    pub lines: LineIndex,
    pub tokens: Vec<Token>,
    pub comp: Compilation,
}

impl Snapshot {
    /// `resolve` loads the files that `use` lines name.
    pub fn new(name: &str, text: String, resolve: driver::Resolver) -> Snapshot {
        let comp = driver::compile_with(name, &text, resolve);
        Snapshot {
            lines: LineIndex::new(&text),
            tokens: lexer::lex(&text),
            comp,
            text,
        }
    }
    /// Syntax errors lose whole declarations, so such an analysis is worse
    /// for hover and navigation than the last one that parsed.
    pub fn parses(&self) -> bool {
        !self
            .comp
            .diagnostics()
            .iter()
            .any(|d| matches!(d.code, "E0001" | "E0002" | "E0004"))
    }
}

pub struct Document {
    pub version: i32,
    /// The current text's analysis: diagnostics, formatting, completion context.
    pub current: Rc<Snapshot>,
    /// The latest analysis of a text that parsed: hover, definitions, hints.
    pub good: Rc<Snapshot>,
}

impl Document {
    pub fn open(name: &str, text: String, version: i32, resolve: driver::Resolver) -> Document {
        let snap = Rc::new(Snapshot::new(name, text, resolve));
        Document {
            version,
            good: snap.clone(),
            current: snap,
        }
    }
    pub fn update(&mut self, name: &str, text: String, version: i32, resolve: driver::Resolver) {
        let snap = Rc::new(Snapshot::new(name, text, resolve));
        if snap.parses() || !self.good.parses() {
            self.good = snap.clone();
        }
        self.current = snap;
        self.version = version;
    }
}
