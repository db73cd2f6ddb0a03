//! `nnc run`: train, report per epoch, evaluate.

use super::say;
use crate::runtime::backend::BackendKind;
use crate::runtime::load;
use crate::runtime::train::{self, EpochReport, Observer, Scores};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Backend {
    /// Native code compiled with Cranelift.
    Jit,
    /// The reference interpreter (f64): slow, the oracle.
    Interp,
}

#[derive(Args)]
pub struct RunArgs {
    pub file: PathBuf,
    /// Where relative dataset paths are also looked up (also NNC_DATA).
    #[arg(long, env = "NNC_DATA")]
    pub data_dir: Option<PathBuf>,
    /// Print only the final report.
    #[arg(long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// Threads for compiled code (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

fn scores(s: &Scores) -> String {
    match s.accuracy {
        Some(a) => format!("loss {:.4}  accuracy {:.4}", s.loss, a),
        None => format!("loss {:.4}", s.loss),
    }
}

struct Lines {
    quiet: bool,
}

impl Observer for Lines {
    fn epoch(&mut self, r: &EpochReport) {
        if self.quiet {
            return;
        }
        let val = r.validation.as_ref().map(|v| format!("  | val {}", scores(v))).unwrap_or_default();
        say!(
            "epoch {:>3}/{}  {}{}  ({:.2}s)",
            r.epoch,
            r.epochs,
            scores(&r.train),
            val,
            r.seconds
        );
    }
}

pub fn run(args: &RunArgs) -> i32 {
    let c = match super::load(&args.file) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return 1;
        }
    };
    if super::report(&c) > 0 {
        return 1;
    }
    if c.analysis.plans.is_empty() {
        eprintln!("error: {} has no `train` block to run", args.file.display());
        return 1;
    }
    let backend = match args.backend {
        Backend::Interp => BackendKind::Interp,
        Backend::Jit => BackendKind::Jit {
            threads: args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
        },
    };
    let base = args.file.parent().map(Path::to_path_buf).unwrap_or_default();
    for plan in &c.analysis.plans {
        let splits = match load::load_splits(plan, &base, args.data_dir.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error[E0601]: cannot read the data of `train {}`: {e}", plan.model);
                return 1;
            }
        };
        if !args.quiet {
            let v = splits.validation.as_ref().map_or(0, |d| d.len());
            let t = splits.test.as_ref().map_or(0, |d| d.len());
            say!(
                "training {} on {} samples ({} validation, {} test), {} epochs, batch {}, {}",
                plan.model,
                splits.train.len(),
                v,
                t,
                plan.settings.epochs,
                plan.settings.batch_size,
                plan.optimizer
            );
        }
        let mut obs = Lines { quiet: args.quiet };
        let outcome = match train::train(plan, backend, &splits, &mut obs) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: training {} failed: {e}", plan.model);
                return 1;
            }
        };
        if let Some(msg) = &outcome.diverged {
            eprintln!("error: training {} stopped: {msg}", plan.model);
            return 1;
        }
        let (name, data) = match &splits.test {
            Some(t) => ("test", t),
            None => ("train", &splits.train),
        };
        match train::evaluate(plan, backend, &outcome.weights, data) {
            Ok(s) => {
                say!("{} {name} loss: {:.4}", plan.model, s.loss);
                if let Some(a) = s.accuracy {
                    say!("{} {name} accuracy: {:.4}", plan.model, a);
                }
            }
            Err(e) => {
                eprintln!("error: evaluating {} failed: {e}", plan.model);
                return 1;
            }
        }
    }
    0
}
