//! Each step of a plan as one IR function.

use crate::ir::{self, Builder, Func};
use crate::plan::TrainPlan;

/// The names of a training step's inputs and outputs, in order.
#[derive(Clone, Debug)]
pub struct StepLayout {
    /// `x`, `y`, `step`, `lr`, then every parameter, then this step's optimizer states.
    pub inputs: Vec<String>,
    /// `loss`, `output`, then new parameters, then new states (same order).
    pub outputs: Vec<String>,
}

/// The first (for most blocks, the only) step; see [`step_function`].
pub fn training_step(plan: &TrainPlan) -> (Func, StepLayout) {
    step_function(plan, 0)
}

/// Compose step `k` of the plan as one IR function: forward and loss in
/// training mode, the backward pass, the optimizer update of every
/// parameter the step trains, and the buffers it writes.
///
/// `step(x, y, step, lr, params..., states...) -> (loss, output, params'..., states'...)`
///
/// `step` counts this step's runs from 1 (Adam's bias correction) and is
/// also the key of its random draws, so every run draws afresh and a rerun
/// or resume draws the same; `lr` is the learning rate for this run,
/// computed by the trainer from the schedule. Parameters the step does not
/// train are returned unchanged, bit for bit.
pub fn step_function(plan: &TrainPlan, k: usize) -> (Func, StepLayout) {
    let sp = &plan.steps[k];
    let mut b = Builder::new("train_step");
    let x = b.param("x", plan.input.clone());
    let y = b.param("y", plan.label.clone());
    let step = b.param("step", ir::Type::scalar());
    let lr = b.param("lr", ir::Type::scalar());
    let params: Vec<ir::Value> = plan.params.iter().map(|p| b.param(p.name.clone(), p.ty.clone())).collect();
    let states: Vec<Vec<ir::Value>> = sp
        .updates
        .iter()
        .map(|u| u.states.iter().map(|(n, t)| b.param(n.clone(), t.clone())).collect())
        .collect();
    let mut loss_args = vec![x, y, step];
    loss_args.extend(&params);
    // The forward pass is simplified before it is differentiated: a
    // slice of stacked `scan` states becomes the state itself, so the
    // backward pass never pads gradients into (or slices them out of) the
    // stack. The rewrites are exact, so the loss is unchanged.
    let lo = b.inline(&crate::opt::optimize(&sp.loss), &loss_args);
    let (loss, output) = (lo[0], lo[1]);
    let wrt: Vec<ir::Value> = sp.updates.iter().map(|u| params[u.param]).collect();
    let mut grads = crate::autodiff::grad(&mut b, loss, &wrt);
    if let Some(max_norm) = sp.clip_norm {
        grads = clip_by_global_norm(&mut b, &grads, max_norm);
    }
    let mut new_params = params.clone();
    for (&buffer, &value) in sp.writes.iter().zip(&lo[2..]) {
        new_params[buffer] = value;
    }
    let mut new_states = states.clone();
    for (u, ((g, st), new_st)) in sp.updates.iter().zip(grads.iter().zip(&states).zip(&mut new_states)) {
        let mut args = vec![params[u.param], *g, step, lr];
        args.extend(st);
        let out = b.inline(&u.func, &args);
        new_params[u.param] = out[0];
        *new_st = out[1..].to_vec();
    }
    let mut results = vec![loss, output];
    results.extend(&new_params);
    for s in &new_states {
        results.extend(s);
    }
    let f = b.finish(&results);
    let mut inputs: Vec<String> = f.param_names.clone();
    inputs.truncate(f.params.len());
    let mut outputs = vec!["loss".to_string(), "output".to_string()];
    outputs.extend(plan.params.iter().map(|p| p.name.clone()));
    for u in &sp.updates {
        outputs.extend(u.states.iter().map(|(n, _)| n.clone()));
    }
    (f, StepLayout { inputs, outputs })
}

/// Every gradient times `min(1, max_norm / (‖g‖ + 1e-6))`, where `‖g‖` is
/// the Euclidean norm of all of them together: PyTorch's
/// `clip_grad_norm_`, whose 1e-6 keeps a zero gradient finite. One factor
/// for all keeps the direction of the whole step; only its length is capped.
pub fn clip_by_global_norm(b: &mut Builder, grads: &[ir::Value], max_norm: f64) -> Vec<ir::Value> {
    let mut total = None;
    for &g in grads {
        let sq = b.mul(g, g);
        let rank = b.shape(g).len();
        let s = b.reduce_sum(sq, (0..rank).collect(), false);
        total = Some(match total {
            Some(t) => b.add(t, s),
            None => s,
        });
    }
    let Some(total) = total else { return vec![] };
    let norm = b.unary(ir::UnaryOp::Sqrt, total);
    let eps = b.constant(1e-6);
    let denom = b.add(norm, eps);
    let c = b.constant(max_norm);
    let ratio = b.div(c, denom);
    let one = b.constant(1.0);
    let factor = b.binary(ir::BinaryOp::Min, ratio, one);
    grads
        .iter()
        .map(|&g| {
            let shape = b.shape(g);
            let f = b.broadcast(factor, &shape);
            b.mul(g, f)
        })
        .collect()
}
