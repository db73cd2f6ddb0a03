//! Deterministic data handling: shuffling, train/validation splits, row
//! gathers, standardisation and one-hot encoding.
//!
//! Every random choice comes from [`CounterRng`], a SplitMix64 stream keyed by
//! `(seed, stream)`. Keying by the epoch (rather than carrying RNG state from
//! one epoch to the next) means epoch `k`'s order can be recomputed on its own,
//! so a run resumed from a checkpoint sees exactly the batches it would have
//! seen without the interruption.

use std::fmt;

use ndarray::{ArrayD, Axis, IxDyn};

use super::data::Dataset;

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective mix in which every input bit
/// affects every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Domain tags so that, for one seed, the split's permutation is unrelated
/// to any epoch's shuffle.
const DOMAIN_SHUFFLE: u64 = 0x5348_5546_464c_4531; // "SHUFFLE1"
const DOMAIN_SPLIT: u64 = 0x5350_4c49_5456_414c; // "SPLITVAL"

/// A counter-based generator: output `i` is `mix64(key + i·γ)`, i.e. the
/// SplitMix64 sequence started at `key`. Small, fast, and independent of
/// any crate whose algorithm could change under a version bump (which would
/// silently change every "reproducible" run).
#[derive(Clone, Debug)]
pub struct CounterRng {
    key: u64,
    counter: u64,
}

impl CounterRng {
    /// A stream for `(seed, stream)`; distinct pairs give unrelated streams.
    pub fn new(seed: u64, stream: u64) -> CounterRng {
        let key = mix64(mix64(seed.wrapping_add(GOLDEN_GAMMA)) ^ mix64(stream ^ DOMAIN_SHUFFLE));
        CounterRng { key, counter: 0 }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        mix64(self.key.wrapping_add(self.counter.wrapping_mul(GOLDEN_GAMMA)))
    }

    /// Uniform in `0..n` without modulo bias (Lemire's multiply-and-reject).
    ///
    /// # Panics
    /// If `n == 0` (there is no value to return).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "CounterRng::below(0): empty range");
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            // Only low products below 2^64 mod n are biased; redraw those.
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform in `[0, 1)` with 24 random bits (all an `f32` mantissa holds).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }
}

fn fisher_yates(rng: &mut CounterRng, idx: &mut [usize]) {
    for i in (1..idx.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        idx.swap(i, j);
    }
}

/// A permutation of `0..n` for one epoch: the same `(seed, epoch)` always
/// gives the same order, another epoch gives another order.
pub fn shuffle_indices(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    fisher_yates(&mut CounterRng::new(seed, epoch), &mut idx);
    idx
}

/// Split `0..n` into `(train, validation)` with `round(n · fraction)`
/// validation rows chosen by a seeded shuffle. Both lists are returned in
/// ascending order so a gathered subset keeps file order; shuffle per epoch
/// with [`shuffle_indices`].
///
/// # Panics
/// If `fraction` is not in `[0, 1]` (including NaN): a caller bug, which a
/// command line must reject before getting here.
pub fn train_val_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    assert!((0.0..=1.0).contains(&fraction), "validation fraction {fraction} is not in [0, 1]");
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = CounterRng::new(seed ^ DOMAIN_SPLIT, DOMAIN_SPLIT);
    fisher_yates(&mut rng, &mut idx);
    let n_val = ((n as f64) * fraction).round() as usize;
    let mut val = idx[..n_val.min(n)].to_vec();
    let mut train = idx[n_val.min(n)..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

/// The rows `idx` of `ds`, in that order. `num_classes` is kept, so a subset
/// missing some class still one-hot encodes to the full width.
///
/// # Panics
/// If an index is out of range.
pub fn take(ds: &Dataset, idx: &[usize]) -> Dataset {
    Dataset {
        x: ds.x.select(Axis(0), idx),
        y: ds.y.select(Axis(0), idx),
        y_is_class: ds.y_is_class,
        num_classes: ds.num_classes,
        name: ds.name.clone(),
    }
}

/// Why preprocessing could not be applied.
#[derive(Clone, Debug, PartialEq)]
pub enum PrepError {
    /// Data with a different number of features from the data fitted on.
    FeatureMismatch { expected: usize, found: usize },
    /// A label that is not an integer class id below `classes`.
    LabelOutOfRange { index: usize, label: f32, classes: usize },
}

impl fmt::Display for PrepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepError::FeatureMismatch { expected, found } => {
                write!(f, "expected {expected} features per sample, found {found}")
            }
            PrepError::LabelOutOfRange { index, label, classes } => {
                write!(f, "label {label} of sample {index} is not a class id in 0..{classes}")
            }
        }
    }
}

impl std::error::Error for PrepError {}

/// Per-feature affine normalisation `(x - mean) / std`, fitted on training
/// data only so that no statistic leaks from validation or test rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    /// Population standard deviation; 1 for constant features, which then
    /// map to 0 instead of NaN (the digits CSV has always-zero pixels).
    pub std: Vec<f32>,
}

/// `(rows, features per row)` of `x` seen as `[n, features]`.
fn rows_of(x: &ArrayD<f32>) -> (usize, usize) {
    let n = x.shape().first().copied().unwrap_or(0);
    let d = x.shape().get(1..).unwrap_or(&[]).iter().product();
    (n, d)
}

impl Standardizer {
    /// Mean and standard deviation of every feature over all rows of `x`
    /// (`[n, ...]`; trailing axes are flattened into features). Sums are kept
    /// in `f64`: 60,000 rows of `f32` would otherwise lose digits.
    pub fn fit(x: &ArrayD<f32>) -> Standardizer {
        let (n, d) = rows_of(x);
        let x = x.as_standard_layout();
        let data = x.as_slice().expect("standard layout is contiguous");
        let mut sum = vec![0f64; d];
        for row in data.chunks_exact(d.max(1)) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let denom = n.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / denom).collect();
        // Two-pass variance: no cancellation from subtracting large squares.
        let mut sq = vec![0f64; d];
        for row in data.chunks_exact(d.max(1)) {
            for ((s, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
                let dv = f64::from(v) - m;
                *s += dv * dv;
            }
        }
        let std = sq.iter().map(|s| (s / denom).sqrt()).map(|s| if s > 0.0 { s as f32 } else { 1.0 });
        Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.collect(),
        }
    }

    /// Normalise `x` in place with the fitted statistics.
    pub fn apply(&self, x: &mut ArrayD<f32>) -> Result<(), PrepError> {
        let (_, d) = rows_of(x);
        if d != self.mean.len() {
            return Err(PrepError::FeatureMismatch {
                expected: self.mean.len(),
                found: d,
            });
        }
        if !x.is_standard_layout() {
            *x = x.as_standard_layout().into_owned();
        }
        let data = x.as_slice_mut().expect("standard layout is contiguous");
        for row in data.chunks_exact_mut(d.max(1)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }
}

/// Fit a [`Standardizer`] on `train.x`, then apply it to `train` and to each
/// of `others` (validation, test).
pub fn standardize(train: &mut Dataset, others: &mut [&mut Dataset]) -> Result<Standardizer, PrepError> {
    let st = Standardizer::fit(&train.x);
    // Check every dataset before modifying any, so an error leaves all intact.
    for other in others.iter() {
        let found = other.feature_len();
        if found != st.mean.len() {
            return Err(PrepError::FeatureMismatch {
                expected: st.mean.len(),
                found,
            });
        }
    }
    st.apply(&mut train.x)?;
    for other in others.iter_mut() {
        st.apply(&mut other.x)?;
    }
    Ok(st)
}

/// One-hot encode class ids (any shape, read in order) into `[n, classes]`.
pub fn one_hot(labels: &ArrayD<f32>, classes: usize) -> Result<ArrayD<f32>, PrepError> {
    let n = labels.len();
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[n, classes]));
    for (i, &label) in labels.iter().enumerate() {
        let ok = label >= 0.0 && label.fract() == 0.0 && (label as usize) < classes;
        if !ok {
            return Err(PrepError::LabelOutOfRange { index: i, label, classes });
        }
        out[[i, label as usize]] = 1.0;
    }
    Ok(out)
}
