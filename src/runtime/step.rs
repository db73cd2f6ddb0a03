//! The whole training step as one IR function.

use crate::ir::{self, Builder, Func};
use crate::sema::TrainPlan;

/// The names of a training step's inputs and outputs, in order.
#[derive(Clone, Debug)]
pub struct StepLayout {
    /// `x`, `y`, `step`, `lr`, then every parameter, then every optimizer state.
    pub inputs: Vec<String>,
    /// `loss`, `output`, then new parameters, then new states (same order).
    pub outputs: Vec<String>,
}

/// Compose the whole training step as one IR function: forward and loss,
/// the backward pass, and the optimizer update of every parameter.
///
/// `step(x, y, step, lr, params..., states...) -> (loss, output, params'..., states'...)`
///
/// `step` counts from 1 (Adam's bias correction); `lr` is the learning rate
/// for this step, computed by the trainer from the schedule.
pub fn training_step(plan: &TrainPlan) -> (Func, StepLayout) {
    let mut b = Builder::new("train_step");
    let x = b.param("x", plan.input.clone());
    let y = b.param("y", plan.label.clone());
    let step = b.param("step", ir::Type::scalar());
    let lr = b.param("lr", ir::Type::scalar());
    let params: Vec<ir::Value> = plan.params.iter().map(|p| b.param(p.name.clone(), p.ty.clone())).collect();
    let mut states: Vec<Vec<ir::Value>> = vec![];
    for (_, names) in &plan.states {
        states.push(names.iter().map(|(n, t)| b.param(n.clone(), t.clone())).collect());
    }
    let mut loss_args = vec![x, y];
    loss_args.extend(&params);
    let lo = b.inline(&plan.loss, &loss_args);
    let (loss, output) = (lo[0], lo[1]);
    let trainable: Vec<usize> = plan.states.iter().map(|(i, _)| *i).collect();
    let wrt: Vec<ir::Value> = trainable.iter().map(|&i| params[i]).collect();
    let grads = crate::autodiff::grad(&mut b, loss, &wrt);
    let mut new_params = params.clone();
    let mut new_states = states.clone();
    for (k, (pi, update)) in plan.updates.iter().enumerate() {
        let mut args = vec![params[*pi], grads[k], step, lr];
        args.extend(&states[k]);
        let out = b.inline(update, &args);
        new_params[*pi] = out[0];
        new_states[k] = out[1..].to_vec();
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
    for (_, names) in &plan.states {
        outputs.extend(names.iter().map(|(n, _)| n.clone()));
    }
    (f, StepLayout { inputs, outputs })
}
