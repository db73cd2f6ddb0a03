//! From a `train` block's data source to train/validation/test splits in
//! the model's input shape.

use super::data::{self, CsvOptions, DataError, Dataset, Header, LabelColumn};
use super::split;
use super::text;
use super::train::Splits;
use crate::ir;
use crate::plan::{CsvLabel, DataSource, TrainPlan};
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// Find a dataset path: absolute, next to the `.nn` file, or under the
/// data directory (`--data-dir` / `NNC_DATA`).
pub fn resolve(path: &str, base: &Path, data_dir: Option<&Path>) -> Result<PathBuf, DataError> {
    let p = Path::new(path);
    let mut tried = vec![];
    if p.is_absolute() {
        tried.push(p.to_path_buf());
    } else {
        tried.push(base.join(p));
        if let Some(d) = data_dir {
            tried.push(d.join(p));
        }
    }
    for t in &tried {
        if t.exists() {
            return Ok(t.clone());
        }
    }
    let list: Vec<String> = tried.iter().map(|t| t.display().to_string()).collect();
    Err(DataError {
        code: "E0601",
        argument: None,
        path: p.to_path_buf(),
        message: format!(
            "not found (looked in {}); set --data-dir or NNC_DATA to the directory that holds it",
            list.join(", ")
        ),
    })
}

fn label_column(l: &CsvLabel) -> LabelColumn {
    match l {
        CsvLabel::Index(i) => LabelColumn::Index(*i as isize),
        CsvLabel::Name(n) => LabelColumn::Name(n.clone()),
    }
}

/// Inline samples, each of `shape` (flat rows of equal length, checked).
fn inline(rows: &[Vec<f64>], shape: &[usize]) -> ArrayD<f32> {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let dims: Vec<usize> = std::iter::once(rows.len()).chain(shape.iter().copied()).collect();
    ArrayD::from_shape_vec(IxDyn(&dims), flat).expect("rows of the checked shape")
}

/// Reshape samples to the model's input shape (e.g. [n, 28, 28] to
/// [n, 784]); the element counts must agree.
fn fit_input(ds: Dataset, input: &ir::Type, path: &Path) -> Result<Dataset, DataError> {
    let dims: Vec<usize> = input.shape[1..].iter().map(|d| d.known().unwrap_or(0)).collect();
    let want: usize = dims.iter().product();
    if want != ds.feature_len() {
        return Err(DataError {
            code: "E0601",
            argument: None,
            path: path.to_path_buf(),
            message: format!(
                "each sample has shape {:?} ({} values), but the model's input is {} ({} values)",
                ds.feature_shape(),
                ds.feature_len(),
                ir::shape_to_string(&input.shape),
                want
            ),
        });
    }
    let mut shape = vec![ds.len()];
    shape.extend(dims);
    // Moved, not copied, when already row-major (60,000 MNIST images are
    // 188 MB).
    let x = if ds.x.is_standard_layout() {
        ds.x
    } else {
        ds.x.as_standard_layout().into_owned()
    };
    let x = x.into_shape_with_order(IxDyn(&shape)).expect("same element count");
    Ok(Dataset { x, ..ds })
}

/// The CSV reading options a `csv(...)` source asks for.
fn csv_options(label: &CsvLabel, scale: Option<f64>, regression: bool) -> CsvOptions {
    CsvOptions {
        label: label_column(label),
        header: Header::Auto,
        scale: scale.map(|v| v as f32),
        regression,
    }
}

/// The class labels of a data source, read without the features: checked
/// against the model's outputs before training. `None` for regression
/// targets, inline data, and files that are not there (where the data is
/// is `nnc run`'s to report, with `--data-dir`); an error for a file that
/// is there but cannot be read.
pub fn label_summary(source: &DataSource, base: &Path, data_dir: Option<&Path>) -> Result<Option<data::LabelSummary>, DataError> {
    let Ok(found) = (match source {
        DataSource::Inline { .. } | DataSource::Csv { regression: true, .. } => return Ok(None),
        DataSource::Text { path, .. } => resolve(path, base, data_dir),
        DataSource::Csv { path, .. } => resolve(path, base, data_dir),
        DataSource::Mnist { dir } => resolve(dir, base, data_dir),
        DataSource::Idx { labels, .. } => resolve(labels, base, data_dir),
    }) else {
        return Ok(None);
    };
    match source {
        DataSource::Csv { label, scale, .. } => Ok(Some(data::csv_label_summary(&found, &csv_options(label, *scale, false))?)),
        DataSource::Mnist { .. } => match data::mnist_label_summary(&found) {
            Ok(s) => Ok(Some(s)),
            // A directory without the label files is where the data is not.
            Err(_) if !found.join("train-labels-idx1-ubyte").exists() && !found.join("train-labels-idx1-ubyte.gz").exists() => Ok(None),
            Err(e) => Err(e),
        },
        DataSource::Idx { .. } => Ok(Some(data::idx_label_summary(&found)?)),
        // The ids are the vocabulary's by construction; reading the text
        // here lets `nnc check` report a character outside it (E0605) or a
        // file that is not UTF-8 (E0606) before a run.
        DataSource::Text { steps, vocab, .. } => text::load_text(&found, *steps, *vocab).map(|_| None),
        DataSource::Inline { .. } => Ok(None),
    }
}

/// Load the data of a plan and split it: `test` holds out a fraction when
/// the source has no test set; `validation` comes out of the training part.
pub fn load_splits(plan: &TrainPlan, base: &Path, data_dir: Option<&Path>) -> Result<Splits, DataError> {
    let s = &plan.settings;
    let (all, test, origin) = match &plan.data.source {
        DataSource::Inline { x, x_shape, y } => {
            let ds = Dataset {
                x: inline(x, x_shape),
                y: inline(y, &[y.first().map_or(0, Vec::len)]),
                y_is_class: false,
                num_classes: None,
                name: "inline".into(),
            };
            (ds, None, PathBuf::from("<inline data>"))
        }
        DataSource::Csv {
            path,
            label,
            scale,
            regression,
        } => {
            let p = resolve(path, base, data_dir)?;
            let opts = csv_options(label, *scale, *regression);
            (data::load_csv(&p, &opts)?, None, p)
        }
        DataSource::Mnist { dir } => {
            let p = resolve(dir, base, data_dir)?;
            let (train, test) = data::load_mnist(&p)?;
            (train, Some(test), p)
        }
        DataSource::Idx { images, labels } => {
            let (pi, pl) = (resolve(images, base, data_dir)?, resolve(labels, base, data_dir)?);
            (data::load_idx_pair(&pi, &pl)?, None, pi)
        }
        DataSource::Text { path, steps, vocab } => {
            let p = resolve(path, base, data_dir)?;
            (text::load_text(&p, *steps, *vocab)?, None, p)
        }
    };
    let all = fit_input(all, &plan.input, &origin)?;
    let test = match test {
        Some(t) => Some(fit_input(t, &plan.input, &origin)?),
        None => None,
    };
    // Fixed held-out split: derived from the seed, independent of epochs.
    let (rest, test) = match test {
        Some(t) => (all, Some(t)),
        None if s.test > 0.0 => {
            let (keep, held) = split::train_val_split(all.len(), s.test, s.seed ^ 0x7E57);
            (split::take(&all, &keep), Some(split::take(&all, &held)))
        }
        None => (all, None),
    };
    let (mut train, mut validation) = if s.validation > 0.0 {
        let (keep, held) = split::train_val_split(rest.len(), s.validation, s.seed ^ 0x7A11);
        (split::take(&rest, &keep), Some(split::take(&rest, &held)))
    } else {
        (rest, None)
    };
    // A split asked for but left empty (one row and `test = 0.2`) would
    // fail only after training, when it is evaluated: say so now.
    let too_few = |what: &str, fraction: f64| DataError {
        code: "E0601",
        argument: None,
        path: origin.clone(),
        message: format!(
            "{} samples are too few: `{what} = {fraction}` leaves the {what} split empty; add data or set `{what} = 0`",
            train.len() + validation.as_ref().map_or(0, Dataset::len) + test.as_ref().map_or(0, Dataset::len)
        ),
    };
    if test.as_ref().is_some_and(Dataset::is_empty) {
        return Err(too_few("test", s.test));
    }
    if validation.as_ref().is_some_and(Dataset::is_empty) {
        return Err(too_few("validation", s.validation));
    }
    if train.is_empty() {
        return Err(DataError {
            code: "E0601",
            argument: None,
            path: origin.clone(),
            message: "no samples are left for training after the test and validation splits".into(),
        });
    }
    let mut test = test;
    let standardizer = if s.standardize {
        let mut others: Vec<&mut Dataset> = validation.iter_mut().chain(test.iter_mut()).collect();
        let st = split::standardize(&mut train, &mut others).map_err(|e| DataError {
            code: "E0601",
            argument: None,
            path: origin.clone(),
            message: e.to_string(),
        })?;
        Some(st)
    } else {
        None
    };
    Ok(Splits {
        train,
        validation,
        test,
        standardizer,
    })
}

/// Feature shape of a data source, read from file headers only (no full
/// read), for checking against the model before training.
pub fn feature_shape(source: &DataSource, base: &Path, data_dir: Option<&Path>) -> Result<Vec<usize>, DataError> {
    match source {
        DataSource::Inline { x_shape, .. } => Ok(x_shape.clone()),
        DataSource::Csv {
            path,
            label,
            scale,
            regression,
        } => {
            let p = resolve(path, base, data_dir)?;
            let opts = csv_options(label, *scale, *regression);
            Ok(vec![data::csv_feature_count(&p, &opts)?])
        }
        DataSource::Mnist { dir } => data::mnist_shape(&resolve(dir, base, data_dir)?),
        DataSource::Idx { images, .. } => Ok(data::idx_header(&resolve(images, base, data_dir)?)?[1..].to_vec()),
        DataSource::Text { steps, .. } => Ok(vec![*steps]),
    }
}
