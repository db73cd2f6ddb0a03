//! `nnc explain --grad`: a `Derivation` printed as text, LaTeX or markdown.

use super::backward::{Derivation, Equation, Section};
use super::derivatives::known;
use super::notation::{name, render as expr, Format};
use std::fmt::Write as _;

/// `layer_text(name)` gives the layer call as written (`Dense(2 -> 8, tanh)`).
pub fn render(d: &Derivation, fmt: Format, layer_text: &dyn Fn(&str) -> Option<String>) -> String {
    match fmt {
        Format::Text => text(d, layer_text),
        Format::Latex => latex(d, layer_text),
        Format::Markdown => markdown(d, layer_text),
    }
}

const ROWS_NOTE: &str = "rows are samples: nnc computes x · W, so the textbook's δ·aᵀ reads aᵀ · δ here";
/// Shapes line up after equations up to this long; longer ones push theirs out.
const MAX_ALIGN: usize = 72;
const UNUSED_NOTE: &str = "not computed by the training step: x is data, not a parameter";

fn heading(d: &Derivation, s: Section, layer_text: &dyn Fn(&str) -> Option<String>) -> String {
    match s {
        Section::Input => "input".into(),
        Section::Loss => "loss".into(),
        Section::Layer(l) => {
            let info = &d.layers[l - 1];
            let call = layer_text(&info.name).unwrap_or_else(|| info.kind.clone());
            format!("layer {l}: {} = {call}", info.name)
        }
    }
}

/// Equations grouped by section, keeping their order.
fn grouped(eqs: &[(Section, Equation)]) -> Vec<(Section, Vec<&Equation>)> {
    let mut out: Vec<(Section, Vec<&Equation>)> = vec![];
    for (s, e) in eqs {
        match out.last_mut() {
            Some((last, list)) if last == s => list.push(e),
            _ => out.push((*s, vec![e])),
        }
    }
    out
}

/// The derivative lines for the functions that appear, in order.
fn where_lines(d: &Derivation, fmt: Format) -> Vec<String> {
    let mut out: Vec<String> = d
        .functions
        .iter()
        .map(|f| match known(f) {
            Some(k) if fmt == Format::Text => k.text.to_string(),
            Some(k) => k.latex.to_string(),
            None if fmt == Format::Text => format!("{f}: derived by autodiff from its body (`nnc ir --stage grad` shows the code)"),
            None => format!(r"\mathrm{{{}}}:\ \text{{derived by autodiff from its body}}", f.replace('_', r"\_")),
        })
        .collect();
    out.extend(
        d.notes
            .iter()
            .map(|(text, tex)| if fmt == Format::Text { text.clone() } else { tex.clone() }),
    );
    out
}

fn text(d: &Derivation, layer_text: &dyn Fn(&str) -> Option<String>) -> String {
    let line = |e: &Equation| format!("{} = {}", expr(&e.lhs, Format::Text), expr(&e.rhs, Format::Text));
    let width = d
        .forward
        .iter()
        .chain(&d.backward)
        .map(|(_, e)| line(e).chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_ALIGN);
    let mut out = String::new();
    let _ = writeln!(out, "backward pass of {}, as autodiff derives it", d.model);
    let _ = writeln!(out, "({ROWS_NOTE})");
    if !d.symbols.is_empty() {
        let _ = writeln!(out, "\nparameters");
        for (n, full, shape) in &d.symbols {
            let _ = writeln!(out, "  {} = {full}  {shape}", name(n, Format::Text));
        }
    }
    for (title, eqs) in [("forward", &d.forward), ("backward, from the loss to the input", &d.backward)] {
        let _ = writeln!(out, "\n{title}");
        for (s, list) in grouped(eqs) {
            let _ = writeln!(out, "  {}", heading(d, s, layer_text));
            for e in list {
                let l = line(e);
                let pad = width.saturating_sub(l.chars().count());
                let mut row = format!("    {l}{}  {}", " ".repeat(pad), e.shape);
                if e.unused {
                    let _ = write!(row, "  ({UNUSED_NOTE})");
                }
                let _ = writeln!(out, "{row}");
            }
        }
    }
    let lines = where_lines(d, Format::Text);
    if !lines.is_empty() {
        let _ = writeln!(out, "\nwhere");
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    out
}

fn tex_escape(s: &str) -> String {
    s.replace('\\', r"\textbackslash{}")
        .replace('_', r"\_")
        .replace('&', r"\&")
        .replace('#', r"\#")
        .replace('%', r"\%")
}

fn latex(d: &Derivation, layer_text: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "% backward pass of {}, as autodiff derives it (nnc explain --grad --format latex)",
        d.model
    );
    let _ = writeln!(
        out,
        "% rows are samples: nnc computes x W, so the textbook's delta a^T reads a^T delta here"
    );
    if !d.symbols.is_empty() {
        let list: Vec<String> = d
            .symbols
            .iter()
            .map(|(n, full, _)| format!(r"${} = \texttt{{{}}}$", name(n, Format::Latex), tex_escape(full)))
            .collect();
        let _ = writeln!(out, "Parameters: {}.\n", list.join(", "));
    }
    for (title, eqs) in [("Forward", &d.forward), ("Backward, from the loss to the input", &d.backward)] {
        let _ = writeln!(out, "\\paragraph{{{title}}}");
        let _ = writeln!(out, r"\begin{{align*}}");
        for (s, list) in grouped(eqs) {
            let _ = writeln!(out, r"\intertext{{{}}}", tex_escape(&heading(d, s, layer_text)));
            for e in list {
                let note = if e.unused { r"\ \text{(not computed: data)}" } else { "" };
                let _ = writeln!(
                    out,
                    r"{} &= {} && \texttt{{{}}}{note} \\",
                    expr(&e.lhs, Format::Latex),
                    expr(&e.rhs, Format::Latex),
                    e.shape
                );
            }
        }
        let _ = writeln!(out, r"\end{{align*}}");
    }
    let lines = where_lines(d, Format::Latex);
    if !lines.is_empty() {
        let _ = writeln!(out, r"\paragraph{{Where}}");
        let _ = writeln!(out, r"\begin{{gather*}}");
        let _ = writeln!(out, "{}", lines.join(" \\\\\n"));
        let _ = writeln!(out, r"\end{{gather*}}");
    }
    out
}

fn markdown(d: &Derivation, layer_text: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Backward pass of `{}`\n", d.model);
    let _ = writeln!(out, "As autodiff derives it; {ROWS_NOTE}.\n");
    if !d.symbols.is_empty() {
        let _ = writeln!(out, "| symbol | parameter | shape |\n|---|---|---|");
        for (n, full, shape) in &d.symbols {
            let _ = writeln!(out, "| ${}$ | `{full}` | `{shape}` |", name(n, Format::Latex));
        }
        out.push('\n');
    }
    for (title, eqs) in [("Forward", &d.forward), ("Backward, from the loss to the input", &d.backward)] {
        let _ = writeln!(out, "### {title}\n");
        for (s, list) in grouped(eqs) {
            let _ = writeln!(out, "**{}**\n", heading(d, s, layer_text));
            let _ = writeln!(out, "| equation | shape |\n|---|---|");
            for e in list {
                let note = if e.unused { format!(" ({UNUSED_NOTE})") } else { String::new() };
                let eq = format!("{} = {}", expr(&e.lhs, Format::Markdown), expr(&e.rhs, Format::Markdown));
                let _ = writeln!(out, "| ${}${note} | `{}` |", eq.replace('|', r"\|"), e.shape);
            }
            out.push('\n');
        }
    }
    let lines = where_lines(d, Format::Markdown);
    if !lines.is_empty() {
        let _ = writeln!(out, "### Where\n");
        for l in lines {
            let _ = writeln!(out, "- ${l}$");
        }
    }
    out
}
