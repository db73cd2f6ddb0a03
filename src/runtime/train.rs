//! The training loop: initialise (or resume), step through shuffled
//! batches with the scheduled learning rate, validate each epoch, stop
//! early when asked. Reporting goes through `Observer`, so the runtime
//! never prints.

use super::backend::{runner, step_runner, BackendKind};
use super::batch::{for_each_batch, rows, Flow};
use super::data::Dataset;
use super::metrics;
use super::schedule::{lr_at, Clock};
use super::split;
use super::step::step_function;
use crate::ir::DType;
use crate::plan::TrainPlan;
use ndarray::{ArrayD, Axis, IxDyn};
use std::time::Instant;

/// Loss and metrics over one pass of a dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    pub loss: f64,
    /// Accuracy in [0, 1], when the task is classification.
    pub accuracy: Option<f64>,
    /// The other metrics the `train` block asks for, in its order.
    pub metrics: Vec<(String, f64)>,
}

impl Scores {
    /// `loss`, `accuracy` or another metric by name.
    pub fn get(&self, name: &str) -> Option<f64> {
        match name {
            "loss" => Some(self.loss),
            "accuracy" => self.accuracy,
            _ => self.metrics.iter().find(|(n, _)| n == name).map(|m| m.1),
        }
    }

    /// Every value by name, loss first.
    pub fn all(&self) -> Vec<(String, f64)> {
        let mut out = vec![("loss".to_string(), self.loss)];
        out.extend(self.accuracy.map(|a| ("accuracy".to_string(), a)));
        out.extend(self.metrics.iter().cloned());
        out
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub epochs: usize,
    pub train: Scores,
    pub validation: Option<Scores>,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    pub seconds: f64,
}

/// Where an epoch is, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct BatchProgress {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
    /// Mean loss over the epoch's batches so far.
    pub running_loss: f64,
    pub samples: usize,
}

/// Receives progress; the CLI prints it and writes checkpoints.
pub trait Observer {
    fn batch(&mut self, _p: &BatchProgress) {}
    /// After each epoch, with the weights at its end.
    fn epoch(&mut self, _r: &EpochReport, _w: &Weights) -> Result<(), String> {
        Ok(())
    }
    /// Validation samples evaluated so far, after each batch.
    fn validation(&mut self, _done: usize, _total: usize) {}
    /// When early stopping sees a new best epoch (after `epoch`), with its
    /// weights: a resumed run needs them to end on the best epoch.
    fn best(&mut self, _w: &Weights) -> Result<(), String> {
        Ok(())
    }
}

/// Parameters and optimizer state of a model being trained.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub names: Vec<String>,
    pub params: Vec<ArrayD<f32>>,
    /// `fc1.W/m`: parameter and state name, in `states` order.
    pub state_names: Vec<String>,
    pub states: Vec<ArrayD<f32>>,
    /// Steps taken so far.
    pub step: usize,
    /// Epochs completed so far.
    pub epoch: usize,
}

#[derive(Debug)]
pub struct Outcome {
    pub weights: Weights,
    /// Every epoch so far, including those before a resume.
    pub history: Vec<EpochReport>,
    /// Set when training stopped on a non-finite loss.
    pub diverged: Option<String>,
    /// Set when early stopping ended the run: which epoch's weights were kept.
    pub stopped_early: Option<String>,
    /// Set when `TrainOptions::stop` ended the run after a completed step;
    /// `weights` are those of that step (resumable: `Weights::step` says
    /// how far into the next epoch it got).
    pub interrupted: bool,
}

pub struct Splits {
    pub train: Dataset,
    pub validation: Option<Dataset>,
    pub test: Option<Dataset>,
    /// The statistics `standardize = true` applied (fitted on `train`);
    /// new samples need the same.
    pub standardizer: Option<split::Standardizer>,
}

/// How to run a plan beyond what its `train` block says.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub backend: BackendKind,
    /// Use only the first `limit` training samples (quick runs, tests).
    pub limit: Option<usize>,
    /// Override the block's `epochs`.
    pub epochs: Option<usize>,
    /// Continue from these weights and this history (`--resume`).
    pub resume: Option<(Weights, Vec<EpochReport>)>,
    /// With `resume`: the weights of the best epoch so far, saved through
    /// `Observer::best`, for early stopping to return.
    pub resume_best: Option<Weights>,
    /// Checked after every batch: when set (Ctrl-C), training stops after
    /// the step in progress and returns its weights.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl TrainOptions {
    pub fn new(backend: BackendKind) -> TrainOptions {
        TrainOptions {
            backend,
            limit: None,
            epochs: None,
            resume: None,
            resume_best: None,
            stop: None,
        }
    }
}

/// Run the plan's init function: initial parameters and optimizer states.
pub fn initial_weights(plan: &TrainPlan) -> Result<Weights, String> {
    let mut init = runner(BackendKind::Interp, &plan.init);
    let out = init.call(&[])?;
    let n = plan.params.len();
    Ok(Weights {
        names: plan.params.iter().map(|p| p.name.clone()).collect(),
        params: out[..n].to_vec(),
        state_names: plan.state_names().map(|(n, _)| n.clone()).collect(),
        states: out[n..].to_vec(),
        step: 0,
        epoch: 0,
    })
}

/// Correct predictions in a batch: argmax against class labels, or a 0.5
/// threshold for a single sigmoid output against 0/1 targets.
pub fn correct(output: &ArrayD<f32>, y: &ArrayD<f32>) -> usize {
    let n = output.shape()[0];
    let width = output.len() / n.max(1);
    let out = output.as_standard_layout();
    let out = out.as_slice().expect("standard layout");
    let y = y.as_standard_layout();
    let y = y.as_slice().expect("standard layout");
    let one_label_per_row = y.len() == n;
    // A label per position (`y: [n, steps]` against `[n, steps, classes]`):
    // each position's argmax is one prediction.
    let labels_per_row = y.len() / n.max(1);
    if labels_per_row > 1 && width > labels_per_row && width.is_multiple_of(labels_per_row) {
        let classes = width / labels_per_row;
        return out
            .chunks_exact(classes)
            .zip(y)
            .filter(|&(row, &label)| argmax(row) as f32 == label)
            .count();
    }
    out.chunks_exact(width.max(1))
        .enumerate()
        .filter(|&(i, row)| {
            if width == 1 {
                let pred = if row[0] >= 0.5 { 1.0 } else { 0.0 };
                pred == y[i]
            } else if one_label_per_row {
                argmax(row) as f32 == y[i]
            } else {
                // Multi-column targets: every thresholded column must match.
                let targets = &y[i * width..(i + 1) * width];
                row.iter().zip(targets).all(|(&o, &t)| (o >= 0.5) == (t >= 0.5))
            }
        })
        .count()
}

/// The first index of the largest value.
fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) })
        .0
}

/// Whether a plan classifies (integer labels, or 0/1 targets such as a
/// sigmoid's or one-hot rows) rather than regresses.
pub fn is_classification(plan: &TrainPlan, y: &ArrayD<f32>) -> bool {
    plan.label.dtype == DType::I32 || y.iter().all(|v| *v == 0.0 || *v == 1.0)
}

/// Accumulates a pass over a dataset, batch by batch.
struct Tally {
    loss: f64,
    n: usize,
    hits: usize,
    outputs: Vec<ArrayD<f32>>,
    targets: Vec<ArrayD<f32>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            loss: 0.0,
            n: 0,
            hits: 0,
            outputs: vec![],
            targets: vec![],
        }
    }

    fn add(&mut self, loss: f64, output: ArrayD<f32>, y: ArrayD<f32>) {
        let b = y.shape()[0];
        self.loss += loss * b as f64;
        self.n += b;
        self.hits += correct(&output, &y);
        self.outputs.push(output);
        self.targets.push(y);
    }

    fn running_loss(&self) -> f64 {
        self.loss / self.n.max(1) as f64
    }

    fn concat(parts: &[ArrayD<f32>]) -> Result<ArrayD<f32>, String> {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| e.to_string())
    }

    /// The scores the plan asks for; a metric that does not apply to this
    /// output (precision of a regression) is left out.
    fn finish(self, plan: &TrainPlan) -> Result<(Scores, ArrayD<f32>, ArrayD<f32>), String> {
        let out = Tally::concat(&self.outputs)?;
        let y = Tally::concat(&self.targets)?;
        let classify = is_classification(plan, &y);
        let mut extra = vec![];
        let confusion = if classify { metrics::confusion_matrix(&out, &y).ok() } else { None };
        for m in &plan.settings.metrics {
            let v = match (m.as_str(), &confusion) {
                ("precision", Some(c)) => Some(c.macro_scores().precision),
                ("recall", Some(c)) => Some(c.macro_scores().recall),
                ("f1", Some(c)) => Some(c.macro_scores().f1),
                ("mse", _) => metrics::mse(&out, &y).ok(),
                ("mae", _) => metrics::mae(&out, &y).ok(),
                ("r2", _) => metrics::r2(&out, &y).ok(),
                // The loss is the mean cross-entropy per predicted token.
                ("perplexity", _) => Some(self.running_loss().exp()),
                _ => None,
            };
            extra.extend(v.map(|v| (m.clone(), v)));
        }
        let scores = Scores {
            loss: self.running_loss(),
            accuracy: classify.then(|| self.hits as f64 / self.n.max(1) as f64),
            metrics: extra,
        };
        Ok((scores, out, y))
    }
}

/// Scores of the current weights on a dataset, with the model's outputs
/// and the targets (for a confusion matrix). `progress(done, total)` is
/// told the samples evaluated after each batch.
pub fn evaluate_outputs(
    plan: &TrainPlan,
    backend: BackendKind,
    w: &Weights,
    data: &Dataset,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Scores, ArrayD<f32>, ArrayD<f32>), String> {
    let mut loss_fn = runner(backend, &plan.evaluation()?.loss);
    let n = data.x.shape()[0];
    if n == 0 {
        return Err("the dataset is empty".into());
    }
    let bs = plan.settings.batch_size.max(1);
    let mut tally = Tally::new();
    let mut start = 0;
    while start < n {
        let idx: Vec<usize> = (start..(start + bs).min(n)).collect();
        let (x, y) = (rows(&data.x, &idx), rows(&data.y, &idx));
        let mut args = vec![&x, &y];
        args.extend(w.params.iter());
        let mut out = loss_fn.call(&args)?;
        let loss = f64::from(out[0].iter().next().copied().unwrap_or(f32::NAN));
        tally.add(loss, out.swap_remove(1), y);
        start += bs;
        progress(start.min(n), n);
    }
    tally.finish(plan)
}

/// Loss and metrics of the current weights on a dataset, in batches.
pub fn evaluate(plan: &TrainPlan, backend: BackendKind, w: &Weights, data: &Dataset) -> Result<Scores, String> {
    Ok(evaluate_outputs(plan, backend, w, data, &mut |_, _| {})?.0)
}

/// Tracks the monitored value for early stopping.
struct Patience {
    monitor: String,
    patience: usize,
    best: Option<(f64, usize, Weights)>,
}

impl Patience {
    /// Losses and errors improve downwards; accuracy and the rest upwards.
    fn lower_is_better(&self) -> bool {
        let base = self.monitor.strip_prefix("val_").unwrap_or(&self.monitor);
        matches!(base, "loss" | "mse" | "mae")
    }

    /// The monitored value of an epoch: `val_*` from the validation scores,
    /// falling back to training scores when there is no validation split.
    fn value(&self, r: &EpochReport) -> Option<f64> {
        match self.monitor.strip_prefix("val_") {
            Some(m) => r.validation.as_ref().unwrap_or(&r.train).get(m),
            None => r.train.get(&self.monitor),
        }
    }

    /// Record an epoch; `true` when training should stop.
    fn update(&mut self, r: &EpochReport, w: &Weights) -> bool {
        let Some(v) = self.value(r) else { return false };
        let better = match &self.best {
            None => true,
            Some((b, _, _)) => {
                if self.lower_is_better() {
                    v < *b
                } else {
                    v > *b
                }
            }
        };
        if better {
            self.best = Some((v, r.epoch, w.clone()));
        }
        self.best.as_ref().is_some_and(|(_, e, _)| r.epoch - e >= self.patience)
    }
}

/// Train as the plan says, reporting to `obs`.
pub fn train(plan: &TrainPlan, backend: BackendKind, splits: &Splits, obs: &mut dyn Observer) -> Result<Outcome, String> {
    train_with(plan, splits, &TrainOptions::new(backend), obs)
}

/// Train with options: a sample limit, an epoch override, a resume point.
pub fn train_with(plan: &TrainPlan, splits: &Splits, opts: &TrainOptions, obs: &mut dyn Observer) -> Result<Outcome, String> {
    let mut runners: Vec<Box<dyn super::backend::StepRunner>> = (0..plan.steps.len())
        .map(|k| step_runner(opts.backend, &step_function(plan, k).0))
        .collect();
    let (mut w, mut history) = match &opts.resume {
        Some((w, h)) => (w.clone(), h.clone()),
        None => (initial_weights(plan)?, vec![]),
    };
    let s = &plan.settings;
    let epochs = opts.epochs.unwrap_or(s.epochs);
    let limited;
    let train_set = match opts.limit {
        Some(l) if l < splits.train.len() => {
            limited = split::take(&splits.train, &(0..l).collect::<Vec<_>>());
            &limited
        }
        _ => &splits.train,
    };
    let n = train_set.len();
    if n == 0 {
        return Err("the training set is empty".into());
    }
    let mut patience = s.early_stop.as_ref().map(|e| Patience {
        monitor: e.monitor.clone(),
        patience: e.patience,
        best: None,
    });
    // A resumed run keeps counting patience from its history. The best
    // epoch's weights come from `resume_best` when they were saved; the last
    // weights stand in otherwise (and the stop message says so).
    if let Some(p) = patience.as_mut() {
        for r in &history {
            p.update(r, &w);
        }
        if let (Some((_, epoch, kept)), Some(saved)) = (p.best.as_mut(), &opts.resume_best) {
            if saved.epoch == *epoch {
                *kept = saved.clone();
            }
        }
    }
    let per_step = plan.states_per_step();
    let steps_per_epoch = n.div_ceil(s.batch_size.max(1));
    let single = plan.steps.len() == 1;
    let mut lr = plan.steps[0].lr.unwrap_or(0.0);
    for epoch in w.epoch + 1..=epochs {
        let t0 = Instant::now();
        let order = split::shuffle_indices(n, s.seed, epoch as u64);
        let batches: Vec<&[usize]> = order.chunks(s.batch_size.max(1)).collect();
        let mut tally = Tally::new();
        let mut step_losses = vec![(0.0f64, 0usize); plan.steps.len()];
        // Parameters, and each step's optimizer states; updated in place.
        let mut params = std::mem::take(&mut w.params);
        let mut states: Vec<Vec<ArrayD<f32>>> = vec![];
        let mut rest = std::mem::take(&mut w.states);
        for &k in per_step.iter().rev() {
            states.push(rest.split_off(rest.len() - k));
        }
        states.reverse();
        let mut diverged = None;
        let mut interrupted = false;
        let mut seen = 0;
        // A run interrupted mid-epoch resumes at the batch after its last
        // step, in the same shuffled order, so its weights continue exactly.
        let done = w.step.saturating_sub(w.epoch * steps_per_epoch).min(batches.len());
        let batches = &batches[done..];
        for_each_batch(train_set, batches, |bi, x, y| {
            let bi = bi + done;
            let batch_no = w.step + 1;
            for (k, sp) in plan.steps.iter().enumerate() {
                if batch_no % sp.every != 0 {
                    continue;
                }
                let clock = Clock {
                    step: w.step,
                    steps_per_epoch,
                    epochs,
                };
                lr = lr_at(&s.schedule, sp.lr.unwrap_or(0.0), s.warmup, clock);
                // This step's own count: Adam's bias correction and the key
                // of its random draws, derived from the batch count so a
                // resume continues it exactly.
                let stepv = ArrayD::from_elem(IxDyn(&[]), (batch_no / sp.every) as f32);
                let lrv = ArrayD::from_elem(IxDyn(&[]), lr as f32);
                let np = params.len();
                let mut weights = std::mem::take(&mut params);
                weights.append(&mut states[k]);
                let result = runners[k].step([x.view(), y.view(), stepv.view(), lrv.view()], &mut weights);
                states[k] = weights.split_off(np);
                params = weights;
                let (loss, output) = result?;
                let loss = f64::from(loss);
                if !loss.is_finite() {
                    // The step left the weights as they were; report where.
                    let which = if single { String::new() } else { format!(" of step `{}`", sp.name) };
                    diverged = Some(format!(
                        "the loss{which} became {loss} at epoch {epoch}, step {} (batch {} of {}); the last finite weights are kept",
                        w.step + 1,
                        bi + 1,
                        batches.len() + done
                    ));
                    return Ok(Flow::Stop);
                }
                step_losses[k].0 += loss;
                step_losses[k].1 += 1;
                if single {
                    tally.add(loss, output, y.to_owned());
                }
            }
            w.step += 1;
            seen += y.shape()[0];
            let running_loss = if single {
                tally.running_loss()
            } else {
                step_losses[0].0 / step_losses[0].1.max(1) as f64
            };
            obs.batch(&BatchProgress {
                epoch,
                epochs,
                batch: bi + 1,
                batches: batches.len() + done,
                running_loss,
                samples: seen,
            });
            if opts.stop.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
                interrupted = true;
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        })?;
        w.params = params;
        w.states = states.into_iter().flatten().collect();
        if diverged.is_some() || interrupted {
            return Ok(Outcome {
                weights: w,
                history,
                diverged,
                stopped_early: None,
                interrupted,
            });
        }
        w.epoch = epoch;
        let train = if single {
            tally.finish(plan)?.0
        } else {
            // A block of steps: each step's mean loss (`discriminator_loss`).
            let mean = |(sum, count): (f64, usize)| sum / count.max(1) as f64;
            Scores {
                loss: mean(step_losses[0]),
                accuracy: None,
                metrics: plan
                    .steps
                    .iter()
                    .zip(&step_losses)
                    .map(|(sp, l)| (format!("{}_loss", sp.name), mean(*l)))
                    .collect(),
            }
        };
        let validation = match (&splits.validation, single) {
            (Some(v), true) if !v.is_empty() => {
                let mut progress = |done, total| obs.validation(done, total);
                Some(evaluate_outputs(plan, opts.backend, &w, v, &mut progress)?.0)
            }
            _ => None,
        };
        let r = EpochReport {
            epoch,
            epochs,
            train,
            validation,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        };
        obs.epoch(&r, &w)?;
        history.push(r);
        let Some(p) = patience.as_mut() else { continue };
        let stop = p.update(history.last().expect("just pushed"), &w);
        if p.best.as_ref().is_some_and(|(_, e, _)| *e == epoch) {
            obs.best(&w)?;
        }
        if stop {
            let (v, best_epoch, best) = p.best.clone().expect("stopping implies a best epoch");
            let kept = if best.epoch == best_epoch {
                format!("kept the weights of epoch {best_epoch} ({} {v:.4})", p.monitor)
            } else {
                format!(
                    "the best was epoch {best_epoch} ({} {v:.4}), before the resume, and its weights were not saved; kept those of epoch {}",
                    p.monitor, best.epoch
                )
            };
            let msg = format!("{} did not improve for {} epochs; {kept}", p.monitor, p.patience);
            return Ok(Outcome {
                weights: best,
                history,
                diverged: None,
                stopped_early: Some(msg),
                interrupted: false,
            });
        }
    }
    Ok(Outcome {
        weights: w,
        history,
        diverged: None,
        stopped_early: None,
        interrupted: false,
    })
}

/// The block's `sample =` images for the current weights (evaluation mode).
pub fn sample(plan: &TrainPlan, backend: BackendKind, w: &Weights) -> Result<Option<ArrayD<f32>>, String> {
    let Some(f) = &plan.sample else { return Ok(None) };
    let args: Vec<&ArrayD<f32>> = w.params.iter().collect();
    Ok(Some(runner(backend, f).call(&args)?.remove(0)))
}

/// The model's outputs for every row of `x`.
pub fn predict(plan: &TrainPlan, backend: BackendKind, w: &Weights, x: &ArrayD<f32>) -> Result<ArrayD<f32>, String> {
    predict_with(plan, None, backend, w, x)
}

/// `predict` with one of a block's models (`TrainPlan::predict_of`): a
/// GAN's generator on rows of noise.
pub fn predict_with(
    plan: &TrainPlan,
    model: Option<&str>,
    backend: BackendKind,
    w: &Weights,
    x: &ArrayD<f32>,
) -> Result<ArrayD<f32>, String> {
    let mut f = runner(backend, plan.predict_of(model)?);
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
    Tally::concat(&parts)
}
