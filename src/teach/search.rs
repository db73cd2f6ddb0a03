//! Hyper-parameter search spaces, the trials they expand to, median
//! pruning, and the study's results, for `nnc tune`.
//!
//! A space is written `name=SPEC` (on the command line, `--grid` or
//! `--random`):
//! - `lr=0.1,0.01,0.001` — these values (a grid axis, or a random choice);
//! - `lr=1e-4..1e-1` — uniform in the range, `lr=log:1e-4..1e-1` —
//!   log-uniform (each decade equally likely);
//! - in a grid a range needs a count: `lr=log:1e-4..1e-1/4` is 4 points.
//!
//! Trials are the grid's product, crossed with `trials` random draws when
//! some axis is random. Draws are counter-based (`ir::random_uniform` of
//! the study seed and the trial and axis), so trial `i` has the same
//! values every time: re-running a study finds the trials it already has.

use super::overrides::{check_value, INTEGER_SETTINGS};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    Values(Vec<String>),
    Range { lo: f64, hi: f64, log: bool, count: Option<usize> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    pub spec: Spec,
    pub grid: bool,
    /// The text it was parsed from (`lr=log:1e-4..1e-1`), for messages.
    pub text: String,
    /// Where the train block names it, when it comes from the file.
    pub span: Option<crate::base::Span>,
    /// Its values are whole numbers (`batch_size`, a named size written
    /// `128`); `check_space` sets it from the file.
    pub integer: bool,
}

impl Axis {
    pub fn is_log(&self) -> bool {
        matches!(self.spec, Spec::Range { log: true, .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpaceError {
    /// The axis text to point at (empty: the whole command).
    pub at: String,
    pub message: String,
    pub help: Option<String>,
}

fn err(at: &str, message: String, help: Option<&str>) -> SpaceError {
    SpaceError {
        at: at.into(),
        message,
        help: help.map(String::from),
    }
}

/// Parse `name=SPEC`.
pub fn parse_axis(text: &str, grid: bool) -> Result<Axis, SpaceError> {
    let Some((name, spec)) = text.split_once('=') else {
        return Err(err(
            text,
            format!("`{text}` is not NAME=VALUES"),
            Some("e.g. `--grid lr=0.1,0.01` or `--random lr=log:1e-4..1e-1`"),
        ));
    };
    let (name, spec) = (name.trim(), spec.trim());
    if name.is_empty() {
        return Err(err(text, format!("`{text}` names no hyper-parameter"), None));
    }
    let (log, body) = match spec.strip_prefix("log:") {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let spec = if let Some((lo, rest)) = body.split_once("..") {
        let (hi, count) = match rest.split_once('/') {
            Some((hi, n)) => (hi, Some(n)),
            None => (rest, None),
        };
        let num = |s: &str| s.trim().parse::<f64>().ok().filter(|x| x.is_finite());
        let (Some(lo), Some(hi)) = (num(lo), num(hi)) else {
            return Err(err(
                text,
                format!("the range of `{name}` needs two numbers: `{spec}`"),
                Some("e.g. `lr=log:1e-4..1e-1`"),
            ));
        };
        if lo >= hi {
            return Err(err(text, format!("the range of `{name}` is empty: {lo} is not below {hi}"), None));
        }
        if log && lo <= 0.0 {
            return Err(err(
                text,
                format!("a log range of `{name}` must lie above 0, but starts at {lo}"),
                Some("log-uniform draws need positive bounds, e.g. `log:1e-4..1e-1`"),
            ));
        }
        let count = match count.map(|n| n.trim().parse::<usize>()) {
            Some(Ok(n)) if n >= 1 => Some(n),
            Some(_) => return Err(err(text, format!("the point count of `{name}` must be a whole number ≥ 1"), None)),
            None => None,
        };
        if grid && count.is_none() {
            return Err(err(
                text,
                format!("a grid over a range needs a number of points: `{text}`"),
                Some(&format!("e.g. `{name}={spec}/4`, or use `--random` to draw from the range")),
            ));
        }
        Spec::Range { lo, hi, log, count }
    } else {
        if log {
            return Err(err(text, format!("`log:` needs a range for `{name}`: `log:LO..HI`"), None));
        }
        let values: Vec<String> = body.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Err(err(
                text,
                format!("`{name}` has no values"),
                Some(&format!("e.g. `{name}=0.1,0.01`")),
            ));
        }
        Spec::Values(values)
    };
    Ok(Axis {
        name: name.into(),
        spec,
        grid,
        text: text.into(),
        span: None,
        integer: INTEGER_SETTINGS.contains(&name),
    })
}

/// Check a whole space against the names the file accepts (`known`, of
/// which `integers` take whole numbers): not empty, each name known and
/// given once, every value acceptable. Marks the axes of whole numbers.
pub fn check_space(axes: &mut [Axis], known: &[String], integers: &[String]) -> Result<(), SpaceError> {
    if axes.is_empty() {
        return Err(err(
            "",
            "the search space is empty".into(),
            Some("name hyper-parameters to search, e.g. `--grid lr=0.1,0.01 --random batch_size=16,32,64`"),
        ));
    }
    for a in axes.iter_mut() {
        a.integer = integers.contains(&a.name);
    }
    for (i, a) in axes.iter().enumerate() {
        if !known.contains(&a.name) {
            return Err(err(&a.name, String::new(), None));
        }
        if let Some(b) = axes[..i].iter().find(|b| b.name == a.name) {
            return Err(err(
                &a.text,
                format!("`{}` is searched twice: `{}` and `{}`", a.name, b.text, a.text),
                Some("give each hyper-parameter one range or list"),
            ));
        }
        let samples: Vec<String> = match &a.spec {
            Spec::Values(v) => v.clone(),
            Spec::Range { lo, hi, .. } => vec![format_value(a.integer, *lo), format_value(a.integer, *hi)],
        };
        for v in samples {
            if let Err(super::overrides::OverrideError::BadValue { why, .. }) = check_value(&a.name, &v, integers) {
                return Err(err(&a.text, format!("`{v}` is not a value for `{}`: {why}", a.name), None));
            }
        }
        if let Spec::Range { lo, hi, .. } = a.spec {
            if a.integer && hi.floor() < lo.ceil() {
                return Err(err(&a.text, format!("the range of `{}` holds no whole number", a.name), None));
            }
        }
        if a.name == "lr" {
            let positive = match &a.spec {
                Spec::Values(v) => v.iter().all(|x| x.parse::<f64>().is_ok_and(|x| x > 0.0)),
                Spec::Range { lo, .. } => *lo > 0.0,
            };
            if !positive {
                return Err(err(&a.text, "a learning rate must be above 0".into(), None));
            }
        }
    }
    Ok(())
}

/// Whole numbers as such; others with 4 significant digits.
pub fn format_value(integer: bool, x: f64) -> String {
    if integer {
        return format!("{}", x.round() as i64);
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    if x.abs() < 1e-4 {
        let s = format!("{x:.3e}");
        return s;
    }
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The grid values of one axis.
fn grid_values(a: &Axis) -> Vec<String> {
    match &a.spec {
        Spec::Values(v) => v.clone(),
        Spec::Range { lo, hi, log, count } => {
            let n = count.unwrap_or(1);
            let mut out: Vec<String> = (0..n)
                .map(|i| {
                    let t = if n == 1 { 0.5 } else { i as f64 / (n - 1) as f64 };
                    let x = if *log {
                        (lo.ln() + t * (hi.ln() - lo.ln())).exp()
                    } else {
                        lo + t * (hi - lo)
                    };
                    format_value(a.integer, x)
                })
                .collect();
            out.dedup();
            out
        }
    }
}

/// One random draw for `a` from the uniform number `u` in [0, 1).
fn draw(a: &Axis, u: f64) -> String {
    match &a.spec {
        Spec::Values(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)].clone(),
        Spec::Range { lo, hi, log, .. } => {
            if a.integer && !log {
                // Every whole number in the range equally likely.
                let (lo, hi) = (lo.ceil() as i64, hi.floor() as i64);
                let k = lo + ((u * (hi - lo + 1) as f64) as i64).min(hi - lo);
                return k.to_string();
            }
            let x = if *log {
                (lo.ln() + u * (hi.ln() - lo.ln())).exp()
            } else {
                lo + u * (hi - lo)
            };
            format_value(a.integer, x)
        }
    }
}

/// A trial's values, by axis order.
pub type Config = Vec<(String, String)>;

/// Every trial of the study, in order.
pub fn trials(axes: &[Axis], random_trials: usize, seed: u64) -> Vec<Config> {
    let grid: Vec<&Axis> = axes.iter().filter(|a| a.grid).collect();
    let random: Vec<&Axis> = axes.iter().filter(|a| !a.grid).collect();
    let mut points: Vec<Config> = vec![vec![]];
    for a in &grid {
        let mut next = vec![];
        for p in &points {
            for v in grid_values(a) {
                let mut q = p.clone();
                q.push((a.name.clone(), v));
                next.push(q);
            }
        }
        points = next;
    }
    let draws = if random.is_empty() { 1 } else { random_trials.max(1) };
    let mut out = vec![];
    for p in &points {
        for _ in 0..draws {
            let index = out.len() as u64;
            let mut q = p.clone();
            for (k, a) in random.iter().enumerate() {
                let u = crate::ir::random_uniform(seed ^ 0x7475_6E65, index * 64 + k as u64);
                q.push((a.name.clone(), draw(a, u)));
            }
            // Keep the axes in the order they were given.
            q.sort_by_key(|(n, _)| axes.iter().position(|a| &a.name == n));
            out.push(q);
        }
    }
    out
}

/// Whether larger values of a metric are better (accuracy) or worse (loss).
pub fn higher_is_better(metric: &str) -> bool {
    let base = metric
        .strip_prefix("val_")
        .or_else(|| metric.strip_prefix("train_"))
        .unwrap_or(metric);
    matches!(base, "accuracy" | "precision" | "recall" | "f1" | "r2")
}

/// The best value of `metric` over the first `upto` epochs of a history
/// (a trial's values per epoch).
pub fn best_so_far(values: &[f64], upto: usize, higher: bool) -> Option<f64> {
    let seen = values.iter().take(upto).copied().filter(|v| v.is_finite());
    if higher {
        seen.reduce(f64::max)
    } else {
        seen.reduce(f64::min)
    }
}

/// Trials needed at an epoch before the median rule prunes anything.
pub const MIN_TRIALS_FOR_PRUNING: usize = 3;
/// Epochs every trial runs before it can be pruned.
pub const WARMUP_EPOCHS: usize = 1;

/// The median rule (as in Google Vizier and Optuna): stop a trial whose
/// best value after `epoch` epochs is worse than the median of the other
/// trials' best values after as many epochs.
pub fn should_prune(trial: &[f64], others: &[Vec<f64>], epoch: usize, higher: bool) -> bool {
    if epoch <= WARMUP_EPOCHS {
        return false;
    }
    let Some(mine) = best_so_far(trial, epoch, higher) else {
        return true;
    };
    let mut theirs: Vec<f64> = others
        .iter()
        .filter(|h| h.len() >= epoch)
        .filter_map(|h| best_so_far(h, epoch, higher))
        .collect();
    if theirs.len() < MIN_TRIALS_FOR_PRUNING {
        return false;
    }
    theirs.sort_by(f64::total_cmp);
    let m = theirs.len();
    let median = if m % 2 == 1 {
        theirs[m / 2]
    } else {
        0.5 * (theirs[m / 2 - 1] + theirs[m / 2])
    };
    if higher {
        mine < median
    } else {
        mine > median
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Complete,
    Pruned,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Pruned => "pruned",
            Status::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "complete" => Some(Status::Complete),
            "pruned" => Some(Status::Pruned),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrialResult {
    /// 1-based.
    pub trial: usize,
    pub config: Config,
    pub status: Status,
    /// The best value of the metric over its epochs.
    pub metric: Option<f64>,
    pub epochs: usize,
    pub seconds: f64,
}

/// Completed trials first, best metric first; then pruned, then failed.
pub fn ranked(results: &[TrialResult], higher: bool) -> Vec<TrialResult> {
    let mut out = results.to_vec();
    let rank = |s: Status| match s {
        Status::Complete => 0,
        Status::Pruned => 1,
        Status::Failed => 2,
    };
    out.sort_by(|a, b| {
        rank(a.status).cmp(&rank(b.status)).then_with(|| {
            let (x, y) = (a.metric.unwrap_or(f64::NAN), b.metric.unwrap_or(f64::NAN));
            let ord = if higher { y.total_cmp(&x) } else { x.total_cmp(&y) };
            ord.then(a.trial.cmp(&b.trial))
        })
    });
    out
}

/// `results.csv`: one row per trial, in trial order.
pub fn to_csv(results: &[TrialResult], axes: &[Axis], metric: &str) -> String {
    let mut out = String::from("trial,status");
    for a in axes {
        out.push(',');
        out.push_str(&a.name);
    }
    out.push_str(&format!(",{metric},epochs,seconds\n"));
    let mut sorted = results.to_vec();
    sorted.sort_by_key(|r| r.trial);
    for r in &sorted {
        let values: BTreeMap<&str, &str> = r.config.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        out.push_str(&format!("{},{}", r.trial, r.status.as_str()));
        for a in axes {
            out.push(',');
            out.push_str(values.get(a.name.as_str()).copied().unwrap_or(""));
        }
        let m = r.metric.map_or(String::new(), |m| format!("{m:.6}"));
        out.push_str(&format!(",{m},{},{:.2}\n", r.epochs, r.seconds));
    }
    out
}

/// The sorted terminal table.
pub fn table(results: &[TrialResult], axes: &[Axis], metric: &str, higher: bool) -> String {
    let mut head: Vec<String> = vec!["trial".into()];
    head.extend(axes.iter().map(|a| a.name.clone()));
    head.extend([metric.to_string(), "epochs".into(), "status".into()]);
    let mut rows: Vec<Vec<String>> = vec![];
    for r in ranked(results, higher) {
        let values: BTreeMap<&str, &str> = r.config.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut row = vec![r.trial.to_string()];
        row.extend(axes.iter().map(|a| values.get(a.name.as_str()).copied().unwrap_or("").to_string()));
        row.push(r.metric.map_or("-".into(), |m| format!("{m:.4}")));
        row.push(r.epochs.to_string());
        row.push(r.status.as_str().into());
        rows.push(row);
    }
    let mut w: Vec<usize> = head.iter().map(String::len).collect();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let cols: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:>width$}", width = w[i]))
            .collect();
        cols.join("  ")
    };
    let mut out = line(&head);
    out.push('\n');
    out.push_str(&"-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1)));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// A search space written in the `train` block:
///
/// ```nn
/// search = space(lr: log_uniform(1e-4, 1e-1), batch_size: [16, 32, 64], trials: 8)
/// ```
///
/// A list is a grid axis; `choice(a, b)`, `uniform(lo, hi)` and
/// `log_uniform(lo, hi)` are random axes; `grid(lo, hi, n)` and
/// `log_grid(lo, hi, n)` are `n` points of a range; `trials: N` is the
/// number of random draws.
pub struct FileSpace {
    pub axes: Vec<Axis>,
    pub trials: Option<usize>,
}

/// What is wrong with a `search = ...` setting, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSpaceError {
    pub span: crate::base::Span,
    pub message: String,
    pub help: Option<String>,
}

fn literal(e: &crate::syntax::ast::Expr) -> Option<String> {
    use crate::syntax::ast::ExprKind;
    match &e.kind {
        ExprKind::Int(i) => Some(i.to_string()),
        ExprKind::Float(f) => Some(format!("{f}")),
        ExprKind::Neg(x) => literal(x).map(|s| format!("-{s}")),
        _ => None,
    }
}

/// The `search` setting of the train block of `model`, if it has one.
pub fn from_train_block(module: &crate::syntax::ast::Module, model: &str) -> Result<Option<FileSpace>, FileSpaceError> {
    use crate::syntax::ast::{ExprKind, Item};
    let Some(field) = module.items.iter().find_map(|i| match i {
        Item::Train(t) if t.model.name == model => t.fields.iter().find(|f| f.name.name == "search"),
        _ => None,
    }) else {
        return Ok(None);
    };
    let bad = |span, message: String, help: Option<&str>| FileSpaceError {
        span,
        message,
        help: help.map(String::from),
    };
    let ExprKind::Call { callee, args } = &field.value.kind else {
        return Err(bad(
            field.value.span,
            "`search` needs `space(...)`".into(),
            Some("e.g. `search = space(lr: log_uniform(1e-4, 1e-1), batch_size: [16, 32, 64])`"),
        ));
    };
    if !matches!(&callee.kind, ExprKind::Name(n) if n.name == "space") {
        return Err(bad(
            callee.span,
            "`search` needs `space(...)`".into(),
            Some("e.g. `search = space(lr: [0.1, 0.01])`"),
        ));
    }
    let mut axes = vec![];
    let mut trials = None;
    for a in args {
        let Some(name) = &a.name else {
            return Err(bad(a.span, "each axis of `space` is named: `lr: [0.1, 0.01]`".into(), None));
        };
        let numbers = |items: &[crate::syntax::ast::Arg]| -> Result<Vec<String>, FileSpaceError> {
            items
                .iter()
                .map(|i| literal(&i.value).ok_or_else(|| bad(i.value.span, format!("the values of `{}` must be numbers", name.name), None)))
                .collect()
        };
        let spec_of = |range: Vec<String>, log: bool, count: Option<String>| -> Result<Spec, FileSpaceError> {
            let spec = match count {
                Some(n) => format!("{}{}..{}/{n}", if log { "log:" } else { "" }, range[0], range[1]),
                None => format!("{}{}..{}", if log { "log:" } else { "" }, range[0], range[1]),
            };
            parse_axis(&format!("{}={spec}", name.name), count_is_grid(&spec))
                .map(|a| a.spec)
                .map_err(|e| bad(a.value.span, e.message, e.help.as_deref()))
        };
        fn count_is_grid(spec: &str) -> bool {
            spec.contains('/')
        }
        if name.name == "trials" {
            match &a.value.kind {
                ExprKind::Int(n) if *n >= 1 => trials = Some(*n as usize),
                _ => return Err(bad(a.value.span, "`trials` must be a whole number ≥ 1".into(), None)),
            }
            continue;
        }
        let (spec, grid) = match &a.value.kind {
            ExprKind::List(items) => {
                let values: Result<Vec<String>, _> = items
                    .iter()
                    .map(|i| literal(i).ok_or_else(|| bad(i.span, format!("the values of `{}` must be numbers", name.name), None)))
                    .collect();
                let values = values?;
                if values.is_empty() {
                    return Err(bad(a.value.span, format!("`{}` has no values", name.name), None));
                }
                (Spec::Values(values), true)
            }
            ExprKind::Call { callee, args: inner } => {
                let kind = match &callee.kind {
                    ExprKind::Name(n) => n.name.as_str(),
                    _ => "",
                };
                let values = numbers(inner)?;
                let want = |n: usize| -> Result<(), FileSpaceError> {
                    if values.len() == n {
                        Ok(())
                    } else {
                        Err(bad(
                            a.value.span,
                            format!("`{kind}` takes {n} numbers, found {}", values.len()),
                            None,
                        ))
                    }
                };
                match kind {
                    "choice" if !values.is_empty() => (Spec::Values(values), false),
                    "uniform" | "log_uniform" => {
                        want(2)?;
                        (spec_of(values, kind == "log_uniform", None)?, false)
                    }
                    "grid" | "log_grid" => {
                        want(3)?;
                        let count = values[2].clone();
                        (spec_of(values[..2].to_vec(), kind == "log_grid", Some(count))?, true)
                    }
                    _ => {
                        return Err(bad(
                            callee.span,
                            format!("`{kind}` is not a kind of axis"),
                            Some("axes are lists `[a, b]`, choice(a, b), uniform(lo, hi), log_uniform(lo, hi), grid(lo, hi, n), log_grid(lo, hi, n)"),
                        ))
                    }
                }
            }
            _ => {
                return Err(bad(
                    a.value.span,
                    format!("`{}` needs a list or a range", name.name),
                    Some("e.g. `[16, 32, 64]` or `log_uniform(1e-4, 1e-1)`"),
                ))
            }
        };
        axes.push(Axis {
            name: name.name.clone(),
            spec,
            grid,
            text: name.name.clone(),
            span: Some(name.span),
            integer: INTEGER_SETTINGS.contains(&name.name.as_str()),
        });
    }
    if axes.is_empty() {
        return Err(bad(
            field.value.span,
            "the search space is empty".into(),
            Some("e.g. `space(lr: [0.1, 0.01])`"),
        ));
    }
    Ok(Some(FileSpace { axes, trials }))
}
