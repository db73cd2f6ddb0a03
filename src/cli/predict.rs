//! `nnc predict FILE --weights W --input X`: classes (or values) for new
//! samples. Input is a CSV of feature rows (no label column; a header line
//! is skipped) or an IDX image file such as MNIST's, plain or gzipped.

use super::report::{self, Engine};
use super::say;
use crate::plan::DataSource;
use crate::runtime::checkpoint;
use crate::runtime::data;
use crate::runtime::train;
use clap::Args;
use ndarray::{ArrayD, Axis, IxDyn};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PredictArgs {
    pub file: PathBuf,
    /// A weights file written by `nnc run` (weights.safetensors).
    #[arg(long)]
    pub weights: PathBuf,
    /// Samples: a .csv of feature rows, or an IDX image file (.gz or not).
    #[arg(long)]
    pub input: PathBuf,
    /// Print every class probability, not just the most likely class.
    #[arg(long)]
    pub probabilities: bool,
    /// Print only two figures over all samples: the mean probability of the
    /// top class, and the entropy (nats) of the histogram of top classes
    /// (how confident and how varied, e.g. for a GAN's samples).
    #[arg(long)]
    pub summary: bool,
    #[command(flatten)]
    pub engine: Engine,
}

/// Feature rows of a CSV file: every field numeric, all rows one length;
/// a first line with a non-numeric field is a header. Every value, after
/// scaling, must be finite: NaN or inf would come out as a probability of
/// NaN or -inf, not as an error.
fn read_csv(path: &Path, scale: f32) -> Result<ArrayD<f32>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let mut rows: Vec<Vec<f32>> = vec![];
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Result<Vec<f32>, _> = line.split(',').map(|f| f.trim().parse::<f32>()).collect();
        match fields {
            Ok(r) => {
                if let Some(c) = r.iter().position(|v| !(v * scale).is_finite()) {
                    let field = line.split(',').nth(c).unwrap_or_default().trim();
                    let why = if r[c].is_finite() {
                        format!("`{field}` times the scale {scale} is not a finite f32")
                    } else {
                        format!("`{field}` is not a finite number")
                    };
                    return Err(format!("{}: line {}, column {}: {why}", path.display(), i + 1, c + 1));
                }
                if rows.first().is_some_and(|f| f.len() != r.len()) {
                    return Err(format!(
                        "{}:{}: {} fields, but the first row has {}",
                        path.display(),
                        i + 1,
                        r.len(),
                        rows[0].len()
                    ));
                }
                rows.push(r.into_iter().map(|v| v * scale).collect());
            }
            Err(_) if i == 0 => {}
            Err(_) => return Err(format!("{}:{}: a field is not a number", path.display(), i + 1)),
        }
    }
    if rows.is_empty() {
        return Err(format!("{}: no rows of numbers", path.display()));
    }
    let cols = rows[0].len();
    ArrayD::from_shape_vec(IxDyn(&[rows.len(), cols]), rows.concat()).map_err(|e| e.to_string())
}

/// IDX images scaled to [0, 1], as the MNIST loader does for training.
fn read_images(path: &Path) -> Result<ArrayD<f32>, String> {
    let raw = data::read_idx(path).map_err(|e| e.to_string())?;
    Ok(raw.mapv(|v| f32::from(v) / 255.0))
}

/// Softmax of each row, unless the rows already are distributions (a
/// model ending in softmax or sigmoid).
fn probabilities(out: &ArrayD<f32>) -> ArrayD<f32> {
    let n = out.shape()[0];
    let out = out.to_shape(IxDyn(&[n, out.len() / n.max(1)])).expect("rows").to_owned();
    let is_dist = out.iter().all(|v| (0.0..=1.0).contains(v))
        && (out.shape()[1] == 1 || out.axis_iter(Axis(0)).all(|r| (r.sum() - 1.0).abs() < 1e-3));
    if is_dist {
        return out;
    }
    let mut p = out;
    for mut r in p.axis_iter_mut(Axis(0)) {
        let m = r.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        r.mapv_inplace(|v| (v - m).exp());
        let s = r.sum();
        r.mapv_inplace(|v| v / s);
    }
    p
}

/// The mean top-class probability of probability rows, the entropy in
/// nats of the histogram of their top classes, and that histogram.
pub fn confidence_and_entropy(p: &ArrayD<f32>) -> (f64, f64, Vec<usize>) {
    let n = p.shape()[0].max(1);
    let classes = p.len() / n;
    let mut hist = vec![0usize; classes.max(1)];
    let mut total = 0.0;
    for r in p.axis_iter(Axis(0)) {
        let (best, pb) = r
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |a, (j, &v)| if v > a.1 { (j, v) } else { a });
        hist[best] += 1;
        total += f64::from(pb);
    }
    let entropy = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let q = c as f64 / n as f64;
            -q * q.ln()
        })
        .sum();
    (total / n as f64, entropy, hist)
}

pub fn predict(args: &PredictArgs) -> i32 {
    let Some(c) = report::load_checked(&args.file, None) else {
        return 1;
    };
    let (plan, w) = match super::eval::plan_and_weights(&c.analysis.plans, &args.weights) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let name = args.input.to_string_lossy().to_lowercase();
    let x = if name.ends_with(".csv") || name.ends_with(".txt") {
        let scale = match &plan.data.source {
            DataSource::Csv { scale: Some(s), .. } => *s as f32,
            _ => 1.0,
        };
        read_csv(&args.input, scale)
    } else {
        read_images(&args.input)
    };
    let x = match x {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    // New samples get the training split's statistics, as in training.
    let x = match checkpoint::load_standardizer(&args.weights) {
        Ok(Some(st)) => {
            let mut x = x;
            if let Err(e) = st.apply(&mut x) {
                eprintln!("error: {}: {e}", args.input.display());
                return 1;
            }
            x
        }
        Ok(None) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    // Reshape rows to the model's input, e.g. [n, 784] to [n, 28, 28].
    let mut shape = vec![x.shape()[0]];
    shape.extend(plan.input.shape[1..].iter().map(|d| d.known().unwrap_or(0)));
    let want: usize = shape[1..].iter().product();
    if want != x.len() / x.shape()[0].max(1) {
        eprintln!(
            "error: {}: each sample has {} values, but `{}` takes {} ({} values)",
            args.input.display(),
            x.len() / x.shape()[0].max(1),
            plan.model,
            crate::ir::shape_to_string(&plan.input.shape),
            want
        );
        return 1;
    }
    let x = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&shape))
        .expect("same count");
    let out = match train::predict(plan, args.engine.kind(), &w, &x) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: prediction failed: {e}");
            return 1;
        }
    };
    // Finite inputs can still overflow inside the model (exp of a large
    // logit); a NaN printed as a probability would look like an answer.
    if let Some(i) = out.axis_iter(Axis(0)).position(|r| r.iter().any(|v| !v.is_finite())) {
        eprintln!(
            "error: {}: the model's output for sample {i} is not finite (are the inputs on the training data's scale?)",
            args.input.display()
        );
        return 1;
    }
    let classify = plan.label.dtype == crate::ir::DType::I32;
    if !classify {
        for (i, r) in out.axis_iter(Axis(0)).enumerate() {
            let vals: Vec<String> = r.iter().map(|v| format!("{v:.4}")).collect();
            say!("{i}: {}", vals.join(", "));
        }
        return 0;
    }
    let p = probabilities(&out);
    if args.summary {
        let (confidence, entropy, hist) = confidence_and_entropy(&p);
        say!("samples: {}", p.shape()[0]);
        say!("mean top-class probability: {confidence:.4}");
        say!(
            "class histogram entropy: {entropy:.4} nats (uniform over {} classes: {:.4})",
            hist.len(),
            (hist.len() as f64).ln()
        );
        let counts: Vec<String> = hist.iter().enumerate().map(|(c, n)| format!("{c}:{n}")).collect();
        say!("class counts: {}", counts.join(" "));
        return 0;
    }
    say!("sample  class  probability");
    for (i, r) in p.axis_iter(Axis(0)).enumerate() {
        let (best, pb) = r
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |a, (j, &v)| if v > a.1 { (j, v) } else { a });
        let best = if r.len() == 1 { usize::from(pb >= 0.5) } else { best };
        let pb = if r.len() == 1 && best == 0 { 1.0 - pb } else { pb };
        if args.probabilities {
            let all: Vec<String> = r.iter().map(|v| format!("{v:.4}")).collect();
            say!("{i:>6}  {best:>5}  {pb:.4}  [{}]", all.join(" "));
        } else {
            say!("{i:>6}  {best:>5}  {pb:.4}");
        }
    }
    0
}
