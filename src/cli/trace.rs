//! `nnc trace FILE [--step K] [--sample N] [--format text|json]`: one
//! training step on the file's data through the interpreter, every value
//! with its shape and a summary (`teach::trace`).

use super::cmdline::CmdLine;
use super::say;
use crate::diag::Diagnostic;
use crate::runtime::load;
use crate::teach::trace::{trace as run_trace, TraceError, TraceRequest};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Args)]
pub struct TraceArgs {
    pub file: PathBuf,
    /// The training step to trace, counting from 1 as `nnc run` does; the
    /// steps before it are replayed so the weights are the run's.
    #[arg(long, default_value_t = 1)]
    pub step: usize,
    /// Trace this one training sample (a row of the training split, from 0)
    /// instead of the step's batch.
    #[arg(long)]
    pub sample: Option<usize>,
    /// Only the training run of this model.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    pub format: TraceFormat,
    /// Where relative dataset paths are also looked up (also NNC_DATA).
    #[arg(long, env = "NNC_DATA")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TraceFormat {
    Text,
    Json,
}

pub fn trace(args: &TraceArgs) -> i32 {
    let Some(c) = super::report::load_checked(&args.file, args.data_dir.as_deref()) else {
        return 1;
    };
    let cmd = CmdLine::from_env();
    let plans = match super::select_plans(&c, args.model.as_deref(), &cmd) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let base = super::report::base_dir(&args.file);
    let mut json = vec![];
    for plan in plans {
        let splits = match load::load_splits(plan, &base, args.data_dir.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error[{}]: cannot read the data of `train {}`: {e}", e.code, plan.model);
                return 1;
            }
        };
        let req = TraceRequest {
            step: args.step,
            sample: args.sample,
        };
        let t = match run_trace(plan, &splits.train, &req) {
            Ok(t) => t,
            Err(TraceError::StepOutOfRange(k, steps)) => {
                let d = Diagnostic::error(
                    "E0803",
                    format!("step {k} is past the end of training: `train {}` takes {steps} steps", plan.model),
                    cmd.span_of(&format!("--step {k}")),
                    format!("steps run from 1 to {steps}"),
                );
                return cmd.fail(d);
            }
            Err(TraceError::SampleOutOfRange(s, n)) => {
                let d = Diagnostic::error(
                    "E0803",
                    format!(
                        "sample {s} is past the end of the training split of `train {}` ({n} samples)",
                        plan.model
                    ),
                    cmd.span_of(&format!("--sample {s}")),
                    format!("samples run from 0 to {}", n.saturating_sub(1)),
                );
                return cmd.fail(d);
            }
            Err(TraceError::Run(e)) => {
                eprintln!("error: tracing `train {}` failed: {e}", plan.model);
                return 1;
            }
        };
        match args.format {
            TraceFormat::Text => say!("{}", crate::teach::trace_text::text(&t).trim_end()),
            TraceFormat::Json => json.push(crate::teach::trace_text::json(&t)),
        }
    }
    if args.format == TraceFormat::Json {
        let v = if json.len() == 1 {
            json.remove(0)
        } else {
            serde_json::Value::Array(json)
        };
        say!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    0
}
