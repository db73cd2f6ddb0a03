//! Rendering diagnostics with miette: labels in the diagnostic's own file are
//! drawn on its source; labels in other files (the stdlib) become notes.

use super::{Diagnostic, Severity};
use crate::base::SourceDb;
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, MietteError, MietteSpanContents, NamedSource, SourceCode,
    SourceSpan, SpanContents,
};

/// The part of a file a diagnostic's snippet can show: whole lines from a
/// few lines before its first label to a few after its last. miette reads
/// a `String` source from its start for every label, and the whole file was
/// copied for every diagnostic, so a file with thousands of diagnostics
/// took time quadratic in its size; a window keeps each rendering
/// proportional to what it shows. Reads are answered in the file's own
/// offsets and line numbers, so the output is the same as from the whole
/// file (`window_renders_like_the_whole_file` checks it).
struct Window {
    text: String,
    /// Byte offset of `text` in the file.
    start: usize,
    /// Line breaks before `start`, counted as miette counts them.
    lines_before: usize,
}

/// Lines around the labels that the window keeps: more than the context
/// miette shows around each label (one line) and around merged snippets.
const WINDOW_MARGIN_LINES: usize = 4;

impl Window {
    fn new(text: &str, first: usize, last: usize) -> Window {
        let bytes = text.as_bytes();
        let (first, last) = (first.min(text.len()), last.min(text.len()));
        // Start just after a `\n`, so no `\r\n` is split.
        let mut start = first;
        for _ in 0..=WINDOW_MARGIN_LINES {
            match bytes[..start].iter().rposition(|&b| b == b'\n') {
                Some(i) if start > 0 => start = i,
                _ => {
                    start = 0;
                    break;
                }
            }
        }
        if start > 0 {
            start += 1;
        }
        let mut end = last;
        for _ in 0..=WINDOW_MARGIN_LINES {
            match bytes[end..].iter().position(|&b| b == b'\n') {
                Some(i) => end += i + 1,
                None => {
                    end = text.len();
                    break;
                }
            }
        }
        // miette breaks lines at `\n`, `\r\n` and a lone `\r`.
        let head = &bytes[..start];
        let lines_before = head.iter().filter(|&&b| b == b'\n').count()
            + head.windows(2).filter(|w| w[0] == b'\r' && w[1] != b'\n').count()
            + usize::from(head.last() == Some(&b'\r'));
        Window {
            text: text[start..end].to_string(),
            start,
            lines_before,
        }
    }
}

impl SourceCode for Window {
    fn read_span<'a>(&'a self, span: &SourceSpan, before: usize, after: usize) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let offset = span.offset().checked_sub(self.start).ok_or(MietteError::OutOfBounds)?;
        let inner = self
            .text
            .as_bytes()
            .read_span(&SourceSpan::new(offset.into(), span.len()), before, after)?;
        Ok(Box::new(MietteSpanContents::new(
            inner.data(),
            SourceSpan::new((inner.span().offset() + self.start).into(), inner.span().len()),
            inner.line() + self.lines_before,
            inner.column(),
            inner.line_count() + self.lines_before,
        )))
    }
}

/// The miette diagnostic and the notes, which are printed after it.
fn to_miette(d: &Diagnostic, db: &SourceDb) -> (MietteDiagnostic, Vec<String>) {
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
    (m, notes)
}

/// The source miette draws `d`'s snippet from: a window of its file.
fn snippet_source(d: &Diagnostic, db: &SourceDb) -> NamedSource<Window> {
    let file = db.file(d.primary.span.file);
    let own = || std::iter::once(&d.primary).chain(d.secondary.iter().filter(|l| l.span.file == d.primary.span.file));
    let first = own().map(|l| l.span.start as usize).min().unwrap_or(0);
    let last = own().map(|l| l.span.end as usize).max().unwrap_or(0);
    NamedSource::new(file.name.clone(), Window::new(&file.text, first, last))
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
        let (mut m, notes) = to_miette(&plain, db);
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
    let (m, notes) = to_miette(d, db);
    draw(m, notes, snippet_source(d, db), handler)
}

/// The report of `m` drawn on `src`, then the notes.
fn draw(m: MietteDiagnostic, notes: Vec<String>, src: impl SourceCode + 'static, handler: GraphicalReportHandler) -> String {
    let fallback = format!("{}: {}\n", m.code.as_deref().unwrap_or(""), m.message);
    let report = miette::Report::new(m).with_source_code(src);
    let mut out = String::new();
    if handler.render_report(&mut out, report.as_ref()).is_err() {
        out = fallback;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Span;

    fn plain() -> GraphicalReportHandler {
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100)
    }

    /// What miette draws from the whole file, as before windows.
    fn from_whole_file(d: &Diagnostic, db: &SourceDb) -> String {
        let file = db.file(d.primary.span.file);
        let (m, notes) = to_miette(d, db);
        draw(m, notes, NamedSource::new(file.name.clone(), file.text.clone()), plain())
    }

    fn assert_same(d: &Diagnostic, db: &SourceDb) {
        if on_long_line(d, db) {
            return; // No snippet is drawn.
        }
        assert_eq!(render_plain(d, db), from_whole_file(d, db), "{d:?}");
    }

    /// Random files (lines of any length, `\n`, `\r\n` and lone `\r`,
    /// multi-byte characters) with one to four labels anywhere, near each
    /// other or far apart, at the start and the end: every one is drawn the
    /// same from its window as from the whole file.
    #[test]
    fn window_renders_like_the_whole_file() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let pieces = ["model", " ", "x", "é", "\t", "\n", "\r\n", "\r", "[batch, 4]", "→", "\n\n"];
        for _ in 0..400 {
            let text: String = (0..next(300)).map(|_| pieces[next(pieces.len())]).collect();
            let bounds: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
            let span = |next: &mut dyn FnMut(usize) -> usize| {
                let a = bounds[next(bounds.len())];
                let b = bounds[next(bounds.len())];
                (a.min(b), a.max(b))
            };
            let mut db = SourceDb::new();
            let f = db.add("t.nn", text.clone(), false);
            let (a, b) = span(&mut next);
            let mut d = Diagnostic::error("E0001", "m", Span::new(f, a, b), "here");
            for _ in 0..next(4) {
                let (a, b) = span(&mut next);
                d = d.with_secondary(Span::new(f, a, b), "there");
            }
            assert_same(&d, &db);
        }
    }

    #[test]
    fn window_keeps_line_numbers_across_line_break_styles() {
        let mut text = String::new();
        for i in 0..40 {
            text.push_str(match i % 3 {
                0 => "a line\r\n",
                1 => "another\r",
                _ => "third\n",
            });
        }
        text.push_str("last");
        let mut db = SourceDb::new();
        let f = db.add("t.nn", text.clone(), false);
        for (a, b) in [
            (0, 1),
            (100, 104),
            (150, 300),
            (text.len() - 2, text.len()),
            (text.len(), text.len()),
        ] {
            let d = Diagnostic::error("E0001", "m", Span::new(f, a, b), "here").with_secondary(Span::new(f, 30, 33), "and here");
            assert_same(&d, &db);
            let d = Diagnostic::error("E0001", "m", Span::new(f, a, b), "alone");
            assert_same(&d, &db);
        }
    }
}
