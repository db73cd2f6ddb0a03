//! `clip_norm = c`: gradient clipping by global norm. One SGD step with
//! `lr = 1` moves every parameter by minus its (clipped) gradient, so the
//! clipped step must equal the unclipped step's gradients scaled by
//! `min(1, c / (‖g‖ + 1e-6))`, computed here by hand, on the interpreter
//! and in compiled code; a bound above the norm changes nothing.

use ndarray::{ArrayD, IxDyn};
use nnc::driver;
use nnc::runtime::backend::{step_runner, BackendKind};
use nnc::runtime::train::initial_weights;
use nnc::sema::TrainPlan;

fn plan(setting: &str, step_setting: &str) -> TrainPlan {
    let body = if step_setting.is_empty() {
        "    loss = mse(model(x), y)\n    optimizer = sgd(lr: 1)\n".to_string()
    } else {
        format!("    step fit with sgd(lr: 1) on M {{\n        loss = mse(M(x), y)\n        {step_setting}\n    }}\n")
    };
    let src = format!(
        "model M(x: [batch, 3]) -> [batch, 2] = x |> Dense(3 -> 4, tanh) |> Dense(4 -> 2)\n\
         train M {{\n    data = tensors(x: [[0, 1, 2]], y: [[1, 0]])\n{body}    {setting}\n}}\n"
    );
    let c = driver::compile("clip.nn", &src);
    assert!(!c.has_errors(), "{:?}\n{src}", c.diagnostics());
    c.analysis.plans[0].clone()
}

/// The parameters after one step of `plan` on fixed data.
fn one_step(plan: &TrainPlan, kind: BackendKind) -> Vec<ArrayD<f32>> {
    let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![3.0, -2.0, 1.5, 0.5, 4.0, -1.0]).unwrap();
    let y = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![5.0, -3.0, -4.0, 2.0]).unwrap();
    let (step, _) = nnc::runtime::step::training_step(plan);
    let mut runner = step_runner(kind, &step);
    let w = initial_weights(plan).unwrap();
    let mut weights: Vec<ArrayD<f32>> = w.params.iter().cloned().chain(w.states.iter().cloned()).collect();
    let one = ArrayD::from_elem(IxDyn(&[]), 1f32);
    runner.step([x.view(), y.view(), one.view(), one.view()], &mut weights).unwrap();
    weights
}

fn check(setting: &str, step_setting: &str, max_norm: f64) {
    let unclipped = plan("", "");
    let clipped = plan(setting, step_setting);
    let before = initial_weights(&unclipped).unwrap().params;
    for kind in [BackendKind::Interp, BackendKind::Jit { threads: 1 }] {
        let free = one_step(&unclipped, kind);
        let grads: Vec<Vec<f64>> = before
            .iter()
            .zip(&free)
            .map(|(b, a)| b.iter().zip(a.iter()).map(|(&b, &a)| f64::from(b) - f64::from(a)).collect())
            .collect();
        let norm = grads.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
        let factor = (max_norm / (norm + 1e-6)).min(1.0);
        assert!(norm > 1.0, "the test needs a gradient norm above the bound, found {norm}");
        let got = one_step(&clipped, kind);
        for ((b, a), g) in before.iter().zip(&got).zip(&grads) {
            for ((&b, &a), &g) in b.iter().zip(a.iter()).zip(g) {
                let want = f64::from(b) - factor * g;
                assert!(
                    (f64::from(a) - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{kind:?} `{setting}{step_setting}`: {a} after the clipped step, by hand {want} (norm {norm})"
                );
            }
        }
    }
}

#[test]
fn clip_norm_scales_every_gradient_by_the_global_norm() {
    check("clip_norm = 0.5", "", 0.5);
}

#[test]
fn a_steps_clip_norm_overrides_the_blocks() {
    check("clip_norm = 100", "clip_norm = 1/4", 0.25);
}

#[test]
fn a_bound_above_the_norm_leaves_the_step_unchanged() {
    let free = plan("", "");
    let loose = plan("clip_norm = 1e6", "");
    assert_eq!(
        one_step(&free, BackendKind::Interp),
        one_step(&loose, BackendKind::Interp),
        "a factor of exactly 1 must not change a bit"
    );
}
