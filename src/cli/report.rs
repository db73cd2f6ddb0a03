//! What `run` and `eval` share: loading a checked file with its data shape
//! checked, choosing the backend, and the final evaluation report.

use super::say;
use crate::driver::{self, Compilation};
use crate::plan::TrainPlan;
use crate::runtime::backend::BackendKind;
use crate::runtime::load;
use crate::runtime::metrics;
use crate::runtime::train::{self, Scores, Weights};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::ArrayD;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Backend {
    /// Native code compiled with Cranelift.
    Jit,
    /// The reference interpreter (f64): slow, the oracle.
    Interp,
}

/// `--backend` and `--threads`, shared by run, eval and predict.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Engine {
    #[arg(long, value_enum, default_value_t = Backend::Jit)]
    pub backend: Backend,
    /// Threads for compiled code (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Engine {
    pub fn kind(self) -> BackendKind {
        match self.backend {
            Backend::Interp => BackendKind::Interp,
            Backend::Jit => BackendKind::Jit {
                threads: self
                    .threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
            },
        }
    }
}

/// The directory relative dataset paths are looked up in first.
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Read and check `file`, including its data's shape against the model
/// (from file headers); prints diagnostics. `None` when there were errors.
pub fn load_checked(file: &Path, data_dir: Option<&Path>) -> Option<Compilation> {
    let c = match super::load(file) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return None;
        }
    };
    check_loaded(c, file, data_dir)
}

/// The checks of `load_checked` on a compilation already made.
pub fn check_loaded(mut c: Compilation, file: &Path, data_dir: Option<&Path>) -> Option<Compilation> {
    check_against_data(&mut c, file, data_dir);
    if super::report(&c) > 0 {
        return None;
    }
    if c.analysis.plans.is_empty() {
        eprintln!("error: {} has no `train` block", file.display());
        return None;
    }
    Some(c)
}

/// The checks that read the data's headers and labels (its shape against
/// the model's input, its classes against the model's outputs) and the
/// memory estimate against this machine, before anything is allocated.
pub fn check_against_data(c: &mut Compilation, file: &Path, data_dir: Option<&Path>) {
    let base = base_dir(file);
    driver::check_data(c, &|src| load::feature_shape(src, &base, data_dir));
    driver::check_labels(c, &|src| load::label_summary(src, &base, data_dir));
    driver::check_memory(c, physical_memory());
}

/// Total memory of this machine in bytes (`/proc/meminfo`); unlimited
/// where it cannot be read.
fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(u64::MAX)
}

/// `loss 0.1234  accuracy 0.9712  f1 0.9701`.
pub fn scores_line(s: &Scores) -> String {
    s.all().iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join("  ")
}

/// The final report on a held-out set: accuracy, macro precision, recall
/// and F1 and the confusion matrix for classification; MSE, MAE and R² for
/// regression. Returns the values for `test.json`.
pub fn final_report(
    plan: &TrainPlan,
    backend: BackendKind,
    w: &Weights,
    name: &str,
    data: &crate::runtime::data::Dataset,
) -> Result<Vec<(String, f64)>, String> {
    // A bar while a slow backend works through the set, on a terminal.
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::with_draw_target(Some(data.len() as u64), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{prefix}  [{bar:30.cyan/blue}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("evaluating on the {name} set"));
        bar
    });
    let mut progress = |done: usize, _| {
        if let Some(b) = &bar {
            b.set_position(done as u64);
        }
    };
    let result = train::evaluate_outputs(plan, backend, w, data, &mut progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (s, out, y) = result?;
    say!("{} on the {name} set ({} samples):", plan.model, data.len());
    let mut vals = vec![("loss".to_string(), s.loss)];
    // A class per position (a language model's next characters): accuracy
    // over positions and the perplexity, exp(mean cross-entropy); a
    // confusion matrix over a vocabulary would be unreadable.
    if out.ndim() == y.ndim() + 1 && y.ndim() > 1 && plan.label.dtype == crate::ir::DType::I32 {
        vals.extend(s.accuracy.map(|a| ("accuracy".to_string(), a)));
        vals.push(("perplexity".into(), s.loss.exp()));
        print_values(&vals);
        return Ok(vals);
    }
    // Multi-label 0/1 targets have accuracy (every column right) but no
    // confusion matrix.
    let confusion = metrics::confusion_matrix(&out, &y)
        .ok()
        .filter(|_| train::is_classification(plan, &y));
    if let (Some(a), None) = (s.accuracy, &confusion) {
        vals.push(("accuracy".into(), a));
    }
    if let Some(c) = confusion {
        let m = c.macro_scores();
        vals.push(("accuracy".into(), c.accuracy()));
        vals.push(("precision".into(), m.precision));
        vals.push(("recall".into(), m.recall));
        vals.push(("f1".into(), m.f1));
        print_values(&vals);
        say!("  (precision, recall and F1 are macro averages over classes)");
        say!("confusion matrix (rows: true class, columns: predicted class):");
        say!("{}", c.to_string().trim_end());
    } else {
        let (mse, mae, r2) = regression(&out, &y)?;
        vals.extend([("mse".into(), mse), ("mae".into(), mae), ("r2".into(), r2)]);
        print_values(&vals);
    }
    Ok(vals)
}

fn regression(out: &ArrayD<f32>, y: &ArrayD<f32>) -> Result<(f64, f64, f64), String> {
    let e = |e: metrics::MetricError| e.to_string();
    Ok((
        metrics::mse(out, y).map_err(e)?,
        metrics::mae(out, y).map_err(e)?,
        metrics::r2(out, y).map_err(e)?,
    ))
}

fn print_values(vals: &[(String, f64)]) {
    for (k, v) in vals {
        say!("  {k:<10} {v:.4}");
    }
}
