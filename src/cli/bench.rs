//! `nnc bench FILE`: training-step, inference, compile and epoch times of
//! each `train` block's model on random data of its shapes (no dataset
//! needed), with the interpreter as a same-run baseline.

use super::say;
use crate::plan::TrainPlan;
use crate::runtime::backend::BackendKind;
use crate::runtime::bench::{epoch_seconds, inference_ms, StepProbe};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    pub file: PathBuf,
    /// Batch sizes for the training-step times.
    #[arg(long, value_delimiter = ',', default_values_t = [32, 128, 1024])]
    pub batch: Vec<usize>,
    /// Thread counts to compare [default: 1 and all cores].
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Batch size for the inference time.
    #[arg(long, default_value_t = 1024)]
    pub infer_batch: usize,
    /// Samples in the timed epoch, at the file's batch size (0: skip).
    #[arg(long, default_value_t = 60_000)]
    pub samples: usize,
    /// Print JSON: one object per `train` block, a line each (for scripts
    /// such as bench/peers.py).
    #[arg(long)]
    pub json: bool,
}

/// Everything measured for one `train` block.
struct Figures {
    model: String,
    /// Compile time of the step at the file's batch size (optimising, and
    /// the first call minus a steady one), ms.
    compile_ms: f64,
    /// Process start to the end of the first training step, ms (for the
    /// first `train` block only: later ones start after earlier benchmarks).
    first_step_ms: Option<f64>,
    /// `(batch, threads, ms)` per training step.
    steps: Vec<(usize, usize, f64)>,
    /// `(threads, ms)` per forward pass at `infer_batch`.
    inference: Vec<(usize, f64)>,
    /// `(threads, seconds)` per epoch of `samples`.
    epochs: Vec<(usize, f64)>,
    /// Interpreter ms per step at the file's batch size.
    interp_ms: f64,
}

fn jit(threads: usize) -> BackendKind {
    BackendKind::Jit { threads }
}

fn measure(plan: &TrainPlan, args: &BenchArgs, threads: &[usize], started: Option<Instant>) -> Result<Figures, String> {
    let own = plan.settings.batch_size.max(1);
    // First: what a user waits for before training starts.
    let mut probe = StepProbe::new(plan, own, jit(threads[0]))?;
    let t = Instant::now();
    probe.step()?;
    let first_call = t.elapsed().as_secs_f64() * 1e3;
    let first_step_ms = started.map(|s| s.elapsed().as_secs_f64() * 1e3);
    let steady = probe.ms()?;
    let mut steps = vec![];
    for &b in &args.batch {
        for &t in threads {
            let ms = if (b, t) == (own, threads[0]) {
                steady
            } else {
                StepProbe::new(plan, b, jit(t))?.ms()?
            };
            steps.push((b, t, ms));
        }
    }
    let mut inference = vec![];
    for &t in threads {
        inference.push((t, inference_ms(plan, args.infer_batch, jit(t))?));
    }
    let mut epochs = vec![];
    if args.samples > 0 {
        for &t in threads {
            epochs.push((t, epoch_seconds(plan, args.samples, jit(t))?));
        }
    }
    let mut interp = StepProbe::new(plan, own, BackendKind::Interp)?;
    let t = Instant::now();
    interp.step()?;
    interp.step()?;
    let interp_ms = t.elapsed().as_secs_f64() * 1e3 / 2.0;
    Ok(Figures {
        model: plan.model.clone(),
        compile_ms: probe.setup_ms + (first_call - steady).max(0.0),
        first_step_ms,
        steps,
        inference,
        epochs,
        interp_ms,
    })
}

fn print_text(f: &Figures, plan: &TrainPlan, args: &BenchArgs) {
    let own = plan.settings.batch_size;
    say!("{}: {}, random data; median of 7 after warm-up", f.model, plan.optimizer());
    if let Some(ms) = f.first_step_ms {
        say!("  process start to first step done  {ms:8.1} ms");
    }
    say!("  compile (training step, batch {own:<4})  {:8.1} ms", f.compile_ms);
    for &(b, t, ms) in &f.steps {
        say!("  train step   batch {b:<5} threads {t}  {ms:8.3} ms");
    }
    for &(t, ms) in &f.inference {
        say!("  inference    batch {:<5} threads {t}  {ms:8.3} ms", args.infer_batch);
    }
    for &(t, s) in &f.epochs {
        say!("  epoch {:>6} samples, batch {own:<4} threads {t}  {s:8.3} s", args.samples);
    }
    let jit_own = f.steps.iter().find(|s| s.0 == own).map(|s| s.2);
    let ratio = jit_own
        .map(|j| format!(" (compiled code {:.0}x faster)", f.interp_ms / j))
        .unwrap_or_default();
    say!("  interpreter  batch {own:<5}            {:8.3} ms{ratio}", f.interp_ms);
}

fn json(f: &Figures, plan: &TrainPlan, args: &BenchArgs) -> String {
    let list = |items: Vec<String>| format!("[{}]", items.join(", "));
    let steps = list(
        f.steps
            .iter()
            .map(|(b, t, ms)| format!("{{\"batch\": {b}, \"threads\": {t}, \"ms\": {ms:.4}}}"))
            .collect(),
    );
    let inference = list(
        f.inference
            .iter()
            .map(|(t, ms)| format!("{{\"batch\": {}, \"threads\": {t}, \"ms\": {ms:.4}}}", args.infer_batch))
            .collect(),
    );
    let epochs = list(
        f.epochs
            .iter()
            .map(|(t, s)| {
                format!(
                    "{{\"samples\": {}, \"batch\": {}, \"threads\": {t}, \"seconds\": {s:.4}}}",
                    args.samples, plan.settings.batch_size
                )
            })
            .collect(),
    );
    format!(
        "{{\"model\": {:?}, \"compile_ms\": {:.3}, \"first_step_ms\": {}, \"steps\": {steps}, \"inference\": {inference}, \"epochs\": {epochs}, \"interp_ms\": {:.4}}}",
        f.model,
        f.compile_ms,
        f.first_step_ms.map_or("null".to_string(), |ms| format!("{ms:.3}")),
        f.interp_ms
    )
}

pub fn bench(args: &BenchArgs, started: Instant) -> i32 {
    let Some(c) = super::load_clean(&args.file) else {
        return 1;
    };
    if c.analysis.plans.is_empty() {
        eprintln!("error: {} has no `train` block to benchmark", args.file.display());
        return 1;
    }
    if args.batch.contains(&0) || args.threads.contains(&0) || args.infer_batch == 0 {
        eprintln!("error: batch sizes and thread counts must be at least 1");
        return 1;
    }
    let mut threads = args.threads.clone();
    if threads.is_empty() {
        threads = vec![1, std::thread::available_parallelism().map_or(1, |n| n.get())];
        threads.dedup();
    }
    for (i, plan) in c.analysis.plans.iter().enumerate() {
        match measure(plan, args, &threads, (i == 0).then_some(started)) {
            Ok(f) if args.json => say!("{}", json(&f, plan, args)),
            Ok(f) => print_text(&f, plan, args),
            Err(e) => {
                eprintln!("error: benchmarking {} failed: {e}", plan.model);
                return 1;
            }
        }
    }
    0
}
