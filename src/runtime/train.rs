//! The training loop: initialise, step through shuffled batches, validate
//! each epoch, evaluate at the end. Reporting goes through `Observer`, so
//! the runtime never prints.

use super::backend::{runner, BackendKind, Runner};
use super::data::Dataset;
use super::split;
use super::step::training_step;
use crate::sema::TrainPlan;
use ndarray::{ArrayD, Axis, IxDyn};
use std::time::Instant;

/// Loss and metrics over one pass of a dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    pub loss: f64,
    /// Accuracy in [0, 1], when the task is classification.
    pub accuracy: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct EpochReport {
    pub epoch: usize,
    pub epochs: usize,
    pub train: Scores,
    pub validation: Option<Scores>,
    pub seconds: f64,
}

/// Receives progress; the CLI prints it.
pub trait Observer {
    fn epoch(&mut self, _r: &EpochReport) {}
    fn batch(&mut self, _epoch: usize, _done: usize, _total: usize, _loss: f64) {}
}

/// Parameters and optimizer state of a model being trained.
#[derive(Clone, Debug)]
pub struct Weights {
    pub names: Vec<String>,
    pub params: Vec<ArrayD<f32>>,
    pub states: Vec<ArrayD<f32>>,
    pub step: usize,
}

#[derive(Debug)]
pub struct Outcome {
    pub weights: Weights,
    pub history: Vec<EpochReport>,
    /// Set when training stopped early on a non-finite loss.
    pub diverged: Option<String>,
}

pub struct Splits {
    pub train: Dataset,
    pub validation: Option<Dataset>,
    pub test: Option<Dataset>,
}

/// Run the plan's init function: initial parameters and optimizer states.
pub fn initial_weights(plan: &TrainPlan) -> Result<Weights, String> {
    let mut init = runner(BackendKind::Interp, &plan.init);
    let out = init.call(&[])?;
    let n = plan.params.len();
    Ok(Weights {
        names: plan.params.iter().map(|p| p.name.clone()).collect(),
        params: out[..n].to_vec(),
        states: out[n..].to_vec(),
        step: 0,
    })
}

/// Rows `idx` of `a` (a batch).
fn rows(a: &ArrayD<f32>, idx: &[usize]) -> ArrayD<f32> {
    a.select(Axis(0), idx)
}

/// Correct predictions in a batch: argmax against class labels, or a 0.5
/// threshold for a single sigmoid output against 0/1 targets.
pub fn correct(output: &ArrayD<f32>, y: &ArrayD<f32>) -> usize {
    let n = output.shape()[0];
    let width = output.len() / n.max(1);
    let out = output.view().into_shape_with_order(IxDyn(&[n, width])).expect("contiguous output");
    let mut hits = 0;
    for i in 0..n {
        let row = out.index_axis(Axis(0), i);
        if width == 1 {
            let pred = if row[0] >= 0.5 { 1.0 } else { 0.0 };
            hits += usize::from(pred == y.as_slice().map_or(0.0, |s| s[i]));
        } else if y.ndim() == 1 {
            let arg = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) })
                .0;
            hits += usize::from(arg as f32 == y[[i]]);
        } else {
            // Multi-column targets: every thresholded column must match.
            let ok = (0..width).all(|j| (row[j] >= 0.5) == (y[[i, j]] >= 0.5));
            hits += usize::from(ok);
        }
    }
    hits
}

/// Loss and accuracy of the current weights on a dataset, in batches.
pub fn evaluate(plan: &TrainPlan, backend: BackendKind, w: &Weights, data: &Dataset) -> Result<Scores, String> {
    let mut loss_fn = runner(backend, &plan.loss);
    let n = data.x.shape()[0];
    let bs = plan.settings.batch_size.max(1);
    let (mut total, mut hits) = (0.0, 0usize);
    let mut start = 0;
    while start < n {
        let idx: Vec<usize> = (start..(start + bs).min(n)).collect();
        let (x, y) = (rows(&data.x, &idx), rows(&data.y, &idx));
        let mut args = vec![&x, &y];
        args.extend(w.params.iter());
        let out = loss_fn.call(&args)?;
        total += f64::from(out[0].iter().next().copied().unwrap_or(f32::NAN)) * idx.len() as f64;
        hits += correct(&out[1], &y);
        start += bs;
    }
    Ok(Scores {
        loss: total / n.max(1) as f64,
        accuracy: Some(hits as f64 / n.max(1) as f64),
    })
}

/// Train as the plan says, reporting to `obs`.
pub fn train(plan: &TrainPlan, backend: BackendKind, splits: &Splits, obs: &mut dyn Observer) -> Result<Outcome, String> {
    let (step_fn, layout) = training_step(plan);
    let mut step: Box<dyn Runner> = runner(backend, &step_fn);
    let mut w = initial_weights(plan)?;
    let s = &plan.settings;
    let n = splits.train.x.shape()[0];
    if n == 0 {
        return Err("the training set is empty".into());
    }
    let _ = &layout;
    let mut history = vec![];
    let np = w.params.len();
    for epoch in 1..=s.epochs {
        let t0 = Instant::now();
        let order = split::shuffle_indices(n, s.seed, epoch as u64);
        let batches: Vec<&[usize]> = order.chunks(s.batch_size.max(1)).collect();
        let (mut total, mut hits) = (0.0, 0usize);
        for (bi, idx) in batches.iter().enumerate() {
            let (x, y) = (rows(&splits.train.x, idx), rows(&splits.train.y, idx));
            let stepv = ArrayD::from_elem(IxDyn(&[]), (w.step + 1) as f32);
            let mut args: Vec<&ArrayD<f32>> = vec![&x, &y, &stepv];
            args.extend(w.params.iter());
            args.extend(w.states.iter());
            let out = step.call(&args)?;
            let loss = f64::from(out[0].iter().next().copied().unwrap_or(f32::NAN));
            if !loss.is_finite() {
                // Keep the last good weights; report where it happened.
                let msg = format!(
                    "the loss became {loss} at epoch {epoch}, step {} (batch {} of {}); the last finite weights are kept",
                    w.step + 1,
                    bi + 1,
                    batches.len()
                );
                return Ok(Outcome {
                    weights: w,
                    history,
                    diverged: Some(msg),
                });
            }
            total += loss * idx.len() as f64;
            hits += correct(&out[1], &y);
            let mut rest = out.into_iter().skip(2);
            w.params = rest.by_ref().take(np).collect();
            w.states = rest.collect();
            w.step += 1;
            obs.batch(epoch, bi + 1, batches.len(), loss);
        }
        let train = Scores {
            loss: total / n as f64,
            accuracy: Some(hits as f64 / n as f64),
        };
        let validation = match &splits.validation {
            Some(v) if v.x.shape()[0] > 0 => Some(evaluate(plan, backend, &w, v)?),
            _ => None,
        };
        let r = EpochReport {
            epoch,
            epochs: s.epochs,
            train,
            validation,
            seconds: t0.elapsed().as_secs_f64(),
        };
        obs.epoch(&r);
        history.push(r);
    }
    Ok(Outcome {
        weights: w,
        history,
        diverged: None,
    })
}

/// The model's outputs for every row of `x`.
pub fn predict(plan: &TrainPlan, backend: BackendKind, w: &Weights, x: &ArrayD<f32>) -> Result<ArrayD<f32>, String> {
    let mut f = runner(backend, &plan.predict);
    let n = x.shape()[0];
    let bs = plan.settings.batch_size.max(1);
    let mut parts = vec![];
    let mut start = 0;
    while start < n {
        let idx: Vec<usize> = (start..(start + bs).min(n)).collect();
        let xb = rows(x, &idx);
        let mut args = vec![&xb];
        args.extend(w.params.iter());
        parts.push(f.call(&args)?.remove(0));
        start += bs;
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views).map_err(|e| e.to_string())
}
