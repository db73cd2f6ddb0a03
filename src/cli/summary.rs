//! `nnc summary FILE`: the Keras-style table of each model's layers, from
//! the checker alone (no data, no training).

use super::say;
use crate::runtime::summary::{bytes, summarize, thousands};
use std::path::Path;

pub fn summary(file: &Path) -> i32 {
    let Some(c) = super::load_clean(file) else {
        return 1;
    };
    if c.analysis.model_funcs.is_empty() {
        eprintln!("error: {} declares no model", file.display());
        return 1;
    }
    for (model, func) in &c.analysis.model_funcs {
        let layers = c
            .analysis
            .model_layers
            .iter()
            .find(|(m, _)| m == model)
            .map_or(&[][..], |(_, l)| l.as_slice());
        let s = summarize(func, layers);
        // The layer call as written (`Dense(784 -> 128, relu)`), one line;
        // by a map, as 10,000 layers made a search per row quadratic.
        let spans: std::collections::HashMap<&str, crate::base::Span> = layers.iter().map(|l| (l.name.as_str(), l.span)).collect();
        let kind = |name: &str| {
            spans
                .get(name)
                .map(|&s| c.db.text(s).split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        let rows: Vec<[String; 5]> = s
            .rows
            .iter()
            .map(|r| {
                [
                    format!("{} {}", r.name, kind(&r.name)).trim_end().to_string(),
                    r.output.clone(),
                    if r.buffers > 0 {
                        format!("{} + {} buffer", thousands(r.params as u64), thousands(r.buffers as u64))
                    } else {
                        thousands(r.params as u64)
                    },
                    thousands(r.flops),
                    bytes(r.activations * 4),
                ]
            })
            .collect();
        let head = ["layer", "output shape", "params", "FLOPs", "activations"];
        let mut w = head.map(str::len);
        for r in &rows {
            for (i, cell) in r.iter().enumerate() {
                w[i] = w[i].max(cell.len());
            }
        }
        let line = |cells: &[String; 5]| {
            format!(
                "{:<a$}  {:<b$}  {:>c$}  {:>d$}  {:>e$}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                a = w[0],
                b = w[1],
                c = w[2],
                d = w[3],
                e = w[4]
            )
        };
        let width = w.iter().sum::<usize>() + 8;
        say!("model {model}");
        say!("{}", "=".repeat(width));
        say!("{}", line(&head.map(String::from)));
        say!("{}", "-".repeat(width));
        for r in &rows {
            say!("{}", line(r));
        }
        say!("{}", "=".repeat(width));
        say!(
            "total params:       {} ({} as f32)",
            thousands(s.params as u64),
            bytes(s.params.saturating_mul(4))
        );
        if s.buffers > 0 {
            let names: Vec<String> = layers
                .iter()
                .flat_map(|l| {
                    l.params[l.params.len() - l.buffers..]
                        .iter()
                        .map(move |(p, _)| format!("{}.{p}", l.name))
                })
                .collect();
            say!(
                "buffers:            {} ({}; saved with the weights, not trained: {})",
                thousands(s.buffers as u64),
                bytes(s.buffers * 4),
                names.join(", ")
            );
        }
        say!("forward FLOPs:      {} per sample", thousands(s.flops));
        say!("activations:        {} per sample", bytes(s.activations.saturating_mul(4)));
        // Adam keeps two values per parameter; training also holds gradients.
        say!(
            "training memory:    about {} for weights, gradients and two optimizer states",
            bytes(s.params.saturating_mul(16))
        );
        say!("");
    }
    0
}
