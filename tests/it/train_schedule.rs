//! Learning-rate schedules: the value each step's `lr` input gets.

use nnc::runtime::schedule::{lr_at, Clock};
use nnc::sema::Schedule;

fn at(s: &Schedule, step: usize) -> f64 {
    lr_at(
        s,
        0.1,
        0,
        Clock {
            step,
            steps_per_epoch: 10,
            epochs: 10,
        },
    )
}

#[test]
fn step_decay_halves_every_two_epochs() {
    let s = Schedule::StepDecay { every: 2, factor: 0.5 };
    assert_eq!(at(&s, 0), 0.1);
    assert_eq!(at(&s, 19), 0.1);
    assert_eq!(at(&s, 20), 0.05);
    assert_eq!(at(&s, 45), 0.025);
}

#[test]
fn cosine_runs_from_base_to_min() {
    let s = Schedule::Cosine { min_lr: 0.0 };
    assert_eq!(at(&s, 0), 0.1);
    assert!((at(&s, 50) - 0.05).abs() < 1e-12);
    assert!(at(&s, 99) < 0.001);
}

#[test]
fn cyclic_peaks_mid_period() {
    let s = Schedule::Cyclic { min_lr: 0.0, period: 2 };
    assert_eq!(at(&s, 0), 0.0);
    assert!((at(&s, 10) - 0.1).abs() < 1e-12);
    assert_eq!(at(&s, 20), 0.0);
}

#[test]
fn one_cycle_peaks_at_max_lr() {
    let s = Schedule::OneCycle { max_lr: 1.0 };
    assert!((at(&s, 0) - 0.004).abs() < 1e-12);
    assert!((at(&s, 30) - 1.0).abs() < 1e-12);
    assert!(at(&s, 99) < 0.01);
}

#[test]
fn warmup_ramps_linearly() {
    let c = |step| Clock {
        step,
        steps_per_epoch: 10,
        epochs: 1,
    };
    assert_eq!(lr_at(&Schedule::Constant, 0.1, 4, c(0)), 0.025);
    assert_eq!(lr_at(&Schedule::Constant, 0.1, 4, c(3)), 0.1);
    assert_eq!(lr_at(&Schedule::Exponential { rate: 0.5 }, 0.1, 4, c(9)), 0.1);
}
