//! The `data =` setting: a data source, checked and turned into data.

use super::settings::{number, unknown_argument};
use crate::base::Span;
use crate::diag::{suggest, Diagnostic, Diagnostics};
use crate::ir::{self, DType, Dim};
use crate::plan::{CsvLabel, DataSource, DataSpec};
use crate::syntax::ast::*;

/// The data sources of `data =` with their parameters (the language
/// reference lists each).
pub const DATA_SOURCES: &[(&str, &[&str])] = &[
    ("mnist", &["dir"]),
    ("csv", &["path", "label", "scale", "target"]),
    ("idx", &["images", "labels"]),
    ("tensors", &["x", "y"]),
    ("text", &["path", "steps", "vocab"]),
];

fn str_arg(a: &Arg, diags: &mut Diagnostics, what: &str) -> Option<String> {
    match &a.value.kind {
        ExprKind::Str(s) => Some(s.clone()),
        _ => {
            diags.push(Diagnostic::error(
                "E0203",
                format!("{what} must be a string"),
                a.value.span,
                "not a string",
            ));
            None
        }
    }
}

/// A number or a nested list of numbers: its values in order and its shape.
fn nested(e: &Expr) -> Result<(Vec<f64>, Vec<usize>), Span> {
    match &e.kind {
        ExprKind::Int(i) => Ok((vec![*i as f64], vec![])),
        ExprKind::Float(f) => Ok((vec![*f], vec![])),
        ExprKind::Neg(inner) => nested(inner).map(|(v, s)| (v.into_iter().map(|x| -x).collect(), s)),
        ExprKind::List(items) => {
            let mut values = vec![];
            let mut inner: Option<Vec<usize>> = None;
            for it in items {
                let (v, s) = nested(it)?;
                if inner.as_ref().is_some_and(|first| *first != s) {
                    return Err(it.span);
                }
                inner = Some(s);
                values.extend(v);
            }
            let mut shape = vec![items.len()];
            shape.extend(inner.unwrap_or_default());
            Ok((values, shape))
        }
        _ => Err(e.span),
    }
}

/// The samples of `tensors(x: [...], y: [...])`: one flat row each, and
/// the shape of one sample (all must have the same). At most `max_rank`
/// dims per sample.
fn samples(e: &Expr, max_rank: usize, diags: &mut Diagnostics) -> Option<(Vec<Vec<f64>>, Vec<usize>)> {
    let ExprKind::List(rows) = &e.kind else {
        diags.push(Diagnostic::error(
            "E0203",
            "expected a list of rows, like `[[0, 1], [1, 0]]`",
            e.span,
            "not a list",
        ));
        return None;
    };
    let mut out = vec![];
    let mut shape: Option<Vec<usize>> = None;
    for r in rows {
        let (row, s) = match nested(r) {
            Ok(v) => v,
            Err(span) => {
                diags.push(Diagnostic::error(
                    "E0203",
                    "rows must hold numbers",
                    span,
                    "not a number or a list of numbers",
                ));
                return None;
            }
        };
        if s.len() > max_rank {
            diags.push(Diagnostic::error(
                "E0203",
                "each row of `y` must be a number or a list of numbers",
                r.span,
                format!("this row has {} nested levels", s.len()),
            ));
            return None;
        }
        // A scalar row is one value, like a list of one.
        let s = if s.is_empty() { vec![1] } else { s };
        if let Some(first) = &shape {
            if *first != s {
                let show = |d: &[usize]| format!("[{}]", d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "));
                diags.push(Diagnostic::error(
                    "E0309",
                    "all rows must have the same shape",
                    r.span,
                    format!("this row is {}, the first is {}", show(&s), show(first)),
                ));
                return None;
            }
        }
        shape = Some(s);
        out.push(row);
    }
    Some((out, shape.unwrap_or_else(|| vec![1])))
}

/// The `label` keyword of `csv(..., label: ...)`: what becomes `target`
/// when the column holds numbers to predict rather than class ids.
pub(super) fn class_label_keyword(e: &Expr) -> Option<Span> {
    let ExprKind::Call { callee, args } = &e.kind else { return None };
    if !matches!(&callee.kind, ExprKind::Name(n) if n.name == "csv") {
        return None;
    }
    args.iter()
        .find_map(|a| a.name.as_ref().filter(|n| n.name == "label").map(|n| n.span))
}

pub(super) fn data_source(e: &Expr, diags: &mut Diagnostics) -> Option<DataSpec> {
    let ExprKind::Call { callee, args } = &e.kind else {
        diags.push(
            Diagnostic::error("E0109", "`data =` needs a data source", e.span, "not a data source")
                .with_help("use mnist(\"dir\"), csv(\"file.csv\", label: 64), idx(\"images\", \"labels\"), text(\"file.txt\", steps: 64) or tensors(x: [...], y: [...])"),
        );
        return None;
    };
    let ExprKind::Name(name) = &callee.kind else {
        diags.push(Diagnostic::error(
            "E0109",
            "`data =` needs a data source",
            callee.span,
            "not a data source",
        ));
        return None;
    };
    let get = |n: &str, pos: usize| -> Option<&Arg> {
        args.iter()
            .find(|a| a.name.as_ref().is_some_and(|x| x.name == n))
            .or_else(|| args.iter().filter(|a| a.name.is_none()).nth(pos))
    };
    let known: &[&str] = match DATA_SOURCES.iter().find(|(n, _)| *n == name.name) {
        Some((_, params)) => params,
        None => {
            let mut d = Diagnostic::error(
                "E0101",
                format!("unknown data source `{}`", name.name),
                name.span,
                "not a data source",
            )
            .with_help("data sources are mnist, csv, idx, text and tensors");
            if let Some(s) = suggest(&name.name, DATA_SOURCES.iter().map(|(n, _)| *n)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
            return None;
        }
    };
    for a in args {
        if let Some(n) = &a.name {
            if !known.contains(&n.name.as_str()) {
                diags.push(unknown_argument(&name.name, n, known));
                return None;
            }
        }
    }
    let need = |n: &str, pos: usize, diags: &mut Diagnostics| -> Option<&Arg> {
        let a = get(n, pos);
        if a.is_none() {
            diags.push(Diagnostic::error(
                "E0103",
                format!("`{}` is missing argument `{n}`", name.name),
                e.span,
                format!("`{n}` not given"),
            ));
        }
        a
    };
    let source = match name.name.as_str() {
        "mnist" => DataSource::Mnist {
            dir: str_arg(need("dir", 0, diags)?, diags, "the MNIST directory")?,
        },
        "csv" => {
            let path = str_arg(need("path", 0, diags)?, diags, "the CSV path")?;
            // `target:` names a column of regression targets; `label:` one of class ids.
            let target = args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == "target"));
            if let (Some(t), Some(l)) = (target, args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == "label"))) {
                diags.push(
                    Diagnostic::error(
                        "E0105",
                        "`csv` takes either `label:` (class ids) or `target:` (numbers to predict), not both",
                        t.span,
                        "given as well",
                    )
                    .with_secondary(l.span, "the label column"),
                );
                return None;
            }
            let regression = target.is_some();
            let label = match target.or_else(|| get("label", 1)).map(|a| &a.value.kind) {
                None => CsvLabel::Index(-1),
                Some(ExprKind::Int(i)) => CsvLabel::Index(*i),
                Some(ExprKind::Neg(x)) if matches!(x.kind, ExprKind::Int(_)) => CsvLabel::Index(-number(x)? as i64),
                Some(ExprKind::Str(name)) => CsvLabel::Name(name.clone()),
                Some(_) => {
                    diags.push(Diagnostic::error(
                        "E0203",
                        "the label column must be a column index (negative counts from the end) or a header name",
                        target.or_else(|| get("label", 1))?.value.span,
                        "not an integer",
                    ));
                    return None;
                }
            };
            let scale = match get("scale", 2).map(|a| &a.value) {
                None => None,
                Some(v) => match v.kind {
                    ExprKind::Float(f) => Some(f),
                    ExprKind::Int(i) => Some(i as f64),
                    ExprKind::Binary(BinOp::Div, ref a, ref b) => match (&a.kind, &b.kind) {
                        (ExprKind::Int(x), ExprKind::Int(y)) if *y != 0 => Some(*x as f64 / *y as f64),
                        _ => None,
                    },
                    _ => {
                        diags.push(Diagnostic::error("E0203", "`scale` must be a number", v.span, "not a number"));
                        return None;
                    }
                },
            };
            DataSource::Csv {
                path,
                label,
                scale,
                regression,
            }
        }
        "text" => {
            let path = str_arg(need("path", 0, diags)?, diags, "the text file")?;
            let steps = whole(need("steps", 1, diags)?, 1, usize::MAX, "`steps` (characters per sequence)", diags)?;
            let vocab = match get("vocab", 2) {
                Some(a) => whole(
                    a,
                    1,
                    crate::plan::MAX_VOCAB,
                    "`vocab` (character ids are code points below it)",
                    diags,
                )?,
                None => 128,
            };
            DataSource::Text { path, steps, vocab }
        }
        "idx" => DataSource::Idx {
            images: str_arg(need("images", 0, diags)?, diags, "the image file")?,
            labels: str_arg(need("labels", 1, diags)?, diags, "the label file")?,
        },
        _ => {
            let (x, x_shape) = samples(&need("x", 0, diags)?.value, usize::MAX, diags)?;
            let (y, _) = samples(&need("y", 1, diags)?.value, 1, diags)?;
            if x.len() != y.len() {
                diags.push(Diagnostic::error(
                    "E0308",
                    format!("`x` has {} rows but `y` has {}", x.len(), y.len()),
                    get("y", 1)?.value.span,
                    format!("{} rows", y.len()),
                ));
                return None;
            }
            DataSource::Inline { x, x_shape, y }
        }
    };
    Some(DataSpec { source, span: e.span })
}

/// A whole-number argument from `lo` to `hi`, or E0203 at it.
fn whole(a: &Arg, lo: usize, hi: usize, what: &str, diags: &mut Diagnostics) -> Option<usize> {
    match a.value.kind {
        ExprKind::Int(i) if i >= lo as i64 && (i as u64) <= hi as u64 => Some(i as usize),
        _ => {
            let range = if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("from {lo} to {hi}")
            };
            diags.push(Diagnostic::error(
                "E0203",
                format!("{what} must be a whole number {range}"),
                a.value.span,
                "not a valid value",
            ));
            None
        }
    }
}

/// The label type a data source gives each batch.
pub(super) fn label_type(source: &DataSource, batch: &Dim) -> ir::Type {
    match source {
        DataSource::Inline { y, .. } => {
            let cols = y.first().map_or(1, Vec::len);
            ir::Type::f32(vec![batch.clone(), Dim::Known(cols)])
        }
        // One number per sample, like a class label.
        DataSource::Csv { regression: true, .. } => ir::Type::f32(vec![batch.clone()]),
        // The next character at every position.
        DataSource::Text { steps, .. } => ir::Type {
            dtype: DType::I32,
            shape: vec![batch.clone(), Dim::Known(*steps)],
        },
        _ => ir::Type {
            dtype: DType::I32,
            shape: vec![batch.clone()],
        },
    }
}

/// The shape of `x` a data source gives, when it is known without a model
/// (for a block of steps that names none): MNIST's images, or inline rows.
pub(super) fn input_type(source: &DataSource) -> Option<ir::Type> {
    let batch = Dim::Sym("batch".into());
    match source {
        DataSource::Mnist { .. } => Some(ir::Type::f32(vec![batch, Dim::Known(28), Dim::Known(28)])),
        DataSource::Inline { x_shape, .. } => Some(ir::Type::f32(
            std::iter::once(batch).chain(x_shape.iter().map(|&d| Dim::Known(d))).collect(),
        )),
        DataSource::Text { steps, .. } => Some(ir::Type {
            dtype: DType::I32,
            shape: vec![batch, Dim::Known(*steps)],
        }),
        DataSource::Csv { .. } | DataSource::Idx { .. } => None,
    }
}
