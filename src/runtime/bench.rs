//! How fast a model trains and predicts (`nnc bench`): random data of the
//! model's declared shapes, run through the same runners and training loop
//! as `nnc run`, so the figures are what a user gets.
//!
//! Times are medians over repeated batches of calls, each batch long enough
//! (~20 ms) that timer resolution does not matter. The machines this runs
//! on are shared, so compare figures taken in one run (the interpreter
//! baseline here, or `bench/peers.py` for other frameworks).

use super::backend::{runner, step_runner, BackendKind, StepRunner};
use super::data::Dataset;
use super::split::CounterRng;
use super::step::training_step;
use super::train::{initial_weights, train_with, Observer, Splits, TrainOptions};
use crate::ir::{DType, Dim, Type};
use crate::plan::TrainPlan;
use ndarray::{ArrayD, IxDyn};
use std::time::Instant;

/// Calls per timed batch are chosen so that one batch takes about this long.
const BATCH_MS: f64 = 20.0;
/// Timed batches; the median is reported.
const REPS: usize = 7;
/// Random inputs larger than this many f32 values (4 GiB) are refused
/// rather than allocated.
const MAX_VALUES: usize = 1 << 30;

/// The concrete shape of `ty` with its batch dim set to `batch`; Err when
/// another dim is symbolic (there is no size to invent for it).
fn concrete(ty: &Type, batch: usize, what: &str) -> Result<Vec<usize>, String> {
    ty.shape
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(n) => Ok(*n),
            Dim::Sym(_) if i == 0 => Ok(batch),
            Dim::Sym(s) => Err(format!(
                "the {what} has a symbolic dim `{s}` besides the batch; benchmarks need fixed sizes"
            )),
        })
        .collect()
}

/// Classes of the model's output (its last dim), for random labels.
fn classes(plan: &TrainPlan) -> usize {
    let Some(ev) = &plan.eval else { return 1 };
    ev.predict
        .results
        .first()
        .and_then(|&r| ev.predict.ty(r).shape.last())
        .and_then(Dim::known)
        .unwrap_or(1)
        .max(1)
}

/// `n` random samples shaped as `plan`'s inputs: features uniform in
/// [0, 1), labels valid for its loss (class ids for integer labels, one-hot
/// rows or 0/1 targets for float ones).
pub fn synthetic(plan: &TrainPlan, n: usize, seed: u64) -> Result<Dataset, String> {
    let mut rng = CounterRng::new(seed, 0xbe9c);
    let xs = concrete(&plan.input, n, "input")?;
    let values = xs.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if values.is_none_or(|v| v > MAX_VALUES) {
        return Err(format!("{n} random samples of shape {:?} would need more than 4 GiB", &xs[1..]));
    }
    let x = ArrayD::from_shape_simple_fn(IxDyn(&xs), || rng.next_f32());
    let ys = concrete(&plan.label, n, "label")?;
    let k = classes(plan);
    let y = match plan.label.dtype {
        DType::I32 => ArrayD::from_shape_simple_fn(IxDyn(&ys), || rng.below(k as u64) as f32),
        DType::F32 if ys.len() == 2 && ys[1] > 1 => {
            let mut y = ArrayD::zeros(IxDyn(&ys));
            for i in 0..n {
                y[[i, rng.below(ys[1] as u64) as usize]] = 1.0;
            }
            y
        }
        DType::F32 => ArrayD::from_shape_simple_fn(IxDyn(&ys), || (rng.next_u64() & 1) as f32),
    };
    let is_class = plan.label.dtype == DType::I32;
    Ok(Dataset {
        x,
        y,
        y_is_class: is_class,
        num_classes: is_class.then_some(k),
        name: "random".into(),
    })
}

/// Median milliseconds per call of `f` over `REPS` timed batches of calls.
fn median_ms(f: &mut dyn FnMut() -> Result<(), String>) -> Result<f64, String> {
    let time = |f: &mut dyn FnMut() -> Result<(), String>, calls: usize| -> Result<f64, String> {
        let t = Instant::now();
        for _ in 0..calls {
            f()?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e3 / calls as f64)
    };
    let one = time(f, 3)?;
    let calls = ((BATCH_MS / one.max(1e-4)) as usize).clamp(1, 10_000);
    time(f, calls)?;
    let mut all = (0..REPS).map(|_| time(f, calls)).collect::<Result<Vec<f64>, String>>()?;
    all.sort_by(f64::total_cmp);
    Ok(all[REPS / 2])
}

/// A training step ready to time: the runner, one batch, the weights.
pub struct StepProbe {
    runner: Box<dyn StepRunner>,
    /// Milliseconds to build the runner (optimising the step's IR); the
    /// rest of compilation happens in the first `step`.
    pub setup_ms: f64,
    x: ArrayD<f32>,
    y: ArrayD<f32>,
    lr: ArrayD<f32>,
    weights: Vec<ArrayD<f32>>,
    step: usize,
}

impl StepProbe {
    pub fn new(plan: &TrainPlan, batch: usize, backend: BackendKind) -> Result<StepProbe, String> {
        let data = synthetic(plan, batch, 7)?;
        let w = initial_weights(plan)?;
        let mut weights = w.params;
        // The first step's optimizer states follow the parameters.
        weights.extend(w.states.into_iter().take(plan.states_per_step()[0]));
        let step_fn = training_step(plan).0;
        let t = Instant::now();
        let runner = step_runner(backend, &step_fn);
        Ok(StepProbe {
            runner,
            setup_ms: t.elapsed().as_secs_f64() * 1e3,
            x: data.x,
            y: data.y,
            lr: ArrayD::from_elem(IxDyn(&[]), plan.steps[0].lr.unwrap_or(0.0) as f32),
            weights,
            step: 0,
        })
    }

    /// One training step (the first compiles); Err on a non-finite loss,
    /// since a step that skips its update would time less work.
    pub fn step(&mut self) -> Result<(), String> {
        self.step += 1;
        let stepv = ArrayD::from_elem(IxDyn(&[]), self.step as f32);
        let inputs = [self.x.view(), self.y.view(), stepv.view(), self.lr.view()];
        let (loss, _) = self.runner.step(inputs, &mut self.weights)?;
        if !loss.is_finite() {
            return Err(format!("the loss became {loss} at step {} on random data", self.step));
        }
        Ok(())
    }

    /// Median milliseconds per step.
    pub fn ms(&mut self) -> Result<f64, String> {
        median_ms(&mut || self.step())
    }
}

/// Median milliseconds per call of the model's forward pass (prediction).
pub fn inference_ms(plan: &TrainPlan, batch: usize, backend: BackendKind) -> Result<f64, String> {
    let data = synthetic(plan, batch, 11)?;
    let w = initial_weights(plan)?;
    let mut f = runner(backend, &plan.evaluation()?.predict);
    let mut args = vec![&data.x];
    args.extend(w.params.iter());
    median_ms(&mut || f.call(&args).map(drop))
}

struct Silent;
impl Observer for Silent {}

/// Seconds for one epoch over `samples` random samples at the file's batch
/// size: shuffling, batching, every step, the epoch's metrics.
pub fn epoch_seconds(plan: &TrainPlan, samples: usize, backend: BackendKind) -> Result<f64, String> {
    let splits = Splits {
        train: synthetic(plan, samples, 13)?,
        validation: None,
        test: None,
        standardizer: None,
    };
    let mut opts = TrainOptions::new(backend);
    opts.epochs = Some(1);
    let out = train_with(plan, &splits, &opts, &mut Silent)?;
    if let Some(msg) = out.diverged {
        return Err(msg);
    }
    Ok(out.history.last().map_or(f64::NAN, |r| r.seconds))
}
