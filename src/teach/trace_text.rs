//! A `Trace` printed for a reader (aligned columns) or for tools (JSON).

use super::trace::{Phase, Stat, Trace};
use std::fmt::Write as _;

/// Six significant digits, integers without a fraction, tiny and huge
/// values in exponent form.
pub fn num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    if x.fract() == 0.0 && x.abs() < 1e6 {
        return format!("{}", x as i64);
    }
    let a = x.abs();
    if (1e-4..1e5).contains(&a) {
        let digits = (5 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.digits$}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        // `1e-7`, `8.2087e-7`: the mantissa without trailing zeros.
        let s = format!("{x:.5e}");
        match s.split_once('e') {
            Some((m, e)) if m.contains('.') => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
            _ => s,
        }
    }
}

fn shape(s: &Stat) -> String {
    let dims: Vec<String> = s.shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// `min … mean … max … [first entries]`, or the one value of a scalar.
pub fn summary(s: &Stat) -> String {
    if s.len() == 1 {
        return format!("= {}", num(s.mean));
    }
    let first: Vec<String> = s.first.iter().map(|x| num(*x)).collect();
    let more = if s.len() > s.first.len() { ", …" } else { "" };
    format!(
        "min {}  mean {}  max {}  [{}{more}]",
        num(s.min),
        num(s.mean),
        num(s.max),
        first.join(", ")
    )
}

pub fn text(t: &Trace) -> String {
    let mut out = String::new();
    let samples: Vec<String> = t.samples.iter().map(usize::to_string).collect();
    let _ = writeln!(
        out,
        "trace of {}: step {} (epoch {}), {} sample{} [{}], {} with lr {}",
        t.model,
        t.step,
        t.epoch,
        t.samples.len(),
        if t.samples.len() == 1 { "" } else { "s" },
        samples.join(", "),
        t.optimizer,
        num(t.lr)
    );
    let _ = writeln!(
        out,
        "interpreted in f64; each value: shape, then min, mean, max and the first entries (row-major)"
    );
    let label = |n: &super::trace::Node| n.name.clone().unwrap_or_default();
    let wl = t.nodes.iter().map(|n| label(n).chars().count()).max().unwrap_or(0);
    let wo = t.nodes.iter().map(|n| n.op.chars().count()).max().unwrap_or(0).min(48);
    let wv = t.nodes.iter().map(|n| n.value.len()).max().unwrap_or(0);
    let ws = t.nodes.iter().map(|n| shape(&n.stat).len()).max().unwrap_or(0);
    let mut phase = None;
    let mut param: Option<&str> = None;
    for n in &t.nodes {
        if phase != Some(n.phase) {
            phase = Some(n.phase);
            let _ = writeln!(out, "\n{}", n.phase.as_str());
        }
        if n.phase == Phase::Update && n.param.as_deref() != param {
            param = n.param.as_deref();
            let _ = writeln!(out, "  {}", param.unwrap_or("(shared)"));
        }
        let l = label(n);
        let op: String = if n.op.chars().count() > wo {
            let cut: String = n.op.chars().take(wo - 1).collect();
            format!("{cut}…")
        } else {
            n.op.clone()
        };
        let _ = writeln!(
            out,
            "  {:<wv$}  {}{}  {}{}  {:<ws$}  {}",
            n.value,
            l,
            " ".repeat(wl - l.chars().count()),
            op,
            " ".repeat(wo - op.chars().count()),
            shape(&n.stat),
            summary(&n.stat)
        );
    }
    let _ = writeln!(out, "\nloss L = {}", num(t.loss));
    let _ = writeln!(out, "\nparameter change (new - old)");
    let wp = t.changes.iter().map(|c| c.param.len()).max().unwrap_or(0);
    for c in &t.changes {
        let sym = c.symbol.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<wp$}  {:<3}  {:<9}  Δ {}",
            c.param,
            sym,
            shape(&c.delta),
            summary(&c.delta)
        );
    }
    out
}

fn stat_json(s: &Stat) -> serde_json::Value {
    serde_json::json!({
        "shape": s.shape,
        "min": s.min,
        "mean": s.mean,
        "max": s.max,
        "first": s.first,
    })
}

pub fn json(t: &Trace) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = t
        .nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "phase": n.phase.as_str(),
                "value": n.value,
                "name": n.name,
                "op": n.op,
                "param": n.param,
                "stats": stat_json(&n.stat),
            })
        })
        .collect();
    let changes: Vec<serde_json::Value> = t
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "param": c.param,
                "symbol": c.symbol,
                "before": stat_json(&c.before),
                "after": stat_json(&c.after),
                "delta": stat_json(&c.delta),
            })
        })
        .collect();
    serde_json::json!({
        "model": t.model,
        "step": t.step,
        "epoch": t.epoch,
        "lr": t.lr,
        "optimizer": t.optimizer,
        "samples": t.samples,
        "loss": t.loss,
        "nodes": nodes,
        "changes": changes,
    })
}
