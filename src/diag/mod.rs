//! Diagnostics as plain data, the registry of codes with their long
//! explanations, and rendering. This is the only module that uses miette.

mod codes;
mod json;
mod render;

pub use codes::{explain, lookup, CodeInfo, CODES};
pub use json::to_json;
pub use render::{render, render_plain};

use crate::base::Span;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One replacement in a source file.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}

/// A change that would remove a diagnostic: a title for editors and the
/// edits, which may lie anywhere in the file (inserting `flatten` before a
/// stage, dropping an activation argument). A fix is only a proposal until
/// `driver::verify_fixes` has compiled the changed text and found the
/// error gone without a new one.
#[derive(Clone, Debug, PartialEq)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
}

impl Fix {
    pub fn replace(span: Span, replacement: impl Into<String>) -> Fix {
        let replacement = replacement.into();
        Fix {
            title: format!("Replace with `{replacement}`"),
            edits: vec![Edit { span, replacement }],
        }
    }
    /// `text` (the file `span`s point into) with the edits applied.
    pub fn apply(&self, text: &str) -> String {
        let mut edits: Vec<&Edit> = self.edits.iter().collect();
        edits.sort_by_key(|e| std::cmp::Reverse(e.span.start));
        let mut out = text.to_string();
        for e in edits {
            out.replace_range(e.span.range(), &e.replacement);
        }
        out
    }
}

/// One problem found in the source: a code (`E0301`), a message naming the
/// operation, one primary label on the smallest span to change, secondary
/// labels saying where conflicting facts came from, and an optional fix.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    pub notes: Vec<String>,
    /// Proposed fixes, best first (see [`Fix`]).
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        debug_assert!(lookup(code).is_some(), "unregistered diagnostic code {code}");
        Diagnostic {
            code,
            severity: if code.starts_with('W') {
                Severity::Warning
            } else {
                Severity::Error
            },
            message: message.into(),
            primary: Label {
                span,
                message: label.into(),
            },
            secondary: vec![],
            help: None,
            notes: vec![],
            fixes: vec![],
        }
    }
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
    /// A help line and the fix it describes.
    pub fn with_fix(mut self, help: impl Into<String>, fix: Fix) -> Diagnostic {
        self.help = Some(help.into());
        self.fixes.push(fix);
        self
    }
    /// The fixes to try: the structured ones, or else the replacement of
    /// the primary span that a help text names ("did you mean `relu`?",
    /// "write `Dense(128 -> 64, relu)`").
    pub fn proposed_fixes(&self) -> Vec<Fix> {
        if !self.fixes.is_empty() {
            return self.fixes.clone();
        }
        let Some(help) = &self.help else { return vec![] };
        let Some(rest) = ["did you mean `", "write `"]
            .iter()
            .find_map(|p| help.split_once(p).map(|(_, r)| r))
        else {
            return vec![];
        };
        match rest.split_once('`') {
            Some((code, _)) => vec![Fix::replace(self.primary.span, code)],
            None => vec![],
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Diagnostics collected by a phase that keeps going after errors.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    /// Fingerprints of `items`, so that dropping duplicates costs O(1)
    /// rather than a scan (a generated file with thousands of errors was
    /// quadratic).
    seen: HashSet<u64>,
    /// Where the report with a given (code, place, message) is in `items`.
    heads: std::collections::HashMap<u64, usize>,
    /// Errors pushed so far, counting the ones merged into an earlier
    /// report: whether a phase found a problem, even a known one.
    pub errors_pushed: usize,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.errors_pushed += usize::from(d.is_error());
        // The same problem reached twice is reported once.
        if !self.seen.insert(fingerprint(&d)) {
            return;
        }
        // The same mistake reached from another use of its layer or
        // function (labelled "in this use") joins the first report, the use
        // as a label; found by (code, place, message), checked in case the
        // items were reordered since.
        let head = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (d.code, d.primary.span, &d.message).hash(&mut h);
            h.finish()
        };
        let same = |o: &Diagnostic| o.code == d.code && o.primary.span == d.primary.span && o.message == d.message;
        let at = match self.heads.get(&head) {
            Some(&i) if self.items.get(i).is_some_and(same) => Some(i),
            Some(_) => self.items.iter().position(same),
            None => None,
        };
        if let Some(i) = at {
            let old = &mut self.items[i];
            {
                for l in d.secondary {
                    if !old.secondary.iter().any(|o| o.span == l.span) {
                        let message = if l.message == "in this use" {
                            "also used here".to_string()
                        } else {
                            l.message
                        };
                        old.secondary.push(Label { span: l.span, message });
                    }
                }
                return;
            }
        }
        self.heads.insert(head, self.items.len());
        self.items.push(d);
    }
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }
}

/// A 64-bit hash of everything a diagnostic says: equal diagnostics have
/// equal fingerprints, and distinct ones collide with negligible odds.
fn fingerprint(d: &Diagnostic) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (d.code, d.severity, &d.message, &d.help, &d.notes).hash(&mut h);
    for l in std::iter::once(&d.primary).chain(&d.secondary) {
        (l.span, &l.message).hash(&mut h);
    }
    h.finish()
}

/// Did-you-mean: the closest candidate within a small edit distance; else
/// the one candidate the name abbreviates (`val_acc` for `val_accuracy`)
/// or spells out (`learning_rate` for `lr`, by its words' initials).
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.len() / 3).max(1);
    let candidates: Vec<&str> = candidates.into_iter().filter(|c| *c != name).collect();
    let close = candidates
        .iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c);
    if close.is_some() {
        return close;
    }
    let initials: String = name.split('_').filter_map(|w| w.chars().next()).collect();
    let unique = |hits: Vec<&'a str>| if hits.len() == 1 { Some(hits[0]) } else { None };
    let prefixed = candidates
        .iter()
        .copied()
        .filter(|c| name.len() >= 3 && c.starts_with(name))
        .collect();
    unique(prefixed).or_else(|| {
        let spelled = candidates
            .iter()
            .copied()
            .filter(|c| name.contains('_') && c.len() >= 2 && *c == initials.as_str())
            .collect();
        unique(spelled)
    })
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions
/// and swaps of adjacent characters (`rleu` is one edit from `relu`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}
