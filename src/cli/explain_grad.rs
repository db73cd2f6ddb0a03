//! `nnc explain --grad FILE [--model M] [--format text|latex|markdown]`:
//! the backward pass autodiff derives for each training run of the file,
//! as equations in the model's names (`teach::backward`).

use super::cmdline::CmdLine;
use super::say;
use crate::diag::Diagnostic;
use crate::teach::notation::Format;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as E0301.
    #[arg(required_unless_present = "grad", conflicts_with = "grad")]
    pub code: Option<String>,
    /// Print the backward pass of FILE's training runs as equations.
    #[arg(long, value_name = "FILE")]
    pub grad: Option<PathBuf>,
    /// Only the training run of this model.
    #[arg(long, requires = "grad")]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value_t = FormatArg::Text, requires = "grad")]
    pub format: FormatArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Text,
    Latex,
    Markdown,
}

impl FormatArg {
    pub fn notation(self) -> Format {
        match self {
            FormatArg::Text => Format::Text,
            FormatArg::Latex => Format::Latex,
            FormatArg::Markdown => Format::Markdown,
        }
    }
}

pub fn explain(args: &ExplainArgs) -> i32 {
    let Some(file) = &args.grad else {
        let code = args.code.as_deref().unwrap_or_default();
        return match crate::diag::explain(code) {
            Some(text) => {
                say!("{}", text.trim_end());
                0
            }
            None => {
                eprintln!("error: unknown diagnostic code `{code}`; codes look like E0301");
                1
            }
        };
    };
    let Some(c) = super::load_clean(file) else {
        return 1;
    };
    let cmd = CmdLine::from_env();
    let plans = match super::select_plans(&c, args.model.as_deref(), &cmd) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let layer_text = |name: &str| {
        c.analysis
            .model_layers
            .iter()
            .flat_map(|(_, ls)| ls)
            .find(|l| l.name == name)
            .map(|l| c.db.text(l.span).split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let mut texts = vec![];
    for plan in plans {
        if plan.steps.len() != 1 || plan.eval.is_none() {
            eprintln!(
                "error: `train {}` has several steps; --grad explains a train block with one loss",
                plan.model
            );
            return 1;
        }
        let d = crate::teach::backward::derive(plan);
        texts.push(crate::teach::explain::render(&d, args.format.notation(), &layer_text));
    }
    say!("{}", texts.join("\n").trim_end());
    0
}

/// A `--model` that names no training run.
pub(crate) fn no_such_run(cmd: &CmdLine, model: &str, runs: &[&str]) -> i32 {
    if runs.is_empty() {
        return cmd.fail(Diagnostic::error(
            "E0805",
            "the file has no `train` block",
            cmd.span_of(model),
            "no training run",
        ));
    }
    cmd.unknown(
        "E0801",
        format!("no training run for a model `{model}`"),
        model,
        "not a trained model",
        runs,
    )
}
