//! Evaluation metrics from model outputs and labels.
//!
//! Predictions are what a model returns: `[n, classes]` scores (logits or
//! probabilities; only the argmax matters), or `[n, 1]` / `[n]` probabilities
//! for a single-output binary classifier (class 1 when `p >= 0.5`). Labels are
//! class ids `[n]` / `[n, 1]`, or one-hot rows `[n, classes]`. Regression
//! metrics compare values element by element.
//!
//! Results are `f64`: sums over 60,000 samples in `f32` would lose the last
//! digits that distinguish two runs.

use std::fmt;

use ndarray::ArrayD;

/// Why a metric could not be computed.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricError {
    /// No samples: every metric here is a mean, undefined over nothing.
    Empty,
    /// Predictions of a shape no rule above interprets (`[]`, `[n, 0]`, rank > 2).
    BadPredictionShape(Vec<usize>),
    /// Predictions and labels disagree on the number of samples or values.
    ShapeMismatch { predictions: Vec<usize>, labels: Vec<usize> },
    /// A label that is not an integer class id `>= 0`.
    BadLabel { index: usize, value: f32 },
    /// A class id at or beyond the matrix size given.
    ClassOutOfRange { index: usize, class: usize, classes: usize },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::Empty => f.write_str("no samples to evaluate"),
            MetricError::BadPredictionShape(s) => {
                write!(
                    f,
                    "predictions of shape {s:?} are neither [n, classes] scores nor [n] probabilities"
                )
            }
            MetricError::ShapeMismatch { predictions, labels } => {
                write!(f, "predictions of shape {predictions:?} do not match labels of shape {labels:?}")
            }
            MetricError::BadLabel { index, value } => {
                write!(f, "label {value} of sample {index} is not a class id (an integer >= 0)")
            }
            MetricError::ClassOutOfRange { index, class, classes } => {
                write!(f, "class {class} of sample {index} is out of range for {classes} classes")
            }
        }
    }
}

impl std::error::Error for MetricError {}

/// Index of the largest score; the first wins ties, and NaN never wins, so a
/// diverged model scores as "always class 0" rather than crashing.
fn argmax(row: impl Iterator<Item = f32>) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, v) in row.enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best
}

/// The class each prediction picks, and the number of classes the output
/// shape implies (2 for a single-output binary model).
pub fn predicted_classes(pred: &ArrayD<f32>) -> Result<(Vec<usize>, usize), MetricError> {
    let shape = pred.shape();
    match *shape {
        [_] | [_, 1] => Ok((pred.iter().map(|&p| usize::from(p >= 0.5)).collect(), 2)),
        [_, c] if c >= 2 => Ok((pred.rows().into_iter().map(|r| argmax(r.iter().copied())).collect(), c)),
        _ => Err(MetricError::BadPredictionShape(shape.to_vec())),
    }
}

/// The true class of each sample, checked against `n` predictions.
fn true_classes(labels: &ArrayD<f32>, pred_shape: &[usize]) -> Result<Vec<usize>, MetricError> {
    let n = pred_shape[0];
    let mismatch = || MetricError::ShapeMismatch {
        predictions: pred_shape.to_vec(),
        labels: labels.shape().to_vec(),
    };
    match *labels.shape() {
        [m] | [m, 1] if m == n => labels
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                if value >= 0.0 && value.fract() == 0.0 {
                    Ok(value as usize)
                } else {
                    Err(MetricError::BadLabel { index, value })
                }
            })
            .collect(),
        // One-hot labels must have the same width as the scores.
        [m, c] if m == n && c >= 2 && pred_shape.get(1) == Some(&c) => {
            Ok(labels.rows().into_iter().map(|r| argmax(r.iter().copied())).collect())
        }
        _ => Err(mismatch()),
    }
}

/// Fraction of samples whose predicted class is the true class.
pub fn accuracy(pred: &ArrayD<f32>, labels: &ArrayD<f32>) -> Result<f64, MetricError> {
    let (predicted, _) = predicted_classes(pred)?;
    let actual = true_classes(labels, pred.shape())?;
    if actual.is_empty() {
        return Err(MetricError::Empty);
    }
    let correct = predicted.iter().zip(&actual).filter(|(p, a)| p == a).count();
    Ok(correct as f64 / actual.len() as f64)
}

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major `[actual][predicted]`.
    counts: Vec<u64>,
}

/// Macro averages: the unweighted mean over classes, so rare classes count
/// as much as common ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MacroScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl ConfusionMatrix {
    /// From class ids directly, with a fixed number of classes.
    pub fn from_classes(predicted: &[usize], actual: &[usize], classes: usize) -> Result<ConfusionMatrix, MetricError> {
        if predicted.len() != actual.len() {
            return Err(MetricError::ShapeMismatch {
                predictions: vec![predicted.len()],
                labels: vec![actual.len()],
            });
        }
        let mut counts = vec![0u64; classes * classes];
        for (index, (&p, &a)) in predicted.iter().zip(actual).enumerate() {
            for class in [p, a] {
                if class >= classes {
                    return Err(MetricError::ClassOutOfRange { index, class, classes });
                }
            }
            counts[a * classes + p] += 1;
        }
        Ok(ConfusionMatrix { classes, counts })
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of class `actual` predicted as `predicted`.
    pub fn count(&self, actual: usize, predicted: usize) -> u64 {
        self.counts[actual * self.classes + predicted]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Samples whose true class is `class`.
    pub fn support(&self, class: usize) -> u64 {
        (0..self.classes).map(|p| self.count(class, p)).sum()
    }

    /// Samples predicted as `class`.
    pub fn predicted_count(&self, class: usize) -> u64 {
        (0..self.classes).map(|a| self.count(a, class)).sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        ratio(correct, self.total())
    }

    /// Of the samples predicted as `class`, the fraction that are; 0 when the
    /// class is never predicted (scikit-learn's `zero_division=0`).
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.count(class, class), self.predicted_count(class))
    }

    /// Of the samples of `class`, the fraction found; 0 without support.
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.count(class, class), self.support(class))
    }

    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub fn f1(&self, class: usize) -> f64 {
        let (p, r) = (self.precision(class), self.recall(class));
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Macro precision, recall and F1 (the mean of per-class F1s, not the F1
    /// of the means, as scikit-learn computes it), over the classes that
    /// occur as a label or a prediction: a class that never appears says
    /// nothing about the model and would only drag the averages to 0.
    pub fn macro_scores(&self) -> MacroScores {
        let present: Vec<usize> = (0..self.classes)
            .filter(|&c| self.support(c) + self.predicted_count(c) > 0)
            .collect();
        let mean = |f: &dyn Fn(usize) -> f64| {
            if present.is_empty() {
                0.0
            } else {
                present.iter().map(|&c| f(c)).sum::<f64>() / present.len() as f64
            }
        };
        MacroScores {
            precision: mean(&|c| self.precision(c)),
            recall: mean(&|c| self.recall(c)),
            f1: mean(&|c| self.f1(c)),
        }
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl fmt::Display for ConfusionMatrix {
    /// Rows are true classes, columns predicted classes, right-aligned to the
    /// widest entry so the diagonal reads straight down:
    ///
    /// ```text
    /// true\pred   0   1
    ///         0  50   0
    ///         1   2  48
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CORNER: &str = "true\\pred";
        let widest_count = self.counts.iter().max().copied().unwrap_or(0).to_string().len();
        let widest_class = self.classes.saturating_sub(1).to_string().len();
        let w = widest_count.max(widest_class);
        write!(f, "{CORNER}")?;
        for p in 0..self.classes {
            write!(f, "  {p:>w$}")?;
        }
        writeln!(f)?;
        for a in 0..self.classes {
            write!(f, "{a:>width$}", width = CORNER.len())?;
            for p in 0..self.classes {
                write!(f, "  {:>w$}", self.count(a, p))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Confusion matrix of predictions against labels. Its size is the number of
/// classes the output shape implies; a label outside them is an error
/// (widening to the largest label allocated classes² counts, and a label
/// of 2^24 asked for 2^51 bytes).
pub fn confusion_matrix(pred: &ArrayD<f32>, labels: &ArrayD<f32>) -> Result<ConfusionMatrix, MetricError> {
    let (predicted, implied) = predicted_classes(pred)?;
    let actual = true_classes(labels, pred.shape())?;
    ConfusionMatrix::from_classes(&predicted, &actual, implied)
}

/// Macro precision, recall and F1 of predictions against labels.
pub fn macro_scores(pred: &ArrayD<f32>, labels: &ArrayD<f32>) -> Result<MacroScores, MetricError> {
    let cm = confusion_matrix(pred, labels)?;
    if cm.total() == 0 {
        return Err(MetricError::Empty);
    }
    Ok(cm.macro_scores())
}

/// `(rows, outputs per row)` after checking that predictions and targets hold
/// the same values per sample (`[n]` and `[n, 1]` are interchangeable).
fn regression_dims(pred: &ArrayD<f32>, target: &ArrayD<f32>) -> Result<(usize, usize), MetricError> {
    let mismatch = || MetricError::ShapeMismatch {
        predictions: pred.shape().to_vec(),
        labels: target.shape().to_vec(),
    };
    let (Some(&n), Some(&m)) = (pred.shape().first(), target.shape().first()) else {
        return Err(mismatch());
    };
    if n != m || pred.len() != target.len() {
        return Err(mismatch());
    }
    if pred.is_empty() {
        return Err(MetricError::Empty);
    }
    Ok((n, pred.len() / n))
}

/// Pairs of (prediction, target) in logical order, whatever the layouts.
fn pairs<'a>(pred: &'a ArrayD<f32>, target: &'a ArrayD<f32>) -> impl Iterator<Item = (f64, f64)> + 'a {
    pred.iter().zip(target.iter()).map(|(&p, &t)| (f64::from(p), f64::from(t)))
}

/// Mean squared error over all values.
pub fn mse(pred: &ArrayD<f32>, target: &ArrayD<f32>) -> Result<f64, MetricError> {
    regression_dims(pred, target)?;
    let sum: f64 = pairs(pred, target).map(|(p, t)| (p - t) * (p - t)).sum();
    Ok(sum / pred.len() as f64)
}

/// Mean absolute error over all values.
pub fn mae(pred: &ArrayD<f32>, target: &ArrayD<f32>) -> Result<f64, MetricError> {
    regression_dims(pred, target)?;
    let sum: f64 = pairs(pred, target).map(|(p, t)| (p - t).abs()).sum();
    Ok(sum / pred.len() as f64)
}

/// Coefficient of determination `1 - SS_res / SS_tot`, per output column and
/// then averaged (scikit-learn's `uniform_average`). A constant target column
/// scores 1 if predicted exactly and 0 otherwise, instead of dividing by 0.
pub fn r2(pred: &ArrayD<f32>, target: &ArrayD<f32>) -> Result<f64, MetricError> {
    let (n, k) = regression_dims(pred, target)?;
    let p: Vec<f64> = pred.iter().map(|&v| f64::from(v)).collect();
    let t: Vec<f64> = target.iter().map(|&v| f64::from(v)).collect();
    let mut total = 0.0;
    for col in 0..k {
        let column = |v: &[f64]| (0..n).map(move |row| row * k + col).map(|i| v[i]).collect::<Vec<f64>>();
        let (pc, tc) = (column(&p), column(&t));
        let mean = tc.iter().sum::<f64>() / n as f64;
        let ss_tot: f64 = tc.iter().map(|t| (t - mean) * (t - mean)).sum();
        let ss_res: f64 = pc.iter().zip(&tc).map(|(p, t)| (p - t) * (p - t)).sum();
        total += if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else if ss_res == 0.0 {
            1.0
        } else {
            0.0
        };
    }
    Ok(total / k as f64)
}
