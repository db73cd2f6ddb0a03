//! Text from a trained character model (`nnc sample`): one character at a
//! time, each drawn from the model's distribution over the next character.
//!
//! The model reads a fixed window of `steps` ids (its input shape), so the
//! context is the last `steps` characters, placed at the window's start;
//! the next character's logits are those of the context's last position.
//! Positions after it hold filler, which is correct for a causal model
//! (an LSTM, or a Transformer with `causal_mask`), whose output at a
//! position never depends on later ones; it is also how the model was
//! trained: every window starts from a fresh state. A model that looks
//! ahead (a bidirectional layer) would see the filler.
//!
//! Draws are counter-based (`ir::random_uniform(seed, k)` for the k-th
//! character), so a seed always gives the same text; temperature 0 takes
//! the most likely character, with no draw.

use super::backend::{runner, BackendKind};
use super::train::Weights;
use crate::plan::{DataSource, TrainPlan};
use ndarray::{ArrayD, IxDyn};

/// How to sample.
#[derive(Clone, Copy, Debug)]
pub struct Sampling {
    /// Characters to add after the prompt.
    pub length: usize,
    /// Logits are divided by it before the softmax: below 1 sharpens the
    /// distribution, above 1 flattens it, 0 takes the argmax.
    pub temperature: f64,
    pub seed: u64,
}

/// The window length and vocabulary of a plan that trains on `text(...)`.
pub fn text_shape(plan: &TrainPlan) -> Result<(usize, usize), String> {
    match &plan.data.source {
        DataSource::Text { steps, vocab, .. } => Ok((*steps, *vocab)),
        _ => Err(format!(
            "`train {}` does not read `text(...)`, so its model is not a character model to sample from",
            plan.model
        )),
    }
}

/// The ids `prompt` continues with: `s.length` of them.
pub fn generate(plan: &TrainPlan, backend: BackendKind, w: &Weights, prompt: &[u32], s: Sampling) -> Result<Vec<u32>, String> {
    let (steps, vocab) = text_shape(plan)?;
    if prompt.is_empty() {
        return Err("the prompt is empty: give at least one character to continue".into());
    }
    if !(s.temperature >= 0.0 && s.temperature.is_finite()) {
        return Err(format!(
            "the temperature must be a finite number of at least 0, found {}",
            s.temperature
        ));
    }
    let mut predict = runner(backend, &plan.evaluation()?.predict);
    let mut text: Vec<u32> = prompt.to_vec();
    let mut out = Vec::with_capacity(s.length);
    for k in 0..s.length {
        let context = &text[text.len().saturating_sub(steps)..];
        let filler = *context.last().expect("non-empty");
        let window: Vec<f32> = (0..steps).map(|t| context.get(t).copied().unwrap_or(filler) as f32).collect();
        let x = ArrayD::from_shape_vec(IxDyn(&[1, steps]), window).expect("steps ids");
        let mut args = vec![&x];
        args.extend(w.params.iter());
        let logits = predict.call(&args)?.remove(0);
        if logits.len() != steps * vocab {
            return Err(format!(
                "the model's output has shape {:?}; a character model gives [batch, {steps}, {vocab}]: logits of the next character at every position",
                logits.shape()
            ));
        }
        let logits = logits.as_standard_layout();
        let flat = logits.as_slice().expect("standard layout");
        let at = context.len() - 1;
        let row = &flat[at * vocab..(at + 1) * vocab];
        if row.iter().any(|v| !v.is_finite()) {
            return Err(format!("the model's logits for character {} are not finite", k + 1));
        }
        let next = pick(row, s.temperature, crate::ir::random_uniform(s.seed, k as u64));
        text.push(next as u32);
        out.push(next as u32);
    }
    Ok(out)
}

/// The id drawn from `softmax(logits / temperature)` by the uniform draw
/// `u` in [0, 1) (inverse CDF), or the argmax at temperature 0.
pub fn pick(logits: &[f32], temperature: f64, u: f64) -> usize {
    let argmax = logits
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) })
        .0;
    if temperature == 0.0 {
        return argmax;
    }
    let top = f64::from(logits[argmax]);
    let weights: Vec<f64> = logits.iter().map(|&l| ((f64::from(l) - top) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    // Rounding left the draw past the last weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(argmax)
}
