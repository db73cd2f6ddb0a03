//! `nnc trace`: one training step through the interpreter (f64, the
//! oracle), with every value of the forward pass, the backward pass and
//! the update, named where the textbook has a name for it.
//!
//! The step is composed here as `runtime::step` composes it (the loss, then
//! `autodiff`, then the optimizer's update per parameter), but with the
//! instructions copied one by one so each keeps a known origin: forward
//! values are named as in `nnc explain --grad` (`z¹`, `a¹`), and the
//! adjoints autodiff created for them as `δ¹`, `∂L/∂a¹`. The step number and
//! learning rate are constants of the traced function.
//!
//! Weights before step `K` are the ones `nnc run` would have: the first
//! `K - 1` steps are replayed with the same batches and learning rates.

use super::backward::derive;
use super::notation::{adjoint_name, name, Format, Name};
use crate::ir::{self, interp, Builder, Func, Op, Value};
use crate::runtime::batch::rows;
use crate::runtime::data::Dataset;
use crate::runtime::schedule::{lr_at, Clock};
use crate::runtime::split::shuffle_indices;
use crate::runtime::train::{initial_weights, Weights};
use crate::sema::TrainPlan;
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Forward,
    Backward,
    Update,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Update => "update",
        }
    }
}

/// A summary of a tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    pub shape: Vec<usize>,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    /// The first few entries in row-major order.
    pub first: Vec<f64>,
}

pub const FIRST: usize = 4;

impl Stat {
    pub fn of(a: &ArrayD<f64>) -> Stat {
        let n = a.len().max(1) as f64;
        Stat {
            shape: a.shape().to_vec(),
            min: a.iter().copied().fold(f64::INFINITY, f64::min),
            mean: a.iter().sum::<f64>() / n,
            max: a.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            first: a.iter().take(FIRST).copied().collect(),
        }
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub phase: Phase,
    /// `v12` in the traced function.
    pub value: String,
    /// `z¹`, `δ¹`, `∂L/∂W¹`, `W¹ (new)`, when it has one.
    pub name: Option<String>,
    /// The instruction: `matmul v0, v4`.
    pub op: String,
    /// For updates: which parameter (`fc1.W`).
    pub param: Option<String>,
    pub stat: Stat,
}

#[derive(Clone, Debug)]
pub struct Change {
    pub param: String,
    pub symbol: Option<String>,
    pub before: Stat,
    pub after: Stat,
    /// after - before.
    pub delta: Stat,
}

#[derive(Clone, Debug)]
pub struct Trace {
    pub model: String,
    /// 1-based, as `nnc run` counts.
    pub step: usize,
    pub epoch: usize,
    pub lr: f64,
    pub optimizer: String,
    /// Rows of the training split in the traced batch.
    pub samples: Vec<usize>,
    pub loss: f64,
    pub nodes: Vec<Node>,
    pub changes: Vec<Change>,
}

/// Which step to trace.
#[derive(Clone, Debug)]
pub struct TraceRequest {
    /// 1-based step of training (`nnc run`'s count over all epochs).
    pub step: usize,
    /// Trace this one training sample instead of the step's batch.
    pub sample: Option<usize>,
}

/// Why a request cannot be traced.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceError {
    /// `--step` past the last step of training: (step, steps).
    StepOutOfRange(usize, usize),
    /// `--sample` past the training split: (sample, samples).
    SampleOutOfRange(usize, usize),
    Run(String),
}

fn to_f64(a: &ArrayD<f32>) -> ArrayD<f64> {
    a.mapv(f64::from)
}

fn schedule_clock(plan: &TrainPlan, step: usize, steps_per_epoch: usize) -> f64 {
    let s = &plan.settings;
    let clock = Clock {
        step,
        steps_per_epoch,
        epochs: s.epochs,
    };
    lr_at(&s.schedule, plan.steps[0].lr.unwrap_or(0.0), s.warmup, clock)
}

/// The rows of step `k` (0-based over all epochs), as `nnc run` shuffles them.
fn batch_rows(plan: &TrainPlan, n: usize, k: usize) -> Vec<usize> {
    let bs = plan.settings.batch_size.max(1);
    let steps_per_epoch = n.div_ceil(bs);
    let epoch = k / steps_per_epoch + 1;
    let order = shuffle_indices(n, plan.settings.seed, epoch as u64);
    order.chunks(bs).nth(k % steps_per_epoch).map(<[usize]>::to_vec).unwrap_or_default()
}

/// Trace step `req.step` of training `plan` on `train`.
pub fn trace(plan: &TrainPlan, train: &Dataset, req: &TraceRequest) -> Result<Trace, TraceError> {
    if plan.steps.len() != 1 {
        return Err(TraceError::Run(
            "tracing needs a train block with one loss, not several steps".into(),
        ));
    }
    plan.evaluation().map_err(TraceError::Run)?;
    let n = train.len();
    let bs = plan.settings.batch_size.max(1);
    let steps_per_epoch = n.div_ceil(bs).max(1);
    let steps = steps_per_epoch * plan.settings.epochs;
    if req.step == 0 || req.step > steps {
        return Err(TraceError::StepOutOfRange(req.step, steps));
    }
    if let Some(s) = req.sample {
        if s >= n {
            return Err(TraceError::SampleOutOfRange(s, n));
        }
    }
    let mut w = initial_weights(plan).map_err(TraceError::Run)?;
    replay(plan, train, req.step - 1, steps_per_epoch, &mut w).map_err(TraceError::Run)?;

    let k = req.step - 1;
    let samples = match req.sample {
        Some(s) => vec![s],
        None => batch_rows(plan, n, k),
    };
    let lr = schedule_clock(plan, k, steps_per_epoch);
    let (func, outputs, origin) = traced_step(plan, req.step, lr);
    let mut args = vec![to_f64(&rows(&train.x, &samples)), to_f64(&rows(&train.y, &samples))];
    args.extend(w.params.iter().map(to_f64));
    args.extend(w.states.iter().map(to_f64));
    // Shape the inputs as the plan declares them (a CSV row is flat).
    for (a, &p) in args.iter_mut().zip(&func.params).take(2) {
        let mut shape: Vec<usize> = vec![samples.len()];
        shape.extend(func.ty(p).shape.iter().skip(1).map(|d| d.known().unwrap_or(1)));
        if a.len() == shape.iter().product::<usize>() {
            *a = a
                .clone()
                .into_shape_with_order(IxDyn(&shape))
                .map_err(|e| TraceError::Run(e.to_string()))?;
        }
    }
    let values = interp::run(&func, &args).map_err(TraceError::Run)?;

    // The inputs: the batch and the parameters (optimizer states are
    // shown where the update reads them).
    let mut nodes = vec![];
    for (i, (&p, pname)) in func.params.iter().zip(&func.param_names).enumerate() {
        let np = 2 + plan.params.len();
        nodes.push(Node {
            phase: Phase::Forward,
            value: p.to_string(),
            name: origin[p.index()].name.clone(),
            op: match i {
                0 | 1 => "input".into(),
                i if i < np => format!("param {pname}"),
                _ => format!("state {pname}"),
            },
            param: None,
            stat: Stat::of(&args[i]),
        });
    }
    for (inst, v) in func.insts.iter().zip(&values) {
        let o = &origin[inst.result.index()];
        if o.hidden {
            continue;
        }
        // Constants are not listed: their value stands where they are used.
        let arg_names: Vec<String> = inst
            .args
            .iter()
            .map(|&a| match constant_of(&func, a) {
                Some(x) if origin[a.index()].hidden => super::trace_text::num(x),
                _ => a.to_string(),
            })
            .collect();
        let op = match &inst.op {
            Op::Const(x) => format!("const {x}"),
            op => format!("{} {}{}", op.name(), arg_names.join(", "), ir::op_attrs(op))
                .trim_end()
                .to_string(),
        };
        nodes.push(Node {
            phase: o.phase,
            value: inst.result.to_string(),
            name: o.name.clone(),
            op,
            param: o.param.clone(),
            stat: Stat::of(v),
        });
    }
    let index_of = |v: Value| func.insts.iter().position(|i| i.result == v);
    let loss = index_of(outputs[0]).map_or(f64::NAN, |i| values[i].iter().next().copied().unwrap_or(f64::NAN));
    let mut changes = vec![];
    for (pi, p) in plan.params.iter().enumerate() {
        let Some(&new) = outputs.get(1 + pi) else { continue };
        let before = &args[2 + pi];
        let after = match index_of(new) {
            Some(i) => values[i].clone(),
            None => before.clone(),
        };
        changes.push(Change {
            param: p.name.clone(),
            symbol: origin[func.params[2 + pi].index()].name.clone(),
            before: Stat::of(before),
            delta: Stat::of(&(&after - before)),
            after: Stat::of(&after),
        });
    }
    Ok(Trace {
        model: plan.model.clone(),
        step: req.step,
        epoch: k / steps_per_epoch + 1,
        lr,
        optimizer: plan.optimizer().to_string(),
        samples,
        loss,
        nodes,
        changes,
    })
}

/// The value of a constant, or of a constant broadcast to a shape.
fn constant_of(f: &Func, v: Value) -> Option<f64> {
    match f.def(v).map(|i| (&i.op, &i.args)) {
        Some((Op::Const(x), _)) => Some(*x),
        Some((Op::Broadcast { .. }, args)) => constant_of(f, args[0]),
        _ => None,
    }
}

/// The first `count` steps of training, with the interpreter, so the weights
/// are those `nnc run` has before the traced step.
fn replay(plan: &TrainPlan, train: &Dataset, count: usize, steps_per_epoch: usize, w: &mut Weights) -> Result<(), String> {
    if count == 0 {
        return Ok(());
    }
    let (step_fn, _) = crate::runtime::step::training_step(plan);
    let mut runner = crate::runtime::backend::step_runner(crate::runtime::backend::BackendKind::Interp, &step_fn);
    let mut weights = std::mem::take(&mut w.params);
    let np = weights.len();
    weights.append(&mut w.states);
    for k in 0..count {
        let idx = batch_rows(plan, train.len(), k);
        let (x, y) = (rows(&train.x, &idx), rows(&train.y, &idx));
        let stepv = ArrayD::from_elem(IxDyn(&[]), (k + 1) as f32);
        let lrv = ArrayD::from_elem(IxDyn(&[]), schedule_clock(plan, k, steps_per_epoch) as f32);
        runner.step([x.view(), y.view(), stepv.view(), lrv.view()], &mut weights)?;
    }
    w.states = weights.split_off(np);
    w.params = weights;
    w.step = count;
    Ok(())
}

/// Where a value of the traced function came from.
#[derive(Clone, Debug)]
struct Origin {
    phase: Phase,
    name: Option<String>,
    param: Option<String>,
    /// Constants and their broadcasts: not worth a line.
    hidden: bool,
}

/// `(x, y, params..., states...) -> every value`, the values of the step's
/// results (loss, new params..., new states...), and the origin of every value.
fn traced_step(plan: &TrainPlan, step: usize, lr: f64) -> (Func, Vec<Value>, Vec<Origin>) {
    let d = derive(plan);
    let names = d.names;
    let text = |n: &Name| name(n, Format::Text);
    let mut b = Builder::new("traced_step");
    // `trace` checks that the block has one loss (`plan.evaluation()`).
    let loss = &plan.eval.as_ref().expect("a train block with one loss").loss;
    let updates = &plan.steps[0].updates;
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (&p, pname) in loss.params.iter().zip(&loss.param_names) {
        map.insert(p, b.param(pname.clone(), loss.ty(p).clone()));
    }
    let mut states: Vec<Vec<Value>> = vec![];
    for s in updates.iter().map(|u| &u.states) {
        states.push(s.iter().map(|(n, t)| b.param(n.clone(), t.clone())).collect());
    }
    let mut origin: Vec<Option<Origin>> = vec![];
    let set = |origin: &mut Vec<Option<Origin>>, v: Value, o: Origin| {
        if origin.len() <= v.index() {
            origin.resize(v.index() + 1, None);
        }
        origin[v.index()] = Some(o);
    };
    for (&p, &t) in &map {
        set(
            &mut origin,
            t,
            Origin {
                phase: Phase::Forward,
                name: names.get(&p).map(text),
                param: None,
                hidden: false,
            },
        );
    }
    for inst in &loss.insts {
        let args: Vec<Value> = inst.args.iter().map(|a| map[a]).collect();
        let v = b.push(inst.op.clone(), &args);
        map.insert(inst.result, v);
    }
    let forward_end = b.func().insts.len();
    let trainable: Vec<usize> = updates.iter().map(|u| u.param).collect();
    let params: Vec<Value> = loss.params[2..].iter().map(|p| map[p]).collect();
    let wrt: Vec<Value> = trainable.iter().map(|&i| params[i]).collect();
    let (grads, adjoints) = crate::autodiff::grad_with_adjoints(&mut b, map[&loss.results[0]], &wrt);
    let backward_end = b.func().insts.len();
    // The updates see the gradients clipped as the real step clips them;
    // the trace shows the gradients autodiff derived.
    let stepped = match plan.steps[0].clip_norm {
        Some(c) => crate::runtime::step::clip_by_global_norm(&mut b, &grads, c),
        None => grads.clone(),
    };
    let step_c = b.constant(step as f64);
    let lr_c = b.constant(lr);
    let mut new_params = params.clone();
    let mut new_states = states.clone();
    let mut update_of: Vec<(std::ops::Range<usize>, String)> = vec![];
    for (k, (pi, update)) in updates.iter().map(|u| (&u.param, &u.func)).enumerate() {
        let start = b.func().insts.len();
        let mut args = vec![params[*pi], stepped[k], step_c, lr_c];
        args.extend(&states[k]);
        let out = b.inline(update, &args);
        new_params[*pi] = out[0];
        new_states[k] = out[1..].to_vec();
        update_of.push((start..b.func().insts.len(), plan.params[*pi].name.clone()));
    }
    let mut results = vec![map[&loss.results[0]]];
    results.extend(&new_params);
    for s in &new_states {
        results.extend(s);
    }
    let f = b.finish(&results);

    // Names: forward values by the derivation, adjoints of named values
    // by theirs, parameters' gradients and new values by the parameter.
    let traced_name: HashMap<Value, String> = names.iter().filter_map(|(lv, n)| map.get(lv).map(|&tv| (tv, text(n)))).collect();
    let mut adjoint_of: HashMap<Value, String> = HashMap::new();
    for (lv, n) in &names {
        if let Some(a) = map.get(lv).and_then(|tv| adjoints.get(tv)) {
            if n.base != "L" {
                adjoint_of.entry(*a).or_insert_with(|| adjoint_name(n, Format::Text));
            }
        }
    }
    let symbol_of = |pi: usize| {
        names
            .get(&loss.params[2 + pi])
            .map(text)
            .unwrap_or_else(|| plan.params[pi].name.clone())
    };
    for (k, &pi) in trainable.iter().enumerate() {
        adjoint_of.entry(grads[k]).or_insert_with(|| format!("∂L/∂{}", symbol_of(pi)));
    }
    let is_const = |f: &Func, v: Value| f.def(v).is_some_and(|i| matches!(i.op, Op::Const(_)));
    for (i, inst) in f.insts.iter().enumerate() {
        let v = inst.result;
        let (phase, name, param) = if i < forward_end {
            (Phase::Forward, traced_name.get(&v).cloned(), None)
        } else if i < backward_end {
            (Phase::Backward, adjoint_of.get(&v).cloned(), None)
        } else {
            let param = update_of.iter().find(|(r, _)| r.contains(&i)).map(|(_, p)| p.clone());
            let pi = new_params.iter().position(|&p| p == v);
            let state = updates
                .iter()
                .map(|u| &u.states)
                .zip(&new_states)
                .find_map(|(names, vals)| vals.iter().position(|&s| s == v).map(|j| format!("{} (new)", names[j].0)));
            (Phase::Update, pi.map(|pi| format!("{} (new)", symbol_of(pi))).or(state), param)
        };
        let hidden = matches!(inst.op, Op::Const(_)) || (matches!(inst.op, Op::Broadcast { .. }) && is_const(&f, inst.args[0]));
        set(
            &mut origin,
            v,
            Origin {
                phase,
                name,
                param,
                hidden: hidden && !results.contains(&v),
            },
        );
    }
    let origin = origin
        .into_iter()
        .map(|o| {
            o.unwrap_or(Origin {
                phase: Phase::Forward,
                name: None,
                param: None,
                hidden: true,
            })
        })
        .collect();
    // Every instruction's value is a result, so the interpreter keeps them
    // all; the step's own results are returned beside it.
    let mut all = f;
    all.results = all.insts.iter().map(|i| i.result).collect();
    (all, results, origin)
}
