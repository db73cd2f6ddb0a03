//! Diagnostics about the command line itself, drawn like source errors:
//! the command line is the "file", and the label sits on the argument to
//! change (`--model Xr`, `lrr=0.1`).

use crate::base::{SourceDb, Span};
use crate::diag::{self, Diagnostic};
use std::io::IsTerminal;

pub struct CmdLine {
    db: SourceDb,
    file: crate::base::FileId,
    text: String,
}

impl CmdLine {
    /// The arguments this process was started with, as one line.
    pub fn from_env() -> CmdLine {
        let mut args: Vec<String> = std::env::args().collect();
        if let Some(first) = args.first_mut() {
            *first = "nnc".into();
        }
        let text = args.join(" ");
        let mut db = SourceDb::new();
        let file = db.add("command line", text.clone(), false);
        CmdLine { db, file, text }
    }

    /// The first occurrence of `needle` after the command name, or the
    /// whole line when it does not occur (an option given by default).
    pub fn span_of(&self, needle: &str) -> Span {
        let from = self.text.find(' ').unwrap_or(0);
        match self.text[from..].find(needle) {
            Some(i) if !needle.is_empty() => Span::new(self.file, from + i, from + i + needle.len()),
            _ => Span::new(self.file, 0, self.text.len()),
        }
    }

    /// Print `d` (built with `span_of`) to stderr; returns the exit code 1.
    pub fn fail(&self, d: Diagnostic) -> i32 {
        let text = if std::io::stderr().is_terminal() {
            diag::render(&d, &self.db)
        } else {
            diag::render_plain(&d, &self.db)
        };
        eprintln!("{text}");
        1
    }

    /// `code` at `needle`, with a did-you-mean among `candidates`.
    pub fn unknown(&self, code: &'static str, message: String, needle: &str, label: &str, candidates: &[&str]) -> i32 {
        let mut d = Diagnostic::error(code, message, self.span_of(needle), label);
        match diag::suggest(needle, candidates.iter().copied()) {
            Some(s) => d = d.with_help(format!("did you mean `{s}`?")),
            // A long list (every function) helps less than it clutters.
            None if !candidates.is_empty() && candidates.len() <= 12 => {
                d = d.with_help(format!("the choices are: {}", candidates.join(", ")))
            }
            None => {}
        }
        self.fail(d)
    }
}
