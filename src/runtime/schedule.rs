//! Learning-rate schedules: the `lr` input of each training step.

use crate::sema::Schedule;
use std::f64::consts::PI;

/// Where a step sits in the run; `step` counts from 0.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub step: usize,
    pub steps_per_epoch: usize,
    pub epochs: usize,
}

impl Clock {
    fn total(&self) -> usize {
        (self.steps_per_epoch * self.epochs).max(1)
    }
    /// Epochs completed before this step (0-based epoch index).
    fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch.max(1)
    }
    /// Progress through the run in [0, 1].
    fn progress(&self) -> f64 {
        (self.step as f64 / self.total() as f64).min(1.0)
    }
}

/// The learning rate of one step: the schedule applied to `base`, then a
/// linear warm-up over the first `warmup` steps.
pub fn lr_at(schedule: &Schedule, base: f64, warmup: usize, c: Clock) -> f64 {
    let lr = match *schedule {
        Schedule::Constant => base,
        Schedule::StepDecay { every, factor } => base * factor.powi((c.epoch() / every.max(1)) as i32),
        Schedule::Exponential { rate } => base * rate.powi(c.epoch() as i32),
        Schedule::Cosine { min_lr } => min_lr + (base - min_lr) * 0.5 * (1.0 + (PI * c.progress()).cos()),
        Schedule::Cyclic { min_lr, period } => {
            // Triangle: min → base over half a period, back to min over the other half.
            let len = (period * c.steps_per_epoch).max(1) as f64;
            let phase = (c.step as f64 % len) / len;
            let tri = 1.0 - (2.0 * phase - 1.0).abs();
            min_lr + (base - min_lr) * tri
        }
        Schedule::OneCycle { max_lr } => {
            let (start, end) = (base / 25.0, base / 1e4);
            let p = c.progress();
            let rise = 0.3;
            let cos = |from: f64, to: f64, t: f64| to + (from - to) * 0.5 * (1.0 + (PI * t).cos());
            if p < rise {
                cos(start, max_lr, p / rise)
            } else {
                cos(max_lr, end, (p - rise) / (1.0 - rise))
            }
        }
    };
    if c.step < warmup {
        lr * (c.step + 1) as f64 / warmup as f64
    } else {
        lr
    }
}
