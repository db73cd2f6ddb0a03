//! Rendering diagnostics with miette: labels in the diagnostic's own file are
//! drawn on its source; labels in other files (the stdlib) become notes.

use super::{Diagnostic, Severity};
use crate::base::SourceDb;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

/// The miette diagnostic and the notes, which are printed after it.
fn to_miette(d: &Diagnostic, db: &SourceDb) -> (MietteDiagnostic, NamedSource<String>, Vec<String>) {
    let file = db.file(d.primary.span.file);
    let mut labels = vec![LabeledSpan::new_primary_with_span(
        Some(d.primary.message.clone()),
        d.primary.span.range(),
    )];
    let mut notes = Vec::new();
    for l in &d.secondary {
        if l.span.file == d.primary.span.file {
            labels.push(LabeledSpan::new_with_span(Some(l.message.clone()), l.span.range()));
        } else {
            let other = db.file(l.span.file);
            let (line, col) = db.line_col(l.span.file, l.span.start as usize);
            notes.push(format!("note: {} ({}:{line}:{col})", l.message, other.name));
        }
    }
    notes.extend(d.notes.iter().map(|n| format!("note: {n}")));
    let mut m = MietteDiagnostic::new(d.message.clone())
        .with_code(d.code)
        .with_labels(labels)
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        });
    if let Some(h) = &d.help {
        m = m.with_help(h.clone());
    }
    (m, NamedSource::new(file.name.clone(), file.text.clone()), notes)
}

/// Lines longer than this are not drawn: miette pads labels with a
/// formatting width, which panics past 65,535 columns, and a snippet that
/// wide helps nobody. The labels become notes with their line and column.
const MAX_DRAWN_LINE: usize = 1000;

/// Whether a label of `d` in its own file lies on a line too long to draw.
fn on_long_line(d: &Diagnostic, db: &SourceDb) -> bool {
    let text = &db.file(d.primary.span.file).text;
    std::iter::once(&d.primary)
        .chain(d.secondary.iter().filter(|l| l.span.file == d.primary.span.file))
        .any(|l| {
            let at = (l.span.start as usize).min(text.len());
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            end - start > MAX_DRAWN_LINE || l.span.len() > MAX_DRAWN_LINE
        })
}

/// The diagnostic with its labels as located notes and no snippet.
fn without_snippet(d: &Diagnostic, db: &SourceDb) -> Diagnostic {
    let mut plain = d.clone();
    plain.secondary.clear();
    plain.notes = std::iter::once(&d.primary)
        .chain(&d.secondary)
        .map(|l| {
            let (line, col) = db.line_col(l.span.file, l.span.start as usize);
            format!(
                "{} ({}:{line}:{col}; the line is too long to show)",
                l.message,
                db.file(l.span.file).name
            )
        })
        .chain(d.notes.iter().cloned())
        .collect();
    plain
}

fn render_with(d: &Diagnostic, db: &SourceDb, handler: GraphicalReportHandler) -> String {
    if on_long_line(d, db) {
        let plain = without_snippet(d, db);
        let (mut m, _, notes) = to_miette(&plain, db);
        m.labels = None;
        let mut out = String::new();
        if handler.render_report(&mut out, &m).is_err() {
            out = format!("{}: {}\n", d.code, d.message);
        }
        for n in notes {
            out.push_str(&format!("  = {n}\n"));
        }
        return out;
    }
    let (m, src, notes) = to_miette(d, db);
    let report = miette::Report::new(m).with_source_code(src);
    let mut out = String::new();
    if handler.render_report(&mut out, report.as_ref()).is_err() {
        out = format!("{}: {}\n", d.code, d.message);
    }
    for n in notes {
        out.push_str(&format!("  = {n}\n"));
    }
    out
}

/// Colored, Unicode rendering for terminals.
pub fn render(d: &Diagnostic, db: &SourceDb) -> String {
    render_with(d, db, GraphicalReportHandler::new_themed(GraphicalTheme::unicode()))
}

/// Plain rendering (no color, ASCII-stable Unicode), for snapshots and pipes.
pub fn render_plain(d: &Diagnostic, db: &SourceDb) -> String {
    render_with(
        d,
        db,
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100),
    )
}
